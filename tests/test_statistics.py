"""The engine against closed-form answers.

Each test builds a small scenario whose answer is known exactly (exponential
races, windows, random events), simulates it with a fixed seed and checks the
estimate within 4.5 binomial standard errors of the exact value. Seeds are
fixed, so a failure is reproducible, not a flake.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from conftest import assert_close_binomial, base_scenario
from scipy import integrate, stats

import negosim
from negosim.compiler import dists
from negosim.runs.results import wilson

N = 8000  # replications per estimate: about 0.2 s each


def exp_delay(mean_h: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": f"{mean_h}h"}


def fixed_delay(hours: float) -> dict[str, Any]:
    return {"dist": "fixed", "value": f"{hours}h"}


def held_times(cs: negosim.CompiledScenario, runs: int, seed: int) -> list[float]:
    return [r.time for r in negosim.rows(cs, runs, seed) if r.held and r.time is not None]


# --- one exponential action against the horizon -------------------------------


def test_single_exponential_against_horizon(load_data):
    # Start at 18:00 Berlin time so that local midnights are 6h, 30h, 54h in.
    m, horizon = 30.0, 60.0
    data = base_scenario()
    data["calendar"].update(
        timezone="Europe/Berlin", start="2024-01-01 18:00", horizon=f"{horizon:g}h"
    )
    data["actions"]["meet"]["delay"] = exp_delay(m)
    est = negosim.simulate(load_data(data), runs=N, seed=11)

    def cdf(h: float) -> float:
        return 1 - math.exp(-h / m)

    assert_close_binomial(est.p_meeting, cdf(horizon), N, "P(held)")
    assert est.ci95[0] <= est.p_meeting <= est.ci95[1]
    expected_days = {
        "2024-01-01": 6.0,
        "2024-01-02": 30.0,
        "2024-01-03": 54.0,
        "2024-01-04": horizon,
    }
    assert list(est.held_by_end_of_day) == list(expected_days)
    for day, hours in expected_days.items():
        assert_close_binomial(est.held_by_end_of_day[day]["p"], cdf(hours), N, day)
    # by_day is the increment of the cumulative curve
    assert est.by_day["2024-01-02"] == pytest.approx(
        est.held_by_end_of_day["2024-01-02"]["p"] - est.held_by_end_of_day["2024-01-01"]["p"]
    )
    assert est.outcomes == {"held": est.held, "failed": 0, "censored": N - est.held}


def test_local_midnight_across_dst(load_data):
    """Days are venue-local: on 31 Mar 2024 Berlin loses an hour, so the next
    midnight is 35h (not 36h) after a start at noon on 30 Mar."""
    data = base_scenario()
    data["calendar"].update(timezone="Europe/Berlin", start="2024-03-30 12:00", horizon="3d")
    data["actions"]["meet"]["delay"] = fixed_delay(35.5)
    est = negosim.simulate(load_data(data), runs=20, seed=1)
    assert est.p_meeting == 1.0
    assert est.by_day["2024-04-01"] == 1.0
    assert est.by_day["2024-03-31"] == 0.0
    assert est.median_time_held == "2024-04-01T00:30+02:00"
    assert est.by_part_of_day["2024-04-01"]["night"] == 1.0


# --- competing exponential actions ----------------------------------------------


def test_competing_exponentials(load_data):
    mean_a, mean_b, horizon = 10.0, 20.0, 12.0
    data = base_scenario()
    data["calendar"]["horizon"] = f"{horizon:g}h"
    data["actions"]["meet"]["delay"] = exp_delay(mean_a)
    data["actions"]["refuse"] = {
        "actor": "a",
        "from": "waiting",
        "delay": exp_delay(mean_b),
        "trigger": "fail",
    }
    est = negosim.simulate(load_data(data), runs=N, seed=5)
    a, b = 1 / mean_a, 1 / mean_b
    p_any = 1 - math.exp(-(a + b) * horizon)
    assert_close_binomial(est.p_meeting, a / (a + b) * p_any, N, "P(success)")
    assert_close_binomial(est.outcomes["failed"] / N, b / (a + b) * p_any, N, "P(failure)")
    assert_close_binomial(est.outcomes["censored"] / N, 1 - p_any, N, "P(censored)")
    assert sum(est.outcomes.values()) == N
    assert est.outcomes["held"] == est.held


# --- windows -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["guard", "available"])
@pytest.mark.parametrize(("window", "length"), [(("10h", "30h"), 20.0), (("40h", "60h"), 8.0)])
def test_action_only_inside_later_window(load_data, how, window, length):
    m = 15.0
    data = base_scenario()
    data["calendar"]["windows"] = {"w": {"start": window[0], "end": window[1]}}
    data["actions"]["meet"]["delay"] = exp_delay(m)
    if how == "guard":
        data["actions"]["meet"]["guard"] = "in_window('w')"
    else:
        data["actors"]["a"]["available"] = ["w"]
    cs = load_data(data)
    runs = 4000
    rows = list(negosim.rows(cs, runs, seed=3))
    times = [r.time for r in rows if r.held]
    assert_close_binomial(len(times) / runs, 1 - math.exp(-length / m), runs, "P(held)")
    opens = float(window[0][:-1])
    assert times and min(times) >= opens
    assert max(times) < min(opens + 20.0, 48.0)
    est = negosim.simulate(cs, runs=runs, seed=3)
    assert est.held == len(times)  # simulate and rows agree replication by replication
    if opens == 10.0:  # nothing before 10:00 on the first day
        assert est.by_part_of_day["2024-01-01"]["night"] == 0.0
        assert est.by_part_of_day["2024-01-01"]["morning"] > 0.0


def test_exponential_resampled_after_disable_is_memoryless(load_data):
    """Enabled 0-5h and 20-30h: P(held) = 1 - exp(-15h / m)."""
    m = 10.0
    data = base_scenario()
    data["calendar"]["windows"] = {
        "w1": {"start": "0h", "end": "5h"},
        "w2": {"start": "20h", "end": "30h"},
    }
    data["actors"]["a"]["available"] = ["w1", "w2"]
    data["actions"]["meet"]["delay"] = exp_delay(m)
    cs = load_data(data)
    times = held_times(cs, N, seed=8)
    assert_close_binomial(len(times) / N, 1 - math.exp(-15 / m), N, "P(held)")
    assert all(t < 5 or 20 <= t < 30 for t in times)
    early = sum(t < 5 for t in times) / N
    assert_close_binomial(early, 1 - math.exp(-5 / m), N, "P(held in first window)")


def _fixed_with_stretches(load_data, stretches: list[tuple[float, float]]):
    data = base_scenario()
    data["calendar"]["windows"] = {
        f"w{i}": {"start": f"{a:g}h", "end": f"{b:g}h"} for i, (a, b) in enumerate(stretches)
    }
    data["actors"]["a"]["available"] = list(data["calendar"]["windows"])
    data["actions"]["meet"]["delay"] = fixed_delay(3)
    return list(negosim.rows(load_data(data), 5, seed=0))


def test_fixed_delay_restarts_its_clock(load_data):
    # Enabled 2h, disabled, 2h, disabled, then 4h: the clock restarts each
    # time, so the meeting is at 10h + 3h, never at 0 + 3 or by adding up stretches.
    rows = _fixed_with_stretches(load_data, [(0, 2), (5, 7), (10, 14)])
    assert all(r.held and r.time == pytest.approx(13.0) for r in rows)


def test_fixed_delay_never_fires_in_short_stretches(load_data):
    rows = _fixed_with_stretches(load_data, [(0, 2), (5, 7), (10, 12), (20, 22.5)])
    assert all(r.outcome == "censored" and not r.held for r in rows)


def test_fixed_delay_due_at_window_close_does_not_fire(load_data):
    # Windows are half-open [start, end): at the closing instant the window is
    # already shut (breakpoints are processed before clocks due then).
    rows = _fixed_with_stretches(load_data, [(10, 13)])
    assert all(r.outcome == "censored" for r in rows)
    rows = _fixed_with_stretches(load_data, [(10, 13.01)])
    assert all(r.held and r.time == pytest.approx(13.0) for r in rows)


# --- weighted options ------------------------------------------------------------------


def test_option_weights_are_proportional(load_data):
    data = base_scenario()
    data["params"] = {
        "w_yes": {"default": 2, "assumption": "test"},
        "w_later": {"default": 1.5, "assumption": "test"},
    }
    data["protocol"]["states"] = ["waiting", "held", "failed", "postponed"]
    data["protocol"]["transitions"].append(
        {"trigger": "postpone", "source": "waiting", "dest": "postponed"}
    )
    data["protocol"]["outcomes"]["failure"] = ["failed", "postponed"]
    meet = data["actions"]["meet"]
    del meet["trigger"]
    meet["delay"] = fixed_delay(1)
    meet["options"] = {
        "yes": {"weight": "w_yes", "trigger": "meet"},
        "no": {"weight": 1, "trigger": "fail"},
        "later": {"weight": "2 * w_later", "trigger": "postpone"},
    }
    est = negosim.simulate(load_data(data), runs=N, seed=21)
    total = 2 + 1 + 3
    assert est.outcomes["censored"] == 0
    assert sum(est.outcomes.values()) == N
    for state, w in (("held", 2), ("failed", 1), ("postponed", 3)):
        assert_close_binomial(est.outcomes[state] / N, w / total, N, state)

    # the weights follow parameter overrides
    est = negosim.simulate(load_data(data, sets=[("w_yes", 0)]), runs=500, seed=21)
    assert est.outcomes["held"] == 0
    assert est.outcomes["failed"] + est.outcomes["postponed"] == 500


# --- random events ------------------------------------------------------------------------


def test_random_event_in_window_enables_meeting(load_data):
    rate_per_day, a, b, horizon, m = 2.0, 6.0, 30.0, 40.0, 5.0
    data = base_scenario()
    data["calendar"]["horizon"] = f"{horizon:g}h"
    data["calendar"]["windows"] = {"w": {"start": f"{a:g}h", "end": f"{b:g}h"}}
    data["facts"] = {"ready": {"type": "bool", "initial": False}}
    data["events"] = {"signal": {"rate": rate_per_day, "window": "w", "set": {"ready": True}}}
    data["actions"]["meet"].update(guard="ready", delay=exp_delay(m))
    est = negosim.simulate(load_data(data), runs=N, seed=4)

    lam, mu, length = rate_per_day / 24, 1 / m, b - a
    # E ~ a + Exp(lam) if before b; then the meeting needs Exp(mu) before the horizon.
    closed = (1 - math.exp(-lam * length)) - lam * math.exp(-mu * (horizon - a)) * (
        1 - math.exp(-(lam - mu) * length)
    ) / (lam - mu)
    numeric, _ = integrate.quad(
        lambda t: lam * math.exp(-lam * (t - a)) * (1 - math.exp(-mu * (horizon - t))), a, b
    )
    assert closed == pytest.approx(numeric, rel=1e-9)
    assert_close_binomial(est.p_meeting, closed, N, "P(held)")


def test_random_event_rate_alone(load_data):
    """A meeting right after a rate-r event in [6h, 30h): P = 1 - exp(-r * 1 day)."""
    data = base_scenario()
    data["params"] = {"r": {"kind": "rate", "default": 0.8, "assumption": "test"}}
    data["calendar"]["windows"] = {"w": {"start": "6h", "end": "30h"}}
    data["facts"] = {"ready": {"type": "bool", "initial": False}}
    data["events"] = {"signal": {"rate": "r", "window": "w", "set": {"ready": True}}}
    data["actions"]["meet"].update(guard="ready", delay=fixed_delay(0))
    cs = load_data(data)
    times = held_times(cs, N, seed=9)
    assert_close_binomial(len(times) / N, 1 - math.exp(-0.8), N, "P(held)")
    assert times and min(times) >= 6 and max(times) < 30


# --- Wilson interval -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n"),
    [
        (0, 1),
        (1, 1),
        (0, 10),
        (10, 10),
        (3, 10),
        (1, 100),
        (50, 100),
        (999, 1000),
        (0, 5000),
        (4321, 10000),
    ],
)
def test_wilson_matches_scipy(k, n):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson(k, n)
    assert low == pytest.approx(ci.low, abs=1e-12)
    assert high == pytest.approx(ci.high, abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_of_no_runs_is_uninformative():
    assert wilson(0, 0) == (0.0, 1.0)


# --- samplers ----------------------------------------------------------------------------------

U = np.random.default_rng(20240217).random(20_000)


def _draws(sampler: dists.Sampler) -> np.ndarray:
    return np.array([sampler(float(u)) for u in U])


@pytest.mark.parametrize(
    ("kind", "values", "reference"),
    [
        ("uniform", {"low": 2.0, "high": 5.0}, stats.uniform(loc=2, scale=3)),
        ("triangular", {"min": 1.0, "mode": 2.0, "max": 6.0}, stats.triang(c=0.2, loc=1, scale=5)),
        ("triangular", {"min": 0.0, "mode": 0.0, "max": 4.0}, stats.triang(c=0.0, loc=0, scale=4)),
        ("triangular", {"min": 0.0, "mode": 4.0, "max": 4.0}, stats.triang(c=1.0, loc=0, scale=4)),
        ("exponential", {"mean": 7.0}, stats.expon(scale=7)),
        (
            "lognormal",
            {"median": 12.0, "p90": 48.0},
            stats.lognorm(s=math.log(4) / stats.norm.ppf(0.9), scale=12),
        ),
    ],
)
def test_sampler_ks(kind, values, reference):
    x = _draws(dists.build(kind, values))
    result = stats.kstest(x, reference.cdf)
    assert result.pvalue > 1e-4, result
    # inversion: the sampler is the quantile function
    for q in (0.1, 0.5, 0.9):
        assert dists.build(kind, values)(q) == pytest.approx(reference.ppf(q), rel=1e-9)


def test_lognormal_percentiles():
    sampler = dists.build("lognormal", {"median": 12.0, "p90": 48.0})
    assert sampler(0.5) == pytest.approx(12.0, rel=1e-12)
    assert sampler(0.9) == pytest.approx(48.0, rel=1e-9)
    x = _draws(sampler)
    n = len(x)
    for q, value in ((0.5, 12.0), (0.9, 48.0)):
        share = float(np.mean(x <= value))
        assert_close_binomial(share, q, n, f"share below the {q:.0%} point")
    assert sampler(0.0) > 0  # u = 0 does not crash or give 0


def test_empirical_sampler_frequencies():
    values, weights = [1.0, 4.0, 9.0], [1.0, 3.0, 6.0]
    sampler = dists.build("empirical", {}, values, weights)
    x = _draws(sampler)
    observed = [int(np.sum(x == v)) for v in values]
    assert sum(observed) == len(x)
    expected = [w / sum(weights) * len(x) for w in weights]
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    # exact inverse CDF at the steps
    assert [sampler(u) for u in (0.0, 0.0999, 0.1, 0.3999, 0.4, 0.999999)] == [
        1.0,
        1.0,
        4.0,
        4.0,
        9.0,
        9.0,
    ]
    equal = dists.build("empirical", {}, [2.0, 3.0])
    assert (equal(0.49), equal(0.5)) == (2.0, 3.0)


def test_fixed_sampler_is_constant():
    sampler = dists.build("fixed", {"value": 2.5})
    assert {sampler(float(u)) for u in U[:100]} == {2.5}
