"""`distmatch fit-latent-sketch`: a generator of latent codes from a sketch, decoded to images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..generation import fit_latent_sketch
from ._common import UsageError, bandwidth_flag, seed_option


def add_fit_latent_sketch(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit-latent-sketch",
        help="sketch a trained autoencoder's latent codes, fit a generator to the sketch",
        description="One pass encodes the training split into a sketch of the latent codes; a "
        "small generator is trained from that sketch alone; its samples are decoded. Writes "
        "OUT/sketch.npz, OUT/test_codes.npy (held-out codes), OUT/run (the generator run), "
        "OUT/samples.png and OUT/result.json (its metrics).",
    )
    p.add_argument("run", type=Path, help="run folder written by distmatch train")
    p.add_argument("--out", type=Path, default=None, help="output folder (default RUN/latent)")
    p.add_argument("--n-frequencies", type=int, default=2000, help="m of the sketch (2000)")
    p.add_argument("--bandwidth", default="auto", help="kernel bandwidth, or auto (default)")
    p.add_argument("--epochs", type=int, default=25, help="generator epochs (25)")
    p.add_argument("--arch", default="mlp", help="generator architecture (mlp)")
    p.add_argument("--latent-codes", type=int, default=100_000, help="kept codes (100000)")
    p.add_argument("--seed", type=seed_option, default=0, help="random seed (0)")
    p.add_argument(
        "--data-dir", default=None, help="where the data set is now (default: as trained)"
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_fit_latent_sketch(args: argparse.Namespace) -> int:

    bandwidth = bandwidth_flag(args.bandwidth)
    bandwidth = None if bandwidth == "auto" else bandwidth  # None: the median heuristic
    for flag in ("n_frequencies", "epochs", "latent_codes"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1; got {getattr(args, flag)}.")
    result = fit_latent_sketch(  # a stop or a NaN loss: reported by main()
        args.run,
        args.out,
        n_frequencies=args.n_frequencies,
        bandwidth=bandwidth,
        epochs=args.epochs,
        arch=args.arch,
        latent_codes=args.latent_codes,
        seed=args.seed,
        data_dir=args.data_dir,
        device=args.device,
        progress=not args.no_progress,
    )
    print(json.dumps(result, indent=2))
    return 0


COMMANDS = {"fit-latent-sketch": (add_fit_latent_sketch, run_fit_latent_sketch)}
