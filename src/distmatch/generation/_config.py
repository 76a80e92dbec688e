"""The configuration of a generator training run, and what may change when it resumes.

Part of :mod:`distmatch.generation`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .. import runs
from .._core import check_choice, check_positive, check_positive_int, check_seed
from ..distances import ESTIMATORS
from ..sketch import SCALES

__all__ = [
    "DEFAULTS",
    "ESTIMATORS",
    "LEGACY",
    "LOSS_FORMS",
    "MMD_KERNELS",
    "MMD_LAWS",
    "MULTISCALE",
    "OBJECTIVES",
    "RESUMABLE_FIELDS",
    "TRAINING",
    "GeneratorConfig",
    "resumed_config",
]

OBJECTIVES = ("sketch", "mmd")
LOSS_FORMS = ("squared", "root")
MMD_KERNELS = ("matched", "multiscale")
# laws whose kernel has a closed form (folded Gaussian: in 2-D)
MMD_LAWS = ("gaussian", "folded_gaussian", "multiscale_gaussian")
# The training recipe of the fields left None, by kind of data: the CL-GN recipe for vectors; for
# images, the settings measured on MNIST (docs/reproduction.md, "Training from an image sketch").
TRAINING = {
    "vectors": {"batch_size": 1000, "epochs": 25, "min_delta": 5e-4, "estimator": "biased"},
    "images": {"batch_size": 500, "epochs": 10, "min_delta": 1e-5, "estimator": "unbiased"},
}
# What runs saved before a field existed did: the value they resume with.
LEGACY = {"estimator": "biased", "arch": "clgn_mlp"}
MULTISCALE = SCALES  # factors on the bandwidth for kernel="multiscale" (the law's scales)


@dataclasses.dataclass
class GeneratorConfig:
    """Everything that defines a generator training run."""

    # what to fit
    objective: str = "sketch"  # sketch: from a sketch file alone; mmd: exact MMD on the data
    # the .npz sketch (objective "sketch"); or a list of one sketch per class (sketch --by-label)
    sketch: str | list[str] | None = None
    # a class-conditional generator (distmatch.generation._classes): None where the sketch holds
    # the classes' sketches (distmatch sketch of a labelled data set), False never, True required
    conditional: bool | None = None
    dataset: str | None = None  # objective "mmd": a toy, a data set, a folder of images, a .npy
    data_dir: str | None = None  # the data set's files (mmd data; evaluation: the sketch's own)
    kernel: str = "matched"  # mmd: matched (the sketch law's kernel) | multiscale (Gaussian)
    law: str | None = None  # mmd, matched: gaussian | folded_gaussian (2-D); None: the recipe's
    # mmd kernel bandwidth (sketch coordinates); "auto": the median heuristic on the data; None: the
    # recipe's (vectors: CL-GN's sqrt(1e-3); images: "auto")
    bandwidth: float | str | None = None
    eval_data: str | None = None  # held-out data: a toy, data set or .npy (default: the source)
    # generator
    arch: str = "auto"  # see distmatch.models.GENERATORS; auto: conv for images, clgn_mlp else
    latent_dim: int | None = None  # None: the architecture's default
    latent_codes: int | None = 100_000  # codes drawn once and kept; None: fresh codes every step
    # optimisation (None: the recipe of TRAINING for the data's kind)
    batch_size: int | None = None  # generated samples per step: 1000 (vectors), 500 (images)
    lr: float = 1e-3  # Adam learning rate
    loss_form: str = "squared"  # squared: the distance squared (MMD^2); root: the distance (MMD)
    # of the batch's sketch distance: biased (CL-GN's, vectors), unbiased (images); see
    # distmatch.sketch.sketch_distance: the biased one rewards batches of alike samples
    estimator: str | None = None
    epochs: int | None = None  # passes over the latent codes: 25 (vectors), 10 (images)
    patience: int = 2  # early stopping: epochs without a loss improvement of min_delta
    min_delta: float | None = None  # 5e-4 (vectors, CL-GN's), 1e-5 (images)
    seed: int = 0  # seeds initialisation, latent codes, batch order
    # evaluation and output
    eval_points: int = 2000  # generated and held-out points per evaluation
    log_every: int = 20  # steps per row of metrics.jsonl
    device: str = "auto"  # auto: cuda when available
    # deterministic algorithms where PyTorch has them (distmatch.training.TrainConfig's)
    deterministic: bool = False

    def validate(self) -> GeneratorConfig:
        """Checks every field; returns ``self``."""
        check_choice(self.objective, "objective", OBJECTIVES)
        check_choice(self.kernel, "kernel", MMD_KERNELS)
        if self.law is not None:
            check_choice(self.law, "law", MMD_LAWS)
        check_choice(self.loss_form, "loss_form", LOSS_FORMS)
        if not isinstance(self.deterministic, bool):
            raise TypeError(f"deterministic must be True or False; got {self.deterministic!r}.")
        if self.estimator is not None:
            check_choice(self.estimator, "estimator", ESTIMATORS)
        if self.objective == "sketch" and not self.sketch:
            raise ValueError(
                "sketch must be the path of a sketch file for objective 'sketch'; got none."
            )
        if self.conditional is not None and not isinstance(self.conditional, bool):
            raise ValueError(f"conditional must be None, True or False; got {self.conditional!r}.")
        if self.conditional and self.objective != "sketch":
            raise ValueError(
                f"conditional must be None or False for objective '{self.objective}' (class "
                "sketches are what make a generator conditional); got True."
            )
        if isinstance(self.sketch, (list, tuple)):
            if not all(isinstance(path, (str, os.PathLike)) for path in self.sketch):
                raise ValueError(f"sketch must be a path or a list of paths; got {self.sketch!r}.")
            if len(set(map(str, self.sketch))) != len(self.sketch):
                raise ValueError(f"sketch must not name a file twice; got {list(self.sketch)}.")
        if self.objective == "mmd" and not self.dataset:
            raise ValueError(
                "dataset must be a toy name or a .npy file for objective 'mmd'; got none."
            )
        if self.bandwidth is not None and self.bandwidth != "auto":
            check_positive(self.bandwidth, "bandwidth")
        check_positive(self.lr, "lr")
        # negative seeds too: runs trained with one before resume (the CLI takes [0, 2^32))
        self.seed = check_seed(self.seed, signed=True)
        if self.min_delta is not None:
            check_positive(self.min_delta, "min_delta")
        for name in ("patience", "eval_points", "log_every"):
            check_positive_int(getattr(self, name), name)
        if self.eval_points < 2:  # checked here, not at the first evaluation, which needs it
            raise ValueError(
                f"eval_points must be >= 2 (points per distance estimate); got {self.eval_points}."
            )
        for name in ("latent_dim", "latent_codes", "batch_size", "epochs"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        return self

    def sketch_files(self) -> list[str]:
        """The sketch files of the run: one, or one per class."""
        if isinstance(self.sketch, (list, tuple)):
            return [str(path) for path in self.sketch]
        return [] if self.sketch is None else [str(self.sketch)]

    def filled(self, *, images: bool) -> GeneratorConfig:
        """A copy whose fields left None take the :data:`TRAINING` recipe of the data's kind."""
        recipe = TRAINING["images" if images else "vectors"]
        return dataclasses.replace(
            self, **{k: v for k, v in recipe.items() if getattr(self, k) is None}
        )


# Fields that may change when a run is resumed.
RESUMABLE_FIELDS = frozenset(
    {"epochs", "eval_points", "log_every", "device", "eval_data", "data_dir", "deterministic"}
)

# Each field's value in a config.json written before the field existed.
DEFAULTS = {**dataclasses.asdict(GeneratorConfig()), **LEGACY}


def resumed_config(out: str | os.PathLike[str], **overrides: Any) -> GeneratorConfig:
    """The configuration saved in the generator run folder ``out``, with ``overrides`` applied
    (:func:`distmatch.runs.resumed_config`); fields a run saved before they existed take the
    values of :data:`LEGACY` (what such runs did: the biased estimator, the CL-GN generator)."""
    saved = runs.RunDir(out)
    config = saved.read_json(saved.config).get("config", {}) if saved.config.is_file() else {}
    legacy = {k: v for k, v in LEGACY.items() if isinstance(config, dict) and k not in config}
    return runs.resumed_config(out, GeneratorConfig, kind="generator", **legacy, **overrides)
