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


def _brute_force_gaps(a, b):
    """a - sort(b)[rank(a)], row by row, in plain Python."""
    out = torch.empty_like(a)
    for row in range(a.shape[0]):
        matched = sorted(b[row].tolist())
        for rank, i in enumerate(sorted(range(a.shape[1]), key=lambda i: float(a[row, i]))):
            out[row, i] = a[row, i] - matched[rank]
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_matched_gaps_pair_each_value_with_the_same_rank_of_the_other_sample(gen, dtype):
    from distmatch.distances._matching import _torch_gaps, matched_gaps

    a, b = torch.randn(6, 33, generator=gen, dtype=dtype), torch.randn(6, 33, generator=gen)
    b = b.to(dtype)
    expected = _pairs(a, _brute_force_gaps(a, b))
    assert _pairs(a, matched_gaps(a, b)) == expected  # NumPy on the CPU (float32/64)
    assert _pairs(a, _torch_gaps(a, b)) == expected  # torch.sort elsewhere


def _pairs(a, gaps):
    """Each row's (value, gap) pairs in order: tied values may share their gaps in any order."""
    return [sorted(zip(u.tolist(), v.tolist(), strict=True)) for u, v in zip(a, gaps, strict=True)]


def test_matched_gaps_with_ties_give_the_exact_one_dimensional_distance():
    from distmatch.distances._matching import matched_gaps

    a = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0]])
    b = torch.tensor([[3.0, -1.0, 2.0, 0.5, 0.0]])
    gaps = matched_gaps(a, b)
    assert sorted(gaps[0].tolist()) == sorted(
        [0.0 + 1.0, 0.0 - 0.0, 0.0 - 0.5, 1.0 - 2.0, 1.0 - 3.0]
    )
    expected = stats.wasserstein_distance(a[0].numpy(), b[0].numpy(), None, None)
    assert float(gaps.abs().mean()) == pytest.approx(expected, rel=1e-7)


def test_the_compiled_sliced_distance_and_its_gradient_equal_the_eager_ones(gen):
    from distmatch._core import compiler_available

    if not compiler_available(torch.device("cpu")):
        pytest.skip("no C++ compiler for torch.compile")
    x = torch.randn(64, 20, generator=gen, requires_grad=True)
    y, theta = torch.randn(64, 20, generator=gen), distances.random_projections(20, 50)
    eager = distances.sliced_wasserstein(x, y, projections=theta)
    (grad,) = torch.autograd.grad(eager, x)
    compiled = torch.compile(lambda a: distances.sliced_wasserstein(a, y, projections=theta))
    value = compiled(x)
    assert torch.allclose(value, eager, rtol=1e-6)
    assert torch.allclose(torch.autograd.grad(value, x)[0], grad, rtol=1e-5, atol=1e-8)


def test_the_compiled_distance_of_fresh_rows_equals_the_eager_one(gen):
    """The moving window's form (``fresh``: sorted projections, ranks of the fresh rows) through
    torch.compile (NumPy's sort as an operator of its own) against the eager form and the full one."""
    from distmatch._core import compiler_available
    from distmatch.distances.sliced import sliced_unchecked

    if not compiler_available(torch.device("cpu")):
        pytest.skip("no C++ compiler for torch.compile")
    z = torch.randn(2, 20, generator=gen, requires_grad=True)
    stored, y = torch.randn(62, 20, generator=gen), torch.randn(64, 20, generator=gen)
    theta = distances.random_projections(20, 50)

    def fresh(a):
        return sliced_unchecked(torch.cat([a, stored]), y, theta, 2.0, fresh=2)

    full = sliced_unchecked(torch.cat([z, stored]), y, theta, 2.0)
    (expected,) = torch.autograd.grad(full, z)
    for fn in (fresh, torch.compile(fresh)):
        value = fn(z)
        torch.testing.assert_close(value, full, rtol=1e-5, atol=0)  # float32 sums in two orders
        torch.testing.assert_close(torch.autograd.grad(value, z)[0], expected, rtol=1e-5, atol=1e-8)


def test_the_sorting_operators_pass_torch_library_opcheck():
    """Schema, fake (contiguous outputs, also for transposed inputs), no autograd (a tensor that
    requires a gradient gives an output that does not) and dynamic shapes in AOT dispatch."""
    from distmatch.distances._matching import _numpy_gaps, _numpy_sorted

    a, b = torch.randn(4, 6).T, torch.randn(4, 6).T
    for op, args in ((_numpy_sorted, (a,)), (_numpy_gaps, (a, b))):
        for check, outcome in torch.library.opcheck(op, args).items():
            assert outcome == "SUCCESS", (op, check, outcome)
    x = torch.randn(3, 5, requires_grad=True)
    assert torch.equal(_numpy_sorted(x), x.detach().sort(dim=-1).values)
    assert not _numpy_sorted(x).requires_grad
