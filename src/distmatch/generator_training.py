"""Generators trained from a sketch alone (CL-GN), or with exact mini-batch MMD (the baseline).

``objective="sketch"``: the data set was compressed once into a sketch ``z`` (the mean of random
Fourier features, :mod:`distmatch.sketch`); each step draws a batch of latent codes, generates
samples ``x`` and minimises ``|| mean_i Phi(x_i) - z ||^2``, the squared sketch distance
(``loss_form="root"``: the distance itself, which the CL-GN reference's printed losses and early
stopping use). The sketch file is the only thing read: the data are never touched again. Every
logged row holds ``distance`` (the per-batch distance, MMD units) and ``distance_squared`` beside
``loss``, so runs of either form compare.

``objective="mmd"``: generative moment matching. Each step compares the generated batch with a batch
of the data by the exact MMD with the kernel that the sketch's frequency law stands for (Gaussian
exactly; folded Gaussian in 2-D by its closed form) or with a multi-scale Gaussian.

Launched by ``torchrun`` on P processes, ``batch_size`` is global: each rank generates its part and
the loss is that of the global batch (:mod:`distmatch.distributed`).

Both work in the sketch's coordinates (by default the unit l2 ball, as the CL-GN reference scales its
data) and samples are mapped back to the data's own coordinates.

The CL-GN recipe is the default: generator 7 x (Dense(10) + LeakyReLU(0.2)) + Dense(2), latent
N(0, I_10), 100,000 latent codes drawn once and kept, batch 1000, Adam 1e-3, 25 epochs with early
stopping (min_delta 5e-4, patience 2).

Reference: Schellekens & Jacques, "Compressive Learning of Generative Networks", ESANN 2020.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from tqdm.auto import tqdm

from . import distributed
from .distances._checks import check_choice, check_positive, check_positive_int
from .training import TrainingInterrupted, _stop_on_signals

__all__ = ["OBJECTIVES", "GeneratorConfig", "train_generator"]

OBJECTIVES = ("sketch", "mmd")
LOSS_FORMS = ("squared", "root")
MMD_KERNELS = ("matched", "multiscale")
MULTISCALE = (0.25, 0.5, 1.0, 2.0, 4.0)  # factors on the bandwidth for kernel="multiscale"


@dataclasses.dataclass
class GeneratorConfig:
    """Everything that defines a generator training run."""

    # what to fit
    objective: str = "sketch"  # sketch: from a sketch file alone; mmd: exact MMD on the data
    sketch: str | None = None  # the .npz sketch (objective "sketch")
    dataset: str | None = None  # objective "mmd": a toy (spiral, gmm, circle) or a .npy file
    kernel: str = "matched"  # mmd: matched (the sketch law's kernel) | multiscale (Gaussian)
    law: str = "folded_gaussian"  # mmd, kernel matched: gaussian | folded_gaussian (2-D)
    bandwidth: float = math.sqrt(1e-3)  # mmd kernel bandwidth, in the unit-ball coordinates
    eval_data: str | None = (
        None  # held-out data for evaluation: a toy or a .npy (default: the source)
    )
    # generator
    arch: str = "clgn_mlp"  # see distmatch.generators.GENERATORS
    latent_dim: int | None = None  # None: the architecture's default
    latent_codes: int | None = 100_000  # codes drawn once and kept; None: fresh codes every step
    # optimisation
    batch_size: int = 1000  # generated samples per step
    lr: float = 1e-3  # Adam learning rate
    loss_form: str = "squared"  # squared: the distance squared (MMD^2); root: the distance (MMD)
    epochs: int = 25  # passes over the latent codes (or latent_codes / batch_size steps)
    patience: int = 2  # early stopping: epochs without a loss improvement of min_delta
    min_delta: float = 5e-4
    seed: int = 0  # seeds initialisation, latent codes, batch order
    # evaluation and output
    eval_points: int = 2000  # generated and held-out points per evaluation
    log_every: int = 20  # steps per row of metrics.jsonl
    device: str = "auto"  # auto: cuda when available

    def validate(self) -> GeneratorConfig:
        """Checks every field; returns ``self``."""
        check_choice(self.objective, "objective", OBJECTIVES)
        check_choice(self.kernel, "kernel", MMD_KERNELS)
        check_choice(self.law, "law", ("gaussian", "folded_gaussian"))
        check_choice(self.loss_form, "loss_form", LOSS_FORMS)
        if self.objective == "sketch" and not self.sketch:
            raise ValueError(
                "sketch must be the path of a sketch file for objective 'sketch'; got none."
            )
        if self.objective == "mmd" and not self.dataset:
            raise ValueError(
                "dataset must be a toy name or a .npy file for objective 'mmd'; got none."
            )
        check_positive(self.bandwidth, "bandwidth")
        check_positive(self.lr, "lr")
        check_positive(self.min_delta, "min_delta")
        for name in ("batch_size", "epochs", "patience", "eval_points", "log_every"):
            check_positive_int(getattr(self, name), name)
        for name in ("latent_dim", "latent_codes"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        return self


def train_generator(
    config: GeneratorConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Trains a generator and writes the run folder ``out`` (as :func:`distmatch.training.train`).

    Args:
        config: the run's configuration (validated here).
        out: the run folder; must not hold a run unless ``resume``.
        resume: continue the run in ``out`` from its checkpoint.
        progress: show a progress bar.

    Returns:
        the summary written to ``out/summary.json``.

    Raises:
        ValueError: bad configuration, sketch, data or run folder.
        NonFiniteLossError: the loss diverged (the last good checkpoint stays).
        TrainingInterrupted: SIGINT/SIGTERM (a checkpoint of the current step was written).
    """
    from .generator_state import GeneratorRun

    with distributed.process_group(config.device):
        s = GeneratorRun.start(config, out, resume=resume)
        return _loop(s, progress)


def _loop(s: Any, progress: bool) -> dict[str, Any]:
    """The steps of a started run (a ``GeneratorRun``) to the end; returns the summary."""
    cfg = s.config
    bar = tqdm(
        total=s.total_steps,
        initial=s.step,
        disable=not (progress and s.world.is_main),
        unit="step",
        desc=f"{cfg.objective} {cfg.arch}",
        dynamic_ncols=True,
    )
    with bar, _stop_on_signals() as stop:
        while s.epoch < cfg.epochs and not s.stopped_early:
            order = s.epoch_order()
            while s.batch < s.steps_per_epoch:
                z = s.latent_batch(order, s.batch)  # (B_r, latent_dim): this rank's part
                x = s.generator(z)  # (B_r, D), sketch coordinates
                loss = s.loss(x, order, s.batch)  # the global batch's
                s.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                s.sync(stop)  # ranks: average the gradients, agree on stopping
                s.optimizer.step()
                s.step, s.batch = s.step + 1, s.batch + 1
                s.record(loss)
                bar.update()
                if s.step % cfg.log_every == 0:
                    bar.set_postfix(s.log_interval(), refresh=False)
                if s.stopping(stop):
                    s.save()
                    raise TrainingInterrupted(f"interrupted at step {s.step}; checkpoint written")
            s.end_epoch()  # epoch loss, early stopping, evaluation, figures, checkpoint
    return s.finish()
