"""Image file formats for :mod:`distmatch.data`: IDX, CIFAR-10 binary, folders and zips of JPEG/PNG.

A data set of images may come as a folder (images possibly nested in subfolders), as a zip file, or
as a folder that holds one zip. :func:`open_container` resolves these to an :class:`ImageContainer`,
which lists the image members by name and reads their bytes; a zip is opened lazily once per
process, so that a container copied into DataLoader worker processes reads through its own handle.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

log = logging.getLogger("distmatch.data")


class DataError(ValueError):
    """A data set that cannot be read: missing, corrupt, or not in the expected format.

    Defined here so that the image helpers can raise it; the public name is
    ``distmatch.data.DataError``.
    """


def _is_image_name(name: str) -> bool:
    parts = name.split("/")
    # Skips macOS resource forks ("__MACOSX/", "._x.jpg") and other hidden files.
    if any(part.startswith((".", "__MACOSX")) for part in parts):
        return False
    return name.lower().endswith(IMAGE_SUFFIXES)


class ImageContainer:
    """Image files in a folder (searched recursively) or in a zip file, read by member name.

    Args:
        path: the folder or the zip file.

    Raises:
        DataError: ``path`` does not exist, or is a file that is not a zip.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(
                f"'{self.path}' must be an existing folder or zip file; got a missing path."
            )
        self.is_zip = self.path.is_file()
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None
        self._members: list[str] | None = None
        if self.is_zip:
            self._handle()  # fails early on a file that is not a zip

    def _handle(self) -> zipfile.ZipFile:
        # A zip handle must not be shared with forked workers: they would share its file offset.
        if self._zip is None or self._pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as err:
                raise DataError(
                    f"'{self.path}' must be a folder or a zip file; got a file that is not a "
                    f"readable zip ({err})."
                ) from None
            self._pid = os.getpid()
        return self._zip

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_zip": None, "_pid": None}

    def members(self) -> list[str]:
        """Returns the names of the image files (``/``-separated, relative), sorted."""
        if self._members is not None:
            return self._members
        if self.is_zip:
            names = (info.filename for info in self._handle().infolist() if not info.is_dir())
        else:
            names = (
                Path(root, file).relative_to(self.path).as_posix()
                for root, dirs, files in os.walk(self.path)
                for file in files
            )
        self._members = sorted(name for name in names if _is_image_name(name))
        return self._members

    def read(self, member: str) -> bytes:
        """Returns the bytes of one member."""
        try:
            if self.is_zip:
                return self._handle().read(member)
            return (self.path / member).read_bytes()
        except (OSError, KeyError, zipfile.BadZipFile) as err:
            raise DataError(f"'{member}' in '{self.path}' must be readable; got {err}.") from None

    def where(self, member: str) -> str:
        """Names a member for error messages."""
        return f"'{member}' in '{self.path}'"


def open_container(data_dir: Path, dataset: str) -> ImageContainer:
    """Resolves ``data_dir`` to the images of ``dataset``.

    ``data_dir`` may be a zip file, a folder with images (possibly nested), or a folder with no
    images and exactly one zip. A folder with images and zips reads the images, with a warning
    that names the zips.

    Raises:
        DataError: no images and no zip, several zips, or a file that is not a zip.
    """
    container = ImageContainer(data_dir)
    if container.is_zip:
        return container
    zips = sorted(p for p in data_dir.iterdir() if p.suffix.lower() == ".zip" and p.is_file())
    if container.members():
        if zips:  # the images win; say so, since the zip may be the larger set
            log.warning(
                "'%s' holds %d images and, beside them, %s; reading the images. Give the zip's "
                "path as the data folder to read it instead.",
                data_dir, len(container.members()), ", ".join(p.name for p in zips),
            )  # fmt: skip
        return container
    if len(zips) > 1:
        listed = ", ".join(p.name for p in zips)
        raise DataError(
            f"'{data_dir}' must contain images or a single zip of images for {dataset}; "
            f"got {len(zips)} zips: {listed}."
        )
    if not zips:
        raise DataError(
            f"'{data_dir}' must contain JPEG or PNG images (searched recursively) or a zip of "
            f"them for {dataset}; got none."
        )
    return ImageContainer(zips[0])


def decode(data: bytes, where: str) -> Image.Image:
    """Returns the image in ``data`` as RGB; ``where`` names it in the error.

    Raises:
        DataError: the bytes are not a readable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise DataError(
            f"{where} must be a readable JPEG or PNG image; got {len(data)} bytes that are no "
            "image format Pillow knows."
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{where} must be a readable JPEG or PNG image; got {reason}.") from None


def crop_resize(image: Image.Image, crop: float, size: int) -> np.ndarray:
    """Crops the central square and resizes it to ``size`` x ``size`` with Lanczos filtering.

    The square's side is ``round(crop * W)``, capped at ``min(H, W)``; so ``crop=1`` takes the
    largest central square, and ``crop=0.7865`` the 140-pixel square of a 178-wide CelebA image.

    Args:
        image: an RGB image of width ``W`` and height ``H``.
        crop: side of the square as a fraction of the width.
        size: side of the output.

    Returns:
        ``(size, size, 3)`` uint8 array.
    """
    width, height = image.size
    side = max(1, min(round(crop * width), width, height))
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    if side != size:
        square = square.resize((size, size), Image.Resampling.LANCZOS)
    return np.array(square, dtype=np.uint8)  # a writable copy, for torch.from_numpy


def read_class_images(
    container: ImageContainer, split: str, side: int, dataset: str
) -> tuple[np.ndarray, np.ndarray]:
    """Decodes the images ``<split>/<class>/<file>`` (under any prefix) of a container.

    Classes are numbered in the sorted order of the class folders of both splits together, so that
    a label means the same class in train and test.

    Args:
        container: the folder or zip.
        split: the top folder to read, "train" or "test".
        side: the side every image must have.
        dataset: named in errors.

    Returns:
        ``(N, 3, side, side)`` uint8 images and ``(N,)`` int64 labels, in sorted member order.

    Raises:
        DataError: no images of ``split``, an unreadable image, or one of another size.
    """
    members = [m.split("/") for m in container.members()]
    members = [parts for parts in members if len(parts) >= 3 and parts[-3] in ("train", "test")]
    classes = {name: i for i, name in enumerate(sorted({parts[-2] for parts in members}))}
    chosen = ["/".join(parts) for parts in members if parts[-3] == split]
    if not chosen:
        raise DataError(
            f"'{container.path}' must contain images under {split}/<class>/ for {dataset}; "
            f"got none."
        )
    images = np.empty((len(chosen), side, side, 3), dtype=np.uint8)  # (N, H, W, C)
    labels = np.array([classes[m.split("/")[-2]] for m in chosen], dtype=np.int64)
    progress = tqdm(chosen, desc=f"{dataset} {split}", unit="img", disable=None, leave=False)
    for i, member in enumerate(progress):
        image = decode(container.read(member), container.where(member))
        if image.size != (side, side):
            width, height = image.size
            raise DataError(
                f"{container.where(member)} must be a {side}x{side} image for {dataset}; "
                f"got {width}x{height}."
            )
        images[i] = np.asarray(image)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels


# ------------------------------------------------------------------------- binary image formats


def _read_maybe_gzip(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path) as file:
            return file.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"'{path}' must be a valid gzip file; got {err}.") from None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Reads an IDX file of unsigned bytes (gzipped if its name ends in .gz).

    The header is the big-endian int32 ``magic`` (``0x08`` for ubyte, then the number of
    dimensions: 2051 for images, 2049 for labels) followed by one int32 per dimension.

    Args:
        path: the file.
        magic: the expected magic number.

    Returns:
        uint8 array of the shape the header gives.

    Raises:
        DataError: bad gzip, wrong magic number, or a size that does not match the header.
    """
    data = _read_maybe_gzip(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"'{path}' must start with a {header}-byte IDX header; got {len(data)} bytes."
        )
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise DataError(f"'{path}' must be an IDX file with magic number {magic}; got {got}.")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if min(dims) < 1:
        raise DataError(f"'{path}' must have positive dimensions in its header; got {dims}.")
    expected = header + math.prod(dims)
    if len(data) != expected:
        raise DataError(
            f"'{path}' must hold {expected} bytes as its header {dims} says; got {len(data)} "
            f"(truncated or corrupt)."
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()


def _find_file(folder: Path, stem: str, what: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"'{folder}' must contain {stem} or {stem}.gz for {what}; got neither.")


_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx_split(folder: Path, split: str, dataset: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads the MNIST-style IDX images of ``split``, and their labels where the file is there.

    Args:
        folder: holds ``train-images-idx3-ubyte`` (or ``.gz``) and the other three files.
        split: "train" or "test" (``t10k-*``).
        dataset: named in errors.

    Returns:
        ``(N, H, W)`` uint8 images and ``(N,)`` int64 labels, or None without a labels file.

    Raises:
        DataError: ``folder`` is not a folder, the images file is missing, a file is corrupt, or
            the labels do not match the images in number.
    """
    if not folder.is_dir():
        raise DataError(
            f"data_dir for {dataset} must be the folder with the IDX files; got '{folder}'."
        )
    images_stem, labels_stem = _IDX_STEMS[split]
    images_path = _find_file(folder, images_stem, f"{dataset} {split}")
    images = read_idx(images_path, 2051)  # (N, H, W)
    if not any((folder / f"{labels_stem}{ext}").is_file() for ext in ("", ".gz")):
        return images, None
    labels_path = _find_file(folder, labels_stem, f"{dataset} {split}")
    labels = read_idx(labels_path, 2049).astype(np.int64)  # (N,)
    if len(labels) != len(images):
        raise DataError(
            f"'{labels_path}' must hold one label per image of '{images_path}' "
            f"({len(images)}); got {len(labels)}."
        )
    return images, labels


_CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then the red, green and blue 32x32 planes
_CIFAR_BATCHES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}


def find_cifar_binary(data_dir: Path) -> Path | None:
    """Returns ``data_dir/cifar-10-batches-bin``, or ``data_dir``, if it holds a batch file."""
    files = (*_CIFAR_BATCHES["train"], *_CIFAR_BATCHES["test"])
    for folder in (data_dir / "cifar-10-batches-bin", data_dir):
        if folder.is_dir() and any((folder / file).is_file() for file in files):
            return folder
    return None


def read_cifar_binary(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads the binary CIFAR-10 batches of ``split``: records of a label byte and 3072 pixels.

    The pixels of a record are the red, green and blue 32x32 planes, each row by row.

    Args:
        folder: holds ``data_batch_1.bin`` .. ``data_batch_5.bin`` (train), ``test_batch.bin``.
        split: "train" or "test".

    Returns:
        ``(N, 3, 32, 32)`` uint8 images and ``(N,)`` int64 labels.

    Raises:
        DataError: a batch file is missing, not whole records, or has a label byte above 9.
    """
    tables = []
    for file in _CIFAR_BATCHES[split]:
        path = folder / file
        if not path.is_file():
            raise DataError(
                f"'{folder}' must contain {file} for cifar10 {split}; got no such file."
            )
        table = np.fromfile(path, dtype=np.uint8)
        if table.size == 0 or table.size % _CIFAR_RECORD:
            raise DataError(
                f"'{path}' must hold whole CIFAR-10 records of {_CIFAR_RECORD} bytes; "
                f"got {table.size} bytes."
            )
        table = table.reshape(-1, _CIFAR_RECORD)
        if table[:, 0].max() > 9:
            raise DataError(f"'{path}' must have label bytes 0 to 9; got {table[:, 0].max()}.")
        tables.append(table)
    table = np.concatenate(tables)
    images = np.ascontiguousarray(table[:, 1:]).reshape(-1, 3, 32, 32)  # (N, C, H, W)
    return images, table[:, 0].astype(np.int64)
