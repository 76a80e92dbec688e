"""The objects of one moving-window training run and their bookkeeping.

Part of :mod:`distmatch.training`. :class:`RunState` builds the data, model, memory (window or
moving sketch), optimizer and objective of a run, and writes and restores its checkpoint, logs,
evaluates and summarises through :class:`distmatch.runs.RunEngine`; the loop itself is
:func:`distmatch.training.train`.

Across P ranks (:mod:`distmatch.distributed`) every rank holds the same state and takes the same
decisions; rank 0 alone reads the checkpoint (the others receive it), writes files and evaluates.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .. import __version__, distributed
from .._core import available_memory, check_memory, fused_optimizer
from ..data import TEST_EVERY, SampleSet, TensorSet, describe, load_split
from ..evaluation import evaluate_autoencoder
from ..models import Autoencoder, build_autoencoder, warn_if_batchnorm
from ..objectives import DISTANCE_LABELS, AutoencoderObjective
from ..report import save_autoencoder_figures, save_training_curves
from ..runs import RunDir, RunEngine
from ..window import FeatureWindow, MovingSketch, MovingWindow
from ._config import (
    DEFAULT_ARCH,
    RESUMABLE_FIELDS,
    SAVED_DEFAULTS,
    TrainConfig,
    optimizer_settings,
)

__all__ = ["RunState"]

log = logging.getLogger("distmatch.training")

DATA_ON_GPU = 0.25  # largest share of the free GPU memory that a training split may take there


class RunState(RunEngine):
    """The objects of one run and their bookkeeping; built by :meth:`start`.

    Attributes:
        rng: the run's random generator (window fill, prior draws, sliced directions).
        memory: the :class:`~distmatch.window.MovingWindow` of past codes, or for
            ``memory="sketch"`` their :class:`~distmatch.window.MovingSketch`.
        compiled: whether the steps run compiled (set by the loop; saved, so that a resumed
            ``compile="auto"`` run keeps the choice of the run it continues).
    """

    compiled: bool | None = None
    config: TrainConfig
    train_set: SampleSet
    test_set: SampleSet
    model: nn.Module
    memory: MovingWindow | MovingSketch

    @classmethod
    def start(
        cls, config: TrainConfig, run: RunDir, *, resume: bool, model: nn.Module | None
    ) -> RunState:
        s = cls()
        state = s.open(
            config, run, resume=resume, resumable=RESUMABLE_FIELDS, defaults=SAVED_DEFAULTS
        )
        distributed.check_divisible(config.k, "k")
        s.device = distributed.rank_device(config.device)
        s.train_set = load_split(config.dataset, "train", **s._data_options())
        s.test_set = load_split(config.dataset, "test", **s._data_options())
        log.info("%s; %s", describe(s.train_set), describe(s.test_set))
        s._keep_data_on_the_device()
        s.model = (model if model is not None else s._build_model()).to(s.device)
        if model is not None:
            warn_if_batchnorm(model, config.k // s.world.size)
        params = s.model.parameters()
        settings = {**optimizer_settings(config), **fused_optimizer(s.device)}
        if settings["lr"] != config.lr:
            log.info(
                "%s steps with lr %.3g (--lr %g, --lr-rule %s, k=%d, n=%d)",
                config.optimizer, settings["lr"], config.lr, config.lr_rule, config.k, config.n,
            )  # fmt: skip
        s.optimizer = (
            torch.optim.Adam(params, **settings)
            if config.optimizer == "adam"
            else torch.optim.SGD(params, **settings)
        )
        s.objective = AutoencoderObjective(
            config.model,
            lam=config.lam,
            reconstruction=config.reconstruction,
            latent_dim=int(s.model.latent_dim),
            sketch_frequencies=config.sketch_frequencies,
            sketch_bandwidth=config.sketch_bandwidth,
        )
        s._check_sizes()
        s.rng = torch.Generator(device=s.device).manual_seed(config.seed + 1)
        s.memory = s._memory(int(s.model.latent_dim))
        # data indices of the window's codes (-1: a prior draw), for refresh_every
        s.window_inputs = torch.full((config.n - config.k,), -1, dtype=torch.long)
        s.steps_per_epoch = math.ceil(len(s.train_set) / config.k)
        s.total_steps = config.steps or config.epochs * s.steps_per_epoch
        s.begin(run, s._config_record(custom=model is not None), state)
        if s.step > s.total_steps and s.world.is_main:
            log.warning(
                "the run is at step %d, past the %d steps asked for: nothing to train (give more "
                "--steps or --epochs to extend it)", s.step, s.total_steps,
            )  # fmt: skip
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
        if c.model == "skwae":  # the same window, joined as a sketch (see FeatureWindow)
            return FeatureWindow(
                c.n, c.k, dim, m=c.sketch_frequencies, bandwidth=c.sketch_bandwidth,
                init=c.window_init, reset_each_epoch=c.reset_each_epoch, refresh=c.refresh,
                generator=self.rng, device=self.device,
            )  # fmt: skip
        return MovingWindow(
            c.n,
            c.k,
            dim,
            init=c.window_init,
            reset_each_epoch=c.reset_each_epoch,
            refresh=c.refresh,
            generator=self.rng,
            device=self.device,
        )

    def _keep_data_on_the_device(self) -> None:
        """On a GPU, a training split held in memory that takes at most ``DATA_ON_GPU`` of the free
        GPU memory moves there: a k = 1 step then reads its image without a host copy."""
        if self.device.type != "cuda" or not isinstance(self.train_set, TensorSet):
            return
        free = available_memory(self.device)
        if free is not None and self.train_set.nbytes <= DATA_ON_GPU * free:
            self.train_set.to(self.device)
            log.info("training split kept on %s (%d bytes)", self.device, self.train_set.nbytes)

    def _check_sizes(self) -> None:
        """Refuses what would silently train something else (batches smaller than ``k``) or fail
        after minutes (a distance over ``n`` codes that memory cannot hold)."""
        c, size = self.config, len(self.train_set)
        if len(self.test_set) < 2:
            raise ValueError(
                f"the test split of {c.dataset} must hold at least 2 samples for the evaluation's "
                f"distances; got {len(self.test_set)} (without its own test split a data set "
                f"gives its last tenth: it needs at least {2 * TEST_EVERY} samples)."
            )
        if c.k > size:
            raise ValueError(
                f"k must be at most the size of the training split ({size} samples of "
                f"{c.dataset}); got k={c.k}."
            )
        dim = int(self.model.latent_dim)
        needed = self.objective.distance_memory(c.n, dim) + 4 * c.n * dim  # and the window
        check_memory(needed, f"the {c.model} distance of n={c.n} codes", self.device)

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
                # the rate the optimizer steps with: --lr after --lr-rule (lr * k / n for SGD)
                "lr": optimizer_settings(self.config)["lr"],
            },
            "distmatch_version": __version__,
        }

    # ---------------------------------------------------------------- RunEngine's hooks
    def parameters(self) -> Iterable[torch.Tensor]:
        return self.model.parameters()

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "window": self.memory.state_dict(),
            "window_inputs": self.window_inputs,
            "generator": self.rng.get_state(),
            "global_rng": torch.get_rng_state(),
            "finished": self.step >= self.total_steps,
            "compiled": self.compiled,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        saved = state["optimizer"]
        for group, current in zip(saved["param_groups"], self.optimizer.param_groups, strict=True):
            for flag in ("fused", "capturable", "foreach"):  # this process's implementation
                if flag in current:
                    group[flag] = current[flag]
        self.optimizer.load_state_dict(saved)
        self.compiled = state.get("compiled")  # absent: runs saved before the choice was kept
        self.memory.load_state_dict(state["window"])
        self.window_inputs = state.get("window_inputs", self.window_inputs)  # absent: older runs
        self.rng.set_state(state["generator"])
        torch.set_rng_state(state["global_rng"])

    def diverged_hint(self) -> str:
        c = self.config
        return f" ({c.model}, {c.optimizer}, lr={c.lr})"

    def checkpoint_due(self) -> bool:
        """Every ``checkpoint_every`` steps, and after ``checkpoint_minutes`` (agreed by the ranks)."""
        by_steps = self.step - self.step_at_save >= self.config.checkpoint_every
        by_time = self.agreed["save"] if self.world.size > 1 else self.minutes_passed()
        return by_steps or by_time

    # ----------------------------------------------------------------------- evaluation
    def evaluation_due(self) -> bool:
        every = self.config.eval_every
        return self.epoch == 1 or self.epoch % every == 0 or self.step >= self.total_steps

    def evaluate(self) -> dict[str, float]:
        """Paper metrics on the test split, a metrics row, and fresh figures (rank 0 only)."""
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
        save_training_curves(
            self.run.read_metrics(),
            self.run.figures / "curves.png",
            distance_label=DISTANCE_LABELS[self.config.model],
        )
        self.eval_seconds += time.perf_counter() - started
        return metrics

    def summary_fields(self) -> dict[str, Any]:
        """The last evaluation (made now unless the last epoch just had one) and the position."""
        evals = [r for r in self.run.read_metrics() if r.get("kind") == "eval"]
        if not evals or evals[-1]["step"] != self.step:
            self.evaluate()
            evals = [r for r in self.run.read_metrics() if r.get("kind") == "eval"]
        final = {k: v for k, v in evals[-1].items() if k not in ("kind", "step", "epoch")}
        return {**final, "step": self.step, "epochs": self.step / self.steps_per_epoch}
