"""A window of codes that keeps the sum of their features: skwae's window (part of
:mod:`distmatch.window`)."""

from __future__ import annotations

import torch

from .._core import check_positive_int
from ..sketch import SKETCH_FREQUENCIES, default_bandwidth, mean_features, prior_sketch
from ._window import MovingWindow


class FeatureWindow(MovingWindow):
    """:class:`MovingWindow` for skwae: ``join`` returns the joined codes' mean features.

    skwae's distance sees the codes only through their mean random Fourier features, so the
    window's part of the joined sketch changes only where the window does. It is kept as a sum
    ``S = sum_{w in window} Phi(w)`` (float64), updated on every push, and::

        join(z) = (sum_{i<B} Phi(z_i) + S) / (B + filled)      (2m,)

    the mean features of :meth:`MovingWindow.join` ``(z)`` (equal up to round-off), at the cost of
    the ``B`` fresh codes' features instead of ``B + filled``. ``S`` is computed again from the
    stored codes on :meth:`reset`, :meth:`replace` and whenever the write position wraps around,
    so round-off cannot build up. The state dict holds ``S`` beside the codes, so a resumed run
    goes on exactly; a :class:`MovingWindow`'s state dict loads too (``S`` is then counted).

    Args:
        n, k, dim, init, reset_each_epoch, refresh, generator, dtype, device: as
            :class:`MovingWindow`.
        m: skwae's number of frequencies.
        bandwidth: skwae's kernel bandwidth (default ``sqrt(D)``).

    Example:
        >>> window = FeatureWindow(n=4, k=1, dim=2, m=8)
        >>> window.join(torch.zeros(1, 2, requires_grad=True)).shape
        torch.Size([16])
    """

    omega: torch.Tensor
    feature_sum: torch.Tensor

    def __init__(
        self,
        n: int = 64,
        k: int = 1,
        dim: int = 20,
        *,
        m: int = SKETCH_FREQUENCIES,
        bandwidth: float | None = None,
        init: str = "prior",
        reset_each_epoch: bool = True,
        refresh: str = "none",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        check_positive_int(m, "m")
        self.m = m
        self.bandwidth = default_bandwidth(dim) if bandwidth is None else float(bandwidth)
        # MovingWindow's own reset() runs before the buffers below exist (_recount waits)
        super().__init__(
            n,
            k,
            dim,
            init=init,
            reset_each_epoch=reset_each_epoch,
            refresh=refresh,
            generator=generator,
            dtype=dtype,
            device=device,
        )
        omega, _ = prior_sketch(dim, m, self.bandwidth, device=self.codes.device)
        self.register_buffer("omega", omega.clone(), persistent=False)  # (D, m) skwae's
        # saved with the window: a resumed run goes on with the same round-off as one that never
        # stopped (a window saved without it, by MovingWindow, is counted on loading)
        self.register_buffer(
            "feature_sum", torch.zeros(2 * m, dtype=torch.float64, device=omega.device)
        )
        self._signs: dict[int, torch.Tensor] = {}  # kept: a CUDA graph may hold them
        self._count_on_load = False
        self.register_load_state_dict_post_hook(FeatureWindow._counted_if_unsaved)
        self._recount()
        self._signs_of(k)  # made here, not first inside a compiled step (a recompilation)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, m={self.m}, bandwidth={self.bandwidth:.4g}"

    def joined_shape(self, b: int) -> tuple[int]:
        """``(2m,)``: the shape of :meth:`join`, a sketch whatever ``b``."""
        return (2 * self.m,)

    def join(self, z: torch.Tensor) -> torch.Tensor:
        """``(sum_i Phi(z_i) + S) / (B + filled)``: (2m,), with gradient through ``z`` only."""
        self._check_codes(z)
        b = z.shape[0]
        fresh = mean_features(z, self.omega.to(z.dtype))  # (2m,)
        stored = self.feature_sum.to(z.dtype)  # (2m,)
        return (fresh * b + stored) / (b + self._filled)

    @torch.no_grad()
    def reset(self, generator: torch.Generator | None = None) -> None:
        super().reset(generator)
        self._recount()

    @torch.no_grad()
    def replace(self, rows: torch.Tensor, codes: torch.Tensor) -> None:
        super().replace(rows, codes)
        self._recount()

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> None:
        """Stores ``z.detach()`` as :meth:`MovingWindow.push` does and moves ``S`` with it: the
        features of the codes that leave out, those of the codes that come in. ``S`` is counted
        afresh whenever the write position wraps around (a point that the saved state fixes)."""
        self._check_codes(z)
        cap, b = self.capacity, z.shape[0]
        if cap == 0:
            return
        if self._filled < cap or b >= cap:  # filling, or all rows replaced: count afresh
            super().push(z)
            self._recount()
            return
        start = self._pointer
        head = min(b, cap - start)  # the oldest rows, wrapping as push does
        leaving = [self.codes.narrow(0, start, head)]
        if head < b:
            leaving.append(self.codes.narrow(0, 0, b - head))
        change = self._change(z, torch.cat(leaving))  # before push overwrites them
        super().push(z)
        self.feature_sum.add_(change)
        if start + b >= cap:
            self._recount()

    @torch.no_grad()
    def push_at(self, z: torch.Tensor) -> None:
        """:meth:`MovingWindow.push_at`, with ``S`` moved as :meth:`push` moves it."""
        if self.capacity == 0:
            return
        leaving = self.codes.index_select(0, self._rows_at(z.shape[0]))  # (B, D)
        self.feature_sum.add_(self._change(z, leaving))
        super().push_at(z)

    def advance(self, b: int) -> None:
        start = self._pointer
        super().advance(b)
        if self.capacity and start + b >= self.capacity:  # as push: count afresh on a wrap
            self._recount()

    def _change(self, entering: torch.Tensor, leaving: torch.Tensor) -> torch.Tensor:
        """``sum Phi(entering) - sum Phi(leaving)``: (2m,), from one product for both."""
        b = entering.shape[0]
        moving = torch.cat([entering.detach().to(self.codes.dtype), leaving])  # (2b, D)
        phases = moving @ self.omega.to(self.codes.dtype)  # (2b, m)
        signs = self._signs_of(b)  # (2b,): +1 for the codes that come in, -1 for those that leave
        change = torch.cat([signs @ phases.cos(), signs @ phases.sin()])  # (2m,)
        return change * self.m**-0.5

    def _signs_of(self, b: int) -> torch.Tensor:
        cached = self._signs.get(b)
        if cached is None or cached.device != self.codes.device or cached.dtype != self.codes.dtype:
            signs = torch.ones(2 * b, dtype=self.codes.dtype, device=self.codes.device)
            self._signs[b] = signs.index_fill_(0, torch.arange(b, 2 * b, device=signs.device), -1)
        return self._signs[b]

    def _sum_of_features(self, codes: torch.Tensor) -> torch.Tensor:
        """``sum_i Phi(codes_i)`` in float64: (2m,)."""
        omega = self.omega.to(codes.dtype)
        return mean_features(codes, omega).double() * codes.shape[0]

    def fill_up(self) -> None:
        """:meth:`MovingWindow.fill_up`, with the feature sum of every stored code."""
        super().fill_up()
        self._recount()

    def _recount(self) -> None:
        if not hasattr(self, "feature_sum"):  # called by MovingWindow.__init__'s reset
            return
        stored = self.codes[: self._filled]  # (filled, D); order does not matter to a sum
        if len(stored):
            self.feature_sum.copy_(self._sum_of_features(stored))
        else:
            self.feature_sum.zero_()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, *args):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, *args)
        if prefix + "feature_sum" in missing:  # a MovingWindow's state: count it from the codes
            missing.remove(prefix + "feature_sum")
            self._count_on_load = True

    @staticmethod
    def _counted_if_unsaved(module: FeatureWindow, incompatible_keys: object) -> None:
        if module._count_on_load:
            module._count_on_load = False
            module._recount()
