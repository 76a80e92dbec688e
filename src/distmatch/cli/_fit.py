"""``distmatch fit-sketch`` and ``distmatch fit-mmd``: generators from a sketch file, or from data."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from .. import distributed
from .._core import resolve_device
from ..data import TOYS, load_split
from ..evaluation import (
    autoencoder_fid,
    classifier_metrics,
    decoded_samples,
    load_classifier,
    load_generator,
    load_inception,
    reference_summary,
)
from ..generation import (
    ESTIMATORS,
    LOSS_FORMS,
    MMD_KERNELS,
    MMD_LAWS,
    GeneratorConfig,
    HeldOut,
    resumed_config,
    train_generator,
)
from ..runs import NonFiniteLossError, TrainingInterrupted
from ..sketch import Sketch
from ._common import DETERMINISTIC_HELP, UsageError, bandwidth_flag, seed_option

_FIT_FLAGS: dict[str, tuple[str, dict]] = {
    "--arch": (
        "arch",
        {"help": "generator architecture (auto: conv for images, clgn_mlp for vectors)"},
    ),
    "--latent-dim": ("latent_dim", {"type": int, "help": "latent dimension (the architecture's)"}),
    "--latent-codes": (
        "latent_codes",
        {"type": int, "help": "codes drawn once and kept (100000); 0: fresh codes"},
    ),
    "--batch-size": (
        "batch_size",
        {"type": int, "help": "generated samples per step (vectors 1000, images 500)"},
    ),
    "--lr": ("lr", {"type": float, "help": "Adam learning rate (1e-3)"}),
    "--loss": (
        "loss_form",
        {"choices": LOSS_FORMS, "help": "squared distance (default) or the distance"},
    ),
    "--epochs": ("epochs", {"type": int, "help": "epochs (vectors 25, images 10)"}),
    "--patience": ("patience", {"type": int, "help": "early stopping patience in epochs (2)"}),
    "--min-delta": (
        "min_delta",
        {"type": float, "help": "early stopping min_delta (vectors 5e-4, images 1e-5)"},
    ),
    "--estimator": (
        "estimator",
        {
            "choices": ESTIMATORS,
            "help": "of the batch's loss, the squared sketch distance or MMD (vectors: biased, "
            "CL-GN's; images: unbiased, since the biased one rewards batches of alike samples)",
        },
    ),
    "--seed": ("seed", {"type": seed_option, "help": "random seed (0)"}),
    "--data-dir": (
        "data_dir",
        {
            "help": "where the data set's files are (fit-mmd: its --dataset; fit-sketch: the "
            "held-out data's, default the folder the sketch records)"
        },
    ),
    "--eval-data": (
        "eval_data",
        {
            "help": "held-out data: a toy, data set or .npy (default: the test split of the "
            "sketch's source, or of fit-mmd's --dataset)"
        },
    ),
    "--eval-points": ("eval_points", {"type": int, "help": "points per evaluation (2000)"}),
    "--log-every": ("log_every", {"type": int, "help": "steps per metrics row (20)"}),
    "--device": ("device", {"help": "auto (default), cpu, cuda"}),
    "--deterministic": (
        "deterministic",
        {"action": argparse.BooleanOptionalAction, "help": DETERMINISTIC_HELP},
    ),
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
        "generated samples. The sketch file is the only thing read. A labelled data set's "
        "sketch holds its classes' sketches too, and the files of 'distmatch sketch --by-label' "
        "are one per class: from either, one class-conditional generator is trained "
        "(--unconditional: one generator of the whole data).",
    )
    p.add_argument(
        "sketch",
        type=Path,
        nargs="*",
        help="the sketch file (.npz) made by distmatch sketch, or one file per class (sketch "
        "--by-label, e.g. mnist-*.npz); with --resume: the run's own",
    )
    p.add_argument(
        "--unconditional",
        action="store_true",
        help="one generator of the whole data even where the sketch holds its classes (by "
        "default a labelled data set's sketch trains a class-conditional generator)",
    )
    _add_fit_flags(p)


def add_fit_mmd(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit-mmd",
        help="train a generator with exact mini-batch MMD on the data (the baseline)",
        description="Generative moment matching: exact MMD between generated and data batches, with "
        "the kernel of the sketch's frequency law (matched) or a multi-scale Gaussian.",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help=f"a toy ({', '.join(TOYS)}), a data set (with --data-dir), a folder of images or a "
        ".npy file; with --resume: the run's own",
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
        default=argparse.SUPPRESS,
        help="kernel bandwidth in the sketch's coordinates, or auto (the median heuristic on "
        "the data; default: sqrt(1e-3) for vectors, auto for images)",
    )
    _add_fit_flags(p)


def _same_file(a: str | list[str] | None, b: str | list[str] | None) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        a, b = (x if isinstance(x, list) else [x] for x in (a, b))
        return len(a) == len(b) and all(map(_same_file, a, b))
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()


def _fit(args: argparse.Namespace, source: str, value: str | list[str] | None) -> int:
    """Trains (or resumes) a generator; ``source`` is the config field of the data (``sketch`` or
    ``dataset``) and ``value`` the path or name given for it (``None``: not given)."""
    given = {
        field: getattr(args, field) for field, _ in _FIT_FLAGS.values() if hasattr(args, field)
    }
    for name in ("kernel", "law", "bandwidth", "conditional"):
        if hasattr(args, name):
            given[name] = getattr(args, name)
    if given.get("latent_codes", 0) < 0:
        raise UsageError(
            f"--latent-codes must be >= 0 (0: fresh codes each step); got {given['latent_codes']}."
        )
    if given.get("latent_codes") == 0:
        given["latent_codes"] = None
    objective = "sketch" if source == "sketch" else "mmd"
    if args.resume:
        saved = resumed_config(args.out)
        if saved.objective != objective:
            raise UsageError(
                f"--out '{args.out}' must be a run of distmatch {args.command} to resume it; it "
                f"is a run of distmatch fit-{saved.objective}."
            )
        if value is not None and not _same_file(value, getattr(saved, source)):
            given[source] = value  # a different source: refused by the resume check
        config = dataclasses.replace(saved, **given)
    else:
        if value is None:
            raise UsageError(
                f"{args.command} needs {'a sketch file' if source == 'sketch' else '--dataset'}."
            )
        config = GeneratorConfig(objective=objective, **{source: value}, **given)
    with distributed.process_group(config.device):  # under torchrun: rank 0 alone prints
        main = distributed.is_main()
        try:
            summary = train_generator(
                config, args.out, resume=args.resume, progress=not args.no_progress
            )
        except TrainingInterrupted as err:
            if main:
                print(
                    f"distmatch {args.command}: {err}; resume with: distmatch {args.command} "
                    f"--resume --out {args.out}",
                    file=sys.stderr,
                )
            return 130
        except NonFiniteLossError as err:
            if main:
                print(f"distmatch {args.command}: error: {err}", file=sys.stderr)
            return 1
    if not main:
        return 0
    print(f"run folder: {args.out}")
    print(json.dumps(summary, indent=2))
    return 0


def run_fit_sketch(args: argparse.Namespace) -> int:
    for path in args.sketch:
        if not path.is_file():
            raise UsageError(f"sketch file '{path}' does not exist.")
    files = [str(path.resolve()) for path in args.sketch]
    if len(set(files)) != len(files):
        raise UsageError("a sketch file is given twice; give each class's file once.")
    if args.unconditional:
        args.conditional = False  # a config field (see _fit)
    return _fit(args, "sketch", files if len(files) > 1 else (files[0] if files else None))


def run_fit_mmd(args: argparse.Namespace) -> int:
    if hasattr(args, "bandwidth"):
        args.bandwidth = bandwidth_flag(args.bandwidth)
    dataset = args.dataset
    if dataset is not None and (dataset.endswith(".npy") or Path(dataset).is_dir()):
        dataset = str(Path(dataset).expanduser().resolve())
    return _fit(args, "dataset", dataset)


def _vector_metrics(args, record, generator, source, data_dir, device) -> dict:
    """The held-out metrics of a vector generator run, as its evaluations during training
    compute them, on ``--points`` samples (in the sketch's coordinates, as trained)."""
    if args.fid:
        raise UsageError("--fid is for image runs; this generator's samples are vectors.")
    resolved = record["resolved"]
    heldout = HeldOut(
        source, data_dir, generator.sample_shape,
        torch.tensor(resolved["center"], dtype=torch.float64), float(resolved["scale"]),
        args.points, record["config"]["seed"] + 1, record["config"]["objective"], device,
        whole=bool(record["config"].get("eval_data")),
    )  # fmt: skip
    gen = torch.Generator().manual_seed(args.seed)
    model = _Decoder(generator, resolved.get("class_weights"), args.seed)
    z = torch.randn(args.points, generator.latent_dim, generator=gen)
    with torch.no_grad():  # in chunks; not clamped (decoded_samples keeps pixels in [0, 1])
        samples = torch.cat([model.decode(part.to(device)).cpu() for part in z.split(1000)])
    metrics = heldout.metrics(samples, gen)
    return {"points": args.points, "held_out": len(heldout.points), **metrics}


class _Decoder(torch.nn.Module):
    """An image generator seen as a decoder (``decode``, ``latent_dim``), for the FID helpers.

    A class-conditional generator's classes are drawn with ``weights`` (the data's class
    weights) and kept in ``drawn``, so that the images can be scored against them."""

    def __init__(self, generator: torch.nn.Module, weights: list[float] | None, seed: int) -> None:
        super().__init__()
        self.generator, self.latent_dim = generator, generator.latent_dim
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float64)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.drawn: list[torch.Tensor] = []

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if not self.generator.classes:
            return self.generator(z)
        labels = torch.multinomial(self.weights, len(z), replacement=True, generator=self.gen)
        self.drawn.append(labels)
        return self.generator(z, labels.to(z.device))


def evaluate_generator_run(args: argparse.Namespace) -> dict:
    """``distmatch evaluate`` of a generator run. Images: the classifier metric of
    ``--fid-samples`` samples against the test split, and the FID with ``--fid``. Vectors: the
    held-out metrics of its training evaluation (``mmd``, ``sliced_w2``; ``log_likelihood`` for
    toys) of ``--points`` samples."""
    device = resolve_device(args.device)
    record, generator, _ = load_generator(args.run, device=device)
    config = record["config"]
    if config.get("sketch"):
        sketch = Sketch.load(GeneratorConfig(sketch=config["sketch"]).sketch_files()[0])
        source, data_dir = config.get("eval_data") or sketch.source, sketch.data_dir
    else:
        source, data_dir = config.get("eval_data") or config["dataset"], config.get("data_dir")
    data_dir = args.data_dir or config.get("data_dir") or data_dir
    if source is None:
        raise UsageError("the run names no data set to evaluate against; rerun with --data-dir.")
    if len(generator.sample_shape) != 3:
        return _vector_metrics(args, record, generator, source, data_dir, device)
    test = load_split(source, "test", data_dir=data_dir)
    train = load_split(source, "train", data_dir=data_dir)
    if train.labels is None and not args.fid:  # before any sample is drawn
        raise UsageError(
            f"'{source}' has no labels, so its images get no classifier metric; the FID is the "
            "metric of unlabelled images: pass --fid (with --inception-weights or "
            "--download-weights)."
        )
    inception = None
    if args.fid:  # fail on missing weights before any long computation
        inception = load_inception(args.inception_weights, download=args.download_weights)
    gen = torch.Generator().manual_seed(args.seed)
    model = _Decoder(generator, record["resolved"].get("class_weights"), args.seed)
    samples = torch.cat(
        list(decoded_samples(model, args.fid_samples, generator=gen, device=device))
    )
    metrics: dict = {"samples": args.fid_samples}
    if train.labels is not None:
        classifier = load_classifier(train)
        reference = reference_summary(classifier, test.get_batch(torch.arange(len(test))))
        labels = None
        if generator.classes:  # the data set's label of each image's class
            labels = torch.tensor(record["resolved"]["labels"])[torch.cat(model.drawn)]
        metrics.update(classifier_metrics(classifier, samples, reference, labels))
    if inception is not None:
        gen = torch.Generator().manual_seed(args.seed)
        metrics["fid"] = autoencoder_fid(
            model, test, inception, samples=args.fid_samples, generator=gen, device=device
        )
    return metrics


COMMANDS = {
    "fit-sketch": (add_fit_sketch, run_fit_sketch),
    "fit-mmd": (add_fit_mmd, run_fit_mmd),
}
