"""``distmatch distances``: distances between sample files, or a demo on Gaussian samples."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from .. import distances
from .._core import resolve_device
from ..data import open_npy
from ..distances import DISTANCES, ESTIMATORS, KERNELS
from ..report import save_curves
from ._common import OVERWRITE_HELP, UsageError, check_new_file, seed_option

log = logging.getLogger("distmatch.cli")


DEMO_SHIFTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def add_distances(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distances",
        help="distances between sample files (.npy), or a demo on Gaussian samples",
        description=(
            "With two .npy files: every requested distance between them. With one: the file against "
            "N(0, I) (closed-form Cramér–Wold plus the two-sample distances to a prior draw). With "
            "none: a demo comparing N(0, I) samples with shifted copies. Arrays of more than two "
            "dimensions are flattened to (N, D)."
        ),
    )
    p.add_argument(
        "files", nargs="*", type=Path, help="zero, one or two .npy arrays of shape (N, ...)"
    )
    p.add_argument(
        "--distance",
        action="append",
        choices=tuple(DISTANCES),
        help="distance to compute (repeatable; default: all)",
    )
    p.add_argument("--kernel", default="imq", choices=tuple(KERNELS), help="MMD kernel (imq)")
    p.add_argument("--bandwidth", type=float, default=1.0, help="MMD kernel scale (default 1)")
    p.add_argument(
        "--estimator", default="unbiased", choices=tuple(ESTIMATORS), help="MMD estimator"
    )
    p.add_argument("--gamma", type=float, default=None, help="CW smoothing (default: Silverman)")
    p.add_argument("--scaled", action="store_true", help="CW in the paper's normalisation")
    p.add_argument("--n-projections", type=int, default=50, help="sliced directions (default 50)")
    p.add_argument("--p", type=float, default=2.0, help="sliced exponent (default 2)")
    p.add_argument("--max-points", type=int, default=5000, help="subsample larger files to this")
    p.add_argument("--dim", type=int, default=8, help="demo dimension (default 8)")
    p.add_argument("--num", type=int, default=500, help="demo points per sample (default 500)")
    p.add_argument("--seed", type=seed_option, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--figure", type=Path, default=None, help="demo: write a PNG of distance vs shift"
    )
    p.add_argument("--overwrite", action="store_true", help=f"--figure: {OVERWRITE_HELP}")


def _load_samples(path: Path, max_points: int, generator, device: str):

    if path.suffix != ".npy":
        raise UsageError(f"sample files must be .npy arrays; got '{path}'.")
    if not path.is_file():
        raise UsageError(f"sample file '{path}' does not exist.")
    array = open_npy(path)  # DataError (exit 2) for a file that is no array of numbers
    if array.ndim < 2 or array.shape[0] < 1:
        raise UsageError(
            f"'{path}' must hold an array of shape (N, D) or (N, ...); got {array.shape}."
        )
    if not np.issubdtype(array.dtype, np.number):
        raise UsageError(f"'{path}' must hold numbers; got dtype {array.dtype}.")
    n = array.shape[0]
    if n > max_points:
        index = torch.randperm(n, generator=generator)[:max_points].sort().values.numpy()
        array = array[index]
        log.info("%s: using %d of %d points", path, max_points, n)
    x = torch.from_numpy(np.array(array, dtype=np.float64)).reshape(len(array), -1)
    return x.to(device)


def _distance_options(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    return {
        "mmd": {"kernel": args.kernel, "bandwidth": args.bandwidth, "estimator": args.estimator},
        "cramer_wold": {"gamma": args.gamma, "scaled": args.scaled},
        "sliced_wasserstein": {"n_projections": args.n_projections, "p": args.p},
    }


def _all_distances(names, x, y, options, generator) -> dict[str, float | None]:

    values: dict[str, float | None] = {}
    for name in names:
        opts = dict(options[name])
        if name == "sliced_wasserstein":
            if x.shape[0] != y.shape[0]:
                values[name] = None  # needs equal sizes; reported as skipped
                continue
            opts["generator"] = generator
        values[name] = float(distances.distance(name, x, y, **opts))
    return values


def run_distances(args: argparse.Namespace) -> int:

    if len(args.files) > 2:
        raise UsageError(f"distances takes at most two files; got {len(args.files)}.")
    if args.max_points < 2 or args.num < 2 or args.dim < 1:
        raise UsageError("--max-points and --num must be >= 2 and --dim >= 1.")
    args.device = resolve_device(args.device)  # ValueError (exit 2) for a device not here
    names = args.distance or list(distances.DISTANCES)
    options = _distance_options(args)
    gen = torch.Generator().manual_seed(args.seed)
    if not args.files:
        if args.figure is not None:
            check_new_file(args.figure, args.overwrite, "--figure")
        return _distance_demo(args, names, options, gen)
    if args.figure is not None:
        raise UsageError("--figure draws the demo's curves; it takes no sample files.")
    x = _load_samples(args.files[0], args.max_points, gen, args.device)
    if len(args.files) == 2:
        y = _load_samples(args.files[1], args.max_points, gen, args.device)
    else:
        y = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(args.device)
    if "sliced_wasserstein" in (args.distance or ()) and x.shape[0] != y.shape[0]:
        raise UsageError(
            "sliced_wasserstein needs samples of equal size; "
            f"got {x.shape[0]} and {y.shape[0]} points (use --max-points to subsample)."
        )
    result = _all_distances(names, x, y, options, gen)
    if len(args.files) == 1:
        result["cramer_wold_normality"] = float(
            distances.cramer_wold_normality(x, gamma=args.gamma, scaled=args.scaled)
        )
    if args.json:
        skipped = {name: "samples differ in size" for name, v in result.items() if v is None}
        print(json.dumps({**result, "skipped": skipped} if skipped else result, indent=2))
    else:
        width = max(len(k) for k in result)
        for name, value in result.items():
            shown = "skipped (samples differ in size)" if value is None else f"{value:.6g}"
            print(f"{name:<{width}}  {shown}")
    return 0


def _distance_demo(args, names, options, gen) -> int:

    x = torch.randn(args.num, args.dim, generator=gen, dtype=torch.float64).to(args.device)
    rows = []
    for shift in DEMO_SHIFTS:
        y = torch.randn(args.num, args.dim, generator=gen, dtype=torch.float64).to(args.device)
        y[:, 0] += shift
        row = {"shift": shift, **_all_distances(names, x, y, options, gen)}
        row["cramer_wold_normality(y)"] = float(
            distances.cramer_wold_normality(y, gamma=args.gamma, scaled=args.scaled)
        )
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            f"x ~ N(0, I_{args.dim}), y ~ N(shift * e_1, I_{args.dim}), {args.num} points each "
            f"(seed {args.seed})"
        )
        cols = list(rows[0])
        print("  ".join(f"{c:>24}" for c in cols))
        for row in rows:
            print("  ".join(f"{row[c]:>24.6g}" for c in cols))
    if args.figure is not None:
        series = {c: [r[c] for r in rows] for c in rows[0] if c != "shift"}
        save_curves(
            DEMO_SHIFTS,
            series,
            args.figure,
            xlabel="shift of y along e_1",
            ylabel="distance",
            title=f"N(0, I) vs shifted N(0, I), D={args.dim}, {args.num} points",
        )
        print(f"figure written to {args.figure}")
    return 0


COMMANDS = {"distances": (add_distances, run_distances)}
