"""The whole moving-window step as one CUDA graph (``TrainConfig.cuda_graph``).

At k = 1 a step of a small model is a few hundred small kernels, and launching them costs more
than running them: the GPU waits on the CPU. Captured once in a CUDA graph and replayed, the step
(encode, decode, join, distance, backward, optimizer step, push into the window) is one launch.

What a replay reads and writes must keep its address, so the step works on static inputs: the
batch and the prior draws of each step are made as in an eager step (the epoch order, the run's
generator) and copied into them, and the window's write position is a device tensor that the
replay reads and moves on (:meth:`~distmatch.window.MovingWindow.stage`). The run is therefore the one an eager run makes, and it resumes the same way.
Everything else stays outside the graph: the window's counters, logging, refresh, checkpoints,
evaluation.

A step is replayed when it has a full batch and a full window (or a moving sketch), in one
process, with ``refresh="none"``; any other step runs eagerly. The first ``WARMUP`` graph-ready
steps run uncaptured on a side stream (as CUDA graph capture requires), the next one is captured and
replayed, and if capture fails the run warns once and goes on eagerly. Adam is switched to its
capturable form when the first graph-ready step comes (a fused Adam, the default on CUDA, keeps its
step counts on the GPU already).

On other devices the same static step runs uncaptured, which the tests compare with the eager step.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ..objectives import Draws
from ..window import MovingWindow

__all__ = ["CAPTURE_DEVICES", "GraphedStep", "graph_ready", "pushes_in_step"]

CAPTURE_DEVICES = ("cuda",)  # where a static step is captured; elsewhere it runs as it is
WARMUP = 3  # uncaptured steps before the capture (lazy initialisations must not happen in it)


def pushes_in_step(memory: Any, b: int) -> bool:
    """Whether a step of ``b`` fresh codes can push them inside its forward (``push_at``): into a
    moving sketch, or into a full window with room for them (or with none, ``k == n``), with
    ``refresh="none"`` (the pre-update codes are pushed)."""
    if memory.refresh != "none":
        return False
    if not isinstance(memory, MovingWindow):
        return True
    cap = memory.capacity
    return memory.position[1] == cap and (cap == 0 or b <= cap)


def steady(memory: Any, b: int, k: int) -> bool:
    """Whether a step of ``b`` fresh codes has the shapes of every later step: a full batch
    (``b == k``) and a memory that no longer grows (a full window, or a moving sketch).

    A compiled forward runs these steps only. The others (a window still filling, an epoch's short
    last batch) run eagerly: compiling a graph for each of their sizes would soon reach
    torch.compile's recompile limit and leave the rest of the run eager."""
    if b != k:
        return False
    return not isinstance(memory, MovingWindow) or memory.position[1] == memory.capacity


def graph_ready(s: Any) -> str | None:
    """Why run ``s`` cannot use the graphed step (a sentence), or None if it can."""
    cfg = s.config
    if s.device.type not in CAPTURE_DEVICES:
        return f"CUDA graphs need a CUDA device; the run is on {s.device.type}"
    if s.world.size > 1:
        return "CUDA graphs are used in one process only"
    if cfg.refresh != "none":
        return f"refresh={cfg.refresh!r} encodes again after the step"
    if isinstance(s.memory, MovingWindow) and cfg.k > s.memory.capacity > 0:
        return f"k={cfg.k} is larger than the window ({s.memory.capacity} codes)"
    return None


class GraphedStep:
    """One training step of run ``s`` on static inputs, captured as a CUDA graph where possible.

    Args:
        s: the started run (model, objective, memory, optimizer, device, config).
        forward: the step's differentiable part, eager or compiled (``training._loop._forward``).
        unbiased: weigh the distance's gradient by ``memory.unbiased_weight`` (n / k).
        capture: capture on this run's device (default: on CUDA).
    """

    def __init__(self, s: Any, forward, unbiased: bool, *, capture: bool | None = None) -> None:
        self.s, self.forward, self.unbiased = s, forward, unbiased
        self.capture = s.device.type == "cuda" if capture is None else capture
        self.calls = 0
        self.failed = False
        self.graph: torch.cuda.CUDAGraph | None = None
        self.x: torch.Tensor | None = None  # (k, ...) the batch
        self.draws: Draws | None = None
        self.parts: dict[str, torch.Tensor] = {}

    def ready(self, b: int) -> bool:
        """Whether a step of ``b`` inputs can run here: a full batch and a full memory."""
        return not self.failed and b == self.s.config.k and pushes_in_step(self.s.memory, b)

    def __call__(self, x: torch.Tensor, draws: Draws) -> dict[str, torch.Tensor] | None:
        """Runs the step on ``x`` (k, ...) and ``draws``; returns its parts (copies), or None if
        the capture failed (nothing was changed: run the step eagerly)."""
        self._fill(x, draws)
        if self.graph is not None:
            self.graph.replay()
        elif not self.capture:
            self._step()
        elif self.calls < WARMUP:
            side = torch.cuda.Stream(self.s.device)
            side.wait_stream(torch.cuda.current_stream(self.s.device))
            with torch.cuda.stream(side):
                self._step()
            torch.cuda.current_stream(self.s.device).wait_stream(side)
        elif not self._captured():
            return None
        else:
            self.graph.replay()
        self.calls += 1
        self.s.memory.advance(len(x))
        # copies: the next replay writes over the static outputs
        return {key: value.clone() for key, value in self.parts.items()}

    def _capturable_optimizer(self) -> None:
        """Adam must be told that it runs in a graph (its step counts on the GPU, as a fused
        Adam keeps them already); SGD has no such flag."""
        optimizer = self.s.optimizer
        for group in optimizer.param_groups:
            if "capturable" in group:
                group["capturable"] = True
        for state in optimizer.state.values():
            if torch.is_tensor(state.get("step")):
                state["step"] = state["step"].to(self.s.device, torch.float32)

    def _fill(self, x: torch.Tensor, draws: Draws) -> None:
        if self.x is None:
            if self.capture:
                self._capturable_optimizer()
            self.x = torch.empty_like(x)
            self.draws = Draws(*(None if t is None else torch.empty_like(t) for t in draws))
        self.x.copy_(x)
        for static, fresh in zip(self.draws, draws, strict=True):
            if static is not None:
                static.copy_(fresh)
        self.s.memory.stage()  # the write position on the device (a replay moves it there)

    def _step(self) -> None:
        self.s.optimizer.zero_grad(set_to_none=True)
        self._body()

    def _body(self) -> None:
        s = self.s
        _, parts = self.forward(
            s.model, s.objective, s.memory, self.x, self.draws, (len(self.x),), self.unbiased, True
        )  # the push into the memory is part of the forward
        parts["loss"].backward()
        s.optimizer.step()
        self.parts = parts

    def _captured(self) -> bool:
        """Captures the step (nothing runs); False, with one warning, if capture fails."""
        graph = torch.cuda.CUDAGraph()
        self.s.optimizer.zero_grad(set_to_none=True)  # the captured backward writes them anew
        try:
            with torch.cuda.graph(graph):
                self._body()
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            warnings.warn(
                f"capturing the training step in a CUDA graph failed ({first}); training "
                "without it.",
                stacklevel=3,
            )
            self.failed = True
            self.s.optimizer.zero_grad(set_to_none=True)
            return False
        self.graph = graph
        return True
