"""The rank side of tests/test_distributed.py: ``torchrun --nproc_per_node 2 _dist_worker.py OUT``.

Each rank runs the scenarios below under one gloo process group and saves what it saw to
``OUT/rank{r}.pt``; the tests compare the two ranks with each other and with one process. The
problem builders are shared with the tests, so both sides build the same models and data.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from distmatch import cli, distributed
from distmatch import sketch as sk
from distmatch.generation import GeneratorConfig, train_generator
from distmatch.generation._state import GeneratorRun
from distmatch.models import build_autoencoder, build_generator
from distmatch.objectives import AutoencoderObjective, cwae_term, global_objective
from distmatch.training import TrainConfig, train
from distmatch.training import _state as plots  # figures are drawn from there
from distmatch.window import MovingWindow

STEPS = 14  # small.npy: 41 training rows, k=4 -> 11 steps per epoch, the last with 1 row (1 + 0)
RUNS = {  # name -> TrainConfig fields of the 2-rank runs (SGD: the comparison tests the algebra)
    "cwae_small": {"dataset": "small.npy", "k": 4, "n": 12, "latent_dim": 3, "steps": STEPS},
    "wae_digits": {"model": "wae", "k": 4, "n": 16, "latent_dim": 4, "steps": 6},
}
COMMON = {"optimizer": "sgd", "lr": 0.01, "log_every": 2, "eval_points": 4, "eval_every": 1}
SKETCH_CLI = ["sketch", "--dataset", "spiral", "--points", "5000", "--n-frequencies", "64"]
SKETCH_CLI += ["--batch-size", "700", "--no-progress"]


def run_config(name: str, folder: Path, **changes) -> TrainConfig:
    fields = {**COMMON, **RUNS[name], **changes}
    if fields.get("dataset") == "small.npy":
        fields["dataset"] = str(folder / "small.npy")
    if name == "wae_digits":
        fields["refresh"] = "reencode"
    return TrainConfig(**fields)


def write_small_data(folder: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(folder / "small.npy", rng.standard_normal((45, 6)).astype(np.float32))


def autoencoder_problem(rows: int):
    """A float64 autoencoder, a global batch of ``rows`` digits-like images and a full window."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_autoencoder("mlp", sample_shape=(1, 8, 8), latent_dim=4).double()
    x = torch.rand(rows, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    window = MovingWindow(16, rows, 4, dtype=torch.float64, generator=torch.Generator())
    return model, x, window


def generator_problem(rows: int):
    """A float64 CL-GN generator, ``rows`` latent codes and a sketch of the spiral."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        generator = build_generator("clgn_mlp", sample_shape=(2,)).double()
    z = torch.randn(rows, generator.latent_dim, generator=torch.Generator().manual_seed(2))
    features = sk.FourierFeatures(2, 64, bandwidth=0.3, generator=torch.Generator().manual_seed(3))
    data = torch.randn(500, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    return generator, z.double(), sk.sketch_dataset(data, features, progress=False)


def sketch_problem():
    data = torch.randn(1003, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    features = sk.FourierFeatures(3, 40, dither=True, generator=torch.Generator().manual_seed(6))
    return data, features


def gradients(params) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in params]


# --- scenarios -----------------------------------------------------------------------------------


def distance_gradients() -> dict:
    """Distance term and full WAE cost of the gathered codes: averaged gradients of the encoder."""
    model, x, window = autoencoder_problem(6)
    part, sizes = distributed.split_batch(torch.arange(6))
    codes = distributed.all_gather_rows(model.encode(x[part]), sizes)
    cwae_term(window.join(codes), None).backward()
    distributed.average_gradients(model.parameters())
    distance = gradients(model.encoder.parameters())

    model, x, window = autoencoder_problem(5)  # uneven parts: 3 + 2
    part, sizes = distributed.split_batch(torch.arange(5))
    z = model.encode(x[part])
    codes = distributed.all_gather_rows(z, sizes)
    objective = AutoencoderObjective("wae")
    gen = torch.Generator().manual_seed(7)
    parts = global_objective(objective, x[part], model.decode(z), window.join(codes), gen)
    parts["loss"].backward()
    distributed.average_gradients(model.parameters())
    return {
        "distance": distance,
        "loss_parts": {k: float(v.detach()) for k, v in parts.items()},
        "loss": gradients(model.parameters()),
    }


def generator_gradients() -> dict:
    generator, z, sketch = generator_problem(9)  # 5 + 4 samples
    part, _ = distributed.split_batch(torch.arange(9))
    loss = sk.sketch_distance(sketch, generator(z[part]), across_ranks=True)
    loss.backward()
    distributed.average_gradients(generator.parameters())
    return {"loss": float(loss), "grads": gradients(generator.parameters())}


def sketches(folder: Path) -> dict:
    data, features = sketch_problem()
    w = distributed.world()
    result = {
        "float64": sk.sketch_dataset(
            data, features, batch_size=100, progress=False, across_ranks=True
        ),
        "float32": sk.sketch_dataset(
            data.float(), features, batch_size=100, scale=2.0, progress=False, across_ranks=True
        ),
        "iterable": sk.sketch_dataset(
            [data[w.rank :: w.size]], features, batch_size=100, progress=False, across_ranks=True
        ),
        "unit_ball": sk.unit_ball_scaling(data, batch_size=100, across_ranks=True),
    }
    result = {
        k: (v.sum, v.count, v.scale) if isinstance(v, sk.Sketch) else v for k, v in result.items()
    }
    other = sk.FourierFeatures(3, 40, dither=True, generator=torch.Generator().manual_seed(w.rank))
    try:
        sk.sketch_dataset(data, other, progress=False, across_ranks=True)
    except ValueError as err:
        result["mismatch"] = str(err)
    cli.main([*SKETCH_CLI, "--out", str(folder / "cli_two_ranks.npz")])
    distributed.barrier()  # rank 0 has written the file that generator_run reads
    return result


def record_every_step() -> dict:
    """Flat parameters after every optimizer step and window contents after every push."""
    record: dict[str, list[torch.Tensor]] = {"params": [], "window": []}

    def after_step(optimizer, args, kwargs) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        record["params"].append(torch.cat([p.detach().flatten() for p in params]))

    push = MovingWindow.push

    def recorded_push(self, z):
        push(self, z)
        record["window"].append(self.contents().clone())

    register_optimizer_step_post_hook(after_step)
    MovingWindow.push = recorded_push
    return record


def errors(folder: Path) -> dict:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = cli.main(["train", "--k", "3", "--steps", "2", "--out", str(folder / "odd")])
    try:  # rank 0 alone looks at the folder; its error must reach rank 1
        train(run_config("cwae_small", folder), folder / "missing", resume=True, progress=False)
    except ValueError as err:
        missing = f"{type(err).__name__}: {err}"
    return {"status": status, "stderr": stderr.getvalue(), "missing": missing}


def flags() -> tuple[bool, ...]:
    """Rank 0 asks to stop, rank 1 to save: both must learn both."""
    rank = distributed.world().rank
    param = torch.nn.Parameter(torch.zeros(3))
    param.grad = torch.full((3,), float(rank))
    agreed = distributed.average_gradients([param], (rank == 0, rank == 1, False))
    return (*agreed, float(param.grad[0]))


def generator_run(folder: Path) -> None:
    config = GeneratorConfig(sketch=str(folder / "cli_two_ranks.npz"), **GENERATOR_RUN)
    train_generator(config, folder / "generator", progress=False)


GENERATOR_RUN = {"latent_codes": 1000, "batch_size": 250, "epochs": 1, "device": "cpu"}


def without_figures() -> None:
    """Figures are not compared; drawing them would take most of the time."""
    plots.save_autoencoder_figures = plots.save_training_curves = lambda *args, **kwargs: None
    GeneratorRun.evaluate = lambda self, **kwargs: {}


def main(folder: Path) -> None:
    without_figures()
    with distributed.process_group("cpu"):
        rank = distributed.world().rank
        result = {
            "distance_gradients": distance_gradients(),
            "generator_gradients": generator_gradients(),
            "sketches": sketches(folder),
            "errors": errors(folder),
            "flags": flags(),
        }
        generator_run(folder)
        record = record_every_step()
        for name in RUNS:
            train(run_config(name, folder), folder / name, progress=False)
        result["record"] = record
        torch.save(result, folder / f"rank{rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
