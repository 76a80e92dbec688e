"""Time per training step of moving-window training against a plain batch-of-one step.

``mnist_mlp`` (z = 20) by default (``--arch`` for another), k = 1, plain SGD, synthetic inputs.
Modes:

- ``plain``: the batch-of-one autoencoder step, reconstruction loss only;
- ``cwae``, ``wae``, ``swae``, ``skwae``: the moving-window step with n = 64 codes (1 fresh + 63 from the window),
  including the prior draws (made before the forward, as training does), the window's join and
  push (inside the forward, as training does) and the unbiased window gradient; ``skwae_sketch``: skwae with the moving sketch.

The modes run in interleaved blocks of ``--block`` steps, repeated ``--rounds`` times, in one
process; each block's time is divided by the plain block beside it, and the median ratio is reported
(machines here are noisy, so only ratios measured side by side are compared).

``--device cuda`` runs on a GPU (each block ends with a synchronisation). ``--graph`` runs the step
of ``train --cuda-graph`` (:class:`distmatch.training._graph.GraphedStep`): the batch and the draws
are made as in an eager step and copied into the graph's inputs, and the whole step (encode, join,
distance, backward, SGD step, push) is one CUDA graph, replayed. On the CPU the same static step
runs uncaptured.

    python benchmarks/mow_speed.py --rounds 15 --block 300
    python benchmarks/mow_speed.py --rounds 15 --block 300 --compile
    python benchmarks/mow_speed.py --arch celeba_conv --rounds 5 --block 40
    python benchmarks/mow_speed.py --device cuda --graph --rounds 15 --block 1000
"""

from __future__ import annotations

import argparse
import statistics
import time
import types

import torch

from distmatch.models import ARCHITECTURES, build_autoencoder
from distmatch.objectives import AutoencoderObjective, Draws
from distmatch.training._graph import GraphedStep, pushes_in_step
from distmatch.training._loop import _compiled, _forward, _own_code
from distmatch.window import FeatureWindow, MovingSketch, MovingWindow


def plain_forward(model, objective, window, x, draws, sizes, unbiased, push=False):
    """The batch-of-one autoencoder step's differentiable part: reconstruction loss only."""
    z = model.encode(x)
    rec = model.decode(z)
    return z, {"loss": (rec - x).pow(2).flatten(1).sum(1).mean().sqrt()}


def make_step(
    mode: str,
    n: int,
    k: int,
    generator: torch.Generator,
    arch: str = "mnist_mlp",
    compile: bool | str = False,
    device: str = "cpu",
    graph: bool = False,
):
    """One training step of ``mode`` as a function of no arguments. ``compile``: False, True
    (``torch.compile``'s default mode) or a mode name such as ``"reduce-overhead"``."""
    torch.manual_seed(0)
    shape = ARCHITECTURES[arch].sample_shape or (3, 256, 256)
    model = build_autoencoder(arch, sample_shape=shape).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0025)
    model_name = mode.removesuffix("_sketch")
    objective = None
    if mode != "plain":
        objective = AutoencoderObjective(model_name, latent_dim=model.latent_dim)
    if mode == "plain":
        window = None
    elif mode.endswith("_sketch"):  # skwae with the moving sketch instead of the window
        window = MovingSketch(n=n, k=k, dim=model.latent_dim, device=device)
    elif mode == "skwae":  # its window joins the codes' features (as training does)
        window = FeatureWindow(n=n, k=k, dim=model.latent_dim, device=device)
    else:
        window = MovingWindow(n=n, k=k, dim=model.latent_dim, device=device)
    data = torch.rand(max(2 * k, 16), *shape, generator=generator).to(device)
    draws_from = torch.Generator(device=device).manual_seed(1)  # as the run's generator
    forward = plain_forward if window is None else _forward
    if compile:
        # A code object of its own per mode (as _compiled makes), so that the modes do not share
        # one compile cache (whose guards a training run, with a single mode, would not pay for).
        forward = (
            _compiled(forward)
            if compile is True
            else torch.compile(_own_code(forward), mode=compile, dynamic=False)
        )
    graphed = None
    if graph:  # the step of train --cuda-graph; the window starts full (init "prior")
        run = types.SimpleNamespace(
            config=types.SimpleNamespace(k=k), model=model, objective=objective,
            memory=window or _NoMemory(), optimizer=optimizer, device=torch.device(device),
        )  # fmt: skip
        graphed = GraphedStep(run, forward, True)
        if not graphed.ready(k):
            raise ValueError(f"--graph needs a full window at the start; got {window.position}.")
    position = [0]

    def step() -> None:
        i = position[0] % (len(data) - k)
        position[0] += k
        x = data[i : i + k]
        draws = Draws()
        if window is not None:
            draws = objective.draws(window.joined_shape(k), draws_from, device=device)
        if graphed is not None:
            if graphed(x, draws) is None:  # it warned why
                raise RuntimeError("the step could not be captured in a CUDA graph")
            return
        inside = compile and window is not None and pushes_in_step(window, k)  # as training
        if inside:
            window.stage()
        z, parts = forward(model, objective, window, x, draws, (k,), True, inside)
        loss = parts["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if inside:
            window.advance(k)
        elif window is not None:
            window.push(z)

    return step


class _NoMemory:
    """The plain step's memory in a graphed step: nothing to push."""

    refresh = "none"

    def stage(self) -> None:
        pass

    def push_at(self, z: torch.Tensor) -> None:
        pass

    def advance(self, b: int) -> None:
        pass


def _graph_note(graph: bool, device: torch.device) -> str:
    if not graph:
        return ""
    return ", whole step in a CUDA graph" if device.type == "cuda" else ", static step (uncaptured)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arch", default="mnist_mlp", help="architecture (ffhq_conv at 256x256)")
    parser.add_argument(
        "--compile",
        nargs="?",
        const=True,
        default=False,
        help="torch.compile every step's forward (train --compile); optionally a mode, e.g. "
        "--compile reduce-overhead (CUDA graphs of the forward and backward)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--graph",
        action="store_true",
        help="the whole step in one CUDA graph (on the CPU: the same static step, uncaptured)",
    )
    parser.add_argument("--modes", default="plain,cwae,wae,swae,skwae,skwae_sketch")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop starting rounds once the measured ones (after the warm-up) took this long; "
        "at least one round runs (for a machine whose speed is not known beforehand)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    gen = torch.Generator().manual_seed(0)
    modes = args.modes.split(",")
    if args.graph and args.compile not in (False, True):
        parser.error("--graph captures the step itself; use --compile without a mode with it.")
    if modes[0] != "plain":
        parser.error(f"--modes must start with plain (the ratios' base); got {args.modes}.")
    steps = {
        mode: make_step(mode, args.n, args.k, gen, args.arch, args.compile, device, args.graph)
        for mode in modes
    }
    for step in steps.values():  # warm up
        for _ in range(min(50, args.block)):
            step()
    sync()
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    began = time.perf_counter()
    for done in range(args.rounds):
        if done and args.max_seconds is not None and time.perf_counter() - began > args.max_seconds:
            break
        for mode in modes:
            start = time.perf_counter()
            for _ in range(args.block):
                steps[mode]()
            sync()
            times[mode].append((time.perf_counter() - start) / args.block)
    how = {False: "eager", True: "compiled"}.get(args.compile, f"compiled ({args.compile})")
    print(
        f"{args.arch}, k = {args.k}, n = {args.n}, {device}, {args.threads} thread(s), {how}"
        f"{_graph_note(args.graph, device)}, "
        f"{len(times['plain'])} rounds of {args.block} steps; median over rounds"
    )
    print("| mode | ms / step | ratio to plain (median of per-round ratios) |")
    print("|---|---|---|")
    for mode in modes:
        ratios = [t / p for t, p in zip(times[mode], times["plain"], strict=True)]
        print(
            f"| {mode} | {1e3 * statistics.median(times[mode]):.3f} | {statistics.median(ratios):.3f} |"
        )


if __name__ == "__main__":
    main()
