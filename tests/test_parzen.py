import math

import numpy as np
import pytest
import torch

from distmatch.evaluation import (
    PARZEN_BANDWIDTHS,
    parzen_log_density,
    parzen_log_likelihood,
    select_parzen_bandwidth,
)


def brute_force_log_density(samples: np.ndarray, x: np.ndarray, h: float) -> float:
    """``log(1/N sum_i N(x; s_i, h^2 I))`` by an explicit loop over the kernels."""
    n, dim = samples.shape
    terms = [-np.sum((x - s) ** 2) / (2 * h * h) for s in samples]
    top = max(terms)
    log_sum = top + math.log(sum(math.exp(t - top) for t in terms))
    return log_sum - math.log(n) - 0.5 * dim * math.log(2 * math.pi * h * h)


def test_matches_a_brute_force_loop_on_tiny_data():
    rng = np.random.default_rng(0)
    samples, test = rng.uniform(size=(7, 5)), rng.uniform(size=(6, 5))
    h = 0.13
    expected = np.array([brute_force_log_density(samples, x, h) for x in test])
    got = parzen_log_density(torch.tensor(samples), torch.tensor(test), h, batch_size=4)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-10)
    estimate = parzen_log_likelihood(samples, test, h, batch_size=4)
    assert estimate.mean == pytest.approx(expected.mean(), abs=1e-10)
    assert estimate.std_error == pytest.approx(expected.std(ddof=1) / math.sqrt(6), abs=1e-10)


def test_images_are_flattened_and_batches_do_not_matter():
    gen = torch.Generator().manual_seed(1)
    samples, test = torch.rand(9, 1, 3, 3, generator=gen), torch.rand(5, 1, 3, 3, generator=gen)
    flat = parzen_log_density(samples.reshape(9, 9), test.reshape(5, 9), 0.2, batch_size=5)
    for batch_size in (1, 2, 64):
        got = parzen_log_density(samples, test, 0.2, batch_size=batch_size)
        torch.testing.assert_close(got, flat, rtol=0, atol=1e-12)


def test_many_standard_normal_samples_give_the_true_mean_log_density():
    """A Gaussian KDE of N(0, I) samples tends to N(0, (1 + h^2) I) as N grows.

    With D = 2, h = 0.1 and N = 40,000, two effects separate the estimate from the true mean log
    density on the same test points:

    - smoothing: the limit's mean log density on N(0, I) points is lower by
      (D/2) (log(1 + h^2) + 1/(1 + h^2) - 1) = 5e-5;
    - finite N: the density estimate has relative variance about 1 / (N (4 pi h^2)^(D/2) p(x)),
      which lowers E log p by half of it (Jensen); averaged over x ~ p this is
      |A| / (2 N (4 pi h^2)^(D/2)) = 0.004 for the area |A| ~ 40 the test points cover, with a
      spread of a few 1e-3 (over twelve seeds the error ranged from -0.012 to -0.001).

    Both sides use the same test points, so their own sampling noise (0.03 on the mean) cancels;
    the tolerance 0.03 is several times the expected error. Against the entropy -(D/2)(1 + log 2 pi)
    that noise remains and is allowed for with 4 standard errors.
    """
    gen = torch.Generator().manual_seed(2)
    dim, h = 2, 0.1
    samples = torch.randn(40_000, dim, generator=gen, dtype=torch.float64)
    test = torch.randn(1_000, dim, generator=gen, dtype=torch.float64)
    true_log_density = -0.5 * (test**2).sum(dim=1) - 0.5 * dim * math.log(2 * math.pi)  # (M,)
    estimate = parzen_log_likelihood(samples, test, h)
    assert estimate.mean == pytest.approx(float(true_log_density.mean()), abs=0.03)
    entropy = -0.5 * dim * (1 + math.log(2 * math.pi))
    assert abs(estimate.mean - entropy) < 0.03 + 4 * estimate.std_error


def test_the_selected_bandwidth_maximises_the_validation_log_likelihood():
    gen = torch.Generator().manual_seed(3)
    samples = torch.rand(200, 6, generator=gen)
    validation = torch.rand(50, 6, generator=gen)
    best, table = select_parzen_bandwidth(samples, validation, batch_size=16)
    manual = {h: parzen_log_likelihood(samples, validation, h).mean for h in PARZEN_BANDWIDTHS}
    assert list(table) == pytest.approx(list(PARZEN_BANDWIDTHS))
    assert list(table.values()) == pytest.approx(list(manual.values()), abs=1e-10)
    assert best == max(manual, key=manual.get)
    assert PARZEN_BANDWIDTHS[0] < best < PARZEN_BANDWIDTHS[-1]


def test_the_default_grid_is_the_gan_protocol_grid():
    np.testing.assert_allclose(PARZEN_BANDWIDTHS, [0.10 + 0.01 * k for k in range(20)], atol=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: parzen_log_density(torch.rand(3, 2), torch.rand(2, 3), 0.1),
            ValueError,
            "test points must have the samples' 2 features; got 3",
        ),
        (
            lambda: parzen_log_density(torch.rand(3, 2), torch.rand(2, 2), 0.0),
            ValueError,
            "bandwidth must be a finite number > 0; got 0.0",
        ),
        (
            lambda: parzen_log_density([[0.0]], torch.rand(2, 1), 0.1),
            TypeError,
            "samples must be a torch.Tensor",
        ),
        (
            lambda: select_parzen_bandwidth(torch.rand(3, 2), torch.rand(2, 2), []),
            ValueError,
            "bandwidths must be a non-empty sequence",
        ),
        (
            lambda: select_parzen_bandwidth(torch.rand(3, 2), torch.rand(2, 2), [0.1, -1]),
            ValueError,
            "bandwidths must be a non-empty sequence of numbers in",
        ),
    ],
)
def test_bad_inputs_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_bandwidths_whose_squares_leave_float64_are_refused_and_nan_is_never_selected():
    """h = 1e-200 made h^2 = 0 and a NaN mean, which argmax then chose as the best bandwidth."""
    gen = torch.Generator().manual_seed(0)  # fixed draws: h = 0.5 is then clearly the best of three
    samples, points = torch.randn(200, 3, generator=gen), torch.randn(20, 3, generator=gen)
    for h in (1e-200, 1e200):
        with pytest.raises(ValueError, match=r"bandwidth must be in \[1e-100, 1e\+100\]"):
            parzen_log_likelihood(samples, points, h)
        with pytest.raises(ValueError, match=r"bandwidths must be a non-empty sequence of numbers"):
            select_parzen_bandwidth(samples, points, [h, 0.2])
    best, table = select_parzen_bandwidth(samples, points, [1e-99, 0.2, 0.5])
    assert best == 0.5 and all(math.isfinite(v) for v in table.values())
