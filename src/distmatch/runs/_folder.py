"""The run folder on disk, and opening it for a new or a resumed run.

Part of :mod:`distmatch.runs`, which re-exports the public names.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from .._core import atomic_path, remove_orphans

__all__ = ["CHECKPOINT_FORMAT", "RunDir", "RunError", "open_run", "resumed_config"]

T = TypeVar("T")

log = logging.getLogger("distmatch.runs")

CHECKPOINT_FORMAT = 1


class RunError(ValueError):
    """A run folder that is missing, foreign, incomplete or would be overwritten."""


class RunDir:
    """Paths and atomic readers/writers of one run folder.

    Args:
        root: the run folder (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        if not isinstance(root, str | os.PathLike):
            raise TypeError(f"a run folder must be a path; got {type(root).__name__}.")
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise RunError(f"'{self.root}' must be a run folder; it is a file.")
        self.config = self.root / "config.json"
        self.metrics = self.root / "metrics.jsonl"
        self.summary = self.root / "summary.json"
        self.checkpoint = self.root / "checkpoint.pt"
        self.eval = self.root / "eval.json"
        self.figures = self.root / "figures"

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # ----------------------------------------------------------------------------------- JSON
    def write_json(self, path: Path, payload: Mapping[str, Any]) -> None:
        """Writes ``payload`` as indented JSON, atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")

    def read_json(self, path: Path) -> dict[str, Any]:
        """Reads a JSON object written by :meth:`write_json`."""
        if not path.is_file():
            raise RunError(f"'{self.root}' must be a run folder holding {path.name}; it has none.")
        try:
            payload = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RunError(f"'{path}' must be a JSON file; it is corrupt ({err}).") from None
        if not isinstance(payload, dict):
            raise RunError(f"'{path}' must hold a JSON object; got {type(payload).__name__}.")
        return payload

    # -------------------------------------------------------------------------------- metrics
    def append_metrics(self, row: Mapping[str, Any]) -> None:
        """Appends one row to ``metrics.jsonl`` (flushed at once)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self.metrics.open("a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete rows of ``metrics.jsonl`` (a half-written last line is skipped)."""
        if not self.metrics.is_file():
            return []
        rows = []
        for line in self.metrics.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        return rows

    def metrics_rows(self) -> int:
        """The number of complete rows (lines) of ``metrics.jsonl``."""
        return self.metrics.read_bytes().count(b"\n") if self.metrics.is_file() else 0

    def truncate_metrics(self, step: int, rows: int | None = None) -> None:
        """Keeps the first ``rows`` lines, the rows a checkpoint had seen (``None``, for older
        checkpoints: the rows up to ``step``); those written after it are redone on resume."""
        if rows is not None:
            lines = self.metrics.read_bytes().split(b"\n")[:rows] if self.metrics.is_file() else []
            with atomic_path(self.metrics) as tmp:
                tmp.write_bytes(b"".join(line + b"\n" for line in lines))
            return
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        with atomic_path(self.metrics) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))

    # ----------------------------------------------------------------------------- checkpoint
    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        """Writes ``state`` to ``checkpoint.pt`` through a temporary file and a rename."""
        payload = {"format": CHECKPOINT_FORMAT, **state}
        with atomic_path(self.checkpoint) as tmp:
            torch.save(payload, tmp)

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """Reads ``checkpoint.pt`` with ``weights_only=True``.

        Raises:
            RunError: no checkpoint, or a file that is not a distmatch checkpoint.
        """
        if not self.checkpoint.is_file():
            raise RunError(
                f"'{self.root}' must hold checkpoint.pt to resume or evaluate; it has none."
            )
        if self.checkpoint.stat().st_size == 0:
            raise RunError(f"'{self.checkpoint}' must be a distmatch checkpoint; it is empty.")
        try:
            state = torch.load(self.checkpoint, map_location=map_location, weights_only=True)
        except Exception as err:  # torch raises several types for corrupt or foreign files
            # torch's own text runs over several lines and proposes unsafe loading: not shown.
            raise RunError(
                f"'{self.checkpoint}' must be a distmatch checkpoint; it cannot be read "
                f"({type(err).__name__}: not a readable PyTorch file of tensors)."
            ) from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise RunError(
                f"'{self.checkpoint}' must be a distmatch checkpoint of format {CHECKPOINT_FORMAT}; "
                f"got format {state.get('format') if isinstance(state, dict) else None}."
            )
        return state

    def remove_orphans(self) -> None:
        """Removes temporaries that a kill during a write left (``.checkpoint.pt.*.tmp.pt``, ...)."""
        for path in (self.checkpoint, self.config, self.metrics, self.summary, self.eval):
            for orphan in remove_orphans(path):
                log.info("removed %s, left by an interrupted write", orphan)

    def discard_unstarted(self) -> None:
        """Empties the outputs of a start that was killed before its first checkpoint."""
        for path in (self.metrics, self.summary, self.eval):
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- opening a run


def resumed_config(
    out: str | os.PathLike[str],
    config_type: type[T],
    *,
    kind: str | None = None,
    missing: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> T:
    """The configuration saved in the run folder ``out`` as a ``config_type`` dataclass, with
    ``overrides`` applied. Fields missing from a file written before they existed take the value
    in ``missing`` (what such runs were trained with), else their defaults.

    Args:
        out: the run folder.
        config_type: the configuration dataclass of the mode (``TrainConfig``, ...).
        kind: the ``kind`` the record must have (``"generator"``), or ``None`` for none.
        missing: values of fields that older files lack, where they differ from the defaults.
        **overrides: fields to change.

    Raises:
        RunError: ``out`` is not a run folder of that kind, or its ``config.json`` holds fields
            that ``config_type`` does not have.
        TypeError: an override that is not a field of ``config_type``.
    """
    run = RunDir(out)
    record = run.read_json(run.config)
    saved = record.get("config")
    if record.get("kind") != kind or not isinstance(saved, dict):
        made_by = {None: "distmatch train", "generator": "distmatch fit-sketch or fit-mmd"}
        raise RunError(
            f"'{run.root}' must be a run folder of {made_by.get(kind, kind)}; it holds another "
            "kind of run."
        )
    fields = {f.name for f in dataclasses.fields(config_type)}
    foreign = sorted(set(saved) - fields)
    if foreign:
        raise RunError(
            f"'{run.config}' must hold the fields of {config_type.__name__}; got unknown fields "
            f"{', '.join(foreign)} (edited, or written by another program)."
        )
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(
            f"overrides must be fields of {config_type.__name__}; got {', '.join(unknown)}."
        )
    return dataclasses.replace(config_type(**{**(missing or {}), **saved}), **overrides)


def open_run(
    run: RunDir,
    config: Mapping[str, Any],
    *,
    resume: bool,
    resumable: Iterable[str],
    defaults: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The checkpoint a run continues from, or ``None`` for a run that starts at step 0.

    - A new run refuses a folder that holds a checkpoint. A folder with ``config.json`` but no
      checkpoint (a start killed before its first checkpoint) holds no trained state: its outputs
      are discarded and the run starts there.
    - ``resume`` needs ``config.json``; ``config`` may differ from it only in the ``resumable``
      fields (fields missing from an older file take their ``defaults``). Without a checkpoint the
      run starts from step 0. The checkpoint records the configuration it was made with, and a
      ``config.json`` edited since then in any other field is an error, never silently trained on.
      (A resumed run rewrites ``config.json`` with its resumable fields as changed, after its
      first checkpoint: a kill between the two writes leaves them differing in those fields.)

    Temporaries left by a write that a kill cut short are removed first.

    Args:
        run: the run folder.
        config: the configuration given now, as a dict of fields.
        resume: whether to continue the run in the folder.
        resumable: fields that may change when a run resumes.
        defaults: each field's default, for files written before a field existed.

    Raises:
        RunError: an existing run without ``resume``, a changed configuration, a missing or
            unreadable ``config.json`` or checkpoint.
    """
    run.remove_orphans()
    if not resume:
        if run.checkpoint.exists():
            raise RunError(
                f"'{run.root}' already holds a run; use --resume to continue it or choose another "
                "--out."
            )
        if run.config.exists():
            record = run.read_json(run.config)
            if not isinstance(record.get("config"), dict):
                raise RunError(
                    f"'{run.config}' must be the record of a distmatch run to start a run there; "
                    "it is another file. Choose another --out."
                )
            log.warning("'%s' holds a run that never reached its first checkpoint; starting it "
                        "afresh", run.root)  # fmt: skip
            run.discard_unstarted()
        return None
    saved = run.read_json(run.config).get("config")
    if not isinstance(saved, dict):
        raise RunError(f"'{run.config}' must hold a 'config' object; it has none.")
    _check_same(saved, config, resumable, defaults, "a resumed run must keep its configuration")
    if not run.checkpoint.exists():
        log.warning("'%s' has no checkpoint: its start was interrupted; starting at step 0",
                    run.root)  # fmt: skip
        run.discard_unstarted()
        return None
    state = run.load_checkpoint()
    made_with = state.get("config")
    if isinstance(made_with, dict):
        # a resume may have changed resumable fields since config.json was written
        _check_same(
            made_with, saved, resumable, defaults, f"'{run.config}' must match the checkpoint"
        )  # fmt: skip
    return state


def _check_same(
    saved: Mapping[str, Any],
    given: Mapping[str, Any],
    free: Iterable[str],
    defaults: Mapping[str, Any],
    what: str,
) -> None:
    free = set(free)
    changed = sorted(
        key
        for key in set(given) | set(saved)
        if key not in free
        and saved.get(key, defaults.get(key)) != given.get(key, defaults.get(key))
    )
    if changed:
        detail = ", ".join(
            f"{key}: {saved.get(key, defaults.get(key))!r} -> {given.get(key, defaults.get(key))!r}"
            for key in changed
        )
        kept = f" except {', '.join(sorted(free))}" if free else ""
        raise RunError(f"{what}{kept}; got changes to {detail}.")
