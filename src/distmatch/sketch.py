"""Sketches of data sets: means of random Fourier features, for compressive learning.

A data set is compressed in one pass into the sketch ``z = mean_i phi(x_i)`` of the features::

    phi(x) = [cos(Omega^T x + xi); sin(Omega^T x + xi)] / sqrt(m)          (2m,)

with ``m`` frequencies ``Omega`` (D, m) drawn from a law (:data:`LAWS`) and an optional dither
``xi``. ``|z_X - z_Y|^2`` estimates MMD^2 for the kernel whose Fourier transform is the frequency
law, so a generator can be trained from ``z`` alone (:func:`sketch_distance`). A :class:`Sketch`
keeps the float64 sum and the count, so sketches of shards merge exactly; it is saved as ``.npz``.

Typical use (CL-GN recipe: data in the unit ball, m = 10,000, folded Gaussian, bandwidth^2 = 1e-3)::

    features = FourierFeatures(2, 10_000, bandwidth=math.sqrt(1e-3), generator=g)
    s = sketch_dataset(x, features, scale=unit_ball_scaling(x))
    loss = sketch_distance(s, generator_net(z))      # samples in the scaled coordinates

Reference: Schellekens & Jacques, "Compressive Learning of Generative Networks", ESANN 2020
(arXiv:2002.05095), eq. (1) and (6); Keriven et al., "Sketching for large-scale learning of mixture
models", 2018; the pycle 1.2 toolbox.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ._io import atomic_path
from ._sketch_laws import (
    LAWS,
    as_float64,
    check_vector,
    draw_frequencies,
    estimate_bandwidth,
    gaussian_mixture_sketch,
    gaussian_sketch,
    inverse_sqrt_cov,
)
from ._sketch_privacy import Privacy, private_sketch
from .distances._checks import check_choice, check_positive, check_positive_int, check_samples
from .distances._fused import fused

__all__ = [
    "LAWS",
    "FourierFeatures",
    "Privacy",
    "Sketch",
    "SketchError",
    "estimate_bandwidth",
    "gaussian_mixture_sketch",
    "gaussian_sketch",
    "private_sketch",
    "sketch_dataset",
    "sketch_distance",
    "unit_ball_scaling",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# First Fourier coefficient of sign(cos t): the decoder gain of universal 1-bit sketches.
QUANTIZED_GAIN = 4 / math.pi
# Elements of one (rows, m) block of phases: 64 MiB in float32, so the workspace stays small
# whatever batch_size is, and big enough for the matrix product to run at full speed.
_BLOCK_ELEMENTS = 1 << 24


class SketchError(ValueError):
    """A sketch file that cannot be read: not an .npz, a foreign or corrupt one, a newer format."""


class FourierFeatures(nn.Module):
    """Random Fourier features ``phi(x) = [cos(x Omega + xi), sin(x Omega + xi)] / sqrt(m)``.

    The frequencies are ``omega_j = R_j Sigma^{-1/2} u_j / bandwidth`` (:data:`LAWS`): ``bandwidth``
    divides the frequencies, so it multiplies the length scale of the kernel (for the Gaussian law
    the kernel is exactly ``exp(-|x - y|^2 / (2 bandwidth^2))``). Frequencies and dither are drawn
    once, in float64, and kept as buffers of the default dtype (part of the state dict). Inputs of
    another dtype or device use a converted copy; the output follows the input.

    Quantized (universal 1-bit) features are ``[sign(cos(.)), sign(sin(.))] / sqrt(m)``; they need
    the uniform dither, without which the quantization error does not average out.

    Args:
        dim: D, the dimension of the data.
        n_frequencies: m; the features have 2m entries.
        law: name in :data:`LAWS` (``"gaussian"``, ``"folded_gaussian"``, ``"adapted_radius"``).
        bandwidth: the kernel's length scale, > 0 (CL-GN: ``sqrt(1e-3)`` on data in the unit ball).
        cov: optional (D, D) symmetric positive-definite shape matrix ``Sigma``.
        dither: draw ``xi`` uniform on ``[0, 2 pi)``; zeros otherwise.
        quantized: 1-bit features (requires ``dither=True``).
        generator: source of the frequencies and the dither.

    Attributes:
        frequencies: (D, m) buffer ``Omega``.
        dither: (m,) buffer ``xi`` (zeros without dither).
        dim, n_frequencies, law, bandwidth, cov, quantized: as given (``cov`` as a float64 tensor;
            ``law`` and ``bandwidth`` are ``None`` for :meth:`from_frequencies` without them).
        dithered: whether ``xi`` was drawn.

    Raises:
        TypeError, ValueError: bad options (the message names the argument).

    Example:
        >>> features = FourierFeatures(2, 1000, bandwidth=0.1)
        >>> features(torch.randn(5, 2)).shape
        torch.Size([5, 2000])

    Reference:
        Rahimi & Recht 2007; Schellekens & Jacques 2020, eq. (1); pycle ``drawFrequencies``.
    """

    frequencies: torch.Tensor
    dither: torch.Tensor

    def __init__(
        self,
        dim: int,
        n_frequencies: int,
        *,
        law: str = "folded_gaussian",
        bandwidth: float = 1.0,
        cov: torch.Tensor | np.ndarray | None = None,
        dither: bool = False,
        quantized: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(dim, "dim")
        check_positive_int(n_frequencies, "n_frequencies")
        check_choice(law, "law", LAWS)
        check_positive(bandwidth, "bandwidth")
        _check_flags(dither, quantized)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}.")
        cov_inv_sqrt = None if cov is None else inverse_sqrt_cov(cov, dim)
        omega = draw_frequencies(dim, n_frequencies, law, bandwidth, cov_inv_sqrt, generator)
        if dither:
            device = "cpu" if generator is None else generator.device
            xi = torch.rand(n_frequencies, generator=generator, dtype=torch.float64, device=device)
            xi = 2 * math.pi * xi.cpu()  # (m,)
        else:
            xi = torch.zeros(n_frequencies, dtype=torch.float64)
        dtype = torch.get_default_dtype()
        cov = None if cov is None else as_float64(cov, "cov")
        self._set(omega.to(dtype), xi.to(dtype), law, bandwidth, cov, bool(dither), quantized)

    def _set(self, omega, xi, law, bandwidth, cov, dithered, quantized) -> None:
        self.register_buffer("frequencies", omega)  # (D, m)
        self.register_buffer("dither", xi)  # (m,)
        self.dim, self.n_frequencies = omega.shape
        self.law, self.bandwidth, self.cov = law, bandwidth, cov
        self.dithered, self.quantized = dithered, bool(quantized)

    @classmethod
    def from_frequencies(
        cls,
        frequencies: torch.Tensor,
        dither: torch.Tensor | None = None,
        *,
        quantized: bool = False,
        law: str | None = None,
        bandwidth: float | None = None,
        cov: torch.Tensor | None = None,
    ) -> FourierFeatures:
        """Features with given frequencies (D, m) and dither (m,); law/bandwidth/cov as metadata.

        Raises:
            TypeError, ValueError: malformed arrays, or ``quantized`` without a dither.
        """
        omega = _check_array(frequencies, "frequencies", 2)  # (D, m)
        dithered = dither is not None
        xi = torch.zeros_like(omega[0]) if dither is None else _check_array(dither, "dither", 1)
        if xi.shape != omega.shape[1:]:
            raise ValueError(
                f"dither must have shape ({omega.shape[1]},); got shape {tuple(xi.shape)}."
            )
        _check_flags(dithered, quantized)
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self._set(omega, xi, law, bandwidth, cov, dithered, quantized)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of ``x`` (N, D): (N, 2m), in the dtype and on the device of ``x``."""
        x = check_samples(x, "x")
        _check_dim(x, self.dim, "x")
        omega = self.frequencies.to(x.device, x.dtype)  # (D, m)
        t = torch.addmm(self.dither.to(x.device, x.dtype), x, omega)  # (N, m)
        cos, sin = t.cos(), t.sin()  # (N, m)
        if self.quantized:
            cos, sin = cos.sign(), sin.sign()
        return torch.cat([cos, sin], dim=1).mul_(1 / math.sqrt(self.n_frequencies))  # (N, 2m)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, n_frequencies={self.n_frequencies}, law={self.law!r}, "
            f"bandwidth={self.bandwidth}, dither={self.dithered}, quantized={self.quantized}"
        )


def _check_flags(dither: object, quantized: object) -> None:
    for name, value in (("dither", dither), ("quantized", quantized)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool; got {type(value).__name__}.")
    if quantized and not dither:
        raise ValueError(
            "dither must be True when quantized=True (1-bit features need a uniform dither); "
            "got dither=False."
        )


def _check_array(value: object, name: str, ndim: int) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(value)) if isinstance(value, np.ndarray) else value
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got {type(value).__name__}.")
    if t.dim() != ndim or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D array; got shape {tuple(t.shape)}.")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must contain only finite values; got NaN or inf entries.")
    return t.detach().clone()


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


# --- sketches ------------------------------------------------------------------------------------


class Sketch:
    """Float64 sum and count of the features of a data set; its mean is the sketch ``z``.

    The data are mapped by ``x -> (x - center) / scale`` before the features (e.g. into the unit
    ball, :func:`unit_ball_scaling`); samples compared with the sketch live in these scaled
    coordinates, and a sampler undoes the map with ``y * scale + center``.

    Args:
        features: the feature map.
        center: (D,) offset subtracted from the data, or ``None``.
        scale: divisor of the data, > 0.

    Raises:
        TypeError, ValueError: bad features, center or scale.

    Example:
        >>> s = Sketch(FourierFeatures(2, 100)).update(torch.randn(50, 2))
        >>> s.mean.shape, s.count
        (torch.Size([200]), 50)
    """

    def __init__(
        self,
        features: FourierFeatures,
        *,
        center: torch.Tensor | np.ndarray | None = None,
        scale: float = 1.0,
    ) -> None:
        if not isinstance(features, FourierFeatures):
            raise TypeError(f"features must be a FourierFeatures; got {type(features).__name__}.")
        self._features = features
        self._center = None if center is None else check_vector(center, features.dim, "center")
        self._scale = check_positive(scale, "scale")
        self._sum = torch.zeros(2 * features.n_frequencies, dtype=torch.float64)  # (2m,)
        self._count = 0
        self._privacy: Privacy | None = None
        self._cache: dict[tuple, tuple] = {}
        # Where the data came from, e.g. a toy's name: readers may draw fresh held-out points.
        self.source: str | None = None

    features = property(lambda self: self._features, doc="The feature map (FourierFeatures).")
    center = property(lambda self: self._center, doc="(D,) float64 offset, or None.")
    scale = property(lambda self: self._scale, doc="Divisor of the centred data.")
    sum = property(lambda self: self._sum, doc="(2m,) float64 sum of the features (on CPU).")
    count = property(lambda self: self._count, doc="Number of samples summed (noisy if private).")
    privacy = property(lambda self: self._privacy, doc="Privacy record, or None if not private.")

    @property
    def mean(self) -> torch.Tensor:
        """(2m,) float64 sketch ``sum / count``."""
        if self._count < 1:
            raise ValueError(f"sketch must hold at least one sample; got count={self._count}.")
        return self._sum / self._count

    def update(self, x: torch.Tensor | np.ndarray) -> Sketch:
        """Adds the samples ``x`` (N, D), given in the data's own coordinates; returns ``self``."""
        if self._privacy is not None:
            raise ValueError("sketch must not be private to take new data; got a private sketch.")
        chunk = _as_chunk(x, self._features.dim)
        summer = _FeatureSummer(
            self._features, self._center, self._scale, self._features.frequencies.device, False
        )
        summer.add(chunk)
        self._add(summer.total, summer.count)
        return self

    def _add(self, total: torch.Tensor, count: int) -> None:
        self._sum += total.reshape(-1).cpu() / math.sqrt(self._features.n_frequencies)
        self._count += count

    def merge(self, other: Sketch) -> Sketch:
        """Adds the sum and count of ``other`` to this sketch (in place); returns ``self``.

        Exact up to float64 round-off and independent of the order of merges (commutative exactly,
        associative to round-off). Both sketches must share frequencies, dither, quantization and
        scaling, and the same privacy record (parallel composition: disjoint private shards keep
        their common guarantee).
        """
        if not isinstance(other, Sketch):
            raise TypeError(f"other must be a Sketch; got {type(other).__name__}.")
        if not _same_features(self._features, other._features):
            raise ValueError(
                "other must have the same frequencies, dither and quantization as this sketch; "
                "got a different feature map."
            )
        if self._scale != other._scale or not _same_center(self._center, other._center):
            raise ValueError(
                "other must have the same scaling (center, scale) as this sketch; got "
                f"scale={other._scale} vs {self._scale} or a different center."
            )
        if self._privacy != other._privacy:
            raise ValueError(
                "other must have the same privacy record as this sketch; got "
                f"{other._privacy} vs {self._privacy}."
            )
        self._sum += other._sum
        self._count += other._count
        if self.source != other.source:
            self.source = None  # a mixture of sources is no longer one data set
        return self

    def copy(self) -> Sketch:
        """An independent copy (the feature map is shared: it is never modified)."""
        new = Sketch(self._features, center=self._center, scale=self._scale)
        new._sum, new._count, new._privacy = self._sum.clone(), self._count, self._privacy
        new.source = self.source
        return new

    def _constants(self, device: torch.device, dtype: torch.dtype):
        """Frequencies, dither and mean on ``device`` in ``dtype``, cached between calls."""
        f = self._features
        version = (id(f.frequencies), f.frequencies._version, f.dither._version)
        version += (self._sum._version, self._count)
        hit = self._cache.get((device, dtype))
        if hit is None or hit[0] != version:
            mean = self.mean
            omega = f.frequencies.detach().to(device, dtype)  # (D, m)
            hit = (version, (omega, f.dither.detach().to(device, dtype), mean.to(device, dtype)))
            self._cache = {(device, dtype): hit}
        return hit[1]

    def __repr__(self) -> str:
        f = self._features
        private = "" if self._privacy is None else f", epsilon={self._privacy.epsilon}"
        return (
            f"Sketch(dim={f.dim}, m={f.n_frequencies}, count={self._count}, law={f.law!r}, "
            f"bandwidth={f.bandwidth}, scale={self._scale}{private})"
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the sketch to ``path`` as ``.npz`` (no pickle), atomically."""
        f = self._features
        empty = np.zeros(0)
        arrays = {
            "format_version": np.int64(FORMAT_VERSION),
            "frequencies": f.frequencies.detach().cpu().numpy(),
            "dither": f.dither.detach().cpu().numpy(),
            "law": np.str_(f.law or ""),
            "bandwidth": np.float64(np.nan if f.bandwidth is None else f.bandwidth),
            "cov": empty if f.cov is None else as_float64(f.cov, "cov").numpy(),
            "dim": np.int64(f.dim),
            "dithered": np.bool_(f.dithered),
            "quantized": np.bool_(f.quantized),
            "center": empty if self._center is None else self._center.numpy(),
            "scale": np.float64(self._scale),
            "sum": self._sum.numpy(),
            "count": np.int64(self._count),
            "source": np.str_(self.source or ""),
        }
        if self._privacy is not None:
            arrays.update({f"dp_{k}": np.asarray(v) for k, v in vars(self._privacy).items()})
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Sketch:
        """Reads a sketch written by :meth:`save` (``allow_pickle=False``).

        Raises:
            FileNotFoundError: no file at ``path``.
            SketchError: not an ``.npz``, a foreign or corrupt one, an unsupported format version.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"sketch file must exist; got no file at '{path}'.")
        try:
            npz = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise SketchError(
                f"sketch file must be an .npz archive; got '{path}' ({err})."
            ) from None
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise SketchError(f"sketch file must be an .npz archive; got a .npy array in '{path}'.")
        with npz:
            missing = sorted(_KEYS - set(npz.files))
            if missing:
                raise SketchError(
                    f"sketch file must hold the keys of Sketch.save; got '{path}' without {missing}."
                )
            try:
                arrays = {key: npz[key] for key in npz.files}
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
                raise SketchError(f"sketch file must be readable; got '{path}' ({err}).") from None
        version = arrays["format_version"]
        if version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
            raise SketchError(
                f"sketch file format_version must be {FORMAT_VERSION}; got {version!s}."
            )
        try:
            return _from_arrays(arrays)
        except (TypeError, ValueError) as err:
            raise SketchError(f"sketch file '{path}' is corrupt: {err}") from None


_KEYS = {
    "format_version", "frequencies", "dither", "law", "bandwidth", "cov", "dim", "dithered",
    "quantized", "center", "scale", "sum", "count",
}  # fmt: skip


def _from_arrays(a: dict[str, np.ndarray]) -> Sketch:
    bandwidth = float(a["bandwidth"])
    features = FourierFeatures.from_frequencies(
        torch.from_numpy(a["frequencies"]),
        torch.from_numpy(a["dither"]) if bool(a["dithered"]) else None,
        quantized=bool(a["quantized"]),
        law=str(a["law"]) or None,
        bandwidth=None if math.isnan(bandwidth) else bandwidth,
        cov=torch.from_numpy(a["cov"]) if a["cov"].size else None,
    )
    if int(a["dim"]) != features.dim:
        raise ValueError(
            f"dim must equal the rows of frequencies ({features.dim}); got {a['dim']}."
        )
    if not bool(a["dithered"]) and np.any(a["dither"]):
        raise ValueError("dither must be zeros when dithered is False; got non-zero entries.")
    center = a["center"] if a["center"].size else None
    sketch = Sketch(features, center=center, scale=float(a["scale"]))
    total = np.asarray(a["sum"], dtype=np.float64)
    if total.shape != (2 * features.n_frequencies,) or not np.isfinite(total).all():
        raise ValueError(
            f"sum must be {2 * features.n_frequencies} finite values; got {total.shape}."
        )
    if a["count"].dtype.kind not in "iu" or int(a["count"]) < 0:
        raise ValueError(f"count must be an integer >= 0; got {a['count']}.")
    sketch._sum, sketch._count = torch.from_numpy(total.copy()), int(a["count"])
    if "source" in a:  # optional: absent in files of other writers
        sketch.source = str(a["source"]) or None
    if "dp_epsilon" in a:
        fields = ("epsilon", "delta", "mechanism", "neighbours", "noise_scale", "count_noise_scale")
        values = [a[f"dp_{k}"].item() for k in fields]
        sketch._privacy = Privacy(*values)
    return sketch


def _same_features(a: FourierFeatures, b: FourierFeatures) -> bool:
    if a is b:
        return True
    if (a.dim, a.n_frequencies, a.quantized) != (b.dim, b.n_frequencies, b.quantized):
        return False
    same = torch.equal(a.frequencies.detach().cpu().double(), b.frequencies.detach().cpu().double())
    return same and torch.equal(a.dither.detach().cpu().double(), b.dither.detach().cpu().double())


def _same_center(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


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
        >>> s = sketch_dataset(torch.rand(1000, 2), FourierFeatures(2, 100), progress=False)
    """
    check_positive_int(batch_size, "batch_size")
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
        raise ValueError("data must hold at least one sample; got 0.")
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
    if count == 0:
        raise ValueError("data must hold at least one sample; got 0.")
    return largest + 1e-6


def sketch_distance(sketch: Sketch, samples: torch.Tensor) -> torch.Tensor:
    """Squared distance ``|g mean_i phi(y_i) - z|^2`` between the samples' features and the sketch.

    ``samples`` are in the sketch's scaled coordinates. ``g = 1`` for full-precision sketches. For
    quantized sketches the samples' features are full precision and ``g = 4/pi``, the first Fourier
    coefficient of ``sign(cos t)``: with ``u`` uniform, ``E_u[sign(cos u) cos(u + d)] =
    E_u[sign(sin u) sin(u + d)] = (2/pi) cos d``, so the cross term estimates ``(4/pi) k(x, y)`` and
    ``g^2 k(y, y') - 2 g (4/pi) k(x, y)`` is proportional to the MMD^2 terms only for ``g = 4/pi``.

    Gradient in closed form (one autograd node, first order only), with ``t = y Omega + xi`` and
    the residual ``r = [r_c; r_s]``::

        d/dy_i = (2 g / (N sqrt(m))) sum_j (cos t_ij r_s,j - sin t_ij r_c,j) omega_j

    Args:
        sketch: the data sketch (count >= 1).
        samples: (N, D) floating tensor; dtype and device of the result follow it.

    Returns:
        0-d tensor, differentiable with respect to ``samples``.

    Raises:
        TypeError, ValueError: malformed samples, a wrong dimension, an empty sketch.

    Example:
        >>> s = sketch_dataset(torch.rand(500, 2), FourierFeatures(2, 100), progress=False)
        >>> loss = sketch_distance(s, torch.rand(64, 2, requires_grad=True))

    Reference:
        Schellekens & Jacques 2020, eq. (6) and (7).
    """
    if not isinstance(sketch, Sketch):
        raise TypeError(f"sketch must be a Sketch; got {type(sketch).__name__}.")
    samples = check_samples(samples, "samples")
    _check_dim(samples, sketch.features.dim, "samples")
    omega, dither, target = sketch._constants(samples.device, samples.dtype)
    m = sketch.features.n_frequencies
    factor = (QUANTIZED_GAIN if sketch.features.quantized else 1.0) / math.sqrt(m)

    def compute(y: torch.Tensor, *, needs: tuple[bool, ...]):
        t = torch.addmm(dither, y, omega)  # (N, m)
        sin = torch.sin(t)  # (N, m)
        cos = t.cos_()  # (N, m)
        scale = factor / y.shape[0]
        r_c = cos.sum(dim=0).mul_(scale).sub_(target[:m])  # (m,)
        r_s = sin.sum(dim=0).mul_(scale).sub_(target[m:])  # (m,)
        value = r_c.square().sum() + r_s.square().sum()
        if not needs[0]:
            return value, (None,)
        w = cos.mul_(r_s).sub_(sin.mul_(r_c))  # (N, m)
        return value, ((2 * scale) * (w @ omega.T),)  # (N, D)

    return fused(compute, [samples])
