import hashlib
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distmatch.evaluation import (
    FIDInceptionV3,
    InceptionWeightsError,
    activation_statistics,
    cached_statistics,
    fid_from_samples,
    frechet_distance,
    load_inception,
)
from distmatch.evaluation import _fid as fid
from distmatch.evaluation import _inception as inception

# torchvision's inception_v3 has 27,161,264 parameters; without AuxLogits (3,326,696: conv0
# 98,560, conv1 2,459,136, fc 769,000) and with 1008 instead of 1000 classes (+8 * 2049) this
# is pytorch-fid's fid_inception_v3(), fc included.
FID_INCEPTION_PARAMETERS = 27_161_264 - 3_326_696 + 8 * 2049  # 23,850,960


def random_covariance(rng: np.random.Generator, dim: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(dim, rank or dim))
    return a @ a.T / (rank or dim)


def symmetric_route(mu1, sigma1, mu2, sigma2) -> float:
    """FID with ``tr (S1 S2)^(1/2) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))``, by eigh only."""
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    eig = np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0.0, None)
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.sqrt(eig).sum())


# --- frechet_distance -------------------------------------------------------------------------


def test_identical_statistics_give_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=20), random_covariance(rng, 20)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_diagonal_covariances_give_the_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    a, b = rng.uniform(0.1, 3.0, size=8), rng.uniform(0.1, 3.0, size=8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10)


def test_commuting_covariances_give_the_closed_form_in_their_eigenbasis():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    a, b = rng.uniform(0.1, 3.0, size=10), rng.uniform(0.1, 3.0, size=10)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_non_commuting_covariances_match_the_symmetric_scipy_route():
    rng = np.random.default_rng(3)
    s1, s2 = random_covariance(rng, 30), random_covariance(rng, 30)
    assert not np.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = rng.normal(size=30), rng.normal(size=30)
    expected = symmetric_route(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_in_one_dimension_is_the_squared_differences_of_means_and_deviations():
    got = frechet_distance(0.3, 2.0**2, -1.2, 0.5**2)
    assert got == pytest.approx((0.3 + 1.2) ** 2 + (2.0 - 0.5) ** 2, rel=1e-12)


def rank_deficient_tolerance(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """What float64 eigenvalues support: each of the D eigenvalues of S1^(1/2) S2 S1^(1/2) is known
    to ``D * eps * |S1| |S2|``, and a zero one contributes at most the root of that to the trace."""
    dim = sigma1.shape[0]
    delta = dim * np.finfo(np.float64).eps * np.linalg.norm(sigma1, 2) * np.linalg.norm(sigma2, 2)
    return 2.0 * dim * math.sqrt(delta)


@pytest.mark.parametrize(("dim", "n1", "n2"), [(16, 5, 6), (64, 3, 64), (256, 2, 300)])
def test_rank_deficient_sample_covariances_match_the_low_rank_closed_form(dim, n1, n2):
    # S1 = U U^T with U = X_c^T / sqrt(n1 - 1) of rank n1 - 1, so S1 S2 has the non-zero
    # eigenvalues of the small (n1, n1) matrix U^T S2 U: tr (S1 S2)^(1/2) = tr (U^T S2 U)^(1/2).
    rng = np.random.default_rng(dim + n1)
    x, y = rng.normal(size=(n1, dim)), rng.normal(size=(n2, dim)) + 0.1
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    u = (x - x.mean(0)).T / math.sqrt(n1 - 1)  # (D, n1)
    small = np.linalg.eigvalsh(u.T @ s2 @ u)  # (n1,)
    diff = x.mean(0) - y.mean(0)
    expected = (
        diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.sqrt(np.clip(small, 0, None)).sum()
    )
    got = frechet_distance(x.mean(0), s1, y.mean(0), s2)
    assert got == pytest.approx(expected, abs=rank_deficient_tolerance(s1, s2))
    assert frechet_distance(x.mean(0), s1, x.mean(0), s1) == pytest.approx(
        0.0, abs=rank_deficient_tolerance(s1, s1)
    )


def test_rank_one_covariances_give_the_closed_form():
    # S1 = a a^T: tr (S1 S2)^(1/2) = sqrt(a^T S2 a); with S2 = b b^T it is |a . b|.
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=50), rng.normal(size=50)
    s1, s2 = np.outer(a, a), np.outer(b, b)
    expected = a @ a + b @ b - 2.0 * abs(a @ b)
    got = frechet_distance(np.zeros(50), s1, np.zeros(50), s2)
    assert got == pytest.approx(expected, abs=rank_deficient_tolerance(s1, s2))


def test_commuting_singular_covariances_give_the_closed_form_without_regularisation(caplog):
    rng = np.random.default_rng(8)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    a = np.r_[rng.uniform(0.1, 3.0, size=5), np.zeros(7)]
    b = np.r_[np.zeros(3), rng.uniform(0.1, 3.0, size=6), np.zeros(3)]
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    with caplog.at_level(logging.DEBUG, logger="distmatch.fid"):
        got = frechet_distance(np.zeros(12), s1, np.ones(12), s2)
    expected = 12.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert got == pytest.approx(expected, abs=rank_deficient_tolerance(s1, s2))
    assert caplog.text == ""


def test_a_singular_product_gives_the_exact_value():
    # S1 S2 = [[1, 1], [0, 0]] is singular; the exact value is 0 + 1 + 2 - 2 * 1 = 1.
    got = frechet_distance([0.0, 0.0], np.diag([1.0, 0.0]), [0.0, 0.0], np.ones((2, 2)))
    assert got == pytest.approx(1.0, abs=rank_deficient_tolerance(np.eye(2), 2 * np.eye(2)))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            (np.zeros(3), np.eye(3)[:, :2], np.zeros(3), np.eye(3)),
            r"sigma1 must have shape \(D, D\)",
        ),
        ((np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)), "mu1 and mu2 must have the same length"),
        ((np.zeros((2, 2)), np.eye(2), np.zeros(2), np.eye(2)), r"mu1 must be a vector of shape"),
        ((np.zeros(2), np.eye(2), np.zeros(2), np.eye(3)), r"sigma2 must have shape"),
        (
            (np.zeros(2), np.eye(2), np.array([0, np.nan]), np.eye(2)),
            "mu2 must contain only finite",
        ),
    ],
)
def test_bad_shapes_or_values_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(*args)


def test_a_covariance_with_a_negative_eigenvalue_is_an_error():
    with pytest.raises(
        ValueError, match="sigma2 must be positive semi-definite; got an eigenvalue of -1"
    ):
        frechet_distance([0.0], [[1.0]], [0.0], [[-1.0]])


def test_an_asymmetric_covariance_is_an_error():
    with pytest.raises(ValueError, match="sigma1 must be a symmetric covariance matrix"):
        frechet_distance(np.zeros(2), [[1.0, 0.5], [0.0, 1.0]], np.zeros(2), np.eye(2))


# --- statistics -------------------------------------------------------------------------------


def test_activation_statistics_equal_numpy_mean_and_covariance_for_any_batching():
    images = torch.rand(23, 1, 3, 2, generator=torch.Generator().manual_seed(0))
    features = images.reshape(23, -1).double().numpy()
    model = torch.nn.Flatten()
    for batches in (images, list(images.split(7)), [(b, None) for b in images.split(4)]):
        mu, sigma = activation_statistics(batches, model, batch_size=5)
        np.testing.assert_allclose(mu, features.mean(axis=0), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(sigma, np.cov(features, rowvar=False), rtol=1e-10, atol=1e-15)


def test_activation_statistics_need_two_images():
    with pytest.raises(ValueError, match="at least 2 images; got 1"):
        activation_statistics(torch.rand(1, 1, 2, 2), torch.nn.Flatten())
    with pytest.raises(TypeError, match="images must be a tensor"):
        activation_statistics(3.0, torch.nn.Flatten())


def test_fid_from_samples_is_the_distance_between_the_two_statistics():
    gen = torch.Generator().manual_seed(1)
    real, fake = torch.rand(40, 1, 2, 2, generator=gen), torch.rand(30, 1, 2, 2, generator=gen) ** 2
    model = torch.nn.Flatten()
    reference = activation_statistics(real, model)
    expected = frechet_distance(*activation_statistics(fake, model), *reference)
    assert fid_from_samples(fake, reference, model, batch_size=8) == pytest.approx(
        expected, rel=1e-12
    )
    assert fid.FID_SAMPLES == 10_000


def test_cached_statistics_compute_once_then_read_the_npz(tmp_path):
    rng = np.random.default_rng(4)
    stats = (rng.normal(size=5), random_covariance(rng, 5))
    calls = []

    def compute():
        calls.append(1)
        return stats

    first = cached_statistics("toy-train_1.0", compute, tmp_path)
    second = cached_statistics("toy-train_1.0", compute, tmp_path)
    assert len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy-train_1.0.npz"]
    for got in (first, second):
        np.testing.assert_array_equal(got[0], stats[0])
        np.testing.assert_array_equal(got[1], stats[1])


def test_cached_statistics_default_to_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTMATCH_CACHE", str(tmp_path))
    cached_statistics("toy", lambda: (np.zeros(2), np.eye(2)))
    assert (tmp_path / "fid_stats" / "toy.npz").is_file()


def test_cached_statistics_reject_bad_keys_and_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="key must be letters, digits"):
        cached_statistics("../escape", lambda: (np.zeros(2), np.eye(2)), tmp_path)
    (tmp_path / "broken.npz").write_bytes(b"not an npz file")
    with pytest.raises(ValueError, match=r"broken.npz' must be an .npz file .* Delete it"):
        cached_statistics("broken", lambda: (np.zeros(2), np.eye(2)), tmp_path)
    with pytest.raises(ValueError, match=r"computed sigma must have shape \(D, D\) = \(2, 2\)"):
        cached_statistics("bad", lambda: (np.zeros(2), np.eye(3)), tmp_path)
    assert not (tmp_path / "bad.npz").exists()


# --- Inception --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> FIDInceptionV3:
    return FIDInceptionV3().eval()


@pytest.fixture(scope="module")
def weights_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "fresh.pth"
    torch.save(model.state_dict(), path)
    return path


def test_inception_maps_rgb_and_grey_images_of_any_size_to_2048_features(model):
    with torch.no_grad():
        rgb = model(torch.rand(2, 3, 299, 299))
        grey = torch.rand(2, 1, 28, 28)
        features = model(grey)
        replicated = model(grey.expand(-1, 3, -1, -1))
    assert rgb.shape == features.shape == (2, 2048)
    assert torch.equal(features, replicated)


@pytest.mark.parametrize(
    ("block", "channels", "pool"),
    [
        ("Mixed_5b", 192, "avg"),
        ("Mixed_6e", 768, "avg"),
        ("Mixed_7b", 1280, "avg"),
        ("Mixed_7c", 2048, "max"),
    ],
)
def test_pool_branches_follow_the_tensorflow_graph(model, block, channels, pool):
    # TensorFlow's average pool leaves padding out; Mixed_7c max-pools (pytorch-fid's patches).
    x = torch.rand(1, channels, 5, 5, generator=torch.Generator().manual_seed(0))
    seen = []
    module = getattr(model, block)
    handle = module.branch_pool.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    with torch.no_grad():
        module(x)
    handle.remove()
    if pool == "max":
        expected = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    else:
        expected = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
    torch.testing.assert_close(seen[0], expected, rtol=0, atol=0)


def test_inception_input_is_resized_bilinearly_and_scaled_to_minus_one_one(model):
    grey = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    resized = F.interpolate(grey, size=(299, 299), mode="bilinear", align_corners=False)
    expected = (2 * resized - 1).repeat(1, 3, 1, 1)
    torch.testing.assert_close(model.preprocess(grey), expected, rtol=0, atol=1e-6)
    full = torch.rand(1, 3, 299, 299)
    torch.testing.assert_close(model.preprocess(full), 2 * full - 1, rtol=0, atol=1e-6)


def test_inception_rejects_images_that_are_not_one_or_three_channels(model):
    with pytest.raises(ValueError, match=r"\(N, 1 or 3, H, W\); got \(2, 2, 8, 8\)"):
        model(torch.rand(2, 2, 8, 8))


def test_inception_has_the_pytorch_fid_names_shapes_and_parameter_count(model):
    state = model.state_dict()
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_5b.branch_pool.bn.running_var"].shape == (32,)
    assert state["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    assert state["fc.weight"].shape == (1008, 2048)
    assert not any(k.startswith("AuxLogits") for k in state)
    assert all(f"{k.rsplit('.', 1)[0]}.bias" not in state for k in state if ".conv." in k)
    assert sum(p.numel() for p in model.parameters()) == FID_INCEPTION_PARAMETERS == 23_850_960


def test_a_complete_state_dict_loads_strictly(model, weights_file):
    loaded = load_inception(weights_file)
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_state_dict_with_a_key_removed_or_reshaped_is_named(model, tmp_path):
    state = model.state_dict()
    del state["Mixed_6c.branch7x7_2.conv.weight"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(InceptionWeightsError, match=r"1 missing keys, 0 unexpected .*'Mixed_6c"):
        load_inception(tmp_path / "missing.pth")
    state = model.state_dict()
    state["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(InceptionWeightsError, match="1 keys of the wrong shape"):
        load_inception(tmp_path / "shape.pth")


def test_an_unreadable_weights_file_is_named(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"no torch file")
    with pytest.raises(InceptionWeightsError, match="junk.pth' must be a torch state-dict file"):
        load_inception(tmp_path / "junk.pth")


def test_missing_weights_say_where_to_get_them_and_where_to_put_them(tmp_path):
    with pytest.raises(InceptionWeightsError) as info:
        load_inception(cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for part in (
        inception.WEIGHTS_FILE,
        inception.WEIGHTS_URL,
        "--inception-weights",
        str(tmp_path),
    ):
        assert part in message
    with pytest.raises(InceptionWeightsError, match="got a missing path"):
        load_inception(tmp_path / "nowhere.pth")


def test_weights_in_the_cache_folder_are_found(weights_file, tmp_path, monkeypatch):
    (tmp_path / inception.WEIGHTS_FILE).symlink_to(weights_file)
    monkeypatch.setenv("DISTMATCH_CACHE", str(tmp_path))
    assert isinstance(load_inception(), FIDInceptionV3)


def test_a_download_with_the_wrong_hash_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", lambda url, dst, **_: Path(dst).write_bytes(b"bad")
    )
    with pytest.raises(InceptionWeightsError, match="SHA-256 starting with 6726825d"):
        load_inception(cache_dir=tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_a_download_with_the_right_hash_is_kept_and_loaded(weights_file, tmp_path, monkeypatch):
    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    monkeypatch.setattr(inception, "WEIGHTS_SHA256_PREFIX", digest[:8])
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", lambda url, dst, **_: shutil.copyfile(weights_file, dst)
    )
    assert isinstance(load_inception(cache_dir=tmp_path, download=True), FIDInceptionV3)
    assert [p.name for p in tmp_path.iterdir()] == [inception.WEIGHTS_FILE]
