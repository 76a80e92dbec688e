"""Sketches of data sets: means of random Fourier features, for compressive learning.

A data set is compressed in one pass into the sketch ``z = mean_i phi(x_i)`` of the features::

    phi(x) = [cos(Omega^T x + xi); sin(Omega^T x + xi)] / sqrt(m)          (2m,)

with ``m`` frequencies ``Omega`` (D, m) drawn from a law (:data:`LAWS`) and an optional dither
``xi``. ``|z_X - z_Y|^2`` estimates MMD^2 for the kernel whose Fourier transform is the frequency
law, so a generator can be trained from ``z`` alone (:func:`sketch_distance`). A :class:`Sketch`
keeps the float64 sum and the count, so sketches of shards merge exactly; it is saved as ``.npz``.

The one-pass data iteration lives in :mod:`distmatch._sketch_pass` and the file format in
:mod:`distmatch._sketch_io`; their names are re-exported here.

Typical use (CL-GN recipe: data in the unit ball, m = 10,000, folded Gaussian, bandwidth^2 = 1e-3)::

    features = FourierFeatures(2, 10_000, bandwidth=math.sqrt(1e-3), generator=g)
    s = sketch_dataset(x, features, scale=unit_ball_scaling(x))
    loss = sketch_distance(s, generator_net(z))      # samples in the scaled coordinates

Reference: Schellekens & Jacques, "Compressive Learning of Generative Networks", ESANN 2020
(arXiv:2002.05095), eq. (1) and (6); Keriven et al., "Sketching for large-scale learning of mixture
models", 2018; the pycle 1.2 toolbox.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import nn

# Moved names stay importable from here, private ones included (the redundant aliases mark them
# as re-exports).
from ._sketch_io import _KEYS as _KEYS
from ._sketch_io import FORMAT_VERSION as FORMAT_VERSION
from ._sketch_io import SketchError, load_sketch, save_sketch
from ._sketch_io import _from_arrays as _from_arrays
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
from ._sketch_pass import _BLOCK_ELEMENTS as _BLOCK_ELEMENTS
from ._sketch_pass import _as_chunk, _check_dim, _FeatureSummer, sketch_dataset, unit_ball_scaling
from ._sketch_pass import _chunks as _chunks
from ._sketch_pass import _phase_sums as _phase_sums
from ._sketch_pass import _resolve_device as _resolve_device
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

# First Fourier coefficient of sign(cos t): the decoder gain of universal 1-bit sketches.
QUANTIZED_GAIN = 4 / math.pi


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
        save_sketch(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Sketch:
        """Reads a sketch written by :meth:`save` (``allow_pickle=False``).

        Raises:
            FileNotFoundError: no file at ``path``.
            SketchError: not an ``.npz``, a foreign or corrupt one, an unsupported format version.
        """
        return load_sketch(path)


def _same_features(a: FourierFeatures, b: FourierFeatures) -> bool:
    if a is b:
        return True
    if (a.dim, a.n_frequencies, a.quantized) != (b.dim, b.n_frequencies, b.quantized):
        return False
    same = torch.equal(a.frequencies.detach().cpu().double(), b.frequencies.detach().cpu().double())
    return same and torch.equal(a.dither.detach().cpu().double(), b.dither.detach().cpu().double())


def _same_center(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


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
