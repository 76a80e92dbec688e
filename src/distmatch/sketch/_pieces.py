"""What a sketch was made of: pieces of data sets, so that merges never count data twice.

Part of :mod:`distmatch.sketch`. A :class:`Piece` names a data set by a fingerprint (a toy and its
draw, a file's path, size and first bytes, a registered data set's split and files) and the rows of
it that were sketched, ``[start, stop)``. Sketches of disjoint pieces merge; two that share rows of
the same data set, or the same file given twice, do not.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

__all__ = ["Piece", "check_disjoint", "file_fingerprint"]

FINGERPRINT_BYTES = 1 << 20  # bytes of a file read into its fingerprint


class Piece(NamedTuple):
    """Rows ``[start, stop)`` of the data set that ``data`` fingerprints."""

    data: str
    start: int
    stop: int

    def describe(self) -> str:
        return f"rows {self.start}..{self.stop - 1} of {self.data}"


def file_fingerprint(path: str | os.PathLike[str], what: str = "file") -> str:
    """``what:<absolute path>:<size>:<sha256 of the first MiB>``: the same file gives the same
    fingerprint on every rank and in every shard, without reading it whole."""
    path = Path(path).expanduser().resolve()
    digest = hashlib.sha256()
    with path.open("rb") as file:
        digest.update(file.read(FINGERPRINT_BYTES))
    return f"{what}:{path}:{path.stat().st_size}:{digest.hexdigest()[:16]}"


def check_disjoint(ours: Iterable[Piece], theirs: Iterable[Piece]) -> None:
    """Raises unless no piece of ``theirs`` shares rows with one of ``ours`` of the same data.

    Raises:
        ValueError: e.g. "other must hold other data than this sketch; got rows 0..4999 of
            toy:spiral:... in both."
    """
    for a in ours:
        for b in theirs:
            if a.data == b.data and max(a.start, b.start) < min(a.stop, b.stop):
                shared = Piece(a.data, max(a.start, b.start), min(a.stop, b.stop))
                raise ValueError(
                    "other must hold other data than this sketch (a merge adds data); got "
                    f"{shared.describe()} in both."
                )
