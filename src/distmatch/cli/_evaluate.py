"""``distmatch evaluate`` (the MoW paper's metrics, FID, Parzen) and ``distmatch sample`` (samples of
any trained run, as a PNG or streamed to ``.npy``)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from .._core import atomic_path, resolve_device
from ..data import load_split
from ..evaluation import (
    autoencoder_fid,
    autoencoder_parzen,
    evaluate_autoencoder,
    load_autoencoder,
    load_generator,
    load_inception,
)
from ..report import decode_chunked, save_histograms, save_image_grid
from ..runs import RunDir
from ._common import OVERWRITE_HELP, UsageError, check_new_file, seed_option
from ._fit import evaluate_generator_run

# ------------------------------------------------------------------------------------ evaluate


def add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="the metrics of a trained run on held-out data (autoencoder or generator)",
        description=(
            "Computes rec_error, wae_distance and cw_distance (as the MoW paper defines them) on "
            "the test split and writes RUN/eval.json; --fid adds the FID of decoded prior "
            "samples (needs the Inception weights file), --parzen the Parzen-window "
            "log-likelihood of the test split (GMMN protocol). Image generator runs (fit-sketch, "
            "fit-mmd): the classifier metric of --fid-samples samples, and --fid. Vector "
            "generator runs: mmd and sliced_w2 of --points samples against held-out data "
            "(log_likelihood for toys), as their training evaluates them."
        ),
    )
    p.add_argument("run", type=Path, help="run folder of distmatch train, fit-sketch or fit-mmd")
    p.add_argument(
        "--data-dir", default=None, help="where the data set is now (default: as trained)"
    )
    p.add_argument(
        "--points",
        type=int,
        default=2000,
        help="test codes per distance (autoencoders), generated points (vector generators) (2000)",
    )
    p.add_argument("--seed", type=seed_option, default=0, help="random seed of the subsamples (0)")
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
    p.add_argument("run", type=Path, help="run folder of distmatch train, fit-sketch or fit-mmd")
    p.add_argument("--num", type=int, default=64, help="number of samples (64)")
    p.add_argument("--out", type=Path, required=True, help="FILE.png (images) or FILE.npy")
    p.add_argument("--seed", type=seed_option, default=0, help="random seed (0)")
    p.add_argument(
        "--label",
        type=int,
        default=None,
        help="class-conditional generators: samples of this class only (default: sample i is of "
        "the i-th class in turn, a column per class in a grid; .npy: the labels go to "
        "FILE.labels.npy)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


MAX_GRID = 1024  # images in one PNG grid
MAX_HISTOGRAM = 10_000_000  # points in one 2-D histogram PNG
SAMPLE_CHUNK = 65_536  # codes drawn and decoded at a time


def _sampler(run: RunDir, device: torch.device, suffix: str, label: int | None):
    """``(decode, latent_dim, sample_shape, is_image, classes)`` of the run's trained network;
    ``classes``: the data set's labels of a class-conditional generator's classes, else None."""
    if run.read_json(run.config).get("kind") == "generator":
        record, generator, unscale = load_generator(run.root, device=device)
        images = len(generator.sample_shape) == 3  # pixels in [0, 1]
        shape = generator.sample_shape if images else None
        labels = record["resolved"].get("labels") if generator.classes else None
        if label is not None and labels is None:
            raise UsageError("--label is for class-conditional generator runs; this run has none.")
        if label is not None and label not in labels:
            raise UsageError(f"--label must be one of the run's classes {labels}; got {label}.")

        def generate(z: torch.Tensor) -> torch.Tensor:
            if labels is None:
                return unscale(generator(z.to(device)))
            index = generator.balanced_labels(len(z))
            if label is not None:
                index = torch.full_like(index, labels.index(label))
            return unscale(generator(z.to(device), index.to(device)))

        return generate, generator.latent_dim, shape, images, labels
    if label is not None:
        raise UsageError("--label is for class-conditional generator runs; this is an autoencoder.")
    record, model = load_autoencoder(run.root, device=device)
    if suffix == ".png" and not record["resolved"]["is_image"]:
        raise UsageError(
            "--out .png needs a run on image data; this run's samples are vectors: use .npy."
        )

    def decode(z: torch.Tensor) -> torch.Tensor:
        return decode_chunked(model, z, device=device, sample_shape=model.sample_shape)

    is_image = bool(record["resolved"]["is_image"])
    return decode, model.latent_dim, model.sample_shape, is_image, None


def _drawn(run: RunDir) -> str:
    return "generated from" if run.read_json(run.config).get("kind") == "generator" else "decoded"


def run_sample(args: argparse.Namespace) -> int:
    if args.num < 1:
        raise UsageError(f"--num must be >= 1; got {args.num}.")
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise UsageError(f"--out must end in .png or .npy; got '{args.out}'.")
    check_new_file(args.out, args.overwrite)
    device = resolve_device(args.device)
    decode, latent_dim, shape, is_image, classes = _sampler(
        RunDir(args.run), device, suffix, args.label
    )
    if classes is not None and suffix == ".npy":  # the labels go beside the samples
        check_new_file(args.out.with_suffix(".labels.npy"), args.overwrite)
    if classes is not None and args.num > SAMPLE_CHUNK:
        raise UsageError(
            f"--num must be at most {SAMPLE_CHUNK:,} for a class-conditional run; got {args.num:,}."
        )
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
            if classes is not None:
                _save_labels(classes, args.label, args.num, args.out)
        else:
            samples = torch.cat(list(chunks)).cpu()
            if is_image:
                title = f"{args.num} samples: {_drawn(RunDir(args.run))} N(0, I) draws"
                ncol = min(16, int(np.ceil(np.sqrt(args.num))))
                if classes is not None and args.label is None and len(classes) <= 16:
                    ncol, title = len(classes), f"{title}; a column per class {classes}"
                elif args.label is not None:
                    title = f"{title} of class {args.label}"
                save_image_grid(samples, args.out, ncol=ncol, title=title)
            else:
                save_histograms(None, samples.numpy(), args.out)
    print(f"{args.num} samples written to {args.out}" + (f" ({shape})" if shape else ""))
    return 0


def _save_labels(classes: list[int], label: int | None, num: int, out: Path) -> None:
    """Writes the data set's label of each sample to ``FILE.labels.npy``, atomically."""
    labels = (
        np.full(num, label)
        if label is not None
        else np.asarray(classes)[np.arange(num) % len(classes)]
    )
    path = out.with_suffix(".labels.npy")
    with atomic_path(path) as tmp:
        np.save(tmp, labels.astype(np.int64))


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
    "evaluate": (add_evaluate, run_evaluate),
    "sample": (add_sample, run_sample),
}
