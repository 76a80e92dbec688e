"""Generators trained from a sketch alone (CL-GN), or with exact mini-batch MMD (the baseline).

``objective="sketch"``: the data set was compressed once into a sketch ``z`` (the mean of random
Fourier features, :mod:`distmatch.sketch`); each step draws a batch of latent codes, generates
samples ``x`` and minimises ``|| mean_i Phi(x_i) - z ||^2``, the squared sketch distance
(``loss_form="root"``: the distance itself, which the CL-GN reference's printed losses and early
stopping use). The sketch file is the only thing read: the data are never touched again. Every
logged row holds ``distance`` (the per-batch distance, MMD units) and ``distance_squared`` beside
``loss``, so runs of either form compare.

Given one sketch per class (``distmatch sketch --by-label``), the generator is class-conditional:
each step's batch is class-balanced (sample ``i`` of class ``i mod C``) and the loss is the
class-weighted sum of the per-class squared sketch distances, ``sum_c w_c |u_c - z_c|^2`` with
``w_c = N_c / N`` (:mod:`distmatch.generation._classes`).

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

import os
from typing import Any

from .. import distributed
from .._core import deterministic_algorithms
from ..runs import stop_on_signals
from ._config import GeneratorConfig
from ._state import GeneratorRun

__all__ = ["train_generator"]


def train_generator(
    config: GeneratorConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Trains a generator and writes the run folder ``out``; returns ``summary.json``'s content.

    The run folder, ``resume`` and ``progress`` behave as in :func:`distmatch.training.train`.

    Raises:
        ValueError: bad configuration, sketch, data or run folder.
        NonFiniteLossError, TrainingInterrupted: as :func:`distmatch.training.train`.
    """
    with distributed.process_group(config.device), deterministic_algorithms(config.deterministic):
        s = GeneratorRun.start(config, out, resume=resume)
        return _loop(s, progress)


def _loop(s: GeneratorRun, progress: bool) -> dict[str, Any]:
    """The steps of a started run to the end; returns the summary."""
    cfg = s.config
    bar = s.progress_bar(f"{cfg.objective} {cfg.arch}", progress)
    with bar, stop_on_signals() as stop:
        while s.epoch < cfg.epochs and not s.stopped_early:
            order = s.epoch_order()
            while s.batch < s.steps_per_epoch:
                # this rank's part: codes (B_r, latent_dim), classes (B_r,) or None
                z, y = s.latent_batch(order, s.batch)
                x = s.generator(z, y)  # (B_r, D), sketch coordinates
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
                    raise s.interrupted()
            s.end_epoch()  # epoch loss, early stopping, evaluation, figures, checkpoint
    return s.finish()
