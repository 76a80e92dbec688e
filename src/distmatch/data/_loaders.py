"""The registry of data sets (:data:`DATASETS`) and :func:`load_split`, which reads one split.

Part of :mod:`distmatch.data`, whose docstring lists what each data set reads."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ._images import (
    DataError,
    find_cifar_binary,
    open_container,
    read_cifar_binary,
    read_class_images,
    read_idx_split,
)
from ._npy import load_npy
from ._sets import ImageFileSet, SampleSet, TensorSet, describe, test_slice

__all__ = ["DATASETS", "IMAGE_SIZES", "dataset_names", "load_split"]

log = logging.getLogger("distmatch.data")

SPLITS = ("train", "test")
IMAGE_SIZES: dict[str, int] = {"celeba": 64, "ffhq": 1024}  # default output side of resizing sets
FOLDER_SIZE = 64  # default output side of a folder or zip of images given by its path
NATIVE_SIDES = {"digits": 8, "mnist": 28, "fashion_mnist": 28, "cifar10": 32}  # fixed-size sets
CELEBA_CROP = 0.7865  # square side / width: 140 px of the 178-px aligned CelebA faces, as in WAE


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
    rows = test_slice(len(members), split, f"'{container.path}'")
    return ImageFileSet(
        container, members[rows], image_size=image_size, crop=crop, name=name, split=split
    )


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
        dataset: a name from :func:`dataset_names`, the path of a ``.npy`` array (N, ...), or
            a folder or zip of JPEG/PNG images (central square, resized to ``image_size``,
            default 64; the last tenth by sorted name is the test split).
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
    path = Path(name).expanduser()
    if name not in DATASETS and (path.is_dir() or (path.is_file() and path.suffix == ".zip")):
        size = FOLDER_SIZE if image_size is None else _check_image_size("celeba", image_size)
        sample_set = _load_faces(str(path), 1.0, split, path, size)
        log.info("%s", describe(sample_set))
        return sample_set
    if name.endswith(".npy"):
        sample_set = load_npy(Path(name).expanduser(), split)
        if image_size is not None and sample_set.sample_shape[1:] != (image_size, image_size):
            raise DataError(
                f"image_size must be None or the images' own side for '{name}', whose samples "
                f"have shape {sample_set.sample_shape}; got {image_size!r}."
            )
        log.info("%s", describe(sample_set))
        return sample_set
    if name not in DATASETS:
        known = ", ".join(repr(n) for n in dataset_names())
        raise DataError(
            f"dataset must be one of {known}, a path ending in .npy, or a folder or zip of "
            f"images; got {name!r}."
        )
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
