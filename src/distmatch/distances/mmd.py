"""Maximum mean discrepancy between two samples."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._core import check_choice, check_pair, check_positive, check_samples, check_scales, fused
from ._pairs import two_sample_sum
from .kernels import KERNELS, KernelFn

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
    - ``folded_gaussian`` (2-D only): ``i0e(|x - y|^2 / (4 (bandwidth * s)^2))``, the kernel of
      random Fourier features with folded-Gaussian radii (CL-GN's sketch); default scale 1.

    Args:
        x: (N, D) samples; ``N >= 2`` for the unbiased estimator.
        y: (M, D) samples, same D, dtype and device; M may differ from N.
        kernel: ``"imq"``, ``"gaussian"`` or ``"folded_gaussian"``.
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
    scales = check_scales(scales, KERNELS[kernel][1])
    _check_widths(kernel, x.shape[1], bandwidth, scales, x.dtype)

    kernel_fn = KERNELS[kernel][0]
    return mmd_unchecked(x, y, kernel_fn, bandwidth, scales, estimator == "unbiased", join=False)


def _check_widths(kernel: str, dim: int, bandwidth: float, scales, dtype: torch.dtype) -> None:
    """The constants that divide the squared distances (imq: ``2 D bandwidth^2 s``; gaussian:
    ``2 (bandwidth s)^2``; folded_gaussian: ``4 (bandwidth s)^2``) must be normal numbers of the
    samples' dtype: a width that underflows to 0 or overflows to inf makes the kernel NaN."""
    info = torch.finfo(dtype)
    for s in scales:
        width = bandwidth * s
        if kernel == "imq":
            c = 2.0 * dim * bandwidth * bandwidth * s
        else:
            c = (2.0 if kernel == "gaussian" else 4.0) * width * width
        if not info.tiny <= c <= info.max:
            raise ValueError(
                f"bandwidth and scales must give kernel widths within {dtype}'s range "
                f"[{info.tiny:.3g}, {info.max:.3g}]; got {c:.3g} (bandwidth {bandwidth:g}, "
                f"scale {s:g})."
            )


def mmd_unchecked(
    x: torch.Tensor,
    y: torch.Tensor,
    kernel_fn: KernelFn,
    bandwidth: float,
    scales: tuple[float, ...],
    unbiased: bool,
    fresh: int | None = None,
    join: bool = True,
) -> torch.Tensor:
    """:func:`mmd` without validation, for callers that own their inputs (the training objective).

    ``fresh``: only the first ``fresh`` rows of ``x`` carry a gradient (a moving window's fresh
    codes; the rest are its stored codes, constants): the kernel's derivative is computed on
    their rows only, and no gradient reaches ``x[fresh:]``. ``y`` must then need none.

    ``join``: one kernel matrix of both samples (:func:`two_sample_sum`; fewer operations, for
    samples of one scale, such as codes and prior draws), else three blocks.

    A sample of one point has no pairs to average over: with ``unbiased`` and ``N = 1`` or
    ``M = 1`` (the first step of a window that fills, at k = 1), the biased estimate is returned.
    Its gradient is the same (``k(x, x)`` is a constant), and its value is >= 0.
    """
    n, dim = x.shape
    m = y.shape[0]
    unbiased = unbiased and min(n, m) > 1
    w_xx = 1.0 / (n * (n - 1)) if unbiased else 1.0 / (n * n)
    w_yy = 1.0 / (m * (m - 1)) if unbiased else 1.0 / (m * m)

    def profile(d2: torch.Tensor, derivative: bool = True):
        return kernel_fn(d2, dim, bandwidth, scales, derivative=derivative)

    weights = (w_xx, w_yy, -2.0 / (n * m))

    def compute(x, y, *, needs):
        value, g_x, g_y = two_sample_sum(
            x, y, profile, weights, exclude_diagonal=unbiased, needs=needs, join=join
        )  # fmt: skip
        return value, (g_x, g_y)

    def compute_fresh(x_fresh, stored, y, *, needs):
        x, b = torch.cat([x_fresh, stored]), x_fresh.shape[0]
        value, g_x, _ = two_sample_sum(
            x, y, profile, weights, exclude_diagonal=unbiased, needs=(needs[0], False), rows=b,
            join=join,
        )  # fmt: skip
        return value, (g_x, None, None)

    if fresh is None or fresh >= n or y.requires_grad:
        return fused(compute, (x, y))
    return fused(compute_fresh, (x[:fresh], x[fresh:].detach(), y))
