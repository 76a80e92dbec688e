"""The moving-window training loop: gradients, equivalence with classical batches, resume, errors."""

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import torch

from distmatch.data import load_split
from distmatch.models import build_autoencoder
from distmatch.objectives import AutoencoderObjective
from distmatch.runs import RunDir, RunError
from distmatch.training import NonFiniteLossError, TrainConfig, resumed_config, train
from distmatch.training._loop import _epoch_order
from distmatch.window import MovingWindow

FAST = {"log_every": 10, "eval_points": 200, "eval_every": 1}


def compiled_calls(monkeypatch, loop) -> list[tuple[int, int]]:
    """From then on, ``loop._compiled(fn)`` returns ``fn`` itself (no compiling), recording the
    shapes of each call: (fresh codes, stored codes of the window)."""
    calls = []

    def recorded(fn, required):
        def call(model, objective, memory, x, *rest):
            calls.append((len(x), memory.position[1]))
            return fn(model, objective, memory, x, *rest)

        return call

    monkeypatch.setattr(loop, "_compiled", recorded)
    return calls


def model_state(run: RunDir) -> dict[str, torch.Tensor]:
    return torch.load(run.checkpoint, weights_only=True)["model"]


def test_gradient_reaches_the_encoder_only_through_the_fresh_codes():
    torch.manual_seed(0)
    model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4).double()
    window = MovingWindow(n=16, k=2, dim=4, dtype=torch.float64)
    window.codes.requires_grad_(False)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    z = model.encode(x)
    parts = AutoencoderObjective("cwae")(x, model.decode(z), window.join(z))
    encoder = list(model.encoder.parameters())
    grads = torch.autograd.grad(parts["distance"], [z, *encoder], retain_graph=True)
    through_z = torch.autograd.grad(z, encoder, grad_outputs=grads[0])
    for full, chained in zip(grads[1:], through_z, strict=True):
        assert torch.allclose(full, chained, rtol=1e-12, atol=1e-15)
    assert any(float(g.abs().sum()) > 0 for g in through_z)
    assert not window.codes.requires_grad


def test_k_equal_n_is_classical_minibatch_training_step_for_step(tmp_path):
    config = TrainConfig(n=8, k=8, steps=40, optimizer="sgd", lr=0.01, latent_dim=4, **FAST)
    train(config, tmp_path / "run", progress=False)
    # The same steps written as plain mini-batch CWAE training.
    data = load_split("digits", "train")
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    objective = AutoencoderObjective("cwae")
    order = _epoch_order(config.seed, 0, len(data))
    for step in range(40):
        x = data.get_batch(order[step * 8 : (step + 1) * 8])
        z = model.encode(x)
        loss = objective(x, model.decode(z), z)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    saved = model_state(RunDir(tmp_path / "run"))
    for name, value in model.state_dict().items():
        assert torch.equal(saved[name], value), name


@pytest.mark.parametrize("window_gradient", ["paper", "unbiased"])
def test_a_moving_window_run_is_the_plain_loop_with_the_window_weight(window_gradient, tmp_path):
    """ "paper" is the reference's step (distance unweighted); "unbiased" weighs its gradient by
    n / B, also for the short last batch of the epoch (1797 digits = 449 x 4 + 1)."""
    n, k, steps = 16, 4, 452
    config = TrainConfig(
        model="wae",
        n=n,
        k=k,
        window_gradient=window_gradient,
        steps=steps,
        optimizer="sgd",
        lr=0.01,
        lr_rule="none",
        refresh_every=0,
        latent_dim=4,
        **FAST,
    )
    train(config, tmp_path / "run", progress=False)
    data = load_split("digits", "train")
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    objective = AutoencoderObjective("wae")
    gen = torch.Generator().manual_seed(config.seed + 1)
    window = MovingWindow(n, k, 4, generator=gen)
    per_epoch = -(-len(data) // k)
    for step in range(steps):
        epoch, batch = divmod(step, per_epoch)
        if batch == 0:
            window.reset(gen)
        order = _epoch_order(config.seed, epoch, len(data))
        x = data.get_batch(order[batch * k : (batch + 1) * k])
        z = model.encode(x)
        b = len(z)
        weight = (n - k + b) / b if window_gradient == "unbiased" else 1.0
        parts = objective(x, model.decode(z), window.join(z), gen, gradient_weight=weight)
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        window.push(z)
    saved = model_state(RunDir(tmp_path / "run"))
    for name, value in model.state_dict().items():
        assert torch.equal(saved[name], value), name


@pytest.mark.parametrize(
    ("rule", "k", "optimizer", "lr"),
    [
        ("none", 1, "adam", 1e-3),
        ("sqrt", 1, "adam", 1e-3 / 8),
        ("linear", 1, "adam", 1e-3 / 64),
        ("sqrt", 64, "adam", 1e-3),
        ("auto", 1, "adam", 1e-3 / 8),
        ("auto", 4, "sgd", 1e-3 / 16),
        ("auto", 64, "sgd", 1e-3),
    ],
)
def test_the_lr_rule_sets_the_optimizer_rate_from_k_over_n(rule, k, optimizer, lr, tmp_path):
    config = TrainConfig(n=64, k=k, lr=1e-3, lr_rule=rule, optimizer=optimizer, steps=1, **FAST)
    train(config, tmp_path / "run", progress=False)
    saved = torch.load(RunDir(tmp_path / "run").checkpoint, weights_only=True)["optimizer"]
    assert saved["param_groups"][0]["lr"] == pytest.approx(lr, rel=1e-12)


def test_refresh_every_encodes_the_whole_window_again_with_the_current_encoder(tmp_path):
    config = TrainConfig(n=8, k=3, steps=25, latent_dim=4, refresh_every=5, **FAST)
    train(config, tmp_path / "run", progress=False)
    saved = torch.load(RunDir(tmp_path / "run").checkpoint, weights_only=True)
    inputs, codes = saved["window_inputs"], saved["window"]["codes"]
    assert (inputs >= 0).all()  # 25 steps of 3 codes replaced the 5 prior draws
    data = load_split("digits", "train")
    model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4)
    model.load_state_dict(saved["model"])
    with torch.no_grad():
        assert torch.allclose(codes, model.encode(data.get_batch(inputs)), atol=1e-6)
    # Without refresh, the window keeps the codes of the encoders that pushed them.
    stale_config = TrainConfig(n=8, k=3, steps=25, latent_dim=4, refresh_every=0, **FAST)
    train(stale_config, tmp_path / "stale", progress=False)
    stale = torch.load(RunDir(tmp_path / "stale").checkpoint, weights_only=True)
    assert not torch.allclose(stale["window"]["codes"], codes)


def test_the_window_gradient_scales_the_distance_pull_and_not_the_logged_cost():
    torch.manual_seed(0)
    model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4).double()
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    objective = AutoencoderObjective("cwae", lam=0.5)
    window = MovingWindow(n=16, k=1, dim=4, dtype=torch.float64)
    z = model.encode(x)
    plain = objective(x, model.decode(z), window.join(z))
    weighted = objective(x, model.decode(z), window.join(z), gradient_weight=16.0)
    for key in ("loss", "reconstruction", "distance"):
        assert torch.equal(plain[key], weighted[key]), key
    (g_plain,) = torch.autograd.grad(plain["loss"] - plain["reconstruction"], z)
    (g_weighted,) = torch.autograd.grad(weighted["loss"] - weighted["reconstruction"], z)
    assert torch.allclose(g_weighted, 16.0 * g_plain, rtol=1e-14, atol=0)


def test_run_folder_holds_config_metrics_summary_checkpoint_and_figures(tmp_path):
    summary = train(TrainConfig(steps=60, **FAST), tmp_path / "run", progress=False)
    run = RunDir(tmp_path / "run")
    record = json.loads(run.config.read_text())
    assert record["config"]["model"] == "cwae" and record["resolved"]["arch"] == "mlp"
    rows = run.read_metrics()
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(10, 61, 10))
    assert {"loss", "reconstruction", "distance"} <= set(rows[0])
    assert {"rec_error", "wae_distance", "cw_distance"} <= set(rows[-1])
    assert json.loads(run.summary.read_text()) == summary
    state = torch.load(run.checkpoint, weights_only=True)
    assert {"model", "optimizer", "window", "generator", "step"} <= set(state)
    assert state["step"] == 60 and state["finished"]
    names = sorted(p.name for p in run.figures.glob("*.png"))
    assert names == ["curves.png", "interpolations.png", "reconstructions.png", "samples.png"]


def test_refresh_reencode_pushes_the_codes_of_the_updated_encoder(tmp_path):
    for refresh in ("none", "reencode"):
        config = TrainConfig(steps=1, refresh=refresh, latent_dim=4, lr=0.1, **FAST)
        train(config, tmp_path / refresh, progress=False)
    data = load_split("digits", "train")
    x = data.get_batch(_epoch_order(0, 0, len(data))[:1])
    stored, after = {}, {}
    for refresh in ("none", "reencode"):
        state = torch.load(RunDir(tmp_path / refresh).checkpoint, weights_only=True)
        model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4)
        model.load_state_dict(state["model"])
        stored[refresh] = state["window"]["codes"][0]
        after[refresh] = model.encode(x)[0].detach()
    assert torch.allclose(stored["reencode"], after["reencode"])
    assert not torch.allclose(stored["none"], after["none"])


@pytest.fixture(scope="module")
def small_images(tmp_path_factory) -> str:
    """300 digits as a uint8 .npy: 270 training images, so an epoch is 270 steps at k=1."""
    from sklearn.datasets import load_digits

    path = tmp_path_factory.mktemp("data") / "digits300.npy"
    images = load_digits().images[:300] * (255 / 16)
    np.save(path, images.round().astype(np.uint8))
    return str(path)


def _cli(data, out, *extra):
    base = [sys.executable, "-m", "distmatch", "train", "--model", "wae", "--dataset", data]
    options = ["--epochs", "4", "--eval-every", "2", "--eval-points", "100", "--log-every", "25"]
    return [
        *base,
        *options,
        "--checkpoint-every",
        "100",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def reference_run(small_images, tmp_path_factory) -> RunDir:
    run = RunDir(tmp_path_factory.mktemp("reference") / "run")
    done = subprocess.run(_cli(small_images, run.root), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return run


def _wait_for_step(run: RunDir, step: int, process, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = run.read_metrics()
        if rows and rows[-1]["step"] >= step:
            return
        if process.poll() is not None:
            pytest.fail(f"training ended early: {process.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("training did not reach the step in time")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_resume_after_a_kill_is_bit_identical(small_images, reference_run, tmp_path, sig):
    run = RunDir(tmp_path / "killed")
    process = subprocess.Popen(
        _cli(small_images, run.root),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_step(run, 575, process)  # past epoch 2 (540 steps) and its evaluation
    process.send_signal(sig)
    process.wait(timeout=60)
    assert process.returncode == (-9 if sig == signal.SIGKILL else 130)
    interrupted_at = torch.load(run.checkpoint, weights_only=True)["step"]
    assert 0 < interrupted_at < 1080
    resumed = subprocess.run(
        [*_cli(small_images, run.root), "--resume"], env=ENV, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    ref_state, state = model_state(reference_run), model_state(run)
    for name in ref_state:
        assert torch.equal(ref_state[name], state[name]), name
    assert run.read_metrics() == reference_run.read_metrics()  # every logged number, once
    ref_summary = json.loads(reference_run.summary.read_text())
    summary = json.loads(run.summary.read_text())
    assert {k: v for k, v in summary.items() if "second" not in k} == {
        k: v for k, v in ref_summary.items() if "second" not in k
    }


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    config = TrainConfig(
        model="wae", optimizer="sgd", lr=1e12, steps=500, checkpoint_every=1, **FAST
    )
    with pytest.raises(NonFiniteLossError, match="the loss became NaN or infinite before step"):
        train(config, tmp_path / "run", progress=False)
    state = torch.load(RunDir(tmp_path / "run").checkpoint, weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_resume_may_extend_a_finished_run(tmp_path):
    train(TrainConfig(steps=30, **FAST), tmp_path / "run", progress=False)
    config = resumed_config(tmp_path / "run", steps=50)
    summary = train(config, tmp_path / "run", resume=True, progress=False)
    assert summary["step"] == 50


def test_batchnorm_in_a_custom_model_warns_at_small_k(tmp_path):
    model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4)
    model.encoder.insert(1, torch.nn.BatchNorm1d(64))
    # BatchNorm cannot even run on one sample in training mode: the warning comes first.
    with pytest.warns(UserWarning, match="BatchNorm"), contextlib.suppress(ValueError):
        train(TrainConfig(k=1, steps=1, **FAST), tmp_path / "run", model=model, progress=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"k": 65}, "k must be between 1 and n=64; got k=65"),
        ({"n": 1}, "n must be >= 2"),
        ({"model": "vae"}, "model must be one of 'cwae', 'skwae', 'swae', 'wae'; got 'vae'"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of 'adam', 'sgd'; got 'rmsprop'"),
        ({"lr": 0.0}, "lr must be a finite number > 0; got 0.0"),
        ({"refresh_every": -1}, "refresh_every must be an int >= 1; got -1"),
        (
            {"lr_rule": "cubic"},
            "lr_rule must be one of 'auto', 'linear', 'none', 'sqrt'; got 'cubic'",
        ),
        (
            {"window_gradient": "biased"},
            "window_gradient must be one of 'paper', 'unbiased'; got 'biased'",
        ),
        ({"epochs": 0}, "epochs must be an int >= 1; got 0"),
        ({"seed": -(2**32)}, r"seed must be an int in \(-2\^32, 2\^32\); got -4294967296"),
        ({"seed": 2**32}, r"seed must be an int in \(-2\^32, 2\^32\); got 4294967296"),
        ({"device": "tpu"}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'tpu'"),
    ],
)
def test_bad_configuration(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        train(TrainConfig(**changes), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_an_existing_run_is_never_overwritten(tmp_path):
    train(TrainConfig(steps=10, **FAST), tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(RunError, match="already holds a run; use --resume"):
        train(TrainConfig(steps=10, **FAST), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before


def test_resume_rejects_changes_that_would_alter_the_run(tmp_path):
    train(TrainConfig(steps=10, **FAST), tmp_path / "run", progress=False)
    with pytest.raises(RunError, match="got changes to k: 1 -> 2"):
        train(TrainConfig(steps=10, k=2, **FAST), tmp_path / "run", resume=True, progress=False)


def test_resume_needs_a_run_folder(tmp_path):
    with pytest.raises(RunError, match="must be a run folder holding config.json"):
        train(TrainConfig(), tmp_path / "empty", resume=True, progress=False)


@pytest.mark.parametrize("model", ["cwae", "wae", "swae"])
def test_compiled_steps_follow_the_eager_trajectory(model, tmp_path):
    # Plain SGD: Adam's near-sign steps would turn float differences on elements with almost no
    # gradient into differences of a fraction of lr. WAE and SWAE take their draws outside the
    # compiled function from the run's generator: the same draws, eager or compiled.
    # SWAE's gradient jumps where two projections swap ranks. A refreshed window can hold the code
    # of the next step's input, encoded again with the same parameters: eagerly an exact tie with
    # the fresh code, compiled a near one (the stored twin comes from the eager encoder), which the
    # machine's round-off puts on either side. So SWAE is compared without refreshes.
    config = dict(
        model=model, steps=30, log_every=10, eval_points=200, eval_every=100, seed=3,
        optimizer="sgd", lr=0.01, refresh_every=0 if model == "swae" else 10,
    )  # fmt: skip
    train(TrainConfig(compile=False, **config), tmp_path / "eager", progress=False)
    train(TrainConfig(compile=True, **config), tmp_path / "compiled", progress=False)
    eager = model_state(RunDir(tmp_path / "eager"))
    compiled = model_state(RunDir(tmp_path / "compiled"))
    for name, tensor in eager.items():
        assert torch.allclose(tensor, compiled[name], rtol=1e-4, atol=1e-6), name
    losses = [
        [r["loss"] for r in RunDir(tmp_path / run).read_metrics() if r["kind"] == "train"]
        for run in ("eager", "compiled")
    ]
    # The loss is a sum of terms of opposite signs (rec + log cw): near 0 only atol can compare it.
    assert np.allclose(losses[0], losses[1], rtol=1e-5, atol=1e-5)


def test_a_compiler_failure_is_one_clear_error(tmp_path, monkeypatch):
    from distmatch.training import CompileUnavailable

    def broken_compile(fn, **options):
        def call(*args):
            if hasattr(torch._inductor.exc, "InductorError"):
                raise torch._inductor.exc.InductorError(RuntimeError("no C++ compiler"), None)
            raise torch._dynamo.exc.TorchDynamoException("no C++ compiler")  # older torch

        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.raises(CompileUnavailable, match="needs torch.compile to work here"):
        train(TrainConfig(steps=5, compile=True, **FAST), tmp_path / "run", progress=False)


def test_each_compiled_run_gets_a_static_graph_of_its_own(monkeypatch):
    """Runs compiled one after another in one process share no compile cache (the compiler keeps
    it per code object: a shared one piles up guards and, past its limit, runs steps eagerly),
    and their shapes are static."""
    from distmatch.training._loop import _compiled, _forward

    seen = []

    def recording_compile(fn, **options):
        seen.append((fn, options))
        return fn

    monkeypatch.setattr(torch, "compile", recording_compile)
    _compiled(_forward)
    _compiled(_forward)
    (first, options), (second, _) = seen
    assert options == {"dynamic": False}
    assert first.__code__ is not second.__code__
    assert _forward.__code__ not in (first.__code__, second.__code__)
    assert first.__code__.co_code == _forward.__code__.co_code  # the same step
    assert first.__defaults__ == _forward.__defaults__

    def keyword_only(x, *, shift=2):
        return x + shift

    _compiled(keyword_only)
    assert seen[-1][0](1) == 3  # keyword-only defaults kept too


def test_runs_made_before_a_field_existed_still_resume(tmp_path):
    train(TrainConfig(steps=20, **FAST), tmp_path / "run", progress=False)
    run = RunDir(tmp_path / "run")
    record = json.loads(run.config.read_text())
    for newer in ("memory", "sketch_frequencies", "sketch_bandwidth", "compile"):
        del record["config"][newer]  # as written by an older distmatch
    run.config.write_text(json.dumps(record))
    summary = train(
        resumed_config(tmp_path / "run", steps=40), tmp_path / "run", resume=True, progress=False
    )
    assert summary["step"] == 40


def test_runs_made_before_the_window_gradient_resume_as_they_were_trained(tmp_path):
    config = TrainConfig(steps=20, window_gradient="paper", lr_rule="none", refresh_every=0, **FAST)
    train(config, tmp_path / "run", progress=False)
    run = RunDir(tmp_path / "run")
    record = json.loads(run.config.read_text())
    for newer in ("window_gradient", "lr_rule", "refresh_every"):  # as distmatch 0.1 trained
        del record["config"][newer]
    run.config.write_text(json.dumps(record))
    resumed = resumed_config(tmp_path / "run", steps=40)
    assert (resumed.window_gradient, resumed.lr_rule, resumed.refresh_every) == ("paper", "none", 0)
    with pytest.raises(RunError, match="window_gradient: 'paper' -> 'unbiased'"):
        train(TrainConfig(steps=40, **FAST), tmp_path / "run", resume=True, progress=False)
    assert train(resumed, tmp_path / "run", resume=True, progress=False)["step"] == 40


def test_a_random_refresh_encodes_random_training_inputs_with_the_current_encoder(tmp_path):
    config = TrainConfig(n=8, k=1, steps=20, latent_dim=4, refresh_every=10, **FAST)
    config.refresh_from = "random"
    train(config, tmp_path / "run", progress=False)
    saved = torch.load(RunDir(tmp_path / "run").checkpoint, weights_only=True)
    inputs = saved["window_inputs"]
    order = _epoch_order(config.seed, 0, 1500)
    # the last refresh (after step 20) drew 7 inputs at random, not the last 7 of the epoch order
    assert len(set(inputs.tolist())) == 7 and set(inputs.tolist()) != set(order[13:20].tolist())
    data = load_split("digits", "train")
    model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4)
    model.load_state_dict(saved["model"])
    with torch.no_grad():
        codes = model.encode(data.get_batch(inputs))
    assert torch.allclose(saved["window"]["codes"], codes, atol=1e-6)


def test_compilation_is_automatic_only_for_long_runs_with_a_compiler(tmp_path, monkeypatch):
    from distmatch.training import _loop

    assert _loop.compiler_available(torch.device("cpu")) == any(
        shutil.which(c) for c in ("g++", "c++", "clang++")
    )
    calls = []
    monkeypatch.setattr(_loop, "_compiled", lambda fn, required: calls.append(required) or fn)
    train(TrainConfig(steps=5, **FAST), tmp_path / "short", progress=False)
    assert calls == []  # "auto" and 5 steps: not worth compiling
    monkeypatch.setattr(_loop, "AUTO_COMPILE_STEPS", 5)
    monkeypatch.setattr(_loop, "compiler_available", lambda device: True)
    train(TrainConfig(steps=5, **FAST), tmp_path / "long", progress=False)
    train(TrainConfig(steps=5, compile=True, **FAST), tmp_path / "asked", progress=False)
    assert calls == [False, True]  # auto falls back to eager on failure; asked for, it is an error
    with pytest.raises(ValueError, match="compile must be True, False or 'auto'; got 'yes'"):
        TrainConfig(compile="yes").validate()


@pytest.mark.parametrize("init", ["prior", "fill"])
def test_automatic_compilation_keeps_the_faster_kind_and_leaves_the_run_as_it_was(
    tmp_path, monkeypatch, init
):
    """... and times the steps that would be compiled: a full batch and a full window, also when
    the window starts empty (init "fill"; timed on a full copy of it)."""
    from distmatch.training import _loop

    config = dict(steps=30, model="swae", seed=4, refresh_every=7, window_init=init, **FAST)
    train(TrainConfig(compile=False, **config), tmp_path / "eager", progress=False)
    # "compiled" is the eager function here: whichever the timing keeps, the run must be the
    # eager run to the bit, so the passes that were timed changed nothing (model, draws, window)
    shapes = compiled_calls(monkeypatch, _loop)
    monkeypatch.setattr(_loop, "AUTO_COMPILE_STEPS", 5)
    monkeypatch.setattr(_loop, "compiler_available", lambda device: True)
    timed = []
    pass_seconds = _loop._pass_seconds
    monkeypatch.setattr(
        _loop, "_pass_seconds", lambda *a: timed.append(pass_seconds(*a)) or timed[-1]
    )
    train(TrainConfig(**config), tmp_path / "auto", progress=False)
    assert len(timed) == 2 and all(t > 0 for t in timed)
    assert len(shapes) >= _loop.PROBE_STEPS + 1 and set(shapes) == {(1, 63)}
    a, b = (model_state(RunDir(tmp_path / run)) for run in ("eager", "auto"))
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert RunDir(tmp_path / "eager").read_metrics() == RunDir(tmp_path / "auto").read_metrics()


@pytest.mark.parametrize(
    ("eager", "compiled", "kept"), [(1.0, 0.7, "compiled"), (1.0, 1.5, "eager")]
)
def test_automatic_compilation_compiles_only_where_it_is_faster(monkeypatch, eager, compiled, kept):
    from distmatch.training import _loop

    monkeypatch.setattr(_loop, "compiler_available", lambda device: True)
    monkeypatch.setattr(_loop, "_compiled", lambda fn, required: "compiled forward")
    times = iter([eager, compiled])
    monkeypatch.setattr(_loop, "_pass_seconds", lambda s, fn, unbiased: next(times))
    s = types.SimpleNamespace(
        config=TrainConfig(steps=60_000), total_steps=60_000, step=0, device=torch.device("cpu"),
        world=types.SimpleNamespace(size=1), compiled=None,
    )  # fmt: skip
    forward = _loop._step_forward(s, True)
    assert (forward == "compiled forward") == (kept == "compiled")


@pytest.mark.parametrize("memory", ["window", "sketch"])
def test_a_resumed_skwae_run_is_bit_identical(tmp_path, memory):
    # skwae's window carries a running sum of features: it is saved, so the round-off goes on
    config = dict(model="skwae", memory=memory, seed=3, device="cpu", compile=False, **FAST)
    train(TrainConfig(steps=100, **config), tmp_path / "straight", progress=False)
    train(TrainConfig(steps=40, **config), tmp_path / "run", progress=False)
    train(
        resumed_config(tmp_path / "run", steps=100), tmp_path / "run", resume=True, progress=False
    )
    a, b = (
        torch.load(RunDir(tmp_path / r).checkpoint, weights_only=True) for r in ("straight", "run")
    )
    for part in ("model", "window"):
        assert all(torch.equal(a[part][name], b[part][name]) for name in a[part]), part


@pytest.mark.parametrize("model", ["skwae", "wae"])
def test_a_resumed_compiled_run_is_bit_identical(tmp_path, model):
    """A compiled step pushes its codes inside the graph, at the window's device write position
    (and moves skwae's feature sum there): a resumed compiled run goes on exactly."""
    from distmatch._core import compiler_available

    if not compiler_available(torch.device("cpu")):
        pytest.skip("no C++ compiler for torch.compile")
    config = dict(model=model, seed=4, device="cpu", compile=True, n=16, **FAST)
    train(TrainConfig(steps=60, **config), tmp_path / "straight", progress=False)
    train(TrainConfig(steps=25, **config), tmp_path / "run", progress=False)
    train(resumed_config(tmp_path / "run", steps=60), tmp_path / "run", resume=True, progress=False)
    a, b = (
        torch.load(RunDir(tmp_path / r).checkpoint, weights_only=True) for r in ("straight", "run")
    )
    for part in ("model", "window"):
        assert all(torch.equal(a[part][name], b[part][name]) for name in a[part]), part


def test_a_resumed_run_keeps_its_optimizer_kind_and_its_compilation_choice(tmp_path, monkeypatch):
    from distmatch._core import _devices
    from distmatch.training import _loop

    monkeypatch.setattr(_devices, "FUSED_DEVICES", ())  # a run saved by an unfused optimizer
    monkeypatch.setattr(_loop, "AUTO_COMPILE_STEPS", 5)
    monkeypatch.setattr(_loop, "compiler_available", lambda device: True)
    monkeypatch.setattr(_loop, "_compiled", lambda fn, required: fn)
    monkeypatch.setattr(_loop, "_pass_seconds", lambda s, fn, unbiased: 1.0)  # no gain: eager
    train(TrainConfig(steps=20, **FAST), tmp_path / "run", progress=False)
    saved = torch.load(RunDir(tmp_path / "run").checkpoint, weights_only=True)
    assert saved["compiled"] is False
    assert saved["optimizer"]["param_groups"][0]["fused"] is None
    monkeypatch.setattr(_devices, "FUSED_DEVICES", ("cpu",))
    monkeypatch.setattr(_loop, "_pass_seconds", lambda *args: pytest.fail("timed again"))
    train(resumed_config(tmp_path / "run", steps=40), tmp_path / "run", resume=True, progress=False)
    saved = torch.load(RunDir(tmp_path / "run").checkpoint, weights_only=True)
    assert saved["compiled"] is False  # the saved choice, not a new timing
    assert saved["optimizer"]["param_groups"][0]["fused"] is True  # this process's optimizer


@pytest.mark.parametrize("preset", [None, ":16:8", ":0:0"])
def test_deterministic_algorithms_are_set_within_the_block_and_put_back(monkeypatch, preset):
    """The caller's settings (here: deterministic mode on without warn_only where a cuBLAS value
    is preset, off otherwise; cuDNN benchmarking on) come back after the block, also on errors."""
    from distmatch._core import deterministic_algorithms

    if preset is None:
        monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    else:
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", preset)
    cudnn = torch.backends.cudnn
    monkeypatch.setattr(cudnn, "benchmark", True)
    outer = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(preset is not None, warn_only=False)
    try:
        before = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            cudnn.deterministic,
            cudnn.benchmark,
        )
        with pytest.raises(KeyError), deterministic_algorithms(True):
            assert torch.are_deterministic_algorithms_enabled()
            assert torch.is_deterministic_algorithms_warn_only_enabled()  # never stops a run
            assert (cudnn.deterministic, cudnn.benchmark) == (True, False)
            # a deterministic cuBLAS setting is kept, any other replaced
            expected = preset if preset == ":16:8" else ":4096:8"
            assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == expected
            raise KeyError("put back on errors too")
        after = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            cudnn.deterministic,
            cudnn.benchmark,
        )
        assert after == before
        assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") == preset
        with deterministic_algorithms(False):
            assert torch.are_deterministic_algorithms_enabled() is before[0]
    finally:
        torch.use_deterministic_algorithms(outer[0], warn_only=outer[1])


def test_a_deterministic_run_trains_in_deterministic_mode_and_resumes_with_it(tmp_path):
    """The mode holds while the run trains (seen from inside the model), is off afterwards, is
    saved with the run and kept by a resumed run, which ends bit-identical."""
    seen = []

    def build():
        torch.manual_seed(0)  # the same initial weights for both runs
        model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=8)
        model.encoder.register_forward_pre_hook(
            lambda *_: seen.append(torch.are_deterministic_algorithms_enabled())
        )
        return model

    config = dict(steps=12, deterministic=True, **FAST)
    train(TrainConfig(**config), tmp_path / "straight", progress=False, model=build())
    assert seen and all(seen) and not torch.are_deterministic_algorithms_enabled()
    train(TrainConfig(**{**config, "steps": 6}), tmp_path / "run", progress=False, model=build())
    resumed = resumed_config(tmp_path / "run", steps=12)
    assert resumed.deterministic is True
    seen.clear()
    train(resumed, tmp_path / "run", resume=True, progress=False, model=build())
    assert seen and all(seen)
    a, b = (
        torch.load(RunDir(tmp_path / r).checkpoint, weights_only=True) for r in ("straight", "run")
    )
    assert all(torch.equal(a["model"][name], b["model"][name]) for name in a["model"])
    with pytest.raises(TypeError, match="deterministic must be True or False; got 'yes'"):
        TrainConfig(deterministic="yes").validate()


@pytest.mark.parametrize("model", ["cwae", "wae", "swae", "skwae"])
def test_every_model_trains_from_an_empty_window_at_k_1(model, tmp_path):
    """init "fill" at k = 1: each epoch's first step joins one code (WAE's unbiased MMD divided by
    zero there)."""
    config = TrainConfig(model=model, steps=5, window_init="fill", compile=False, **FAST)
    summary = train(config, tmp_path / "run", progress=False)
    assert summary["step"] == 5
    rows = RunDir(tmp_path / "run").read_metrics()
    losses = [row["loss"] for row in rows if "loss" in row]
    assert losses and all(math.isfinite(loss) for loss in losses)


def test_a_compiled_run_compiles_the_steady_steps_only(tmp_path, monkeypatch):
    """A window that fills (init "fill") and an epoch's short last batch change the step's shapes;
    those steps run eagerly, and the compiled forward sees full batches and a full window only
    (one graph instead of one per size, which reached torch.compile's recompile limit after 8 and
    left the run eager)."""
    from distmatch.training import _loop

    shapes = compiled_calls(monkeypatch, _loop)
    config = dict(n=16, k=7, window_init="fill", compile=True, **FAST)
    summary = train(TrainConfig(steps=450, **config), tmp_path / "run", progress=False)
    assert summary["step"] == 450
    assert shapes and set(shapes) == {(7, 9)}  # full batches and full windows only
    # 1500 digits: epochs of 214 batches of 7 and one of 2; the window (9 codes) is refilled at
    # each epoch's start, in 2 steps (0, then 7 stored codes). Eager: 2 + 1, 2 + 1, then 2.
    assert len(shapes) == 450 - 8
