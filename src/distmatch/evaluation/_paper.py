"""Evaluation of autoencoders as the MoW paper reports it.

On the test split:

- ``rec_error``: mean over images of the per-image sum of squared errors (pixels in [0, 1], no root);
- ``wae_distance``: IMQ MMD (scales .1 ... 10, unbiased) between ``points`` random test codes and as
  many prior draws, averaged over ``wae_repeats`` prior draws (2000 and 3 in the paper);
- ``cw_distance``: unscaled Cramér–Wold distance to N(0, I) (no log) of ``points`` random test
  codes, averaged over ``cw_repeats`` subsamples (2000 and 5 in the paper).

When the split has fewer than ``points`` samples, all of them are used.

Part of :mod:`distmatch.evaluation`; FID and the Parzen-window log-likelihood of generated samples
are beside it there.
"""

from __future__ import annotations

import torch

from .. import distances
from .._core import check_positive_int
from ..objectives import reconstruction_errors

__all__ = ["cw_distance", "encode_all", "evaluate_autoencoder", "wae_distance"]


@torch.no_grad()
def encode_all(
    model: torch.nn.Module, data, *, batch_size: int = 256, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encodes a whole split and sums reconstruction errors, in batches.

    Args:
        model: an autoencoder with ``encode`` and ``decode``.
        data: a :class:`distmatch.data.SampleSet` (anything with ``len`` and ``get_batch``).
        batch_size: samples per forward pass.
        device: where the model runs.

    Returns:
        ``(codes, errors)``: (N, D) codes on CPU and (N,) per-sample sums of squared errors.
    """
    check_positive_int(batch_size, "batch_size")
    codes, errors = [], []
    for start in range(0, len(data), batch_size):
        index = torch.arange(start, min(start + batch_size, len(data)))
        x = data.get_batch(index).to(device)
        z = model.encode(x)
        errors.append(reconstruction_errors(x, model.decode(z)).double().cpu())
        codes.append(z.double().cpu())
    return torch.cat(codes), torch.cat(errors)


def _check_estimates(points: object, repeats: object) -> None:
    check_positive_int(points, "points")
    check_positive_int(repeats, "repeats")
    if points < 2:
        raise ValueError(f"points must be >= 2 (codes per distance estimate); got {points}.")


def _subsample(codes: torch.Tensor, points: int, generator: torch.Generator) -> torch.Tensor:
    if codes.shape[0] <= points:
        return codes
    return codes[torch.randperm(codes.shape[0], generator=generator)[:points]]


def wae_distance(
    codes: torch.Tensor, generator: torch.Generator, *, points: int = 2000, repeats: int = 3
) -> float:
    """IMQ MMD of ``points`` random codes to N(0, I), mean over ``repeats`` prior draws."""
    _check_estimates(points, repeats)
    z = _subsample(codes, points, generator)  # (P, D)
    values = [
        distances.mmd(z, torch.randn(z.shape, generator=generator, dtype=z.dtype))
        for _ in range(repeats)
    ]
    return float(torch.stack(values).mean())


def cw_distance(
    codes: torch.Tensor, generator: torch.Generator, *, points: int = 2000, repeats: int = 5
) -> float:
    """Unscaled CW distance to N(0, I) of ``points`` random codes, mean over ``repeats`` subsamples."""
    _check_estimates(points, repeats)
    values = [
        distances.cramer_wold_normality(_subsample(codes, points, generator))
        for _ in range(repeats)
    ]
    return float(torch.stack(values).mean())


def evaluate_autoencoder(
    model: torch.nn.Module,
    data,
    *,
    generator: torch.Generator,
    points: int = 2000,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """``rec_error``, ``wae_distance`` and ``cw_distance`` of ``model`` on ``data``.

    Args:
        model: an autoencoder with ``encode`` and ``decode``; evaluated in eval mode, then restored.
        data: the split to evaluate on (the test split in the paper).
        generator: randomness for subsamples and prior draws (CPU).
        points: codes per distance estimate (2000 in the paper).
        device: where the model runs.

    Returns:
        dict of floats.

    Raises:
        ValueError: ``points < 2``, or a split of fewer than 2 samples (the MMD needs two).
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an int >= 2 (codes per distance); got {points!r}.")
    if len(data) < 2:
        raise ValueError(
            f"the {getattr(data, 'split', 'evaluation')} split of {getattr(data, 'name', 'the data')}"
            f" must hold at least 2 samples to measure distances; got {len(data)} (without its own "
            "test split a data set gives its last tenth: it needs at least 20 samples)."
        )
    was_training = model.training
    model.eval()
    try:
        codes, errors = encode_all(model, data, device=device)
    finally:
        model.train(was_training)
    return {
        "rec_error": float(errors.mean()),
        "wae_distance": wae_distance(codes, generator, points=points),
        "cw_distance": cw_distance(codes, generator, points=points),
    }
