"""The papers' protocols and numbers, reproduced: runs, tables beside the papers', figures.

- :func:`reproduce_mow`: the MoW paper's Tables 1-4 and Fig. 2 (``_mow``, ``_figures``), with the
  protocols and published values of :data:`MOW_PROTOCOLS` and :data:`MOW_PAPER` (``_papers``).
- :func:`reproduce_clgn`: the CL-GN recipe on the 2-D toys, with the reference's printed losses
  (``_clgn``).
"""

from ._clgn import CLGN_POINTS, clgn_summary, reproduce_clgn
from ._figures import save_mow_figure
from ._mow import MowJob, mow_jobs, mow_table, reproduce_mow, run_mow_job, selection_cost
from ._papers import CLGN_REFERENCE_LOSS, MOW_PAPER, MOW_PROTOCOLS, MowProtocol

__all__ = [
    "CLGN_POINTS",
    "CLGN_REFERENCE_LOSS",
    "MOW_PAPER",
    "MOW_PROTOCOLS",
    "MowJob",
    "MowProtocol",
    "clgn_summary",
    "mow_jobs",
    "mow_table",
    "reproduce_clgn",
    "reproduce_mow",
    "run_mow_job",
    "save_mow_figure",
    "selection_cost",
]
