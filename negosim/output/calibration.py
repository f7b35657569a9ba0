"""What ``negosim calibrate`` shows and writes: the fit, the forecasts, the base file.

Consumes a :class:`~negosim.runs.calibrate.Calibration`; runs nothing.
"""

from __future__ import annotations

import json

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..runs.calibrate import Calibration

METHODS = (
    ("uncalibrated", "as the files stand"),
    ("in_sample", "calibrated, fitted on every case"),
    ("loo", "calibrated, leave-one-out"),
    ("base_rate", "always the base rate (in sample)"),
    ("loo_base_rate", "always the base rate (leave-one-out)"),
)


def render_calibration(cal: Calibration) -> Group:
    """The fitted values, each case's forecasts, and the scores side by side."""
    head = Text(
        f"Fitted on {len(cal.cases)} resolved cases, {cal.runs:,} runs per case and grid "
        f"point, {len(cal.grid[0])} points per parameter (posterior mean, 90% interval)",
        style="bold",
    )
    params = Table(show_edge=False)
    for col in ("parameter", "fitted", "90% interval", "most likely"):
        params.add_column(col, justify="left" if col == "parameter" else "right")
    for f in cal.fitted:
        e = cal.estimates[f.name]
        params.add_row(Text(f.name), f"{e['mean']:.3f}", f"{e['low90']:.2f}–{e['high90']:.2f}",
                       f"{e['map']:.2f}")  # fmt: skip
    cases = Table(show_edge=False, caption="P(meeting) given to each case")
    for col in ("case", "met", "as written", "calibrated", "left out"):
        cases.add_column(col, justify="left" if col == "case" else "right")
    for fc in cal.forecasts:
        cases.add_row(Text(fc["case"]), "yes" if fc["met"] else "no",
                      f"{fc['uncalibrated']:.2f}", f"{fc['in_sample']:.2f}",
                      f"{fc['loo']:.2f}")  # fmt: skip
    scores = Table(show_edge=False, caption="mean over the cases (Brier: lower is better; "
                   "log score: higher is better)")  # fmt: skip
    for col in ("forecast", "Brier", "log score"):
        scores.add_column(col, justify="left" if col == "forecast" else "right")
    for key, label in METHODS:
        s = cal.scores[key]
        scores.add_row(label, f"{s['brier']:.3f}", f"{s['log_score']:.3f}")
    verdict = (
        "leave-one-out beats the base rate"
        if cal.scores["loo"]["brier"] < cal.scores["loo_base_rate"]["brier"]
        else "leave-one-out does NOT beat the base rate: the fitted rules do not generalise"
    )
    return Group(head, params, Text(""), cases, Text(""), scores, Text(verdict))


def calibrated_yaml(cal: Calibration, extends: str) -> str:
    """An abstract base file that sets each fitted parameter's default, with provenance.

    Cases that extend it (it extends ``extends``, the base that declares the
    parameters) run with the fitted values; ``negosim params`` shows this file as
    where each value comes from.
    """
    names = ", ".join(c.name for c in cal.cases)
    loo, base = cal.scores["loo"]["brier"], cal.scores["loo_base_rate"]["brier"]
    lines = [
        "# Written by `negosim calibrate`: do not edit by hand, run it again instead.",
        f"# Fitted on {len(cal.cases)} resolved cases on {cal.extra.get('date', '')}: {names}",
        # JSON-escaped: a file name with a line break cannot end the comment early.
        f"# Command: {json.dumps(str(cal.extra.get('command', '')))[1:-1]}",
        f"# Leave-one-out Brier {loo:.3f} (base rate, leave-one-out: {base:.3f}); "
        f"in sample {cal.scores['in_sample']['brier']:.3f}.",
        "abstract: true",
        f"extends: {json.dumps(extends)}",
        "params:",
    ]
    for f in cal.fitted:
        e = cal.estimates[f.name]
        source = (f"negosim calibrate: posterior mean over {len(cal.cases)} resolved cases "
                  f"({cal.extra.get('date', '')}); 90% interval "
                  f"{e['low90']:.2f}-{e['high90']:.2f}")  # fmt: skip
        lines += [f"  {f.name}:", f"    default: {e['mean']:.4f}",
                  f"    source: {json.dumps(source)}",
                  "    assumption: calibrated against history; the uncalibrated rule is in "
                  f"{json.dumps(extends)[1:-1]}"]  # fmt: skip
    return "\n".join(lines) + "\n"
