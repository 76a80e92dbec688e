"""The 2-D toy distributions of the CL-GN experiments, with exact log-densities.

``TOYS`` is the table of contents: each name maps to a :class:`ToySpec` holding a sampler and,
where it exists, the exact log-density. Schellekens & Jacques, "Compressive Learning of Generative
Networks" (ESANN 2020, arXiv:2002.05095, Section 4) train on 100,000 points of a spiral, a Gaussian
mixture with 5 modes and a circle; their notebook (schellekensv/CL-GN, ``ESANN-DEMO.ipynb``) draws
them with the frozen copy of pycle in that repository (``pycle/utils.py``). The definitions:

- ``spiral`` — pycle's ``generateSpiralDataset``, exactly: ``t ~ U[0, 1)``, radius
  ``r = 0.3 + 1.2·t + 0.01·ε``, ``ε ~ N(0, 1)``, angle ``θ = 2π·t``, ``x = r·(cos θ, sin θ)``.
  One turn, from radius 0.3 to 1.5; the noise is radial, which gives a closed-form density.
- ``circle`` — pycle's ``generateCirclesDataset`` with one circle (the notebook's ``K = 1``):
  ``θ ~ U[0, 2π)``, ``r = 1 + 0.08·ε``, ``x = r·(cos θ, sin θ)``. pycle draws the mean radius at
  random (``1 + 3·N(0, 1)``), which the l2-ball scaling then undoes except for the noise-to-radius
  ratio; we fix it at the law's mean, 1.
- ``gmm`` — 5 equally weighted isotropic Gaussians ``N(μ_k, 0.1²·I)`` with means on the unit circle,
  ``μ_k = (cos φ_k, sin φ_k)``, ``φ_k = π/2 + 2πk/5``. The notebook draws a new random mixture on
  every run (pycle's ``generatedataset_GMM`` with ``balanced=False``: random means, weights and
  diagonal covariances), which cannot be reproduced; this fixed, well-separated mixture stands in.

Samples are in the toys' own coordinates; the CL-GN scaling into the unit l2 ball (divide by the
largest norm + 1e-6) belongs to the sketching step, not here.

Example:
    >>> x = toy_dataset("spiral", 1000)
    >>> x.shape, toy_log_density("spiral", x).shape
    (torch.Size([1000, 2]), torch.Size([1000]))
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core import check_choice, check_float_dtype, check_samples, check_seed

__all__ = ["TOYS", "ToySpec", "toy_dataset", "toy_log_density", "toy_sample"]

_SPIRAL_START = 0.3  # radius at t = 0 (pycle: min_radius)
_SPIRAL_GROWTH = 1.2  # radius gained over the turn (pycle: delta_radius_per_spiral)
_SPIRAL_NOISE = 0.01  # standard deviation of the radius (pycle: radius_noise)
_CIRCLE_RADIUS = 1.0
_CIRCLE_NOISE = 0.08  # standard deviation of the radius (pycle's value)
_GMM_MODES = 5
_GMM_STD = 0.1  # per-coordinate standard deviation of each mode
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class ToySpec:
    """One registered toy distribution on the plane.

    Attributes:
        sample: ``sample(n, generator) -> (n, 2)`` float64 tensor on the CPU.
        log_density: ``log_density(x) -> (N,)`` exact log-density of float64 points ``(N, 2)``, or
            None where the distribution has none.
        extent: half-width of a square ``[-extent, extent]²`` that holds all but less than 1e-8 of
            the probability mass (for grids and plots).
        description: one line for listings.
    """

    sample: Callable[[int, torch.Generator | None], Tensor]
    log_density: Callable[[Tensor], Tensor] | None
    extent: float
    description: str


# ------------------------------------------------------------------------------------- helpers


def _log_normal(u: Tensor, std: float) -> Tensor:
    """``log φ_std(u)``, the log-density of ``N(0, std²)`` at ``u``."""
    return -0.5 * (u / std) ** 2 - math.log(std) - 0.5 * _LOG_2PI


def _polar(x: Tensor) -> tuple[Tensor, Tensor]:
    """Radius ``ρ = |x|`` and angle ``θ ∈ [0, 2π)`` of points ``(N, 2)``."""
    rho = torch.linalg.vector_norm(x, dim=1)  # (N,)
    theta = torch.remainder(torch.atan2(x[:, 1], x[:, 0]), 2 * math.pi)  # (N,)
    return rho, theta


def _on_rays(radius: Tensor, theta: Tensor) -> Tensor:
    """Points ``radius·(cos θ, sin θ)``, shape ``(N, 2)``."""
    return torch.stack((radius * torch.cos(theta), radius * torch.sin(theta)), dim=1)  # (N, 2)


def _radial_log_density(rho: Tensor, log_p_pos: Tensor, log_p_neg: Tensor) -> Tensor:
    """Cartesian log-density of ``x = r·(cos θ, sin θ)`` from the law of ``(θ, r)``.

    A point at polar ``(ρ, θ)`` comes from ``r = ρ`` at angle ``θ`` or from ``r = -ρ`` at angle
    ``θ - π``; ``log_p_pos`` and ``log_p_neg`` are the log-densities of ``(θ, r)`` there. The
    Jacobian of ``(θ, r) -> x`` is ``|r| = ρ``.
    """
    return torch.logaddexp(log_p_pos, log_p_neg) - torch.log(rho)  # (N,)


def _gmm_means() -> Tensor:
    angles = math.pi / 2 + 2 * math.pi * torch.arange(_GMM_MODES, dtype=torch.float64) / _GMM_MODES
    return torch.stack((torch.cos(angles), torch.sin(angles)), dim=1)  # (K, 2)


# ------------------------------------------------------------------------------------- the toys


def _spiral_sample(n: int, generator: torch.Generator | None) -> Tensor:
    t = torch.rand(n, generator=generator, dtype=torch.float64)  # (n,)
    eps = torch.randn(n, generator=generator, dtype=torch.float64)  # (n,)
    radius = _SPIRAL_START + _SPIRAL_GROWTH * t + _SPIRAL_NOISE * eps  # (n,)
    return _on_rays(radius, 2 * math.pi * t)  # (n, 2)


def _spiral_log_density(x: Tensor) -> Tensor:
    """``log p(x)`` of the spiral, exact.

    With ``μ(t) = 0.3 + 1.2·t`` and ``σ = 0.01``, the pair ``(t, r)`` has density
    ``1[0 <= t < 1]·φ_σ(r - μ(t))`` and ``x = r·(cos 2πt, sin 2πt)`` has Jacobian ``2π|r|``. For x at
    polar ``(ρ, θ)``, ``θ ∈ [0, 2π)``, the two preimages are ``(θ/2π, ρ)`` and
    ``(((θ - π) mod 2π)/2π, -ρ)``, so

        p(x) = [φ_σ(ρ - μ(θ/2π)) + φ_σ(-ρ - μ(((θ - π) mod 2π)/2π))] / (2πρ).

    The second term (a negative radius, probability Φ(-30)) is kept, so the formula is exact; the
    density jumps across the positive x-axis, where the turn starts and ends, and is +inf at the
    origin (log-density +inf; the singularity carries no mass).
    """
    rho, theta = _polar(x)  # (N,), (N,)
    t_pos = theta / (2 * math.pi)  # (N,)
    t_neg = torch.remainder(theta - math.pi, 2 * math.pi) / (2 * math.pi)  # (N,)
    log_pos = _log_normal(rho - (_SPIRAL_START + _SPIRAL_GROWTH * t_pos), _SPIRAL_NOISE)  # (N,)
    log_neg = _log_normal(-rho - (_SPIRAL_START + _SPIRAL_GROWTH * t_neg), _SPIRAL_NOISE)  # (N,)
    return _radial_log_density(rho, log_pos, log_neg) - _LOG_2PI  # (N,)


def _circle_sample(n: int, generator: torch.Generator | None) -> Tensor:
    theta = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)  # (n,)
    eps = torch.randn(n, generator=generator, dtype=torch.float64)  # (n,)
    return _on_rays(_CIRCLE_RADIUS + _CIRCLE_NOISE * eps, theta)  # (n, 2)


def _circle_log_density(x: Tensor) -> Tensor:
    """``log p(x)`` of the circle, exact.

    ``θ ~ U[0, 2π)`` and ``r ~ N(1, σ²)``, ``σ = 0.08``, independent; with ``ρ = |x|``,

        p(x) = [φ_σ(ρ - 1) + φ_σ(-ρ - 1)] / (2πρ),

    the second term being the (probability Φ(-12.5)) negative radii, reflected through the origin;
    the angle stays uniform under that reflection, so the formula is exact. +inf at the origin.
    """
    rho, _ = _polar(x)  # (N,)
    log_pos = _log_normal(rho - _CIRCLE_RADIUS, _CIRCLE_NOISE)  # (N,)
    log_neg = _log_normal(-rho - _CIRCLE_RADIUS, _CIRCLE_NOISE)  # (N,)
    return _radial_log_density(rho, log_pos, log_neg) - _LOG_2PI  # (N,)


def _gmm_sample(n: int, generator: torch.Generator | None) -> Tensor:
    modes = torch.randint(_GMM_MODES, (n,), generator=generator)  # (n,)
    eps = torch.randn(n, 2, generator=generator, dtype=torch.float64)  # (n, 2)
    return _gmm_means()[modes] + _GMM_STD * eps  # (n, 2)


def _gmm_log_density(x: Tensor) -> Tensor:
    """``log p(x)`` of the mixture, closed form.

    log p(x) = logsumexp_k [-|x - μ_k|² / (2s²)] - log K - log(2π s²),   K = 5, s = 0.1.
    """
    means = _gmm_means().to(x.device)  # (K, 2)
    sq_dist = ((x[:, None, :] - means) ** 2).sum(dim=2)  # (N, K)
    log_norm = math.log(_GMM_MODES) + _LOG_2PI + 2 * math.log(_GMM_STD)
    return torch.logsumexp(-sq_dist / (2 * _GMM_STD**2), dim=1) - log_norm  # (N,)


TOYS: dict[str, ToySpec] = {
    "spiral": ToySpec(
        _spiral_sample,
        _spiral_log_density,
        1.6,
        "one-turn spiral, radius 0.3 + 1.2 t + N(0, 0.01²), angle 2πt, t ~ U[0, 1) (pycle)",
    ),
    "gmm": ToySpec(
        _gmm_sample,
        _gmm_log_density,
        1.6,
        "5 equal-weight Gaussians N(μ_k, 0.1² I), means on the unit circle",
    ),
    "circle": ToySpec(
        _circle_sample,
        _circle_log_density,
        1.6,
        "circle, uniform angle, radius 1 + N(0, 0.08²) (pycle, one circle)",
    ),
}


# ---------------------------------------------------------------------------------- public API


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"n must be an int >= 1; got {type(n).__name__}.")
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"n must be an int >= 1; got {n}.")
    return n


def toy_sample(
    name: str,
    n: int = 100_000,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Draws ``n`` points of a toy distribution, in the toy's own coordinates.

    The points are drawn in float64 on the CPU and then cast, so a seeded generator gives the same
    points (up to rounding) whatever ``dtype``. The laws are given in the module docstring and in
    ``TOYS[name].description``.

    Args:
        name: a key of ``TOYS``: ``"spiral"``, ``"gmm"`` or ``"circle"``.
        n: number of points.
        generator: source of randomness (a CPU generator); None uses the global one.
        dtype: floating dtype of the result.

    Returns:
        ``(n, 2)`` tensor on the CPU.

    Raises:
        ValueError: unknown ``name``, or ``n < 1``.
        TypeError: ``n`` is not an int, or ``dtype`` is not a floating dtype.

    Example:
        >>> toy_sample("gmm", 5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 2])
    """
    spec = TOYS[check_choice(name, "name", TOYS)]
    n = _check_n(n)
    check_float_dtype(dtype)
    return spec.sample(n, generator).to(dtype)  # (n, 2)


def toy_log_density(name: str, x: Tensor) -> Tensor:
    """Exact log-density of a toy distribution at points ``x``, in the toy's own coordinates.

    ``spiral``: ``p(x) = [φ_σ(ρ - μ(θ/2π)) + φ_σ(-ρ - μ(((θ - π) mod 2π)/2π))] / (2πρ)`` with
    ``(ρ, θ)`` the polar coordinates of x (``θ ∈ [0, 2π)``), ``μ(t) = 0.3 + 1.2t``, ``σ = 0.01``.
    ``circle``: ``p(x) = [φ_σ(ρ - 1) + φ_σ(-ρ - 1)] / (2πρ)``, ``σ = 0.08``.
    ``gmm``: ``p(x) = (1/5) Σ_k N(x; μ_k, 0.1²·I)``.
    All three are exact (no quadrature); the two radial toys have log-density +inf at the origin.
    The computation is in float64 and the result is cast back to ``x.dtype``; it is differentiable
    in ``x`` away from the origin and the spiral's seam (the positive x-axis).

    Args:
        name: a key of ``TOYS``.
        x: ``(N, 2)`` floating tensor.

    Returns:
        ``(N,)`` tensor of log-densities, on ``x.device``.

    Raises:
        ValueError: unknown ``name``; a toy without a density; ``x`` not ``(N, 2)`` or not finite.
        TypeError: ``x`` is not a floating tensor.

    Example:
        >>> toy_log_density("gmm", torch.zeros(1, 2)).shape
        torch.Size([1])
    """
    spec = TOYS[check_choice(name, "name", TOYS)]
    if spec.log_density is None:
        with_density = ", ".join(repr(k) for k, s in TOYS.items() if s.log_density is not None)
        raise ValueError(
            f"name must be a toy with a log-density ({with_density}); got {name!r}, which has none."
        )
    check_samples(x, "x")
    if x.shape[1] != 2:
        raise ValueError(f"x must have shape (N, 2); got {tuple(x.shape)}.")
    return spec.log_density(x.to(torch.float64)).to(x.dtype)  # (N,)


def toy_dataset(name: str, n: int = 100_000, *, seed: int = 0) -> Tensor:
    """The fixed data set of a toy: ``n`` float32 points drawn with a generator seeded by ``seed``.

    The CL-GN experiments use 100,000 points. Equal ``(name, n, seed)`` give equal tensors; a
    different ``n`` gives a different set of points, not a prefix of the larger one.

    Args:
        name: a key of ``TOYS``.
        n: number of points.
        seed: seed of the ``torch.Generator`` used.

    Returns:
        ``(n, 2)`` float32 tensor on the CPU.

    Raises:
        ValueError: unknown ``name``, or ``n < 1``.
        TypeError: ``n`` or ``seed`` is not an int.

    Example:
        >>> torch.equal(toy_dataset("circle", 10), toy_dataset("circle", 10))
        True
    """
    generator = torch.Generator().manual_seed(check_seed(seed, bits=63, signed=True))
    return toy_sample(name, n, generator=generator)  # (n, 2)
