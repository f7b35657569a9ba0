"""``negosim check-engines``: the exact answer as an oracle for the simulation engine.

For a scenario, :func:`exponential_variant` replaces every action delay by an
exponential one of the same mean (the all-exponential variant, which exact
mode solves); :func:`check` then runs the simulation engine on that variant
and compares each estimated probability (P(meeting), held by the end of each
day, each outcome) with the exact one by its z-score
``(p_sim - p_exact) / sqrt(p_exact (1 - p_exact) / n)``. With correct engines
the z-scores are standard normal: |z| >= 4 happens about once in 16 000
comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..compiler.dists import spec_of
from ..compiler.loader import load
from ..compiler.tables import CompiledScenario
from .ctmc import analyze
from .phasetype import mean_of


def exponential_sets(cs: CompiledScenario) -> list[tuple[str, Any]]:
    """``--set`` overrides that make every action delay exponential with its mean."""
    out: list[tuple[str, Any]] = []
    for c in cs.clocks:
        if c.kind != "action":
            continue
        spec = spec_of(c.delay)
        if spec is None or spec.kind == "exponential":
            continue
        mean = mean_of(spec)
        if mean <= 0:
            continue  # a zero delay has no exponential twin; analyze will refuse it
        out.append((f"actions.{c.id}.delay", {"dist": "exponential", "mean": f"{mean!r}h"}))
    return out


def exponential_variant(path: str, sets: list[tuple[str, Any]] | None = None) -> CompiledScenario:
    """The scenario at ``path`` with every action delay made exponential (same mean)."""
    cs = load(path, list(sets or []))
    return load(path, list(sets or []) + exponential_sets(cs))


@dataclass
class Comparison:
    """One probability, exact and simulated."""

    what: str
    exact: float
    simulated: float
    runs: int

    @property
    def z(self) -> float:
        """The z-score of the simulated estimate under the exact probability."""
        var = self.exact * (1 - self.exact) / self.runs
        if var <= 0:
            return 0.0 if self.simulated == self.exact else math.inf
        return (self.simulated - self.exact) / math.sqrt(var)


def check(
    cs: CompiledScenario, runs: int, seed: int = 0, workers: int = 1, phases: int | None = None
) -> list[Comparison]:
    """Exact answer against ``runs`` simulated replications of ``cs``."""
    from ..runs.runner import simulate

    exact = analyze(cs, phases=phases)
    est = simulate(cs, runs=runs, seed=seed, workers=workers)
    out = [Comparison("P(meeting)", exact.p_meeting, est.p_meeting, runs)]
    for day, p in exact.held_by_end_of_day.items():
        out.append(Comparison(f"held by end of {day}", p, est.held_by_end_of_day[day]["p"], runs))
    for name, p in exact.outcomes.items():
        out.append(Comparison(f"outcome {name}", p, est.outcomes.get(name, 0) / runs, runs))
    return out
