"""Data as one (N, D) float64 tensor: a toy's draws, or every training sample of a data set.

Part of :mod:`distmatch.data`, which re-exports :func:`load_vectors`.
"""

from __future__ import annotations

import torch

from ._loaders import load_split
from ._toys import TOYS, toy_dataset

__all__ = ["load_vectors"]


def load_vectors(
    source: str, *, n: int = 100_000, seed: int = 0
) -> tuple[torch.Tensor, str | None]:
    """Data as (N, D) float64: a toy name (``n`` draws from ``seed``) or a data set's training split
    (a ``.npy`` file, or a registered name), images flattened.

    Returns:
        ``(data, toy)``: the data, and the toy's name when it is one (its density is known).
    """
    if source in TOYS:
        return toy_dataset(source, n, seed=seed).double(), source
    train = load_split(source, "train")
    everything = train.get_batch(torch.arange(len(train)))
    return everything.flatten(1).double(), None
