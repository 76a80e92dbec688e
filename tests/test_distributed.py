"""Scale-out: two gloo ranks (launched once by torchrun) against one process.

The module fixture runs ``_dist_worker.py`` on two ranks; each test compares what the ranks saw
with each other or with the same computation in this process.
"""

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from _dist_worker import (
    GENERATOR_RUN,
    RUNS,
    SKETCH_CLI,
    STEPS,
    autoencoder_problem,
    generator_problem,
    run_config,
    sketch_problem,
    write_small_data,
)
from distmatch import cli, distributed
from distmatch import sketch as sk
from distmatch.generation import GeneratorConfig, train_generator
from distmatch.generation._state import GeneratorRun
from distmatch.objectives import AutoencoderObjective, cwae_term
from distmatch.training import _state as plots  # figures are drawn from there
from distmatch.training import train

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="needs torch.distributed with the gloo backend",
)

WORKER = Path(__file__).with_name("_dist_worker.py")


@pytest.fixture(autouse=True)
def without_figures(monkeypatch):
    """Figures are not compared here; drawing them would take most of the time."""
    for name in ("save_autoencoder_figures", "save_training_curves"):
        monkeypatch.setattr(plots, name, lambda *args, **kwargs: None)
    monkeypatch.setattr(GeneratorRun, "evaluate", lambda self, **kwargs: {})


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("ranks")
    write_small_data(folder)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    command += ["2", str(WORKER), str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=folder)
    if done.returncode != 0:
        pytest.fail(f"the 2-rank worker failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return folder, [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def checkpoint(folder: Path) -> dict:
    return torch.load(folder / "checkpoint.pt", weights_only=True)


def assert_same_params(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


# --- one process: the helpers are the identity ---------------------------------------------------


def test_every_helper_is_the_identity_in_one_process():
    assert distributed.world() == distributed.World(0, 1, 0) and distributed.is_main()
    x = torch.randn(5, 3, requires_grad=True)
    assert distributed.all_gather_rows(x) is x and distributed.all_reduce_sum(x) is x
    part, sizes = distributed.split_batch(torch.arange(7))
    assert part.tolist() == list(range(7)) and sizes == (7,)
    assert distributed.average_gradients([x], (True, False)) == (True, False)
    assert distributed.on_main(lambda a: a + 1, 1) == 2
    distributed.check_divisible(3, "k")
    distributed.barrier()


@pytest.mark.parametrize("rows, batch_size, count", [(1003, 100, 2), (20000, 3000, 3), (5, 10, 4)])
def test_shards_are_contiguous_runs_of_whole_chunks_covering_every_row(rows, batch_size, count):
    shards = [distributed.shard_rows(rows, batch_size, i, count) for i in range(count)]
    assert shards[0].start == 0 and shards[-1].stop == rows
    for before, after in itertools.pairwise(shards):
        assert before.stop == after.start
        assert before.stop == rows or before.stop % batch_size == 0


# --- gradients: two ranks against one process ----------------------------------------------------


def test_distance_gradient_of_gathered_codes_equals_the_one_process_gradient(ranks):
    model, x, window = autoencoder_problem(6)
    cwae_term(window.join(model.encode(x)), None).backward()
    for rank in ranks[1]:
        seen = rank["distance_gradients"]["distance"]
        for got, want in zip(seen, model.encoder.parameters(), strict=True):
            torch.testing.assert_close(got, want.grad, rtol=1e-10, atol=1e-13)


def test_global_cost_and_its_gradient_equal_the_one_process_ones_with_uneven_parts(ranks):
    model, x, window = autoencoder_problem(5)
    z = model.encode(x)
    gen = torch.Generator().manual_seed(7)
    parts = AutoencoderObjective("wae")(x, model.decode(z), window.join(z), gen)
    parts["loss"].backward()
    for rank in ranks[1]:
        seen = rank["distance_gradients"]
        for key, value in parts.items():
            assert seen["loss_parts"][key] == pytest.approx(float(value.detach()), rel=1e-12)
        for got, want in zip(seen["loss"], model.parameters(), strict=True):
            torch.testing.assert_close(got, want.grad, rtol=1e-10, atol=1e-13)


def test_generator_gradient_from_a_sketch_equals_the_one_process_gradient(ranks):
    generator, z, sketch = generator_problem(9)
    loss = sk.sketch_distance(sketch, generator(z))
    loss.backward()
    for rank in ranks[1]:
        seen = rank["generator_gradients"]
        assert seen["loss"] == pytest.approx(float(loss.detach()), rel=1e-12)
        for got, want in zip(seen["grads"], generator.parameters(), strict=True):
            torch.testing.assert_close(got, want.grad, rtol=1e-10, atol=1e-13)


# --- sketches ------------------------------------------------------------------------------------


def test_distributed_sketch_equals_the_one_pass_sketch_to_float64_round_off(ranks):
    data, features = sketch_problem()
    one = {
        "float64": sk.sketch_dataset(data, features, batch_size=100, progress=False),
        "float32": sk.sketch_dataset(
            data.float(), features, batch_size=100, scale=2.0, progress=False
        ),
    }
    one["iterable"] = one["float64"]  # each rank passed its own half as an iterable
    for rank in ranks[1]:
        seen = rank["sketches"]
        for key, want in one.items():
            total, count, scale = seen[key]
            assert (count, scale) == (want.count, want.scale)
            torch.testing.assert_close(total, want.sum, rtol=1e-13, atol=1e-12)
        assert seen["unit_ball"] == sk.unit_ball_scaling(data, batch_size=100)


def test_ranks_with_different_frequencies_are_refused(ranks):
    for rank in ranks[1]:
        assert "must be the same on every rank" in rank["sketches"]["mismatch"]


def test_sketch_command_under_torchrun_equals_one_process(ranks, tmp_path):
    folder, _ = ranks
    assert cli.main([*SKETCH_CLI, "--out", str(tmp_path / "one.npz")]) == 0
    one, two = sk.Sketch.load(tmp_path / "one.npz"), sk.Sketch.load(folder / "cli_two_ranks.npz")
    assert (one.count, one.scale, one.source) == (two.count, two.scale, two.source)
    torch.testing.assert_close(one.sum, two.sum, rtol=1e-13, atol=1e-11)


def test_shards_merged_equal_the_one_shot_sketch(tmp_path):
    assert cli.main([*SKETCH_CLI, "--out", str(tmp_path / "all.npz")]) == 0
    parts = [str(tmp_path / f"part{i}.npz") for i in (1, 2, 3)]
    for i, part in enumerate(parts, start=1):
        assert cli.main([*SKETCH_CLI, "--shard", f"{i}/3", "--out", part]) == 0
    assert cli.main(["sketch", "merge", *parts, "--out", str(tmp_path / "merged.npz")]) == 0
    one, merged = sk.Sketch.load(tmp_path / "all.npz"), sk.Sketch.load(tmp_path / "merged.npz")
    assert (one.count, one.scale) == (merged.count, merged.scale)
    torch.testing.assert_close(one.sum, merged.sum, rtol=1e-13, atol=1e-11)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--shard", "0/3"], "--shard must be I/N with 1 <= I <= N"),
        (["--shard", "4/3"], "--shard must be I/N with 1 <= I <= N"),
        (["--shard", "two"], "--shard must be I/N with 1 <= I <= N"),
        (["--shard", "9/9"], "--shard 9/9 must hold data; got none: 5000 rows make 8 chunks"),
        (["--scale", "-1"], "--scale must be auto, unit_ball, none or a positive number"),
    ],
)
def test_bad_shard_or_scale_is_one_line_and_status_2(tmp_path, capsys, flags, message):
    assert cli.main([*SKETCH_CLI, *flags, "--out", str(tmp_path / "s.npz")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_merging_shards_of_different_scales_is_one_clear_error(tmp_path, capsys):
    a, b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    assert cli.main([*SKETCH_CLI, "--shard", "1/2", "--out", a]) == 0
    assert cli.main([*SKETCH_CLI, "--shard", "2/2", "--scale", "3", "--out", b]) == 0
    capsys.readouterr()
    assert cli.main(["sketch", "merge", a, b, "--out", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert "cannot be merged" in err and "same scaling" in err and err.count("\n") == 1


# --- MoW training on two ranks -------------------------------------------------------------------


def test_both_ranks_hold_identical_windows_and_parameters_after_every_step(ranks):
    zero, one = (rank["record"] for rank in ranks[1])
    steps = sum(run["steps"] for run in RUNS.values())
    assert len(zero["params"]) == len(zero["window"]) == steps
    for key in ("params", "window"):
        for a, b in zip(zero[key], one[key], strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", list(RUNS))
def test_two_rank_run_matches_one_process_with_the_same_global_k(ranks, tmp_path, name):
    folder, _ = ranks
    train(run_config(name, folder), tmp_path / "one", progress=False)
    two, one = checkpoint(folder / name), checkpoint(tmp_path / "one")
    assert two["step"] == one["step"] == RUNS[name]["steps"]
    assert_same_params(two["model"], one["model"], atol=1e-6)
    torch.testing.assert_close(two["window"]["codes"], one["window"]["codes"], atol=1e-6, rtol=0)


def test_a_two_rank_run_resumes_on_one_process_as_if_never_stopped(ranks, tmp_path):
    folder, _ = ranks
    shutil.copytree(folder / "cwae_small", tmp_path / "resumed")
    longer = run_config("cwae_small", folder, steps=2 * STEPS)
    train(longer, tmp_path / "resumed", resume=True, progress=False)
    train(longer, tmp_path / "straight", progress=False)
    resumed, straight = checkpoint(tmp_path / "resumed"), checkpoint(tmp_path / "straight")
    assert resumed["step"] == straight["step"] == 2 * STEPS
    assert_same_params(resumed["model"], straight["model"], atol=1e-6)


def test_k_not_divisible_by_the_processes_is_one_clear_error(ranks):
    first, second = (rank["errors"] for rank in ranks[1])
    assert first["status"] == second["status"] == 2
    assert "k must be divisible by the number of processes P=2" in first["stderr"]
    assert "got k=3." in first["stderr"] and first["stderr"].count("\n") == 1
    assert second["stderr"] == ""  # one line in all, from rank 0


def test_an_error_on_rank_0_reaches_every_rank(ranks):
    for rank in ranks[1]:
        assert rank["errors"]["missing"].startswith("RunError: ")
        assert "must be a run folder holding config.json" in rank["errors"]["missing"]


def test_flags_ride_on_the_gradient_average_and_reach_every_rank(ranks):
    for rank in ranks[1]:
        assert rank["flags"] == (True, True, False, 0.5)


def test_two_rank_generator_run_matches_one_process(ranks, tmp_path):
    folder, _ = ranks
    config = GeneratorConfig(sketch=str(folder / "cli_two_ranks.npz"), **GENERATOR_RUN)
    train_generator(config, tmp_path / "one", progress=False)
    two, one = checkpoint(folder / "generator"), checkpoint(tmp_path / "one")
    assert two["step"] == one["step"] == 4
    assert_same_params(two["generator"], one["generator"], atol=1e-5)
