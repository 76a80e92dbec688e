"""Moving-window training of WAE, CWAE and SWAE autoencoders: one visible loop.

Each step takes ``k`` inputs, encodes them, joins the ``k`` fresh codes with the ``n - k`` codes of
the window, takes one optimizer step on ``reconstruction + lam * distance(joined codes)`` and pushes
the codes into the window. ``k == n`` is classical mini-batch training.

Three defaults make ``k < n`` train like the classical batch of ``n`` (``docs/k1-training.md``): the
distance's gradient is weighted by ``n / B`` (``window_gradient``), the learning rate follows
``k / n`` (``lr_rule``), and every ``refresh_every`` steps the inputs of the window's codes are
encoded again by the current encoder, so that the fresh codes are not pushed into the holes of
codes that earlier encoders made.

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

import copy
import itertools
import logging
import os
import statistics
import time
import types
import warnings
from typing import Any

import torch
from torch import nn

from .. import distributed
from .._core import compiler_available, deterministic_algorithms
from ..objectives import global_objective
from ..report import chunk_size
from ..runs import RunDir, stop_on_signals
from ..window import MovingWindow
from ._config import TrainConfig
from ._graph import GraphedStep, graph_ready, pushes_in_step, steady
from ._state import RunState

__all__ = ["CompileUnavailable", "train"]

log = logging.getLogger(__name__)


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
    with distributed.process_group(config.device), deterministic_algorithms(config.deterministic):
        s = RunState.start(config, RunDir(out), resume=resume, model=model)
        return _loop(s, progress)


def _loop(s: RunState, progress: bool) -> dict[str, Any]:
    """The steps of a started run, from where it stands to the end; returns the summary."""
    cfg, k = s.config, s.config.k
    bar = s.progress_bar(f"{cfg.model} n={cfg.n} k={k}", progress)
    unbiased = cfg.window_gradient == "unbiased"
    forward = _step_forward(s, unbiased)
    refreshing = cfg.refresh_every > 0 and isinstance(s.memory, MovingWindow)
    graphed = _graphed_step(s, forward, unbiased) if cfg.cuda_graph else None
    with bar, stop_on_signals() as stop:
        while s.step < s.total_steps:
            order = _epoch_order(cfg.seed, s.epoch, len(s.train_set))
            if s.batch == 0 and (s.epoch == 0 or s.memory.reset_each_epoch):
                s.memory.reset(s.rng)
                s.window_inputs.fill_(-1)  # prior draws: no input to encode again
            while s.batch < s.steps_per_epoch and s.step < s.total_steps:
                batch = order[s.batch * k : (s.batch + 1) * k]  # the global batch
                part, sizes = distributed.split_batch(batch)  # this rank's part, every rank's size
                x = s.train_set.get_batch(part).to(s.device)
                draws = s.objective.draws(s.memory.joined_shape(len(batch)), s.rng, device=s.device)
                if refreshing:  # the data rows of the codes that this step pushes
                    _track_inputs(s.memory, s.window_inputs, batch)
                parts = None
                if graphed is not None and graphed.ready(len(batch)):
                    parts = graphed(x, draws)  # the same step, replayed (None: capture failed)
                if parts is None:
                    # compiled: steps of the steady shapes only; it pushes the fresh codes into
                    # a full memory itself
                    compiled = s.compiled and steady(s.memory, len(batch), k)
                    inside = compiled and pushes_in_step(s.memory, len(batch))
                    if inside:
                        s.memory.stage()
                    z, parts = (forward if compiled else _forward)(
                        s.model, s.objective, s.memory, x, draws, sizes, unbiased, inside
                    )
                    s.optimizer.zero_grad(set_to_none=True)
                    parts["loss"].backward()
                    s.sync(stop, timed=True)  # ranks: average the gradients, agree on stop, save
                    s.optimizer.step()
                    if inside:
                        s.memory.advance(len(batch))
                    else:
                        if s.memory.refresh == "reencode":
                            with torch.no_grad():
                                z = distributed.all_gather_rows(s.model.encode(x), sizes)
                        s.memory.push(z)
                if refreshing and s.step % cfg.refresh_every == cfg.refresh_every - 1:
                    if cfg.refresh_from == "random":
                        _draw_inputs(s.window_inputs, len(s.train_set), cfg.seed, s.step)
                    _reencode_window(s.model, s.memory, s.window_inputs, s.train_set, s.device)
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


def _graphed_step(s: RunState, forward, unbiased: bool) -> GraphedStep | None:
    """The graphed step of run ``s``, or None with a warning saying why it cannot have one."""
    why = graph_ready(s)
    if why is not None:
        warnings.warn(f"cuda_graph: {why}; training without CUDA graphs.", stacklevel=3)
        return None
    return GraphedStep(s, forward, unbiased)


def _forward(
    model, objective, memory, x, draws, sizes, unbiased=False, push=False
) -> tuple[torch.Tensor, dict]:
    """The differentiable part of a step: encode, decode, join the codes with the memory, cost;
    with ``push``, also the push of the fresh codes into the memory.

    ``x`` is this rank's part of the global batch and ``sizes`` the rows of every rank's part. In
    one process (``len(sizes) == 1``) the fresh codes are those of ``x``; across ranks they are
    gathered in rank order and the cost is that of the global batch, the same on every rank.
    ``draws`` (prior samples, directions) were made before, from the run's generator: nothing
    random happens here, so a compiled graph of this function has no break.
    ``unbiased`` weighs the distance's gradient by ``memory.unbiased_weight(B)`` (n / B), which
    makes it the classical batch's gradient in expectation; it is 1 when ``k == n``.
    ``push`` (where :func:`pushes_in_step`, after ``memory.stage()``) pushes the fresh codes here,
    after the join, with ``memory.push_at``, which reads the write position from the device: in a
    compiled forward the push is part of the graph (out of it, it cost about 4 % of a
    ``mnist_mlp`` step on one CPU core, and 14 % for skwae's window, which moves its feature sum).
    The caller calls ``memory.advance`` after the optimizer step. Eager steps push after it
    (``memory.push``: fewer operations than ``push_at``).
    """
    z = model.encode(x)  # (B_r, D); B = k except maybe at the end of an epoch
    codes = z if len(sizes) == 1 else distributed.all_gather_rows(z, sizes)  # (B, D): all ranks'
    weight = memory.unbiased_weight(codes.shape[0]) if unbiased else 1.0
    x_rec, joined = model.decode(z), memory.join(codes)
    # the distance may compute the gradient of the fresh rows only (the window's are constants)
    fresh = codes.shape[0] if joined.dim() == 2 else None  # joined codes, not a sketch
    parts = global_objective(
        objective, x, x_rec, joined, draws=draws, gradient_weight=weight, fresh=fresh
    )  # fmt: skip
    if push:
        memory.push_at(codes)
    return codes, parts


def _track_inputs(window: MovingWindow, inputs: torch.Tensor, batch: torch.Tensor) -> None:
    """Records the data indices of the codes that ``window.push`` is about to store (the same
    rows, wrapping as the ring buffer does)."""
    cap, b = window.capacity, len(batch)
    if cap == 0:
        return
    start = window.position[0]
    if b > cap:  # only the newest cap rows survive a full wrap
        start, batch, b = (start + b - cap) % cap, batch[-cap:], cap
    inputs[(start + torch.arange(b)) % cap] = batch


def _draw_inputs(inputs: torch.Tensor, size: int, seed: int, step: int) -> None:
    """Replaces the window's data indices by random training inputs, drawn (without
    replacement) from a generator of (seed, step) alone, so that a resumed run draws the same."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + 7 * step + 3)
    if size >= len(inputs):
        inputs.copy_(torch.randperm(size, generator=gen)[: len(inputs)])
    else:  # a split smaller than the window: some inputs twice
        inputs.copy_(torch.randint(size, (len(inputs),), generator=gen))


@torch.no_grad()
def _reencode_window(model, window: MovingWindow, inputs: torch.Tensor, data, device) -> None:
    """Replaces the window's stored codes by the current encoder's codes of their inputs, in
    chunks sized for the sample shape (no gradient, so only one chunk's activations are held)."""
    known = (inputs >= 0).nonzero().squeeze(1)  # (K,) rows that hold a data code
    chunk = chunk_size(tuple(data.sample_shape))
    for rows in known.split(chunk):
        codes = model.encode(data.get_batch(inputs[rows]).to(device))  # (chunk, D)
        window.replace(rows, codes)


AUTO_COMPILE_STEPS = 50_000  # fewer steps do not win back the seconds that compilation takes
PROBE_STEPS = 5  # timed forward and backward passes of each kind, after one that warms up
PROBE_GAIN = 0.95  # compiled steps must take at most this share of eager ones to be chosen


def _step_forward(s: RunState, unbiased: bool):
    """The step's differentiable part for run ``s``: eager, compiled, or for ``compile="auto"``
    on long runs where a compiler is present, whichever this model takes less time with here.

    Compiling pays on small models (per-operation overhead) and not always on large ones: on one
    CPU core a ``cifar_conv`` step compiled takes 0.9 of the eager one, an ``fmnist_conv`` step 1.5.
    So "auto" times a few passes of each kind on the first inputs, with draws from a generator of
    its own and no optimizer step (the run is left as it was), and keeps the faster one. Ranks of a
    multi-process run could time differently, so there "auto" compiles without timing. The choice
    is saved with the run (``s.compiled``): a resumed run keeps it.
    """
    cfg = s.config
    if cfg.compile != "auto":  # True or False
        s.compiled = bool(cfg.compile)
        return _compiled(_forward, required=True) if cfg.compile else _forward
    compiled = None
    if s.compiled is not None:  # resumed: the choice of the run it continues
        s.compiled = s.compiled and compiler_available(s.device)
    elif s.total_steps - s.step < AUTO_COMPILE_STEPS or not compiler_available(s.device):
        s.compiled = False
    elif s.world.size > 1:
        s.compiled = True
    else:
        compiled = _compiled(_forward, required=False)
        eager_s, compiled_s = (_pass_seconds(s, fn, unbiased) for fn in (_forward, compiled))
        s.compiled = compiled_s <= PROBE_GAIN * eager_s
        log.info(
            "a step's forward and backward: %.3g ms eager, %.3g ms compiled; training %s",
            1e3 * eager_s, 1e3 * compiled_s, "compiled" if s.compiled else "eagerly",
        )  # fmt: skip
    if not s.compiled:
        return _forward
    return compiled if compiled is not None else _compiled(_forward, required=False)


def _pass_seconds(s: RunState, forward, unbiased: bool) -> float:
    """Median seconds of ``forward`` and its backward pass on the first ``k`` training inputs.

    The run is left as it was: draws from a generator of its own, the global random state and
    the model's buffers (e.g. a BatchNorm's running statistics in a model of the user's) put back,
    gradients cleared. A window that starts empty (init "fill") is timed full, as a copy: the
    steps of later shapes are the ones compiled (:func:`steady`), and with one code the distance
    would cost next to nothing.
    """
    gen = torch.Generator(device=s.device).manual_seed(0)  # the run's own generator is untouched
    x = s.train_set.get_batch(torch.arange(min(s.config.k, len(s.train_set)))).to(s.device)
    memory = s.memory
    if isinstance(memory, MovingWindow) and memory.position[1] < memory.capacity:
        memory = copy.deepcopy(memory)
        memory.fill_up()
    cuda = s.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    buffers = [b.detach().clone() for b in s.model.buffers()]
    seconds = []
    with torch.random.fork_rng(devices=[s.device] if cuda else []):
        for _ in range(PROBE_STEPS + 1):  # the first one warms up (and compiles)
            draws = s.objective.draws(memory.joined_shape(len(x)), gen, device=s.device)
            sync()
            start = time.perf_counter()
            _, parts = forward(s.model, s.objective, memory, x, draws, (len(x),), unbiased)
            parts["loss"].backward()
            sync()
            seconds.append(time.perf_counter() - start)
            s.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        for b, saved in zip(s.model.buffers(), buffers, strict=True):
            b.copy_(saved)
    return statistics.median(seconds[1:])


_COMPILED_COPIES = itertools.count(1)  # names the copies that _compiled compiles


def _own_code(fn):
    """``fn`` as a new function with a code object of its own (named ``<name>_<count>``), the
    same body, defaults and closure."""
    code = fn.__code__.replace(co_name=f"{fn.__name__}_{next(_COMPILED_COPIES)}")
    own = types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)
    own.__kwdefaults__ = fn.__kwdefaults__
    return own


def _compile_errors() -> tuple[type[Exception], ...]:
    """What a failed build raises: Inductor's own error (newer torch), or a Dynamo exception
    wrapping it (torch 2.5 has no ``InductorError``)."""
    import torch._dynamo.exc
    import torch._inductor.exc

    inductor = getattr(torch._inductor.exc, "InductorError", None)
    return (torch._dynamo.exc.TorchDynamoException,) + ((inductor,) if inductor else ())


def _compiled(fn, *, required: bool = True):
    """``torch.compile(fn)``; if it cannot build (e.g. no C++ compiler), one clear error when the
    user asked for compilation (``required``), else a warning and the eager ``fn``.

    Compiling the forward pass lets the backward pass run as one compiled graph too: on small
    models, where each tensor operation costs more than its arithmetic, steps get much cheaper.
    The step's random draws are made before the call, so the graph has no break.

    Each call compiles a copy of ``fn`` with a code object of its own: the compiler keeps its
    graphs per code object, so runs trained one after another in one process (``reproduce``, a
    notebook) neither pile up guards on one shared cache nor reach its recompile limit (past
    which steps silently run eagerly). Shapes are static (``dynamic=False``): a run's shapes
    never change, and static code is faster than code with symbolic sizes (which torch 2.11
    also failed to trace through the terms' custom gradients).
    """
    fn = _own_code(fn)
    compiled = torch.compile(fn, dynamic=False)
    state = {"built": False, "eager": False}

    def call(*args):
        if state["built"]:
            return compiled(*args)
        if state["eager"]:
            return fn(*args)
        try:
            out = compiled(*args)
        except _compile_errors() as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if required:
                raise CompileUnavailable(
                    "--compile needs torch.compile to work here (on CPU: a C++ compiler such as "
                    f"g++); it failed with: {first}. Train without --compile."
                ) from err
            warnings.warn(f"torch.compile failed ({first}); training without it.", stacklevel=2)
            state["eager"] = True
            return fn(*args)
        state["built"] = True
        return out

    return call


def _epoch_order(seed: int, epoch: int, size: int) -> torch.Tensor:
    """The order of the training samples in ``epoch``: a function of (seed, epoch) alone."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 17)
    return torch.randperm(size, generator=gen)
