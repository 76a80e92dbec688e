import math

import numpy as np
import pytest
import torch

from distmatch import distances

from reference import (
    CW_NORMALITY_CASES,
    SILVERMAN_CASES,
    cw_by_integration,
    cw_normality_closed_form,
    phi_asymptotic,
    phi_exact,
)


@pytest.mark.parametrize(("n", "expected"), SILVERMAN_CASES)
def test_silverman_gamma_matches_reference_values(n, expected):
    assert distances.silverman_gamma(n) == pytest.approx(expected, abs=5e-6)
    assert distances.silverman_gamma(n) == pytest.approx((4 / (3 * n)) ** 0.4, rel=1e-15)


@pytest.mark.parametrize(("points", "gamma", "expected"), CW_NORMALITY_CASES)
def test_normality_matches_reference_check_values(points, gamma, expected):
    z = torch.tensor(points, dtype=torch.float64)
    assert float(distances.cramer_wold_normality(z, gamma=gamma)) == pytest.approx(
        expected, abs=5e-6
    )


def test_scaled_is_unscaled_over_two_sqrt_pi(gen):
    z = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    unscaled = distances.cramer_wold_normality(z)
    scaled = distances.cramer_wold_normality(z, scaled=True)
    assert float(scaled) == pytest.approx(float(unscaled) / (2 * math.sqrt(math.pi)), rel=1e-14)


@pytest.mark.parametrize("dim", [1, 2])
def test_normality_equals_integrated_definition_where_phi_is_exact(dim):
    rng = np.random.default_rng(dim)
    x = rng.normal(size=(6, dim)) * 0.8 + 0.3
    got = distances.cramer_wold_normality(torch.tensor(x), gamma=0.4, scaled=True)
    assert float(got) == pytest.approx(cw_by_integration(x, None, 0.4), rel=1e-9)


@pytest.mark.parametrize("dim", [1, 2])
def test_two_sample_equals_integrated_definition_where_phi_is_exact(dim):
    rng = np.random.default_rng(10 + dim)
    x, y = rng.normal(size=(5, dim)), rng.normal(size=(4, dim)) + 0.5
    got = distances.cramer_wold(torch.tensor(x), torch.tensor(y), gamma=0.3, scaled=True)
    assert float(got) == pytest.approx(cw_by_integration(x, y, 0.3), rel=1e-9)


def test_closed_form_structure_holds_in_3d_with_exact_phi():
    # The theorem itself, in D = 3, with scipy's 1F1 in place of the asymptotic phi.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 3)) * 0.8 + 0.3
    closed = cw_normality_closed_form(x, 0.4, phi_exact)
    assert closed == pytest.approx(cw_by_integration(x, None, 0.4), rel=1e-9)


def test_3d_uses_the_asymptotic_phi_with_its_known_error():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 3)) * 0.8 + 0.3
    got = float(distances.cramer_wold_normality(torch.tensor(x), gamma=0.4, scaled=True))
    assert got == pytest.approx(cw_normality_closed_form(x, 0.4, phi_asymptotic), rel=1e-12)
    # The asymptotic phi is crude in 3-D (up to 13 %), and the distance, a difference of terms,
    # inherits a larger relative error: it is the reference's quantity, not the exact integral.
    assert abs(got - cw_by_integration(x, None, 0.4)) > 0.01 * got


@pytest.mark.parametrize(
    ("dim", "max_rel_error"), [(3, 0.13), (8, 0.035), (20, 0.012), (32, 0.007)]
)
def test_asymptotic_phi_approaches_exact_phi_as_dimension_grows(dim, max_rel_error):
    s = np.linspace(0.0, 10.0, 201)
    got = distances.phi(torch.tensor(s), dim).numpy()
    assert np.allclose(got, phi_asymptotic(s, dim), rtol=1e-14)
    assert np.max(np.abs(got - phi_exact(s, dim)) / phi_exact(s, dim)) < max_rel_error


@pytest.mark.parametrize("dim", [1, 2])
def test_phi_is_exact_in_one_and_two_dimensions(dim):
    s = np.linspace(0.0, 50.0, 101)
    got = distances.phi(torch.tensor(s), dim).numpy()
    assert np.allclose(got, phi_exact(s, dim), rtol=1e-12, atol=0)


def test_two_sample_approaches_normality_for_a_large_normal_sample(gen):
    # Both normalisations agree as y becomes an exact N(0, I) sample (in 2-D, where phi is exact).
    x = torch.randn(20, 2, generator=gen, dtype=torch.float64) + 0.7
    y = torch.randn(6000, 2, generator=gen, dtype=torch.float64)
    two = distances.cramer_wold(x, y, gamma=0.5)
    one = distances.cramer_wold_normality(x, gamma=0.5)
    assert float(two) == pytest.approx(float(one), rel=0.05)


def test_normality_of_a_normal_sample_is_small_and_of_a_shifted_one_large(gen):
    z = torch.randn(2000, 20, generator=gen, dtype=torch.float64)
    near = float(distances.cramer_wold_normality(z))
    far = float(distances.cramer_wold_normality(z + 1.0))
    assert 0 < near < 0.02 < far


def test_default_gamma_is_silverman_of_the_number_of_points(gen):
    z = torch.randn(64, 20, generator=gen, dtype=torch.float64)
    gamma = distances.silverman_gamma(64)
    assert float(distances.cramer_wold_normality(z)) == float(
        distances.cramer_wold_normality(z, gamma=gamma)
    )
    y = torch.randn(64, 20, generator=gen, dtype=torch.float64)
    assert float(distances.cramer_wold(z, y)) == float(distances.cramer_wold(z, y, gamma=gamma))
