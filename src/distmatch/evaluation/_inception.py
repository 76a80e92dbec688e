"""InceptionV3 pool3 features of the Fréchet Inception Distance, in plain torch.

The network is the TensorFlow Inception graph of 2015-12-05 that FID is defined with, in the port
of pytorch-fid (``FIDInceptionA/C/E_1/E_2``): torchvision's ``Inception3`` layout with 1008 classes
and no auxiliary classifier, so that the state-dict names of the weights file
``pt_inception-2015-12-05-6726825d.pth`` (``Conv2d_1a_3x3.conv.weight``, ``fc.weight``,
``Mixed_7c.branch3x3dbl_3b.bn.running_var``, ...) load strictly. It differs from torchvision's
network only in the pooling branches:

- ``Mixed_5b..5d``, ``Mixed_6b..6e``, ``Mixed_7b``: 3×3 average pool, stride 1, padding 1, with the
  padded zeros left out of the average (``count_include_pad=False``, as TensorFlow does);
- ``Mixed_7c``: 3×3 max pool instead of the average pool.

Every convolution is ``BasicConv2d``: ``relu(batch_norm(conv(x)))``, convolution without bias,
batch norm with ``eps = 0.001``.

Preprocessing and features, for an image ``x`` in ``[0, 1]^(C, H, W)`` with ``C`` in {1, 3}::

    x' = 2 * resize_299(x) - 1                  # bilinear, align_corners=False; 1 channel -> 3
    f(x) = mean_{8 x 8 positions} Mixed_7c(x')  # the 2048-d "pool3" features

Reference: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017; Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._core import atomic_path

__all__ = [
    "FEATURE_DIM",
    "WEIGHTS_FILE",
    "WEIGHTS_SHA256_PREFIX",
    "WEIGHTS_URL",
    "FIDInceptionV3",
    "InceptionWeightsError",
    "default_cache_dir",
    "load_inception",
]

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = (
    f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"
)
WEIGHTS_SHA256_PREFIX = "6726825d"  # the hash suffix of WEIGHTS_FILE, torch.hub's convention
FEATURE_DIM = 2048
INPUT_SIZE = 299
NUM_CLASSES = 1008  # the 2015 TensorFlow graph's classifier; unused for features, kept to load


class InceptionWeightsError(ValueError):
    """A weights file that is missing, corrupt, or not the FID Inception state dict."""


def default_cache_dir() -> Path:
    """The folder of downloaded weights and cached statistics: ``$DISTMATCH_CACHE``, else
    ``~/.cache/distmatch``."""
    return Path(os.environ.get("DISTMATCH_CACHE") or "~/.cache/distmatch").expanduser()


class BasicConv2d(nn.Module):
    """``relu(batch_norm(conv(x)))``: convolution without bias, batch norm with ``eps = 0.001``."""

    def __init__(self, in_channels: int, out_channels: int, **conv_options) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_options)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool leaves padded positions out of the mean.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35×35 block: 1×1, 5×5, double 3×3 and pooled 1×1 branches (``Mixed_5b..5d``)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], dim=1)


class InceptionB(nn.Module):
    """35×35 → 17×17 reduction (``Mixed_6a``)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([self.branch3x3(x), branch3x3dbl, branch_pool], dim=1)


class InceptionC(nn.Module):
    """17×17 block with factorised 7×7 convolutions (``Mixed_6b..6e``)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
            branch7x7dbl = layer(branch7x7dbl)
        branch7x7dbl = self.branch7x7dbl_5(branch7x7dbl)
        branch_pool = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], dim=1)


class InceptionD(nn.Module):
    """17×17 → 8×8 reduction (``Mixed_7a``)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7x7x3 = layer(branch7x7x3)
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], dim=1)


class InceptionE(nn.Module):
    """8×8 block with split 3×3 convolutions (``Mixed_7b`` average-pools, ``Mixed_7c`` max-pools).

    Args:
        in_channels: input channels (1280 or 2048).
        pool: ``"avg"`` (``FIDInceptionE_1``) or ``"max"`` (``FIDInceptionE_2``): the pooling ahead
            of the ``branch_pool`` convolution.
    """

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        pools = {"avg": _avg_pool_3x3, "max": _max_pool_3x3}
        if pool not in pools:
            raise ValueError(f"pool must be 'avg' or 'max'; got {pool!r}.")
        self.pool = pools[pool]
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        b3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(b3dbl), self.branch3x3dbl_3b(b3dbl)], dim=1)
        branch_pool = self.branch_pool(self.pool(x))
        return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl, branch_pool], dim=1)


class FIDInceptionV3(nn.Module):
    """The FID Inception network, mapping images in [0, 1] to 2048-d pool3 features.

    Built with PyTorch's default initialisation; load the FID weights with :func:`load_inception`.
    ``fc`` (1008 classes) is not used by :meth:`forward`; it is there so that the weights file loads
    strictly.

    Example:
        >>> model = load_inception("pt_inception-2015-12-05-6726825d.pth")  # doctest: +SKIP
        >>> model(torch.rand(4, 3, 32, 32)).shape  # doctest: +SKIP
        torch.Size([4, 2048])
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1], C in {1, 3} → (N, 3, 299, 299) in [-1, 1], in the weights'
        dtype and on their device."""
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor; got {type(images).__name__}.")
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"images must have shape (N, 1 or 3, H, W); got {tuple(images.shape)}."
            )
        weight = self.Conv2d_1a_3x3.conv.weight
        x = images.to(device=weight.device, dtype=weight.dtype)
        x = x.expand(-1, 3, -1, -1)  # (N, 3, H, W); grey images repeat their one channel
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2.0 * x - 1.0  # (N, 3, 299, 299)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pool3 features of images in [0, 1].

        Args:
            images: (N, C, H, W), C in {1, 3}, values in [0, 1]; any size (resized to 299×299).

        Returns:
            (N, 2048) features.

        Raises:
            TypeError: ``images`` is not a tensor.
            ValueError: ``images`` is not 4-D with 1 or 3 channels.
        """
        x = self.preprocess(images)  # (N, 3, 299, 299)
        x = self.Conv2d_1a_3x3(x)  # (N, 32, 149, 149)
        x = self.Conv2d_2a_3x3(x)  # (N, 32, 147, 147)
        x = self.Conv2d_2b_3x3(x)  # (N, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 64, 73, 73)
        x = self.Conv2d_3b_1x1(x)  # (N, 80, 73, 73)
        x = self.Conv2d_4a_3x3(x)  # (N, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 192, 35, 35)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a):
            x = block(x)  # (N, 256 | 288 | 288, 35, 35), then (N, 768, 17, 17)
        for block in (self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a):
            x = block(x)  # (N, 768, 17, 17), then (N, 1280, 8, 8)
        x = self.Mixed_7c(self.Mixed_7b(x))  # (N, 2048, 8, 8)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # (N, 2048)


def load_inception(
    weights: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> FIDInceptionV3:
    """The FID Inception network with the 2015-12-05 weights, in eval mode, frozen, on CPU.

    The weights file is looked for in this order: ``weights``; ``cache_dir / WEIGHTS_FILE``
    (``cache_dir`` defaults to :func:`default_cache_dir`); a download from ``WEIGHTS_URL`` into
    that folder if ``download`` is true, kept only if its SHA-256 starts with
    ``WEIGHTS_SHA256_PREFIX``.

    Args:
        weights: path of ``pt_inception-2015-12-05-6726825d.pth``, or ``None`` to use the cache.
        cache_dir: the folder searched (and downloaded into) when ``weights`` is ``None``.
        download: whether a missing file may be downloaded.

    Returns:
        the network; move it with ``.to(device)``.

    Raises:
        InceptionWeightsError: the file is missing (and not downloaded), fails the hash check,
            is unreadable, or its keys or shapes are not those of :class:`FIDInceptionV3`.
        OSError: the download failed.

    Example:
        >>> model = load_inception(cache_dir="weights", download=True)  # doctest: +SKIP
    """
    path = _weights_path(weights, cache_dir, download)
    state = _read_state_dict(path)
    model = FIDInceptionV3()
    _check_keys(state, model.state_dict(), path)
    model.load_state_dict(state, strict=True)
    model.eval()
    model.requires_grad_(False)
    return model


def _weights_path(
    weights: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str] | None, download: bool
) -> Path:
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise InceptionWeightsError(
                f"inception weights must be an existing file ({WEIGHTS_FILE}, from {WEIGHTS_URL}); "
                f"got a missing path '{path}'."
            )
        return path
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / WEIGHTS_FILE
    if path.is_file():
        return path
    if not download:
        raise InceptionWeightsError(
            f"inception weights {WEIGHTS_FILE} must be given with --inception-weights PATH or be "
            f"in the cache folder {folder}; got neither. Download it from {WEIGHTS_URL}"
        )
    _download(WEIGHTS_URL, path)
    return path


def _download(url: str, target: Path) -> None:
    """Downloads ``url`` to ``target``, which appears only if the SHA-256 prefix matches."""
    logger.info("downloading %s to %s", url, target)
    with atomic_path(target) as tmp:
        torch.hub.download_url_to_file(url, str(tmp), progress=True)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        if not digest.startswith(WEIGHTS_SHA256_PREFIX):
            raise InceptionWeightsError(
                f"the download of {url} must have a SHA-256 starting with {WEIGHTS_SHA256_PREFIX}; "
                f"got {digest[: len(WEIGHTS_SHA256_PREFIX)]} (the file was removed)."
            )


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types (KeyError for some text files) for these
        raise InceptionWeightsError(
            f"'{path}' must be a torch state-dict file ({WEIGHTS_FILE}); got a file that is not "
            f"one ({type(err).__name__} while reading it)."
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise InceptionWeightsError(
            f"'{path}' must hold a state dict of tensors; got a {type(state).__name__}."
        )
    return state


def _check_keys(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], path: Path
) -> None:
    # BatchNorm fills in a missing num_batches_tracked itself (files from before torch 0.4.1).
    missing = [k for k in expected if k not in state and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        first = (missing or unexpected or wrong_shape)[0]
        raise InceptionWeightsError(
            f"'{path}' must hold the FID Inception state dict ({WEIGHTS_FILE}); got "
            f"{len(missing)} missing keys, {len(unexpected)} unexpected keys and "
            f"{len(wrong_shape)} keys of the wrong shape (first: '{first}')."
        )
