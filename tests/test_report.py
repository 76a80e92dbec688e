"""`distmatch.report`: one self-contained HTML page per run folder."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distmatch.cli import main
from distmatch.report import write_report
from distmatch.report._html import format_value
from distmatch.runs import RunError

VOID = {"meta", "img", "br", "hr", "input", "link", "circle", "rect", "polyline"}
HOSTILE = "<script>alert('x')</script>"


class TagChecker(HTMLParser):
    """Records every tag, start and end, and fails on an end tag that closes nothing open."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, dict(attrs)))
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.seen.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


def parse(text: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(text)
    checker.close()
    return checker


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A hand-made autoencoder run folder with every file the report reads."""
    root = tmp_path / "my_run"
    (root / "figures").mkdir(parents=True)
    record = {
        "config": {"model": "cwae", "dataset": "digits", "note": HOSTILE, "lr": 0.001},
        "resolved": {"arch": "mlp", "sample_shape": [1, 8, 8], "window": {"n": 64}},
        "distmatch_version": "0.1.0",
    }
    (root / "config.json").write_text(json.dumps(record))
    rows = [
        {"kind": "train", "step": 10, "epoch": 0, "loss": 2.5, "reconstruction": 2.0},
        {"kind": "train", "step": 20, "epoch": 0, "loss": 1.75, "reconstruction": 1.5},
        {"kind": "eval", "step": 20, "epoch": 1, "rec_error": 1.23456789, "cw_distance": 0.5},
        {"kind": "train", "step": 30, "epoch": 1, "loss": 1.25, "reconstruction": 1.0},
        {"kind": "eval", "step": 30, "epoch": 2, "rec_error": 0.98765432, "cw_distance": 0.25},
    ]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"rec_error": 0.98765432, "step": 30, "epochs": 2.0, "steps_per_second": None}
    (root / "summary.json").write_text(json.dumps(summary))
    (root / "eval.json").write_text(json.dumps({"rec_error": 0.87654321, "split": "test"}))
    pixels = np.random.default_rng(0).integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "figures" / "samples.png")
    Image.fromarray(pixels[::-1]).save(root / "figures" / "curves.png")
    return root


def test_report_is_written_to_run_report_html_by_default(run):
    path = write_report(run)
    assert path == run / "report.html" and path.is_file()
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_goes_where_out_says(run, tmp_path):
    path = write_report(run, tmp_path / "elsewhere" / "page.html")
    assert path == tmp_path / "elsewhere" / "page.html" and path.is_file()
    assert not (run / "report.html").exists()


def test_page_parses_with_balanced_tags(run):
    checker = parse(write_report(run).read_text(encoding="utf-8"))
    assert checker.open == []
    assert [tag for tag, _ in checker.seen][:2] == ["html", "head"]


def test_title_names_the_folder_the_kind_and_the_version(run):
    text = write_report(run).read_text(encoding="utf-8")
    assert "<h1>my_run</h1>" in text
    assert "autoencoder run" in text and "distmatch 0.1.0" in text
    assert re.search(r"created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text)


def test_generator_runs_are_told_apart_from_autoencoder_runs(run):
    record = json.loads((run / "config.json").read_text())
    record = {"kind": "generator", **record, "config": {"objective": "sketch", "sketch": "s.npz"}}
    (run / "config.json").write_text(json.dumps(record))
    text = write_report(run).read_text(encoding="utf-8")
    assert "generator run" in text and "autoencoder" not in text


def test_config_values_appear_escaped_with_nested_keys_flattened(run):
    text = write_report(run).read_text(encoding="utf-8")
    assert HOSTILE not in text and "<script" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    for key, value in [("config.lr", "0.001"), ("resolved.window.n", "64")]:
        assert f'<td class="key">{key}</td><td class="value">{value}</td>' in text
    assert "[1, 8, 8]" in text


def test_final_metrics_come_from_summary_and_eval_with_four_significant_digits(run):
    text = write_report(run).read_text(encoding="utf-8")
    assert "<th>summary.json</th><th>eval.json</th>" in text
    assert "<tr><td>rec_error</td><td>0.9877</td><td>0.8765</td></tr>" in text
    assert "<tr><td>epochs</td><td>2</td><td></td></tr>" in text
    assert "<tr><td>split</td><td></td><td>test</td></tr>" in text


def test_evaluation_history_has_one_row_per_eval_line(run):
    text = write_report(run).read_text(encoding="utf-8")
    header = "<th>step</th><th>epoch</th><th>rec_error</th><th>cw_distance</th>"
    assert header in text
    assert "<tr><td>20</td><td>1</td><td>1.235</td><td>0.5</td></tr>" in text
    assert "<tr><td>30</td><td>2</td><td>0.9877</td><td>0.25</td></tr>" in text


def test_figures_are_embedded_byte_for_byte_curves_first(run):
    checker = parse(write_report(run).read_text(encoding="utf-8"))
    sources = [attrs["src"] for tag, attrs in checker.seen if tag == "img"]
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src in sources)
    decoded = [base64.b64decode(src[len(prefix) :]) for src in sources]
    assert decoded == [(run / "figures" / n).read_bytes() for n in ("curves.png", "samples.png")]


def test_training_loss_is_an_inline_svg_polyline_through_every_logged_step(run):
    checker = parse(write_report(run).read_text(encoding="utf-8"))
    tags = [tag for tag, _ in checker.seen]
    assert "svg" in tags
    (points,) = [attrs["points"] for tag, attrs in checker.seen if tag == "polyline"]
    xy = [tuple(map(float, p.split(","))) for p in points.split()]
    assert len(xy) == 3
    assert xy[0][1] < xy[1][1] < xy[2][1]  # the loss falls: the line goes down the page


def test_page_refers_to_nothing_outside_itself(run):
    text = write_report(run).read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text)
    assert "http://" not in text and "https://" not in text
    checker = parse(text)
    assert not [t for t, a in checker.seen if t in ("link", "script") or "href" in a]


def test_missing_optional_files_omit_their_sections(tmp_path):
    root = tmp_path / "bare"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"config": {"model": "wae"}}))
    text = write_report(root).read_text(encoding="utf-8")
    assert "Configuration" in text and parse(text).open == []
    for section in ("Training loss", "Final metrics", "Evaluation history", "Figures"):
        assert section not in text


@pytest.mark.parametrize("make", ["empty", "file", "missing"])
def test_a_folder_that_is_not_a_run_raises_run_error(tmp_path, make):
    target = tmp_path / "not_a_run"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("hello")
    with pytest.raises(
        RunError,
        match=r"must be a run folder( holding config\.json)?; (it has none|got|it is a file)",
    ):
        write_report(target)


def test_a_config_without_a_config_object_raises_run_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"something": 1}))
    with pytest.raises(RunError, match=r"must hold a distmatch run record .* got keys 'something'"):
        write_report(tmp_path)


def test_a_corrupt_metrics_line_raises_run_error_naming_the_line(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[2] = lines[2][:25]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        RunError, match=r"metrics\.jsonl' line 3 must be a JSON object; it is corrupt"
    ):
        write_report(run)
    assert not (run / "report.html").exists()


def test_a_half_written_last_line_is_skipped(run):
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "eval", "step": 40, "rec_err')
    text = write_report(run).read_text(encoding="utf-8")
    assert "<tr><td>30</td><td>2</td>" in text and "<tr><td>40</td>" not in text


def test_writing_twice_replaces_the_report_in_one_rename(run):
    first = write_report(run)
    inode = first.stat().st_ino
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "rec_error": 0.5}))
    second = write_report(run)
    assert second == first and second.stat().st_ino != inode
    assert "<td>rec_error</td><td>0.5</td>" in second.read_text(encoding="utf-8")
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("value", "text"),
    [(3000, "3000"), (2.0, "2"), (0.123456, "0.1235"), (-513.907, "-513.9"), (1.5e-7, "1.5e-07"),
     (123456.7, "123457"), (True, "true"), (None, "—"), (float("nan"), "nan"), ("test", "test")],
)  # fmt: skip
def test_numbers_read_as_integers_or_with_four_significant_digits(value, text):
    assert format_value(value) == text


def test_report_of_a_real_training_run(tmp_path, capsys):
    out = tmp_path / "run"
    quick = ["--steps", "40", "--log-every", "10", "--eval-points", "100", "--device", "cpu"]
    assert main(["train", *quick, "--no-progress", "--out", str(out)]) == 0
    text = write_report(out).read_text(encoding="utf-8")
    checker = parse(text)
    assert checker.open == []
    assert "autoencoder run" in text and "cwae on digits" in text
    assert "<th>rec_error</th>" in text and "<polyline" in text
    images = sum(tag == "img" for tag, _ in checker.seen)
    assert images == len(list((out / "figures").glob("*.png"))) >= 4


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [(0.0, 1.0, [0.0, 0.5, 1.0]), (0.88, 1.68, [1.0, 1.2, 1.4, 1.6]), (3, 3, [3])],
)
def test_chart_ticks_are_round_values_inside_the_range(lo, hi, expected):
    from distmatch.report._html import ticks

    assert ticks(lo, hi) == pytest.approx(expected)
