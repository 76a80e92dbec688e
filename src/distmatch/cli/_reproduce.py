"""`distmatch reproduce mow|clgn` and `distmatch report`."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..data import TOYS
from ..objectives import LATENT_DISTANCES
from ..report import ReportWarning, write_report
from ..reproduce import MOW_PROTOCOLS, reproduce_clgn, reproduce_mow
from ..runs import TrainingInterrupted
from ._common import UsageError, check_new_file, seed_option

# ----------------------------------------------------------------------------------- reproduce


def add_reproduce(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="reproduce the papers' experiments (tables and figures beside the papers')",
        description="Reproduce the MoW paper's tables (reproduce mow) or CL-GN's toy experiments "
        "(reproduce clgn). Every run is an ordinary run folder; rerunning resumes.",
    )
    experiments = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    mow = experiments.add_parser(
        "mow",
        help="MoW: WAE/CWAE/SWAE at several k, table beside the paper's Tables 1-4",
        description="Trains every (model, k) with the paper's protocol (n = 64, reference "
        "learning rates or a grid), then writes OUT/table.md (ours beside the paper's), "
        "OUT/figure.png (interpolations, reconstructions, samples; largest k beside smallest) "
        "and OUT/results.json.",
    )
    mow.add_argument(
        "--dataset", default="mnist", help=f"{', '.join(MOW_PROTOCOLS)} (default mnist)"
    )
    mow.add_argument("--data-dir", default=None, help="folder (or zip) of the data set's files")
    mow.add_argument(
        "--models",
        default="wae,cwae,swae",
        help="comma-separated, of wae, cwae, swae, skwae (default wae,cwae,swae)",
    )
    mow.add_argument(
        "--k", default="64,32,1", help="comma-separated fresh codes per step (64,32,1)"
    )
    mow.add_argument("--epochs", type=int, default=5, help="epochs of every run (5)")
    mow.add_argument("--lr-grid", default=None, help="comma-separated rates to try per run")
    mow.add_argument("--jobs", type=int, default=1, help="runs at once, one process each (1)")
    mow.add_argument("--eval-points", type=int, default=2000, help="codes per distance (2000)")
    mow.add_argument(
        "--inception-weights",
        type=Path,
        default=None,
        help="add the FID of every kept run (pt_inception-2015-12-05-6726825d.pth)",
    )
    mow.add_argument("--fid-samples", type=int, default=10_000, help="images per FID (10000)")
    mow.add_argument("--arch", default=None, help="override the paper's architecture")
    mow.add_argument("--latent-dim", type=int, default=None, help="override the paper's z")
    mow.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    mow.add_argument("--out", type=Path, default=None, help="folder (default reproduce/mow-DATA)")
    mow.add_argument("--no-progress", action="store_true", help="no progress bars")
    clgn = experiments.add_parser(
        "clgn",
        help="CL-GN: sketch a toy data set, train a generator from the sketch",
        description="The CL-GN recipe on a toy data set: writes OUT/sketch.npz, the run folder "
        "OUT/run (histograms of data and samples) and OUT/summary.md (loss beside the "
        "reference's).",
    )
    clgn.add_argument("--dataset", default="spiral", help=f"{', '.join(TOYS)} (default spiral)")
    clgn.add_argument("--epochs", type=int, default=25, help="epochs (25, early stopping)")
    clgn.add_argument("--seed", type=seed_option, default=0, help="random seed (0)")
    clgn.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    clgn.add_argument("--out", type=Path, default=None, help="folder (default reproduce/clgn-DATA)")
    clgn.add_argument("--no-progress", action="store_true", help="no progress bars")


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} must be comma-separated integers; got '{text}'.") from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} must list integers >= 1; got '{text}'.")
    return values


def _rates(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--lr-grid must be comma-separated numbers; got '{text}'.") from None
    if not values or min(values) <= 0:
        raise UsageError(f"--lr-grid must list numbers > 0; got '{text}'.")
    return values


def run_reproduce(args: argparse.Namespace) -> int:
    try:
        return _reproduce(args)
    except (TrainingInterrupted, KeyboardInterrupt) as err:  # Ctrl-C, SIGTERM: checkpoints written
        print(
            f"distmatch reproduce: {err or 'interrupted'}; rerun the same command to resume "
            "(finished runs are reused)",
            file=sys.stderr,
        )
        return 130


def _reproduce(args: argparse.Namespace) -> int:
    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1; got {args.epochs}.")
    out = args.out or Path("reproduce") / f"{args.experiment}-{args.dataset}"
    if args.experiment == "clgn":
        reproduce_clgn(
            args.dataset,
            out,
            epochs=args.epochs,
            seed=args.seed,
            device=args.device,
            progress=not args.no_progress,
        )
        print((out / "summary.md").read_text())
        print(f"written to {out}")
        return 0

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in LATENT_DISTANCES]
    if not models or unknown:
        raise UsageError(f"--models must list wae, cwae or swae; got '{args.models}'.")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1; got {args.jobs}.")
    ks = _ints(args.k, "--k")
    if max(ks) > 64:
        raise UsageError(f"--k must list values up to n = 64; got '{args.k}'.")
    reproduce_mow(
        args.dataset,
        models,
        ks,
        args.epochs,
        out,
        data_dir=args.data_dir,
        lr_grid=_rates(args.lr_grid),
        jobs=args.jobs,
        device=args.device,
        eval_points=args.eval_points,
        inception_weights=args.inception_weights,
        fid_samples=args.fid_samples,
        arch=args.arch,
        latent_dim=args.latent_dim,
        progress=not args.no_progress,
    )
    print((out / "table.md").read_text())
    print(f"written to {out}: table.md, figure.png, results.json")
    return 0


# -------------------------------------------------------------------------------------- report


def add_report(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="one self-contained HTML page per run (config, metrics, curves, figures)",
        description="Writes RUN/report.html: configuration, final and evaluation metrics, the "
        "loss curve and every figure, in one file that opens in a browser with no server.",
    )
    p.add_argument("runs", type=Path, nargs="+", help="run folders")
    p.add_argument("--out", type=Path, default=None, help="the HTML file (one run only)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out file (refused by default; RUN/report.html is always "
        "written anew)",
    )


def run_report(args: argparse.Namespace) -> int:
    if args.out is not None and len(args.runs) > 1:
        raise UsageError(f"--out needs exactly one run; got {len(args.runs)}.")
    if args.out is not None:  # a run's own report.html is its derived page, written anew
        check_new_file(args.out, args.overwrite)
    for run in args.runs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ReportWarning)
            path = write_report(run, args.out)
        for warning in caught:
            print(f"distmatch report: warning: {warning.message}", file=sys.stderr)
        print(f"written {path}")
    return 0


COMMANDS = {"reproduce": (add_reproduce, run_reproduce), "report": (add_report, run_report)}
