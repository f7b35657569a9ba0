"""The generated replication (negosim/engine/generated.py) gives Replication's rows.

``Engine.run`` and ``Engine.run_block`` run a Python function generated per
scenario; :class:`Replication` is the readable reference (and what traces and
played games run). Every field of every row must be the same, on every shipped
scenario, every scenario file under tests/, and random small scenarios. The
comparisons call the generated function itself, so that a replication that
silently fell back to :class:`Replication` could not pass for a generated one.
"""

from __future__ import annotations

import ast
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, SCENARIOS, base_scenario, with_ask_step
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import negosim
from negosim.engine.generated import RERUN
from negosim.engine.simulation import Engine, Replication
from negosim.engine.streams import block
from negosim.errors import NegosimError, SimulationError


def _concrete(path: Path) -> bool:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return isinstance(data, dict) and not data.get("abstract", False)


SHIPPED = sorted(p for p in SCENARIOS.glob("**/*.yaml") if _concrete(p))
TEST_FILES = sorted(p for p in (REPO / "tests").glob("**/*.yaml") if _concrete(p))


def same_rows(engine: Engine, seed: int, start: int, stop: int) -> None:
    """The generated function, with prefetched first draws (as run_block) and without
    (as run), against Replication, field by field."""
    gen = engine.generated
    assert gen is not None
    firsts = block(seed, start, stop, engine.stream_ids)
    for i, first in zip(range(start, stop), firsts, strict=True):
        ref = Replication(engine, seed, i, first).run()
        got = gen.replicate(seed, i, first if i % 3 else None)
        for field in ref.__slots__:
            assert getattr(got, field) == getattr(ref, field), (i, field, got, ref)
        assert type(got.time) is type(ref.time)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_shipped_scenarios_give_the_same_rows(path: Path) -> None:
    engine = Engine(negosim.load(path))
    if engine.generated is None:  # a scenario with when: events runs Replication
        assert engine.cs.whens
        return
    same_rows(engine, 11, 0, 500)


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_test_scenario_files_give_the_same_rows(path: Path) -> None:
    engine = Engine(negosim.load(path))
    assert engine.generated is not None
    same_rows(engine, 5, 1000, 1500)


def test_the_shipped_files_are_found() -> None:
    assert len(SHIPPED) >= 20 and len(TEST_FILES) >= 5
    assert SCENARIOS / "munich.yaml" in SHIPPED


def test_the_engine_uses_the_generated_replication() -> None:
    engine = Engine(negosim.load(SCENARIOS / "munich.yaml"))
    assert engine.generated is not None
    src = engine.source()
    assert src is not None
    ast.parse(src)  # valid Python, readable by the developer
    for c in engine.clocks:
        assert repr(c.id) in src  # each clock's code says whose it is
    # Parameters are the factory's, given once per point: no slot read of
    # p_us_formal_request, and not its value either (the code serves every point).
    slot = engine.cs.slot_names.index("p_us_formal_request")
    assert f"s[{slot}]" not in src and "0.15" not in src
    assert f"p{slot} = V[" in src and src.startswith("def make(V):")
    rows = list(engine.run_block(3, 0, 50))
    assert rows == [engine.run(3, i) for i in range(50)]
    assert rows == [Replication(engine, 3, i).run() for i in range(50)]


def test_threads_that_make_the_generated_replication_at_once_agree() -> None:
    """A fresh engine shared by threads: they race to generate its replication
    (compiled under a lock) and run it, switching threads every microsecond."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(3):
            engine = Engine(negosim.load(SCENARIOS / "munich.yaml"))

            def chunk(a: int, engine: Engine = engine) -> list[Any]:
                return list(engine.run_block(3, a, a + 40))

            with ThreadPoolExecutor(max_workers=4) as pool:
                got = [row for part in pool.map(chunk, range(0, 160, 40)) for row in part]
            assert engine.generated is not None
            assert got == [Replication(engine, 3, i).run() for i in range(160)]
    finally:
        sys.setswitchinterval(old)


def test_a_scenario_with_when_events_runs_replication(load_data: Any) -> None:
    data = base_scenario()
    data["facts"] = {"k": {"type": "number", "initial": 0}}
    data["actions"]["meet"].pop("trigger")
    data["actions"]["meet"]["set"] = {"k": "k + 1"}
    data["events"] = {"enough": {"when": "k >= 2", "trigger": "meet"}}
    engine = Engine(load_data(data))
    assert engine.generated is None and engine.source() is None
    rows = list(engine.run_block(1, 0, 100))
    assert rows == [Replication(engine, 1, i).run() for i in range(100)]
    assert {r.outcome for r in rows} == {"held", "censored"}


def test_a_scenario_too_large_to_write_out_runs_replication(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import negosim.engine.generated as generated

    cs = negosim.load(SCENARIOS / "munich.yaml")
    assert 0 < generated.inline_size(Engine(cs)) <= generated.MAX_INLINE
    monkeypatch.setattr(generated, "MAX_INLINE", 10)
    engine = Engine(cs)
    assert engine.generated is None and not engine.generates
    assert list(engine.run_block(2, 0, 30)) == [Replication(engine, 2, i).run() for i in range(30)]


def test_a_zero_time_loop_gives_replications_located_error(load_data: Any) -> None:
    data = base_scenario()
    data["facts"] = {"on": {"type": "bool", "initial": False}}
    meet = data["actions"]["meet"]
    meet.pop("trigger")
    meet["delay"] = {"dist": "fixed", "value": "0h"}
    meet["options"] = {"flip": {"set": {"on": "not on"}}}
    engine = Engine(load_data(data))
    assert engine.generated is not None
    with pytest.raises(RERUN):
        engine.generated.replicate(1, 0, None)
    with pytest.raises(SimulationError) as got:
        engine.run(1, 0)
    with pytest.raises(SimulationError) as ref:
        Replication(engine, 1, 0).run()
    assert str(got.value) == str(ref.value)
    with pytest.raises(SimulationError) as blocked:
        list(engine.run_block(1, 0, 3))
    assert str(blocked.value) == str(ref.value)


def test_a_negative_weight_gives_replications_error(load_data: Any) -> None:
    data = base_scenario()
    data["facts"] = {"x": {"type": "number", "initial": 1}}
    meet = data["actions"]["meet"]
    meet.pop("trigger")
    meet["options"] = {
        "yes": {"weight": "x - 2", "trigger": "meet"},
        "no": {"weight": 1, "trigger": "fail"},
    }
    engine = Engine(load_data(data))
    with pytest.raises(SimulationError, match="negative weight"):
        list(engine.run_block(1, 0, 3))


# --- random small scenarios ----------------------------------------------------------

GUARDS = [
    None, "flag", "not flag", "n >= 2", "n < 3 and not flag", "mood == 'angry'",
    "present('b')", "not present('b')", "in_window('w0')", "available('b')",
    "in_window('w1') or flag",
]  # fmt: skip
WEIGHTS = [1, 0.5, 0, "p", "1 - p", "n + 0.5", "max(0, 2 - n)", "p * (2 if flag else 1)"]
VALUES: dict[str, list[Any]] = {
    "flag": [True, False, "not flag", "n > 1"],
    "n": [0, 1, "n + 1", "n - 1", "n * 2", "min(n + 1, 4)"],
    "mood": ["calm", "angry", "'angry' if flag else 'calm'"],
}
HOURS = [f"{h}h" for h in (0, 1, 2, 3, 6, 12)]


@st.composite
def delays(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["fixed", "exponential", "uniform", "triangular", "lognormal"]))
    if kind == "fixed":  # fixed delays land on each other, on window edges, the horizon
        return {"dist": "fixed", "value": draw(st.sampled_from(["1h", "2h", "6h", "12h", "0h"]))}
    if kind == "exponential":
        return {"dist": "exponential", "mean": draw(st.sampled_from(["1h", "5h", "20h"]))}
    if kind == "uniform":
        return {"dist": "uniform", "low": "1h", "high": draw(st.sampled_from(["2h", "9h"]))}
    if kind == "triangular":
        return {"dist": "triangular", "min": "1h", "mode": "2h", "max": "7h"}
    return {"dist": "lognormal", "median": "4h", "p90": draw(st.sampled_from(["8h", "30h"]))}


@st.composite
def effects(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sets = {}
    for fact, values in VALUES.items():
        if draw(st.booleans()):
            sets[fact] = draw(st.sampled_from(values))
    if sets:
        out["set"] = sets
    if draw(st.integers(0, 5)) == 0:
        out["present"] = {"b": draw(st.booleans())}
    if draw(st.integers(0, 4)) == 0:
        out["available"] = {"b": draw(st.booleans())}
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    data = with_ask_step(base_scenario())
    data["calendar"]["horizon"] = draw(st.sampled_from(["24h", "48h"]))
    data["calendar"]["windows"] = {
        f"w{k}": {
            "start": f"2024-01-01 {draw(st.integers(0, 20)):02d}:00",
            "duration": draw(st.sampled_from(["1h", "3h", "12h", "30h"])),
        }
        for k in range(2)
    }
    p = draw(st.sampled_from([0.2, 0.5]))
    data["params"] = {"p": {"kind": "probability", "default": p, "assumption": "t"}}
    data["facts"] = {
        "flag": {"type": "bool", "initial": draw(st.booleans())},
        "n": {"type": "number", "initial": draw(st.integers(0, 3)), "low": 0, "high": 4},
        "mood": {"type": "enum", "values": ["calm", "angry"], "initial": "calm"},
    }
    b: dict[str, Any] = {"name": "B"}
    stay = draw(st.integers(0, 2))
    if stay == 1:
        b["present"] = [{"window": "w0", "arrival": {"dist": "uniform", "low": "0h", "high": "2h"}}]
    elif stay == 2:
        b["present"] = [
            {"from": "2024-01-01 02:00", "until": "2024-01-01 09:00"},
            {"from": "2024-01-01 06:00", "until": "2024-01-01 20:00",
             "departure": {"dist": "exponential", "mean": "2h"}},
        ]  # fmt: skip
    if draw(st.booleans()):
        b["available"] = ["w1"]
    data["actors"]["b"] = b
    data["preconditions"] = {"asked": {"text": "asked", "insisted_by": "b", "holds": "flag"}}
    states = ["waiting", "asked"]
    actions: dict[str, Any] = {}
    for k in range(draw(st.integers(1, 4))):
        act: dict[str, Any] = {
            "actor": draw(st.sampled_from(["a", "b"])),
            "from": draw(st.sampled_from([["waiting"], ["asked"], states])),
            "delay": draw(delays()),
        }
        guard = draw(st.sampled_from(GUARDS))
        if guard:
            act["guard"] = guard
        if draw(st.integers(0, 3)) == 0:
            act["requires"] = ["asked"]
        triggers = [None, "fail"] + (["ask"] if act["from"] == ["waiting"] else [])
        triggers += ["meet"] if act["from"] == ["asked"] else []
        if draw(st.booleans()):
            act["options"] = {
                f"o{j}": {"weight": draw(st.sampled_from(WEIGHTS)), **draw(effects()),
                          **({"trigger": t} if (t := draw(st.sampled_from(triggers))) else {})}
                for j in range(draw(st.integers(2, 3)))
            }  # fmt: skip
        else:
            act.update(draw(effects()))
            trigger = draw(st.sampled_from(triggers))
            if trigger:
                act["trigger"] = trigger
        actions[f"act{k}"] = act
    actions["meet"] = {"actor": "a", "from": "asked", "guard": "n >= 1 or flag",
                       "delay": draw(delays()), "trigger": "meet"}  # fmt: skip
    data["actions"] = actions
    events: dict[str, Any] = {}
    if draw(st.booleans()):
        ev: dict[str, Any] = {"at": f"{draw(st.integers(0, 30))}h", **draw(effects())}
        if draw(st.booleans()):
            ev["jitter"] = {"dist": "uniform", "low": "-2h", "high": "2h"}
        if draw(st.booleans()):
            ev["guard"] = draw(st.sampled_from(GUARDS[1:]))
        if draw(st.booleans()):
            ev["trigger"] = draw(st.sampled_from(["ask", "fail"]))
        events["news"] = ev
    if draw(st.booleans()):
        events["shock"] = {"rate": 2, "set": {"n": "n + 1"}}
        if draw(st.booleans()):
            events["shock"]["window"] = "w1"
    if events:
        data["events"] = events
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=scenarios(), seed=st.integers(0, 2**40))
def test_random_scenarios_give_the_same_rows(tmp_path_factory: Any, data: Any, seed: int) -> None:
    path = tmp_path_factory.mktemp("gen") / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        cs = negosim.load(path)
    except NegosimError:
        assume(False)  # an invalid combination: not what this test is about
        return
    engine = Engine(cs)
    assert engine.generated is not None
    firsts = block(seed, 0, 40, engine.stream_ids)
    for i, first in enumerate(firsts):
        try:
            ref: Any = Replication(engine, seed, i, first).run()
        except SimulationError as exc:
            ref = str(exc)
        try:
            got: Any = engine.generated.replicate(seed, i, first if i % 2 else None)
        except RERUN:  # only where Replication has something to explain
            assert isinstance(ref, str) or any(
                isinstance(w, float) and w > 1e300 for ws in engine.weights for w in ws
            )
            continue
        assert got == ref, (i, got, ref)
