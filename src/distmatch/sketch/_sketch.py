"""The sketch of a data set (float64 sum and count of its features) and the sketch distance.

Part of :mod:`distmatch.sketch`, which re-exports the public names.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from .. import distributed
from .._core import check_choice, check_positive, check_samples, fused
from ._chunks import as_chunk, check_dim
from ._features import (
    QUANTIZED_GAIN,
    FeatureSummer,
    FourierFeatures,
    cos_sin,
    phases,
    same_features,
)
from ._io import SketchError, read_sketch, read_sketch_with_classes, write_sketch
from ._laws import check_vector
from ._pieces import Piece, check_disjoint
from ._privacy import Privacy

__all__ = ["Sketch", "sketch_distance"]


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
        # What the data were, for readers (evaluation, samplers); none of it enters the features.
        self.source: str | None = None  # a toy's or data set's name: held-out points come from it
        self.data_dir: str | None = None  # where a registered data set's files were
        self.sample_shape: tuple[int, ...] | None = None  # (C, H, W) of images: samples reshape
        self.label: int | None = None  # the class of a per-class sketch (--by-label)
        self._pieces: tuple[Piece, ...] = ()

    features = property(lambda self: self._features, doc="The feature map (FourierFeatures).")
    center = property(lambda self: self._center, doc="(D,) float64 offset, or None.")
    scale = property(lambda self: self._scale, doc="Divisor of the centred data.")
    sum = property(lambda self: self._sum, doc="(2m,) float64 sum of the features (on CPU).")
    count = property(lambda self: self._count, doc="Number of samples summed (noisy if private).")
    privacy = property(lambda self: self._privacy, doc="Privacy record, or None if not private.")
    pieces = property(
        lambda self: self._pieces,
        doc="What was sketched: :class:`Piece` (data fingerprint, rows), empty where unknown.",
    )

    def record_piece(self, data: str, start: int, stop: int) -> Sketch:
        """Records that this sketch holds rows ``[start, stop)`` of the data set fingerprinted
        ``data`` (e.g. by :func:`file_fingerprint`), so that :meth:`merge` refuses to add the
        same rows twice; returns ``self``."""
        if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop):
            raise ValueError(f"rows must be 0 <= start <= stop; got start={start}, stop={stop}.")
        self._pieces = (*self._pieces, Piece(str(data), start, stop))
        return self

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
        chunk = as_chunk(x, self._features.dim)
        summer = FeatureSummer(
            self._features, self._center, self._scale, self._features.frequencies.device, False
        )
        summer.add(chunk)
        self.add_sums(summer.total, summer.count)
        return self

    def add_sums(self, total: torch.Tensor, count: int) -> Sketch:
        """Adds raw feature sums ``sum_i [cos t_i; sin t_i]`` ((2, m) or (2m,), without the
        ``1/sqrt(m)``) of ``count`` samples, e.g. a one-pass :class:`FeatureSummer`'s; returns
        ``self``."""
        if self._privacy is not None:
            raise ValueError("sketch must not be private to take new data; got a private sketch.")
        self._sum += total.reshape(-1).double().cpu() / math.sqrt(self._features.n_frequencies)
        self._count += int(count)
        return self

    def merge(self, other: Sketch) -> Sketch:
        """Adds the sum and count of ``other`` to this sketch (in place); returns ``self``.

        Exact up to float64 round-off and independent of the order of merges (commutative exactly,
        associative to round-off). Both sketches must share frequencies, dither, quantization and
        scaling, and the same privacy record (parallel composition: disjoint private shards keep
        their common guarantee). Where both record their :attr:`pieces`, they must not share rows
        of one data set: a merge adds data, it never counts the same points twice.
        """
        if not isinstance(other, Sketch):
            raise TypeError(f"other must be a Sketch; got {type(other).__name__}.")
        if not same_features(self._features, other._features):
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
        if self.sample_shape != other.sample_shape:
            raise ValueError(
                f"other must hold samples of the same shape as this sketch ({self.sample_shape}); "
                f"got {other.sample_shape}."
            )
        if other is self:
            raise ValueError("other must be another sketch; got this one (its data counted twice).")
        check_disjoint(self._pieces, other._pieces)
        # every check done: nothing below fails, so a refused merge leaves the sketch unchanged
        self._sum += other._sum
        self._count += other._count
        self._pieces = (*self._pieces, *other._pieces)
        if self.source != other.source:
            self.source = self.data_dir = None  # a mixture of sources is no longer one data set
        if self.label != other.label:
            self.label = None  # a mixture of classes
        return self

    def copy(self, *, features: FourierFeatures | None = None) -> Sketch:
        """An independent copy (the feature map is shared: it is never modified); ``features``:
        an equal feature map to share instead (e.g. one already on a device).

        Raises:
            ValueError: ``features`` that differ from this sketch's.
        """
        if features is not None and not same_features(features, self._features):
            raise ValueError("features must equal this sketch's feature map; got other features.")
        return Sketch.from_parts(
            features or self._features, center=self._center, scale=self._scale,
            total=self._sum.clone(), count=self._count, source=self.source,
            privacy=self._privacy, pieces=self._pieces, data_dir=self.data_dir,
            sample_shape=self.sample_shape, label=self.label,
        )  # fmt: skip

    @classmethod
    def from_parts(
        cls,
        features: FourierFeatures,
        *,
        center: torch.Tensor | np.ndarray | None = None,
        scale: float = 1.0,
        total: torch.Tensor,
        count: int,
        source: str | None = None,
        privacy: Privacy | None = None,
        pieces: tuple[Piece, ...] = (),
        data_dir: str | None = None,
        sample_shape: tuple[int, ...] | None = None,
        label: int | None = None,
    ) -> Sketch:
        """The sketch with a given float64 feature ``total`` (2m,) (the ``sum`` property) and
        ``count``, e.g. as read from a file or reduced over ranks; ``source``, ``data_dir``,
        ``sample_shape`` and ``label`` describe the data (see the attributes of the same names).

        Raises:
            TypeError, ValueError: bad features, scaling, total or count.
        """
        sketch = cls(features, center=center, scale=scale)
        total = torch.as_tensor(total, dtype=torch.float64).detach().cpu().reshape(-1)
        if total.shape != sketch._sum.shape or not bool(torch.isfinite(total).all()):
            raise ValueError(
                f"total must be {sketch._sum.shape[0]} finite values; got shape {tuple(total.shape)}."
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be an int >= 0; got {count!r}.")
        if privacy is not None and not isinstance(privacy, Privacy):
            raise TypeError(f"privacy must be a Privacy record or None; got {privacy!r}.")
        if label is not None and (isinstance(label, bool) or not isinstance(label, int)):
            raise TypeError(f"label must be an int or None; got {label!r}.")
        for name, text in (("source", source), ("data_dir", data_dir)):
            if text is not None and not isinstance(text, str):
                raise TypeError(f"{name} must be a str or None; got {type(text).__name__}.")
        sketch._sum, sketch._count = total.clone(), count
        sketch.source, sketch._privacy = source, privacy
        sketch._pieces = tuple(Piece(*piece) for piece in pieces)
        sketch.data_dir, sketch.label = data_dir, label
        if sample_shape is not None:
            shape = tuple(int(s) for s in sample_shape)
            if math.prod(shape) != features.dim or min(shape, default=0) < 1:
                raise ValueError(f"sample_shape must have D={features.dim} elements; got {shape}.")
            sketch.sample_shape = shape
        return sketch

    def with_noise(self, noise: torch.Tensor, count: int, privacy: Privacy) -> Sketch:
        """A copy whose sum has ``noise`` (2m,) added and whose count is ``count``, recording
        ``privacy``: the release step of :func:`private_sketch`."""
        new = self.copy()
        new._sum += noise.to(torch.float64).cpu()
        new._count, new._privacy = int(count), privacy
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

    def save(
        self, path: str | os.PathLike[str], *, classes: Sequence[Sketch] | None = None
    ) -> None:
        """Writes the sketch to ``path`` as ``.npz`` (no pickle), atomically; with ``classes``
        (one sketch per class of these data, each with its ``label``, the same features, scaling
        and privacy record), those too (read back by :meth:`load_classes`).

        Raises:
            ValueError: ``classes`` that are not the classes of this sketch.
        """
        write_sketch(self, path, classes)

    @classmethod
    def load_classes(cls, path: str | os.PathLike[str]) -> tuple[Sketch, ...] | None:
        """The sketches of the classes held in the file ``path`` (ordered by label, sharing one
        feature map), or None when it holds none.

        Raises:
            FileNotFoundError, SketchError: as :meth:`load`.
        """
        return cls.load_with_classes(path)[1]

    @classmethod
    def load_with_classes(
        cls, path: str | os.PathLike[str]
    ) -> tuple[Sketch, tuple[Sketch, ...] | None]:
        """``(whole, classes)``: :meth:`load` and :meth:`load_classes` from one reading, all
        sharing one feature map.

        Raises:
            FileNotFoundError, SketchError: as :meth:`load`.
        """
        parts, class_parts = read_sketch_with_classes(path)
        whole = cls.from_parts(**parts)
        if class_parts is None:
            return whole, None
        try:
            return whole, tuple(cls.from_parts(**p) for p in class_parts)
        except (TypeError, ValueError) as err:
            raise SketchError(f"sketch file '{path}' is corrupt: {err}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Sketch:
        """Reads a sketch written by :meth:`save` (``allow_pickle=False``).

        Raises:
            FileNotFoundError: no file at ``path``.
            SketchError: not an ``.npz``, a foreign or corrupt one, an unsupported format version.
        """
        return cls.from_parts(**read_sketch(path))


def _same_center(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


def sketch_distance(
    sketch: Sketch,
    samples: torch.Tensor,
    *,
    estimator: str = "biased",
    across_ranks: bool = False,
) -> torch.Tensor:
    """Squared distance ``|g mean_i phi(y_i) - z|^2`` between the samples' features and the sketch.

    ``samples`` are in the sketch's scaled coordinates. ``g = 1`` for full-precision sketches. For
    quantized sketches the samples' features are full precision and ``g = 4/pi``, the first Fourier
    coefficient of ``sign(cos t)``: with ``u`` uniform, ``E_u[sign(cos u) cos(u + d)] =
    E_u[sign(sin u) sin(u + d)] = (2/pi) cos d``, so the cross term estimates ``(4/pi) k(x, y)`` and
    ``g^2 k(y, y') - 2 g (4/pi) k(x, y)`` is proportional to the MMD^2 terms only for ``g = 4/pi``.

    ``estimator="unbiased"`` leaves out the ``N`` diagonal terms ``g^2 |phi(y_i)|^2 = g^2`` of
    ``|g mean_i phi(y_i)|^2`` (the U-statistic of the MMD^2, as :func:`distmatch.distances.mmd`'s
    ``unbiased``), with ``u = g mean_i phi(y_i)``::

        unbiased = |u - z|^2 + (|u|^2 - g^2) / (N - 1)

    The biased value's expectation over the samples adds ``(g^2 - |E u|^2) / N`` to the MMD^2: a
    reward for batches of alike samples, which pulls a generator towards fewer modes the smaller
    ``N`` is; the unbiased value's expectation is the MMD^2 itself (up to the sketch's ``z``).

    Gradient in closed form (one autograd node, first order only), with ``t = y Omega + xi`` and
    the residual ``r = [r_c; r_s] = u - z`` (unbiased: ``r + u / (N - 1)``)::

        d/dy_i = (2 g / (N sqrt(m))) sum_j (cos t_ij r_s,j - sin t_ij r_c,j) omega_j

    Across ranks (``across_ranks=True`` under ``torchrun``), ``samples`` are this rank's part of
    the batch and the distance is that of all ranks' samples, the same on every rank: one
    differentiable all-reduce of the (2m + 1) feature sums and count,
    ``|g (sum_r sum_{i in r} phi(y_i)) / B - z|^2``; averaging the gradients over the ranks
    (:func:`distmatch.distributed.average_gradients`) then gives the one-process gradient.

    Args:
        sketch: the data sketch (count >= 1).
        samples: (N, D) floating tensor; dtype and device of the result follow it.
        estimator: ``"biased"`` (the squared distance itself) or ``"unbiased"`` (N >= 2).
        across_ranks: ``samples`` are this rank's part of a batch split over the ranks (no effect
            in one process).

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
    check_choice(estimator, "estimator", ("biased", "unbiased"))
    unbiased = estimator == "unbiased"
    ranks = across_ranks and distributed.is_active()  # a rank's part may be empty
    samples = check_samples(samples, "samples", min_points=0 if ranks else (2 if unbiased else 1))
    check_dim(samples, sketch.features.dim, "samples")
    omega, dither, target = sketch._constants(samples.device, samples.dtype)
    m = sketch.features.n_frequencies
    gain = QUANTIZED_GAIN if sketch.features.quantized else 1.0
    factor = gain / math.sqrt(m)
    if ranks:
        cos, sin = cos_sin(phases(samples, omega, dither))  # (B_r, m) each
        count = samples.new_tensor([float(samples.shape[0])])
        total = distributed.all_reduce_sum(torch.cat([cos.sum(0), sin.sum(0), count]))  # (2m + 1,)
        u = total[:-1] * (factor / total[-1])  # (2m,)
        value = (u - target).square().sum()
        return value + (u.square().sum() - gain**2) / (total[-1] - 1) if unbiased else value

    def compute(y: torch.Tensor, *, needs: tuple[bool, ...]):
        t = phases(y, omega, dither)  # (N, m)
        sin = torch.sin(t)  # (N, m)
        cos = t.cos_()  # (N, m)
        n = y.shape[0]
        scale = factor / n
        u_c, u_s = cos.sum(dim=0).mul_(scale), sin.sum(dim=0).mul_(scale)  # (m,) each
        r_c, r_s = u_c - target[:m], u_s - target[m:]  # (m,) each
        value = r_c.square().sum() + r_s.square().sum()
        if unbiased:
            value = value + (u_c.square().sum() + u_s.square().sum() - gain**2) / (n - 1)
            r_c, r_s = r_c + u_c / (n - 1), r_s + u_s / (n - 1)
        if not needs[0]:
            return value, (None,)
        w = cos.mul_(r_s).sub_(sin.mul_(r_c))  # (N, m)
        return value, ((2 * scale) * (w @ omega.T),)  # (N, D)

    return fused(compute, [samples])
