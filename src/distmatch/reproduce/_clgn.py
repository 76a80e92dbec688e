"""Reproduction of CL-GN on its toy data sets: sketch, generator from the sketch, loss beside the
reference's.

The recipe of DESIGN.md and the reference notebook: 100,000 points of the toy, scaled into the unit
l2 ball; m = 10,000 frequencies with folded-Gaussian radii and bandwidth sqrt(1e-3); the 792-parameter
generator trained on the squared sketch distance with 100,000 kept latent codes, batch 1000, Adam
1e-3, 25 epochs and early stopping. As in the reference, the loss trained, printed and early-stopped
on is the sketch *distance* (MMD units, ``loss_form="root"``); its square (DESIGN's MMD^2) is logged
beside it. Writes ``OUT/sketch.npz``, the run folder ``OUT/run`` (with
``figures/histograms.png``, data beside generated samples as the paper's Fig. 2) and
``OUT/summary.md``. Rerunning reuses the sketch and resumes or reuses the run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

from .. import sketch as sk
from .._core import check_seed
from ..data import TOYS, toy_dataset
from ..generation import GeneratorConfig, train_generator
from ..runs import RunDir
from ..sketch import CLGN_BANDWIDTH, CLGN_FREQUENCIES
from ._papers import CLGN_REFERENCE_LOSS

__all__ = ["CLGN_POINTS", "clgn_summary", "reproduce_clgn"]

CLGN_POINTS = 100_000  # draws of the toy in the CL-GN notebook


def _sketch(toy: str, path: Path, seed: int, progress: bool, points: int, n_frequencies: int):
    if path.is_file():
        return sk.Sketch.load(path)
    data = toy_dataset(toy, points, seed=seed)
    features = sk.FourierFeatures(
        2,
        n_frequencies,
        law="folded_gaussian",
        bandwidth=CLGN_BANDWIDTH,
        generator=torch.Generator().manual_seed(seed),
    )
    result = sk.sketch_dataset(data, features, scale=sk.unit_ball_scaling(data), progress=progress)
    result.source = toy
    result.save(path)
    return result


def reproduce_clgn(
    toy: str,
    out: str | os.PathLike[str],
    *,
    epochs: int = 25,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    points: int = CLGN_POINTS,
    n_frequencies: int = CLGN_FREQUENCIES,
    latent_codes: int = CLGN_POINTS,
) -> dict[str, Any]:
    """Runs the CL-GN recipe on ``toy`` (``spiral``, ``gmm`` or ``circle``) in ``out``.

    ``points``, ``n_frequencies`` and ``latent_codes`` (kept latent codes, ``latent_codes / 1000``
    steps per epoch) default to the recipe's; smaller values make quick checks.

    Returns:
        the run's summary, with ``losses`` (epoch -> epoch-mean sketch loss) and ``reference``
        (epoch -> the reference's loss, where it printed one).
    """
    if toy not in TOYS:
        raise ValueError(f"dataset must be one of {', '.join(sorted(TOYS))}; got {toy!r}.")
    seed = check_seed(seed)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    sketch_path = folder / "sketch.npz"
    sketch = _sketch(toy, sketch_path, seed, progress, points, n_frequencies)
    run = RunDir(folder / "run")
    config = GeneratorConfig(
        objective="sketch",
        sketch=str(sketch_path),
        epochs=epochs,
        seed=seed,
        device=device,
        latent_codes=latent_codes,
        loss_form="root",
    )
    if run.summary.is_file() and run.read_json(run.config)["config"].get("epochs") == epochs:
        summary = run.read_json(run.summary)
    else:
        summary = train_generator(
            config, run.root, resume=run.checkpoint.is_file(), progress=progress
        )
    rows = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    losses = {r["epoch"]: r.get("distance", r["loss"]) for r in rows}
    squared = {r["epoch"]: r["distance_squared"] for r in rows if "distance_squared" in r}
    batch = config.filled(images=False).batch_size
    floor = (1.0 - float(sketch.mean.square().sum())) / batch  # E of a data batch
    result = {
        **summary,
        "losses": losses,
        "squared": squared,
        "floor_squared": floor,
        "reference": CLGN_REFERENCE_LOSS.get(toy, {}),
    }
    (folder / "summary.md").write_text(clgn_summary(toy, result))
    return result


def clgn_summary(toy: str, result: dict[str, Any]) -> str:
    """Markdown: the loss per epoch beside the reference's (same units), and held-out metrics."""
    losses, squared, reference = result["losses"], result["squared"], result["reference"]
    shown = sorted(
        {1, 2, 3, 5, 10, 15, 20, 25, max(losses, default=1)} & (set(losses) | set(reference))
    )

    def cells(values: dict[int, float], digits: int) -> str:
        return " | ".join(f"{values[e]:.{digits}f}" if e in values else "—" for e in shown)

    floor = result["floor_squared"]
    lines = [
        f"# CL-GN reproduction: {toy}",
        "",
        "| epoch | " + " | ".join(str(e) for e in shown) + " |",
        "|---|" + "---|" * len(shown),
        f"| sketch distance (MMD), ours | {cells(losses, 4)} |",
        f"| sketch distance (MMD), reference | {cells(reference, 4)} |",
        f"| squared distance (MMD²), ours | {cells(squared, 5)} |",
        "",
        "Epoch means of the per-batch distance between the data sketch and the sketch of 1000 "
        "generated samples, trained on the distance as the reference was. A batch of 1000 points "
        f"drawn from the data itself scores about {math.sqrt(floor):.4f} ({floor:.5f} squared): "
        "the floor of this loss. The reference calls ≤ 0.04 good.",
        "",
        f"Trained {result['epochs']} epochs"
        f"{' (stopped early)' if result.get('stopped_early') else ''}. Held-out MMD (fixed "
        f"Gaussian kernel) {result['mmd']:.4f}, sliced W2 {result['sliced_w2']:.4f}, "
        f"log-likelihood under the true density {result['log_likelihood']:.3f}. Figure: "
        "`run/figures/histograms.png`.",
    ]
    return "\n".join(lines) + "\n"
