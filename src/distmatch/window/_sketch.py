"""The moving sketch of past codes (part of :mod:`distmatch.window`)."""

from __future__ import annotations

import torch
from torch import nn

from .._core import check_positive_int
from ..sketch import SKETCH_FREQUENCIES, default_bandwidth, mean_features, prior_sketch
from ._window import check_window_sizes


class MovingSketch(nn.Module):
    """The moving sketch: an EMA of past codes' features standing for a window of ``n - k`` codes.

    Same interface as :class:`MovingWindow`, but ``join`` returns the joined
    *sketch* (2m,) instead of the joined codes, and the state is O(m) whatever ``n``.

    Args:
        n: codes the distance stands for, >= 2.
        k: fresh codes per step, 1 <= k <= n.
        dim: latent dimension D.
        m: number of frequencies.
        bandwidth: kernel bandwidth (default ``sqrt(D)``).
        reset_each_epoch: whether training calls :meth:`reset` at the start of every epoch.
        device: device of the frequencies and the sketch.
        dtype: dtype of the frequencies and the sketch.
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
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        check_window_sizes(n, k)
        check_positive_int(dim, "dim")
        self.n, self.k, self.dim, self.m = n, k, dim, m
        self.bandwidth = default_bandwidth(dim) if bandwidth is None else float(bandwidth)
        self.reset_each_epoch = bool(reset_each_epoch)
        self.refresh = "none"
        omega, prior = prior_sketch(dim, m, self.bandwidth, device=device or "cpu", dtype=dtype)
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

    def joined_shape(self, b: int) -> tuple[int]:
        """``(2m,)``: the shape of :meth:`join`, a sketch whatever ``b``."""
        return (2 * self.m,)

    def unbiased_weight(self, b: int) -> float:
        """``n / b``: the joined sketch weighs each fresh code ``1/n``, as a window of ``n`` does.

        So ``n / b`` makes the distance gradient unbiased as :meth:`MovingWindow.unbiased_weight`
        does; the identity is exact when the moving sketch equals the mean features of the other
        ``n - b`` codes (then the joined sketch is the mean features of all ``n``).
        """
        if not 1 <= b <= self.k:
            raise ValueError(f"b must be between 1 and k={self.k} fresh codes; got {b}.")
        return self.n / b

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

    def stage(self) -> None:
        """Nothing to prepare: the moving sketch has no write position."""

    def push_at(self, z: torch.Tensor) -> None:
        """:meth:`push` (the moving sketch has no write position)."""
        self.push(z)

    def advance(self, b: int) -> None:
        """Nothing to move: :meth:`push_at` did all."""

    def _check(self, z: torch.Tensor) -> None:
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"codes must be a (B, {self.dim}) tensor; got {got}.")
        if not 1 <= z.shape[0] <= self.k:
            raise ValueError(f"codes must have between 1 and k={self.k} rows; got {z.shape[0]}.")
