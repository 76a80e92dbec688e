"""Maximum mean discrepancy between two samples."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._checks import check_choice, check_pair, check_positive, check_samples, check_scales
from .kernels import KERNELS, squared_distances

__all__ = ["ESTIMATORS", "mmd"]

ESTIMATORS = ("unbiased", "biased")


def mmd(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kernel: str = "imq",
    bandwidth: float = 1.0,
    scales: Sequence[float] | None = None,
    estimator: str = "unbiased",
) -> torch.Tensor:
    """Squared maximum mean discrepancy between the samples ``x`` and ``y``.

    Unbiased (U-statistic within samples, as WAE-MMD computes it)::

        MMD^2 = sum_{i != j} k(x_i, x_j) / (N (N - 1)) + sum_{i != j} k(y_i, y_j) / (M (M - 1))
                - 2 sum_{i, j} k(x_i, y_j) / (N M)

    Biased (V-statistic): every sum runs over all pairs and divides by ``N^2``, ``M^2`` and ``N M``;
    it is ``|mean_i phi(x_i) - mean_j phi(y_j)|^2`` in the kernel's feature space, so it is >= 0 and
    exactly 0 for identical samples. The unbiased estimate can be negative.

    Kernels (see :mod:`distmatch.distances.kernels`), summed over ``scales``:

    - ``imq``: ``C / (C + |x - y|^2)``, ``C = 2 * D * bandwidth^2 * s``; default scales
      (.1, .2, .5, 1, 2, 5, 10) as in WAE. ``bandwidth`` is the prior's standard deviation.
    - ``gaussian``: ``exp(-|x - y|^2 / (2 (bandwidth * s)^2))``; default scale 1. ``bandwidth`` is the
      kernel's standard deviation.

    Args:
        x: (N, D) samples; ``N >= 2`` for the unbiased estimator.
        y: (M, D) samples, same D, dtype and device; M may differ from N.
        kernel: ``"imq"`` or ``"gaussian"``.
        bandwidth: kernel scale, > 0 (enters as described above).
        scales: factors applied to ``bandwidth``; ``None`` for the kernel's defaults.
        estimator: ``"unbiased"`` or ``"biased"``.

    Returns:
        0-d tensor, differentiable with respect to ``x`` and ``y``.

    Raises:
        TypeError, ValueError: malformed samples or options (the message says which).

    Example:
        >>> z = torch.randn(64, 8)
        >>> mmd(z, torch.randn(64, 8)).shape
        torch.Size([])

    Reference:
        Gretton et al., "A Kernel Two-Sample Test", JMLR 2012, eqs. (3) and (5);
        Tolstikhin et al., "Wasserstein Auto-Encoders", ICLR 2018, Algorithm 2.
    """
    check_choice(kernel, "kernel", KERNELS)
    check_choice(estimator, "estimator", ESTIMATORS)
    min_points = 2 if estimator == "unbiased" else 1
    check_samples(x, "x", min_points=min_points)
    check_samples(y, "y", min_points=min_points)
    check_pair(x, y)
    bandwidth = check_positive(bandwidth, "bandwidth")
    kernel_fn, default_scales = KERNELS[kernel]
    scales = check_scales(scales, default_scales)

    n, dim = x.shape
    m = y.shape[0]
    k_xx = kernel_fn(squared_distances(x, x), dim, bandwidth, scales)  # (N, N)
    k_yy = kernel_fn(squared_distances(y, y), dim, bandwidth, scales)  # (M, M)
    k_xy = kernel_fn(squared_distances(x, y), dim, bandwidth, scales)  # (N, M)
    if estimator == "unbiased":
        xx = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
        yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    else:
        xx = k_xx.sum() / (n * n)
        yy = k_yy.sum() / (m * m)
    return xx + yy - 2.0 * k_xy.sum() / (n * m)
