"""FID and Parzen log-likelihood of an autoencoder's samples, and `distmatch evaluate --fid/--parzen`.

The real Inception weights are not needed: a small stand-in feature network replaces the loader.
"""

import json

import numpy as np
import pytest
import torch
from torch import nn

from distmatch.cli import _evaluate as evaluate_command  # where evaluate loads the network
from distmatch.cli import main
from distmatch.data import load_split
from distmatch.evaluation import (
    PARZEN_BANDWIDTHS,
    activation_statistics,
    frechet_distance,
    parzen_log_likelihood,
    select_parzen_bandwidth,
)
from distmatch.evaluation import _inception as inception
from distmatch.evaluation import _samples as sample_metrics
from distmatch.training import load_autoencoder

QUICK = ["--steps", "60", "--log-every", "20", "--eval-points", "100", "--no-progress"]


class StandIn(nn.Module):
    """Pooled pixels through a fixed random projection: (B, C, H, W) -> (B, 6)."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(16, 6)
        torch.manual_seed(0)
        nn.init.normal_(self.project.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(x.mean(1, keepdim=True), 4).flatten(1)
        return torch.tanh(self.project(pooled))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("metrics") / "run"
    assert main(["train", *QUICK, "--out", str(out)]) == 0
    return out


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTMATCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(evaluate_command, "load_inception", lambda *args, **kwargs: StandIn())


def test_fid_is_the_frechet_distance_of_decoded_samples_and_the_test_split(run, tmp_path):
    _, model = load_autoencoder(run)
    test = load_split("digits", "test")
    network = StandIn()
    fid = sample_metrics.autoencoder_fid(
        model,
        test,
        network,
        samples=300,
        generator=torch.Generator().manual_seed(4),
        cache_dir=tmp_path,
    )
    images = torch.cat(
        list(sample_metrics.decoded_samples(model, 300, generator=torch.Generator().manual_seed(4)))
    )
    assert images.min() >= 0 and images.max() <= 1
    expected = frechet_distance(
        *activation_statistics(images, network),
        *activation_statistics(test.get_batch(torch.arange(len(test))), network),
    )
    assert fid == pytest.approx(expected, rel=1e-9)
    assert len(list(tmp_path.glob("digits-test-*.npz"))) == 1  # statistics cached


def test_statistics_key_names_the_split_and_fingerprints_its_content():
    test, train = load_split("digits", "test"), load_split("digits", "train")
    key = sample_metrics.statistics_key(test)
    assert key.startswith(f"digits-test-{len(test)}-1x8x8-")
    assert key != sample_metrics.statistics_key(train)


def test_parzen_matches_a_direct_computation(run):
    _, model = load_autoencoder(run)
    train, test = load_split("digits", "train"), load_split("digits", "test")
    result = sample_metrics.autoencoder_parzen(
        model, train, test, samples=200, validation=100, generator=torch.Generator().manual_seed(2)
    )
    samples = torch.cat(
        list(sample_metrics.decoded_samples(model, 200, generator=torch.Generator().manual_seed(2)))
    ).flatten(1)
    val = train.get_batch(torch.arange(len(train) - 100, len(train))).flatten(1)
    bandwidth, _ = select_parzen_bandwidth(samples, val)
    estimate = parzen_log_likelihood(
        samples, test.get_batch(torch.arange(len(test))).flatten(1), bandwidth
    )
    assert result["parzen_bandwidth"] == bandwidth and bandwidth in PARZEN_BANDWIDTHS
    assert result["parzen_log_likelihood"] == pytest.approx(estimate.mean, rel=1e-12)
    assert result["parzen_std_error"] == pytest.approx(estimate.std_error, rel=1e-12)


def test_evaluate_adds_fid_and_parzen_to_eval_json(run, stand_in, capsys):
    argv = ["evaluate", str(run), "--points", "100", "--fid", "--fid-samples", "200"]
    assert main([*argv, "--parzen", "--parzen-samples", "200"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert np.isfinite(result["fid"]) and result["fid"] >= 0 and result["fid_samples"] == 200
    assert {"parzen_log_likelihood", "parzen_std_error", "parzen_bandwidth"} <= set(result)
    assert {"rec_error", "wae_distance", "cw_distance"} <= set(result)


def test_evaluate_fid_without_weights_is_one_clear_line(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISTMATCH_CACHE", str(tmp_path / "empty"))
    before = (run / "eval.json").read_text() if (run / "eval.json").exists() else None
    assert main(["evaluate", str(run), "--fid"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and inception.WEIGHTS_FILE in err
    after = (run / "eval.json").read_text() if (run / "eval.json").exists() else None
    assert before == after  # nothing written


def test_evaluate_fid_on_vector_data_is_refused(tmp_path, capsys):
    data = tmp_path / "points.npy"
    np.save(data, np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32))
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(data), *QUICK, "--out", str(out)]) == 0
    assert main(["evaluate", str(out), "--fid"]) == 2
    assert "--fid needs image data" in capsys.readouterr().err
