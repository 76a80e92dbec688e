"""`distmatch reproduce mow|clgn` and `distmatch report`: tables, figures, resume, bad input."""

import json

import pytest
from PIL import Image

from distmatch.cli import main
from distmatch.reproduce import MOW_PAPER, MOW_PROTOCOLS, mow_table, reproduce_clgn, selection_cost

MOW = ["reproduce", "mow", "--dataset", "digits", "--epochs", "1", "--eval-points", "200"]


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "mow"
    argv = [*MOW, "--models", "cwae,wae", "--k", "64,16", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    return out, argv


def test_mow_writes_table_figure_and_results(reproduction, capsys):
    out, _ = reproduction
    table = (out / "table.md").read_text()
    assert table.count("| CWAE |") == 2 and table.count("| WAE |") == 2
    assert "| CWAE | 64 | 0.01 |" in table and "| CWAE | 16 | 0.0075 |" in table  # nearest k's rate
    results = json.loads((out / "results.json").read_text())
    assert {(r["model"], r["k"]) for r in results["kept"]} == {
        ("cwae", 64),
        ("cwae", 16),
        ("wae", 64),
        ("wae", 16),
    }
    for run in results["kept"]:
        assert (out / f"{run['model']}-k{run['k']}" / "checkpoint.pt").is_file()
    width, height = Image.open(out / "figure.png").size
    assert height > width  # two models x three panels, two columns


def test_mow_rerun_reuses_finished_runs(reproduction, capsys):
    out, argv = reproduction
    checkpoint = out / "cwae-k64" / "checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    assert main(argv) == 0
    assert checkpoint.stat().st_mtime_ns == before


def test_mow_clears_a_run_killed_before_its_first_checkpoint(tmp_path, capsys):
    out = tmp_path / "mow"
    (out / "cwae-k64").mkdir(parents=True)
    (out / "cwae-k64" / "config.json").write_text("{}")
    argv = [*MOW, "--models", "cwae", "--k", "64", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert (out / "cwae-k64" / "checkpoint.pt").is_file()


def test_mow_refuses_a_foreign_folder(tmp_path, capsys):
    out = tmp_path / "mow"
    (out / "cwae-k64").mkdir(parents=True)
    (out / "cwae-k64" / "thesis.tex").write_text("keep me")
    argv = [*MOW, "--models", "cwae", "--k", "64", "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert (out / "cwae-k64" / "thesis.tex").read_text() == "keep me"


def test_mow_grid_keeps_the_run_of_least_cost(tmp_path, capsys):
    out = tmp_path / "grid"
    argv = [*MOW, "--models", "cwae", "--k", "64", "--lr-grid", "0.05,0.0001", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 2 and len(results["kept"]) == 1
    costs = {r["lr"]: selection_cost("cwae", r) for r in results["runs"]}
    assert results["kept"][0]["lr"] == min(costs, key=costs.get)
    assert (out / "cwae-k64-lr0.05").is_dir() and (out / "cwae-k64-lr0.0001").is_dir()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--models", "vae"], "--models must list wae, cwae or swae"),
        (["--k", "0"], "--k must list integers >= 1"),
        (["--k", "128"], "up to n = 64"),
        (["--lr-grid", "fast"], "--lr-grid must be comma-separated numbers"),
        (["--dataset", "imagenet"], "dataset must be one of"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--jobs", "0"], "--jobs must be >= 1"),
    ],
)
def test_mow_bad_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    argv = ["reproduce", "mow", "--out", str(tmp_path / "x"), "--no-progress", *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_mow_table_puts_the_paper_beside_ours():
    result = {
        "model": "cwae",
        "k": 1,
        "lr": 0.0025,
        "cw_distance": 0.05,
        "wae_distance": 0.02,
        "rec_error": 6.0,
        "steps_per_second": 100.0,
        "eval_points": 2000,
    }
    table = mow_table("mnist", [result], 5)
    paper = MOW_PAPER[("mnist", "cwae")][1]
    assert f"0.050 / {paper['cw_distance']:g}" in table
    assert f"6.000 / {paper['rec_error']:g}" in table and f"— / {paper['fid']:g}" in table
    assert "Paper: 500 epochs" in table


def test_protocol_rates_are_the_reference_code_s():
    assert MOW_PROTOCOLS["mnist"].learning_rate("swae", 32) == 0.001
    assert MOW_PROTOCOLS["cifar10"].learning_rate("wae", 64) == 0.0025
    assert MOW_PROTOCOLS["fashion_mnist"].optimizer == "adam"


def test_clgn_writes_sketch_run_and_summary_beside_the_reference(tmp_path):
    out = tmp_path / "clgn"
    small = {"points": 5000, "n_frequencies": 500, "latent_codes": 5000}
    result = reproduce_clgn("spiral", out, epochs=2, progress=False, **small)
    assert sorted(result["losses"]) == [1, 2] and result["reference"][25] == 0.0478
    summary = (out / "summary.md").read_text()
    assert "| sketch distance (MMD), reference |" in summary and "0.2691" in summary
    assert (out / "sketch.npz").is_file()
    assert (out / "run" / "figures" / "histograms.png").is_file()


def test_clgn_unknown_toy_is_one_line_error(tmp_path, capsys):
    assert main(["reproduce", "clgn", "--dataset", "moons", "--out", str(tmp_path / "c")]) == 2
    assert "dataset must be one of" in capsys.readouterr().err


def test_report_writes_one_page_per_run(reproduction, tmp_path, capsys):
    out, _ = reproduction
    runs = [str(out / "cwae-k64"), str(out / "wae-k16")]
    assert main(["report", *runs]) == 0
    for run in runs:
        page = (out / run / "report.html").read_text()
        assert "<html" in page and "data:image/png;base64," in page
    assert main(["report", *runs, "--out", str(tmp_path / "r.html")]) == 2
    assert main(["report", str(tmp_path)]) == 2


@pytest.mark.parametrize("signal_error", ["TrainingInterrupted", "KeyboardInterrupt"])
def test_an_interrupted_reproduction_exits_130_with_how_to_resume(
    tmp_path, capsys, monkeypatch, signal_error
):
    """Ctrl-C or SIGTERM in a run (its checkpoint written) or while waiting on worker processes:
    exit status 130 and one line saying how to resume, no traceback."""
    from distmatch.cli import _reproduce
    from distmatch.runs import TrainingInterrupted

    error = {
        "TrainingInterrupted": TrainingInterrupted("interrupted at step 7; checkpoint written"),
        "KeyboardInterrupt": KeyboardInterrupt(),
    }[signal_error]

    def interrupted(*args, **kwargs):
        raise error

    monkeypatch.setattr(_reproduce, "reproduce_clgn", interrupted)
    assert main(["reproduce", "clgn", "--out", str(tmp_path / "c"), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rerun the same command to resume" in err, err
