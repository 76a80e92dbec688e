"""Reproduction of the MoW paper's experiments: runs, a table beside the paper's, a Fig. 2 figure.

Part of :mod:`distmatch.reproduce`.

``reproduce_mow`` trains every (model, k) of the protocol of :data:`distmatch.reproduce.MOW_PROTOCOLS`
as an ordinary run folder ``OUT/<model>-k<k>`` (``OUT/<model>-k<k>-lr<lr>`` with a learning-rate
grid). Runs resume when interrupted: finished runs of the same length are reused, unfinished ones
continue from their checkpoint, and a longer ``epochs`` extends finished ones.

With a grid, the run kept for each (model, k) is the one of least *selection cost* on the test
split, the paper's rule of picking the best model by its cost::

    cost = rec_error + log(max(distance, 1e-12))

with ``distance`` the model's own: ``cw_distance`` for CWAE, ``wae_distance`` for WAE and SWAE (the
paper reports no sliced metric). ``OUT/table.md`` puts our numbers beside the paper's (Tables 1-4),
``OUT/figure.png`` shows interpolations, reconstructions and samples of the smallest and largest k
side by side, and ``OUT/results.json`` holds every run's final metrics.
"""

from __future__ import annotations

import math
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from .._core import resolve_device
from ..data import load_split
from ..evaluation import autoencoder_fid, load_autoencoder, load_inception
from ..runs import RunDir, RunError
from ..training import TrainConfig, train
from ._figures import save_mow_figure
from ._papers import MOW_PAPER, MOW_PROTOCOLS

__all__ = ["MowJob", "mow_jobs", "mow_table", "reproduce_mow", "run_mow_job", "selection_cost"]

METRICS = ("cw_distance", "wae_distance", "rec_error", "fid")


@dataclass(frozen=True)
class MowJob:
    """One (model, k, learning rate) run of a reproduction."""

    dataset: str
    model: str
    k: int
    lr: float
    epochs: int
    out: str
    data_dir: str | None = None
    device: str = "auto"
    eval_points: int = 2000
    arch: str | None = None  # None: the protocol's
    latent_dim: int | None = None  # None: the protocol's


def mow_jobs(
    dataset: str,
    models: list[str],
    ks: list[int],
    epochs: int,
    out: str | os.PathLike[str],
    *,
    data_dir: str | None = None,
    lr_grid: list[float] | None = None,
    device: str = "auto",
    eval_points: int = 2000,
    arch: str | None = None,
    latent_dim: int | None = None,
) -> list[MowJob]:
    """The runs of a reproduction, the long small-k runs first."""
    if dataset not in MOW_PROTOCOLS:
        raise ValueError(
            f"dataset must be one of {', '.join(sorted(MOW_PROTOCOLS))}; got {dataset!r}."
        )
    protocol = MOW_PROTOCOLS[dataset]
    jobs = []
    for k in sorted(set(ks)):
        for model in models:
            rates = lr_grid or [protocol.learning_rate(model, k)]
            for lr in rates:
                name = f"{model}-k{k}" if not lr_grid else f"{model}-k{k}-lr{lr:g}"
                jobs.append(
                    MowJob(
                        dataset,
                        model,
                        k,
                        lr,
                        epochs,
                        str(Path(out) / name),
                        data_dir,
                        device,
                        eval_points,
                        arch,
                        latent_dim,
                    )
                )
    return jobs


def _config(job: MowJob) -> TrainConfig:
    protocol = MOW_PROTOCOLS[job.dataset]
    return TrainConfig(
        model=job.model,
        dataset=job.dataset,
        data_dir=job.data_dir,
        arch=job.arch or protocol.arch,
        latent_dim=job.latent_dim or protocol.latent_dim,
        n=64,
        k=job.k,
        window_gradient="paper",  # the reference's window and rates, whose numbers these are
        lr_rule="none",
        refresh_every=0,
        optimizer=protocol.optimizer,
        lr=job.lr,
        epochs=job.epochs,
        eval_every=max(1, job.epochs),
        eval_points=job.eval_points,
        log_every=500,
        device=job.device,
    ).validate()


RUN_FILES = {"config.json", "metrics.jsonl", "summary.json", "eval.json", "figures"}


def _clear_unstarted(run: RunDir) -> None:
    """Removes a run folder killed before its first checkpoint (it holds no progress); refuses one
    that holds more than a run's own files."""
    if run.checkpoint.exists() or not run.root.exists():
        return
    leftovers = {p.name for p in run.root.iterdir() if not p.name.startswith(".")}
    if leftovers <= RUN_FILES:
        shutil.rmtree(run.root)
    else:
        raise RunError(
            f"'{run.root}' must be a run folder of this reproduction or absent; it holds "
            f"{sorted(leftovers)} and no checkpoint."
        )


def run_mow_job(job: MowJob, progress: bool = True) -> dict[str, Any]:
    """Trains (or resumes, or reuses) one run; returns its job fields and final metrics."""
    run = RunDir(job.out)
    config = _config(job)
    summary = None
    if run.summary.is_file() and run.checkpoint.is_file():
        saved = run.read_json(run.config)["config"]
        if saved.get("epochs") == job.epochs and saved.get("steps") is None:
            summary = run.read_json(run.summary)
        elif saved.get("epochs", 0) > job.epochs:
            raise RunError(
                f"'{run.root}' was trained for {saved['epochs']} epochs; got --epochs {job.epochs}. "
                "Use another --out for a shorter reproduction."
            )
    if summary is None:
        _clear_unstarted(run)
        summary = train(config, run.root, resume=run.checkpoint.is_file(), progress=progress)
    if run.eval.is_file():  # distmatch evaluate --fid adds fid there
        summary = {**summary, **{k: v for k, v in run.read_json(run.eval).items() if k == "fid"}}
    return {**asdict(job), **summary}


def _run_quietly(job: MowJob) -> dict[str, Any]:
    torch.set_num_threads(1)
    return run_mow_job(job, progress=False)


def selection_cost(model: str, metrics: dict[str, float]) -> float:
    """``rec_error + log(distance)``, the model's own distance (see the module docstring)."""
    distance = metrics["cw_distance"] if model == "cwae" else metrics["wae_distance"]
    return metrics["rec_error"] + math.log(max(distance, 1e-12))


def reproduce_mow(
    dataset: str,
    models: list[str],
    ks: list[int],
    epochs: int,
    out: str | os.PathLike[str],
    *,
    data_dir: str | None = None,
    lr_grid: list[float] | None = None,
    jobs: int = 1,
    device: str = "auto",
    eval_points: int = 2000,
    inception_weights: str | os.PathLike[str] | None = None,
    fid_samples: int = 10_000,
    arch: str | None = None,
    latent_dim: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Runs the protocol, writes ``table.md``, ``figure.png`` and ``results.json`` in ``out``.

    Args:
        dataset: a key of :data:`distmatch.reproduce.MOW_PROTOCOLS`.
        models: among ``wae``, ``cwae``, ``swae``.
        ks: fresh codes per step, e.g. ``[64, 32, 1]`` (n = 64).
        epochs: passes over the training split, the same for every run.
        out: the reproduction folder.
        data_dir: where the data set's files are.
        lr_grid: learning rates to try for every run (default: the reference rate only).
        jobs: runs trained at once, in separate processes of one thread each.
        device: ``auto``, ``cpu`` or ``cuda``.
        eval_points: test codes per distance estimate (2000 in the paper).
        inception_weights: the FID Inception weights file; when given, every kept run without a
            FID gets one (``fid_samples`` images), stored in its ``eval.json``.
        fid_samples: generated images per FID.
        arch, latent_dim: override the protocol's architecture (say so when quoting results).
        progress: progress bars (one run at a time only).

    Returns:
        the kept run of every (model, k), with its metrics.
    """
    todo = mow_jobs(
        dataset,
        models,
        ks,
        epochs,
        out,
        data_dir=data_dir,
        lr_grid=lr_grid,
        device=device,
        eval_points=eval_points,
        arch=arch,
        latent_dim=latent_dim,
    )
    _config(todo[0])  # bad settings fail before any training
    inception = None
    if inception_weights is not None:  # a missing file fails before any training too
        inception = load_inception(inception_weights)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_run_quietly, todo))
    else:
        results = [run_mow_job(job, progress) for job in todo]
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    for r in results:
        key = (r["model"], r["k"])
        if key not in kept or selection_cost(r["model"], r) < selection_cost(r["model"], kept[key]):
            kept[key] = r
    chosen = sorted(kept.values(), key=lambda r: (models.index(r["model"]), -r["k"]))
    if inception is not None:
        chosen = [r if "fid" in r else _add_fid(r, inception, fid_samples) for r in chosen]
    folder = Path(out)
    RunDir(folder).write_json(folder / "results.json", {"runs": results, "kept": chosen})
    (folder / "table.md").write_text(mow_table(dataset, chosen, epochs, grid=bool(lr_grid)))
    save_mow_figure(chosen, folder / "figure.png")
    return chosen


def _add_fid(result: dict[str, Any], inception, samples: int) -> dict[str, Any]:
    """Computes the FID of a kept run and stores it in the run's ``eval.json``."""
    device = resolve_device(result["device"])
    record, model = load_autoencoder(result["out"], device=device)
    config = record["config"]
    test = load_split(
        config["dataset"], "test", data_dir=config["data_dir"], image_size=config["image_size"]
    )
    fid = autoencoder_fid(
        model,
        test,
        inception,
        samples=samples,
        generator=torch.Generator().manual_seed(0),
        device=device,
    )
    run = RunDir(result["out"])
    stored = run.read_json(run.eval) if run.eval.is_file() else {}
    run.write_json(run.eval, {**stored, "fid": fid, "fid_samples": samples})
    return {**result, "fid": fid}


def _pair(ours: float | None, paper: float | None) -> str:
    mine = "—" if ours is None else f"{ours:.3f}" if abs(ours) < 100 else f"{ours:.1f}"
    theirs = "—" if paper is None else f"{paper:g}"
    return f"{mine} / {theirs}"


def mow_table(dataset: str, results: list[dict[str, Any]], epochs: int, grid: bool = False) -> str:
    """A Markdown table of our metrics beside the paper's."""
    protocol = MOW_PROTOCOLS[dataset]
    lines = [
        f"# MoW reproduction: {dataset}",
        "",
        "| model | k | lr | cw_distance (ours / paper) | wae_distance (ours / paper) | "
        "rec_error (ours / paper) | FID (ours / paper) | steps/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        paper = MOW_PAPER.get((dataset, r["model"]), {}).get(r["k"], {})
        cells = [_pair(r.get(m), paper.get(m)) for m in METRICS]
        lines.append(
            f"| {r['model'].upper()} | {r['k']} | {r['lr']:g} | {' | '.join(cells)} | "
            f"{r.get('steps_per_second', float('nan')):.0f} |"
        )
    paper_epochs = protocol.paper_epochs or "an unstated number of"
    arch = results[0].get("arch") or protocol.arch
    dim = results[0].get("latent_dim") or protocol.latent_dim
    note = "" if arch == protocol.arch else f" instead of the paper's `{protocol.arch}`"
    lines += [
        "",
        f"Ours: {epochs} epochs, n = 64, {protocol.optimizer.upper()}, `{arch}` (z = {dim})"
        f"{note}"
        f", test split, {results[0]['eval_points']} codes per distance"
        f"{'; learning rate chosen from the grid by rec_error + log(distance)' if grid else ''}. "
        f"Paper: {paper_epochs} epochs. FID only where `distmatch evaluate RUN --fid` was run; "
        "— where the paper gives no value.",
    ]
    return "\n".join(lines) + "\n"
