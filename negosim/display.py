"""Notebook display helpers: HTML tables, inline SVG figures, 80-column text.

Used by the ``_repr_html_`` and ``__repr__`` methods of the results
(:class:`~negosim.runs.results.Estimate`, comparisons, sweeps) and of
:class:`~negosim.compiler.tables.CompiledScenario`. Everything here is plain
strings: every value is HTML-escaped, nothing refers to an external asset
(no scripts, stylesheets or images from elsewhere), and a figure is included
only when matplotlib is installed (as inline SVG; otherwise just the tables).
It sits low in the layers (it imports nothing of negosim but the extras) so
that any layer may use it.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from typing import Any

WIDTH = 80
"""The widest line a plain ``repr`` may print."""


def esc(value: Any) -> str:
    """``value`` as text, HTML-escaped (quotes included)."""
    return html.escape(str(value), quote=True)


def pct(p: float | None) -> str:
    """A probability as a percentage with one decimal (``"41.3%"``), or ``"-"``."""
    return "-" if p is None else f"{100 * p:.1f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> str:
    """An HTML table; every header, cell and the caption are escaped."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption style='text-align:left'>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def block(title: str, *parts: str) -> str:
    """A titled ``<div>`` holding already-built HTML ``parts`` (the title is escaped)."""
    return f"<div><strong>{esc(title)}</strong>" + "".join(parts) + "</div>"


def bars_svg(labels: Sequence[str], values: Sequence[float], ylabel: str) -> str:
    """A small bar chart as inline SVG, or ``""`` if matplotlib is not installed."""
    if not labels:
        return ""
    try:
        # A bare Figure, not pyplot: the notebook's own backend is left alone.
        from matplotlib.figure import Figure
    except ImportError:
        return ""
    fig = Figure(figsize=(min(8.0, 1.0 + 0.6 * len(labels)), 2.6))
    ax = fig.add_subplot()
    ax.bar(range(len(values)), list(values), color="#4c72b0")
    ax.set_xticks(range(len(labels)), list(labels), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    start = svg.find("<svg")  # drop the XML prolog and DOCTYPE (no external DTD)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[start:] if start >= 0 else "", flags=re.S)
    return svg


def clip(line: str, width: int = WIDTH) -> str:
    """``line`` cut to ``width`` characters, an ellipsis marking the cut."""
    return line if len(line) <= width else line[: width - 1] + "…"


def lines(*items: str) -> str:
    """Lines joined for a ``__repr__``, each clipped to 80 columns."""
    return "\n".join(clip(x) for x in items)
