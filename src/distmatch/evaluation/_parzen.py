"""Parzen-window log-likelihood of test data under a generator's samples (the GAN/GMMN protocol).

A Gaussian kernel density estimate with isotropic bandwidth ``h`` is fitted on N generated samples
``s_i`` in R^D, and the test points are scored under it::

    log p(x) = logsumexp_i(-|x - s_i|^2 / (2 h^2)) - log N - (D/2) log(2 pi h^2)
    LL = 1/M sum_j log p(x_j),    SE = std_j(log p(x_j)) / sqrt(M)   (std with M - 1)

``h`` is chosen on a validation set as the grid value with the highest LL
(:func:`select_parzen_bandwidth`; grid 0.10, 0.11, ..., 0.29 by default). Everything runs in
float64, in batches of test points.

The estimate is biased and of high variance in high dimensions (Theis et al., "A note on the
evaluation of generative models", ICLR 2016); it is reported for comparison with published tables.

Reference: Breuleux, Bengio & Vincent, "Quickly generating representative samples from an
RBM-derived process", Neural Computation 2011; Goodfellow et al., "Generative Adversarial Nets",
NeurIPS 2014, Table 1; Li, Swersky & Zemel, "Generative Moment Matching Networks", ICML 2015.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from .._core import check_positive, check_positive_int, check_samples

__all__ = [
    "PARZEN_BANDWIDTHS",
    "ParzenEstimate",
    "parzen_log_density",
    "parzen_log_likelihood",
    "select_parzen_bandwidth",
]

PARZEN_BANDWIDTHS = tuple(float(h) for h in np.linspace(0.10, 0.29, 20))  # validation grid


class ParzenEstimate(NamedTuple):
    """Mean log-likelihood over test points and its standard error."""

    mean: float
    std_error: float


def _as_points(x: object, name: str) -> torch.Tensor:
    """(N, ...) tensor or array → finite (N, D) float64 tensor."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if isinstance(x, torch.Tensor) and x.dim() > 2:
        x = x.reshape(x.shape[0], -1)
    return check_samples(x, name).detach().double()


BANDWIDTH_RANGE = (1e-100, 1e100)  # where h^2 and |x - s|^2 / h^2 stay finite in float64


def _check_bandwidths(bandwidths: Sequence[float]) -> torch.Tensor:
    values = torch.as_tensor(np.asarray(bandwidths, dtype=np.float64).ravel())  # (K,)
    low, high = BANDWIDTH_RANGE
    if values.numel() == 0 or not bool(((values >= low) & (values <= high)).all()):
        raise ValueError(
            f"bandwidths must be a non-empty sequence of numbers in [{low:g}, {high:g}]; got "
            f"{bandwidths!r}."
        )
    return values


def _log_densities(
    samples: torch.Tensor, points: torch.Tensor, bandwidths: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """(K, M) log p_h(x_j) for K bandwidths; each batch's distances serve every bandwidth."""
    n, dim = samples.shape
    if points.shape[1] != dim:
        raise ValueError(
            f"test points must have the samples' {dim} features; got {points.shape[1]}."
        )
    centre = samples.mean(dim=0, keepdim=True)  # (1, D); shrinks cancellation in the expansion
    s = samples - centre  # (N, D)
    s2 = (s * s).sum(dim=1)  # (N,)
    h = bandwidths.to(samples.device)  # (K,)
    constant = -math.log(n) - 0.5 * dim * torch.log(2.0 * math.pi * h * h)  # (K,)
    out = []
    starts = range(0, points.shape[0], batch_size)
    for start in tqdm(starts, desc="Parzen window", unit="batch", disable=None, leave=False):
        x = points[start : start + batch_size].to(samples.device) - centre  # (B, D)
        d2 = ((x * x).sum(dim=1, keepdim=True) + s2 - 2.0 * (x @ s.T)).clamp_min(0.0)  # (B, N)
        rows = [torch.logsumexp(d2 / (-2.0 * float(hk) ** 2), dim=1) for hk in h]  # K x (B,)
        out.append(torch.stack(rows) + constant[:, None])  # (K, B)
    return torch.cat(out, dim=1).cpu()  # (K, M)


def parzen_log_density(
    samples: torch.Tensor | np.ndarray,
    points: torch.Tensor | np.ndarray,
    bandwidth: float,
    *,
    batch_size: int = 256,
) -> torch.Tensor:
    """Log density of each point under the Gaussian KDE of ``samples``.

    ::

        log p(x) = logsumexp_i(-|x - s_i|^2 / (2 h^2)) - log N - (D/2) log(2 pi h^2)

    Args:
        samples: (N, D) generated samples (or (N, ...) images, flattened); the KDE centres.
        points: (M, D) points to score (flattened like ``samples``).
        bandwidth: h > 0, the kernel standard deviation.
        batch_size: points per batch; memory is about ``batch_size * N`` float64 numbers.

    Returns:
        (M,) float64 tensor on CPU.

    Raises:
        TypeError: ``samples`` or ``points`` is not a tensor or array.
        ValueError: non-finite values, feature counts that differ, ``bandwidth`` <= 0.
    """
    check_positive(bandwidth, "bandwidth")
    low, high = BANDWIDTH_RANGE
    if not low <= bandwidth <= high:
        raise ValueError(f"bandwidth must be in [{low:g}, {high:g}]; got {bandwidth:g}.")
    h = torch.tensor([bandwidth], dtype=torch.float64)  # (1,)
    check_positive_int(batch_size, "batch_size")
    s, x = _as_points(samples, "samples"), _as_points(points, "points")
    return _log_densities(s, x, h, batch_size)[0]


def parzen_log_likelihood(
    samples: torch.Tensor | np.ndarray,
    test: torch.Tensor | np.ndarray,
    bandwidth: float,
    *,
    batch_size: int = 256,
) -> ParzenEstimate:
    """Mean Parzen-window log-likelihood of test points, with its standard error.

    ::

        LL = 1/M sum_j log p(x_j),    SE = std_j(log p(x_j)) / sqrt(M)

    with ``log p`` from :func:`parzen_log_density`. SE counts the test points only, not the
    randomness of ``samples``; it is NaN for a single test point.

    Args:
        samples: (N, D) generated samples.
        test: (M, D) test points.
        bandwidth: h > 0, chosen with :func:`select_parzen_bandwidth`.
        batch_size: test points per batch.

    Returns:
        ``ParzenEstimate(mean, std_error)`` in nats.

    Example:
        >>> s = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
        >>> parzen_log_likelihood(s, torch.zeros(1, 2), 0.2).mean  # doctest: +SKIP
        -1.87...
    """
    log_p = parzen_log_density(samples, test, bandwidth, batch_size=batch_size)  # (M,)
    m = log_p.numel()
    std_error = float(log_p.std(correction=1)) / math.sqrt(m) if m > 1 else math.nan
    return ParzenEstimate(float(log_p.mean()), std_error)


def select_parzen_bandwidth(
    samples: torch.Tensor | np.ndarray,
    validation: torch.Tensor | np.ndarray,
    bandwidths: Sequence[float] = PARZEN_BANDWIDTHS,
    *,
    batch_size: int = 256,
) -> tuple[float, dict[float, float]]:
    """The grid bandwidth with the highest mean validation log-likelihood.

    ::

        h* = argmax_{h in grid} 1/M sum_j log p_h(v_j)

    Args:
        samples: (N, D) generated samples.
        validation: (M, D) validation points (held out from the test points).
        bandwidths: the grid, each > 0; default 0.10, 0.11, ..., 0.29 (pixels in [0, 1]).
        batch_size: validation points per batch.

    Returns:
        ``(h*, table)``, table mapping every grid bandwidth to its mean validation log-likelihood;
        ties go to the first grid value.

    Raises:
        ValueError: an empty grid or a bandwidth <= 0, and the errors of
            :func:`parzen_log_density`.
    """
    h = _check_bandwidths(bandwidths)  # (K,)
    check_positive_int(batch_size, "batch_size")
    s, v = _as_points(samples, "samples"), _as_points(validation, "validation")
    means = _log_densities(s, v, h, batch_size).mean(dim=1)  # (K,)
    table = {float(b): float(ll) for b, ll in zip(h, means, strict=True)}
    best = int(torch.argmax(means.nan_to_num(nan=-math.inf)))  # a NaN is never the best
    return float(h[best]), table
