"""Autoencoders of the MoW paper, in a registry.

Part of :mod:`distmatch.models`, which re-exports the public names.

``ARCHITECTURES`` is the table of contents: each name maps to an :class:`ArchSpec` whose ``build``
returns an ``(encoder, decoder)`` pair; :func:`build_autoencoder` checks the sample shape and wraps
the pair in an :class:`Autoencoder`. The layers follow the supplement (Section A) of Spurek et al.,
"One-element Batch Training by Moving Window" (arXiv:1905.12947), and, where the text is silent
(initialisation, padding), the reference code gmum/MoW (TensorFlow 1): weights Glorot-uniform and
biases zero as ``tf.layers`` does, and TensorFlow's "same"/"valid" output sizes reproduced exactly.
No architecture uses BatchNorm: with k fresh samples per step (down to one) its batch statistics
would be meaningless. No loss logic lives here.

Example:
    >>> model = build_autoencoder("mnist_mlp", sample_shape=(1, 28, 28))
    >>> z, rec = model(torch.rand(4, 1, 28, 28))
    >>> z.shape, rec.shape
    (torch.Size([4, 20]), torch.Size([4, 1, 28, 28]))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .._core import resolve
from ._architectures import (
    Pair,
    celeba_conv,
    cifar_conv,
    ffhq_conv,
    fmnist_conv,
    mlp_autoencoder,
    mnist_mlp,
)

__all__ = [
    "ARCHITECTURES",
    "BATCHNORM_MIN_K",
    "ArchSpec",
    "Autoencoder",
    "build_autoencoder",
    "count_parameters",
    "has_batchnorm",
    "warn_if_batchnorm",
]

BATCHNORM_MIN_K = 16  # below this many fresh samples per step, BatchNorm statistics are noise


@dataclass(frozen=True)
class ArchSpec:
    """One registered architecture.

    Attributes:
        build: ``build(sample_shape, latent_dim, **options) -> (encoder, decoder)``.
        default_latent_dim: the paper's latent size for this data set.
        sample_shape: the one ``(C, H, W)`` or ``(D,)`` it takes, or None if it adapts.
        description: one line for listings.
    """

    build: Callable[..., Pair]
    default_latent_dim: int
    sample_shape: tuple[int, ...] | None
    description: str


ARCHITECTURES: dict[str, ArchSpec] = {
    "mnist_mlp": ArchSpec(mnist_mlp, 20, (1, 28, 28), "MNIST: 3 x Dense(200) MLP (MoW suppl. A)"),
    "fmnist_conv": ArchSpec(
        fmnist_conv, 8, (1, 28, 28), "Fashion-MNIST: conv 4x4/2, 128-1024 filters (MoW suppl. A)"
    ),
    "cifar_conv": ArchSpec(
        cifar_conv, 64, (3, 32, 32), "CIFAR-10: conv 2x2, 3-32 filters (MoW suppl. A)"
    ),
    "celeba_conv": ArchSpec(
        celeba_conv, 32, (3, 64, 64), "CelebA 64x64: conv 4x4/2, 32-64 filters (MoW suppl. A)"
    ),
    "ffhq_conv": ArchSpec(
        ffhq_conv, 64, None, "FFHQ (3, S, S), S multiple of 256, paper 1024: conv 5x5/4 (suppl. A)"
    ),
    "mlp": ArchSpec(
        mlp_autoencoder, 8, None, "any shape: Dense(256) x 2 MLP, sigmoid output for images"
    ),
}


# ---------------------------------------------------------------------------------------- the model


class Autoencoder(nn.Module):
    """An encoder and a decoder with the shapes they map between.

    ``encode``: ``(B, *sample_shape) -> (B, latent_dim)``; ``decode``: back, images in [0, 1].

    Args:
        encoder: module mapping ``(B, *sample_shape)`` to ``(B, latent_dim)``.
        decoder: module mapping ``(B, latent_dim)`` to ``(B, *sample_shape)``.
        latent_dim: size of the codes z.
        sample_shape: ``(C, H, W)`` for images, ``(D,)`` for vectors.
        arch: name of the architecture, as in ``ARCHITECTURES`` (kept for checkpoints).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        latent_dim: int,
        sample_shape: tuple[int, ...],
        arch: str,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = int(latent_dim)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.arch = arch

    def encode(self, x: Tensor) -> Tensor:
        """Codes of a batch: ``(B, *sample_shape) -> (B, latent_dim)``.

        Raises:
            ValueError: ``x`` does not have shape ``(B, *sample_shape)``.
        """
        if tuple(x.shape[1:]) != self.sample_shape:
            raise ValueError(
                f"x must have shape (B, {', '.join(map(str, self.sample_shape))}); "
                f"got {tuple(x.shape)}."
            )
        return self.encoder(x)  # (B, latent_dim)

    def decode(self, z: Tensor) -> Tensor:
        """Reconstructions or samples: ``(B, latent_dim) -> (B, *sample_shape)``.

        Raises:
            ValueError: ``z`` does not have shape ``(B, latent_dim)``.
        """
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}); got {tuple(z.shape)}.")
        return self.decoder(z)  # (B, *sample_shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(z, reconstruction)``, shapes ``(B, latent_dim)`` and ``(B, *sample_shape)``."""
        z = self.encode(x)  # (B, latent_dim)
        return z, self.decode(z)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, latent_dim={self.latent_dim}, sample_shape={self.sample_shape}"


def build_autoencoder(
    arch: str,
    *,
    sample_shape: tuple[int, ...],
    latent_dim: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> Autoencoder:
    """Builds a registered architecture after checking that the sample shape fits it.

    Args:
        arch: a key of ``ARCHITECTURES``.
        sample_shape: shape of one sample, ``(C, H, W)`` or ``(D,)``.
        latent_dim: size of z; None takes the architecture's ``default_latent_dim``.
        options: extra keyword options of the builder, e.g. ``{"hidden": (128,)}`` for ``mlp``.

    Returns:
        The :class:`Autoencoder`, in training mode, on the default device.

    Raises:
        ValueError: unknown ``arch`` or option, a ``sample_shape`` the architecture cannot take,
            or ``latent_dim < 1``.
        TypeError: ``latent_dim`` is not an int.

    Example:
        >>> build_autoencoder("ffhq_conv", sample_shape=(3, 256, 256)).latent_dim
        64
    """
    spec, shape, latent_dim, options = resolve(
        ARCHITECTURES, arch, sample_shape, latent_dim, options
    )
    if spec.sample_shape is not None and shape != spec.sample_shape:
        raise ValueError(f"sample_shape must be {spec.sample_shape} for {arch}; got {shape}.")
    encoder, decoder = spec.build(shape, latent_dim, **options)
    return Autoencoder(encoder, decoder, latent_dim=latent_dim, sample_shape=shape, arch=arch)


# ------------------------------------------------------------------------------------ inspection


def has_batchnorm(module: nn.Module) -> bool:
    """Whether any submodule is a BatchNorm (1d/2d/3d, lazy or synchronised)."""
    return any(isinstance(m, _BatchNorm) for m in module.modules())


def warn_if_batchnorm(module: nn.Module, k: int) -> None:
    """Warns when ``module`` has BatchNorm and only ``k < BATCHNORM_MIN_K`` fresh samples per step.

    BatchNorm normalises with the mean and variance of the current batch; with a moving window only
    the ``k`` fresh samples pass through the network, so at small k (k = 1: zero variance) those
    statistics are meaningless and training and evaluation behave differently.

    Args:
        module: the network to inspect.
        k: fresh samples per step.

    Raises:
        ValueError: ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    if k < BATCHNORM_MIN_K and has_batchnorm(module):
        warnings.warn(
            f"{type(module).__name__} contains BatchNorm, but with k={k} fresh samples per step its "
            f"batch statistics are meaningless (k < {BATCHNORM_MIN_K}); use GroupNorm or LayerNorm, "
            "or no normalisation.",
            UserWarning,
            stacklevel=2,
        )


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters (each shared parameter counted once), trainable or not."""
    return sum(p.numel() for p in module.parameters())
