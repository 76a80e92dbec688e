"""The objects of one generator training run and their bookkeeping.

Part of :mod:`distmatch.generation`; the loop is :func:`distmatch.generation.train_generator`.
Across P ranks (:mod:`distmatch.distributed`) each rank generates its part of every global batch,
the loss is that of the global batch on every rank, and rank 0 alone reads the checkpoint (the
others receive it), evaluates and writes files.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Iterable
from typing import Any

import torch

from .. import __version__, distances, distributed
from .. import sketch as sk
from .._core import check_memory
from ..data import TOYS, load_split, toy_dataset
from ..models import build_generator, default_generator
from ..runs import Meter, RunDir, RunEngine
from ..sketch import sketch_distance, unit_ball_scaling
from ._classes import load_sketches
from ._config import DEFAULTS, MULTISCALE, RESUMABLE_FIELDS, GeneratorConfig
from ._evaluation import FIGURE_POINTS, HeldOut

# Figures are redrawn after an epoch while the time spent drawing them stays under this share of
# the run's; the first and the last evaluation always draw them.
FIGURE_SHARE = 0.05

__all__ = ["GeneratorRun"]

log = logging.getLogger("distmatch.generation")


def _mmd_data(config: GeneratorConfig) -> tuple[torch.Tensor, tuple[int, ...], str | None]:
    """The data of the exact-MMD baseline: ``(x (N, D) float64, sample shape, toy name)``."""
    if config.dataset in TOYS:
        return toy_dataset(config.dataset, 100_000, seed=config.seed).double(), (2,), config.dataset
    train = load_split(config.dataset, "train", data_dir=config.data_dir)
    x = train.get_batch(torch.arange(len(train))).flatten(1).double()  # (N, D)
    return x, tuple(train.sample_shape) if train.is_image else (x.shape[1],), None


def _on(labels: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if labels is None else labels.to(device)


class GeneratorRun(RunEngine):
    """Generator, optimizer, target (sketch or data) and bookkeeping of one run.

    Attributes:
        generator: the network being trained.
        rng: the run's random generator (fresh codes, data batches of the MMD baseline).
    """

    config: GeneratorConfig

    @classmethod
    def start(
        cls, config: GeneratorConfig, out: str | os.PathLike[str], *, resume: bool
    ) -> GeneratorRun:
        s = cls()
        run = RunDir(out)
        config.validate()  # before anything is read: bad options fail first
        s.device = distributed.rank_device(config.device)
        s.law = s.bandwidth = None
        s.classes = None  # ClassSketches of a class-conditional generator
        if config.objective == "sketch":
            s.sketch, s.classes = load_sketches(
                config.sketch_files(), conditional=config.conditional
            )
            s.sketch.features.to(s.device)
            dim = s.sketch.features.dim
            shape = s.sketch.sample_shape or (dim,)
            center = s.sketch.center
            s.center = torch.zeros(dim, dtype=torch.float64) if center is None else center.double()
            s.scale = float(s.sketch.scale)
            s.data, toy = None, None
            source = config.eval_data or s.sketch.source
            data_dir = config.data_dir or s.sketch.data_dir
            if not config.eval_data and source and os.sep in source and not os.path.exists(source):
                # the sketch names a file of the machine that made it: training reads the
                # sketch alone, and goes on without held-out metrics where that file is not
                log.warning(
                    "the sketch's data '%s' is not here: no held-out metrics (--eval-data gives "
                    "some)", source,
                )  # fmt: skip
                source = None
        else:
            s.sketch = None
            raw, shape, toy = _mmd_data(config)
            dim, images = raw.shape[1], len(shape) == 3
            s.center = torch.zeros(dim, dtype=torch.float64)
            s.scale = 1.0 if images else unit_ball_scaling(raw)  # images stay pixels in [0, 1]
            s.data = (raw / s.scale).float().to(s.device)  # (N, D), sketch coordinates
            law = config.law
            if law is None and not images and dim != 2:  # the recipe's folded Gaussian: 2-D only
                law = "gaussian"
            s.law, _, s.bandwidth = sk.sketch_recipe(
                dim, image=images, law=law, bandwidth=config.bandwidth
            )
            if s.law == "folded_gaussian" and dim != 2 and config.kernel == "matched":
                raise ValueError(
                    f"law 'folded_gaussian' has a closed-form kernel in 2-D only; got D = {dim} "
                    "(use law 'gaussian', or kernel 'multiscale')."
                )
            if s.bandwidth is None:
                rows = torch.randperm(
                    len(raw), generator=torch.Generator().manual_seed(config.seed)
                )
                probe = s.data[rows[: sk.BANDWIDTH_PROBE].to(s.device)]
                s.bandwidth = sk.median_bandwidth(probe.double().cpu(), law=s.law)
            source, data_dir = config.eval_data or config.dataset, config.data_dir
        s.sample_shape = tuple(shape)
        config = config.filled(images=len(shape) == 3)
        state = s.open(config, run, resume=resume, resumable=RESUMABLE_FIELDS, defaults=DEFAULTS)
        distributed.check_divisible(config.batch_size, "batch_size")
        s.heldout = HeldOut(
            source, data_dir, shape, s.center, s.scale, config.eval_points, config.seed + 1,
            config.objective, s.device, whole=bool(config.eval_data),
        )  # fmt: skip
        s.toy = toy or s.heldout.toy
        s._check_memory(dim)
        arch = default_generator(shape) if config.arch == "auto" else config.arch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            s.generator = build_generator(
                arch, sample_shape=shape, latent_dim=config.latent_dim,
                classes=s.classes.classes if s.classes else 0,
            )  # fmt: skip
        s.generator.to(s.device)
        s.optimizer = torch.optim.Adam(s.generator.parameters(), lr=config.lr)
        s.rng = torch.Generator(device=s.device).manual_seed(config.seed + 1)
        latent = s.generator.latent_dim
        n_codes = config.latent_codes or 100_000
        s.codes = None
        if config.latent_codes:
            check_memory(8 * n_codes * latent, f"latent_codes={n_codes} kept codes", s.device)
            code_gen = torch.Generator().manual_seed(config.seed + 2)
            s.codes = torch.randn(n_codes, latent, generator=code_gen).to(s.device)  # kept all run
        s.steps_per_epoch = math.ceil(n_codes / config.batch_size)
        s.layouts = {}  # global batch size -> [labels, rows of each class] (conditional runs)
        last = n_codes - (s.steps_per_epoch - 1) * config.batch_size
        if s.classes is not None:
            s.classes.check_batch(config.batch_size, last, config.estimator)
        else:
            _check_batch(config, last)
        s.total_steps = config.epochs * s.steps_per_epoch
        s.epoch_meter = Meter()
        s.best, s.bad_epochs, s.stopped_early = math.inf, 0, False
        s.figure_seconds = 0.0
        s.begin(run, s._record(dim), state)
        if s.epoch + (s.batch > 0) > config.epochs and s.world.is_main:
            log.warning(
                "the run is at step %d (%d full epochs), past the %d epochs asked for: nothing "
                "to train (give more --epochs to extend it)", s.step, s.epoch, config.epochs,
            )  # fmt: skip
        return s

    def _check_memory(self, dim: int) -> None:
        """Refuses a batch whose loss memory cannot hold: the (B, B) kernel matrices of the exact
        MMD, or the (B, m) phases, cosines and sines of the sketch distance (float32)."""
        b = self.config.batch_size
        if self.config.objective == "mmd":
            floats = 3 * (len(MULTISCALE) + 2) * b * b
        else:
            floats = 4 * b * self.sketch.features.n_frequencies
        what = f"batch_size={b} ({self.config.objective} loss)"
        if len(self.sample_shape) == 3:  # the generator's activations: about 40 floats a pixel
            floats += 40 * b * dim
        check_memory(4 * (floats + 4 * b * dim), what, self.device)

    def _record(self, dim: int) -> dict[str, Any]:
        return {
            "kind": "generator",
            "config": dataclasses.asdict(self.config),
            "resolved": {
                "arch": self.generator.arch,
                "latent_dim": self.generator.latent_dim,
                "sample_shape": list(self.sample_shape),
                "law": self.law,
                "bandwidth": self.bandwidth,
                "center": self.center.tolist(),
                "scale": self.scale,
                "toy": self.toy,
                "steps_per_epoch": self.steps_per_epoch,
                "classes": self.classes.classes if self.classes else 0,
                "labels": list(self.classes.labels) if self.classes else None,
                "class_weights": self.classes.weights.tolist() if self.classes else None,
            },
            "distmatch_version": __version__,
        }

    def before_first_save(self) -> None:
        self.evaluate(final=True)  # the untrained generator: where the curves start

    # --------------------------------------------------------------------------------- a step
    def epoch_order(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.epoch + 29)
        return torch.randperm(self.codes.shape[0] if self.codes is not None else 1, generator=gen)

    def _global_batch(self, order: torch.Tensor, batch: int) -> torch.Tensor:
        """(B,) the global batch: indices of kept codes, or rows of the fresh draw."""
        size = self.config.batch_size
        if self.codes is None:
            return torch.arange(size)
        return order[batch * size : (batch + 1) * size]

    def latent_batch(
        self, order: torch.Tensor, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's part of the global batch: ``(codes (B_r, latent_dim), classes (B_r,))``,
        the classes None for an unconditional generator (see :meth:`_layout`)."""
        index = self._global_batch(order, batch)
        part, _ = distributed.split_batch(index)
        labels = self._layout(len(index))[0] if self.classes is not None else None
        if self.codes is None:
            shape = (self.config.batch_size, self.generator.latent_dim)
            codes = torch.randn(shape, generator=self.rng, device=self.device)  # alike on all ranks
            return (codes if self.world.size == 1 else codes[part.to(self.device)]), labels
        return self.codes[part.to(self.device)], labels

    def _layout(self, size: int) -> list[torch.Tensor]:
        """``[classes (B_r,), rows of class 0, ..., rows of class C-1]`` of this rank's part of a
        global batch of ``size``: position ``p`` of the global batch is of class ``p mod C``
        (:mod:`distmatch.generation._classes`). Computed once per size, kept on the device."""
        if size not in self.layouts:
            positions, _ = distributed.split_batch(torch.arange(size))
            self.layouts[size] = self.classes.batch_labels(positions, self.device)
        return self.layouts[size]

    def to_sketch(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) sketch coordinates of samples: image generators emit pixels, which are mapped
        by the sketch's ``(x - center) / scale``; vector generators emit sketch coordinates."""
        if len(self.sample_shape) != 3:
            return x
        x = x.flatten(1)
        return x if self.scale == 1.0 and not self.center.any() else (x - self.center) / self.scale

    def loss(self, x: torch.Tensor, order: torch.Tensor, batch: int) -> torch.Tensor:
        """The squared sketch distance (class-conditional runs: its class-weighted sum over the
        classes), or the exact MMD against a random batch of the data.

        ``x`` (B_r, *sample_shape) is this rank's part; the loss is that of the global batch on
        every rank: the sketch distance of the all-reduced mean features, or the MMD of the
        gathered samples.
        """
        if not bool(torch.isfinite(x.detach()).all()):
            raise self.diverged()  # a diverged generator, not bad input
        x = self.to_sketch(x)  # (B_r, D)
        if self.config.objective == "sketch":
            if self.classes is not None:
                rows = self._layout(len(self._global_batch(order, batch)))[1:]
                distance = self.classes.distance(x, rows, estimator=self.config.estimator)
            else:
                distance = sketch_distance(
                    self.sketch, x, estimator=self.config.estimator, across_ranks=True
                )
            return self._form(distance)
        _, sizes = distributed.split_batch(self._global_batch(order, batch))
        x = distributed.all_gather_rows(x, sizes)  # (B, D)
        index = torch.randint(
            self.data.shape[0], (x.shape[0],), generator=self.rng, device=self.device
        )
        y = self.data[index]  # (B, D)
        if self.config.kernel == "multiscale" or self.law == "multiscale_gaussian":
            options = {"kernel": "gaussian", "scales": MULTISCALE}  # the law's kernel, times 5
        else:
            options = {"kernel": "folded_gaussian" if self.law == "folded_gaussian" else "gaussian"}
        return self._form(distances.mmd(x, y, bandwidth=self.bandwidth, **options))

    def loss_label(self) -> str:
        """What the loss is, for the curves' axis."""
        what = "sketch distance" if self.config.objective == "sketch" else "MMD"
        if self.config.loss_form == "squared":
            return f"squared {what} (MMD^2 estimate)" if what != "MMD" else "MMD^2"
        return f"{what} (MMD estimate)" if what != "MMD" else "MMD"

    def _form(self, squared: torch.Tensor) -> torch.Tensor:
        """The trained loss: the squared distance, or its root (clamped: unbiased MMD^2 may dip
        below 0)."""
        return squared if self.config.loss_form == "squared" else squared.clamp_min(1e-12).sqrt()

    def record(self, loss: torch.Tensor) -> None:
        """Adds the batch's loss, and the distance in both units (MMD and MMD^2)."""
        loss = loss.detach()
        if self.config.loss_form == "squared":
            parts = {"loss": loss, "distance": loss.clamp_min(0).sqrt(), "distance_squared": loss}
        else:
            parts = {"loss": loss, "distance": loss, "distance_squared": loss.square()}
        self.meter.add(parts)
        self.epoch_meter.add(parts)

    # ---------------------------------------------------------------------------- an epoch
    def end_epoch(self) -> None:
        """Epoch loss and early stopping (as Keras: min_delta, patience), evaluation, checkpoint."""
        if not self.epoch_meter.finite():
            self.save()  # raises NonFiniteLossError
        means = self.epoch_meter.flush()
        loss = means["loss"]
        self.epoch, self.batch = self.epoch + 1, 0
        if loss < self.best - self.config.min_delta:
            self.best, self.bad_epochs = loss, 0
        else:
            self.bad_epochs += 1
        self.stopped_early = self.bad_epochs >= self.config.patience
        row = {"kind": "epoch", "step": self.step, "epoch": self.epoch, **means}
        if self.world.is_main:
            self.run.append_metrics(row)
        self.evaluate(final=self.epoch >= self.config.epochs or self.stopped_early)
        self.save()

    def evaluate(self, *, final: bool = False) -> dict[str, float]:
        """Held-out metrics and a metrics row, and figures when they keep within their share of
        the run's time (``FIGURE_SHARE``) or ``final`` (rank 0 only)."""
        if not self.world.is_main:
            return {}
        started = time.perf_counter()
        wall = started - self.started + self.elapsed
        draw = final or self.figure_seconds <= FIGURE_SHARE * wall
        gen = torch.Generator().manual_seed(self.config.seed * 7919 + self.epoch)
        images = len(self.sample_shape) == 3
        shown = self.config.eval_points if images else max(self.config.eval_points, FIGURE_POINTS)
        z = torch.randn(shown, self.generator.latent_dim, generator=gen)
        labels = grid = None
        if self.classes is not None:  # classes drawn with the data's class weights
            labels = torch.multinomial(self.classes.weights, shown, replacement=True, generator=gen)
        with torch.no_grad():
            samples = self.generator(z.to(self.device), _on(labels, self.device)).cpu()
            if self.classes is not None and images:  # the grid: a row of 10 per class
                rows = torch.arange(min(self.classes.classes, 10)).repeat_interleave(10)
                grid = self.generator(z[: len(rows)].to(self.device), rows.to(self.device)).cpu()
        data_labels = None if labels is None else torch.tensor(self.classes.labels)[labels]
        metrics = self.heldout.metrics(
            samples[: self.config.eval_points], gen,
            None if data_labels is None else data_labels[: self.config.eval_points],
        )  # fmt: skip
        self.run.append_metrics({"kind": "eval", "step": self.step, "epoch": self.epoch, **metrics})
        if draw:
            drawing = time.perf_counter()
            self.heldout.figures(
                samples if grid is None else grid, self.run.figures, self.sketch,
                self.run.read_metrics(), self.loss_label(),
            )  # fmt: skip
            self.figure_seconds += time.perf_counter() - drawing
        self.eval_seconds += time.perf_counter() - started
        return metrics

    # ---------------------------------------------------------------- RunEngine's hooks
    def parameters(self) -> Iterable[torch.Tensor]:
        return self.generator.parameters()

    def meters(self) -> tuple[Meter, ...]:
        return (self.meter, self.epoch_meter)

    def diverged_hint(self) -> str:
        return f" (lr={self.config.lr})"

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.get_state(),
            "epoch_meter": self.epoch_meter.state(),
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.epoch_meter = Meter(state["epoch_meter"])
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
        self.stopped_early = bool(state["stopped_early"])
        asked = (state.get("config") or {}).get("epochs")  # the epochs of the run so far
        if self.stopped_early and asked is not None and self.config.epochs > asked:
            self.stopped_early = False  # more epochs were asked for: early stopping starts afresh
            self.bad_epochs = 0

    def summary_fields(self) -> dict[str, Any]:
        rows = self.run.read_metrics()
        evals = [r for r in rows if r.get("kind") == "eval"]
        epochs = [r for r in rows if r.get("kind") == "epoch"]
        final = (
            {k: v for k, v in evals[-1].items() if k not in ("kind", "step", "epoch")}
            if evals
            else {}
        )
        return {
            **final,
            "loss": epochs[-1]["loss"] if epochs else None,
            "best_loss": self.best,
            "epochs": self.epoch,
            "stopped_early": self.stopped_early,
            "step": self.step,
        }


def _check_batch(config: GeneratorConfig, last: int) -> None:
    """Refuses batches too small for the run's estimate, before training: 2 samples for an
    unbiased one (the sketch's unbiased estimator, or fit-mmd's MMD), else 1; ``last`` is the size
    of an epoch's last batch."""
    unbiased = config.objective == "mmd" or config.estimator == "unbiased"
    if min(config.batch_size, last) < (2 if unbiased else 1):
        what = "the MMD" if config.objective == "mmd" else "the unbiased estimator"
        raise ValueError(
            f"batch_size must give every batch at least 2 samples for {what}, and so must an "
            f"epoch's last batch; got {config.batch_size} (last batch {last}): change the batch "
            "size or the number of latent codes."
        )
