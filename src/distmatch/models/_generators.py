"""Generator networks of the distribution-matching papers, in a registry.

Part of :mod:`distmatch.models`, which re-exports the public names.

A generator maps latent codes ``z ~ N(0, I_latent_dim)`` to samples of shape ``sample_shape``.
``GENERATORS`` is the table of contents: each name maps to a :class:`GeneratorSpec` whose ``build``
returns the network; :func:`build_generator` checks the arguments and wraps the network in a
:class:`Generator`. As for the autoencoders, weights are Glorot-uniform and biases zero
(the Keras and ``tf.layers`` defaults, which the reference codes use). No loss logic lives here.

Example:
    >>> g = build_generator("clgn_mlp", sample_shape=(2,))
    >>> g.sample(1000).shape, sum(p.numel() for p in g.parameters())
    (torch.Size([1000, 2]), 792)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._core import as_widths, resolve
from ._layers import dense_stack, init_like_tensorflow

__all__ = [
    "GENERATORS",
    "Generator",
    "GeneratorSpec",
    "build_generator",
    "clgn_mlp",
    "conv_generator",
    "default_generator",
    "gmmn_mlp",
    "mlp_generator",
]

_GMMN_PIXELS = 28 * 28  # the GMMN generator's output layer is sized for MNIST


@dataclass(frozen=True)
class GeneratorSpec:
    """One registered generator architecture.

    Attributes:
        build: ``build(sample_shape, latent_dim, **options) -> nn.Sequential`` mapping
            ``(B, latent_dim)`` to ``(B, *sample_shape)``; it raises ValueError for a shape it
            cannot take.
        default_latent_dim: the paper's latent size.
        description: one line for listings.
    """

    build: Callable[..., nn.Sequential]
    default_latent_dim: int
    description: str


# ---------------------------------------------------------------------------------------- the model


class Generator(nn.Module):
    """A network mapping latent codes ``z ~ N(0, I)`` (and, if class-conditional, labels) to samples.

    ``forward``: ``(B, latent_dim) -> (B, *sample_shape)``; ``sample(n)`` draws the codes itself.

    A class-conditional generator (``classes = C > 0``, DP-MERF's setting) feeds its network the
    code and the one-hot class, ``[z, onehot(c)]`` of size ``latent_dim + C``; ``labels`` are class
    indices ``0 .. C-1``. Given no labels it generates a class-balanced batch, sample ``i`` of class
    ``i mod C``, so code that knows nothing of classes (FID, grids) sees every class.

    Args:
        network: module mapping ``(B, latent_dim + classes)`` to ``(B, *sample_shape)``.
        latent_dim: size of the codes z.
        sample_shape: ``(D,)`` for vectors, ``(C, H, W)`` for images.
        arch: name of the architecture, as in ``GENERATORS`` (kept for checkpoints).
        classes: number of classes of a class-conditional generator; 0: unconditional.
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        latent_dim: int,
        sample_shape: tuple[int, ...],
        arch: str,
        classes: int = 0,
    ):
        super().__init__()
        self.network = network
        self.latent_dim = int(latent_dim)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.arch = arch
        self.classes = int(classes)

    def balanced_labels(self, n: int, device: torch.device | str | None = None) -> Tensor:
        """``(n,)`` class indices ``i mod classes``: what a conditional generator makes unasked."""
        return torch.arange(n, device=device) % self.classes

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Samples from codes: ``(B, latent_dim) -> (B, *sample_shape)``.

        Args:
            z: ``(B, latent_dim)`` codes.
            labels: ``(B,)`` class indices in ``[0, classes)`` of a class-conditional generator;
                None: :meth:`balanced_labels`. Must be None for an unconditional one.

        Raises:
            ValueError: ``z`` does not have shape ``(B, latent_dim)``; ``labels`` of the wrong
                shape or range, or given to an unconditional generator.
        """
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}); got {tuple(z.shape)}.")
        if not self.classes:
            if labels is not None:
                raise ValueError("labels must be None for an unconditional generator; got labels.")
            return self.network(z)  # (B, *sample_shape)
        if labels is None:
            labels = self.balanced_labels(z.shape[0], z.device)
        if labels.shape != (z.shape[0],) or labels.dtype != torch.int64:
            raise ValueError(
                f"labels must be a ({z.shape[0]},) int64 tensor of class indices; got "
                f"{tuple(labels.shape)} {labels.dtype}."
            )
        if not labels.is_cuda and labels.numel():  # on CUDA, no host sync: checked by the caller
            low, high = int(labels.min()), int(labels.max())
            if not (low >= 0 and high < self.classes):
                raise ValueError(f"labels must lie in [0, {self.classes}); got {low} .. {high}.")
        onehot = z.new_zeros(z.shape[0], self.classes).scatter_(1, labels[:, None], 1.0)  # (B, C)
        return self.network(torch.cat([z, onehot], dim=1))  # (B, *sample_shape)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Draws ``z ~ N(0, I_latent_dim)`` (n codes) and maps them: ``(n, *sample_shape)``.

        The codes are drawn on the generator's device (the CPU for a CPU generator) and then moved,
        so one seed gives the same codes on every device. Gradients flow to the parameters (the
        generator losses need them); wrap the call in ``torch.no_grad()`` for evaluation.

        Args:
            n: number of samples.
            generator: source of randomness; None uses the global one.
            device: where the samples live; None takes the parameters' device.
            labels: ``(n,)`` class indices of a class-conditional generator (None: balanced).

        Returns:
            ``(n, *sample_shape)`` tensor in the parameters' dtype.

        Raises:
            ValueError: ``n < 1``, or bad ``labels`` (see :meth:`forward`).
            TypeError: ``n`` is not an int.

        Example:
            >>> g = build_generator("clgn_mlp", sample_shape=(2,))
            >>> g.sample(3, generator=torch.Generator().manual_seed(0)).shape
            torch.Size([3, 2])
        """
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"n must be an int >= 1; got {type(n).__name__}.")
        n = operator.index(n)
        if n < 1:
            raise ValueError(f"n must be an int >= 1; got {n}.")
        param = next(self.parameters())
        device = param.device if device is None else torch.device(device)
        draw_on = generator.device if generator is not None else device
        z = torch.randn(
            n, self.latent_dim, generator=generator, device=draw_on, dtype=param.dtype
        )  # (n, latent_dim)
        labels = None if labels is None else labels.to(device)
        return self(z.to(device), labels)  # (n, *sample_shape)

    def extra_repr(self) -> str:
        text = f"arch={self.arch!r}, latent_dim={self.latent_dim}, sample_shape={self.sample_shape}"
        return text + (f", classes={self.classes}" if self.classes else "")


# ------------------------------------------------------------------------------------ architectures


def _dense(
    sizes: Sequence[int],
    activation: Callable[[], nn.Module],
    sample_shape: tuple[int, ...],
    output: nn.Module | None = None,
) -> nn.Sequential:
    """``Linear + activation`` between consecutive sizes; the last Linear bare, then ``output``,
    then a reshape to ``sample_shape``; Glorot-uniform weights, zero biases."""
    tail = [output] if output is not None else []
    network = nn.Sequential(*dense_stack(sizes, activation), *tail, nn.Unflatten(1, sample_shape))
    init_like_tensorflow(network)
    return network


def clgn_mlp(sample_shape: tuple[int, ...], latent_dim: int) -> nn.Sequential:
    """The CL-GN generator (Schellekens & Jacques, ESANN 2020, Sec. 4; notebook schellekensv/CL-GN).

    z → 7 × (Linear(10) + LeakyReLU(0.2)) → Linear(D). With the paper's latent_dim = 10 and D = 2:
    ``7·(10·10 + 10) + (10·2 + 2) = 792`` parameters. Keras default initialisation (Glorot-uniform
    weights, zero biases).

    Args:
        sample_shape: ``(D,)`` (paper: ``(2,)``).
        latent_dim: size of z (paper: 10).

    Returns:
        The network ``(B, latent_dim) -> (B, D)``.

    Raises:
        ValueError: ``sample_shape`` is not ``(D,)``.
    """
    if len(sample_shape) != 1:
        raise ValueError(f"sample_shape must be (D,) for clgn_mlp; got {tuple(sample_shape)}.")
    sizes = [latent_dim, *(10,) * 7, sample_shape[0]]
    return _dense(sizes, lambda: nn.LeakyReLU(0.2), tuple(sample_shape))


def gmmn_mlp(sample_shape: tuple[int, ...], latent_dim: int) -> nn.Sequential:
    """The GMMN generator for MNIST (Li, Swersky & Zemel, ICML 2015; reference code yujiali/gmmn).

    z → Linear(64) + ReLU → Linear(256) + ReLU → Linear(256) + ReLU → Linear(1024) + ReLU →
    Linear(784) → sigmoid → ``sample_shape``; outputs in (0, 1) like the [0, 1] pixels.
    The reference draws the 10 latent values uniformly in [-1, 1]; here, as for every
    :class:`Generator`, they are N(0, I), which the first layer absorbs. Initialised Glorot-uniform
    with zero biases like the other generators, not as in the reference code.

    Args:
        sample_shape: any shape with 784 elements, e.g. ``(1, 28, 28)`` or ``(784,)``.
        latent_dim: size of z (paper: 10).

    Returns:
        The network ``(B, latent_dim) -> (B, *sample_shape)``.

    Raises:
        ValueError: ``sample_shape`` does not have 784 elements.
    """
    if math.prod(sample_shape) != _GMMN_PIXELS:
        raise ValueError(
            f"sample_shape must have {_GMMN_PIXELS} elements, e.g. (1, 28, 28), for gmmn_mlp; "
            f"got {tuple(sample_shape)}."
        )
    sizes = [latent_dim, 64, 256, 256, 1024, _GMMN_PIXELS]
    return _dense(sizes, nn.ReLU, tuple(sample_shape), nn.Sigmoid())


def mlp_generator(
    sample_shape: tuple[int, ...], latent_dim: int, hidden: Sequence[int] = (256, 256)
) -> nn.Sequential:
    """Generic fully connected generator for any sample shape (not from a paper).

    z → (Linear(h) + ReLU) for h in ``hidden`` → Linear(prod(sample_shape)) → sigmoid if
    ``sample_shape`` is an image ``(C, H, W)`` (outputs in (0, 1)), no activation otherwise →
    reshape to ``sample_shape``. The same image rule as the ``mlp`` autoencoder's decoder.

    Args:
        sample_shape: any shape, e.g. ``(D,)`` or ``(C, H, W)``.
        latent_dim: size of z (default 10).
        hidden: hidden layer widths, input side first.

    Returns:
        The network ``(B, latent_dim) -> (B, *sample_shape)``.

    Raises:
        ValueError: a width in ``hidden`` is not a positive int.
    """
    hidden = as_widths(hidden)
    output = nn.Sigmoid() if len(sample_shape) == 3 else None
    sizes = [latent_dim, *hidden, math.prod(sample_shape)]
    return _dense(sizes, nn.ReLU, tuple(sample_shape), output)


def _doublings(side: int, most: int = 4, smallest: int = 4) -> int:
    """How many times ``side`` halves exactly while staying at least ``smallest`` (at most ``most``)."""
    k = 0
    while k < most and side % 2 ** (k + 1) == 0 and side // 2 ** (k + 1) >= smallest:
        k += 1
    return k


def conv_generator(
    sample_shape: tuple[int, ...], latent_dim: int, width: int = 32
) -> nn.Sequential:
    """A small convolutional image generator (not from a paper): upsampling, not transposed
    convolutions, so no checkerboard artefacts.

    z → Linear(width·h·w) + ReLU → reshape (width, h, w) → k × [Upsample(×2, nearest) →
    Conv3x3(c/2) + ReLU] → Conv3x3(C) → sigmoid, with ``(h, w) = (H, W) / 2^k`` and ``k`` the
    number of exact halvings of both sides that stay >= 4 (at most 4): MNIST 28 → 7 (k = 2),
    CIFAR-10 32 → 4 (k = 3), 8x8 digits → 4 (k = 1). Channels halve at each step, never below 8.
    Outputs in (0, 1), the pixel range of the data. At MNIST size (``width = 32``, latent 32):
    57,601 parameters, about 2 M multiply-adds per image.

    Args:
        sample_shape: an image ``(C, H, W)``.
        latent_dim: size of z (default 32).
        width: channels of the first feature map.

    Returns:
        The network ``(B, latent_dim) -> (B, C, H, W)``.

    Raises:
        ValueError: ``sample_shape`` is not ``(C, H, W)``, or ``width < 8``.
    """
    if len(sample_shape) != 3:
        raise ValueError(f"sample_shape must be (C, H, W) for conv; got {tuple(sample_shape)}.")
    if isinstance(width, bool) or not isinstance(width, int) or width < 8:
        raise ValueError(f"width must be an int >= 8; got {width!r}.")
    c, h, w = sample_shape
    k = min(_doublings(h), _doublings(w))
    h0, w0 = h // 2**k, w // 2**k
    layers: list[nn.Module] = [
        nn.Linear(latent_dim, width * h0 * w0),
        nn.ReLU(),
        nn.Unflatten(1, (width, h0, w0)),
    ]
    channels = width
    for _ in range(k):
        out = max(8, channels // 2)
        layers += [nn.Upsample(scale_factor=2), nn.Conv2d(channels, out, 3, padding=1), nn.ReLU()]
        channels = out
    layers += [nn.Conv2d(channels, c, 3, padding=1), nn.Sigmoid()]
    network = nn.Sequential(*layers)
    init_like_tensorflow(network)
    return network


GENERATORS: dict[str, GeneratorSpec] = {
    "clgn_mlp": GeneratorSpec(
        clgn_mlp, 10, "CL-GN: 7 x (Dense(10) + LeakyReLU(0.2)) -> Dense(D), 792 params at D=2"
    ),
    "gmmn_mlp": GeneratorSpec(
        gmmn_mlp, 10, "GMMN MNIST: ReLU 64-256-256-1024 -> sigmoid 784 (Li et al. 2015)"
    ),
    "mlp": GeneratorSpec(
        mlp_generator, 10, "any shape: ReLU 256-256 MLP, sigmoid output for images"
    ),
    "conv": GeneratorSpec(
        conv_generator, 32, "images: Linear -> (upsample, conv 3x3, ReLU) x k -> sigmoid"
    ),
}


def default_generator(sample_shape: tuple[int, ...]) -> str:
    """The architecture ``arch="auto"`` picks for a sample shape: ``conv`` for images
    ``(C, H, W)``, ``clgn_mlp`` for vectors (the CL-GN recipe)."""
    return "conv" if len(tuple(sample_shape)) == 3 else "clgn_mlp"


def build_generator(
    arch: str,
    *,
    sample_shape: tuple[int, ...],
    latent_dim: int | None = None,
    options: Mapping[str, Any] | None = None,
    classes: int = 0,
) -> Generator:
    """Builds a registered generator after checking that the sample shape fits it.

    With ``classes = C > 0`` the generator is class-conditional: the architecture is built for
    ``latent_dim + C`` inputs, the code and the one-hot class (:class:`Generator`).

    Args:
        arch: a key of ``GENERATORS``.
        sample_shape: shape of one sample, ``(D,)`` or ``(C, H, W)``.
        latent_dim: size of z; None takes the architecture's ``default_latent_dim``.
        options: extra keyword options of the builder, e.g. ``{"hidden": (128,)}`` for ``mlp``.
        classes: number of classes of a class-conditional generator (0: unconditional).

    Returns:
        The :class:`Generator`, in training mode, on the default device.

    Raises:
        ValueError: unknown ``arch`` or option, a ``sample_shape`` the architecture cannot take,
            ``latent_dim < 1`` or ``classes < 0``.
        TypeError: ``latent_dim`` or ``classes`` is not an int.

    Example:
        >>> build_generator("gmmn_mlp", sample_shape=(1, 28, 28)).sample(2).shape
        torch.Size([2, 1, 28, 28])
    """
    if isinstance(classes, bool) or not isinstance(classes, int):
        raise TypeError(f"classes must be an int >= 0; got {type(classes).__name__}.")
    if classes < 0:
        raise ValueError(f"classes must be an int >= 0; got {classes}.")
    spec, shape, latent_dim, options = resolve(GENERATORS, arch, sample_shape, latent_dim, options)
    network = spec.build(shape, latent_dim + classes, **options)
    return Generator(network, latent_dim=latent_dim, sample_shape=shape, arch=arch, classes=classes)
