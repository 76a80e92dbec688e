"""Each bad input gets a one-line message that names what was expected and what was got."""

import numpy as np
import pytest
import torch

from distmatch import distances
from distmatch.distances import DISTANCES

GOOD = torch.zeros(4, 3)


@pytest.mark.parametrize("name", DISTANCES)
def test_mismatched_feature_sizes(name):
    with pytest.raises(ValueError, match="same number of features; got 3 and 2"):
        distances.distance(name, GOOD, torch.zeros(4, 2))


@pytest.mark.parametrize("name", DISTANCES)
def test_wrong_number_of_dimensions(name):
    with pytest.raises(
        ValueError, match=r"x must be a 2-D tensor of shape \(N, D\); got shape \(4,\)"
    ):
        distances.distance(name, torch.zeros(4), GOOD)
    with pytest.raises(ValueError, match=r"y must be a 2-D tensor .* got shape \(2, 2, 3\)"):
        distances.distance(name, GOOD, torch.zeros(2, 2, 3))


@pytest.mark.parametrize("name", DISTANCES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values(name, bad):
    y = GOOD.clone()
    y[1, 2] = bad
    with pytest.raises(ValueError, match="y must contain only finite values; got 1 NaN or inf"):
        distances.distance(name, GOOD, y)


@pytest.mark.parametrize("name", DISTANCES)
def test_not_a_tensor(name):
    with pytest.raises(
        TypeError, match="x must be a torch.Tensor of shape \\(N, D\\); got ndarray"
    ):
        distances.distance(name, np.zeros((4, 3)), GOOD)


@pytest.mark.parametrize("name", DISTANCES)
def test_integer_dtype(name):
    with pytest.raises(TypeError, match="x must have a floating-point dtype; got torch.int64"):
        distances.distance(name, torch.zeros(4, 3, dtype=torch.long), GOOD)


@pytest.mark.parametrize("name", DISTANCES)
def test_mismatched_dtypes(name):
    with pytest.raises(TypeError, match="same dtype; got torch.float32 and torch.float64"):
        distances.distance(name, GOOD, GOOD.double())


def test_unbiased_mmd_needs_two_points():
    with pytest.raises(ValueError, match="x must have at least 2 points; got 1"):
        distances.mmd(torch.zeros(1, 3), GOOD)
    with pytest.raises(ValueError, match="y must have at least 2 points; got 1"):
        distances.mmd(GOOD, torch.zeros(1, 3))
    assert distances.mmd(torch.zeros(1, 3), GOOD, estimator="biased") == 0  # fine when biased


def test_empty_samples():
    with pytest.raises(ValueError, match="z must have at least 1 points; got 0"):
        distances.cramer_wold_normality(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="at least 1 feature; got shape \\(4, 0\\)"):
        distances.cramer_wold(torch.zeros(4, 0), torch.zeros(4, 0))


def test_unknown_kernel():
    with pytest.raises(
        ValueError, match="kernel must be one of .folded_gaussian., .gaussian., .imq.; got .rbf."
    ):
        distances.mmd(GOOD, GOOD, kernel="rbf")


def test_unknown_estimator():
    with pytest.raises(ValueError, match="estimator must be one of 'biased', 'unbiased'; got 'u'"):
        distances.mmd(GOOD, GOOD, estimator="u")


def test_unknown_distance_name():
    with pytest.raises(ValueError, match="distance must be one of 'cramer_wold', 'mmd', "):
        distances.distance("energy", GOOD, GOOD)


def test_misspelt_option_is_rejected():
    with pytest.raises(
        TypeError, match="options of distance 'mmd' must be among .*; got 'bandwith'"
    ):
        distances.distance("mmd", GOOD, GOOD, bandwith=2.0)


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf")])
def test_bad_bandwidth_and_gamma(value):
    with pytest.raises(ValueError, match=f"bandwidth must be a finite number > 0; got {value}"):
        distances.mmd(GOOD, GOOD, bandwidth=value)
    with pytest.raises(ValueError, match=f"gamma must be a finite number > 0; got {value}"):
        distances.cramer_wold_normality(GOOD, gamma=value)


def test_bad_scales():
    with pytest.raises(ValueError, match="scales must be a non-empty sequence"):
        distances.mmd(GOOD, GOOD, scales=())
    with pytest.raises(ValueError, match="each scale must be a finite number > 0; got -1"):
        distances.mmd(GOOD, GOOD, scales=(1.0, -1))


def test_sliced_needs_equal_sizes():
    with pytest.raises(
        ValueError, match="same number of points for sliced_wasserstein; got 4 and 5"
    ):
        distances.sliced_wasserstein(GOOD, torch.zeros(5, 3))


def test_sliced_bad_options():
    with pytest.raises(ValueError, match="n_projections must be an int >= 1; got 0"):
        distances.sliced_wasserstein(GOOD, GOOD, n_projections=0)
    with pytest.raises(ValueError, match="p must be >= 1; got 0.5"):
        distances.sliced_wasserstein(GOOD, GOOD, p=0.5)
    with pytest.raises(
        ValueError, match=r"projections must have shape \(D, L\) with D=3; got \(2, 5\)"
    ):
        distances.sliced_wasserstein(GOOD, GOOD, projections=torch.ones(2, 5))


def test_silverman_needs_a_positive_count():
    with pytest.raises(ValueError, match="n must be a finite number > 0; got 0"):
        distances.silverman_gamma(0)
