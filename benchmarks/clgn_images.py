"""Compressive learning of image generators, measured: the table of docs/reproduction.md.

For each data set (MNIST, Fashion-MNIST), every row runs the ``distmatch`` command in a fresh
process with ``--threads`` threads and reads its run folder:

- ``sketch``: ``distmatch sketch`` with the defaults: time and file size (the file holds the
  sketches of the classes beside the whole data set's).
- ``gaussian``: a Gaussian fitted to the pixels (one pass for the mean and covariance), sampled and
  clipped to [0, 1]: the floor a generator must clear.
- ``a``: ``distmatch fit-sketch FILE`` with the defaults: a class-conditional generator.
- ``au``: the unconditional generator, from ``distmatch sketch --no-classes`` (the whole data set's
  sketch alone; ``fit-sketch --unconditional FILE`` trains the same from a default file).
- ``b``: the latent route, ``distmatch train`` (a CWAE with the MNIST network ``mnist_mlp``, z = 20,
  k = 64, Adam, ``--ae-epochs`` epochs) then ``distmatch fit-latent-sketch``.
- ``c``: ``distmatch fit-mmd`` with the defaults: the same kernel, generator, batches and epochs
  as ``au``; it reads a batch of the data every step (passes over the data = steps x batch / N).
- ``d``: private sketches at each ``--epsilons`` (``--delta``, analytic Gaussian mechanism, each
  class's sketch released once), then ``fit-sketch`` with the defaults. A private sketch needs a
  public bandwidth: the non-private sketch's (the median distance of the images) stands in for one
  chosen on public data. ``du``: the same with ``--no-classes`` (unconditional).
- ``--epochs N`` trains rows ``c``, ``d`` and ``du`` for N epochs only; compare them with rows
  ``a`` and ``au`` after N epochs (their ``metrics.jsonl``).
- ``e``: DP-MERF's published setting with our code: 500 frequencies, a class-conditional
  generator, 5 epochs, no noise. ``eu``: the same, unconditional (``--no-classes``).

Quality is the offline classifier metric (``distmatch.evaluation.classifier_metrics``) of 2,000
samples against the test split: ``cfd`` (lower is better), ``classes_covered`` (of 10),
``effective_classes``, and for class-conditional rows ``label_agreement`` (the share of samples the
classifier reads as the class they were generated for). The sample grids are copied to ``OUT/grids/`` (outside the repository:
they show images derived from the data sets). Writes ``OUT/table.md`` and ``OUT/results.json``;
a finished row is read back from its run folder, so an interrupted benchmark resumes.

    python benchmarks/clgn_images.py --data-dir ../shared/data --out /tmp/clgn-images
    python benchmarks/clgn_images.py --datasets fashion_mnist --rows sketch,gaussian,a,au,e ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from distmatch.sketch import Sketch

FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
ROWS = ("sketch", "gaussian", "a", "au", "b", "c", "d", "du", "e", "eu")


def distmatch(args: list[str], threads: int, log: Path) -> float:
    """Runs ``python -m distmatch ARGS`` with ``threads`` threads; returns its wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"$ distmatch {' '.join(args)}\n")
        out.flush()
        done = subprocess.run(
            [sys.executable, "-m", "distmatch", *args], env=env, stdout=out, stderr=out
        )
    if done.returncode != 0:
        raise SystemExit(f"distmatch {' '.join(args)} failed (status {done.returncode}); see {log}")
    return time.perf_counter() - started


def summary_of(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def quality(summary: dict, prefix: str = "") -> dict:
    keys = ("cfd", "classes_covered", "effective_classes", "label_agreement")
    return {k: summary.get(prefix + k) for k in keys}


def sketch_row(
    name: str, data_dir: Path, out: Path, threads: int, log: Path, *extra: str, stem: str = ""
):
    """Sketches the data set ``name`` into ``OUT/<stem or name>.npz`` unless it exists."""
    path = out / f"{stem or name}.npz"
    seconds = None
    if not path.exists():
        seconds = distmatch(
            ["sketch", "--dataset", name, "--data-dir", str(data_dir), "--out", str(path),
             "--no-progress", *extra],
            threads, log,
        )  # fmt: skip
    return path, seconds


def gaussian_row(name: str, data_dir: Path) -> dict:
    """A Gaussian fitted to the pixels of the training split, scored like the generators."""
    from distmatch.data import load_split
    from distmatch.evaluation import classifier_metrics, load_classifier, reference_summary

    train = load_split(name, "train", data_dir=data_dir)
    test = load_split(name, "test", data_dir=data_dir)
    x = train.get_batch(torch.arange(len(train))).flatten(1).double()  # (N, D)
    cov = torch.cov(x.T) + 1e-6 * torch.eye(x.shape[1], dtype=torch.float64)
    noise = torch.randn(
        2000, x.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    samples = (x.mean(0) + noise @ torch.linalg.cholesky(cov).T).clamp(0, 1)
    classifier = load_classifier(train, progress=False)
    reference = reference_summary(classifier, test.get_batch(torch.arange(len(test))))
    images = samples.float().view(-1, *train.sample_shape)
    return classifier_metrics(classifier, images, reference)


def fit_row(args: list[str], run: Path, threads: int, log: Path) -> dict:
    if not (run / "summary.json").exists():
        distmatch([*args, "--out", str(run), "--no-progress"], threads, log)
    s = summary_of(run)
    config = json.loads((run / "config.json").read_text())
    steps = s["step"]
    batch = config["config"]["batch_size"]
    return {**quality(s), "train_s": s["wall_seconds"], "eval_s": s["eval_seconds"],
            "steps": steps, "batch": batch}  # fmt: skip


def copy_grid(src: Path, grids: Path, name: str) -> None:
    if src.is_file():
        grids.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, grids / name)


def bench(name: str, args: argparse.Namespace) -> list[dict]:
    data_dir = args.data_dir / FOLDERS[name]
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    log, grids, t = out / "log.txt", args.out / "grids", args.threads
    rows: list[dict] = []
    n_train = 60_000
    path, seconds = sketch_row(name, data_dir, out, t, log)
    if "sketch" in args.rows:
        rows.append({"row": "sketch", "sketch_s": seconds, "file_bytes": path.stat().st_size})
    if "gaussian" in args.rows:
        rows.append({"row": "gaussian fit to the pixels", **gaussian_row(name, data_dir)})
    nc = "--no-classes"
    if "a" in args.rows:
        r = fit_row(["fit-sketch", str(path)], out / "a", t, log)
        rows.append({"row": "(a) pixel sketch, defaults (class-conditional)", "passes": 1, **r})
        copy_grid(out / "a" / "figures" / "samples.png", grids, f"{name}-a.png")
    if "au" in args.rows:
        whole, _ = sketch_row(name, data_dir, out, t, log, nc, stem=f"{name}-noclasses")
        r = fit_row(["fit-sketch", str(whole)], out / "au", t, log)
        rows.append({"row": "(a) unconditional (sketch --no-classes)", "passes": 1, **r})
        copy_grid(out / "au" / "figures" / "samples.png", grids, f"{name}-au.png")
    if "b" in args.rows:
        ae = out / "ae"
        if not (ae / "summary.json").exists():
            distmatch(
                ["train", "--model", "cwae", "--dataset", name, "--data-dir", str(data_dir),
                 "--arch", "mnist_mlp", "--latent-dim", "20",
                 "--n", "64", "--k", "64", "--optimizer", "adam", "--lr", "0.001",
                 "--epochs", str(args.ae_epochs), "--out", str(ae), "--no-progress"],
                t, log,
            )  # fmt: skip
        latent = out / "latent"
        if not (latent / "run" / "summary.json").exists():
            distmatch(["fit-latent-sketch", str(ae), "--out", str(latent), "--no-progress"], t, log)
        s = summary_of(latent / "run")
        ae_s = summary_of(ae)["wall_seconds"]
        decoded = json.loads((latent / "result.json").read_text())
        rows.append({"row": "(b) latent route (CWAE + latent sketch)",
                     "passes": args.ae_epochs + 2, "train_s": ae_s + s["wall_seconds"],
                     **quality(decoded, "decoded_")})  # fmt: skip
        copy_grid(latent / "samples.png", grids, f"{name}-b.png")
    short = ["--epochs", str(args.epochs)] if args.epochs else []
    if "c" in args.rows:
        mmd = ["fit-mmd", "--dataset", name, "--data-dir", str(data_dir), *short]
        r = fit_row(mmd, out / "c", t, log)
        rows.append({"row": "(c) exact MMD, same kernel (fit-mmd)",
                     "passes": round(r["steps"] * r["batch"] / n_train, 1), **r})  # fmt: skip
        copy_grid(out / "c" / "figures" / "samples.png", grids, f"{name}-c.png")
    bandwidth = Sketch.load(path).features.bandwidth
    for row, extra, what in (("d", (), ""), ("du", (nc,), ", unconditional")):
        if row not in args.rows:
            continue
        for eps in args.epsilons:
            stem = f"{name}{'-noclasses' if extra else ''}-eps{eps:g}"
            private, _ = sketch_row(
                name, data_dir, out, t, log, *extra, "--epsilon", f"{eps:g}",
                "--delta", f"{args.delta:g}", "--bandwidth", repr(bandwidth), stem=stem,
            )  # fmt: skip
            run = out / f"{row}-eps{eps:g}"
            r = fit_row(["fit-sketch", str(private), *short], run, t, log)
            rows.append({"row": f"(d) private sketch, epsilon = {eps:g}, delta = {args.delta:g}"
                         f"{what}", "passes": 1, **r})  # fmt: skip
            copy_grid(run / "figures" / "samples.png", grids, f"{name}-{row}{eps:g}.png")
    for row, extra, what in (("e", (), "class-conditional"), ("eu", (nc,), "unconditional")):
        if row not in args.rows:
            continue
        stem = f"{name}{'-noclasses' if extra else ''}-m500"
        merf, _ = sketch_row(
            name, data_dir, out, t, log, *extra, "--n-frequencies", "500", stem=stem
        )  # fmt: skip
        r = fit_row(["fit-sketch", str(merf), "--epochs", "5"], out / row, t, log)
        rows.append({"row": f"(e) DP-MERF's setting: m = 500, 5 epochs, {what}", "passes": 1,
                     **r})  # fmt: skip
        copy_grid(out / row / "figures" / "samples.png", grids, f"{name}-{row}.png")
    return rows


def table(results: dict[str, list[dict]]) -> str:
    cols = ("row", "sketch_s", "file_bytes", "train_s", "eval_s", "passes", "cfd",
            "classes_covered", "effective_classes", "label_agreement")  # fmt: skip
    lines = []
    for name, rows in results.items():
        lines += [f"**{name}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in rows:
            cells = []
            for c in cols:
                v = r.get(c)
                cells.append(
                    ""
                    if v is None
                    else f"{v:,.1f}"
                    if isinstance(v, float)
                    else f"{v:,}"
                    if isinstance(v, int)
                    else str(v)
                )
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (not the repo)")
    parser.add_argument("--datasets", default="mnist,fashion_mnist")
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--epsilons", default="1,10")
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--ae-epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="epochs of rows c and d")
    args = parser.parse_args()
    args.rows = set(args.rows.split(","))
    args.epsilons = [float(e) for e in args.epsilons.split(",")]
    torch.set_num_threads(args.threads)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.datasets.split(","):
        results[name] = bench(name, args)
        args.out.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=2))
        (args.out / "table.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
