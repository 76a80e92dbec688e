"""Generators trained from a sketch alone (CL-GN) and with exact MMD; their CLI."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from distmatch import sketch as sk
from distmatch.cli import main
from distmatch.generation import GeneratorConfig, train_generator
from distmatch.runs import RunDir, RunError

SHORT = {"latent_codes": 4000, "batch_size": 500, "eval_points": 2000, "log_every": 4}


@pytest.fixture(scope="module")
def spiral_sketch(tmp_path_factory):
    path = tmp_path_factory.mktemp("sketch") / "spiral.npz"
    argv = ["sketch", "--dataset", "spiral", "--points", "20000", "--n-frequencies", "2000"]
    assert main([*argv, "--out", str(path), "--no-progress"]) == 0
    return path


def evals(run: RunDir) -> list[dict]:
    return [r for r in run.read_metrics() if r["kind"] == "eval"]


def test_a_short_training_from_the_sketch_lowers_held_out_mmd(spiral_sketch, tmp_path):
    config = GeneratorConfig(sketch=str(spiral_sketch), epochs=6, patience=10, lr=3e-3, **SHORT)
    summary = train_generator(config, tmp_path / "run", progress=False)
    rows = evals(RunDir(tmp_path / "run"))
    assert [r["epoch"] for r in rows] == list(range(7))  # before training, then every epoch
    # The held-out MMD falls at once; sliced W2 first rises as the points spread out (seen in
    # full runs), so it is not a criterion for a short one.
    assert rows[-1]["mmd"] < 0.3 * rows[0]["mmd"]
    first_loss = next(
        r["loss"] for r in RunDir(tmp_path / "run").read_metrics() if r["kind"] == "train"
    )
    assert summary["loss"] < 0.5 * first_loss
    assert {"log_likelihood", "mmd", "sliced_w2"} <= set(summary)


def test_exact_mmd_baseline_trains_on_the_toy(tmp_path):
    config = GeneratorConfig(
        objective="mmd", dataset="gmm", epochs=3, patience=10, lr=3e-3, **SHORT
    )
    train_generator(config, tmp_path / "run", progress=False)
    rows = evals(RunDir(tmp_path / "run"))
    assert rows[-1]["mmd"] < rows[0]["mmd"]


def test_early_stopping_ends_a_run_without_improvement(spiral_sketch, tmp_path):
    config = GeneratorConfig(
        sketch=str(spiral_sketch), epochs=20, patience=1, min_delta=10.0, **SHORT
    )
    summary = train_generator(config, tmp_path / "run", progress=False)
    assert summary["stopped_early"] and summary["epochs"] == 2
    # resumed as it is, it is finished: nothing changes; with more epochs, it trains on
    files = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert train_generator(config, tmp_path / "run", resume=True, progress=False) == summary
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == files
    more = dataclasses.replace(config, epochs=21)
    assert train_generator(more, tmp_path / "run", resume=True, progress=False)["epochs"] == 3


def test_resume_continues_exactly(spiral_sketch, tmp_path):
    """Extended twice (each resume changes the epochs): the run of one that never stopped."""
    base = {"sketch": str(spiral_sketch), "patience": 10, **SHORT}
    train_generator(GeneratorConfig(epochs=3, **base), tmp_path / "straight", progress=False)
    train_generator(GeneratorConfig(epochs=1, **base), tmp_path / "resumed", progress=False)
    for epochs in (2, 3):
        train_generator(
            GeneratorConfig(epochs=epochs, **base), tmp_path / "resumed", resume=True,
            progress=False,
        )  # fmt: skip
    a = torch.load(RunDir(tmp_path / "straight").checkpoint, weights_only=True)["generator"]
    b = torch.load(RunDir(tmp_path / "resumed").checkpoint, weights_only=True)["generator"]
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert (
        RunDir(tmp_path / "straight").read_metrics() == RunDir(tmp_path / "resumed").read_metrics()
    )


def test_samples_come_out_in_the_data_coordinates(spiral_sketch, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["fit-sketch", str(spiral_sketch), "--epochs", "2", "--latent-codes", "2000"]
    assert main([*argv, "--batch-size", "500", "--out", str(out), "--no-progress"]) == 0
    assert main(["sample", str(out), "--num", "3000", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (3000, 2)
    scale = json.loads((out / "config.json").read_text())["resolved"]["scale"]
    assert scale > 1.2  # the spiral reaches radius ~1.5: samples are mapped back by this factor
    assert main(["sample", str(out), "--num", "500", "--out", str(tmp_path / "s.png")]) == 0
    for name in ("histograms.png", "sketch_density.png", "curves.png"):
        assert (out / "figures" / name).is_file(), name


def test_sketch_info_and_merge_from_the_command_line(tmp_path, capsys):
    common = ["--dataset", "circle", "--points", "3000", "--n-frequencies", "500", "--no-progress"]
    for shard in ("1/2", "2/2"):
        out = str(tmp_path / f"part{shard[0]}.npz")
        assert main(["sketch", *common, "--shard", shard, "--batch-size", "500", "--out", out]) == 0
    parts = [str(tmp_path / "part1.npz"), str(tmp_path / "part2.npz")]
    assert main(["sketch", "merge", *parts, "--out", str(tmp_path / "c.npz")]) == 0
    capsys.readouterr()
    assert main(["sketch", "info", str(tmp_path / "c.npz"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["points"] == 3000 and info["frequencies"] == 500 and info["dimension"] == 2


def test_a_merge_never_counts_the_same_points_twice(tmp_path, capsys):
    common = ["--dataset", "circle", "--points", "3000", "--n-frequencies", "50", "--no-progress"]
    a, b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    assert main(["sketch", *common, "--out", a]) == 0
    assert main(["sketch", *common, "--shard", "1/2", "--batch-size", "500", "--out", b]) == 0
    capsys.readouterr()
    assert main(["sketch", "merge", a, a, "--out", str(tmp_path / "m.npz")]) == 2
    assert "is given twice" in capsys.readouterr().err
    assert main(["sketch", "merge", a, b, "--out", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert "must hold other data" in err and "rows 0..1499 of toy:circle" in err
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit-sketch", "missing.npz", "--out", "r"], "sketch file 'missing.npz' does not exist"),
        (["fit-mmd", "--dataset", "moons", "--out", "r"], "moons"),
        (["sketch", "--dataset", "spiral", "--out", "s.txt"], "--out must be a .npz file"),
        (
            ["sketch", "--dataset", "moons", "--out", "s.npz"],
            "--dataset must be a toy (circle, gmm, spiral), a data set",
        ),
        (
            ["sketch", "--dataset", "spiral", "--bandwidth", "wide", "--out", "s.npz"],
            "--bandwidth must be",
        ),
        (["sketch", "info", "nothing.npz"], "nothing.npz"),
        (
            ["sketch", "--dataset", "digits", "--points", "100", "--out", "s.npz"],
            "--points sets the draws of a toy; 'digits' is not one",
        ),
        (
            ["sketch", "--dataset", "spiral", "--points", "0", "--out", "s.npz"],
            "--points must be >= 1; got 0",
        ),
    ],
)
def test_bad_input_is_one_line_with_status_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [*argv, "--no-progress"]
            if argv[0] in ("sketch", "fit-sketch", "fit-mmd") and argv[1] != "info"
            else argv
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err, err


def test_an_existing_generator_run_is_not_overwritten(spiral_sketch, tmp_path):
    config = GeneratorConfig(sketch=str(spiral_sketch), epochs=1, **SHORT)
    train_generator(config, tmp_path / "run", progress=False)
    with pytest.raises(RunError, match="already holds a run"):
        train_generator(config, tmp_path / "run", progress=False)


@pytest.mark.parametrize("form", ["squared", "root"])
def test_rows_log_the_distance_in_both_units(spiral_sketch, tmp_path, form):
    config = GeneratorConfig(sketch=str(spiral_sketch), epochs=1, loss_form=form, **SHORT)
    train_generator(config, tmp_path / form, progress=False)
    rows = [r for r in RunDir(tmp_path / form).read_metrics() if r["kind"] in ("train", "epoch")]
    assert rows
    for row in rows:
        trained = row["distance_squared"] if form == "squared" else row["distance"]
        assert row["loss"] == pytest.approx(trained, rel=1e-9)
        # mean of roots <= root of the mean (Jensen), equal only for a constant loss
        assert row["distance"] <= math.sqrt(row["distance_squared"]) * (1 + 1e-9)


def test_fit_sketch_deterministic_is_saved_and_resumable(
    spiral_sketch, tmp_path, capsys, modes_seen
):
    """The mode holds while the generator trains (seen by its loop), not after; a resumed run
    may switch it."""
    from distmatch.generation import _loop

    seen = modes_seen(_loop)
    out = tmp_path / "run"
    argv = ["fit-sketch", str(spiral_sketch), "--latent-codes", "2000", "--batch-size", "500"]
    argv += ["--epochs", "1", "--deterministic", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert json.loads((out / "config.json").read_text())["config"]["deterministic"] is True
    assert seen == [True] and not torch.are_deterministic_algorithms_enabled()
    resume = ["fit-sketch", "--resume", "--epochs", "2", "--out", str(out), "--no-progress"]
    assert main([*resume, "--no-deterministic"]) == 0  # a resumed run may change it
    assert seen == [True, False]
    with pytest.raises(TypeError, match="deterministic must be True or False; got 1"):
        GeneratorConfig(sketch="s.npz", deterministic=1).validate()


def test_fit_mmd_refuses_to_resume_a_fit_sketch_run(spiral_sketch, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["fit-sketch", str(spiral_sketch), "--latent-codes", "2000", "--batch-size", "500"]
    assert main([*argv, "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["fit-mmd", "--resume", "--epochs", "2", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "it is a run of distmatch fit-sketch" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["fit-mmd", "--dataset", "spiral", "--batch-size", "1"],
            "batch_size must give every batch at least 2 samples for the MMD",
        ),
        (  # 4001 codes in batches of 500: a last batch of 1
            ["fit-mmd", "--dataset", "spiral", "--latent-codes", "4001", "--batch-size", "500"],
            "got 500 (last batch 1)",
        ),
        (
            ["fit-mmd", "--dataset", "spiral", "--latent-codes", "-1"],
            "--latent-codes must be >= 0 (0: fresh codes each step); got -1",
        ),
        (
            ["fit-mmd", "--dataset", "spiral", "--eval-points", "1"],
            "eval_points must be >= 2 (points per distance estimate); got 1",
        ),
        (
            ["fit-mmd", "--dataset", "points.npy", "--law", "folded_gaussian"],
            "law 'folded_gaussian' has a closed-form kernel in 2-D only; got D = 5",
        ),
    ],
)
def test_generator_runs_refuse_what_they_cannot_train_before_training(
    argv, message, tmp_path, monkeypatch, capsys
):
    """Batches too small for the estimate (a NaN loss, or a failure at the first step, left a
    checkpoint that no resume could get past) and a kernel that does not exist in D dimensions."""
    monkeypatch.chdir(tmp_path)
    np.save("points.npy", np.random.default_rng(0).normal(size=(500, 5)).astype(np.float32))
    assert main([*argv, "--epochs", "1", "--out", "r", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_an_unbiased_sketch_fit_needs_batches_of_two(spiral_sketch, tmp_path, capsys):
    argv = ["fit-sketch", str(spiral_sketch), "--estimator", "unbiased", "--batch-size", "1"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "at least 2 samples for the unbiased estimator" in capsys.readouterr().err
    config = GeneratorConfig(sketch=str(spiral_sketch), epochs=1, estimator="biased", **SHORT)
    config = dataclasses.replace(config, batch_size=1, latent_codes=3)
    assert train_generator(config, tmp_path / "biased", progress=False)["epochs"] == 1


def test_fit_mmd_on_vectors_of_any_dimension_takes_the_gaussian_kernel(tmp_path, capsys):
    data = tmp_path / "points.npy"
    np.save(data, np.random.default_rng(0).normal(size=(600, 5)).astype(np.float32))
    argv = ["fit-mmd", "--dataset", str(data), "--epochs", "1", "--latent-codes", "1000"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["step"] == 1 and math.isfinite(summary["mmd"]) and math.isfinite(summary["loss"])
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (record["config"]["law"], record["resolved"]["law"]) == (None, "gaussian")


def test_resuming_with_fewer_epochs_than_done_says_so_and_changes_nothing(tmp_path, caplog):
    out = tmp_path / "run"
    argv = ["fit-mmd", "--dataset", "spiral", "--latent-codes", "1000", "--batch-size", "250"]
    assert main([*argv, "--epochs", "2", "--out", str(out), "--no-progress"]) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["fit-mmd", "--resume", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    assert "the run is at step 8 (2 full epochs), past the 1 epochs asked for" in caplog.text
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files


def test_sketch_of_a_file_that_is_no_npy_array_is_one_line(tmp_path, capsys):
    (tmp_path / "text.npy").write_text("not an array")
    argv = ["sketch", "--dataset", str(tmp_path / "text.npy"), "--out", str(tmp_path / "s.npz")]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be a .npy file; got a file without the .npy header" in err


def test_evaluate_scores_a_vector_generator_run_as_its_training_did(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["fit-mmd", "--dataset", "spiral", "--epochs", "2", "--latent-codes", "2000"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    trained = json.loads((out / "summary.json").read_text())
    assert main(["evaluate", str(out), "--points", "2000"]) == 0
    scored = json.loads((out / "eval.json").read_text())
    assert scored["points"] == 2000
    for name in ("mmd", "sliced_w2", "log_likelihood"):  # other draws of the same estimates
        assert math.isfinite(scored[name]), name
        assert abs(scored[name] - trained[name]) < 0.15 * abs(trained[name]), name


def test_fit_mmd_takes_an_automatic_bandwidth(tmp_path, capsys):
    argv = ["fit-mmd", "--dataset", "spiral", "--epochs", "1", "--latent-codes", "1000"]
    assert main([*argv, "--bandwidth", "auto", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert main([*argv, "--out", str(tmp_path / "d"), "--no-progress"]) == 0
    auto, default = (json.loads((tmp_path / r / "config.json").read_text()) for r in ("a", "d"))
    assert auto["config"]["bandwidth"] == "auto"
    assert default["resolved"]["bandwidth"] == pytest.approx(1e-3**0.5)  # CL-GN's, for vectors
    assert 0.05 < auto["resolved"]["bandwidth"] < 5.0  # the median distance of unit-ball data


def test_a_vector_file_is_sketched_and_scored_on_its_own_splits(tmp_path, capsys):
    """The sketch holds the training split (the first nine tenths, or the whole file when a
    NAME_test.npy holds the test split), and the generator's held-out metrics read the test split
    (they read the training split)."""
    from distmatch.generation import HeldOut

    rows = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    np.save(tmp_path / "v.npy", rows)
    argv = ["sketch", "--dataset", str(tmp_path / "v.npy"), "--n-frequencies", "50"]
    assert main([*argv, "--out", str(tmp_path / "s.npz"), "--no-progress"]) == 0
    sketch = sk.Sketch.load(tmp_path / "s.npz")
    assert sketch.count == 900 and sketch.source == str((tmp_path / "v.npy").resolve())
    fit = ["fit-sketch", str(tmp_path / "s.npz"), "--epochs", "1", "--latent-codes", "500"]
    assert main([*fit, "--out", str(tmp_path / "g"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert math.isfinite(summary["mmd"]) and math.isfinite(summary["sliced_w2"])  # evaluated
    heldout = HeldOut(str(tmp_path / "v.npy"), None, (3,), torch.zeros(3), 2.0, 50, 0, "sketch")
    torch.testing.assert_close(heldout.points, torch.from_numpy(rows[900:]) / 2.0)
    np.save(tmp_path / "v_test.npy", rows[:10])
    assert main([*argv, "--out", str(tmp_path / "all.npz"), "--no-progress"]) == 0
    assert sk.Sketch.load(tmp_path / "all.npz").count == 1000


def test_held_out_data_is_checked_before_training_and_eval_data_is_read_whole(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "small.npy", rng.normal(size=(15, 2)).astype(np.float32))
    argv = ["fit-mmd", "--dataset", str(tmp_path / "small.npy"), "--latent-codes", "40"]
    argv += ["--batch-size", "20", "--epochs", "1", "--eval-points", "20", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2  # a test split of one row
    assert "must hold at least 2 points for the evaluation; got 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    np.save(tmp_path / "held.npy", rng.normal(size=(300, 2)).astype(np.float32))
    argv = ["fit-mmd", "--dataset", "spiral", "--eval-data", str(tmp_path / "held.npy")]
    argv += ["--latent-codes", "1000", "--epochs", "1", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "e")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "e"), "--points", "500"]) == 0
    assert json.loads((tmp_path / "e" / "eval.json").read_text())["held_out"] == 300  # all rows
    assert main(["evaluate", str(tmp_path / "e"), "--fid"]) == 2
    assert "--fid is for image runs" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [-1, 2**32, True])
def test_a_seed_outside_0_to_2_32_is_refused_before_anything_is_written(seed, tmp_path):
    """Seeds are combined with step and epoch counters in int64: a larger one overflowed mid-run
    and left a run folder that no resume could get past; a negative one slipped through. A run
    configuration keeps taking negative seeds (runs trained with one before still resume)."""
    from distmatch.reproduce import reproduce_clgn

    error = TypeError if seed is True else ValueError
    if seed == -1:
        assert GeneratorConfig(objective="mmd", dataset="spiral", seed=-1).validate().seed == -1
    else:
        with pytest.raises(error, match=r"seed must be an int in \(-2\^32, 2\^32\)"):
            GeneratorConfig(objective="mmd", dataset="spiral", seed=seed).validate()
    with pytest.raises(error, match=r"seed must be an int in \[0, 2\^32\)"):
        reproduce_clgn("spiral", tmp_path / "clgn", seed=seed)
    assert not (tmp_path / "clgn").exists()


def test_numpy_seeds_are_plain_ints_once_validated():
    config = GeneratorConfig(objective="mmd", dataset="spiral", seed=np.int64(3)).validate()
    assert type(config.seed) is int and config.seed == 3


def test_a_sketch_whose_data_file_is_not_here_trains_without_held_out_metrics(tmp_path, caplog):
    """fit-sketch reads the sketch alone: the .npy file a sketch names may be on another machine
    (then no held-out metrics, with a warning); a private sketch names no path at all."""
    data = tmp_path / "v.npy"
    np.save(data, np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32))
    argv = ["sketch", "--dataset", str(data), "--n-frequencies", "50", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "s.npz")]) == 0
    private = [*argv, "--epsilon", "1", "--bandwidth", "0.5", "--scale", "10"]
    assert main([*private, "--out", str(tmp_path / "p.npz")]) == 0
    p = sk.Sketch.load(tmp_path / "p.npz")
    assert p.source is None and p.data_dir is None
    data.rename(tmp_path / "moved.npy")
    fit = ["fit-sketch", str(tmp_path / "s.npz"), "--epochs", "1", "--latent-codes", "500"]
    assert main([*fit, "--out", str(tmp_path / "g"), "--no-progress"]) == 0
    assert "is not here: no held-out metrics" in caplog.text
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert "mmd" not in summary and summary["epochs"] == 1


def test_a_run_trained_with_a_negative_seed_still_resumes(tmp_path):
    """Negative seeds were taken before seeds were checked; the CLI refuses new ones."""
    config = GeneratorConfig(objective="mmd", dataset="spiral", seed=-1, epochs=1, **SHORT)
    train_generator(config, tmp_path / "r", progress=False)
    argv = ["fit-mmd", "--resume", "--epochs", "2", "--out", str(tmp_path / "r"), "--no-progress"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["epochs"] == 2
