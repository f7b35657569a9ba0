"""Properties that hold for every seed, parameter value and input file (hypothesis)."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import base_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import negosim
from negosim import InputError

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def rich_scenario() -> dict[str, Any]:
    """Three days in Vienna across a window, options, a precondition, an event."""
    data = base_scenario()
    data["calendar"].update(timezone="Europe/Vienna", start="2024-03-29 20:00", horizon="3d")
    data["calendar"]["windows"] = {"conf": {"start": "2024-03-30 09:00", "duration": "30h"}}
    data["params"] = {
        "p_yes": {"kind": "probability", "default": 0.7, "assumption": "test"},
        "reply": {"default": "8h", "low": "1h", "high": "2d", "assumption": "test"},
        "shock_rate": {"kind": "rate", "default": 0.5, "high": 5, "assumption": "test"},
    }
    data["facts"] = {
        "asked": {"type": "bool", "initial": False},
        "tension": {"type": "number", "initial": 0.2, "low": 0, "high": 1},
    }
    data["actors"]["b"] = {
        "name": "B",
        "present": [
            {
                "window": "conf",
                "arrival": {"dist": "triangular", "min": "0h", "mode": "2h", "max": "6h"},
            }
        ],
    }
    data["preconditions"] = {
        "asked": {"text": "A asks first", "insisted_by": "b", "holds": "asked"}
    }
    data["events"] = {
        "ask": {
            "at": "2024-03-30 10:00",
            "jitter": {"dist": "uniform", "low": "-4h", "high": "20h"},
            "set": {"asked": True},
        },
        "shock": {"rate": "shock_rate", "set": {"tension": "tension + 0.3"}},
    }
    meet = data["actions"]["meet"]
    del meet["trigger"]
    meet.update(
        actor="b",
        requires=["asked"],
        guard="present('b')",
        delay={"dist": "lognormal", "median": "reply", "p90": "3d"},
    )
    meet["options"] = {
        "yes": {"weight": "p_yes * (1 - tension)", "trigger": "meet"},
        "no": {"weight": "1 - p_yes * (1 - tension)", "trigger": "fail"},
    }
    return data


@pytest.fixture(scope="module")
def rich_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("props") / "rich.yaml"
    path.write_text(yaml.safe_dump(rich_scenario(), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def rich(rich_path: Path) -> negosim.CompiledScenario:
    return negosim.load(rich_path)


def check_estimate(est: negosim.Estimate) -> None:
    j = est.to_json()
    n = j["runs"]
    probs = [
        j["p_meeting"],
        *j["ci95"],
        *j["by_day"].values(),
        *(v for part in j["by_part_of_day"].values() for v in part.values()),
        *(d["p"] for d in j["held_by_end_of_day"].values()),
        *(x for d in j["held_by_end_of_day"].values() for x in d["ci95"]),
    ]
    assert all(0.0 <= p <= 1.0 and math.isfinite(p) for p in probs), probs
    low, high = j["ci95"]
    assert low <= j["p_meeting"] <= high
    assert abs(sum(j["by_day"].values()) - j["p_meeting"]) < 1e-9
    for day, parts in j["by_part_of_day"].items():
        assert abs(sum(parts.values()) - j["by_day"][day]) < 1e-9
    cumulative = [d["p"] for d in j["held_by_end_of_day"].values()]
    assert cumulative == sorted(cumulative)
    assert list(j["held_by_end_of_day"]) == list(j["by_day"])
    assert abs(cumulative[-1] - j["p_meeting"]) < 1e-9
    assert sum(j["outcomes"].values()) == n
    assert j["outcomes"]["censored"] >= 0
    assert sum(p["runs"] for p in j["paths"]) <= n
    failed = n - est.held
    assert all(0 <= count <= failed for count in j["blocking"].values())
    assert j["mean_events_per_run"] >= 1


@SETTINGS
@given(seed=st.integers(min_value=0, max_value=2**63))
def test_same_seed_same_estimate(rich, seed):
    a = negosim.simulate(rich, runs=60, seed=seed).to_json()
    b = negosim.simulate(rich, runs=60, seed=seed).to_json()
    assert a.pop("elapsed_s") >= 0 and b.pop("elapsed_s") >= 0
    assert a == b
    assert a["seed"] == seed


@SETTINGS
@given(seed=st.integers(min_value=0, max_value=2**32), runs=st.integers(1, 120))
def test_estimates_are_consistent(rich, seed, runs):
    check_estimate(negosim.simulate(rich, runs=runs, seed=seed))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    p_yes=st.floats(0, 1), reply=st.floats(1, 48), rate=st.floats(0, 5), seed=st.integers(0, 1000)
)
def test_parameters_within_range_give_valid_results(rich_path, p_yes, reply, rate, seed):
    sets = [("p_yes", p_yes), ("reply", f"{reply}h"), ("shock_rate", rate)]
    cs = negosim.load(rich_path, sets)
    assert cs.params["p_yes"] == p_yes and cs.params["reply"] == pytest.approx(reply)
    est = negosim.simulate(cs, runs=40, seed=seed)
    check_estimate(est)
    if p_yes == 0:
        assert est.held == 0


@SETTINGS
@given(
    p_yes=st.one_of(
        st.floats(max_value=-1e-9, allow_nan=False),
        st.floats(min_value=1 + 1e-9, allow_infinity=False),
    )
)
def test_out_of_range_parameters_are_input_errors(rich_path, p_yes):
    """One line, at the keyword that gave the value (also for an infinite one, which is
    not a finite number: the weights that use it are not reported as unknown names)."""
    with pytest.raises(negosim.ScenarioError) as info:
        negosim.load(rich_path, {"p_yes": p_yes})
    (line,) = str(info.value).splitlines()
    assert re.match(
        r"set=\{'p_yes': [^}]+\}: params\.p_yes\.default: (must be a probability \(0 to 1\)|"
        r"expected a finite number)",
        line,
    ), line


# --- arbitrary input files never crash the loader ------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "2h",
            "-1d",
            "0h",
            "1.5",
            "a",
            "held",
            "waiting",
            "meet",
            "in_window('w')",
            "present('a')",
            "x ==",
            "2024-01-01",
            "exponential",
            "fixed",
            "Europe/Berlin",
            "",
        ]
    ),
)
keys = st.one_of(
    st.text(min_size=1, max_size=10),
    st.sampled_from(
        [
            "id",
            "title",
            "calendar",
            "actors",
            "protocol",
            "actions",
            "params",
            "facts",
            "events",
            "dist",
            "mean",
            "from",
            "guard",
            "states",
            "initial",
            "transitions",
            "outcomes",
            "default",
        ]
    ),
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


def load_never_crashes(path: Path) -> None:
    try:
        negosim.load(path)
    except InputError as exc:
        assert exc.problems
        for p in exc.problems:
            assert str(p).startswith(f"{path}:"), p
            assert p.message


@SETTINGS
@given(text=st.text(max_size=300))
def test_load_on_arbitrary_text(tmp_path, text):
    path = tmp_path / "any.yaml"
    path.write_text(text, encoding="utf-8")
    load_never_crashes(path)


@SETTINGS
@given(tree=trees)
def test_load_on_arbitrary_yaml_structures(tmp_path, tree):
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    load_never_crashes(path)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


RICH_PATHS = _paths(rich_scenario())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.sampled_from(RICH_PATHS), value=trees, delete=st.booleans())
def test_load_on_mutated_scenarios(tmp_path, where, value, delete):
    """Replace (or delete) one value of a valid scenario: load is fine or says what is wrong."""
    data = copy.deepcopy(rich_scenario())
    node = data
    for part in where[:-1]:
        node = node[part]
    if delete and isinstance(node, dict):
        del node[where[-1]]
    else:
        node[where[-1]] = value
    path = tmp_path / "mutated.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        cs = negosim.load(path)
    except InputError as exc:
        assert exc.problems and all(str(p).startswith(f"{path}:") for p in exc.problems)
        return
    try:
        est = negosim.simulate(cs, runs=20, seed=0)
    except negosim.SimulationError as exc:  # a defect only visible at run time
        assert exc.message
        return
    check_estimate(est)
