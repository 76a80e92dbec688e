"""Compressive learning of images: sketches of image data sets, image generators trained from the
sketch file alone, private image sketches and the offline classifier metric.

Everything runs on the 8x8 digits that ship with scikit-learn (1,500 training images), at tiny
sizes; the MNIST versions of these runs are in benchmarks/clgn_images.py.
"""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from distmatch import sketch as sk
from distmatch.cli import main
from distmatch.data import load_split
from distmatch.evaluation import classifier_metrics, load_classifier, reference_summary


@pytest.fixture(scope="module")
def digits_sketch(tmp_path_factory):
    """``distmatch sketch --dataset digits`` with the defaults, made once."""
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    assert main(["sketch", "--dataset", "digits", "--out", str(path), "--no-progress"]) == 0
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTMATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ------------------------------------------------------------------------------------ sketches


def test_an_image_sketch_records_its_shape_source_and_the_image_recipe(digits_sketch):
    s = sk.Sketch.load(digits_sketch)
    assert s.sample_shape == (1, 8, 8) and s.source == "digits" and s.label is None
    assert s.count == 1500 and s.scale == 1.0 and s.center is None  # pixels stay in [0, 1]
    f = s.features
    assert f.law == sk.IMAGE_LAW and f.n_frequencies == sk.default_frequencies(64, image=True)
    train = load_split("digits", "train")
    x = train.get_batch(torch.arange(1500)).flatten(1).double()
    probe = x[torch.randperm(1500, generator=torch.Generator().manual_seed(0))[:2000].sort()[0]]
    expected = sk.median_bandwidth(probe, generator=torch.Generator().manual_seed(0))
    assert f.bandwidth == pytest.approx(expected)
    direct = sk.Sketch(sk.FourierFeatures.from_frequencies(f.frequencies.double())).update(x)
    torch.testing.assert_close(s.mean, direct.mean, rtol=0, atol=1e-6)


def test_median_bandwidth_is_the_factor_times_the_median_distance():
    x = torch.rand(300, 20, dtype=torch.float64)
    median = float(torch.pdist(x).median())
    assert sk.median_bandwidth(x) == pytest.approx(sk.MEDIAN_FACTOR * median)


def test_the_recipe_keeps_clgn_for_vectors_and_follows_dimension_for_images():
    assert sk.sketch_recipe(2, image=False) == ("folded_gaussian", 10_000, sk.CLGN_BANDWIDTH)
    law, m, bandwidth = sk.sketch_recipe(784, image=True)
    assert (law, m, bandwidth) == (sk.IMAGE_LAW, sk.default_frequencies(784, image=True), None)
    assert sk.default_frequencies(10**6, image=True) == sk.IMAGE_MAX_FREQUENCIES
    assert sk.sketch_recipe(784, image=True, bandwidth=2.0, n_frequencies=7)[1:] == (7, 2.0)


def test_by_label_sketches_add_up_to_the_whole_data_sets_sketch(tmp_path, digits_sketch):
    out = tmp_path / "d.npz"
    assert main(["sketch", "--dataset", "digits", "--by-label", "--out", str(out)]) == 0
    parts = [sk.Sketch.load(tmp_path / f"d-{c}.npz") for c in range(10)]
    assert [p.label for p in parts] == list(range(10))
    labels = load_split("digits", "train").labels
    assert [p.count for p in parts] == torch.bincount(labels).tolist()
    merged = parts[0].copy()
    for p in parts[1:]:
        merged.merge(p)  # disjoint classes: no overlap refused
    whole = sk.Sketch.load(digits_sketch)
    assert merged.count == whole.count and merged.label is None
    torch.testing.assert_close(merged.sum, whole.sum, rtol=1e-5, atol=1e-4)  # float32 blocks


def test_shards_of_a_data_set_merge_and_overlaps_are_refused(tmp_path, digits_sketch):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    common = ["sketch", "--dataset", "digits", "--batch-size", "500", "--no-progress"]
    assert main([*common, "--shard", "1/2", "--out", str(a)]) == 0
    assert main([*common, "--shard", "2/2", "--out", str(b)]) == 0
    merged = sk.Sketch.load(a).merge(sk.Sketch.load(b))
    whole = sk.Sketch.load(digits_sketch)
    torch.testing.assert_close(merged.sum, whole.sum, rtol=1e-5, atol=1e-4)  # float32 blocks
    with pytest.raises(ValueError, match="other must hold other data than this sketch"):
        sk.Sketch.load(a).merge(sk.Sketch.load(digits_sketch))


def test_a_folder_of_images_is_sketched_at_the_image_size(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(30):
        Image.new("RGB", (20, 16), (8 * i, 100, 200 - 5 * i)).save(folder / f"{i:02d}.png")
    out = tmp_path / "f.npz"
    argv = ["sketch", "--dataset", str(folder), "--image-size", "8", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    s = sk.Sketch.load(out)
    assert s.sample_shape == (3, 8, 8) and s.count == 27  # the last tenth is the test split


def test_a_private_image_sketch_records_the_analytic_gaussian_noise(tmp_path):
    out = tmp_path / "p.npz"
    argv = ["sketch", "--dataset", "digits", "--epsilon", "2", "--delta", "1e-5", "--out", str(out)]
    assert main([*argv, "--bandwidth", "3"]) == 0  # public: never estimated from private data
    p = sk.Sketch.load(out).privacy
    assert (p.mechanism, p.epsilon, p.delta) == ("analytic_gaussian", 2.0, 1e-5)
    # the joint L2 sensitivity of (sum, count) under add/remove is sqrt(1 + 1)
    assert p.noise_scale == pytest.approx(sk.analytic_gaussian_std(2.0, 1e-5, math.sqrt(2)))


def test_the_sketch_file_of_images_round_trips_and_info_shows_it(tmp_path, digits_sketch, capsys):
    s = sk.Sketch.load(digits_sketch)
    s.label, s.data_dir = 3, "/somewhere"
    s.save(tmp_path / "x.npz")
    back = sk.Sketch.load(tmp_path / "x.npz")
    assert (back.sample_shape, back.label, back.data_dir) == ((1, 8, 8), 3, "/somewhere")
    assert main(["sketch", "info", str(tmp_path / "x.npz"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sample_shape"] == [1, 8, 8] and info["label"] == 3
    assert info["frequency_seed"] == 0  # distmatch sketch --seed 0: the seed is stored


# --------------------------------------------------------------------- the unbiased distance


def test_the_unbiased_sketch_distance_is_the_u_statistic_of_the_features_kernel(gen):
    x = torch.randn(200, 3, dtype=torch.float64, generator=gen)
    features = sk.FourierFeatures(3, 500, law="gaussian", generator=gen).double()
    s = sk.Sketch(features).update(x)
    y = torch.randn(30, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    phi_y, phi_x = features(y), features(x)
    kyy = phi_y @ phi_y.T
    u_yy = (kyy.sum() - kyy.diagonal().sum()) / (30 * 29)
    expected = u_yy - 2 * (phi_y @ phi_x.T).mean() + (phi_x @ phi_x.T).mean()
    value = sk.sketch_distance(s, y, estimator="unbiased")
    torch.testing.assert_close(value, expected, rtol=1e-10, atol=1e-12)
    (grad,) = torch.autograd.grad(value, y)
    (expected_grad,) = torch.autograd.grad(expected, y)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-8, atol=1e-12)
    biased = sk.sketch_distance(s, y.detach())
    torch.testing.assert_close(biased - value.detach(), (1 - u_yy.detach()) / 30)


def test_the_unbiased_sketch_distance_passes_gradcheck(gen):
    features = sk.FourierFeatures(2, 20, generator=gen).double()
    s = sk.Sketch(features).update(torch.rand(50, 2, dtype=torch.float64, generator=gen))
    y = torch.rand(6, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: sk.sketch_distance(s, v, estimator="unbiased"), (y,))


def test_the_unbiased_distance_needs_two_samples_and_a_known_estimator(gen):
    s = sk.Sketch(sk.FourierFeatures(2, 10, generator=gen)).update(torch.rand(5, 2))
    with pytest.raises(ValueError, match="samples must"):
        sk.sketch_distance(s, torch.rand(1, 2), estimator="unbiased")
    with pytest.raises(ValueError, match="estimator must be one of"):
        sk.sketch_distance(s, torch.rand(3, 2), estimator="exact")


# --------------------------------------------------------------------- the analytic Gaussian


@pytest.mark.parametrize(("epsilon", "delta"), [(0.1, 1e-5), (1.0, 1e-5), (10.0, 1e-6)])
def test_the_analytic_gaussian_meets_its_delta_exactly(epsilon, delta):
    from scipy.stats import norm

    sigma = sk.analytic_gaussian_std(epsilon, delta, 1.0)
    a, b = 1 / (2 * sigma), epsilon * sigma
    assert norm.cdf(a - b) - math.exp(epsilon) * norm.cdf(-a - b) == pytest.approx(delta, rel=1e-6)
    if epsilon < 1:  # where the classical mechanism is valid, the analytic one adds less noise
        assert sigma < math.sqrt(2 * math.log(1.25 / delta)) / epsilon


# ------------------------------------------------------------------------- the offline metric


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    train = load_split("digits", "train")
    return load_classifier(train, cache_dir=tmp_path_factory.mktemp("cls"), progress=False)


def test_real_images_score_near_0_and_cover_every_class(digits_classifier):
    test = load_split("digits", "test")
    train = load_split("digits", "train")
    ref = reference_summary(digits_classifier, test.get_batch(torch.arange(len(test))))
    real = classifier_metrics(digits_classifier, train.get_batch(torch.arange(600)), ref)
    assert real["classes_covered"] == 10 and real["effective_classes"] > 9.5
    assert real["label_tv"] < 0.1
    x = train.get_batch(torch.arange(1500)).flatten(1).double()
    root = torch.linalg.cholesky(torch.cov(x.T) + 1e-6 * torch.eye(64, dtype=torch.float64))
    noise = torch.randn(600, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g = (x.mean(0) + noise @ root.T).clamp(0, 1).float().view(-1, 1, 8, 8)  # a Gaussian fit
    gaussian = classifier_metrics(digits_classifier, g, ref)
    assert gaussian["cfd"] > 3 * real["cfd"] and gaussian["label_tv"] > real["label_tv"]
    one_class = classifier_metrics(digits_classifier, test.get_batch(test.labels == 3), ref)
    assert one_class["effective_classes"] < 3 and one_class["label_tv"] > 0.7


def test_the_classifier_is_cached_and_deterministic(tmp_path, digits_classifier):
    train = load_split("digits", "train")
    again = load_classifier(train, cache_dir=tmp_path, progress=False)
    assert list(tmp_path.glob("digits-train-1500-*.pt"))
    x = train.get_batch(torch.arange(50))
    torch.testing.assert_close(again(x), digits_classifier(x))
    cached = load_classifier(train, cache_dir=tmp_path, progress=False)
    torch.testing.assert_close(cached(x), again(x))


# ------------------------------------------------------------------------ image generators


QUICK = ["--epochs", "1", "--latent-codes", "2000", "--batch-size", "200", "--eval-points", "300"]


def test_fit_sketch_trains_an_image_generator_from_the_file_and_samples_pngs(
    tmp_path, digits_sketch, cache
):
    run = tmp_path / "run"
    argv = ["fit-sketch", str(digits_sketch), "--unconditional", *QUICK, "--out", str(run)]
    assert main([*argv, "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["resolved"]["arch"] == "conv" and config["resolved"]["sample_shape"] == [1, 8, 8]
    assert config["resolved"]["classes"] == 0 and config["config"]["conditional"] is False
    assert config["config"]["estimator"] == "unbiased"
    summary = json.loads((run / "summary.json").read_text())
    assert {"cfd", "classes_covered", "effective_classes", "label_tv"} <= set(summary)
    assert (run / "figures" / "samples.png").is_file() and (
        run / "figures" / "curves.png"
    ).is_file()
    assert not (run / "figures" / "histograms.png").exists()
    assert main(["sample", str(run), "--num", "12", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").mode == "RGB"
    assert main(["sample", str(run), "--num", "5", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy", allow_pickle=False)
    assert samples.shape == (5, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    assert (
        main(["fit-sketch", "--resume", "--out", str(run), "--epochs", "2", "--no-progress"]) == 0
    )
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2


def test_fit_mmd_on_images_uses_the_image_kernel_and_pixels(tmp_path, cache):
    run = tmp_path / "mmd"
    argv = ["fit-mmd", "--dataset", "digits", *QUICK, "--out", str(run), "--no-progress"]
    assert main(argv) == 0
    resolved = json.loads((run / "config.json").read_text())["resolved"]
    assert resolved["law"] == sk.IMAGE_LAW and resolved["scale"] == 1.0
    assert resolved["bandwidth"] > 0 and resolved["sample_shape"] == [1, 8, 8]


def test_evaluating_a_generator_of_unlabelled_images_needs_the_fid(
    tmp_path, monkeypatch, capsys, cache
):
    """Without labels there is no classifier metric: the FID is asked for, before any sampling,
    and with it (a stand-in network here) eval.json holds it."""
    from torch import nn

    from distmatch.cli import _fit as fit_command  # where a generator's evaluation loads it

    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(40):
        Image.new("RGB", (8, 8), (6 * i, 100, 240 - 5 * i)).save(folder / f"{i:02d}.png")
    sketch, run = tmp_path / "faces.npz", tmp_path / "run"
    assert main(["sketch", "--dataset", str(folder), "--out", str(sketch), "--no-progress"]) == 0
    argv = ["fit-sketch", str(sketch), "--epochs", "1", "--latent-codes", "200"]
    assert main([*argv, "--batch-size", "100", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no labels" in err and "pass --fid" in err, err
    assert not (run / "eval.json").exists()

    class StandIn(nn.Module):  # pooled pixels through a fixed projection: (B, 3, H, W) -> (B, 4)
        def forward(self, x):
            pooled = nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)  # (B, 12)
            return torch.tanh(pooled @ torch.linspace(-1, 1, 48).reshape(12, 4))

    monkeypatch.setattr(fit_command, "load_inception", lambda *args, **kwargs: StandIn())
    assert main(["evaluate", str(run), "--fid", "--fid-samples", "50"]) == 0
    scored = json.loads((run / "eval.json").read_text())
    assert scored["samples"] == 50 and math.isfinite(scored["fid"]) and scored["fid"] >= 0
