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
