"""Image grids of samples, reconstructions and interpolations, with their titles (Pillow).

Part of :mod:`distmatch.report`, which re-exports the public names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .._core import atomic_path, check_positive_int
from ._figures import save_scatter

__all__ = [
    "chunk_size",
    "decode_chunked",
    "image_grid",
    "save_autoencoder_figures",
    "save_image_grid",
    "save_interpolations",
    "save_reconstructions",
]

TITLE_SIZE = 13  # pixels of the text above image grids


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
    check_positive_int(ncol, "ncol")
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad must be an int >= 0; got {pad!r}.")
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


def _titled(grid: np.ndarray, title: str | None, column_labels: Sequence[str] | None, ncol: int):
    """The grid with a white band above it: the title, then one label centred over each column
    (cycled when there are fewer labels than columns)."""
    if not title and not column_labels:
        return grid
    font = ImageFont.load_default(size=TITLE_SIZE)
    width = grid.shape[1]
    line = TITLE_SIZE + 6
    band = line * (bool(title) + bool(column_labels)) + 4
    image = Image.new("RGB", (width, grid.shape[0] + band), "white")
    image.paste(Image.fromarray(grid), (0, band))
    draw = ImageDraw.Draw(image)
    y = 3
    if title:
        draw.text((4, y), _fit(draw, title, font, width - 8), fill="black", font=font)
        y += line
    if column_labels:
        cell = width / ncol
        for c in range(ncol):
            label = _fit(draw, column_labels[c % len(column_labels)], font, cell - 2)
            draw.text((cell * (c + 0.5), y), label, fill="#404040", font=font, anchor="ma")
    return np.asarray(image)


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    """``text``, shortened with an ellipsis until it fits ``width`` pixels."""
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def save_image_grid(
    images: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    ncol: int = 8,
    title: str | None = None,
    column_labels: Sequence[str] | None = None,
) -> None:
    """Writes ``images`` (N, C, H, W) in [0, 1] as one PNG grid (atomically), with an optional
    title and labels over the columns."""
    grid = _titled(image_grid(images, ncol=ncol), title, column_labels, ncol)
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")


def save_reconstructions(
    originals: torch.Tensor, reconstructions: torch.Tensor, path: str | os.PathLike[str]
) -> None:
    """Pairs each original with its reconstruction: columns alternate original, reconstruction."""
    if originals.shape != reconstructions.shape:
        raise ValueError(
            f"reconstructions must have the originals' shape {tuple(originals.shape)}; got "
            f"{tuple(reconstructions.shape)}."
        )
    pairs = torch.stack([originals, reconstructions], dim=1).flatten(0, 1)  # (2N, C, H, W)
    ncol = 2 * max(1, min(8, int(np.ceil(np.sqrt(originals.shape[0])))))
    save_image_grid(
        pairs,
        path,
        ncol=ncol,
        title="reconstructions: each test image beside its reconstruction",
        column_labels=("test", "rec."),
    )


def save_interpolations(paths: torch.Tensor, path: str | os.PathLike[str]) -> None:
    """One row per interpolation: (R, T, C, H, W), the endpoints are the decoded test images."""
    save_image_grid(
        paths.flatten(0, 1),
        path,
        ncol=paths.shape[1],
        title="interpolations: decode((1 - t) z_a + t z_b), z_a, z_b codes of two test images",
        column_labels=[f"t={t:.2g}" for t in np.linspace(0, 1, paths.shape[1])],
    )


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
        save_image_grid(samples, folder / "samples.png", title="samples: decoded N(0, I) draws")
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
