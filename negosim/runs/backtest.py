"""Backtests: every resolved case run, and its forecast scored against what happened.

``negosim backtest FILES|DIR --outcomes FILE|DIR`` pairs each scenario with its
resolution file (:mod:`negosim.scenario.resolution`) by the scenario's id (or
its file's stem), runs it exactly as ``negosim run`` would (or ``run
--uncertainty``), and scores it with :mod:`negosim.runs.scoring`. What each
number means and how far to trust it with a few dozen cases: docs/backtest.md.

Resolutions are read with :func:`load_outcomes` (one file or a directory), each
file by :func:`negosim.scenario.resolution.load_resolution`. Per case: P(meeting)
and its interval, what happened, Brier and log score, the
probability given to the real day and to the real day's part of day, and
whether the day the model found most likely was the real one. Over the set:
the mean Brier and log scores with bootstrap intervals (cases resampled), the
Brier score of always answering 50% (0.25) and of always answering the set's
base rate (``ō(1-ō)``, in sample; the leave-one-out base rate is also given),
Brier skill against both, a reliability table and the Murphy decomposition.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compiler.loader import load
from ..compiler.tables import CompiledScenario
from ..errors import Problem, ScenarioError, UsageError
from ..scenario.resolution import Resolution, load_resolution
from . import scoring
from .backends import Backend, batch_support, check_engine
from .runner import backend_or_local, simulate
from .uncertainty import DEFAULT_DRAWS, simulate_uncertain

MAX_CASES = 1_000
"""Scenario files (and resolution files) a backtest reads at most (every input may be hostile)."""
DEFAULT_BINS = 5


@dataclass
class CaseScore:
    """One case: the forecast, what happened, and its scores (see :meth:`to_json`)."""

    case: str
    file: str
    title: str
    runs: int
    p_meeting: float
    ci95: tuple[float, float]
    met: bool
    date: str | None
    part_of_day: str | None
    brier: float
    log_score: float
    p_day: float | None  # P(held on the real day); None if it was not held
    p_part_of_day: float | None  # P(held in the real day's real part of day)
    most_likely_day: str | None  # the day with the highest P(held that day)
    most_likely_day_right: bool | None  # None if it was not held
    p_meeting_band: tuple[float, float] | None = None  # with --uncertainty

    def to_json(self) -> dict[str, Any]:
        """The case's object in ``negosim backtest --format json``'s ``cases`` list."""
        out: dict[str, Any] = {
            "case": self.case,
            "file": self.file,
            "title": self.title,
            "runs": self.runs,
            "p_meeting": self.p_meeting,
            "ci95": list(self.ci95),
            "met": self.met,
            "date": self.date,
            "part_of_day": self.part_of_day,
            "brier": self.brier,
            "log_score": self.log_score,
            "p_day": self.p_day,
            "p_part_of_day": self.p_part_of_day,
            "most_likely_day": self.most_likely_day,
            "most_likely_day_right": self.most_likely_day_right,
        }
        if self.p_meeting_band is not None:
            out["p_meeting_band"] = list(self.p_meeting_band)
        return out


@dataclass
class Backtest:
    """A scored set of cases (see :meth:`to_json` and docs/backtest.md)."""

    cases: list[CaseScore]
    runs: int
    seed: int
    bins: int
    uncertainty: bool
    unresolved: list[str] = field(default_factory=list)  # scenarios with no resolution

    @property
    def n(self) -> int:
        """The number of scored cases."""
        return len(self.cases)

    @property
    def forecasts(self) -> list[float]:
        """P(meeting) of each case, in case order."""
        return [c.p_meeting for c in self.cases]

    @property
    def outcomes(self) -> list[bool]:
        """Whether each case's meeting was held, in case order."""
        return [c.met for c in self.cases]

    @property
    def brier(self) -> float:
        """The mean Brier score over the cases (lower is better)."""
        return sum(c.brier for c in self.cases) / self.n

    @property
    def log_score(self) -> float:
        """The mean log score over the cases (higher, nearer 0, is better)."""
        return sum(c.log_score for c in self.cases) / self.n

    @property
    def base_rate(self) -> float:
        """The share of cases in which the meeting was held."""
        return sum(self.outcomes) / self.n

    @property
    def brier_base_rate(self) -> float:
        """The Brier score of always forecasting the set's base rate, ``ō(1-ō)`` (in sample)."""
        return self.base_rate * (1 - self.base_rate)

    @property
    def brier_base_rate_loo(self) -> float | None:
        """The Brier score of forecasting each case by the base rate of the *other* cases."""
        if self.n < 2:
            return None
        held = sum(self.outcomes)
        return sum(
            scoring.brier((held - o) / (self.n - 1), o) for o in self.outcomes
        ) / self.n  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """``negosim backtest --format json`` (docs/cli.md lists every key)."""
        b, ls = self.brier, self.log_score
        ll_half = scoring.log_score(0.5, True)
        return {
            "cases": [c.to_json() for c in self.cases],
            "n": self.n,
            "runs": self.runs,
            "seed": self.seed,
            "uncertainty": self.uncertainty,
            "base_rate": self.base_rate,
            "brier": b,
            "brier_ci95": list(
                scoring.bootstrap_mean([c.brier for c in self.cases], self.seed, name="brier")
            ),  # fmt: skip
            "log_score": ls,
            "log_score_ci95": list(
                scoring.bootstrap_mean(
                    [c.log_score for c in self.cases], self.seed, name="log_score"
                )
            ),  # fmt: skip
            "brier_always_half": 0.25,
            "brier_base_rate": self.brier_base_rate,
            "brier_base_rate_loo": self.brier_base_rate_loo,
            "log_score_always_half": ll_half,
            "brier_skill_vs_half": scoring.skill(b, 0.25),
            "brier_skill_vs_base_rate": scoring.skill(b, self.brier_base_rate),
            "day_right": sum(1 for c in self.cases if c.most_likely_day_right),
            "met_cases": sum(self.outcomes),
            "bins": self.bins,
            "reliability": [
                r.to_json()
                for r in scoring.reliability_table(
                    self.forecasts, self.outcomes, self.bins
                )  # fmt: skip
            ],
            "murphy": scoring.murphy(self.forecasts, self.outcomes, self.bins).to_json(),
            "unresolved": self.unresolved,
        }


def load_outcomes(path: str | os.PathLike[str]) -> dict[str, Resolution]:
    """Every resolution in a file or a directory of ``*.yaml`` files, keyed by case.

    ScenarioError listing every problem (invalid files, a case given twice).
    """
    p = Path(path)
    files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    if len(files) > MAX_CASES:
        raise UsageError(f"{path}: {len(files)} resolution files; at most {MAX_CASES} are read")
    out: dict[str, Resolution] = {}
    problems: list[Problem] = []
    for f in files:
        try:
            res = load_resolution(f)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        if res.case in out:
            problems.append(Problem(os.fspath(f), 1, 1, "case", f"case {res.case!r} given twice"))
        out[res.case] = res
    if problems:
        raise ScenarioError(problems)
    return out


def _iso(day: Any) -> str | None:
    """A resolution's date as an ISO string (it may be a ``date`` or a string)."""
    return None if day is None else day if isinstance(day, str) else day.isoformat()


def scenario_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The scenario files named: files as given, directories' ``*.yaml`` in name order."""
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
        if len(out) > MAX_CASES:
            raise UsageError(f"more than {MAX_CASES} scenario files; a backtest reads at most that")
    return out


def score_case(
    cs: CompiledScenario,
    res: Resolution,
    p: float,
    ci95: tuple[float, float],
    runs: int,
    by_day: dict[str, float],
    by_part: dict[str, dict[str, float]],
    band: tuple[float, float] | None = None,
) -> CaseScore:
    """Score one forecast (P(meeting) and its timing) against its resolution."""
    most = max(by_day, key=lambda d: by_day[d]) if by_day and max(by_day.values()) > 0 else None
    day = _iso(res.date)
    return CaseScore(
        case=res.case,
        file=cs.source or "",
        title=cs.model.title,
        runs=runs,
        p_meeting=p,
        ci95=ci95,
        met=res.met,
        date=day,
        part_of_day=res.part_of_day,
        brier=scoring.brier(p, res.met),
        log_score=scoring.log_score(p, res.met),
        p_day=by_day.get(day, 0.0) if res.met and day else None,
        p_part_of_day=(
            by_part.get(day, {}).get(res.part_of_day, 0.0)
            if res.met and day and res.part_of_day
            else None
        ),  # fmt: skip
        most_likely_day=most,
        most_likely_day_right=(most == day) if res.met and day else None,
        p_meeting_band=band,
    )


def backtest(
    paths: Sequence[str | os.PathLike[str]],
    resolutions: dict[str, Resolution],
    runs: int = 10_000,
    seed: int = 0,
    uncertainty: bool = False,
    draws: int = DEFAULT_DRAWS,
    bins: int = DEFAULT_BINS,
    workers: int = 1,
    backend: Backend | None = None,
    progress: Callable[[int], None] | None = None,
    note: Callable[[str], None] | None = None,
    engine: str = "batch",
) -> Backtest:
    """Run every scenario in ``paths`` that has a resolution and score it.

    A scenario is matched to a resolution by its id, else by its file's stem;
    scenarios without one are listed in ``unresolved`` (and passed to ``note``).
    ``engine`` is ``"batch"`` (default: the vectorised engine; a case it does not
    cover runs on simpy, said to ``note``) or ``"simpy"``; the scores are the
    same on either. UsageError if no case can be scored.
    """
    check_engine(engine)
    files = scenario_files(paths)
    cases: list[CaseScore] = []
    unresolved: list[str] = []
    with backend_or_local(backend, workers) as be:
        for f in files:
            cs = load(f)
            res = resolutions.get(cs.id) or resolutions.get(f.stem)
            if res is None:
                unresolved.append(str(f))
                if note:
                    note(f"{f}: no resolution for case {cs.id!r}; not scored")
                continue
            on = engine
            if engine == "batch" and (why := batch_support(cs)) is not None:
                on = "simpy"
                if note:
                    note(f"note: {f}: {why}; using the simpy engine")
            if uncertainty:
                u = simulate_uncertain(cs, runs, seed, draws, progress=progress, backend=be,
                                       engine=on)  # fmt: skip
                est, band = u.estimate, u.p_meeting_band
            else:
                est = simulate(cs, runs, seed, progress=progress, backend=be, engine=on)
                band = None
            cases.append(score_case(cs, res, est.p_meeting, est.ci95, est.runs, est.by_day,
                                    est.by_part_of_day, band))  # fmt: skip
    if not cases:
        raise UsageError(
            "no case to score: no scenario has a resolution (matched by the scenario's id "
            "or its file's stem)"
        )
    return Backtest(cases, runs, seed, bins, uncertainty, unresolved)
