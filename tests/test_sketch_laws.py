"""Frequency laws against their kernels, closed-form Gaussian sketches, bandwidth estimation, pycle."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from distmatch import sketch
from distmatch.sketch import LAWS, FourierFeatures, Sketch

DELTA = 1e-6  # failure probability of each stated bound


def hoeffding(m: int) -> float:
    """Deviation bound of a mean of m terms in [-1, 1]: P(|mean - E| > t) <= DELTA."""
    return math.sqrt(2 * math.log(2 / DELTA) / m)


def kernel_estimate(features: FourierFeatures, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """phi(x) . phi(y) = mean_j cos(omega_j . (x - y)) for each pair of rows."""
    return (features(x) * features(y)).sum(dim=1)


def test_gaussian_law_approximates_the_gaussian_kernel_within_hoeffding(gen):
    m, sigma = 20_000, 0.7
    f = FourierFeatures(3, m, law="gaussian", bandwidth=sigma, dither=True, generator=gen)
    x = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    y = x + torch.linspace(0.0, 2.0, 8, dtype=torch.float64)[:, None] * torch.randn(
        8, 3, generator=gen, dtype=torch.float64
    )
    exact = torch.exp(-((x - y) ** 2).sum(dim=1) / (2 * sigma**2))
    assert float((kernel_estimate(f, x, y) - exact).abs().max()) < hoeffding(m)


def test_cov_shapes_the_gaussian_kernel_by_its_inverse(gen):
    m, sigma = 20_000, 0.5
    cov = np.array([[4.0, 1.0], [1.0, 1.0]])
    f = FourierFeatures(2, m, law="gaussian", bandwidth=sigma, cov=cov, generator=gen)
    x = torch.zeros(4, 2, dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [0.0, 0.5], [1.0, 1.0], [-1.0, 0.4]], dtype=torch.float64)
    d = y.numpy()
    exact = np.exp(-np.einsum("nd,de,ne->n", d, np.linalg.inv(cov), d) / (2 * sigma**2))
    assert np.abs(kernel_estimate(f, x, y).numpy() - exact).max() < hoeffding(m)


def test_folded_gaussian_law_in_2d_matches_the_bessel_kernel(gen):
    m, sigma = 20_000, 0.3
    f = FourierFeatures(2, m, law="folded_gaussian", bandwidth=sigma, generator=gen)
    x = torch.zeros(6, 2, dtype=torch.float64)
    y = torch.tensor([0.0, 0.1, 0.2, 0.4, 0.8, 1.5], dtype=torch.float64)[:, None] * torch.tensor(
        [[0.6, 0.8]], dtype=torch.float64
    )
    s = y.norm(dim=1).numpy() / sigma
    exact = np.exp(-(s**2) / 4) * special.i0(s**2 / 4)
    assert np.abs(kernel_estimate(f, x, y).numpy() - exact).max() < hoeffding(m)


def test_multiscale_law_approximates_the_mean_of_gaussian_kernels_at_its_scales(gen):
    m, sigma = 20_000, 0.6
    f = FourierFeatures(5, m, law="multiscale_gaussian", bandwidth=sigma, generator=gen)
    x = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    y = x + torch.linspace(0.0, 3.0, 8, dtype=torch.float64)[:, None] * torch.randn(
        8, 5, generator=gen, dtype=torch.float64
    )
    d2 = ((x - y) ** 2).sum(dim=1)
    exact = sum(torch.exp(-d2 / (2 * (s * sigma) ** 2)) for s in sketch.SCALES) / len(sketch.SCALES)
    assert float((kernel_estimate(f, x, y) - exact).abs().max()) < hoeffding(m)
    radius = LAWS["multiscale_gaussian"](10, 5, gen)  # the scales in turn, every m/5 frequencies
    assert radius.shape == (10,)


def adapted_radius_moment(power: int) -> float:
    """E[R^power] under p(R) ∝ sqrt(R^2 + R^4/4) exp(-R^2/2), by quadrature."""

    def density(r: float) -> float:
        return math.sqrt(r**2 + r**4 / 4) * math.exp(-(r**2) / 2)

    norm = integrate.quad(density, 0, np.inf)[0]
    return integrate.quad(lambda r: r**power * density(r), 0, np.inf)[0] / norm


def test_adapted_radius_law_has_the_moments_of_its_density(gen):
    n = 200_000
    radius = LAWS["adapted_radius"](n, 2, gen).numpy()
    for power in (1, 2):
        expected = adapted_radius_moment(power)
        spread = math.sqrt(adapted_radius_moment(2 * power) - expected**2)
        assert abs(np.mean(radius**power) - expected) < 5 * spread / math.sqrt(n)


def test_folded_gaussian_radius_is_half_normal(gen):
    radius = LAWS["folded_gaussian"](100_000, 5, gen).numpy()
    assert stats.kstest(radius, stats.halfnorm.cdf).pvalue > 1e-4


def test_gaussian_radius_is_chi(gen):
    radius = LAWS["gaussian"](100_000, 5, gen).numpy()
    assert stats.kstest(radius, stats.chi(5).cdf).pvalue > 1e-4


# --- closed-form sketches of Gaussians -----------------------------------------------------------


def assert_within_standard_errors(exact: torch.Tensor, draws: torch.Tensor, k: float = 5.0):
    """Each coordinate of the mean of the (n, 2m) feature draws within k standard errors of exact.

    Coordinates whose sign almost never flips have an empirical standard error of 0; the floor of
    k flips (each moves the mean by 2 / (n sqrt(m))) covers them.
    """
    n, m = draws.shape[0], draws.shape[1] // 2
    se = draws.std(dim=0) / math.sqrt(n)
    floor = k * 2 / (n * math.sqrt(m))
    assert bool(((draws.mean(dim=0) - exact).abs() <= k * se + floor).all())


@pytest.mark.parametrize("quantized", [False, True], ids=["full", "quantized"])
def test_gaussian_sketch_matches_monte_carlo(gen, quantized):
    f = FourierFeatures(2, 150, bandwidth=1.0, dither=True, quantized=quantized, generator=gen)
    mean = torch.tensor([0.3, -0.2], dtype=torch.float64)
    cov = torch.tensor([[0.5, 0.1], [0.1, 0.3]], dtype=torch.float64)
    x = torch.distributions.MultivariateNormal(mean, cov).sample((200_000,))
    assert_within_standard_errors(sketch.gaussian_sketch(f, mean, cov), f(x))


def test_gaussian_sketch_defaults_to_standard_normal(gen):
    f = FourierFeatures(3, 50, dither=True, generator=gen)
    expected = sketch.gaussian_sketch(f, np.zeros(3), np.eye(3))
    torch.testing.assert_close(sketch.gaussian_sketch(f), expected, rtol=0, atol=1e-15)


def test_gaussian_mixture_sketch_matches_monte_carlo(gen):
    f = FourierFeatures(2, 150, bandwidth=0.5, dither=True, generator=gen)
    weights = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    means = torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.0]], dtype=torch.float64)
    covs = torch.stack(
        [0.05 * torch.eye(2), 0.2 * torch.eye(2), torch.tensor([[0.1, 0.05], [0.05, 0.1]])]
    ).double()
    n = 200_000
    component = torch.multinomial(weights, n, replacement=True, generator=gen)
    noise = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    x = means[component] + torch.einsum("nde,ne->nd", torch.linalg.cholesky(covs)[component], noise)
    assert_within_standard_errors(sketch.gaussian_mixture_sketch(f, weights, means, covs), f(x))


def test_gaussian_sketch_errors(gen):
    f = FourierFeatures(2, 10, generator=gen)
    with pytest.raises(ValueError, match=r"mean must have shape \(2,\); got shape \(3,\)\."):
        sketch.gaussian_sketch(f, mean=np.zeros(3))
    with pytest.raises(
        ValueError, match=r"cov must be symmetric positive semi-definite; got small"
    ):
        sketch.gaussian_sketch(f, cov=-np.eye(2))
    with pytest.raises(ValueError, match=r"weights must be non-negative and sum to 1"):
        sketch.gaussian_mixture_sketch(f, [0.5, 0.6], np.zeros((2, 2)), np.stack([np.eye(2)] * 2))
    with pytest.raises(TypeError, match=r"features must be a FourierFeatures; got Sketch\."):
        sketch.gaussian_sketch(Sketch(f))


# --- bandwidth estimation ------------------------------------------------------------------------


def test_sketch_bandwidth_recovers_the_scale_of_a_gaussian(gen):
    sigma = 0.4
    x = sigma * torch.randn(5000, 3, generator=gen)
    assert sketch.estimate_bandwidth(x, generator=gen) == pytest.approx(sigma, rel=0.2)


def test_sketch_bandwidth_recovers_the_scale_of_separated_clusters(gen):
    sigma = 0.05  # the overall spread is 20 times larger: the fit has to walk down to it
    corners = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    x = corners[torch.randint(0, 4, (5000,), generator=gen)] + sigma * torch.randn(
        5000, 2, generator=gen
    )
    assert sketch.estimate_bandwidth(x, generator=gen) == pytest.approx(sigma, rel=0.2)


def test_median_bandwidth_is_the_median_pairwise_distance(gen):
    sigma, d = 0.4, 5
    x = sigma * torch.randn(4000, d, generator=gen, dtype=torch.float64)
    exact = sigma * math.sqrt(2 * stats.chi2(d).median())  # |x - y| ~ sigma sqrt(2) chi_d
    estimate = sketch.estimate_bandwidth(x, method="median", n_points=2000, generator=gen)
    assert estimate == pytest.approx(exact, rel=0.05)


def test_estimate_bandwidth_reads_a_memory_map_like_an_array(gen, tmp_path):
    x = 0.4 * torch.randn(3000, 3, generator=gen, dtype=torch.float64)
    np.save(tmp_path / "x.npy", x.numpy())
    mmap = np.load(tmp_path / "x.npy", mmap_mode="r")
    for method in ("sketch", "median"):
        from_map = sketch.estimate_bandwidth(
            mmap, method=method, generator=torch.Generator().manual_seed(5)
        )
        from_tensor = sketch.estimate_bandwidth(
            x, method=method, generator=torch.Generator().manual_seed(5)
        )
        assert from_map == from_tensor


def test_estimate_bandwidth_errors(gen):
    with pytest.raises(ValueError, match=r"method must be one of 'median', 'sketch'; got 'mean'\."):
        sketch.estimate_bandwidth(torch.randn(10, 2), method="mean")
    with pytest.raises(ValueError, match=r"x must have shape \(N, D\) with N >= 2"):
        sketch.estimate_bandwidth(torch.randn(1, 2))


# --- agreement with pycle ------------------------------------------------------------------------


def test_sketch_agrees_with_pycle_compute_sketch(gen):
    sk = pytest.importorskip("pycle.sketching")
    f = FourierFeatures(3, 200, dither=True, generator=gen)
    x = torch.randn(1000, 3, generator=gen, dtype=torch.float64)
    omega, xi = f.frequencies.double().numpy(), f.dither.double().numpy()
    feature_map = sk.SimpleFeatureMap("ComplexExponential", omega, xi=xi)
    assert feature_map.c_norm == 1.0  # pycle's default: mean of exp(i (x Omega + xi)), unscaled
    z = sk.computeSketch(x.numpy(), feature_map)
    ours = sketch.sketch_dataset(x, f, batch_size=300, progress=False).mean.numpy()
    expected = np.concatenate([z.real, z.imag]) / math.sqrt(200)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)


def test_quantized_sketch_agrees_with_pycle_universal_quantization(gen):
    sk = pytest.importorskip("pycle.sketching")
    f = FourierFeatures(3, 200, dither=True, quantized=True, generator=gen)
    x = torch.randn(1000, 3, generator=gen, dtype=torch.float64)
    omega, xi = f.frequencies.double().numpy(), f.dither.double().numpy()
    feature_map = sk.SimpleFeatureMap("universalQuantization_complex", omega, xi=xi)
    z = sk.computeSketch(x.numpy(), feature_map)
    ours = sketch.sketch_dataset(x, f, progress=False).mean.numpy()
    np.testing.assert_allclose(ours, np.concatenate([z.real, z.imag]) / math.sqrt(200), atol=1e-12)
