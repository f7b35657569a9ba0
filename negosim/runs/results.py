"""Streaming aggregates of replication rows, and the estimates drawn from them.

A :class:`Tally` folds :class:`~negosim.engine.Row` objects into integer
counts as they arrive, so memory does not grow with the number of runs, and
two tallies merge by adding counts: the order in which workers finish cannot
change a single number. :func:`estimate` turns a tally into the figures
people read (P(meeting) with its Wilson interval, when, what blocked), as
plain data for the table, JSON and later reports. Nothing here looks at the
engine's internals.

Censoring is handled honestly: every replication starts at the same instant
and the only censoring is the common horizon, so "held by time t" is simply
the fraction of *all* runs held by t; a run that did not end within the
horizon counts as not held by any t, never as held at some average time. The
median time of meeting is reported only if more than half of all runs were
held within the horizon.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.tables import CompiledScenario, day_parts
from ..display import bars_svg, block, lines, pct, table
from ..engine.simulation import TICKS_PER_MINUTE, Row
from ..scenario.units import at_hours

if TYPE_CHECKING:  # the batch engine is imported only where it runs (start-up time)
    from ..engine.batch import BatchResult

Z95 = NormalDist().inv_cdf(0.975)
WHY = ("refused", "undecided", "overtaken")
"""Why a precondition stood in a run without the meeting, in the order of the engine's
codes (:data:`negosim.engine.simulation.REFUSED` ...): an action that could meet it was
taken and it still stood (or that action ended the talks); no such action had been
taken by the horizon; none had been taken when another path ended the talks."""
WHY_TEXT = {
    "refused": "refused",
    "undecided": "not decided by the horizon",
    "overtaken": "talks ended first",
}
"""How reports head the three columns of :data:`WHY`."""

ROW_COLUMNS = ("run", "outcome", "held", "time", "hours", "path", "blocking", "events")
"""The columns of a kept replication row (:func:`readable_row`, :meth:`Estimate.rows_frame`)."""
PARTS = ("night", "morning", "afternoon", "evening")  # 00-06, 06-12, 12-18, 18-24 local


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (95% by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact ends at k = 0 and k = n: rounding must not leave p outside its interval.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return (low, high)


@dataclass
class Tally:
    """Integer counts over replications; ``add`` a row, ``merge`` another tally."""

    runs: int = 0
    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    held_minutes: Counter[int] = field(default_factory=Counter)  # minute after start
    blocking: Counter[int] = field(default_factory=Counter)  # precondition index
    blocking_why: Counter[tuple[int, int]] = field(default_factory=Counter)  # (index, why)
    paths: Counter[tuple[int, ...]] = field(default_factory=Counter)

    def add(self, row: Row) -> None:
        """Count one replication row.

        Its outcome, path and events; the minute after the start at which it was
        held (from its ticks), or, if not held, the preconditions standing at its end.
        """
        self.runs += 1
        self.events += row.events
        self.outcomes[row.outcome] += 1
        self.paths[row.path] += 1
        if row.held:
            assert row.ticks is not None
            self.held_minutes[row.ticks // TICKS_PER_MINUTE] += 1  # exact: midnight is midnight
        elif row.blocking:
            for b in row.blocking:
                self.blocking[b] += 1
            for b, why in zip(row.blocking, row.why, strict=False):
                self.blocking_why[b, why] += 1

    def add_batch(self, res: BatchResult) -> None:
        """Count the rows of a batch-engine chunk, as :meth:`add` would one by one."""
        ref = res.reference
        keep = np.ones(len(res), dtype=bool)
        if ref:
            keep[list(ref)] = False
            for row in ref.values():
                self.add(row)
        n = int(keep.sum())
        self.runs += n
        self.events += int(res.events[keep].sum())
        states = res.cs.states
        codes, counts = np.unique(res.outcome[keep], return_counts=True)
        for c, k in zip(codes.tolist(), counts.tolist(), strict=True):
            self.outcomes["censored" if c < 0 else states[c]] += k
        nodes, counts = np.unique(res.node[keep], return_counts=True)
        for c, k in zip(nodes.tolist(), counts.tolist(), strict=True):
            self.paths[res.paths[c]] += k
        held = keep & res.held
        minutes, counts = np.unique(res.ticks[held] // TICKS_PER_MINUTE, return_counts=True)
        for m, k in zip(minutes.tolist(), counts.tolist(), strict=True):
            self.held_minutes[m] += k
        sums = res.blocking[keep & ~res.held].sum(axis=0)
        for b in np.flatnonzero(sums).tolist():
            self.blocking[b] += int(sums[b])
        sel = keep & ~res.held
        for b in np.flatnonzero(sums).tolist():
            whys, counts = np.unique(res.why[sel & res.blocking[:, b], b], return_counts=True)
            for w, k in zip(whys.tolist(), counts.tolist(), strict=True):
                self.blocking_why[b, w] += k

    def merge(self, other: Tally) -> Tally:
        """Add ``other``'s counts into this tally; return it (order does not matter)."""
        self.runs += other.runs
        self.events += other.events
        self.outcomes.update(other.outcomes)
        self.held_minutes.update(other.held_minutes)
        self.blocking.update(other.blocking)
        self.blocking_why.update(other.blocking_why)
        self.paths.update(other.paths)
        return self

    @property
    def held(self) -> int:
        """Runs in which the meeting was held within the horizon."""
        return sum(self.held_minutes.values())


@dataclass(repr=False)
class Estimate:
    """What a Monte Carlo run found, as plain data (see :meth:`to_dict`).

    The attributes are named as the keys of ``negosim run --format json``
    (``p_meeting``, ``ci95``, ``by_day``, ``by_part_of_day``,
    ``median_time_held``...); :meth:`to_dict` gives that JSON object,
    :meth:`to_frame` the same numbers as a pandas DataFrame.

    >>> from negosim import load, simulate
    >>> est = simulate(load("scenarios/tutorial.yaml"), runs=200, seed=1)
    >>> est.to_dict()["runs"]
    200
    """

    scenario: str
    title: str
    runs: int
    seed: int
    held: int
    p_meeting: float
    ci95: tuple[float, float]
    by_day: dict[str, float]
    by_part_of_day: dict[str, dict[str, float]]
    held_by_end_of_day: dict[str, dict[str, Any]]
    median_time_held: str | None  # venue-local ISO datetime, or None if not reached
    outcomes: dict[str, int]
    blocking: dict[str, int]
    blocking_text: dict[str, str]
    paths: list[tuple[list[str], int]]
    mean_events_per_run: float
    elapsed_s: float
    horizon: str
    params: dict[str, float]
    overrides: list[str] = field(default_factory=list)
    # For plots and reports (not in the JSON): when runs were held, in minutes after
    # the start, and how often runs took each protocol transition as their step-th
    # (step from 1, source, dest).
    held_minutes: dict[int, int] = field(default_factory=dict)
    step_transitions: dict[tuple[int, str, str], int] = field(default_factory=dict)
    # ``run --precision``: {"target", "half_width", "reached", "max_runs"} (else None).
    precision: dict[str, Any] | None = None
    # One readable dict per replication, kept only on request (``simulate(keep_rows=True)``).
    rows: list[dict[str, Any]] | None = None
    timezone: str = "UTC"  # the venue's IANA time zone (for timestamps in frames)
    # Why each precondition stood in the runs it blocked: {precondition: {reason: runs}}
    # with the reasons of :data:`WHY` ("refused", "undecided", "overtaken").
    blocking_why: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def by_part(self) -> dict[str, dict[str, float]]:
        """Old name of :attr:`by_part_of_day` (kept for existing callers)."""
        return self.by_part_of_day

    @property
    def median_time(self) -> str | None:
        """Old name of :attr:`median_time_held` (kept for existing callers)."""
        return self.median_time_held

    def to_dict(self) -> dict[str, Any]:
        """The ``negosim run --format json`` object (docs/cli.md lists its fields).

        >>> from negosim import load, simulate
        >>> sorted(simulate(load("scenarios/tutorial.yaml"), runs=100).to_dict())[:3]
        ['blocking', 'blocking_why', 'by_day']
        """
        return self.to_json()

    def to_frame(self, by: str = "part_of_day") -> Any:
        """The estimate by day and part of day as a pandas DataFrame (``negosim[pandas]``).

        ``by="part_of_day"`` (default): one row per venue-local day and part of day
        (night, morning, afternoon, evening) with ``p_held``, the fraction of all
        runs held then. ``by="day"``: one row per day with ``p_held``,
        ``p_held_by_end_of_day`` and its Wilson interval ``ci95_low``/``ci95_high``.

        >>> from negosim import load, simulate
        >>> est = simulate(load("scenarios/tutorial.yaml"), runs=200, seed=1)
        >>> list(est.to_frame().columns)
        ['day', 'part_of_day', 'p_held']
        """
        from ..extras import require

        require("pandas", "Estimate.to_frame()")
        import pandas as pd

        if by == "day":
            return pd.DataFrame(
                [
                    {
                        "day": day,
                        "p_held": p,
                        "p_held_by_end_of_day": self.held_by_end_of_day[day]["p"],
                        "ci95_low": self.held_by_end_of_day[day]["ci95"][0],
                        "ci95_high": self.held_by_end_of_day[day]["ci95"][1],
                    }
                    for day, p in self.by_day.items()
                ],
                columns=["day", "p_held", "p_held_by_end_of_day", "ci95_low", "ci95_high"],
            )
        if by != "part_of_day":
            raise ValueError(f"by must be 'part_of_day' or 'day', not {by!r}")
        return pd.DataFrame(
            [
                {"day": day, "part_of_day": part, "p_held": p}
                for day, parts in self.by_part_of_day.items()
                for part, p in parts.items()
            ],
            columns=["day", "part_of_day", "p_held"],
        )

    def rows_frame(self) -> Any:
        """The replications kept by ``simulate(..., keep_rows=True)`` as a DataFrame.

        Columns: ``run``, ``outcome``, ``held``, ``time`` (venue-local timestamp of
        the outcome, empty if censored), ``hours`` (after the start), ``path``
        (protocol state names joined by " > "), ``blocking`` (names of the
        preconditions standing at the end, joined by ", ") and ``events``.
        ValueError if the rows were not kept.
        """
        from ..extras import require

        require("pandas", "Estimate.rows_frame()")
        import pandas as pd

        if self.rows is None:
            raise ValueError("no rows kept: simulate(..., keep_rows=True) keeps them")
        frame = pd.DataFrame(self.rows, columns=list(ROW_COLUMNS))
        frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(self.timezone)
        return frame

    def __repr__(self) -> str:
        low, high = self.ci95
        return lines(
            f"Estimate({self.scenario!r}, {self.runs:,} runs, seed {self.seed})",
            f"  P(meeting) = {pct(self.p_meeting)}  (95% CI {pct(low)} - {pct(high)})",
            f"  median time held: {self.median_time_held or 'not reached'}",
            "  by day: " + ", ".join(f"{d[5:]} {pct(p)}" for d, p in self.by_day.items()),
            "  outcomes: " + ", ".join(f"{k} {v:,}" for k, v in self.outcomes.items()),
        )

    def _repr_html_(self) -> str:
        low, high = self.ci95
        head = table(
            ["scenario", "runs", "seed", "P(meeting)", "95% CI", "median time held"],
            [[self.scenario, f"{self.runs:,}", self.seed, pct(self.p_meeting),
              f"{pct(low)} - {pct(high)}", self.median_time_held or "not reached"]],
            self.title,
        )  # fmt: skip
        days = table(
            ["day", "held that day", "held by end of day", "95% CI"],
            [
                [
                    d,
                    pct(p),
                    pct(self.held_by_end_of_day[d]["p"]),
                    "{} - {}".format(*map(pct, self.held_by_end_of_day[d]["ci95"])),
                ]
                for d, p in self.by_day.items()
            ],  # fmt: skip
        )
        parts = sorted({p for v in self.by_part_of_day.values() for p in v}, key=PARTS.index)
        by_part = table(
            ["day", *parts],
            [
                [d, *(pct(v[p]) if p in v else "" for p in parts)]
                for d, v in self.by_part_of_day.items()
            ],  # fmt: skip
        )
        outcomes = table(["outcome", "runs"], [[k, f"{v:,}"] for k, v in self.outcomes.items()])
        blocking = table(
            ["precondition", "failed runs blocked", "text"],
            [[k, f"{v:,}", self.blocking_text.get(k, "")] for k, v in self.blocking.items()],
        )
        figure = bars_svg(list(self.by_day), list(self.by_day.values()), "P(held that day)")
        return block(
            f"negosim estimate: {self.scenario}", head, figure, days, by_part, outcomes, blocking
        )

    def to_json(self) -> dict[str, Any]:
        """The ``negosim run --format json`` object (docs/cli.md lists its fields)."""
        return {
            "scenario": self.scenario,
            "title": self.title,
            "runs": self.runs,
            "seed": self.seed,
            "p_meeting": self.p_meeting,
            "ci95": list(self.ci95),
            "by_day": self.by_day,
            "by_part_of_day": self.by_part_of_day,
            "held_by_end_of_day": self.held_by_end_of_day,
            "median_time_held": self.median_time_held,
            "outcomes": self.outcomes,
            "blocking": self.blocking,
            "blocking_why": self.blocking_why,
            "paths": [{"states": states, "runs": n} for states, n in self.paths],
            "mean_events_per_run": self.mean_events_per_run,
            "horizon": self.horizon,
            "overrides": self.overrides,
            "elapsed_s": self.elapsed_s,
            **({"precision": self.precision} if self.precision is not None else {}),
        }


def _local(cs: CompiledScenario, hours: float) -> datetime:
    return at_hours(cs.start, hours, cs.tz)


def estimate(
    cs: CompiledScenario,
    tally: Tally,
    seed: int,
    elapsed_s: float,
    overrides: list[str] | None = None,
    top_paths: int = 5,
) -> Estimate:
    """Summarise ``tally`` for scenario ``cs``."""
    n = tally.runs
    held = tally.held
    marks = list(day_parts(cs))  # (hours after start, local datetime) every 6 h
    starts = [at for at, _ in marks]
    # Local calendar days from the start's day to the horizon's, all listed.
    days = list(dict.fromkeys(mark.date().isoformat() for _, mark in marks))  # linear (issue 9)
    held_day: Counter[str] = Counter()
    held_part: Counter[tuple[str, str]] = Counter()
    for minute, count in tally.held_minutes.items():
        t = minute / 60
        i = max(bisect_right(starts, t) - 1, 0)
        mark = marks[i][1]
        held_day[mark.date().isoformat()] += count
        held_part[(mark.date().isoformat(), PARTS[mark.hour // 6])] += count
    by_day = {d: held_day[d] / n if n else 0.0 for d in days}
    by_part: dict[str, dict[str, float]] = {}
    for i, (_, mark) in enumerate(marks):
        ends = marks[i + 1][0] if i + 1 < len(marks) else cs.horizon
        if ends <= 0:
            continue  # this part of the day was over before the simulated period began
        d, part = mark.date().isoformat(), PARTS[mark.hour // 6]
        by_part.setdefault(d, {})[part] = held_part[(d, part)] / n if n else 0.0
    cumulative: dict[str, dict[str, Any]] = {}
    running = 0
    for d in days:
        running += held_day[d]
        low, high = wilson(running, n)
        cumulative[d] = {"p": running / n if n else 0.0, "ci95": [low, high]}

    median = None
    if n and held * 2 > n:
        need, seen = (n + 1) // 2, 0
        for minute in sorted(tally.held_minutes):
            seen += tally.held_minutes[minute]
            if seen >= need:
                median = _local(cs, minute / 60).isoformat(timespec="minutes")
                break

    outcome_names = list(
        dict.fromkeys([cs.states[i] for i in sorted(cs.success | cs.failure)] + ["censored"])
    )
    outcomes = {name: tally.outcomes.get(name, 0) for name in outcome_names}
    model = cs.model
    blocking = {pid: tally.blocking.get(i, 0) for i, pid in enumerate(cs.preconditions)}
    blocking_why = {
        pid: {name: tally.blocking_why.get((i, code), 0) for code, name in enumerate(WHY)}
        for i, pid in enumerate(cs.preconditions)
    }
    blocking_text = {
        pid: f"{model.actors[p.insisted_by].name}: {p.text}"
        for pid, p in model.preconditions.items()
    }
    paths = [
        ([cs.states[i] for i in path], count)
        for path, count in sorted(tally.paths.items(), key=lambda kv: (-kv[1], kv[0]))[:top_paths]
    ]
    return Estimate(
        scenario=model.id,
        title=model.title,
        runs=n,
        seed=seed,
        held=held,
        p_meeting=held / n if n else 0.0,
        ci95=wilson(held, n),
        by_day=by_day,
        by_part_of_day=by_part,
        held_by_end_of_day=cumulative,
        median_time_held=median,
        outcomes=outcomes,
        blocking=blocking,
        blocking_text=blocking_text,
        paths=paths,
        mean_events_per_run=tally.events / n if n else 0.0,
        elapsed_s=elapsed_s,
        horizon=_local(cs, cs.horizon).isoformat(timespec="minutes"),
        params=dict(cs.params),
        overrides=list(overrides or []),
        held_minutes=dict(sorted(tally.held_minutes.items())),
        step_transitions=_step_transitions(cs, tally),
        timezone=getattr(cs.tz, "key", None) or "UTC",
        blocking_why=blocking_why,
    )


def _step_transitions(cs: CompiledScenario, tally: Tally) -> dict[tuple[int, str, str], int]:
    """How many runs took each protocol transition as their step-th, from the paths."""
    counts: Counter[tuple[int, str, str]] = Counter()
    for path, n in tally.paths.items():
        for step, (a, b) in enumerate(zip(path, path[1:], strict=False), 1):
            counts[(step, cs.states[a], cs.states[b])] += n
    return dict(counts)


def readable_row(cs: CompiledScenario, row: Row) -> dict[str, Any]:
    """One replication row with names instead of indexes (see :data:`ROW_COLUMNS`)."""
    when = None
    if row.time is not None and row.outcome != "censored":
        when = _local(cs, row.time).isoformat(timespec="minutes")
    return {
        "run": row.index,
        "outcome": row.outcome,
        "held": row.held,
        "time": when,
        "hours": None if row.time is None else round(row.time, 4),
        "path": " > ".join(cs.states[i] for i in row.path),
        "blocking": ", ".join(cs.preconditions[i] for i in row.blocking),
        "events": row.events,
    }
