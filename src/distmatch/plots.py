"""Figures, drawn with matplotlib's object API (no global pyplot state, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from ._io import atomic_path

__all__ = ["save_curves"]


def save_curves(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logy: bool = False,
) -> None:
    """Draws one line per entry of ``series`` against ``x`` and writes a PNG to ``path``.

    Args:
        x: abscissae shared by all series.
        series: label -> values, each as long as ``x``.
        path: output file; written atomically.
        xlabel: label of the x axis.
        ylabel: label of the y axis.
        title: figure title.
        logy: logarithmic y axis.
    """
    fig = Figure(figsize=(6.0, 4.0), dpi=110)
    ax = fig.add_subplot()
    for label, values in series.items():
        ax.plot(list(x), list(values), marker="o", markersize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
