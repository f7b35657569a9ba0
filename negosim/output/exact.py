"""Terminal tables of an exact analysis (``negosim analyze``) and an engine check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..analysis.check import Comparison
from ..analysis.ctmc import Analysis
from .terminal import first_rows


def render_analysis(a: Analysis, console: Console) -> None:
    """Print P(meeting), held by the end of each day, the outcomes and the fits made."""
    head = Text.assemble(
        (f"{a.title}\n", "bold"),
        f"exact analysis; question closes {a.horizon}\n",
        ("P(meeting held) = ", ""),
        (f"{a.p_meeting:.6f}", "bold green"),
        f"\n{a.states:,} states; {a.method}; truncation error below {max(a.tolerance, 1e-15):.0e}",
        f"; {a.elapsed_s:.3f} s",
    )
    console.print(Panel(head, expand=False))
    days = Table(title="When: P(held) by venue-local day", title_justify="left")
    days.add_column("day", no_wrap=True)
    days.add_column("that day", justify="right")
    days.add_column("by end of day", justify="right")
    for day, p in first_rows(list(a.by_day.items()), days):
        days.add_row(day, f"{p:.6f}", f"{a.held_by_end_of_day[day]:.6f}")
    console.print(days)
    out = Table(title="Outcomes", title_justify="left")
    out.add_column("outcome")
    out.add_column("probability", justify="right")
    for name, p in a.outcomes.items():
        out.add_row(name, f"{p:.6f}")
    console.print(out)
    if a.fits:
        fits = Table(
            title="Phase-type fits (KS: largest gap between the CDFs)", title_justify="left"
        )
        for col in ("clock", "delay", "phases", "KS", "mean h", "fit mean h"):
            fits.add_column(col, justify="left" if col in ("clock", "delay") else "right")
        for f in a.fits:
            fits.add_row(
                f["clock"], f["distribution"], str(f["phases"]), f"{f['ks']:.4f}",
                f"{f['mean_h']:.3f}", f"{f['fit_mean_h']:.3f}",
            )  # fmt: skip
        console.print(fits)


def render_check(
    path: str, comparisons: Sequence[Comparison], limit: float, console: Console
) -> None:
    """Print each probability exact and simulated, with its z-score (flagged at ``limit``)."""
    t = Table(title=f"{path}: exact against simulated", title_justify="left")
    for col in ("probability", "exact", "simulated", "z"):
        t.add_column(col, justify="left" if col == "probability" else "right")
    for c in comparisons:
        z = c.z
        style = "red" if abs(z) >= limit else ""
        t.add_row(c.what, f"{c.exact:.5f}", f"{c.simulated:.5f}", Text(f"{z:+.2f}", style=style))
    console.print(t)


def render_exact_comparison(result: dict[str, Any], console: Console) -> None:
    """Print an exact comparison (``compare --exact``): P, each day's end, outcomes."""
    head = Text.assemble(
        ("Exact comparison (no sampling noise)\n", "bold"),
        f"P(meeting held): baseline {result['p_base']:.6f}, variant {result['p_variant']:.6f}, ",
        ("difference ", ""),
        (f"{result['difference']:+.6f}", "bold"),
        f"\n{result['method']}",
    )
    console.print(Panel(head, expand=False))
    days = Table(title="P(held) by end of venue-local day", title_justify="left")
    for col in ("day", "baseline", "variant", "difference"):
        days.add_column(col, justify="left" if col == "day" else "right")
    rows = list(result["by_end_of_day"].items())
    for day, v in first_rows(rows, days):
        days.add_row(day, f"{v['base']:.6f}", f"{v['variant']:.6f}", f"{v['difference']:+.6f}")
    console.print(days)
    out = Table(title="Outcomes", title_justify="left")
    for col in ("outcome", "baseline", "variant"):
        out.add_column(col, justify="left" if col == "outcome" else "right")
    for name, v in result["outcomes"].items():
        out.add_row(name, f"{v['base']:.6f}", f"{v['variant']:.6f}")
    console.print(out)
