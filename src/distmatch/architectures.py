"""The encoder/decoder pairs of the MoW paper's supplement, and TensorFlow-style layers.

Each builder returns an ``(encoder, decoder)`` pair of ``nn.Sequential``; the registry that names
them and the :class:`~distmatch.models.Autoencoder` that wraps them live in :mod:`distmatch.models`.
The layers follow the supplement (Section A) of Spurek et al., "One-element Batch Training by Moving
Window" (arXiv:1905.12947), and, where the text is silent (initialisation, padding), the reference
code gmum/MoW (TensorFlow 1): weights Glorot-uniform and biases zero as ``tf.layers`` does, and
TensorFlow's "same"/"valid" output sizes reproduced exactly. No architecture uses BatchNorm.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._registry import as_widths

__all__ = [
    "Conv2dSame",
    "ConvTranspose2dSame",
    "HalfTanh",
    "celeba_conv",
    "cifar_conv",
    "ffhq_conv",
    "fmnist_conv",
    "mlp",
    "mnist_mlp",
    "same_padding",
]

Pair = tuple[nn.Sequential, nn.Sequential]  # (encoder, decoder)


# --------------------------------------------------------------------------- TensorFlow-style layers


def same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one spatial axis.

    ``out = ceil(size / stride)``, ``total = max((out - 1) * stride + kernel_size - size, 0)``,
    ``before = total // 2``, ``after = total - before`` (the odd pixel goes after, unlike PyTorch's
    symmetric ``padding``).

    Args:
        size: input length along the axis.
        kernel_size: kernel length along the axis.
        stride: stride along the axis.

    Returns:
        ``(before, after)``, the zeros to add at the start and at the end.

    Example:
        >>> same_padding(7, 4, 2)
        (1, 2)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``Conv2d`` with TensorFlow "SAME" padding: output side ``ceil(in / stride)``.

    The padding is computed from each input's size (see :func:`same_padding`) and may be one pixel
    larger after than before, as in ``tf.layers.conv2d(..., padding="same")``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))  # (B, C, H', W')


class ConvTranspose2dSame(nn.ConvTranspose2d):
    """``ConvTranspose2d`` with TensorFlow "SAME" padding: output side ``in * stride``.

    TensorFlow's transposed "SAME" convolution is the gradient of a "SAME" convolution from
    ``out = in * stride`` to ``in``, so the full output of length ``(in - 1) * stride + k`` is cropped
    by that convolution's ``(before, after)`` padding — asymmetric when ``k - stride`` is odd, which
    PyTorch's ``padding``/``output_padding`` cannot express. We compute the full transposed
    convolution, crop (or zero-pad when ``k < stride``) to ``[before, before + out)`` and add the bias.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        full = F.conv_transpose2d(x, self.weight, None, self.stride)  # (B, C, (H-1)s+k, (W-1)s+k)
        crop = []
        for axis in (-1, -2):  # F.pad takes the last axis first
            out = x.shape[axis] * self.stride[axis]
            before, _ = same_padding(out, self.kernel_size[axis], self.stride[axis])
            crop += [-before, out + before - full.shape[axis]]
        return F.pad(full, crop) + self.bias[:, None, None]  # (B, C, H s, W s)


class HalfTanh(nn.Module):
    """``tanh(x) / 2 + 1/2`` (= ``sigmoid(2x)``), the reference code's map of tanh outputs to (0, 1)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x) / 2 + 0.5


def _init_like_tensorflow(encoder: nn.Sequential, decoder: nn.Sequential) -> Pair:
    # tf.layers defaults: Glorot-uniform kernels, zero biases (PyTorch's default differs).
    for m in (*encoder.modules(), *decoder.modules()):
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return encoder, decoder


def _conv_stack(
    conv: type[nn.Module], channels: Sequence[int], kernel_size: int, stride: int
) -> list[nn.Module]:
    """``conv + ReLU`` between consecutive channel counts."""
    layers: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        layers += [conv(c_in, c_out, kernel_size, stride), nn.ReLU()]
    return layers


def _dense_stack(sizes: Sequence[int]) -> list[nn.Module]:
    """``Linear + ReLU`` between consecutive sizes, the last ``Linear`` without activation."""
    layers: list[nn.Module] = []
    for d_in, d_out in itertools.pairwise(sizes):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return layers[:-1]


# ------------------------------------------------------------------------------------ architectures


def _mlp_pair(
    sample_shape: tuple[int, ...], latent_dim: int, hidden: Sequence[int], output: nn.Module | None
) -> Pair:
    dim = math.prod(sample_shape)
    encoder = nn.Sequential(nn.Flatten(), *_dense_stack([dim, *hidden, latent_dim]))
    tail = [output] if output is not None else []
    decoder = nn.Sequential(
        *_dense_stack([latent_dim, *reversed(hidden), dim]), *tail, nn.Unflatten(1, sample_shape)
    )
    return encoder, decoder


def mnist_mlp(sample_shape: tuple[int, ...], latent_dim: int) -> Pair:
    """Fully connected autoencoder for MNIST (supplement, Section A, "MNIST").

    Encoder: flatten 784 → 3 × (Linear(200) + ReLU) → Linear(z).
    Decoder: z → 3 × (Linear(200) + ReLU) → Linear(784) → sigmoid → (1, 28, 28).
    The supplement lists 2 hidden decoder layers and a 200-unit output; the reference code
    (``MnistArchitectureProvider``) has 3 hidden layers and a 784-unit output, as here.

    Args:
        sample_shape: ``(1, 28, 28)``.
        latent_dim: size of z (paper: 20).

    Returns:
        ``(encoder, decoder)``.
    """
    return _init_like_tensorflow(*_mlp_pair(sample_shape, latent_dim, (200,) * 3, nn.Sigmoid()))


def fmnist_conv(sample_shape: tuple[int, ...], latent_dim: int) -> Pair:
    """Convolutional autoencoder for Fashion-MNIST (supplement, Section A, "Fashion MNIST").

    Encoder: 4 × (conv 4×4 stride 2 "same" + ReLU) with 128, 256, 512, 1024 filters
    (28 → 14 → 7 → 4 → 2) → flatten (4096) → Linear(z).
    Decoder: Linear(7·7·1024) + ReLU → (1024, 7, 7) → 2 × (transposed conv 4×4 stride 2 "same" +
    ReLU) with 512, 256 filters (7 → 14 → 28) → transposed conv 4×4 stride 1 "same" to 1 channel →
    tanh → x/2 + 1/2.
    The ReLU after the first decoder layer follows the supplement; the reference code
    (``FashionMnistArchitectureProvider``) has none. As in that code, the six strided convolutions
    draw weights from a normal of std 0.01 truncated at 2 std; the dense layers and the last
    convolution are Glorot-uniform; all biases are zero.

    Args:
        sample_shape: ``(1, 28, 28)``.
        latent_dim: size of z (paper: 8).

    Returns:
        ``(encoder, decoder)``.
    """
    encoder = nn.Sequential(
        *_conv_stack(Conv2dSame, (1, 128, 256, 512, 1024), 4, 2),
        nn.Flatten(),
        nn.Linear(1024 * 2 * 2, latent_dim),
    )
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 7 * 7 * 1024),
        nn.ReLU(),
        nn.Unflatten(1, (1024, 7, 7)),
        *_conv_stack(ConvTranspose2dSame, (1024, 512, 256), 4, 2),
        ConvTranspose2dSame(256, 1, 4, 1),
        HalfTanh(),
    )
    _init_like_tensorflow(encoder, decoder)
    for m in (*encoder.modules(), *decoder.modules()):
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and m.stride[0] == 2:
            nn.init.trunc_normal_(m.weight, std=0.01, a=-0.02, b=0.02)
    return encoder, decoder


def cifar_conv(sample_shape: tuple[int, ...], latent_dim: int) -> Pair:
    """Convolutional autoencoder for CIFAR-10 (supplement, Section A, "CIFAR-10").

    Encoder: conv 2×2 "valid" to 3 channels (32 → 31) → conv 2×2 stride 2 "valid" to 32 (15) →
    2 × conv 2×2 "valid" to 32 (14, 13), ReLU after each → flatten (5408) → Linear(128) + ReLU →
    Linear(z).
    Decoder: Linear(128) + ReLU → Linear(8192) + ReLU → (32, 16, 16) → 2 × (transposed conv 2×2
    "same" to 32 + ReLU) (16) → transposed conv 3×3 stride 2 "valid" to 32 + ReLU (33) → conv 2×2
    "valid" to 3 channels (32) → sigmoid. Layers as in the reference ``Cifar10ArchitectureProvider``.

    Args:
        sample_shape: ``(3, 32, 32)``.
        latent_dim: size of z (paper: 64).

    Returns:
        ``(encoder, decoder)``.
    """
    encoder = nn.Sequential(
        nn.Conv2d(3, 3, 2),
        nn.ReLU(),
        nn.Conv2d(3, 32, 2, stride=2),
        nn.ReLU(),
        nn.Conv2d(32, 32, 2),
        nn.ReLU(),
        nn.Conv2d(32, 32, 2),
        nn.ReLU(),
        nn.Flatten(),
        *_dense_stack([32 * 13 * 13, 128, latent_dim]),
    )
    decoder = nn.Sequential(
        *_dense_stack([latent_dim, 128, 8192]),
        nn.ReLU(),
        nn.Unflatten(1, (32, 16, 16)),
        *_conv_stack(ConvTranspose2dSame, (32, 32, 32), 2, 1),
        nn.ConvTranspose2d(32, 32, 3, stride=2),
        nn.ReLU(),
        nn.Conv2d(32, 3, 2),
        nn.Sigmoid(),
    )
    return _init_like_tensorflow(encoder, decoder)


def celeba_conv(sample_shape: tuple[int, ...], latent_dim: int) -> Pair:
    """Convolutional autoencoder for CelebA 64×64 (supplement, Section A, "CelebA").

    Encoder: 4 × (conv 4×4 stride 2 "same" + ReLU) with 32, 32, 64, 64 channels
    (64 → 32 → 16 → 8 → 4) → flatten (1024) → Linear(1024) + ReLU → Linear(256) + ReLU → Linear(z).
    Decoder: Linear(256) + ReLU → Linear(1024) + ReLU → (64, 4, 4) → 3 × (transposed conv 4×4
    stride 2 "same" + ReLU) to 64, 32, 32 channels (8, 16, 32) → transposed conv 4×4 stride 2
    "same" to 3 channels (64) → sigmoid.
    The supplement's "2 × fully connected layers (1024 and 256 ReLU neurons)" in the encoder are
    both kept, mirroring the decoder's 256 and 1024.

    Args:
        sample_shape: ``(3, 64, 64)``.
        latent_dim: size of z (paper: 32).

    Returns:
        ``(encoder, decoder)``.
    """
    encoder = nn.Sequential(
        *_conv_stack(Conv2dSame, (3, 32, 32, 64, 64), 4, 2),
        nn.Flatten(),
        *_dense_stack([64 * 4 * 4, 1024, 256, latent_dim]),
    )
    decoder = nn.Sequential(
        *_dense_stack([latent_dim, 256, 1024]),
        nn.ReLU(),
        nn.Unflatten(1, (64, 4, 4)),
        *_conv_stack(ConvTranspose2dSame, (64, 64, 32, 32), 4, 2),
        ConvTranspose2dSame(32, 3, 4, 2),
        nn.Sigmoid(),
    )
    return _init_like_tensorflow(encoder, decoder)


def ffhq_conv(sample_shape: tuple[int, ...], latent_dim: int) -> Pair:
    """Convolutional autoencoder for FFHQ, S×S with S a multiple of 256 (supplement, "FFHQ").

    Encoder: 4 × (conv 5×5 stride 4 "same" + ReLU) with 128, 256, 512, 1024 channels
    (S → S/4 → S/16 → S/64 → S/256) → flatten → Linear(z).
    Decoder: Linear(1024 · (S/64)²) + ReLU → (1024, S/64, S/64) → 3 × (transposed conv 5×5 stride 4
    "same" + ReLU) to 512, 256, 128 channels (S/16, S/4, S) → transposed conv 5×5 stride 1 "same"
    to 3 channels → tanh → x/2 + 1/2.
    At the paper's S = 1024 the decoder starts at 16×16, as the supplement states, while the
    encoder ends at 4×4; the asymmetry is kept.

    Args:
        sample_shape: ``(3, S, S)``, S a positive multiple of 256 (paper: 1024).
        latent_dim: size of z (paper: 64).

    Returns:
        ``(encoder, decoder)``.

    Raises:
        ValueError: ``sample_shape`` is not ``(3, S, S)`` with S a multiple of 256.
    """
    shape = tuple(sample_shape)
    if len(shape) != 3 or shape[0] != 3 or shape[1] != shape[2] or shape[1] < 256 or shape[1] % 256:
        raise ValueError(
            "sample_shape must be (3, S, S) with S a positive multiple of 256 for ffhq_conv; "
            f"got {shape}."
        )
    height = shape[1]
    side = height // 64
    encoder = nn.Sequential(
        *_conv_stack(Conv2dSame, (3, 128, 256, 512, 1024), 5, 4),
        nn.Flatten(),
        nn.Linear(1024 * (height // 256) ** 2, latent_dim),
    )
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 1024 * side * side),
        nn.ReLU(),
        nn.Unflatten(1, (1024, side, side)),
        *_conv_stack(ConvTranspose2dSame, (1024, 512, 256, 128), 5, 4),
        ConvTranspose2dSame(128, 3, 5, 1),
        HalfTanh(),
    )
    return _init_like_tensorflow(encoder, decoder)


def mlp(sample_shape: tuple[int, ...], latent_dim: int, hidden: Sequence[int] = (256, 256)) -> Pair:
    """Generic fully connected autoencoder for any sample shape (not from the paper).

    Encoder: flatten D → (Linear(h) + ReLU) for h in ``hidden`` → Linear(z).
    Decoder: z → (Linear(h) + ReLU) for h in reversed ``hidden`` → Linear(D) → sigmoid if
    ``sample_shape`` is an image ``(C, H, W)`` (outputs in [0, 1]), no activation otherwise →
    reshape to ``sample_shape``.

    Args:
        sample_shape: any shape, e.g. ``(D,)`` or ``(C, H, W)``.
        latent_dim: size of z (default 8).
        hidden: hidden layer widths of the encoder; the decoder uses them reversed.

    Returns:
        ``(encoder, decoder)``.

    Raises:
        ValueError: a width in ``hidden`` is not a positive int.
    """
    hidden = as_widths(hidden)
    output = nn.Sigmoid() if len(sample_shape) == 3 else None
    return _init_like_tensorflow(*_mlp_pair(sample_shape, latent_dim, hidden, output))
