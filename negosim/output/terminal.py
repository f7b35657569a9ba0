"""Terminal rendering (rich) of estimates, timelines and parameter tables.

Everything here consumes plain results (:class:`~negosim.results.Estimate`,
trace lines, parameter rows); it never runs or inspects the engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..compiler.parameters import Parameter
from ..compiler.tables import CompiledScenario
from ..engine.simulation import Row, TraceLine
from ..runs.results import PARTS, WHY, WHY_TEXT, Estimate
from ..scenario.units import at_hours, format_duration, zone_label, zone_names

if TYPE_CHECKING:
    from ..runs.uncertainty import UncertainEstimate


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def _bar(p: float, width: int = 20) -> str:
    filled = round(p * width)
    return "█" * filled + "·" * (width - filled)


def _day_label(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%a %d %b")


MAX_DAY_ROWS = 31
"""Rows of a by-day table; a longer horizon shows the days that matter, this many at
most (a ten-year horizon once took 25 s to print); ``--format json`` has every day."""


def first_rows(rows: list[Any], table: Table) -> list[Any]:
    """At most :data:`MAX_DAY_ROWS` of ``rows``; say in the table's caption what is left out."""
    if len(rows) <= MAX_DAY_ROWS:
        return rows
    table.caption = f"first {MAX_DAY_ROWS} of {len(rows)} days shown; --format json has all"
    return rows[:MAX_DAY_ROWS]


def render_estimate(est: Estimate, console: Console, ci_label: str = "Wilson") -> None:
    """Print an estimate: P(meeting), when it is held, outcomes, blockers, common paths.

    Tables that each fit in 80 columns: the chance by venue-local day and part
    of day, P(held) by the end of each day, the outcomes, the preconditions
    standing in failed runs, and the most common paths through the protocol.
    """
    low, high = est.ci95
    head = Text.assemble(
        (f"{est.title}\n", "bold"),
        f"{est.runs:,} runs, seed {est.seed}; question closes {est.horizon}\n",
        ("P(meeting held) = ", ""),
        (_pct(est.p_meeting), "bold green"),
        f"   95% CI {_pct(low)} – {_pct(high)} ({ci_label})",
    )
    if est.overrides:
        head.append("\noverrides: " + ", ".join(est.overrides), style="yellow")
    console.print(Panel(head, expand=False))

    # Two narrow tables rather than one wide one: each fits in 80 columns.
    when = Table(title="When: chance the meeting is held, by venue-local day", title_justify="left")
    when.add_column("day", no_wrap=True)
    for part in PARTS:
        when.add_column(part, justify="right")
    when.add_column("that day", justify="right")
    by_day = list(est.by_day.items())
    if len(by_day) > MAX_DAY_ROWS:  # a long horizon: the days something happened
        by_day = [(day, p) for day, p in by_day if p > 0]
    for day, p in first_rows(by_day, when):
        parts = est.by_part_of_day.get(day, {})
        when.add_row(
            _day_label(day), *[_pct(parts[x]) if x in parts else "" for x in PARTS], _pct(p)
        )
    console.print(when)
    by_end = Table(title="Held by the end of the day", title_justify="left")
    by_end.add_column("day", no_wrap=True)
    by_end.add_column("P(held)", justify="right")
    by_end.add_column(f"95% CI ({ci_label.split(',')[0]})", justify="right", no_wrap=True)
    cums = list(est.held_by_end_of_day.items())
    if len(cums) > MAX_DAY_ROWS:  # a long horizon: the days the chance changed
        cums = [kv for i, kv in enumerate(cums)
                if i == 0 or i == len(cums) - 1 or kv[1]["p"] != cums[i - 1][1]["p"]]  # fmt: skip
    for day, cum in first_rows(cums, by_end):
        by_end.add_row(
            _day_label(day), _pct(cum["p"]), f"{_pct(cum['ci95'][0])} – {_pct(cum['ci95'][1])}"
        )
    console.print(by_end)
    if est.median_time_held:
        console.print(f"Median time of meeting: {est.median_time_held} (venue-local)")
    else:
        console.print(
            "Median time of meeting: not reached (held in half the runs or fewer "
            "within the horizon)"
        )

    outcomes = Table(title="Outcomes", title_justify="left")
    outcomes.add_column("outcome")
    outcomes.add_column("runs", justify="right")
    outcomes.add_column("share", justify="right")
    outcomes.add_column("")
    for name, count in est.outcomes.items():
        share = count / est.runs if est.runs else 0.0
        label = "censored (no outcome within the horizon)" if name == "censored" else name
        outcomes.add_row(label, f"{count:,}", _pct(share), _bar(share))
    console.print(outcomes)

    failed = est.runs - est.held
    if est.blocking:
        block = Table(
            title=f"Preconditions standing when the {failed:,} runs without a meeting ended",
            title_justify="left",
        )
        block.add_column("precondition")
        block.add_column("who insists, and what")
        block.add_column("runs", justify="right")
        block.add_column("of failed", justify="right")
        # Why it stood (docs/semantics.md): one column, so that the table fits 80 columns.
        block.add_column(" / ".join(WHY_TEXT[name] for name in WHY), justify="right")
        for pid, count in sorted(est.blocking.items(), key=lambda kv: -kv[1]):
            why = est.blocking_why.get(pid, {})
            block.add_row(
                pid,
                est.blocking_text[pid],
                f"{count:,}",
                _pct(count / failed) if failed else "–",
                " / ".join(f"{why.get(name, 0):,}" for name in WHY),
            )
        console.print(block)

    paths = Table(title="Most common paths through the protocol", title_justify="left")
    paths.add_column("path")
    paths.add_column("runs", justify="right")
    for states, count in est.paths:
        paths.add_row(" → ".join(states), f"{count:,}")
    console.print(paths)
    rate = est.runs / est.elapsed_s if est.elapsed_s > 0 else float("inf")
    console.print(
        Text(
            f"{est.mean_events_per_run:.1f} simulation events per run; "
            f"{est.elapsed_s:.2f} s ({rate:,.0f} runs/s)",
            style="dim",
        )
    )


_KIND_STYLE = {
    "window": "cyan",
    "arrive": "cyan",
    "leave": "cyan",
    "available": "cyan",
    "unavailable": "cyan",
    "event": "magenta",
    "fact": "magenta",
    "enable": "dim",
    "cancel": "dim",
    "fire": "bold",
    "state": "green",
    "block": "yellow",
    "unblock": "yellow",
    "end": "bold green",
}


def trace_rows(
    cs: CompiledScenario, lines: list[TraceLine], verbose: bool = False
) -> list[dict[str, Any]]:
    """Trace lines as plain dicts with venue-local times (for JSON and tables)."""
    out = []
    for line in lines:
        if not verbose and line.kind in ("enable", "cancel"):
            continue
        # Round to the minute (as durations are) rather than truncate.
        local = at_hours(cs.start, line.time + 1 / 120, cs.tz).replace(second=0, microsecond=0)
        actor = (cs.model.actors[line.actor].short or line.actor) if line.actor else None
        out.append(
            {
                "time": local.isoformat(timespec="minutes"),
                "hours": round(line.time, 4),
                "kind": line.kind,
                "actor": actor,
                "text": line.text,
            }
        )
    return out


def timeline_stamps(cs: CompiledScenario, items: list[dict[str, Any]], zone: str) -> list[str]:
    """The time column of a timeline (:func:`trace_rows`' items): ``Fri 24 Mar 08:00``
    on a new day, else ``08:00``; after a DST change (``zone``: the name at the start)
    the first time it applies carries the new zone's name (``03:00 CEST``)."""
    stamps = []
    last_day = None
    for item in items:
        local = datetime.fromisoformat(item["time"])
        day = local.strftime("%a %d %b")
        stamp = local.strftime("%H:%M") if day == last_day else f"{day} {local:%H:%M}"
        last_day = day
        name = local.astimezone(cs.tz).strftime("%Z")
        if name != zone:
            stamp, zone = f"{stamp} {name}", name
        stamps.append(stamp)
    return stamps


def render_trace(
    cs: CompiledScenario,
    row: Row,
    lines: list[TraceLine],
    seed: int,
    console: Console,
    verbose: bool = False,
) -> None:
    """Print one replication as a venue-local timeline, then how it ended and what blocked it."""
    zones = zone_names(cs.start, cs.horizon, cs.tz)
    table = Table(
        title=f"{cs.model.title}: replication {row.index} of seed {seed}", title_justify="left"
    )
    table.add_column(f"time ({zone_label(zones)})", no_wrap=True)
    table.add_column("who")
    table.add_column("what")
    items = trace_rows(cs, lines, verbose)
    for item, stamp in zip(items, timeline_stamps(cs, items, zones[0][1]), strict=True):
        style = _KIND_STYLE.get(item["kind"], "")
        table.add_row(stamp, item["actor"] or "", Text(item["text"], style=style))
    console.print(table)
    if row.held:
        verdict = f"Meeting held after {format_duration(row.time or 0.0)}."
    elif row.outcome == "censored":
        verdict = "No outcome before the horizon (censored)."
    else:
        verdict = f"Ended in {row.outcome!r} after {format_duration(row.time or 0.0)}."
    if row.blocking:
        names = ", ".join(
            f"{cs.preconditions[i]} ({WHY_TEXT[WHY[w]]})" if w < len(WHY) else cs.preconditions[i]
            for i, w in itertools.zip_longest(row.blocking, row.why, fillvalue=len(WHY))
        )
        verdict += f" Preconditions standing at the end: {names}."
    console.print(Text(verdict, style="bold"))


def render_params(
    params: Sequence[Parameter], title: str, console: Console, source: str | None = None
) -> None:
    """Print the parameter table: default, range, uncertainty, source or assumption.

    A parameter whose default is written in another file than ``source`` (a base
    the scenario extends) says where: ``from FILE:LINE``.
    """
    narrow = console.width < 110  # e.g. 80 columns: stack the short fields in one column
    table = Table(title=f"Parameters of {title}", title_justify="left", show_lines=True)
    if narrow:
        table.add_column("parameter", min_width=20, max_width=30)
    else:
        table.add_column("name", no_wrap=True)
        table.add_column("default", justify="right")
        table.add_column("range")
        table.add_column("uncertainty")
    table.add_column("source or assumption", ratio=1)
    for p in params:
        rng = f"{_num(p.low)} – {_num(p.high)}" if (p.low is not None or p.high is not None) else ""
        uncertainty = p.uncertainty.text if p.uncertainty else ""
        note = Text()
        if p.source:
            src = p.source.strip()
            note.append(src if src[:1] in "\"'“" else f"“{src}”")
        if p.assumption:
            note.append(("\n" if p.source else "") + "assumption: " + p.assumption.strip(),
                        style="yellow")  # fmt: skip
        origin = _origin(p, source)
        if origin:
            note.append(("\n" if note else "") + origin, style="dim")
        if narrow:
            cell = Text(p.name, style="bold")
            cell.append(f"\ndefault {p.display}")
            if rng:
                cell.append(f"\nrange {rng}")
            if uncertainty:
                cell.append(f"\n{uncertainty}", style="dim")
            table.add_row(cell, note)
        else:
            table.add_row(p.name, p.display, rng, uncertainty, note)
    console.print(table)


def _origin(p: Parameter, source: str | None) -> str:
    """Where ``p``'s values come from, when not all from ``source`` (the scenario file):
    ``from FILE:LINE`` if all from one other file (a base), else each file but the
    scenario's with what it gives: ``default from a.yaml:15; range, assumption from
    b.yaml:73``."""
    if source is None or p.file is None:
        return ""
    files = list(dict.fromkeys(o.file for o in p.origins))
    if len(files) <= 1:
        return f"from {p.file}:{p.line}" if p.file != source else ""
    parts = []
    for file in files:
        if file == source:
            continue
        here = [o for o in p.origins if o.file == file]
        names = [o.field for o in here]
        if "low" in names and "high" in names:
            names = ["range" if n == "low" else n for n in names if n != "high"]
        lines = [o.line for o in here if o.line is not None]
        parts.append(f"{', '.join(names)} from {file}" + (f":{min(lines)}" if lines else ""))
    return "; ".join(parts)


def _num(x: float | None) -> str:
    return "∞" if x is None else f"{x:g}"


def render_uncertain(u: UncertainEstimate, console: Console) -> None:
    """Print a predictive estimate (``run --uncertainty``): the estimate, then the
    band across parameter draws by day and the parameters that were drawn."""
    render_estimate(u.estimate, console, ci_label="Monte Carlo, nested design")
    lo, hi = u.p_meeting_band
    if not u.params:
        console.print("Parameter uncertainty: no uncertain parameter (none declared, or all "
                      "pinned with --set): this is plain run.")  # fmt: skip
        return
    head = Text.assemble(
        ("Parameter uncertainty\n", "bold"),
        f"{u.draws:,} parameter draws × {u.runs_per_draw:,} runs each\n",
        "P(meeting) across draws, 5th–95th percentile: ",
        (f"{_pct(lo)} – {_pct(hi)}", "bold"),
        f"\n(each draw's P carries Monte Carlo noise of about ±{_pct(u.within_draw_sd)})",
    )
    console.print(Panel(head, expand=False))
    days = Table(title="Band across parameter draws, by venue-local day", title_justify="left")
    days.add_column("day", no_wrap=True)
    days.add_column("that day", justify="right")
    days.add_column("5th–95th", justify="right", no_wrap=True)
    days.add_column("held by end of day", justify="right")
    days.add_column("5th–95th", justify="right", no_wrap=True)
    for day, p in first_rows(list(u.estimate.by_day.items()), days):
        b = u.by_day_band[day]
        c = u.held_by_end_of_day_band[day]
        cum = u.estimate.held_by_end_of_day[day]["p"]
        days.add_row(_day_label(day), _pct(p), f"{_pct(b[0])} – {_pct(b[1])}", _pct(cum),
                     f"{_pct(c[0])} – {_pct(c[1])}")  # fmt: skip
    console.print(days)
    params = Table(title="Uncertain parameters drawn", title_justify="left")
    params.add_column("parameter", no_wrap=True)
    params.add_column("uncertainty")
    for p in u.params:
        params.add_row(p.name, p.uncertainty.text if p.uncertainty else "")
    console.print(params)
