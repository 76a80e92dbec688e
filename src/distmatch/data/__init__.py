"""Data sets in their standard file formats, toy distributions, and one-pass iteration.

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

Any path ending in ``.npy`` is a data set too (:func:`open_npy` reads one). Nothing is ever
unpickled.

:data:`TOYS` holds the 2-D distributions of the CL-GN paper with their exact log-densities, and
:func:`load_vectors` reads a toy or a data set as one (N, D) tensor.

Example:
    >>> train = load_split("digits", "train")
    >>> describe(train)
    'digits train: 1500 images 1x8x8'
"""

from ._images import DataError
from ._loaders import DATASETS, IMAGE_SIZES, dataset_names, load_split
from ._npy import open_npy, read_npy
from ._sets import (
    TEST_EVERY,
    FlatRows,
    ImageFileSet,
    SampleSet,
    TensorSet,
    describe,
    test_slice,
)
from ._toys import TOYS, ToySpec, toy_dataset, toy_log_density, toy_sample
from ._vectors import load_vectors

__all__ = [
    "DATASETS",
    "IMAGE_SIZES",
    "TEST_EVERY",
    "TOYS",
    "DataError",
    "FlatRows",
    "ImageFileSet",
    "SampleSet",
    "TensorSet",
    "ToySpec",
    "dataset_names",
    "describe",
    "load_split",
    "load_vectors",
    "open_npy",
    "read_npy",
    "test_slice",
    "toy_dataset",
    "toy_log_density",
    "toy_sample",
]
