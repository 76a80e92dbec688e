"""The MoW paper's Fig. 2 layout from reproduction runs: k = 64 beside k = 1.

For every model, three rows (latent interpolations between test images, reconstructions beside the
originals, decoded prior samples) and two columns (the largest and the smallest k of the
reproduction). The panels are the runs' own final figures (``RUN/figures/*.png``), drawn with the
same seed, so the same test images appear in every column.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.image import imread

from .._core import atomic_path

__all__ = ["PANELS", "save_mow_figure"]

PANELS = ("interpolations", "reconstructions", "samples")


def save_mow_figure(results: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Writes the comparison figure of the kept runs (dicts with ``model``, ``k``, ``out``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    models = list(dict.fromkeys(r["model"] for r in results))
    ks = sorted({r["k"] for r in results}, reverse=True)
    columns = [ks[0], ks[-1]] if len(ks) > 1 else ks
    runs = {(r["model"], r["k"]): Path(r["out"]) for r in results}
    rows = [(model, panel) for model in models for panel in PANELS]
    fig = Figure(figsize=(4.2 * len(columns), 3.0 * len(rows)))
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for i, (model, panel) in enumerate(rows):
        for j, k in enumerate(columns):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            picture = runs.get((model, k), Path("-")) / "figures" / f"{panel}.png"
            if picture.is_file():
                ax.imshow(imread(picture))
            else:
                ax.text(0.5, 0.5, "no figure", ha="center", va="center", transform=ax.transAxes)
            if i == 0 or panel == PANELS[0]:
                ax.set_title(f"{model.upper()}, k = {k}", fontsize=10)
            if j == 0:
                ax.set_ylabel(panel, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return path
