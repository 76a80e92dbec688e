"""HTML pieces of the run report: number formatting, tables, an inline SVG chart, embedded PNGs.

Everything here builds strings; every piece of text that comes from a run folder goes through
:func:`html.escape`. Nothing refers to anything outside the page.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["figure", "format_value", "line_chart", "page", "table"]

MAX_CHART_POINTS = 1000  # a longer series is thinned to this many vertices

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; word-break: break-all; }
h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #d6dae3; }
.meta { color: #5a6275; margin: 0.2em 0; }
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
svg text { font: 11px system-ui, sans-serif; fill: #5a6275; }
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
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def line_chart(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 220,
) -> str:
    """An inline SVG line chart of ``ys`` against ``xs``, or ``""`` when no point is finite.

    Non-finite points are dropped; a series longer than ``MAX_CHART_POINTS`` is thinned to
    evenly spaced vertices (the last one kept). The axes carry their ranges; ``y_label`` names
    the chart for screen readers and the x axis is titled ``x_label``.
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
    left, right, top, bottom = 70, 14, 10, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * plot_h

    coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
    last_x, last_y = px(points[-1][0]), py(points[-1][1])
    base = top + plot_h
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(y_label)} against {esc(x_label)}">'
        f"<title>{esc(y_label)} against {esc(x_label)}</title>"
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafbfc" '
        'stroke="#d6dae3"/>'
        f'<polyline fill="none" stroke="#2f6fd6" stroke-width="1.5" points="{coords}"/>'
        f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5" fill="#2f6fd6"/>'
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{esc(format_value(y1))}</text>'
        f'<text x="{left - 6}" y="{base}" text-anchor="end">{esc(format_value(y0))}</text>'
        f'<text x="{left}" y="{base + 16}">{esc(format_value(x0))}</text>'
        f'<text x="{left + plot_w}" y="{base + 16}" text-anchor="end">{esc(format_value(x1))}</text>'
        f'<text x="{left + plot_w / 2}" y="{base + 32}" text-anchor="middle">{esc(x_label)}</text>'
        "</svg>"
    )


def figure(path: Path) -> str:
    """A PNG file embedded as a base64 data URI, captioned from its file name."""
    caption = path.stem.replace("_", " ").capitalize()
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def page(title: str, body: Iterable[str]) -> str:
    """A complete HTML document: ``title`` (escaped here) and the already-built ``body`` pieces."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
