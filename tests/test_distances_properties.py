"""Properties every distance of the registry must have, and its entry point."""

import pytest
import torch

from distmatch import distances
from distmatch.distances import DISTANCES

# Options under which each distance is exactly 0 for identical samples (the unbiased MMD is not).
ZERO_ON_IDENTICAL = {
    "mmd": {"estimator": "biased"},
    "cramer_wold": {},
    "sliced_wasserstein": {},
}
MMD_VARIANTS = [
    {"kernel": k, "estimator": e}
    for k in ("imq", "gaussian", "folded_gaussian")
    for e in ("unbiased", "biased")
]


def fixed_options(name: str, dim: int) -> dict:
    """Options that make the distance deterministic (fixed sliced directions)."""
    if name == "sliced_wasserstein":
        gen = torch.Generator().manual_seed(0)
        return {"projections": distances.random_projections(dim, 20, generator=gen).double()}
    return {}


@pytest.mark.parametrize("name", DISTANCES)
def test_zero_for_identical_samples(name, gen):
    x = torch.randn(25, 3, generator=gen, dtype=torch.float64)
    options = {**ZERO_ON_IDENTICAL[name], **fixed_options(name, 3)}
    assert float(distances.distance(name, x, x.clone(), **options)) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("name", DISTANCES)
def test_symmetric(name, gen):
    x = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(20, 3, generator=gen, dtype=torch.float64) * 2
    options = fixed_options(name, 3)
    xy = distances.distance(name, x, y, **options)
    yx = distances.distance(name, y, x, **options)
    assert float(xy) == pytest.approx(float(yx), rel=1e-12)


@pytest.mark.parametrize("name", DISTANCES)
def test_grows_with_a_shift(name, gen):
    x = torch.randn(200, 4, generator=gen, dtype=torch.float64)
    y = torch.randn(200, 4, generator=gen, dtype=torch.float64)
    options = fixed_options(name, 4)
    values = [float(distances.distance(name, x, y + s, **options)) for s in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values)
    assert values[-1] > 10 * abs(values[0])


@pytest.mark.parametrize("name", DISTANCES)
def test_keeps_dtype_and_device(name, gen):
    for device in ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]:
        for dtype in (torch.float32, torch.float64):
            x = torch.randn(10, 3, generator=gen).to(device, dtype)
            y = torch.randn(10, 3, generator=gen).to(device, dtype)
            out = distances.distance(name, x, y, **fixed_options(name, 3))
            assert out.shape == ()
            assert out.dtype == dtype
            assert out.device == x.device


@pytest.mark.parametrize("name", DISTANCES)
def test_gradcheck(name, gen):
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    options = fixed_options(name, 3)
    assert torch.autograd.gradcheck(lambda a, b: distances.distance(name, a, b, **options), (x, y))


@pytest.mark.parametrize("options", MMD_VARIANTS)
def test_gradcheck_mmd_variants(options, gen):
    x = torch.randn(5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(7, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: distances.mmd(a, b, **options), (x, y))


@pytest.mark.parametrize("dim", [1, 2, 3, 20])
def test_gradcheck_cramer_wold_normality(dim, gen):
    z = torch.randn(6, dim, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: distances.cramer_wold_normality(a), (z,))
    assert torch.autograd.gradcheck(lambda a: distances.cramer_wold_normality(a, scaled=True), (z,))


def test_gradcheck_sliced_with_p_one_and_three(gen):
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    theta = distances.random_projections(3, 5, generator=gen).double()
    for p in (1, 3):
        assert torch.autograd.gradcheck(
            lambda a, b, p=p: distances.sliced_wasserstein(a, b, p=p, projections=theta), (x, y)
        )


def test_entry_point_dispatches_to_the_registry(gen):
    x, y = torch.randn(8, 2, generator=gen), torch.randn(8, 2, generator=gen)
    assert distances.distance("mmd", x, y, kernel="gaussian") == distances.mmd(
        x, y, kernel="gaussian"
    )
    assert distances.distance("cramer_wold", x, y) == distances.cramer_wold(x, y)


def test_options_of_lists_keyword_options():
    assert distances.options_of("mmd") == ("kernel", "bandwidth", "scales", "estimator")
    assert distances.options_of("cramer_wold") == ("gamma", "scaled")


@pytest.mark.parametrize("name", ["mmd", "cramer_wold", "sliced_wasserstein"])
def test_a_gradient_of_the_gradient_is_refused_not_silently_missing(name):
    """The distances give first derivatives in closed form; with create_graph=True their gradient
    used to come back detached, so a gradient penalty on it silently added nothing."""
    x = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    value = distances.distance(name, x, torch.randn(8, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="first derivatives only; got a backward pass with"):
        torch.autograd.grad(value, x, create_graph=True)
    value = distances.distance(name, x, torch.randn(8, 3, dtype=torch.float64))
    (grad,) = torch.autograd.grad(value, x)
    assert torch.isfinite(grad).all()
