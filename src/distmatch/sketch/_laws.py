"""Frequency laws of random Fourier features: how the frequencies ``Omega`` are drawn.

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
- ``multiscale_gaussian``: ``R = chi_D / s_j`` with the scales ``s_j`` of :data:`SCALES` taken in
  turn (m/5 frequencies each), so ``k(x, y) = mean_s exp(-|x - y|^2 / (2 (s bandwidth)^2))``: a
  mixture of Gaussian kernels, wide ones that pull far samples in and narrow ones that see detail.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

__all__ = [
    "CLGN_BANDWIDTH",
    "CLGN_FREQUENCIES",
    "LAWS",
    "SCALES",
    "as_float64",
    "check_vector",
    "draw_frequencies",
    "generator_device",
    "inverse_sqrt_cov",
]

# The CL-GN recipe (Schellekens & Jacques 2020, Sec. 4): Sigma = 1e-3 I on data in the unit ball,
# so bandwidth = sqrt(1e-3), and m = 10,000 frequencies of the folded-Gaussian law.
CLGN_BANDWIDTH = math.sqrt(1e-3)
CLGN_FREQUENCIES = 10_000

# Factors on the bandwidth of the multi-scale Gaussian law and of the exact MMD's multi-scale kernel.
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)

RadiusSampler = Callable[[int, int, "torch.Generator | None"], torch.Tensor]

# Inverse-CDF grid of the adapted-radius law. pycle stops at R = 5, which drops a mass of 8.6e-6 of
# the law (about 9 frequencies in a million); at R = 10 the dropped mass is 8e-22, so the sampled law
# is the stated density up to the grid's interpolation error, for the same cost.
_AR_GRID_MAX = 10.0
_AR_GRID_POINTS = 20_001


def generator_device(generator: torch.Generator | None) -> torch.device:
    """Where ``generator`` draws (the CPU for ``None``)."""
    return torch.device("cpu") if generator is None else generator.device


def _radius_gaussian(m: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """``R ~ chi_dim``: the norm of a standard normal vector, so that ``R u ~ N(0, I)``."""
    g = torch.randn(
        m, dim, generator=generator, dtype=torch.float64, device=generator_device(generator)
    )
    return torch.linalg.vector_norm(g, dim=1).cpu()  # (m,)


def _radius_folded_gaussian(m: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """``R = |N(0, 1)|`` whatever the dimension."""
    g = torch.randn(m, generator=generator, dtype=torch.float64, device=generator_device(generator))
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
    u = torch.rand(m, generator=generator, dtype=torch.float64, device=generator_device(generator))
    return torch.from_numpy(np.interp(u.cpu().numpy(), cdf, r))  # (m,)


def _radius_multiscale(m: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """``R = chi_dim / s_j``, the scales of :data:`SCALES` in turn."""
    scales = torch.tensor(SCALES, dtype=torch.float64).repeat(-(-m // len(SCALES)))[:m]  # (m,)
    return _radius_gaussian(m, dim, generator) / scales  # (m,)


LAWS: dict[str, RadiusSampler] = {
    "gaussian": _radius_gaussian,
    "folded_gaussian": _radius_folded_gaussian,
    "adapted_radius": _radius_adapted,
    "multiscale_gaussian": _radius_multiscale,
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
    u = torch.randn(
        dim, m, generator=generator, dtype=torch.float64, device=generator_device(generator)
    )
    u = u.cpu()  # (D, m)
    u /= torch.linalg.vector_norm(u, dim=0)
    if cov_inv_sqrt is not None:
        u = cov_inv_sqrt @ u  # (D, m)
    return u * (radius / bandwidth)  # (D, m)


def check_vector(value: object, length: int, name: str) -> torch.Tensor:
    """``value`` as a finite float64 vector of ``length`` entries."""
    v = as_float64(value, name)
    if v.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},); got shape {tuple(v.shape)}.")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} must contain only finite values; got NaN or inf entries.")
    return v
