"""Every shipped scenario (scenarios/*.yaml, globbed at collection) loads, validates and runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS

import negosim
from negosim.runs.runner import trace as engine_trace  # (row, timeline lines)
from negosim.scenario.yamlsource import load_scenario_file

FILES = sorted(SCENARIOS.glob("*.yaml"))
RUNS = 300


def test_there_are_scenarios():
    assert any(p.name == "tutorial.yaml" for p in FILES), FILES


@pytest.fixture(params=FILES, ids=[p.name for p in FILES])
def scenario_file(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_loads(scenario_file):
    cs = negosim.load(scenario_file)
    assert cs.id and cs.horizon > 0 and cs.clocks
    assert negosim.validate(scenario_file) == []


def test_every_parameter_has_provenance(scenario_file):
    cs = negosim.load(scenario_file)
    for name, p in cs.model.params.items():
        assert (p.source or "").strip() or (p.assumption or "").strip(), name


def test_validates_via_the_cli(cli, scenario_file):
    proc = cli("validate", scenario_file)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{scenario_file}: ok"


def test_runs(scenario_file):
    cs = negosim.load(scenario_file)
    est = negosim.simulate(cs, runs=RUNS, seed=2023)
    j = est.to_json()
    json.dumps(j)  # plain data
    assert j["runs"] == RUNS
    assert sum(j["outcomes"].values()) == RUNS
    probs = [
        j["p_meeting"],
        *j["ci95"],
        *j["by_day"].values(),
        *(d["p"] for d in j["held_by_end_of_day"].values()),
    ]
    assert all(0.0 <= p <= 1.0 for p in probs)
    low, high = j["ci95"]
    assert low <= j["p_meeting"] <= high
    assert sum(j["by_day"].values()) == pytest.approx(j["p_meeting"], abs=1e-9)
    assert set(j["blocking"]) == set(cs.preconditions)
    assert j["mean_events_per_run"] > 0
    # a trace of the first replication agrees with the run's first row
    row, lines = engine_trace(cs, seed=2023)
    assert lines and row == next(iter(negosim.rows(cs, 1, seed=2023)))


# --- the shipped protocol bases (issue 10) ---------------------------------------------

PROTOCOL_BASES = ("sidelines.yaml", "sidelines-call-off.yaml")
STANDS_ALONE = {"tutorial.yaml"}  # docs/tutorial.md reads it as one file, and builds on it


def _shape(protocol: dict[str, Any]) -> tuple[Any, ...]:
    """A protocol without its names and descriptions: states numbered in the order they
    are declared, triggers in the order they first appear (so a copy with renamed states
    has the same shape)."""
    state = {s: i for i, s in enumerate(protocol["states"])}
    trigger: dict[str, int] = {}
    transitions = []
    for t in protocol["transitions"]:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        k = trigger.setdefault(t["trigger"], len(trigger))
        transitions.append((k, tuple(state[s] for s in sources), state[t["dest"]]))
    outcomes = tuple((k, tuple(state[s] for s in v)) for k, v in protocol["outcomes"].items())
    return (len(state), state[protocol["initial"]], tuple(transitions), outcomes)


def test_the_call_off_base_is_the_sidelines_base_plus_call_off():
    plain = load_scenario_file(SCENARIOS / "bases" / "sidelines.yaml").data["protocol"]
    call_off = load_scenario_file(SCENARIOS / "bases" / "sidelines-call-off.yaml").data["protocol"]
    assert call_off["states"].keys() == plain["states"].keys()
    assert (call_off["initial"], call_off["outcomes"]) == (plain["initial"], plain["outcomes"])
    added = [t for t in call_off["transitions"] if t not in plain["transitions"]]
    assert added == [
        {"trigger": "call_off", "source": ["requested", "accepted"], "dest": "declined"}
    ]
    assert [t for t in call_off["transitions"] if t in plain["transitions"]] == plain["transitions"]


def test_a_case_with_a_base_protocol_extends_that_base():
    """A library case whose protocol is a shipped base's (whatever its descriptions)
    says so with `extends:` rather than repeating it (under other names), so that the
    copies cannot drift."""
    shapes = {
        _shape(load_scenario_file(SCENARIOS / "bases" / name).data["protocol"]): name
        for name in PROTOCOL_BASES
    }
    users: dict[str, list[str]] = {name: [] for name in PROTOCOL_BASES}
    for path in FILES:
        doc = load_scenario_file(path)
        base = shapes.get(_shape(doc.data["protocol"]))
        if base is None or path.name in STANDS_ALONE:
            continue
        direct = Path(doc.bases[0]).resolve() if doc.bases else None
        assert direct == (SCENARIOS / "bases" / base).resolve(), (
            f"{path.name} repeats the protocol of bases/{base}: extend it"
        )
        users[base].append(path.stem)
    assert users == {
        "sidelines.yaml": ["kazan-2024", "osaka-2019-moon-abe", "shangri-la-2023"],
        "sidelines-call-off.yaml": ["new-york-2013", "new-york-2019", "new-york-2023",
                                    "panama-2015"],
    }  # fmt: skip
