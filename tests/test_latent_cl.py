"""`distmatch fit-latent-sketch`: latent codes sketched in one pass, a generator fitted to the sketch."""

import json

import pytest
import torch
from PIL import Image

from distmatch import sketch as sk
from distmatch.cli import main
from distmatch.data import load_split
from distmatch.evaluation import encode_all
from distmatch.training import load_autoencoder

QUICK = ["--steps", "100", "--log-every", "50", "--eval-points", "100", "--no-progress"]
FIT = ["--epochs", "1", "--latent-codes", "2000", "--n-frequencies", "200", "--no-progress"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    run = tmp_path_factory.mktemp("latent") / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    assert main(["fit-latent-sketch", str(run), *FIT]) == 0
    return run


def test_outputs_and_decoded_samples(fitted, capsys):
    folder = fitted / "latent"
    for name in ("sketch.npz", "test_codes.npy", "samples.png", "run/summary.json"):
        assert (folder / name).is_file(), name
    assert Image.open(folder / "samples.png").size[0] > 8 * 8
    summary = json.loads((folder / "run" / "summary.json").read_text())
    assert summary["epochs"] == 1


def test_the_one_pass_sketch_equals_the_sketch_of_all_codes(fitted):
    latent = sk.Sketch.load(fitted / "latent" / "sketch.npz")
    _, model = load_autoencoder(fitted)
    train = load_split("digits", "train")
    codes, _ = encode_all(model, train)
    direct = sk.Sketch(latent.features, scale=latent.scale).update(codes.double())
    assert latent.count == len(train)
    assert torch.allclose(latent.mean, direct.mean, atol=1e-6)


def test_rerun_reuses_the_finished_generator(fitted, capsys):
    checkpoint = fitted / "latent" / "run" / "checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    assert main(["fit-latent-sketch", str(fitted), *FIT]) == 0
    assert checkpoint.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--bandwidth", "-1"], "--bandwidth must be a number > 0"),
        (["--epochs", "0"], "--epochs must be >= 1"),
    ],
)
def test_bad_flags(fitted, capsys, flags, message):
    assert main(["fit-latent-sketch", str(fitted), *flags]) == 2
    assert message in capsys.readouterr().err


def test_not_a_run_folder(tmp_path, capsys):
    assert main(["fit-latent-sketch", str(tmp_path)]) == 2


def test_a_last_batch_of_one_code_is_refused_before_training(fitted, tmp_path, capsys):
    """1001 codes in batches of 1000 leave a last batch of 1, which the unbiased estimator cannot
    use (the loss was NaN, and the command ended in a traceback)."""
    argv = ["fit-latent-sketch", str(fitted), "--epochs", "1", "--latent-codes", "1001"]
    assert main([*argv, "--n-frequencies", "200", "--out", str(tmp_path / "l")]) == 2
    assert "(last batch 1)" in capsys.readouterr().err


@pytest.mark.parametrize(("error", "status"), [("interrupted", 130), ("diverged", 1)])
def test_an_interrupted_or_diverged_fit_is_one_line(fitted, monkeypatch, capsys, error, status):
    from distmatch.cli import _latent
    from distmatch.runs import NonFiniteLossError, TrainingInterrupted

    def fails(*args, **kwargs):
        if error == "interrupted":
            raise TrainingInterrupted("interrupted at step 3")
        raise NonFiniteLossError("the loss became NaN or infinite")

    monkeypatch.setattr(_latent, "fit_latent_sketch", fails)
    assert main(["fit-latent-sketch", str(fitted), "--no-progress"]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("distmatch fit-latent-sketch: "), err


def test_a_generator_run_is_not_an_autoencoder(tmp_path, capsys):
    argv = ["fit-mmd", "--dataset", "spiral", "--epochs", "1", "--latent-codes", "1000"]
    assert main([*argv, "--out", str(tmp_path / "g"), "--no-progress"]) == 0
    assert main(["fit-latent-sketch", str(tmp_path / "g"), "--no-progress"]) == 2
    assert "must be an autoencoder run (distmatch train); it is not" in capsys.readouterr().err


def test_the_output_folder_is_never_another_run(fitted, tmp_path, capsys):
    argv = ["fit-mmd", "--dataset", "spiral", "--epochs", "1", "--latent-codes", "1000"]
    assert main([*argv, "--out", str(tmp_path / "g"), "--no-progress"]) == 0
    before = sorted(p.name for p in (tmp_path / "g").iterdir())
    assert main(["fit-latent-sketch", str(fitted), "--out", str(tmp_path / "g")]) == 2
    assert "holds a run of its own (config.json)" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == before
