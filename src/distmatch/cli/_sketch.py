"""``distmatch sketch`` (make, ``merge``, ``info``): a data set into a sketch file, in one pass."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import secrets
import time
from pathlib import Path

import numpy as np
import torch

from .. import distributed
from .. import sketch as sk
from ..sketch import LAWS, Sketch
from ._common import (
    OVERWRITE_HELP,
    UsageError,
    bandwidth_flag,
    check_new_file,
    frequency_seed_option,
)
from ._sketch_data import groups as groups_of
from ._sketch_data import labelled, sketch_source

# ------------------------------------------------------------------------------------------ sketch


def add_sketch(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sketch",
        help="compress a data set into a sketch file in one pass (also: sketch merge, sketch info)",
        description=(
            "One pass over the data: the sketch is the mean of random Fourier features "
            "[cos(x W), sin(x W)] / sqrt(m), saved as .npz with its frequencies, the scaling "
            "applied first and, for images, the sample shape. `distmatch sketch merge A.npz "
            "B.npz --out C.npz` adds partial sketches (e.g. of --shard 1/2 and 2/2); `distmatch "
            "sketch info S.npz` describes one. Under torchrun each process sketches its part and "
            "rank 0 writes the file."
        ),
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="a toy (spiral, gmm, circle), a data set (mnist, fashion_mnist, cifar10, celeba, "
        "ffhq, digits; with --data-dir), a folder or zip of images, or a .npy file",
    )
    p.add_argument("--data-dir", default=None, help="where the data set's files are")
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="side of resized images (celeba 64, ffhq 1024, folders 64)",
    )
    p.add_argument(
        "--n-frequencies",
        type=int,
        default=None,
        help=f"m, the number of frequencies (vectors: {sk.CLGN_FREQUENCIES:,}; images: "
        "5 D, at most 4,000)",
    )
    p.add_argument(
        "--law",
        default=None,
        choices=tuple(LAWS),
        help=f"frequency law (vectors: folded_gaussian; images: {sk.IMAGE_LAW})",
    )
    p.add_argument(
        "--bandwidth",
        default=None,
        help="kernel bandwidth, or 'auto' (vectors: sqrt(1e-3), CL-GN's; images: auto)",
    )
    p.add_argument(
        "--scale",
        default="auto",
        help="divisor applied first: unit_ball (max norm of the whole data set), none, a positive "
        "number, or auto (default: none for images, whose pixels stay in [0, 1]; unit_ball else)",
    )
    p.add_argument(
        "--by-label",
        action="store_true",
        help="one sketch per class of a labelled data set: OUT-<label>.npz (e.g. mnist-3.npz)",
    )
    p.add_argument(
        "--no-classes",
        action="store_true",
        help="of a labelled data set, write the whole sketch only (by default the file also "
        "holds one sketch per class, from which fit-sketch trains a class-conditional generator)",
    )
    p.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="differential privacy: release the sketch with noise for (epsilon, delta)-DP",
    )
    p.add_argument("--delta", type=float, default=0.0, help="DP failure probability (0)")
    p.add_argument(
        "--mechanism",
        default=None,
        choices=sk.MECHANISMS,
        help="DP noise: laplace when --delta is 0 (default), analytic_gaussian otherwise",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="sketch only the I-th of N contiguous shards (1 <= I <= N), for sketch merge",
    )
    p.add_argument(
        "--points", type=int, default=None, help="draws of a toy data set (100000; toys only)"
    )
    p.add_argument("--batch-size", type=int, default=10_000, help="points per chunk (10000)")
    p.add_argument(
        "--seed",
        type=frequency_seed_option,
        default=0,
        help="seed of the frequencies and of toy draws (0; up to 2^63)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    p.add_argument(
        "--fused-kernel",
        action="store_true",
        help="on CUDA: product, cos, sin and sums in one Triton kernel per chunk (needs Triton)",
    )
    p.add_argument("--out", type=Path, required=True, help="the sketch file, .npz")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_sketch(args: argparse.Namespace) -> int:
    if args.out.suffix != ".npz":
        raise UsageError(f"--out must be a .npz file; got '{args.out}'.")
    privacy = _privacy_options(args)
    source = sketch_source(args)
    images = source.sample_shape is not None
    law, n_frequencies, bandwidth = sk.sketch_recipe(
        source.dim, image=images, law=args.law, n_frequencies=args.n_frequencies,
        bandwidth=bandwidth_flag(args.bandwidth),
    )  # fmt: skip
    fixed_scale = _fixed_scale(args.scale, images)
    if privacy is not None and (bandwidth is None or fixed_scale is None):
        estimated = [f"--bandwidth {args.bandwidth or 'auto'}"] if bandwidth is None else []
        estimated += [f"--scale {args.scale or 'auto'}"] if fixed_scale is None else []
        raise UsageError(
            "--epsilon needs a --bandwidth number and a fixed --scale (none or a number): "
            "estimating them from the data would leak what the privacy guarantee does not "
            f"cover; got {' and '.join(estimated)} (estimated from the data)."
        )
    # a labelled data set sketched whole: its classes too, in the same file
    with_classes = (
        not (args.by_label or args.shard or args.no_classes) and source.labels is not None
    )
    groups = groups_of(args, source, classes=with_classes)
    outs = [args.out] if with_classes else [labelled(args.out, label) for label, _ in groups]
    for out in outs:
        check_new_file(out, args.overwrite)
    every = torch.arange(source.count)
    shard = _shard_rows(args.shard, source.count, args.batch_size) if args.shard else slice(None)
    with distributed.process_group(args.device) as device:
        if args.fused_kernel and not sk.fused_available(device):
            raise UsageError(
                f"--fused-kernel needs a CUDA device and Triton; got device {device.type}."
            )
        # A data-dependent scale is that of the whole data set, whatever the shard or the rank.
        scale = fixed_scale or sk.unit_ball_scaling(
            source.rows(every, args.batch_size), batch_size=args.batch_size, across_ranks=True
        )
        if bandwidth is None:
            probe = source.probe(sk.BANDWIDTH_PROBE, args.seed) / scale
            gen = torch.Generator().manual_seed(args.seed)
            bandwidth = sk.auto_bandwidth(probe, image=images, law=law, generator=gen)
            if distributed.is_main():
                print(f"estimated bandwidth: {bandwidth:.6g}")
        features = sk.FourierFeatures(
            source.dim,
            n_frequencies,
            law=law,
            bandwidth=bandwidth,
            seed=args.seed,
        )
        started = time.perf_counter()
        sketches = []
        for label, index in groups:
            index = index[shard]
            if distributed.is_active() and not isinstance(source.data, np.ndarray):
                # each rank reads its run of whole chunks (sketch_dataset cuts arrays itself)
                w = distributed.world()
                index = index[distributed.shard_rows(len(index), args.batch_size, w.rank, w.size)]
            sketch = sk.sketch_dataset(
                source.rows(index, args.batch_size),
                features,
                batch_size=args.batch_size,
                scale=scale,
                device=device,
                progress=not args.no_progress,
                across_ranks=True,
                fused=args.fused_kernel,
            )
            sketches.append((label, sketch))
        seconds = time.perf_counter() - started
        if not distributed.is_main():
            return 0
    rows = range(source.count)[shard]
    released = []
    # A private sketch is released to those who do not hold the data: it names a toy or a
    # registered data set, never a path of the data owner's machine.
    local = privacy is not None and source.name is not None and os.sep in source.name
    for label, sketch in sketches:
        sketch.source = None if local else source.name
        sketch.data_dir = None if privacy is not None else source.data_dir
        sketch.sample_shape, sketch.label = source.sample_shape, label
        data = source.fingerprint if label is None else f"{source.fingerprint}:label={label}"
        if label is None:
            sketch.record_piece(data, rows.start, rows.stop)
        else:  # rows of the class, in data order
            sketch.record_piece(data, 0, sketch.count)
        if privacy is not None:
            # The noise must be secret: drawn from the operating system, never from --seed.
            noise = torch.Generator().manual_seed(secrets.randbits(63))
            sketch = sk.private_sketch(sketch, **privacy, generator=noise)
        released.append(sketch)
    if with_classes:  # the whole is the sum of the (released) classes: no second release
        whole = _sum_of_classes(released, source.fingerprint, rows)
        whole.save(args.out, classes=released)
    else:
        for sketch, out in zip(released, outs, strict=True):
            sketch.save(out)
    count = sum(s.count for s in released)
    rate = count / seconds if seconds > 0 else float("inf")
    what = f"shard {args.shard} (rows {shard.start}..{shard.stop - 1}): " if args.shard else ""
    where = args.out if len(outs) == 1 else f"{len(outs)} files {outs[0]} ... {outs[-1]}"
    if with_classes:
        where = f"{where} (with its {len(released)} classes)"
    kind = "x".join(map(str, source.sample_shape)) + " images" if images else "points"
    print(
        f"sketched {what}{count:,} {kind} of dimension {source.dim} with m = {n_frequencies:,} "
        f"({law}, bandwidth {bandwidth:.4g}) in {seconds:.2f} s ({rate:,.0f} points/s) -> {where}"
    )
    return 0


def _sum_of_classes(classes: list[Sketch], fingerprint: str, rows: range) -> Sketch:
    """The whole data set's sketch as the sum of its classes' (released) sketches."""
    first = classes[0]
    return Sketch.from_parts(
        first.features, center=first.center, scale=first.scale,
        total=sum(c.sum for c in classes), count=sum(c.count for c in classes),
        source=first.source, privacy=first.privacy,
        pieces=((fingerprint, rows.start, rows.stop),), data_dir=first.data_dir,
        sample_shape=first.sample_shape,
    )  # fmt: skip


def _privacy_options(args: argparse.Namespace) -> dict | None:
    """The keyword arguments of :func:`distmatch.sketch.private_sketch`, or None (no --epsilon)."""
    if args.epsilon is None:
        if args.mechanism is not None or args.delta != 0.0:
            raise UsageError("--mechanism and --delta need --epsilon; got no --epsilon.")
        return None
    if not (0 < args.epsilon < math.inf):
        raise UsageError(f"--epsilon must be a positive number; got {args.epsilon}.")
    mechanism = args.mechanism or ("laplace" if args.delta == 0 else "analytic_gaussian")
    sk.check_budget(args.epsilon, args.delta, mechanism)  # before the pass over the data
    return {"epsilon": args.epsilon, "delta": args.delta, "mechanism": mechanism}


def _fixed_scale(value: str, images: bool) -> float | None:
    """--scale: None for unit_ball (computed from the data), 1.0 for none, or the number given;
    auto is none for images and unit_ball otherwise."""
    if value == "auto":
        value = "none" if images else "unit_ball"
    if value == "unit_ball":
        return None
    if value == "none":
        return 1.0
    try:
        scale = float(value)
    except ValueError:
        scale = math.nan
    if not (0 < scale < math.inf):
        raise UsageError(
            f"--scale must be auto, unit_ball, none or a positive number; got '{value}'."
        )
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


def add_sketch_merge(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sketch-merge", help="add sketch files of shards (also: sketch merge)"
    )
    p.add_argument(
        "inputs", nargs="+", type=Path, help="sketch files made with the same frequencies"
    )
    p.add_argument("--out", type=Path, required=True, help="the merged sketch, .npz")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


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
    check_new_file(args.out, args.overwrite)
    if args.out.resolve() in seen:
        raise UsageError(
            f"--out '{args.out}' is one of the inputs; write the merge to another file."
        )
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

    sketch, classes = Sketch.load_with_classes(args.path)
    features = sketch.features
    info = {
        "file": str(args.path),
        "points": sketch.count,
        "dimension": features.dim,
        "frequencies": features.n_frequencies,
        "law": features.law,
        "bandwidth": features.bandwidth,
        "frequency_seed": features.seed,  # stored as their seed (format 2), or None: stored whole
        "quantized": bool(getattr(features, "quantized", False)),
        "scale": float(sketch.scale),
        "center": np.asarray(sketch.center).tolist() if sketch.center is not None else None,
        "source": sketch.source,
        "data_dir": sketch.data_dir,
        "sample_shape": list(sketch.sample_shape) if sketch.sample_shape else None,
        "label": sketch.label,
        "classes": None if classes is None else [c.label for c in classes],
        "private": None if sketch.privacy is None else dataclasses.asdict(sketch.privacy),
        "bytes": args.path.stat().st_size,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(key) for key in info)
        for key, value in info.items():
            print(f"{key:>{width}}: {value}")
    return 0


COMMANDS = {
    "sketch": (add_sketch, run_sketch),
    "sketch-merge": (add_sketch_merge, run_sketch_merge),
    "sketch-info": (add_sketch_info, run_sketch_info),
}

# ``distmatch sketch merge ...`` and ``distmatch sketch info ...`` are routed to these commands.
SKETCH_ACTIONS = {"merge": "sketch-merge", "info": "sketch-info"}
