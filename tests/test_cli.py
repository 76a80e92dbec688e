import json
import subprocess
import sys

import numpy as np
import pytest

import distmatch
from distmatch.cli import main


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "distances" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"distmatch {distmatch.__version__}"


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "distmatch", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"distmatch {distmatch.__version__}"


def test_demo_prints_growing_distances_and_writes_a_figure(tmp_path, capsys):
    figure = tmp_path / "demo.png"
    assert main(["distances", "--json", "--num", "100", "--figure", str(figure)]) == 0
    rows = json.loads(capsys.readouterr().out.split("figure written")[0])
    assert rows[0]["shift"] == 0.0
    assert rows[-1]["cramer_wold"] > 3 * rows[0]["cramer_wold"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.normal(size=(50, 2, 2)).astype(np.float32))
    np.save(tmp_path / "b.npy", rng.normal(size=(50, 4)))
    assert main(["distances", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"mmd", "cramer_wold", "sliced_wasserstein"}
    np.save(tmp_path / "c.npy", rng.normal(size=(40, 4)))
    assert main(["distances", str(tmp_path / "a.npy"), str(tmp_path / "c.npy"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sliced_wasserstein"] is None  # unequal sizes: skipped, and said why
    assert result["skipped"] == {"sliced_wasserstein": "samples differ in size"}


def test_one_file_adds_normality(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).normal(size=(30, 3)))
    assert main(["distances", str(tmp_path / "a.npy"), "--distance", "mmd"]) == 0
    out = capsys.readouterr().out
    assert "mmd" in out and "cramer_wold_normality" in out


@pytest.mark.parametrize(
    ("make", "argv", "message"),
    [
        (None, ["missing.npy"], "sample file 'missing.npy' does not exist"),
        (("x.txt", None), ["x.txt"], "sample files must be .npy arrays"),
        (("v.npy", np.zeros(5)), ["v.npy"], r"must hold an array of shape \(N, D\)"),
        (("o.npy", np.array([{}], dtype=object)), ["o.npy"], "must be a .npy array of numbers"),
        (("t.npy", None), ["t.npy"], "must be a .npy file; got a file without the .npy header"),
        (("n.npy", np.full((4, 2), np.nan)), ["n.npy"], "must contain only finite values"),
        (("a.npy", np.zeros((4, 2))), ["a.npy", "a.npy", "a.npy"], "at most two files"),
        (("a.npy", np.zeros((4, 2))), ["a.npy", "--bandwidth", "-1"], "bandwidth must be"),
        (
            ("a.npy", np.zeros((4, 2))),
            ["a.npy", "--figure", "f.png"],
            "--figure draws the demo's curves; it takes no sample files",
        ),
        (None, ["--device", "foo"], "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'foo'"),
        (None, ["--device", "cuda"], "device must be available; got 'cuda'"),
    ],
)
def test_bad_input_is_one_line_with_status_2(tmp_path, monkeypatch, capsys, make, argv, message):
    monkeypatch.chdir(tmp_path)
    if make is not None:
        name, array = make
        if array is None:
            (tmp_path / name).write_text("hello")
        else:
            np.save(tmp_path / name, array, allow_pickle=True)
    assert main(["distances", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("distmatch distances: error: ")
    assert pytest.importorskip("re").search(message, err)


def test_sliced_on_unequal_sizes_is_a_usage_error(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.zeros((4, 2)))
    np.save(tmp_path / "b.npy", np.ones((5, 2)))
    argv = ["distances", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    assert main([*argv, "--distance", "sliced_wasserstein"]) == 2
    assert "equal size" in capsys.readouterr().err
    assert main(argv) == 0  # all distances: the sliced one is reported as skipped
    assert "skipped" in capsys.readouterr().out


def _choices_by_flag() -> dict[tuple[str, str], tuple]:
    """``(command, flag) -> choices`` of every flag that lists them, nested commands included."""
    from distmatch.cli import build_parser

    found = {}

    def walk(parser, command: str) -> None:
        for action in parser._actions:
            if isinstance(action.choices, dict):  # subcommands
                for name, sub in action.choices.items():
                    walk(sub, f"{command} {name}".strip())
            elif action.choices is not None:
                flag = action.option_strings[0] if action.option_strings else action.dest
                found[(command, flag)] = tuple(action.choices)

    walk(build_parser(), "")
    return found


def test_the_choices_of_every_flag_are_read_from_their_registries():
    from distmatch import (
        distances,
        generation,
        objectives,
        sketch,
        training,
        window,
    )

    expected = {
        ("train", "--model"): objectives.LATENT_DISTANCES,
        ("train", "--reconstruction"): objectives.RECONSTRUCTIONS,
        ("train", "--window-init"): window.INITS,
        ("train", "--refresh"): window.REFRESHES,
        ("train", "--memory"): training.MEMORIES,
        ("train", "--optimizer"): training.OPTIMIZERS,
        ("train", "--window-gradient"): training.WINDOW_GRADIENTS,
        ("train", "--lr-rule"): training.LR_RULES,
        ("train", "--refresh-from"): training.REFRESH_SOURCES,
        ("sketch", "--law"): sketch.LAWS,
        ("sketch", "--mechanism"): sketch.MECHANISMS,
        ("fit-sketch", "--estimator"): generation.ESTIMATORS,
        ("fit-mmd", "--estimator"): generation.ESTIMATORS,
        ("fit-sketch", "--loss"): generation.LOSS_FORMS,
        ("fit-mmd", "--loss"): generation.LOSS_FORMS,
        ("fit-mmd", "--kernel"): generation.MMD_KERNELS,
        ("fit-mmd", "--law"): generation.MMD_LAWS,
        ("distances", "--distance"): distances.DISTANCES,
        ("distances", "--kernel"): distances.KERNELS,
        ("distances", "--estimator"): distances.ESTIMATORS,
    }
    found = _choices_by_flag()
    assert set(found) == set(expected), "a flag with choices has no registry here"
    for key, registry in expected.items():
        assert sorted(found[key]) == sorted(registry), key


def test_sketch_actions_follow_global_flags(tmp_path, capsys):
    argv = ["sketch", "--dataset", "circle", "--points", "100", "--n-frequencies", "10"]
    assert main([*argv, "--out", str(tmp_path / "s.npz"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["-v", "sketch", "info", str(tmp_path / "s.npz"), "--json"]) == 0
    assert '"points": 100' in capsys.readouterr().out
