"""The processes of a run: who is who, joining torchrun's group, doing a thing once on rank 0.

Part of :mod:`distmatch.distributed`, which re-exports the public names; import them from there.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from .._core import resolve_device

T = TypeVar("T")

# Rank 0 evaluates and writes figures while the others wait in their next collective: allow that.
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class World:
    """This process's place among the ranks: ``rank`` of ``size``, ``local_rank`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else default


def is_active() -> bool:
    """Whether a process group of more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> World:
    """The ranks of the initialised process group; one process when there is none.

    Under torchrun, call it inside :func:`process_group` (or after :func:`init_from_env`): before,
    no collective could reach the other ranks, so every process counts as the only one.
    """
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        return World(rank, dist.get_world_size(), _env_int("LOCAL_RANK", rank))
    return World()


def _launch() -> World:
    """The processes that torchrun's environment describes (RANK, WORLD_SIZE, LOCAL_RANK)."""
    rank = _env_int("RANK", 0)
    return World(rank, _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", rank))


def is_main() -> bool:
    """Whether this process is rank 0 (the one that writes files and prints)."""
    return world().is_main


def barrier() -> None:
    """Waits for every rank (nothing to wait for in one process)."""
    if is_active():
        dist.barrier()


def rank_device(device: str | torch.device = "auto") -> torch.device:
    """The device of this rank: ``device`` resolved, a CUDA device becoming ``cuda:LOCAL_RANK``.

    With ``"auto"``, a launch of more processes per node (``LOCAL_WORLD_SIZE``) than this node has
    GPUs runs every rank on the CPU (gloo), with a warning; with an explicit ``"cuda"`` it is an
    error. Every rank reads the same environment, so all of them take the same decision before
    any of them joins the group: no rank is left waiting for one that stopped.

    Raises:
        ValueError: an unknown or unavailable device, or fewer GPUs than processes per node.
    """
    resolved = resolve_device(device)
    w = world() if dist.is_available() and dist.is_initialized() else _launch()
    if resolved.type != "cuda" or w.size == 1:
        return resolved
    per_node = max(_env_int("LOCAL_WORLD_SIZE", w.local_rank + 1), w.local_rank + 1)
    gpus = torch.cuda.device_count()
    if per_node > gpus:
        if device == "auto":
            warnings.warn(
                f"{per_node} processes per node but {gpus} GPUs: every rank runs on the CPU "
                "(gloo). Launch at most one process per GPU to train on the GPUs.",
                stacklevel=2,
            )
            return torch.device("cpu")
        raise ValueError(
            f"the processes per node must be at most the number of GPUs ({gpus}) for device "
            f"{str(device)!r}; got {per_node} (use --device auto to run them on the CPU)."
        )
    if resolved.index is not None and resolved.index != w.local_rank:
        warnings.warn(
            f"device {resolved} replaced by cuda:{w.local_rank}: each rank uses its local GPU.",
            stacklevel=2,
        )
    return torch.device("cuda", w.local_rank)


def init_from_env(device: str | torch.device = "auto") -> torch.device:
    """Joins the process group that torchrun describes (``WORLD_SIZE > 1``); returns the rank's device.

    torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
    the backend is NCCL when the device is CUDA and gloo otherwise. Nothing is done when a group
    is already initialised (e.g. by ``torch.multiprocessing.spawn`` code) or when the environment
    describes one process.

    Raises:
        RuntimeError: launched for several processes but torch.distributed is unavailable.
        ValueError: see :func:`rank_device`.
    """
    launched = _launch().size > 1
    if launched and not dist.is_available():
        raise RuntimeError(
            "torch.distributed must be available to run several processes; this PyTorch build "
            "has none."
        )
    resolved = rank_device(device)
    if resolved.type == "cuda" and launched:
        torch.cuda.set_device(resolved)
    if launched and not dist.is_initialized():
        cuda = resolved.type == "cuda"
        dist.init_process_group(
            "nccl" if cuda else "gloo",
            init_method="env://",
            timeout=TIMEOUT,
            device_id=resolved if cuda else None,
        )
    return resolved


@contextmanager
def process_group(device: str | torch.device = "auto") -> Iterator[torch.device]:
    """:func:`init_from_env` for a block; the group is destroyed at its end if the block made it.

    Yields:
        this rank's device.
    """
    made = _launch().size > 1 and dist.is_available() and not dist.is_initialized()
    resolved = init_from_env(device)
    try:
        yield resolved
        if made:
            dist.barrier()  # no rank tears its connections down while another still uses them
    finally:
        if made and dist.is_initialized():
            dist.destroy_process_group()


def comm_device() -> torch.device:
    """Where tensors must live for the backend's collectives."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def on_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` run on rank 0 only; its result, or its exception, reaches every rank.

    For what must happen once (reading a checkpoint, choosing a folder, writing a summary) with
    the same outcome everywhere: an error on rank 0 is raised on every rank instead of leaving
    the others waiting.
    """
    if not is_active():
        return fn(*args, **kwargs)
    payload: tuple[bool, Any] | None = None
    if dist.get_rank() == 0:
        try:
            payload = (True, fn(*args, **kwargs))
        except Exception as err:
            payload = (False, err)
    box = [payload if payload is None or payload[0] else (False, _portable(payload[1]))]
    dist.broadcast_object_list(box, src=0, device=comm_device())
    ok, value = payload if payload is not None else box[0]  # rank 0 keeps its own traceback
    if not ok:
        raise value
    return value


def _portable(err: Exception) -> Exception:
    """``err`` if it can be sent to the other ranks, else a RuntimeError with its message."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")
    return err
