"""The batch engine gives the simpy engine's rows, replication by replication (issue 11)."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pytest
from conftest import SCENARIOS, base_scenario, with_ask_step

import negosim
from negosim.engine.batch import BatchEngine, Unsupported
from negosim.engine.batch import engine as batch_module
from negosim.engine.batch.vdists import _inv_cdf
from negosim.engine.simulation import Engine
from negosim.engine.streams import (
    GAMMA,
    keyed_uniforms,
    replication_keys,
    stream_keys,
    stream_keys_by_stream,
    uniforms,
    uniforms_at,
)
from negosim.errors import SimulationError
from negosim.runs import runner
from negosim.runs.backends import batch_support
from negosim.runs.results import Tally


def same_rows(cs: negosim.CompiledScenario, runs: int, seed: int) -> BatchEngine:
    be = BatchEngine(cs)
    ref = list(Engine(cs).run_block(seed, 0, runs))
    got = list(be.run_block(seed, 0, runs))
    assert len(got) == runs
    for a, b in zip(ref, got, strict=True):
        assert a == b, f"replication {a.index}:\n simpy {a}\n batch {b}"
    return be


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_gives_the_same_rows(path):
    cs = negosim.load(path)
    same_rows(cs, 1500, seed=11)


def test_statistical_test_scenarios_give_the_same_rows(load_data):
    import test_statistics as ts

    seen: list[negosim.CompiledScenario] = []

    def recording(data, sets=None):
        cs = load_data(data, sets)
        seen.append(cs)
        return cs

    for name, fn in inspect.getmembers(ts, inspect.isfunction):
        params = list(inspect.signature(fn).parameters)
        if not name.startswith("test_") or params[:1] != ["load_data"]:
            continue
        if name == "test_action_only_inside_later_window":
            for how in ("guard", "available"):
                fn(recording, how, ("10h", "30h"), 20.0)
        else:
            fn(recording)
    assert len(seen) >= 12
    for cs in seen:
        same_rows(cs, 600, seed=5)


def _feature_scenario() -> dict:
    """Most of the format at once: scheduled events with jitter, overlapping stays with
    arrival and departure delays, windows at one instant, enum facts set by expressions,
    functions, clamps, options with computed weights, zero delays, random events."""
    data = with_ask_step(base_scenario())
    data["calendar"]["horizon"] = "30h"
    data["calendar"]["windows"] = {
        "w1": {"start": "2h", "end": "9h"},
        "w2": {"start": "2h", "end": "20h"},
        "w3": {"start": "9h", "end": "26h"},
    }
    data["params"] = {"p": {"kind": "probability", "default": 0.4, "assumption": "t"}}
    data["facts"] = {
        "mood": {"type": "enum", "values": ["cold", "warm", "hot"], "initial": "cold"},
        "n": {"type": "number", "initial": 0, "low": 0, "high": 4},
        "x": {"type": "number", "initial": 1.5},
        "flag": {"type": "bool", "initial": False},
    }
    data["actors"]["a"]["present"] = [
        {"from": "0h", "until": "12h", "arrival": {"dist": "uniform", "low": "0h", "high": "3h"}},
        {"from": "10h", "until": "30h",
         "departure": {"dist": "empirical", "values": ["0h", "2h", "5h"], "weights": [1, 2, 1]}},
    ]  # fmt: skip
    data["actors"]["b"] = {"name": "B", "available": ["w1", "w3"]}
    data["preconditions"] = {
        "warm_enough": {"text": "t", "insisted_by": "b", "holds": "mood != 'cold' or n >= 3"}
    }
    data["events"] = {
        "news": {"at": "5h", "jitter": {"dist": "triangular", "min": "-2h", "mode": "0h",
                                        "max": "3h"},
                 "set": {"mood": "'warm' if x > 1 else 'hot'", "x": "x * 2"}},
        "shock": {"rate": 6, "window": "w2", "guard": "not flag",
                  "set": {"n": "n + 1", "x": "max(x - 0.5, log(2), sqrt(abs(x)))"}},
        "deadline": {"at": "28h", "trigger": "fail"},
    }  # fmt: skip
    data["actions"] = {
        "ask": {"actor": "a", "from": "waiting", "guard": "present('a')",
                "delay": {"dist": "lognormal", "median": "3h", "p90": "9h"},
                "options": {
                    "yes": {"weight": "p * clamp(n, 1, 3)", "trigger": "ask",
                            "set": {"flag": "n > 1 and x / (n - 1) > 0.1"}},
                    "no": {"weight": "1 - p", "set": {"n": "n - 1", "mood": "mood"}},
                }},
        "nudge": {"actor": "b", "from": ["waiting", "asked"], "guard": "mood < 'hot'",
                  "delay": {"dist": "fixed", "value": "0h"}, "set": {"mood": "hot"}},
        "meet": {"actor": "b", "from": "asked", "requires": ["warm_enough"],
                 "delay": {"dist": "exponential", "mean": "4h"}, "trigger": "meet"},
        "walk": {"actor": "a", "from": "asked", "guard": "in_window('w3') and exp(n) > 30",
                 "delay": {"dist": "uniform", "low": "0h", "high": "1h"}, "trigger": "fail"},
    }  # fmt: skip
    return data


def test_a_scenario_with_most_features_gives_the_same_rows(load_data):
    cs = load_data(_feature_scenario())
    be = same_rows(cs, 3000, seed=2)
    res = be.run(2, 0, 3000)
    outcomes = set(res.outcome.tolist())
    assert {cs.states.index("held"), cs.states.index("failed")} <= outcomes
    assert not res.reference  # nothing handed to the reference engine


def test_results_do_not_depend_on_the_batch_size(load_data, monkeypatch):
    cs = load_data(_feature_scenario())
    whole = list(BatchEngine(cs).run_block(4, 100, 1100))
    monkeypatch.setattr(batch_module, "CHUNK", 37)
    pieces = list(BatchEngine(cs).run_block(4, 100, 1100))
    assert pieces == whole
    res = BatchEngine(cs).run(4, 100, 1100)  # several chunks joined into one result
    assert list(res.rows()) == whole
    assert [r.index for r in whole] == list(range(100, 1100))


def test_results_do_not_depend_on_workers_or_engine():
    cs = negosim.load(SCENARIOS / "munich.yaml")
    one = runner.simulate(cs, runs=3000, seed=9, engine="batch")
    two = runner.simulate(cs, runs=3000, seed=9, workers=2, engine="batch")
    ref = runner.simulate(cs, runs=3000, seed=9, engine="simpy")
    for est in (two, ref):
        assert est.to_dict() | {"elapsed_s": 0} == one.to_dict() | {"elapsed_s": 0}


def test_batch_tally_counts_as_rows_do(load_data):
    cs = load_data(_feature_scenario())
    by_rows = Tally()
    for row in Engine(cs).run_block(6, 0, 2000):
        by_rows.add(row)
    by_batch = Tally()
    by_batch.add_batch(BatchEngine(cs).run(6, 0, 2000))
    assert by_batch == by_rows
    assert runner.replicate(cs, 6, 0, 2000) == by_rows


def test_errors_are_the_simpy_engines(load_data):
    data = base_scenario()
    data["facts"] = {"k": {"type": "number", "initial": 0}}
    meet = data["actions"]["meet"]
    del meet["trigger"]
    meet["options"] = {  # k reaches 3 in some replications only: 1 / 0
        "yes": {"weight": "1 / (k - 3) if k >= 3 else 0.2", "trigger": "meet"},
        "no": {"weight": 1, "set": {"k": "k + 1"}},
    }
    cs = load_data(data)
    with pytest.raises(SimulationError) as ref:
        list(Engine(cs).run_block(1, 0, 50))
    with pytest.raises(SimulationError) as got:
        list(BatchEngine(cs).run_block(1, 0, 50))
    assert str(got.value) == str(ref.value)


def test_events_cap_is_the_simpy_engines(load_data):
    data = base_scenario()
    data["facts"] = {"k": {"type": "number", "initial": 0}}
    data["settings"] = {"max_events": 40}
    data["actions"]["tick"] = {
        "actor": "a", "from": "waiting", "delay": {"dist": "exponential", "mean": "0.5h"},
        "set": {"k": "k + 1"},
    }  # fmt: skip
    cs = load_data(data)
    with pytest.raises(SimulationError) as ref:
        list(Engine(cs).run_block(3, 0, 200))
    with pytest.raises(SimulationError) as got:
        list(BatchEngine(cs).run_block(3, 0, 200))
    assert str(got.value) == str(ref.value)


def test_an_uncovered_feature_is_named_and_falls_back(load_data):
    data = base_scenario()
    # A model of its own: the runner caches engines by model, and this one's clock is
    # replaced after compiling (another test's cached engine must not answer here).
    data["title"] = "an uncovered feature"
    cs = load_data(data)
    clock = cs.clocks[0]
    odd = dataclasses.replace(clock, delay=lambda u: 3.0 * u)  # not built by compiler.dists
    cs = dataclasses.replace(cs, clocks=(odd,))  # a scenario of its own structure
    with pytest.raises(Unsupported, match="actions.meet.delay"):
        BatchEngine(cs)
    why = batch_support(cs)
    assert why is not None and "\n" not in why and "actions.meet.delay" in why
    assert runner._batch_engine(cs) is None  # falls back
    assert list(runner.rows(cs, 200, 1, engine="batch")) == list(runner.rows(cs, 200, 1))


def test_keyed_uniforms_are_the_streams_bits():
    reps = np.arange(5, 40)
    ids = (3, 2**63 + 5, 77)
    keys = stream_keys(123, reps, ids)
    for j, sid in enumerate(ids):
        for k in (0, 1, 6):
            assert np.array_equal(keyed_uniforms(keys[:, j], k), uniforms(123, reps, sid, k))


def test_stream_cursors_are_the_streams_bits():
    # The batch engine keeps, per stream and replication, key + (k + 1) * GAMMA and
    # adds GAMMA at each draw: the k-th draw must be uniforms(...)'s k-th, bit for bit.
    reps = np.arange(1000, 1300)
    ids = (3, 2**63 + 5, 77, 2**64 - 1)
    keys = stream_keys_by_stream(replication_keys(123, reps), ids)
    assert np.array_equal(keys, stream_keys(123, reps, ids).T)
    cursor = keys + np.uint64(GAMMA)
    for k in range(4):
        for j, sid in enumerate(ids):
            assert np.array_equal(uniforms_at(cursor[j].copy()), uniforms(123, reps, sid, k))
        cursor += np.uint64(GAMMA)


def test_inverse_normal_cdf_is_as241_operation_for_operation():
    # The pure-Python AS241 of the statistics module (its C version may round
    # differently): the vectorised one must give the same bits, tails included.
    import math
    import statistics

    src = inspect.getsource(statistics)
    start = src.index("def _normal_dist_inv_cdf(")
    end = src.index("\n\n\n", start)
    ns: dict = {"sqrt": math.sqrt, "log": math.log, "fabs": math.fabs}
    exec(src[start:end], ns)  # noqa: S102 - the standard library's own source
    scalar = ns["_normal_dist_inv_cdf"]
    rng = np.random.default_rng(5)
    p = np.concatenate([
        rng.random(20_000), rng.random(2_000) * 1e-12, 1 - rng.random(2_000) * 1e-9,
        [1e-300, 2**-53, 0.02425, 0.075, 0.0750000001, 0.5, 0.925, 0.97575, 1 - 2**-53],
    ])  # fmt: skip
    assert np.array_equal(_inv_cdf(p), [scalar(x, 0.0, 1.0) for x in p.tolist()])


def test_cli_engine_option(cli):
    path = str(SCENARIOS / "tutorial.yaml")
    args = ("run", path, "--runs", "3000", "--format", "json")
    a = json.loads(cli(*args, "--engine", "batch").stdout)
    b = json.loads(cli(*args).stdout)
    a.pop("elapsed_s"), b.pop("elapsed_s")
    assert a == b


def test_long_tails_handed_to_the_reference_give_the_same_rows(load_data, monkeypatch):
    cs = load_data(_feature_scenario())
    whole = list(BatchEngine(cs).run_block(8, 0, 400))
    monkeypatch.setattr(batch_module, "TAIL_STEPS", 3)
    monkeypatch.setattr(batch_module, "TAIL_ROWS", 10**6)
    res = BatchEngine(cs).run(8, 0, 400)
    assert res.reference  # most replications went to the reference engine
    assert list(res.rows()) == whole


@pytest.mark.parametrize("swap", [False, True])
def test_the_blocking_reasons_are_the_same(swap: bool) -> None:
    # Two decisions at one instant (the facts are judged as the instant began), one
    # of which can end the talks: every reason occurs, replication by replication.
    import test_blocking as tb

    data = tb.delhi(swap=swap)
    cs = tb.load(data)
    ref = list(Engine(cs).run_block(4, 0, 800))
    assert {w for r in ref for w in r.why} == {0, 2}  # refused and overtaken
    same_rows(cs, 800, seed=4)
    data["actions"]["a_decides"]["delay"] = {"dist": "fixed", "value": "100h"}
    undecided = tb.load(data)
    assert 1 in {w for r in Engine(undecided).run_block(4, 0, 300) for w in r.why}
    same_rows(undecided, 300, seed=4)


def test_guarded_scheduled_events_and_presence_effects_are_the_same() -> None:
    import test_reactive_presence as tr

    guarded = (
        tr.BASE
        + tr.ANSWER
        + """\
events:
  announced:
    text: The meeting announced for 10:00
    at: 2024-05-14 10:00
    guard: present('a') and present('b')
    trigger: meet
"""
    )
    cs = negosim.load_string(guarded)
    assert cs.scheduled[0].guard is not None
    rows = list(Engine(cs).run_block(3, 0, 1500))
    assert len({r.outcome for r in rows}) > 1  # the guard holds in some runs only
    same_rows(cs, 1500, seed=3)
    same_rows(negosim.load_string(tr.LEAVES_ON_NO), 1500, seed=3)


def test_availability_effects_and_when_events_are_the_same() -> None:
    # Issue 10, point 3: both engines, replication by replication, with the batch
    # engine running the rows itself (none handed to the reference).
    import test_reactive_availability as ta

    for text in (ta.RICH, ta.CRISIS, ta.WANG, ta.TOGGLE):
        cs = negosim.load_string(text)
        be = same_rows(cs, 1500, seed=3)
        assert not be.run(3, 0, 300).reference
    rich = negosim.load_string(ta.RICH)
    assert len({r.outcome for r in Engine(rich).run_block(3, 0, 300)}) == 3
    # a zero-time loop of when: events: the reference engine's error, on both
    loop = negosim.load_string(
        ta.HEAD
        + "facts:\n  x: {type: bool, initial: false}\n"
        + "actions:\n  meet: {actor: a, delay: {dist: fixed, value: 1h}, trigger: meet}\n"
        + "events:\n  up: {when: not x, set: {x: true}}\n  down: {when: x, set: {x: false}}\n"
    )
    with pytest.raises(SimulationError, match="keeps repeating") as simpy_error:
        list(Engine(loop).run_block(1, 0, 3))
    with pytest.raises(SimulationError, match="keeps repeating") as batch_error:
        list(BatchEngine(loop).run_block(1, 0, 3))
    assert str(simpy_error.value) == str(batch_error.value)


def _many_clocks(n: int) -> dict:
    """``n`` actions that each fire once and count up, a precondition on the count that
    every one of them decides, and a meeting once all have fired (the shape of the
    clocks benchmark, with a blocking report to keep)."""
    data = base_scenario()
    data["calendar"]["horizon"] = "8h"
    data["actors"]["b"] = {"name": "B"}
    data["facts"] = {f"d{i}": {"type": "bool", "initial": False} for i in range(n)}
    data["facts"]["k"] = {"type": "number", "initial": 0}
    data["preconditions"] = {"enough": {"text": "t", "insisted_by": "b", "holds": f"k >= {n - 2}"}}
    data["actions"] = {
        f"a{i}": {"actor": "a", "from": "waiting", "guard": f"not d{i}",
                  "delay": {"dist": "exponential", "mean": "2h"},
                  "set": {f"d{i}": True, "k": "k + 1"}}
        for i in range(n)
    }  # fmt: skip
    data["actions"]["meet"] = {
        "actor": "b", "from": "waiting", "requires": ["enough"], "guard": f"k >= {n - 1}",
        "delay": {"dist": "fixed", "value": "1min"}, "trigger": "meet",
    }  # fmt: skip
    return data


def test_many_clocks_give_the_same_rows_whatever_the_chunk(load_data, monkeypatch):
    # Many key columns (the layout by column, the sort of columns), censored and
    # blocked replications, and chunks that drop finished rows several times.
    cs = load_data(_many_clocks(40))
    be = same_rows(cs, 700, seed=3)
    res = be.run(3, 0, 700)
    assert len(set(res.outcome.tolist())) == 2 and res.blocking.any()  # met, and censored
    monkeypatch.setattr(batch_module, "CHUNK", 100)
    assert list(BatchEngine(cs).run_block(3, 0, 700)) == list(res.rows())
