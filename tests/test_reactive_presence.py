"""Presence that reacts, and guarded scheduled events (issue 10, point 3)."""

from __future__ import annotations

import math

import pytest

from negosim import load_string, simulate
from negosim.compiler.tables import CompiledScenario
from negosim.engine.simulation import Engine, Row, TraceLine
from negosim.errors import ScenarioError

BASE = """\
id: reactive
title: Presence that reacts
calendar:
  timezone: Asia/Seoul
  start: 2024-05-14 08:00
  horizon: 2024-05-14 20:00
  windows:
    conference: {start: 2024-05-14 09:00, end: 2024-05-14 20:00}
actors:
  a: {name: Minister A, short: A, present: [{window: conference}]}
  b:
    name: Minister B
    short: B
    present:
      - window: conference
        arrival: {dist: uniform, low: 0h, high: 3h}
protocol:
  states: [requested, accepted, held, declined]
  initial: requested
  transitions:
    - {trigger: accept, source: requested, dest: accepted}
    - {trigger: decline, source: requested, dest: declined}
    - {trigger: meet, source: accepted, dest: held}
  outcomes: {success: [held], failure: [declined]}
"""

def trace(cs: CompiledScenario, seed: int) -> tuple[Row, list[TraceLine]]:
    return Engine(cs).trace(seed, 0)


ANSWER = """\
actions:
  answer:
    actor: b
    from: requested
    delay: {dist: fixed, value: 0h}
    options:
      yes: {weight: 1, trigger: accept}
"""


def test_a_guarded_scheduled_event_happens_only_if_its_guard_holds() -> None:
    # B arrives uniformly between 09:00 and 12:00; the meeting announced for 10:00
    # happens if both are there then: P = 1/3.
    text = BASE + ANSWER + """\
events:
  announced:
    text: The meeting announced for 10:00
    at: 2024-05-14 10:00
    guard: present('a') and present('b')
    trigger: meet
"""
    cs = load_string(text)
    runs = 8000
    est = simulate(cs, runs=runs, seed=11)
    se = math.sqrt(1 / 3 * 2 / 3 / runs)
    assert abs(est.p_meeting - 1 / 3) < 4.5 * se
    assert est.outcomes.get("censored", 0) + est.outcomes.get("held", 0) == runs
    texts = set()
    for seed in range(12):
        _, lines = trace(cs, seed=seed)
        texts |= {line.text for line in lines if line.kind == "event"}
    assert texts == {
        "The meeting announced for 10:00 (present('a') and present('b') holds)",
        "The meeting announced for 10:00: does not happen "
        "(present('a') and present('b') does not hold)",
    }


def test_the_trace_says_when_an_events_trigger_does_nothing() -> None:
    # Nobody has accepted at 09:00, so 'meet' has no transition from 'requested'; the
    # protocol stays put, and the trace says why rather than leaving the reader to guess.
    text = BASE + """\
actions:
  answer:
    actor: a
    from: requested
    delay: {dist: fixed, value: 2h}
    trigger: accept
events:
  early: {text: Too early, at: 2024-05-14 09:00, trigger: meet}
  later: {text: In time, at: 2024-05-14 11:00, trigger: meet}
"""
    row, lines = trace(load_string(text), seed=0)
    said = [(round(line.time, 3), line.text) for line in lines if line.kind in ("event", "state")]
    assert said == [
        (1.0, "Too early"),
        (1.0, "protocol: 'meet' does nothing in state requested (no transition from it)"),
        (2.0, "protocol: requested → accepted"),
        (3.0, "In time"),
        (3.0, "protocol: accepted → held"),
    ]
    assert row.outcome == "held"


LEAVES_ON_NO = BASE + """\
actions:
  answer:
    actor: b
    from: requested
    guard: present('b')
    delay: {dist: fixed, value: 2h}
    options:
      yes: {weight: 1, trigger: accept}
      no: {weight: 1, present: {b: false}, text: B says no and goes home}
  meet:
    actor: a
    from: accepted
    guard: present('a') and present('b')
    delay: {dist: fixed, value: 30min}
    trigger: meet
"""
"""B answers after 2 h; a no sends B home (used by tests/test_batch.py too)."""


def test_an_option_can_make_an_actor_leave() -> None:
    text = LEAVES_ON_NO
    cs = load_string(text)
    est = simulate(cs, runs=4000, seed=2)
    # Half say no and leave: they stay 'requested' (no decline) until the horizon.
    assert est.outcomes["censored"] + est.outcomes["held"] == 4000
    assert abs(est.p_meeting - 0.5) < 4.5 * math.sqrt(0.25 / 4000)
    for seed in range(20):
        row, lines = trace(cs, seed=seed)
        if row.outcome == "censored":
            kinds = [(line.kind, line.text) for line in lines if line.actor == "b"]
            assert ("leave", "B leaves the venue") in kinds
            assert kinds.index(("leave", "B leaves the venue")) > kinds.index(
                ("fire", "answer: B says no and goes home")
            )
            break
    else:
        pytest.fail("no run where B said no")


def test_an_event_can_make_an_actor_leave_early_and_come_back() -> None:
    # A typhoon: A leaves at 11:00 and is back at 15:00 (a guarded event: only if
    # the talks are still on). The meeting needs both there for 6 hours on end.
    text = BASE + ANSWER + """\
  meet:
    actor: a
    from: accepted
    guard: present('a') and present('b')
    delay: {dist: fixed, value: 3h}
    trigger: meet
events:
  typhoon: {at: 2024-05-14 11:00, present: {a: false}, text: A is called away}
  back:
    at: 2024-05-14 15:00
    guard: "not present('a')"
    present: {a: true}
    text: A comes back
"""
    cs = load_string(text)
    est = simulate(cs, runs=500, seed=3, keep_rows=True)
    assert est.p_meeting == 1.0
    # No meeting could be completed before the typhoon (B is there at 09:00 at the
    # earliest, 3h delay, A gone at 11:00), so every meeting is at 18:00.
    assert {r["hours"] for r in est.rows} == {10.0}
    row, lines = trace(cs, seed=0)
    moves = [(line.time, line.kind, line.text) for line in lines if line.actor == "a"]
    assert (3.0, "leave", "A leaves the venue") in moves
    assert (7.0, "arrive", "A arrives at the venue") in moves


def test_a_leave_caused_by_a_fact_change() -> None:
    # "B leaves if the talks are declined": a zero-delay action watching the fact.
    text = BASE.replace("initial: requested", "initial: requested") + """\
facts:
  snubbed: {type: bool, initial: false}
actions:
  snub:
    actor: a
    from: requested
    delay: {dist: fixed, value: 4h}
    set: {snubbed: true}
  b_goes_home:
    actor: b
    guard: snubbed and present('b')
    delay: {dist: fixed, value: 0h}
    present: {b: false}
  answer:
    actor: b
    from: requested
    guard: present('b') and not snubbed
    delay: {dist: fixed, value: 100h}
    trigger: accept
"""
    cs = load_string(text)
    row, lines = trace(cs, seed=0)
    leaves = [line for line in lines if line.kind == "leave" and line.actor == "b"]
    assert [line.time for line in leaves] == [4.0]


def test_existing_draws_do_not_move() -> None:
    # The same scenario with and without an (inert) guarded scheduled event: the
    # engine's draws are the same, so are the results.
    plain = BASE + ANSWER + """\
  meet:
    actor: a
    from: accepted
    guard: present('a') and present('b')
    delay: {dist: exponential, mean: 2h}
    trigger: meet
"""
    inert = plain + """\
events:
  nothing: {at: 2024-05-14 10:00, guard: "false", trigger: meet}
"""
    a = simulate(load_string(plain), runs=3000, seed=9)
    b = simulate(load_string(inert), runs=3000, seed=9)
    assert a.outcomes == b.outcomes and a.p_meeting == b.p_meeting


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    present: {c: false}\n",
         "actions.answer.present.c: unknown actor 'c'; declared: a, b"),
        ("    present: {a: maybe}\n", "actions.answer.present.a: "),
    ],
)  # fmt: skip
def test_presence_effects_are_checked(extra: str, message: str) -> None:
    text = BASE + ANSWER.replace("    options:\n      yes: {weight: 1, trigger: accept}\n",
                                 "    trigger: accept\n" + extra)  # fmt: skip
    with pytest.raises(ScenarioError) as info:
        load_string(text)
    assert any(f"{p.path}: {p.message}".startswith(message) for p in info.value.problems), [
        str(p) for p in info.value.problems
    ]


def test_a_scheduled_event_takes_no_window() -> None:
    text = BASE + ANSWER + "events:\n  e: {at: 2024-05-14 10:00, window: conference}\n"
    with pytest.raises(ScenarioError) as info:
        load_string(text)
    assert "for a scheduled event write guard: in_window('...')" in str(info.value)
