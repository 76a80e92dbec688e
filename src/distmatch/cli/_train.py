"""``distmatch train``: moving-window training of an autoencoder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import distributed
from ..data import dataset_names
from ..objectives import LATENT_DISTANCES, RECONSTRUCTIONS
from ..runs import NonFiniteLossError, TrainingInterrupted
from ..training import (
    LR_RULES,
    MEMORIES,
    OPTIMIZERS,
    REFRESH_SOURCES,
    WINDOW_GRADIENTS,
    CompileUnavailable,
    TrainConfig,
    resumed_config,
    train,
)
from ..window import INITS, REFRESHES
from ._common import DETERMINISTIC_HELP, UsageError, seed_option

# Flag -> TrainConfig field. Flags default to "not given" so that --resume can tell what changed.
_TRAIN_FLAGS: dict[str, tuple[str, dict]] = {
    "--model": (
        "model",
        {"choices": tuple(LATENT_DISTANCES), "help": "latent distance (cwae)"},
    ),
    "--dataset": (
        "dataset",
        {"help": f"{', '.join(dataset_names())} or a .npy file (digits)"},
    ),
    "--data-dir": ("data_dir", {"help": "folder or zip with the data set's files"}),
    "--arch": ("arch", {"help": "architecture (default: the data set's)"}),
    "--latent-dim": (
        "latent_dim",
        {"type": int, "help": "latent dimension (default: the architecture's)"},
    ),
    "--image-size": ("image_size", {"type": int, "help": "side for celeba/ffhq (64/1024)"}),
    "--n": ("n", {"type": int, "help": "codes the distance sees (64)"}),
    "--k": ("k", {"type": int, "help": "fresh codes per step = batch size (1)"}),
    "--lam": ("lam", {"type": float, "help": "weight of the distance term (1)"}),
    "--reconstruction": (
        "reconstruction",
        {"choices": RECONSTRUCTIONS, "help": "root: sqrt(mean SSE) (default); mean: mean SSE"},
    ),
    "--window-init": (
        "window_init",
        {"choices": INITS, "help": "window contents at reset (prior)"},
    ),
    "--refresh": (
        "refresh",
        {"choices": REFRESHES, "help": "codes pushed after the step (none: pre-update)"},
    ),
    "--refresh-every": (
        "refresh_every",
        {
            "type": int,
            "help": "every so many steps, fill the window with the current encoder's codes (of "
            "--refresh-from's inputs) (16; 0: never)",
        },
    ),
    "--refresh-from": (
        "refresh_from",
        {
            "choices": REFRESH_SOURCES,
            "help": "what a refresh encodes: as many random training inputs (random, default) "
            "or the inputs of the window's codes (window)",
        },
    ),
    "--window-gradient": (
        "window_gradient",
        {
            "choices": WINDOW_GRADIENTS,
            "help": "unbiased (default): the distance's gradient times n/k, the classical one in "
            "expectation; paper: unweighted, as the MoW reference",
        },
    ),
    "--memory": (
        "memory",
        {
            "choices": MEMORIES,
            "help": "past codes as a window (default) or a moving sketch (skwae only)",
        },
    ),
    "--sketch-frequencies": (
        "sketch_frequencies",
        {"type": int, "help": "frequencies of the skwae distance (1000)"},
    ),
    "--sketch-bandwidth": (
        "sketch_bandwidth",
        {"type": float, "help": "skwae kernel bandwidth (sqrt of the latent dim)"},
    ),
    "--optimizer": (
        "optimizer",
        {"choices": OPTIMIZERS, "help": "adam (default) or plain sgd"},
    ),
    "--lr": (
        "lr",
        {"type": float, "help": "learning rate of classical training, k = n (1e-3); see --lr-rule"},
    ),
    "--lr-rule": (
        "lr_rule",
        {
            "choices": LR_RULES,
            "help": "the rate used at k < n: sqrt (--lr * sqrt(k/n)), linear (--lr * k/n), auto "
            "(default: sqrt for adam, linear for sgd) or none (--lr as given)",
        },
    ),
    "--epochs": (
        "epochs",
        {
            "type": int,
            "help": "passes over the training split (20); with --resume alone, the run then "
            "counts epochs, also if it was started with --steps",
        },
    ),
    "--steps": ("steps", {"type": int, "help": "total steps; replaces --epochs"}),
    "--seed": ("seed", {"type": seed_option, "help": "random seed (0)"}),
    "--eval-every": ("eval_every", {"type": int, "help": "epochs between evaluations (5)"}),
    "--eval-points": (
        "eval_points",
        {"type": int, "help": "test codes per distance estimate (2000)"},
    ),
    "--log-every": ("log_every", {"type": int, "help": "steps per metrics row (100)"}),
    "--checkpoint-every": (
        "checkpoint_every",
        {"type": int, "help": "steps between checkpoints (5000)"},
    ),
    "--device": ("device", {"help": "auto (default), cpu, cuda, cuda:N"}),
    "--deterministic": (
        "deterministic",
        {"action": argparse.BooleanOptionalAction, "help": DETERMINISTIC_HELP},
    ),
}


def add_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a CWAE, WAE, SWAE or skwae autoencoder with the moving window",
        description=(
            "Moving-window training: each step encodes k inputs and the latent distance sees n "
            "codes (the k fresh ones and n-k from earlier steps). With no flags: CWAE, n=64, k=1 on "
            "the 8x8 digits that ship with scikit-learn, about a minute on a laptop CPU."
        ),
    )
    for flag, (_, options) in _TRAIN_FLAGS.items():
        p.add_argument(flag, default=argparse.SUPPRESS, **options)
    p.add_argument(
        "--no-reset-each-epoch",
        dest="reset_each_epoch",
        action="store_false",
        default=argparse.SUPPRESS,
        help="keep the window across epochs instead of refilling it",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default: runs/<model>-<dataset>-n<n>-k<k>)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    compiling = p.add_mutually_exclusive_group()
    compiling.add_argument(
        "--compile",
        dest="compile",
        action="store_const",
        const=True,
        default=argparse.SUPPRESS,
        help="torch.compile the forward pass and cost (default: for runs of 50,000 steps or more "
        "where a compiler is present and compiled passes time faster for the model)",
    )
    compiling.add_argument(
        "--no-compile",
        dest="compile",
        action="store_const",
        const=False,
        default=argparse.SUPPRESS,
        help="never compile",
    )
    p.add_argument(
        "--cuda-graph",
        dest="cuda_graph",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="replay each full step as one CUDA graph (CUDA, one process; docs/gpu.md)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _given(args: argparse.Namespace) -> dict:
    names = [field for field, _ in _TRAIN_FLAGS.values()] + [
        "reset_each_epoch",
        "compile",
        "cuda_graph",
    ]
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    if "data_dir" in values:
        values["data_dir"] = str(Path(values["data_dir"]).expanduser())
    return values


# Options that a run of this configuration would ignore, given on the command line: an error
# rather than a run that silently does something else than asked.
_WINDOW_ONLY = ("window_init", "refresh_every", "refresh_from")
_SKETCH_ONLY = ("sketch_frequencies", "sketch_bandwidth")


def _check_applies(config: TrainConfig, given: dict) -> None:
    flag = next((name for name in _WINDOW_ONLY if name in given), None)
    if config.memory == "sketch" and flag is not None:
        raise UsageError(
            f"--{flag.replace('_', '-')} applies to a window of codes; --memory sketch keeps "
            "none (its sketch starts empty)."
        )
    flag = next((name for name in _SKETCH_ONLY if name in given), None)
    if config.model != "skwae" and flag is not None:
        raise UsageError(
            f"--{flag.replace('_', '-')} applies to --model skwae; got --model {config.model}."
        )


def _default_out(config) -> Path:
    stem = Path(config.dataset).stem if config.dataset.endswith(".npy") else config.dataset
    base = Path("runs") / f"{config.model}-{stem}-n{config.n}-k{config.k}"
    out, i = base, 1
    while out.exists():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out


def run_train(args: argparse.Namespace) -> int:

    given = _given(args)
    if args.resume:
        if args.out is None:
            raise UsageError("--resume needs --out, the run folder to continue.")
        if "epochs" in given and "steps" not in given:
            given["steps"] = None  # a resumed run given --epochs counts epochs, not steps
        config = resumed_config(args.out, **given)
    else:
        config = TrainConfig(**given)
    config.validate()
    _check_applies(config, given)
    # Under torchrun every rank runs this; rank 0 chooses the folder and alone prints.
    with distributed.process_group(config.device):
        out = args.out if args.out is not None else distributed.on_main(_default_out, config)
        main = distributed.is_main()
        try:
            summary = train(config, out, resume=args.resume, progress=not args.no_progress)
        except TrainingInterrupted as err:
            if main:
                print(
                    f"distmatch train: {err}; resume with: distmatch train --resume --out {out}",
                    file=sys.stderr,
                )
            return 130
        except (NonFiniteLossError, CompileUnavailable) as err:
            if main:
                print(f"distmatch train: error: {err}", file=sys.stderr)
            return 1 if isinstance(err, NonFiniteLossError) else 2
    if not main:
        return 0
    print(f"run folder: {out}")
    print(json.dumps(summary, indent=2))
    figures = sorted((Path(out) / "figures").glob("*.png"))
    if figures:
        print("figures: " + ", ".join(str(f) for f in figures))
    return 0


COMMANDS = {"train": (add_train, run_train)}
