"""``.npy`` files as data sets: vectors (N, D) or uint8 images, read from a memory map.

Part of :mod:`distmatch.data`. Arrays are read with ``allow_pickle=False``: nothing is unpickled.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ._images import DataError
from ._sets import TensorSet, test_slice


def open_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """The array of a ``.npy`` file, memory-mapped, checked to be numbers of shape (N, ...) with
    N >= 1 (never unpickled).

    Raises:
        DataError: a file without the ``.npy`` header, pickled objects, other dtypes or shapes.
    """
    path = Path(path)
    with path.open("rb") as file:
        if file.read(6) != b"\x93NUMPY":
            raise DataError(f"'{path}' must be a .npy file; got a file without the .npy header.")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        reason = str(err).rstrip(".")
        raise DataError(
            f"'{path}' must be a .npy array of numbers, never pickled objects; got {reason}."
        ) from None
    if array.dtype.kind not in "uif":
        raise DataError(f"'{path}' must hold real numbers; got dtype {array.dtype}.")
    if array.ndim < 2 or array.shape[0] < 1 or math.prod(array.shape[1:]) < 1:
        raise DataError(
            f"'{path}' must hold an array of shape (N, D) or (N, ...), one sample per row; "
            f"got shape {array.shape}."
        )
    return array


def read_npy(path: str | os.PathLike[str]) -> torch.Tensor:
    """Every sample of a ``.npy`` file (no split), checked as :func:`load_split` checks them:
    (N, C, H, W) uint8 images or (N, D) float32 vectors."""
    return _npy_samples(open_npy(path), Path(path))


def _npy_samples(array: np.ndarray, path: Path, rows: slice = slice(None)) -> torch.Tensor:
    """uint8 (N, H, W), (N, H, W, C) or (N, C, H, W) as (N, C, H, W) images, else (N, D) float32.

    Only ``rows`` are read from the memory map, and copied into memory.
    """
    if array.dtype == np.uint8 and array.ndim in (3, 4):
        if array.ndim == 3:
            images = array[rows, None]
        elif array.shape[3] in (1, 3):
            images = array[rows].transpose(0, 3, 1, 2)
        elif array.shape[1] in (1, 3):
            images = array[rows]
        else:
            raise DataError(
                f"'{path}' must hold uint8 images (N, H, W, C) or (N, C, H, W) with C = 1 or 3; "
                f"got shape {array.shape}."
            )
        return torch.from_numpy(np.array(images, order="C"))  # a copy, off the memory map
    with np.errstate(over="ignore"):  # overflow to inf is reported below
        vectors = np.array(array[rows], dtype=np.float32).reshape(-1, math.prod(array.shape[1:]))
    bad = int((~np.isfinite(vectors)).sum())
    if bad:
        raise DataError(
            f"'{path}' must hold only finite values (as float32); got {bad} NaN or inf entries."
        )
    return torch.from_numpy(vectors)  # (N, D)


def load_npy(path: Path, split: str) -> TensorSet:
    if not path.is_file():
        raise DataError(f"dataset '{path}' must be an existing .npy file; got no such file.")
    sibling = path.with_name(f"{path.stem}_test.npy")
    array = open_npy(path)
    if not sibling.is_file():
        rows = test_slice(len(array), split, f"'{path}'")
        return TensorSet(_npy_samples(array, path, rows), name=str(path), split=split)
    if split == "train":
        return TensorSet(_npy_samples(array, path), name=str(path), split=split)
    test = open_npy(sibling)
    if test.shape[1:] != array.shape[1:] or (test.dtype == np.uint8) != (array.dtype == np.uint8):
        raise DataError(
            f"'{sibling}' must hold samples like '{path}' ({array.dtype}, shape (N, "
            f"{', '.join(map(str, array.shape[1:]))})); got {test.dtype}, shape {test.shape}."
        )
    return TensorSet(_npy_samples(test, sibling), name=str(path), split=split)
