"""Generators trained from a sketch alone (CL-GN), or with exact mini-batch MMD (the baseline).

:func:`train_generator` runs one visible loop (``_loop``) over a :class:`GeneratorConfig`; the run's
objects and bookkeeping are in ``_state`` (on :class:`distmatch.runs.RunEngine`).
:func:`fit_latent_sketch` brings CL-GN to images through a trained autoencoder's latent space;
:func:`load_generator` rebuilds a trained generator from its run folder. Given one sketch per class
(:func:`load_sketches`, :class:`ClassSketches`), the generator is class-conditional.
"""

from ..evaluation import load_generator
from ._classes import ClassSketches, load_sketches
from ._config import (
    ESTIMATORS,
    LOSS_FORMS,
    MMD_KERNELS,
    MMD_LAWS,
    MULTISCALE,
    OBJECTIVES,
    RESUMABLE_FIELDS,
    GeneratorConfig,
    resumed_config,
)
from ._evaluation import HeldOut
from ._latent import fit_latent_sketch
from ._loop import train_generator

__all__ = [
    "ESTIMATORS",
    "LOSS_FORMS",
    "MMD_KERNELS",
    "MMD_LAWS",
    "MULTISCALE",
    "OBJECTIVES",
    "RESUMABLE_FIELDS",
    "ClassSketches",
    "GeneratorConfig",
    "HeldOut",
    "fit_latent_sketch",
    "load_generator",
    "load_sketches",
    "resumed_config",
    "train_generator",
]
