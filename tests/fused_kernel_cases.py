"""Cases of the fused Triton kernel of the sketch's column sums, run in Triton's interpreter on
the CPU (the kernel that a CUDA device compiles) by ``test_sketch_fused.py``, in a process started
with ``TRITON_INTERPRET=1`` (Triton reads it when it is imported). Not collected by itself."""

import os

import pytest
import torch

from distmatch.sketch import FourierFeatures, fused_feature_sums
from distmatch.sketch._features import FeatureSummer, phase_sums, phases

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("run by test_sketch_fused.py with TRITON_INTERPRET=1", allow_module_level=True)


def reference(x, omega, dither, quantized):
    return phase_sums(phases(x.double(), omega.double(), dither.double()), quantized)


@pytest.mark.parametrize(
    ("n", "d", "m", "quantized"),
    [
        (130, 40, 70, False),  # every size off the tiles (64 rows, 64 frequencies, 32 features)
        (64, 32, 64, False),  # exactly one tile
        (1, 3, 129, False),  # one row
        (97, 5, 33, True),  # universal 1-bit features: sums of signs
    ],
)
def test_the_fused_sums_equal_float64_sums_of_the_features(n, d, m, quantized):
    gen = torch.Generator().manual_seed(n + m)
    x = torch.randn(n, d, generator=gen)
    omega = torch.randn(d, m, generator=gen)
    dither = torch.rand(m, generator=gen) * 6.283
    got = fused_feature_sums(x, omega, dither, quantized)
    assert got.shape == (2, m) and got.dtype == torch.float64
    expected = reference(x, omega, dither, quantized)
    if quantized:  # a sign flips only where a phase is within round-off of a zero
        assert (got - expected).abs().max() <= 2.0
        assert (got != expected).sum() <= 2
    else:
        torch.testing.assert_close(got, expected, rtol=0, atol=2e-6 * n + 1e-6)


def test_the_fused_sums_read_rows_with_any_strides():
    gen = torch.Generator().manual_seed(1)
    wide = torch.randn(50, 12, generator=gen)
    x = wide[:, ::2]  # (50, 6), not contiguous
    omega, dither = torch.randn(6, 20, generator=gen), torch.zeros(20)
    expected = reference(x, omega, dither, False)
    torch.testing.assert_close(fused_feature_sums(x, omega, dither), expected, rtol=0, atol=1e-4)


def test_a_summer_with_the_fused_kernel_sums_as_the_eager_one():
    features = FourierFeatures(5, 40, generator=torch.Generator().manual_seed(2))
    x = torch.rand(150, 5, generator=torch.Generator().manual_seed(3))
    center = torch.full((5,), 0.5)
    fused = FeatureSummer(features, center, 2.0, "cpu", compile=False, fused=True)
    eager = FeatureSummer(features, center, 2.0, "cpu", compile=False)
    for chunk in x.split(70):
        fused.add(chunk)
        eager.add(chunk)
    assert fused.count == eager.count == 150
    torch.testing.assert_close(fused.total, eager.total, rtol=0, atol=1e-4)


def test_rows_beyond_two_to_the_31_elements_are_read_where_they_are():
    """64-bit offsets: a row that starts 2^31 elements into the storage (the storage is reserved,
    only the rows' pages are touched), as in a chunk of 1024² RGB images."""
    gen = torch.Generator().manual_seed(7)
    storage = torch.empty(2**31 + 64, dtype=torch.float32)
    x = storage.as_strided((3, 4), (2**30, 1))
    x.copy_(torch.randn(3, 4, generator=gen))
    omega, dither = torch.randn(4, 8, generator=gen), torch.zeros(8)
    expected = reference(x.clone(), omega, dither, False)
    torch.testing.assert_close(fused_feature_sums(x, omega, dither), expected, rtol=0, atol=1e-5)
