"""Properties of the CL-GN toy distributions (distmatch.toys)."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from distmatch.data import TOYS, ToySpec, toy_dataset, toy_log_density, toy_sample

NAMES = list(TOYS)
GRID_STEP = 0.005  # midpoint rule: the spiral's error is O(h²), about 2e-6 at this step


def _grid(extent: float, step: float) -> torch.Tensor:
    """Cell centres of a square grid over ``[-extent, extent]²``, shape ``(k², 2)``, float64."""
    k = round(2 * extent / step)
    centres = -extent + step * (torch.arange(k, dtype=torch.float64) + 0.5)  # (k,)
    xx, yy = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=1)  # (k², 2)


@pytest.fixture(scope="module")
def fresh() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return {name: toy_sample(name, 100_000, generator=gen, dtype=torch.float64) for name in NAMES}


# ------------------------------------------------------------------------------------- sampling


def test_registry_lists_the_three_clgn_toys():
    assert set(TOYS) == {"spiral", "gmm", "circle"}
    for spec in TOYS.values():
        assert isinstance(spec, ToySpec) and callable(spec.sample) and spec.description


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_samples_have_shape_n_by_2_and_the_requested_dtype(name, dtype):
    x = toy_sample(name, 17, dtype=dtype)
    assert x.shape == (17, 2) and x.dtype == dtype and x.device.type == "cpu"
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", NAMES)
def test_a_seeded_generator_reproduces_the_samples(name):
    a = toy_sample(name, 50, generator=torch.Generator().manual_seed(3))
    b = toy_sample(name, 50, generator=torch.Generator().manual_seed(3))
    c = toy_sample(name, 50, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_dtype_only_rounds_the_same_draws(name):
    x32 = toy_sample(name, 50, generator=torch.Generator().manual_seed(3))
    x64 = toy_sample(name, 50, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(x32, x64.float())


def test_dataset_is_deterministic_float32_with_100000_points_by_default():
    x = toy_dataset("spiral")
    assert x.shape == (100_000, 2) and x.dtype == torch.float32
    assert torch.equal(x, toy_dataset("spiral"))
    assert not torch.equal(toy_dataset("gmm", 100, seed=0), toy_dataset("gmm", 100, seed=1))


def test_spiral_follows_the_pycle_construction(fresh):
    x = fresh["spiral"]
    rho = x.norm(dim=1)
    t = torch.remainder(torch.atan2(x[:, 1], x[:, 0]), 2 * math.pi) / (2 * math.pi)
    residual = rho - (0.3 + 1.2 * t)  # the radial noise, N(0, 0.01²)
    assert abs(residual.mean()) < 1e-4 and abs(residual.std() - 0.01) < 2e-4
    assert abs(t.mean() - 0.5) < 0.005  # uniform over the one turn


def test_circle_and_gmm_have_the_documented_moments(fresh):
    rho = fresh["circle"].norm(dim=1)
    assert abs(rho.mean() - 1) < 2e-3 and abs(rho.std() - 0.08) < 2e-3
    x = fresh["gmm"]
    angles = math.pi / 2 + 2 * math.pi * torch.arange(5, dtype=torch.float64) / 5
    means = torch.stack((angles.cos(), angles.sin()), dim=1)  # (5, 2)
    nearest = torch.cdist(x, means).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=5).double() / len(x)
    assert torch.allclose(counts, torch.full((5,), 0.2, dtype=torch.float64), atol=0.006)
    assert abs((x - means[nearest]).std() - 0.1) < 2e-3


# ---------------------------------------------------------------------------------- log-density


@pytest.mark.parametrize("name", NAMES)
def test_log_density_integrates_to_one_on_a_fine_grid(name):
    grid = _grid(TOYS[name].extent, GRID_STEP)
    total = toy_log_density(name, grid).exp().sum().item() * GRID_STEP**2
    assert abs(total - 1) < 1e-3


def test_gmm_log_density_equals_the_scipy_mixture():
    x = torch.randn(500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    angles = np.pi / 2 + 2 * np.pi * np.arange(5) / 5
    means = np.stack((np.cos(angles), np.sin(angles)), axis=1)
    pdf = sum(0.2 * multivariate_normal(m, 0.01 * np.eye(2)).pdf(x.numpy()) for m in means)
    np.testing.assert_allclose(toy_log_density("gmm", x).numpy(), np.log(pdf), rtol=1e-10)


def _expected_log_radius(mean: np.ndarray, std: float) -> np.ndarray:
    """``E log(mean + std·ε)``, ε ~ N(0, 1), by Gauss–Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    return np.log(mean[:, None] + std * nodes) @ weights / math.sqrt(2 * math.pi)


@pytest.mark.parametrize("name", ["spiral", "circle"])
def test_mean_log_density_of_samples_is_minus_the_entropy(name, fresh):
    # (t, r) -> x has Jacobian 2π r, so E log p(X) = E log p(t, r) - E log(2π R), with
    # E log φ_σ(R - μ) = -log(2πeσ²)/2; the t-average is Gauss–Legendre. Monte-Carlo standard error about 0.0025.
    t, w = np.polynomial.legendre.leggauss(200)
    t, w = (t + 1) / 2, w / 2
    mean, std = (0.3 + 1.2 * t, 0.01) if name == "spiral" else (np.ones_like(t), 0.08)
    exact = -0.5 * math.log(2 * math.pi * math.e * std**2) - math.log(2 * math.pi)
    exact -= float(w @ _expected_log_radius(mean, std))
    assert abs(toy_log_density(name, fresh[name]).mean().item() - exact) < 0.01


def test_spiral_density_matches_monte_carlo_box_frequencies(fresh):
    # Boxes across the seam (positive x-axis), the inner start and the outer end of the turn.
    boxes = [(0.2, 0.45, -0.1, 0.1), (1.35, 1.6, -0.15, 0.15), (-1.0, 0.0, -1.2, 0.0)]
    x = fresh["spiral"]
    step = 0.0025
    for x0, x1, y0, y1 in boxes:
        kx, ky = round((x1 - x0) / step), round((y1 - y0) / step)
        cx = x0 + step * (torch.arange(kx, dtype=torch.float64) + 0.5)
        cy = y0 + step * (torch.arange(ky, dtype=torch.float64) + 0.5)
        xx, yy = torch.meshgrid(cx, cy, indexing="ij")
        cells = torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=1)
        prob = toy_log_density("spiral", cells).exp().sum().item() * step**2
        inside = (x[:, 0] > x0) & (x[:, 0] < x1) & (x[:, 1] > y0) & (x[:, 1] < y1)
        freq = inside.double().mean().item()
        assert abs(freq - prob) < 4 * math.sqrt(prob * (1 - prob) / len(x)) + 1e-4


@pytest.mark.parametrize(("name", "other"), list(itertools.permutations(NAMES, 2)))
def test_fresh_samples_are_more_likely_than_another_toys(name, other, fresh):
    assert toy_log_density(name, fresh[name]).mean() > toy_log_density(name, fresh[other]).mean()


def test_log_density_keeps_the_dtype_and_is_finite_off_the_origin():
    x = toy_sample("spiral", 100)
    for name in NAMES:
        lp = toy_log_density(name, x)
        assert lp.shape == (100,) and lp.dtype == torch.float32 and torch.isfinite(lp).all()


def test_radial_toys_have_log_density_plus_inf_at_the_origin():
    origin = torch.zeros(1, 2, dtype=torch.float64)
    assert toy_log_density("circle", origin).item() == math.inf
    assert toy_log_density("spiral", origin).item() == math.inf


# --------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call",
    [
        lambda: toy_sample("moons"),
        lambda: toy_log_density("moons", torch.zeros(1, 2)),
        lambda: toy_dataset("moons"),
    ],
)
def test_unknown_name_lists_the_toys(call):
    with pytest.raises(
        ValueError, match=r"name must be one of 'circle', 'gmm', 'spiral'; got 'moons'"
    ):
        call()


def test_bad_n_dtype_and_seed_are_rejected():
    with pytest.raises(ValueError, match=r"n must be an int >= 1; got 0\."):
        toy_sample("gmm", 0)
    with pytest.raises(TypeError, match=r"n must be an int >= 1; got float\."):
        toy_sample("gmm", 2.0)
    with pytest.raises(
        TypeError, match=r"dtype must be a floating-point torch.dtype; got torch.int64"
    ):
        toy_sample("gmm", 2, dtype=torch.int64)
    with pytest.raises(TypeError, match=r"seed must be an int in \(-2\^63, 2\^63\); got str\."):
        toy_dataset("gmm", 2, seed="0")


def test_bad_points_are_rejected():
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\); got \(4, 3\)\."):
        toy_log_density("gmm", torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"x must be a 2-D tensor"):
        toy_log_density("gmm", torch.zeros(2))
    with pytest.raises(TypeError, match=r"x must have a floating-point dtype"):
        toy_log_density("gmm", torch.zeros(4, 2, dtype=torch.int64))


def test_a_toy_without_density_raises(monkeypatch):
    monkeypatch.setitem(TOYS, "cloud", ToySpec(TOYS["gmm"].sample, None, 1.6, "no density"))
    assert toy_sample("cloud", 3).shape == (3, 2)
    with pytest.raises(ValueError, match=r"name must be a toy with a log-density .*'cloud'"):
        toy_log_density("cloud", torch.zeros(1, 2))
