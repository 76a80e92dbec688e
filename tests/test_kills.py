"""Runs killed at their most fragile moment, right after ``config.json`` appears, resume.

A run exists once its first checkpoint does: a folder with ``config.json`` and no checkpoint starts
again from step 0, with ``--resume`` or without, and temporaries that a kill left are removed.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distmatch.cli import main

FAST_TRAIN = ["--steps", "30", "--log-every", "10", "--eval-points", "100", "--no-progress"]
FAST_FIT = [
    "--epochs",
    "1",
    "--latent-codes",
    "2000",
    "--batch-size",
    "500",
    "--eval-points",
    "100",
]


@pytest.fixture(scope="module")
def sketch_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sketch") / "spiral.npz"
    argv = ["sketch", "--dataset", "spiral", "--points", "3000", "--n-frequencies", "200"]
    assert main([*argv, "--out", str(path), "--no-progress"]) == 0
    return path


def commands(out: Path, sketch: Path) -> dict[str, list[str]]:
    return {
        "train": ["train", *FAST_TRAIN, "--out", str(out)],
        "fit-sketch": ["fit-sketch", str(sketch), *FAST_FIT, "--no-progress", "--out", str(out)],
        "fit-mmd": [
            "fit-mmd",
            "--dataset",
            "spiral",
            *FAST_FIT,
            "--no-progress",
            "--out",
            str(out),
        ],
    }


def kill_when_config_appears(argv: list[str], out: Path) -> None:
    """Starts ``distmatch argv`` and kills it (SIGKILL) as soon as ``out/config.json`` exists."""
    process = subprocess.Popen(
        [sys.executable, "-m", "distmatch", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while not (out / "config.json").exists():
            assert process.poll() is None, "the command ended before writing config.json"
            assert time.monotonic() < deadline, "config.json never appeared"
            time.sleep(0.0005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()


@pytest.mark.parametrize("command", ["train", "fit-sketch", "fit-mmd"])
@pytest.mark.parametrize("how", ["resume", "fresh"])
def test_a_start_killed_at_once_can_be_resumed_or_restarted(
    sketch_file, tmp_path, command, how, capsys
):
    out = tmp_path / "run"
    argv = commands(out, sketch_file)[command]
    kill_when_config_appears(argv, out)
    assert (out / "config.json").is_file()
    again = [*argv, "--resume"] if how == "resume" else argv
    if how == "fresh" and (out / "checkpoint.pt").exists():
        pytest.skip("the kill came after the first checkpoint: a fresh start is refused, rightly")
    assert main(again) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] > 0


@pytest.mark.parametrize("command", ["train", "fit-sketch", "fit-mmd"])
def test_a_folder_with_a_config_and_no_checkpoint_starts_from_step_zero(
    sketch_file, tmp_path, command, capsys
):
    """The same state made deterministic: the checkpoint of a finished run removed."""
    out = tmp_path / "run"
    argv = commands(out, sketch_file)[command]
    assert main(argv) == 0
    finished = json.loads((out / "summary.json").read_text())
    (out / "checkpoint.pt").unlink()
    (out / "summary.json").unlink()
    orphan = out / ".checkpoint.pt.x1y2z3.tmp.pt"
    orphan.write_bytes(b"half of a checkpoint")
    assert main([*argv, "--resume"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["step"] == finished["step"]
    assert not orphan.exists()
    for key in ("rec_error", "mmd"):
        if key in finished:
            assert again[key] == pytest.approx(finished[key], rel=1e-6)


def test_an_interrupt_is_reported_on_stderr_with_the_resume_command(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--steps", "200000", "--log-every", "50", "--no-progress", "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-m", "distmatch", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").stat().st_size:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "interrupted at step" in stderr and "distmatch train --resume --out" in stderr
    assert "interrupted" not in stdout
