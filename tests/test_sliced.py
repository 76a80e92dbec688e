import numpy as np
import pytest
import torch
from scipy import stats

from distmatch import distances


@pytest.mark.parametrize("p", [1, 2, 3])
def test_equals_pot_to_the_power_p_with_the_same_projections(p):
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(p)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 5)) * 1.5 + 0.3
    theta = distances.random_projections(5, 30, generator=torch.Generator().manual_seed(0))
    theta = theta.double()
    pot = ot.sliced_wasserstein_distance(x, y, n_projections=30, p=p, projections=theta.numpy())
    ours = distances.sliced_wasserstein(torch.tensor(x), torch.tensor(y), p=p, projections=theta)
    assert float(ours) == pytest.approx(float(pot) ** p, rel=1e-10)


def test_in_one_dimension_equals_the_exact_wasserstein_distance():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(100, 1)), rng.exponential(size=(100, 1))
    ours = distances.sliced_wasserstein(torch.tensor(x), torch.tensor(y), p=1, n_projections=3)
    assert float(ours) == pytest.approx(stats.wasserstein_distance(x[:, 0], y[:, 0]), rel=1e-12)


def test_a_shift_along_the_only_direction_gives_its_power():
    x = torch.randn(30, 2, dtype=torch.float64)
    theta = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    got = distances.sliced_wasserstein(x, x + torch.tensor([0.5, 9.0]), p=2, projections=theta)
    assert float(got) == pytest.approx(0.25, rel=1e-12)


def test_projections_are_unit_vectors_and_reproducible():
    a = distances.random_projections(7, 11, generator=torch.Generator().manual_seed(5))
    b = distances.random_projections(7, 11, generator=torch.Generator().manual_seed(5))
    assert a.shape == (7, 11)
    assert torch.equal(a, b)
    assert torch.allclose(a.norm(dim=0), torch.ones(11))


def test_generator_makes_the_random_directions_reproducible(gen):
    x, y = torch.randn(20, 4, generator=gen), torch.randn(20, 4, generator=gen)
    a = distances.sliced_wasserstein(x, y, generator=torch.Generator().manual_seed(9))
    b = distances.sliced_wasserstein(x, y, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
