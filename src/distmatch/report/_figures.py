"""Curves, scatters and histograms, drawn with matplotlib's object API (no global pyplot state, no
display needed).

Part of :mod:`distmatch.report`, which re-exports the public names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .._core import atomic_path, check_positive_int

__all__ = [
    "save_curves",
    "save_generator_curves",
    "save_histograms",
    "save_scatter",
    "save_sketch_density",
    "save_training_curves",
]


def save_curves(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logy: bool = False,
) -> None:
    """Draws one line per entry of ``series`` against ``x`` and writes a PNG to ``path``.

    Args:
        x: abscissae shared by all series.
        series: label -> values, each as long as ``x``.
        path: output file; written atomically.
        xlabel: label of the x axis.
        ylabel: label of the y axis.
        title: figure title.
        logy: logarithmic y axis.
    """
    fig = Figure(figsize=(6.0, 4.0), dpi=110)
    ax = fig.add_subplot()
    for label, values in series.items():
        ax.plot(list(x), list(values), marker="o", markersize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def save_training_curves(
    records: Sequence[Mapping[str, float]],
    path: str | os.PathLike[str],
    *,
    distance_label: str = "distance term",
) -> None:
    """Training loss parts against step (left) and evaluation metrics against step (right).

    Args:
        records: the rows of ``metrics.jsonl``; training rows carry ``loss``, evaluation rows
            carry ``rec_error``, ``wae_distance``, ``cw_distance``; all carry ``step``.
        path: output PNG.
        distance_label: what the ``distance`` part is, e.g. ``"log CW distance"`` for CWAE.
    """
    fig = Figure(figsize=(11.0, 4.0), dpi=110)
    train_ax, eval_ax = fig.subplots(1, 2)
    train_rows = [r for r in records if "loss" in r]
    labels = {"loss": "loss", "reconstruction": "reconstruction", "distance": distance_label}
    for key, label in labels.items():
        steps = [r["step"] for r in train_rows if key in r]
        train_ax.plot(steps, [r[key] for r in train_rows if key in r], label=label)
    train_ax.set_xlabel("step")
    train_ax.set_ylabel(f"loss = reconstruction + lam * {distance_label}", fontsize=8)
    train_ax.set_title("training (means over each logging interval)")
    eval_rows = [r for r in records if "rec_error" in r]
    eval_steps = [r["step"] for r in eval_rows]
    distance_ax = eval_ax.twinx()  # distances are orders of magnitude below rec_error
    eval_ax.plot(eval_steps, [r["rec_error"] for r in eval_rows], "o-", ms=3, label="rec_error")
    for key, color in (("wae_distance", "tab:orange"), ("cw_distance", "tab:green")):
        values = [r[key] for r in eval_rows]
        distance_ax.plot(eval_steps, values, "s--", ms=3, color=color, label=key)
    eval_ax.set_xlabel("step")
    eval_ax.set_ylabel("rec_error")
    distance_ax.set_ylabel("wae_distance, cw_distance")
    if eval_rows and min(min(r["wae_distance"], r["cw_distance"]) for r in eval_rows) > 0:
        distance_ax.set_yscale("log")
    eval_ax.set_title("evaluation on the test split")
    lines = eval_ax.get_lines() + distance_ax.get_lines()
    eval_ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    for ax in (train_ax, eval_ax):
        ax.grid(alpha=0.3)
    train_ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _check_points(named: dict) -> None:
    for name, points in named.items():
        if not isinstance(points, np.ndarray) or points.ndim != 2 or len(points) < 1:
            shape = points.shape if isinstance(points, np.ndarray) else type(points).__name__
            raise ValueError(f"{name} must be a 2-D array of points (N, D), N >= 1; got {shape}.")


def save_scatter(
    data: np.ndarray, samples: np.ndarray, path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """Scatter of the first two coordinates of data and generated samples, side by side."""
    _check_points({"data": data, "samples": samples})
    fig = Figure(figsize=(9.0, 4.2), dpi=110)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, points, label in ((axes[0], data, "data"), (axes[1], samples, "samples")):
        second = points[:, 1] if points.shape[1] > 1 else np.zeros(len(points))
        ax.scatter(points[:, 0], second, s=3, alpha=0.5)
        ax.set_title(label)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def save_histograms(
    data: np.ndarray | None,
    samples: np.ndarray,
    path: str | os.PathLike[str],
    *,
    bins: int = 100,
) -> None:
    """2-D histograms of the data and of generated samples side by side (first two coordinates).

    Both panels share the data's range (the samples' when there are no data), as in Fig. 2 of the
    CL-GN paper. Without data, only the samples are drawn.
    """
    _check_points({"samples": samples} if data is None else {"data": data, "samples": samples})
    check_positive_int(bins, "bins")
    panels = (
        [("data", data), ("generated", samples)] if data is not None else [("generated", samples)]
    )
    reference = data if data is not None else samples
    lo, hi = np.quantile(reference[:, :2], [0.001, 0.999], axis=0)
    pad = 0.05 * (hi - lo)
    extent = [[lo[0] - pad[0], hi[0] + pad[0]], [lo[1] - pad[1], hi[1] + pad[1]]]
    fig = Figure(figsize=(4.5 * len(panels), 4.4), dpi=110)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (label, points) in zip(axes, panels, strict=True):
        second = points[:, 1] if points.shape[1] > 1 else np.zeros(len(points))
        ax.hist2d(points[:, 0], second, bins=bins, range=extent, cmap="viridis")
        ax.set_title(f"{label} ({len(points):,} points)")
        ax.set_aspect("equal")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


@torch.no_grad()
def save_sketch_density(sketch, path: str | os.PathLike[str], *, resolution: int = 200) -> None:
    """The density the sketch implies, ``f(c) = Re <z, Phi(c)>``, on a grid of the unit square.

    ``<z, Phi(c)> = mean_i (1/m) sum_j cos(w_j . (x_i - c))``: a kernel density estimate of the data
    with the sketch's kernel, read from the sketch alone (a diagnostic of what the sketch holds).
    """
    features = sketch.features
    parameter = next(iter(features.buffers()))
    axis = torch.linspace(-1.0, 1.0, resolution, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis).flip(1)  # (R*R, 2), rows of constant y
    values = []
    mean = torch.as_tensor(sketch.mean, dtype=parameter.dtype, device=parameter.device)
    for part in grid.split(4096):
        values.append((features(part.to(parameter)) @ mean).double().cpu())
    image = torch.cat(values).reshape(resolution, resolution).numpy()
    fig = Figure(figsize=(4.8, 4.4), dpi=110)
    ax = fig.add_subplot()
    shown = ax.imshow(image, origin="lower", extent=(-1, 1, -1, 1), cmap="viridis")
    fig.colorbar(shown, ax=ax, shrink=0.8)
    ax.set_title("sketch-smoothed density Re<z, Phi(c)>")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def save_generator_curves(
    records: Sequence[Mapping[str, float]],
    path: str | os.PathLike[str],
    *,
    loss_label: str = "loss",
) -> None:
    """Loss per logging interval and per epoch (left) and held-out metrics per epoch (right).

    ``loss_label`` names the loss on its axis, e.g. ``"squared sketch distance (MMD^2)"``;
    without held-out rows the right panel says so instead of staying empty.
    """
    fig = Figure(figsize=(11.0, 4.0), dpi=110)
    loss_ax, eval_ax = fig.subplots(1, 2)
    train = [r for r in records if r.get("kind") == "train"]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    loss_ax.plot(
        [r["step"] for r in train], [r["loss"] for r in train], label="loss (interval mean)"
    )
    loss_ax.plot(
        [r["step"] for r in epochs], [r["loss"] for r in epochs], "o-", ms=3, label="epoch mean"
    )
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel(loss_label)
    loss_ax.set_yscale("log")
    loss_ax.set_title("training loss")
    loss_ax.legend()
    evals = [r for r in records if r.get("kind") == "eval" and "mmd" in r]
    for key in ("mmd", "sliced_w2"):
        eval_ax.plot([r["epoch"] for r in evals], [r[key] for r in evals], "o-", ms=3, label=key)
    eval_ax.set_xlabel("epoch")
    eval_ax.set_ylabel("MMD (Gaussian kernel), sliced W2")
    eval_ax.set_title("held-out metrics")
    if evals:
        eval_ax.set_yscale("log")
    else:
        eval_ax.text(
            0.5, 0.5, "no held-out data:\nmetrics need eval data (--eval-data)",
            ha="center", va="center", transform=eval_ax.transAxes, color="0.4",
        )  # fmt: skip
    if evals and "log_likelihood" in evals[0]:
        right = eval_ax.twinx()
        right.plot(
            [r["epoch"] for r in evals],
            [r["log_likelihood"] for r in evals],
            "s--",
            ms=3,
            color="tab:red",
            label="log_likelihood",
        )
        right.set_ylabel("log-likelihood under the true density")
        right.legend(loc="center right")
    if evals:
        eval_ax.legend(loc="upper right")
    for ax in (loss_ax, eval_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
