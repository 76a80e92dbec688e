"""Figures, drawn with matplotlib's object API (no global pyplot state, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from .._core import atomic_path

__all__ = [
    "chunk_size",
    "decode_chunked",
    "image_grid",
    "save_autoencoder_figures",
    "save_curves",
    "save_generator_curves",
    "save_histograms",
    "save_image_grid",
    "save_interpolations",
    "save_reconstructions",
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


def image_grid(images: torch.Tensor, *, ncol: int, pad: int = 2, min_cell: int = 48) -> np.ndarray:
    """Tiles images into one RGB array, rows filled left to right.

    Args:
        images: (N, C, H, W) with C in {1, 3}, values in [0, 1] (clipped).
        ncol: images per row.
        pad: pixels of white between images.
        min_cell: small images are enlarged (nearest neighbour, integer factor) to at least this
            many pixels a side, so that 8x8 digits stay visible.

    Returns:
        (rows * H', ncol * W', 3) uint8 array.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C in 1, 3; got {tuple(images.shape)}.")
    x = images.detach().float().clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    factor = max(1, -(-min_cell // max(h, w)))
    if factor > 1:
        x = x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
        h, w = h * factor, w * factor
    rows = -(-n // ncol)
    grid = torch.ones(3, rows * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[:, top : top + h, left : left + w] = x[i]
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_image_grid(images: torch.Tensor, path: str | os.PathLike[str], *, ncol: int = 8) -> None:
    """Writes ``images`` (N, C, H, W) in [0, 1] as one PNG grid (atomically)."""
    with atomic_path(path) as tmp:
        Image.fromarray(image_grid(images, ncol=ncol)).save(tmp, format="PNG")


def save_reconstructions(
    originals: torch.Tensor, reconstructions: torch.Tensor, path: str | os.PathLike[str]
) -> None:
    """Pairs each original with its reconstruction: columns alternate original, reconstruction."""
    pairs = torch.stack([originals, reconstructions], dim=1).flatten(0, 1)  # (2N, C, H, W)
    ncol = 2 * max(1, min(8, int(np.ceil(np.sqrt(originals.shape[0])))))
    save_image_grid(pairs, path, ncol=ncol)


def save_interpolations(paths: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """One row per interpolation: (R, T, C, H, W), the endpoints are the decoded test images."""
    save_image_grid(paths.flatten(0, 1), path, ncol=paths.shape[1])


def save_training_curves(
    records: Sequence[Mapping[str, float]], path: str | os.PathLike[str]
) -> None:
    """Training loss parts against step (left) and evaluation metrics against step (right).

    Args:
        records: the rows of ``metrics.jsonl``; training rows carry ``loss``, evaluation rows
            carry ``rec_error``, ``wae_distance``, ``cw_distance``; all carry ``step``.
        path: output PNG.
    """
    fig = Figure(figsize=(11.0, 4.0), dpi=110)
    train_ax, eval_ax = fig.subplots(1, 2)
    train_rows = [r for r in records if "loss" in r]
    for key in ("loss", "reconstruction", "distance"):
        steps = [r["step"] for r in train_rows if key in r]
        train_ax.plot(steps, [r[key] for r in train_rows if key in r], label=key)
    train_ax.set_xlabel("step")
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


def save_scatter(
    data: np.ndarray, samples: np.ndarray, path: str | os.PathLike[str], *, title: str = ""
) -> None:
    """Scatter of the first two coordinates of data and generated samples, side by side."""
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


def _figure_counts(sample_shape: Sequence[int]) -> tuple[int, int, int]:
    """(samples, interpolation rows, interpolation steps), fewer for large images."""
    side = max(sample_shape[1:])
    if side <= 64:
        return 64, 8, 10
    if side <= 256:
        return 16, 4, 8
    return 4, 2, 6


def chunk_size(sample_shape: Sequence[int], budget: int = 4_000_000) -> int:
    """Samples per forward pass so that one pass holds about ``budget`` output values."""
    return max(1, min(256, budget // int(np.prod(sample_shape))))


@torch.no_grad()
def decode_chunked(
    model: torch.nn.Module,
    z: torch.Tensor,
    *,
    device: torch.device | str = "cpu",
    sample_shape: Sequence[int],
) -> torch.Tensor:
    """Decodes codes ``z`` (N, D) in chunks sized for ``sample_shape``; the result is on CPU."""
    chunk = chunk_size(sample_shape)
    return torch.cat([model.decode(part.to(device)).cpu() for part in z.split(chunk)])


@torch.no_grad()
def save_autoencoder_figures(
    model: torch.nn.Module,
    data,
    folder: str | os.PathLike[str],
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> list[Path]:
    """Samples from the prior, reconstructions and latent interpolations of a trained autoencoder.

    Images (``data.is_image``): ``samples.png`` (decoded N(0, I) draws), ``reconstructions.png``
    (test images, each beside its reconstruction) and ``interpolations.png`` (rows decoding
    ``(1 - t) z_a + t z_b`` between the codes of two test images, as in the MoW paper's Fig. 2).
    Vectors: ``samples.png``, a scatter of the first two coordinates of data and decoded draws.
    The draws and test images come from ``seed``, so figures of successive evaluations compare.

    Args:
        model: autoencoder with ``encode``, ``decode`` and ``latent_dim``.
        data: a :class:`distmatch.data.SampleSet` (usually the test split).
        folder: where the PNGs go (created).
        seed: randomness of the draws and of the chosen test images.
        device: where the model runs.

    Returns:
        the written paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed + 4242)
    was_training = model.training
    model.eval()
    try:
        if not data.is_image:
            return _save_vector_figures(model, data, folder, gen, device)
        n_samples, rows, steps = _figure_counts(data.sample_shape)
        shape = tuple(data.sample_shape)
        chunk = chunk_size(shape)
        z = torch.randn(n_samples, model.latent_dim, generator=gen)
        samples = decode_chunked(model, z, device=device, sample_shape=shape)
        save_image_grid(samples, folder / "samples.png")
        count = min(len(data), 2 * rows)
        index = torch.randperm(len(data), generator=gen)[:count]
        x = data.get_batch(index)  # (count, C, H, W)
        codes = torch.cat([model.encode(part.to(device)).cpu() for part in x.split(chunk)])
        shown = min(count, 16 if n_samples >= 64 else 4)
        recon = decode_chunked(model, codes[:shown], device=device, sample_shape=shape)
        save_reconstructions(x[:shown], recon, folder / "reconstructions.png")
        paths = [folder / "samples.png", folder / "reconstructions.png"]
        if count >= 2:
            pairs = count // 2
            t = torch.linspace(0, 1, steps)[None, :, None]  # (1, T, 1)
            line = (1 - t) * codes[:pairs, None] + t * codes[pairs : 2 * pairs, None]  # (R, T, D)
            decoded = decode_chunked(model, line.flatten(0, 1), device=device, sample_shape=shape)
            save_interpolations(
                decoded.view(pairs, steps, *decoded.shape[1:]), folder / "interpolations.png"
            )
            paths.append(folder / "interpolations.png")
        return paths
    finally:
        model.train(was_training)


def _save_vector_figures(model, data, folder: Path, gen: torch.Generator, device) -> list[Path]:
    count = min(len(data), 2000)
    x = data.get_batch(torch.randperm(len(data), generator=gen)[:count]).numpy()
    z = torch.randn(count, model.latent_dim, generator=gen)
    samples = decode_chunked(model, z, device=device, sample_shape=data.sample_shape).numpy()
    save_scatter(x, samples, folder / "samples.png", title="first two coordinates")
    return [folder / "samples.png"]


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
    records: Sequence[Mapping[str, float]], path: str | os.PathLike[str]
) -> None:
    """Loss per logging interval and per epoch (left) and held-out metrics per epoch (right)."""
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
    loss_ax.set_yscale("log")
    loss_ax.set_title("training loss")
    loss_ax.legend()
    evals = [r for r in records if r.get("kind") == "eval" and "mmd" in r]
    for key in ("mmd", "sliced_w2"):
        eval_ax.plot([r["epoch"] for r in evals], [r[key] for r in evals], "o-", ms=3, label=key)
    eval_ax.set_xlabel("epoch")
    eval_ax.set_yscale("log")
    eval_ax.set_title("held-out metrics")
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
