"""Scale-out with ``torch.distributed``: one run on P processes (ranks) launched by ``torchrun``.

Collectives only, no domain code: who is who (:func:`world`, :func:`is_main`), joining torchrun's
group (:func:`process_group`), doing a thing once on rank 0 (:func:`on_main`), splitting a global
batch (:func:`split_batch`, :func:`shard_rows`), and differentiable gathers and sums
(:func:`all_gather_rows`, :func:`all_reduce_sum`) whose gradients, after
:func:`average_gradients`, are the single-process ones. Every helper is the identity in one
process, so code that calls them runs unchanged without ``torchrun``. Backends: gloo on CPU, NCCL
on CUDA (one GPU per rank, ``cuda:LOCAL_RANK``).

What each mode does with them is documented where it happens: the MoW cost of a global batch in
:mod:`distmatch.objectives`, sketching across ranks in :mod:`distmatch.sketch`, generator training
in :mod:`distmatch.generation`; ``docs/distributed.md`` is the guide.
"""

from ._collectives import (
    all_gather_rows,
    all_reduce,
    all_reduce_sum,
    average_gradients,
    check_divisible,
    same_everywhere,
    shard_rows,
    split_batch,
)
from ._ranks import (
    TIMEOUT,
    World,
    barrier,
    init_from_env,
    is_active,
    is_main,
    on_main,
    process_group,
    rank_device,
    world,
)

__all__ = [
    "TIMEOUT",
    "World",
    "all_gather_rows",
    "all_reduce",
    "all_reduce_sum",
    "average_gradients",
    "barrier",
    "check_divisible",
    "init_from_env",
    "is_active",
    "is_main",
    "on_main",
    "process_group",
    "rank_device",
    "same_everywhere",
    "shard_rows",
    "split_batch",
    "world",
]
