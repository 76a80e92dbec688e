"""The graphed training step (``cuda_graph``), run uncaptured on the CPU: the same run as eager.

The capture itself needs a GPU (tests/test_cuda.py); here the static step that it captures (static
batch and draws, the window written at a device-side position, counters moved afterwards) is
checked step for step against the eager one.
"""

import pytest
import torch

from distmatch.runs import RunDir
from distmatch.training import TrainConfig, _graph, train

CASES = [
    dict(model="cwae", optimizer="sgd", lr=0.01, k=1),
    dict(model="wae", optimizer="adam", k=3),  # 3 does not divide the data: a short last batch
    dict(model="swae", optimizer="sgd", lr=0.01, k=2, window_init="fill"),  # fills first
    dict(model="skwae", optimizer="adam", k=2),  # the feature window's running sum
    dict(model="skwae", memory="sketch", optimizer="sgd", lr=0.01, k=1),
    dict(model="cwae", optimizer="sgd", lr=0.01, k=64, n=64),  # classical: no window
    dict(model="skwae", optimizer="adam", k=64, n=64),  # and no feature sum
]


RUNS = ("eager", "graphed")


@pytest.fixture
def on_the_cpu(monkeypatch):
    """The static step on the CPU (it runs as it is, nothing captured); counts its steps."""
    monkeypatch.setattr(_graph, "CAPTURE_DEVICES", ("cuda", "cpu"))
    steps = []
    call = _graph.GraphedStep.__call__

    def counted(self, x, draws):
        parts = call(self, x, draws)
        steps.append(parts is not None)
        return parts

    monkeypatch.setattr(_graph.GraphedStep, "__call__", counted)
    return steps


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['model']}-{c.get('memory', 'window')}")
def test_the_static_step_trains_exactly_as_the_eager_step(case, tmp_path, on_the_cpu):
    config = dict(
        steps=None if case["k"] > 1 else 700, epochs=1, log_every=50, eval_points=200,
        eval_every=1, seed=5, refresh_every=7, device="cpu", compile=False, **case,
    )  # fmt: skip
    eager = train(TrainConfig(**config), tmp_path / "eager", progress=False)
    graphed = train(TrainConfig(cuda_graph=True, **config), tmp_path / "graphed", progress=False)
    assert sum(on_the_cpu) >= graphed["step"] - 40  # all but the filling and short steps
    states = [torch.load(RunDir(tmp_path / r).checkpoint, weights_only=True) for r in RUNS]
    for part in ("model", "window"):  # the window: codes and counters, or the moving sketch
        for name, tensor in states[0][part].items():
            assert torch.equal(tensor, states[1][part][name]), f"{part}.{name}"
    rows = [RunDir(tmp_path / run).read_metrics() for run in RUNS]
    assert rows[0] == rows[1]
    assert {k: v for k, v in eager.items() if "second" not in k} == {
        k: v for k, v in graphed.items() if "second" not in k
    }


def test_a_run_that_cannot_use_cuda_graphs_says_why_and_trains_eagerly(tmp_path):
    config = TrainConfig(steps=20, device="cpu", cuda_graph=True, eval_points=200)
    with pytest.warns(UserWarning, match="CUDA graphs need a CUDA device; the run is on cpu"):
        train(config, tmp_path / "run", progress=False)
    assert RunDir(tmp_path / "run").checkpoint.exists()


def test_cuda_graph_must_be_a_bool():
    with pytest.raises(TypeError, match="cuda_graph must be True or False; got 'yes'"):
        TrainConfig(cuda_graph="yes").validate()
