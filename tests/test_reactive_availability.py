"""Availability that reacts (``available:`` effects, ``available()``) and events with
``when:`` (issue 10, point 3): exact instants, closed forms, exact analysis, messages."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from negosim import load, load_string, simulate
from negosim.analysis.ctmc import analyze
from negosim.compiler.tables import CompiledScenario
from negosim.engine.simulation import TICKS_PER_HOUR, Engine, Row, TraceLine
from negosim.errors import ScenarioError, SimulationError
from negosim.output.explain import explain

HEAD = """\
id: avail
title: Availability and when
calendar:
  timezone: UTC
  start: 2024-05-14 00:00
  horizon: 2024-05-15 00:00
  windows:
    talks: {start: 2024-05-14 10:00, end: 2024-05-14 20:00}
actors:
  a: {name: Minister A, short: A, present: [{from: 2024-05-14 00:00, until: 2024-05-15 00:00}]}
  w: {name: Wang Yi, short: Wang, present: [{from: 2024-05-14 00:00, until: 2024-05-15 00:00}]}
protocol:
  states: [requested, held, declined]
  initial: requested
  transitions:
    - {trigger: meet, source: requested, dest: held}
    - {trigger: decline, source: requested, dest: declined}
  outcomes: {success: [held], failure: [declined]}
"""


def trace(cs: CompiledScenario, seed: int = 0) -> tuple[Row, list[TraceLine]]:
    return Engine(cs).trace(seed, 0)


def hours(row: Row) -> float:
    assert row.ticks is not None
    return row.ticks / TICKS_PER_HOUR


# --- availability ---------------------------------------------------------------------


CRISIS = HEAD + """\
actions:
  meet:
    actor: a
    delay: {dist: fixed, value: 3h}
    trigger: meet
events:
  crisis: {at: 2024-05-14 02:00, available: {a: false}, text: A is called into a crisis meeting}
  back: {at: 2024-05-14 04:00, available: {a: true}, text: A is back}
"""


def test_unavailable_then_available_restarts_the_delay() -> None:
    # Enabled at 0 (due 3:00), cancelled at 2:00, enabled again at 4:00 with a fresh
    # 3 h delay: the meeting is at 7:00 (restart), not at 5:00 (resume).
    cs = load_string(CRISIS)
    row, lines = trace(cs)
    assert row.outcome == "held" and hours(row) == 7.0
    said = [(line.time, line.kind, line.text) for line in lines if line.actor == "a"]
    assert (2.0, "unavailable", "A cannot act until further notice") in said
    assert (4.0, "available", "A can act again") in said


def test_windows_still_apply_on_top_of_the_override() -> None:
    # A may act only during 'talks' (10:00-20:00); the crisis ends at 04:00, so the
    # action starts at 10:00 (both must allow).
    cs = load_string(CRISIS.replace("short: A, present", "short: A, available: [talks], present"))
    row, _ = trace(cs)
    assert hours(row) == 13.0


def test_available_in_expressions() -> None:
    # Wang acts only while A can: available('a') is the override and A's window.
    text = HEAD.replace("short: A, present", "short: A, available: [talks], present") + """\
actions:
  meet:
    actor: w
    guard: available('a')
    delay: {dist: fixed, value: 1h}
    trigger: meet
events:
  crisis: {at: 2024-05-14 10:30, available: {a: false}}
  back: {at: 2024-05-14 12:00, available: {a: true}}
"""
    row, _ = trace(load_string(text))
    # available from 10:00 (window), off at 10:30, on again at 12:00: due 13:00
    assert hours(row) == 13.0


def test_an_unavailable_actor_stays_so_without_an_effect_setting_it_back() -> None:
    cs = load_string(CRISIS.replace("  back: {at: 2024-05-14 04:00, available: {a: true}, "
                                    "text: A is back}\n", ""))  # fmt: skip
    assert not [w for w in cs.warnings if "available" in w.path]  # nothing to warn about
    row, _ = trace(cs)
    assert row.outcome == "censored"


def test_an_option_can_make_an_actor_unavailable() -> None:
    text = HEAD + """\
actions:
  busy:
    actor: w
    delay: {dist: fixed, value: 1h}
    options:
      crisis: {weight: 1, available: {a: false}}
  meet:
    actor: a
    delay: {dist: fixed, value: 2h}
    trigger: meet
"""
    row, _ = trace(load_string(text))
    assert row.outcome == "censored"


def test_closed_form_an_exponential_action_with_an_unavailable_interval() -> None:
    # Rate 0.1/h, unavailable during [2h, 8h): P(fired by T = 24h) = 1 - exp(-0.1 (24 - 6)).
    text = CRISIS.replace("{dist: fixed, value: 3h}", "{dist: exponential, mean: 10h}")
    text = text.replace("2024-05-14 04:00", "2024-05-14 08:00")
    cs = load_string(text)
    expected = 1 - math.exp(-0.1 * (24 - 6))
    assert abs(analyze(cs).p_meeting - expected) < 1e-9
    runs = 20_000
    est = simulate(cs, runs=runs, seed=5)
    assert abs(est.p_meeting - expected) < 4.5 * math.sqrt(expected * (1 - expected) / runs)


# --- when: events -----------------------------------------------------------------------


WANG = HEAD + """\
facts:
  talks_failed: {type: bool, initial: false}
actions:
  meet:
    actor: a
    guard: present('w')
    delay: {dist: exponential, mean: 10h}
    trigger: meet
  fail:
    actor: a
    delay: {dist: exponential, mean: 5h}
    set: {talks_failed: true}
events:
  wang_leaves: {when: talks_failed, present: {w: false}, text: Wang Yi leaves}
"""


def test_closed_form_someone_leaves_when_the_talks_fail() -> None:
    # meet (rate 0.1) races fail (rate 0.2); once the talks fail Wang leaves and the
    # meeting is impossible: P = 0.1 / 0.3 (1 - exp(-0.3 T)).
    cs = load_string(WANG)
    expected = 0.1 / 0.3 * (1 - math.exp(-0.3 * 24))
    assert abs(analyze(cs).p_meeting - expected) < 1e-9
    runs = 20_000
    est = simulate(cs, runs=runs, seed=3)
    assert abs(est.p_meeting - expected) < 4.5 * math.sqrt(expected * (1 - expected) / runs)


def test_trace_shows_the_when_event_and_its_condition() -> None:
    cs = load_string(WANG)
    for seed in range(30):
        row, lines = trace(cs, seed)
        texts = [(line.kind, line.text) for line in lines]
        if ("event", "Wang Yi leaves (talks_failed has become true)") in texts:
            i = texts.index(("event", "Wang Yi leaves (talks_failed has become true)"))
            assert texts[i - 1] == ("fact", "talks_failed: false → true")
            assert texts[i + 1] == ("leave", "Wang leaves the venue")
            assert lines[i].time == lines[i - 1].time
            break
    else:
        pytest.fail("no run where the talks failed")


def test_a_when_event_comes_before_a_clock_due_at_the_same_instant() -> None:
    # The window opens at 10:00; 'alarm' turns true then and stops 'meet', which is
    # also due at 10:00 (enabled at 0 with a fixed 10 h delay): the when: event comes
    # right after the window edge, before the clock, which is then cancelled.
    text = HEAD + """\
facts:
  alarm: {type: bool, initial: false}
actions:
  meet:
    actor: a
    guard: not alarm
    delay: {dist: fixed, value: 10h}
    trigger: meet
  decline:
    actor: w
    guard: alarm
    delay: {dist: fixed, value: 0h}
    trigger: decline
events:
  alarm_raised: {when: "in_window('talks')", set: {alarm: true}}
"""
    row, lines = trace(load_string(text))
    assert row.outcome == "declined" and hours(row) == 10.0
    kinds = [(line.kind, line.text) for line in lines if line.time == 10.0]
    assert kinds[:3] == [
        ("window", "window talks opens"),
        ("event", "alarm_raised (in_window('talks') has become true)"),
        ("fact", "alarm: false → true"),
    ]


def test_a_when_event_set_off_by_a_firing_comes_before_the_next_clock() -> None:
    # 'first' and 'second' are both due at 2:00; 'first' sets x, whose when: event
    # sets stop, and 'second' (declared after 'first') is cancelled.
    text = HEAD + """\
facts:
  x: {type: bool, initial: false}
  stop: {type: bool, initial: false}
actions:
  first:
    actor: a
    delay: {dist: fixed, value: 2h}
    set: {x: true}
  second:
    actor: w
    guard: not stop
    delay: {dist: fixed, value: 2h}
    trigger: meet
events:
  halt: {when: x, set: {stop: true}}
"""
    row, lines = trace(load_string(text))
    assert row.outcome == "censored"
    assert ("fire", "second") not in [(line.kind, line.text) for line in lines]


TOGGLE = HEAD + """\
facts:
  x: {type: bool, initial: false}
  n: {type: number, initial: 0}
actions:
  toggle:
    actor: a
    delay: {dist: fixed, value: 1h}
    set: {x: not x}
events:
  count: {when: x, set: {n: n + 1}, text: x turned true}
  start: {when: not x, text: x is false}
"""


def test_when_events_are_edge_triggered_and_re_arm() -> None:
    # x toggles every hour from 1:00 (true at 1, 3, ..., 23): 'count' happens 12 times,
    # once per rise; 'start' is true at the start, so it happens at 0:00, then at
    # each fall (2, 4, ..., 22). Nothing loops although the effects leave x true.
    cs = load_string(TOGGLE)
    row, lines = trace(cs)
    rises = [line.time for line in lines if line.text.startswith("x turned true")]
    falls = [line.time for line in lines if line.text.startswith("x is false")]
    assert rises == [float(h) for h in range(1, 24, 2)]
    assert falls == [0.0] + [float(h) for h in range(2, 24, 2)]
    # every happening counts: the horizon, two window edges, 23 firings, 24 when: events
    assert row.events == 1 + 2 + 23 + 24
    counts = [line.text for line in lines if line.kind == "fact" and line.text.startswith("n:")]
    assert counts[-1] == "n: 11 → 12"


def test_when_events_that_set_each_other_off_are_a_zero_time_loop() -> None:
    text = HEAD + """\
facts:
  x: {type: bool, initial: false}
actions:
  meet:
    actor: a
    delay: {dist: fixed, value: 1h}
    trigger: meet
events:
  up: {when: not x, set: {x: true}}
  down: {when: x, set: {x: false}}
"""
    cs = load_string(text)
    with pytest.raises(SimulationError, match="up → down → up keeps repeating without time"):
        Engine(cs).run(1, 0)
    exponential = load_string(
        text.replace("{dist: fixed, value: 1h}", "{dist: exponential, mean: 1h}")
    )
    with pytest.raises(SimulationError, match="keep setting each other off"):
        analyze(exponential)


def test_a_when_event_can_end_the_run_at_the_start() -> None:
    text = HEAD + """\
facts:
  ready: {type: bool, initial: true}
actions:
  meet:
    actor: a
    delay: {dist: fixed, value: 1h}
    trigger: meet
events:
  done: {when: ready, trigger: decline}
"""
    row, _ = trace(load_string(text))
    assert row.outcome == "declined" and hours(row) == 0.0


def test_explain_describes_both() -> None:
    text = explain(load_string(WANG + "  crisis: {at: 2024-05-14 02:00, available: {a: false}}\n"))
    assert "as soon as talks_failed" in text
    assert "then Wang Yi leaves the venue" in text
    assert "then Minister A cannot act until further notice" in text


# --- messages and lints -----------------------------------------------------------------


def located(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load(path)
    return [str(p) for p in info.value.problems]


def test_an_unknown_actor_in_available_is_located_with_did_you_mean(tmp_path: Path) -> None:
    text = CRISIS.replace("available: {a: false}", "available: {aa: false}")
    problems = located(tmp_path, text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "crisis:" in t)
    col = text.splitlines()[line - 1].index("aa: false") + 1  # the name, not its value
    assert problems == [
        f"{tmp_path / 'case.yaml'}:{line}:{col}: events.crisis.available.aa: unknown actor "
        "'aa' (did you mean 'a'?); declared: a, w"
    ]


def test_a_misspelt_name_in_when_is_located(tmp_path: Path) -> None:
    problems = located(tmp_path, WANG.replace("when: talks_failed", "when: talks_faild"))
    line = next(i for i, t in enumerate(WANG.splitlines(), 1) if "wang_leaves:" in t)
    col = WANG.splitlines()[line - 1].index("talks_failed") + 1
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{tmp_path / 'case.yaml'}:{line}:{col}: events.wang_leaves.when: unknown name "
        "'talks_faild' (did you mean 'talks_failed'?)"
    )


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("{when: talks_failed, at: 2024-05-14 03:00}", "give exactly one of 'at'"),
        ("{when: talks_failed, window: talks}", "'window' does not apply to an event with 'when'"),
        ("{when: talks_failed, guard: 'true'}", "'guard' does not apply to an event with 'when'"),
    ],
)
def test_when_takes_no_other_timing(tmp_path: Path, event: str, message: str) -> None:
    text = WANG.replace("{when: talks_failed, present: {w: false}, text: Wang Yi leaves}", event)
    problems = located(tmp_path, text)
    assert any("events.wang_leaves" in p and message in p for p in problems), problems


def test_options_take_available_inside_only() -> None:
    text = HEAD + """\
actions:
  meet:
    actor: a
    delay: {dist: fixed, value: 1h}
    available: {w: false}
    options:
      yes: {trigger: meet}
"""
    with pytest.raises(ScenarioError, match="'available'"):
        load_string(text)


def test_a_when_condition_that_never_changes_is_warned() -> None:
    text = WANG.replace("when: talks_failed", "when: p_leave > 0.5") + (
        "params:\n  p_leave: {default: 0.7, assumption: a test}\n"
    )
    cs = load_string(text)
    messages = [f"{w.path}: {w.message}" for w in cs.warnings if w.path.startswith("events")]
    assert messages == [
        "events.wang_leaves.when: warning: the condition can never change during a run; it reads "
        "p_leave, which never changes: 'wang_leaves' happens once, at the start; use 'at:' "
        "for a fixed time, or test something that changes"
    ]
    assert load_string(WANG).warnings[0].path == "calendar.windows.talks"  # unused
    assert len(load_string(WANG).warnings) == 1  # talks_failed is set by 'fail'
    # presence and windows change: no warning
    windows = WANG.replace("when: talks_failed", "when: \"in_window('talks')\"")
    assert load_string(windows).warnings == ()


def test_a_fact_only_a_when_event_sets_counts_as_changing() -> None:
    # 'gone' is set by a when: event only; the guard reading it is not dead.
    text = WANG.replace("present: {w: false}, text: Wang Yi leaves}",
                        "set: {gone: true}, text: Wang Yi leaves}") + (  # fmt: skip
        "  after: {when: gone, present: {w: false}}\n"
    ).replace("facts:\n", "")
    text = text.replace("  talks_failed: {type: bool, initial: false}\n",
                        "  talks_failed: {type: bool, initial: false}\n"
                        "  gone: {type: bool, initial: false}\n")  # fmt: skip
    assert [w.path for w in load_string(text).warnings] == ["calendar.windows.talks"]


RICH = """\
id: rich
title: Availability and when, with randomness everywhere
calendar:
  timezone: Europe/Berlin
  start: 2024-05-14 06:00
  horizon: 2024-05-16 22:00
  windows:
    hours: {daily: "08:00-20:00", start: 2024-05-14, end: 2024-05-16}
    evening: {daily: "20:00-23:00", start: 2024-05-14, end: 2024-05-16}
    day2: {start: 2024-05-15 00:00, end: 2024-05-16 00:00}
actors:
  a:
    name: Minister A
    available: [hours, evening]
    present: [{from: 2024-05-14 06:00, until: 2024-05-16 22:00,
               arrival: {dist: uniform, low: 0h, high: 10h}}]
  w:
    name: Wang Yi
    available: [hours]
    present: [{from: 2024-05-14 06:00, until: 2024-05-16 22:00,
               departure: {dist: uniform, low: 0h, high: 30h}}]
facts:
  tension: {type: number, initial: 2, low: 0, high: 6}
  talks_failed: {type: bool, initial: false}
  alarm: {type: bool, initial: false}
  rises: {type: number, initial: 0}
protocol:
  states: [requested, accepted, held, declined]
  initial: requested
  transitions:
    - {trigger: accept, source: requested, dest: accepted}
    - {trigger: decline, source: [requested, accepted], dest: declined}
    - {trigger: meet, source: accepted, dest: held}
  outcomes: {success: [held], failure: [declined]}
actions:
  answer:
    actor: w
    from: requested
    guard: present('w') and available('a')
    delay: {dist: uniform, low: 0h, high: 6h}
    options:
      yes: {weight: 2, trigger: accept}
      no: {weight: 1, set: {talks_failed: true}}
      busy: {weight: 1, available: {w: false}, set: {tension: tension + 1}}
  pressure:
    actor: a
    delay: {dist: exponential, mean: 4h}
    set: {tension: tension + 1}
  calm:
    actor: a
    guard: tension > 3
    delay: {dist: fixed, value: 1h}
    set: {tension: tension - 2}
  meet:
    actor: a
    from: accepted
    guard: present('a') and present('w') and not alarm
    delay: {dist: triangular, min: 0h, mode: 1h, max: 3h}
    trigger: meet
events:
  crisis: {rate: 1.5, available: {a: false}, text: A is called into a crisis meeting}
  back: {rate: 3, guard: "not available('a') and in_window('hours')", available: {a: true, w: true}}
  wang_leaves: {when: talks_failed, present: {w: false}, text: Wang Yi leaves}
  walkout: {when: "talks_failed and not present('w')", trigger: decline}
  alarm_up: {when: "tension >= 5", set: {alarm: true, rises: rises + 1}}
  alarm_down: {when: "tension < 4", set: {alarm: false}}
  day_two: {when: "in_window('day2') and not available('w')", available: {w: true}}
  morning: {at: 2024-05-15 08:00, jitter: {dist: uniform, low: -1h, high: 1h},
            available: {a: false}, guard: "present('a')"}
"""
"""Both features with random delays, arrivals, departures, jitter, recurring windows and
cascades of ``when:`` events (compared between the engines in tests/test_batch.py)."""


def test_the_rich_scenario_exercises_every_path() -> None:
    cs = load_string(RICH)
    rows = list(Engine(cs).run_block(5, 0, 400))
    assert {r.outcome for r in rows} == {"held", "declined", "censored"}
    kinds: set[str] = set()
    texts: set[str] = set()
    for seed in range(6):
        _, lines = trace(cs, seed)
        kinds |= {line.kind for line in lines}
        texts |= {line.text.split(" (")[0] for line in lines if line.kind == "event"}
    assert {"available", "unavailable", "leave"} <= kinds
    assert {"Wang Yi leaves", "alarm_up", "alarm_down", "walkout"} <= texts


def test_analyze_honours_the_guard_of_a_scheduled_event() -> None:
    # 'announced' at 2:00 meets only if 'ready' (set at rate 0.5/h): P = 1 - exp(-1).
    text = HEAD + """\
facts:
  ready: {type: bool, initial: false}
actions:
  prepare:
    actor: a
    delay: {dist: exponential, mean: 2h}
    set: {ready: true}
events:
  announced: {at: 2024-05-14 02:00, guard: ready, trigger: meet}
"""
    assert abs(analyze(load_string(text)).p_meeting - (1 - math.exp(-1))) < 1e-9


def test_the_documented_example_has_its_closed_form() -> None:
    doc = (Path(__file__).parent.parent / "docs/scenario-format.md").read_text(encoding="utf-8")
    body = doc.split("# file: crisis-and-walkout.yaml\n")[1].split("```")[0]
    expected = 0.1 / 0.15 * (1 - math.exp(-0.15 * 18))
    assert abs(analyze(load_string(body)).p_meeting - expected) < 1e-9


def test_an_actor_an_effect_brings_is_not_warned_as_never_present() -> None:
    text = HEAD.replace(
        "  w: {name: Wang Yi, short: Wang, present: [{from: 2024-05-14 00:00, until: "
        "2024-05-15 00:00}]}",
        "  w: {name: Wang Yi, short: Wang}",
    ) + """\
actions:
  meet:
    actor: a
    guard: present('w') and in_window('talks')
    delay: {dist: fixed, value: 1h}
    trigger: meet
events:
  flies_in: {at: 2024-05-14 09:00, present: {w: true}}
"""
    cs = load_string(text)
    assert cs.warnings == ()
    assert hours(trace(cs)[0]) == 11.0
    no_effect = load_string(text.replace("present: {w: true}", "set: {}"))
    assert any("never present" in w.message for w in no_effect.warnings)
