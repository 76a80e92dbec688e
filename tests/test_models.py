"""Properties of the MoW encoders and decoders (distmatch.models)."""

import math
import warnings

import pytest
import torch
from torch import nn

from distmatch.models import (
    ARCHITECTURES,
    ArchSpec,
    Autoencoder,
    Conv2dSame,
    ConvTranspose2dSame,
    build_autoencoder,
    count_parameters,
    has_batchnorm,
    same_padding,
    warn_if_batchnorm,
)

# The shape each architecture is tested at: ffhq_conv at 256 (1024 is too big for CI), mlp on vectors.
TEST_SHAPES = {
    "mnist_mlp": (1, 28, 28),
    "fmnist_conv": (1, 28, 28),
    "cifar_conv": (3, 32, 32),
    "celeba_conv": (3, 64, 64),
    "ffhq_conv": (3, 256, 256),
    "mlp": (5,),
}
IMAGE_ARCHS = [name for name, shape in TEST_SHAPES.items() if len(shape) == 3]

# Spatial side after each Conv2d / ConvTranspose2d (and, in decoders, the Unflatten before them).
SIDES = {
    "fmnist_conv": ([14, 7, 4, 2], [7, 14, 28, 28]),
    "cifar_conv": ([31, 15, 14, 13], [16, 16, 16, 33, 32]),
    "celeba_conv": ([32, 16, 8, 4], [4, 8, 16, 32, 64]),
    "ffhq_conv": ([64, 16, 4, 1], [4, 16, 64, 256, 256]),
}


@pytest.fixture(scope="module")
def models() -> dict[str, Autoencoder]:
    torch.manual_seed(0)
    return {
        name: build_autoencoder(name, sample_shape=shape) for name, shape in TEST_SHAPES.items()
    }


def test_registry_covers_every_tested_architecture():
    assert set(ARCHITECTURES) == set(TEST_SHAPES)
    for spec in ARCHITECTURES.values():
        assert isinstance(spec, ArchSpec)
        assert callable(spec.build) and spec.default_latent_dim >= 1 and spec.description


def test_default_latent_dims_are_the_papers():
    defaults = {name: spec.default_latent_dim for name, spec in ARCHITECTURES.items()}
    assert defaults == {
        "mnist_mlp": 20,
        "fmnist_conv": 8,
        "cifar_conv": 64,
        "celeba_conv": 32,
        "ffhq_conv": 64,
        "mlp": 8,
    }


@pytest.mark.parametrize("arch", TEST_SHAPES)
@pytest.mark.parametrize("batch", [1, 3])
def test_encode_and_decode_map_between_sample_and_latent_shapes(models, arch, batch):
    model = models[arch]
    shape = TEST_SHAPES[arch]
    with torch.no_grad():
        z = model.encode(torch.rand(batch, *shape))
        x = model.decode(torch.randn(batch, model.latent_dim))
    assert z.shape == (batch, ARCHITECTURES[arch].default_latent_dim)
    assert x.shape == (batch, *shape)
    assert model.sample_shape == shape and model.arch == arch


@pytest.mark.parametrize("arch", TEST_SHAPES)
def test_forward_returns_codes_and_reconstruction(models, arch):
    model = models[arch]
    x = torch.rand(1, *TEST_SHAPES[arch])
    with torch.no_grad():
        out = model(x)
        assert isinstance(out, tuple) and len(out) == 2
        z, rec = out
        torch.testing.assert_close(z, model.encode(x))
        torch.testing.assert_close(rec, model.decode(z))


@pytest.mark.parametrize("arch", IMAGE_ARCHS)
def test_image_decoders_output_in_unit_interval(models, arch):
    model = models[arch]
    # Large codes push the output activations towards saturation.
    z = 100 * torch.randn(2, model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = model.decode(z)
    assert x.min() >= 0 and x.max() <= 1


def test_mlp_decodes_vectors_without_output_activation():
    model = build_autoencoder("mlp", sample_shape=(4,), latent_dim=2)
    assert not any(isinstance(m, nn.Sigmoid | nn.Tanh) for m in model.modules())
    image_model = build_autoencoder("mlp", sample_shape=(1, 8, 8))
    assert isinstance(image_model.decoder[-2], nn.Sigmoid)


def test_mlp_hidden_option_sets_the_layer_widths():
    model = build_autoencoder("mlp", sample_shape=(6,), latent_dim=3, options={"hidden": (7,)})
    widths = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    assert widths == [7, 3, 7, 6]


def test_latent_dim_overrides_the_default():
    model = build_autoencoder("cifar_conv", sample_shape=(3, 32, 32), latent_dim=5)
    assert model.latent_dim == 5
    assert model.encode(torch.rand(1, 3, 32, 32)).shape == (1, 5)


@pytest.mark.parametrize("arch", TEST_SHAPES)
def test_no_registered_architecture_has_batchnorm(models, arch):
    assert not has_batchnorm(models[arch])


@pytest.mark.parametrize(
    "norm", [nn.BatchNorm2d(4), nn.BatchNorm1d(4), nn.SyncBatchNorm(4), nn.LazyBatchNorm2d()]
)
def test_has_batchnorm_finds_nested_batchnorm(norm):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sequential(nn.ReLU(), norm))
    assert has_batchnorm(model)
    assert not has_batchnorm(nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4)))


def test_warn_if_batchnorm_warns_at_small_k():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    with pytest.warns(UserWarning, match=r"BatchNorm.*k=1.*GroupNorm or LayerNorm"):
        warn_if_batchnorm(model, 1)


def test_warn_if_batchnorm_is_silent_without_batchnorm_or_at_large_k(models):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_batchnorm(models["mnist_mlp"], 1)
        warn_if_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), 16)


def test_mnist_mlp_parameter_count_matches_hand_count(models):
    encoder = (784 * 200 + 200) + 2 * (200 * 200 + 200) + (200 * 20 + 20)
    decoder = (20 * 200 + 200) + 2 * (200 * 200 + 200) + (200 * 784 + 784)
    model = models["mnist_mlp"]
    assert count_parameters(model.encoder) == encoder == 241_420
    assert count_parameters(model.decoder) == decoder == 242_184
    assert count_parameters(model) == encoder + decoder


def test_celeba_conv_parameter_count_matches_hand_count(models):
    convs = (3 * 32 + 32 * 32 + 32 * 64 + 64 * 64) * 16 + (32 + 32 + 64 + 64)
    encoder = convs + (1024 * 1024 + 1024) + (1024 * 256 + 256) + (256 * 32 + 32)
    deconvs = (64 * 64 + 64 * 32 + 32 * 32 + 32 * 3) * 16 + (64 + 32 + 32 + 3)
    decoder = (32 * 256 + 256) + (256 * 1024 + 1024) + deconvs
    model = models["celeba_conv"]
    assert count_parameters(model.encoder) == encoder == 1_436_640
    assert count_parameters(model.decoder) == decoder == 387_971


def test_ffhq_conv_at_1024_has_the_supplements_sizes():
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        model = build_autoencoder("ffhq_conv", sample_shape=(3, 1024, 1024))
        z, rec = model(torch.empty(1, 3, 1024, 1024))
    assert z.shape == (1, 64) and rec.shape == (1, 3, 1024, 1024)
    convs = (3 * 128 + 128 * 256 + 256 * 512 + 512 * 1024) * 25 + (128 + 256 + 512 + 1024)
    encoder = convs + (1024 * 4 * 4 * 64 + 64)
    deconvs = (1024 * 512 + 512 * 256 + 256 * 128 + 128 * 3) * 25 + (512 + 256 + 128 + 3)
    decoder = (64 * 16 * 16 * 1024 + 16 * 16 * 1024) + deconvs
    assert count_parameters(model.encoder) == encoder
    assert count_parameters(model.decoder) == decoder
    assert count_parameters(model) == 52_516_419


def test_count_parameters_counts_shared_parameters_once():
    layer = nn.Linear(3, 2)
    assert count_parameters(nn.Sequential(layer, nn.ReLU(), layer)) == 8


@pytest.mark.parametrize("size", [7, 8, 28])
@pytest.mark.parametrize(("kernel_size", "stride"), [(4, 2), (5, 4)])
def test_same_padding_gives_ceil_of_size_over_stride(size, kernel_size, stride):
    before, after = same_padding(size, kernel_size, stride)
    assert 0 <= after - before <= 1
    assert (size + before + after - kernel_size) // stride + 1 == math.ceil(size / stride)
    conv = Conv2dSame(1, 1, kernel_size, stride)
    assert conv(torch.rand(1, 1, size, size)).shape[-2:] == (math.ceil(size / stride),) * 2


def test_conv2d_same_pads_the_odd_pixel_after():
    # 7 pixels, k=4, s=2: TF pads (1, 2), so the all-ones windows cover 3, 4, 4, 2 pixels.
    conv = Conv2dSame(1, 1, 4, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
        out = conv(torch.ones(1, 1, 7, 7))[0, 0]
    sums = torch.tensor([3.0, 4.0, 4.0, 2.0])
    torch.testing.assert_close(out, sums[:, None] * sums[None, :])


@pytest.mark.parametrize(("kernel_size", "stride"), [(4, 2), (5, 4), (2, 1), (4, 1), (2, 4)])
def test_conv_transpose_same_is_the_adjoint_of_conv_same(kernel_size, stride):
    # TF's transposed "same" convolution is the gradient of the "same" convolution from in*s to in.
    gen = torch.Generator().manual_seed(0)
    deconv = ConvTranspose2dSame(3, 2, kernel_size, stride).double()
    conv = Conv2dSame(2, 3, kernel_size, stride).double()
    with torch.no_grad():
        conv.weight.copy_(deconv.weight)
        deconv.bias.zero_()
    v = torch.randn(2, 3, 5, 5, generator=gen, dtype=torch.float64)
    x = torch.randn(2, 2, 5 * stride, 5 * stride, generator=gen, dtype=torch.float64)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad((conv(x) * v).sum(), x)
    torch.testing.assert_close(deconv(v), grad)


def test_conv_transpose_same_adds_its_bias_everywhere():
    deconv = ConvTranspose2dSame(1, 2, 2, 4)
    with torch.no_grad():
        deconv.weight.zero_()
        deconv.bias.copy_(torch.tensor([1.0, -2.0]))
    out = deconv(torch.ones(1, 1, 3, 3))
    assert out.shape == (1, 2, 12, 12)
    assert (out[0, 0] == 1).all() and (out[0, 1] == -2).all()


@pytest.mark.parametrize("arch", SIDES)
def test_intermediate_spatial_sizes_follow_the_supplement(models, arch):
    model = models[arch]
    sides: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1]))
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Unflatten)
    ]
    try:
        with torch.no_grad():
            model(torch.rand(1, *TEST_SHAPES[arch]))
    finally:
        for hook in hooks:
            hook.remove()
    encoder_sides, decoder_sides = SIDES[arch]
    assert sides == encoder_sides + decoder_sides


@pytest.mark.parametrize("arch", TEST_SHAPES)
def test_gradient_of_reconstruction_loss_reaches_every_parameter(models, arch):
    model = models[arch]
    model.zero_grad()
    x = torch.rand(1, *TEST_SHAPES[arch], generator=torch.Generator().manual_seed(1))
    _, rec = model(x)
    ((rec - x) ** 2).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    model.zero_grad(set_to_none=True)


def test_fmnist_strided_convolutions_start_with_std_near_001(models):
    strided = [
        m
        for m in models["fmnist_conv"].modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and m.stride == (2, 2)
    ]
    assert len(strided) == 6
    for m in strided:
        # A normal of std 0.01 truncated at 2 std has std 0.0088.
        assert 0.0080 < float(m.weight.detach().std()) < 0.0095
        assert float(m.weight.detach().abs().max()) <= 0.02
        assert (m.bias == 0).all()


def test_registered_architectures_start_with_zero_biases(models):
    for model in models.values():
        for m in model.modules():
            if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
                assert (m.bias == 0).all()


def test_unknown_arch_is_rejected_with_the_known_names():
    with pytest.raises(ValueError, match=r"arch must be one of 'mnist_mlp', .*'mlp'; got 'vgg'\."):
        build_autoencoder("vgg", sample_shape=(3, 32, 32))


def test_fixed_shape_arch_rejects_other_shapes():
    with pytest.raises(
        ValueError, match=r"sample_shape must be \(1, 28, 28\) for mnist_mlp; got \(3, 32, 32\)\."
    ):
        build_autoencoder("mnist_mlp", sample_shape=(3, 32, 32))


@pytest.mark.parametrize("shape", [(3, 300, 300), (3, 128, 128), (1, 256, 256), (3, 256, 512)])
def test_ffhq_conv_rejects_sides_not_multiple_of_256(shape):
    with pytest.raises(ValueError, match=r"multiple of 256 for ffhq_conv; got \(.*\)\."):
        build_autoencoder("ffhq_conv", sample_shape=shape)


@pytest.mark.parametrize("shape", [(), (0, 4), (2, -1), (2.0, 3), (True, 3)])
def test_sample_shape_must_be_positive(shape):
    with pytest.raises(
        ValueError, match=r"sample_shape must be a non-empty tuple of positive ints"
    ):
        build_autoencoder("mlp", sample_shape=shape)


@pytest.mark.parametrize("latent_dim", [0, -3])
def test_latent_dim_below_one_is_rejected(latent_dim):
    with pytest.raises(ValueError, match=rf"latent_dim must be >= 1; got {latent_dim}\."):
        build_autoencoder("mlp", sample_shape=(4,), latent_dim=latent_dim)


def test_latent_dim_must_be_an_int():
    with pytest.raises(TypeError, match=r"latent_dim must be an int; got float\."):
        build_autoencoder("mlp", sample_shape=(4,), latent_dim=2.0)


def test_unknown_option_is_rejected():
    with pytest.raises(ValueError, match=r"options must be among \('hidden',\) for mlp; got"):
        build_autoencoder("mlp", sample_shape=(4,), options={"hiden": (8,)})


def test_mlp_hidden_widths_must_be_positive():
    with pytest.raises(
        ValueError, match=r"hidden must be a sequence of positive ints; got \(8, 0\)"
    ):
        build_autoencoder("mlp", sample_shape=(4,), options={"hidden": (8, 0)})


def test_encode_and_decode_reject_wrong_shapes(models):
    model = models["mnist_mlp"]
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 28, 28\); got \(2, 784\)\."):
        model.encode(torch.rand(2, 784))
    with pytest.raises(ValueError, match=r"z must have shape \(B, 20\); got \(2, 8\)\."):
        model.decode(torch.randn(2, 8))


def test_warn_if_batchnorm_rejects_k_below_one():
    with pytest.raises(ValueError, match=r"k must be >= 1; got 0\."):
        warn_if_batchnorm(nn.Linear(2, 2), 0)


def test_numpy_and_torch_integers_are_accepted():
    np = pytest.importorskip("numpy")
    shape = (np.int64(1), torch.tensor(28), 28)
    model = build_autoencoder("mnist_mlp", sample_shape=shape, latent_dim=np.int32(4))
    assert model.sample_shape == (1, 28, 28) and model.latent_dim == 4
    assert type(model.latent_dim) is int
