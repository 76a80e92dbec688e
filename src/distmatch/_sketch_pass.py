"""One pass over a data set: chunks of every data source and float64 block sums of the features.

Part of :mod:`distmatch.sketch`, which re-exports the public names (:func:`sketch_dataset`,
:func:`unit_ball_scaling`); import them from there. The :class:`~distmatch.sketch.Sketch` that
:func:`sketch_dataset` returns is imported where it is built, since :mod:`distmatch.sketch`
imports this module.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from ._sketch_laws import check_vector
from .distances._checks import check_positive_int

if TYPE_CHECKING:
    from .sketch import FourierFeatures, Sketch

# Records keep the name of the public module, as before the split.
logger = logging.getLogger("distmatch.sketch")

# Elements of one (rows, m) block of phases: 64 MiB in float32, so the workspace stays small
# whatever batch_size is, and big enough for the matrix product to run at full speed.
_BLOCK_ELEMENTS = 1 << 24


def _check_dim(x: torch.Tensor, dim: int, name: str) -> None:
    if x.shape[1] != dim:
        raise ValueError(
            f"{name} must have D={dim} features to match the feature map; got {x.shape[1]}."
        )


# --- per-block feature sums --------------------------------------------------------------------


def _phase_sums(t: torch.Tensor, quantized: bool) -> torch.Tensor:
    """``sum_i [cos(t_i); sin(t_i)]`` (or their signs) of phases (B, m): (2, m) float64.

    The function given to ``torch.compile``, which fuses both functions and both sums into one
    read of ``t``; the eager path is in :meth:`_FeatureSummer._sums`.
    """
    cos, sin = torch.cos(t), torch.sin(t)  # (B, m)
    if quantized:
        cos, sin = cos.sign(), sin.sign()
    return torch.stack([cos.sum(0, dtype=torch.float64), sin.sum(0, dtype=torch.float64)])


class _FeatureSummer:
    """Float64 running sums of the features of chunks, on one device.

    The phases ``t = x Omega + xi`` of each block of rows are written into a reused ``(rows, m)``
    buffer (fresh buffers of this size cost page faults on every block on CPU, as much as the
    cosines themselves); then either the compiled :func:`_phase_sums` reads them once, or eager
    code writes the sines into a second buffer and the cosines in place and sums both.
    """

    def __init__(self, features: FourierFeatures, center, scale, device, compile: bool) -> None:
        self.device = torch.device(device)
        self.dim, self.m, self.quantized = features.dim, features.n_frequencies, features.quantized
        self._omega = features.frequencies.detach().to(self.device)  # (D, m)
        self._dither = features.dither.detach().to(self.device)  # (m,)
        self._center = None if center is None else center.to(self.device)
        self._scale = scale
        self._params: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
        self._work: list[torch.Tensor | None] = [None, None]
        self.rows = max(1, _BLOCK_ELEMENTS // self.m)
        self.total = torch.zeros(2, self.m, dtype=torch.float64, device=self.device)
        self.count = 0
        self._compiled = torch.compile(_phase_sums, dynamic=True) if compile else None

    def add(self, x: torch.Tensor) -> None:
        """Adds the features of the (B, D) chunk ``x`` (already of a floating dtype)."""
        x = x.to(self.device, non_blocking=True)
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(
                f"data must contain only finite values; got {bad} NaN or inf entries in rows "
                f"{self.count}..{self.count + x.shape[0] - 1}."
            )
        if self._center is not None:
            x = (x - self._center.to(x.dtype)) / self._scale
        elif self._scale != 1.0:
            x = x / self._scale
        if x.dtype not in self._params:
            self._params[x.dtype] = (self._omega.to(x.dtype), self._dither.to(x.dtype))
        omega, dither = self._params[x.dtype]
        for start in range(0, x.shape[0], self.rows):
            block = x[start : start + self.rows]  # (n, D)
            t = self._workspace(0, block.shape[0], x.dtype)
            torch.addmm(dither, block, omega, out=t)  # (n, m)
            self.total += self._sums(t)
        self.count += x.shape[0]

    def _sums(self, t: torch.Tensor) -> torch.Tensor:
        if self._compiled is not None:
            try:
                return self._compiled(t, self.quantized)
            except Exception as err:  # compilation needs a working toolchain; sketch without it
                warnings.warn(
                    f"torch.compile failed ({type(err).__name__}: {err}); sketching without it.",
                    RuntimeWarning,
                    stacklevel=4,
                )
                self._compiled = None
        s = self._workspace(1, t.shape[0], t.dtype)
        torch.sin(t, out=s)
        t.cos_()
        if self.quantized:
            t.sign_(), s.sign_()
        # float32 sums over at most `rows` rows; the running total is float64
        return torch.stack([t.sum(0), s.sum(0)])  # (2, m)

    def _workspace(self, index: int, n: int, dtype: torch.dtype) -> torch.Tensor:
        """Rows ``[:n]`` of reused buffer ``index`` (0: phases, 1: sines; allocated when needed)."""
        buffer = self._work[index]
        if buffer is None or buffer.shape[0] < n or buffer.dtype != dtype:
            rows = min(self.rows, max(n, 1))
            buffer = self._work[index] = torch.empty(rows, self.m, dtype=dtype, device=self.device)
        return buffer[:n]


# --- data ----------------------------------------------------------------------------------------


def _as_chunk(chunk: object, dim: int | None) -> torch.Tensor:
    """One (B, D) chunk as a floating tensor; ``(x, y)`` batches give ``x``; arrays are read here.

    ``D`` must equal ``dim`` unless ``dim`` is None.
    """
    if (
        isinstance(chunk, tuple | list)
        and chunk
        and isinstance(chunk[0], torch.Tensor | np.ndarray)
    ):
        chunk = chunk[0]
    if not isinstance(chunk, torch.Tensor):
        array = np.asarray(chunk)  # a memory-map slice stays on disk until copied below
        if array.dtype.kind not in "fiu":
            raise TypeError(f"data must hold numbers; got {type(chunk).__name__} of {array.dtype}.")
        dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float32
        if isinstance(array, np.memmap) or not array.flags.writeable or array.dtype != dtype:
            array = np.array(array, dtype=dtype, order="C")
        chunk = torch.from_numpy(np.ascontiguousarray(array))
    if chunk.dtype == torch.bool or chunk.is_complex():
        raise TypeError(f"data must hold real numbers; got dtype {chunk.dtype}.")
    if chunk.dim() != 2:
        raise ValueError(f"data chunks must be 2-D (B, D); got shape {tuple(chunk.shape)}.")
    if chunk.dtype not in (torch.float32, torch.float64):
        chunk = chunk.to(torch.get_default_dtype())
    if dim is not None:
        _check_dim(chunk, dim, "data")
    return chunk.detach()


def _chunks(data: object, batch_size: int) -> tuple[Iterator[object], int | None]:
    """Iterator over the raw chunks of ``data`` and the number of samples when it is known."""
    if isinstance(data, torch.Tensor | np.ndarray):
        if data.ndim != 2:
            raise ValueError(f"data must be 2-D (N, D); got shape {tuple(data.shape)}.")
        n = data.shape[0]
        return (data[i : i + batch_size] for i in range(0, n, batch_size)), n
    if isinstance(data, str | bytes | dict) or not isinstance(data, Iterable):
        raise TypeError(
            "data must be a tensor, a numpy array, a DataLoader or an iterable of (B, D) chunks; "
            f"got {type(data).__name__}."
        )
    dataset = getattr(data, "dataset", None)
    total = (
        len(dataset)
        if isinstance(data, torch.utils.data.DataLoader) and hasattr(dataset, "__len__")
        else None
    )
    return iter(data), total


# --- one pass ------------------------------------------------------------------------------------


def _resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def sketch_dataset(
    data: torch.Tensor | np.ndarray | Iterable,
    features: FourierFeatures,
    *,
    batch_size: int = 10_000,
    center: torch.Tensor | np.ndarray | None = None,
    scale: float = 1.0,
    device: str | torch.device = "auto",
    progress: bool = True,
    compile: bool = False,
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
        compile: ``torch.compile`` the per-block sums (falls back, with a warning, if it fails).

    Returns:
        The :class:`Sketch` (on CPU).

    Raises:
        TypeError, ValueError: unsupported data, a wrong dimension, no samples, NaN/inf values.

    Example:
        >>> from distmatch.sketch import FourierFeatures
        >>> s = sketch_dataset(torch.rand(1000, 2), FourierFeatures(2, 100), progress=False)
    """
    check_positive_int(batch_size, "batch_size")
    sketch = _sketch_rows(
        data, features, batch_size=batch_size, center=center, scale=scale, device=device,
        progress=progress, compile=compile,
    )  # fmt: skip
    if sketch.count == 0:
        raise ValueError("data must hold at least one sample; got 0.")
    return sketch


def _sketch_rows(data, features, *, batch_size, center, scale, device, progress, compile) -> Sketch:
    """The one pass of :func:`sketch_dataset`; no data gives an empty sketch (count 0)."""
    from .sketch import Sketch

    sketch = Sketch(features, center=center, scale=scale)
    chunks, total = _chunks(data, batch_size)
    summer = _FeatureSummer(features, sketch.center, sketch.scale, _resolve_device(device), compile)
    start = time.perf_counter()
    with tqdm(
        total=total, unit="samples", unit_scale=True, desc="sketch", disable=not progress
    ) as bar:
        for chunk in chunks:
            x = _as_chunk(chunk, features.dim)
            summer.add(x)
            bar.update(x.shape[0])
    if summer.count == 0:
        return sketch
    sketch._add(summer.total, summer.count)
    seconds = time.perf_counter() - start
    logger.info(
        "sketched %d samples (D=%d, m=%d) in %.2f s, %.0f samples/s",
        summer.count, features.dim, features.n_frequencies, seconds, summer.count / seconds,
    )  # fmt: skip
    return sketch


def unit_ball_scaling(
    data: torch.Tensor | np.ndarray | Iterable,
    *,
    center: torch.Tensor | np.ndarray | None = None,
    batch_size: int = 100_000,
) -> float:
    """``max_i |x_i - center| + 1e-6``: the ``scale`` that maps the data into the unit ball.

    One pass over ``data`` (same inputs as :func:`sketch_dataset`), in float64; the CL-GN reference
    divides its data by this (without centring).

    Raises:
        TypeError, ValueError: unsupported or empty data, NaN/inf values.
    """
    check_positive_int(batch_size, "batch_size")
    largest, count = _largest_norm(data, center, batch_size)
    if count == 0:
        raise ValueError("data must hold at least one sample; got 0.")
    return largest + 1e-6


def _largest_norm(data, center, batch_size: int) -> tuple[float, int]:
    """``(max_i |x_i - center|, N)`` in float64 over one pass; ``(0.0, 0)`` without data."""
    chunks, _ = _chunks(data, batch_size)
    largest, count, dim, c = 0.0, 0, None, None
    for raw in chunks:
        x = _as_chunk(raw, dim)
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
