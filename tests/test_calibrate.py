"""Calibration against closed forms: a yes/no decision whose probability is the fitted
parameter, so the likelihood of k meetings in n cases is θ^k (1 − θ)^(n − k)."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest

from negosim import load_string
from negosim.errors import UsageError
from negosim.runs.calibrate import Case, Fitted, brier, calibrate, log_score, reads

DECIDE = """
id: decide{n}
title: One decision
calendar: {{timezone: UTC, start: 2024-05-14 08:00, horizon: 2024-05-16 08:00}}
params:
  p_yes: {{kind: probability, default: 0.5, assumption: fitted}}
  unused: {{kind: probability, default: 0.5, assumption: never read}}
  later: {{default: {later}, assumption: when the answer comes}}
actors:
  a: {{name: A}}
protocol:
  states: [asked, held, declined]
  initial: asked
  transitions:
    - {{trigger: meet, source: asked, dest: held}}
    - {{trigger: decline, source: asked, dest: declined}}
  outcomes: {{success: [held], failure: [declined]}}
actions:
  answer:
    actor: a
    from: asked
    delay: {{dist: fixed, value: later}}
    options:
      yes: {{weight: p_yes, trigger: meet}}
      no: {{weight: 1 - p_yes, trigger: decline}}
"""

FIT = [Fitted("p_yes", 0.0, 1.0)]
DAY1, DAY2 = dt.date(2024, 5, 14), dt.date(2024, 5, 15)


def case(n: int, met: bool, later: str = "1h") -> Case:
    cs = load_string(DECIDE.format(n=n, later=later))
    return Case(f"c{n}", cs, met, DAY1 if met else None)


def exact_mean(k: int, n: int, grid: np.ndarray) -> float:
    """Posterior mean of θ on the grid under a flat prior after k successes in n."""
    w = grid**k * (1 - grid) ** (n - k)
    return float((w * grid).sum() / w.sum())


@pytest.fixture(scope="module")
def fit():
    met = [True, True, True, False, True, False]
    return calibrate([case(i, m) for i, m in enumerate(met)], FIT, runs=4000, seed=3)


def test_posterior_mean_matches_the_binomial_closed_form(fit):
    grid = FIT[0].grid(9)
    assert fit.estimates["p_yes"]["mean"] == pytest.approx(exact_mean(4, 6, grid), abs=0.02)
    assert fit.estimates["p_yes"]["low90"] <= fit.estimates["p_yes"]["mean"]
    assert fit.estimates["p_yes"]["mean"] <= fit.estimates["p_yes"]["high90"]


def test_leave_one_out_forecasts_match_the_closed_form(fit):
    grid = FIT[0].grid(9)
    for f in fit.forecasts:
        k = 4 - f["met"]
        assert f["loo"] == pytest.approx(exact_mean(k, 5, grid), abs=0.02)
        assert f["reads"] == ["p_yes"]
        assert f["uncalibrated"] == pytest.approx(0.5, abs=0.03)


def test_leave_one_out_never_uses_the_left_out_outcome():
    cases = [case(i, m) for i, m in enumerate([True, True, False, True])]
    planted = case(9, True)
    a = calibrate([*cases, planted], FIT, runs=1000, seed=1)
    flipped = Case(planted.name, planted.scenario, False)
    b = calibrate([*cases, flipped], FIT, runs=1000, seed=1)
    # The planted outcome moves the fit and its in-sample forecast ...
    assert a.estimates["p_yes"]["mean"] > b.estimates["p_yes"]["mean"] + 0.03
    assert a.forecasts[-1]["in_sample"] > b.forecasts[-1]["in_sample"]
    # ... but not its own left-out forecast: bit for bit.
    assert a.forecasts[-1]["loo"] == b.forecasts[-1]["loo"]


def test_the_day_counts_a_meeting_on_another_day_is_unlikely():
    # The meeting can only happen on day 2 (25 h after the start); a resolution that
    # says day 1 is nearly impossible, day 2 is as likely as the meeting itself.
    cs = load_string(DECIDE.format(n=0, later="25h"))
    right = calibrate([Case("a", cs, True, DAY2), Case("b", cs, False)], FIT, runs=500)
    wrong = calibrate([Case("a", cs, True, DAY1), Case("b", cs, False)], FIT, runs=500)
    t_right, t_wrong = right.tables[0], wrong.tables[0]
    assert np.allclose(t_right.p_day, t_right.p_met)
    assert np.all(t_wrong.p_day == 0)
    assert np.all(t_wrong.loglik(True) < math.log(1 / 400))


def test_a_parameter_the_case_does_not_read_is_not_simulated():
    c = case(0, True)
    assert reads(c.scenario, [Fitted("unused", 0, 1), Fitted("p_yes", 0, 1)], 0) == ("p_yes",)
    assert reads(c.scenario, [Fitted("not_declared", 0, 1)], 0) == ()


def test_two_parameters_broadcast_over_the_full_grid():
    fitted = [Fitted("p_yes", 0.0, 1.0), Fitted("unused", 0.0, 1.0)]
    res = calibrate([case(0, True), case(1, False), case(2, True)], fitted, runs=400,
                    grid_points=5)  # fmt: skip
    assert res.posterior.shape == (5, 5)
    assert res.posterior.sum() == pytest.approx(1.0)
    # 'unused' is read by no case: its posterior is flat, its mean the middle.
    assert res.estimates["unused"]["mean"] == pytest.approx(0.5)


def test_scores_by_hand():
    assert brier(0.8, True) == pytest.approx(0.04)
    assert brier(0.8, False) == pytest.approx(0.64)
    assert log_score(0.8, True) == pytest.approx(math.log(0.8))
    assert log_score(0.0, True) == pytest.approx(math.log(1e-3))


def test_bad_requests_are_usage_errors():
    with pytest.raises(UsageError, match="at least two"):
        calibrate([case(0, True)], FIT)
    with pytest.raises(UsageError, match="at least one parameter"):
        calibrate([case(0, True), case(1, False)], [])
    with pytest.raises(UsageError, match="grid of 9 points"):
        calibrate([case(0, True), case(1, False)], [Fitted(f"x{i}", 0, 1) for i in range(6)])


def test_the_command_fits_scores_and_writes_a_base(tmp_path, cli):
    """negosim calibrate on three cases: JSON keys, and a base file that loads as one."""
    cases, outcomes = tmp_path / "cases", tmp_path / "outcomes"
    cases.mkdir()
    outcomes.mkdir()
    (tmp_path / "stances.yaml").write_text(
        "abstract: true\nparams:\n  p_yes: {kind: probability, default: 0.5, low: 0, high: 1,"
        " assumption: rule}\n"
    )
    for n, met in enumerate([True, False, True]):
        (cases / f"c{n}.yaml").write_text(DECIDE.format(n=n, later="1h"))
        when = "date: 2024-05-14\n" if met else ""
        (outcomes / f"c{n}.yaml").write_text(
            f"case: decide{n}\nmet: {str(met).lower()}\n{when}"
            "sources:\n  s: {title: A report, outlet: Somewhere}\n"
        )
    out = tmp_path / "calibrated.yaml"
    result = cli("calibrate", str(cases), "--outcomes", str(outcomes), "--param", "p_yes",
                 "--runs", "300", "--grid", "5", "--write", str(out),
                 "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n"] == 3 and set(data["scores"]) >= {"loo", "in_sample", "loo_base_rate"}
    assert 0.3 < data["params"]["p_yes"]["mean"] < 0.8
    text = out.read_text()
    assert "abstract: true" in text and "extends: \"stances.yaml\"" in text
    assert "negosim calibrate" in text and "p_yes" in text


def test_a_line_break_in_the_command_stays_inside_the_comment():
    from negosim.output.calibration import calibrated_yaml

    res = calibrate([case(0, True), case(1, False)], FIT, runs=100, grid_points=3)
    res.extra["command"] = "negosim calibrate 'x\nabstract: false'"
    text = calibrated_yaml(res, "stances.yaml")
    assert "\nabstract: false" not in text
    assert text.count("abstract: true") == 1
