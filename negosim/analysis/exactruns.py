"""``compare --exact`` and ``sweep --exact``: differences and grids without sampling noise.

Both analyse each scenario exactly (:func:`negosim.analysis.ctmc.analyze`)
instead of simulating it; a scenario that does not qualify is refused with a
one-line reason (:class:`~negosim.analysis.ctmc.NotAnalyzable`).
"""

from __future__ import annotations

from typing import Any

from ..compiler.tables import CompiledScenario
from ..errors import ScenarioError
from ..runs.designs import SweepSpec, design
from ..runs.sweeprun import point_scenario
from .ctmc import MAX_STATES, Analysis, analyze


def exact_compare(
    base: CompiledScenario,
    variant: CompiledScenario,
    phases: int | None = None,
    max_states: int = MAX_STATES,
) -> dict[str, Any]:
    """Baseline and variant analysed exactly: P(meeting), held by each day's end, outcomes."""
    a, b = analyze(base, phases, max_states), analyze(variant, phases, max_states)
    days = list(dict.fromkeys([*a.held_by_end_of_day, *b.held_by_end_of_day]))
    return {
        "exact": True,
        "method": a.method,
        "p_base": a.p_meeting,
        "p_variant": b.p_meeting,
        "difference": b.p_meeting - a.p_meeting,
        "by_end_of_day": {
            d: {
                "base": a.held_by_end_of_day.get(d, 0.0),
                "variant": b.held_by_end_of_day.get(d, 0.0),
                "difference": b.held_by_end_of_day.get(d, 0.0) - a.held_by_end_of_day.get(d, 0.0),
            }
            for d in days
        },
        "outcomes": {
            name: {"base": a.outcomes.get(name, 0.0), "variant": b.outcomes.get(name, 0.0)}
            for name in dict.fromkeys([*a.outcomes, *b.outcomes])
        },
        "states": {"base": a.states, "variant": b.states},
        "elapsed_s": a.elapsed_s + b.elapsed_s,
    }


def exact_sweep(
    spec: SweepSpec, phases: int | None = None, max_states: int = MAX_STATES
) -> list[dict[str, Any]]:
    """One row per design point of ``spec``: the parameter values and the exact answers.

    The base scenario is analysed first, so a scenario that does not qualify is
    refused before any point; a point whose values the scenario refuses becomes a
    failure row (``status`` ``failed``), as in a simulated sweep.
    """
    from ..compiler.loader import load

    base = load(spec.scenario, spec.sets)
    analyze(base, phases, max_states)  # refuses what does not qualify, up front
    rows: list[dict[str, Any]] = []
    for j, values in enumerate(design(spec).points):
        try:
            a: Analysis = analyze(point_scenario(spec, base, values), phases, max_states)
        except ScenarioError as exc:
            rows.append({"point": j, **values, "status": "failed", "error": str(exc)})
            continue
        rows.append(
            {
                "point": j,
                **values,
                "p_meeting": a.p_meeting,
                **{f"p_{name}": p for name, p in a.outcomes.items()},
                "states": a.states,
                "status": "ok",
            }
        )
    return rows
