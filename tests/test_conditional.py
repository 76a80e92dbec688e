"""Class-conditional generators from the sketches of the data's classes (DP-MERF's setting): the
file of a labelled data set holds them beside the whole sketch, ``sketch --by-label`` writes one
file per class.

Everything runs on the 8x8 digits that ship with scikit-learn, at tiny sizes; the MNIST runs are
in benchmarks/clgn_images.py.
"""

import json

import numpy as np
import pytest
import torch

from distmatch import sketch as sk
from distmatch.cli import main
from distmatch.data import load_split
from distmatch.evaluation import classifier_metrics, load_classifier, reference_summary
from distmatch.generation import load_generator, load_sketches
from distmatch.models import build_generator


@pytest.fixture(scope="module")
def class_sketches(tmp_path_factory):
    """``distmatch sketch --dataset digits --by-label``: ten files d-0.npz ... d-9.npz."""
    folder = tmp_path_factory.mktemp("classes")
    argv = ["sketch", "--dataset", "digits", "--by-label", "--out", str(folder / "d.npz")]
    assert main([*argv, "--no-progress"]) == 0
    return [folder / f"d-{c}.npz" for c in range(10)]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTMATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ------------------------------------------------------------------------------ the network


def test_a_conditional_generator_feeds_the_code_and_the_one_hot_class():
    torch.manual_seed(0)
    g = build_generator("mlp", sample_shape=(5,), latent_dim=3, classes=4)
    assert g.classes == 4 and g.network[0].in_features == 3 + 4
    z = torch.randn(6, 3)
    labels = torch.tensor([0, 3, 1, 1, 2, 0])
    onehot = torch.eye(4)[labels]
    torch.testing.assert_close(g(z, labels), g.network(torch.cat([z, onehot], 1)))
    # unasked, sample i is of class i mod C
    torch.testing.assert_close(g(z), g(z, torch.tensor([0, 1, 2, 3, 0, 1])))
    assert g.sample(
        7, generator=torch.Generator().manual_seed(0), labels=labels[:1].repeat(7)
    ).shape == (7, 5)
    assert "classes=4" in repr(g)


def test_conditional_inputs_are_checked():
    g = build_generator("mlp", sample_shape=(5,), latent_dim=3, classes=4)
    z = torch.randn(2, 3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\); got 0 .. 4"):
        g(z, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"labels must be a \(2,\) int64 tensor"):
        g(z, torch.tensor([0.0, 1.0]))
    plain = build_generator("mlp", sample_shape=(5,), latent_dim=3)
    with pytest.raises(ValueError, match="labels must be None for an unconditional generator"):
        plain(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="classes must be an int >= 0; got -1"):
        build_generator("mlp", sample_shape=(5,), classes=-1)
    with pytest.raises(TypeError, match="classes must be an int >= 0; got float"):
        build_generator("mlp", sample_shape=(5,), classes=2.0)


# ---------------------------------------------------------------------------- the objective


def test_the_class_weighted_distance_is_the_weighted_sum_of_per_class_u_statistics(tmp_path):
    gen = torch.Generator().manual_seed(0)
    features = sk.FourierFeatures(3, 400, law="gaussian", generator=gen).double()
    paths, data = [], []
    for c, n in enumerate((40, 100, 60)):
        x = torch.randn(n, 3, dtype=torch.float64, generator=gen) + 2 * c
        s = sk.Sketch(features).update(x)
        s.label, s.source = 7 + c, "toy"
        s.record_piece("toy", 1000 * c, 1000 * c + n)
        s.save(tmp_path / f"s{c}.npz")
        paths.append(tmp_path / f"s{c}.npz")
        data.append(x)
    pooled, classes = load_sketches(paths[::-1])  # any order: classes follow the labels
    assert classes.labels == (7, 8, 9) and pooled.count == 200
    torch.testing.assert_close(classes.weights, torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64))
    y = torch.randn(12, 3, dtype=torch.float64, generator=gen)
    positions = torch.arange(12)
    labels, *rows = classes.batch_labels(positions, torch.device("cpu"))
    assert labels.tolist() == [0, 1, 2] * 4
    value = classes.distance(y, rows, estimator="unbiased")
    expected = 0.0
    for c, weight in enumerate((0.2, 0.5, 0.3)):  # brute force from the feature vectors
        fy, fx = features(y[c::3]), features(data[c])
        kyy = fy @ fy.T
        u = (kyy.sum() - kyy.diagonal().sum()) / (4 * 3)
        expected += weight * (u - 2 * (fy @ fx.T).mean() + (fx @ fx.T).mean())
    torch.testing.assert_close(value, expected, rtol=1e-9, atol=1e-12)


def test_sketch_files_that_do_not_make_classes_of_one_data_set_are_refused(
    tmp_path, class_sketches
):
    with pytest.raises(ValueError, match="got class 3 in both"):
        load_sketches([class_sketches[3], class_sketches[4], class_sketches[3]])
    whole = tmp_path / "whole.npz"
    assert main(["sketch", "--dataset", "digits", "--out", str(whole), "--no-progress"]) == 0
    with pytest.raises(ValueError, match="a sketch of no single class"):
        load_sketches([class_sketches[0], whole])
    other = tmp_path / "o.npz"
    argv = ["sketch", "--dataset", "digits", "--by-label", "--seed", "1", "--out", str(other)]
    assert main([*argv, "--no-progress"]) == 0
    with pytest.raises(ValueError, match="does not fit .*same frequencies"):
        load_sketches([class_sketches[0], tmp_path / "o-1.npz"])


def test_label_agreement_reads_real_images_as_their_labels(tmp_path):
    train, test = load_split("digits", "train"), load_split("digits", "test")
    classifier = load_classifier(train, cache_dir=tmp_path, progress=False)
    ref = reference_summary(classifier, test.get_batch(torch.arange(len(test))))
    x = train.get_batch(torch.arange(600))
    right = classifier_metrics(classifier, x, ref, train.labels[:600])
    assert right["label_agreement"] > 0.9
    wrong = classifier_metrics(classifier, x, ref, (train.labels[:600] + 1) % 10)
    assert wrong["label_agreement"] < 0.1
    with pytest.raises(ValueError, match=r"labels must have shape \(600,\)"):
        classifier_metrics(classifier, x, ref, train.labels[:5])


# ------------------------------------------------------------------------------ end to end


def test_fit_sketch_on_per_class_sketches_trains_one_conditional_generator(
    tmp_path, class_sketches, cache, capsys
):
    run = tmp_path / "run"
    quick = ["--epochs", "1", "--latent-codes", "2000", "--batch-size", "200"]
    argv = ["fit-sketch", *map(str, class_sketches), *quick, "--eval-points", "300"]
    assert main([*argv, "--out", str(run), "--no-progress"]) == 0
    resolved = json.loads((run / "config.json").read_text())["resolved"]
    assert resolved["classes"] == 10 and resolved["labels"] == list(range(10))
    assert sum(resolved["class_weights"]) == pytest.approx(1.0)
    summary = json.loads((run / "summary.json").read_text())
    assert 0 <= summary["label_agreement"] <= 1 and "cfd" in summary
    assert (run / "figures" / "samples.png").is_file()
    _, generator, _ = load_generator(run)
    assert generator.classes == 10
    # sample: one class, or a column per class; .npy with its labels
    assert (
        main(["sample", str(run), "--num", "8", "--label", "3", "--out", str(tmp_path / "a.png")])
        == 0
    )
    assert main(["sample", str(run), "--num", "12", "--out", str(tmp_path / "s.npy")]) == 0
    labels = np.load(tmp_path / "s.labels.npy", allow_pickle=False)
    assert labels.tolist() == [*range(10), 0, 1]
    assert np.load(tmp_path / "s.npy", allow_pickle=False).shape == (12, 1, 8, 8)
    capsys.readouterr()
    assert main(["sample", str(run), "--label", "12", "--out", str(tmp_path / "b.png")]) == 2
    assert "--label must be one of the run's classes" in capsys.readouterr().err
    assert (
        main(["fit-sketch", "--resume", "--out", str(run), "--epochs", "2", "--no-progress"]) == 0
    )
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2
    capsys.readouterr()
    assert main(["evaluate", str(run), "--fid-samples", "300"]) == 0
    assert "label_agreement" in capsys.readouterr().out


def test_fit_sketch_refuses_a_batch_that_starves_a_class(tmp_path, class_sketches, capsys):
    argv = ["fit-sketch", *map(str, class_sketches), "--batch-size", "15"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "at least 20" in capsys.readouterr().err
    assert (
        main(
            [
                "fit-sketch",
                str(class_sketches[0]),
                str(class_sketches[0]),
                "--out",
                str(tmp_path / "q"),
            ]
        )
        == 2
    )


# ---------------------------------------------------------- the classes in the sketch file


@pytest.fixture(scope="module")
def labelled_sketch(tmp_path_factory):
    """``distmatch sketch --dataset digits`` with the defaults: the whole and its ten classes."""
    path = tmp_path_factory.mktemp("labelled") / "digits.npz"
    assert main(["sketch", "--dataset", "digits", "--out", str(path), "--no-progress"]) == 0
    return path


def test_a_labelled_data_sets_sketch_holds_its_classes_which_add_up_to_it(labelled_sketch, capsys):
    whole = sk.Sketch.load(labelled_sketch)
    classes = sk.Sketch.load_classes(labelled_sketch)
    assert [c.label for c in classes] == list(range(10)) and whole.label is None
    labels = load_split("digits", "train").labels
    assert [c.count for c in classes] == torch.bincount(labels).tolist()
    torch.testing.assert_close(sum(c.sum for c in classes), whole.sum, rtol=0, atol=1e-9)
    assert all(c.features is classes[0].features for c in classes)
    assert len(whole.pieces) == 1 and (whole.pieces[0].start, whole.pieces[0].stop) == (0, 1500)
    x = load_split("digits", "train").get_batch(torch.arange(1500)).flatten(1).double()
    direct = sk.Sketch(whole.features).update(x[labels == 4])
    torch.testing.assert_close(classes[4].mean, direct.mean, rtol=0, atol=1e-6)
    capsys.readouterr()
    assert main(["sketch", "info", str(labelled_sketch), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == list(range(10))


def test_no_classes_for_shards_or_when_asked(tmp_path):
    common = ["sketch", "--dataset", "digits", "--no-progress"]
    assert main([*common, "--no-classes", "--out", str(tmp_path / "a.npz")]) == 0
    assert sk.Sketch.load_classes(tmp_path / "a.npz") is None
    assert (
        main([*common, "--shard", "1/2", "--batch-size", "500", "--out", str(tmp_path / "b.npz")])
        == 0
    )
    assert sk.Sketch.load_classes(tmp_path / "b.npz") is None
    with pytest.raises(ValueError, match="needs the sketches of the classes"):
        load_sketches([tmp_path / "a.npz"], conditional=True)
    whole, classes = load_sketches([tmp_path / "a.npz"])
    assert classes is None and whole.count == 1500


def test_a_private_labelled_sketch_is_the_sum_of_its_private_classes(tmp_path):
    out = tmp_path / "p.npz"
    argv = [
        "sketch",
        "--dataset",
        "digits",
        "--epsilon",
        "1",
        "--delta",
        "1e-5",
        "--bandwidth",
        "3",
    ]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    whole, classes = sk.Sketch.load(out), sk.Sketch.load_classes(out)
    assert whole.privacy is not None and all(c.privacy == whole.privacy for c in classes)
    assert whole.count == sum(c.count for c in classes)  # noisy counts, released once
    torch.testing.assert_close(sum(c.sum for c in classes), whole.sum, rtol=0, atol=1e-9)


def test_class_keys_are_checked_on_saving_and_reading(tmp_path, labelled_sketch):
    whole, classes = sk.Sketch.load(labelled_sketch), sk.Sketch.load_classes(labelled_sketch)
    with pytest.raises(ValueError, match="classes must add up to the sketch"):
        whole.save(tmp_path / "x.npz", classes=classes[:9])
    with pytest.raises(ValueError, match="classes must each have a distinct label"):
        whole.save(tmp_path / "x.npz", classes=[classes[0], *classes[:9]])
    with np.load(labelled_sketch) as npz:
        arrays = dict(npz)
    arrays["class_sums"] = arrays["class_sums"][:, :5]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(sk.SketchError, match="is corrupt: class_labels"):
        sk.Sketch.load_classes(tmp_path / "bad.npz")
    assert sk.Sketch.load(tmp_path / "bad.npz").count == 1500  # the whole still reads
    del arrays["class_counts"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(sk.SketchError, match="must hold all of .* or none"):
        sk.Sketch.load_classes(tmp_path / "partial.npz")


def test_fit_sketch_of_a_labelled_sketch_is_conditional_unless_asked(
    tmp_path, labelled_sketch, cache
):
    quick = [
        "--epochs",
        "1",
        "--latent-codes",
        "400",
        "--batch-size",
        "200",
        "--eval-points",
        "200",
    ]
    run = tmp_path / "c"
    assert (
        main(["fit-sketch", str(labelled_sketch), *quick, "--out", str(run), "--no-progress"]) == 0
    )
    resolved = json.loads((run / "config.json").read_text())["resolved"]
    assert resolved["classes"] == 10 and resolved["labels"] == list(range(10))
    assert "label_agreement" in json.loads((run / "summary.json").read_text())
    plain = tmp_path / "u"
    argv = ["fit-sketch", str(labelled_sketch), "--unconditional", *quick, "--out", str(plain)]
    assert main([*argv, "--no-progress"]) == 0
    assert json.loads((plain / "config.json").read_text())["resolved"]["classes"] == 0
    assert "label_agreement" not in json.loads((plain / "summary.json").read_text())


def test_the_config_checks_conditional():
    from distmatch.generation import GeneratorConfig

    with pytest.raises(ValueError, match="conditional must be None or False for objective 'mmd'"):
        GeneratorConfig(objective="mmd", dataset="spiral", conditional=True).validate()
    with pytest.raises(ValueError, match="conditional must be None, True or False; got 'yes'"):
        GeneratorConfig(sketch="s.npz", conditional="yes").validate()
