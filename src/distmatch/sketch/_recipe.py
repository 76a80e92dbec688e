"""The default frequencies of a sketch, by kind of data: one home for the law, m and the bandwidth.

Part of :mod:`distmatch.sketch`, which re-exports the public names.

- **Vectors** (the 2-D toys, any ``(N, D)`` array): the CL-GN recipe, data in the unit ball,
  m = 10,000 folded-Gaussian frequencies, bandwidth ``sqrt(1e-3)``; ``auto`` fits the bandwidth
  by the sketch method (:func:`estimate_bandwidth`).
- **Images** (pixels in [0, 1], not rescaled): :data:`IMAGE_LAW` frequencies, m from
  :func:`default_frequencies`, and the bandwidth of :func:`median_bandwidth`, a fraction
  :data:`MEDIAN_FACTOR` of the median distance between images. The numbers behind
  these choices are in ``docs/reproduction.md`` ("Frequencies for images").
"""

from __future__ import annotations

import functools

import torch

from .._core import check_choice, check_positive, check_positive_int
from ._bandwidth import estimate_bandwidth
from ._laws import CLGN_BANDWIDTH, CLGN_FREQUENCIES, LAWS

__all__ = [
    "BANDWIDTH_PROBE",
    "IMAGE_LAW",
    "IMAGE_MAX_FREQUENCIES",
    "MEDIAN_FACTOR",
    "auto_bandwidth",
    "default_frequencies",
    "median_bandwidth",
    "radius_median",
    "sketch_recipe",
]

BANDWIDTH_PROBE = 2_000  # random samples that an 'auto' bandwidth is estimated on
IMAGE_LAW = "multiscale_gaussian"  # measured against Gaussian, folded Gaussian, adapted radius
MEDIAN_FACTOR = 1.0  # bandwidth = factor x the median distance between images
IMAGE_FREQUENCIES_PER_DIM = 5  # m = 5 D frequencies for images ...
IMAGE_MAX_FREQUENCIES = 4_000  # ... at most this many


def default_frequencies(dim: int, *, image: bool) -> int:
    """m for data of dimension ``dim``: CL-GN's 10,000 for vectors; ``min(5 D, 4000)`` for
    images (a step's features then cost about as much as the generator itself; 1,000 were
    clearly worse on MNIST, docs/reproduction.md, "Frequencies for images")."""
    check_positive_int(dim, "dim")
    if not image:
        return CLGN_FREQUENCIES
    return min(IMAGE_FREQUENCIES_PER_DIM * dim, IMAGE_MAX_FREQUENCIES)


@functools.cache
def radius_median(law: str, dim: int) -> float:
    """The median radius ``R`` of ``law`` in dimension ``dim`` (200,001 draws, fixed seed)."""
    check_choice(law, "law", LAWS)
    check_positive_int(dim, "dim")
    draws = LAWS[law](200_001, dim, torch.Generator().manual_seed(0))
    return float(draws.median())


def median_bandwidth(
    x: torch.Tensor,
    *,
    law: str = IMAGE_LAW,
    factor: float = MEDIAN_FACTOR,
    generator: torch.Generator | None = None,
) -> float:
    """The bandwidth of high-dimensional sketches (images, latent codes): ``factor`` times the
    median pairwise distance of the points ``x`` (N, D) (the median heuristic,
    :func:`estimate_bandwidth` with ``method="median"``, on at most :data:`BANDWIDTH_PROBE` of
    them), for the Gaussian laws.

    For a law whose radii are not ``chi_D`` (folded Gaussian, adapted radius: ``R`` of order 1
    whatever ``D``) the bandwidth is multiplied by ``median R_law / median chi_D``, so that the
    median frequency ``|omega| = R / bandwidth`` is the Gaussian law's: the laws are compared at
    the same frequency scale, and differ in how the radii spread around it.

    The sketch method (Keriven et al.) fits the scale of the data's clusters, the per-coordinate
    spread ``s``, while two points of such a cluster in D dimensions lie about ``s sqrt(2 D)``
    apart: a Gaussian kernel of width ``s`` gives them ``exp(-D)``. Every generated sample then
    starts far from every data point in the kernel's eyes and the generator gets almost no
    gradient (MNIST: samples stay noise; MNIST's 20-D CWAE codes: three digits).
    """
    check_choice(law, "law", LAWS)
    check_positive(factor, "factor")
    median = estimate_bandwidth(x, method="median", n_points=BANDWIDTH_PROBE, generator=generator)
    dim = x.shape[1]
    ratio = 1.0
    if law not in ("gaussian", "multiscale_gaussian"):
        ratio = radius_median(law, dim) / radius_median("gaussian", dim)
    return factor * median * ratio


def auto_bandwidth(
    x: torch.Tensor,
    *,
    image: bool,
    law: str = IMAGE_LAW,
    generator: torch.Generator | None = None,
) -> float:
    """``--bandwidth auto``: :func:`median_bandwidth` for images, the sketch fit
    (:func:`estimate_bandwidth`) for vectors; ``x`` (N, D) in the sketch's coordinates."""
    if image:
        return median_bandwidth(x, law=law, generator=generator)
    return estimate_bandwidth(x, generator=generator)


def sketch_recipe(
    dim: int,
    *,
    image: bool,
    law: str | None = None,
    n_frequencies: int | None = None,
    bandwidth: float | str | None = None,
) -> tuple[str, int, float | None]:
    """The frequencies of a sketch: what is given, the defaults of the data's kind for the rest.

    Args:
        dim: D, the dimension of the data.
        image: whether the samples are images (pixels in [0, 1]).
        law, n_frequencies: as given, or None for the default.
        bandwidth: a number, ``"auto"``, or None for the default (vectors: CL-GN's ``sqrt(1e-3)``;
            images: ``"auto"``).

    Returns:
        ``(law, m, bandwidth)``, with ``bandwidth`` None where it is to be estimated from the data
        (:func:`auto_bandwidth`).

    Raises:
        ValueError: an unknown law, a non-positive m or bandwidth.
    """
    law = law if law is not None else (IMAGE_LAW if image else "folded_gaussian")
    check_choice(law, "law", LAWS)
    m = n_frequencies if n_frequencies is not None else default_frequencies(dim, image=image)
    check_positive_int(m, "n_frequencies")
    if bandwidth is None:
        bandwidth = "auto" if image else CLGN_BANDWIDTH
    if bandwidth == "auto":
        return law, m, None
    return law, m, check_positive(bandwidth, "bandwidth")
