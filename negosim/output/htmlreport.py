"""Self-contained HTML reports of an estimate or of sweep results.

One file that opens offline and makes no network request of any kind: the
CSS is inline, every figure is an SVG ``data:`` URI whose text is drawn as
paths (no font files), and there are no scripts, links, external fonts or
images. Every piece of scenario text is escaped with :func:`html.escape`.
The layout is one responsive column: large type and full-width figures on a
projector, the same on a laptop, tables that scroll sideways on a phone.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..compiler.tables import CompiledScenario
from ..runs.results import PARTS, WHY, WHY_TEXT, Estimate
from ..runs.runner import trace
from ..scenario.units import zone_label, zone_names
from . import diagram, plots
from .terminal import timeline_stamps, trace_rows

CSS = """
:root { --ink: #1d2733; --muted: #5a6878; --line: #d5dbe3; --accent: #1f5fa8;
        --good: #2e8b57; --bad: #c0392b; --bg: #ffffff; --soft: #f3f6fa; }
* { box-sizing: border-box; }
html { font-size: clamp(16px, 0.6vw + 12px, 24px); }
body { margin: 0; color: var(--ink); background: var(--bg);
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; line-height: 1.5; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 2rem; line-height: 1.2; margin: 0.5rem 0 0.25rem; }
h2 { font-size: 1.4rem; margin: 2.5rem 0 0.75rem; border-bottom: 2px solid var(--line);
     padding-bottom: 0.25rem; }
p, li { max-width: 60rem; }
li code { overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.headline { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1.25rem 0; }
.card { background: var(--soft); border-radius: 0.6rem; padding: 0.9rem 1.2rem;
        min-width: 12rem; flex: 1 1 12rem; }
.card .big { font-size: 2.4rem; font-weight: 700; color: var(--accent); line-height: 1.1; }
.card .label { color: var(--muted); font-size: 0.9rem; }
figure { margin: 1rem 0 2rem; }
figure img { display: block; width: 100%; height: auto; max-height: 80vh;
             object-fit: contain; background: white; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 0.3rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; vertical-align: top; padding: 0.35rem 0.6rem;
         border-bottom: 1px solid var(--line); }
th { background: var(--soft); }
td.num, th.num { text-align: right; white-space: nowrap; }
td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
.assumption { color: #8a5a00; }
.kind-state td, .kind-end td { font-weight: 600; }
footer { margin-top: 3rem; color: var(--muted); font-size: 0.85rem; }
@media (max-width: 40rem) { h1 { font-size: 1.5rem; } .card .big { font-size: 1.8rem; } }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def _local(iso: str, zone: bool = True) -> str:
    """A venue-local ISO time as people read it: Sun 19 Feb 2023 13:00 (UTC+01:00)."""
    t = datetime.fromisoformat(iso)
    off = t.strftime("%z")
    return t.strftime("%a %d %b %Y %H:%M") + (f" (UTC{off[:3]}:{off[3:]})" if zone and off else "")


def _figure(uri: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{uri}" alt="{_e(alt)}"><figcaption>{_e(caption)}</figcaption></figure>'
    )


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Belt and braces: even a stray reference could not be fetched.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}<footer>Made by negosim {_e(__version__)} on "
        f"{datetime.now().strftime('%Y-%m-%d %H:%M')}. This file is self-contained: it "
        "needs no network and no other file.</footer></main></body></html>\n"
    )


def _table(head: list[str], rows: list[list[str]], num: set[int] | None = None,
           row_class: list[str] | None = None) -> str:  # fmt: skip
    """An HTML table; ``head`` is plain text (escaped here), cells are already escaped HTML."""
    num = num or set()
    th = "".join(f"<th{' class=num' if i in num else ''}>{_e(h)}</th>" for i, h in enumerate(head))
    body = []
    for r, cells in enumerate(rows):
        cls = f' class="{_e(row_class[r])}"' if row_class else ""
        tds = "".join(
            f"<td{' class=num' if i in num else ''}>{c}</td>" for i, c in enumerate(cells)
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'  # noqa: E501


def _sources(cs: CompiledScenario) -> str:
    items = []
    for sid, s in cs.model.sources.items():
        bits = [f"<strong>{_e(s.title)}</strong>"]
        bits += [_e(x) for x in (s.outlet, s.date) if x]
        if s.url:
            # Shown as text, not a link: the report makes no requests, even on a click.
            bits.append(f"<code>{_e(s.url)}</code>")
        if s.file:
            bits.append(f"file <code>{_e(s.file)}</code>")
        items.append(f"<li><code>{_e(sid)}</code>: {', '.join(bits)}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p class=muted>No sources listed.</p>"


def _assumptions(cs: CompiledScenario) -> str:
    rows = []
    for p in cs.parameters:
        rng = ""
        if p.low is not None or p.high is not None:
            lo = "−∞" if p.low is None else f"{p.low:g}"
            hi = "∞" if p.high is None else f"{p.high:g}"
            rng = f"{lo} – {hi}"
        note = []
        if p.source:
            note.append(f"source: {_e(p.source.strip())}")
        if p.assumption:
            note.append(f'<span class="assumption">assumption: {_e(p.assumption.strip())}</span>')
        uncertainty = p.uncertainty.text if p.uncertainty else ""
        rows.append([f"<code>{_e(p.name)}</code>", _e(p.display), _e(rng), _e(uncertainty),
                     "<br>".join(note)])  # fmt: skip
    if not rows:
        return "<p class=muted>This scenario declares no parameters.</p>"
    return _table(["parameter", "default", "range", "uncertainty", "source or assumption"],
                  rows, num={1})  # fmt: skip


def _timeline(cs: CompiledScenario, seed: int) -> str:
    row, lines = trace(cs, seed, 0)
    items = trace_rows(cs, lines)
    cells, classes = [], []
    zones = zone_names(cs.start, cs.horizon, cs.tz)
    for it, stamp in zip(items, timeline_stamps(cs, items, zones[0][1]), strict=True):
        cells.append([f'<span class="time">{_e(stamp)}</span>', _e(it["actor"] or ""),
                      _e(it["text"])])  # fmt: skip
        classes.append(f"kind-{it['kind']}")
    verdict = (
        "the meeting was held" if row.held
        else "no outcome before the horizon (censored)" if row.outcome == "censored"
        else f"it ended in “{row.outcome}”"
    )  # fmt: skip
    tz = zone_label(zones)
    return (
        f"<p>Replication 0 of seed {_e(seed)}: {_e(verdict)}. Times are venue-local ({_e(tz)}).</p>"
        + _table(["time", "who", "what"], cells, row_class=classes)
    )


def scenario_report(
    cs: CompiledScenario,
    est: Estimate,
    uncertain: Any = None,
    exact: Sequence[tuple[float, float]] | None = None,
) -> str:
    """The HTML report of one scenario's estimate.

    ``uncertain`` (an ``UncertainEstimate`` of ``run --uncertainty``, whose
    ``estimate`` is ``est``) adds the band across parameter draws to the
    headline, the curve and a table; ``exact`` is the exact P(held by t) curve
    (``negosim analyze``), drawn with the simulated one when the scenario
    qualifies for exact analysis.
    """
    m = cs.model
    low, high = est.ci95
    ci_label = "Monte Carlo, nested design" if uncertain is not None else "Wilson"
    start = cs.start.astimezone(cs.tz)
    sh = diagram.shape(cs)
    median = _local(est.median_time, zone=False) if est.median_time else "not reached"
    median_note = (
        f"venue-local (UTC{est.median_time[-6:]})"
        if est.median_time
        else "the meeting was held in half the runs or fewer"
    )
    cards = (
        '<div class="headline">'
        f'<div class="card"><div class="label">P(meeting held)</div>'
        f'<div class="big">{_pct(est.p_meeting)}</div>'
        f'<div class="label">95% CI {_pct(low)} – {_pct(high)} ({ci_label})</div></div>'
        + _band_card(uncertain)
        + '<div class="card"><div class="label">Median time of meeting</div>'
        f'<div class="big" style="font-size:1.3rem">{_e(median)}</div>'
        f'<div class="label">{_e(median_note)}</div></div>'
        f'<div class="card"><div class="label">Runs</div><div class="big">{est.runs:,}</div>'
        f'<div class="label">seed {est.seed}; the question closes {_e(_local(est.horizon))}</div>'
        "</div>"
        "</div>"
    )
    overrides = (
        f"<p><strong>Overrides:</strong> <code>{_e(', '.join(est.overrides))}</code></p>"
        if est.overrides else ""
    )  # fmt: skip
    days = [[_e(datetime.fromisoformat(d).strftime("%a %d %b"))]
            + [_pct(est.by_part.get(d, {}).get(p, 0.0)) if p in est.by_part.get(d, {}) else ""
               for p in PARTS]
            + [_pct(v), _pct(est.held_by_end_of_day[d]["p"])]
            for d, v in est.by_day.items()]  # fmt: skip
    failed = est.runs - est.held
    blocking = [[f"<code>{_e(pid)}</code>", _e(est.blocking_text.get(pid, "")), f"{n:,}",
                 _pct(n / failed) if failed else "–"]
                + [f"{est.blocking_why.get(pid, {}).get(w, 0):,}" for w in WHY]
                for pid, n in sorted(est.blocking.items(), key=lambda kv: -kv[1])]  # fmt: skip
    body = [
        f"<h1>{_e(m.title)}</h1>",
        f"<p class=muted>Scenario <code>{_e(m.id)}</code></p>",
        cards,
        overrides,
        "<h2>The situation</h2>",
        f"<p>{_e(m.description.strip()) or '<span class=muted>No description.</span>'}</p>",
        "<h3>Sources</h3>",
        _sources(cs),
        "<h2>When</h2>",
        _figure(plots.svg_data_uri(plots.curve(est, start, cs.horizon, exact) if uncertain is None
                                   else plots.curve_band(est, start, cs.horizon, uncertain)),
                "P(held by t) curve",
                "Share of all runs in which the meeting had been held by each time, with its "
                "95% Wilson band"
                + (" and, shaded, the 5th–95th percentile across parameter draws"
                   if uncertain is not None else "")
                + ". Runs without an outcome by the horizon count as not held."
                + (" The black line is the exact probability (negosim analyze: every delay "
                   "is exponential, so no sampling is needed)." if exact and uncertain is None
                   else "")),
        _uncertainty_section(uncertain),
        _figure(plots.svg_data_uri(plots.when(est)), "chance by day and part of day",
                "Chance the meeting is held on each venue-local day, by part of day."),
        _table(["day", *PARTS, "that day", "held by end of day"], days, num={1, 2, 3, 4, 5, 6}),
        "<h2>Outcomes and what blocked</h2>",
        _figure(plots.svg_data_uri(plots.outcomes(est, sh.success)), "outcomes",
                "How the runs ended, and the preconditions still standing when runs failed."),
        _table(["precondition", "who insists, and what", "runs", "of failed",
                *(WHY_TEXT[w] for w in WHY)], blocking,
               num={2, 3, 4, 5, 6}) if blocking else "",
        "<h2>Paths through the protocol</h2>",
        _figure(plots.svg_data_uri(diagram.state_diagram(sh, est.step_transitions, est.runs)),
                "protocol state diagram",
                "The protocol's states and transitions; line widths and labels: how many runs "
                "took each transition (dashed: declared but never taken)."),
        _figure(plots.svg_data_uri(diagram.path_flow(sh, est.step_transitions, est.runs)),
                "paths flow", "Where runs stood after each step through the protocol."),
        "<h2>One sample run</h2>",
        _timeline(cs, est.seed),
        "<h2>Assumptions: every parameter and where it comes from</h2>",
        _assumptions(cs),
    ]  # fmt: skip
    return _page(f"negosim: {m.title}", "\n".join(body))


def _band_card(u: Any) -> str:
    if u is None or not u.params:
        return ""
    lo, hi = u.p_meeting_band
    return (
        '<div class="card"><div class="label">Across parameter draws (5th–95th)</div>'
        f'<div class="big">{_pct(lo)} – {_pct(hi)}</div>'
        f'<div class="label">{u.draws:,} draws × {u.runs_per_draw:,} runs</div></div>'
    )


def _uncertainty_section(u: Any) -> str:
    """The band across parameter draws by day, and the parameters drawn."""
    if u is None:
        return ""
    if not u.params:
        return ("<p class=muted>Parameter uncertainty: no uncertain parameter (none declared, "
                "or all pinned with --set); the estimate is plain run's.</p>")  # fmt: skip
    est = u.estimate
    rows = [[_e(datetime.fromisoformat(d).strftime("%a %d %b")), _pct(p),
             "{} – {}".format(*map(_pct, u.by_day_band[d])),
             _pct(est.held_by_end_of_day[d]["p"]),
             "{} – {}".format(*map(_pct, u.held_by_end_of_day_band[d]))]
            for d, p in est.by_day.items()]  # fmt: skip
    params = [[f"<code>{_e(p.name)}</code>", _e(p.uncertainty.text if p.uncertainty else "")]
              for p in u.params]  # fmt: skip
    return "\n".join([
        "<h3>Parameter uncertainty</h3>",
        f"<p>Predictive P(meeting) over {u.draws:,} parameter draws of {u.runs_per_draw:,} "
        f"runs each. Each draw's P carries Monte Carlo noise of about "
        f"±{_pct(u.within_draw_sd)}, which widens the bands.</p>",
        _table(["day", "that day", "5th–95th", "held by end of day", "5th–95th"], rows,
               num={1, 2, 3, 4}),
        _table(["parameter drawn", "uncertainty"], params),
    ])  # fmt: skip


def backtest_report(bt: Any) -> str:
    """The HTML report of a backtest: the set's scores, reliability, every case."""
    data = bt.to_json()
    m = data["murphy"]
    lo, hi = data["brier_ci95"]

    def num(x: float | None, d: int = 3) -> str:
        return "n/a" if x is None else f"{x:.{d}f}"

    cards = (
        '<div class="headline">'
        f'<div class="card"><div class="label">Mean Brier score (lower is better)</div>'
        f'<div class="big">{data["brier"]:.3f}</div>'
        f'<div class="label">bootstrap 95% {lo:.3f} – {hi:.3f}; always 50%: 0.250</div></div>'
        f'<div class="card"><div class="label">Mean log score (higher is better)</div>'
        f'<div class="big">{data["log_score"]:.3f}</div>'
        f'<div class="label">always 50%: {data["log_score_always_half"]:.3f}</div></div>'
        f'<div class="card"><div class="label">Cases</div><div class="big">{bt.n}</div>'
        f'<div class="label">{data["met_cases"]} held (base rate {_pct(data["base_rate"])})'
        "</div></div></div>"
    )
    refs = _table(
        ["reference", "Brier", "skill of the forecasts against it"],
        [["always 50%", "0.250", num(data["brier_skill_vs_half"])],
         ["always the base rate (in sample)", num(data["brier_base_rate"]),
          num(data["brier_skill_vs_base_rate"])],
         ["the base rate of the other cases (leave-one-out)", num(data["brier_base_rate_loo"]),
          "–"]],
        num={1, 2},
    )  # fmt: skip
    rel = _table(
        ["forecast bin", "cases", "mean forecast", "held", "95% CI (Wilson)"],
        [[f"{_pct(r['low'])} – {_pct(r['high'])}", str(r["n"]),
          _pct(r["mean_forecast"]) if r["n"] else "", _pct(r["observed"]) if r["n"] else "",
          "{} – {}".format(*map(_pct, r["ci95"])) if r["ci95"] else ""]
         for r in data["reliability"]],
        num={1, 2, 3, 4},
    )  # fmt: skip
    cases = _table(
        ["case", "P(meeting)", "held?", "Brier", "log", "P(real day)", "P(part of day)",
         "likeliest day"],
        [[f"<code>{_e(c.case)}</code> {_e(c.title)}", _pct(c.p_meeting),
          _e(f"{c.date}, {c.part_of_day}") if c.met else "no", f"{c.brier:.3f}",
          f"{c.log_score:.2f}", _pct(c.p_day) if c.p_day is not None else "",
          _pct(c.p_part_of_day) if c.p_part_of_day is not None else "",
          _e(c.most_likely_day or "none")
          + ("" if c.most_likely_day_right is None
             else " (right)" if c.most_likely_day_right else " (wrong)")]
         for c in bt.cases],
        num={1, 3, 4, 5, 6},
    )  # fmt: skip
    body = [
        "<h1>Backtest: forecasts against what happened</h1>",
        f"<p class=muted>{bt.n} resolved cases, {bt.runs:,} runs each, seed {bt.seed}"
        + (", parameter uncertainty drawn" if bt.uncertainty else "") + "</p>",
        cards,
        "<h2>Against simple references</h2>", refs,
        "<h2>Reliability</h2>",
        _figure(plots.svg_data_uri(plots.reliability(bt)), "reliability diagram",
                "In each bin of forecasts, the share of cases in which the meeting was held "
                "against the mean forecast, with its 95% Wilson interval; ticks: every case at "
                "its forecast, on top if held, at the bottom if not."),
        rel,
        f"<p>Murphy decomposition: Brier {data['brier']:.3f} = reliability "
        f"{m['reliability']:.3f} − resolution {m['resolution']:.3f} + uncertainty "
        f"{m['uncertainty']:.3f} + within-bin {m['within_bin']:.3f}.</p>",
        "<h2>Every case</h2>", cases,
    ]  # fmt: skip
    return _page("negosim backtest", "\n".join(body))


def sweep_report(rows: list[dict[str, Any]], path: str | Path,
                 indices: list[dict[str, Any]] | None = None,
                 indices_path: str | Path = "") -> str:  # fmt: skip
    """The HTML report of sweep results (and, if given, sensitivity indices)."""
    params = plots.sweep_params(rows, path)
    name = Path(path).name
    body = [f"<h1>Sweep results: {_e(name)}</h1>",
            f"<p class=muted>{len(rows):,} design points; swept: "
            f"{_e(', '.join(params) or 'nothing')}</p>"]  # fmt: skip
    best = max(rows, key=lambda r: r["p_meeting"])
    worst = min(rows, key=lambda r: r["p_meeting"])
    body.append(
        '<div class="headline">'
        f'<div class="card"><div class="label">Lowest P(meeting)</div>'
        f'<div class="big">{_pct(worst["p_meeting"])}</div>'
        f'<div class="label">{_e(_point(worst, params))}</div></div>'
        f'<div class="card"><div class="label">Highest P(meeting)</div>'
        f'<div class="big">{_pct(best["p_meeting"])}</div>'
        f'<div class="label">{_e(_point(best, params))}</div></div></div>'
    )
    if len(params) in (1, 2):
        body.append(_figure(plots.svg_data_uri(plots.sweep(rows, path)), "sweep",
                            "P(meeting) across the design points, with 95% intervals "
                            "(as listed in the table)." if len(params) == 1 else
                            "P(meeting) over the two swept parameters."))  # fmt: skip
    if indices:
        body.append("<h2>Sensitivity</h2>")
        body.append(_figure(plots.svg_data_uri(plots.tornado(indices, indices_path)), "tornado",
                            "Sensitivity indices, most influential parameter on top; "
                            "error bars: the confidence half-widths given."))  # fmt: skip
    body.append("<h2>Design points</h2>")
    head = [*params, "P(meeting)", "95% CI"]
    table = [[_e(f"{r[p]:g}") for p in params]
             + [_pct(r["p_meeting"]), f"{_pct(r['ci95_low'])} – {_pct(r['ci95_high'])}"]
             for r in rows]  # fmt: skip
    body.append(_table(head, table, num=set(range(len(head)))))
    return _page(f"negosim: sweep {name}", "\n".join(body))


def _point(row: dict[str, Any], params: list[str]) -> str:
    return ", ".join(f"{p} = {row[p]:g}" for p in params)
