"""Bad input at the public Python boundary: one TypeError/ValueError that names the argument,
never an internal error, a NaN or a silently wrong value (cases found by a sweep of the API).

Each case: (id, call, exception, pattern of its message).
"""

import json
import shutil

import numpy as np
import pytest
import torch

from distmatch import distances, evaluation, objectives, report, sketch
from distmatch._core import atomic_path
from distmatch.cli import main
from distmatch.data import read_npy
from distmatch.generation import load_sketches
from distmatch.runs import RunDir, RunError
from distmatch.window import MovingWindow


def _window_state(**counters):
    window = MovingWindow(8, 2, 3)
    state = window.state_dict()
    for name, value in counters.items():
        state[name] = torch.tensor(value)
    return lambda: MovingWindow(8, 2, 3).load_state_dict(state)


def _features(**metadata):
    return lambda: sketch.FourierFeatures.from_frequencies(torch.randn(2, 8), **metadata)


CASES = [
    (
        "cramer-wold-scaled-as-a-string",
        lambda: distances.cramer_wold(torch.randn(5, 2), torch.randn(5, 2), scaled="False"),
        TypeError,
        r"scaled must be True or False; got 'False'",
    ),
    (
        "mmd-of-a-kernel-width-that-underflows",
        lambda: distances.mmd(
            torch.randn(16, 3), torch.randn(16, 3), kernel="gaussian", bandwidth=1e-30
        ),
        ValueError,
        r"bandwidth and scales must give kernel widths within torch.float32's range",
    ),
    (
        "mmd-of-a-scale-that-overflows",
        lambda: distances.mmd(torch.randn(16, 3), torch.randn(16, 3), scales=[1e200]),
        ValueError,
        r"got 6e\+200 \(bandwidth 1, scale 1e\+200\)",
    ),
    (
        "mmd-of-a-bandwidth-whose-square-overflows",
        lambda: distances.mmd(torch.randn(16, 3), torch.randn(16, 3), bandwidth=1e160),
        ValueError,
        r"kernel widths within .*; got inf",
    ),
    (
        "cramer-wold-of-a-vanishing-gamma",
        lambda: distances.cramer_wold_normality(torch.randn(16, 3), gamma=1e-300),
        ValueError,
        r"gamma must be in \[1e-30, 1e\+30\]; got 1e-300",
    ),
    (
        "phi-of-dimension-0",
        lambda: distances.phi(torch.tensor([1.0]), 0),
        ValueError,
        r"dim must be an int >= 1; got 0",
    ),
    (
        "phi-of-a-negative-argument",
        lambda: distances.phi(torch.tensor([-1.0]), 3),
        ValueError,
        r"s must hold values >= 0; got a minimum of -1",
    ),
    (
        "prior-sketch-of-bandwidth-0",
        lambda: sketch.prior_sketch(4, 8, 0),
        ValueError,
        r"bandwidth must be a finite number > 0; got 0",
    ),
    (
        "prior-sketch-of-a-bandwidth-too-small-for-finite-frequencies",
        lambda: sketch.prior_sketch(4, 8, 1e-300),
        ValueError,
        r"bandwidth must be large enough for finite torch.float32 frequencies",
    ),
    (
        "prior-sketch-in-integers",
        lambda: sketch.prior_sketch(4, 8, dtype=torch.int64),
        TypeError,
        r"dtype must be a floating-point torch.dtype; got torch.int64",
    ),
    (
        "features-of-a-subnormal-bandwidth",
        lambda: sketch.FourierFeatures(2, 4, bandwidth=1e-320),
        ValueError,
        r"bandwidth must be large enough for finite torch.float32 frequencies",
    ),
    (
        "features-with-a-covariance-of-another-dimension",
        _features(cov=torch.eye(3)),
        ValueError,
        r"cov must have shape \(D, D\) = \(2, 2\); got \(3, 3\)",
    ),
    (
        "features-of-an-unknown-law",
        _features(law="5"),
        ValueError,
        r"law must be one of",
    ),
    (
        "a-prior-distance-that-would-broadcast",
        lambda: sketch.sketch_prior_distance(torch.zeros(2, 32), torch.zeros(32)),
        ValueError,
        r"joined must be a sketch of the prior's shape \(32,\); got \(2, 32\)",
    ),
    (
        "median-bandwidth-with-a-negative-factor",
        lambda: sketch.median_bandwidth(torch.rand(50, 3), factor=-1.0),
        ValueError,
        r"factor must be a finite number > 0; got -1.0",
    ),
    (
        "an-empty-rank-part-in-one-process",
        lambda: sketch.sketch_distance(
            sketch.sketch_dataset(torch.rand(50, 2), sketch.FourierFeatures(2, 10), progress=False),
            torch.rand(0, 2),
            across_ranks=True,
        ),
        ValueError,
        r"samples must have at least 1 points; got 0",
    ),
    (
        "wae-distance-of-negative-points",
        lambda: evaluation.wae_distance(torch.randn(30, 2), torch.Generator(), points=-5),
        ValueError,
        r"points must be an int >= 1; got -5",
    ),
    (
        "cw-distance-of-one-point",
        lambda: evaluation.cw_distance(torch.randn(30, 2), torch.Generator(), points=1),
        ValueError,
        r"points must be >= 2 \(codes per distance estimate\); got 1",
    ),
    (
        "wae-distance-of-no-repeats",
        lambda: evaluation.wae_distance(torch.randn(30, 2), torch.Generator(), repeats=0),
        ValueError,
        r"repeats must be an int >= 1; got 0",
    ),
    (
        "frechet-distance-of-complex-statistics",
        lambda: evaluation.frechet_distance(np.array([5j]), [[1.0]], [0.0], [[1.0]]),
        TypeError,
        r"mu1 must hold real numbers; got complex values",
    ),
    (
        "decoded-samples-in-batches-of-0",
        lambda: evaluation.decoded_samples(
            torch.nn.Identity(), 4, generator=torch.Generator(), batch_size=0
        ),
        ValueError,
        r"batch_size must be an int >= 1; got 0",
    ),
    (
        "an-image-grid-of-0-columns",
        lambda: report.image_grid(torch.rand(4, 1, 8, 8), ncol=0),
        ValueError,
        r"ncol must be an int >= 1; got 0",
    ),
    (
        "the-window-weight-of-0-fresh-codes",
        lambda: MovingWindow(8, 2, 3).unbiased_weight(0),
        ValueError,
        r"b must be between 1 and k=2 fresh codes; got 0",
    ),
    (
        "integer-codes-joined-with-a-window",
        lambda: MovingWindow(8, 2, 3).join(torch.zeros(2, 3, dtype=torch.long)),
        TypeError,
        r"codes must have a floating-point dtype; got torch.int64",
    ),
    (
        "a-window-state-with-a-negative-count",
        _window_state(filled=-3),
        ValueError,
        r"a window state must have 0 <= filled <= 6 and 0 <= pointer < 6",
    ),
    (
        "draws-of-an-unknown-model",
        lambda: objectives.draw("WAE", (8, 3), None),
        ValueError,
        r"model must be one of 'cwae', 'skwae', 'swae', 'wae'; got 'WAE'",
    ),
    (
        "the-sensitivity-of-unknown-neighbours",
        lambda: sketch.sensitivity(10, quantized=False, neighbours="bogus", norm=2),
        ValueError,
        r"neighbours must be one of 'add_remove', 'replace'; got 'bogus'",
    ),
    (
        "the-sensitivity-in-a-norm-other-than-1-or-2",
        lambda: sketch.sensitivity(10, quantized=False, neighbours="replace", norm=7),
        ValueError,
        r"norm must be 1 or 2; got 7",
    ),
    (
        "an-analytic-gaussian-of-delta-0",
        lambda: sketch.analytic_gaussian_std(1.0, 0.0, 1.0),
        ValueError,
        r"delta must be in \(0, 1\); got 0.0",
    ),
    (
        "an-analytic-gaussian-with-no-root-in-range",
        lambda: sketch.analytic_gaussian_std(1e300, 1e-5, 1.0),
        ValueError,
        r"must leave a noise scale within e\^30 of the sensitivity",
    ),
    (
        "directions-drawn-from-an-int-as-generator",
        lambda: distances.sliced_wasserstein(torch.randn(4, 2), torch.randn(4, 2), generator=0),
        TypeError,
        r"generator must be a torch.Generator; got int",
    ),
    (
        "directions-in-integers",
        lambda: distances.random_projections(3, 4, dtype=torch.int64),
        TypeError,
        r"dtype must be a floating-point torch.dtype; got torch.int64",
    ),
    (
        "directions-beyond-memory",
        lambda: distances.random_projections(3, 10**13),
        ValueError,
        r"n_projections=10000000000000 needs about",
    ),
    (
        "a-window-of-integer-codes",
        lambda: MovingWindow(8, 2, 3, dtype=torch.int64),
        TypeError,
        r"dtype must be a floating-point torch.dtype; got torch.int64",
    ),
    (
        "the-median-radius-of-an-unknown-law",
        lambda: sketch.radius_median("bogus", 3),
        ValueError,
        r"law must be one of",
    ),
    (
        "a-sketch-whose-privacy-is-a-string",
        lambda: sketch.Sketch.from_parts(
            sketch.FourierFeatures(2, 4, seed=0), total=torch.zeros(8), count=1, privacy="yes"
        ),
        TypeError,
        r"privacy must be a Privacy record or None; got 'yes'",
    ),
    (
        "a-private-sketch-of-a-vanishing-epsilon",
        lambda: sketch.private_sketch(
            sketch.sketch_dataset(torch.rand(50, 2), sketch.FourierFeatures(2, 10), progress=False),
            epsilon=1e-310,
        ),
        ValueError,
        r"epsilon and delta must leave a noise scale of at most 1e\+12; got inf",
    ),
    (
        "mmd-scales-as-a-dict",
        lambda: distances.mmd(torch.randn(8, 2), torch.randn(8, 2), scales={1.0: 2}),
        TypeError,
        r"scales must be a sequence of positive numbers; got dict",
    ),
    (
        "histograms-of-a-1-d-array",
        lambda: report.save_histograms(np.zeros(5), np.zeros((5, 2)), "unused.png"),
        ValueError,
        r"data must be a 2-D array of points \(N, D\), N >= 1; got \(5,\)",
    ),
    (
        "histograms-of-no-samples",
        lambda: report.save_histograms(None, None, "unused.png"),
        ValueError,
        r"samples must be a 2-D array of points \(N, D\), N >= 1; got NoneType",
    ),
    (
        "reconstructions-of-another-count",
        lambda: report.save_reconstructions(
            torch.rand(4, 1, 8, 8), torch.rand(3, 1, 8, 8), "unused.png"
        ),
        ValueError,
        r"reconstructions must have the originals' shape \(4, 1, 8, 8\); got \(3, 1, 8, 8\)",
    ),
    (
        "a-run-folder-that-is-none",
        lambda: RunDir(None),
        TypeError,
        r"a run folder must be a path; got NoneType",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "match"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_input_is_one_named_error(call, error, match):
    with pytest.raises(error, match=match) as caught:
        call()
    assert len(str(caught.value).splitlines()) == 1


def test_a_refused_window_state_leaves_the_window_as_it_was():
    window = MovingWindow(8, 2, 3)
    window.push(torch.randn(2, 3))
    before, codes = window.position, window.codes.clone()
    state = MovingWindow(8, 2, 3).state_dict()
    state["filled"] = torch.tensor(-3)
    state["codes"] = torch.full((6, 3), 7.0)
    with pytest.raises(ValueError, match="a window state must have"):
        window.load_state_dict(state)
    assert window.position == before and torch.equal(window.codes, codes)
    saved = window.state_dict()
    assert (int(saved["pointer"]), int(saved["filled"])) == before


def test_the_window_state_of_a_good_run_still_loads():
    window = MovingWindow(8, 2, 3)
    window.push(torch.randn(2, 3))
    again = MovingWindow(8, 2, 3)
    again.load_state_dict(window.state_dict())
    assert again.position == window.position and torch.equal(again.codes, window.codes)


def test_paths_that_are_folders_or_files_of_the_wrong_kind(tmp_path):
    (tmp_path / "folder").mkdir()
    with (
        pytest.raises(IsADirectoryError, match="'.*folder' is a folder"),
        atomic_path(tmp_path / "folder"),
    ):
        pass
    assert list((tmp_path / "folder").iterdir()) == []  # no temporary file left beside it
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="'.*file' must be a run folder; it is a file"):
        RunDir(tmp_path / "file")


def test_npy_readers_and_sketch_loaders_take_plain_strings(tmp_path):
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32))
    assert read_npy(str(tmp_path / "v.npy")).shape == (20, 3)
    features = sketch.FourierFeatures(2, 8, seed=0)
    sketch.Sketch(features).update(torch.rand(10, 2)).save(tmp_path / "s.npz")
    whole, classes = load_sketches(str(tmp_path / "s.npz"))
    assert whole.count == 10 and classes is None
    with pytest.raises(ValueError, match="paths must name at least one sketch file; got none"):
        load_sketches([])


def test_a_private_sketch_file_without_all_of_its_privacy_is_refused(tmp_path):
    s = sketch.sketch_dataset(torch.rand(50, 2), sketch.FourierFeatures(2, 10), progress=False)
    sketch.private_sketch(s, epsilon=0.5, delta=1e-5, mechanism="gaussian").save(tmp_path / "p.npz")
    arrays = dict(np.load(tmp_path / "p.npz"))
    del arrays["dp_delta"]
    np.savez(tmp_path / "q.npz", **arrays)
    with pytest.raises(
        sketch.SketchError, match=r"must record all of its privacy; got no \['dp_delta'\]"
    ):
        sketch.Sketch.load(tmp_path / "q.npz")


def test_an_edited_run_is_a_run_error_not_a_key_or_size_error(tmp_path):
    run = tmp_path / "run"
    assert (
        main(["train", "--steps", "5", "--eval-points", "100", "--no-progress", "--out", str(run)])
        == 0
    )
    for change, match in (
        (lambda r: r["resolved"].update(latent_dim=3), r"fit together; .*size mismatch"),
        (lambda r: r["resolved"].pop("sample_shape"), r"'sample_shape' is missing"),
    ):
        edited = tmp_path / "edited"
        shutil.copytree(run, edited, dirs_exist_ok=True)
        record = json.loads((run / "config.json").read_text())
        change(record)
        (edited / "config.json").write_text(json.dumps(record))
        with pytest.raises(RunError, match=match):
            evaluation.load_autoencoder(edited)


def test_a_corrupt_fid_cache_file_is_one_error_that_says_to_delete_it(tmp_path):
    for name, content in (("zip", b"PK\x03\x04 not really a zip"), ("npy", None)):
        path = tmp_path / f"{name}.npz"
        if content is None:
            with path.open("wb") as file:
                np.save(file, np.zeros(3))  # an .npy array under the .npz name
        else:
            path.write_bytes(content)
        with pytest.raises(ValueError, match="must be an .npz file with arrays 'mu' and 'sigma'"):
            evaluation.cached_statistics(name, lambda: (np.zeros(2), np.eye(2)), tmp_path)
