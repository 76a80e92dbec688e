"""The objects of one moving-window training run and their bookkeeping.

:class:`RunState` builds the data, model, window, optimizer and objective of a run, writes and
restores its checkpoint, logs, evaluates and summarises; the loop itself is
:func:`distmatch.training.train`. :func:`load_autoencoder` rebuilds a trained model from its run folder.

Across P ranks (:mod:`distmatch.distributed`) every rank holds the same state and takes the same
decisions; rank 0 alone reads the checkpoint (the others receive it), writes files and evaluates.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from typing import Any

import torch
from torch import nn

from . import __version__, distributed
from .config import DEFAULT_ARCH, TrainConfig, check_resumable, resolve_device
from .data import SampleSet, describe, load_split
from .latent_sketch import MovingSketch
from .metrics import evaluate_autoencoder
from .models import Autoencoder, build_autoencoder, warn_if_batchnorm
from .objectives import AutoencoderObjective
from .runs import RunDir, RunError
from .window import MovingWindow

__all__ = ["Meter", "NonFiniteLossError", "RunState", "load_autoencoder"]

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Meter:
    """Sums of the loss parts over the current logging interval (kept in the checkpoint)."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.sums: dict[str, float] = dict(state.get("sums", {}))
        self.count: int = int(state.get("count", 0))
        self._pending: dict[str, list[torch.Tensor]] = {}

    def add(self, parts: dict[str, torch.Tensor]) -> None:
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


class RunState:
    """The objects of one run and their bookkeeping; built by :meth:`start`."""

    config: TrainConfig
    run: RunDir
    train_set: SampleSet
    test_set: SampleSet
    model: nn.Module
    window: MovingWindow
    world: distributed.World
    step: int
    epoch: int
    batch: int

    @classmethod
    def start(
        cls, config: TrainConfig, run: RunDir, *, resume: bool, model: nn.Module | None
    ) -> RunState:
        s = cls()
        s.world = distributed.world()
        state = distributed.on_main(_saved_state, config, run, resume)
        s.config, s.run = config.validate(), run
        distributed.check_divisible(config.k, "k")
        s.device = distributed.rank_device(resolve_device(config.device))
        s.train_set = load_split(config.dataset, "train", **s._data_options())
        s.test_set = load_split(config.dataset, "test", **s._data_options())
        log.info("%s; %s", describe(s.train_set), describe(s.test_set))
        s.model = (model if model is not None else s._build_model()).to(s.device)
        if model is not None:
            warn_if_batchnorm(model, config.k // s.world.size)
        s.generator = torch.Generator(device=s.device).manual_seed(config.seed + 1)
        s.window = s._memory(int(s.model.latent_dim))
        params = s.model.parameters()
        s.optimizer = (
            torch.optim.Adam(params, lr=config.lr)
            if config.optimizer == "adam"
            else torch.optim.SGD(params, lr=config.lr)
        )
        s.objective = AutoencoderObjective(
            config.model,
            lam=config.lam,
            reconstruction=config.reconstruction,
            latent_dim=int(s.model.latent_dim),
            sketch_frequencies=config.sketch_frequencies,
            sketch_bandwidth=config.sketch_bandwidth,
        )
        s.steps_per_epoch = math.ceil(len(s.train_set) / config.k)
        s.total_steps = config.steps or config.epochs * s.steps_per_epoch
        s.step = s.epoch = s.batch = 0
        s.meter, s.elapsed, s.eval_seconds = Meter(), 0.0, 0.0
        s.started, s.last_save = time.perf_counter(), time.monotonic()
        if state is None:
            if s.world.is_main:
                s.run.write_json(s.run.config, s._config_record(custom=model is not None))
            s.save()  # step 0: a run can be resumed from its very start
        else:
            s._restore(state)
        s.step_at_save = s.step
        s.agreed = {"stop": False, "save": False}
        return s

    def _memory(self, dim: int) -> MovingWindow | MovingSketch:
        """The window of past codes, or for ``memory="sketch"`` their moving sketch."""
        c = self.config
        if c.memory == "sketch":
            return MovingSketch(
                c.n,
                c.k,
                dim,
                m=c.sketch_frequencies,
                bandwidth=c.sketch_bandwidth,
                reset_each_epoch=c.reset_each_epoch,
                device=self.device,
            )
        return MovingWindow(
            c.n,
            c.k,
            dim,
            init=c.window_init,
            reset_each_epoch=c.reset_each_epoch,
            refresh=c.refresh,
            generator=self.generator,
            device=self.device,
        )

    def _data_options(self) -> dict[str, Any]:
        return {"data_dir": self.config.data_dir, "image_size": self.config.image_size}

    def _build_model(self) -> Autoencoder:
        cfg = self.config
        arch = cfg.arch or DEFAULT_ARCH.get(cfg.dataset, "mlp")
        # Initialise from the run's seed without touching the global random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return build_autoencoder(
                arch, sample_shape=tuple(self.train_set.sample_shape), latent_dim=cfg.latent_dim
            )

    def _config_record(self, *, custom: bool) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "resolved": {
                "arch": None if custom else self.model.arch,
                "latent_dim": int(self.model.latent_dim),
                "sample_shape": list(self.train_set.sample_shape),
                "is_image": bool(self.train_set.is_image),
                "train_size": len(self.train_set),
                "test_size": len(self.test_set),
                "steps_per_epoch": self.steps_per_epoch,
                "total_steps": self.total_steps,
            },
            "distmatch_version": __version__,
        }

    # ------------------------------------------------------------------------- checkpoints
    def save(self) -> None:
        """Writes the checkpoint (rank 0), unless the loss has gone non-finite since the last one."""
        if not self.meter.finite():
            raise NonFiniteLossError(
                f"the loss became NaN or infinite before step {self.step} "
                f"({self.config.model}, {self.config.optimizer}, lr={self.config.lr}); the run "
                f"stopped and {self.run.checkpoint} keeps step {self.step_at_save}. "
                "Try a smaller --lr."
            )
        if self.world.is_main:
            self._write_checkpoint()
        self.last_save, self.step_at_save = time.monotonic(), self.step

    def _write_checkpoint(self) -> None:
        self.run.save_checkpoint(
            {
                "step": self.step,
                "epoch": self.epoch,
                "batch": self.batch,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "window": self.window.state_dict(),
                "generator": self.generator.get_state(),
                "global_rng": torch.get_rng_state(),
                "meter": self.meter.state(),
                "elapsed": self.elapsed + time.perf_counter() - self.started,
                "eval_seconds": self.eval_seconds,
                "finished": self.step >= self.total_steps,
            }
        )

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.window.load_state_dict(state["window"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["global_rng"])
        self.step, self.epoch, self.batch = state["step"], state["epoch"], state["batch"]
        self.meter, self.elapsed = Meter(state["meter"]), float(state["elapsed"])
        self.eval_seconds = float(state.get("eval_seconds", 0.0))  # absent in older checkpoints
        if self.world.is_main:
            self.run.truncate_metrics(self.step)
        log.info("resumed %s at step %d (epoch %d)", self.run.root, self.step, self.epoch)

    def checkpoint_due(self) -> bool:
        """Every ``checkpoint_every`` steps, and after ``checkpoint_minutes`` (agreed by the ranks)."""
        by_steps = self.step - self.step_at_save >= self.config.checkpoint_every
        by_time = self.agreed["save"] if self.world.size > 1 else self._minutes_passed()
        return by_steps or by_time

    def _minutes_passed(self) -> bool:
        return time.monotonic() - self.last_save >= 60 * self.config.checkpoint_minutes

    # ------------------------------------------------------------------------------- ranks
    def sync(self, stop: Any) -> None:
        """Across ranks: averages the gradients and agrees on stopping and on a timed checkpoint.

        One all-reduce carries the gradients and both flags, so all ranks stop and save at the same
        step; nothing happens in one process.
        """
        if self.world.size > 1:
            flags = (stop.requested, self._minutes_passed())
            self.agreed["stop"], self.agreed["save"] = distributed.average_gradients(
                self.model.parameters(), flags
            )

    def stopping(self, stop: Any) -> bool:
        """Whether a signal asks to stop: this process's flag, or the ranks' agreed one."""
        return self.agreed["stop"] if self.world.size > 1 else stop.requested

    # ----------------------------------------------------------------------- logging, eval
    def log_interval(self) -> dict[str, str]:
        """Writes the mean loss parts of the interval to metrics.jsonl; returns them for the bar."""
        if not self.meter.finite():
            self.save()  # raises NonFiniteLossError, keeping the last good checkpoint
        means = self.meter.flush()
        row = {"kind": "train", "step": self.step, "epoch": self.epoch, **means}
        if self.world.is_main:
            self.run.append_metrics(row)
        return {key: f"{value:.4g}" for key, value in means.items()}

    def evaluation_due(self) -> bool:
        every = self.config.eval_every
        return self.epoch == 1 or self.epoch % every == 0 or self.step >= self.total_steps

    def evaluate(self) -> dict[str, float]:
        """Paper metrics on the test split, a metrics row, and fresh figures (rank 0 only)."""
        from .plots import save_autoencoder_figures, save_training_curves

        if not self.world.is_main:
            return {}

        started = time.perf_counter()
        gen = torch.Generator().manual_seed(self.config.seed * 7919 + self.step)
        metrics = evaluate_autoencoder(
            self.model,
            self.test_set,
            generator=gen,
            points=self.config.eval_points,
            device=self.device,
        )
        self.run.append_metrics({"kind": "eval", "step": self.step, "epoch": self.epoch, **metrics})
        log.info("step %d: %s", self.step, metrics)
        save_autoencoder_figures(
            self.model, self.test_set, self.run.figures, seed=self.config.seed, device=self.device
        )
        save_training_curves(self.run.read_metrics(), self.run.figures / "curves.png")
        self.eval_seconds += time.perf_counter() - started
        return metrics

    def finish(self) -> dict[str, Any]:
        """Final evaluation (unless the last epoch just had one) and ``summary.json``.

        Rank 0 evaluates and writes; every rank returns its summary.
        """
        return distributed.on_main(self._summarise)

    def _summarise(self) -> dict[str, Any]:
        rows = self.run.read_metrics()
        evals = [r for r in rows if r.get("kind") == "eval"]
        if not evals or evals[-1]["step"] != self.step:
            self.evaluate()
            evals = [r for r in self.run.read_metrics() if r.get("kind") == "eval"]
        seconds = self.elapsed + time.perf_counter() - self.started
        training = seconds - self.eval_seconds
        final = {k: v for k, v in evals[-1].items() if k not in ("kind", "step", "epoch")}
        summary = {
            **final,
            "step": self.step,
            "epochs": self.step / self.steps_per_epoch,
            "wall_seconds": round(seconds, 3),
            "eval_seconds": round(self.eval_seconds, 3),
            "steps_per_second": round(self.step / training, 2) if training > 0 else None,
        }
        self.run.write_json(self.run.summary, summary)
        return summary


def _saved_state(config: TrainConfig, run: RunDir, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to resume from (None for a new run), after checking the run folder."""
    if resume:
        check_resumable(run.read_json(run.config)["config"], config)
        return run.load_checkpoint()
    if run.checkpoint.exists() or run.config.exists():
        raise RunError(
            f"'{run.root}' already holds a run; use --resume to continue it or choose another --out."
        )
    return None


# ------------------------------------------------------------------------- reloading a run


def load_autoencoder(
    out: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[dict[str, Any], Autoencoder]:
    """Rebuilds the trained autoencoder of a run folder from its config and checkpoint.

    Returns:
        ``(record, model)``: the content of ``config.json`` and the model in eval mode.

    Raises:
        RunError: not a run folder, a run of a custom model, or an unreadable checkpoint.
    """
    run = RunDir(out)
    record = run.read_json(run.config)
    resolved = record.get("resolved", {})
    if not resolved.get("arch"):
        raise RunError(f"'{run.root}' was trained with a custom model; rebuild it in Python.")
    model = build_autoencoder(
        resolved["arch"],
        sample_shape=tuple(resolved["sample_shape"]),
        latent_dim=resolved["latent_dim"],
    )
    model.load_state_dict(run.load_checkpoint(map_location=device)["model"])
    return record, model.to(device).eval()
