"""The FIFO window of detached latent codes (part of :mod:`distmatch.window`)."""

from __future__ import annotations

import torch
from torch import nn

from .._core import check_choice, check_float_dtype, check_generator, check_positive_int

INITS = ("prior", "zeros", "fill")
REFRESHES = ("none", "reencode")


def check_window_sizes(n: object, k: object) -> tuple[int, int]:
    """``(n, k)`` if ``n >= 2`` (a distance between samples needs two codes) and ``1 <= k <= n``.

    Raises:
        TypeError, ValueError: e.g. "k must be between 1 and n=64; got k=65."
    """
    check_positive_int(n, "n")
    if n < 2:
        raise ValueError(f"n must be >= 2 (a distance between samples needs two codes); got n={n}.")
    check_positive_int(k, "k")
    if k > n:
        raise ValueError(f"k must be between 1 and n={n}; got k={k}.")
    return n, k


class MovingWindow(nn.Module):
    """Ring buffer of the ``n - k`` most recent latent codes, oldest first out.

    ``join(z)`` returns ``[z ; window]``, ``(k + n - k, D) = (n, D)`` once the window is full; only
    ``z`` carries gradient. ``push(z)`` stores ``z.detach()`` over the oldest entries, wrapping
    modulo the capacity ``n - k`` (also when ``k > n - k``: then only the newest ``n - k`` rows of
    ``z`` are kept). ``k == n`` leaves no room: the window is empty and training is the classical
    mini-batch kind.

    The contents, write pointer and fill count are buffers, so the window is saved and restored with
    the state dict and moves with ``.to(device)``; :attr:`position` reads the two counters.

    Args:
        n: codes the distance term sees, >= 2 (the unbiased MMD needs two points).
        k: fresh codes per step (the batch size), 1 <= k <= n.
        dim: latent dimension D.
        init: how :meth:`reset` fills the window: ``"prior"`` (N(0, I) draws, the reference's),
            ``"zeros"``, or ``"fill"`` (start empty and fill from the first batches; until then
            ``join`` returns fewer than ``n`` rows).
        reset_each_epoch: whether training calls :meth:`reset` at the start of every epoch (the
            reference's behaviour) or only once.
        refresh: what is pushed after the optimizer step: ``"none"`` for the pre-update codes (the
            reference code's), ``"reencode"`` for the batch encoded again by the updated encoder
            (as the paper's text describes). The training loop reads this attribute.
        generator: randomness for the ``"prior"`` initialisation.
        dtype: dtype of the stored codes.
        device: device of the stored codes.

    Example:
        >>> window = MovingWindow(n=4, k=1, dim=2, init="zeros")
        >>> z = torch.ones(1, 2, requires_grad=True)
        >>> window.join(z).shape
        torch.Size([4, 2])
        >>> window.push(z)
    """

    codes: torch.Tensor
    pointer: torch.Tensor
    filled: torch.Tensor
    slot: torch.Tensor

    def __init__(
        self,
        n: int = 64,
        k: int = 1,
        dim: int = 20,
        *,
        init: str = "prior",
        reset_each_epoch: bool = True,
        refresh: str = "none",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        check_window_sizes(n, k)
        check_positive_int(dim, "dim")
        self.n, self.k, self.dim = n, k, dim
        self.init = check_choice(init, "init", INITS)
        self.refresh = check_choice(refresh, "refresh", REFRESHES)
        self.reset_each_epoch = bool(reset_each_epoch)
        check_float_dtype(dtype)
        check_generator(generator)
        self.register_buffer("codes", torch.zeros(n - k, dim, dtype=dtype, device=device))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long, device=device))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long, device=device))
        # the write position on the device, for push_at (a graph reads and moves it there)
        slot = torch.zeros((), dtype=torch.long, device=device)
        self.register_buffer("slot", slot, persistent=False)
        self._slot_pointer: int | None = None  # the pointer that ``slot`` holds (None: unknown)
        # The counters live in Python: a step neither waits on a device read nor writes the two
        # buffers, which are refreshed whenever the state dict is taken.
        self._pointer = 0
        self._filled = 0
        self.register_load_state_dict_pre_hook(MovingWindow._check_counters)
        self.register_load_state_dict_post_hook(MovingWindow._sync_counters)
        self.register_state_dict_pre_hook(MovingWindow._store_counters)
        self.reset(generator)

    @staticmethod
    def _store_counters(module: MovingWindow, prefix: str, keep_vars: bool) -> None:
        module.pointer.fill_(module._pointer)
        module.filled.fill_(module._filled)

    @staticmethod
    def _check_counters(module: MovingWindow, state: dict, prefix: str, *args: object) -> None:
        """Refuses counters out of range before anything is loaded (the window stays as it was)."""
        if prefix + "pointer" not in state or prefix + "filled" not in state:
            return  # load_state_dict reports the missing keys itself
        pointer, filled = int(state[prefix + "pointer"]), int(state[prefix + "filled"])
        cap = module.capacity
        if not (0 <= filled <= cap and 0 <= pointer < max(cap, 1)):
            raise ValueError(
                f"a window state must have 0 <= filled <= {cap} and 0 <= pointer < {max(cap, 1)} "
                f"(n - k = {cap} stored codes); got filled={filled}, pointer={pointer}."
            )

    @staticmethod
    def _sync_counters(module: MovingWindow, incompatible_keys: object) -> None:
        module._pointer, module._filled = int(module.pointer), int(module.filled)

    @property
    def capacity(self) -> int:
        """``n - k``, the number of stored codes when full."""
        return self.n - self.k

    def extra_repr(self) -> str:
        return (
            f"n={self.n}, k={self.k}, dim={self.dim}, init={self.init!r}, "
            f"reset_each_epoch={self.reset_each_epoch}, refresh={self.refresh!r}"
        )

    @torch.no_grad()
    def reset(self, generator: torch.Generator | None = None) -> None:
        """Refills the window per ``init`` and moves the write pointer to 0.

        Args:
            generator: randomness for the ``"prior"`` draws (on CPU or on the window's device).
        """
        if self.init == "prior":
            draw_device = generator.device if generator is not None else self.codes.device
            draws = torch.randn(
                self.codes.shape, generator=generator, dtype=self.codes.dtype, device=draw_device
            )
            self.codes.copy_(draws)
        else:
            self.codes.zero_()
        self._set_counters(0, 0 if self.init == "fill" else self.capacity)

    def fill_up(self) -> None:
        """Marks the window full as it is (the codes not yet written are those of :meth:`reset`):
        a stand-in of the full window's shapes, e.g. to time the steps of a run before its window
        has filled."""
        self._set_counters(0, self.capacity)

    def _set_counters(self, pointer: int, filled: int) -> None:
        self._pointer, self._filled = pointer, filled
        self.pointer.fill_(pointer)
        self.filled.fill_(filled)

    @property
    def position(self) -> tuple[int, int]:
        """``(pointer, filled)``: the next row written and the number of stored codes."""
        return self._pointer, self._filled

    def contents(self) -> torch.Tensor:
        """The stored codes, oldest first: ``(filled, D)``, no gradient."""
        if self._filled < self.capacity:
            return self.codes[: self._filled]
        return torch.roll(self.codes, -self._pointer, dims=0)

    def joined_shape(self, b: int) -> tuple[int, int]:
        """``(b + filled, D)``: the shape of :meth:`join` of ``b`` fresh codes."""
        return b + self._filled, self.dim

    def unbiased_weight(self, b: int) -> float:
        """``(b + filled) / b``: the weight that makes the window's distance gradient unbiased.

        The distance of the joined codes reaches the parameters through the ``b`` fresh codes only,
        each holding about ``1/N`` of a permutation-invariant distance of ``N = b + filled`` codes.
        With frozen parameters and the fresh codes a uniformly random ``b``-subset of the ``N``,
        ``E[(N / b) sum_{i fresh} dD/dz_i dz_i/dtheta] = sum_i dD/dz_i dz_i/dtheta``: the gradient of
        the classical batch of the same ``N`` codes. The same holds for ``log D`` (its gradient is
        ``dD / D`` at the same joined codes) and, for WAE and SWAE, for every fixed prior draw and
        set of directions. ``N / b = n / k`` for a full batch and window, and 1 when ``k == n``
        (classical training).

        Args:
            b: fresh codes of this step, ``1 <= b <= k``.
        """
        if not 1 <= b <= self.k:
            raise ValueError(f"b must be between 1 and k={self.k} fresh codes; got {b}.")
        return (b + self._filled) / b

    def join(self, z: torch.Tensor) -> torch.Tensor:
        """``[z ; window]``: the fresh codes, then the stored ones (no gradient through those).

        Args:
            z: (B, D) fresh codes, B <= k (the last batch of an epoch may be smaller).

        Returns:
            (B + filled, D) tensor; (n, D) for a full batch and a full window.

        Raises:
            ValueError: ``z`` is not (B, D) with 1 <= B <= k and D = dim.
        """
        self._check_codes(z)
        stored = self.codes if self._filled == self.capacity else self.codes[: self._filled]
        return torch.cat([z, stored.to(z.dtype)], dim=0)

    def push(self, z: torch.Tensor) -> None:
        """Stores ``z.detach()`` over the oldest entries, in order, wrapping around.

        Args:
            z: (B, D) codes, B <= k.
        """
        self._check_codes(z)
        cap = self.capacity
        if cap == 0:
            return
        b = z.shape[0]
        start = self._pointer
        if b > cap:  # only the newest cap rows survive a full wrap
            start = (start + b - cap) % cap
            z = z[-cap:]
            b = cap
        z = z.detach()  # copies below record no graph: the buffer never requires gradient
        head = min(b, cap - start)  # rows up to the end of the buffer, then wrap to the front
        self.codes.narrow(0, start, head).copy_(z.narrow(0, 0, head))
        if head < b:
            self.codes.narrow(0, 0, b - head).copy_(z.narrow(0, head, b - head))
        self._pointer, self._filled = (start + b) % cap, min(self._filled + b, cap)

    def stage(self) -> None:
        """Makes the device copy of the write position (:attr:`slot`) equal to :attr:`position`'s
        pointer, for :meth:`push_at`: one small copy after the pointer moved other than by
        ``push_at`` and :meth:`advance` (:meth:`push`, :meth:`reset`, loading), none otherwise."""
        if self._slot_pointer != self._pointer:
            self.slot.fill_(self._pointer)
            self._slot_pointer = self._pointer

    @torch.no_grad()
    def push_at(self, z: torch.Tensor) -> None:
        """:meth:`push` into a full window at the device write position :attr:`slot` (see
        :meth:`stage`), which it moves on by ``B``: no host value is read or written, so a compiled
        graph or a CUDA graph can hold the push. :meth:`advance` then moves the host counters.

        Args:
            z: (B, D) codes, B <= capacity.
        """
        if self.capacity == 0:
            return
        rows = self._rows_at(z.shape[0])  # (B,)
        self.codes.index_copy_(0, rows, z.detach().to(self.codes.dtype))
        self.slot.add_(z.shape[0]).remainder_(self.capacity)

    def _rows_at(self, b: int) -> torch.Tensor:
        """``(slot + i) % capacity`` for i < b: (b,) rows of the buffer, on its device."""
        return (self.slot + torch.arange(b, device=self.codes.device)) % self.capacity

    def advance(self, b: int) -> None:
        """Moves the counters as :meth:`push` of ``b <= capacity`` codes into a full window does,
        after :meth:`push_at` wrote them (and moved :attr:`slot`)."""
        if self.capacity:
            self._pointer = (self._pointer + b) % self.capacity
            if self._slot_pointer is not None:
                self._slot_pointer = (self._slot_pointer + b) % self.capacity

    @torch.no_grad()
    def replace(self, rows: torch.Tensor, codes: torch.Tensor) -> None:
        """Overwrites the stored codes at ``rows`` (e.g. the same inputs encoded again).

        Args:
            rows: (R,) indices into the buffer, below :attr:`position`'s fill count.
            codes: (R, D) codes.
        """
        # host rows reach a GPU without waiting for it (see TensorSet.get_batch)
        self.codes[rows.to(self.codes.device, non_blocking=True)] = codes.to(self.codes.dtype)

    def _check_codes(self, z: torch.Tensor) -> None:
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"codes must be a 2-D tensor (B, {self.dim}); got {type(z).__name__}.")
        if z.dim() != 2:
            raise ValueError(f"codes must be a 2-D tensor (B, {self.dim}); got {tuple(z.shape)}.")
        if not z.is_floating_point():  # joined with float codes, they would be cast to ints
            raise TypeError(f"codes must have a floating-point dtype; got {z.dtype}.")
        if z.shape[1] != self.dim:
            raise ValueError(
                f"codes must have dim={self.dim} features; got {z.shape[1]} (shape {tuple(z.shape)})."
            )
        if not 1 <= z.shape[0] <= self.k:
            raise ValueError(f"codes must have between 1 and k={self.k} rows; got {z.shape[0]}.")
