"""Chunks of every data source the one-pass sketch reads: tensors, arrays, memory maps, loaders.

Part of :mod:`distmatch.sketch`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

__all__ = ["as_chunk", "check_dim", "chunks"]


def check_dim(x: torch.Tensor, dim: int, name: str) -> None:
    if x.shape[1] != dim:
        raise ValueError(
            f"{name} must have D={dim} features to match the feature map; got {x.shape[1]}."
        )


def as_chunk(chunk: object, dim: int | None) -> torch.Tensor:
    """One (B, D) chunk as a floating tensor; ``(x, y)`` batches give ``x``; arrays are read here.

    ``D`` must equal ``dim`` unless ``dim`` is None.
    """
    if (
        isinstance(chunk, tuple | list)
        and chunk
        and isinstance(chunk[0], torch.Tensor | np.ndarray)
    ):
        chunk = chunk[0]
    if not isinstance(chunk, torch.Tensor):
        array = np.asarray(chunk)  # a memory-map slice stays on disk until copied below
        if array.dtype.kind not in "fiu":
            raise TypeError(f"data must hold numbers; got {type(chunk).__name__} of {array.dtype}.")
        dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float32
        if isinstance(array, np.memmap) or not array.flags.writeable or array.dtype != dtype:
            array = np.array(array, dtype=dtype, order="C")
        chunk = torch.from_numpy(np.ascontiguousarray(array))
    if chunk.dtype == torch.bool or chunk.is_complex():
        raise TypeError(f"data must hold real numbers; got dtype {chunk.dtype}.")
    if chunk.dim() != 2:
        raise ValueError(f"data chunks must be 2-D (B, D); got shape {tuple(chunk.shape)}.")
    if chunk.dtype not in (torch.float32, torch.float64):
        chunk = chunk.to(torch.get_default_dtype())
    if dim is not None:
        check_dim(chunk, dim, "data")
    return chunk.detach()


def chunks(data: object, batch_size: int) -> tuple[Iterator[object], int | None]:
    """Iterator over the raw chunks of ``data`` and the number of samples when it is known."""
    if isinstance(data, torch.Tensor | np.ndarray):
        if data.ndim != 2:
            raise ValueError(f"data must be 2-D (N, D); got shape {tuple(data.shape)}.")
        n = data.shape[0]
        return (data[i : i + batch_size] for i in range(0, n, batch_size)), n
    if isinstance(data, str | bytes | dict) or not isinstance(data, Iterable):
        raise TypeError(
            "data must be a tensor, a numpy array, a DataLoader or an iterable of (B, D) chunks; "
            f"got {type(data).__name__}."
        )
    dataset = getattr(data, "dataset", None)
    total = (
        len(dataset)
        if isinstance(data, torch.utils.data.DataLoader) and hasattr(dataset, "__len__")
        else getattr(data, "num_samples", None)  # e.g. distmatch.data.FlatRows
    )
    return iter(data), total
