"""Exact analysis (negosim analyze) against closed forms, refusals, and the engine.

Closed forms are computed here in the test, never copied from the code: the
worked examples of docs/semantics.md, competing exponential clocks, option
splits, a scheduled event, a uniform arrival (integrated by quadrature) and a
Poisson event. The engine comparisons use the all-exponential variants of the
library scenarios; the fast ones run here, the 10^6-replication ones only
with NEGOSIM_SLOW=1 (``pytest -m slow``).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from negosim import load, load_string, simulate
from negosim.analysis.check import Comparison, check, exponential_sets, exponential_variant
from negosim.analysis.ctmc import NotAnalyzable, analyze
from negosim.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
MUNICH = ROOT / "scenarios" / "munich.yaml"
SLOW = pytest.mark.skipif(not os.environ.get("NEGOSIM_SLOW"), reason="set NEGOSIM_SLOW=1")


def worked_example(name: str) -> str:
    """The YAML of a worked example, cut from docs/semantics.md."""
    text = (ROOT / "docs" / "semantics.md").read_text()
    m = re.search(rf"```yaml\n(# file: {re.escape(name)}\n.*?)```", text, re.S)
    assert m, name
    return m.group(1)


def scenario(body: str, horizon: str = "48h", windows: str = "") -> str:
    return (
        f"""
id: t
title: t
calendar:
  timezone: UTC
  start: 2024-01-01 00:00
  horizon: {horizon}
{windows}
"""
        + body
    )


def test_worked_example_to_1e9() -> None:
    a = analyze(load_string(worked_example("worked.yaml")))
    assert abs(a.p_meeting - (1 - math.exp(-2))) < 1e-9
    assert abs(a.by_day["2023-02-16"] - (1 - math.exp(-1))) < 1e-9
    assert abs(a.by_day["2023-02-17"] - (math.exp(-1) - math.exp(-2))) < 1e-9
    assert abs(a.outcomes["censored"] - math.exp(-2)) < 1e-9
    assert a.states == 2


def test_worked_example_with_office_hours_to_1e9() -> None:
    a = analyze(load_string(worked_example("worked-window.yaml")))
    assert abs(a.p_meeting - (1 - math.exp(-18 / 24))) < 1e-9
    assert abs(a.by_day["2023-02-16"] - (1 - math.exp(-9 / 24))) < 1e-9
    assert abs(a.by_day["2023-02-17"] - (math.exp(-9 / 24) - math.exp(-18 / 24))) < 1e-9
    assert abs(a.held_by_end_of_day["2023-02-17"] - a.p_meeting) < 1e-15


def test_fixed_delay_is_refused_in_one_line() -> None:
    text = worked_example("worked-window.yaml").replace(
        "{dist: exponential, mean: 24h}", "{dist: fixed, value: 10h}"
    )
    with pytest.raises(NotAnalyzable, match=r"action 'answer' has a fixed delay") as e:
        analyze(load_string(text), phases=8)
    assert "\n" not in str(e.value)


COMPETING = """
actors:
  a: {name: A}
protocol:
  states: [waiting, held, declined]
  initial: waiting
  transitions:
    - {trigger: agree, source: waiting, dest: held}
    - {trigger: refuse, source: waiting, dest: declined}
  outcomes: {success: [held], failure: [declined]}
actions:
  answer:
    actor: a
    delay: {dist: exponential, mean: 10h}
    options:
      yes: {weight: 0.3, trigger: agree}
      no: {weight: 0.7, trigger: refuse}
events:
  storm:
    rate: 2
    trigger: refuse
"""


def test_options_and_a_poisson_event_compete() -> None:
    a = analyze(load_string(scenario(COMPETING)))
    la, le, t = 1 / 10, 2 / 24, 48.0
    total = la + le
    reach = 1 - math.exp(-total * t)
    assert abs(a.p_meeting - 0.3 * la / total * reach) < 1e-9
    assert abs(a.outcomes["declined"] - (0.7 * la + le) / total * reach) < 1e-9
    assert abs(a.outcomes["censored"] - math.exp(-total * t)) < 1e-9


SCHEDULED = """
facts:
  open: {type: bool, initial: false}
actors:
  a: {name: A}
protocol:
  states: [waiting, held]
  initial: waiting
  transitions:
    - {trigger: agree, source: waiting, dest: held}
  outcomes: {success: [held]}
actions:
  answer:
    actor: a
    guard: open
    delay: {dist: exponential, mean: 5h}
    trigger: agree
events:
  opening:
    at: 2024-01-01 10:00
    set: {open: true}
"""


def test_a_scheduled_event_is_a_breakpoint() -> None:
    a = analyze(load_string(scenario(SCHEDULED, horizon="30h")))
    assert abs(a.p_meeting - (1 - math.exp(-20 / 5))) < 1e-9


ARRIVAL = """
actors:
  a:
    name: A
    present:
      - from: 2024-01-01 00:00
        until: 2024-01-03 00:00
        arrival: {dist: uniform, low: 0h, high: 12h}
protocol:
  states: [waiting, held]
  initial: waiting
  transitions:
    - {trigger: agree, source: waiting, dest: held}
  outcomes: {success: [held]}
actions:
  answer:
    actor: a
    guard: present('a')
    delay: {dist: exponential, mean: 20h}
    trigger: agree
"""


def test_a_uniform_arrival_is_integrated_over() -> None:
    # P = 1 - E[exp(-(T - X)/m)], X ~ U(0, A): 1 - (m/A)(exp(-(T-A)/m) - exp(-T/m))
    a = analyze(load_string(scenario(ARRIVAL, horizon="30h")))
    m, big_a, t = 20.0, 12.0, 30.0
    exact = 1 - (m / big_a) * (math.exp(-(t - big_a) / m) - math.exp(-t / m))
    assert abs(a.p_meeting - exact) < 1e-9
    assert "quadrature" in a.method


def test_a_triangular_delay_needs_phases_and_gets_close() -> None:
    tri = "{dist: triangular, min: 1h, mode: 4h, max: 10h}"
    text = scenario(COMPETING.replace("{dist: exponential, mean: 10h}", tri))
    with pytest.raises(NotAnalyzable, match="try --phases K"):
        analyze(load_string(text))
    a = analyze(load_string(text), phases=8)
    assert a.fits and a.fits[0]["phases"] <= 8 and a.fits[0]["ks"] < 0.05
    # Without the storm the answer would be 0.3 for any delay; the storm makes
    # it depend on the delay's distribution: compare with Monte Carlo.
    est = simulate(load_string(text), runs=20_000, seed=3)
    se = math.sqrt(a.p_meeting * (1 - a.p_meeting) / est.runs)
    assert abs(est.p_meeting - a.p_meeting) < 4 * se + 0.005


def test_state_space_over_the_limit_is_refused() -> None:
    with pytest.raises(NotAnalyzable, match="exceeds 50 states"):
        analyze(load(MUNICH), phases=2, max_states=50)


def test_exponential_jitter_is_refused() -> None:
    jitter = "at: 2024-01-01 10:00\n    jitter: {dist: exponential, mean: 1h}"
    text = scenario(SCHEDULED.replace("at: 2024-01-01 10:00", jitter), horizon="30h")
    with pytest.raises(NotAnalyzable, match="exponential distribution"):
        analyze(load_string(text))


def test_every_library_scenario_has_an_all_exponential_variant() -> None:
    for path in SCENARIOS:
        a = analyze(exponential_variant(str(path)))
        assert 0 < a.p_meeting < 1
        assert abs(sum(a.outcomes.values()) - 1) < 1e-9
        assert abs(sum(a.by_day.values()) - a.p_meeting) < 1e-9


def test_munich_exponential_matches_the_published_study() -> None:
    # The study: 0.39384 (simpy 0.39377 over 1.2 million runs); Friday 0.01917.
    a = analyze(exponential_variant(str(MUNICH)))
    assert abs(a.p_meeting - 0.39384) < 5e-5
    assert abs(a.held_by_end_of_day["2023-02-17"] - 0.01917) < 5e-5


def test_quadrature_has_converged_on_munich() -> None:
    cs = exponential_variant(str(MUNICH))
    coarse, fine = analyze(cs, nodes=8), analyze(cs, nodes=16)
    assert abs(coarse.p_meeting - fine.p_meeting) < 1e-9


@pytest.mark.parametrize("path", [MUNICH, ROOT / "scenarios" / "tutorial.yaml"], ids=str)
def test_engine_agrees_with_exact_fast(path: Path) -> None:
    comps = check(exponential_variant(str(path)), runs=20_000, seed=11)
    assert max(abs(c.z) for c in comps) < 4, [(c.what, c.z) for c in comps]


def test_comparison_z() -> None:
    c = Comparison("p", 0.5, 0.51, 10_000)
    assert abs(c.z - 2.0) < 1e-12


def test_exponential_sets_keep_the_mean() -> None:
    sets = dict(exponential_sets(load(MUNICH)))
    assert sets["actions.fix_slot.delay"]["mean"] == "3.5h"
    assert "actions.china_closes_door.delay" not in sets  # already exponential


def test_cli_analyze_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "scenarios" / "tutorial.yaml"
    assert main(["analyze", str(path), "--phases", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("p_meeting", "by_day", "held_by_end_of_day", "outcomes", "states", "method",
                "elapsed_s", "fits"):  # fmt: skip
        assert key in data
    assert all(0 <= f["ks"] < 1 for f in data["fits"])


def test_cli_refusal_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(MUNICH)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "lognormal delay" in err and "munich.yaml" in err


def test_cli_check_engines(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "scenarios" / "tutorial.yaml"
    assert main(["check-engines", str(path), "--runs", "5000", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["max_abs_z"] < 4


@pytest.mark.slow
@SLOW
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_engine_agrees_with_exact_1e6(path: Path) -> None:
    comps = check(exponential_variant(str(path)), runs=1_000_000, seed=5, workers=2)
    assert max(abs(c.z) for c in comps) < 4, [(c.what, c.z) for c in comps]


@pytest.mark.slow
@SLOW
def test_munich_8_phases_within_0_002_of_monte_carlo() -> None:
    cs = load(MUNICH)
    a = analyze(cs, phases=8)
    est = simulate(cs, runs=1_000_000, seed=12, workers=2)
    assert abs(a.p_meeting - est.p_meeting) < 0.002
    for day, p in a.held_by_end_of_day.items():
        assert abs(p - est.held_by_end_of_day[day]["p"]) < 0.002


def test_phase_type_cdf_is_what_was_fitted() -> None:
    from negosim.analysis.phasetype import cdf_of, fit
    from negosim.compiler.dists import Spec

    # A uniform on [1, 3] has a squared coefficient of variation of 1/12, below
    # the 1/8 of the least variable 8-phase distribution (Erlang-8): its fit
    # cannot be close, and the KS figure says so.
    for spec, limit in ((Spec("lognormal", {"median": 12.0, "p90": 36.0}), 0.005),
                        (Spec("triangular", {"min": 0.5, "mode": 2.0, "max": 8.0}), 0.02),
                        (Spec("uniform", {"low": 1.0, "high": 3.0}), 0.1)):  # fmt: skip
        f = fit(spec, 8)
        x = np.linspace(0.01, 60, 400)
        gap = float(np.max(np.abs(f.ph.cdf(x) - cdf_of(spec, x))))
        assert gap <= f.ks + 1e-3  # the reported KS is the sup over a finer grid
        assert abs(sum(f.ph.alpha) - 1) < 1e-12
        assert abs(f.fit_mean - f.mean) / f.mean < 0.05
        assert f.ks < limit


PARAM = """
params:
  answer_mean: {kind: duration, default: 24h, assumption: a guess}
actors:
  b: {name: B}
protocol:
  states: [waiting, held]
  initial: waiting
  transitions:
    - {trigger: agree, source: waiting, dest: held}
  outcomes: {success: [held]}
actions:
  answer:
    actor: b
    delay: {dist: exponential, mean: answer_mean}
    trigger: agree
"""


def test_cli_compare_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(scenario(PARAM))
    argv = ["compare", str(path), "--set", "answer_mean=12h", "--exact", "--format", "json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert abs(data["difference"] - ((1 - math.exp(-4)) - (1 - math.exp(-2)))) < 1e-9


def test_cli_compare_exact_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(MUNICH), "--exact"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "lognormal delay" in err


def test_cli_sweep_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(scenario(PARAM))
    argv = ["sweep", str(path), "--param", "answer_mean=12h,48h", "--exact", "--format", "json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    for row, mean in zip(rows, (12, 48), strict=True):
        assert abs(row["p_meeting"] - (1 - math.exp(-48 / mean))) < 1e-9


def test_cli_plot_and_report_exact(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "w.yaml"
    path.write_text(worked_example("worked-window.yaml"))
    assert (
        main(["plot", str(path), "--kind", "curve", "--exact", "-o", str(tmp_path / "c.svg")]) == 0
    )
    assert (tmp_path / "c.svg").read_text().count("<svg") == 1
    out = tmp_path / "r.html"
    assert main(["report", str(path), "-o", str(out), "--runs", "500"]) == 0
    assert "exact probability" in out.read_text()
    out2 = tmp_path / "m.html"
    assert main(["report", str(MUNICH), "-o", str(out2), "--runs", "200"]) == 0
    assert "exact probability" not in out2.read_text()  # munich does not qualify


def test_exact_curve_ends_at_p_meeting() -> None:
    a = analyze(load_string(worked_example("worked.yaml")), curve_points=49)
    assert len(a.curve) == 49
    for h, p in a.curve:
        assert abs(p - (1 - math.exp(-h / 24))) < 1e-9


TIES = """
facts:
  flag: {type: bool, initial: false}
actors:
  a:
    name: A
    present:
      - {from: 2024-01-01 10:00, until: 2024-01-02 10:00}
protocol:
  states: [waiting, held]
  initial: waiting
  transitions:
    - {trigger: agree, source: waiting, dest: held}
  outcomes: {success: [held]}
actions:
  answer:
    actor: a
    guard: flag
    delay: {dist: exponential, mean: 5h}
    trigger: agree
events:
  look:
    at: 2024-01-01 10:00
    set: {flag: "in_window('w') and present('a')"}
"""


def test_ties_edges_and_arrivals_before_scheduled_events() -> None:
    # At 10:00 the window opens and A arrives, then the scheduled event looks:
    # it sees both, so the action runs from 10:00 to the horizon at 30 h.
    windows = "  windows:\n    w: {start: 2024-01-01 10:00, end: 2024-01-03 00:00}"
    a = analyze(load_string(scenario(TIES, horizon="30h", windows=windows)))
    assert abs(a.p_meeting - (1 - math.exp(-20 / 5))) < 1e-9


def test_an_empirical_delay_is_refused() -> None:
    text = scenario(COMPETING.replace("{dist: exponential, mean: 10h}",
                                      "{dist: empirical, values: [1h, 2h]}"))  # fmt: skip
    with pytest.raises(NotAnalyzable, match="empirical delay"):
        analyze(load_string(text), phases=4)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["analyze", str(MUNICH)], "negosim analyze: needs the 'exact' extra"),
        (["check-engines", str(MUNICH)], "negosim check-engines: needs the 'exact' extra"),
        (["compare", str(MUNICH), "--exact"], "negosim compare: --exact needs the 'exact' extra"),
    ],
)
def test_missing_exact_extra_is_one_line(
    argv: list[str], line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)
    assert main(argv) == 2
    assert capsys.readouterr().err == line + ": pip install 'negosim[exact]'\n"
