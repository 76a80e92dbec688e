"""The configuration of a moving-window training run, and what may change when it resumes."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .. import runs
from .._core import check_choice, check_positive, check_positive_int, check_seed
from ..objectives import LATENT_DISTANCES, RECONSTRUCTIONS
from ..window import INITS, REFRESHES, check_window_sizes

__all__ = [
    "DEFAULTS",
    "DEFAULT_ARCH",
    "MEMORIES",
    "OPTIMIZERS",
    "REFRESH_SOURCES",
    "RESUMABLE_FIELDS",
    "SAVED_DEFAULTS",
    "WINDOW_GRADIENTS",
    "TrainConfig",
    "optimizer_settings",
    "resumed_config",
]

DEFAULT_ARCH = {
    "digits": "mlp",
    "mnist": "mnist_mlp",
    "fashion_mnist": "fmnist_conv",
    "cifar10": "cifar_conv",
    "celeba": "celeba_conv",
    "ffhq": "ffhq_conv",
}
OPTIMIZERS = ("adam", "sgd")
# unbiased: the distance's gradient weighted by n / B (B fresh codes), the classical gradient in
# expectation; paper: unweighted, as the MoW reference (about B / n of the classical pull).
WINDOW_GRADIENTS = ("unbiased", "paper")
# How the learning rate follows kappa = k / n (lr is then the rate of classical training, k == n):
# none: lr as given; sqrt: lr * sqrt(kappa) (Adam's square-root rule); linear: lr * kappa (SGD's);
# auto: sqrt for Adam, linear for SGD.
LR_RULES = ("auto", "none", "sqrt", "linear")
# What a refresh encodes again: the inputs of the window's codes (window), or as many random
# training inputs (random: an independent sample of the current encoder's codes).
REFRESH_SOURCES = ("window", "random")
MEMORIES = ("window", "sketch")  # n - k past codes, or their moving sketch (skwae only)


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a moving-window training run."""

    # what to train
    model: str = "cwae"  # latent distance: cwae | wae | swae | skwae
    dataset: str = "digits"  # a registry name (see distmatch.data) or a .npy path
    data_dir: str | None = None  # folder (or zip) holding the data set's files
    arch: str | None = None  # None: the data set's default architecture (DEFAULT_ARCH)
    latent_dim: int | None = None  # None: the architecture's default
    image_size: int | None = None  # None: the data set's default side (celeba 64, ffhq 1024)
    # moving window
    n: int = 64  # codes the distance term sees
    k: int = 1  # fresh codes per step, i.e. the batch size; k == n: classical batches
    window_init: str = "prior"  # prior | zeros | fill
    reset_each_epoch: bool = True  # refill the window at the start of every epoch
    refresh: str = "none"  # none: push the pre-update codes; reencode: encode again after the step
    # every so many steps, encode the inputs of the whole window again with the current encoder
    # (0: never, the reference's): stale codes let the fresh code chase the window's holes
    refresh_every: int = 16
    refresh_from: str = "random"  # random: random training inputs; window: the window codes' own
    memory: str = "window"  # window: n - k past codes; sketch: their moving sketch (skwae only)
    window_gradient: str = "unbiased"  # unbiased: distance gradient x n/B; paper: the reference's
    sketch_frequencies: int = 1000  # m of the skwae distance
    sketch_bandwidth: float | None = None  # skwae kernel bandwidth; None: sqrt(latent_dim)
    # cost
    lam: float = 1.0  # weight of the distance term
    reconstruction: str = "root"  # root: sqrt(mean SSE), the reference's; mean: mean SSE
    # optimisation
    optimizer: str = "adam"  # adam | sgd (plain gradient descent, as the reference)
    lr: float = 1e-3  # learning rate of classical training (k == n); lr_rule adapts it to k < n
    lr_rule: str = "auto"  # auto: lr * sqrt(k/n) for Adam, lr * k/n for SGD; none: lr as given
    epochs: int = 20  # full passes over the training split
    steps: int | None = None  # total optimizer steps; when set it replaces epochs
    seed: int = 0  # seeds initialisation, epoch order, window and prior draws
    # evaluation and output
    eval_every: int = (
        5  # epochs between evaluations and figures (also after epoch 1 and at the end)
    )
    eval_points: int = 2000  # test codes per distance estimate, as in the paper
    log_every: int = 100  # steps per row of metrics.jsonl
    checkpoint_every: int = 5000  # steps between checkpoints (also after every evaluation)
    checkpoint_minutes: float = 5.0  # and at least this often
    device: str = "auto"  # auto: cuda when available, else cpu
    # torch.compile the forward pass and cost: True, False, or "auto": on for runs of at least
    # AUTO_COMPILE_STEPS steps where a compiler is present (a C++ compiler on CPU, Triton on CUDA)
    # and compiled passes time faster than eager ones for this model at the start of the run
    compile: bool | str = "auto"
    # capture each full step in one CUDA graph and replay it (CUDA, one process; docs/gpu.md)
    cuda_graph: bool = False
    # deterministic algorithms where PyTorch has them (on CUDA: cuDNN, cuBLAS, compiled reductions),
    # so that a run on the same machine and versions gives the same bits (docs/gpu.md)
    deterministic: bool = False

    def validate(self) -> TrainConfig:
        """Checks every field; returns ``self``.

        Raises:
            ValueError, TypeError: a field out of range (the message names it).
        """
        check_choice(self.model, "model", LATENT_DISTANCES)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.window_init, "window_init", INITS)
        check_choice(self.refresh, "refresh", REFRESHES)
        check_choice(self.reconstruction, "reconstruction", RECONSTRUCTIONS)
        check_choice(self.memory, "memory", MEMORIES)
        check_choice(self.window_gradient, "window_gradient", WINDOW_GRADIENTS)
        check_choice(self.lr_rule, "lr_rule", LR_RULES)
        check_choice(self.refresh_from, "refresh_from", REFRESH_SOURCES)
        for name in ("cuda_graph", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False; got {getattr(self, name)!r}.")
        if self.compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto'; got {self.compile!r}.")
        if self.memory == "sketch" and self.model != "skwae":
            raise ValueError(
                f"memory 'sketch' (a moving sketch) needs model 'skwae'; got model {self.model!r}."
            )
        if self.memory == "sketch" and self.refresh != "none":
            raise ValueError(
                f"refresh {self.refresh!r} encodes a window's codes again; memory 'sketch' keeps no "
                "codes (it needs refresh 'none')."
            )
        check_positive_int(self.sketch_frequencies, "sketch_frequencies")
        if self.refresh_every != 0:
            check_positive_int(self.refresh_every, "refresh_every")
        if self.sketch_bandwidth is not None:
            check_positive(self.sketch_bandwidth, "sketch_bandwidth")
        check_window_sizes(self.n, self.k)
        # negative seeds too: runs trained with one before resume (the CLI takes [0, 2^32))
        self.seed = check_seed(self.seed, signed=True)
        check_positive(self.lr, "lr")
        check_positive(self.lam, "lam")
        check_positive(self.checkpoint_minutes, "checkpoint_minutes")
        for name in ("epochs", "eval_every", "eval_points", "log_every", "checkpoint_every"):
            check_positive_int(getattr(self, name), name)
        if self.eval_points < 2:  # checked here, not after training, where its evaluation needs it
            raise ValueError(
                f"eval_points must be >= 2 (codes per distance estimate); got {self.eval_points}."
            )
        for name in ("steps", "latent_dim", "image_size"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        return self


# Fields that may change when a run is resumed (they do not alter the trajectory so far).
RESUMABLE_FIELDS = frozenset(
    {
        "epochs",
        "steps",
        "eval_every",
        "eval_points",
        "log_every",
        "checkpoint_every",
        "checkpoint_minutes",
        "device",
        "compile",
        "cuda_graph",
        "deterministic",
    }
)


DEFAULTS = dataclasses.asdict(TrainConfig())
# What a run folder written before a field existed was trained with, where that differs from the
# field's default today: such runs resume as they were trained.
BEFORE_FIELD = {"window_gradient": "paper", "lr_rule": "none", "refresh_every": 0}
SAVED_DEFAULTS = {**DEFAULTS, **BEFORE_FIELD}  # for the fields a saved configuration lacks


def resumed_config(out: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """The configuration saved in the training run folder ``out``, with ``overrides`` applied
    (:func:`distmatch.runs.resumed_config`); fields that it lacks take the value its run was
    trained with (:data:`BEFORE_FIELD`), else their defaults."""
    return runs.resumed_config(out, TrainConfig, missing=BEFORE_FIELD, **overrides)


def optimizer_settings(config: TrainConfig) -> dict[str, Any]:
    """The optimizer's keyword arguments for ``config``: its learning rate after ``lr_rule``.

    With the unbiased window gradient, a step of ``k`` fresh codes estimates the gradient of the
    classical step of ``n`` with more noise. SGD then follows the classical trajectory when the rate
    scales linearly, ``lr * k / n`` (n/k steps of lr k/n make one classical step in expectation);
    Adam, whose steps are normalised by the gradient's spread, by the square root,
    ``lr * sqrt(k / n)``. ``"auto"`` picks the optimizer's rule; ``k == n`` keeps ``lr``.
    Measurements: ``docs/k1-training.md``.
    """
    kappa = config.k / config.n
    rule = config.lr_rule
    if rule == "auto":
        rule = "sqrt" if config.optimizer == "adam" else "linear"
    if rule == "sqrt":
        return {"lr": config.lr * kappa**0.5}
    if rule == "linear":
        return {"lr": config.lr * kappa}
    return {"lr": config.lr}
