"""Moving-window (MoW) training of WAE, CWAE, SWAE and skwae autoencoders.

:func:`train` runs one visible loop (``_loop``) over a :class:`TrainConfig`; the run's objects and
bookkeeping are in ``_state`` (on :class:`distmatch.runs.RunEngine`), the configuration and what
may change when a run resumes in ``_config``. :func:`load_autoencoder` rebuilds a trained model
from its run folder.

Example:
    >>> from distmatch.training import TrainConfig, train
    >>> summary = train(TrainConfig(steps=100), "runs/quick")  # doctest: +SKIP
"""

from ..evaluation import load_autoencoder
from ..runs import NonFiniteLossError, TrainingInterrupted
from ._config import (
    BEFORE_FIELD,
    DEFAULT_ARCH,
    LR_RULES,
    MEMORIES,
    OPTIMIZERS,
    REFRESH_SOURCES,
    RESUMABLE_FIELDS,
    WINDOW_GRADIENTS,
    TrainConfig,
    optimizer_settings,
    resumed_config,
)
from ._loop import CompileUnavailable, train

__all__ = [
    "BEFORE_FIELD",
    "DEFAULT_ARCH",
    "LR_RULES",
    "MEMORIES",
    "OPTIMIZERS",
    "REFRESH_SOURCES",
    "RESUMABLE_FIELDS",
    "WINDOW_GRADIENTS",
    "CompileUnavailable",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainingInterrupted",
    "load_autoencoder",
    "optimizer_settings",
    "resumed_config",
    "train",
]
