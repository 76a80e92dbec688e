"""The sketch file: a ``.npz`` archive (no pickle) of the feature map, the scaling, sum and count.

Part of :mod:`distmatch.sketch`, whose :meth:`Sketch.save <distmatch.sketch.Sketch.save>` and
:meth:`Sketch.load <distmatch.sketch.Sketch.load>` call :func:`save_sketch` and
:func:`load_sketch`; :class:`SketchError` is re-exported there. The classes are imported where
they are built, since :mod:`distmatch.sketch` imports this module.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._io import atomic_path
from ._sketch_laws import as_float64
from ._sketch_privacy import Privacy

if TYPE_CHECKING:
    from .sketch import Sketch

FORMAT_VERSION = 1


class SketchError(ValueError):
    """A sketch file that cannot be read: not an .npz, a foreign or corrupt one, a newer format."""


_KEYS = {
    "format_version", "frequencies", "dither", "law", "bandwidth", "cov", "dim", "dithered",
    "quantized", "center", "scale", "sum", "count",
}  # fmt: skip


def save_sketch(sketch: Sketch, path: str | os.PathLike[str]) -> None:
    """Writes ``sketch`` to ``path`` as ``.npz`` (no pickle), atomically."""
    f = sketch.features
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
        "center": empty if sketch.center is None else sketch.center.numpy(),
        "scale": np.float64(sketch.scale),
        "sum": sketch.sum.numpy(),
        "count": np.int64(sketch.count),
        "source": np.str_(sketch.source or ""),
    }
    if sketch.privacy is not None:
        arrays.update({f"dp_{k}": np.asarray(v) for k, v in vars(sketch.privacy).items()})
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def load_sketch(path: str | os.PathLike[str]) -> Sketch:
    """Reads a sketch written by :func:`save_sketch` (``allow_pickle=False``).

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
        raise SketchError(f"sketch file must be an .npz archive; got '{path}' ({err}).") from None
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
        raise SketchError(f"sketch file format_version must be {FORMAT_VERSION}; got {version!s}.")
    try:
        return _from_arrays(arrays)
    except (TypeError, ValueError) as err:
        raise SketchError(f"sketch file '{path}' is corrupt: {err}") from None


def _from_arrays(a: dict[str, np.ndarray]) -> Sketch:
    """The sketch held by the arrays of a file; ``ValueError``/``TypeError`` when they disagree."""
    from .sketch import FourierFeatures, Sketch

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
