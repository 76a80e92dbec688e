import math

import pytest
import torch

from distmatch import distances
from distmatch.objectives import AutoencoderObjective, reconstruction_errors


def batch(gen):
    x = torch.rand(3, 1, 4, 4, generator=gen, dtype=torch.float64)
    x_rec = torch.rand(3, 1, 4, 4, generator=gen, dtype=torch.float64)
    codes = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    return x, x_rec, codes


def test_reconstruction_root_is_sqrt_of_mean_per_image_sse(gen):
    x, x_rec, codes = batch(gen)
    sse = ((x - x_rec) ** 2).sum(dim=(1, 2, 3))
    parts = AutoencoderObjective("cwae")(x, x_rec, codes)
    assert float(parts["reconstruction"]) == pytest.approx(math.sqrt(float(sse.mean())), rel=1e-12)
    parts = AutoencoderObjective("cwae", reconstruction="mean")(x, x_rec, codes)
    assert float(parts["reconstruction"]) == pytest.approx(float(sse.mean()), rel=1e-12)


def test_cwae_cost_is_rec_plus_log_cw(gen):
    x, x_rec, codes = batch(gen)
    parts = AutoencoderObjective("cwae", lam=2.0)(x, x_rec, codes)
    log_cw = math.log(float(distances.cramer_wold_normality(codes)))
    assert float(parts["distance"]) == pytest.approx(log_cw, rel=1e-12)
    assert float(parts["loss"]) == pytest.approx(float(parts["reconstruction"]) + 2 * log_cw)


def test_wae_cost_uses_a_fresh_prior_sample_of_n_points(gen):
    x, x_rec, codes = batch(gen)
    parts = AutoencoderObjective("wae")(x, x_rec, codes, torch.Generator().manual_seed(5))
    prior = torch.randn(codes.shape, generator=torch.Generator().manual_seed(5), dtype=codes.dtype)
    assert float(parts["distance"]) == pytest.approx(float(distances.mmd(codes, prior)), rel=1e-12)


def test_swae_cost_uses_fresh_prior_and_directions(gen):
    x, x_rec, codes = batch(gen)
    parts = AutoencoderObjective("swae")(x, x_rec, codes, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    prior = torch.randn(codes.shape, generator=g, dtype=codes.dtype)
    expected = distances.sliced_wasserstein(codes, prior, n_projections=50, generator=g)
    assert float(parts["distance"]) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("model", ["cwae", "wae", "swae"])
def test_gradcheck_of_the_whole_cost(model):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 6, generator=gen, dtype=torch.float64)
    x_rec = torch.rand(2, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    codes = torch.randn(8, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    objective = AutoencoderObjective(model)

    def loss(r, c):
        return objective(x, r, c, torch.Generator().manual_seed(1))["loss"]

    assert torch.autograd.gradcheck(loss, (x_rec, codes))


def test_bad_options_and_shapes():
    with pytest.raises(
        ValueError, match="model must be one of 'cwae', 'skwae', 'swae', 'wae'; got 'vae'"
    ):
        AutoencoderObjective("vae")
    with pytest.raises(ValueError, match="reconstruction must be one of 'mean', 'root'; got 'l1'"):
        AutoencoderObjective("wae", reconstruction="l1")
    with pytest.raises(ValueError, match="lam must be a finite number > 0; got -1"):
        AutoencoderObjective("wae", lam=-1)
    with pytest.raises(ValueError, match=r"reconstructions must have the inputs' shape \(2, 3\)"):
        reconstruction_errors(torch.zeros(2, 3), torch.zeros(2, 4))


def test_skwae_draws_hold_the_prior_sketch_and_give_the_same_cost(gen):
    """The frequencies and prior sketch are fetched before a compiled forward (no cache traced)."""
    from distmatch.sketch import mean_features, prior_sketch

    objective = AutoencoderObjective("skwae", sketch_frequencies=64)
    x = torch.rand(5, 1, 4, 4, generator=gen)
    x_rec = torch.rand(5, 1, 4, 4, generator=gen)
    codes = torch.randn(5, 3, generator=gen)
    draws = objective.draws((5, 3), None)
    omega, target = prior_sketch(3, 64, None)
    assert draws.omega is omega and draws.target is target  # the cached tensors, not copies
    with_draws = objective(x, x_rec, codes, draws=draws)["distance"]
    expected = torch.log((mean_features(codes, omega) - target).square().sum())
    torch.testing.assert_close(with_draws, expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(objective(x, x_rec, codes)["distance"], with_draws, rtol=0, atol=0)


def fresh_form(model, draws):
    """The distance of ``model`` on joined codes, its fresh form asked for with ``rows``."""
    from distmatch.distances.cramer_wold import normality_unchecked
    from distmatch.distances.kernels import WAE_SCALES, imq_kernel
    from distmatch.distances.mmd import mmd_unchecked
    from distmatch.distances.sliced import sliced_unchecked

    if model == "cwae":
        return lambda codes, rows: normality_unchecked(codes, 0.3, fresh=rows)
    if model == "wae":
        return lambda codes, rows: mmd_unchecked(
            codes, draws.prior, imq_kernel, 1.0, WAE_SCALES, True, fresh=rows
        )
    theta = draws.theta / draws.theta.norm(dim=0)
    return lambda codes, rows: sliced_unchecked(codes, draws.prior, theta, fresh=rows)


@pytest.mark.parametrize(
    ("model", "dim"), [("cwae", 5), ("cwae", 2), ("cwae", 1), ("wae", 5), ("swae", 5)]
)
@pytest.mark.parametrize("fresh", [1, 3])
def test_fresh_rows_give_the_full_value_and_the_fresh_codes_gradient(model, dim, fresh):
    """With ``fresh=b`` (a moving window's step: only the first b codes carry a gradient) the
    distance is the same number, and the gradient that reaches the fresh codes is the full one's
    rows; the stored codes get none. gradcheck checks the fresh rows' gradient against finite
    differences. (The objective's CWAE and WAE terms use this form inside compiled graphs.)"""
    gen = torch.Generator().manual_seed(3)
    stored = torch.randn(64 - fresh, dim, generator=gen, dtype=torch.float64)
    z = torch.randn(fresh, dim, generator=gen, dtype=torch.float64, requires_grad=True)
    objective = AutoencoderObjective(model)
    draws = objective.draws((64, dim), torch.Generator().manual_seed(4), dtype=torch.float64)
    term = fresh_form(model, draws)

    full = term(torch.cat([z, stored]), None)
    (expected,) = torch.autograd.grad(full, z)
    part = term(torch.cat([z, stored]), fresh)
    (got,) = torch.autograd.grad(part, z)
    assert float(part.detach()) == pytest.approx(float(full.detach()), rel=1e-12, abs=1e-15)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-14)
    assert torch.autograd.gradcheck(
        lambda fresh_codes: term(torch.cat([fresh_codes, stored]), fresh), (z,)
    )
    (stored_grad,) = torch.autograd.grad(
        term(torch.cat([z, stored.requires_grad_()]), fresh), stored, allow_unused=True
    )
    assert stored_grad is None or not stored_grad.any()
    stored.requires_grad_(False)


def test_fresh_rows_of_swae_rank_tied_projections_as_a_stable_sort_does():
    """Tied projections (equal codes, fresh and stored, as a refresh of the window can make) take
    distinct ranks in the order of their rows, fresh first: the ranks of a stable sort. Eagerly
    (binary search) and compiled (the entries below counted)."""
    from distmatch._core import compiler_available
    from distmatch.distances._matching import fresh_ranks

    proj = torch.tensor([[0.5, 0.5, -1.0, 0.5, 2.0], [3.0, 1.0, 1.0, 3.0, 0.0]])
    forms = [fresh_ranks]
    if compiler_available(torch.device("cpu")):
        forms.append(torch.compile(fresh_ranks, dynamic=False))
    for ranked in forms:
        for b in (1, 3):
            ranks = ranked(proj, proj.sort(dim=1).values, b)
            expected = torch.argsort(torch.argsort(proj, dim=1, stable=True), dim=1)[:, :b]
            assert torch.equal(ranks, expected), (ranked, b)


def test_swae_of_a_fresh_code_equal_to_a_stored_one_takes_the_stable_matching():
    """A fresh code equal to a stored one: the gradient of the fresh form is that of the matching
    that a stable sort gives (autograd through it, float64)."""
    from distmatch.distances.sliced import sliced_unchecked

    gen = torch.Generator().manual_seed(8)
    stored = torch.randn(15, 4, generator=gen, dtype=torch.float64)
    z = stored[3:4].clone().requires_grad_()  # the same code, fresh
    y = torch.randn(16, 4, generator=gen, dtype=torch.float64)
    theta = torch.randn(4, 10, generator=gen, dtype=torch.float64)
    theta = theta / theta.norm(dim=0)
    (got,) = torch.autograd.grad(sliced_unchecked(torch.cat([z, stored]), y, theta, fresh=1), z)
    a = (torch.cat([z, stored]) @ theta).T  # (L, N)
    order = torch.argsort(a.detach(), dim=1, stable=True)
    matched = torch.empty_like(a).scatter_(1, order, (y @ theta).T.sort(dim=1).values)
    (expected,) = torch.autograd.grad((a - matched).square().mean(), z)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
