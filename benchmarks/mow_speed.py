"""Time per training step of moving-window training against a plain batch-of-one step.

``mnist_mlp`` (z = 20) by default (``--arch`` for another), k = 1, plain SGD, synthetic inputs.
Modes:

- ``plain``: the batch-of-one autoencoder step, reconstruction loss only;
- ``cwae``, ``wae``, ``swae``, ``skwae``: the moving-window step with n = 64 codes (1 fresh + 63 from the window),
  including the prior draws (made before the forward, as training does), the window's join and
  push and the unbiased window gradient; ``skwae_sketch``: skwae with the moving sketch.

The modes run in interleaved blocks of ``--block`` steps, repeated ``--rounds`` times, in one
process; each block's time is divided by the plain block beside it, and the median ratio is reported
(machines here are noisy, so only ratios measured side by side are compared).

    python benchmarks/mow_speed.py --rounds 15 --block 300
    python benchmarks/mow_speed.py --rounds 15 --block 300 --compile
    python benchmarks/mow_speed.py --arch celeba_conv --rounds 5 --block 40
"""

from __future__ import annotations

import argparse
import statistics
import time
import types

import torch

from distmatch.models import ARCHITECTURES, build_autoencoder
from distmatch.objectives import AutoencoderObjective
from distmatch.training._loop import _compiled, _forward
from distmatch.window import MovingSketch, MovingWindow


def plain_forward(model, objective, window, x, draws, sizes, unbiased):
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
    compile: bool = False,
):
    torch.manual_seed(0)
    shape = ARCHITECTURES[arch].sample_shape or (3, 256, 256)
    model = build_autoencoder(arch, sample_shape=shape)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0025)
    model_name = mode.removesuffix("_sketch")
    objective = None
    if mode != "plain":
        objective = AutoencoderObjective(model_name, latent_dim=model.latent_dim)
    if mode == "plain":
        window = None
    elif mode.endswith("_sketch"):  # skwae with the moving sketch instead of the window
        window = MovingSketch(n=n, k=k, dim=model.latent_dim)
    else:
        window = MovingWindow(n=n, k=k, dim=model.latent_dim)
    data = torch.rand(max(2 * k, 16), *shape, generator=generator)
    position = [0]
    forward = plain_forward if window is None else _forward
    if compile:
        # A code object of its own per mode, so that the modes do not share one compile cache
        # (whose guards a training run, with a single mode, would not pay for).
        code = forward.__code__.replace(co_name=f"{forward.__name__}_{mode}")
        forward = _compiled(types.FunctionType(code, forward.__globals__))

    def step() -> None:
        i = position[0] % (len(data) - k)
        position[0] += k
        x = data[i : i + k]
        draws = None if window is None else objective.draws(window.joined_shape(k), generator)
        z, parts = forward(model, objective, window, x, draws, (k,), True)
        loss = parts["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if window is not None:
            window.push(z)

    return step


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
        action="store_true",
        help="torch.compile every step's forward (train --compile)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    modes = ["plain", "cwae", "wae", "swae", "skwae", "skwae_sketch"]
    steps = {mode: make_step(mode, args.n, args.k, gen, args.arch, args.compile) for mode in modes}
    for step in steps.values():  # warm up
        for _ in range(min(50, args.block)):
            step()
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode in modes:
            start = time.perf_counter()
            for _ in range(args.block):
                steps[mode]()
            times[mode].append((time.perf_counter() - start) / args.block)
    print(
        f"{args.arch}, k = {args.k}, n = {args.n}, {args.threads} thread(s), "
        f"{'compiled' if args.compile else 'eager'}, "
        f"{args.rounds} rounds of {args.block} steps; median over rounds"
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
