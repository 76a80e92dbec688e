"""Time of one optimizer update of an architecture's parameters: PyTorch's per-tensor loop,
``foreach`` and ``fused`` (which ``distmatch train`` uses on CPU and CUDA).

The update alone, with random gradients, interleaved in ``--rounds`` blocks in one process;
medians, and each kind's ratio to the fused one measured beside it.

    python benchmarks/optimizer_speed.py --arch mnist_mlp
    python benchmarks/optimizer_speed.py --arch celeba_conv --block 20
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from distmatch.models import ARCHITECTURES, build_autoencoder

KINDS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--arch", default="mnist_mlp")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    shape = ARCHITECTURES[args.arch].sample_shape or (3, 256, 256)
    model = build_autoencoder(args.arch, sample_shape=shape).to(device)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.arch}: {params:,} parameters, {device}, {args.threads} thread(s)")
    print("| optimizer | kind | ms / update | ratio to fused |")
    print("|---|---|---|---|")
    for name, make in (("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)):
        updates = {}
        for kind, options in KINDS.items():
            copy = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
            for p in copy:
                p.grad = torch.randn_like(p)
            updates[kind] = make(copy, lr=1e-4, **options)
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for optimizer in updates.values():  # warm up (state, kernels)
            for _ in range(5):
                optimizer.step()
        for _ in range(args.rounds):
            for kind, optimizer in updates.items():
                sync()
                start = time.perf_counter()
                for _ in range(args.block):
                    optimizer.step()
                sync()
                times[kind].append((time.perf_counter() - start) / args.block)
        for kind in KINDS:
            ratios = [t / f for t, f in zip(times[kind], times["fused"], strict=True)]
            print(
                f"| {name} | {kind} | {1e3 * statistics.median(times[kind]):.3f} "
                f"| {statistics.median(ratios):.2f} |"
            )


if __name__ == "__main__":
    main()
