"""Properties of the generator networks (distmatch.generators)."""

import math

import pytest
import torch
from torch import nn

from distmatch.models import (
    GENERATORS,
    Generator,
    GeneratorSpec,
    build_generator,
    default_generator,
)

from conftest import devices

# The shape each generator is tested at; mlp is also tested on images below.
TEST_SHAPES = {"clgn_mlp": (2,), "gmmn_mlp": (1, 28, 28), "mlp": (5,), "conv": (1, 8, 8)}
IMAGE_CASES = [
    ("gmmn_mlp", (1, 28, 28), {}),
    ("mlp", (3, 8, 8), {"hidden": (32,)}),
    ("conv", (3, 32, 32), {"width": 16}),
]


@pytest.fixture(scope="module")
def generators() -> dict[str, Generator]:
    torch.manual_seed(0)
    return {name: build_generator(name, sample_shape=shape) for name, shape in TEST_SHAPES.items()}


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def test_registry_covers_every_tested_generator():
    assert set(GENERATORS) == set(TEST_SHAPES)
    for spec in GENERATORS.values():
        assert isinstance(spec, GeneratorSpec)
        assert callable(spec.build) and spec.default_latent_dim >= 1 and spec.description


@pytest.mark.parametrize("name", list(TEST_SHAPES))
def test_forward_and_sample_give_batches_of_sample_shape(name, generators):
    g = generators[name]
    latent = GENERATORS[name].default_latent_dim
    assert g.latent_dim == latent and g.sample_shape == TEST_SHAPES[name] and g.arch == name
    assert g(torch.randn(4, latent)).shape == (4, *TEST_SHAPES[name])
    assert g.sample(3).shape == (3, *TEST_SHAPES[name])


def test_clgn_generator_is_the_papers_792_parameter_network(generators):
    g = generators["clgn_mlp"]
    assert sum(p.numel() for p in g.parameters()) == 7 * (10 * 10 + 10) + (10 * 2 + 2) == 792
    layers = _linears(g)
    assert [(m.in_features, m.out_features) for m in layers] == [(10, 10)] * 7 + [(10, 2)]
    slopes = [m.negative_slope for m in g.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.2] * 7


def test_gmmn_generator_has_the_papers_layer_widths(generators):
    widths = [(m.in_features, m.out_features) for m in _linears(generators["gmmn_mlp"])]
    assert widths == [(10, 64), (64, 256), (256, 256), (256, 1024), (1024, 784)]


@pytest.mark.parametrize("name", list(TEST_SHAPES))
def test_sample_is_reproducible_with_a_seeded_generator(name, generators):
    g = generators[name]
    a = g.sample(5, generator=torch.Generator().manual_seed(1))
    b = g.sample(5, generator=torch.Generator().manual_seed(1))
    c = g.sample(5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sample_maps_standard_normal_codes(generators):
    g = generators["clgn_mlp"]
    z = torch.randn(6, 10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(g.sample(6, generator=torch.Generator().manual_seed(5)), g(z))


@pytest.mark.parametrize("device", devices())
def test_sample_lands_on_the_requested_device_with_the_same_codes(device, generators):
    g = generators["clgn_mlp"]
    cpu = g.sample(4, generator=torch.Generator().manual_seed(1))
    moved = build_generator("clgn_mlp", sample_shape=(2,)).to(device)
    moved.load_state_dict(g.state_dict())
    x = moved.sample(4, generator=torch.Generator().manual_seed(1))
    assert x.device.type == device
    torch.testing.assert_close(x.cpu(), cpu)


def test_sample_carries_gradients_to_the_parameters(generators):
    g = generators["clgn_mlp"]
    g.zero_grad()
    g.sample(8).square().sum().backward()
    assert all(p.grad is not None for p in g.parameters())
    g.zero_grad()


@pytest.mark.parametrize(("name", "shape", "options"), IMAGE_CASES)
def test_image_generators_output_values_in_0_1(name, shape, options):
    g = build_generator(name, sample_shape=shape, options=options)
    with torch.no_grad():
        x = g(100 * torch.randn(64, g.latent_dim))
    assert x.shape == (64, *shape) and x.min() >= 0 and x.max() <= 1


def test_vector_mlp_output_is_linear_and_unbounded():
    g = build_generator("mlp", sample_shape=(3,), options={"hidden": (16, 16)})
    assert isinstance(list(g.network)[-2], nn.Linear)
    with torch.no_grad():
        assert g(100 * torch.randn(64, 10)).abs().max() > 1


@pytest.mark.parametrize(
    ("shape", "first_map"),
    [((1, 28, 28), (7, 7)), ((3, 32, 32), (4, 4)), ((1, 8, 8), (4, 4)), ((3, 64, 48), (8, 6))],
)
def test_conv_generator_upsamples_from_the_smallest_exact_halving(shape, first_map):
    g = build_generator("conv", sample_shape=shape)
    unflatten = next(m for m in g.modules() if isinstance(m, nn.Unflatten))
    assert tuple(unflatten.unflattened_size[1:]) == first_map
    assert g.sample(2).shape == (2, *shape)


def test_default_generator_is_conv_for_images_and_clgn_for_vectors():
    assert default_generator((1, 28, 28)) == "conv" and default_generator((2,)) == "clgn_mlp"


def test_gmmn_accepts_any_784_element_shape():
    assert build_generator("gmmn_mlp", sample_shape=(784,)).sample(2).shape == (2, 784)


@pytest.mark.parametrize("name", list(TEST_SHAPES))
def test_init_is_glorot_uniform_with_zero_biases(name, generators):
    for m in _linears(generators[name]):
        bound = math.sqrt(6 / (m.in_features + m.out_features))
        assert m.weight.abs().max() <= bound and torch.count_nonzero(m.bias) == 0
        if m.weight.numel() >= 10_000:  # U(-b, b) has variance b²/3 = 2 / (fan_in + fan_out)
            var = m.weight.var().item()
            assert abs(var / (bound**2 / 3) - 1) < 0.05
            assert m.weight.abs().max() > 0.99 * bound


def test_latent_dim_is_configurable():
    g = build_generator("clgn_mlp", sample_shape=(2,), latent_dim=3)
    assert g.latent_dim == 3 and g.sample(2).shape == (2, 2)
    assert sum(p.numel() for p in g.parameters()) == 792 - 7 * 10


# --------------------------------------------------------------------------------------- errors


def test_unknown_arch_lists_the_names():
    with pytest.raises(
        ValueError, match=r"arch must be one of 'clgn_mlp', 'gmmn_mlp', 'mlp', 'conv'; got 'dcgan'"
    ):
        build_generator("dcgan", sample_shape=(2,))


@pytest.mark.parametrize(
    ("arch", "shape", "message"),
    [
        ("clgn_mlp", (1, 28, 28), r"sample_shape must be \(D,\) for clgn_mlp; got \(1, 28, 28\)\."),
        ("gmmn_mlp", (3, 32, 32), r"sample_shape must have 784 elements.*got \(3, 32, 32\)\."),
        ("mlp", (), r"sample_shape must be a non-empty tuple of positive ints; got \(\)\."),
        ("mlp", (0, 2), r"sample_shape must be a non-empty tuple of positive ints; got \(0, 2\)\."),
        ("mlp", (2.0,), r"sample_shape must be a non-empty tuple of positive ints; got \(2.0,\)\."),
    ],
)
def test_a_sample_shape_that_does_not_fit_is_rejected(arch, shape, message):
    with pytest.raises(ValueError, match=message):
        build_generator(arch, sample_shape=shape)


def test_bad_latent_dim_is_rejected():
    with pytest.raises(ValueError, match=r"latent_dim must be >= 1; got 0\."):
        build_generator("clgn_mlp", sample_shape=(2,), latent_dim=0)
    with pytest.raises(TypeError, match=r"latent_dim must be an int; got float\."):
        build_generator("clgn_mlp", sample_shape=(2,), latent_dim=2.5)


def test_bad_options_are_rejected():
    with pytest.raises(
        ValueError, match=r"options must be among \(\) for clgn_mlp; got \['hidden'\]"
    ):
        build_generator("clgn_mlp", sample_shape=(2,), options={"hidden": (4,)})
    with pytest.raises(
        ValueError, match=r"hidden must be a sequence of positive ints; got \(0,\)\."
    ):
        build_generator("mlp", sample_shape=(2,), options={"hidden": (0,)})


def test_bad_codes_and_counts_are_rejected(generators):
    g = generators["clgn_mlp"]
    with pytest.raises(ValueError, match=r"z must have shape \(B, 10\); got \(4, 3\)\."):
        g(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"n must be an int >= 1; got 0\."):
        g.sample(0)
    with pytest.raises(TypeError, match=r"n must be an int >= 1; got float\."):
        g.sample(2.0)
