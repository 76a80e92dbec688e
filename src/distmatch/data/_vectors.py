"""Data as one (N, D) float64 tensor: a toy's draws, or every sample of a data set's split.

Part of :mod:`distmatch.data`, which re-exports :func:`load_vectors`.
"""

from __future__ import annotations

import torch

from ._loaders import load_split
from ._toys import TOYS, toy_dataset

__all__ = ["load_vectors"]


def load_vectors(
    source: str,
    *,
    n: int = 100_000,
    seed: int = 0,
    split: str = "train",
    data_dir: str | None = None,
) -> tuple[torch.Tensor, str | None]:
    """Data as (N, D) float64: a toy name (``n`` draws from ``seed``) or a data set's ``split``
    (a ``.npy`` file, a registered name read from ``data_dir``, a folder of images), images
    flattened (pixels in [0, 1]).

    Returns:
        ``(data, toy)``: the data, and the toy's name when it is one (its density is known).
    """
    if source in TOYS:
        return toy_dataset(source, n, seed=seed).double(), source
    samples = load_split(source, split, data_dir=data_dir)
    everything = samples.get_batch(torch.arange(len(samples)))
    return everything.flatten(1).double(), None
