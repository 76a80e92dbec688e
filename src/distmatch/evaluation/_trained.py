"""Trained networks rebuilt from their run folders, for evaluation, sampling and later stages.

Part of :mod:`distmatch.evaluation`, which re-exports the public names (and
:mod:`distmatch.training` and :mod:`distmatch.generation` re-export the loader of their own runs).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

from ..models import Autoencoder, build_autoencoder, build_generator
from ..runs import RunDir, RunError

__all__ = ["load_autoencoder", "load_generator"]


def load_autoencoder(
    out: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[dict[str, Any], Autoencoder]:
    """Rebuilds the trained autoencoder of a run folder from its config and checkpoint.

    Returns:
        ``(record, model)``: the content of ``config.json`` and the model in eval mode.

    Raises:
        RunError: not a run folder, a generator's run, a run of a custom model, or an unreadable
            checkpoint.
    """
    run = RunDir(out)
    record = run.read_json(run.config)
    if record.get("kind") is not None:  # a generator run (kind "generator")
        raise RunError(f"'{run.root}' must be an autoencoder run (distmatch train); it is not.")
    resolved = record.get("resolved", {})
    if not resolved.get("arch"):
        raise RunError(f"'{run.root}' was trained with a custom model; rebuild it in Python.")
    with _rebuilding(run):
        model = build_autoencoder(
            resolved["arch"],
            sample_shape=tuple(resolved["sample_shape"]),
            latent_dim=resolved["latent_dim"],
        )
    state = run.load_checkpoint(map_location=device)  # its own errors (a device's too) as they are
    with _rebuilding(run):
        model.load_state_dict(state["model"])
    return record, model.to(device).eval()


@contextlib.contextmanager
def _rebuilding(run: RunDir):
    """Reports a config.json and checkpoint.pt that do not make a network (an edited or foreign
    file: a missing field, another size) as one RunError naming the run."""
    try:
        yield
    except RunError:
        raise
    except KeyError as err:
        raise RunError(
            f"'{run.root}' must hold a config.json and checkpoint.pt written by distmatch; "
            f"{err.args[0]!r} is missing."
        ) from None
    except torch.OutOfMemoryError:
        raise
    except (TypeError, ValueError, RuntimeError) as err:  # e.g. load_state_dict's size mismatch
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = " ".join(lines)[:300] if lines else type(err).__name__
        raise RunError(
            f"'{run.root}' must hold a config.json and checkpoint.pt that fit together; {reason}"
        ) from None


def load_generator(out: str | os.PathLike[str], *, device: str | torch.device = "cpu"):
    """Rebuilds the trained generator of a run folder.

    Returns:
        ``(record, generator, unscale)``: the content of ``config.json``, the generator in eval
        mode, and the map from its outputs back to the data's coordinates (the identity for
        image generators, whose outputs are pixels in [0, 1]). A class-conditional generator
        (``generator.classes > 0``) takes class indices; ``record["resolved"]["labels"]`` holds
        the data set's label of each.
    """
    run = RunDir(Path(out))
    record = run.read_json(run.config)
    if record.get("kind") != "generator":
        raise RunError(f"'{run.root}' must be a generator run (fit-sketch, fit-mmd); it is not.")
    with _rebuilding(run):
        resolved = record["resolved"]
        generator = build_generator(
            resolved["arch"],
            sample_shape=tuple(resolved["sample_shape"]),
            latent_dim=resolved["latent_dim"],
            classes=int(resolved.get("classes") or 0),
        )
    state = run.load_checkpoint(map_location=device)
    with _rebuilding(run):
        generator.load_state_dict(state["generator"])
        center = torch.tensor(resolved["center"], dtype=torch.float64)
        scale = float(resolved["scale"])
        images = len(resolved["sample_shape"]) == 3

    def unscale(x: torch.Tensor) -> torch.Tensor:
        if images:  # image generators emit pixels in [0, 1], the data's own range
            return x.cpu()
        return x.double().cpu() * scale + center

    return record, generator.to(device).eval(), unscale
