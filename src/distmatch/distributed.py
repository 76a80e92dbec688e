"""Scale-out with ``torch.distributed``: one run on P processes (ranks) launched by ``torchrun``.

Every helper is the identity in one process (no process group, or a group of one), so code that
calls them runs unchanged without ``torchrun``. Backends: gloo on CPU, NCCL on CUDA (one GPU per
rank, ``cuda:LOCAL_RANK``). The process helpers (:func:`world`, :func:`process_group`,
:func:`on_main`, ...) live in :mod:`distmatch._ranks` and are re-exported here.

**MoW training** (:func:`distmatch.training.train`). ``k`` is the global number of fresh codes per
step and must be divisible by P. The global batch of step ``b`` is ``order[b k : (b+1) k]``, with
the epoch order a function of (seed, epoch) alone; rank ``r`` takes its ``r``-th contiguous part
(:func:`split_batch`) and encodes it, ``z_r`` (k/P, D). Then on every rank::

    Z   = [z_0; ...; z_{P-1}]                        (k, D), all_gather_rows, rank order
    rec = sqrt((1/k) sum_r sum_{i in r} e_i)          e_i per-image sum of squared errors (all-reduced)
    L   = rec + lam * D([Z; window])                  the same value on every rank

and every rank pushes ``Z``, so the windows stay identical (prior draws come from one generator
seeded alike everywhere). The backward passes of the two collectives sum the cotangents of the P
copies of ``L``: rank ``r`` gets ``g_r = P dL/dtheta|_r``, the part of the chain rule through its own
inputs, and :func:`average_gradients` sets ``(1/P) sum_r g_r = sum_r dL/dtheta|_r = dL/dtheta``:
exactly the single-process gradient of the global batch.

**Sketching** (:func:`sketch_dataset`). Rank ``r`` sums the features of its shard,
``S_r = sum_{i in r} phi(x_i)`` in float64; one all-reduce of ``(S_r, n_r)`` (2m + 1 float64)
gives ``(sum_i phi(x_i), N)`` on every rank. Arrays are cut into contiguous runs of whole
``batch_size`` chunks, so each chunk's float32 block sums are those of one pass and the result
differs from it by float64 round-off only. :func:`unit_ball_scaling` all-reduces the maximum norm.

**Generator from a sketch** (:func:`sketch_distance`). Rank ``r`` generates its B/P samples ``y_i``;
``F = sum_r sum_{i in r} phi(y_i)`` and ``B`` are all-reduced and every rank computes
``L = |g F / B - z|^2``; as above, gradient averaging gives ``dL/dtheta`` of the B samples.

Reference: Spurek et al., arXiv:1905.12947 (MoW); Schellekens & Jacques, arXiv:2002.05095 (CL-GN).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist

from . import sketch as sk
from ._ranks import (
    TIMEOUT,
    World,
    _active,
    _comm_device,
    barrier,
    init_from_env,
    is_main,
    on_main,
    process_group,
    rank_device,
    world,
)
from ._sketch_pass import _largest_norm, _sketch_rows
from .distances._checks import check_positive_int, check_samples
from .objectives import reconstruction_errors

if TYPE_CHECKING:
    from .objectives import AutoencoderObjective

__all__ = [
    "TIMEOUT",
    "World",
    "all_gather_rows",
    "all_reduce_sketch",
    "all_reduce_sum",
    "average_gradients",
    "barrier",
    "check_divisible",
    "global_objective",
    "init_from_env",
    "is_main",
    "on_main",
    "process_group",
    "rank_device",
    "shard_rows",
    "sketch_dataset",
    "sketch_distance",
    "split_batch",
    "unit_ball_scaling",
    "world",
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
    if not _active():
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
    return _AllReduceSum.apply(x) if _active() else x


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
    if not _active():
        return tuple(bool(f) for f in flags)
    params = [p for p in parameters if p.requires_grad]
    buckets: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for p in params:
        buckets.setdefault((p.dtype, p.device), []).append(p)
    if not buckets:
        buckets[(torch.float32, _comm_device())] = []
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


# --- MoW: the cost of the global batch -----------------------------------------------------------


def global_objective(
    objective: AutoencoderObjective,
    x: torch.Tensor,
    x_rec: torch.Tensor,
    codes: torch.Tensor,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The parts of ``objective`` for the global batch, the same on every rank.

    ``rec = (sum_r sum_{i in r} e_i) / (sum_r B_r)`` (its root for ``"root"``), from one
    differentiable all-reduce of (error sum, count); the distance term of the joined codes (already
    global); ``loss = rec + lam * distance``. In one process: ``objective(x, x_rec, codes)``.

    Args:
        objective: the cost (model, lam, reconstruction convention).
        x: (B_r, ...) this rank's inputs; x_rec: their reconstructions.
        codes: (n, D) the gathered fresh codes joined to the window.
        generator: randomness for prior draws (seeded alike on every rank).
    """
    if not _active():
        return objective(x, x_rec, codes, generator)
    errors = reconstruction_errors(x, x_rec)  # (B_r,)
    total = all_reduce_sum(torch.stack([errors.sum(), errors.new_tensor(float(len(errors)))]))
    return objective.from_mean_error(total[0] / total[1], codes, generator)


# --- sketches ------------------------------------------------------------------------------------


def sketch_distance(sketch: sk.Sketch, samples: torch.Tensor) -> torch.Tensor:
    """``|g (sum_r sum_{i in r} phi(y_i)) / B - z|^2``: the sketch distance of all ranks' samples.

    One differentiable all-reduce of the (2m + 1) feature sums and count per step; the value is
    the same on every rank. In one process: :func:`distmatch.sketch.sketch_distance`.

    Args:
        sketch: the data sketch (the same file on every rank).
        samples: (B_r, D) this rank's samples, in the sketch's coordinates.
    """
    if not _active():
        return sk.sketch_distance(sketch, samples)
    samples = check_samples(samples, "samples", min_points=0)
    omega, dither, target = sketch._constants(samples.device, samples.dtype)
    m = sketch.features.n_frequencies
    gain = sk.QUANTIZED_GAIN if sketch.features.quantized else 1.0
    t = torch.addmm(dither, samples, omega)  # (B_r, m)
    count = samples.new_tensor([float(samples.shape[0])])
    total = all_reduce_sum(torch.cat([t.cos().sum(0), t.sin().sum(0), count]))  # (2m + 1,)
    mean = total[:-1] * (gain / math.sqrt(m)) / total[-1]  # (2m,)
    return (mean - target).square().sum()


def all_reduce_sketch(sketch: sk.Sketch) -> sk.Sketch:
    """Replaces the sum and count of ``sketch`` by their sums over the ranks (float64); returns it."""
    if not _active():
        return sketch
    flat = torch.cat([sketch.sum, torch.tensor([float(sketch.count)], dtype=torch.float64)])
    flat = flat.to(_comm_device())  # (2m + 1,) float64: counts are exact below 2^53
    dist.all_reduce(flat)
    flat = flat.cpu()
    sketch._sum, sketch._count = flat[:-1].clone(), round(float(flat[-1]))
    return sketch


def _check_same_everywhere(features: sk.FourierFeatures, center, scale: float) -> None:
    """Raises unless every rank has the same frequencies, dither and scaling (one all-reduce)."""
    omega, xi = features.frequencies.detach().double().cpu(), features.dither.detach().double()
    c = 0.0 if center is None else float(np.asarray(center, dtype=np.float64).sum())
    values = [omega.sum(), omega.square().sum(), xi.sum(), xi.square().sum()]
    values = torch.tensor([features.dim, features.n_frequencies, *values, scale, c])
    values = values.to(torch.float64)
    both = torch.cat([values, -values]).to(_comm_device())
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    n = values.numel()
    if not torch.equal(both[:n], -both[n:]):
        raise ValueError(
            "features and scaling must be the same on every rank (frequencies drawn from one "
            "seed, one center and scale); got differences between ranks."
        )


def _local_shard(data: object, batch_size: int) -> object:
    """Arrays and tensors: this rank's run of whole chunks; any other iterable: as given."""
    if isinstance(data, torch.Tensor | np.ndarray):
        w = world()
        return data[shard_rows(data.shape[0], batch_size, w.rank, w.size)]
    return data


def sketch_dataset(
    data: torch.Tensor | np.ndarray | Iterable,
    features: sk.FourierFeatures,
    *,
    batch_size: int = 10_000,
    center: torch.Tensor | np.ndarray | None = None,
    scale: float = 1.0,
    device: str | torch.device = "auto",
    progress: bool = True,
    compile: bool = False,
) -> sk.Sketch:
    """:func:`distmatch.sketch.sketch_dataset` with each rank sketching its shard.

    Arrays and tensors (the same on every rank, e.g. one memory map) are cut by
    :func:`shard_rows`; any other iterable (e.g. a DataLoader with a DistributedSampler) is this
    rank's shard. The float64 sums and counts are all-reduced, so every rank returns the sketch
    of all the data; it equals the one-pass sketch up to float64 round-off. Frequencies and scaling
    must be the same on every rank (checked). Options as in the one-process function; the progress
    bar is rank 0's.

    Raises:
        TypeError, ValueError: as :func:`distmatch.sketch.sketch_dataset`; different features or
            scaling on different ranks.
    """
    if not _active():
        return sk.sketch_dataset(
            data, features, batch_size=batch_size, center=center, scale=scale,
            device=device, progress=progress, compile=compile,
        )  # fmt: skip
    check_positive_int(batch_size, "batch_size")
    _check_same_everywhere(features, center, scale)
    part = _sketch_rows(
        _local_shard(data, batch_size), features, batch_size=batch_size, center=center,
        scale=scale, device=device, progress=progress and is_main(), compile=compile,
    )  # fmt: skip
    all_reduce_sketch(part)
    if part.count == 0:
        raise ValueError("data must hold at least one sample; got 0.")
    return part


def unit_ball_scaling(
    data: torch.Tensor | np.ndarray | Iterable,
    *,
    center: torch.Tensor | np.ndarray | None = None,
    batch_size: int = 100_000,
) -> float:
    """:func:`distmatch.sketch.unit_ball_scaling` over all ranks' shards: one scale for all.

    ``max_r max_{i in r} |x_i - center| + 1e-6``, the maximum all-reduced in float64: exactly the
    one-pass value. Shards as in :func:`sketch_dataset`.
    """
    if not _active():
        return sk.unit_ball_scaling(data, center=center, batch_size=batch_size)
    check_positive_int(batch_size, "batch_size")
    largest, count = _largest_norm(_local_shard(data, batch_size), center, batch_size)
    top = torch.tensor([largest], dtype=torch.float64, device=_comm_device())
    total = torch.tensor([float(count)], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(top, op=dist.ReduceOp.MAX)
    dist.all_reduce(total)
    if float(total) == 0:
        raise ValueError("data must hold at least one sample; got 0.")
    return float(top) + 1e-6
