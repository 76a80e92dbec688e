"""Frequency laws of random Fourier features, bandwidth estimation and closed-form Gaussian sketches.

Part of :mod:`distmatch.sketch`, which re-exports the public names; import them from there.

A frequency is ``omega = R * Sigma^{-1/2} u / bandwidth``: a radius ``R`` drawn from the law, a
direction ``u`` uniform on the unit sphere of R^D, the optional shape matrix ``Sigma`` (``cov``) and
the isotropic ``bandwidth`` (pycle 1.2 conventions). The kernel of the features is the Fourier
transform of the law of ``omega`` (Bochner):

- ``gaussian``: ``R ~ chi_D``, so ``omega ~ N(0, Sigma^{-1} / bandwidth^2)`` and
  ``k(x, y) = exp(-(x - y)^T Sigma^{-1} (x - y) / (2 bandwidth^2))``.
- ``folded_gaussian``: ``R = |N(0, 1)|`` (CL-GN); in 2-D, ``k = exp(-s^2/4) I0(s^2/4)`` with
  ``s = |x - y| / bandwidth``.
- ``adapted_radius``: density ``p(R) ∝ sqrt(R^2 + R^4/4) exp(-R^2/2)`` (Keriven et al. 2018).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.optimize
import torch

from .distances._checks import check_choice, check_positive_int

if TYPE_CHECKING:
    from .sketch import FourierFeatures

__all__ = [
    "LAWS",
    "estimate_bandwidth",
    "gaussian_mixture_sketch",
    "gaussian_sketch",
]

RadiusSampler = Callable[[int, int, "torch.Generator | None"], torch.Tensor]

# Inverse-CDF grid of the adapted-radius law. pycle stops at R = 5, which drops a mass of 8.6e-6 of
# the law (about 9 frequencies in a million); at R = 10 the dropped mass is 8e-22, so the sampled law
# is the stated density up to the grid's interpolation error, for the same cost.
_AR_GRID_MAX = 10.0
_AR_GRID_POINTS = 20_001

# Keriven et al. / pycle estimate_Sigma: number of radius blocks whose maxima are fitted.
_BLOCKS = 20


def _device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


def _radius_gaussian(m: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """``R ~ chi_dim``: the norm of a standard normal vector, so that ``R u ~ N(0, I)``."""
    g = torch.randn(m, dim, generator=generator, dtype=torch.float64, device=_device(generator))
    return torch.linalg.vector_norm(g, dim=1).cpu()  # (m,)


def _radius_folded_gaussian(m: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """``R = |N(0, 1)|`` whatever the dimension."""
    g = torch.randn(m, generator=generator, dtype=torch.float64, device=_device(generator))
    return g.abs().cpu()  # (m,)


@functools.cache
def _adapted_radius_grid() -> tuple[np.ndarray, np.ndarray]:
    """Grid ``r`` and the CDF of ``p(R) ∝ sqrt(R^2 + R^4/4) exp(-R^2/2)`` on it (trapezoid rule)."""
    r = np.linspace(0.0, _AR_GRID_MAX, _AR_GRID_POINTS)
    pdf = np.sqrt(r**2 + r**4 / 4) * np.exp(-(r**2) / 2)
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2)])
    return r, cdf / cdf[-1]


def _radius_adapted(m: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """Adapted radius (Keriven et al.), by inverse CDF on a fine grid over ``[0, 10]``."""
    r, cdf = _adapted_radius_grid()
    u = torch.rand(m, generator=generator, dtype=torch.float64, device=_device(generator))
    return torch.from_numpy(np.interp(u.cpu().numpy(), cdf, r))  # (m,)


LAWS: dict[str, RadiusSampler] = {
    "gaussian": _radius_gaussian,
    "folded_gaussian": _radius_folded_gaussian,
    "adapted_radius": _radius_adapted,
}
"""Radius samplers ``(m, dim, generator) -> (m,) float64 tensor`` of the frequency laws."""


def as_float64(value: object, name: str) -> torch.Tensor:
    """``value`` (tensor on any device, array, nested sequence) as a float64 CPU tensor."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64)
    try:
        return torch.from_numpy(np.array(value, dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be an array of numbers; got {type(value).__name__}."
        ) from None


def inverse_sqrt_cov(cov: object, dim: int) -> torch.Tensor:
    """``Sigma^{-1/2}`` (symmetric) of a positive-definite ``(dim, dim)`` matrix, in float64."""
    c = as_float64(cov, "cov")  # (D, D)
    if c.shape != (dim, dim):
        raise ValueError(f"cov must be a ({dim}, {dim}) matrix; got shape {tuple(c.shape)}.")
    if not bool(torch.isfinite(c).all()):
        raise ValueError("cov must contain only finite values; got NaN or inf entries.")
    if not torch.allclose(c, c.T, rtol=1e-10, atol=1e-12 * float(c.abs().max())):
        raise ValueError("cov must be symmetric positive definite; got a non-symmetric matrix.")
    eigenvalues, vectors = torch.linalg.eigh(c)  # (D,), (D, D)
    smallest = float(eigenvalues.min())
    if smallest <= 1e-12 * max(float(eigenvalues.max()), 0.0):
        raise ValueError(
            f"cov must be symmetric positive definite; got smallest eigenvalue {smallest:.3g}."
        )
    return (vectors * eigenvalues.rsqrt()) @ vectors.T  # (D, D)


def draw_frequencies(
    dim: int,
    m: int,
    law: str,
    bandwidth: float,
    cov_inv_sqrt: torch.Tensor | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``(dim, m)`` float64 frequencies ``omega_j = R_j Sigma^{-1/2} u_j / bandwidth``."""
    radius = LAWS[law](m, dim, generator)  # (m,)
    u = torch.randn(dim, m, generator=generator, dtype=torch.float64, device=_device(generator))
    u = u.cpu()  # (D, m)
    u /= torch.linalg.vector_norm(u, dim=0)
    if cov_inv_sqrt is not None:
        u = cov_inv_sqrt @ u  # (D, m)
    return u * (radius / bandwidth)  # (D, m)


# --- bandwidth estimation ----------------------------------------------------------------------


def _subsample(x: object, n_points: int, generator: torch.Generator | None) -> torch.Tensor:
    """At most ``n_points`` random rows of ``x`` (N, D) as float64; a memory map reads only those."""
    if not isinstance(x, torch.Tensor | np.ndarray):
        raise TypeError(
            f"x must be a tensor or numpy array of shape (N, D); got {type(x).__name__}."
        )
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (N, D) with N >= 2; got shape {tuple(x.shape)}.")
    if x.shape[0] > n_points:
        keep = torch.randperm(x.shape[0], generator=generator, device=_device(generator))
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
    sigma2 = max(float(x.var(dim=0).mean()), 1e-300)
    block = n_frequencies // _BLOCKS
    for _ in range(iterations):
        omega = draw_frequencies(
            dim, n_frequencies, "adapted_radius", math.sqrt(sigma2), None, generator
        )  # (D, m0)
        t = x @ omega  # (n0, m0)
        modulus = torch.hypot(t.cos().mean(dim=0), t.sin().mean(dim=0))  # (m0,)
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


# --- closed-form sketches of Gaussians ---------------------------------------------------------


def _expected_sign_cos(a: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """``E[sign(cos t)]`` for ``t ~ N(a, var)``, exact to float64 round-off.

    For ``sd >= 0.5`` the Fourier series ``sign(cos t) = (4/pi) sum_k (-1)^k cos((2k+1)t)/(2k+1)``
    with ``E[cos(n t)] = exp(-n^2 var/2) cos(n a)`` (13 terms: the next is below 1e-30). Below,
    where the series converges slowly, sum the normal probabilities of the intervals where
    ``cos t`` has one sign, within ``pi + 8 sd`` of ``a`` reduced to ``[-pi, pi]``.
    """
    sd = var.sqrt()
    series = torch.zeros_like(a)
    for k in range(13):
        n = 2 * k + 1
        series += (-1) ** k / n * torch.exp(-(n**2) * var / 2) * torch.cos(n * a)
    series *= 4 / math.pi
    a0 = torch.remainder(a + math.pi, 2 * math.pi) - math.pi
    sd0 = sd.clamp_min(1e-300)
    intervals = torch.zeros_like(a)
    for n in range(-3, 4):
        upper = torch.special.ndtr((math.pi / 2 + n * math.pi - a0) / sd0)
        lower = torch.special.ndtr((-math.pi / 2 + n * math.pi - a0) / sd0)
        intervals += (-1) ** n * (upper - lower)
    return torch.where(sd >= 0.5, series, intervals)


def _mixture_features(
    features: FourierFeatures, weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor | None
) -> torch.Tensor:
    """Expected features ``sum_k w_k E[phi(x)]``, ``x ~ N(mean_k, cov_k)``; ``covs=None`` is ``I``."""
    omega = features.frequencies.detach().to("cpu", torch.float64)  # (D, m)
    dither = features.dither.detach().to("cpu", torch.float64)  # (m,)
    phase = means @ omega + dither  # (K, m)
    if covs is None:
        var = (omega * omega).sum(dim=0).expand_as(phase)  # (K, m)
    else:
        var = ((covs @ omega) * omega).sum(dim=1).clamp_min(0.0)  # (K, m): omega^T cov_k omega
    if features.quantized:
        cos = _expected_sign_cos(phase, var)  # (K, m)
        sin = _expected_sign_cos(phase - math.pi / 2, var)  # (K, m)
    else:
        decay = torch.exp(-var / 2)  # (K, m)
        cos, sin = decay * torch.cos(phase), decay * torch.sin(phase)  # (K, m)
    stacked = torch.cat([weights @ cos, weights @ sin])  # (2m,)
    return (stacked / math.sqrt(features.n_frequencies)).to(features.frequencies.device)


def _check_psd(cov: object, dim: int, name: str) -> torch.Tensor:
    c = as_float64(cov, name)
    if c.shape != (dim, dim):
        raise ValueError(f"{name} must be a ({dim}, {dim}) matrix; got shape {tuple(c.shape)}.")
    if not bool(torch.isfinite(c).all()):
        raise ValueError(f"{name} must contain only finite values; got NaN or inf entries.")
    scale = max(float(c.abs().max()), 1e-300)
    if not torch.allclose(c, c.T, rtol=1e-10, atol=1e-12 * scale):
        raise ValueError(
            f"{name} must be symmetric positive semi-definite; got a non-symmetric matrix."
        )
    smallest = float(torch.linalg.eigvalsh(c).min())
    if smallest < -1e-10 * scale:
        raise ValueError(
            f"{name} must be symmetric positive semi-definite; got smallest eigenvalue {smallest:.3g}."
        )
    return c


def check_vector(value: object, length: int, name: str) -> torch.Tensor:
    v = as_float64(value, name)
    if v.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},); got shape {tuple(v.shape)}.")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} must contain only finite values; got NaN or inf entries.")
    return v


def gaussian_sketch(
    features: FourierFeatures,
    mean: torch.Tensor | np.ndarray | None = None,
    cov: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Exact sketch (expected features) of the Gaussian ``N(mean, cov)``, in sketch coordinates.

    With the characteristic function ``E[exp(i omega . x)] = exp(i omega . mu - omega^T Sigma omega/2)``
    and the dither ``xi``, frequency ``j`` contributes::

        E[cos(omega_j . x + xi_j)] = exp(-omega_j^T Sigma omega_j / 2) cos(omega_j . mu + xi_j)

    and the same with ``sin``; the result is stacked ``[cos; sin] / sqrt(m)`` like the features.
    For quantized features it is ``E[sign(cos(t))]`` (and ``sin``) for the normal ``t = omega_j . x +
    xi_j``, exactly: what sketching infinitely many draws would give.

    Args:
        features: the feature map of the sketch.
        mean: (D,) mean ``mu``; zeros by default.
        cov: (D, D) symmetric positive semi-definite covariance ``Sigma``; identity by default.

    Returns:
        (2m,) float64 tensor on the device of ``features``.

    Raises:
        TypeError, ValueError: wrong shapes, non-finite values, a covariance that is not PSD.

    Example:
        >>> from distmatch.sketch import FourierFeatures
        >>> features = FourierFeatures(2, 1000)
        >>> z = gaussian_sketch(features, mean=torch.zeros(2), cov=0.1 * torch.eye(2))

    Reference:
        Keriven et al. 2018, eq. (16); pycle ``fourierSketchOfGaussian``.
    """
    dim = _feature_dim(features)
    mu = torch.zeros(dim, dtype=torch.float64) if mean is None else check_vector(mean, dim, "mean")
    covs = None if cov is None else _check_psd(cov, dim, "cov")[None]
    return _mixture_features(features, torch.ones(1, dtype=torch.float64), mu[None], covs)


def gaussian_mixture_sketch(
    features: FourierFeatures,
    weights: torch.Tensor | np.ndarray,
    means: torch.Tensor | np.ndarray,
    covs: torch.Tensor | np.ndarray,
) -> torch.Tensor:
    """Exact sketch of the mixture ``sum_k w_k N(mean_k, cov_k)``: ``sum_k w_k gaussian_sketch(...)``.

    Args:
        features: the feature map of the sketch.
        weights: (K,) non-negative weights summing to 1 (within 1e-6).
        means: (K, D) means.
        covs: (K, D, D) symmetric positive semi-definite covariances.

    Returns:
        (2m,) float64 tensor on the device of ``features``.

    Raises:
        TypeError, ValueError: wrong shapes, weights that are not a distribution, a covariance that is
            not PSD.

    Example:
        >>> from distmatch.sketch import FourierFeatures
        >>> features = FourierFeatures(2, 1000)
        >>> covs = 0.1 * np.stack([np.eye(2), np.eye(2)])
        >>> z = gaussian_mixture_sketch(features, [0.5, 0.5], [[-1, 0], [1, 0]], covs)

    Reference:
        pycle ``fourierSketchOfGMM``.
    """
    dim = _feature_dim(features)
    w = as_float64(weights, "weights")
    if w.dim() != 1 or w.numel() < 1:
        raise ValueError(f"weights must have shape (K,) with K >= 1; got shape {tuple(w.shape)}.")
    k = w.numel()
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or abs(float(w.sum()) - 1) > 1e-6:
        raise ValueError(f"weights must be non-negative and sum to 1; got {w.tolist()}.")
    mu = as_float64(means, "means")
    if mu.shape != (k, dim):
        raise ValueError(f"means must have shape ({k}, {dim}); got shape {tuple(mu.shape)}.")
    if not bool(torch.isfinite(mu).all()):
        raise ValueError("means must contain only finite values; got NaN or inf entries.")
    c = as_float64(covs, "covs")
    if c.shape != (k, dim, dim):
        raise ValueError(f"covs must have shape ({k}, {dim}, {dim}); got shape {tuple(c.shape)}.")
    c = torch.stack([_check_psd(ck, dim, f"covs[{i}]") for i, ck in enumerate(c)])
    return _mixture_features(features, w, mu, c)


def _feature_dim(features: object) -> int:
    from .sketch import FourierFeatures

    if not isinstance(features, FourierFeatures):
        raise TypeError(f"features must be a FourierFeatures; got {type(features).__name__}.")
    return features.dim
