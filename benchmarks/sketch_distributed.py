"""Throughput of distributed sketching: one process against P gloo processes on this machine.

Random float32 data (N = 60,000, d = 784, as MNIST), m = 10,000 frequencies (folded Gaussian),
batch_size 10,000, on CPU. For each process count P the same script runs P ranks (spawned here, one
gloo group each, ``cores // P`` threads per rank) that time :func:`distmatch.sketch.sketch_dataset` (``across_ranks=True``)
between two barriers: each rank sketches its shard, then one float64 all-reduce of 2m + 1 numbers.
Medians over ``--repeats`` passes (after one warm-up pass) are reported with the speed-up over P = 1,
and the largest difference between the sketches of P = 1 and P > 1 (float64 round-off expected).

    python benchmarks/sketch_distributed.py                   # P = 1 and 2
    python benchmarks/sketch_distributed.py --processes 1 2 4 --n 20000
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from distmatch.sketch import FourierFeatures, sketch_dataset

BATCH = 10_000


def rank_main(rank: int, size: int, args: argparse.Namespace, store: str, out: str) -> None:
    """One rank: join the group, build the same data and features as every rank, time passes."""
    torch.set_num_threads(max(1, args.cores // size))
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size)
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(args.n, args.dim, generator=g)  # (N, d) float32, the same on every rank
        features = FourierFeatures(args.dim, args.m, bandwidth=math.sqrt(1e-3), generator=g)

        def one_pass():
            return sketch_dataset(
                x, features, batch_size=BATCH, device="cpu", progress=False, across_ranks=True
            )

        one_pass()  # warm-up: allocations, thread pools
        seconds = []
        for _ in range(args.repeats):
            dist.barrier()
            start = time.perf_counter()
            sketch = one_pass()
            dist.barrier()
            seconds.append(time.perf_counter() - start)
        if rank == 0:
            torch.save({"seconds": seconds, "mean": sketch.mean, "count": sketch.count}, out)
    finally:
        dist.destroy_process_group()


def measure(size: int, args: argparse.Namespace, folder: Path) -> dict:
    store, out = folder / f"store{size}", folder / f"result{size}.pt"
    mp.spawn(rank_main, args=(size, args, str(store), str(out)), nprocs=size, join=True)
    return torch.load(out, weights_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--n", type=int, default=60_000, help="samples (60,000)")
    parser.add_argument("--dim", type=int, default=784, help="dimension d (784)")
    parser.add_argument("--m", type=int, default=10_000, help="frequencies m (10,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per P (median)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="values of P")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores to share")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}; N={args.n:,}, d={args.dim}, m={args.m:,}, float32, CPU, "
        f"{args.cores} cores shared by the ranks; median of {args.repeats} passes"
    )
    print(f"{'P':>3} {'threads/rank':>13} {'seconds':>9} {'samples/s':>12} {'speed-up':>9}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.processes:
            results[size] = measure(size, args, Path(tmp))
            seconds = statistics.median(results[size]["seconds"])
            base = statistics.median(results[args.processes[0]]["seconds"])
            threads = max(1, args.cores // size)
            print(
                f"{size:>3} {threads:>13} {seconds:>9.2f} {args.n / seconds:>12,.0f} "
                f"{base / seconds:>8.2f}x"
            )
    first = results[args.processes[0]]
    for size in args.processes[1:]:
        gap = float((results[size]["mean"] - first["mean"]).abs().max())
        print(f"max |sketch(P={size}) - sketch(P={args.processes[0]})| = {gap:.1e}")


if __name__ == "__main__":
    main()
