"""Every shipped scenario (scenarios/*.yaml, globbed at collection) loads, validates and runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SCENARIOS

import negosim
from negosim.runs.runner import trace as engine_trace  # (row, timeline lines)

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
