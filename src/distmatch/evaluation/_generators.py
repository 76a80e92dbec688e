"""Held-out metrics of a generator's samples: MMD, sliced W2 and, for the toys, the log-likelihood.

Part of :mod:`distmatch.evaluation`, which re-exports the public names.
"""

from __future__ import annotations

import math

import torch

from .. import distances
from ..data import toy_log_density

__all__ = ["EVAL_KERNEL", "evaluate_generator"]

# The independent, fixed kernel of the evaluation (in the unit-ball coordinates of the sketch).
EVAL_KERNEL = {"kernel": "gaussian", "bandwidth": 0.1, "scales": (0.25, 0.5, 1.0, 2.0)}


def evaluate_generator(samples, heldout, unscale, toy, generator) -> dict[str, float]:
    """Held-out MMD (independent fixed kernel), sliced W2 and, for toys, the log-likelihood.

    Args:
        samples: (P, D) generated points, in the sketch's coordinates.
        heldout: (Q, D) fresh data points, same coordinates.
        unscale: maps sketch coordinates back to the data's.
        toy: the toy's name when its density is known, else None.
        generator: randomness for the subsample and the sliced directions.

    Returns:
        ``mmd`` (Gaussian kernel, bandwidths 0.025 to 0.2, unbiased), ``sliced_w2`` (the root of
        the sliced W_2^2 with 200 directions) and ``log_likelihood`` (mean log-density of the
        samples under the true density, in the data's coordinates) for toys.
    """
    n = min(samples.shape[0], heldout.shape[0])
    index = torch.randperm(heldout.shape[0], generator=generator)[:n]
    y = heldout[index].double()
    x = samples[:n].double()
    metrics = {
        "mmd": float(distances.mmd(x, y, **EVAL_KERNEL)),
        "sliced_w2": math.sqrt(
            float(distances.sliced_wasserstein(x, y, n_projections=200, generator=generator))
        ),
    }
    if toy is not None:
        metrics["log_likelihood"] = float(toy_log_density(toy, unscale(samples.cpu())).mean())
    return metrics
