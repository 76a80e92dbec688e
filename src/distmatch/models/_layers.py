"""TensorFlow-style layers and the layer stacks that the encoders, decoders and generators share.

Part of :mod:`distmatch.models`, which re-exports the public names. The reference codes are written
with ``tf.layers`` and Keras: TensorFlow's "same" output sizes are reproduced exactly, and weights
are initialised Glorot-uniform with zero biases as those libraries do.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Conv2dSame",
    "ConvTranspose2dSame",
    "HalfTanh",
    "conv_stack",
    "dense_stack",
    "init_like_tensorflow",
    "same_padding",
]


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


def init_like_tensorflow(*networks: nn.Module) -> tuple[nn.Module, ...]:
    """Glorot-uniform weights and zero biases, the ``tf.layers`` and Keras defaults (PyTorch's
    default differs), for every linear and convolutional layer of ``networks``; returns them."""
    for network in networks:
        for m in network.modules():
            if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    return networks


def conv_stack(
    conv: type[nn.Module], channels: Sequence[int], kernel_size: int, stride: int
) -> list[nn.Module]:
    """``conv + ReLU`` between consecutive channel counts."""
    layers: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        layers += [conv(c_in, c_out, kernel_size, stride), nn.ReLU()]
    return layers


def dense_stack(
    sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU
) -> list[nn.Module]:
    """``Linear + activation`` between consecutive sizes, the last ``Linear`` without activation."""
    layers: list[nn.Module] = []
    for d_in, d_out in itertools.pairwise(sizes):
        layers += [nn.Linear(d_in, d_out), activation()]
    return layers[:-1]
