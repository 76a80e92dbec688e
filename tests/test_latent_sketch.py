"""The skwae distance (exact prior sketch) and the moving sketch."""

import math

import pytest
import torch

from distmatch.objectives import AutoencoderObjective, skwae_term
from distmatch.sketch import PRIOR_SCALES as SCALES
from distmatch.sketch import mean_features, prior_sketch, sketch_prior_distance
from distmatch.window import MovingSketch, MovingWindow


def test_the_exact_prior_sketch_matches_a_monte_carlo_sketch_within_its_error():
    dim, m, n = 6, 400, 100_000
    omega, prior = prior_sketch(dim, m, dtype=torch.float64)
    z = torch.randn(n, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    estimate = torch.cat([mean_features(part, omega)[None] for part in z.split(10_000)]).mean(0)
    # Each coordinate is a mean of n terms of variance <= 1/m: its standard error <= 1/sqrt(m n).
    assert float((estimate - prior).abs().max()) < 5 / math.sqrt(m * n)
    # E|estimate - p|^2 = (1 - |p|^2) / n <= 1 / n.
    assert float(sketch_prior_distance(estimate, prior)) < 3 / n
    expected = sum((1 + 2 / (dim * s * s)) ** (-dim / 2) for s in SCALES) / len(SCALES)
    assert float(prior.square().sum()) == pytest.approx(expected, rel=0.1)


def test_skwae_is_small_on_prior_codes_and_grows_with_a_shift():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2000, 8, generator=gen)
    near = float(skwae_term(z, None))
    far = float(skwae_term(z + 1.0, None))
    assert near < math.log(3 / 2000) < far


def test_skwae_gradient_passes_gradcheck():
    z = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: skwae_term(c, None, m=50), (z,))


def test_moving_sketch_equals_the_windowed_sketch_in_expectation_and_variance():
    n, k, dim, steps = 16, 1, 3, 6000
    gen = torch.Generator().manual_seed(2)
    shift = torch.tensor([0.5, 0.0, -0.5])
    moving = MovingSketch(n, k, dim, m=64)
    window = MovingWindow(n, k, dim, generator=gen)
    omega = moving.omega
    with_ema, windowed = [], []
    for t in range(steps):
        z = torch.randn(k, dim, generator=gen) + shift
        if t > 200:  # past the burn-in of both
            with_ema.append(moving.join(z))
            windowed.append(mean_features(window.join(z), omega))
        moving.push(z)
        window.push(z)
    with_ema, windowed = torch.stack(with_ema), torch.stack(windowed)
    # The law's exact sketch: E cos(w.z) = exp(-|w|^2 / 2) cos(w.mu), E sin = ... sin(w.mu).
    decay = torch.exp(-0.5 * omega.square().sum(0))
    phase = shift @ omega
    exact = torch.cat([decay * phase.cos(), decay * phase.sin()]) / math.sqrt(64)
    assert float((with_ema.mean(0) - exact).abs().max()) < 0.01
    assert float((windowed.mean(0) - exact).abs().max()) < 0.01
    ratio = float(with_ema.var(0).sum() / windowed.var(0).sum())
    assert 0.75 < ratio < 1.33  # beta = 2k/n matches the window's variance


def test_moving_sketch_join_push_reset_and_gradient():
    moving = MovingSketch(n=8, k=2, dim=4, m=32)
    z = torch.randn(2, 4, requires_grad=True)
    joined = moving.join(z)
    expected = mean_features(z, moving.omega) * (2 / 8) + moving.prior * (6 / 8)
    assert torch.allclose(joined, expected)
    (grad,) = torch.autograd.grad(joined.sum(), z)
    assert grad.abs().sum() > 0 and not moving.sketch.requires_grad
    moving.push(z)
    assert moving.decay(2) == 0.5
    assert torch.allclose(
        moving.sketch, 0.5 * moving.prior + 0.5 * mean_features(z.detach(), moving.omega)
    )
    state = moving.state_dict()
    other = MovingSketch(n=8, k=2, dim=4, m=32)
    other.load_state_dict(state)
    assert torch.equal(other.sketch, moving.sketch)
    moving.reset()
    assert torch.equal(moving.sketch, moving.prior)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MovingSketch(n=1, k=1, dim=2), "n must be >= 2"),
        (lambda: MovingSketch(n=4, k=5, dim=2), "k must be between 1 and n=4"),
        (lambda: MovingSketch(n=4, k=1, dim=2).join(torch.zeros(1, 3)), r"\(B, 2\) tensor"),
        (lambda: MovingSketch(n=4, k=1, dim=2).push(torch.zeros(2, 2)), "between 1 and k=1"),
        (
            lambda: AutoencoderObjective("skwae")(
                torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(20)
            ),
            "latent dimension",
        ),
    ],
)
def test_bad_input(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_skwae_objective_scores_a_joined_sketch_like_the_codes():
    objective = AutoencoderObjective("skwae", latent_dim=4, sketch_frequencies=32)
    x = torch.rand(1, 5)
    codes = torch.randn(8, 4)
    omega, _ = prior_sketch(4, 32)
    from_codes = objective(x, x, codes)["distance"]
    from_sketch = objective(x, x, mean_features(codes, omega))["distance"]
    assert torch.allclose(from_codes, from_sketch)


FAST = {"log_every": 10, "eval_points": 300, "eval_every": 1, "k": 8, "latent_dim": 4}


def test_a_short_skwae_run_lowers_cw_distance(tmp_path):
    from distmatch.training import TrainConfig, train

    steps = {"steps": 360, **FAST}
    matched = train(TrainConfig(model="skwae", **steps), tmp_path / "skwae", progress=False)
    plain = train(TrainConfig(model="skwae", lam=1e-9, **steps), tmp_path / "plain", progress=False)
    assert matched["cw_distance"] < 0.5 * plain["cw_distance"]
    moving = train(
        TrainConfig(model="skwae", memory="sketch", **steps), tmp_path / "moving", progress=False
    )
    assert moving["cw_distance"] < 0.5 * plain["cw_distance"]


def test_a_moving_sketch_run_resumes_bit_identically(tmp_path):
    from distmatch.runs import RunDir
    from distmatch.training import TrainConfig, train

    config = {"model": "skwae", "memory": "sketch", **FAST}
    train(TrainConfig(steps=40, **config), tmp_path / "straight", progress=False)
    train(TrainConfig(steps=20, **config), tmp_path / "resumed", progress=False)
    train(TrainConfig(steps=40, **config), tmp_path / "resumed", resume=True, progress=False)
    a = RunDir(tmp_path / "straight").load_checkpoint()
    b = RunDir(tmp_path / "resumed").load_checkpoint()
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert torch.equal(a["window"]["sketch"], b["window"]["sketch"])


def test_memory_sketch_needs_skwae():
    from distmatch.training import TrainConfig

    with pytest.raises(ValueError, match="memory 'sketch'"):
        TrainConfig(model="cwae", memory="sketch").validate()
