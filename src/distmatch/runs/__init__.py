"""What every training run has: its folder on disk, meters, signals, non-finite stops, summary.

The run folder::

    RUN/config.json      the configuration, as given and as resolved (architecture, shapes)
    RUN/metrics.jsonl    one JSON object per logged step (training) or evaluation
    RUN/summary.json     final metrics
    RUN/checkpoint.pt    everything needed to continue: written to a temporary file and renamed
    RUN/eval.json        written by ``distmatch evaluate``
    RUN/figures/*.png

Checkpoints are read with ``torch.load(weights_only=True)``: they hold tensors, numbers, strings,
lists and dicts only, never pickled objects. A run exists once its first checkpoint does: a folder
whose start was killed before that (``config.json`` but no ``checkpoint.pt``) starts again from
step 0, fresh or with ``--resume``.

:class:`RunEngine` is the bookkeeping that MoW training (:mod:`distmatch.training`) and generator
training (:mod:`distmatch.generation`) share: opening the folder for a new or resumed run, the
meters of the logged losses, stopping on SIGINT/SIGTERM and on a non-finite loss, agreeing on those
across ranks, checkpoints and the summary. Each mode keeps its own visible loop and its own state.
"""

from ._engine import Meter, NonFiniteLossError, RunEngine, TrainingInterrupted, stop_on_signals
from ._folder import CHECKPOINT_FORMAT, RunDir, RunError, open_run, resumed_config

__all__ = [
    "CHECKPOINT_FORMAT",
    "Meter",
    "NonFiniteLossError",
    "RunDir",
    "RunEngine",
    "RunError",
    "TrainingInterrupted",
    "open_run",
    "resumed_config",
    "stop_on_signals",
]
