"""Parameter uncertainty (``run --uncertainty``): the nested estimator against a closed form.

One exponential action of mean ``m`` against a horizon of ``T`` hours is held
with probability ``1 - exp(-T/m)``. If ``m`` is uncertain with density ``f``,
the predictive probability is ``E[1 - exp(-T/m)] = ∫ (1 - exp(-T/m)) f(m) dm``,
computed here with scipy's ``quad``. Seeds are fixed: a failure is reproducible.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import base_scenario
from scipy import integrate

from negosim.cli.main import main
from negosim.runs.results import wilson
from negosim.runs.runner import simulate
from negosim.runs.uncertainty import (
    compare_uncertain,
    draw_value,
    nested_ci,
    simulate_uncertain,
    split_runs,
    uncertain_parameters,
)

T = 48.0
LOW, HIGH = 5.0, 100.0  # m ~ uniform(5h, 100h)
DEFAULT_M = 30.0


def uncertain_mean_scenario() -> dict[str, Any]:
    data = base_scenario()
    data["calendar"]["horizon"] = f"{T:g}h"
    data["params"] = {
        "m": {
            "default": f"{DEFAULT_M:g}h",
            "uncertainty": {"dist": "uniform", "low": f"{LOW:g}h", "high": f"{HIGH:g}h"},
            "assumption": "test",
        }
    }
    data["actions"]["meet"]["delay"] = {"dist": "exponential", "mean": "m"}
    return data


def predictive() -> float:
    value, _ = integrate.quad(lambda m: (1 - math.exp(-T / m)) / (HIGH - LOW), LOW, HIGH)
    return float(value)


def test_nested_estimator_matches_the_closed_form(load_data: Callable[..., Any]) -> None:
    cs = load_data(uncertain_mean_scenario())
    exact = predictive()
    plug_in = 1 - math.exp(-T / DEFAULT_M)
    assert abs(exact - plug_in) > 0.05  # the test can tell uncertainty from the default
    u = simulate_uncertain(cs, runs=40_000, seed=5, draws=400)
    assert (u.draws, u.runs_per_draw, u.estimate.runs) == (400, 100, 40_000)
    se = float(np.std(u.draw_p, ddof=1)) / math.sqrt(u.draws)
    assert abs(u.p_meeting - exact) < 4.5 * se, (u.p_meeting, exact, se)
    assert u.ci95[0] <= exact <= u.ci95[1]
    assert not u.ci95[0] <= plug_in <= u.ci95[1]
    # The band across draws: P(m) at m's 95th and 5th percentiles, widened by noise.
    lo_true = 1 - math.exp(-T / (LOW + 0.95 * (HIGH - LOW)))
    hi_true = 1 - math.exp(-T / (LOW + 0.05 * (HIGH - LOW)))
    lo, hi = u.p_meeting_band
    assert abs(lo - lo_true) < 0.1 and abs(hi - hi_true) < 0.05, (lo, hi, lo_true, hi_true)
    # Each draw's P against its own closed form 1 - exp(-T/m_d): within binomial noise.
    ms = np.array([v["m"] for v in u.draw_values])
    assert ms.min() >= LOW and ms.max() <= HIGH
    expected = 1 - np.exp(-T / ms)
    z = (np.array(u.draw_p) - expected) / np.sqrt(expected * (1 - expected) / 100 + 1e-12)
    assert abs(float(z.mean())) < 4.5 / math.sqrt(len(z))
    # The draws of m are uniform on [5, 100]: their mean is within 4.5 SE of 52.5.
    assert abs(ms.mean() - (LOW + HIGH) / 2) < 4.5 * (HIGH - LOW) / math.sqrt(12 * len(ms))


def test_draws_are_keyed_by_seed_draw_and_name(load_data: Callable[..., Any]) -> None:
    data = uncertain_mean_scenario()
    data["params"]["n"] = dict(data["params"]["m"])
    cs = load_data(data)
    m, n = uncertain_parameters(cs)
    assert draw_value(m, 1, 3) == draw_value(m, 1, 3)
    assert draw_value(m, 1, 3) != draw_value(n, 1, 3)  # a stream per parameter name
    assert draw_value(m, 1, 3) != draw_value(m, 2, 3)
    # A parameter's draws do not depend on which other parameters are drawn.
    data2 = uncertain_mean_scenario()
    (m2,) = uncertain_parameters(load_data(data2))
    assert [draw_value(m2, 0, d) for d in range(5)] == [draw_value(m, 0, d) for d in range(5)]


def test_results_do_not_depend_on_workers(load_data: Callable[..., Any]) -> None:
    cs = load_data(uncertain_mean_scenario())
    one = simulate_uncertain(cs, runs=1_200, seed=2, draws=6, workers=1).to_json()
    two = simulate_uncertain(cs, runs=1_200, seed=2, draws=6, workers=2).to_json()
    one.pop("elapsed_s"), two.pop("elapsed_s")
    assert one == two


def test_pinning_every_uncertain_parameter_gives_plain_run(
    load_data: Callable[..., Any],
) -> None:
    data = uncertain_mean_scenario()
    cs = load_data(data, [("m", "20h")])
    assert uncertain_parameters(cs) == []
    u = simulate_uncertain(cs, runs=3_000, seed=4, draws=30)
    plain = simulate(cs, runs=3_000, seed=4)
    got, want = u.estimate.to_json(), plain.to_json()
    got.pop("elapsed_s"), want.pop("elapsed_s")
    assert got == want
    assert u.p_meeting_band == (plain.p_meeting, plain.p_meeting)


def test_cli_pins_equal_plain_run(
    write_scenario: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_scenario(uncertain_mean_scenario()))
    args = ["--runs", "2000", "--seed", "3", "--format", "json", "--set", "m=25h"]
    assert main(["run", path, "--uncertainty", "--draws", "20", *args]) == 0
    pinned = json.loads(capsys.readouterr().out)
    assert main(["run", path, *args]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert pinned["uncertain_params"] == []
    assert pinned["p_meeting_band"] == [plain["p_meeting"]] * 2
    extra = ("p_meeting_band", "uncertain_params", "draws", "runs_per_draw", "within_draw_sd",
             "by_day_band", "held_by_end_of_day_band", "elapsed_s")  # fmt: skip
    for key in extra:
        pinned.pop(key)
    plain.pop("elapsed_s")
    assert pinned == plain
    # Unpinned, the same command draws m and reports it.
    assert main(["run", path, "--uncertainty", "--draws", "20", *args[:6]]) == 0
    drawn = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in drawn["uncertain_params"]] == ["m"]
    assert drawn["p_meeting_band"][0] < drawn["p_meeting"] < drawn["p_meeting_band"][1]
    assert set(drawn) >= {"p_meeting", "ci95", "p_meeting_band", "uncertain_params"}


def test_cli_refuses_draws_without_uncertainty(
    write_scenario: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_scenario(uncertain_mean_scenario()))
    assert main(["run", path, "--draws", "5"]) == 2
    assert "--draws goes with --uncertainty" in capsys.readouterr().err
    assert main(["run", path, "--uncertainty", "--precision", "0.05"]) == 2


def test_nested_ci_and_split() -> None:
    assert split_runs(10_000, 100) == (100, 100)
    assert split_runs(50, 100) == (50, 1)
    # Equal draw means: the interval falls back to Wilson's, never to a point.
    lo, hi = nested_ci([0.5] * 10, 50, 100)
    assert (lo, hi) == pytest.approx(wilson(50, 100))
    # Spread-out draws: mean ± 1.96 s / sqrt(D).
    means = [0.1, 0.9] * 50
    lo, hi = nested_ci(means, 5_000, 10_000)
    half = 1.959963984540054 * float(np.std(means, ddof=1)) / 10
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half))


def test_compare_uncertain_shares_draws(load_data: Callable[..., Any]) -> None:
    cs = load_data(uncertain_mean_scenario())
    # The same scenario on both sides: every pair identical, the change exactly 0.
    same = compare_uncertain(cs, cs, runs=1_000, seed=1, draws=10)
    assert same.params == ["m"] and same.comparison.diff == 0.0
    assert same.comparison.diff_ci95 == (0.0, 0.0)
    assert same.draw_base == same.draw_variant
    # A variant that pins m at its longest mean: lower odds in (nearly) every draw.
    slow = load_data(uncertain_mean_scenario(), [("m", f"{HIGH:g}h")])
    cmp = compare_uncertain(cs, slow, runs=4_000, seed=1, draws=40)
    exact = predictive()
    pinned = 1 - math.exp(-T / HIGH)
    assert cmp.comparison.diff == pytest.approx(pinned - exact, abs=0.05)
    lo, hi = cmp.comparison.diff_ci95
    assert lo <= cmp.comparison.diff <= hi < 0
    data = cmp.to_json()
    assert data["uncertain_params"] == ["m"] and data["draws"] == 40
    assert data["p_variant_band"][1] - data["p_variant_band"][0] < 0.3  # m fixed: noise only
    assert data["p_base_band"][1] - data["p_base_band"][0] > 0.4  # m drawn


def test_report_and_plot_show_the_band(
    write_scenario: Callable[..., Any], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    path = str(write_scenario(uncertain_mean_scenario()))
    html, png = tmp_path / "r.html", tmp_path / "c.png"
    assert main(["report", path, "--uncertainty", "--runs", "1000", "--draws", "20",
                 "-o", str(html)]) == 0  # fmt: skip
    page = html.read_text(encoding="utf-8")
    assert "Across parameter draws (5th–95th)" in page and "Parameter uncertainty" in page
    assert "<code>m</code>" in page
    assert main(["plot", path, "--kind", "curve", "--uncertainty", "--runs", "1000",
                 "-o", str(png)]) == 0  # fmt: skip
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["compare", path, "--set", "m=50h", "--uncertainty", "--runs", "1000",
                 "--draws", "10"]) == 0  # fmt: skip
    assert "Across draws (5th–95th)" in capsys.readouterr().out


def test_the_batch_engine_gives_the_same_draws(
    load_data: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
    write_scenario: Callable[..., Any], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from test_calibrate import spy_batch_runs

    cs = load_data(uncertain_mean_scenario())
    slow = load_data(uncertain_mean_scenario(), [("m", f"{HIGH:g}h")])
    batch_runs = spy_batch_runs(monkeypatch)
    ref = simulate_uncertain(cs, runs=900, seed=3, draws=9).to_json()  # simpy, as run
    cmp_ref = compare_uncertain(cs, slow, runs=900, seed=3, draws=9, engine="simpy").to_json()
    assert batch_runs == []
    got = simulate_uncertain(cs, runs=900, seed=3, draws=9, engine="batch").to_json()
    cmp_got = compare_uncertain(cs, slow, runs=900, seed=3, draws=9).to_json()  # batch
    assert sum(batch_runs) == 900 * 3  # the draws of run, and of both sides of compare
    for data in (ref, got, cmp_ref, cmp_got):
        data.pop("elapsed_s", None)
        data.pop("elapsed", None)
    assert got == ref and cmp_got == cmp_ref
    # run --uncertainty --engine batch (run's default is simpy) gives the same JSON.
    path = str(write_scenario(uncertain_mean_scenario()))
    args = ["run", path, "--uncertainty", "--draws", "9", "--runs", "900", "--seed", "3",
            "--format", "json"]  # fmt: skip
    before = sum(batch_runs)
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert sum(batch_runs) == before
    assert main([*args, "--engine", "batch"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert sum(batch_runs) == before + 900
    plain.pop("elapsed_s"), fast.pop("elapsed_s")
    assert fast == plain
