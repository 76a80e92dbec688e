"""The objects of one generator training run and their bookkeeping (see generator_training.py).

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
from pathlib import Path
from typing import Any

import torch

from . import __version__, distances, distributed
from .config import resolve_device
from .generator_training import MULTISCALE, GeneratorConfig
from .runs import RunDir, RunError
from .runstate import Meter, NonFiniteLossError

__all__ = ["GeneratorRun", "evaluate_generator", "load_generator", "load_vectors"]

log = logging.getLogger(__name__)

# Fields that may change when a run is resumed.
RESUMABLE = frozenset({"epochs", "eval_points", "log_every", "device", "eval_data"})
# The independent, fixed kernel of the evaluation (in the unit-ball coordinates of the sketch).
EVAL_KERNEL = {"kernel": "gaussian", "bandwidth": 0.1, "scales": (0.25, 0.5, 1.0, 2.0)}
FIGURE_POINTS = 20_000  # generated points in the histogram figure


def load_vectors(
    source: str, *, n: int = 100_000, seed: int = 0
) -> tuple[torch.Tensor, str | None]:
    """Data as (N, D) float64: a toy name (``n`` draws from ``seed``) or a .npy file of vectors.

    Returns:
        ``(data, toy)``: the data, and the toy's name when it is one (its density is known).
    """
    from .toys import TOYS, toy_dataset

    if source in TOYS:
        return toy_dataset(source, n, seed=seed).double(), source
    from .data import load_split

    train = load_split(source, "train")
    if train.is_image:
        return train.get_batch(torch.arange(len(train))).flatten(1).double(), None
    return train.get_batch(torch.arange(len(train))).double(), None


class GeneratorRun:
    """Generator, optimizer, target (sketch or data) and bookkeeping of one run."""

    @classmethod
    def start(cls, config: GeneratorConfig, out: str | os.PathLike[str], *, resume: bool):
        from .generators import build_generator
        from .sketch import Sketch, unit_ball_scaling

        s = cls()
        s.run, s.world = RunDir(out), distributed.world()
        state = distributed.on_main(_saved_state, config, s.run, resume)
        s.config = config.validate()
        distributed.check_divisible(config.batch_size, "batch_size")
        s.device = distributed.rank_device(resolve_device(config.device))
        s.toy = None
        if config.objective == "sketch":
            s.sketch = Sketch.load(config.sketch)
            s.sketch.features.to(s.device)
            dim = s.sketch.features.dim
            center = s.sketch.center
            s.center = torch.zeros(dim, dtype=torch.float64) if center is None else center.double()
            s.scale = float(s.sketch.scale)
            s.data = None
            source = config.eval_data or getattr(s.sketch, "source", None)
        else:
            raw, s.toy = load_vectors(config.dataset, seed=config.seed)
            dim = raw.shape[1]
            s.center, s.scale = torch.zeros(dim, dtype=torch.float64), unit_ball_scaling(raw)
            s.data = (raw / s.scale).float().to(s.device)  # (N, D), unit-ball coordinates
            source = config.eval_data or config.dataset
        s.heldout = None
        if source:
            heldout, toy = load_vectors(
                source, n=max(config.eval_points, 10_000), seed=config.seed + 1
            )
            s.toy = s.toy or toy
            s.heldout = ((heldout - s.center) / s.scale).float()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            s.generator = build_generator(
                config.arch, sample_shape=(dim,), latent_dim=config.latent_dim
            )
        s.generator.to(s.device)
        s.optimizer = torch.optim.Adam(s.generator.parameters(), lr=config.lr)
        s.gen = torch.Generator(device=s.device).manual_seed(config.seed + 1)
        latent = s.generator.latent_dim
        n_codes = config.latent_codes or 100_000
        s.codes = None
        if config.latent_codes:
            code_gen = torch.Generator().manual_seed(config.seed + 2)
            s.codes = torch.randn(n_codes, latent, generator=code_gen).to(s.device)  # kept all run
        s.steps_per_epoch = math.ceil(n_codes / config.batch_size)
        s.total_steps = config.epochs * s.steps_per_epoch
        s.step = s.epoch = s.batch = 0
        s.meter, s.epoch_meter = Meter(), Meter()
        s.best, s.bad_epochs, s.stopped_early = math.inf, 0, False
        s.elapsed, s.eval_seconds = 0.0, 0.0
        s.started = time.perf_counter()
        s.agreed_stop = False
        if state is None:
            if s.world.is_main:
                s.run.write_json(s.run.config, s._record(dim))
            s.evaluate()  # the untrained generator: where the curves start
            s.save()
        else:
            s._restore(state)
        return s

    def _record(self, dim: int) -> dict[str, Any]:
        return {
            "kind": "generator",
            "config": dataclasses.asdict(self.config),
            "resolved": {
                "arch": self.config.arch,
                "latent_dim": self.generator.latent_dim,
                "sample_shape": [dim],
                "center": self.center.tolist(),
                "scale": self.scale,
                "toy": self.toy,
                "steps_per_epoch": self.steps_per_epoch,
            },
            "distmatch_version": __version__,
        }

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

    def latent_batch(self, order: torch.Tensor, batch: int) -> torch.Tensor:
        """(B_r, latent_dim): this rank's part of the latent codes of the global batch."""
        part, _ = distributed.split_batch(self._global_batch(order, batch))
        if self.codes is None:
            shape = (self.config.batch_size, self.generator.latent_dim)
            codes = torch.randn(shape, generator=self.gen, device=self.device)  # alike on all ranks
            return codes if self.world.size == 1 else codes[part.to(self.device)]
        return self.codes[part.to(self.device)]

    def loss(self, x: torch.Tensor, order: torch.Tensor, batch: int) -> torch.Tensor:
        """The squared sketch distance, or the exact MMD against a random batch of the data.

        ``x`` (B_r, D) is this rank's part; the loss is that of the global batch on every rank:
        the sketch distance of the all-reduced mean features, or the MMD of the gathered samples.
        """
        if self.config.objective == "sketch":
            return self._form(distributed.sketch_distance(self.sketch, x))
        _, sizes = distributed.split_batch(self._global_batch(order, batch))
        x = distributed.all_gather_rows(x, sizes)  # (B, D)
        index = torch.randint(
            self.data.shape[0], (x.shape[0],), generator=self.gen, device=self.device
        )
        y = self.data[index]  # (B, D)
        if self.config.kernel == "multiscale":
            options = {"kernel": "gaussian", "scales": MULTISCALE}
        else:
            options = {
                "kernel": "folded_gaussian" if self.config.law == "folded_gaussian" else "gaussian"
            }
        return self._form(distances.mmd(x, y, bandwidth=self.config.bandwidth, **options))

    def _form(self, squared: torch.Tensor) -> torch.Tensor:
        """The trained loss: the squared distance, or its root (clamped: unbiased MMD^2 may dip
        below 0)."""
        return squared if self.config.loss_form == "squared" else squared.clamp_min(1e-12).sqrt()

    def sync(self, stop: Any) -> None:
        """Across ranks: averages the gradients and agrees on stopping (one all-reduce)."""
        if self.world.size > 1:
            params = self.generator.parameters()
            (self.agreed_stop,) = distributed.average_gradients(params, (stop.requested,))

    def stopping(self, stop: Any) -> bool:
        """Whether a signal asks to stop: this process's flag, or the ranks' agreed one."""
        return self.agreed_stop if self.world.size > 1 else stop.requested

    def record(self, loss: torch.Tensor) -> None:
        """Adds the batch's loss, and the distance in both units (MMD and MMD^2)."""
        loss = loss.detach()
        if self.config.loss_form == "squared":
            parts = {"loss": loss, "distance": loss.clamp_min(0).sqrt(), "distance_squared": loss}
        else:
            parts = {"loss": loss, "distance": loss, "distance_squared": loss.square()}
        self.meter.add(parts)
        self.epoch_meter.add(parts)

    def log_interval(self) -> dict[str, str]:
        if not self.meter.finite():
            self.save()  # raises NonFiniteLossError
        means = self.meter.flush()
        if self.world.is_main:
            row = {"kind": "train", "step": self.step, "epoch": self.epoch, **means}
            self.run.append_metrics(row)
        return {key: f"{value:.4g}" for key, value in means.items()}

    # ---------------------------------------------------------------------------- an epoch
    def end_epoch(self) -> None:
        """Epoch loss and early stopping (as Keras: min_delta, patience), evaluation, checkpoint."""
        if not self.epoch_meter.finite():
            self.save()
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
        self.evaluate()
        self.save()

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics, a metrics row and figures (rank 0 only)."""
        if not self.world.is_main:
            return {}
        started = time.perf_counter()
        gen = torch.Generator().manual_seed(self.config.seed * 7919 + self.epoch)
        metrics: dict[str, float] = {}
        shown = max(self.config.eval_points, FIGURE_POINTS)  # generating is cheap; metrics are not
        with torch.no_grad():
            z = torch.randn(shown, self.generator.latent_dim, generator=gen)
            samples = self.generator(z.to(self.device)).double().cpu()  # (P, D) sketch coordinates
        if self.heldout is not None:
            metrics = evaluate_generator(
                samples[: self.config.eval_points], self.heldout, self._unscale, self.toy, gen
            )
        self.run.append_metrics({"kind": "eval", "step": self.step, "epoch": self.epoch, **metrics})
        self._figures(samples)
        self.eval_seconds += time.perf_counter() - started
        return metrics

    def _unscale(self, x: torch.Tensor) -> torch.Tensor:
        return x.double() * self.scale + self.center

    def _figures(self, samples: torch.Tensor) -> None:
        from .plots import save_generator_curves, save_histograms, save_sketch_density

        folder = self.run.figures
        data = self._unscale(self.heldout).numpy() if self.heldout is not None else None
        save_histograms(data, self._unscale(samples).numpy(), folder / "histograms.png")
        density = folder / "sketch_density.png"
        if (
            self.config.objective == "sketch"
            and self.sketch.features.dim == 2
            and not density.exists()
        ):
            save_sketch_density(self.sketch, density)  # depends on the sketch alone: drawn once
        save_generator_curves(self.run.read_metrics(), folder / "curves.png")

    # ------------------------------------------------------------------------- checkpoints
    def save(self) -> None:
        if not (self.meter.finite() and self.epoch_meter.finite()):
            raise NonFiniteLossError(
                f"the loss became NaN or infinite before step {self.step} (lr={self.config.lr}); "
                f"the run stopped and {self.run.checkpoint} keeps the last good state."
            )
        if self.world.is_main:
            self._write_checkpoint()

    def _write_checkpoint(self) -> None:
        self.run.save_checkpoint(
            {
                "step": self.step,
                "epoch": self.epoch,
                "batch": self.batch,
                "generator": self.generator.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": self.gen.get_state(),
                "meter": self.meter.state(),
                "epoch_meter": self.epoch_meter.state(),
                "best": self.best,
                "bad_epochs": self.bad_epochs,
                "stopped_early": self.stopped_early,
                "elapsed": self.elapsed + time.perf_counter() - self.started,
                "eval_seconds": self.eval_seconds,
            }
        )

    def _restore(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.gen.set_state(state["rng"])
        self.step, self.epoch, self.batch = state["step"], state["epoch"], state["batch"]
        self.meter, self.epoch_meter = Meter(state["meter"]), Meter(state["epoch_meter"])
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
        self.stopped_early = bool(state["stopped_early"])
        self.elapsed, self.eval_seconds = float(state["elapsed"]), float(state["eval_seconds"])
        if self.stopped_early and self.epoch < self.config.epochs:
            self.stopped_early = False  # more epochs were asked for: early stopping starts afresh
            self.bad_epochs = 0
        if self.world.is_main:
            self.run.truncate_metrics(self.step)

    def finish(self) -> dict[str, Any]:
        """``summary.json``, written by rank 0; every rank returns the summary."""
        return distributed.on_main(self._summarise)

    def _summarise(self) -> dict[str, Any]:
        rows = self.run.read_metrics()
        evals = [r for r in rows if r.get("kind") == "eval"]
        epochs = [r for r in rows if r.get("kind") == "epoch"]
        seconds = self.elapsed + time.perf_counter() - self.started
        training = seconds - self.eval_seconds
        summary = {
            **(
                {k: v for k, v in evals[-1].items() if k not in ("kind", "step", "epoch")}
                if evals
                else {}
            ),
            "loss": epochs[-1]["loss"] if epochs else None,
            "best_loss": self.best,
            "epochs": self.epoch,
            "stopped_early": self.stopped_early,
            "step": self.step,
            "wall_seconds": round(seconds, 3),
            "eval_seconds": round(self.eval_seconds, 3),
            "steps_per_second": round(self.step / training, 2) if training > 0 else None,
        }
        self.run.write_json(self.run.summary, summary)
        return summary


def _saved_state(config: GeneratorConfig, run: RunDir, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to resume from (None for a new run), after checking the run folder."""
    if resume:
        saved = run.read_json(run.config)["config"]
        fields = dataclasses.asdict(config)
        defaults = dataclasses.asdict(type(config)())  # fields added since the run was made
        changed = sorted(
            k for k, v in fields.items() if k not in RESUMABLE and saved.get(k, defaults[k]) != v
        )
        if changed:
            raise RunError(
                f"a resumed run must keep its configuration except {', '.join(sorted(RESUMABLE))}; "
                f"got changes to {', '.join(changed)}."
            )
        return run.load_checkpoint()
    if run.checkpoint.exists() or run.config.exists():
        raise RunError(
            f"'{run.root}' already holds a run; use --resume to continue it or choose another --out."
        )
    return None


def evaluate_generator(samples, heldout, unscale, toy, generator) -> dict[str, float]:
    """Held-out MMD (independent fixed kernel), sliced W2 and, for toys, the log-likelihood.

    Args:
        samples: (P, D) generated points, in the sketch's coordinates.
        heldout: (Q, D) fresh data points, same coordinates.
        unscale: maps sketch coordinates back to the data's.
        toy: the toy's name when its density is known, else None.
        generator: randomness for the subsample and the sliced directions.

    Returns:
        ``mmd`` (Gaussian kernel, bandwidths 0.025 to 0.2, unbiased), ``sliced_w2`` (the root of
        the sliced W_2^2 with 200 directions) and ``log_likelihood`` (mean log-density of the
        samples under the true density, in the data's coordinates) for toys.
    """
    from .toys import toy_log_density

    n = min(samples.shape[0], heldout.shape[0])
    index = torch.randperm(heldout.shape[0], generator=generator)[:n]
    y = heldout[index].double()
    x = samples[:n].double()
    metrics = {
        "mmd": float(distances.mmd(x, y, **EVAL_KERNEL)),
        "sliced_w2": math.sqrt(
            float(distances.sliced_wasserstein(x, y, n_projections=200, generator=generator))
        ),
    }
    if toy is not None:
        metrics["log_likelihood"] = float(toy_log_density(toy, unscale(samples)).mean())
    return metrics


def load_generator(out: str | os.PathLike[str], *, device: str | torch.device = "cpu"):
    """Rebuilds the trained generator of a run folder.

    Returns:
        ``(record, generator, unscale)``: the content of ``config.json``, the generator in eval
        mode, and the map from its outputs back to the data's coordinates.
    """
    from .generators import build_generator

    run = RunDir(Path(out))
    record = run.read_json(run.config)
    if record.get("kind") != "generator":
        raise RunError(f"'{run.root}' must be a generator run (fit-sketch, fit-mmd); it is not.")
    resolved = record["resolved"]
    generator = build_generator(
        resolved["arch"],
        sample_shape=tuple(resolved["sample_shape"]),
        latent_dim=resolved["latent_dim"],
    )
    generator.load_state_dict(run.load_checkpoint(map_location=device)["generator"])
    center = torch.tensor(resolved["center"], dtype=torch.float64)
    scale = float(resolved["scale"])

    def unscale(x: torch.Tensor) -> torch.Tensor:
        return x.double().cpu() * scale + center

    return record, generator.to(device).eval(), unscale
