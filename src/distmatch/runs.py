"""The run folder on disk: configuration, metrics log, summary, checkpoint and figures.

::

    RUN/config.json      the configuration, as given and as resolved (architecture, shapes)
    RUN/metrics.jsonl    one JSON object per logged step (training) or evaluation
    RUN/summary.json     final metrics
    RUN/checkpoint.pt    everything needed to continue: written to a temporary file and renamed
    RUN/eval.json        written by ``distmatch evaluate``
    RUN/figures/*.png

Checkpoints are read with ``torch.load(weights_only=True)``: they hold tensors, numbers, strings,
lists and dicts only, never pickled objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ._io import atomic_path

__all__ = ["CHECKPOINT_FORMAT", "RunDir", "RunError"]

CHECKPOINT_FORMAT = 1


class RunError(ValueError):
    """A run folder that is missing, foreign, incomplete or would be overwritten."""


class RunDir:
    """Paths and atomic readers/writers of one run folder.

    Args:
        root: the run folder (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
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

    def truncate_metrics(self, step: int) -> None:
        """Keeps the rows up to ``step``: those written after the checkpoint are redone on resume."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        with atomic_path(self.metrics) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))

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
        try:
            state = torch.load(self.checkpoint, map_location=map_location, weights_only=True)
        except Exception as err:  # torch raises several types for corrupt or foreign files
            raise RunError(
                f"'{self.checkpoint}' must be a distmatch checkpoint; it cannot be read ({err})."
            ) from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise RunError(
                f"'{self.checkpoint}' must be a distmatch checkpoint of format {CHECKPOINT_FORMAT}; "
                f"got format {state.get('format') if isinstance(state, dict) else None}."
            )
        return state
