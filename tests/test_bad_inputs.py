"""Every bad input gets one clear line on stderr and an exit status, and no existing file changes.

Each case of ``CASES`` names a setup (what is in the working folder before the command), the
command line, the exit status, a pattern the one-line message must match, and words it must not
hold (internals that would mislead). The folder's files are hashed before and after: a refused
command changes nothing.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distmatch.cli import main

QUICK = ["--steps", "20", "--log-every", "10", "--eval-points", "100", "--no-progress"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A finished digits run, a sketch of the circle toy and a 3-D array, made once."""
    root = tmp_path_factory.mktemp("prepared")
    assert main(["train", *QUICK, "--out", str(root / "run")]) == 0
    argv = ["sketch", "--dataset", "circle", "--points", "2000", "--n-frequencies", "100"]
    assert main([*argv, "--out", str(root / "circle.npz"), "--no-progress"]) == 0
    np.save(root / "cube.npy", np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32))
    return root


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def edit_config(run: Path, **changes) -> None:
    record = json.loads((run / "config.json").read_text())
    record["config"].update(changes)
    (run / "config.json").write_text(json.dumps(record))


def faces(folder: Path, count: int, *, corrupt: bool = False) -> None:
    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (64, 64), (40 * i % 255, 90, 160)).save(folder / f"{i:03d}.png")
    if corrupt:
        (folder / "999.png").write_bytes(b"\x89PNG not really")


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# (id, setup(work), argv with {run} {work} {sketch} {cube} placeholders, status, match, forbidden)
CASES = [
    (
        "resume-after-editing-the-model",
        lambda w: edit_config(w / "run", model="wae"),
        ["train", "--resume", "--out", "{run}", "--no-progress"],
        2,
        r"must match the checkpoint.*model: 'wae' -> 'cwae'|model: 'cwae' -> 'wae'",
        ["Traceback"],
    ),
    (
        "resume-with-an-unknown-config-field",
        lambda w: edit_config(w / "run", colour="blue"),
        ["train", "--resume", "--out", "{run}", "--no-progress"],
        2,
        r"unknown fields colour",
        ["__init__()", "unexpected keyword"],
    ),
    (
        "evaluate-negative-points",
        None,
        ["evaluate", "{run}", "--points", "-10"],
        2,
        r"--points must be at least 2 \(codes per distance\); got -10",
        [],
    ),
    (
        "evaluate-zero-points",
        None,
        ["evaluate", "{run}", "--points", "0"],
        2,
        r"--points must be at least 2",
        ["x must have"],
    ),
    (
        "evaluate-with-a-text-file-as-inception-weights",
        lambda w: write(w / "weights.pth", b"not weights at all\n" * 10),
        ["evaluate", "{run}", "--fid", "--inception-weights", "{work}/weights.pth"],
        2,
        r"must be a torch state-dict file",
        ["KeyError: 101", "Traceback"],
    ),
    (
        "evaluate-a-garbage-checkpoint",
        lambda w: write(w / "run" / "checkpoint.pt", bytes(range(256)) * 8),
        ["evaluate", "{run}"],
        2,
        r"must be a distmatch checkpoint; it cannot be read",
        ["weights_only"],
    ),
    (
        "evaluate-an-empty-checkpoint",
        lambda w: write(w / "run" / "checkpoint.pt", b""),
        ["evaluate", "{run}"],
        2,
        r"must be a distmatch checkpoint; it is empty",
        ["()"],
    ),
    (
        "k-larger-than-the-training-split",
        None,
        ["train", "--k", "5000", "--n", "5000", *QUICK, "--out", "{work}/big-k"],
        2,
        r"k must be at most the size of the training split \(1500 samples of digits\); got k=5000",
        [],
    ),
    (
        "n-that-memory-cannot-hold",
        None,
        ["train", "--n", "100000000", *QUICK, "--out", "{work}/big-n"],
        2,
        r"the cwae distance of n=100000000 codes needs about [\d,.]+ [GM]iB; [\d,.]+ [GM]iB are "
        r"available on cpu",
        [],
    ),
    (
        "a-two-image-face-folder",
        lambda w: faces(w / "two", 2),
        [
            "train",
            "--dataset",
            "ffhq",
            "--data-dir",
            "{work}/two",
            "--image-size",
            "32",
            "--arch",
            "mlp",
            *QUICK,
            "--out",
            "{work}/two-run",
        ],
        2,
        r"test split of ffhq must hold at least 2 samples.*needs at least 20 samples",
        ["x must have"],
    ),
    (
        "a-face-folder-with-a-file-that-is-no-image",
        lambda w: faces(w / "bad", 25, corrupt=True),
        [
            "train",
            "--dataset",
            "ffhq",
            "--data-dir",
            "{work}/bad",
            "--image-size",
            "32",
            "--arch",
            "mlp",
            *QUICK,
            "--out",
            "{work}/bad-run",
        ],
        2,
        r"999.png.* must be a readable JPEG or PNG image; got \d+ bytes that are no image format",
        ["BytesIO", "0x"],
    ),
    (
        "sketch-merge-of-one-file-twice",
        None,
        ["sketch", "merge", "{sketch}", "{sketch}", "--out", "{work}/twice.npz"],
        2,
        r"is given twice",
        [],
    ),
    (
        "sketch-merge-onto-an-existing-file",
        lambda w: shutil.copy(w / "circle.npz", w / "other.npz"),
        ["sketch", "merge", "{sketch}", "{work}/other.npz", "--out", "{sketch}"],
        2,
        r"--out '.*circle.npz' exists already",
        [],
    ),
    (
        "sketch-onto-an-existing-file",
        None,
        ["sketch", "--dataset", "spiral", "--n-frequencies", "50", "--out", "{sketch}"],
        2,
        r"exists already",
        [],
    ),
    (
        "sketch-with-too-many-frequencies",
        None,
        [
            "sketch",
            "--dataset",
            "spiral",
            "--n-frequencies",
            "100000000000",
            "--out",
            "{work}/x.npz",
        ],
        2,
        r"n_frequencies=100000000000 needs about [\d,.]+ GiB",
        ["alloc", "Traceback"],
    ),
    (
        "sketch-by-label-of-vectors-without-labels",
        None,
        ["sketch", "--dataset", "{cube}", "--by-label", "--out", "{work}/labels.npz"],
        2,
        r"--by-label needs a labelled data set; '.*cube.npy' has no labels",
        [],
    ),
    (
        "private-sketch-with-a-bandwidth-estimated-from-the-data",
        None,
        [
            "sketch",
            "--dataset",
            "digits",
            "--epsilon",
            "1",
            "--delta",
            "1e-5",
            "--out",
            "{work}/p.npz",
        ],
        2,
        r"--epsilon needs a --bandwidth number and a fixed --scale.*; got --bandwidth auto "
        r"\(estimated from the data\)",
        [],
    ),
    (
        "private-sketch-of-vectors-with-a-scale-estimated-from-the-data",
        None,
        ["sketch", "--dataset", "spiral", "--epsilon", "1", "--out", "{work}/p.npz"],
        2,
        r"; got --scale auto \(estimated from the data\)",
        [],
    ),
    (
        "sketch-mechanism-without-epsilon",
        None,
        ["sketch", "--dataset", "digits", "--mechanism", "laplace", "--out", "{work}/p.npz"],
        2,
        r"--mechanism and --delta need --epsilon; got no --epsilon",
        [],
    ),
    (
        "private-sketch-with-the-classical-gaussian-at-epsilon-2",
        None,
        [
            "sketch",
            "--dataset",
            "digits",
            "--epsilon",
            "2",
            "--delta",
            "1e-5",
            "--mechanism",
            "gaussian",
            "--bandwidth",
            "3",
            "--out",
            "{work}/p.npz",
        ],
        2,
        r"epsilon must be < 1 for the classical Gaussian mechanism; got 2.0",
        ["Traceback"],
    ),
    (
        "sketch-by-label-of-shards",
        None,
        ["sketch", "--dataset", "digits", "--by-label", "--shard", "1/2", "--out", "{work}/s.npz"],
        2,
        r"--by-label and --shard cannot be combined",
        [],
    ),
    (
        "sketch-info-of-a-ten-byte-file",
        lambda w: write(w / "tiny.npz", b"0123456789"),
        ["sketch", "info", "{work}/tiny.npz"],
        2,
        r"must be an .npz archive \(a zip of arrays\); got .*tiny.npz', which is not one \(10 bytes\)",
        ["allow_pickle", "pickled"],
    ),
    (
        "fit-sketch-with-eval-data-of-another-dimension",
        None,
        ["fit-sketch", "{sketch}", "--eval-data", "{cube}", "--epochs", "1", "--out", "{work}/g"],
        2,
        r"eval_data must have the dimension of the sketch's data \(D=2\); got .*cube.npy' of "
        r"dimension 3",
        ["size mismatch"],
    ),
    (
        "fit-mmd-with-a-batch-memory-cannot-hold",
        None,
        ["fit-mmd", "--dataset", "spiral", "--batch-size", "100000000", "--out", "{work}/m"],
        2,
        r"batch_size=100000000 \(mmd loss\) needs about [\d,.]+ [GM]iB",
        [],
    ),
    (
        "fit-sketch-that-diverges",
        None,
        [
            "fit-sketch",
            "{sketch}",
            "--lr",
            "1e12",
            "--epochs",
            "2",
            "--latent-codes",
            "2000",
            "--batch-size",
            "500",
            "--eval-points",
            "100",
            "--no-progress",
            "--out",
            "{work}/diverged",
        ],
        1,
        r"the loss became NaN or infinite before step \d+ \(lr=1000000000000.0\)",
        ["samples must contain only finite values"],
    ),
    (
        "train-with-a-negative-seed",
        None,
        ["train", *QUICK, "--seed", "-1", "--out", "{work}/negative-seed"],
        2,
        r"argument --seed: must be an int in \[0, 2\^32\); got '-1'",
        [],
    ),
    (
        "fit-sketch-with-a-seed-too-large-for-int64-counters",
        None,
        ["fit-sketch", "{sketch}", "--seed", str(2**62), "--out", "{work}/big-seed"],
        2,
        r"argument --seed: must be an int in \[0, 2\^32\); got '4611686018427387904'",
        ["Overflow"],
    ),
    (
        "sample-with-a-seed-that-is-no-int",
        None,
        ["sample", "{run}", "--seed", "1.5", "--out", "{work}/s.png"],
        2,
        r"argument --seed: must be an int in \[0, 2\^32\); got '1.5'",
        [],
    ),
    (
        "sample-over-an-existing-file",
        lambda w: write(w / "mine.npy", b"the user's own data"),
        ["sample", "{run}", "--num", "10", "--out", "{work}/mine.npy"],
        2,
        r"--out '.*mine.npy' exists already; choose another file, remove it or pass --overwrite",
        [],
    ),
    (
        "report-over-an-existing-file",
        lambda w: write(w / "figure.png", b"not a report"),
        ["report", "{run}", "--out", "{work}/figure.png"],
        2,
        r"--out '.*figure.png' exists already",
        [],
    ),
    (
        "distances-figure-over-an-existing-file",
        lambda w: write(w / "figure.png", b"not a report"),
        ["distances", "--num", "20", "--figure", "{work}/figure.png"],
        2,
        r"--figure '.*figure.png' exists already",
        [],
    ),
    (
        "sample-into-a-folder",
        lambda w: (w / "folder.npy").mkdir(),
        ["sample", "{run}", "--num", "10", "--out", "{work}/folder.npy", "--overwrite"],
        2,
        r"--out '.*folder.npy' is a folder; give the path of a file",
        [],
    ),
    (
        "an-unknown-flag-is-one-line-not-the-usage",
        None,
        ["sample", "{run}", "--colour", "blue", "--out", "{work}/s.png"],
        2,
        r"^distmatch sample: error: unrecognized arguments: --colour blue "
        r"\(see distmatch sample --help\)$",
        [],
    ),
    (
        "sketch-merge-names-the-command-as-typed",
        None,
        ["sketch", "merge", "{sketch}", "{work}/nope.npz", "--out", "{work}/m.npz"],
        2,
        r"^distmatch sketch merge: error: sketch file must exist",
        ["sketch-merge"],
    ),
    (
        "sketch-merge-over-one-of-its-inputs",
        lambda w: shutil.copy(w / "circle.npz", w / "other.npz"),
        ["sketch", "merge", "{sketch}", "{work}/other.npz", "--out", "{sketch}", "--overwrite"],
        2,
        r"--out '.*circle.npz' is one of the inputs; write the merge to another file",
        [],
    ),
    (
        "sample-grid-too-large",
        None,
        ["sample", "{run}", "--num", "100000000", "--out", "{work}/big.png"],
        2,
        r"--num must be at most 1,024 images in one grid; got 100,000,000: use .npy",
        [],
    ),
]


@pytest.mark.parametrize(
    ("setup", "argv", "status", "match", "forbidden"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_bad_input_is_one_clear_line_and_changes_nothing(
    prepared, tmp_path, capsys, setup, argv, status, match, forbidden
):
    work = tmp_path / "work"
    shutil.copytree(prepared, work)
    if setup is not None:
        setup(work)
    before = snapshot(work)
    names = {
        "run": work / "run",
        "work": work,
        "sketch": work / "circle.npz",
        "cube": work / "cube.npy",
    }
    args = [a.format(**names) for a in argv]
    capsys.readouterr()
    try:
        got = main(args)
    except SystemExit as exit:  # argparse's own refusals (an option's type)
        got = exit.code
    assert got == status
    err = capsys.readouterr().err.strip()
    line = err.splitlines()[-1] if err else ""
    assert len(err.splitlines()) == 1, err
    assert re.search(match, line), line
    for word in forbidden:
        assert word not in err, err
    after = snapshot(work)
    changed = {name for name in before if after.get(name) != before[name]}
    assert not changed, changed


def test_overwrite_replaces_an_existing_output(prepared, tmp_path, capsys):
    """What the refusals above refuse, --overwrite does."""
    samples, page = tmp_path / "samples.npy", tmp_path / "page.html"
    samples.write_bytes(b"old")
    page.write_bytes(b"old")
    run = str(prepared / "run")
    assert main(["sample", run, "--num", "10", "--out", str(samples), "--overwrite"]) == 0
    assert np.load(samples).shape[0] == 10
    assert main(["report", run, "--out", str(page), "--overwrite"]) == 0
    assert page.read_text().startswith("<!DOCTYPE html>")
    sketch = tmp_path / "circle.npz"
    shutil.copy(prepared / "circle.npz", sketch)
    argv = ["sketch", "--dataset", "circle", "--points", "500", "--n-frequencies", "50"]
    assert main([*argv, "--out", str(sketch), "--overwrite", "--no-progress"]) == 0
    assert np.load(sketch)["sum"].shape == (100,)


def test_resuming_a_finished_run_leaves_its_summary_unchanged(prepared, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(prepared / "run", run)
    before = (run / "summary.json").read_bytes()
    assert main(["train", "--resume", "--out", str(run), "--no-progress"]) == 0
    assert (run / "summary.json").read_bytes() == before


def test_a_report_names_a_figure_that_is_no_image(prepared, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(prepared / "run", run)
    (run / "figures" / "samples.png").write_text("not an image")
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "samples.png is left out: it is not a PNG file" in page
    assert "samples.png is left out of the report" in capsys.readouterr().err


def test_samples_stream_to_npy_in_chunks(prepared, tmp_path, capsys, monkeypatch):
    from distmatch.cli import _evaluate as sample_command

    monkeypatch.setattr(sample_command, "SAMPLE_CHUNK", 7)
    out = tmp_path / "s.npy"
    assert main(["sample", str(prepared / "run"), "--num", "30", "--out", str(out)]) == 0
    chunked = np.load(out)
    assert chunked.shape == (30, 1, 8, 8) and np.isfinite(chunked).all()
    monkeypatch.setattr(
        sample_command.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 10)
    )
    capsys.readouterr()
    assert (
        main(["sample", str(prepared / "run"), "--num", "30", "--out", str(tmp_path / "t.npy")])
        == 2
    )
    assert "need 0.0 GiB on disk; 0.0 GiB are free" in capsys.readouterr().err
    assert not (tmp_path / "t.npy").exists()


def test_a_closed_pipe_after_a_finished_run_is_not_an_error(tmp_path):
    script = (
        "import sys; from distmatch.cli import main; "
        f"sys.exit(main(['train', *{QUICK!r}, '--out', {str(tmp_path / 'run')!r}]))"
    )
    shell = f'{sys.executable} -c "{script}" | head -1'
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout.startswith("run folder:")


def test_a_sketch_takes_a_63_bit_frequency_seed(tmp_path, capsys):
    """A sketch's seed is combined with no counter: up to 2^63 (runs take [0, 2^32))."""
    argv = ["sketch", "--dataset", "circle", "--points", "200", "--n-frequencies", "20"]
    assert (
        main([*argv, "--seed", str(2**40), "--out", str(tmp_path / "s.npz"), "--no-progress"]) == 0
    )
    capsys.readouterr()
    assert main(["sketch", "info", str(tmp_path / "s.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frequency_seed"] == 2**40
    with pytest.raises(SystemExit):
        main([*argv, "--seed", str(2**63), "--out", str(tmp_path / "t.npz")])
    assert "must be an int in [0, 2^63)" in capsys.readouterr().err
