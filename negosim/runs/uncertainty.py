"""Parameter uncertainty carried into the answer (``negosim run --uncertainty``).

A parameter may declare an ``uncertainty:`` distribution (how unsure its value
is). Plain ``run`` uses the default; with uncertainty the estimate integrates
the uncertainty out, by a *nested* design:

* ``draws`` parameter draws ``d = 0 .. D-1``. Draw ``d`` gives every uncertain
  parameter ``NAME`` the value ``F⁻¹(u)`` of its distribution, where ``u`` is
  the first uniform of the keyed stream ``"uncertainty:NAME"`` of replication
  ``d`` (:mod:`negosim.engine.streams`): a pure function of (seed, d, NAME),
  so the numbers do not depend on workers, chunks or backends, and two
  scenarios that share a parameter share its draws (common random numbers
  in ``compare --uncertainty``). A draw outside the parameter's range (its
  declared ``low``/``high``, or what its kind implies) is clipped to it.
* ``R = runs // D`` replications per draw. Draw ``d`` runs replications
  ``d·R .. (d+1)·R - 1`` of the scenario compiled with its values (one
  compile per draw, as a sweep point; the engine is untouched), so across all
  draws the replication indexes are exactly ``0 .. D·R - 1``, as in plain ``run``.

The predictive P(meeting) is the mean over all ``D·R`` replications (equal to
the mean of the draws' P). Its 95% interval comes from the spread of the ``D``
draw means, which are independent and identically distributed:
``p ± 1.96·s/√D`` (``s`` their standard deviation), widened where needed to
contain the Wilson interval of the ``D·R`` runs (which is never wider for a
nested design, and behaves at 0 and 1). The *band* is the 5th to 95th
percentile of the draws' P(meeting): how far the answer moves over the
parameters' uncertainty. Each draw's P also carries Monte Carlo noise of about
``sqrt(p(1-p)/R)``, which widens the band; ``within_draw_sd`` reports it.

``--set NAME=VALUE`` pins a parameter: its uncertainty is dropped. With no
uncertain parameter left, the result is plain ``run``'s, number for number.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..compiler.bind import bind
from ..compiler.parameters import Parameter
from ..compiler.tables import CompiledScenario
from ..engine.streams import replication_key, run_key, stream_id, stream_key, uniform
from .backends import Backend, Job, check_engine, model_key, prime, run_job
from .compare import (
    Comparison,
    PairJob,
    Pairs,
    _PairTally,
    compare,
    paired_diff_ci,
    run_pair_job,
)
from .results import Z95, Estimate, Tally, estimate, wilson
from .runner import Progress, Task, backend_or_local, chunks, fold_groups, simulate

DEFAULT_DRAWS = 100
MAX_DRAWS = 100_000
BAND = (5.0, 95.0)
"""Percentiles of P(meeting) across parameter draws reported as the band."""
_TINY = 2.0**-54  # keeps u strictly inside (0, 1): an inverse CDF at 0 may be infinite


def pinned_names(sets: Sequence[tuple[str, Any]]) -> set[str]:
    """Parameters given a value with ``--set`` (``NAME=V`` or ``params.NAME.default=V``)."""
    out = set()
    for path, _ in sets:
        parts = path.split(".")
        if len(parts) == 1:
            out.add(path)
        elif len(parts) == 3 and parts[0] == "params" and parts[2] == "default":
            out.add(parts[1])
    return out


def uncertain_parameters(cs: CompiledScenario) -> list[Parameter]:
    """The parameters whose uncertainty is drawn: declared, and not pinned with --set."""
    pinned = pinned_names(cs.sets)
    return [p for p in cs.parameters if p.uncertainty is not None and p.name not in pinned]


def draw_value(param: Parameter, seed: int, draw: int) -> float:
    """The value of ``param`` in parameter draw ``draw`` (stream ``uncertainty:NAME``)."""
    assert param.uncertainty is not None
    key = stream_key(replication_key(run_key(seed), draw), stream_id(f"uncertainty:{param.name}"))
    u = min(max(uniform(key, 0), _TINY), 1 - _TINY)
    value = float(param.uncertainty.sample(u))
    if param.low is not None:
        value = max(value, param.low)
    if param.high is not None:
        value = min(value, param.high)
    return value


def _set_value(param: Parameter, value: float) -> tuple[str, Any]:
    """The ``--set`` override giving ``param`` the compiled ``value``."""
    if param.kind == "duration":
        return (param.name, np.format_float_positional(value, trim="-") + "h")
    return (param.name, value)


def draw_sets(
    params: Sequence[Parameter], seed: int, draw: int
) -> tuple[dict[str, float], tuple[tuple[str, Any], ...]]:
    """Draw ``draw``'s parameter values, and the ``--set`` overrides that give them."""
    values = {p.name: draw_value(p, seed, draw) for p in params}
    return values, tuple(_set_value(p, values[p.name]) for p in params)


def draw_scenario(
    cs: CompiledScenario, params: Sequence[Parameter], seed: int, draw: int
) -> tuple[dict[str, float], CompiledScenario]:
    """Draw ``draw``'s parameter values and ``cs`` with them bound (not compiled
    again: :func:`negosim.compiler.bind.bind`)."""
    values, sets = draw_sets(params, seed, draw)
    return values, bind(cs, sets)


def band(values: Sequence[float]) -> tuple[float, float]:
    """The 5th and 95th percentiles of ``values`` (linear interpolation)."""
    lo, hi = np.percentile(np.asarray(values, dtype=float), BAND)
    return (float(lo), float(hi))


def nested_ci(means: Sequence[float], k: int, n: int) -> tuple[float, float]:
    """95% interval of the grand mean of ``means`` (iid draw means, ``n`` runs, ``k`` held).

    ``mean ± z·s/√D``, widened to contain the Wilson interval of ``k`` in ``n``.
    """
    d = len(means)
    p = k / n if n else 0.0
    w_lo, w_hi = wilson(k, n)
    if d < 2:
        return (w_lo, w_hi)
    s = float(np.std(np.asarray(means, dtype=float), ddof=1))
    half = Z95 * s / math.sqrt(d)
    return (max(0.0, min(p - half, w_lo)), min(1.0, max(p + half, w_hi)))


@dataclass(repr=False)
class UncertainEstimate:
    """The predictive estimate over parameter uncertainty (see the module docstring).

    ``estimate`` is the pooled :class:`~negosim.runs.results.Estimate` of all
    replications, with ``ci95`` replaced by the nested interval; ``draw_p`` the
    P(meeting) of each parameter draw; ``draw_values`` each draw's parameter values.
    """

    estimate: Estimate
    params: list[Parameter]
    draws: int
    runs_per_draw: int
    draw_p: list[float]
    draw_values: list[dict[str, float]]
    by_day_band: dict[str, tuple[float, float]]
    held_by_end_of_day_band: dict[str, tuple[float, float]]
    draw_held_minutes: list[dict[int, int]] = field(default_factory=list)

    @property
    def p_meeting(self) -> float:
        """The predictive P(meeting): uncertainty integrated out."""
        return self.estimate.p_meeting

    @property
    def ci95(self) -> tuple[float, float]:
        """The 95% Monte Carlo interval of :attr:`p_meeting` (nested design)."""
        return self.estimate.ci95

    @property
    def p_meeting_band(self) -> tuple[float, float]:
        """5th-95th percentile of P(meeting) across parameter draws."""
        return band(self.draw_p) if self.draw_p else (self.p_meeting, self.p_meeting)

    @property
    def within_draw_sd(self) -> float:
        """The Monte Carlo noise in one draw's P: ``sqrt(mean p(1-p) / R)``."""
        if not self.draw_p or self.runs_per_draw < 1:
            return 0.0
        var = sum(p * (1 - p) for p in self.draw_p) / len(self.draw_p)
        return math.sqrt(var / self.runs_per_draw)

    def curve_band(self, minutes: Sequence[float]) -> tuple[list[float], list[float]]:
        """5th-95th percentile across draws of P(held by t), ``t`` in minutes after start."""
        if not self.draw_held_minutes:
            p = _held_by(self.estimate.held_minutes, self.estimate.runs, minutes)
            return p, p
        per_draw = np.array(
            [_held_by(h, self.runs_per_draw, minutes) for h in self.draw_held_minutes]
        )
        lo, hi = np.percentile(per_draw, BAND, axis=0)
        return lo.tolist(), hi.tolist()

    def to_json(self) -> dict[str, Any]:
        """``negosim run --uncertainty --format json``: run's keys, the nested ``ci95``,
        and ``p_meeting_band``, ``uncertain_params``, ``draws``, ``runs_per_draw``,
        ``within_draw_sd``, ``by_day_band``, ``held_by_end_of_day_band``."""
        out = self.estimate.to_json()
        out.update(
            p_meeting_band=list(self.p_meeting_band),
            uncertain_params=[
                {"name": p.name, "uncertainty": p.uncertainty.text if p.uncertainty else None}
                for p in self.params
            ],
            draws=self.draws,
            runs_per_draw=self.runs_per_draw,
            within_draw_sd=self.within_draw_sd,
            by_day_band={d: list(b) for d, b in self.by_day_band.items()},
            held_by_end_of_day_band={d: list(b) for d, b in self.held_by_end_of_day_band.items()},
        )
        return out


def _held_by(held_minutes: dict[int, int], n: int, minutes: Sequence[float]) -> list[float]:
    """P(held by t) of one tally's held minutes at each of ``minutes``."""
    keys = sorted(held_minutes)
    cum = np.cumsum([held_minutes[k] for k in keys]) if keys else np.zeros(0)
    idx = np.searchsorted(np.asarray(keys, dtype=float), np.asarray(minutes, dtype=float), "right")
    return [float(cum[i - 1]) / n if i and n else 0.0 for i in idx]


def split_runs(runs: int, draws: int) -> tuple[int, int]:
    """(draws, runs per draw) for ``runs`` replications over ``draws`` parameter draws."""
    if draws < 1:
        raise ValueError("draws must be at least 1")
    draws = min(draws, runs)
    return draws, max(1, runs // draws)


def simulate_uncertain(
    cs: CompiledScenario,
    runs: int = 10_000,
    seed: int = 0,
    draws: int = DEFAULT_DRAWS,
    workers: int = 1,
    progress: Progress | None = None,
    overrides: list[str] | None = None,
    backend: Backend | None = None,
    engine: str = "simpy",
) -> UncertainEstimate:
    """The predictive estimate of ``cs`` over its uncertain parameters (nested design).

    With no uncertain parameter (none declared, or all pinned with ``--set``)
    this is :func:`~negosim.runs.runner.simulate` with ``runs`` replications.
    ``engine`` (``"simpy"`` or ``"batch"``) does not change the numbers.
    """
    check_engine(engine)
    params = uncertain_parameters(cs)
    if not params:
        est = simulate(cs, runs, seed, workers, progress, overrides, backend, engine)
        return UncertainEstimate(
            est, [], 1, runs, [est.p_meeting], [{}],
            {d: (p, p) for d, p in est.by_day.items()},
            {d: (v["p"], v["p"]) for d, v in est.held_by_end_of_day.items()},
            [est.held_minutes],
        )  # fmt: skip
    draws, per = split_runs(runs, draws)
    started = time.perf_counter()
    values: dict[int, dict[str, float]] = {}
    compiled: dict[int, CompiledScenario] = {}

    def groups(be: Backend) -> Iterator[tuple[int, Tally, Iterator[Task[Tally]]]]:
        key = model_key(cs.model)  # compiled once; each draw's values are bound to it
        for d in range(draws):
            values[d], sets = draw_sets(params, seed, d)
            cs_d = compiled[d] = bind(cs, sets)
            prime(key, cs_d, sets)
            base = d * per
            tasks = (
                (run_job, Job(key, cs.model, seed, base + c.start, base + c.stop, engine, sets))
                for c in chunks(per, be.workers, engine)
            )
            yield d, Tally(), tasks

    tallies: dict[int, Tally] = {}
    with backend_or_local(backend, min(workers, runs)) as be:
        for d, tally, _ in fold_groups(be, groups(be), max(2, 2 * be.workers), progress):
            tallies[d] = tally
            compiled.pop(d, None)  # keep memory flat: only counts stay
    pooled = Tally()
    for d in range(draws):
        pooled.merge(tallies[d])
    elapsed = time.perf_counter() - started
    est = estimate(cs, pooled, seed, elapsed, overrides)
    draw_p = [tallies[d].held / per for d in range(draws)]
    est.ci95 = nested_ci(draw_p, pooled.held, pooled.runs)
    per_draw = [estimate(cs, tallies[d], seed, 0.0) for d in range(draws)]
    by_day_band = {day: band([e.by_day[day] for e in per_draw]) for day in est.by_day}
    cum_band = {
        day: band([e.held_by_end_of_day[day]["p"] for e in per_draw])
        for day in est.held_by_end_of_day
    }
    for day, cum in est.held_by_end_of_day.items():  # nested intervals, as for P(meeting)
        held_by = round(cum["p"] * pooled.runs)
        cum["ci95"] = list(
            nested_ci([e.held_by_end_of_day[day]["p"] for e in per_draw], held_by, pooled.runs)
        )
    return UncertainEstimate(
        estimate=est,
        params=params,
        draws=draws,
        runs_per_draw=per,
        draw_p=draw_p,
        draw_values=[values[d] for d in range(draws)],
        by_day_band=by_day_band,
        held_by_end_of_day_band=cum_band,
        draw_held_minutes=[dict(tallies[d].held_minutes) for d in range(draws)],
    )


@dataclass(repr=False)
class UncertainComparison:
    """``compare --uncertainty``: baseline and variant over the same parameter draws.

    Both sides draw their uncertain parameters from the same keyed streams, so a
    parameter they share takes the same value in each draw (common random numbers
    across the comparison), and replication ``i`` of both sides shares its streams
    as in plain ``compare``. ``comparison`` holds the pooled estimates with nested
    intervals; ``draw_diff`` the change in each draw.
    """

    comparison: Comparison
    params: list[str]
    draws: int
    runs_per_draw: int
    draw_base: list[float]
    draw_variant: list[float]
    draw_diff: list[float]

    def to_json(self) -> dict[str, Any]:
        """``compare --format json``'s keys with nested intervals, plus the bands across draws."""
        out: dict[str, Any] = self.comparison.to_json()
        if self.params:
            out["diff_method"] = (
                "nested design: mean of the draws' paired differences ± 1.96 s/√draws, "
                "widened to contain the pooled Newcombe interval"
            )
        out.update(
            uncertain_params=self.params,
            draws=self.draws,
            runs_per_draw=self.runs_per_draw,
            p_base_band=list(band(self.draw_base)),
            p_variant_band=list(band(self.draw_variant)),
            diff_band=list(band(self.draw_diff)),
        )
        return out


def compare_uncertain(
    base: CompiledScenario,
    variant: CompiledScenario,
    runs: int = 10_000,
    seed: int = 0,
    draws: int = DEFAULT_DRAWS,
    progress: Progress | None = None,
    base_overrides: list[str] | None = None,
    variant_overrides: list[str] | None = None,
    backend: Backend | None = None,
    workers: int = 1,
    engine: str = "batch",
) -> UncertainComparison:
    """Baseline against variant over parameter draws (see :class:`UncertainComparison`).

    With no uncertain parameter on either side this is plain ``compare``.
    ``engine`` (``"batch"`` or ``"simpy"``) does not change the numbers.
    """
    check_engine(engine)
    pb, pv = uncertain_parameters(base), uncertain_parameters(variant)
    names = list(dict.fromkeys([p.name for p in pb] + [p.name for p in pv]))
    if not names:
        cmp = compare(base, variant, runs, seed, progress, base_overrides, variant_overrides,
                      workers, backend, engine)  # fmt: skip
        p_b, p_v = cmp.base.p_meeting, cmp.variant.p_meeting
        return UncertainComparison(cmp, [], 1, runs, [p_b], [p_v], [cmp.diff])
    draws, per = split_runs(runs, draws)
    started = time.perf_counter()
    identical = base.model == variant.model

    def groups(be: Backend) -> Iterator[tuple[int, Any, Iterator[Task[Any]]]]:
        kb, kv = model_key(base.model), model_key(variant.model)  # each compiled once
        for d in range(draws):
            _, sb = draw_sets(pb, seed, d)
            _, sv = draw_sets(pv, seed, d)
            prime(kb, bind(base, sb), sb)
            prime(kv, bind(variant, sv), sv)
            start = d * per
            tasks = (
                (
                    run_pair_job,
                    PairJob(
                        kb,
                        base.model,
                        kv,
                        variant.model,
                        seed,
                        start + c.start,
                        start + c.stop,
                        engine,
                        sb,
                        sv,
                    ),
                )  # fmt: skip
                for c in chunks(per, be.workers, engine)
            )
            yield d, _PairTally(Tally(), Tally()), tasks

    parts: dict[int, Any] = {}
    with backend_or_local(backend, min(workers, runs)) as be:
        for d, part, _ in fold_groups(be, groups(be), max(2, 2 * be.workers), progress):
            parts[d] = part
    total = _PairTally(Tally(), Tally())
    for d in range(draws):
        total.merge(parts[d])
    elapsed = time.perf_counter() - started
    n = total.runs
    pairs = Pairs(total.both, total.base_only, total.variant_only,
                  n - total.both - total.base_only - total.variant_only)  # fmt: skip
    eb = estimate(base, total.base, seed, elapsed, base_overrides)
    ev = estimate(variant, total.variant, seed, elapsed, variant_overrides)
    draw_b = [parts[d].base.held / per for d in range(draws)]
    draw_v = [parts[d].variant.held / per for d in range(draws)]
    draw_diff = [v - b for b, v in zip(draw_b, draw_v, strict=True)]
    eb.ci95 = nested_ci(draw_b, total.base.held, n)
    ev.ci95 = nested_ci(draw_v, total.variant.held, n)
    diff = ev.p_meeting - eb.p_meeting
    lo, hi = paired_diff_ci(pairs, identical)
    if not identical and draws > 1:
        half = Z95 * float(np.std(np.asarray(draw_diff), ddof=1)) / math.sqrt(draws)
        lo, hi = max(-1.0, min(lo, diff - half)), min(1.0, max(hi, diff + half))
    cmp = Comparison(eb, ev, pairs, identical, diff, (lo, hi), elapsed)
    return UncertainComparison(cmp, names, draws, per, draw_b, draw_v, draw_diff)
