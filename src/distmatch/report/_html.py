"""HTML pieces of the run report: number formatting, tables, an inline SVG chart, embedded PNGs.

Everything here builds strings; every piece of text that comes from a run folder goes through
:func:`html.escape`. Nothing refers to anything outside the page.
"""

from __future__ import annotations

import base64
import html
import io
import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["ReportWarning", "figure", "format_value", "line_chart", "page", "table", "ticks"]


class ReportWarning(UserWarning):
    """A file of the run folder that the report leaves out (e.g. a figure that is no image)."""


MAX_CHART_POINTS = 1000  # a longer series is thinned to this many vertices

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; word-break: break-all; }
h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #d6dae3; }
.meta { color: #5a6275; margin: 0.2em 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #eceef3; text-align: left;
         vertical-align: top; }
th { background: #f4f5f8; }
table.num td:not(:first-child), table.num th:not(:first-child) {
  text-align: right; font-variant-numeric: tabular-nums; }
td.key { font-family: ui-monospace, Menlo, Consolas, monospace; }
td.value { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
.figures { display: flex; flex-wrap: wrap; gap: 1.2em; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #eceef3; }
figcaption { color: #5a6275; text-align: center; }
svg { max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #5a6275; }
.note { color: #5a6275; font-style: italic; }
.warn { color: #a03d00; }
"""


def esc(value: object) -> str:
    """The text of ``value``, escaped for HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def format_value(value: Any) -> str:
    """A metric as text: integers as integers, other numbers with 4 significant digits.

    Integral floats (``2.0``) read as integers; magnitudes from 1e4 to 1e9 are rounded to an
    integer rather than written in exponent form. ``None`` becomes an em dash, booleans ``true``
    and ``false``, anything else its ``str``.

    Example:
        >>> format_value(0.123456), format_value(3000), format_value(2.0), format_value(None)
        ('0.1235', '3000', '2', '—')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if 1e4 <= abs(value) < 1e9:
            return f"{value:.0f}"
        return f"{value:.4g}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: bool) -> str:
    """An HTML table of text cells (escaped here).

    Args:
        headers: the column titles.
        rows: the cells of each row, as text.
        numeric: right-align every column but the first (metrics); otherwise key/value style.
    """
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for cells in rows:
        if numeric:
            tds = "".join(f"<td>{esc(c)}</td>" for c in cells)
        else:
            key, *rest = cells
            tds = f'<td class="key">{esc(key)}</td>'
            tds += "".join(f'<td class="value">{esc(c)}</td>' for c in rest)
        body.append(f"<tr>{tds}</tr>")
    css = ' class="num"' if numeric else ""
    rows_html = "".join(body)
    # A wide table scrolls inside its box instead of being cut at the page's edge.
    return (
        f'<div class="scroll"><table{css}><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows_html}</tbody></table></div>"
    )


def ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) within ``[lo, hi]``."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(f * power for f in (1, 2, 5, 10) if f * power >= raw * (1 - 1e-9))
    first = math.ceil(lo / step) * step
    values = []
    value = first
    while value <= hi + step * 1e-9:
        values.append(0.0 if abs(value) < step * 1e-9 else value)
        value = first + len(values) * step
    return values


def line_chart(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 240,
) -> str:
    """An inline SVG line chart of ``ys`` against ``xs``, or ``""`` when no point is finite.

    Non-finite points are dropped; a series longer than ``MAX_CHART_POINTS`` is thinned to
    evenly spaced vertices (the last one kept). Both axes carry round-valued ticks with grid lines
    and their titles (``y_label`` vertical, ``x_label`` below); the SVG scales down to narrow
    screens.
    """
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return ""
    stride = math.ceil(len(points) / MAX_CHART_POINTS)
    points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        pad = abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 78, 16, 10, 44
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * plot_h

    coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
    last_x, last_y = px(points[-1][0]), py(points[-1][1])
    base = top + plot_h
    grid = []
    for y in ticks(y0, y1):
        grid.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
            'stroke="#e4e7ee"/>'
            f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{esc(format_value(y))}</text>'
        )
    for x in ticks(x0, x1):
        grid.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{base}" y2="{base + 4}" stroke="#9aa2b1"/>'
            f'<text x="{px(x):.1f}" y="{base + 16}" text-anchor="middle">{esc(format_value(x))}</text>'
        )
    middle = top + plot_h / 2
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(y_label)} against {esc(x_label)}">'
        f"<title>{esc(y_label)} against {esc(x_label)}</title>"
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafbfc" '
        'stroke="#d6dae3"/>'
        + "".join(grid)
        + f'<polyline fill="none" stroke="#2f6fd6" stroke-width="1.5" points="{coords}"/>'
        f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5" fill="#2f6fd6"/>'
        f'<text x="{left + plot_w / 2}" y="{base + 34}" text-anchor="middle">{esc(x_label)}</text>'
        f'<text x="14" y="{middle:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {middle:.1f})">{esc(y_label)}</text>'
        "</svg>"
    )


def figure(path: Path) -> str:
    """A PNG file embedded as a base64 data URI, captioned from its file name; a file that is not
    a readable PNG gives a warning in its place (and in the log) instead of a broken image."""
    caption = path.stem.replace("_", " ").capitalize()
    raw = path.read_bytes()
    problem = _png_problem(raw)
    if problem:
        warnings.warn(f"{path} is left out of the report: {problem}.", ReportWarning, stacklevel=2)
        return f'<p class="warn">{esc(path.name)} is left out: {esc(problem)}.</p>'
    data = base64.b64encode(raw).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def _png_problem(raw: bytes) -> str:
    """Why ``raw`` is not a readable PNG image, or ``""``."""
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return f"it is not a PNG file ({len(raw)} bytes without the PNG signature)"
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.verify()
    except Exception as err:  # Pillow raises many types for damaged files
        return f"it is a damaged PNG file ({type(err).__name__})"
    return ""


def page(title: str, body: Iterable[str]) -> str:
    """A complete HTML document: ``title`` (escaped here) and the already-built ``body`` pieces."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
