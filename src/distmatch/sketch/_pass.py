"""One pass over a data set: its sketch, and the scale that maps it into the unit ball.

Part of :mod:`distmatch.sketch`, which re-exports the public names. Both run in one process or,
with ``across_ranks``, over the ranks of a ``torchrun`` launch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import distributed
from .._core import check_positive_int, compiler_available, resolve_device
from ._chunks import as_chunk, chunks
from ._features import FeatureSummer, FourierFeatures
from ._fused import fused_available
from ._laws import check_vector
from ._sketch import Sketch

__all__ = ["sketch_dataset", "unit_ball_scaling"]

logger = logging.getLogger("distmatch.sketch")


def _local_shard(data: object, batch_size: int) -> object:
    """Arrays and tensors: this rank's run of whole chunks; any other iterable: as given."""
    if isinstance(data, torch.Tensor | np.ndarray):
        w = distributed.world()
        return data[distributed.shard_rows(data.shape[0], batch_size, w.rank, w.size)]
    return data


def _check_same_everywhere(features: FourierFeatures, center, scale: float) -> None:
    """Raises unless every rank has the same frequencies, dither and scaling (one all-reduce)."""
    omega, xi = features.frequencies.detach().double().cpu(), features.dither.detach().double()
    c = 0.0 if center is None else float(np.asarray(center, dtype=np.float64).sum())
    moments = [omega.sum(), omega.square().sum(), xi.sum(), xi.square().sum()]
    values = torch.tensor([features.dim, features.n_frequencies, *moments, scale, c])
    if not distributed.same_everywhere(values.to(torch.float64)):
        raise ValueError(
            "features and scaling must be the same on every rank (frequencies drawn from one "
            "seed, one center and scale); got differences between ranks."
        )


def sketch_dataset(
    data: torch.Tensor | np.ndarray | Iterable,
    features: FourierFeatures,
    *,
    batch_size: int = 10_000,
    center: torch.Tensor | np.ndarray | None = None,
    scale: float = 1.0,
    device: str | torch.device = "auto",
    progress: bool = True,
    compile: bool | str = "auto",
    across_ranks: bool = False,
    fused: bool = False,
) -> Sketch:
    """Sketch of a whole data set in one pass: ``Sketch(features, center, scale).update(...)``.

    Reads ``batch_size`` samples at a time, so memory maps larger than RAM stream from disk. Each
    chunk is split into blocks of about 2^24 phases; per block the features are summed without
    storing them (``t = x Omega + xi`` once, then ``cos`` and ``sin`` in place), and the sums are
    accumulated in float64. Computation runs in the data's floating dtype (float32 or float64;
    other numbers become float32).

    On CUDA keep float32 matrix products at full precision (no TF32): phases ``x Omega`` reach
    hundreds of radians, and TF32's 10-bit mantissa would shift them by tenths of a radian.

    Args:
        data: (N, D) tensor or numpy array (``np.load(..., mmap_mode="r")`` included), a torch
            ``DataLoader`` (batches are tensors or ``(x, y)`` tuples, of which ``x`` is used), or
            any iterable of (B, D) chunks.
        features: the feature map (copies of its buffers go to ``device``; it is not moved).
        batch_size: samples read at a time from tensors and arrays.
        center: (D,) offset of the affine map ``x -> (x - center) / scale``, or ``None``.
        scale: divisor of that map, > 0 (e.g. :func:`unit_ball_scaling`).
        device: ``"auto"`` (CUDA when available), or a device.
        progress: show a tqdm bar with samples/s.
        compile: ``torch.compile`` the per-block sums (falls back, with a warning, if it fails);
            ``"auto"`` (default): on CUDA where Triton is present (one fused kernel reads the
            phases once: 1.29x the bare product ``x Omega`` on an H200 at D = 784, against 1.39x
            eager), never on the CPU (where eager sums are as fast and need no build time).
        across_ranks: under ``torchrun``, each rank sketches its shard and every rank returns
            the sketch of all the data (no effect in one process). Arrays and tensors (the same on
            every rank, e.g. one memory map) are cut into contiguous runs of whole ``batch_size``
            chunks (:func:`distmatch.distributed.shard_rows`), so each chunk's float32 block sums
            are those of one pass; any other iterable (e.g. a DataLoader with a
            DistributedSampler) is taken as this rank's shard. The float64 sums ``S_r`` and counts
            ``n_r`` are all-reduced (2m + 1 float64): the result equals the one-pass sketch up to
            float64 round-off. Frequencies and scaling must be the same on every rank (checked);
            the progress bar is rank 0's.
        fused: on CUDA, each float32 chunk through one Triton kernel that computes the product,
            the cosines, the sines and their column sums in registers, never writing the (B, m)
            phases (:mod:`distmatch.sketch._fused`); needs Triton. Off by default until it is
            timed against the compiled sums on a GPU (``benchmarks/sketch_throughput.py
            --fused``). Float64 data take the other path.

    Returns:
        The :class:`Sketch` (on CPU).

    Raises:
        TypeError, ValueError: unsupported data, a wrong dimension, no samples, NaN/inf values,
            features or scaling that differ between ranks.

    Example:
        >>> from distmatch.sketch import FourierFeatures
        >>> s = sketch_dataset(torch.rand(1000, 2), FourierFeatures(2, 100), progress=False)
    """
    check_positive_int(batch_size, "batch_size")
    ranks = across_ranks and distributed.is_active()
    if ranks:
        _check_same_everywhere(features, center, scale)
        data = _local_shard(data, batch_size)
    sketch = Sketch(features, center=center, scale=scale)
    stream, total = chunks(data, batch_size)
    device = resolve_device(device)
    if compile == "auto":
        compile = device.type == "cuda" and compiler_available(device)
    elif not isinstance(compile, bool):
        raise ValueError(f"compile must be True, False or 'auto'; got {compile!r}.")
    if fused and not fused_available(device):
        raise ValueError(
            f"fused=True needs a CUDA device and Triton; got device {device.type}"
            f"{' without Triton' if device.type == 'cuda' else ''}."
        )
    summer = FeatureSummer(features, sketch.center, sketch.scale, device, compile, fused)
    start = time.perf_counter()
    shown = progress and (not ranks or distributed.is_main())
    with tqdm(
        total=total, unit="samples", unit_scale=True, desc="sketch", disable=not shown
    ) as bar:
        for chunk in stream:
            x = as_chunk(chunk, features.dim)
            summer.add(x)
            bar.update(x.shape[0])
    sums = torch.cat([summer.total.reshape(-1), summer.total.new_tensor([float(summer.count)])])
    sums = distributed.all_reduce(sums) if ranks else sums  # (2m + 1,) float64
    count = round(float(sums[-1]))
    if count == 0:
        raise ValueError("data must hold at least one sample; got 0.")
    sketch.add_sums(sums[:-1], count)
    seconds = time.perf_counter() - start
    logger.info(
        "sketched %d samples (D=%d, m=%d) in %.2f s, %.0f samples/s",
        count, features.dim, features.n_frequencies, seconds, count / seconds,
    )  # fmt: skip
    return sketch


def unit_ball_scaling(
    data: torch.Tensor | np.ndarray | Iterable,
    *,
    center: torch.Tensor | np.ndarray | None = None,
    batch_size: int = 100_000,
    across_ranks: bool = False,
) -> float:
    """``max_i |x_i - center| + 1e-6``: the ``scale`` that maps the data into the unit ball.

    One pass over ``data`` (same inputs as :func:`sketch_dataset`), in float64; the CL-GN reference
    divides its data by this (without centring). With ``across_ranks`` each rank reads its shard
    (as :func:`sketch_dataset` does) and the maximum is all-reduced: exactly the one-pass value.

    Raises:
        TypeError, ValueError: unsupported or empty data, NaN/inf values.
    """
    check_positive_int(batch_size, "batch_size")
    ranks = across_ranks and distributed.is_active()
    if ranks:
        data = _local_shard(data, batch_size)
    largest, count = _largest_norm(data, center, batch_size)
    if ranks:
        largest = float(distributed.all_reduce(torch.tensor([largest], dtype=torch.float64), "max"))
        count = round(float(distributed.all_reduce(torch.tensor([float(count)]))))
    if count == 0:
        raise ValueError("data must hold at least one sample; got 0.")
    return largest + 1e-6


def _largest_norm(data, center, batch_size: int) -> tuple[float, int]:
    """``(max_i |x_i - center|, N)`` in float64 over one pass; ``(0.0, 0)`` without data."""
    stream, _ = chunks(data, batch_size)
    largest, count, dim, c = 0.0, 0, None, None
    for raw in stream:
        x = as_chunk(raw, dim)
        if dim is None:
            dim = x.shape[1]
            c = None if center is None else check_vector(center, dim, "center")
        x = x.double() if c is None else x.double() - c.to(x.device)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("data must contain only finite values; got NaN or inf entries.")
        if x.shape[0]:
            largest = max(largest, float(torch.linalg.vector_norm(x, dim=1).max()))
        count += x.shape[0]
    return largest, count
