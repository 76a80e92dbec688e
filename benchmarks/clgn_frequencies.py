"""Frequencies for image sketches, measured: law, bandwidth, m and the batch estimator on MNIST.

Each run sketches the MNIST training split with one setting, trains the default image generator
(``conv``) for ``--steps`` steps of ``--batch`` samples from the sketch alone, and scores 2,000
samples with the offline classifier metric (``cfd``, lower is better; classes covered). Short runs:
they rank the settings, they are not the final quality. ``--arch``/``--width`` change the
generator, ``--conditional`` trains a class-conditional one from one sketch per class, ``--seed``
draws other frequencies, initial weights and codes. One JSON line per run is appended to
``--out``; the sample grids go beside it (outside the repository).

    python benchmarks/clgn_frequencies.py --data-dir ../shared/data/mnist --out /tmp/freq.jsonl \\
        --law multiscale_gaussian --factor 1 --m 4000 --steps 600
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from distmatch import sketch as sk
from distmatch.data import load_split
from distmatch.evaluation import classifier_metrics, load_classifier, reference_summary
from distmatch.generation import ClassSketches
from distmatch.models import build_generator
from distmatch.report import save_image_grid


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--out", type=Path, required=True, help="a .jsonl file to append to")
    parser.add_argument("--law", default=sk.IMAGE_LAW, choices=tuple(sk.LAWS))
    parser.add_argument("--factor", type=float, default=sk.MEDIAN_FACTOR)
    parser.add_argument("--m", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--estimator", default="unbiased", choices=("unbiased", "biased"))
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--arch", default="conv", help="a generator of distmatch.models.GENERATORS")
    parser.add_argument("--width", type=int, default=None, help="conv: channels of the first map")
    parser.add_argument(
        "--conditional",
        action="store_true",
        help="one sketch per class, a class-conditional generator",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default=None)
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds frequencies, initialisation and codes"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tag = args.tag or (
        f"{args.law}-f{args.factor:g}-m{args.m}-{args.estimator}-{args.arch}-s{args.seed}"
    )
    train = load_split(args.dataset, "train", data_dir=args.data_dir)
    test = load_split(args.dataset, "test", data_dir=args.data_dir)
    x = train.get_batch(torch.arange(len(train))).flatten(1)  # (N, D) pixels
    rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[: sk.BANDWIDTH_PROBE]
    bandwidth = sk.median_bandwidth(x[rows].double(), law=args.law, factor=args.factor)
    started = time.perf_counter()
    features = sk.FourierFeatures(
        x.shape[1], args.m, law=args.law, bandwidth=bandwidth,
        generator=torch.Generator().manual_seed(args.seed),
    )  # fmt: skip
    if args.conditional:  # one sketch per class, as distmatch sketch of a labelled data set
        sketches = tuple(
            sk.sketch_dataset(x[train.labels == c], features, progress=False, device="cpu")
            for c in range(10)
        )
        counts = torch.tensor([float(s.count) for s in sketches], dtype=torch.float64)
        per_class = ClassSketches(sketches, tuple(range(10)), counts / counts.sum())
        rows = per_class.batch_labels(torch.arange(args.batch), torch.device("cpu"))[1:]
    else:
        sketch = sk.sketch_dataset(x, features, progress=False, device="cpu")
    sketch_seconds = time.perf_counter() - started
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        options = {"width": args.width} if args.width else None
        classes = 10 if args.conditional else 0
        generator = build_generator(
            args.arch, sample_shape=train.sample_shape, options=options, classes=classes
        )  # a conditional one makes sample i of class i mod 10

    optimizer = torch.optim.Adam(generator.parameters(), lr=args.lr)
    codes = torch.Generator().manual_seed(args.seed + 1)
    started = time.perf_counter()
    for _ in range(args.steps):
        y = generator.sample(args.batch, generator=codes).flatten(1)
        if classes:
            loss = per_class.distance(y, rows, estimator=args.estimator)
        else:
            loss = sk.sketch_distance(sketch, y, estimator=args.estimator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    train_seconds = time.perf_counter() - started
    classifier = load_classifier(train, progress=False)
    reference = reference_summary(classifier, test.get_batch(torch.arange(len(test))))
    with torch.no_grad():
        samples = generator.sample(2000, generator=torch.Generator().manual_seed(5))
    row = {
        "tag": tag, "law": args.law, "factor": args.factor, "bandwidth": bandwidth, "m": args.m,
        "batch": args.batch, "steps": args.steps, "estimator": args.estimator, "seed": args.seed,
        "arch": args.arch, "width": args.width, "conditional": args.conditional,
        "parameters": sum(p.numel() for p in generator.parameters()),
        "sketch_s": round(sketch_seconds, 1), "train_s": round(train_seconds, 1),
        **classifier_metrics(classifier, samples, reference),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as file:
        file.write(json.dumps(row) + "\n")
    shown = (
        samples[:100]
        if not classes
        else samples[:100]
        .view(10, 10, *samples.shape[1:])
        .transpose(0, 1)
        .reshape(100, *samples.shape[1:])
    )
    save_image_grid(shown, args.out.parent / f"{tag}.png", ncol=10, title=tag)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
