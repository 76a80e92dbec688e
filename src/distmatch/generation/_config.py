"""The configuration of a generator training run, and what may change when it resumes.

Part of :mod:`distmatch.generation`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .. import runs
from .._core import check_choice, check_positive, check_positive_int
from ..sketch import CLGN_BANDWIDTH

__all__ = [
    "DEFAULTS",
    "LOSS_FORMS",
    "MMD_KERNELS",
    "MMD_LAWS",
    "MULTISCALE",
    "OBJECTIVES",
    "RESUMABLE_FIELDS",
    "GeneratorConfig",
    "resumed_config",
]

OBJECTIVES = ("sketch", "mmd")
LOSS_FORMS = ("squared", "root")
MMD_KERNELS = ("matched", "multiscale")
MMD_LAWS = ("gaussian", "folded_gaussian")  # laws whose kernel has a closed form (folded: 2-D)
MULTISCALE = (0.25, 0.5, 1.0, 2.0, 4.0)  # factors on the bandwidth for kernel="multiscale"


@dataclasses.dataclass
class GeneratorConfig:
    """Everything that defines a generator training run."""

    # what to fit
    objective: str = "sketch"  # sketch: from a sketch file alone; mmd: exact MMD on the data
    sketch: str | None = None  # the .npz sketch (objective "sketch")
    dataset: str | None = None  # objective "mmd": a toy (spiral, gmm, circle) or a .npy file
    kernel: str = "matched"  # mmd: matched (the sketch law's kernel) | multiscale (Gaussian)
    law: str = "folded_gaussian"  # mmd, kernel matched: gaussian | folded_gaussian (2-D)
    bandwidth: float = CLGN_BANDWIDTH  # mmd kernel bandwidth, in the unit-ball coordinates
    eval_data: str | None = (
        None  # held-out data for evaluation: a toy or a .npy (default: the source)
    )
    # generator
    arch: str = "clgn_mlp"  # see distmatch.models.GENERATORS
    latent_dim: int | None = None  # None: the architecture's default
    latent_codes: int | None = 100_000  # codes drawn once and kept; None: fresh codes every step
    # optimisation
    batch_size: int = 1000  # generated samples per step
    lr: float = 1e-3  # Adam learning rate
    loss_form: str = "squared"  # squared: the distance squared (MMD^2); root: the distance (MMD)
    epochs: int = 25  # passes over the latent codes (or latent_codes / batch_size steps)
    patience: int = 2  # early stopping: epochs without a loss improvement of min_delta
    min_delta: float = 5e-4
    seed: int = 0  # seeds initialisation, latent codes, batch order
    # evaluation and output
    eval_points: int = 2000  # generated and held-out points per evaluation
    log_every: int = 20  # steps per row of metrics.jsonl
    device: str = "auto"  # auto: cuda when available

    def validate(self) -> GeneratorConfig:
        """Checks every field; returns ``self``."""
        check_choice(self.objective, "objective", OBJECTIVES)
        check_choice(self.kernel, "kernel", MMD_KERNELS)
        check_choice(self.law, "law", MMD_LAWS)
        check_choice(self.loss_form, "loss_form", LOSS_FORMS)
        if self.objective == "sketch" and not self.sketch:
            raise ValueError(
                "sketch must be the path of a sketch file for objective 'sketch'; got none."
            )
        if self.objective == "mmd" and not self.dataset:
            raise ValueError(
                "dataset must be a toy name or a .npy file for objective 'mmd'; got none."
            )
        check_positive(self.bandwidth, "bandwidth")
        check_positive(self.lr, "lr")
        check_positive(self.min_delta, "min_delta")
        for name in ("batch_size", "epochs", "patience", "eval_points", "log_every"):
            check_positive_int(getattr(self, name), name)
        for name in ("latent_dim", "latent_codes"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        return self


# Fields that may change when a run is resumed.
RESUMABLE_FIELDS = frozenset({"epochs", "eval_points", "log_every", "device", "eval_data"})

DEFAULTS = dataclasses.asdict(GeneratorConfig())


def resumed_config(out: str | os.PathLike[str], **overrides: Any) -> GeneratorConfig:
    """The configuration saved in the generator run folder ``out``, with ``overrides`` applied
    (:func:`distmatch.runs.resumed_config`)."""
    return runs.resumed_config(out, GeneratorConfig, kind="generator", **overrides)
