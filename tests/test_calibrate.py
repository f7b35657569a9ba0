"""Calibration against closed forms: a yes/no decision whose probability is the fitted
parameter, so the likelihood of k meetings in n cases is θ^k (1 − θ)^(n − k)."""

from __future__ import annotations

import datetime as dt
import json
import math
import shlex

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
    assert "abstract: true" in text and 'extends: "stances.yaml"' in text
    assert "negosim calibrate" in text and "p_yes" in text


def test_a_line_break_in_the_command_stays_inside_the_comment():
    from negosim.output.calibration import calibrated_yaml

    res = calibrate([case(0, True), case(1, False)], FIT, runs=100, grid_points=3)
    res.extra["command"] = "negosim calibrate 'x\nabstract: false'"
    text = calibrated_yaml(res, "stances.yaml")
    assert "\nabstract: false" not in text
    assert text.count("abstract: true") == 1


# --- the batch engine (issue 11): the same fit, number for number ----------------------

BIG = "9007199254740993 > 1"  # an integer literal beyond 2**53: the batch engine refuses it


def _uncovered(n: int) -> str:
    """DECIDE with a weight the batch engine does not cover (it runs on simpy)."""
    text = DECIDE.format(n=n, later="1h")
    return text.replace("{weight: p_yes,", f"{{weight: p_yes if {BIG} else 0,")


def spy_batch_runs(monkeypatch) -> list[int]:
    """Replications run by the batch engine from now on (one entry per call)."""
    from negosim.engine.batch import BatchEngine

    calls: list[int] = []
    run = BatchEngine.run

    def counted(self, seed, start, stop):
        calls.append(stop - start)
        return run(self, seed, start, stop)

    monkeypatch.setattr(BatchEngine, "run", counted)
    return calls


def test_the_batch_and_simpy_engines_give_the_same_calibration(monkeypatch):
    from negosim.runs.backends import batch_support

    cases = [case(0, True), case(1, False), case(2, True, "30h"),
             Case("d2", load_string(DECIDE.format(n=3, later="25h")), True, DAY2),
             Case("odd", load_string(_uncovered(4)), False)]  # fmt: skip
    assert [batch_support(c.scenario) is None for c in cases] == [True] * 4 + [False]
    fitted = [Fitted("p_yes", 0.0, 1.0), Fitted("unused", 0.0, 1.0)]
    seen: dict[str, list[int]] = {"batch": [], "simpy": []}
    batch_runs = spy_batch_runs(monkeypatch)
    fits = {}
    for e in ("simpy", "batch"):
        fits[e] = calibrate(cases, fitted, runs=300, seed=5, grid_points=3,
                            progress=seen[e].append, engine=e)  # fmt: skip
        if e == "simpy":
            assert batch_runs == []
    # On the batch engine: the probes (200 runs) and the grid points (300) of the four
    # covered cases; the fifth falls back to simpy.
    assert sum(batch_runs) == 4 * (6 * 200 + 3 * 300 + 300)
    assert fits["batch"].to_dict() == fits["simpy"].to_dict()
    for a, b in zip(fits["batch"].tables, fits["simpy"].tables, strict=True):
        assert a.params == b.params == ("p_yes",)
        assert np.array_equal(a.p_met, b.p_met) and np.array_equal(a.p_day, b.p_day)
    assert fits["batch"].tables[2].p_day.sum() == 0  # held at 30 h: on day 2, never day 1
    assert fits["batch"].tables[3].p_day.sum() > 0
    # The progress callback is told of every grid point on either engine: 5 cases x 3.
    assert seen["batch"] == seen["simpy"] == [1] * 15
    with pytest.raises(UsageError, match="unknown engine 'fast'"):
        calibrate(cases, fitted, engine="fast")


def test_columns_are_the_rows_on_either_engine(monkeypatch):
    import yaml
    from conftest import base_scenario, with_ask_step

    from negosim.engine.batch import engine as batch_module
    from negosim.runs import runner

    data = with_ask_step(base_scenario())  # ask, then meet: some censored
    data["actions"]["ask"] = {"actor": "a", "from": "waiting", "trigger": "ask",
                              "delay": {"dist": "exponential", "mean": "10h"}}  # fmt: skip
    data["actions"]["meet"].update(
        {"from": "asked", "delay": {"dist": "exponential", "mean": "30h"}}
    )
    cs = load_string(yaml.safe_dump(data))
    ref = list(runner.rows(cs, 500, 2, engine="simpy"))
    want = (
        [-1 if r.outcome == "censored" else cs.states.index(r.outcome) for r in ref],
        [r.held for r in ref],
        [-1 if r.ticks is None else r.ticks for r in ref],
    )
    assert -1 in want[0] and True in want[1]
    for engine in ("batch", "simpy"):
        got = runner.columns(cs, 500, 2, engine)
        assert [c.tolist() for c in got] == list(want)
    # Replications the batch engine hands to the reference engine are filled in from it.
    monkeypatch.setattr(batch_module, "TAIL_STEPS", 1)
    monkeypatch.setattr(batch_module, "TAIL_ROWS", 10**6)
    from negosim.runs import backends

    monkeypatch.setattr(backends, "_batch", type(backends._batch)())  # no cached engine
    assert runner.batch_for(backends.model_key(cs.model), cs.model).run(2, 0, 500).reference
    assert [c.tolist() for c in runner.columns(cs, 500, 2, "batch")] == list(want)


def _library(tmp_path, uncovered: bool = False):
    """Three resolved DECIDE cases (and a base to extend), in tmp_path."""
    cases, outcomes = tmp_path / "cases", tmp_path / "outcomes"
    cases.mkdir()
    outcomes.mkdir()
    for n, met in enumerate([True, False, True]):
        text = _uncovered(n) if uncovered and n == 2 else DECIDE.format(n=n, later="1h")
        (cases / f"c{n}.yaml").write_text(text)
        when = "date: 2024-05-14\n" if met else ""
        (outcomes / f"c{n}.yaml").write_text(
            f"case: decide{n}\nmet: {str(met).lower()}\n{when}"
            "sources:\n  s: {title: A report, outlet: Somewhere}\n"
        )
    return cases, outcomes


def test_the_command_gives_the_same_json_on_either_engine(tmp_path, cli):
    cases, outcomes = _library(tmp_path, uncovered=True)
    args = ("calibrate", str(cases), "--outcomes", str(outcomes), "--param", "p_yes",
            "--runs", "300", "--grid", "5", "--format", "json")  # fmt: skip
    batch, simpy = cli(*args), cli(*args, "--engine", "simpy")
    assert batch.returncode == simpy.returncode == 0, batch.stderr + simpy.stderr
    a, b = json.loads(batch.stdout), json.loads(simpy.stdout)
    # The recorded command is the one given, in-process too (not pytest's sys.argv).
    given = "negosim " + " ".join(shlex.quote(x) for x in args)
    assert (a.pop("command"), b.pop("command")) == (given, given + " --engine simpy")
    assert a == b
    note = f"note: {cases / 'c2.yaml'}: the batch engine does not cover integer literal"
    assert note in batch.stderr and "using the simpy engine" in batch.stderr
    assert "note:" not in simpy.stderr
