"""Sketches of data sets: means of random Fourier features, for compressive learning.

A data set is compressed in one pass into the sketch ``z = mean_i phi(x_i)`` of the features::

    phi(x) = [cos(Omega^T x + xi); sin(Omega^T x + xi)] / sqrt(m)          (2m,)

with ``m`` frequencies ``Omega`` (D, m) drawn from a law (:data:`LAWS`) and an optional dither
``xi``. ``|z_X - z_Y|^2`` estimates MMD^2 for the kernel whose Fourier transform is the frequency
law, so a generator can be trained from ``z`` alone (:func:`sketch_distance`). A :class:`Sketch`
keeps the float64 sum and the count, so sketches of shards merge exactly; it is saved as ``.npz``.

Behind this face: the frequency laws (``_laws``), the one feature map (``_features``), bandwidth
estimation (``_bandwidth``), the default frequencies by kind of data (``_recipe``), exact sketches of Gaussians (``_gaussian``), the :class:`Sketch` and
its distance (``_sketch``), the one pass over data in one process or across ranks (``_pass``),
differential privacy (``_privacy``), what a sketch holds (``_pieces``), the file (``_io``) and
the prior sketch of ``skwae`` (``_prior``).

Typical use (CL-GN recipe: data in the unit ball, m = 10,000, folded Gaussian, bandwidth^2 = 1e-3)::

    features = FourierFeatures(2, 10_000, bandwidth=CLGN_BANDWIDTH, generator=g)
    s = sketch_dataset(x, features, scale=unit_ball_scaling(x))
    loss = sketch_distance(s, generator_net(z))      # samples in the scaled coordinates

Reference: Schellekens & Jacques, "Compressive Learning of Generative Networks", ESANN 2020
(arXiv:2002.05095), eq. (1) and (6); Keriven et al., "Sketching for large-scale learning of mixture
models", 2018; the pycle 1.2 toolbox.
"""

from ._bandwidth import estimate_bandwidth
from ._features import QUANTIZED_GAIN, FourierFeatures, mean_features
from ._fused import fused_available, fused_feature_sums
from ._gaussian import gaussian_mixture_sketch, gaussian_sketch
from ._io import FORMAT_VERSION, SketchError
from ._laws import CLGN_BANDWIDTH, CLGN_FREQUENCIES, LAWS, SCALES
from ._pass import sketch_dataset, unit_ball_scaling
from ._pieces import Piece, file_fingerprint
from ._prior import (
    PRIOR_SCALES,
    SKETCH_FREQUENCIES,
    default_bandwidth,
    prior_sketch,
    sketch_prior_distance,
)
from ._privacy import (
    MECHANISMS,
    NEIGHBOURS,
    Privacy,
    analytic_gaussian_std,
    check_budget,
    private_sketch,
    sensitivity,
)
from ._recipe import (
    BANDWIDTH_PROBE,
    IMAGE_LAW,
    IMAGE_MAX_FREQUENCIES,
    MEDIAN_FACTOR,
    auto_bandwidth,
    default_frequencies,
    median_bandwidth,
    radius_median,
    sketch_recipe,
)
from ._sketch import Sketch, sketch_distance

__all__ = [
    "BANDWIDTH_PROBE",
    "CLGN_BANDWIDTH",
    "CLGN_FREQUENCIES",
    "FORMAT_VERSION",
    "IMAGE_LAW",
    "IMAGE_MAX_FREQUENCIES",
    "LAWS",
    "MECHANISMS",
    "MEDIAN_FACTOR",
    "NEIGHBOURS",
    "PRIOR_SCALES",
    "QUANTIZED_GAIN",
    "SCALES",
    "SKETCH_FREQUENCIES",
    "FourierFeatures",
    "Piece",
    "Privacy",
    "Sketch",
    "SketchError",
    "analytic_gaussian_std",
    "auto_bandwidth",
    "check_budget",
    "default_bandwidth",
    "default_frequencies",
    "estimate_bandwidth",
    "file_fingerprint",
    "fused_available",
    "fused_feature_sums",
    "gaussian_mixture_sketch",
    "gaussian_sketch",
    "mean_features",
    "median_bandwidth",
    "prior_sketch",
    "private_sketch",
    "radius_median",
    "sensitivity",
    "sketch_dataset",
    "sketch_distance",
    "sketch_prior_distance",
    "sketch_recipe",
    "unit_ball_scaling",
]
