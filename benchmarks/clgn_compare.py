"""Generators from a sketch against exact-MMD generators: cost against N, quality against time.

1. Cost against the data size N (spiral, N in --sizes): the sketching pass grows with N, while a
   training epoch from the sketch does not (it never reads the data).
2. CL-GN against exact mini-batch MMD with the same kernel (folded Gaussian, bandwidth sqrt(1e-3))
   and the same generator, optimizer and batches, on the spiral with N = 100,000. The table gives the
   held-out MMD (fixed, independent Gaussian kernel) per epoch, the cumulative training time and the
   number of passes over the data. The sketch reads the data once (plus a norms-only pass for the
   unit-ball scaling); the exact MMD reads batch_size points per step.

    python benchmarks/clgn_compare.py --epochs 10 --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from distmatch.data import toy_dataset
from distmatch.generation import GeneratorConfig, train_generator
from distmatch.runs import RunDir
from distmatch.sketch import FourierFeatures, sketch_dataset, unit_ball_scaling

M, BANDWIDTH = 10_000, 1e-3**0.5


def make_sketch(n: int, path: Path) -> float:
    data = toy_dataset("spiral", n, seed=0)
    started = time.perf_counter()
    scale = unit_ball_scaling(data)
    features = FourierFeatures(
        2, M, bandwidth=BANDWIDTH, generator=torch.Generator().manual_seed(0)
    )
    sketch = sketch_dataset(data, features, scale=scale, progress=False)
    seconds = time.perf_counter() - started
    sketch.source = "spiral"
    sketch.save(path)
    return seconds


def run(config: GeneratorConfig, out: Path) -> tuple[dict, list[dict]]:
    summary = train_generator(config, out, progress=False)
    return summary, RunDir(out).read_metrics()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    common = {"epochs": 2, "patience": 100, "eval_points": 1000, "log_every": 50}
    results: dict = {"sizes": [], "compare": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("1. Cost against N (spiral, m = 10,000; training: 2 epochs of 100 steps of 1000)")
        print(
            "| N | sketching pass | s per training epoch from the sketch | data reads in training |"
        )
        print("|---|---|---|---|")
        for n in (int(v) for v in args.sizes.split(",")):
            path = tmp / f"spiral-{n}.npz"
            sketch_seconds = make_sketch(n, path)
            summary, _ = run(GeneratorConfig(sketch=str(path), **common), tmp / f"fit-{n}")
            per_epoch = summary["step"] / summary["steps_per_second"] / summary["epochs"]
            results["sizes"].append({"n": n, "sketch_s": sketch_seconds, "epoch_s": per_epoch})
            print(f"| {n:,} | {sketch_seconds:.2f} s | {per_epoch:.2f} s | 0 |")

        n = 100_000
        path = tmp / "spiral-compare.npz"
        sketch_seconds = make_sketch(n, path)
        long = {**common, "epochs": args.epochs}
        print(
            f"\n2. CL-GN against exact MMD (spiral, N = {n:,}, {args.epochs} epochs, same kernel)"
        )
        print(
            "| epoch | CL-GN: held-out MMD | time (s) | data passes | exact MMD: held-out MMD | time (s) | data passes |"
        )
        print("|---|---|---|---|---|---|---|")
        sk_summary, sk_rows = run(GeneratorConfig(sketch=str(path), **long), tmp / "clgn")
        mmd_config = GeneratorConfig(objective="mmd", dataset="spiral", bandwidth=BANDWIDTH, **long)
        mm_summary, mm_rows = run(mmd_config, tmp / "mmd")
        steps_per_epoch = 100
        sk_epoch_s = 1 / sk_summary["steps_per_second"] * steps_per_epoch
        mm_epoch_s = 1 / mm_summary["steps_per_second"] * steps_per_epoch
        sk_eval = [r for r in sk_rows if r["kind"] == "eval"]
        mm_eval = [r for r in mm_rows if r["kind"] == "eval"]
        for a, b in zip(sk_eval, mm_eval, strict=True):
            e = a["epoch"]
            print(
                f"| {e} | {a['mmd']:.4f} | {sketch_seconds + e * sk_epoch_s:.1f} | 1 (+1 norms) | "
                f"{b['mmd']:.4f} | {e * mm_epoch_s:.1f} | {e * steps_per_epoch * 1000 / n:.0f} |"
            )
        results["compare"] = {
            "clgn": sk_eval,
            "mmd": mm_eval,
            "sketch_s": sketch_seconds,
            "clgn_epoch_s": sk_epoch_s,
            "mmd_epoch_s": mm_epoch_s,
        }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
