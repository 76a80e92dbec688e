"""Data sets for training autoencoders, read from their standard file formats.

:func:`load_split` returns one split ("train" or "test") of a data set as a :class:`SampleSet`:
images as float32 ``(C, H, W)`` in [0, 1], vectors as float32 ``(D,)``. The registry
:data:`DATASETS` maps each name to its loader:

- ``digits``: the 8x8 digits shipped with scikit-learn, no files needed; rows 0-1499 train, the
  remaining 297 test.
- ``mnist``, ``fashion_mnist``: the four IDX files (gzipped or not) in ``data_dir``.
- ``cifar10``: the binary version (``cifar-10-batches-bin/``), or a folder or zip of images
  ``train/<class>/*`` and ``test/<class>/*``.
- ``celeba``, ``ffhq``: a folder or zip of JPEG/PNG faces, decoded lazily, centre-cropped and
  resized; the last tenth (by sorted name) is the test split.

Any path ending in ``.npy`` is a data set too. Nothing is ever unpickled.

Example:
    >>> train = load_split("digits", "train")
    >>> describe(train)
    'digits train: 1500 images 1x8x8'
"""

from __future__ import annotations

import abc
import logging
import math
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ._images import (
    DataError,
    ImageContainer,
    crop_resize,
    decode,
    find_cifar_binary,
    open_container,
    read_cifar_binary,
    read_class_images,
    read_idx_split,
)

__all__ = [
    "DATASETS",
    "IMAGE_SIZES",
    "DataError",
    "ImageFileSet",
    "SampleSet",
    "TensorSet",
    "dataset_names",
    "describe",
    "load_split",
]

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
IMAGE_SIZES: dict[str, int] = {"celeba": 64, "ffhq": 1024}  # default output side of resizing sets
NATIVE_SIDES = {"digits": 8, "mnist": 28, "fashion_mnist": 28, "cifar10": 32}  # fixed-size sets
CELEBA_CROP = 0.7865  # square side / width: 140 px of the 178-px aligned CelebA faces, as in WAE
TEST_EVERY = 10  # without a given test split, the last 1/10 of the samples (at least 1) is test


class SampleSet(Dataset, abc.ABC):
    """Samples of one split. Images are float32 ``(C, H, W)`` in [0, 1]; vectors float32 ``(D,)``.

    Attributes:
        sample_shape: ``(C, H, W)`` for images, ``(D,)`` for vectors.
        is_image: whether the samples are images.
        name: the data set's name, e.g. "mnist", or the .npy path.
        split: "train" or "test".
        labels: ``(N,)`` int64 class labels where the files hold them, else None.
    """

    labels: torch.Tensor | None = None

    def __init__(
        self, *, name: str, split: str, sample_shape: tuple[int, ...], is_image: bool
    ) -> None:
        self.name = name
        self.split = split
        self.sample_shape = tuple(sample_shape)
        self.is_image = is_image

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def __getitem__(self, i: int) -> torch.Tensor: ...

    def get_batch(self, indices: torch.Tensor) -> torch.Tensor:
        """Returns the samples at ``indices`` (``(B,)`` int64) as float32 ``(B, *sample_shape)``."""
        if len(indices) == 0:
            return torch.empty((0, *self.sample_shape))
        return torch.stack([self[i] for i in indices.tolist()])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({describe(self)})"


class TensorSet(SampleSet):
    """Samples held in memory; images as uint8 (scaled by 1/255 on access) to save memory.

    Args:
        data: ``(N, C, H, W)`` images, uint8 in [0, 255] or float32 in [0, 1], or ``(N, D)``
            float32 vectors.
        name: the data set's name.
        split: "train" or "test".
        labels: ``(N,)`` class labels, or None.

    Raises:
        DataError: ``data`` has another dtype or number of dimensions.
    """

    def __init__(
        self, data: torch.Tensor, *, name: str, split: str, labels: torch.Tensor | None = None
    ) -> None:
        image = data.dim() == 4 and data.dtype in (torch.uint8, torch.float32)
        vector = data.dim() == 2 and data.dtype == torch.float32
        if not (image or vector):
            raise DataError(
                f"data of {name} must be (N, C, H, W) uint8/float32 images or (N, D) float32 "
                f"vectors; got {data.dtype} of shape {tuple(data.shape)}."
            )
        super().__init__(name=name, split=split, sample_shape=data.shape[1:], is_image=image)
        self.data = data
        self.labels = labels

    def __len__(self) -> int:
        return self.data.shape[0]

    def _scaled(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255) if x.dtype == torch.uint8 else x

    def __getitem__(self, i: int) -> torch.Tensor:
        return self._scaled(self.data[i].clone())

    def get_batch(self, indices: torch.Tensor) -> torch.Tensor:
        """Returns the samples at ``indices`` (``(B,)`` int64) as float32 ``(B, *sample_shape)``."""
        return self._scaled(self.data[indices])  # fancy indexing copies


class ImageFileSet(SampleSet):
    """Images decoded from files on access: RGB, central square cropped, resized with Lanczos.

    The crop is the central square of side ``round(crop * W)``, capped at ``min(H, W)``.

    Args:
        source: a folder of images or a zip file (opened lazily once per process, so that
            DataLoader workers each read through their own handle), or an ``ImageContainer``.
        members: names of the images in ``source`` (``/``-separated); None for all of them.
        image_size: side of the output images.
        crop: side of the central square as a fraction of the image width (1 for the largest).
        name: the data set's name.
        split: "train" or "test".
    """

    def __init__(
        self,
        source: ImageContainer | str | os.PathLike[str],
        members: Sequence[str] | None = None,
        *,
        image_size: int,
        crop: float = 1.0,
        name: str,
        split: str,
    ) -> None:
        super().__init__(
            name=name, split=split, sample_shape=(3, image_size, image_size), is_image=True
        )
        self.container = source if isinstance(source, ImageContainer) else ImageContainer(source)
        self.members = list(self.container.members() if members is None else members)
        self.image_size = image_size
        self.crop = crop

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int) -> torch.Tensor:
        member = self.members[i]
        image = decode(self.container.read(member), self.container.where(member))
        pixels = crop_resize(image, self.crop, self.image_size)  # (H, W, 3) uint8
        return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255)


# ---------------------------------------------------------------------------------------- helpers


def _test_slice(n: int, split: str, what: str) -> slice:
    """The rows of ``split`` when the last 1/TEST_EVERY of ``n`` samples is the test split."""
    if n < 2:
        raise DataError(
            f"{what} must hold at least 2 samples to split into train and test; got {n}."
        )
    n_test = max(1, n // TEST_EVERY)
    return slice(0, n - n_test) if split == "train" else slice(n - n_test, n)


# ---------------------------------------------------------------------------------------- loaders
# Each takes (split, data_dir, image_size): data_dir is an existing path for the sets that need
# files; image_size is the output side for the resizing sets.


def _load_digits(split: str, data_dir: Path | None, image_size: int | None) -> TensorSet:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    rows = slice(0, 1500) if split == "train" else slice(1500, None)
    return TensorSet(images[rows].clone(), name="digits", split=split, labels=labels[rows].clone())


def _load_idx(name: str, split: str, data_dir: Path, image_size: int | None) -> TensorSet:
    images, labels = read_idx_split(data_dir, split, name)  # (N, H, W) uint8, (N,) or None
    labels = None if labels is None else torch.from_numpy(labels)
    return TensorSet(torch.from_numpy(images).unsqueeze(1), name=name, split=split, labels=labels)


def _load_cifar10(split: str, data_dir: Path, image_size: int | None) -> TensorSet:
    binary = find_cifar_binary(data_dir)
    if binary is not None:
        images, labels = read_cifar_binary(binary, split)
    else:
        try:
            container = open_container(data_dir, "cifar10")
        except DataError:
            if (data_dir / "cifar-10-batches-py").exists() or (data_dir / "data_batch_1").exists():
                raise DataError(
                    f"'{data_dir}' must hold the binary version of CIFAR-10 "
                    f"(cifar-10-batches-bin/) or images by class; got the Python version, which "
                    f"distmatch never unpickles."
                ) from None
            raise
        images, labels = read_class_images(container, split, 32, "cifar10")
    return TensorSet(
        torch.from_numpy(images), name="cifar10", split=split, labels=torch.from_numpy(labels)
    )


def _load_faces(
    name: str, crop: float, split: str, data_dir: Path, image_size: int
) -> ImageFileSet:
    container = open_container(data_dir, name)
    members = container.members()
    if not members:
        raise DataError(f"'{container.path}' must contain JPEG or PNG images for {name}; got none.")
    rows = _test_slice(len(members), split, f"'{container.path}'")
    return ImageFileSet(
        container, members[rows], image_size=image_size, crop=crop, name=name, split=split
    )


def _open_npy(path: Path) -> np.ndarray:
    with path.open("rb") as file:
        if file.read(6) != b"\x93NUMPY":
            raise DataError(f"'{path}' must be a .npy file; got a file without the .npy header.")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        reason = str(err).rstrip(".")
        raise DataError(
            f"'{path}' must be a .npy array of numbers, never pickled objects; got {reason}."
        ) from None
    if array.dtype.kind not in "uif":
        raise DataError(f"'{path}' must hold real numbers; got dtype {array.dtype}.")
    if array.ndim < 2 or array.shape[0] < 1 or math.prod(array.shape[1:]) < 1:
        raise DataError(
            f"'{path}' must hold an array of shape (N, D) or (N, ...), one sample per row; "
            f"got shape {array.shape}."
        )
    return array


def _npy_samples(array: np.ndarray, path: Path, rows: slice = slice(None)) -> torch.Tensor:
    """uint8 (N, H, W), (N, H, W, C) or (N, C, H, W) as (N, C, H, W) images, else (N, D) float32.

    Only ``rows`` are read from the memory map, and copied into memory.
    """
    if array.dtype == np.uint8 and array.ndim in (3, 4):
        if array.ndim == 3:
            images = array[rows, None]
        elif array.shape[3] in (1, 3):
            images = array[rows].transpose(0, 3, 1, 2)
        elif array.shape[1] in (1, 3):
            images = array[rows]
        else:
            raise DataError(
                f"'{path}' must hold uint8 images (N, H, W, C) or (N, C, H, W) with C = 1 or 3; "
                f"got shape {array.shape}."
            )
        return torch.from_numpy(np.array(images, order="C"))  # a copy, off the memory map
    with np.errstate(over="ignore"):  # overflow to inf is reported below
        vectors = np.array(array[rows], dtype=np.float32).reshape(-1, math.prod(array.shape[1:]))
    bad = int((~np.isfinite(vectors)).sum())
    if bad:
        raise DataError(
            f"'{path}' must hold only finite values (as float32); got {bad} NaN or inf entries."
        )
    return torch.from_numpy(vectors)  # (N, D)


def _load_npy(path: Path, split: str) -> TensorSet:
    if not path.is_file():
        raise DataError(f"dataset '{path}' must be an existing .npy file; got no such file.")
    sibling = path.with_name(f"{path.stem}_test.npy")
    array = _open_npy(path)
    if not sibling.is_file():
        rows = _test_slice(len(array), split, f"'{path}'")
        return TensorSet(_npy_samples(array, path, rows), name=str(path), split=split)
    if split == "train":
        return TensorSet(_npy_samples(array, path), name=str(path), split=split)
    test = _open_npy(sibling)
    if test.shape[1:] != array.shape[1:] or (test.dtype == np.uint8) != (array.dtype == np.uint8):
        raise DataError(
            f"'{sibling}' must hold samples like '{path}' ({array.dtype}, shape (N, "
            f"{', '.join(map(str, array.shape[1:]))})); got {test.dtype}, shape {test.shape}."
        )
    return TensorSet(_npy_samples(test, sibling), name=str(path), split=split)


Loader = Callable[[str, Path | None, int | None], SampleSet]

DATASETS: dict[str, Loader] = {
    "digits": _load_digits,
    "mnist": partial(_load_idx, "mnist"),
    "fashion_mnist": partial(_load_idx, "fashion_mnist"),
    "cifar10": _load_cifar10,
    "celeba": partial(_load_faces, "celeba", CELEBA_CROP),
    "ffhq": partial(_load_faces, "ffhq", 1.0),
}

_IDX_HINT = "the folder with the IDX files (train-images-idx3-ubyte.gz, ...)"
_DATA_DIR_HINTS = {  # what data_dir must point at, for the sets read from files
    "mnist": _IDX_HINT,
    "fashion_mnist": _IDX_HINT,
    "cifar10": (
        "cifar-10-batches-bin/, or a folder or zip of train/<class>/ and test/<class>/ images"
    ),
    "celeba": "a folder or zip of the aligned CelebA images (img_align_celeba)",
    "ffhq": "a folder or zip of FFHQ images",
}


# ------------------------------------------------------------------------------------------ public


def dataset_names() -> list[str]:
    """Returns the registered data set names, sorted (any ``.npy`` path is accepted too)."""
    return sorted(DATASETS)


def _check_image_size(name: str, image_size: int | None) -> int | None:
    if image_size is None:
        return IMAGE_SIZES.get(name)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image_size must be an int >= 1; got {image_size!r}.")
    native = NATIVE_SIDES.get(name)
    if name not in IMAGE_SIZES and image_size != native:
        resizing = ", ".join(sorted(IMAGE_SIZES))
        raise DataError(
            f"image_size must be None or {native} for {name}, whose samples have a fixed size "
            f"(only {resizing} resize); got {image_size}."
        )
    return image_size


def load_split(
    dataset: str | os.PathLike[str],
    split: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    image_size: int | None = None,
) -> SampleSet:
    """Loads one split of a data set.

    Args:
        dataset: a name from :func:`dataset_names`, or the path of a ``.npy`` array (N, ...).
        split: "train" or "test".
        data_dir: folder (or zip) with the data set's files; not used by ``digits`` and ``.npy``.
        image_size: output side for the resizing sets (default :data:`IMAGE_SIZES`); for the
            others only None or their own side is accepted.

    Returns:
        The samples of the split.

    Raises:
        DataError: unknown name, bad split or image_size, missing ``data_dir`` or file, or a file
            that is corrupt or not in the expected format.

    Example:
        >>> load_split("mnist", "test", data_dir="data/mnist")  # doctest: +SKIP
        TensorSet(mnist test: 10000 images 1x28x28)
    """
    if split not in SPLITS:
        raise DataError(f"split must be 'train' or 'test'; got {split!r}.")
    name = os.fspath(dataset)
    if name.endswith(".npy"):
        sample_set = _load_npy(Path(name).expanduser(), split)
        if image_size is not None and sample_set.sample_shape[1:] != (image_size, image_size):
            raise DataError(
                f"image_size must be None or the images' own side for '{name}', whose samples "
                f"have shape {sample_set.sample_shape}; got {image_size!r}."
            )
        log.info("%s", describe(sample_set))
        return sample_set
    if name not in DATASETS:
        known = ", ".join(repr(n) for n in dataset_names())
        raise DataError(f"dataset must be one of {known}, or a path ending in .npy; got {name!r}.")
    size = _check_image_size(name, image_size)
    folder = None
    if name in _DATA_DIR_HINTS:
        if data_dir is None:
            raise DataError(
                f"{name} needs --data-dir pointing at {_DATA_DIR_HINTS[name]}; got none."
            )
        folder = Path(data_dir).expanduser()
        if not folder.exists():
            raise DataError(
                f"data_dir for {name} must be an existing folder or zip file; got '{folder}', "
                f"which does not exist."
            )
    sample_set = DATASETS[name](split, folder, size)
    log.info("%s", describe(sample_set))
    return sample_set


def describe(sample_set: SampleSet) -> str:
    """Returns a one-line summary, e.g. "mnist train: 60000 images 1x28x28".

    Vectors read "x.npy test: 100 vectors of dimension 8".
    """
    n, shape = len(sample_set), sample_set.sample_shape
    kind = ("image" if sample_set.is_image else "vector") + ("" if n == 1 else "s")
    size = "x".join(str(s) for s in shape) if sample_set.is_image else f"of dimension {shape[0]}"
    return f"{sample_set.name} {sample_set.split}: {n} {kind} {size}"
