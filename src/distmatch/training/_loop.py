"""Moving-window training of WAE, CWAE and SWAE autoencoders: one visible loop.

Each step takes ``k`` inputs, encodes them, joins the ``k`` fresh codes with the ``n - k`` codes of
the window, takes one optimizer step on ``reconstruction + lam * distance(joined codes)`` and pushes
the codes into the window. ``k == n`` is classical mini-batch training.

Runs are resumable: the checkpoint holds the model, optimizer, window, random-generator state, the
position in the epoch and the partial sums of the current logging interval. The epoch order depends
only on (seed, epoch) and evaluation draws from its own generator, so a run that is killed and resumed
ends bit-identical (on CPU) to one that never stopped.

Launched by ``torchrun`` on P processes, ``k`` is the global batch: each rank encodes its k/P part,
the fresh codes of all ranks are gathered into one window that every rank holds, and the averaged
gradient is the single-process gradient of the global batch (:mod:`distmatch.distributed`). The
checkpoint holds nothing per rank, so a run resumes on any number of processes.

Reference: Spurek et al., "One-element Batch Training by Moving Window", arXiv:1905.12947.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..objectives import global_objective
from ..runs import RunDir, stop_on_signals
from ._config import TrainConfig
from ._state import RunState

__all__ = ["CompileUnavailable", "train"]


class CompileUnavailable(RuntimeError):
    """``compile=True`` but torch.compile cannot build code on this machine."""


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
        CompileUnavailable: ``config.compile`` but torch.compile cannot build code here.
        TrainingInterrupted: SIGINT/SIGTERM (a checkpoint of the current step was written).
    """
    with distributed.process_group(config.device):
        s = RunState.start(config, RunDir(out), resume=resume, model=model)
        return _loop(s, progress)


def _loop(s: RunState, progress: bool) -> dict[str, Any]:
    """The steps of a started run, from where it stands to the end; returns the summary."""
    cfg, k = s.config, s.config.k
    bar = s.progress_bar(f"{cfg.model} n={cfg.n} k={k}", progress)
    forward = _compiled(_forward) if cfg.compile else _forward
    with bar, stop_on_signals() as stop:
        while s.step < s.total_steps:
            order = _epoch_order(cfg.seed, s.epoch, len(s.train_set))
            if s.batch == 0 and (s.epoch == 0 or s.memory.reset_each_epoch):
                s.memory.reset(s.rng)
            while s.batch < s.steps_per_epoch and s.step < s.total_steps:
                batch = order[s.batch * k : (s.batch + 1) * k]  # the global batch
                part, sizes = distributed.split_batch(batch)  # this rank's part, every rank's size
                x = s.train_set.get_batch(part).to(s.device)
                z, parts = forward(s.model, s.objective, s.memory, x, s.rng, sizes)
                s.optimizer.zero_grad(set_to_none=True)
                parts["loss"].backward()
                s.sync(stop, timed=True)  # ranks: average the gradients, agree on stop and save
                s.optimizer.step()
                if s.memory.refresh == "reencode":
                    with torch.no_grad():
                        z = distributed.all_gather_rows(s.model.encode(x), sizes)
                s.memory.push(z)
                s.step, s.batch = s.step + 1, s.batch + 1
                s.meter.add(parts)
                bar.update()
                if s.step % cfg.log_every == 0 or s.step == s.total_steps:
                    bar.set_postfix(s.log_interval(), refresh=False)
                if s.stopping(stop):
                    raise s.interrupted()
                if s.batch < s.steps_per_epoch and s.checkpoint_due():
                    s.save()
            if s.batch >= s.steps_per_epoch:
                s.epoch, s.batch = s.epoch + 1, 0
                if s.evaluation_due():
                    s.evaluate()
            s.save()
    return s.finish()


def _forward(model, objective, memory, x, rng, sizes) -> tuple[torch.Tensor, dict]:
    """The differentiable part of a step: encode, decode, join the codes with the memory, cost.

    ``x`` is this rank's part of the global batch and ``sizes`` the rows of every rank's part. In
    one process (``len(sizes) == 1``) the fresh codes are those of ``x``; across ranks they are
    gathered in rank order and the cost is that of the global batch, the same on every rank.
    """
    z = model.encode(x)  # (B_r, D); B = k except maybe at the end of an epoch
    if len(sizes) == 1:
        return z, objective(x, model.decode(z), memory.join(z), rng)
    codes = distributed.all_gather_rows(z, sizes)  # (B, D): every rank's fresh codes
    parts = global_objective(objective, x, model.decode(z), memory.join(codes), rng)
    return codes, parts


def _compiled(fn):
    """``torch.compile(fn)``, whose failure to build (e.g. no C++ compiler) is one clear error.

    Compiling the forward pass lets the backward pass run as one compiled graph too: on small
    models, where each tensor operation costs more than its arithmetic, steps get much cheaper.
    """
    compiled = torch.compile(fn)
    built = False

    def call(*args):
        nonlocal built
        if built:
            return compiled(*args)
        try:
            out = compiled(*args)
        except (torch._dynamo.exc.TorchDynamoException, torch._inductor.exc.InductorError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CompileUnavailable(
                "--compile needs torch.compile to work here (on CPU: a C++ compiler such as g++); "
                f"it failed with: {first}. Train without --compile."
            ) from err
        built = True
        return out

    return call


def _epoch_order(seed: int, epoch: int, size: int) -> torch.Tensor:
    """The order of the training samples in ``epoch``: a function of (seed, epoch) alone."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 17)
    return torch.randperm(size, generator=gen)
