"""The blocking report, honestly (issue 10, point 6).

A precondition that stood when a run ended without the meeting is split by why:
an action that could meet it had been taken ("refused"), none had been taken by
the horizon ("undecided"), or another path ended the talks first
("overtaken"). Preconditions are judged on the facts as they were when the
final instant began, so two decisions due at the same instant count the same
whichever is declared first: the test below swaps them and compares, run by run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from conftest import assert_close_binomial, base_scenario

import negosim
from negosim.engine import simulation
from negosim.runs.results import WHY, Tally

RUNS = 20_000


def delhi(swap: bool = False, p_a: float = 0.5, p_b: float = 0.6) -> dict[str, Any]:
    """Two zero-delay decisions at the start: A agrees (or not); B agrees or ends the talks.

    The meeting requires both agreements. P(held) = p_a p_b; P(failed) = 1 - p_b
    (B declines); P(censored) = p_b (1 - p_a) (A said no, nothing else can happen).
    """
    data = base_scenario()
    data["actors"]["b"] = {"name": "Minister B"}
    data["params"] = {
        "p_a": {"kind": "probability", "default": p_a, "assumption": "t"},
        "p_b": {"kind": "probability", "default": p_b, "assumption": "t"},
    }
    data["facts"] = {k: {"type": "bool", "initial": False} for k in ("a_ok", "a_said", "b_ok")}
    data["preconditions"] = {
        "a_agrees": {"text": "A must agree", "insisted_by": "b", "holds": "a_ok"},
        "b_agrees": {"text": "B must agree", "insisted_by": "a", "holds": "b_ok"},
    }
    now = {"dist": "fixed", "value": "0h"}
    a_decides = {
        "actor": "a", "from": "waiting", "guard": "not a_said", "delay": now,
        "options": {
            "yes": {"weight": "p_a", "set": {"a_ok": True, "a_said": True}},
            "no": {"weight": "1 - p_a", "set": {"a_said": True}},
        },
    }  # fmt: skip
    b_decides = {
        "actor": "b", "from": "waiting", "guard": "not b_ok", "delay": now,
        "options": {
            "accept": {"weight": "p_b", "set": {"b_ok": True}},
            "decline": {"weight": "1 - p_b", "trigger": "fail"},
        },
    }  # fmt: skip
    meet = data["actions"]["meet"] | {
        "requires": ["a_agrees", "b_agrees"],
        "delay": {"dist": "fixed", "value": "1h"},
    }
    decisions = [("a_decides", a_decides), ("b_decides", b_decides)]
    if swap:
        decisions.reverse()
    data["actions"] = dict(decisions) | {"meet": meet}
    return data


def load(data: dict[str, Any]) -> negosim.CompiledScenario:
    return negosim.load_string(yaml.safe_dump(data, sort_keys=False))


def test_the_reasons_are_the_engine_codes() -> None:
    codes = (simulation.REFUSED, simulation.UNDECIDED, simulation.OVERTAKEN)
    assert [WHY[c] for c in codes] == ["refused", "undecided", "overtaken"]


def test_counts_do_not_depend_on_the_order_actions_are_declared() -> None:
    first = negosim.simulate(load(delhi()), runs=RUNS, seed=3)
    swapped = negosim.simulate(load(delhi(swap=True)), runs=RUNS, seed=3)
    # Streams are keyed by action name: the same draws, whatever the order.
    assert first.outcomes == swapped.outcomes
    assert first.blocking == swapped.blocking
    assert first.blocking_why == swapped.blocking_why


def test_the_same_holds_run_by_run() -> None:
    a = negosim.simulate(load(delhi()), runs=2_000, seed=5, keep_rows=True)
    b = negosim.simulate(load(delhi(swap=True)), runs=2_000, seed=5, keep_rows=True)
    assert a.rows is not None and b.rows is not None
    assert [r["blocking"] for r in a.rows] == [r["blocking"] for r in b.rows]


def test_the_split_agrees_with_the_closed_form() -> None:
    p_a, p_b = 0.5, 0.6
    est = negosim.simulate(load(delhi(p_a=p_a, p_b=p_b)), runs=RUNS, seed=11)
    why = est.blocking_why
    # B declines (1 - p_b): A's answer at that same instant does not count, so A's
    # condition was overtaken and B's refused (B's own decision ended the talks).
    assert why["a_agrees"]["overtaken"] == est.outcomes["failed"]
    assert why["b_agrees"]["refused"] == est.outcomes["failed"]
    assert_close_binomial(why["a_agrees"]["overtaken"] / RUNS, 1 - p_b, RUNS, "overtaken")
    # A said no, B yes: nothing more can happen; at the horizon A had refused.
    assert why["a_agrees"]["refused"] == est.outcomes["censored"]
    assert_close_binomial(why["a_agrees"]["refused"] / RUNS, p_b * (1 - p_a), RUNS, "refused")
    assert why["b_agrees"]["overtaken"] == why["b_agrees"]["undecided"] == 0
    for pid, n in est.blocking.items():
        assert sum(why[pid].values()) == n


def test_a_decision_that_never_comes_before_the_horizon() -> None:
    data = delhi()
    data["actions"]["a_decides"]["delay"] = {"dist": "fixed", "value": "100h"}  # horizon 48h
    data["actions"]["b_decides"]["options"]["decline"]["weight"] = "0"
    est = negosim.simulate(load(data), runs=500, seed=1)
    assert est.outcomes["censored"] == 500
    assert est.blocking_why["a_agrees"] == {"refused": 0, "undecided": 500, "overtaken": 0}


def test_the_reasons_are_in_the_json_the_table_and_the_trace(
    cli: Callable[..., Any], write_scenario: Callable[..., Any]
) -> None:
    path = write_scenario(delhi())
    res = cli("run", path, "--runs", "500", "--format", "json")
    assert res.returncode == 0
    out = __import__("json").loads(res.stdout)
    assert set(out["blocking_why"]["a_agrees"]) == set(WHY)
    table = cli("run", path, "--runs", "500").stdout
    assert "not decided by the horizon" in table and "talks ended first" in table
    lines = [cli("trace", path, "--seed", "0", "--run", str(i)).stdout for i in range(12)]
    assert any("a_agrees (talks ended first)" in t for t in lines)


@pytest.mark.parametrize("name", ["munich.yaml", "antalya-2022.yaml"])
def test_the_split_adds_up_on_shipped_scenarios(name: str) -> None:
    from conftest import SCENARIOS

    est = negosim.simulate(negosim.load(SCENARIOS / name), runs=2_000, seed=2)
    for pid, n in est.blocking.items():
        assert sum(est.blocking_why[pid].values()) == n


def test_tallies_merge_the_reasons() -> None:
    cs = load(delhi())
    engine = simulation.Engine(cs)
    one, two, both = Tally(), Tally(), Tally()
    for i in range(200):
        row = engine.run(7, i)
        (one if i % 2 else two).add(row)
        both.add(row)
    assert one.merge(two).blocking_why == both.blocking_why
