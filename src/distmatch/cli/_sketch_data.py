"""What ``distmatch sketch --dataset`` names: toy draws, a ``.npy`` array, or the training split of
a data set read in chunks; and the groups of rows that ``--by-label`` sketches apart."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import sketch as sk
from ..data import (
    TOYS,
    FlatRows,
    dataset_names,
    load_split,
    open_npy,
    test_slice,
    toy_dataset,
)
from ..evaluation import statistics_key
from ._common import UsageError

TOY_POINTS = 100_000  # draws of a toy, unless --points says otherwise

__all__ = ["Source", "groups", "labelled", "sketch_source"]


@dataclasses.dataclass
class Source:
    """What ``--dataset`` names: the data (an (N, D) array, or a sample set read in chunks) and
    what the sketch file records about it."""

    data: Any  # (N, D) array (toys, vector .npy) or a distmatch.data.SampleSet
    count: int
    dim: int
    fingerprint: str  # of the whole data set, for the pieces of the file
    name: str | None = None  # the sketch's source: held-out data for evaluation come from it
    data_dir: str | None = None
    sample_shape: tuple[int, ...] | None = None  # images
    labels: torch.Tensor | None = None

    def rows(self, index: torch.Tensor, batch_size: int):
        """The rows ``index`` as data for :func:`distmatch.sketch.sketch_dataset`."""
        if isinstance(self.data, np.ndarray):
            return self.data[index.numpy()] if len(index) < self.count else self.data
        return FlatRows(self.data, index, batch_size)

    def probe(self, n: int, seed: int) -> torch.Tensor:
        """(n', D) float64: at most ``n`` random rows, for bandwidth estimates."""
        rows = torch.randperm(self.count, generator=torch.Generator().manual_seed(seed))[:n]
        rows = rows.sort().values
        if isinstance(self.data, np.ndarray):
            return torch.from_numpy(np.asarray(self.data[rows.numpy()], dtype=np.float64))
        return self.data.get_batch(rows).flatten(1).double()


def labelled(out: Path, label: int | None) -> Path:
    """``OUT.npz`` for the whole data, ``OUT-<label>.npz`` for one class."""
    return out if label is None else out.with_name(f"{out.stem}-{label}{out.suffix}")


def groups(
    args: argparse.Namespace, source: Source, *, classes: bool = False
) -> list[tuple[int | None, torch.Tensor]]:
    """``[(None, all rows)]``, or with --by-label or ``classes`` ``[(label, its rows in data
    order), ...]``."""
    if not (classes or args.by_label):
        return [(None, torch.arange(source.count))]
    if source.labels is None:
        raise UsageError(f"--by-label needs a labelled data set; '{args.dataset}' has no labels.")
    if args.shard:
        raise UsageError("--by-label and --shard cannot be combined; sketch each class whole.")
    labels = source.labels
    return [(int(c), torch.nonzero(labels == c).flatten()) for c in torch.unique(labels)]


def sketch_source(args: argparse.Namespace) -> Source:
    """The data of --dataset: toy draws, a memory-mapped (N, D) .npy array, or the training
    split of a data set (images, read in chunks)."""
    if args.points is not None and args.dataset not in TOYS:
        raise UsageError(f"--points sets the draws of a toy; '{args.dataset}' is not one.")
    if args.dataset in TOYS:
        points = TOY_POINTS if args.points is None else args.points
        if points < 1:
            raise UsageError(f"--points must be >= 1; got {points}.")
        data = toy_dataset(args.dataset, points, seed=args.seed).numpy()
        fingerprint = f"toy:{args.dataset}:points={points}:seed={args.seed}"
        return Source(data, len(data), data.shape[1], fingerprint, name=args.dataset)
    path = Path(args.dataset).expanduser()
    if args.dataset.endswith(".npy"):
        if not path.is_file():
            raise UsageError(f"--dataset file '{args.dataset}' does not exist.")
        data = open_npy(path)  # DataError (exit 2) for a file that is no array of numbers
        if data.ndim == 2 and data.dtype != np.uint8:  # vectors: streamed from the memory map
            # the training split, as for every data set: the last tenth is held out for the
            # evaluation, unless a NAME_test.npy file beside it holds the test split
            if not path.with_name(f"{path.stem}_test.npy").is_file():
                data = data[test_slice(len(data), "train", f"'{path}'")]
            fingerprint = sk.file_fingerprint(path, "npy")
            # named by its path: a generator fitted to the sketch is evaluated on its test rows
            return Source(data, len(data), data.shape[1], fingerprint, name=str(path.resolve()))
    elif args.dataset not in dataset_names() and not (path.is_dir() or path.suffix == ".zip"):
        raise UsageError(
            f"--dataset must be a toy ({', '.join(sorted(TOYS))}), a data set "
            f"({', '.join(dataset_names())}), a folder or zip of images, or a .npy file; got "
            f"'{args.dataset}'."
        )
    train = load_split(args.dataset, "train", data_dir=args.data_dir, image_size=args.image_size)
    shape = tuple(train.sample_shape)
    where = str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else None
    named = args.dataset if args.dataset in dataset_names() else str(path.resolve())
    return Source(
        train,
        len(train),
        math.prod(shape),
        f"dataset:{statistics_key(train)}",
        name=named,
        data_dir=where,
        sample_shape=shape if train.is_image else None,
        labels=train.labels,
    )
