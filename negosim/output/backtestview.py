"""Terminal rendering (rich) of a backtest: the cases, the set's scores, reliability."""

from __future__ import annotations

from datetime import date

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..runs.backtest import Backtest


def _pct(p: float | None) -> str:
    return "" if p is None else f"{100 * p:.1f}%"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _day(iso: str | None) -> str:
    return date.fromisoformat(iso).strftime("%d %b %y") if iso else ""


def render_backtest(bt: Backtest, console: Console) -> None:
    """Print the per-case table, the set's scores against references, reliability, Murphy."""
    data = bt.to_json()
    cases = Table(title="Cases: forecast against what happened", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)  # fmt: skip
    cases.add_column("case", no_wrap=True)
    cases.add_column("P", justify="right", no_wrap=True)
    cases.add_column("held", no_wrap=True)
    cases.add_column("Brier", justify="right", no_wrap=True)
    cases.add_column("log", justify="right", no_wrap=True)
    cases.add_column("P(day)", justify="right", no_wrap=True)
    cases.add_column("P(part)", justify="right", no_wrap=True)
    cases.add_column("top", no_wrap=True)
    cases.caption = ("P(day), P(part): chance given to the real day and part of day; "
                     "top: was the likeliest day the real one?")  # fmt: skip
    for c in bt.cases:
        held = f"{_day(c.date)} {(c.part_of_day or '')[:3]}" if c.met else "no"
        right = (
            "" if c.most_likely_day_right is None else ("yes" if c.most_likely_day_right else "no")
        )
        cases.add_row(c.case, _pct(c.p_meeting), held, _num(c.brier), _num(c.log_score, 2),
                      _pct(c.p_day), _pct(c.p_part_of_day), right)  # fmt: skip
    console.print(cases)
    lo, hi = data["brier_ci95"]
    llo, lhi = data["log_score_ci95"]
    head = Text.assemble(
        (f"{bt.n} cases, {data['met_cases']} held (base rate {_pct(data['base_rate'])}); "
         f"{bt.runs:,} runs each, seed {bt.seed}"
         + (", parameter uncertainty drawn" if bt.uncertainty else "") + "\n", "bold"),
        "mean Brier score ", (f"{data['brier']:.3f}", "bold"),
        f"  (bootstrap 95% {lo:.3f} – {hi:.3f}; lower is better)\n",
        "mean log score   ", (f"{data['log_score']:.3f}", "bold"),
        f"  (bootstrap 95% {llo:.3f} – {lhi:.3f}; higher is better)\n",
        f"always 50%: Brier 0.250, log {data['log_score_always_half']:.3f}; "
        f"skill vs 50%: {_num(data['brier_skill_vs_half'])}\n",
        f"always the base rate: Brier {data['brier_base_rate']:.3f} in sample, "
        f"{_num(data['brier_base_rate_loo'])} leave-one-out; "
        f"skill vs base rate: {_num(data['brier_skill_vs_base_rate'])}\n",
        f"likeliest day was the real one in {data['day_right']} of {data['met_cases']} "
        "meetings held",
    )  # fmt: skip
    console.print(Panel(head, title="The set", expand=False))
    rel = Table(title="Reliability: forecasts binned, and how often the meeting was held",
                title_justify="left")  # fmt: skip
    rel.add_column("forecast bin", no_wrap=True)
    rel.add_column("cases", justify="right")
    rel.add_column("mean forecast", justify="right")
    rel.add_column("held", justify="right")
    rel.add_column("95% CI (Wilson)", justify="right", no_wrap=True)
    for r in data["reliability"]:
        ci = f"{_pct(r['ci95'][0])} – {_pct(r['ci95'][1])}" if r["ci95"] else ""
        rel.add_row(f"{_pct(r['low'])} – {_pct(r['high'])}", str(r["n"]),
                    _pct(r["mean_forecast"]), _pct(r["observed"]), ci)  # fmt: skip
    console.print(rel)
    m = data["murphy"]
    console.print(
        f"Murphy decomposition: Brier {data['brier']:.3f} = reliability {m['reliability']:.3f} "
        f"− resolution {m['resolution']:.3f} + uncertainty {m['uncertainty']:.3f} "
        f"+ within-bin {m['within_bin']:.3f}",
        markup=False,
        highlight=False,
    )
    if bt.unresolved:
        console.print(f"not scored (no resolution): {', '.join(bt.unresolved)}", markup=False,
                      highlight=False)  # fmt: skip
