"""``distmatch train``, ``distmatch evaluate`` and ``distmatch sample`` (moving-window autoencoders)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from .. import distributed
from .._core import atomic_path, resolve_device
from ..data import dataset_names, load_split
from ..evaluation import (
    autoencoder_fid,
    autoencoder_parzen,
    evaluate_autoencoder,
    load_autoencoder,
    load_generator,
    load_inception,
)
from ..objectives import LATENT_DISTANCES, RECONSTRUCTIONS
from ..report import decode_chunked, save_histograms, save_image_grid
from ..runs import NonFiniteLossError, RunDir, TrainingInterrupted
from ..training import (
    MEMORIES,
    OPTIMIZERS,
    CompileUnavailable,
    TrainConfig,
    resumed_config,
    train,
)
from ..window import INITS, REFRESHES
from ._common import UsageError
from ._fit import evaluate_generator_run

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
    "--lr": ("lr", {"type": float, "help": "learning rate (1e-3)"}),
    "--epochs": ("epochs", {"type": int, "help": "passes over the training split (20)"}),
    "--steps": ("steps", {"type": int, "help": "total steps; replaces --epochs"}),
    "--seed": ("seed", {"type": int, "help": "random seed (0)"}),
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
}


def add_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a WAE, CWAE or SWAE autoencoder with the moving window",
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
    p.add_argument(
        "--compile",
        action="store_true",
        default=argparse.SUPPRESS,
        help="torch.compile the forward pass and cost: faster steps on small models",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _given(args: argparse.Namespace) -> dict:
    names = [field for field, _ in _TRAIN_FLAGS.values()] + ["reset_each_epoch", "compile"]
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    if "data_dir" in values:
        values["data_dir"] = str(Path(values["data_dir"]).expanduser())
    return values


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
        config = resumed_config(args.out, **given)
    else:
        config = TrainConfig(**given)
    config.validate()
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


# ------------------------------------------------------------------------------------ evaluate


def add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="the MoW paper's metrics of a trained run on its test split",
        description=(
            "Computes rec_error, wae_distance and cw_distance (as the MoW paper defines them) on "
            "the test split and writes RUN/eval.json; --fid adds the FID of decoded prior "
            "samples (needs the Inception weights file), --parzen the Parzen-window "
            "log-likelihood of the test split (GMMN protocol). Image generator runs (fit-sketch, "
            "fit-mmd): the classifier metric of --fid-samples samples, and --fid."
        ),
    )
    p.add_argument("run", type=Path, help="run folder of distmatch train, fit-sketch or fit-mmd")
    p.add_argument(
        "--data-dir", default=None, help="where the data set is now (default: as trained)"
    )
    p.add_argument("--points", type=int, default=2000, help="test codes per distance (2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the subsamples (0)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    p.add_argument("--fid", action="store_true", help="add the FID (image data)")
    p.add_argument(
        "--fid-samples", type=int, default=10_000, help="generated images for the FID (10000)"
    )
    p.add_argument(
        "--inception-weights",
        type=Path,
        default=None,
        help="pt_inception-2015-12-05-6726825d.pth (default: look in the cache folder)",
    )
    p.add_argument(
        "--download-weights",
        action="store_true",
        help="download the Inception weights into the cache folder if missing (checksum checked)",
    )
    p.add_argument("--parzen", action="store_true", help="add the Parzen-window log-likelihood")
    p.add_argument(
        "--parzen-samples", type=int, default=10_000, help="generated samples for Parzen (10000)"
    )


def run_evaluate(args: argparse.Namespace) -> int:
    if args.points < 2:
        raise UsageError(f"--points must be at least 2 (codes per distance); got {args.points}.")
    for flag in ("fid_samples", "parzen_samples"):
        if getattr(args, flag) < 2:
            name = "--" + flag.replace("_", "-")
            raise UsageError(f"{name} must be at least 2; got {getattr(args, flag)}.")
    run = RunDir(args.run)
    if run.read_json(run.config).get("kind") == "generator":
        if args.parzen:
            raise UsageError("--parzen is for autoencoder runs; this is a generator run.")
        metrics = evaluate_generator_run(args)
        run.write_json(run.eval, {**metrics, "split": "test", "seed": args.seed})
        print(json.dumps(metrics, indent=2))
        print(f"written to {run.eval}")
        return 0
    device = resolve_device(args.device)
    record, model = load_autoencoder(args.run, device=device)
    config = record["config"]
    data_dir = args.data_dir if args.data_dir is not None else config["data_dir"]
    test = load_split(config["dataset"], "test", data_dir=data_dir, image_size=config["image_size"])
    inception = None
    if args.fid:  # fail on missing weights before any long computation
        if not test.is_image:
            raise UsageError(f"--fid needs image data; this run's samples are {test.sample_shape}.")

        inception = load_inception(args.inception_weights, download=args.download_weights)
    gen = torch.Generator().manual_seed(args.seed)
    metrics = evaluate_autoencoder(model, test, generator=gen, points=args.points, device=device)
    if inception is not None:
        sample_gen = torch.Generator().manual_seed(args.seed)
        metrics["fid"] = autoencoder_fid(
            model, test, inception, samples=args.fid_samples, generator=sample_gen, device=device
        )
        metrics["fid_samples"] = args.fid_samples
    if args.parzen:
        train_split = load_split(
            config["dataset"], "train", data_dir=data_dir, image_size=config["image_size"]
        )
        sample_gen = torch.Generator().manual_seed(args.seed + 1)
        metrics.update(
            autoencoder_parzen(
                model,
                train_split,
                test,
                samples=args.parzen_samples,
                generator=sample_gen,
                device=device,
            )
        )
    run.write_json(run.eval, {**metrics, "split": "test", "points": args.points, "seed": args.seed})
    print(json.dumps(metrics, indent=2))
    print(f"written to {run.eval}")
    return 0


# -------------------------------------------------------------------------------------- sample


def add_sample(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample",
        help="samples of a trained run (autoencoder or generator)",
        description="Autoencoder runs: decoded prior draws as a PNG grid (image data) or .npy. "
        "Generator runs: images as a PNG grid or .npy (pixels in [0, 1]); vectors in the data's "
        "coordinates as .npy, or a 2-D histogram PNG.",
    )
    p.add_argument("run", type=Path, help="run folder written by distmatch train")
    p.add_argument("--num", type=int, default=64, help="number of samples (64)")
    p.add_argument("--out", type=Path, required=True, help="FILE.png (images) or FILE.npy")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda")


MAX_GRID = 1024  # images in one PNG grid
MAX_HISTOGRAM = 10_000_000  # points in one 2-D histogram PNG
SAMPLE_CHUNK = 65_536  # codes drawn and decoded at a time


def _sampler(run: RunDir, device: torch.device, suffix: str):
    """``(decode, latent_dim, sample_shape, is_image)`` of the run's trained network."""
    if run.read_json(run.config).get("kind") == "generator":
        _, generator, unscale = load_generator(run.root, device=device)
        images = len(generator.sample_shape) == 3  # pixels in [0, 1]
        shape = generator.sample_shape if images else None
        return lambda z: unscale(generator(z.to(device))), generator.latent_dim, shape, images
    record, model = load_autoencoder(run.root, device=device)
    if suffix == ".png" and not record["resolved"]["is_image"]:
        raise UsageError(
            "--out .png needs a run on image data; this run's samples are vectors: use .npy."
        )

    def decode(z: torch.Tensor) -> torch.Tensor:
        return decode_chunked(model, z, device=device, sample_shape=model.sample_shape)

    return decode, model.latent_dim, model.sample_shape, bool(record["resolved"]["is_image"])


def _drawn(run: RunDir) -> str:
    return "generated from" if run.read_json(run.config).get("kind") == "generator" else "decoded"


def run_sample(args: argparse.Namespace) -> int:
    if args.num < 1:
        raise UsageError(f"--num must be >= 1; got {args.num}.")
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise UsageError(f"--out must end in .png or .npy; got '{args.out}'.")
    device = resolve_device(args.device)
    decode, latent_dim, shape, is_image = _sampler(RunDir(args.run), device, suffix)
    limit = MAX_GRID if is_image else MAX_HISTOGRAM
    if suffix == ".png" and args.num > limit:
        what = "images in one grid" if is_image else "points in one histogram"
        raise UsageError(f"--num must be at most {limit:,} {what}; got {args.num:,}: use .npy.")
    gen = torch.Generator().manual_seed(args.seed)
    chunks = (
        decode(torch.randn(min(SAMPLE_CHUNK, args.num - start), latent_dim, generator=gen))
        for start in range(0, args.num, SAMPLE_CHUNK)
    )
    with torch.no_grad():
        if suffix == ".npy":
            _save_chunks(chunks, args.num, args.out)
        else:
            samples = torch.cat(list(chunks)).cpu()
            if is_image:
                save_image_grid(
                    samples,
                    args.out,
                    ncol=min(16, int(np.ceil(np.sqrt(args.num)))),
                    title=f"{args.num} samples: {_drawn(RunDir(args.run))} N(0, I) draws",
                )
            else:
                save_histograms(None, samples.numpy(), args.out)
    print(f"{args.num} samples written to {args.out}" + (f" ({shape})" if shape else ""))
    return 0


def _save_chunks(chunks, num: int, out: Path) -> None:
    """Writes the samples to a ``.npy`` file chunk by chunk (never all in memory), atomically."""
    first = next(chunks).cpu().numpy()
    shape = (num, *first.shape[1:])
    needed = int(np.prod(shape)) * first.itemsize
    free = shutil.disk_usage(out.parent if str(out.parent) else ".").free
    if needed > free:
        raise UsageError(
            f"--num {num:,} samples need {needed / 2**30:,.1f} GiB on disk; "
            f"{free / 2**30:,.1f} GiB are free in '{out.parent}'."
        )
    with atomic_path(out) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=first.dtype, shape=shape)
        array[: len(first)] = first
        start = len(first)
        for chunk in chunks:
            part = chunk.cpu().numpy()
            array[start : start + len(part)] = part
            start += len(part)
        array.flush()
        del array


COMMANDS = {
    "train": (add_train, run_train),
    "evaluate": (add_evaluate, run_evaluate),
    "sample": (add_sample, run_sample),
}
