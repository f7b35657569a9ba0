"""Calibration: fit shared parameters to what happened in resolved cases.

A library of cases that share reference-class parameters (for example "how
likely a side that calls itself non-committal is to agree") is simulated on a
grid of those parameters' values, and the grid is weighed by how likely each
value makes what really happened in every case: whether the meeting took
place and, if it did, on which venue-local day. With a flat prior over the
grid this is the posterior of the parameters given the library; the fitted
value of a parameter is its posterior mean, and a case's forecast is the
posterior predictive probability (the case's P(meeting) averaged over the
posterior).

Three properties keep this honest and cheap:

* **Common random numbers.** Every grid point of a case runs the same
  replications (same seed, same keyed streams), so the likelihood surface is
  smooth in the parameters and differences between points are not noise.
* **Only the parameters a case reads.** A case is simulated only over the grid
  of the fitted parameters it depends on (found by checking, under common
  random numbers, whether moving a parameter across its range changes any
  replication); the joint likelihood is the sum of the cases' tables broadcast
  over the full grid.
* **Leave-one-out without refitting by simulation.** The tables do not depend
  on the outcomes, so the posterior without case ``c`` is the sum of the other
  cases' log-likelihoods; its forecast of ``c`` never sees ``c``'s
  outcome (``tests/test_calibrate.py`` plants a case whose outcome would move
  the fit and checks its left-out forecast does not move).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

from ..compiler.bind import bind
from ..compiler.tables import CompiledScenario
from ..engine.simulation import TICKS_PER_HOUR
from ..errors import UsageError
from ..scenario.units import at_hours
from .backends import check_engine
from .runner import columns
from .scoring import brier, log_score

Progress = Callable[[int], None]

GRID = 9
"""Grid points per fitted parameter (cell midpoints of its range)."""
PROBE_RUNS = 200
"""Replications used to find out whether a case reads a parameter."""


@dataclass(frozen=True)
class Fitted:
    """A parameter to fit: its name and the range the grid spans."""

    name: str
    low: float
    high: float

    def grid(self, k: int) -> np.ndarray:
        """``k`` cell midpoints of ``[low, high]`` (never the ends: a probability of
        exactly 0 or 1 would make some history impossible)."""
        return self.low + (np.arange(k) + 0.5) * (self.high - self.low) / k


@dataclass(frozen=True)
class Case:
    """A resolved case: its compiled scenario and what happened."""

    name: str
    scenario: CompiledScenario
    met: bool
    date: dt.date | None = None  # venue-local date of the meeting, when met


@dataclass
class CaseTable:
    """A case's simulated probabilities on the grid of the fitted parameters it reads.

    ``p_met`` and ``p_day`` have one axis per name in ``params`` (in the order of
    the fitted list); ``p_day`` is P(held on the venue-local day it really
    happened) and is only used when the case met.
    """

    case: str
    params: tuple[str, ...]
    p_met: np.ndarray
    p_day: np.ndarray
    runs: int

    def loglik(self, met: bool) -> np.ndarray:
        """Log-probability of what happened, at each grid point this case reads.

        Counts are smoothed by half a run each way (Jeffreys), so an outcome no
        replication showed is unlikely, not impossible.
        """
        n = self.runs
        if met:
            return np.log((self.p_day * n + 0.5) / (n + 1))
        return np.log(((1 - self.p_met) * n + 0.5) / (n + 1))


@dataclass
class Calibration:
    """The result of :func:`calibrate`; :meth:`to_dict` is ``--format json``."""

    fitted: list[Fitted]
    grid: list[np.ndarray]
    cases: list[Case]
    tables: list[CaseTable]
    posterior: np.ndarray  # over the full grid, sums to 1
    estimates: dict[str, dict[str, float]]  # name -> mean, low90, high90, map
    forecasts: list[dict[str, Any]]  # per case: uncalibrated, in_sample, loo, met
    scores: dict[str, dict[str, float]]  # method -> brier, log_score
    runs: int
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: fitted values, per-case forecasts and the scores."""
        return {
            "params": {
                f.name: {"low": f.low, "high": f.high, **self.estimates[f.name]}
                for f in self.fitted
            },
            "cases": self.forecasts,
            "scores": self.scores,
            "n": len(self.cases),
            "runs": self.runs,
            "seed": self.seed,
            "grid": len(self.grid[0]) if self.grid else 0,
            **self.extra,
        }


def scenario_at(cs: CompiledScenario, values: dict[str, float]) -> CompiledScenario:
    """``cs`` with parameter defaults set to ``values`` (validated, and bound without
    compiling again: :func:`negosim.compiler.bind.bind`)."""
    return bind(cs, [(name, float(v)) for name, v in values.items()])


def _counts(
    cs: CompiledScenario, runs: int, seed: int, day: dt.date | None, engine: str = "batch"
) -> tuple[int, int]:
    """Replications held, and held on the venue-local ``day``, of ``runs`` from ``seed``."""
    _, held, ticks = columns(cs, runs, seed, engine)
    on_day = 0
    if day is not None:
        ends, counts = np.unique(ticks[held], return_counts=True)
        for t, k in zip(ends.tolist(), counts.tolist(), strict=True):
            if at_hours(cs.start, t / TICKS_PER_HOUR, cs.tz).date() == day:
                on_day += k
    return int(held.sum()), on_day


def _rows(cs: CompiledScenario, runs: int, seed: int, engine: str = "batch") -> np.ndarray:
    """Each replication's outcome and end (ticks): equal for two scenarios exactly
    when every replication ended the same way at the same time."""
    outcome, _, ticks = columns(cs, runs, seed, engine)
    return np.stack([outcome, ticks])


def reads(
    cs: CompiledScenario, fitted: Sequence[Fitted], seed: int, engine: str = "batch"
) -> tuple[str, ...]:
    """The fitted parameters this scenario depends on.

    Under common random numbers a parameter the scenario never reads leaves
    every replication exactly as it was, so one that changes no replication
    across its range (both ends and the middle, :data:`PROBE_RUNS` runs) is
    not read. A parameter the scenario does not declare is not read either.
    ``engine`` runs the probes (the same rows on either engine).
    """
    declared = {p.name for p in cs.parameters}
    out = []
    for f in fitted:
        if f.name not in declared:
            continue
        probes = [_rows(scenario_at(cs, {f.name: x}), PROBE_RUNS, seed, engine)
                  for x in (f.low + (f.high - f.low) * q for q in (0.05, 0.5, 0.95))]  # fmt: skip
        if any(not np.array_equal(p, probes[0]) for p in probes[1:]):
            out.append(f.name)
    return tuple(out)


def case_table(
    case: Case,
    fitted: Sequence[Fitted],
    grid: Sequence[np.ndarray],
    runs: int,
    seed: int,
    progress: Progress | None = None,
    engine: str = "batch",
) -> CaseTable:
    """Simulate ``case`` at every grid point of the fitted parameters it reads, on
    ``engine`` (``"batch"`` or ``"simpy"``: the same counts)."""
    names = reads(case.scenario, fitted, seed, engine)
    axes = [grid[[f.name for f in fitted].index(n)] for n in names]
    shape = tuple(len(a) for a in axes)
    p_met = np.zeros(shape)
    p_day = np.zeros(shape)
    for idx in product(*(range(len(a)) for a in axes)):
        values = {n: float(axes[k][i]) for k, (n, i) in enumerate(zip(names, idx, strict=True))}
        cs = scenario_at(case.scenario, values) if values else case.scenario
        held, on_day = _counts(cs, runs, seed, case.date, engine)
        p_met[idx] = held / runs
        p_day[idx] = on_day / runs
        if progress:
            progress(1)
    return CaseTable(case.name, names, p_met, p_day, runs)


def _broadcast(table: CaseTable, values: np.ndarray, fitted: Sequence[Fitted]) -> np.ndarray:
    """A case table's values as an array over the full grid (size-1 axes it ignores)."""
    names = [f.name for f in fitted]
    order = sorted(range(len(table.params)), key=lambda k: names.index(table.params[k]))
    arr = np.transpose(values, order) if values.ndim else values
    shape = [1] * len(fitted)
    for k in order:
        shape[names.index(table.params[k])] = values.shape[k]
    return np.reshape(arr, shape)


def _posterior(loglik: np.ndarray) -> np.ndarray:
    w = np.exp(loglik - loglik.max())
    return w / w.sum()


def calibrate(
    cases: Sequence[Case],
    fitted: Sequence[Fitted],
    runs: int = 2_000,
    seed: int = 0,
    grid_points: int = GRID,
    progress: Progress | None = None,
    engine: str = "batch",
) -> Calibration:
    """Fit ``fitted`` to ``cases`` over a grid; score in sample and leave-one-out.

    ``engine`` is ``"batch"`` (default: the vectorised engine, the simpy engine
    for a case it does not cover) or ``"simpy"`` (the reference engine); the
    result is the same on either, number for number.
    """
    check_engine(engine)
    if len(cases) < 2:
        raise UsageError("calibrate needs at least two resolved cases (leave-one-out)")
    if not fitted:
        raise UsageError("calibrate needs at least one parameter to fit")
    if grid_points ** len(fitted) > 200_000:
        raise UsageError(
            f"a grid of {grid_points} points for each of {len(fitted)} parameters has "
            f"{grid_points ** len(fitted):,} points; fit fewer parameters or use --grid smaller"
        )
    grid = [f.grid(grid_points) for f in fitted]
    tables = [case_table(c, fitted, grid, runs, seed, progress, engine) for c in cases]
    logliks = [_broadcast(t, t.loglik(c.met), fitted) for t, c in zip(tables, cases, strict=True)]
    total = sum(logliks, np.zeros([grid_points] * len(fitted)))
    post = _posterior(total)

    def predictive(t: CaseTable, w: np.ndarray) -> float:
        return float((w * _broadcast(t, t.p_met, fitted)).sum())

    estimates: dict[str, dict[str, float]] = {}
    for k, f in enumerate(fitted):
        marginal = post.sum(axis=tuple(j for j in range(len(fitted)) if j != k))
        cdf = np.cumsum(marginal)
        estimates[f.name] = {
            "mean": float((marginal * grid[k]).sum()),
            "map": float(grid[k][int(np.argmax(marginal))]),
            "low90": float(grid[k][int(np.searchsorted(cdf, 0.05))]),
            "high90": float(grid[k][min(int(np.searchsorted(cdf, 0.95)), grid_points - 1)]),
        }

    forecasts: list[dict[str, Any]] = []
    n = len(cases)
    met_count = sum(c.met for c in cases)
    for j, (c, t) in enumerate(zip(cases, tables, strict=True)):
        # Summed afresh without case j (not total minus j: rounding would leak j).
        others = sum((ll for i, ll in enumerate(logliks) if i != j), np.zeros_like(total))
        loo_post = _posterior(others)
        uncal_held, _ = _counts(c.scenario, runs, seed, None, engine)
        forecasts.append({
            "case": c.name,
            "met": c.met,
            "reads": list(t.params),
            "uncalibrated": uncal_held / runs,
            "in_sample": predictive(t, post),
            "loo": predictive(t, loo_post),
            "base_rate": met_count / n,
            "loo_base_rate": (met_count - c.met) / (n - 1),
        })  # fmt: skip
    scores = {
        method: {
            "brier": float(np.mean([brier(f[method], f["met"]) for f in forecasts])),
            "log_score": float(np.mean([log_score(f[method], f["met"]) for f in forecasts])),
        }
        for method in ("uncalibrated", "in_sample", "loo", "base_rate", "loo_base_rate")
    }
    return Calibration(
        list(fitted), grid, list(cases), tables, post, estimates, forecasts, scores, runs, seed
    )
