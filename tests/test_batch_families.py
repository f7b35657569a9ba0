"""Families of alike clocks in the batch engine (negosim/engine/batch/families.py):
found where they should be, refused where they must be, and never a different row."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import base_scenario, with_ask_step
from test_batch import same_rows

from negosim.engine.batch import BatchEngine, families
from negosim.engine.batch import engine as batch_module
from negosim.engine.simulation import Engine
from negosim.errors import SimulationError


def _family_scenario(n: int, *, tracked_member_slot: bool = False) -> dict[str, Any]:
    """``n`` alike actions in the ``asked`` state only (a state mask), each reading its
    own written flag and its own constant weight and adding the weight to a shared
    count that a precondition reads (a slot the blocking report keeps), plus an
    action reading two members' flags, a failure path and a guarded meeting."""
    data = with_ask_step(base_scenario())
    data["calendar"]["horizon"] = "7h"
    data["actors"]["b"] = {"name": "B"}
    facts: dict[str, Any] = {f"d{i}": {"type": "bool", "initial": False} for i in range(n)}
    facts.update({f"w{i}": {"type": "number", "initial": 1 + i % 3} for i in range(n)})
    facts["k"] = {"type": "number", "initial": 0}
    facts["bonus"] = {"type": "bool", "initial": False}
    data["facts"] = facts
    holds = "d0" if tracked_member_slot else f"k >= {n // 2}"
    data["preconditions"] = {"enough": {"text": "t", "insisted_by": "b", "holds": holds}}
    actions: dict[str, Any] = {
        f"a{i}": {
            "actor": "a",
            "from": "asked",
            "guard": f"not d{i} and k + w{i} < {2 * n}",
            "delay": {"dist": "exponential", "mean": "2h"},
            "set": {f"d{i}": True, "k": f"k + w{i}"},
        }
        for i in range(n)
    }
    actions["ask"] = {"actor": "a", "from": "waiting", "trigger": "ask",
                      "delay": {"dist": "exponential", "mean": "1h"}}  # fmt: skip
    actions["pair"] = {"actor": "b", "from": "asked", "guard": "d0 and d1 and not bonus",
                       "delay": {"dist": "uniform", "low": "10min", "high": "1h"},
                       "set": {"bonus": True, "k": "k + 5"}}  # fmt: skip
    actions["give_up"] = {"actor": "b", "from": ["waiting", "asked"], "trigger": "fail",
                          "delay": {"dist": "exponential", "mean": "40h"}}  # fmt: skip
    actions["meet"] = {"actor": "b", "from": "asked", "requires": ["enough"],
                       "guard": f"k >= {n}", "trigger": "meet",
                       "delay": {"dist": "fixed", "value": "1min"}}  # fmt: skip
    data["actions"] = actions
    return data


def test_alike_clocks_form_one_family_and_give_the_reference_rows(load_data, monkeypatch):
    cs = load_data(_family_scenario(12))
    be = same_rows(cs, 1500, seed=7)
    fams = be.plan.families
    assert [len(f.members) for f in fams] == [12]
    assert len(be.plan.blocks) == 1 and len(be.plan.consts) == 1  # the flags; the weights
    res = be.run(7, 0, 1500)
    assert not res.reference  # every row made by the batch engine itself
    outcomes = {o for o in res.outcome.tolist()}
    assert len(outcomes) == 3 and res.blocking.any()  # held, failed, censored; blocked
    # Without families (one call per member), and in small chunks that drop finished
    # rows (and so rebuild the blocks) many times: the same rows.
    monkeypatch.setattr(families, "MIN_MEMBERS", 10**9)
    plain = BatchEngine(cs)
    assert not plain.plan.families
    assert list(plain.run_block(7, 0, 1500)) == list(res.rows())
    monkeypatch.undo()
    monkeypatch.setattr(batch_module, "CHUNK", 64)
    small = BatchEngine(cs)
    assert small.plan.families and small.chunk == 64
    assert list(small.run_block(7, 0, 1500)) == list(res.rows())


def test_a_member_slot_the_blocking_report_keeps_is_not_renamed(load_data):
    cs = load_data(_family_scenario(8, tracked_member_slot=True))
    be = same_rows(cs, 800, seed=2)
    assert not be.plan.families  # d0 is kept as the instant began: no block for it


def test_too_few_or_unlike_clocks_form_no_family(load_data):
    data = _family_scenario(6)
    data["actions"]["a5"]["delay"] = {"dist": "exponential", "mean": "3h"}  # unlike
    data["actions"]["a4"]["set"]["k"] = "k + w4 + 1"  # unlike code
    be = same_rows(load_data(data), 600, seed=4)
    assert [len(f.members) for f in be.plan.families] == [4]  # a0..a3
    assert be.plan.families[0].members.tolist() == [0, 1, 2, 3]


def test_an_error_in_a_member_is_the_reference_engines(load_data):
    data = _family_scenario(6)
    data["facts"]["z"] = {"type": "number", "initial": 0}
    for i in range(6):
        data["facts"][f"w{i}"]["initial"] = 1.0 if i != 3 else 0.0
        data["actions"][f"a{i}"]["guard"] = f"not d{i} and k / w{i} >= 0"
    cs = load_data(data)
    assert BatchEngine(cs).plan.families
    with pytest.raises(SimulationError, match="division by zero") as simpy_error:
        list(Engine(cs).run_block(1, 0, 50))
    with pytest.raises(SimulationError, match="division by zero") as batch_error:
        list(BatchEngine(cs).run_block(1, 0, 50))
    assert str(simpy_error.value) == str(batch_error.value)


def test_templates_rename_slot_reads_only() -> None:
    a: list[int] = []
    b: list[int] = []
    assert families.template("s[3] and s[4] == 's[5]'", a) == families.template(
        "s[7] and s[9] == 's[5]'", b
    )
    assert (a, b) == ([3, 4], [7, 9])
    c: list[int] = []
    assert families.template("s[3] and s[4] == 's[6]'", c) != families.template(
        "s[3] and s[4] == 's[5]'", []
    )


def test_a_slot_two_members_share_where_the_representative_has_two_is_refused(load_data):
    # a1 reads w1 twice where a0 reads w0 and w9: no renaming maps a0's code to a1's.
    data = _family_scenario(5)
    data["facts"]["w9"] = {"type": "number", "initial": 1}
    for i in range(5):
        other = "w9" if i == 0 else f"w{i}"
        data["actions"][f"a{i}"]["guard"] = f"not d{i} and k + w{i} + {other} < 20"
    be = same_rows(load_data(data), 500, seed=5)
    assert [f.members.tolist() for f in be.plan.families] == [[1, 2, 3, 4]]


def test_the_clocks_benchmark_scenarios_form_one_family(load_data) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from test_bench_core import synthetic  # type: ignore[import-not-found]

    for n in (5, 40):
        be = same_rows(load_data(synthetic(n)), 400, seed=9)
        assert [len(f.members) for f in be.plan.families] == [n]
