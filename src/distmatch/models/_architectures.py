"""The encoder/decoder pairs of the MoW paper's supplement, and TensorFlow-style layers.

Part of :mod:`distmatch.models`. Each builder returns an ``(encoder, decoder)`` pair of
``nn.Sequential``; the registry that names them and the :class:`~distmatch.models.Autoencoder` that
wraps them are in :mod:`distmatch.models._autoencoder`.
The layers follow the supplement (Section A) of Spurek et al., "One-element Batch Training by Moving
Window" (arXiv:1905.12947), and, where the text is silent (initialisation, padding), the reference
code gmum/MoW (TensorFlow 1): weights Glorot-uniform and biases zero as ``tf.layers`` does, and
TensorFlow's "same"/"valid" output sizes reproduced exactly. No architecture uses BatchNorm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from .._core import as_widths
from ._layers import (
    Conv2dSame,
    ConvTranspose2dSame,
    HalfTanh,
    conv_stack,
    dense_stack,
    init_like_tensorflow,
)

__all__ = [
    "Pair",
    "celeba_conv",
    "cifar_conv",
    "ffhq_conv",
    "fmnist_conv",
    "mlp_autoencoder",
    "mnist_mlp",
]

Pair = tuple[nn.Sequential, nn.Sequential]  # (encoder, decoder)


def _mlp_pair(
    sample_shape: tuple[int, ...], latent_dim: int, hidden: Sequence[int], output: nn.Module | None
) -> Pair:
    dim = math.prod(sample_shape)
    encoder = nn.Sequential(nn.Flatten(), *dense_stack([dim, *hidden, latent_dim]))
    tail = [output] if output is not None else []
    decoder = nn.Sequential(
        *dense_stack([latent_dim, *reversed(hidden), dim]), *tail, nn.Unflatten(1, sample_shape)
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
    return init_like_tensorflow(*_mlp_pair(sample_shape, latent_dim, (200,) * 3, nn.Sigmoid()))


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
        *conv_stack(Conv2dSame, (1, 128, 256, 512, 1024), 4, 2),
        nn.Flatten(),
        nn.Linear(1024 * 2 * 2, latent_dim),
    )
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 7 * 7 * 1024),
        nn.ReLU(),
        nn.Unflatten(1, (1024, 7, 7)),
        *conv_stack(ConvTranspose2dSame, (1024, 512, 256), 4, 2),
        ConvTranspose2dSame(256, 1, 4, 1),
        HalfTanh(),
    )
    init_like_tensorflow(encoder, decoder)
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
        *dense_stack([32 * 13 * 13, 128, latent_dim]),
    )
    decoder = nn.Sequential(
        *dense_stack([latent_dim, 128, 8192]),
        nn.ReLU(),
        nn.Unflatten(1, (32, 16, 16)),
        *conv_stack(ConvTranspose2dSame, (32, 32, 32), 2, 1),
        nn.ConvTranspose2d(32, 32, 3, stride=2),
        nn.ReLU(),
        nn.Conv2d(32, 3, 2),
        nn.Sigmoid(),
    )
    return init_like_tensorflow(encoder, decoder)


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
        *conv_stack(Conv2dSame, (3, 32, 32, 64, 64), 4, 2),
        nn.Flatten(),
        *dense_stack([64 * 4 * 4, 1024, 256, latent_dim]),
    )
    decoder = nn.Sequential(
        *dense_stack([latent_dim, 256, 1024]),
        nn.ReLU(),
        nn.Unflatten(1, (64, 4, 4)),
        *conv_stack(ConvTranspose2dSame, (64, 64, 32, 32), 4, 2),
        ConvTranspose2dSame(32, 3, 4, 2),
        nn.Sigmoid(),
    )
    return init_like_tensorflow(encoder, decoder)


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
        *conv_stack(Conv2dSame, (3, 128, 256, 512, 1024), 5, 4),
        nn.Flatten(),
        nn.Linear(1024 * (height // 256) ** 2, latent_dim),
    )
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 1024 * side * side),
        nn.ReLU(),
        nn.Unflatten(1, (1024, side, side)),
        *conv_stack(ConvTranspose2dSame, (1024, 512, 256, 128), 5, 4),
        ConvTranspose2dSame(128, 3, 5, 1),
        HalfTanh(),
    )
    return init_like_tensorflow(encoder, decoder)


def mlp_autoencoder(
    sample_shape: tuple[int, ...], latent_dim: int, hidden: Sequence[int] = (256, 256)
) -> Pair:
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
    return init_like_tensorflow(*_mlp_pair(sample_shape, latent_dim, hidden, output))
