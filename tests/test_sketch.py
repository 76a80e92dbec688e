"""Sketch: feature map, one-pass sketching of every data source, merging, files, sketch distance."""

import math

import numpy as np
import pytest
import torch

from distmatch import sketch
from distmatch.sketch import FourierFeatures, Sketch, SketchError


@pytest.fixture
def features(gen) -> FourierFeatures:
    return FourierFeatures(3, 64, bandwidth=0.8, dither=True, generator=gen)


@pytest.fixture
def data(gen) -> torch.Tensor:
    return torch.randn(500, 3, generator=gen, dtype=torch.float64)


def _chunks_of(x, size):
    for i in range(0, len(x), size):
        yield x[i : i + size]


# --- feature map ---------------------------------------------------------------------------------


def test_features_are_stacked_cos_sin_over_sqrt_m(features, data):
    t = data @ features.frequencies.double() + features.dither.double()  # (N, m)
    expected = torch.cat([t.cos(), t.sin()], dim=1) / math.sqrt(64)
    torch.testing.assert_close(features(data), expected, rtol=0, atol=1e-14)


def test_each_feature_vector_has_unit_l2_norm(features, data):
    norms = torch.linalg.vector_norm(features(data), dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=1e-12)


def test_quantized_features_are_signs_over_sqrt_m(gen, data):
    q = FourierFeatures(3, 64, dither=True, quantized=True, generator=gen)
    values = q(data) * math.sqrt(64)
    assert set(values.unique().tolist()) <= {-1.0, 1.0}


def test_options_are_stored_as_given(gen):
    f = FourierFeatures(2, 10, law="gaussian", bandwidth=0.5, generator=gen)
    assert (f.dim, f.n_frequencies, f.law, f.bandwidth) == (2, 10, "gaussian", 0.5)
    assert f.frequencies.shape == (2, 10) and torch.equal(f.dither, torch.zeros(10))


def test_same_generator_seed_gives_same_frequencies():
    a = FourierFeatures(4, 30, dither=True, generator=torch.Generator().manual_seed(7))
    b = FourierFeatures(4, 30, dither=True, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.frequencies, b.frequencies) and torch.equal(a.dither, b.dither)


def test_state_dict_round_trip_is_exact(features, data):
    other = FourierFeatures(3, 64, bandwidth=0.8, dither=True)
    other.load_state_dict(features.state_dict())
    assert torch.equal(other.frequencies, features.frequencies)
    assert torch.equal(other.dither, features.dither)
    assert torch.equal(other(data), features(data))


def test_output_follows_input_dtype(features, data):
    assert features(data.float()).dtype == torch.float32
    assert features(data).dtype == torch.float64


# --- one pass over the data --------------------------------------------------------------------


def test_chunked_sketch_equals_one_shot(features, data):
    one_shot = features(data).mean(dim=0)
    chunked = sketch.sketch_dataset(data, features, batch_size=37, progress=False)
    whole = sketch.sketch_dataset(data, features, batch_size=10_000, progress=False)
    assert chunked.count == whole.count == 500
    torch.testing.assert_close(chunked.mean, one_shot, rtol=0, atol=1e-12)
    torch.testing.assert_close(whole.mean, one_shot, rtol=0, atol=1e-12)


def test_update_in_pieces_equals_one_update(features, data):
    s = Sketch(features)
    for piece in _chunks_of(data, 128):
        s.update(piece)
    torch.testing.assert_close(s.mean, Sketch(features).update(data).mean, rtol=0, atol=1e-12)


def test_every_data_source_gives_the_same_sketch(features, data, tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, data.numpy())
    mmap = np.load(path, mmap_mode="r")
    labels = torch.zeros(len(data))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data, labels), batch_size=64
    )
    sources = {
        "numpy": data.numpy(),
        "memmap": mmap,
        "loader": loader,
        "loader_of_tensors": torch.utils.data.DataLoader(data, batch_size=100),
        "generator": _chunks_of(data, 77),
        "numpy_chunks": [c.numpy() for c in _chunks_of(data, 200)],
    }
    expected = sketch.sketch_dataset(data, features, progress=False).mean
    for name, source in sources.items():
        s = sketch.sketch_dataset(source, features, batch_size=50, progress=False)
        assert s.count == 500, name
        torch.testing.assert_close(s.mean, expected, rtol=0, atol=1e-12, msg=name)


def test_scaling_is_applied_before_the_features(features, data):
    center = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    s = sketch.sketch_dataset(data, features, center=center, scale=3.0, progress=False)
    expected = features((data - center) / 3.0).mean(dim=0)
    torch.testing.assert_close(s.mean, expected, rtol=0, atol=1e-12)
    assert torch.equal(s.center, center) and s.scale == 3.0


def test_unit_ball_scaling_maps_data_into_the_unit_ball(data):
    scale = sketch.unit_ball_scaling(data, batch_size=64)
    assert scale == pytest.approx(float(data.norm(dim=1).max()) + 1e-6, rel=1e-12)
    assert float((data / scale).norm(dim=1).max()) < 1.0
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data, torch.zeros(len(data))), batch_size=64
    )
    assert sketch.unit_ball_scaling(loader) == scale
    center = data.mean(dim=0)
    centred = sketch.unit_ball_scaling(data, center=center)
    assert centred == pytest.approx(float((data - center).norm(dim=1).max()) + 1e-6, rel=1e-12)


def test_float32_data_is_summed_in_float64(features, data):
    s = sketch.sketch_dataset(data.float(), features, progress=False)
    assert s.sum.dtype == torch.float64
    torch.testing.assert_close(
        s.mean, features(data.float()).double().mean(dim=0), atol=1e-6, rtol=0
    )


def test_integer_data_is_accepted(features):
    x = np.arange(30).reshape(10, 3)
    s = sketch.sketch_dataset(x, features, progress=False)
    expected = features(torch.from_numpy(x).float()).double().mean(dim=0)
    torch.testing.assert_close(s.mean, expected, atol=1e-6, rtol=0)


def test_failed_compilation_falls_back_to_eager_with_a_warning(features, data, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", lambda fn, **options: broken)  # nothing is compiled
    with pytest.warns(RuntimeWarning, match=r"torch\.compile failed \(RuntimeError: no compiler"):
        s = sketch.sketch_dataset(data, features, progress=False, compile=True)
    expected = sketch.sketch_dataset(data, features, progress=False).mean
    torch.testing.assert_close(s.mean, expected, rtol=0, atol=0)


def test_auto_compiles_only_on_cuda(features, data, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **options: compiled.append(fn) or fn)
    sketch.sketch_dataset(data, features, progress=False, device="cpu")  # compile="auto"
    assert compiled == []  # the CPU sums stay eager
    sketch.sketch_dataset(data, features, progress=False, device="cpu", compile=True)
    assert len(compiled) == 1
    with pytest.raises(ValueError, match="compile must be True, False or 'auto'; got 'yes'"):
        sketch.sketch_dataset(data, features, progress=False, compile="yes")


# --- merging ---------------------------------------------------------------------------------------


def _three(features, data):
    return [Sketch(features).update(part) for part in (data[:100], data[100:350], data[350:])]


def test_merge_is_commutative(features, data):
    a, b, _ = _three(features, data)
    ab = a.copy().merge(b)
    ba = b.copy().merge(a)
    assert torch.equal(ab.sum, ba.sum) and ab.count == ba.count == 350


def test_merge_is_associative_and_equals_one_shot(features, data):
    a, b, c = _three(features, data)
    left = a.copy().merge(b).merge(c)
    right = a.copy().merge(b.copy().merge(c))
    torch.testing.assert_close(left.sum, right.sum, rtol=1e-15, atol=1e-13)
    whole = Sketch(features).update(data)
    assert left.count == whole.count
    torch.testing.assert_close(left.mean, whole.mean, rtol=0, atol=1e-12)


def test_merge_accepts_an_equal_feature_map_loaded_from_file(features, data, tmp_path):
    a, b, _ = _three(features, data)
    b.save(tmp_path / "b.npz")
    merged = a.copy().merge(Sketch.load(tmp_path / "b.npz"))
    torch.testing.assert_close(merged.sum, a.copy().merge(b).sum, rtol=0, atol=0)


def test_a_refused_merge_leaves_the_sketch_unchanged(features, data):
    """Every check comes before the sums are added (the shape check used to come after)."""
    a, b, _ = _three(features, data)
    before = a.sum.clone()
    b.sample_shape = (1, 1, 3)
    with pytest.raises(ValueError, match="samples of the same shape"):
        a.merge(b)
    with pytest.raises(ValueError, match="other must be another sketch; got this one"):
        a.merge(a)
    assert a.count == 100 and torch.equal(a.sum, before)


# --- files ---------------------------------------------------------------------------------------


def test_save_load_round_trip_is_exact(gen, data, tmp_path):
    f = FourierFeatures(3, 32, law="adapted_radius", bandwidth=0.3, dither=True, generator=gen)
    s = Sketch(f, center=np.array([0.1, 0.2, 0.3]), scale=2.5).update(data)
    path = tmp_path / "s.npz"
    s.save(path)
    loaded = Sketch.load(path)
    assert torch.equal(loaded.features.frequencies, f.frequencies)
    assert torch.equal(loaded.features.dither, f.dither)
    assert torch.equal(loaded.sum, s.sum) and loaded.count == s.count
    assert torch.equal(loaded.center, s.center) and loaded.scale == s.scale
    g = loaded.features
    assert (g.law, g.bandwidth, g.dim, g.quantized, g.dithered) == (
        "adapted_radius",
        0.3,
        3,
        False,
        True,
    )
    assert torch.equal(g(data), f(data))


def test_sketch_file_loads_without_pickle(features, data, tmp_path):
    path = tmp_path / "s.npz"
    Sketch(features).update(data).save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert {"frequencies", "dither", "sum", "count", "format_version"} <= set(npz.files)
        assert int(npz["format_version"]) == 1


@pytest.mark.parametrize(
    "options",
    [
        {"law": "multiscale_gaussian", "bandwidth": 2.0},
        {"law": "folded_gaussian", "bandwidth": 0.5, "dither": True, "quantized": True},
        {
            "law": "adapted_radius",
            "bandwidth": 1.5,
            "cov": torch.diag(torch.tensor([1.0, 2.0, 0.5])),
        },
    ],
)
def test_seeded_features_are_stored_as_their_seed_and_drawn_again(options, data, tmp_path):
    features = FourierFeatures(3, 4000, seed=7, **options)
    assert features.seed == 7 and features.redrawn() is not None
    original = Sketch(features).update(data)
    original.save(tmp_path / "seeded.npz")
    full = Sketch(FourierFeatures.from_frequencies(
        features.frequencies, features.dither if features.dithered else None,
        quantized=features.quantized, law=features.law, bandwidth=features.bandwidth,
    )).update(data)  # fmt: skip
    full.save(tmp_path / "full.npz")
    with np.load(tmp_path / "seeded.npz", allow_pickle=False) as npz:
        assert int(npz["format_version"]) == 2 and npz["frequencies"].size == 0
        assert int(npz["frequency_seed"]) == 7
    saved = (tmp_path / "full.npz").stat().st_size - (tmp_path / "seeded.npz").stat().st_size
    assert saved > 0.9 * features.frequencies.numel() * features.frequencies.element_size()
    back = Sketch.load(tmp_path / "seeded.npz")
    assert torch.equal(back.features.frequencies, features.frequencies)
    assert torch.equal(back.features.dither, features.dither)
    assert torch.equal(back.mean, original.mean) and back.features.seed == 7
    assert torch.equal(Sketch.load(tmp_path / "full.npz").mean, back.mean)
    back.merge(full)  # the same features, whichever way they were stored


def test_features_changed_after_their_draw_are_stored_whole(data, tmp_path):
    features = FourierFeatures(3, 50, bandwidth=1.0, seed=3)
    with torch.no_grad():
        features.frequencies[0, 0] += 1e-6
    assert features.redrawn() is None
    Sketch(features).update(data).save(tmp_path / "s.npz")
    back = Sketch.load(tmp_path / "s.npz")
    assert torch.equal(back.features.frequencies, features.frequencies)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as npz:
        assert int(npz["format_version"]) == 1


def test_a_seeded_file_whose_draw_differs_is_refused(data, tmp_path):
    path = tmp_path / "s.npz"
    Sketch(FourierFeatures(3, 50, bandwidth=1.0, seed=3)).update(data).save(path)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["frequency_digest"] = np.str_("0" * 64)
    np.savez(path, **arrays)
    with pytest.raises(SketchError, match="drawn again from the recorded seed must match"):
        Sketch.load(path)
    del arrays["frequency_seed"]
    np.savez(path, **arrays)
    with pytest.raises(
        SketchError, match=r"must hold the seed of its frequencies; got no \['frequency_seed'\]"
    ):
        Sketch.load(path)


def test_seed_and_generator_are_exclusive(gen):
    with pytest.raises(ValueError, match="seed must be None when a generator is given"):
        FourierFeatures(3, 5, seed=1, generator=gen)
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\^63\); got -1"):
        FourierFeatures(3, 5, seed=-1)
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\^63\); got \d+"):
        FourierFeatures(3, 5, seed=2**64)  # torch's own message was "Overflow when unpacking"
    same = FourierFeatures(3, 5, seed=np.int64(7)).frequencies
    assert torch.equal(same, FourierFeatures(3, 5, seed=7).frequencies)


def test_save_writes_atomically_and_replaces(features, data, tmp_path):
    path = tmp_path / "s.sketch"  # any suffix
    Sketch(features).update(data[:10]).save(path)
    Sketch(features).update(data).save(path)
    assert Sketch.load(path).count == 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sketch"]


def test_features_from_given_frequencies_keep_them(data):
    omega = torch.randn(3, 16, dtype=torch.float64)
    f = FourierFeatures.from_frequencies(omega)
    assert torch.equal(f.frequencies, omega) and f.law is None
    t = data @ omega
    torch.testing.assert_close(f(data), torch.cat([t.cos(), t.sin()], 1) / 4, rtol=0, atol=1e-14)


# --- sketch distance -----------------------------------------------------------------------------


def test_sketch_distance_passes_gradcheck(features, data, gen):
    s = Sketch(features).update(data)
    y = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: sketch.sketch_distance(s, v), (y,))


def test_sketch_distance_is_zero_for_the_sketched_samples(features, data):
    center = torch.tensor([0.5, 0.0, -1.0], dtype=torch.float64)
    s = Sketch(features, center=center, scale=2.0).update(data)
    assert float(sketch.sketch_distance(s, (data - center) / 2.0)) < 1e-12


def test_sketch_distance_is_squared_feature_mean_difference(features, data, gen):
    s = Sketch(features).update(data)
    y = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    expected = (features(y).mean(dim=0) - s.mean).square().sum()
    torch.testing.assert_close(sketch.sketch_distance(s, y), expected, rtol=1e-12, atol=0)


def test_sketch_distance_decreases_as_samples_approach_the_data(gen):
    f = FourierFeatures(2, 500, law="gaussian", bandwidth=0.5, generator=gen)
    x = 0.3 * torch.randn(2000, 2, generator=gen, dtype=torch.float64)
    s = Sketch(f).update(x)
    y = 0.3 * torch.randn(500, 2, generator=gen, dtype=torch.float64)
    shift = torch.tensor([1.0, 0.0], dtype=torch.float64)
    values = [float(sketch.sketch_distance(s, y + a * shift)) for a in (2.0, 1.0, 0.5, 0.0)]
    assert values == sorted(values, reverse=True)


def test_gradient_steps_reduce_the_sketch_distance(gen):
    f = FourierFeatures(2, 300, law="gaussian", bandwidth=0.5, generator=gen)
    s = Sketch(f).update(0.3 * torch.randn(1000, 2, generator=gen) + 1.0)
    y = (0.3 * torch.randn(200, 2, generator=gen)).requires_grad_(True)
    first = sketch.sketch_distance(s, y).item()
    for _ in range(30):
        (gradient,) = torch.autograd.grad(sketch.sketch_distance(s, y), y)
        with torch.no_grad():
            y -= 20.0 * gradient
    assert sketch.sketch_distance(s, y).item() < 0.5 * first


def test_sketch_distance_follows_samples_dtype(features, data):
    s = Sketch(features).update(data)
    assert sketch.sketch_distance(s, data[:10].float()).dtype == torch.float32
    assert sketch.sketch_distance(s, data[:10]).dtype == torch.float64


def test_quantized_sketch_distance_decodes_with_four_over_pi(gen, data):
    q = FourierFeatures(3, 64, dither=True, quantized=True, generator=gen)
    s = Sketch(q).update(data)
    full = FourierFeatures.from_frequencies(q.frequencies, q.dither)
    y = data[:50] + 0.1
    expected = (4 / math.pi * full(y).mean(dim=0) - s.mean).square().sum()
    torch.testing.assert_close(sketch.sketch_distance(s, y), expected, rtol=1e-12, atol=0)


# --- errors ----------------------------------------------------------------------------------------


def test_error_dimension_mismatch(features, data):
    with pytest.raises(ValueError, match=r"data must have D=3 features .*; got 2\."):
        sketch.sketch_dataset(data[:, :2], features, progress=False)
    with pytest.raises(ValueError, match=r"x must have D=3 features"):
        features(data[:, :2])


def test_error_empty_data(features):
    with pytest.raises(ValueError, match=r"data must hold at least one sample; got 0\."):
        sketch.sketch_dataset(torch.zeros(0, 3), features, progress=False)
    with pytest.raises(ValueError, match=r"data must hold at least one sample"):
        sketch.sketch_dataset(iter([]), features, progress=False)
    with pytest.raises(ValueError, match=r"sketch must hold at least one sample; got count=0\."):
        _ = Sketch(features).mean


def test_error_non_finite_values(features, data):
    bad = data.clone()
    bad[123, 1] = float("nan")
    with pytest.raises(ValueError, match=r"data must contain only finite values; got 1 NaN"):
        sketch.sketch_dataset(bad, features, batch_size=100, progress=False)
    with pytest.raises(ValueError, match=r"data must contain only finite values"):
        sketch.unit_ball_scaling(bad)


def test_error_unsupported_data_type(features):
    with pytest.raises(TypeError, match=r"data must be a tensor, a numpy array, .*; got str\."):
        sketch.sketch_dataset("data.npy", features, progress=False)
    with pytest.raises(ValueError, match=r"data must be 2-D \(N, D\); got shape \(5,\)\."):
        sketch.sketch_dataset(torch.zeros(5), features, progress=False)


def test_error_unknown_law():
    with pytest.raises(ValueError, match=r"law must be one of .*; got 'cauchy'\."):
        FourierFeatures(2, 10, law="cauchy")


def test_error_bad_bandwidth():
    with pytest.raises(ValueError, match=r"bandwidth must be a finite number > 0; got -1"):
        FourierFeatures(2, 10, bandwidth=-1.0)
    with pytest.raises(TypeError, match=r"bandwidth must be a positive number; got str\."):
        FourierFeatures(2, 10, bandwidth="1")


def test_error_cov_not_positive_definite():
    with pytest.raises(ValueError, match=r"cov must be symmetric positive definite; got smallest"):
        FourierFeatures(2, 10, cov=np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"cov must be a \(2, 2\) matrix; got shape \(3, 3\)\."):
        FourierFeatures(2, 10, cov=np.eye(3))
    with pytest.raises(ValueError, match=r"cov must be symmetric positive definite; got a non-sym"):
        FourierFeatures(2, 10, cov=np.array([[1.0, 0.5], [0.0, 1.0]]))


def test_error_quantized_without_dither():
    with pytest.raises(ValueError, match=r"dither must be True when quantized=True"):
        FourierFeatures(2, 10, quantized=True)


def test_error_missing_sketch_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"sketch file must exist; got no file at"):
        Sketch.load(tmp_path / "none.npz")


def test_error_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(SketchError, match=r"sketch file must be an \.npz archive"):
        Sketch.load(path)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(SketchError, match=r"got a \.npy array"):
        Sketch.load(tmp_path / "array.npy")


def test_error_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(SketchError, match=r"must hold the keys of Sketch\.save; got .* without \["):
        Sketch.load(path)


def test_error_unsupported_format_version(features, data, tmp_path):
    path = tmp_path / "s.npz"
    Sketch(features).update(data).save(path)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["format_version"] = np.int64(99)
    np.savez(path, **arrays)
    with pytest.raises(SketchError, match=r"format_version must be 1 or 2; got 99\."):
        Sketch.load(path)


def test_error_corrupt_sketch_file(features, data, tmp_path):
    path = tmp_path / "s.npz"
    Sketch(features).update(data).save(path)
    with np.load(path) as npz:
        arrays = dict(npz)
    good = arrays["sum"]
    arrays["sum"] = np.zeros(5)
    np.savez(path, **arrays)
    with pytest.raises(SketchError, match=r"is corrupt: sum must have shape \(128,\); got \(5,\)"):
        Sketch.load(path)
    arrays["sum"] = np.where(np.arange(128) < 2, np.inf, good)
    np.savez(path, **arrays)
    with pytest.raises(SketchError, match=r"is corrupt: sum must hold finite values; got 2 NaN"):
        Sketch.load(path)


def test_error_merging_different_frequencies(features, data, gen):
    other = FourierFeatures(3, 64, bandwidth=0.8, dither=True, generator=gen)
    with pytest.raises(ValueError, match=r"other must have the same frequencies"):
        Sketch(features).update(data).merge(Sketch(other).update(data))


def test_error_merging_different_scaling(features, data):
    with pytest.raises(ValueError, match=r"other must have the same scaling"):
        Sketch(features).update(data).merge(Sketch(features, scale=2.0).update(data))
    with pytest.raises(ValueError, match=r"other must have the same scaling"):
        Sketch(features).merge(Sketch(features, center=np.ones(3)))


def test_error_samples_of_wrong_dimension(features, data):
    s = Sketch(features).update(data)
    with pytest.raises(ValueError, match=r"samples must have D=3 features .*; got 4\."):
        sketch.sketch_distance(s, torch.zeros(5, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"sketch must be a Sketch; got Tensor\."):
        sketch.sketch_distance(data, data)


def test_the_source_is_saved_and_survives_copies_and_same_source_merges(tmp_path):
    from distmatch.sketch import FourierFeatures, Sketch

    features = FourierFeatures(2, 10, generator=torch.Generator().manual_seed(0))
    a = Sketch(features).update(torch.randn(5, 2))
    a.source = "spiral"
    a.save(tmp_path / "a.npz")
    loaded = Sketch.load(tmp_path / "a.npz")
    assert loaded.source == "spiral" and loaded.copy().source == "spiral"
    assert loaded.merge(a.copy()).source == "spiral"
    other = Sketch(features).update(torch.randn(5, 2))
    assert loaded.merge(other).source is None  # mixed sources


def test_a_sketch_of_nan_is_never_written(tmp_path):
    features = FourierFeatures(2, 8, bandwidth=1.0, generator=torch.Generator().manual_seed(0))
    s = Sketch(features).update(torch.randn(5, 2, dtype=torch.float64))
    s.sum[0] = float("nan")
    with pytest.raises(ValueError, match="a sketch must hold finite values; got NaN or inf"):
        s.save(tmp_path / "s.npz")
    assert not (tmp_path / "s.npz").exists()


def test_the_bandwidth_of_one_repeated_point_is_refused(tmp_path, capsys):
    from distmatch.cli import main

    np.save(tmp_path / "zeros.npy", np.zeros((300, 3), dtype=np.float32))
    argv = ["sketch", "--dataset", str(tmp_path / "zeros.npy"), "--bandwidth", "auto"]
    assert main([*argv, "--out", str(tmp_path / "s.npz"), "--no-progress"]) == 2
    assert "x must hold distinct points; got a variance of 0" in capsys.readouterr().err
    assert not (tmp_path / "s.npz").exists()
