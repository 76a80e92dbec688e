"""``distmatch sketch`` (make, ``merge``, ``info``): a data set into a sketch file, in one pass."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from .. import distributed
from .. import sketch as sk
from ..data import TOYS, toy_dataset
from ..sketch import LAWS, Sketch
from ._common import UsageError

# ------------------------------------------------------------------------------------------ sketch


def add_sketch(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sketch",
        help="compress a data set into a sketch file in one pass (also: sketch merge, sketch info)",
        description=(
            "One pass over the data: the sketch is the mean of random Fourier features "
            "[cos(x W), sin(x W)] / sqrt(m), saved as .npz with its frequencies and the scaling "
            "applied first. `distmatch sketch merge A.npz B.npz --out C.npz` adds partial sketches "
            "(e.g. of --shard 1/2 and 2/2); `distmatch sketch info S.npz` describes one. Under "
            "torchrun each process sketches its part and rank 0 writes the file."
        ),
    )
    p.add_argument(
        "--dataset", required=True, help="a toy (spiral, gmm, circle) or a .npy file (N, D)"
    )
    p.add_argument(
        "--n-frequencies",
        type=int,
        default=sk.CLGN_FREQUENCIES,
        help=f"m, the number of frequencies ({sk.CLGN_FREQUENCIES})",
    )
    p.add_argument(
        "--law",
        default="folded_gaussian",
        choices=tuple(LAWS),
        help="frequency law (folded_gaussian)",
    )
    p.add_argument(
        "--bandwidth",
        default=str(sk.CLGN_BANDWIDTH),
        help="kernel bandwidth, or 'auto' (default sqrt(1e-3), CL-GN's)",
    )
    p.add_argument(
        "--scale",
        default="unit_ball",
        help="divisor applied first: unit_ball (max norm of the whole data set, default), none, "
        "or a positive number",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="sketch only the I-th of N contiguous shards (1 <= I <= N), for sketch merge",
    )
    p.add_argument("--points", type=int, default=100_000, help="draws of a toy data set (100000)")
    p.add_argument("--batch-size", type=int, default=10_000, help="points per chunk (10000)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the frequencies and of toy draws (0)"
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    p.add_argument("--out", type=Path, required=True, help="the sketch file, .npz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_sketch(args: argparse.Namespace) -> int:
    if args.out.suffix != ".npz":
        raise UsageError(f"--out must be a .npz file; got '{args.out}'.")
    if args.out.exists():
        raise UsageError(f"--out '{args.out}' exists already; choose another file or remove it.")
    fixed_scale = _fixed_scale(args.scale)
    data = _sketch_data(args)
    shard = _shard_rows(args.shard, len(data), args.batch_size) if args.shard else slice(None)
    with distributed.process_group(args.device) as device:
        # A data-dependent scale is that of the whole data set, whatever the shard or the rank.
        scale = fixed_scale or sk.unit_ball_scaling(
            data, batch_size=args.batch_size, across_ranks=True
        )
        features = sk.FourierFeatures(
            data.shape[1],
            args.n_frequencies,
            law=args.law,
            bandwidth=_bandwidth(args, data, scale),
            generator=torch.Generator().manual_seed(args.seed),
        )
        started = time.perf_counter()
        sketch = sk.sketch_dataset(
            data[shard],
            features,
            batch_size=args.batch_size,
            scale=scale,
            device=device,
            progress=not args.no_progress,
            across_ranks=True,
        )
        seconds = time.perf_counter() - started
        if not distributed.is_main():
            return 0
    if args.dataset in TOYS:
        sketch.source = args.dataset
        fingerprint = f"toy:{args.dataset}:points={args.points}:seed={args.seed}"
    else:
        fingerprint = sk.file_fingerprint(args.dataset, "npy")
    rows = range(len(data))[shard]
    sketch.record_piece(fingerprint, rows.start, rows.stop)
    sketch.save(args.out)
    rate = sketch.count / seconds if seconds > 0 else float("inf")
    what = f"shard {args.shard} (rows {shard.start}..{shard.stop - 1}): " if args.shard else ""
    print(
        f"sketched {what}{sketch.count:,} points of dimension {data.shape[1]} with "
        f"m = {args.n_frequencies:,} in {seconds:.2f} s ({rate:,.0f} points/s) -> {args.out}"
    )
    return 0


def _sketch_data(args: argparse.Namespace):
    """The whole data set of --dataset: toy draws or a memory-mapped (N, D) .npy array."""

    if args.dataset in TOYS:
        return toy_dataset(args.dataset, args.points, seed=args.seed).numpy()
    if not args.dataset.endswith(".npy"):
        raise UsageError(
            f"--dataset must be one of {', '.join(sorted(TOYS))} or a .npy file; got '{args.dataset}'."
        )
    if not Path(args.dataset).is_file():
        raise UsageError(f"--dataset file '{args.dataset}' does not exist.")
    data = np.load(args.dataset, mmap_mode="r", allow_pickle=False)
    if data.ndim != 2:
        raise UsageError(f"--dataset must hold an (N, D) array; got shape {data.shape}.")
    return data


def _fixed_scale(value: str) -> float | None:
    """--scale: None for unit_ball (computed from the data), 1.0 for none, or the number given."""
    if value == "unit_ball":
        return None
    if value == "none":
        return 1.0
    try:
        scale = float(value)
    except ValueError:
        scale = math.nan
    if not (0 < scale < math.inf):
        raise UsageError(f"--scale must be unit_ball, none or a positive number; got '{value}'.")
    return scale


def _shard_rows(spec: str, n_rows: int, batch_size: int) -> slice:
    """Rows of --shard I/N (1-based): contiguous runs of whole --batch-size chunks."""

    index, _, count = spec.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise UsageError(f"--shard must be I/N with 1 <= I <= N (e.g. 1/4); got '{spec}'.")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1; got {batch_size}.")
    rows = distributed.shard_rows(n_rows, batch_size, int(index) - 1, int(count))
    if rows.stop <= rows.start:
        chunks = math.ceil(n_rows / batch_size)
        raise UsageError(
            f"--shard {spec} must hold data; got none: {n_rows} rows make {chunks} chunks of "
            f"--batch-size {batch_size}, so use at most {chunks} shards or a smaller --batch-size."
        )
    return rows


def _bandwidth(args: argparse.Namespace, data, scale: float) -> float:
    """--bandwidth, or its estimate from the first 20,000 rows (the same for every shard)."""
    if args.bandwidth == "auto":
        sample = (
            torch.as_tensor(np.asarray(data[: min(len(data), 20_000)], dtype=np.float64)) / scale
        )
        bandwidth = sk.estimate_bandwidth(
            sample, generator=torch.Generator().manual_seed(args.seed)
        )
        if distributed.is_main():
            print(f"estimated bandwidth: {bandwidth:.6g}")
        return bandwidth
    try:
        return float(args.bandwidth)
    except ValueError:
        raise UsageError(
            f"--bandwidth must be a positive number or 'auto'; got '{args.bandwidth}'."
        ) from None


def add_sketch_merge(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sketch-merge", help="add sketch files of shards (also: sketch merge)"
    )
    p.add_argument(
        "inputs", nargs="+", type=Path, help="sketch files made with the same frequencies"
    )
    p.add_argument("--out", type=Path, required=True, help="the merged sketch, .npz")


def run_sketch_merge(args: argparse.Namespace) -> int:

    if len(args.inputs) < 2:
        raise UsageError(f"sketch merge needs at least two sketch files; got {len(args.inputs)}.")
    seen: dict = {}
    for path in args.inputs:
        if path.resolve() in seen:
            raise UsageError(
                f"'{path}' is given twice; a merge adds data, it never counts it twice."
            )
        seen[path.resolve()] = path
    if args.out.exists():
        raise UsageError(f"--out '{args.out}' exists already; choose another file or remove it.")
    if args.out.suffix != ".npz":
        raise UsageError(f"--out must be a .npz file; got '{args.out}'.")
    merged = Sketch.load(args.inputs[0])
    for path in args.inputs[1:]:
        part = Sketch.load(path)
        try:
            merged.merge(part)
        except ValueError as err:
            raise UsageError(f"'{path}' cannot be merged with '{args.inputs[0]}': {err}") from None
    merged.save(args.out)
    print(f"merged {len(args.inputs)} sketches ({merged.count:,} points) -> {args.out}")
    return 0


def add_sketch_info(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sketch-info", help="describe a sketch file (also: sketch info)")
    p.add_argument("path", type=Path, help="a sketch file")
    p.add_argument("--json", action="store_true", help="print JSON")


def run_sketch_info(args: argparse.Namespace) -> int:

    sketch = Sketch.load(args.path)
    features = sketch.features
    info = {
        "file": str(args.path),
        "points": sketch.count,
        "dimension": features.dim,
        "frequencies": features.n_frequencies,
        "law": features.law,
        "bandwidth": features.bandwidth,
        "quantized": bool(getattr(features, "quantized", False)),
        "scale": float(sketch.scale),
        "center": np.asarray(sketch.center).tolist() if sketch.center is not None else None,
        "source": getattr(sketch, "source", None),
        "bytes": args.path.stat().st_size,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>12}: {value}")
    return 0


COMMANDS = {
    "sketch": (add_sketch, run_sketch),
    "sketch-merge": (add_sketch_merge, run_sketch_merge),
    "sketch-info": (add_sketch_info, run_sketch_info),
}

# ``distmatch sketch merge ...`` and ``distmatch sketch info ...`` are routed to these commands.
SKETCH_ACTIONS = {"merge": "sketch-merge", "info": "sketch-info"}
