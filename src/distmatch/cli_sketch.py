"""``distmatch sketch`` (make, ``merge``, ``info``), ``distmatch fit-sketch`` and ``distmatch fit-mmd``."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from .cli_common import UsageError

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
        "--n-frequencies", type=int, default=10_000, help="m, the number of frequencies (10000)"
    )
    p.add_argument(
        "--law",
        default="folded_gaussian",
        help="gaussian, folded_gaussian (default), adapted_radius",
    )
    p.add_argument(
        "--bandwidth",
        default=str(math.sqrt(1e-3)),
        help="kernel bandwidth, or 'auto' (default sqrt(1e-3))",
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
    import torch

    from . import distributed
    from . import sketch as sk
    from .toys import TOYS

    if args.out.suffix != ".npz":
        raise UsageError(f"--out must be a .npz file; got '{args.out}'.")
    fixed_scale = _fixed_scale(args.scale)
    data = _sketch_data(args)
    shard = _shard_rows(args.shard, len(data), args.batch_size) if args.shard else slice(None)
    with distributed.process_group(args.device) as device:
        # A data-dependent scale is that of the whole data set, whatever the shard or the rank.
        scale = fixed_scale or distributed.unit_ball_scaling(data, batch_size=args.batch_size)
        features = sk.FourierFeatures(
            data.shape[1],
            args.n_frequencies,
            law=args.law,
            bandwidth=_bandwidth(args, data, scale),
            generator=torch.Generator().manual_seed(args.seed),
        )
        started = time.perf_counter()
        sketch = distributed.sketch_dataset(
            data[shard],
            features,
            batch_size=args.batch_size,
            scale=scale,
            device=device,
            progress=not args.no_progress,
        )
        seconds = time.perf_counter() - started
        if not distributed.is_main():
            return 0
    if args.dataset in TOYS:
        sketch.source = args.dataset
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
    import numpy as np

    from .toys import TOYS, toy_dataset

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
    from . import distributed

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
    import numpy as np
    import torch

    from . import distributed
    from . import sketch as sk

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
    from .sketch import Sketch

    if len(args.inputs) < 2:
        raise UsageError(f"sketch merge needs at least two sketch files; got {len(args.inputs)}.")
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
    import numpy as np

    from .sketch import Sketch

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


# ----------------------------------------------------------------------------- fit-sketch, fit-mmd

_FIT_FLAGS: dict[str, tuple[str, dict]] = {
    "--arch": ("arch", {"help": "generator architecture (clgn_mlp)"}),
    "--latent-dim": ("latent_dim", {"type": int, "help": "latent dimension (the architecture's)"}),
    "--latent-codes": (
        "latent_codes",
        {"type": int, "help": "codes drawn once and kept (100000); 0: fresh codes"},
    ),
    "--batch-size": ("batch_size", {"type": int, "help": "generated samples per step (1000)"}),
    "--lr": ("lr", {"type": float, "help": "Adam learning rate (1e-3)"}),
    "--loss": (
        "loss_form",
        {"choices": ("squared", "root"), "help": "squared distance (default) or the distance"},
    ),
    "--epochs": ("epochs", {"type": int, "help": "epochs (25)"}),
    "--patience": ("patience", {"type": int, "help": "early stopping patience in epochs (2)"}),
    "--min-delta": ("min_delta", {"type": float, "help": "early stopping min_delta (5e-4)"}),
    "--seed": ("seed", {"type": int, "help": "random seed (0)"}),
    "--eval-data": (
        "eval_data",
        {"help": "held-out data: a toy or .npy (default: the sketch's source)"},
    ),
    "--eval-points": ("eval_points", {"type": int, "help": "points per evaluation (2000)"}),
    "--log-every": ("log_every", {"type": int, "help": "steps per metrics row (20)"}),
    "--device": ("device", {"help": "auto (default), cpu, cuda"}),
}


def _add_fit_flags(p: argparse.ArgumentParser) -> None:
    for flag, (_, options) in _FIT_FLAGS.items():
        p.add_argument(flag, default=argparse.SUPPRESS, **options)
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_fit_sketch(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit-sketch",
        help="train a generator from a sketch file alone (CL-GN)",
        description="Minimises the squared distance between the sketch and the mean features of "
        "generated samples. The sketch file is the only thing read.",
    )
    p.add_argument("sketch", type=Path, help="the sketch file (.npz) made by distmatch sketch")
    _add_fit_flags(p)


def add_fit_mmd(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit-mmd",
        help="train a generator with exact mini-batch MMD on the data (the baseline)",
        description="Generative moment matching: exact MMD between generated and data batches, with "
        "the kernel of the sketch's frequency law (matched) or a multi-scale Gaussian.",
    )
    p.add_argument(
        "--dataset", required=True, help="a toy (spiral, gmm, circle) or a .npy file (N, D)"
    )
    p.add_argument(
        "--kernel",
        default=argparse.SUPPRESS,
        choices=("matched", "multiscale"),
        help="matched (default)",
    )
    p.add_argument(
        "--law",
        default=argparse.SUPPRESS,
        choices=("gaussian", "folded_gaussian"),
        help="law of the matched kernel",
    )
    p.add_argument(
        "--bandwidth",
        type=float,
        default=argparse.SUPPRESS,
        help="kernel bandwidth in unit-ball coordinates",
    )
    _add_fit_flags(p)


def _fit(args: argparse.Namespace, fields: dict) -> int:
    from . import distributed
    from .generator_training import GeneratorConfig, train_generator
    from .training import NonFiniteLossError, TrainingInterrupted

    given = {
        field: getattr(args, field) for field, _ in _FIT_FLAGS.values() if hasattr(args, field)
    }
    for name in ("kernel", "law", "bandwidth"):
        if hasattr(args, name):
            given[name] = getattr(args, name)
    if given.get("latent_codes") == 0:
        given["latent_codes"] = None
    config = GeneratorConfig(**fields, **given)
    with distributed.process_group(config.device):  # under torchrun: rank 0 alone prints
        main = distributed.is_main()
        try:
            summary = train_generator(
                config, args.out, resume=args.resume, progress=not args.no_progress
            )
        except TrainingInterrupted as err:
            if main:
                print(f"distmatch: {err}; resume with --resume --out {args.out}")
            return 130
        except NonFiniteLossError as err:
            if main:
                print(f"distmatch: error: {err}", file=sys.stderr)
            return 1
    if not main:
        return 0
    print(f"run folder: {args.out}")
    print(json.dumps(summary, indent=2))
    return 0


def run_fit_sketch(args: argparse.Namespace) -> int:
    if not args.sketch.is_file():
        raise UsageError(f"sketch file '{args.sketch}' does not exist.")
    return _fit(args, {"objective": "sketch", "sketch": str(args.sketch)})


def run_fit_mmd(args: argparse.Namespace) -> int:
    return _fit(args, {"objective": "mmd", "dataset": args.dataset})


COMMANDS = {
    "sketch": (add_sketch, run_sketch),
    "sketch-merge": (add_sketch_merge, run_sketch_merge),
    "sketch-info": (add_sketch_info, run_sketch_info),
    "fit-sketch": (add_fit_sketch, run_fit_sketch),
    "fit-mmd": (add_fit_mmd, run_fit_mmd),
}

# ``distmatch sketch merge ...`` and ``distmatch sketch info ...`` are routed to these commands.
SKETCH_ACTIONS = {"merge": "sketch-merge", "info": "sketch-info"}
