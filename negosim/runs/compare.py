"""What-if comparisons: a baseline against a variant, with common random numbers.

Replication ``i`` of the baseline and replication ``i`` of the variant both
draw from the same keyed streams (seed, replication i, what draws), so each
pair of runs faces the same luck and
the difference between the two scenarios is measured with far less noise
than two independent runs would give. Pairs are streamed: only counts are
kept (a :class:`~negosim.results.Tally` per side and the 2x2 table of held /
not held pairs), never the rows.

The change is ``diff = p_variant - p_base``. Its 95% interval is Newcombe's
hybrid score interval for a difference of *paired* proportions (Newcombe
1998, "Improved confidence intervals for the difference between binomial
proportions based on paired data", Statistics in Medicine 17:2635, method
10): Wilson intervals for each proportion, combined with the phi correlation
of the pairs. It stays inside [-1, 1], behaves at 0 and 1, and shrinks with
the correlation that common random numbers create. When the two scenarios are
the same model, every pair is identical by construction and the difference
is exactly 0: the interval is then [0, 0].
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..compiler.tables import CompiledScenario
from ..display import bars_svg, block, lines, pct, table
from ..engine.simulation import Engine
from ..scenario.schema import Scenario
from .backends import Backend, Values, batch_for, check_engine, engine_for, model_key, prime
from .results import Estimate, Tally, estimate, wilson
from .runner import backend_or_local, fold_chunks

if TYPE_CHECKING:  # the batch engine is imported only where it runs (start-up time)
    from ..engine.batch import BatchEngine


@dataclass(frozen=True)
class Pairs:
    """The 2x2 table of paired outcomes: ``both`` held, ``base_only``, ``variant_only``,
    ``neither``."""

    both: int
    base_only: int
    variant_only: int
    neither: int

    @property
    def n(self) -> int:
        """The number of pairs: every replication counted once."""
        return self.both + self.base_only + self.variant_only + self.neither


def paired_diff_ci(pairs: Pairs, identical: bool = False) -> tuple[float, float]:
    """95% interval for ``p_variant - p_base`` (Newcombe's method 10, see module doc)."""
    n = pairs.n
    if n == 0:
        return (-1.0, 1.0)
    k_var = pairs.both + pairs.variant_only
    k_base = pairs.both + pairs.base_only
    d = (k_var - k_base) / n
    if identical:
        return (d, d)
    p1, p2 = k_var / n, k_base / n
    l1, u1 = wilson(k_var, n)
    l2, u2 = wilson(k_base, n)
    a, b, c, e = pairs.both, pairs.variant_only, pairs.base_only, pairs.neither
    # phi of the 2x2 table, with Newcombe's continuity correction of the numerator.
    num: float = a * e - b * c
    if num > 0:
        num = max(num - n / 2, 0.0)
    den = (a + b) * (c + e) * (a + c) * (b + e)
    phi = num / math.sqrt(den) if den > 0 else 0.0
    low_sq = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    high_sq = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low = d - math.sqrt(max(low_sq, 0.0))
    high = d + math.sqrt(max(high_sq, 0.0))
    return (max(-1.0, min(low, d)), min(1.0, max(high, d)))


@dataclass(repr=False)
class Comparison:
    """A baseline and a variant estimate, and what changed (see :meth:`to_dict`).

    ``base`` and ``variant`` are :class:`~negosim.runs.results.Estimate` objects;
    ``diff`` is P(variant) - P(base) and ``diff_ci95`` its paired 95% interval.

    >>> from negosim import compare, load
    >>> cmp = compare(load("scenarios/munich.yaml"), set={"p_china_declines": 0.0}, runs=300)
    >>> cmp.to_dict()["diff"] == cmp.diff
    True
    """

    base: Estimate
    variant: Estimate
    pairs: Pairs
    identical: bool
    diff: float
    diff_ci95: tuple[float, float]
    elapsed_s: float

    @property
    def p_base(self) -> float:
        """P(meeting) of the baseline (the JSON's ``p_base``)."""
        return self.base.p_meeting

    @property
    def p_variant(self) -> float:
        """P(meeting) of the variant (the JSON's ``p_variant``)."""
        return self.variant.p_meeting

    @property
    def ci95_base(self) -> tuple[float, float]:
        """The baseline's 95% Wilson interval (the JSON's ``ci95_base``)."""
        return self.base.ci95

    @property
    def ci95_variant(self) -> tuple[float, float]:
        """The variant's 95% Wilson interval (the JSON's ``ci95_variant``)."""
        return self.variant.ci95

    def blocking_changes(self) -> dict[str, list[str]]:
        """Preconditions that stop blocking (some base runs, no variant run) and start."""
        names = list(dict.fromkeys([*self.base.blocking, *self.variant.blocking]))
        stop = [
            p for p in names if self.base.blocking.get(p, 0) and not self.variant.blocking.get(p, 0)
        ]
        start = [
            p for p in names if self.variant.blocking.get(p, 0) and not self.base.blocking.get(p, 0)
        ]
        return {"stop": stop, "start": start}

    def median_shift_h(self) -> float | None:
        """Hours by which the median time of meeting moved (None unless both reached)."""
        if not (self.base.median_time_held and self.variant.median_time_held):
            return None
        later = datetime.fromisoformat(self.variant.median_time_held)
        return round(
            (later - datetime.fromisoformat(self.base.median_time_held)).total_seconds() / 3600, 2
        )

    def by_end_of_day(self) -> dict[str, dict[str, float]]:
        """P(held by the end of each day) on both sides (days of either scenario)."""
        days = list(
            dict.fromkeys([*self.base.held_by_end_of_day, *self.variant.held_by_end_of_day])
        )
        out = {}
        for d in days:
            pb = _cum(self.base, d)
            pv = _cum(self.variant, d)
            out[d] = {"base": pb, "variant": pv, "diff": pv - pb}
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``negosim compare --format json`` object (docs/reports.md lists its fields)."""
        return self.to_json()

    def to_frame(self) -> Any:
        """P(held by the end of each day), baseline and variant, as a pandas DataFrame.

        Columns ``day``, ``base``, ``variant``, ``diff`` (``negosim[pandas]``).
        """
        from ..extras import require

        require("pandas", "Comparison.to_frame()")
        import pandas as pd

        return pd.DataFrame(
            [{"day": d, **v} for d, v in self.by_end_of_day().items()],
            columns=["day", "base", "variant", "diff"],
        )

    def _what(self) -> str:
        return ", ".join(self.variant.overrides) or self.variant.scenario

    def __repr__(self) -> str:
        low, high = self.diff_ci95
        return lines(
            f"Comparison({self.base.scenario!r} vs {self._what()}, {self.base.runs:,} pairs)",
            f"  P(meeting): {pct(self.base.p_meeting)} -> {pct(self.variant.p_meeting)}",
            f"  change: {100 * self.diff:+.1f} points (95% CI {100 * low:+.1f} to "
            f"{100 * high:+.1f})",
        )

    def _repr_html_(self) -> str:
        low, high = self.diff_ci95
        head = table(
            ["", "baseline", "variant", "change"],
            [
                ["scenario", self.base.scenario, self._what(), ""],
                [
                    "P(meeting)",
                    pct(self.base.p_meeting),
                    pct(self.variant.p_meeting),
                    f"{100 * self.diff:+.1f} pts ({100 * low:+.1f} to {100 * high:+.1f})",
                ],
                [
                    "median time held",
                    self.base.median_time_held or "not reached",
                    self.variant.median_time_held or "not reached",
                    "",
                ],
            ],  # fmt: skip
            f"{self.base.runs:,} paired runs, seed {self.base.seed}",
        )
        days = table(
            ["day", "held by end of day: baseline", "variant", "change"],
            [
                [d, pct(v["base"]), pct(v["variant"]), f"{100 * v['diff']:+.1f} pts"]
                for d, v in self.by_end_of_day().items()
            ],  # fmt: skip
        )
        names = list(dict.fromkeys([*self.base.blocking, *self.variant.blocking]))
        blocking = table(
            ["precondition", "baseline runs blocked", "variant"],
            [[p, self.base.blocking.get(p, 0), self.variant.blocking.get(p, 0)] for p in names],
        )
        days_list = list(self.by_end_of_day())
        figure = bars_svg(
            [f"{d[5:]} {side}" for d in days_list for side in ("base", "variant")],
            [self.by_end_of_day()[d][side] for d in days_list for side in ("base", "variant")],
            "P(held by end of day)",
        )
        return block("negosim comparison", head, figure, days, blocking)

    def to_json(self) -> dict[str, Any]:
        """The ``negosim compare --format json`` object (docs/reports.md lists its fields)."""
        names = list(dict.fromkeys([*self.base.blocking, *self.variant.blocking]))
        return {
            "base": {"scenario": self.base.scenario, "overrides": self.base.overrides},
            "variant": {"scenario": self.variant.scenario, "overrides": self.variant.overrides},
            "runs": self.base.runs,
            "seed": self.base.seed,
            "p_base": self.base.p_meeting,
            "p_variant": self.variant.p_meeting,
            "ci95_base": list(self.base.ci95),
            "ci95_variant": list(self.variant.ci95),
            "diff": self.diff,
            "diff_ci95": list(self.diff_ci95),
            "diff_method": "identical scenarios: exact"
            if self.identical
            else "Newcombe hybrid score interval for paired proportions (method 10)",
            "pairs": {
                "both_held": self.pairs.both,
                "base_only": self.pairs.base_only,
                "variant_only": self.pairs.variant_only,
                "neither": self.pairs.neither,
            },
            "median_time_held": {
                "base": self.base.median_time_held,
                "variant": self.variant.median_time_held,
                "shift_h": self.median_shift_h(),
            },
            "held_by_end_of_day": self.by_end_of_day(),
            "outcomes": {"base": self.base.outcomes, "variant": self.variant.outcomes},
            "blocking": {
                p: {
                    "base": self.base.blocking.get(p, 0),
                    "variant": self.variant.blocking.get(p, 0),
                }
                for p in names
            },
            "blocking_changes": self.blocking_changes(),
            "elapsed_s": self.elapsed_s,
        }


def _cum(est: Estimate, day: str) -> float:
    """P(held by end of ``day``); days before or after the scenario's period count too."""
    if day in est.held_by_end_of_day:
        return float(est.held_by_end_of_day[day]["p"])
    days = list(est.held_by_end_of_day)
    if days and day > days[-1]:
        return est.p_meeting
    return 0.0


@dataclass
class _PairTally:
    """Counts of a chunk of pairs: one tally per side and the 2x2 table."""

    base: Tally
    variant: Tally
    both: int = 0
    base_only: int = 0
    variant_only: int = 0

    @property
    def runs(self) -> int:
        return self.base.runs

    def merge(self, other: _PairTally) -> _PairTally:
        self.base.merge(other.base)
        self.variant.merge(other.variant)
        self.both += other.both
        self.base_only += other.base_only
        self.variant_only += other.variant_only
        return self


def _run_pairs(eb: Engine, ev: Engine, seed: int, indexes: range) -> _PairTally:
    out = _PairTally(Tally(), Tally())
    a, b = indexes.start, indexes.stop
    # Replication i of both sides draws from the same keyed streams.
    for rb, rv in zip(eb.run_block(seed, a, b), ev.run_block(seed, a, b), strict=True):
        out.base.add(rb)
        out.variant.add(rv)
        if rb.held and rv.held:
            out.both += 1
        elif rb.held:
            out.base_only += 1
        elif rv.held:
            out.variant_only += 1
    return out


@dataclass(frozen=True)
class PairJob:
    """Replications ``start..stop-1`` of both sides, on the same streams (each side a
    model with parameter values bound, as in :class:`~negosim.runs.backends.Job`)."""

    base_key: str
    base: Scenario
    variant_key: str
    variant: Scenario
    seed: int
    start: int
    stop: int
    engine: str = "simpy"
    base_values: Values = ()
    variant_values: Values = ()


def _run_pairs_batch(bb: BatchEngine, bv: BatchEngine, seed: int, indexes: range) -> _PairTally:
    out = _PairTally(Tally(), Tally())
    rb = bb.run(seed, indexes.start, indexes.stop)
    rv = bv.run(seed, indexes.start, indexes.stop)
    out.base.add_batch(rb)
    out.variant.add_batch(rv)
    hb, hv = rb.held.copy(), rv.held.copy()
    for p, row in rb.reference.items():
        hb[p] = row.held
    for p, row in rv.reference.items():
        hv[p] = row.held
    out.both = int((hb & hv).sum())
    out.base_only = int((hb & ~hv).sum())
    out.variant_only = int((~hb & hv).sum())
    return out


def run_pair_job(job: PairJob) -> _PairTally:
    """Run a chunk of pairs where this is called (any backend's worker)."""
    if job.engine == "batch":
        bb = batch_for(job.base_key, job.base, job.base_values)
        bv = batch_for(job.variant_key, job.variant, job.variant_values)
        if bb is not None and bv is not None:
            return _run_pairs_batch(bb, bv, job.seed, range(job.start, job.stop))
    eb = engine_for(job.base_key, job.base, job.base_values)
    ev = engine_for(job.variant_key, job.variant, job.variant_values)
    return _run_pairs(eb, ev, job.seed, range(job.start, job.stop))


def compare(
    base: CompiledScenario,
    variant: CompiledScenario,
    runs: int = 10_000,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    base_overrides: list[str] | None = None,
    variant_overrides: list[str] | None = None,
    workers: int = 1,
    backend: Backend | None = None,
    engine: str = "batch",
) -> Comparison:
    """Run ``runs`` pairs of replications with common random numbers and compare.

    Pairs travel in chunks to ``backend`` (default: ``workers`` local processes)
    and come back as counts, which add up in any order: the numbers do not
    depend on where they ran, nor on ``engine`` (``"batch"``, the default, or
    ``"simpy"``, the reference engine).
    """
    check_engine(engine)
    if runs < 1:
        raise ValueError("runs must be at least 1")
    started = time.perf_counter()
    kb, kv = model_key(base.model), model_key(variant.model)
    prime(kb, base)  # in-process and forked workers then skip compiling
    prime(kv, variant)
    with backend_or_local(backend, min(workers, runs)) as be:
        total = fold_chunks(
            be,
            range(runs),
            lambda a, b: (
                run_pair_job,
                PairJob(kb, base.model, kv, variant.model, seed, a, b, engine),
            ),
            _PairTally(Tally(), Tally()),
            progress,
            engine,
        )
    elapsed = time.perf_counter() - started
    pairs = Pairs(total.both, total.base_only, total.variant_only,
                  runs - total.both - total.base_only - total.variant_only)  # fmt: skip
    identical = base.model == variant.model
    eb_est = estimate(base, total.base, seed, elapsed, base_overrides)
    ev_est = estimate(variant, total.variant, seed, elapsed, variant_overrides)
    return Comparison(
        base=eb_est,
        variant=ev_est,
        pairs=pairs,
        identical=identical,
        diff=ev_est.p_meeting - eb_est.p_meeting,
        diff_ci95=paired_diff_ci(pairs, identical),
        elapsed_s=elapsed,
    )
