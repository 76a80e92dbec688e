"""``distmatch fit-sketch`` and ``distmatch fit-mmd``: generators from a sketch file, or from data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import distributed
from ..generation import LOSS_FORMS, MMD_KERNELS, MMD_LAWS, GeneratorConfig, train_generator
from ..runs import NonFiniteLossError, TrainingInterrupted
from ._common import UsageError

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
        {"choices": LOSS_FORMS, "help": "squared distance (default) or the distance"},
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
        choices=MMD_KERNELS,
        help="matched (default)",
    )
    p.add_argument(
        "--law",
        default=argparse.SUPPRESS,
        choices=MMD_LAWS,
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
    "fit-sketch": (add_fit_sketch, run_fit_sketch),
    "fit-mmd": (add_fit_mmd, run_fit_mmd),
}
