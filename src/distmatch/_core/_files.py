"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The temporary name keeps the suffix of ``path``, so writers that choose a format by suffix
    (matplotlib, numpy) behave as for ``path`` itself.

    If the block raises, the temporary file is removed and ``path`` keeps its old content.

    Example:
        >>> with atomic_path("out.json") as tmp:  # doctest: +SKIP
        ...     tmp.write_text("{}")
    """
    target = Path(path)
    if target.is_dir():  # before any work is written: the rename would fail only at the end
        raise IsADirectoryError(f"'{target}' is a folder; a file of that name cannot be written.")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def remove_orphans(path: str | os.PathLike[str]) -> list[Path]:
    """Removes the temporary files that :func:`atomic_path` left beside ``path`` when a kill cut a
    write short (``.NAME.*.tmpSUFFIX``); returns the removed paths.

    Call it only where no other process may be writing ``path`` at the same time.
    """
    target = Path(path)
    if not target.parent.is_dir():
        return []
    removed = []
    for orphan in target.parent.glob(f".{target.name}.*.tmp{target.suffix}"):
        orphan.unlink(missing_ok=True)
        removed.append(orphan)
    return removed
