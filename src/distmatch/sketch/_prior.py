"""The sketch of the prior N(0, I) for latent matching (``skwae``): its frequencies and exact sketch.

Part of :mod:`distmatch.sketch`, which re-exports the public names; the moving sketch that uses
them is :class:`distmatch.window.MovingSketch`.

**Sketch prior distance.** With random Fourier features ``Phi(z) = [cos(Omega^T z); sin(Omega^T z)]
/ sqrt(m)`` whose frequencies are Gaussian at several scales, ``omega_j ~ N(0, I / (b s_j)^2)`` with
``s_j`` cycling through ``PRIOR_SCALES = (1, 2, 4, 8)``, the prior N(0, I) has the exact sketch (its
characteristic function, :func:`distmatch.sketch.gaussian_sketch`)::

    p_j = exp(-|omega_j|^2 / 2) [1; 0] / sqrt(m)

and the distance of a set of codes ``z_1..z_n`` to the prior is the squared sketch distance::

    d(z) = | 1/n sum_i Phi(z_i) - p |^2  ~  MMD^2,  k(x, y) = mean_s exp(-|x - y|^2 / (2 (b s)^2))

No prior sample is drawn and the cost is O(m n D). The base bandwidth is ``b = sqrt(D)``, at which
a Gaussian kernel neither vanishes nor flattens on N(0, I_D) codes (E k = (1 + 2/D)^(-D/2) ~ 1/e);
the wider scales keep a gradient on codes far from the prior, where one Gaussian kernel has none
(the role of WAE's several IMQ scales): with one scale, 64 codes started at N(2, 9 I) and moved by
gradient descent stall with a standard deviation of 3.8; with these four they reach 1.3.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from .._core import check_float_dtype, check_positive, check_positive_int

__all__ = [
    "PRIOR_SCALES",
    "SKETCH_FREQUENCIES",
    "default_bandwidth",
    "prior_sketch",
    "sketch_prior_distance",
]

SKETCH_FREQUENCIES = 1000  # m of the skwae distance
PRIOR_SCALES = (1.0, 2.0, 4.0, 8.0)  # bandwidth multiples, cycled over the frequencies
FREQUENCY_SEED = 7919  # the skwae frequencies are a fixed draw, the same in every run


@lru_cache(maxsize=16)
def _frequencies(dim: int, m: int, bandwidth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(D, m) frequencies ``omega_j ~ N(0, I / (b s_j)^2)`` and the prior's exact (2m,) sketch."""
    gen = torch.Generator().manual_seed(FREQUENCY_SEED + 1009 * dim + m)
    widths = (
        bandwidth
        * torch.tensor(PRIOR_SCALES, dtype=torch.float64)[torch.arange(m) % len(PRIOR_SCALES)]
    )
    omega = torch.randn(dim, m, generator=gen, dtype=torch.float64) / widths  # (D, m)
    prior = torch.cat(
        [torch.exp(-0.5 * omega.square().sum(0)), torch.zeros(m, dtype=torch.float64)]
    )
    return omega, prior / math.sqrt(m)


def default_bandwidth(dim: int) -> float:
    """``sqrt(D)``: see the module docstring."""
    return math.sqrt(dim)


def prior_sketch(
    dim: int,
    m: int = SKETCH_FREQUENCIES,
    bandwidth: float | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Omega, p)``: the skwae frequencies (D, m) and the exact sketch (2m,) of N(0, I_D).

    Cached per (D, m, bandwidth, device, dtype): the training objective asks every step. The
    tensors are shared: read them, do not modify them in place.
    """
    check_positive_int(dim, "dim")
    check_positive_int(m, "m")
    b = default_bandwidth(dim) if bandwidth is None else check_positive(bandwidth, "bandwidth")
    check_float_dtype(dtype)
    return _converted(dim, m, b, str(torch.device(device)), dtype)


@lru_cache(maxsize=16)
def _converted(
    dim: int, m: int, bandwidth: float, device: str, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    omega, prior = _frequencies(dim, m, bandwidth)
    omega, prior = omega.to(device, dtype), prior.to(device, dtype)
    if not bool(torch.isfinite(omega).all()):  # ~ 1 / bandwidth, in the dtype asked for
        raise ValueError(
            f"bandwidth must be large enough for finite {dtype} frequencies; got {bandwidth:g}."
        )
    return omega, prior


def sketch_prior_distance(joined: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """``|joined - p|^2`` between a (2m,) sketch and the prior's."""
    if joined.shape != prior.shape:  # broadcasting would sum a multiple of the distance
        raise ValueError(
            f"joined must be a sketch of the prior's shape {tuple(prior.shape)}; got "
            f"{tuple(joined.shape)}."
        )
    return (joined - prior).square().sum()
