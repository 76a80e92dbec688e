"""`distmatch train`, `evaluate` and `sample` from the command line."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from distmatch.cli import main

QUICK = ["--steps", "120", "--log-every", "20", "--eval-points", "200", "--no-progress"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    return out


def test_smoke_run_on_digits_writes_the_run_folder(digits_run, capsys):
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoint.pt"):
        assert (digits_run / name).is_file(), name
    for name in ("samples", "reconstructions", "interpolations", "curves"):
        assert (digits_run / "figures" / f"{name}.png").is_file(), name
    config = json.loads((digits_run / "config.json").read_text())["config"]
    assert (config["model"], config["n"], config["k"], config["dataset"]) == (
        "cwae",
        64,
        1,
        "digits",
    )


def test_evaluate_writes_eval_json(digits_run, capsys):
    assert main(["evaluate", str(digits_run), "--points", "200", "--device", "cpu"]) == 0
    result = json.loads((digits_run / "eval.json").read_text())
    assert {"rec_error", "wae_distance", "cw_distance"} <= set(result)
    assert result["rec_error"] > 0


def test_sample_writes_a_png_grid_and_a_npy_array(digits_run, tmp_path, capsys):
    assert main(["sample", str(digits_run), "--num", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] > 4 * 8
    assert main(["sample", str(digits_run), "--num", "5", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (5, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1


def test_vector_data_samples_as_npy(tmp_path, capsys):
    data = tmp_path / "points.npy"
    np.save(data, np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32))
    out = tmp_path / "run"
    assert (
        main(["train", "--dataset", str(data), "--model", "swae", *QUICK, "--out", str(out)]) == 0
    )
    assert main(["sample", str(out), "--num", "7", "--out", str(tmp_path / "v.npy")]) == 0
    assert np.load(tmp_path / "v.npy").shape == (7, 5)
    assert main(["sample", str(out), "--out", str(tmp_path / "v.png")]) == 2
    assert "this run's samples are vectors" in capsys.readouterr().err


def test_resume_from_the_command_line_extends_the_run(tmp_path, capsys, modes_seen):
    """Extended twice, with a plain resume in between: each resume keeps the last extension
    (config.json is written again with it) and the next one may change it again, here also to
    deterministic algorithms (on while the run trains, seen by its loop)."""
    from distmatch.training import _loop

    seen = modes_seen(_loop)
    out = tmp_path / "run"
    assert main(["train", "--model", "wae", *QUICK, "--out", str(out)]) == 0
    assert main(["train", "--resume", "--out", str(out), "--steps", "150", "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["step"] == 150
    assert json.loads((out / "config.json").read_text())["config"]["steps"] == 150
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0  # nothing to do
    assert json.loads((out / "summary.json").read_text())["step"] == 150
    resume = ["train", "--resume", "--out", str(out), "--steps", "170", "--no-progress"]
    assert main([*resume, "--deterministic", "--device", "cpu"]) == 0
    assert json.loads((out / "summary.json").read_text())["step"] == 170
    saved = json.loads((out / "config.json").read_text())["config"]
    assert (saved["steps"], saved["deterministic"], saved["device"]) == (170, True, "cpu")
    assert seen == [False, False, False, True] and not torch.are_deterministic_algorithms_enabled()
    assert json.loads((out / "config.json").read_text())["resolved"]["total_steps"] == 170
    # a resume killed after rewriting config.json, before its next checkpoint: they differ in a
    # resumable field only, and the run still resumes
    record = json.loads((out / "config.json").read_text())
    record["config"]["steps"] = 180
    (out / "config.json").write_text(json.dumps(record))
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["step"] == 180


def test_default_out_folder_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--steps", "5", "--no-progress"]) == 0
    assert main(["train", "--steps", "5", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "cwae-digits-n64-k1",
        "cwae-digits-n64-k1-2",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--k", "65"], "k must be between 1 and n=64; got k=65"),
        (["train", "--dataset", "imagenet"], "imagenet"),
        (["train", "--dataset", "mnist"], "mnist needs --data-dir"),
        (["train", "--dataset", "mnist", "--data-dir", "/nonexistent"], "/nonexistent"),
        (["train", "--eval-points", "1"], "eval_points must be >= 2 (codes per distance"),
        (
            ["train", "--model", "skwae", "--memory", "sketch", "--window-init", "fill"],
            "--window-init applies to a window of codes; --memory sketch keeps none",
        ),
        (
            ["train", "--model", "skwae", "--memory", "sketch", "--refresh", "reencode"],
            "refresh 'reencode' encodes a window's codes again; memory 'sketch' keeps no codes",
        ),
        (
            ["train", "--model", "wae", "--sketch-frequencies", "100"],
            "--sketch-frequencies applies to --model skwae; got --model wae",
        ),
        (["train", "--resume"], "--resume needs --out"),
        (["train", "--resume", "--out", "nowhere"], "must be a run folder holding config.json"),
        (["evaluate", "nowhere"], "must be a run folder holding config.json"),
        (["sample", "nowhere", "--out", "x.gif"], "--out must end in .png or .npy"),
        (["sample", "nowhere", "--out", "x.png", "--num", "0"], "--num must be >= 1"),
    ],
)
def test_bad_input_is_one_line_with_status_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--no-progress"] if argv[0] == "train" else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.search(re.escape(message), err), err


def test_an_existing_run_is_not_touched_without_resume(digits_run, capsys):
    before = (digits_run / "checkpoint.pt").read_bytes()
    assert main(["train", *QUICK, "--out", str(digits_run)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (digits_run / "checkpoint.pt").read_bytes() == before


def test_train_help_lists_the_issue_flags(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--model",
        "--dataset",
        "--data-dir",
        "--arch",
        "--latent-dim",
        "--n",
        "--k",
        "--optimizer",
        "--lr",
        "--epochs",
        "--steps",
        "--seed",
        "--eval-every",
        "--out",
        "--resume",
        "--device",
    ):
        assert flag in out, flag


def test_rows_written_after_the_checkpoint_are_dropped_on_resume(tmp_path, capsys):
    """A resume killed after writing rows but before its next checkpoint (here: an evaluation
    row of the checkpoint's own step, as after a Ctrl-C on an epoch's last step) leaves them in
    metrics.jsonl; the next resume keeps only the rows the checkpoint had seen."""
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert main(["train", *QUICK[2:], "--steps", "40", "--out", str(straight)]) == 0
    assert main(["train", *QUICK[2:], "--steps", "20", "--out", str(run)]) == 0
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"kind": "eval", "step": 20, "epoch": 0, "rec_error": 1.0}) + "\n")
        f.write('{"kind": "train", "step": 2')  # a row cut short by the kill
    assert main(["train", "--resume", "--steps", "40", "--out", str(run), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    # the straight run's rows, and the first run's own final evaluation at its end (step 20)
    keys = [(r["kind"], r["step"]) for r in expected]
    keys.insert(keys.index(("train", 20)) + 1, ("eval", 20))
    assert [(r["kind"], r["step"]) for r in rows] == keys


def test_a_resume_that_fails_before_its_first_checkpoint_leaves_config_json(
    tmp_path, capsys, monkeypatch
):
    from distmatch.training import CompileUnavailable, _loop

    out = tmp_path / "run"
    assert main(["train", *QUICK[2:], "--steps", "20", "--out", str(out)]) == 0
    before = (out / "config.json").read_bytes()

    def no_compiler(*args):
        raise CompileUnavailable("--compile needs torch.compile to work here; it failed")

    monkeypatch.setattr(_loop, "_step_forward", no_compiler)
    resume = ["train", "--resume", "--steps", "40", "--compile", "--out", str(out)]
    assert main([*resume, "--no-progress"]) == 2
    assert "--compile needs" in capsys.readouterr().err
    assert (out / "config.json").read_bytes() == before


def test_resuming_with_fewer_steps_than_done_says_so_and_changes_nothing(tmp_path, caplog):
    out = tmp_path / "run"
    assert main(["train", *QUICK[2:], "--steps", "30", "--out", str(out)]) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["train", "--resume", "--steps", "20", "--out", str(out), "--no-progress"]) == 0
    assert "the run is at step 30, past the 20 steps asked for" in caplog.text
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files


def test_resuming_a_run_of_steps_with_epochs_counts_epochs(tmp_path, capsys):
    data = tmp_path / "points.npy"
    np.save(data, np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32))
    out = tmp_path / "run"
    start = ["train", "--dataset", str(data), "--n", "8", "--eval-points", "20", "--no-progress"]
    assert main([*start, "--steps", "10", "--log-every", "5", "--out", str(out)]) == 0
    per_epoch = json.loads((out / "config.json").read_text())["resolved"]["steps_per_epoch"]
    assert per_epoch > 10
    resume = ["train", "--resume", "--epochs", "2", "--eval-points", "30", "--no-progress"]
    assert main([*resume, "--out", str(out)]) == 0  # the evaluation's size may change too
    assert json.loads((out / "summary.json").read_text())["step"] == 2 * per_epoch
    saved = json.loads((out / "config.json").read_text())["config"]
    assert (saved["steps"], saved["epochs"], saved["eval_points"]) == (None, 2, 30)


def test_config_json_records_the_rate_the_optimizer_steps_with(tmp_path):
    """--lr is the rate of classical training; --lr-rule auto scales it to k < n (SGD: k/n), and
    the rate actually used is recorded beside it."""
    argv = ["train", "--steps", "3", "--eval-points", "100", "--no-progress", "--optimizer", "sgd"]
    assert main([*argv, "--lr", "0.16", "--out", str(tmp_path / "auto")]) == 0
    record = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert record["config"]["lr"] == 0.16 and record["resolved"]["lr"] == pytest.approx(0.0025)
    assert main([*argv, "--lr", "0.16", "--lr-rule", "none", "--out", str(tmp_path / "none")]) == 0
    assert json.loads((tmp_path / "none" / "config.json").read_text())["resolved"]["lr"] == 0.16
