"""Run folders and sketch files written by earlier versions still load, evaluate, sample and resume.

``tests/fixtures`` holds files made by distmatch 0.1.0: ``mow-digits`` (CWAE, n = 64, k = 1, 30
steps on the 8x8 digits), ``spiral-m100.npz`` (the spiral toy, m = 100) and ``gen-spiral`` (a CL-GN
generator fitted to that sketch for one epoch). They are copied before use, never changed.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distmatch import sketch
from distmatch.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures(tmp_path, monkeypatch):
    folder = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, folder)
    monkeypatch.chdir(folder)  # the generator run names its sketch relative to this folder
    return folder


def test_an_old_mow_run_evaluates_samples_and_resumes(fixtures, capsys):
    run = fixtures / "mow-digits"
    assert main(["evaluate", str(run), "--points", "100", "--device", "cpu"]) == 0
    assert json.loads((run / "eval.json").read_text())["rec_error"] > 0
    assert main(["sample", str(run), "--num", "9", "--out", str(fixtures / "s.png")]) == 0
    assert Image.open(fixtures / "s.png").size[0] > 3 * 8
    args = ["train", "--resume", "--out", str(run), "--steps", "40", "--no-progress"]
    assert main(args) == 0
    assert json.loads((run / "summary.json").read_text())["step"] == 40


def test_an_old_sketch_file_loads_and_trains_a_generator(fixtures, capsys):
    loaded = sketch.Sketch.load(fixtures / "spiral-m100.npz")
    assert loaded.count == 2000 and loaded.mean.shape == (200,)
    out = fixtures / "new-gen"
    args = ["fit-sketch", "spiral-m100.npz", "--epochs", "1", "--latent-codes", "500"]
    assert main([*args, "--batch-size", "250", "--eval-points", "100", "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1


def test_an_old_generator_run_samples_and_resumes(fixtures, capsys):
    run = fixtures / "gen-spiral"
    assert main(["sample", str(run), "--num", "50", "--out", str(fixtures / "g.npy")]) == 0
    assert np.load(fixtures / "g.npy").shape == (50, 2)
    args = ["fit-sketch", "--resume", "--out", str(run), "--epochs", "2", "--no-progress"]
    assert main(args) == 0  # the sketch and every other setting come from the run
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2
