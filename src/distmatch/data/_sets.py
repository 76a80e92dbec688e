"""The sample sets that :func:`distmatch.data.load_split` returns: in memory, or decoded from files.

Part of :mod:`distmatch.data`, which re-exports the public names; import them from there.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from ._images import DataError, ImageContainer, crop_resize, decode

__all__ = ["FlatRows", "ImageFileSet", "SampleSet", "TensorSet", "describe", "test_slice"]

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
        """Returns the samples at ``indices`` (``(B,)`` int64) as float32 ``(B, *sample_shape)``,
        on the device that holds the data.

        Host indices reach a GPU without a synchronisation (``non_blocking``: CUDA stages host
        memory before it returns), so the host does not wait for the GPU's queued steps."""
        rows = indices.to(self.data.device, non_blocking=True)
        return self._scaled(self.data[rows])  # fancy indexing copies

    @property
    def nbytes(self) -> int:
        """Bytes of the held samples."""
        return self.data.numel() * self.data.element_size()

    def to(self, device: torch.device | str) -> TensorSet:
        """Moves the samples (and labels) to ``device``, e.g. a GPU: then a batch costs no copy
        from host memory. Returns ``self``."""
        self.data = self.data.to(device)
        return self


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


def describe(sample_set: SampleSet) -> str:
    """Returns a one-line summary, e.g. "mnist train: 60000 images 1x28x28".

    Vectors read "x.npy test: 100 vectors of dimension 8".
    """
    n, shape = len(sample_set), sample_set.sample_shape
    kind = ("image" if sample_set.is_image else "vector") + ("" if n == 1 else "s")
    size = "x".join(str(s) for s in shape) if sample_set.is_image else f"of dimension {shape[0]}"
    return f"{sample_set.name} {sample_set.split}: {n} {kind} {size}"


def test_slice(n: int, split: str, what: str) -> slice:
    """The rows of ``split`` when the last 1/TEST_EVERY of ``n`` samples is the test split."""
    if n < 2:
        raise DataError(
            f"{what} must hold at least 2 samples to split into train and test; got {n}."
        )
    n_test = max(1, n // TEST_EVERY)
    return slice(0, n - n_test) if split == "train" else slice(n - n_test, n)


class FlatRows:
    """Rows of a sample set read ``batch_size`` at a time, each chunk flattened to (B, D) float32:
    one streamed pass (files are decoded chunk by chunk, never all held).

    Args:
        samples: the sample set.
        rows: (R,) int64 row indices, in reading order (e.g. one class, or one shard).
        batch_size: samples per chunk.

    Attributes:
        num_samples: R, the number of samples the pass yields (progress bars read it).
    """

    def __init__(self, samples: SampleSet, rows: torch.Tensor, batch_size: int) -> None:
        self.samples, self.rows, self.batch_size = samples, rows, batch_size
        self.num_samples = len(rows)

    def __iter__(self):
        for start in range(0, self.num_samples, self.batch_size):
            yield self.samples.get_batch(self.rows[start : start + self.batch_size]).flatten(1)
