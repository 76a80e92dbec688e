import numpy as np
import pytest
import torch

from distmatch import distances
from distmatch.distances.kernels import WAE_SCALES

from reference import mmd_gaussian_loops, mmd_imq_loops


def test_imq_unbiased_equals_brute_force_loops():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 5)), rng.normal(size=(7, 5)) * 1.3 + 0.2
    got = distances.mmd(torch.tensor(x), torch.tensor(y))
    assert float(got) == pytest.approx(mmd_imq_loops(x, y, WAE_SCALES), rel=1e-12)


def test_imq_bandwidth_scales_the_constant_c():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    got = distances.mmd(torch.tensor(x), torch.tensor(y), bandwidth=2.0, scales=(0.5, 1.0))
    assert float(got) == pytest.approx(mmd_imq_loops(x, y, (0.5, 1.0), bandwidth=2.0), rel=1e-12)


@pytest.mark.parametrize("biased", [True, False])
def test_gaussian_equals_brute_force_loops(biased):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 4)), rng.normal(size=(11, 4)) + 0.3
    got = distances.mmd(
        torch.tensor(x),
        torch.tensor(y),
        kernel="gaussian",
        bandwidth=1.7,
        estimator="biased" if biased else "unbiased",
    )
    assert float(got) == pytest.approx(mmd_gaussian_loops(x, y, 1.7, biased), rel=1e-12)


def test_gaussian_bandwidth_is_a_standard_deviation():
    x = torch.zeros(1, 1, dtype=torch.float64)
    y = torch.full((1, 1), 2.0, dtype=torch.float64)
    # Biased, one point each: 1 + 1 - 2 k(0, 2), k = exp(-4 / (2 * 2^2)) for bandwidth 2.
    got = distances.mmd(x, y, kernel="gaussian", bandwidth=2.0, estimator="biased")
    assert float(got) == pytest.approx(2 - 2 * np.exp(-0.5), rel=1e-14)


def test_biased_gaussian_is_twice_geomloss():
    geomloss = pytest.importorskip("geomloss")
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(70, 3, generator=gen, dtype=torch.float64) + 0.4
    loss = geomloss.SamplesLoss("gaussian", blur=0.8, backend="tensorized")
    ours = distances.mmd(x, y, kernel="gaussian", bandwidth=0.8, estimator="biased")
    assert float(ours) == pytest.approx(2 * float(loss(x, y)), rel=1e-10)


def test_default_scales_are_wae_for_imq_and_one_for_gaussian(gen):
    x, y = torch.randn(10, 3, generator=gen), torch.randn(12, 3, generator=gen)
    assert distances.mmd(x, y) == distances.mmd(x, y, scales=WAE_SCALES)
    assert distances.mmd(x, y, kernel="gaussian") == distances.mmd(
        x, y, kernel="gaussian", scales=(1.0,)
    )


def test_unbiased_estimate_is_unbiased_in_expectation():
    # The mean of many unbiased estimates between two samples of one law is near 0;
    # the biased one stays clearly positive.
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(400, 8, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(400, 8, 2, generator=gen, dtype=torch.float64)
    u = torch.stack([distances.mmd(a, b, kernel="gaussian") for a, b in zip(x, y, strict=True)])
    v = torch.stack(
        [
            distances.mmd(a, b, kernel="gaussian", estimator="biased")
            for a, b in zip(x, y, strict=True)
        ]
    )
    assert abs(float(u.mean())) < 4 * float(u.std()) / 20
    assert float(v.mean()) > 10 * float(v.std()) / 20


def test_squared_distances_are_exact_far_from_the_origin():
    x = torch.tensor([[1e4, 1e4], [1e4 + 1, 1e4]], dtype=torch.float32)
    d2 = distances.squared_distances(x, x)
    assert torch.equal(d2, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def test_folded_gaussian_kernel_is_the_mean_of_its_random_features():
    # Frequencies w = R u / b with R = |N(0, 1)| and u uniform on the circle: the kernel is
    # E[cos(w.(x - y))], estimated here with a million frequencies.
    gen = torch.Generator().manual_seed(0)
    m, b = 1_000_000, 0.7
    radius = torch.randn(m, generator=gen, dtype=torch.float64).abs()
    angle = 2 * torch.pi * torch.rand(m, generator=gen, dtype=torch.float64)
    omega = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1) / b  # (m, 2)
    deltas = torch.tensor([[0.0, 0.0], [0.3, 0.1], [1.0, -0.5], [2.0, 1.0]], dtype=torch.float64)
    empirical = torch.cos(deltas @ omega.T).mean(dim=1)
    k, _ = distances.KERNELS["folded_gaussian"][0]((deltas**2).sum(1), 2, b, (1.0,))
    assert torch.allclose(k, empirical, atol=5 / m**0.5)


def test_folded_gaussian_kernel_needs_two_dimensions():
    with pytest.raises(
        ValueError, match="the folded_gaussian kernel needs D = 2 features; got D = 3"
    ):
        distances.mmd(torch.zeros(4, 3), torch.ones(4, 3), kernel="folded_gaussian")


@pytest.mark.parametrize("kernel", ["imq", "gaussian"])
def test_multi_scale_kernels_agree_between_broadcast_and_loop(kernel, monkeypatch):
    from distmatch.distances import kernels

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(30, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    scales = (0.3, 1.0, 4.0)
    broadcast = distances.mmd(x, y, kernel=kernel, scales=scales)
    (g_broadcast,) = torch.autograd.grad(broadcast, x)
    monkeypatch.setattr(kernels, "BROADCAST_LIMIT", 0)  # one scale at a time
    looped = distances.mmd(x, y, kernel=kernel, scales=scales)
    (g_looped,) = torch.autograd.grad(looped, x)
    assert abs(float(broadcast.detach() - looped.detach())) < 1e-12
    assert torch.allclose(g_broadcast, g_looped, atol=1e-12)


@pytest.mark.parametrize("name", ["imq", "gaussian", "folded_gaussian"])
@pytest.mark.parametrize("limit", [None, 0])  # broadcast over the scales, or one at a time
def test_kernels_without_the_derivative_give_the_same_values(name, limit, monkeypatch):
    from distmatch.distances import kernels

    if limit is not None:
        monkeypatch.setattr(kernels, "BROADCAST_LIMIT", limit)
    d2 = torch.rand(6, 5, dtype=torch.float64) * 4
    fn, scales = kernels.KERNELS[name]
    scales = (0.5, 2.0) if name != "folded_gaussian" else scales
    k, dk = fn(d2, 2, 1.3, scales)
    k_only, none = fn(d2, 2, 1.3, scales, derivative=False)
    assert none is None and dk is not None
    torch.testing.assert_close(k_only, k, rtol=0, atol=0)


def test_pair_sum_gradient_of_some_rows_needs_no_second_sample_gradient():
    from distmatch.distances._pairs import pair_sum
    from distmatch.distances.kernels import imq_kernel

    def profile(d2, derivative=True):
        return imq_kernel(d2, 3, 1.0, WAE_SCALES, derivative=derivative)

    x, y = torch.randn(8, 3), torch.randn(6, 3)
    with pytest.raises(ValueError, match="rows= gives the gradient of u's first rows only"):
        pair_sum(x, y, profile, 1.0, needs=(True, True), rows=2)
    value, grad, _ = pair_sum(x, y, profile, 1.0, needs=(True, False), rows=2)
    full, full_grad, _ = pair_sum(x, y, profile, 1.0, needs=(True, False))
    torch.testing.assert_close(value, full)
    torch.testing.assert_close(grad, full_grad[:2])


# one joined matrix with kept or built block weights, or three blocks
@pytest.mark.parametrize("limit", [None, "built", 0])
@pytest.mark.parametrize("exclude_diagonal", [True, False])
@pytest.mark.parametrize("rows", [None, 3])
def test_two_sample_sum_equals_brute_force_loops(limit, exclude_diagonal, rows, monkeypatch):
    """Value and gradients of ``a sum k(x, x) + b sum k(y, y) + c sum k(x, y)`` against loops over
    the pairs (and the derivative of each kernel value by hand), both ways of computing it."""
    from distmatch.distances import _pairs
    from distmatch.distances.kernels import imq_kernel

    if limit == "built":
        monkeypatch.setattr(_pairs, "KEPT_WEIGHTS", 0)
    elif limit is not None:
        monkeypatch.setattr(_pairs, "JOIN_LIMIT", limit)

    def profile(d2, derivative=True):
        return imq_kernel(d2, 3, 1.0, (0.5, 2.0), derivative=derivative)

    gen = torch.Generator().manual_seed(7)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64) + 2.0
    y = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    weights = (0.3, -0.7, 1.9)
    needs = (True, rows is None)
    value, g_x, g_y = _pairs.two_sample_sum(
        x, y, profile, weights, exclude_diagonal=exclude_diagonal, needs=needs, rows=rows
    )  # fmt: skip

    expected = torch.zeros((), dtype=torch.float64)
    e_x, e_y = torch.zeros_like(x), torch.zeros_like(y)
    pairs = [
        (x, x, weights[0], e_x, e_x),
        (y, y, weights[1], e_y, e_y),
        (x, y, weights[2], e_x, e_y),
    ]
    for u, v, w, g_u, g_v in pairs:
        for i in range(len(u)):
            for j in range(len(v)):
                if exclude_diagonal and u is v and i == j:
                    continue
                diff = u[i] - v[j]
                d2 = (diff * diff).sum().reshape(1, 1)
                k = sum(c / (c + d2) for c in (3.0, 12.0))  # C = 2 D s for D = 3
                dk = sum(-c / (c + d2) ** 2 for c in (3.0, 12.0))
                expected += w * k[0, 0]
                g_u[i] += 2 * w * dk[0, 0] * diff
                g_v[j] -= 2 * w * dk[0, 0] * diff
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_x, e_x[:rows], rtol=1e-10, atol=1e-12)
    again = _pairs.two_sample_sum(  # the block weights kept from the first call
        x, y, profile, weights, exclude_diagonal=exclude_diagonal, needs=needs, rows=rows
    )  # fmt: skip
    assert torch.equal(again[0], value) and torch.equal(again[1], g_x)
    if rows is None:
        torch.testing.assert_close(g_y, e_y, rtol=1e-10, atol=1e-12)
    else:
        assert g_y is None
        with pytest.raises(ValueError, match="rows= gives the gradient of x's first rows only"):
            _pairs.two_sample_sum(x, y, profile, weights, needs=(True, True), rows=rows)


@pytest.mark.parametrize("limit", [None, 0])  # joined (the training's form), or three blocks
def test_gradcheck_the_training_mmd(limit, monkeypatch, gen):
    from distmatch.distances import _pairs
    from distmatch.distances.kernels import imq_kernel
    from distmatch.distances.mmd import mmd_unchecked

    if limit is not None:
        monkeypatch.setattr(_pairs, "JOIN_LIMIT", limit)
    x = torch.randn(5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(7, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    for unbiased in (True, False):
        assert torch.autograd.gradcheck(
            lambda a, b, u=unbiased: mmd_unchecked(a, b, imq_kernel, 1.0, WAE_SCALES, u), (x, y)
        )


def test_the_public_mmd_keeps_float32_precision_for_samples_far_apart():
    """Three blocks, each centred on its own sample: a joined matrix centred between samples 1000
    apart lost the distances within the narrow one (0.850 against 0.929)."""
    gen = torch.Generator().manual_seed(0)
    x = 0.05 * torch.randn(64, 8, generator=gen, dtype=torch.float64) + 1000.0
    y = torch.randn(64, 8, generator=gen, dtype=torch.float64)
    exact = distances.mmd(x, y, kernel="gaussian", bandwidth=0.5)
    single = distances.mmd(x.float(), y.float(), kernel="gaussian", bandwidth=0.5)
    assert float(single) == pytest.approx(float(exact), rel=1e-5)
    exact_cw = distances.cramer_wold(x, y)
    assert float(distances.cramer_wold(x.float(), y.float())) == pytest.approx(
        float(exact_cw), rel=1e-4
    )
    z = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: distances.cramer_wold(a, b), (z, y.detach()[:, :1].repeat(1, 3))
    )


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("unbiased", [True, False])
def test_the_mmd_of_fresh_rows_equals_the_full_one(unbiased, compiled):
    """The moving window's form, eager and through torch.compile (the kernel's derivative on the
    fresh rows only), against the eager estimate over all rows."""
    from distmatch._core import compiler_available
    from distmatch.distances.kernels import imq_kernel
    from distmatch.distances.mmd import mmd_unchecked

    if compiled and not compiler_available(torch.device("cpu")):
        pytest.skip("no C++ compiler for torch.compile")
    gen = torch.Generator().manual_seed(6)
    z = torch.randn(2, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    stored = torch.randn(30, 5, generator=gen, dtype=torch.float64) + 3.0  # off the origin
    y = torch.randn(24, 5, generator=gen, dtype=torch.float64)

    def estimate(a, fresh):
        return mmd_unchecked(
            torch.cat([a, stored]), y, imq_kernel, 1.0, WAE_SCALES, unbiased, fresh
        )

    full = estimate(z, None)
    (expected,) = torch.autograd.grad(full, z)
    value = (torch.compile(estimate) if compiled else estimate)(z, 2)
    torch.testing.assert_close(value, full, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(torch.autograd.grad(value, z)[0], expected, rtol=1e-10, atol=1e-14)


def test_the_training_mmd_of_one_code_is_the_biased_estimate():
    """A window that fills starts with one code and one prior draw: no pairs within a sample, so
    the unbiased estimate does not exist (it divided by zero); the biased one is taken."""
    from distmatch.distances.kernels import imq_kernel
    from distmatch.distances.mmd import mmd_unchecked

    x = torch.tensor([[0.3, -0.2]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    for fresh in (None, 1):
        got = mmd_unchecked(x, y, imq_kernel, 1.0, WAE_SCALES, True, fresh)
        expected = distances.mmd(x, y, estimator="biased")
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
        torch.testing.assert_close(
            torch.autograd.grad(got, x)[0], torch.autograd.grad(expected, x)[0], rtol=1e-12, atol=0
        )
