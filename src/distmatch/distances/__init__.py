"""Distances between samples: pure, differentiable functions, ``(N, D)`` tensors in, 0-d out.

``DISTANCES`` is the table of contents of the two-sample distances; :func:`distance` is the one
entry point that dispatches by name and rejects unknown names and options.

==========================  =====================================================================
name                        quantity
==========================  =====================================================================
``mmd``                     squared MMD, IMQ (WAE) or Gaussian kernel, unbiased or biased
``cramer_wold``             Cramér–Wold distance (squared) with a smoothing variance ``gamma``
``sliced_wasserstein``      mean over random directions of the 1-D ``W_p^p`` (no root)
==========================  =====================================================================

:func:`cramer_wold_normality` compares one sample with N(0, I) in closed form.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from .._core import check_choice
from .cramer_wold import cramer_wold, cramer_wold_normality, phi, silverman_gamma
from .kernels import KERNELS, squared_distances
from .mmd import ESTIMATORS, mmd
from .sliced import random_projections, sliced_wasserstein

__all__ = [
    "DISTANCES",
    "ESTIMATORS",
    "KERNELS",
    "cramer_wold",
    "cramer_wold_normality",
    "distance",
    "mmd",
    "options_of",
    "phi",
    "random_projections",
    "silverman_gamma",
    "sliced_wasserstein",
    "squared_distances",
]

DISTANCES: dict[str, Callable[..., torch.Tensor]] = {
    "mmd": mmd,
    "cramer_wold": cramer_wold,
    "sliced_wasserstein": sliced_wasserstein,
}


def options_of(name: str) -> tuple[str, ...]:
    """The keyword options the distance ``name`` accepts."""
    check_choice(name, "distance", DISTANCES)
    params = inspect.signature(DISTANCES[name]).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def distance(name: str, x: torch.Tensor, y: torch.Tensor, **options: object) -> torch.Tensor:
    """Computes the two-sample distance ``name`` between ``x`` and ``y``.

    Args:
        name: a key of :data:`DISTANCES`.
        x: (N, D) samples.
        y: (M, D) samples.
        **options: the keyword options of that distance (see :func:`options_of`); any other name is
            an error, so a misspelt option never passes silently.

    Returns:
        0-d tensor, differentiable.

    Raises:
        ValueError: unknown distance name.
        TypeError: an option that this distance does not take.

    Example:
        >>> x, y = torch.randn(32, 2), torch.randn(32, 2) + 1
        >>> distance("mmd", x, y, kernel="gaussian", estimator="biased") > 0
        tensor(True)
    """
    allowed = options_of(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"options of distance {name!r} must be among {', '.join(allowed)}; "
            f"got {', '.join(repr(u) for u in unknown)}."
        )
    return DISTANCES[name](x, y, **options)
