"""The sketch file: a ``.npz`` archive (no pickle) of the feature map, the scaling, sum and count.

Format 1 stores the (D, m) frequencies; format 2, written when the features were drawn from a
recorded seed (``FourierFeatures(seed=...)``, as ``distmatch sketch`` does) and still are exactly
that draw, stores the seed instead (``frequency_seed``, ``n_frequencies``, ``frequency_dtype``)
with a SHA-256 digest of the frequencies and dither: 12 MB of MNIST frequencies become a few
bytes. The reader draws them again on the CPU and refuses the file if the digest differs (a
PyTorch whose random numbers changed).

Part of :mod:`distmatch.sketch`: :meth:`Sketch.save <distmatch.sketch.Sketch.save>` calls
:func:`write_sketch`, and :meth:`Sketch.load <distmatch.sketch.Sketch.load>` builds the sketch from
the parts :func:`read_sketch` returns; :class:`SketchError` is re-exported there.

A file may also hold the sketches of the data's classes (``distmatch sketch`` of a labelled data
set): ``class_labels`` (C,), ``class_sums`` (C, 2m) and ``class_counts`` (C,), with the same
features, scaling and privacy record as the whole; the whole sketch is their sum. Readers that do
not know these keys read the whole sketch as before (:func:`read_sketch_with_classes` reads
them too).
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._core import atomic_path
from ._features import FourierFeatures, same_features
from ._laws import as_float64
from ._pieces import Piece
from ._privacy import Privacy

if TYPE_CHECKING:
    from ._sketch import Sketch

__all__ = [
    "FORMAT_VERSION",
    "KEYS",
    "SketchError",
    "read_sketch",
    "read_sketch_with_classes",
    "write_sketch",
]

FORMAT_VERSION = 1  # the frequencies stored
SEEDED_FORMAT_VERSION = 2  # the seed stored, the frequencies drawn again on reading


class SketchError(ValueError):
    """A sketch file that cannot be read: not an .npz, a foreign or corrupt one, a newer format."""


KEYS = {
    "format_version", "frequencies", "dither", "law", "bandwidth", "cov", "dim", "dithered",
    "quantized", "center", "scale", "sum", "count",
}  # fmt: skip


def frequency_digest(features: FourierFeatures) -> str:
    """SHA-256 of the float64 frequencies and dither (hex)."""
    digest = hashlib.sha256()
    for buffer in (features.frequencies, features.dither):
        digest.update(buffer.detach().cpu().double().contiguous().numpy().tobytes())
    return digest.hexdigest()


def write_sketch(
    sketch: Sketch, path: str | os.PathLike[str], classes: Sequence[Sketch] | None = None
) -> None:
    """Writes ``sketch`` to ``path`` as ``.npz`` (no pickle), atomically: format 2 (the seed of
    the frequencies) when the features are their seed's draw, format 1 (the frequencies) else;
    with ``classes``, the sketches of the data's classes beside it (see the module docstring).

    Raises:
        ValueError: ``classes`` that are not the classes of ``sketch``, or a sketch holding NaN
            or inf (which no reader would accept).
    """
    if classes:
        _check_classes(sketch, classes)
    for part in (sketch, *(classes or ())):
        if not bool(torch.isfinite(part.sum).all()) or not bool(
            torch.isfinite(part.features.frequencies).all()
        ):
            raise ValueError("a sketch must hold finite values; got NaN or inf (nothing written).")
    f = sketch.features
    empty = np.zeros(0)
    seeded = f.redrawn() is not None
    arrays = {
        "format_version": np.int64(SEEDED_FORMAT_VERSION if seeded else FORMAT_VERSION),
        "frequencies": empty if seeded else f.frequencies.detach().cpu().numpy(),
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
        "piece_data": np.array([p.data for p in sketch.pieces], dtype=np.str_),
        "piece_rows": np.array([(p.start, p.stop) for p in sketch.pieces], dtype=np.int64).reshape(
            -1, 2
        ),
        # optional keys (absent in older files): what the samples are
        "data_dir": np.str_(sketch.data_dir or ""),
        "sample_shape": np.array(sketch.sample_shape or (), dtype=np.int64),
        "label": np.int64(-1 if sketch.label is None else sketch.label),
    }
    if classes:
        arrays.update({
            "class_labels": np.array([c.label for c in classes], dtype=np.int64),
            "class_sums": np.stack([c.sum.numpy() for c in classes]),
            "class_counts": np.array([c.count for c in classes], dtype=np.int64),
        })  # fmt: skip
    if seeded:
        arrays.update({
            "frequency_seed": np.int64(f.seed),
            "n_frequencies": np.int64(f.n_frequencies),
            "frequency_dtype": np.str_(str(f.frequencies.dtype).removeprefix("torch.")),
            "frequency_digest": np.str_(frequency_digest(f)),
        })  # fmt: skip
    if sketch.privacy is not None:
        arrays.update({f"dp_{k}": np.asarray(v) for k, v in vars(sketch.privacy).items()})
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def _check_classes(whole: Sketch, classes: Sequence[Sketch]) -> None:
    labels = [c.label for c in classes]
    if None in labels or len(set(labels)) != len(labels):
        raise ValueError(f"classes must each have a distinct label; got labels {labels}.")
    for c in classes:
        if not same_features(c.features, whole.features) or c.scale != whole.scale:
            raise ValueError(
                "classes must share the features and scaling of the sketch; got others."
            )
        if c.privacy != whole.privacy:
            raise ValueError(
                f"classes must have the sketch's privacy record; got {c.privacy} vs "
                f"{whole.privacy}."
            )
    if sum(c.count for c in classes) != whole.count:
        raise ValueError(
            f"classes must add up to the sketch; got counts summing to "
            f"{sum(c.count for c in classes)} against {whole.count}."
        )


def read_sketch(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads the parts of a sketch written by :func:`write_sketch` (``allow_pickle=False``): the
    keyword arguments of :meth:`Sketch.from_parts <distmatch.sketch.Sketch.from_parts>`.

    Raises:
        FileNotFoundError: no file at ``path``.
        SketchError: not an ``.npz``, a foreign or corrupt one, an unsupported format version.
    """
    return _parts(_read_arrays(path), path)


def read_sketch_with_classes(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """:func:`read_sketch`'s parts, and those of the sketches of the classes that the file holds
    beside the whole sketch, ordered by label (None when it holds none), from one reading: they
    share the whole's feature map, scaling, privacy record and description.

    Raises:
        FileNotFoundError, SketchError: as :func:`read_sketch`, or malformed class keys.
    """
    arrays = _read_arrays(path)
    parts = _parts(arrays, path)
    return parts, _class_parts(arrays, parts, path)


def _read_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of a sketch file, its keys and format version checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sketch file must exist; got no file at '{path}'.")
    with path.open("rb") as file:
        magic = file.read(4)
    if magic == b"\x93NUM":
        raise SketchError(f"sketch file must be an .npz archive; got a .npy array in '{path}'.")
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # the zip signatures of an .npz
        raise SketchError(
            f"sketch file must be an .npz archive (a zip of arrays); got '{path}', which is not "
            f"one ({path.stat().st_size} bytes)."
        )
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SketchError(
            f"sketch file must be an .npz archive; got '{path}' ({reason})."
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise SketchError(f"sketch file must be an .npz archive; got a .npy array in '{path}'.")
    with npz:
        missing = sorted(KEYS - set(npz.files))
        if missing:
            raise SketchError(
                f"sketch file must hold the keys of Sketch.save; got '{path}' without {missing}."
            )
        try:
            arrays = {key: npz[key] for key in npz.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise SketchError(f"sketch file must be readable; got '{path}' ({err}).") from None
    version = arrays["format_version"]
    known = (FORMAT_VERSION, SEEDED_FORMAT_VERSION)
    if version.shape != () or version.dtype.kind not in "iu" or int(version) not in known:
        raise SketchError(f"sketch file format_version must be 1 or 2; got {version!s}.")
    return arrays


def _parts(arrays: dict[str, np.ndarray], path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        return parts_from_arrays(arrays)
    except (TypeError, ValueError) as err:
        raise SketchError(f"sketch file '{path}' is corrupt: {err}") from None


def _class_parts(
    arrays: dict[str, np.ndarray], parts: dict[str, Any], path: str | os.PathLike[str]
) -> list[dict[str, Any]] | None:
    """The parts of the classes' sketches held in ``arrays`` beside the whole's ``parts``."""
    keys = ("class_labels", "class_sums", "class_counts")
    if not any(k in arrays for k in keys):
        return None
    if not all(k in arrays for k in keys):
        raise SketchError(f"sketch file '{path}' is corrupt: it must hold all of {keys} or none.")
    labels, sums, counts = (arrays[k] for k in keys)
    m2 = parts["total"].shape[0]
    c = labels.shape[0] if labels.ndim == 1 else -1
    good = c >= 1 and sums.shape == (c, m2) and counts.shape == (c,)
    good = good and labels.dtype.kind in "iu" and counts.dtype.kind in "iu"
    if not good or len(set(labels.tolist())) != c or not np.isfinite(sums).all():
        raise SketchError(
            f"sketch file '{path}' is corrupt: class_labels (C,) distinct integers, finite "
            f"class_sums (C, {m2}) and class_counts (C,) expected; got {labels.shape}, "
            f"{sums.shape}, {counts.shape}."
        )
    whole = {k: v for k, v in parts.items() if k not in ("total", "count", "label", "pieces")}
    return [
        {**whole, "total": torch.from_numpy(sums[i].astype(np.float64)),
         "count": int(counts[i]), "label": int(labels[i])}
        for i in np.argsort(labels, kind="stable")
    ]  # fmt: skip


def _seeded_features(a: dict[str, np.ndarray], bandwidth: float) -> FourierFeatures:
    """The features of a format-2 file, drawn again from their seed and checked by digest."""
    missing = sorted(
        {"frequency_seed", "n_frequencies", "frequency_dtype", "frequency_digest"} - set(a)
    )
    if missing:
        raise ValueError(
            f"a format 2 file must hold the seed of its frequencies; got no {missing}."
        )
    dtype = getattr(torch, str(a["frequency_dtype"]), None)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"frequency_dtype must be float32 or float64; got {a['frequency_dtype']}.")
    features = FourierFeatures(
        int(a["dim"]), int(a["n_frequencies"]), law=str(a["law"]), bandwidth=bandwidth,
        cov=torch.from_numpy(a["cov"]) if a["cov"].size else None, dither=bool(a["dithered"]),
        quantized=bool(a["quantized"]), seed=int(a["frequency_seed"]),
    ).to(dtype)  # fmt: skip
    if frequency_digest(features) != str(a["frequency_digest"]):
        raise ValueError(
            "the frequencies drawn again from the recorded seed must match the file's digest; "
            f"they differ (this PyTorch {torch.__version__} draws other random numbers than the "
            "writer's): write the sketch again, or with its frequencies stored."
        )
    return features


def parts_from_arrays(a: dict[str, np.ndarray]) -> dict[str, Any]:
    """The parts of the sketch held by the arrays of a file; ``ValueError``/``TypeError`` when
    they disagree."""
    bandwidth = float(a["bandwidth"])
    if int(a["format_version"]) == SEEDED_FORMAT_VERSION:
        features = _seeded_features(a, bandwidth)
    else:
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
    total = np.asarray(a["sum"], dtype=np.float64)
    if total.shape != (2 * features.n_frequencies,):
        raise ValueError(f"sum must have shape ({2 * features.n_frequencies},); got {total.shape}.")
    if not np.isfinite(total).all():
        raise ValueError(
            f"sum must hold finite values; got {int((~np.isfinite(total)).sum())} NaN or inf."
        )
    if a["count"].dtype.kind not in "iu" or int(a["count"]) < 0:
        raise ValueError(f"count must be an integer >= 0; got {a['count']}.")
    privacy = None
    if "dp_epsilon" in a:
        fields = ("epsilon", "delta", "mechanism", "neighbours", "noise_scale", "count_noise_scale")
        missing = [f"dp_{k}" for k in fields if f"dp_{k}" not in a]
        if missing:
            raise ValueError(f"a private sketch must record all of its privacy; got no {missing}.")
        privacy = Privacy(*[a[f"dp_{k}"].item() for k in fields])
    pieces = ()
    if "piece_data" in a and "piece_rows" in a:  # optional: absent in older files
        rows = np.asarray(a["piece_rows"], dtype=np.int64).reshape(-1, 2)
        names = [str(d) for d in np.asarray(a["piece_data"]).reshape(-1)]
        if len(names) != len(rows):
            raise ValueError(f"piece_data and piece_rows must have one entry per piece; got "
                             f"{len(names)} and {len(rows)}.")  # fmt: skip
        pieces = tuple(
            Piece(d, int(start), int(stop)) for d, (start, stop) in zip(names, rows, strict=True)
        )
    shape = tuple(int(v) for v in a["sample_shape"]) if "sample_shape" in a else ()
    label = int(a["label"]) if "label" in a else -1
    return {
        "data_dir": (str(a["data_dir"]) or None) if "data_dir" in a else None,
        "sample_shape": shape or None,
        "label": None if label < 0 else label,
        "pieces": pieces,
        "features": features,
        "center": a["center"] if a["center"].size else None,
        "scale": float(a["scale"]),
        "total": torch.from_numpy(total.copy()),
        "count": int(a["count"]),
        "source": (str(a["source"]) or None) if "source" in a else None,  # absent in other writers'
        "privacy": privacy,
    }
