"""Bandwidth estimation for random Fourier features, from the data or a subsample of it.

Part of :mod:`distmatch.sketch`, which re-exports :func:`estimate_bandwidth`.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize
import torch

from .._core import check_choice, check_positive_int
from ._features import mean_features
from ._laws import draw_frequencies, generator_device

__all__ = ["estimate_bandwidth"]

# Keriven et al. / pycle estimate_Sigma: number of radius blocks whose maxima are fitted.
_BLOCKS = 20


def _subsample(x: object, n_points: int, generator: torch.Generator | None) -> torch.Tensor:
    """At most ``n_points`` random rows of ``x`` (N, D) as float64; a memory map reads only those."""
    if not isinstance(x, torch.Tensor | np.ndarray):
        raise TypeError(
            f"x must be a tensor or numpy array of shape (N, D); got {type(x).__name__}."
        )
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (N, D) with N >= 2; got shape {tuple(x.shape)}.")
    if x.shape[0] > n_points:
        keep = torch.randperm(x.shape[0], generator=generator, device=generator_device(generator))
        rows = keep[:n_points].sort().values.cpu()  # sorted: sequential reads from a memory map
        x = x[rows.numpy()] if isinstance(x, np.ndarray) else x[rows.to(x.device)]
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiu":
            raise TypeError(f"x must hold numbers; got dtype {x.dtype}.")
        x = torch.from_numpy(np.array(x, dtype=np.float64))
    x = x.detach().to("cpu", torch.float64)  # (n0, D)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must contain only finite values; got NaN or inf entries.")
    return x


def _fit_sigma2(radius: np.ndarray, modulus: np.ndarray, sigma2_bar: float) -> float:
    """Least squares fit of ``modulus ≈ exp(-sigma2 radius^2 / 2)`` in pycle's bounds.

    A log-spaced grid over ``[5e-4, 2e3] * sigma2_bar`` finds the basin, a bounded scalar search
    refines it (the loss is not convex in ``sigma2`` and can be flat far from the data's scale).
    """

    def loss(log_s2: np.ndarray) -> np.ndarray:
        model = np.exp(-np.exp(log_s2)[..., None] * radius**2 / 2)  # (G, c)
        return ((modulus - model) ** 2).sum(axis=-1)

    grid = np.linspace(math.log(5e-4 * sigma2_bar), math.log(2e3 * sigma2_bar), 401)
    best = int(np.argmin(loss(grid)))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    result = scipy.optimize.minimize_scalar(
        lambda v: float(loss(np.array(v))), bounds=(lo, hi), method="bounded"
    )
    return math.exp(float(result.x))


def _bandwidth_sketch(
    x: torch.Tensor, n_frequencies: int, iterations: int, generator: torch.Generator | None
) -> float:
    """Keriven et al. (2018, sec. 3.3.3) / pycle ``estimate_Sigma`` with ``K = 1``."""
    dim = x.shape[1]
    # pycle starts at a random sigma2 in [0.3, 1.6]; the per-dimension variance is the answer for a
    # single Gaussian and of the data's own scale otherwise, so fewer iterations are wasted.
    sigma2 = float(x.var(dim=0).mean())
    if not sigma2 > 0.0:  # one point, repeated: no scale to estimate
        raise ValueError("x must hold distinct points; got a variance of 0 in every dimension.")
    block = n_frequencies // _BLOCKS
    for _ in range(iterations):
        omega = draw_frequencies(
            dim, n_frequencies, "adapted_radius", math.sqrt(sigma2), None, generator
        )  # (D, m0)
        means = mean_features(x, omega) * math.sqrt(n_frequencies)  # (2 m0,): [mean cos; mean sin]
        modulus = torch.hypot(means[:n_frequencies], means[n_frequencies:])  # (m0,)
        radius = torch.linalg.vector_norm(omega, dim=0)  # (m0,)
        order = torch.argsort(radius)
        radius, modulus = radius[order].numpy(), modulus[order].numpy()
        blocks = modulus[: block * _BLOCKS].reshape(_BLOCKS, block)  # (c, m0 / c)
        picks = blocks.argmax(axis=1) + block * np.arange(_BLOCKS)  # (c,)
        sigma2 = _fit_sigma2(radius[picks], modulus[picks], sigma2)
    return math.sqrt(sigma2)


def estimate_bandwidth(
    x: torch.Tensor | np.ndarray,
    *,
    method: str = "sketch",
    n_frequencies: int = 500,
    n_points: int = 2_000,
    iterations: int = 5,
    generator: torch.Generator | None = None,
) -> float:
    """Isotropic kernel scale of the data ``x``, to be used as ``FourierFeatures(bandwidth=...)``.

    ``method="sketch"`` (Keriven et al. 2018, sec. 3.3.3; pycle ``estimate_Sigma`` with ``K = 1``):
    on a subsample of ``n_points``, repeat ``iterations`` times: draw ``n_frequencies`` frequencies
    of the adapted-radius law at the current estimate ``sigma``, compute the modulus of the
    unnormalised sketch ``|z(omega)| = |mean_i exp(i omega . x_i)|``, sort the frequencies by radius
    ``R = |omega|``, split them into 20 blocks, keep the largest ``|z|`` of each block and fit
    ``|z|(R) ≈ exp(-sigma^2 R^2 / 2)`` by least squares. For data drawn from ``N(mu, sigma^2 I)``,
    ``|z(omega)| = exp(-sigma^2 |omega|^2 / 2)`` exactly, so ``sigma`` is the scale of the clusters.

    ``method="median"``: the median pairwise distance of the subsample (the median heuristic),
    returned as is; for ``N(0, sigma^2 I_D)`` it is ``sigma sqrt(2 median(chi^2_D))``.

    Args:
        x: (N, D) data, N >= 2 (tensor or numpy array).
        method: ``"sketch"`` or ``"median"``.
        n_frequencies: frequencies per iteration of the sketch method (>= 20).
        n_points: size of the random subsample (all of ``x`` when N is smaller).
        iterations: fits of the sketch method.
        generator: source of the subsample and of the frequencies.

    Returns:
        The bandwidth ``sigma`` (> 0).

    Raises:
        TypeError, ValueError: malformed data or options.

    Example:
        >>> x = 0.3 * torch.randn(5000, 2)
        >>> sigma = estimate_bandwidth(x)  # about 0.3

    Reference:
        Keriven, Bourrier, Gribonval, Pérez, "Sketching for large-scale learning of mixture models",
        Information and Inference 2018, sec. 3.3.3.
    """
    check_choice(method, "method", ("sketch", "median"))
    check_positive_int(n_points, "n_points")
    check_positive_int(iterations, "iterations")
    check_positive_int(n_frequencies, "n_frequencies")
    if n_frequencies < _BLOCKS:
        raise ValueError(f"n_frequencies must be >= {_BLOCKS}; got {n_frequencies}.")
    x = _subsample(x, n_points, generator)  # (n0, D)
    if method == "median":
        median = float(torch.pdist(x).median())
        if median <= 0.0:
            raise ValueError("x must hold distinct points; got a median pairwise distance of 0.")
        return median
    return _bandwidth_sketch(x, n_frequencies, iterations, generator)
