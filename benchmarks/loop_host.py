"""The host work of ``distmatch train``'s loop per step, against whole steps measured beside it.

At k = 1 on a GPU, the step itself can be one CUDA graph replay (``--cuda-graph``), and what is
left on the host each step decides how many steps per second a run can reach: the batch's rows
and their copy to the device, the prior draws, the window's bookkeeping (input tracking, the
re-encoding every ``refresh_every`` steps), the loss meter, the progress bar, the stop and
checkpoint checks. This script runs ``distmatch.train`` with the step replaced by nothing (a
stand-in for the graphed step that returns fixed loss parts), so only that host work is left,
then the same run with its real step (``--cuda-graph`` on CUDA, eager on the CPU). Each loop is
timed from its first step to its end (start-up and evaluations excluded); loops alternate, ``--rounds`` times,
and medians are printed:

    python benchmarks/loop_host.py                                 # embedded digits, CPU
    python benchmarks/loop_host.py --dataset mnist --data-dir ../shared/data/mnist
    python benchmarks/loop_host.py --dataset mnist --data-dir data/mnist --device cuda

The loop alone bounds the steps/s of any step: with it at ``h`` µs, ``train --cuda-graph``
reaches 2,000 steps/s only if the replay and the loop together take at most 500 µs.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from unittest import mock

import torch

import distmatch.training._loop as loop_module
from distmatch.training import TrainConfig


class NoStep:
    """Stands in for the graphed step: ready for every batch, returns fixed loss parts."""

    def __init__(self, device: torch.device) -> None:
        zero = torch.zeros((), device=device)
        self.parts = {"loss": zero, "reconstruction": zero, "distance": zero}

    def ready(self, b: int) -> bool:
        return True

    def __call__(self, x: torch.Tensor, draws) -> dict[str, torch.Tensor]:
        return self.parts


def loop_seconds(config: TrainConfig, alone: bool) -> float:
    """Seconds of the run's loop (its steps, checkpoints, the final save), start-up and
    evaluations (after epoch 1 and at the end) excluded."""
    timed: list[float] = []
    real_loop = loop_module._loop

    def timed_loop(s, progress):
        if s.device.type == "cuda":
            torch.cuda.synchronize()
        start, evaluating = time.perf_counter(), s.eval_seconds
        out = real_loop(s, progress)
        if s.device.type == "cuda":
            torch.cuda.synchronize()
        timed.append(time.perf_counter() - start - (s.eval_seconds - evaluating))
        return out

    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(loop_module, "_loop", timed_loop))
        if alone:
            no_step = lambda s, forward, unbiased: NoStep(s.device)  # noqa: E731
            patches.enter_context(mock.patch.object(loop_module, "_graphed_step", no_step))
        folder = patches.enter_context(tempfile.TemporaryDirectory())
        loop_module.train(config, f"{folder}/run", progress=False)
    return timed[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--model", default="cwae", help="cwae (train's default) | wae | swae | skwae"
    )
    parser.add_argument("--steps", type=int, default=5000, help="steps of each loop-alone run")
    parser.add_argument("--real-steps", type=int, default=1000, help="steps of each real run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.device(args.device).type == "cuda"
    base = dict(
        model=args.model, dataset=args.dataset, data_dir=args.data_dir, k=1, n=64,
        device=args.device, compile=False, eval_every=10**6, checkpoint_every=10**9,
        checkpoint_minutes=1e9,
    )  # fmt: skip
    whole = f"whole steps ({'--cuda-graph' if cuda else 'eager'})"
    runs = {  # name: (config, step replaced by nothing)
        "loop alone, window refresh every 16 steps": (
            TrainConfig(**base, steps=args.steps, cuda_graph=True),
            True,
        ),
        "loop alone, no refresh": (
            TrainConfig(**base, steps=args.steps, refresh_every=0, cuda_graph=True),
            True,
        ),
        whole: (TrainConfig(**base, steps=args.real_steps, cuda_graph=cuda), False),
    }
    per_step: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (config, alone) in runs.items():
            per_step[name].append(loop_seconds(config, alone) / config.steps)
    print(
        f"{args.model}, {args.dataset}, k = 1, n = 64, {args.device}, {args.threads} thread(s); "
        f"median of {args.rounds} rounds"
    )
    print("| loop | µs / step | steps/s |\n|---|---|---|")
    medians = {name: statistics.median(times) for name, times in per_step.items()}
    for name, seconds in medians.items():
        print(f"| {name} | {1e6 * seconds:.1f} | {1 / seconds:,.0f} |")
    alone = medians["loop alone, window refresh every 16 steps"]
    print(f"the loop's host work is {alone / medians[whole]:.2f} of a whole step's time")


if __name__ == "__main__":
    main()
