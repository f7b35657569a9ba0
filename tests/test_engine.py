"""Engine semantics: ordering of simultaneous firings, effects, loops, blocking."""

from __future__ import annotations

from typing import Any

import pytest
import transitions
import yaml
from conftest import base_scenario

import negosim
from negosim import Engine, SimulationError
from negosim.runs.runner import trace as engine_trace  # (row, timeline lines)


def fixed(hours: float) -> dict[str, Any]:
    return {"dist": "fixed", "value": f"{hours:g}h"}


def one_row(cs: negosim.CompiledScenario, seed: int = 0) -> negosim.Row:
    return next(iter(negosim.rows(cs, 1, seed)))


def fact_changes(lines: list[Any]) -> dict[str, tuple[Any, Any]]:
    """The trace's ``fact`` lines (``name: old → new``) as {name: (old, new)}."""
    out = {}
    for line in lines:
        if line.kind == "fact":
            name, _, change = line.text.partition(": ")
            old, new = change.split(" → ")
            out[name] = (yaml.safe_load(old), yaml.safe_load(new))
    return out


def outcomes_of(cs: negosim.CompiledScenario, runs: int = 20) -> set[str]:
    return {r.outcome for r in negosim.rows(cs, runs, seed=1)}


# --- simultaneous firings ------------------------------------------------------------


@pytest.mark.parametrize("first", ["refuse", "meet"])
def test_simultaneous_clocks_fire_in_declaration_order(load_data, first):
    data = base_scenario()
    actions = {
        "meet": {"actor": "a", "from": "waiting", "delay": fixed(2), "trigger": "meet"},
        "refuse": {"actor": "a", "from": "waiting", "delay": fixed(2), "trigger": "fail"},
    }
    order = [first, *(k for k in actions if k != first)]
    data["actions"] = {k: actions[k] for k in order}
    expected = "held" if first == "meet" else "failed"
    assert outcomes_of(load_data(data)) == {expected}


def test_horizon_comes_before_a_clock_due_at_the_same_instant(load_data):
    data = base_scenario()
    data["calendar"]["horizon"] = "2h"
    data["actions"]["meet"]["delay"] = fixed(2)
    rows = list(negosim.rows(load_data(data), 10, seed=0))
    assert {(r.outcome, r.held, r.time) for r in rows} == {("censored", False, None)}
    data["calendar"]["horizon"] = "2h 1min"
    assert outcomes_of(load_data(data)) == {"held"}


def test_scheduled_event_comes_before_a_clock_due_at_the_same_instant(load_data):
    data = base_scenario()
    data["facts"] = {"blocked": {"type": "bool", "initial": False}}
    data["events"] = {"shock": {"at": "2024-01-01 02:00", "set": {"blocked": True}}}
    data["actions"]["meet"].update(delay=fixed(2), guard="not blocked")
    assert outcomes_of(load_data(data)) == {"censored"}
    # one minute later, the meeting happens first
    data["events"]["shock"]["at"] = "2024-01-01 02:01"
    assert outcomes_of(load_data(data)) == {"held"}


def test_scheduled_event_trigger_wins_a_tie(load_data):
    data = base_scenario()
    data["events"] = {"collapse": {"at": "3h", "trigger": "fail"}}
    data["actions"]["meet"]["delay"] = fixed(3)
    rows = list(negosim.rows(load_data(data), 5, seed=0))
    assert {(r.outcome, r.time) for r in rows} == {("failed", 3.0)}


def test_window_edge_comes_before_a_clock(load_data):
    data = base_scenario()
    data["calendar"]["windows"] = {"w": {"start": "0h", "end": "5h"}}
    data["actions"]["meet"].update(delay=fixed(5), guard="in_window('w')")
    assert outcomes_of(load_data(data)) == {"censored"}


def test_window_opening_enables_a_zero_delay_action_at_once(load_data):
    data = base_scenario()
    data["calendar"]["windows"] = {"w": {"start": "7h", "duration": "1h"}}
    data["actions"]["meet"].update(delay=fixed(0), guard="in_window('w')")
    rows = list(negosim.rows(load_data(data), 5, seed=0))
    assert {(r.outcome, r.time) for r in rows} == {("held", 7.0)}


# --- effects -----------------------------------------------------------------------------


def _two_step(data: dict[str, Any], first: dict[str, Any], check: str) -> dict[str, Any]:
    """waiting --first--> ready; then held if ``check`` is true, failed otherwise."""
    data["protocol"]["states"] = ["waiting", "ready", "held", "failed"]
    data["protocol"]["transitions"] = [
        {"trigger": "step", "source": "waiting", "dest": "ready"},
        {"trigger": "meet", "source": "ready", "dest": "held"},
        {"trigger": "fail", "source": "ready", "dest": "failed"},
    ]
    data["actions"] = {
        "first": {"actor": "a", "from": "waiting", "delay": fixed(1), "trigger": "step", **first},
        "ok": {"actor": "a", "from": "ready", "guard": check, "delay": fixed(1), "trigger": "meet"},
        "bad": {
            "actor": "a",
            "from": "ready",
            "guard": f"not ({check})",
            "delay": fixed(1),
            "trigger": "fail",
        },
    }
    return data


def test_set_reads_all_right_hand_sides_before_writing(load_data):
    data = base_scenario()
    data["facts"] = {
        "x": {"type": "number", "initial": 1},
        "y": {"type": "number", "initial": 2},
        "p": {"type": "bool", "initial": True},
        "q": {"type": "bool", "initial": False},
    }
    _two_step(
        data, {"set": {"x": "y", "y": "x", "p": "q", "q": "p"}}, "x == 2 and y == 1 and q and not p"
    )
    cs = load_data(data)
    assert outcomes_of(cs) == {"held"}
    _, lines = engine_trace(cs, seed=0)
    assert fact_changes(lines) == {"x": (1, 2), "y": (2, 1), "p": (True, False), "q": (False, True)}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("tension + 5", 1.0), ("tension - 5", -1.0), ("tension * 0 + 0.25", 0.25)],
)
def test_numeric_facts_are_clamped(load_data, expr, expected):
    data = base_scenario()
    data["facts"] = {"tension": {"type": "number", "initial": 0.5, "low": -1, "high": 1}}
    _two_step(data, {"set": {"tension": expr}}, f"tension == {expected}")
    cs = load_data(data)
    assert outcomes_of(cs) == {"held"}
    _, lines = engine_trace(cs, seed=0)
    assert fact_changes(lines) == {"tension": (0.5, expected)}


def test_enum_fact_set_and_compared(load_data):
    data = base_scenario()
    data["facts"] = {"stance": {"type": "enum", "values": ["cold", "warm"], "initial": "cold"}}
    _two_step(data, {"set": {"stance": "warm"}}, "stance == 'warm'")
    assert outcomes_of(load_data(data)) == {"held"}


# --- traces ---------------------------------------------------------------------------------


def test_trace_lines_for_a_known_seed(load_data):
    data = base_scenario()
    data["calendar"]["windows"] = {"conf": {"start": "2h", "end": "30h"}}
    data["actors"]["b"] = {
        "name": "Minister B",
        "present": [{"window": "conf", "arrival": {"dist": "uniform", "low": "1h", "high": "2h"}}],
    }
    data["facts"] = {"asked": {"type": "bool", "initial": False}}
    data["events"] = {"request": {"at": "1h", "set": {"asked": True}, "text": "A asks"}}
    data["actions"]["meet"].update(guard="asked and present('b')", delay=fixed(1))
    cs = load_data(data)
    row, lines = engine_trace(cs, seed=42)
    assert row.held and row.outcome == "held"
    kinds = [line.kind for line in lines]
    for kind in ("event", "fact", "window", "arrive", "enable", "fire", "state", "end"):
        assert kind in kinds, (kind, kinds)
    times = [line.time for line in lines]
    assert times == sorted(times)
    arrive = next(line for line in lines if line.kind == "arrive")
    assert 3.0 <= arrive.time <= 4.0 and arrive.actor == "b"
    fire = next(line for line in lines if line.kind == "fire")
    assert fire.time == pytest.approx(arrive.time + 1.0) == pytest.approx(row.time)
    assert lines[-1].kind == "end" and "held" in lines[-1].text
    # the same seed gives the same timeline; the trace is replication 0 of `rows`
    again = engine_trace(cs, seed=42)[1]
    assert [(x.time, x.kind, x.text) for x in again] == [(x.time, x.kind, x.text) for x in lines]
    assert one_row(cs, seed=42).time == row.time


def test_trace_of_a_censored_run_ends_at_the_horizon(load_data):
    data = base_scenario()
    data["actions"]["meet"]["delay"] = fixed(100)
    row, lines = engine_trace(load_data(data), seed=0)
    assert row.outcome == "censored" and row.time is None
    assert lines[-1].kind == "end" and lines[-1].time == 48.0
    assert "censored" in lines[-1].text


# --- run-time errors ------------------------------------------------------------------------


def test_zero_time_loop_is_reported_with_both_actions(load_data):
    data = base_scenario()
    data["settings"] = {"max_events": 500}
    data["facts"] = {"flag": {"type": "bool", "initial": False}}
    data["actions"] = {
        "ping": {
            "actor": "a",
            "from": "waiting",
            "guard": "not flag",
            "delay": fixed(0),
            "set": {"flag": True},
        },
        "pong": {
            "actor": "a",
            "from": "waiting",
            "guard": "flag",
            "delay": fixed(0),
            "set": {"flag": False},
        },
        "meet": {"actor": "a", "from": "waiting", "delay": fixed(1), "trigger": "meet"},
    }
    cs = load_data(data)
    with pytest.raises(SimulationError, match=r"without time passing") as info:
        negosim.simulate(cs, runs=3, seed=0)
    message = info.value.message
    assert "ping" in message and "pong" in message
    assert "500 events" in message
    assert info.value.loc in {("actions", "ping"), ("actions", "pong")}


def test_event_cap_without_a_zero_time_loop_says_so(load_data):
    data = base_scenario()
    data["settings"] = {"max_events": 50}
    data["facts"] = {"n": {"type": "number", "initial": 0}}
    data["actions"]["tick"] = {
        "actor": "a",
        "from": "waiting",
        "delay": fixed(0.1),
        "set": {"n": "n + 1"},
    }
    data["actions"]["meet"]["delay"] = fixed(40)
    with pytest.raises(SimulationError, match=r"settings\.max_events.*tick"):
        negosim.simulate(load_data(data), runs=1, seed=0)


def _weighted(load_data, yes: str | float, no: str | float) -> negosim.CompiledScenario:
    data = base_scenario()
    data["params"] = {"w": {"default": 1, "assumption": "test"}}
    meet = data["actions"]["meet"]
    del meet["trigger"]
    meet["delay"] = fixed(1)
    meet["options"] = {
        "yes": {"weight": yes, "trigger": "meet"},
        "no": {"weight": no, "trigger": "fail"},
    }
    return load_data(data)


def test_negative_option_weight_raises(load_data):
    cs = _weighted(load_data, "w - 5", 1)
    with pytest.raises(
        SimulationError,
        match=r"option 'yes' of 'meet' has a negative weight "
        r"\(-4\)",
    ) as info:
        negosim.simulate(cs, runs=2, seed=0)
    assert info.value.loc == ("actions", "meet", "options", "yes", "weight")


def test_all_zero_weights_raise(load_data):
    cs = _weighted(load_data, "0 * w", 0)
    with pytest.raises(SimulationError, match=r"every option of 'meet' has weight 0"):
        negosim.simulate(cs, runs=2, seed=0)


def test_literal_negative_weight_is_a_load_error(load_data):
    with pytest.raises(negosim.ScenarioError, match=r"weight cannot be negative"):
        _weighted(load_data, -1, 1)


# --- machines are built once ------------------------------------------------------------------


def test_machine_is_shared_and_not_rebuilt(load_data, monkeypatch):
    cs = load_data(base_scenario())
    e1, e2 = Engine(cs), Engine(cs)
    assert e1.cs.machine is cs.machine and e2.cs.machine is cs.machine
    built: list[object] = []
    original = transitions.Machine.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(transitions.Machine, "__init__", counting)
    est = negosim.simulate(cs, runs=300, seed=0)
    assert est.runs == 300
    assert built == []
    # the counter works: compiling a scenario does build one machine
    load_data(base_scenario())
    assert len(built) == 1


def test_engine_reuse_gives_identical_rows(load_data):
    cs = load_data(base_scenario())
    engine = Engine(cs)
    first = [engine.run(7, i) for i in range(50)]
    again = [Engine(cs).run(7, i) for i in range(50)]
    assert first == again
    assert len({r.time for r in first}) > 10  # the replications differ among themselves


# --- blocking preconditions -------------------------------------------------------------------


def _formal(data: dict[str, Any], request_at: str | None, give_up: float) -> dict[str, Any]:
    data["actors"]["b"] = {"name": "Minister B"}
    data["facts"] = {
        "formal_request": {"type": "bool", "initial": False},
        "tired": {"type": "bool", "initial": False},
    }
    data["preconditions"] = {
        "formal": {
            "text": "A must request the meeting formally",
            "insisted_by": "b",
            "holds": "formal_request",
        },
        "rested": {"text": "B must not be tired", "insisted_by": "b", "holds": "not tired"},
    }
    data["actions"]["meet"].update(actor="b", requires=["formal", "rested"], delay=fixed(1))
    data["actions"]["give_up"] = {
        "actor": "a",
        "from": "waiting",
        "delay": fixed(give_up),
        "trigger": "fail",
    }
    if request_at is not None:
        data["events"] = {"request": {"at": request_at, "set": {"formal_request": True}}}
    return data


def test_failed_run_reports_the_blocking_precondition(load_data):
    cs = load_data(_formal(base_scenario(), None, 10))
    rows = list(negosim.rows(cs, 5, seed=0))
    assert {(r.outcome, r.blocking) for r in rows} == {("failed", (0,))}
    est = negosim.simulate(cs, runs=40, seed=0)
    assert est.blocking == {"formal": 40, "rested": 0}
    assert "Minister B" in est.blocking_text["formal"]


def test_censored_run_reports_the_blocking_precondition(load_data):
    cs = load_data(_formal(base_scenario(), None, 100))
    est = negosim.simulate(cs, runs=40, seed=0)
    assert est.outcomes["censored"] == 40
    assert est.blocking == {"formal": 40, "rested": 0}


def test_held_run_reports_no_blocking(load_data):
    cs = load_data(_formal(base_scenario(), "2h", 10))
    rows = list(negosim.rows(cs, 5, seed=0))
    assert {(r.outcome, r.time, r.blocking) for r in rows} == {("held", 3.0, ())}
    est = negosim.simulate(cs, runs=40, seed=0)
    assert est.blocking == {"formal": 0, "rested": 0}
    assert est.p_meeting == 1.0


def test_non_finite_weight_raises(load_data):
    cs = _weighted(load_data, "w * 1e999", 1)  # inf
    with pytest.raises(SimulationError, match=r"option 'yes' of 'meet' has weight inf.*finite"):
        negosim.simulate(cs, runs=2, seed=0)
    cs = _weighted(load_data, "w * 1e999 - w * 1e999", 1)  # nan
    with pytest.raises(SimulationError, match=r"has weight nan"):
        negosim.simulate(cs, runs=2, seed=0)


def test_trace_with_a_vanishing_rate(load_data):
    """A random event whose mean delay overflows to infinity is never due; tracing says so."""
    data = base_scenario()
    data["events"] = {"rare": {"rate": 1e-310, "text": "rare"}}
    row, lines = engine_trace(load_data(data), seed=0)
    assert row.outcome in {"held", "censored"}
    assert any(line.kind == "enable" and "∞" in line.text for line in lines)
    assert not any(line.kind == "fire" and line.text == "rare" for line in lines)


def test_touching_windows_leave_no_gap(load_data):
    """At 5h one window closes as the next opens: openings come first, the clock survives."""
    data = base_scenario()
    data["calendar"]["windows"] = {
        "w1": {"start": "0h", "end": "5h"},
        "w2": {"start": "5h", "end": "10h"},
    }
    data["actors"]["a"]["available"] = ["w1", "w2"]
    data["actions"]["meet"]["delay"] = fixed(7)
    rows = list(negosim.rows(load_data(data), 3, seed=0))
    assert {(r.outcome, r.time) for r in rows} == {("held", 7.0)}
    # with a one-minute gap the clock is cancelled at 5h and restarts at 5h01: too late
    data["calendar"]["windows"]["w2"]["start"] = "5h 1min"
    assert outcomes_of(load_data(data)) == {"censored"}
