"""The bookkeeping that every training run shares: meters, signals, non-finite stops, checkpoints,
agreement across ranks and the summary.

Part of :mod:`distmatch.runs`, which re-exports the public names.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import distributed
from ._folder import RunDir, RunError, open_run

__all__ = ["Meter", "NonFiniteLossError", "RunEngine", "TrainingInterrupted", "stop_on_signals"]

log = logging.getLogger("distmatch.runs")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM stopped the run after a checkpoint was written."""


# ----------------------------------------------------------------------------------- meters


class Meter:
    """Sums of the loss parts over the current logging interval (kept in the checkpoint)."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.sums: dict[str, float] = dict(state.get("sums", {}))
        self.count: int = int(state.get("count", 0))
        self._pending: dict[str, list[torch.Tensor]] = {}

    def add(self, parts: Mapping[str, torch.Tensor]) -> None:
        for key, value in parts.items():
            self._pending.setdefault(key, []).append(value.detach())
        self.count += 1

    def _collect(self) -> None:
        for key, values in self._pending.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(torch.stack(values).double().sum())
        self._pending = {}

    def state(self) -> dict[str, Any]:
        self._collect()
        return {"sums": dict(self.sums), "count": self.count}

    def finite(self) -> bool:
        self._collect()
        return all(math.isfinite(v) for v in self.sums.values())

    def flush(self) -> dict[str, float]:
        self._collect()
        means = {key: total / max(self.count, 1) for key, total in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


# ---------------------------------------------------------------------------------- signals


@contextmanager
def stop_on_signals() -> Iterator[Any]:
    """Turns SIGINT/SIGTERM into a flag (``.requested``) that a loop reads at the end of a step."""

    class Stop:
        requested = False

    stop = Stop()

    def handler(signum: int, frame: object) -> None:
        stop.requested = True

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: signals stay as they are
        pass
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ----------------------------------------------------------------------------- the engine


class RunEngine:
    """The bookkeeping every training run shares; MoW and generator runs subclass it.

    A subclass sets :attr:`config` (a dataclass), builds its objects, then calls :meth:`begin` with
    the checkpoint state from :func:`open_run`; it provides :meth:`checkpoint_state`,
    :meth:`restore` and :meth:`summary_fields`, and names the parameters whose gradients the ranks
    average in :meth:`parameters`. Across ranks every rank holds the same state and takes the same
    decisions; rank 0 alone writes files.
    """

    run: RunDir
    config: Any
    world: distributed.World
    step: int
    epoch: int
    batch: int
    total_steps: int
    meter: Meter

    # ------------------------------------------------------------------------ hooks
    def parameters(self) -> Iterable[torch.Tensor]:
        raise NotImplementedError

    def checkpoint_state(self) -> dict[str, Any]:
        """What this mode adds to the checkpoint (model, optimizer, generators, ...)."""
        raise NotImplementedError

    def restore(self, state: dict[str, Any]) -> None:
        """Loads what :meth:`checkpoint_state` wrote."""
        raise NotImplementedError

    def summary_fields(self) -> dict[str, Any]:
        """The mode's part of ``summary.json`` (final metrics, ...); rank 0 only."""
        raise NotImplementedError

    def diverged_hint(self) -> str:
        """A clause added to the non-finite message, e.g. the learning rate to lower."""
        return ""

    # ------------------------------------------------------------------------ start
    def open(
        self,
        config: Any,
        run: RunDir,
        *,
        resume: bool,
        resumable: Iterable[str],
        defaults: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        """Validates ``config`` and opens the run folder on rank 0 (:func:`open_run`); returns the
        checkpoint to continue from, on every rank, or ``None`` for a run from step 0."""
        self.world = distributed.world()
        self.config = config.validate()
        return distributed.on_main(
            open_run, run, dataclasses.asdict(config), resume=resume, resumable=resumable,
            defaults=defaults,
        )  # fmt: skip

    def begin(self, run: RunDir, record: Mapping[str, Any], state: dict[str, Any] | None) -> None:
        """Sets the counters and clocks; a new run writes ``config.json`` and its step-0 checkpoint
        (the run exists from then on), a resumed one restores its checkpoint. If its resumable
        fields changed (more steps, another device), a resumed run writes ``config.json`` again
        after its first checkpoint, so that the next ``--resume`` goes on with them (a resume that
        fails or is killed before then changes nothing)."""
        self.run = run
        self.new_record = None
        self.step = self.epoch = self.batch = 0
        self.meter, self.elapsed, self.eval_seconds = Meter(), 0.0, 0.0
        self.started, self.last_save = time.perf_counter(), time.monotonic()
        self.agreed = {"stop": False, "save": False}
        if state is None:
            if self.world.is_main:
                self.run.write_json(self.run.config, record)
            self.before_first_save()
            self.save()
        else:
            self.step, self.epoch, self.batch = state["step"], state["epoch"], state["batch"]
            self.meter, self.elapsed = Meter(state["meter"]), float(state["elapsed"])
            self.eval_seconds = float(state.get("eval_seconds", 0.0))  # absent in older files
            self.restore(state)
            if self.world.is_main:
                # the rows the checkpoint had seen (a checkpoint of older files: by step)
                self.run.truncate_metrics(self.step, rows=state.get("metrics_rows"))
                saved = self.run.read_json(self.run.config).get("config")
                if saved != json.loads(json.dumps(record["config"])):  # as written
                    self.new_record = record
            log.info("resumed %s at step %d (epoch %d)", self.run.root, self.step, self.epoch)
        self.step_at_save = self.step_at_start = self.step

    def before_first_save(self) -> None:
        """Work of a new run before its step-0 checkpoint (e.g. evaluating the untrained model)."""

    # ------------------------------------------------------------------------ ranks
    def sync(self, stop: Any, *, timed: bool = False) -> None:
        """Across ranks: averages the gradients and agrees on stopping (and, if ``timed``, on a
        timed checkpoint). One all-reduce carries the gradients and the flags, so all ranks stop
        and save at the same step; nothing happens in one process."""
        if self.world.size > 1:
            flags = (stop.requested, timed and self.minutes_passed())
            self.agreed["stop"], self.agreed["save"] = distributed.average_gradients(
                self.parameters(), flags
            )

    def stopping(self, stop: Any) -> bool:
        """Whether a signal asks to stop: this process's flag, or the ranks' agreed one."""
        return self.agreed["stop"] if self.world.size > 1 else stop.requested

    def minutes_passed(self) -> bool:
        minutes = getattr(self.config, "checkpoint_minutes", None)
        return minutes is not None and time.monotonic() - self.last_save >= 60 * minutes

    def progress_bar(self, desc: str, progress: bool) -> tqdm:
        """The run's step counter (rank 0's, when ``progress``), from where the run stands."""
        return tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not (progress and self.world.is_main),
            unit="step",
            desc=desc,
            dynamic_ncols=True,
        )

    def interrupted(self) -> TrainingInterrupted:
        """Saves the current step and returns the exception that ends the run."""
        self.save()
        return TrainingInterrupted(f"interrupted at step {self.step}; checkpoint written")

    # ------------------------------------------------------------------------ logging
    def meters(self) -> tuple[Meter, ...]:
        """Every meter whose sums must stay finite (a subclass may keep more than one)."""
        return (self.meter,)

    def log_interval(self) -> dict[str, str]:
        """Writes the mean loss parts of the interval to metrics.jsonl; returns them for the bar."""
        if not self.meter.finite():
            self.save()  # raises NonFiniteLossError, keeping the last good checkpoint
        means = self.meter.flush()
        if self.world.is_main:
            self.run.append_metrics(
                {"kind": "train", "step": self.step, "epoch": self.epoch, **means}
            )
        return {key: f"{value:.4g}" for key, value in means.items()}

    # ------------------------------------------------------------------------ checkpoints
    def diverged(self) -> NonFiniteLossError:
        """The error that ends a run whose loss (or outputs) became NaN or infinite."""
        return NonFiniteLossError(
            f"the loss became NaN or infinite before step {self.step}{self.diverged_hint()}; "
            f"the run stopped and {self.run.checkpoint} keeps step {self.step_at_save}. Try a "
            "smaller --lr."
        )

    def save(self) -> None:
        """Writes the checkpoint (rank 0), unless the loss has gone non-finite since the last one.

        Raises:
            NonFiniteLossError: the loss became NaN or infinite; the last checkpoint stays.
        """
        if not all(meter.finite() for meter in self.meters()):
            raise self.diverged()
        if self.world.is_main:
            self.run.save_checkpoint(
                {
                    "step": self.step,
                    "epoch": self.epoch,
                    "batch": self.batch,
                    "meter": self.meter.state(),
                    "elapsed": self.elapsed + time.perf_counter() - self.started,
                    "eval_seconds": self.eval_seconds,
                    "config": _as_dict(self.config),
                    # rows of metrics.jsonl so far: a resume drops those written after (an
                    # evaluation of the same step, redone)
                    "metrics_rows": self.run.metrics_rows(),
                    **self.checkpoint_state(),
                }
            )
            if self.new_record is not None:  # a resume's changed fields, now that it has trained
                self.run.write_json(self.run.config, self.new_record)
                self.new_record = None
        self.last_save, self.step_at_save = time.monotonic(), self.step

    # ------------------------------------------------------------------------ the end
    def finish(self) -> dict[str, Any]:
        """``summary.json`` (rank 0 writes it, every rank returns it). A resumed run that had
        nothing left to train returns the summary it already has, unchanged."""
        return distributed.on_main(self._summarise)

    def _summarise(self) -> dict[str, Any]:
        if self.step == self.step_at_start and self.run.summary.is_file():
            try:
                return self.run.read_json(self.run.summary)
            except RunError:
                pass  # a corrupt summary is written again
        rows = self.run.metrics_rows()
        fields = self.summary_fields()
        if self.run.metrics_rows() != rows:  # a final evaluation: the checkpoint counts its row
            self.save()
        seconds = self.elapsed + time.perf_counter() - self.started
        training = seconds - self.eval_seconds
        summary = {
            **fields,
            "wall_seconds": round(seconds, 3),
            "eval_seconds": round(self.eval_seconds, 3),
            "steps_per_second": round(self.step / training, 2) if training > 0 else None,
        }
        self.run.write_json(self.run.summary, summary)
        return summary


def _as_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
