"""Differentially private sketches (sensitivities, noise scales, records) and 1-bit decoding."""

import math

import numpy as np
import pytest
import torch

from distmatch import sketch
from distmatch.sketch import FourierFeatures, Sketch, sensitivity

M = 50


@pytest.fixture
def base(gen) -> Sketch:
    f = FourierFeatures(2, M, dither=True, generator=gen)
    return Sketch(f).update(torch.randn(300, 2, generator=gen, dtype=torch.float64))


def _noise(base: Sketch, draws: int, **options) -> tuple[torch.Tensor, list[int]]:
    gen = torch.Generator().manual_seed(99)
    results = [sketch.private_sketch(base, generator=gen, **options) for _ in range(draws)]
    noise = torch.stack([r.sum - base.sum for r in results])  # (draws, 2m)
    return noise, [r.count for r in results]


# --- sensitivities -------------------------------------------------------------------------------


def test_add_remove_l2_sensitivity_is_one_and_attained(gen):
    f = FourierFeatures(4, M, dither=True, generator=gen)
    norms = torch.linalg.vector_norm(
        f(torch.randn(100, 4, generator=gen, dtype=torch.float64)), dim=1
    )
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=1e-12)
    assert sensitivity(M, quantized=False, neighbours="add_remove", norm=2) == 1.0


def test_l1_sensitivity_sqrt_2m_is_attained_at_phase_pi_over_4():
    f = FourierFeatures.from_frequencies(torch.tensor([[2.0]], dtype=torch.float64))  # m = 1
    x = torch.tensor([[math.pi / 8]], dtype=torch.float64)  # phase pi/4
    assert float(f(x).abs().sum()) == pytest.approx(math.sqrt(2 * 1), rel=1e-12)
    assert sensitivity(1, quantized=False, neighbours="add_remove", norm=1) == math.sqrt(2)


def test_replace_l2_sensitivity_two_exceeds_pycles_sqrt2():
    f = FourierFeatures.from_frequencies(torch.tensor([[3.0]], dtype=torch.float64))  # m = 1
    x = torch.tensor([[0.2]], dtype=torch.float64)
    x_replaced = x + math.pi / 3  # phases differ by pi
    gap = float(torch.linalg.vector_norm(f(x) - f(x_replaced)))
    assert gap == pytest.approx(2.0, rel=1e-12) and gap > math.sqrt(2)
    assert sensitivity(1, quantized=False, neighbours="replace", norm=2) == 2.0


def test_sensitivities_bound_random_differences(gen):
    f = FourierFeatures(3, M, dither=True, generator=gen)
    q = FourierFeatures(3, M, dither=True, quantized=True, generator=gen)
    x, y = torch.randn(2, 500, 3, generator=gen, dtype=torch.float64)
    for features, quantized in ((f, False), (q, True)):
        phi, psi = features(x), features(y)
        for norm in (1, 2):
            added = torch.linalg.vector_norm(phi, ord=norm, dim=1).max()
            replaced = torch.linalg.vector_norm(phi - psi, ord=norm, dim=1).max()
            assert (
                added
                <= sensitivity(M, quantized=quantized, neighbours="add_remove", norm=norm) + 1e-12
            )
            assert (
                replaced
                <= sensitivity(M, quantized=quantized, neighbours="replace", norm=norm) + 1e-12
            )


# --- mechanisms ----------------------------------------------------------------------------------


def test_laplace_noise_has_the_stated_scale(base):
    epsilon = 2.0
    noise, counts = _noise(base, 400, epsilon=epsilon)
    b = (math.sqrt(2 * M) + 1) / epsilon  # joint L1 sensitivity of (sum, count)
    assert float(noise.std()) == pytest.approx(math.sqrt(2) * b, rel=0.03)
    assert float(noise.abs().mean()) == pytest.approx(b, rel=0.03)  # E|Laplace(b)| = b
    assert np.std(counts) == pytest.approx(math.sqrt(2) * b, rel=0.15)  # 400 draws only


def test_gaussian_noise_has_the_stated_scale(base):
    epsilon, delta = 0.5, 1e-5
    noise, _ = _noise(base, 400, epsilon=epsilon, delta=delta, mechanism="gaussian")
    sigma = math.sqrt(2) * math.sqrt(2 * math.log(1.25 / delta)) / epsilon  # joint L2 = sqrt(1 + 1)
    assert float(noise.std()) == pytest.approx(sigma, rel=0.03)
    assert float(noise.mean()) == pytest.approx(0.0, abs=4 * sigma / math.sqrt(noise.numel()))


def test_replace_neighbours_keep_the_count_and_use_replace_sensitivity(base):
    epsilon = 1.0
    noise, counts = _noise(base, 400, epsilon=epsilon, neighbours="replace")
    b = 2 * math.sqrt(2 * M) / epsilon
    assert float(noise.std()) == pytest.approx(math.sqrt(2) * b, rel=0.03)
    assert set(counts) == {base.count}


def test_private_sketch_records_its_guarantee_and_saves_it(base, tmp_path):
    private = sketch.private_sketch(base, epsilon=0.5, delta=1e-6, mechanism="gaussian")
    record = private.privacy
    assert (record.epsilon, record.delta, record.mechanism, record.neighbours) == (
        0.5, 1e-6, "gaussian", "add_remove"
    )  # fmt: skip
    assert base.privacy is None  # the input is untouched
    private.save(tmp_path / "p.npz")
    loaded = Sketch.load(tmp_path / "p.npz")
    assert loaded.privacy == record
    assert torch.equal(loaded.sum, private.sum) and loaded.count == private.count


def test_private_sketches_with_the_same_guarantee_merge(base):
    a = sketch.private_sketch(base, epsilon=1.0)
    b = sketch.private_sketch(base, epsilon=1.0)
    assert a.copy().merge(b).count == a.count + b.count


def test_private_sketch_errors(base):
    private = sketch.private_sketch(base, epsilon=1.0)
    with pytest.raises(ValueError, match=r"epsilon must be < 1 for the classical Gaussian"):
        sketch.private_sketch(base, epsilon=1.0, delta=1e-5, mechanism="gaussian")
    with pytest.raises(ValueError, match=r"delta must be in \(0, 1\) for the Gaussian mechanism"):
        sketch.private_sketch(base, epsilon=0.5, mechanism="gaussian")
    with pytest.raises(ValueError, match=r"delta must be 0 for the Laplace mechanism"):
        sketch.private_sketch(base, epsilon=0.5, delta=1e-5)
    with pytest.raises(ValueError, match=r"epsilon must be a finite number > 0; got 0"):
        sketch.private_sketch(base, epsilon=0)
    with pytest.raises(
        ValueError, match=r"mechanism must be one of 'analytic_gaussian', 'gaussian', 'laplace'"
    ):
        sketch.private_sketch(base, epsilon=0.5, mechanism="exponential")
    with pytest.raises(ValueError, match=r"sketch must not be private already"):
        sketch.private_sketch(private, epsilon=0.5)
    with pytest.raises(ValueError, match=r"sketch must not be private to take new data"):
        private.update(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"other must have the same privacy record"):
        base.copy().merge(private)


# --- universal 1-bit features --------------------------------------------------------------------


def test_quantized_features_decode_to_four_over_pi_times_full_precision(gen):
    """E_xi[q(t + xi) e^{-i xi}] = (4/pi) e^{i t}: the harmonics of the square wave average out.

    q(u) = sign(cos u) + i sign(sin u) = (4/pi) (e^{iu} - e^{-3iu}/3 + e^{5iu}/5 - ...), and with
    xi uniform only the first harmonic survives the demodulation by e^{-i xi}.
    """
    draws, m = 4000, 20
    omega = torch.randn(2, m, generator=gen, dtype=torch.float64)
    x = torch.randn(10, 2, generator=gen, dtype=torch.float64)
    xis = 2 * math.pi * torch.rand(draws, m, generator=gen, dtype=torch.float64)
    demodulated = []
    for xi in xis:
        q = FourierFeatures.from_frequencies(omega, xi, quantized=True)(x) * math.sqrt(
            m
        )  # (10, 2m)
        demodulated.append(torch.complex(q[:, :m], q[:, m:]) * torch.exp(-1j * xi))
    stack = torch.stack(demodulated)  # (draws, 10, m)
    full = torch.exp(1j * (x @ omega))  # (10, m)
    se = math.sqrt(2 / draws)  # |q e^{-i xi}|^2 = 2, so each part has variance <= 2
    assert float((stack.mean(dim=0) - 4 / math.pi * full).abs().max()) < 5 * se
    assert float((stack.mean(dim=0) - full).abs().max()) > 5 * se  # the bound tells 1 from 4/pi
