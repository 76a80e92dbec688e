"""Networks of the papers, in registries; no loss logic lives here.

- :data:`ARCHITECTURES` and :func:`build_autoencoder`: the encoder/decoder pairs of the MoW paper's
  supplement (and a generic MLP), wrapped in an :class:`Autoencoder` with ``encode``/``decode``.
- :data:`GENERATORS` and :func:`build_generator`: the generators of CL-GN and GMMN (and a generic
  MLP), wrapped in a :class:`Generator` that maps N(0, I) codes to samples.
- TensorFlow-style layers (:class:`Conv2dSame`, :class:`ConvTranspose2dSame`, :class:`HalfTanh`)
  that reproduce the reference codes' output sizes exactly.

Example:
    >>> model = build_autoencoder("mnist_mlp", sample_shape=(1, 28, 28))
    >>> z, rec = model(torch.rand(4, 1, 28, 28))
    >>> z.shape, rec.shape
    (torch.Size([4, 20]), torch.Size([4, 1, 28, 28]))
"""

from ._autoencoder import (
    ARCHITECTURES,
    BATCHNORM_MIN_K,
    ArchSpec,
    Autoencoder,
    build_autoencoder,
    count_parameters,
    has_batchnorm,
    warn_if_batchnorm,
)
from ._generators import (
    GENERATORS,
    Generator,
    GeneratorSpec,
    build_generator,
    default_generator,
)
from ._layers import Conv2dSame, ConvTranspose2dSame, HalfTanh, same_padding

__all__ = [
    "ARCHITECTURES",
    "BATCHNORM_MIN_K",
    "GENERATORS",
    "ArchSpec",
    "Autoencoder",
    "Conv2dSame",
    "ConvTranspose2dSame",
    "Generator",
    "GeneratorSpec",
    "HalfTanh",
    "build_autoencoder",
    "build_generator",
    "count_parameters",
    "default_generator",
    "has_batchnorm",
    "same_padding",
    "warn_if_batchnorm",
]
