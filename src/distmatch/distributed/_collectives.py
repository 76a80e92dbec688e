"""Collectives of a run on P processes: batches split over ranks, gathers and reductions.

Part of :mod:`distmatch.distributed`, which re-exports the public names; import them from there.
Every helper is the identity in one process (no process group, or a group of one).

The differentiable collectives make a loss computed alike on every rank from the gathered rows (or
reduced sums) have, after :func:`average_gradients`, exactly the single-process gradient: the
backward passes of :func:`all_gather_rows` and :func:`all_reduce_sum` sum the cotangents of the P
copies of the loss, so rank ``r`` gets ``g_r = P dL/dtheta|_r``, the part of the chain rule through
its own inputs, and averaging gives ``(1/P) sum_r g_r = sum_r dL/dtheta|_r = dL/dtheta``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist

from ._ranks import comm_device, is_active, world

__all__ = [
    "all_gather_rows",
    "all_reduce",
    "all_reduce_sum",
    "average_gradients",
    "check_divisible",
    "same_everywhere",
    "shard_rows",
    "split_batch",
]

# --- batches and shards ----------------------------------------------------------------------


def check_divisible(value: int, name: str) -> None:
    """Raises unless ``value`` splits evenly over the ranks.

    Raises:
        ValueError: e.g. "k must be divisible by the number of processes P=2; got k=3."
    """
    size = world().size
    if value % size:
        raise ValueError(
            f"{name} must be divisible by the number of processes P={size} ({name} is the global "
            f"number per step, split evenly over the ranks); got {name}={value}."
        )


def split_batch(index: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """This rank's contiguous part of a global batch, and the rows of every rank's part.

    ``torch.tensor_split`` into P parts: the first ``B mod P`` parts have one row more.

    Args:
        index: (B,) the global batch (indices of samples or codes).

    Returns:
        ``(part, sizes)``: (B_r,) rows of rank r; ``sizes[r] = B_r``, ``sum(sizes) = B``.
    """
    w = world()
    parts = torch.tensor_split(index, w.size)
    return parts[w.rank], tuple(len(p) for p in parts)


def shard_rows(n_rows: int, batch_size: int, index: int, count: int) -> slice:
    """Rows of shard ``index`` of ``count``: contiguous runs of whole ``batch_size`` chunks.

    The ``ceil(n_rows / batch_size)`` chunks are split as :func:`split_batch` splits rows, so a
    shard's chunks are chunks of the one-pass iteration.
    """
    chunks = math.ceil(n_rows / batch_size)
    base, extra = divmod(chunks, count)
    start = index * base + min(index, extra)
    stop = start + base + (1 if index < extra else 0)
    return slice(min(start * batch_size, n_rows), min(stop * batch_size, n_rows))


# --- differentiable collectives ------------------------------------------------------------------


class _AllGatherRows(torch.autograd.Function):
    """Forward: the rows of every rank, in rank order. Backward: the sum over ranks of the
    cotangent of those rows, cut to this rank's rows (an all-reduce, which works with uneven parts).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
        ctx.sizes, ctx.rank = sizes, dist.get_rank()
        rows = max(sizes)
        padded = x.new_zeros((rows, *x.shape[1:]))  # (max B_r, ...): gloo gathers equal shapes
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])  # (B, ...)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        total = grad.contiguous().clone()  # (B, ...)
        dist.all_reduce(total)
        start = sum(ctx.sizes[: ctx.rank])
        return total[start : start + ctx.sizes[ctx.rank]], None


class _AllReduceSum(torch.autograd.Function):
    """Forward: the sum over ranks. Backward: the sum over ranks of the cotangents."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        total = x.contiguous().clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.contiguous().clone()
        dist.all_reduce(total)
        return total


def all_gather_rows(x: torch.Tensor, sizes: Sequence[int] | None = None) -> torch.Tensor:
    """``[x_0; ...; x_{P-1}]``: the rows of every rank in rank order, differentiable.

    The gradient reaching ``x_r`` is ``sum_s dL_s / dx_r`` over the ranks' losses ``L_s`` (P times
    the gradient of one when all ranks compute the same loss; :func:`average_gradients` divides).

    Args:
        x: (B_r, ...) this rank's rows.
        sizes: every rank's B_r (from :func:`split_batch`); ``None``: all equal to ``len(x)``.

    Returns:
        (B, ...) with ``B = sum(sizes)``; ``x`` itself in one process.

    Raises:
        ValueError: ``len(x)`` is not ``sizes[rank]``.
    """
    if not is_active():
        return x
    w = world()
    sizes = tuple(sizes) if sizes is not None else (x.shape[0],) * w.size
    if len(sizes) != w.size or sizes[w.rank] != x.shape[0]:
        raise ValueError(
            f"x must have sizes[rank]={sizes[w.rank] if len(sizes) == w.size else '?'} rows "
            f"for sizes={sizes} on rank {w.rank} of {w.size}; got {x.shape[0]}."
        )
    return _AllGatherRows.apply(x, sizes)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """``sum_r x_r`` over the ranks, differentiable (backward: the sum of the cotangents)."""
    return _AllReduceSum.apply(x) if is_active() else x


def average_gradients(
    parameters: Iterable[torch.Tensor], flags: Sequence[bool] = ()
) -> tuple[bool, ...]:
    """``p.grad <- (1/P) sum_r p.grad_r`` in one all-reduce per dtype; ``flags`` ride along.

    An explicit all-reduce of the flattened gradients rather than DistributedDataParallel: the
    autoencoders are called through ``encode``/``decode``, not ``forward``, and one bucket per step
    is what a small MoW model needs. A missing gradient counts as zeros. Each flag comes back true
    when it is true on any rank, so that the ranks take decisions (stop, save) at the same step.

    Returns:
        the flags, agreed by all ranks (as given in one process).
    """
    if not is_active():
        return tuple(bool(f) for f in flags)
    params = [p for p in parameters if p.requires_grad]
    buckets: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for p in params:
        buckets.setdefault((p.dtype, p.device), []).append(p)
    if not buckets:
        buckets[(torch.float32, comm_device())] = []
    size, agreed = dist.get_world_size(), ()
    for i, ((dtype, device), group) in enumerate(buckets.items()):
        carried = [float(f) for f in flags] if i == 0 else []
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in group]
        tail = torch.tensor(carried, dtype=dtype, device=device)  # (len(flags),) or (0,)
        flat = torch.cat([*(g.reshape(-1) for g in grads), tail])  # (sum of numels + flags,)
        dist.all_reduce(flat)
        n = flat.numel() - len(carried)
        if i == 0:
            agreed = tuple(bool(v > 0) for v in flat[n:].tolist())
        for p, g in zip(group, flat[:n].div_(size).split([g.numel() for g in grads]), strict=True):
            p.grad = g.view_as(p)
    return agreed


# --- plain reductions ----------------------------------------------------------------------------


def all_reduce(x: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """``sum_r x_r`` (``op="sum"``) or ``max_r x_r`` (``op="max"``) over the ranks, without
    gradient; the result is on the device of ``x`` (a copy; ``x`` itself in one process).

    For bookkeeping (float64 sums and counts, maxima) on any device, whatever the backend needs.
    """
    if not is_active():
        return x
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}
    if op not in ops:
        raise ValueError(f"op must be one of 'max', 'sum'; got {op!r}.")
    total = x.detach().to(comm_device(), copy=True).contiguous()
    dist.all_reduce(total, op=ops[op])
    return total.to(x.device)


def same_everywhere(values: torch.Tensor) -> bool:
    """Whether the (numeric) ``values`` are equal on every rank: one all-reduce of ``[v; -v]``."""
    if not is_active():
        return True
    flat = values.detach().double().reshape(-1)
    both = all_reduce(torch.cat([flat, -flat]), "max")
    return bool(torch.equal(both[: flat.numel()], -both[flat.numel() :]))
