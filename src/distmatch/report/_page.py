"""One self-contained HTML page per run folder: configuration, metrics, loss curve and figures.

The page needs nothing but a browser: the CSS is inline, the figures are embedded as base64 data
URIs and the training-loss curve is an inline SVG, drawn even when ``figures/`` is missing.

Sections, each omitted when its files are missing: the training loss against the step (from the
``train`` rows of ``metrics.jsonl``, or the ``epoch`` rows of a generator run that logged no
interval), the final metrics (``summary.json``, ``eval.json``), the evaluation history (the
``eval`` rows of ``metrics.jsonl``), the figures (``figures/*.png``, curves first) and the whole of
``config.json``, nested objects flattened as ``a.b``.

``metrics.jsonl`` is read strictly: a corrupt line raises :class:`~distmatch.runs.RunError` naming
its number, except a last line with no newline after it, which a killed run can leave half
written and is skipped (as :meth:`RunDir.read_metrics` does).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from .._core import atomic_path
from ..runs import RunDir, RunError
from ._html import esc, figure, format_value, line_chart, page, table

__all__ = ["write_report"]

# Keys of a metrics row that say where it was logged rather than what was measured.
POSITION_KEYS = ("kind", "step", "epoch")


def write_report(run: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Writes the HTML report of a run folder, atomically, and returns its path.

    Args:
        run: the run folder (written by ``distmatch train``, ``fit-sketch`` or ``fit-mmd``).
        out: the HTML file to write; default ``RUN/report.html``. An existing file is replaced
            in one rename, so a reader sees the old page or the new one, never half of one.

    Returns:
        the path of the written page.

    Raises:
        RunError: ``run`` holds no ``config.json`` (not a run folder), or one of its JSON files
            is corrupt; for ``metrics.jsonl`` the message names the line.

    Example:
        >>> write_report("runs/cwae-digits-n64-k1")  # doctest: +SKIP
        PosixPath('runs/cwae-digits-n64-k1/report.html')
    """
    folder = RunDir(run)
    if not folder.root.is_dir():
        got = "a file" if folder.root.exists() else "nothing there"
        raise RunError(f"'{folder.root}' must be a run folder holding config.json; got {got}.")
    record = folder.read_json(folder.config)
    if not isinstance(record.get("config"), dict):
        raise RunError(
            f"'{folder.config}' must hold a distmatch run record with a 'config' object; "
            f"got keys {', '.join(map(repr, record)) or 'none'}."
        )
    rows = _read_metrics(folder.metrics)
    summary = folder.read_json(folder.summary) if folder.summary.is_file() else None
    evaluation = folder.read_json(folder.eval) if folder.eval.is_file() else None
    name = folder.root.resolve().name
    body = [
        _header(name, record, folder.config),
        _loss_section(rows),
        _final_section(summary, evaluation),
        _history_section(rows),
        _figures_section(folder.figures),
        "<h2>Configuration</h2>\n"
        + table(["field", "value"], _config_cells(_flatten(record)), numeric=False),
    ]
    text = page(f"{name} — distmatch report", [piece for piece in body if piece])
    target = Path(out) if out is not None else folder.root / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl``; a corrupt line is an error unless it is a cut-short last one."""
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as err:
        raise RunError(f"'{path}' must be UTF-8 text; it is not ({err.reason}).") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # no newline after it: a line cut short by a kill
                continue
            raise RunError(
                f"'{path}' line {number} must be a JSON object; it is corrupt ({err.msg})."
            ) from None
        if not isinstance(row, dict):
            raise RunError(
                f"'{path}' line {number} must be a JSON object; got {type(row).__name__}."
            )
        rows.append(row)
    return rows


def _run_kind(record: Mapping[str, Any]) -> str:
    """``"generator"`` or ``"autoencoder"``, from the content of ``config.json``."""
    config = record.get("config", {})
    if record.get("kind") == "generator" or "objective" in config:
        return "generator"
    if "model" in config:
        return "autoencoder"
    return str(record.get("kind", "unknown"))


def _describe(kind: str, config: Mapping[str, Any]) -> str:
    if kind == "autoencoder":
        return f"{config.get('model')} on {config.get('dataset')}"
    if kind == "generator":
        source = config.get("sketch") if config.get("objective") == "sketch" else None
        if isinstance(source, list):
            source = f"{len(source)} class sketches ({source[0]} ...)" if source else None
        return f"{config.get('objective')} objective, {source or config.get('dataset')}"
    return ""


def _header(name: str, record: Mapping[str, Any], config_path: Path) -> str:
    kind = _run_kind(record)
    started = datetime.datetime.fromtimestamp(config_path.stat().st_mtime).astimezone()
    now = datetime.datetime.now().astimezone()
    made_with = record.get("distmatch_version", "unknown")
    facts = [
        f"{kind} run",
        _describe(kind, record["config"]),
        f"created {started:%Y-%m-%d %H:%M:%S %Z}",
        f"made with distmatch {made_with}",
    ]
    return (
        f"<h1>{esc(name)}</h1>\n"
        f'<p class="meta">{" · ".join(esc(f) for f in facts if f)}</p>\n'
        f'<p class="meta">report written {now:%Y-%m-%d %H:%M:%S %Z} '
        f"by distmatch {esc(__version__)}</p>"
    )


def _loss_section(rows: list[dict[str, Any]]) -> str:
    for kind, what in (("train", "mean over each logging interval"), ("epoch", "mean per epoch")):
        points = [
            (float(r["step"]), float(r["loss"]))
            for r in rows
            if r.get("kind") == kind and _is_number(r.get("step")) and _is_number(r.get("loss"))
        ]
        chart = line_chart(
            [x for x, _ in points], [y for _, y in points], x_label="step", y_label="training loss"
        )
        if chart:
            return f'<h2>Training loss</h2>\n<p class="meta">{esc(what)}</p>\n{chart}'
    return ""


def _final_section(summary: dict[str, Any] | None, evaluation: dict[str, Any] | None) -> str:
    sources = {"summary.json": summary, "eval.json": evaluation}
    sources = {label: values for label, values in sources.items() if values is not None}
    if not sources:
        return ""
    names = list(dict.fromkeys(key for values in sources.values() for key in values))
    cells = [
        [
            name,
            *(format_value(values[name]) if name in values else "" for values in sources.values()),
        ]
        for name in names
    ]
    return "<h2>Final metrics</h2>\n" + table(["metric", *sources], cells, numeric=True)


def _history_section(rows: list[dict[str, Any]]) -> str:
    evals = [r for r in rows if r.get("kind") == "eval"]
    names = list(dict.fromkeys(k for r in evals for k in r if k not in POSITION_KEYS))
    if not evals:
        return ""
    if not names:  # evaluated, but with nothing held out to compare with
        why = "the run had no held-out data to evaluate on (give --eval-data)"
        return f'<h2>Evaluation history</h2>\n<p class="note">No held-out metrics: {esc(why)}.</p>'
    cells = [
        [format_value(r.get(k)) if k in r else "" for k in ("step", "epoch", *names)] for r in evals
    ]
    return "<h2>Evaluation history</h2>\n" + table(["step", "epoch", *names], cells, numeric=True)


def _figures_section(folder: Path) -> str:
    if not folder.is_dir():
        return ""
    # Names starting with "." are the temporary files of a figure being written.
    paths = [p for p in folder.glob("*.png") if p.is_file() and not p.name.startswith(".")]
    if not paths:
        return ""
    paths.sort(key=lambda p: (p.stem != "curves", p.name))
    figures = "\n".join(figure(p) for p in paths)
    return f'<h2>Figures</h2>\n<div class="figures">\n{figures}\n</div>'


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(name, value)`` for every leaf; nested objects give names ``a.b``."""
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _config_cells(items: Iterator[tuple[str, Any]]) -> list[list[str]]:
    # Configuration values are shown exactly, as JSON; strings without their quotes.
    return [[name, v if isinstance(v, str) else json.dumps(v)] for name, v in items]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
