import pytest
import torch

from distmatch.window import MovingWindow


def codes(*values: float, dim: int = 2) -> torch.Tensor:
    return torch.tensor([[v] * dim for v in values])


def test_join_puts_fresh_codes_first_then_the_window():
    window = MovingWindow(n=4, k=1, dim=2, init="zeros")
    joined = window.join(codes(7.0))
    assert joined.shape == (4, 2)
    assert torch.equal(joined[0], torch.tensor([7.0, 7.0]))
    assert torch.equal(joined[1:], torch.zeros(3, 2))


def test_fifo_order_oldest_first_out():
    window = MovingWindow(n=4, k=1, dim=2, init="zeros")  # capacity 3
    for v in (1.0, 2.0, 3.0, 4.0, 5.0):
        window.push(codes(v))
    assert torch.equal(window.contents()[:, 0], torch.tensor([3.0, 4.0, 5.0]))


def test_wraps_when_k_exceeds_the_capacity():
    window = MovingWindow(n=5, k=3, dim=1, init="zeros")  # capacity 2 < k
    window.push(codes(1.0, 2.0, 3.0, dim=1))
    assert torch.equal(window.contents()[:, 0], torch.tensor([2.0, 3.0]))
    window.push(codes(4.0, 5.0, 6.0, dim=1))
    assert torch.equal(window.contents()[:, 0], torch.tensor([5.0, 6.0]))
    window.push(codes(7.0, dim=1))  # a short last batch
    assert torch.equal(window.contents()[:, 0], torch.tensor([6.0, 7.0]))


def test_wrap_across_the_end_keeps_order():
    window = MovingWindow(n=6, k=2, dim=1, init="zeros")  # capacity 4
    for start in (1.0, 3.0, 5.0):
        window.push(codes(start, start + 1, dim=1))
    assert torch.equal(window.contents()[:, 0], torch.tensor([3.0, 4.0, 5.0, 6.0]))


def test_capacity_is_n_minus_k_and_join_has_n_rows():
    window = MovingWindow(n=64, k=16, dim=3)
    assert window.capacity == 48
    assert window.codes.shape == (48, 3)
    assert window.join(torch.zeros(16, 3)).shape == (64, 3)


def test_k_equal_n_means_no_window():
    window = MovingWindow(n=8, k=8, dim=2)
    z = torch.randn(8, 2)
    assert torch.equal(window.join(z), z)
    window.push(z)  # nothing to store
    assert window.contents().shape == (0, 2)


def test_prior_init_draws_standard_normal_codes_reproducibly():
    a = MovingWindow(n=2001, k=1, dim=5, generator=torch.Generator().manual_seed(3))
    b = MovingWindow(n=2001, k=1, dim=5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.codes, b.codes)
    assert abs(float(a.codes.mean())) < 0.05
    assert abs(float(a.codes.std()) - 1) < 0.05


def test_reset_refills_and_moves_the_pointer_to_zero():
    window = MovingWindow(n=4, k=1, dim=2, init="zeros")
    window.push(codes(9.0))
    assert window.position == (1, 3)
    assert int(window.state_dict()["pointer"]) == 1
    window.reset()
    assert window.position == (0, 3)
    assert int(window.state_dict()["pointer"]) == 0
    assert torch.equal(window.codes, torch.zeros(3, 2))


def test_fill_init_starts_empty_and_grows():
    window = MovingWindow(n=4, k=1, dim=2, init="fill")
    assert window.join(codes(1.0)).shape == (1, 2)
    window.push(codes(1.0))
    window.push(codes(2.0))
    assert window.join(codes(3.0)).shape == (3, 2)
    window.push(codes(3.0))
    window.push(codes(4.0))
    assert window.join(codes(5.0)).shape == (4, 2)
    assert torch.equal(window.contents()[:, 0], torch.tensor([2.0, 3.0, 4.0]))


def test_stored_codes_are_detached_and_only_fresh_codes_carry_gradient():
    window = MovingWindow(n=4, k=1, dim=2, init="zeros")
    z = torch.ones(1, 2, requires_grad=True)
    window.push(z * 2)
    assert not window.codes.requires_grad
    joined = window.join(z)
    joined.sum().backward()
    assert torch.equal(z.grad, torch.ones(1, 2))
    assert window.codes.grad is None


def test_state_dict_round_trip_restores_contents_and_pointer():
    window = MovingWindow(n=5, k=2, dim=2, generator=torch.Generator().manual_seed(0))
    window.push(codes(1.0, 2.0))
    window.push(codes(3.0))
    other = MovingWindow(n=5, k=2, dim=2, init="zeros")
    other.load_state_dict(window.state_dict())
    assert set(window.state_dict()) == {"codes", "pointer", "filled"}
    assert torch.equal(other.contents(), window.contents())
    other.push(codes(4.0))
    window.push(codes(4.0))
    assert torch.equal(other.codes, window.codes)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": 64, "k": 65}, ValueError, "k must be between 1 and n=64; got k=65"),
        ({"n": 64, "k": 0}, ValueError, "k must be an int >= 1; got 0"),
        ({"n": 1, "k": 1}, ValueError, "n must be >= 2 .*; got n=1"),
        ({"n": 4, "k": 1, "dim": 0}, ValueError, "dim must be an int >= 1; got 0"),
        (
            {"init": "random"},
            ValueError,
            "init must be one of 'fill', 'prior', 'zeros'; got 'random'",
        ),
        (
            {"refresh": "always"},
            ValueError,
            "refresh must be one of 'none', 'reencode'; got 'always'",
        ),
        ({"n": 4.0}, TypeError, "n must be an int >= 1; got float"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        MovingWindow(**kwargs)


def test_codes_of_the_wrong_shape():
    window = MovingWindow(n=8, k=2, dim=3)
    with pytest.raises(ValueError, match="codes must have dim=3 features; got 4"):
        window.join(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="codes must have between 1 and k=2 rows; got 3"):
        window.push(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"codes must be a 2-D tensor \(B, 3\); got \(3,\)"):
        window.join(torch.zeros(3))


# ------------------------------------------------------------ the unbiased window gradient


def _subsets(n: int, k: int) -> list[list[int]]:
    from itertools import combinations

    return [list(c) for c in combinations(range(n), k)]


def _distance_gradient(objective, encoder, joined, weight, seed, scale=1.0):
    """The parameters' gradient of the weighted distance alone (rec = 0), with fixed draws."""
    zero = torch.zeros((), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)  # the same prior draws / directions every time
    parts = objective.from_mean_error(zero, joined, gen, gradient_weight=weight)
    value, distance = float(parts["loss"].detach()), float(parts["distance"].detach())
    assert value == pytest.approx(scale * distance, rel=1e-12)  # the value is unweighted
    return torch.autograd.grad(parts["loss"], list(encoder.parameters()))


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize(
    ("model", "memory"),
    [
        ("cwae", "window"),
        ("wae", "window"),
        ("swae", "window"),
        ("skwae", "window"),
        ("skwae", "sketch"),
    ],
)
def test_unbiased_window_gradient_is_the_classical_gradient_on_average(model, k, memory):
    """Frozen parameters, n codes: the n/k-weighted MoW gradient averaged over every k-subset of
    fresh positions (the rest in the window) equals the classical batch gradient of the n codes.

    The moving sketch stands for the window exactly when it holds the mean features of the other
    n - k codes: then the joined sketch is the mean features of all n.
    """
    from distmatch.objectives import AutoencoderObjective
    from distmatch.sketch import mean_features
    from distmatch.window import MovingSketch

    n, dim, lam, seed = 6, 3, 0.7, 11
    gen = torch.Generator().manual_seed(0)
    encoder = torch.nn.Linear(5, dim).double()
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    objective = AutoencoderObjective(
        model, lam=lam, reconstruction="mean", latent_dim=dim, sketch_frequencies=40
    )
    classical = _distance_gradient(objective, encoder, encoder(x), 1.0, seed, scale=lam)

    subsets = _subsets(n, k)
    total = [torch.zeros_like(g) for g in classical]
    paper_total = [torch.zeros_like(g) for g in classical]
    for fresh in subsets:
        others = [i for i in range(n) if i not in fresh]
        with torch.no_grad():
            kept = encoder(x[others])
        if memory == "window":
            window = MovingWindow(n=n, k=k, dim=dim, init="zeros", dtype=torch.float64)
            for i in range(0, n - k, k):
                window.push(kept[i : i + k])
        else:
            window = MovingSketch(n=n, k=k, dim=dim, m=40, dtype=torch.float64)
            window.sketch.copy_(mean_features(kept, window.omega))
        z = encoder(x[fresh])
        weight = window.unbiased_weight(k)
        assert weight == n / k
        grads = _distance_gradient(objective, encoder, window.join(z), weight, seed, scale=lam)
        paper = _distance_gradient(
            objective, encoder, window.join(encoder(x[fresh])), 1.0, seed, lam
        )
        for t, p, g, g_paper in zip(total, paper_total, grads, paper, strict=True):
            t += g / len(subsets)
            p += g_paper / len(subsets)
    for mean, paper_mean, want in zip(total, paper_total, classical, strict=True):
        assert float(want.abs().max()) > 1e-4  # the distance does pull on every parameter
        assert torch.allclose(mean, want, rtol=0, atol=1e-8 * float(want.abs().max()))
        # The reference's window: k/n of the classical pull on average.
        assert torch.allclose(paper_mean, want * k / n, rtol=0, atol=1e-8 * float(want.abs().max()))


def test_unbiased_weight_counts_the_fresh_and_the_stored_codes():
    window = MovingWindow(n=8, k=3, dim=2, init="fill")
    assert window.unbiased_weight(3) == 1.0  # nothing stored yet: the fresh codes are all
    window.push(torch.zeros(3, 2))
    assert window.unbiased_weight(3) == 2.0
    window.push(torch.zeros(3, 2))
    assert window.unbiased_weight(3) == 8 / 3  # full: n / k
    assert window.unbiased_weight(1) == 6.0  # a short last batch of one code: (1 + 5) / 1
    assert MovingWindow(n=4, k=4, dim=2).unbiased_weight(4) == 1.0  # classical: unweighted


@pytest.mark.parametrize(("n", "k", "init"), [(8, 1, "prior"), (8, 3, "fill"), (5, 4, "zeros")])
def test_feature_window_joins_the_mean_features_of_the_plain_window(n, k, init):
    from distmatch.sketch import mean_features
    from distmatch.window import FeatureWindow

    dim, m = 3, 16
    features = FeatureWindow(n, k, dim, m=m, init=init, generator=torch.Generator().manual_seed(1))
    plain = MovingWindow(n, k, dim, init=init, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    for step in range(40):  # fills, wraps, pushes fewer than k rows, replaces
        b = 1 + step % k
        z = torch.randn(b, dim, generator=gen, dtype=torch.float64, requires_grad=True)
        expected = mean_features(plain.join(z.double()), features.omega.double())
        got = features.join(z)
        assert got.shape == features.joined_shape(b) == (2 * m,)
        assert torch.allclose(got, expected.to(got.dtype), atol=1e-6)
        (g_got,) = torch.autograd.grad(got.sum(), z)
        (g_expected,) = torch.autograd.grad(expected.sum(), z)
        assert torch.allclose(g_got, g_expected, atol=1e-6)
        assert features.unbiased_weight(b) == plain.unbiased_weight(b)
        features.push(z)
        plain.push(z)
        if step == 25:
            rows = torch.arange(min(2, plain.capacity))
            codes = torch.randn(len(rows), dim, generator=gen)
            features.replace(rows, codes)
            plain.replace(rows, codes)


def test_feature_window_sum_follows_its_codes_and_resumes_exactly():
    from distmatch.window import FeatureWindow

    window = FeatureWindow(64, 1, 4, m=32, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(3)
    pushes = [torch.randn(1, 4, generator=gen) for _ in range(1040)]
    for z in pushes[:1000]:
        window.push(z)
    exact = window._sum_of_features(window.codes)
    assert torch.allclose(window.feature_sum, exact, rtol=1e-5, atol=1e-5)  # float32 features
    assert set(window.state_dict()) == {"codes", "pointer", "filled", "feature_sum"}
    resumed = FeatureWindow(64, 1, 4, m=32, init="zeros")
    resumed.load_state_dict(window.state_dict())
    for z in pushes[1000:]:  # the same round-off as the window that never stopped
        window.push(z)
        resumed.push(z)
        assert torch.equal(resumed.feature_sum, window.feature_sum)
    assert resumed.position == window.position


def test_feature_window_loads_a_plain_window_and_counts_its_sum():
    from distmatch.window import FeatureWindow

    plain = MovingWindow(16, 2, 3, generator=torch.Generator().manual_seed(1))
    plain.push(torch.randn(2, 3))
    window = FeatureWindow(16, 2, 3, m=8, init="zeros")
    window.load_state_dict(plain.state_dict())  # a skwae run saved before FeatureWindow
    assert torch.equal(window.codes, plain.codes)
    assert torch.allclose(window.feature_sum, window._sum_of_features(plain.codes))


def test_a_feature_window_of_no_codes_pushes_nothing():
    from distmatch.window import FeatureWindow

    window = FeatureWindow(4, 4, 2, m=8)  # k = n: classical training, an empty window
    window.stage()
    window.push_at(torch.ones(4, 2))
    window.advance(4)
    window.push(torch.ones(4, 2))
    assert window.position == (0, 0)
    assert window.join(torch.zeros(4, 2)).shape == (16,)


@pytest.mark.parametrize("kind", ["window", "features"])
def test_push_at_the_device_position_stores_what_push_stores(kind):
    """stage + push_at + advance (the push inside a compiled or graphed step) against push, across
    wraps, a push of the host kind in between, a reset and a load of the state dict."""
    from distmatch.window import FeatureWindow

    def make():
        if kind == "features":
            return FeatureWindow(7, 2, 3, m=8, generator=torch.Generator().manual_seed(0))
        return MovingWindow(7, 2, 3, generator=torch.Generator().manual_seed(0))

    hosted, staged = make(), make()
    gen = torch.Generator().manual_seed(1)
    for step in range(23):
        z = torch.randn(1 + step % 2, 3, generator=gen)
        hosted.push(z)
        if step % 9 == 4:  # the host push moves the pointer without the device position
            staged.push(z)
        else:
            staged.stage()
            staged.push_at(z)
            staged.advance(len(z))
        if step == 15:
            hosted.reset(torch.Generator().manual_seed(2))
            staged.reset(torch.Generator().manual_seed(2))
        if step == 18:
            staged.load_state_dict(hosted.state_dict())
        assert staged.position == hosted.position
        assert torch.equal(staged.codes, hosted.codes)
        assert int(staged.slot) == staged.position[0] or staged._slot_pointer != staged.position[0]
        if kind == "features":
            assert torch.allclose(staged.feature_sum, hosted.feature_sum, atol=1e-12)


def test_a_feature_window_marked_full_joins_the_features_of_all_its_codes():
    from distmatch.sketch import mean_features
    from distmatch.window import FeatureWindow

    window = FeatureWindow(n=8, k=1, dim=3, m=50, init="fill")
    for _ in range(2):
        window.push(torch.randn(1, 3))
    window.fill_up()  # the five codes never written are the zeros of "fill"
    z = torch.randn(1, 3)
    expected = mean_features(torch.cat([z, window.codes]), window.omega)
    torch.testing.assert_close(window.join(z), expected, rtol=1e-5, atol=1e-6)
