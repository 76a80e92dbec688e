"""distmatch on a GPU: every command end to end on ``cuda``, and CUDA agreeing with the CPU.

Skipped without CUDA. Tolerances: float32 arithmetic on different hardware (cuBLAS and CPU BLAS
sum in different orders), so relative 1e-4 for distances and sketches of O(100) terms, 1e-3 for
parameters after a few optimizer steps. A resumed run on CUDA matches the uninterrupted one to
1e-5 (not bit for bit: cuDNN may pick convolution algorithms that add in a varying order); with
``--deterministic`` bit for bit, for the MLP and for convolutions, and so does a rerun.
"""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from distmatch import distances, sketch
from distmatch.cli import main
from distmatch.models import build_autoencoder
from distmatch.objectives import AutoencoderObjective
from distmatch.window import MovingWindow
from test_graph_step import CASES

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

QUICK = ["--steps", "40", "--log-every", "10", "--eval-points", "200", "--no-progress"]


def both(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.to("cpu"), x.to("cuda")


@pytest.mark.parametrize("name", ["mmd", "cramer_wold", "sliced_wasserstein"])
def test_distances_agree_with_the_cpu(name):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 8, generator=gen), torch.randn(200, 8, generator=gen) + 0.3
    options = {}
    if name == "sliced_wasserstein":
        options["projections"] = distances.random_projections(8, 50, generator=gen)
    cpu = distances.distance(name, x, y, **options)
    cuda_options = {k: v.cuda() for k, v in options.items()}
    gpu = distances.distance(name, x.cuda(), y.cuda(), **cuda_options)
    assert float(gpu) == pytest.approx(float(cpu), rel=1e-4)
    normality_cpu = distances.cramer_wold_normality(x)
    normality_gpu = distances.cramer_wold_normality(x.cuda())
    assert float(normality_gpu) == pytest.approx(float(normality_cpu), rel=1e-4)


def test_sketches_and_the_sketch_distance_agree_with_the_cpu():
    gen = torch.Generator().manual_seed(1)
    data = torch.rand(5000, 6, generator=gen)
    features = sketch.FourierFeatures(6, 500, bandwidth=0.5, generator=gen)
    on_cpu = sketch.sketch_dataset(data, features, device="cpu", progress=False)
    on_gpu = sketch.sketch_dataset(data, features, device="cuda", progress=False)
    torch.testing.assert_close(on_gpu.mean, on_cpu.mean, rtol=0, atol=1e-5)
    samples = torch.rand(300, 6, generator=gen, requires_grad=True)
    loss_cpu = sketch.sketch_distance(on_cpu, samples)
    (grad_cpu,) = torch.autograd.grad(loss_cpu, samples)
    samples_gpu = samples.detach().cuda().requires_grad_()
    loss_gpu = sketch.sketch_distance(on_cpu, samples_gpu)
    (grad_gpu,) = torch.autograd.grad(loss_gpu, samples_gpu)
    assert float(loss_gpu) == pytest.approx(float(loss_cpu), rel=1e-4)
    torch.testing.assert_close(grad_gpu.cpu(), grad_cpu, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("quantized", [False, True])
def test_the_fused_sketch_kernel_agrees_with_the_cpu(quantized):
    """The Triton kernel compiled for the GPU (the same kernel that the CPU tests run in Triton's
    interpreter), at the sizes of an image sketch, against the CPU sketch."""
    if not sketch.fused_available("cuda"):
        pytest.skip("the fused kernel needs Triton")
    gen = torch.Generator().manual_seed(2)
    data = torch.rand(3000, 784, generator=gen)
    features = sketch.FourierFeatures(
        784, 1000, bandwidth=8.0, dither=quantized, quantized=quantized, generator=gen
    )
    on_cpu = sketch.sketch_dataset(data, features, device="cpu", progress=False)
    fused = sketch.sketch_dataset(data, features, device="cuda", progress=False, fused=True)
    if quantized:  # a sign flips only where a phase is within round-off of a zero
        assert float((fused.mean - on_cpu.mean).abs().max()) < 3e-3
    else:
        torch.testing.assert_close(fused.mean, on_cpu.mean, rtol=0, atol=2e-5)


@pytest.mark.parametrize("model", ["cwae", "wae", "swae", "skwae"])
def test_moving_window_steps_agree_with_the_cpu(model):
    parameters = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        net = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4).to(device)
        window = MovingWindow(n=16, k=2, dim=4, init="zeros", device=device)
        objective = AutoencoderObjective(model, latent_dim=4)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
        data = torch.rand(10, 2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
        for x in data.to(device):
            rng = torch.Generator().manual_seed(3)  # on the CPU: the same prior draws on both
            z = net.encode(x)
            parts = objective(x, net.decode(z), window.join(z), rng)
            optimizer.zero_grad()
            parts["loss"].backward()
            optimizer.step()
            window.push(z)
        parameters[device] = [p.detach().cpu() for p in net.parameters()]
    for cpu, gpu in zip(parameters["cpu"], parameters["cuda"], strict=True):
        torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-5)


def test_train_evaluate_sample_and_resume_on_cuda(tmp_path, capsys):
    run, straight = tmp_path / "run", tmp_path / "straight"
    assert main(["train", *QUICK, "--device", "cuda", "--out", str(straight)]) == 0
    args = ["train", "--log-every", "10", "--eval-points", "200", "--no-progress"]
    assert main([*args, "--steps", "20", "--device", "cuda", "--out", str(run)]) == 0
    assert main(["train", "--resume", "--steps", "40", "--out", str(run), "--no-progress"]) == 0
    a = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(straight / "checkpoint.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5)
    assert main(["evaluate", str(run), "--points", "200", "--device", "cuda"]) == 0
    assert json.loads((run / "eval.json").read_text())["rec_error"] > 0
    assert (
        main(
            [
                "sample",
                str(run),
                "--num",
                "16",
                "--device",
                "cuda",
                "--out",
                str(tmp_path / "s.png"),
            ]
        )
        == 0
    )
    assert (
        main(
            ["sample", str(run), "--num", "5", "--device", "cuda", "--out", str(tmp_path / "s.npy")]
        )
        == 0
    )
    assert np.load(tmp_path / "s.npy").shape == (5, 1, 8, 8)


@pytest.mark.parametrize(("arch", "extra"), [("mlp", ["--compile"]), ("cifar_conv", ["--k", "8"])])
def test_a_deterministic_run_resumes_and_reruns_bit_for_bit_on_cuda(arch, extra, tmp_path):
    """``--deterministic``: a resumed run ends with the bits of one that never stopped, and a rerun
    gives them again, each in a process of its own (fresh cuBLAS workspaces; the rerun's kernels
    compiled and tuned afresh): the MLP compiled (cuBLAS, Triton reductions) and convolutions
    (cuDNN)."""
    dataset = []
    if arch != "mlp":  # random uint8 images, read as a .npy data set
        images = np.random.default_rng(0).integers(0, 256, (80, 32, 32, 3), dtype=np.uint8)
        np.save(tmp_path / "images.npy", images)
        dataset = ["--dataset", str(tmp_path / "images.npy"), "--arch", arch]
    args = ["train", *dataset, *extra, "--device", "cuda", "--deterministic", "--no-progress"]
    args += ["--log-every", "5", "--eval-points", "16"]
    env = {key: value for key, value in os.environ.items() if key != "CUBLAS_WORKSPACE_CONFIG"}

    def command(*argv: str, cache: str) -> None:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / cache)  # compiled kernels kept there
        done = subprocess.run(
            [sys.executable, "-m", "distmatch", *argv], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]

    command(*args, "--steps", "30", "--out", str(tmp_path / "straight"), cache="kernels")
    command(*args, "--steps", "30", "--out", str(tmp_path / "again"), cache="fresh")
    command(*args, "--steps", "15", "--out", str(tmp_path / "run"), cache="kernels")
    command("train", "--resume", "--steps", "30", "--out", str(tmp_path / "run"), cache="kernels")
    models = {
        name: torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["model"]
        for name in ("straight", "again", "run")
    }
    for name in ("again", "run"):
        for key, tensor in models["straight"].items():
            assert torch.equal(models[name][key], tensor), (name, key)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['model']}-{c.get('memory', 'window')}")
def test_the_step_replayed_as_a_cuda_graph_follows_the_eager_step(case, tmp_path, device="cuda"):
    """The captured step against eager steps over epochs of a small data set: the window
    reset at each epoch's start, short last batches (eager) between replays, the window
    re-encoded every 7 steps, a window that fills first, the moving sketch, k = n (the cases of
    tests/test_graph_step.py, which compares the uncaptured static step on the CPU bit for bit)."""
    from distmatch.runs import RunDir
    from distmatch.training import TrainConfig, train

    images = np.random.default_rng(0).integers(0, 256, (220, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)  # 198 training images: 250 steps, 1.3 to 3.8 epochs
    config = dict(
        dataset=str(tmp_path / "images.npy"), arch="mlp", steps=250 if case["k"] < 64 else 12,
        log_every=10, eval_points=16, eval_every=10**6, seed=5, refresh_every=7, device=device,
        compile=False, **case,
    )  # fmt: skip
    train(TrainConfig(**config), tmp_path / "eager", progress=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="capturing the training step")  # not eager
        train(TrainConfig(cuda_graph=True, **config), tmp_path / "graph", progress=False)
    runs = [RunDir(tmp_path / r) for r in ("eager", "graph")]
    states = [torch.load(run.checkpoint, weights_only=True) for run in runs]
    for part in ("model", "window"):  # the window: codes and counters, or the moving sketch
        for name, tensor in states[0][part].items():
            torch.testing.assert_close(states[1][part][name], tensor, rtol=1e-4, atol=1e-6)
    losses = [[r["loss"] for r in run.read_metrics() if r["kind"] == "train"] for run in runs]
    assert len(losses[0]) >= 2
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model", ["cwae", "wae", "swae", "skwae"])
def test_the_graphed_loop_never_waits_for_the_gpu(model, tmp_path, monkeypatch):
    """From the first replay on, a k = 1 run's steps make no host-device synchronisation, so the
    host prepares the next step while the GPU replays this one: the batch, the draws, the
    window's bookkeeping and its re-encoding every 16 steps. torch.cuda's sync debug mode raises
    on any synchronisation; it is off only while the loop logs or saves (which read the GPU)."""
    from distmatch.training import TrainConfig, _graph, train
    from distmatch.training._state import RunState

    replays = []
    call = _graph.GraphedStep.__call__

    def watched(self, x, draws):
        parts = call(self, x, draws)
        if self.graph is not None:
            replays.append(1)
            torch.cuda.set_sync_debug_mode("error")
        return parts

    def unwatched(method):
        def run(self, *args):
            torch.cuda.set_sync_debug_mode("default")
            return method(self, *args)

        return run

    monkeypatch.setattr(_graph.GraphedStep, "__call__", watched)
    for name in ("log_interval", "save", "evaluate"):
        monkeypatch.setattr(RunState, name, unwatched(getattr(RunState, name)))
    config = TrainConfig(
        model=model, steps=300, log_every=100, eval_points=200, device="cuda", compile=False,
        cuda_graph=True,
    )  # fmt: skip
    try:
        train(config, tmp_path / "run", progress=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(replays) >= 300 - _graph.WARMUP - 1


def test_sketch_fit_sketch_fit_mmd_and_sample_on_cuda(tmp_path, capsys):
    path = tmp_path / "spiral.npz"
    argv = ["sketch", "--dataset", "spiral", "--points", "5000", "--n-frequencies", "500"]
    assert main([*argv, "--device", "cuda", "--out", str(path), "--no-progress"]) == 0
    fit = ["--epochs", "1", "--latent-codes", "2000", "--batch-size", "500", "--no-progress"]
    assert (
        main(["fit-sketch", str(path), *fit, "--device", "cuda", "--out", str(tmp_path / "g")]) == 0
    )
    assert (
        main(
            [
                "fit-mmd",
                "--dataset",
                "spiral",
                *fit,
                "--device",
                "cuda",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    out = tmp_path / "g.npy"
    assert (
        main(["sample", str(tmp_path / "g"), "--num", "100", "--device", "cuda", "--out", str(out)])
        == 0
    )
    assert np.load(out).shape == (100, 2)


def test_a_launch_of_more_processes_than_gpus_is_a_clear_choice():
    from distmatch.distributed import rank_device

    gpus = torch.cuda.device_count()
    env = {"WORLD_SIZE": str(gpus + 1), "RANK": "0", "LOCAL_RANK": "0"}
    env["LOCAL_WORLD_SIZE"] = str(gpus + 1)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        with pytest.warns(UserWarning, match="every rank runs on the CPU"):
            assert rank_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="processes per node must be at most"):
            rank_device("cuda")


def test_the_remaining_commands_on_cuda(tmp_path, capsys, device="cuda"):
    """fit-latent-sketch, reproduce mow and clgn, distances and an image sketch's class-conditional
    generator, end to end on ``device``."""
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--device", device, "--out", str(run)]) == 0
    latent = ["--epochs", "1", "--latent-codes", "1000", "--n-frequencies", "200"]
    out = tmp_path / "latent"
    assert (
        main(["fit-latent-sketch", str(run), *latent, "--device", device, "--out", str(out)]) == 0
    )
    assert (out / "samples.png").is_file()
    mow = ["--dataset", "digits", "--models", "cwae", "--k", "64", "--epochs", "1"]
    argv = ["reproduce", "mow", *mow, "--eval-points", "200", "--no-progress"]
    assert main([*argv, "--device", device, "--out", str(tmp_path / "mow")]) == 0
    clgn = ["reproduce", "clgn", "--epochs", "1", "--no-progress", "--device", device]
    assert main([*clgn, "--out", str(tmp_path / "clgn")]) == 0
    assert main(["distances", "--device", device, "--json"]) == 0
    digits = tmp_path / "digits.npz"
    argv = ["sketch", "--dataset", "digits", "--n-frequencies", "500", "--no-progress"]
    assert main([*argv, "--device", device, "--out", str(digits)]) == 0
    fit = ["--epochs", "1", "--batch-size", "100", "--latent-codes", "1000", "--no-progress"]
    generator = tmp_path / "digits-generator"
    assert main(["fit-sketch", str(digits), *fit, "--device", device, "--out", str(generator)]) == 0
    grid = tmp_path / "digits.png"
    sample = ["sample", str(generator), "--num", "20", "--device", device, "--out", str(grid)]
    assert main(sample) == 0
    assert grid.is_file()
