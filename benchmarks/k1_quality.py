"""Does k = 1 train the model that k = n trains? The table of docs/reproduction.md.

For each data set, model and k, one ordinary ``distmatch train`` run with the defaults (``mnist_mlp``
for MNIST and Fashion-MNIST, the paper's network for CIFAR-10 and CelebA, at the MoW paper's latent
size, n = 64, Adam 1e-3 as the classical rate, the unbiased window
gradient, the learning-rate rule, the window refresh), the same number of epochs for every k. It
prints rec_error, cw_distance and wae_distance on the test split (the MoW paper's metrics), the
ratios of each k to k = n, and the wall time; it writes ``OUT/table.md``, ``OUT/results.json`` and
one figure per data set, ``OUT/figure-DATA.png``: interpolations, reconstructions and samples of
k = n beside k = 1 for every model (the figures show images of the data sets: they stay in OUT).

Runs are run folders ``OUT/DATA-MODEL-kK``: a finished one is reused, an interrupted one resumes,
so the whole table can be built over several sessions. ``--jobs`` runs that many at once (one
thread each).

    python benchmarks/k1_quality.py --data-root ../shared/data --epochs 10 --out /tmp/k1
    python benchmarks/k1_quality.py --datasets fashion_mnist --epochs 5 --ks 64,8,1 --jobs 2
    python benchmarks/k1_quality.py --datasets cifar10,celeba --models cwae,wae,swae --ks 64,32,1 \
        --epochs 2 --device cuda --jobs 4   # the paper's networks for those (benchmarks/gpu_tables.sh)
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from distmatch.reproduce import MOW_PROTOCOLS, save_mow_figure
from distmatch.runs import RunDir
from distmatch.training import TrainConfig, train

FOLDERS = {  # under --data-root
    "mnist": "mnist",
    "fashion_mnist": "fashion-mnist",
    "cifar10": "cifar10/cifar10-jpg-q75-test10k-train10k.zip",
    "celeba": "celeba/celeba-aligned-89x109-000001-008000.zip",
    "digits": None,
}
# the MNIST table is about mnist_mlp (the paper's MNIST network); other data sets take the paper's
ARCHS = {"mnist": "mnist_mlp", "fashion_mnist": "mnist_mlp", "digits": "mlp"}
METRICS = ("rec_error", "cw_distance", "wae_distance")


def run_one(job: dict) -> dict:
    """Trains (or resumes, or reuses) one run; returns its metrics and wall time."""
    torch.set_num_threads(1)
    out = RunDir(job["out"])
    if out.summary.is_file():
        summary = out.read_json(out.summary)
        if summary.get("epochs") == job["epochs"]:
            return {**job, **summary}
    config = TrainConfig(
        model=job["model"],
        dataset=job["dataset"],
        data_dir=job["data_dir"],
        arch=ARCHS.get(job["dataset"], MOW_PROTOCOLS[job["dataset"]].arch),
        latent_dim=job["latent_dim"],
        n=job["n"],
        k=job["k"],
        epochs=job["epochs"],
        eval_every=job["epochs"],
        eval_points=2000,
        log_every=1000,
        device=job["device"],
    )
    started = time.perf_counter()
    summary = train(config, out.root, resume=out.checkpoint.is_file(), progress=False)
    return {**job, **summary, "session_seconds": round(time.perf_counter() - started, 1)}


def table(dataset: str, rows: list[dict]) -> str:
    """Markdown rows of one data set, each k beside the k = n of its model."""
    lines = [
        f"**{dataset}**",
        "",
        "| model | k | rec_error | cw_distance | wae_distance | ratio to k = n (rec / cw / wae) "
        "| wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = next(r for r in rows if r["model"] == row["model"] and r["k"] == row["n"])
        ratios = " / ".join(f"{row[m] / base[m]:.2f}" for m in METRICS) if row is not base else "—"
        values = " | ".join(f"{row[m]:.4g}" for m in METRICS)
        lines.append(
            f"| {row['model']} | {row['k']} | {values} | {ratios} | {row['wall_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", default="mnist,fashion_mnist")
    parser.add_argument("--models", default="cwae,wae,swae,skwae")
    parser.add_argument("--ks", default="64,8,1")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/k1"))
    parser.add_argument("--device", default="cpu", help="cpu or cuda (jobs share one GPU)")
    args = parser.parse_args()
    jobs = []
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            for k in (int(v) for v in args.ks.split(",")):
                jobs.append(
                    {
                        "dataset": dataset,
                        "data_dir": (
                            str(args.data_root / FOLDERS[dataset]) if FOLDERS[dataset] else None
                        ),
                        "latent_dim": MOW_PROTOCOLS[dataset].latent_dim,
                        "model": model,
                        "n": args.n,
                        "k": k,
                        "epochs": args.epochs,
                        "device": args.device,
                        "out": str(args.out / f"{dataset}-{model}-k{k}"),
                    }
                )
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(run_one, jobs))
    else:
        results = [run_one(job) for job in jobs]
    archs = ", ".join(f"`{ARCHS.get(d, MOW_PROTOCOLS[d].arch)}`" for d in args.datasets.split(","))
    text = f"n = {args.n}, {args.epochs} epochs for every k, {archs}, defaults otherwise.\n\n"
    for dataset in args.datasets.split(","):
        rows = [r for r in results if r["dataset"] == dataset]
        text += table(dataset, rows) + "\n"
        save_mow_figure(rows, args.out / f"figure-{dataset}.png")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(text)
    print(f"figures: {sorted(str(p) for p in args.out.glob('figure-*.png'))}")


if __name__ == "__main__":
    main()
