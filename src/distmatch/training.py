"""Moving-window training of WAE, CWAE and SWAE autoencoders: one visible loop.

Each step takes ``k`` inputs, encodes them, joins the ``k`` fresh codes with the ``n - k`` codes of
the window, takes one optimizer step on ``reconstruction + lam * distance(joined codes)`` and pushes
the codes into the window. ``k == n`` is classical mini-batch training.

Runs are resumable: the checkpoint holds the model, optimizer, window, random-generator state, the
position in the epoch and the partial sums of the current logging interval. The epoch order depends
only on (seed, epoch) and evaluation draws from its own generator, so a run that is killed and resumed
ends bit-identical (on CPU) to one that never stopped.

Reference: Spurek et al., "One-element Batch Training by Moving Window", arXiv:1905.12947.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from . import __version__
from .data import SampleSet, describe, load_split
from .distances._checks import check_choice, check_positive, check_positive_int
from .metrics import evaluate_autoencoder
from .models import Autoencoder, build_autoencoder, warn_if_batchnorm
from .objectives import LATENT_DISTANCES, RECONSTRUCTIONS, AutoencoderObjective
from .runs import RunDir, RunError
from .window import INITS, REFRESHES, MovingWindow

__all__ = [
    "DEFAULT_ARCH",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainingInterrupted",
    "load_autoencoder",
    "resumed_config",
    "train",
]

log = logging.getLogger(__name__)

DEFAULT_ARCH = {
    "digits": "mlp",
    "mnist": "mnist_mlp",
    "fashion_mnist": "fmnist_conv",
    "cifar10": "cifar_conv",
    "celeba": "celeba_conv",
    "ffhq": "ffhq_conv",
}
OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a moving-window training run."""

    # what to train
    model: str = "cwae"  # latent distance: cwae | wae | swae
    dataset: str = "digits"  # a registry name (see distmatch.data) or a .npy path
    data_dir: str | None = None  # folder (or zip) holding the data set's files
    arch: str | None = None  # None: the data set's default architecture (DEFAULT_ARCH)
    latent_dim: int | None = None  # None: the architecture's default
    image_size: int | None = None  # None: the data set's default side (celeba 64, ffhq 1024)
    # moving window
    n: int = 64  # codes the distance term sees
    k: int = 1  # fresh codes per step, i.e. the batch size; k == n: classical batches
    window_init: str = "prior"  # prior | zeros | fill
    reset_each_epoch: bool = True  # refill the window at the start of every epoch
    refresh: str = "none"  # none: push the pre-update codes; reencode: encode again after the step
    # cost
    lam: float = 1.0  # weight of the distance term
    reconstruction: str = "root"  # root: sqrt(mean SSE), the reference's; mean: mean SSE
    # optimisation
    optimizer: str = "adam"  # adam | sgd (plain gradient descent, as the reference)
    lr: float = 1e-3  # learning rate
    epochs: int = 20  # full passes over the training split
    steps: int | None = None  # total optimizer steps; when set it replaces epochs
    seed: int = 0  # seeds initialisation, epoch order, window and prior draws
    # evaluation and output
    eval_every: int = (
        5  # epochs between evaluations and figures (also after epoch 1 and at the end)
    )
    eval_points: int = 2000  # test codes per distance estimate, as in the paper
    log_every: int = 100  # steps per row of metrics.jsonl
    checkpoint_every: int = 5000  # steps between checkpoints (also after every evaluation)
    checkpoint_minutes: float = 5.0  # and at least this often
    device: str = "auto"  # auto: cuda when available, else cpu

    def validate(self) -> TrainConfig:
        """Checks every field; returns ``self``.

        Raises:
            ValueError, TypeError: a field out of range (the message names it).
        """
        check_choice(self.model, "model", LATENT_DISTANCES)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.window_init, "window_init", INITS)
        check_choice(self.refresh, "refresh", REFRESHES)
        check_choice(self.reconstruction, "reconstruction", RECONSTRUCTIONS)
        check_positive_int(self.n, "n")
        check_positive_int(self.k, "k")
        if self.n < 2:
            raise ValueError(
                f"n must be >= 2 (the MMD estimator needs two points); got n={self.n}."
            )
        if self.k > self.n:
            raise ValueError(f"k must be between 1 and n={self.n}; got k={self.k}.")
        check_positive(self.lr, "lr")
        check_positive(self.lam, "lam")
        check_positive(self.checkpoint_minutes, "checkpoint_minutes")
        for name in ("epochs", "eval_every", "eval_points", "log_every", "checkpoint_every"):
            check_positive_int(getattr(self, name), name)
        for name in ("steps", "latent_dim", "image_size"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        return self


# Fields that may change when a run is resumed (they do not alter the trajectory so far).
RESUMABLE_FIELDS = frozenset(
    {
        "epochs",
        "steps",
        "eval_every",
        "log_every",
        "checkpoint_every",
        "checkpoint_minutes",
        "device",
    }
)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM stopped the run after a checkpoint was written."""


# ------------------------------------------------------------------------------------ the loop


def train(
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool = True,
    model: nn.Module | None = None,
) -> dict[str, Any]:
    """Trains an autoencoder with the moving window and writes the run folder ``out``.

    Args:
        config: the run's configuration (validated here).
        out: the run folder; must not hold a run unless ``resume``.
        resume: continue the run in ``out`` from its checkpoint.
        progress: show a progress bar.
        model: your own autoencoder (``encode``, ``decode``, ``latent_dim``) instead of a registered
            architecture; such a run cannot be rebuilt by ``distmatch evaluate``/``sample``.

    Returns:
        the summary written to ``out/summary.json``.

    Raises:
        ValueError: bad configuration, data or run folder.
        NonFiniteLossError: the loss diverged (the last good checkpoint stays).
        TrainingInterrupted: SIGINT/SIGTERM (a checkpoint of the current step was written).
    """
    s = _Session.start(config, RunDir(out), resume=resume, model=model)
    cfg, k = s.config, s.config.k
    bar = tqdm(
        total=s.total_steps,
        initial=s.step,
        disable=not progress,
        unit="step",
        desc=f"{cfg.model} n={cfg.n} k={k}",
        dynamic_ncols=True,
    )
    with bar, _stop_on_signals() as stop:
        while s.step < s.total_steps:
            order = _epoch_order(cfg.seed, s.epoch, len(s.train_set))
            if s.batch == 0 and (s.epoch == 0 or s.window.reset_each_epoch):
                s.window.reset(s.generator)
            while s.batch < s.steps_per_epoch and s.step < s.total_steps:
                x = s.train_set.get_batch(order[s.batch * k : (s.batch + 1) * k]).to(s.device)
                z = s.model.encode(x)  # (B, D), B = k except maybe at the end of an epoch
                parts = s.objective(x, s.model.decode(z), s.window.join(z), s.generator)
                s.optimizer.zero_grad(set_to_none=True)
                parts["loss"].backward()
                s.optimizer.step()
                if s.window.refresh == "reencode":
                    with torch.no_grad():
                        z = s.model.encode(x)
                s.window.push(z)
                s.step, s.batch = s.step + 1, s.batch + 1
                s.meter.add(parts)
                bar.update()
                if s.step % cfg.log_every == 0 or s.step == s.total_steps:
                    bar.set_postfix(s.log_interval(), refresh=False)
                if stop.requested:
                    s.save()
                    raise TrainingInterrupted(f"interrupted at step {s.step}; checkpoint written")
                if s.batch < s.steps_per_epoch and s.checkpoint_due():
                    s.save()
            if s.batch >= s.steps_per_epoch:
                s.epoch, s.batch = s.epoch + 1, 0
                if s.evaluation_due():
                    s.evaluate()
            s.save()
    return s.finish()


def _epoch_order(seed: int, epoch: int, size: int) -> torch.Tensor:
    """The order of the training samples in ``epoch``: a function of (seed, epoch) alone."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 17)
    return torch.randperm(size, generator=gen)


@contextmanager
def _stop_on_signals() -> Iterator[Any]:
    """Turns SIGINT/SIGTERM into a flag that the loop reads at the end of a step."""

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


class _Meter:
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


# ---------------------------------------------------------------------------- run state and I/O


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {name!r}."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device must be available; got {name!r} but CUDA is not available here.")
    return device


_DEFAULTS = dataclasses.asdict(TrainConfig())


def _check_resumable(saved: dict[str, Any], given: TrainConfig) -> None:
    """Raises unless ``given`` equals the saved configuration outside the resumable fields."""
    fields = dataclasses.asdict(given)
    changed = sorted(
        k for k, v in fields.items() if k not in RESUMABLE_FIELDS and saved.get(k) != v
    )
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {fields[k]!r}" for k in changed)
        raise RunError(
            "a resumed run must keep its configuration except "
            f"{', '.join(sorted(RESUMABLE_FIELDS))}; got changes to {detail}."
        )


def resumed_config(out: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """The configuration saved in the run folder ``out``, with ``overrides`` applied.

    Raises:
        RunError: ``out`` is not a run folder.
        TypeError: an override that is not a field of :class:`TrainConfig`.
    """
    run = RunDir(out)
    saved = run.read_json(run.config)["config"]
    unknown = sorted(set(overrides) - set(_DEFAULTS))
    if unknown:
        raise TypeError(f"overrides must be fields of TrainConfig; got {', '.join(unknown)}.")
    return dataclasses.replace(TrainConfig(**saved), **overrides)


class _Session:
    """The objects of one run and their bookkeeping; built by :meth:`start`."""

    config: TrainConfig
    run: RunDir
    train_set: SampleSet
    test_set: SampleSet
    model: nn.Module
    window: MovingWindow
    step: int
    epoch: int
    batch: int

    @classmethod
    def start(
        cls, config: TrainConfig, run: RunDir, *, resume: bool, model: nn.Module | None
    ) -> _Session:
        s = cls()
        state = None
        if resume:
            _check_resumable(run.read_json(run.config)["config"], config)
            state = run.load_checkpoint()
        elif run.checkpoint.exists() or run.config.exists():
            raise RunError(
                f"'{run.root}' already holds a run; use --resume to continue it "
                "or choose another --out."
            )
        s.config, s.run = config.validate(), run
        s.device = _resolve_device(config.device)
        s.train_set = load_split(config.dataset, "train", **s._data_options())
        s.test_set = load_split(config.dataset, "test", **s._data_options())
        log.info("%s; %s", describe(s.train_set), describe(s.test_set))
        s.model = (model if model is not None else s._build_model()).to(s.device)
        if model is not None:
            warn_if_batchnorm(model, config.k)
        s.generator = torch.Generator(device=s.device).manual_seed(config.seed + 1)
        s.window = MovingWindow(
            config.n,
            config.k,
            int(s.model.latent_dim),
            init=config.window_init,
            reset_each_epoch=config.reset_each_epoch,
            refresh=config.refresh,
            generator=s.generator,
            device=s.device,
        )
        params = s.model.parameters()
        s.optimizer = (
            torch.optim.Adam(params, lr=config.lr)
            if config.optimizer == "adam"
            else torch.optim.SGD(params, lr=config.lr)
        )
        s.objective = AutoencoderObjective(
            config.model, lam=config.lam, reconstruction=config.reconstruction
        )
        s.steps_per_epoch = math.ceil(len(s.train_set) / config.k)
        s.total_steps = config.steps or config.epochs * s.steps_per_epoch
        s.step = s.epoch = s.batch = 0
        s.meter, s.elapsed = _Meter(), 0.0
        s.started, s.last_save = time.perf_counter(), time.monotonic()
        if state is None:
            s.run.write_json(s.run.config, s._config_record(custom=model is not None))
            s.save()  # step 0: a run can be resumed from its very start
        else:
            s._restore(state)
        s.step_at_save = s.step
        return s

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
        """Writes the checkpoint, unless the loss has gone non-finite since the last one."""
        if not self.meter.finite():
            raise NonFiniteLossError(
                f"the loss became NaN or infinite before step {self.step} "
                f"({self.config.model}, {self.config.optimizer}, lr={self.config.lr}); the run "
                f"stopped and {self.run.checkpoint} keeps step {self.step_at_save}. "
                "Try a smaller --lr."
            )
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
                "finished": self.step >= self.total_steps,
            }
        )
        self.last_save, self.step_at_save = time.monotonic(), self.step

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.window.load_state_dict(state["window"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["global_rng"])
        self.step, self.epoch, self.batch = state["step"], state["epoch"], state["batch"]
        self.meter, self.elapsed = _Meter(state["meter"]), float(state["elapsed"])
        self.run.truncate_metrics(self.step)
        log.info("resumed %s at step %d (epoch %d)", self.run.root, self.step, self.epoch)

    def checkpoint_due(self) -> bool:
        cfg = self.config
        return (
            self.step - self.step_at_save >= cfg.checkpoint_every
            or time.monotonic() - self.last_save >= 60 * cfg.checkpoint_minutes
        )

    # ----------------------------------------------------------------------- logging, eval
    def log_interval(self) -> dict[str, str]:
        """Writes the mean loss parts of the interval to metrics.jsonl; returns them for the bar."""
        if not self.meter.finite():
            self.save()  # raises NonFiniteLossError, keeping the last good checkpoint
        means = self.meter.flush()
        row = {"kind": "train", "step": self.step, "epoch": self.epoch, **means}
        self.run.append_metrics(row)
        return {key: f"{value:.4g}" for key, value in means.items()}

    def evaluation_due(self) -> bool:
        every = self.config.eval_every
        return self.epoch == 1 or self.epoch % every == 0 or self.step >= self.total_steps

    def evaluate(self) -> dict[str, float]:
        """Paper metrics on the test split, a metrics row, and fresh figures."""
        from .plots import save_autoencoder_figures, save_training_curves

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
        return metrics

    def finish(self) -> dict[str, Any]:
        """Final evaluation (unless the last epoch just had one) and ``summary.json``."""
        rows = self.run.read_metrics()
        evals = [r for r in rows if r.get("kind") == "eval"]
        if not evals or evals[-1]["step"] != self.step:
            self.evaluate()
            evals = [r for r in self.run.read_metrics() if r.get("kind") == "eval"]
        seconds = self.elapsed + time.perf_counter() - self.started
        final = {k: v for k, v in evals[-1].items() if k not in ("kind", "step", "epoch")}
        summary = {
            **final,
            "step": self.step,
            "epochs": self.step / self.steps_per_epoch,
            "train_seconds": round(seconds, 3),
            "steps_per_second": round(self.step / seconds, 2) if seconds > 0 else None,
        }
        self.run.write_json(self.run.summary, summary)
        return summary


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
