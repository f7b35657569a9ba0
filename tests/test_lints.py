"""Lints (issue 10, point 4): valid files that probably do not say what their author meant.

Each lint is shown to fire on a small scenario that has the mistake and to stay
quiet once the mistake is fixed; ``negosim validate`` prints them as
``FILE:LINE:COL: path: warning: ...`` on stderr, exits 0 (2 with ``--strict``),
and ``negosim run`` prints them once and goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, base_scenario, with_ask_step

import negosim

WARNING = re.compile(r"^.+:\d+:\d+: [\w.]+: warning: .+$")

Loader = Callable[..., negosim.CompiledScenario]


def warnings_of(load_data: Loader, data: dict[str, Any]) -> list[str]:
    return [str(w) for w in load_data(data).warnings]


def paths_of(load_data: Loader, data: dict[str, Any]) -> list[str]:
    return [w.path for w in load_data(data).warnings]


def test_the_base_scenario_and_every_shipped_scenario_are_lint_clean(load_data: Loader) -> None:
    assert warnings_of(load_data, base_scenario()) == []
    for path in sorted(SCENARIOS.glob("*.yaml")):
        assert negosim.load(path).warnings == (), path.name


def test_an_actor_never_present_but_tested_with_present(load_data: Loader) -> None:
    data = base_scenario()
    data["actions"]["meet"]["guard"] = "present('a')"
    found = warnings_of(load_data, data)
    assert len(found) >= 1
    assert "actors.a: warning: actor 'a' is never present" in found[0]
    assert "actions.meet.guard" in found[0]
    data["actors"]["a"]["present"] = [{"from": "2024-01-01 00:00", "until": "2024-01-02 00:00"}]
    assert warnings_of(load_data, data) == []


def test_a_departure_that_can_exceed_the_stay(load_data: Loader) -> None:
    data = base_scenario()
    stay = {"from": "2024-01-01 00:00", "until": "2024-01-01 10:00"}
    data["actors"]["a"]["present"] = [
        {**stay, "departure": {"dist": "uniform", "low": "0h", "high": "20h"}}
    ]
    (w,) = load_data(data).warnings
    assert w.path == "actors.a.present.0.departure"
    # uniform 0-20 h against a 10 h stay: half the runs miss it
    assert (
        "the stay lasts 10h, and the early departure (up to 20h)" in w.message
        and "about 50.0% of runs" in w.message
    )
    data["actors"]["a"]["present"][0]["departure"]["high"] = "8h"
    assert warnings_of(load_data, data) == []


def test_a_recurring_stay_is_warned_about_once_at_its_entry(load_data: Loader) -> None:
    # The first day's hours are over before the start (they give no stay); the
    # entry is the second of the actor's: the warning still points at it, once.
    data = base_scenario()  # 2024-01-01 00:00 + 48 h
    data["calendar"]["start"] = "2024-01-01 12:00"
    data["calendar"]["windows"] = {
        "hours": {"daily": "08:00-10:00", "start": "2024-01-01", "end": "2024-01-03"}
    }
    data["actors"]["a"]["present"] = [
        {"from": "2024-01-01 12:00", "until": "2024-01-01 13:00"},
        {"window": "hours", "departure": {"dist": "uniform", "low": "0h", "high": "4h"}},
    ]
    cs = load_data(data)
    assert [(s.entry, s.start) for s in cs.stays] == [(0, 0.0), (1, 20.0), (1, 44.0)]
    (w,) = cs.warnings
    assert w.path == "actors.a.present.1.departure" and "about 50.0% of runs" in w.message


def test_arrival_and_departure_together_can_swallow_the_stay(load_data: Loader) -> None:
    data = base_scenario()
    data["actors"]["a"]["present"] = [
        {
            "from": "2024-01-01 00:00",
            "until": "2024-01-01 10:00",
            "arrival": {"dist": "uniform", "low": "0h", "high": "6h"},
            "departure": {"dist": "uniform", "low": "0h", "high": "6h"},
        }
    ]
    (w,) = load_data(data).warnings
    # P(U1 + U2 >= 10) with U ~ U(0, 6): (2/6)^2 / 2 = 1/18 = 5.6%
    assert "about 5.6% of runs" in w.message, w.message


def test_declared_and_never_used(load_data: Loader) -> None:
    data = base_scenario()
    data["params"] = {"p_idle": {"default": 0.5, "assumption": "test"}}
    data["facts"] = {"idle": {"type": "bool", "initial": False}}
    data["calendar"]["windows"] = {"idle_window": {"start": "2024-01-01 09:00", "duration": "2h"}}
    assert sorted(paths_of(load_data, data)) == [
        "calendar.windows.idle_window", "facts.idle", "params.p_idle"
    ]  # fmt: skip
    # used in turn: as a quantity, in a guard, by a stay
    data["actions"]["meet"]["delay"] = {"dist": "exponential", "mean": "p_idle_h"}
    data["params"]["p_idle_h"] = data["params"].pop("p_idle") | {"default": "10h"}
    data["actions"]["meet"]["guard"] = "not idle"
    data["actors"]["a"]["present"] = [{"window": "idle_window"}]
    assert warnings_of(load_data, data) == []


def test_an_action_in_a_state_nothing_reaches(load_data: Loader) -> None:
    data = with_ask_step(base_scenario())
    data["actions"]["meet"]["from"] = "asked"
    # nothing triggers 'ask': 'meet' can never be enabled, 'held' never reached
    paths = paths_of(load_data, data)
    assert paths == ["protocol.outcomes.success.0", "actions.meet.from"]
    data["actions"]["ask"] = {
        "actor": "a", "from": "waiting", "delay": {"dist": "fixed", "value": "1h"},
        "trigger": "ask",
    }  # fmt: skip
    assert warnings_of(load_data, data) == []


def test_a_guard_on_a_fact_nothing_changes(load_data: Loader) -> None:
    data = base_scenario()
    data["facts"] = {"cleared": {"type": "bool", "initial": False}}
    data["actions"]["meet"]["guard"] = "cleared"
    found = load_data(data).warnings
    assert [w.path for w in found] == ["protocol.outcomes.success.0", "actions.meet.guard"]
    assert "it reads cleared, which never changes" in found[1].message
    data["events"] = {"clear": {"rate": 1.0, "set": {"cleared": True}}}
    assert warnings_of(load_data, data) == []


def test_a_precondition_that_can_never_hold(load_data: Loader) -> None:
    data = base_scenario()
    data["facts"] = {"asked": {"type": "bool", "initial": False}}
    data["preconditions"] = {"ask": {"text": "t", "insisted_by": "a", "holds": "asked"}}
    data["actions"]["meet"]["requires"] = ["ask"]
    paths = paths_of(load_data, data)
    assert "actions.meet.requires.0" in paths


def test_a_weight_that_can_go_negative_over_the_parameter_range(load_data: Loader) -> None:
    data = base_scenario()
    data["params"] = {
        "p": {"kind": "probability", "default": 0.3, "assumption": "t"},
        "boost": {"default": 1.5, "low": 1, "high": 3, "assumption": "t"},
    }
    data["actions"]["meet"]["options"] = {
        "yes": {"weight": "p * boost", "trigger": "meet"},
        "no": {"weight": "1 - p * boost", "trigger": "fail"},
    }
    del data["actions"]["meet"]["trigger"]
    (w,) = load_data(data).warnings
    assert w.path == "actions.meet.options.no.weight"
    assert "can be negative" in w.message and "boost = 3" in w.message
    data["actions"]["meet"]["options"]["no"]["weight"] = "max(0, 1 - p * boost)"
    assert warnings_of(load_data, data) == []


def test_a_weight_over_a_fact_range(load_data: Loader) -> None:
    data = base_scenario()
    data["facts"] = {"tension": {"type": "number", "initial": 5, "low": 0, "high": 10}}
    data["events"] = {"flare": {"rate": 1.0, "set": {"tension": "tension + 1"}}}
    data["actions"]["meet"]["options"] = {
        "yes": {"weight": "1", "trigger": "meet"},
        "no": {"weight": "8 - tension", "trigger": "fail"},
    }
    del data["actions"]["meet"]["trigger"]
    (w,) = load_data(data).warnings
    assert "-2 when tension = 10" in w.message


def test_windows_stays_and_events_outside_the_horizon(load_data: Loader) -> None:
    data = base_scenario()  # 2024-01-01 00:00 + 48 h
    data["calendar"]["windows"] = {"late": {"start": "2024-01-05 09:00", "duration": "2h"}}
    data["actors"]["a"]["present"] = [
        {"window": "late"}, {"from": "2023-12-01 00:00", "until": "2023-12-02 00:00"}
    ]  # fmt: skip
    data["facts"] = {"x": {"type": "bool", "initial": False}}
    data["actions"]["meet"]["guard"] = "not x"
    data["events"] = {"after": {"at": "2024-01-04 00:00", "set": {"x": True}}}
    assert paths_of(load_data, data) == [
        "calendar.windows.late", "actors.a.present.0", "actors.a.present.1", "events.after.at",
    ]  # fmt: skip


def test_warnings_name_the_set_that_caused_them(load_data: Loader) -> None:
    data = base_scenario()
    data["params"] = {"p": {"kind": "probability", "default": 0.3, "assumption": "t"}}
    data["actions"]["meet"]["options"] = {
        "yes": {"weight": "p", "trigger": "meet"},
        "no": {"weight": "0.5 - p", "trigger": "fail"},
    }
    del data["actions"]["meet"]["trigger"]
    (w,) = load_data(data).warnings  # p ranges over 0..1 as a probability
    assert "p = 1" in w.message


# --- the command line ------------------------------------------------------------------


def lint_file(write_scenario: Callable[..., Path]) -> Path:
    data = base_scenario()
    data["params"] = {"unused": {"default": 1, "assumption": "t"}}
    return write_scenario(data)


def test_validate_prints_warnings_on_stderr_and_exits_0(
    cli: Callable[..., Any], write_scenario: Callable[..., Path]
) -> None:
    path = lint_file(write_scenario)
    res = cli("validate", path)
    assert res.returncode == 0
    assert res.stdout.strip().endswith(": ok (1 warning)")
    (line,) = res.stderr.strip().splitlines()
    assert WARNING.match(line), line
    assert line.startswith(f"{path}:") and "params.unused: warning: parameter 'unused'" in line


def test_validate_strict_exits_2_on_warnings_only(
    cli: Callable[..., Any], write_scenario: Callable[..., Path]
) -> None:
    path = lint_file(write_scenario)
    assert cli("validate", "--strict", path).returncode == 2
    assert cli("validate", "--strict", SCENARIOS / "tutorial.yaml").returncode == 0


def test_run_prints_the_warnings_once_and_goes_on(
    cli: Callable[..., Any], write_scenario: Callable[..., Path]
) -> None:
    path = lint_file(write_scenario)
    res = cli("run", path, "--runs", "200", "--format", "json")
    assert res.returncode == 0
    assert res.stderr.count("warning: parameter 'unused'") == 1
    assert '"p_meeting"' in res.stdout


@pytest.mark.parametrize("name", ["munich.yaml", "dmz-2019.yaml"])
def test_validate_strict_passes_every_shipped_scenario(cli: Callable[..., Any], name: str) -> None:
    assert cli("validate", "--strict", SCENARIOS / name).returncode == 0
