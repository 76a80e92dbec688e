"""The benchmark scripts that patch the training loop still reach what they patch."""

import importlib.util
from pathlib import Path

import pytest

import distmatch.training._loop as loop_module
from distmatch.training import TrainConfig

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("alone", [True, False])
def test_loop_host_times_the_loop_without_its_step_or_with_it(alone, monkeypatch):
    loop_host = _script("loop_host")
    calls = []
    forward = loop_module._forward

    def counted(*args):
        calls.append(1)
        return forward(*args)

    monkeypatch.setattr(loop_module, "_forward", counted)
    config = TrainConfig(
        dataset="digits", k=1, n=8, steps=30, refresh_every=4, device="cpu", compile=False,
        cuda_graph=alone, eval_every=10**6,
    )  # fmt: skip
    assert loop_host.loop_seconds(config, alone) > 0
    assert len(calls) == (0 if alone else 30)
