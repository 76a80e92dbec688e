"""Sketch-based latent matching: the ``skwae`` distance to the prior, and the moving sketch.

**Sketch prior distance.** With random Fourier features ``Phi(z) = [cos(Omega^T z); sin(Omega^T z)]
/ sqrt(m)`` whose frequencies are Gaussian at several scales, ``omega_j ~ N(0, I / (b s_j)^2)`` with
``s_j`` cycling through ``SCALES = (1, 2, 4, 8)``, the prior N(0, I) has the exact sketch (its
characteristic function, :func:`distmatch.sketch.gaussian_sketch`)::

    p_j = exp(-|omega_j|^2 / 2) [1; 0] / sqrt(m)

and the distance of a set of codes ``z_1..z_n`` to the prior is the squared sketch distance::

    d(z) = | 1/n sum_i Phi(z_i) - p |^2  ~  MMD^2,  k(x, y) = mean_s exp(-|x - y|^2 / (2 (b s)^2))

No prior sample is drawn and the cost is O(m n D). The base bandwidth is ``b = sqrt(D)``, at which
a Gaussian kernel neither vanishes nor flattens on N(0, I_D) codes (E k = (1 + 2/D)^(-D/2) ~ 1/e);
the wider scales keep a gradient on codes far from the prior, where one Gaussian kernel has none
(the role of WAE's several IMQ scales): with one scale, 64 codes started at N(2, 9 I) and moved by
gradient descent stall with a standard deviation of 3.8; with these four they reach 1.3.

**Moving sketch.** Instead of a window of ``n - k`` codes, keep an exponential moving average ``s``
of the mean features of past fresh codes (detached). The joined sketch of a step with ``B`` fresh
codes weighs them as a window of ``n`` would::

    joined = (B / n) mean_i Phi(z_i) + (1 - B / n) s,      s <- (1 - beta) s + beta mean_i Phi(z_i)

with ``beta = min(1, 2B / n)``. For independent codes of one law this EMA has the expectation of the
windowed mean (the law's sketch) and, at ``beta = 2k / n``, its variance: ``sigma^2 / k * beta /
(2 - beta) = sigma^2 / (n - k)``, the variance of a window of ``n - k`` codes. Memory is O(m),
whatever ``n``; ``s`` starts at (and is reset to) the prior's exact sketch.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn

from .distances._checks import check_positive_int

__all__ = [
    "SCALES",
    "SKETCH_FREQUENCIES",
    "MovingSketch",
    "mean_features",
    "prior_sketch",
    "sketch_prior_distance",
]

SKETCH_FREQUENCIES = 1000  # m of the skwae distance
SCALES = (1.0, 2.0, 4.0, 8.0)  # bandwidth multiples, cycled over the frequencies
FREQUENCY_SEED = 7919  # the skwae frequencies are a fixed draw, the same in every run


@lru_cache(maxsize=16)
def _frequencies(dim: int, m: int, bandwidth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(D, m) frequencies ``omega_j ~ N(0, I / (b s_j)^2)`` and the prior's exact (2m,) sketch."""
    gen = torch.Generator().manual_seed(FREQUENCY_SEED + 1009 * dim + m)
    widths = bandwidth * torch.tensor(SCALES, dtype=torch.float64)[torch.arange(m) % len(SCALES)]
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
    b = default_bandwidth(dim) if bandwidth is None else float(bandwidth)
    return _converted(dim, m, b, str(torch.device(device)), dtype)


@lru_cache(maxsize=16)
def _converted(
    dim: int, m: int, bandwidth: float, device: str, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    omega, prior = _frequencies(dim, m, bandwidth)
    return omega.to(device, dtype), prior.to(device, dtype)


def mean_features(z: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """``1/B sum_i Phi(z_i)``: (2m,) mean features of the rows of ``z`` (B, D)."""
    t = z @ omega  # (B, m)
    return torch.cat([t.cos().mean(0), t.sin().mean(0)]) / math.sqrt(omega.shape[1])


def sketch_prior_distance(joined: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """``|joined - p|^2`` between a (2m,) sketch and the prior's."""
    return (joined - prior).square().sum()


class MovingSketch(nn.Module):
    """The moving sketch: an EMA of past codes' features standing for a window of ``n - k`` codes.

    Same interface as :class:`distmatch.window.MovingWindow`, but ``join`` returns the joined
    *sketch* (2m,) instead of the joined codes, and the state is O(m) whatever ``n``.

    Args:
        n: codes the distance stands for, >= 2.
        k: fresh codes per step, 1 <= k <= n.
        dim: latent dimension D.
        m: number of frequencies.
        bandwidth: kernel bandwidth (default ``sqrt(D)``).
        reset_each_epoch: whether training calls :meth:`reset` at the start of every epoch.
    """

    sketch: torch.Tensor

    def __init__(
        self,
        n: int = 64,
        k: int = 1,
        dim: int = 20,
        *,
        m: int = SKETCH_FREQUENCIES,
        bandwidth: float | None = None,
        reset_each_epoch: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(n, "n")
        check_positive_int(k, "k")
        if n < 2 or k > n:
            raise ValueError(f"n must be >= 2 and k between 1 and n; got n={n}, k={k}.")
        self.n, self.k, self.dim, self.m = n, k, dim, m
        self.bandwidth = default_bandwidth(dim) if bandwidth is None else float(bandwidth)
        self.reset_each_epoch = bool(reset_each_epoch)
        self.refresh = "none"
        omega, prior = prior_sketch(dim, m, self.bandwidth, device=device or "cpu")
        self.register_buffer("omega", omega, persistent=False)
        self.register_buffer("prior", prior, persistent=False)
        self.register_buffer("sketch", prior.clone())

    def extra_repr(self) -> str:
        return f"n={self.n}, k={self.k}, dim={self.dim}, m={self.m}, bandwidth={self.bandwidth:.4g}"

    def decay(self, b: int) -> float:
        """``beta = min(1, 2B / n)`` for a batch of ``B`` codes."""
        return min(1.0, 2.0 * b / self.n)

    @torch.no_grad()
    def reset(self, generator: torch.Generator | None = None) -> None:
        """Sets the moving sketch to the prior's exact sketch (``generator`` is unused)."""
        del generator
        self.sketch.copy_(self.prior)

    def join(self, z: torch.Tensor) -> torch.Tensor:
        """``(B/n) mean Phi(z) + (1 - B/n) s``: (2m,), with gradient through ``z`` only."""
        self._check(z)
        weight = z.shape[0] / self.n
        fresh = mean_features(z, self.omega.to(z.dtype))
        return fresh * weight + self.sketch.to(z.dtype) * (1.0 - weight)

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> None:
        """``s <- (1 - beta) s + beta mean Phi(z)`` with the detached codes."""
        self._check(z)
        fresh = mean_features(z.detach().to(self.omega.dtype), self.omega)
        self.sketch.lerp_(fresh, self.decay(z.shape[0]))

    def _check(self, z: torch.Tensor) -> None:
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"codes must be a (B, {self.dim}) tensor; got {got}.")
        if not 1 <= z.shape[0] <= self.k:
            raise ValueError(f"codes must have between 1 and k={self.k} rows; got {z.shape[0]}.")
