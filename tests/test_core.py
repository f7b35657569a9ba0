"""The rebuilt core: exact time, the documented order of ties, keyed streams,
one replication object per run (thread-safe, backend-independent), no garbage cycles.
"""

from __future__ import annotations

import gc
import json
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simpy
from conftest import SCENARIOS, base_scenario

import negosim
from negosim.cli.main import main
from negosim.engine import streams
from negosim.engine.simulation import TICKS_PER_HOUR, Engine, Replication, to_ticks
from negosim.runs.results import Tally
from negosim.runs.runner import trace as engine_trace  # (row, timeline lines)

MUNICH = SCENARIOS / "munich.yaml"


def fixed(text: str) -> dict[str, str]:
    return {"dist": "fixed", "value": text}


@pytest.fixture
def switchy() -> Iterator[None]:
    """Make the interpreter switch threads very often, so races show."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


# --- exact time --------------------------------------------------------------------


def _tie_scenario(meet_first: bool) -> dict[str, Any]:
    """'step' sets go at 0.7h; 'meet' (guard go) is due 0.1h later, at 0.8h, exactly
    when 'late' (enabled at 0) is due. In floats 0.7 + 0.1 < 0.8; in ticks they tie."""
    data = base_scenario()
    data["facts"] = {"go": {"type": "bool", "initial": False}}
    actions = {
        "step": {"actor": "a", "from": "waiting", "delay": fixed("42min"),
                 "guard": "not go", "set": {"go": True}},
        "meet": {"actor": "a", "from": "waiting", "guard": "go", "delay": fixed("6min"),
                 "trigger": "meet"},
        "late": {"actor": "a", "from": "waiting", "delay": fixed("48min"), "trigger": "fail"},
    }  # fmt: skip
    order = ["step", "meet", "late"] if meet_first else ["step", "late", "meet"]
    data["actions"] = {k: actions[k] for k in order}
    return data


@pytest.mark.parametrize(("meet_first", "outcome"), [(True, "held"), (False, "failed")])
def test_clocks_due_at_one_instant_fire_in_declaration_order(load_data, meet_first, outcome):
    cs = load_data(_tie_scenario(meet_first))
    rows = list(negosim.rows(cs, 5, seed=1))
    assert {(r.outcome, r.ticks) for r in rows} == {(outcome, 48 * 60_000)}


def test_a_window_that_closes_as_a_clock_falls_due_comes_first(load_data):
    """Enabled at 00:42 with a fixed 6 min delay in a window ending 00:48: the close
    comes first, the clock is cancelled and the meeting never happens."""
    data = base_scenario()
    data["facts"] = {"go": {"type": "bool", "initial": False}}
    data["calendar"]["windows"] = {"w": {"start": "0h", "end": "48min"}}
    data["actors"]["a"]["available"] = ["w"]
    data["actions"] = {
        "step": {"actor": "a", "from": "waiting", "delay": fixed("42min"),
                 "guard": "not go", "set": {"go": True}},
        "meet": {"actor": "a", "from": "waiting", "guard": "go", "delay": fixed("6min"),
                 "trigger": "meet"},
    }  # fmt: skip
    row, lines = engine_trace(load_data(data), seed=0)
    assert row.outcome == "censored"
    kinds = [(line.kind, line.text) for line in lines if line.time == 0.8]
    assert kinds[0] == ("window", "window w closes")
    assert ("cancel", "meet: no longer possible") in kinds
    assert not any(line.kind == "fire" and line.text == "meet" for line in lines)


def test_a_clock_due_exactly_at_the_horizon_is_censored(load_data):
    data = base_scenario()
    data["calendar"]["horizon"] = "48h"
    data["actions"]["meet"]["delay"] = fixed("48h")
    assert {r.outcome for r in negosim.rows(load_data(data), 3, seed=0)} == {"censored"}
    data["actions"]["meet"]["delay"] = fixed("47h 59min")
    assert {r.outcome for r in negosim.rows(load_data(data), 3, seed=0)} == {"held"}


@pytest.mark.parametrize(("delay", "day"), [("24h", "2024-01-02"), ("23h 59min", "2024-01-01")])
def test_a_meeting_at_midnight_is_on_the_new_day_everywhere(load_data, delay, day, tmp_path):
    data = base_scenario()
    data["actions"]["meet"]["delay"] = fixed(delay)
    cs = load_data(data)
    est = negosim.simulate(cs, runs=10, seed=0)
    assert {k: v for k, v in est.by_day.items() if v} == {day: 1.0}
    row, lines = engine_trace(cs, seed=0)
    assert row.ticks == to_ticks(row.time or 0)
    end = [line for line in lines if line.kind == "end"][0]
    from negosim.output.terminal import trace_rows

    assert trace_rows(cs, [end])[0]["time"].startswith(day)
    t = Tally()
    t.add(row)
    assert list(t.held_minutes) == [row.ticks // 60_000]
    # The HTML report: the by-day table and the timeline put it on the same day.
    from negosim.output.htmlreport import scenario_report

    label = datetime.fromisoformat(day).strftime("%a %d %b")
    page = scenario_report(cs, est)
    held_that_day = {  # the by-day table: day, four parts of day, held that day, by its end
        m[0]: re.findall(r"<td class=num>([^<]*)</td>", m[1])[-2]
        for m in re.findall(r"<tr><td>(\w{3} \d\d \w{3})</td>(.*?)</tr>", page)
    }
    assert {d: v for d, v in held_that_day.items() if v != "0.0%"} == {label: "100.0%"}
    assert f"{label} {'00:00' if delay == '24h' else '23:59'}" in page  # the timeline
    # The plots: the step of P(held by t) and the held day's bar.
    pytest.importorskip("matplotlib")
    from negosim.output import plots

    times, p, _, _ = plots.held_curve(est, cs.start.astimezone(cs.tz), cs.horizon)
    step = [t for t, a, b in zip(times, p, p[1:], strict=False) if b > a]
    assert [t.date().isoformat() for t in step] == [day]
    fig = plots.when(est)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    heights = {ticks[round(b.get_x() + b.get_width() / 2)]: b.get_height()
               for b in fig.axes[0].patches if b.get_height()}  # fmt: skip
    assert heights == {label: pytest.approx(1.0)}


def test_ticks_are_milliseconds() -> None:
    assert TICKS_PER_HOUR == 3_600_000
    assert to_ticks(0.7) + to_ticks(0.1) == to_ticks(0.8)  # floats: 0.7 + 0.1 != 0.8
    assert to_ticks(1 / 3) == 1_200_000


# --- keyed streams -----------------------------------------------------------------


def test_streams_in_python_and_numpy_agree_bit_for_bit() -> None:
    ids = (streams.stream_id("delay:action:a"), streams.stream_id("choice:action:a"), 7)
    reps = np.arange(40, 60)
    for s in range(3):
        vec = streams.uniforms(2**70 + 3, reps[:, None], ids[s], np.arange(6)[None, :])
        for r in range(20):
            d = streams.Draws(ids, 2**70 + 3, 40 + r)
            assert [d.u(s) for _ in range(6)] == vec[r].tolist()
    first = streams.block(5, 10, 12, ids)
    for r, row in zip(range(10, 12), first, strict=True):
        plain, pre = streams.Draws(ids, 5, r), streams.Draws(ids, 5, r, row)
        pattern = [0, 1, 2, 0, 0, 0, 0, 2, 1]
        assert [plain.u(s) for s in pattern] == [pre.u(s) for s in pattern]


def test_stream_uniforms_look_uniform() -> None:
    from scipy import stats

    u = streams.uniforms(1, np.arange(20_000)[:, None], 99, np.arange(5)[None, :]).ravel()
    assert u.min() >= 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    # neighbouring replications and draws are not correlated
    grid = u.reshape(20_000, 5)
    assert abs(np.corrcoef(grid[:-1, 0], grid[1:, 0])[0, 1]) < 0.03
    assert abs(np.corrcoef(grid[:, 0], grid[:, 1])[0, 1]) < 0.03


def test_seeds_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="seed must be between 0 and 2\\*\\*128 - 1"):
        streams.run_key(-1)


def test_one_stream_per_clock_an_unused_draw_count_changes_nothing_else(load_data):
    """A second action that is re-enabled more often draws more numbers from its own
    stream only: the first action's delays are the same replication for replication."""
    data = base_scenario()
    data["actions"]["meet"]["delay"] = {"dist": "exponential", "mean": "30h"}
    base = [r.ticks for r in negosim.rows(load_data(data), 300, seed=4)]
    data["facts"] = {"x": {"type": "number", "initial": 0}}
    data["actions"]["noise"] = {"actor": "a", "from": "waiting", "guard": "x < 100",
                                "delay": {"dist": "exponential", "mean": "1h"},
                                "set": {"x": "x + 1"}}  # fmt: skip
    noisy = [r.ticks for r in negosim.rows(load_data(data), 300, seed=4)]
    assert base == noisy


# --- one replication object: threads, backends ----------------------------------------


def test_threads_sharing_one_engine_give_the_same_rows(switchy: None) -> None:
    cs = negosim.load(MUNICH)
    engine = Engine(cs)
    expected = list(engine.run_block(3, 0, 400))

    def chunk(a: int) -> list[Any]:
        return list(engine.run_block(3, a, a + 50))

    with ThreadPoolExecutor(max_workers=4) as pool:
        got = [row for part in pool.map(chunk, range(0, 400, 50)) for row in part]
    assert got == expected
    single = [engine.run(3, i) for i in (0, 57, 399)]
    assert single == [expected[0], expected[57], expected[399]]


def test_traces_in_threads_do_not_mix(switchy: None) -> None:
    cs = negosim.load(MUNICH)
    expected = [engine_trace(cs, seed=s) for s in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda s: engine_trace(cs, seed=s), range(8)))
    assert got == expected


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    out.pop("elapsed_s")
    return out


def test_same_numbers_on_every_backend_including_threaded_dask_workers(capsys):
    """--workers 1 and 2, --dask-local 2 and a scheduler whose worker runs 4 threads."""
    distributed = pytest.importorskip("distributed")
    base = ["run", str(MUNICH), "--runs", "3000", "--seed", "11", "--format", "json"]
    one = _json([*base, "--workers", "1"], capsys)
    assert _json([*base, "--workers", "2"], capsys) == one
    assert _json([*base, "--dask-local", "2"], capsys) == one
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=4, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(sys.setswitchinterval, 1e-6)  # make races likely if there were any
        assert _json([*base, "--scheduler", cluster.scheduler_address], capsys) == one


# --- cost ---------------------------------------------------------------------------


def test_replications_leave_no_garbage_cycles() -> None:
    cs = negosim.load(MUNICH)
    engine = Engine(cs)
    list(engine.run_block(0, 0, 5))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what the collector finds, to look at it
    try:
        for _ in engine.run_block(0, 0, 200):
            pass
        engine_trace(cs, seed=1)
        gc.collect()
        # Other tests may leave threads that make garbage meanwhile: look only
        # for what a replication is made of.
        ours = (Replication, simpy.Environment, simpy.events.Event)
        found = [type(x).__name__ for x in gc.garbage if isinstance(x, ours)]
        assert found == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_the_protocol_runs_on_a_table_read_from_the_transitions_machine() -> None:
    cs = negosim.load(MUNICH)
    engine = Engine(cs)
    for trigger, event in cs.machine.events.items():
        for source, transitions in event.transitions.items():
            dest = transitions[0].dest
            i, j = cs.states.index(source), cs.states.index(dest)
            assert engine.next_state[trigger][i] == j
    assert cs.machine.models == []  # no shared model a replication could write


def test_the_compiled_scenario_is_not_written_by_runs(tmp_path: Path) -> None:
    cs = negosim.load(MUNICH)
    before = (list(cs.initial), cs.clocks, cs.edges, cs.stays)
    negosim.simulate(cs, runs=200, seed=0)
    engine_trace(cs, seed=0)
    assert (list(cs.initial), cs.clocks, cs.edges, cs.stays) == before


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_traced_single_and_block_runs_give_the_same_rows(path: Path) -> None:
    """The plain replication (fast paths, precomputed draws), a single run and a
    traced run are the same replication."""
    engine = Engine(negosim.load(path))
    block = list(engine.run_block(5, 100, 160))
    assert [engine.run(5, i) for i in range(100, 160)] == block
    assert [engine.trace(5, i)[0] for i in range(100, 160)] == block


def _two_options(load_data: Any, yes: float, no: float) -> negosim.CompiledScenario:
    data = base_scenario()
    meet = data["actions"]["meet"]
    del meet["trigger"]
    meet["delay"] = fixed("1h")
    meet["options"] = {
        "yes": {"weight": yes, "trigger": "meet"},
        "no": {"weight": no, "trigger": "fail"},
    }
    return load_data(data)


def test_weights_whose_sum_overflows_are_rescaled(load_data: Any) -> None:
    """1e308 + 1e308 is inf in floats: the choice must still be 50/50, not 'last wins'."""
    est = negosim.simulate(_two_options(load_data, 1e308, 1e308), runs=4000, seed=2)
    assert abs(est.p_meeting - 0.5) < 4.5 * (0.25 / 4000) ** 0.5


@pytest.mark.parametrize(("yes", "no"), [(0.0, 5e-324), (5e-324, 0.0)])
def test_a_zero_weight_is_never_chosen(load_data: Any, yes: float, no: float) -> None:
    rows = list(negosim.rows(_two_options(load_data, yes, no), 300, seed=1))
    assert {r.outcome for r in rows} == ({"failed"} if yes == 0 else {"held"})
