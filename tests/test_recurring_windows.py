"""Recurring windows (``daily``), weekday filters and window groups (issue 10, point 2)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from negosim import load, load_string, simulate
from negosim.compiler.tables import CompiledScenario
from negosim.errors import ScenarioError
from negosim.output.explain import explain
from negosim.scenario.units import at_hours

HEAD = """\
id: rw
title: Recurring windows
calendar:
  timezone: Europe/Berlin
  start: 2023-03-24 00:00          # a Friday; clocks go forward on Sunday 26 March
  horizon: 2023-03-28 00:00
  windows:
{windows}
actors:
  a: {{name: A, present: [{{window: {stay}}}]}}
protocol:
  states: [talking, held]
  initial: talking
  transitions: [{{trigger: meet, source: talking, dest: held}}]
  outcomes: {{success: [held]}}
actions:
  meet:
    actor: a
    guard: {guard}
    delay: {{dist: exponential, mean: {mean}}}
    trigger: meet
"""

WINDOWS = """\
    hours: {daily: "08:00-22:00", start: 2023-03-24, end: 2023-03-27}
    late: {daily: "22:00-02:00", start: 2023-03-25, end: 2023-03-27, days: [sat]}
    program: {group: [hours, late]}
"""


def scenario(
    windows: str = WINDOWS,
    stay: str = "hours",
    guard: str = "in_window('program')",
    mean: str = "3h",
) -> CompiledScenario:
    return load_string(HEAD.format(windows=windows, stay=stay, guard=guard, mean=mean))


def problems(windows: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        scenario(windows)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_daily_hours_repeat_in_venue_time_across_a_dst_change() -> None:
    cs = scenario()
    # 08:00-22:00 local each day; Sunday's 08:00 CEST is 55 hours after Friday 00:00
    # CET, not 56: the night before lasted 9 hours.
    assert cs.windows["hours"] == ((8, 22), (32, 46), (55, 69), (79, 93))
    for a, b in cs.windows["hours"]:
        opens, closes = at_hours(cs.start, a, cs.tz), at_hours(cs.start, b, cs.tz)
        assert (opens.hour, closes.hour) == (8, 22)


def test_a_dst_gap_inside_the_hours_shortens_that_day() -> None:
    cs = scenario(WINDOWS.replace('"08:00-22:00"', '"00:00-24:00"'))
    # Whole days join into one period; Sunday has 23 hours.
    assert cs.windows["hours"] == ((0, 95),)


def test_weekdays_and_hours_across_midnight() -> None:
    cs = scenario()
    assert cs.windows["late"] == ((46, 50),)  # Saturday 22:00 to Sunday 02:00 only


def test_a_group_is_the_union_of_its_windows() -> None:
    cs = scenario()
    assert cs.windows["program"] == ((8, 22), (32, 50), (55, 69), (79, 93))
    program = [e for e in cs.edges if e.window == "program"]
    assert [(e.at, e.value) for e in program] == [
        (8, True), (22, False), (32, True), (50, False),
        (55, True), (69, False), (79, True), (93, False),
    ]  # fmt: skip


def test_a_recurring_window_gives_one_stay_per_period() -> None:
    cs = scenario()
    assert [(s.start, s.end) for s in cs.stays] == [(8, 22), (32, 46), (55, 69), (79, 93)]


def test_meetings_happen_only_inside_the_group() -> None:
    cs = scenario(stay="program", mean="30h")
    est = simulate(cs, runs=3000, seed=1, keep_rows=True)
    assert est.p_meeting > 0.5
    spans = cs.windows["program"]
    times = [r["hours"] for r in est.rows if r["held"]]
    assert times and all(any(a <= t <= b for a, b in spans) for t in times)
    # Some meetings fall in the Saturday night hours, only the group allows them.
    assert any(46 < t <= 50 for t in times)


def test_a_window_group_in_a_guard_equals_the_or_of_its_members() -> None:
    a = simulate(scenario(stay="program"), runs=2000, seed=5)
    b = simulate(
        scenario(stay="program", guard="in_window('hours') or in_window('late')"),
        runs=2000, seed=5,
    )  # fmt: skip
    assert a.outcomes == b.outcomes


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ('    w: {daily: "8-22", start: 2023-03-24, end: 2023-03-25}\n',
         "calendar.windows.w.daily: write the hours as 08:00-22:00, not '8-22'"),
        ('    w: {daily: "08:00-25:00", start: 2023-03-24, end: 2023-03-25}\n',
         "calendar.windows.w.daily: 25:00 is not a time of day"),
        ('    w: {daily: "08:00-22:00", start: 2023-03-24 08:00, end: 2023-03-25}\n',
         "calendar.windows.w.start: with 'daily', write a date such as 2023-06-02, "
         "not '2023-03-24 08:00'"),
        ('    w: {daily: "08:00-22:00", start: 2023-03-25, end: 2023-03-24}\n',
         "calendar.windows.w.end: the last date comes before the first"),
        ('    w: {daily: "08:00-22:00", start: 2023-03-24, end: 2023-03-25, days: [mon]}\n',
         "calendar.windows.w.days: no date from 'start' to 'end' falls on these days"),
        ('    w: {daily: "08:00-22:00", start: 2023-03-24, duration: 2d}\n',
         "calendar.windows.w: 'duration' does not go with 'daily' (the hours say how long "
         "each day's window is): remove it, and give 'end' (the last date)"),
        ('    w: {daily: "08:00-22:00", start: 2023-03-24}\n',
         "calendar.windows.w: with 'daily', give 'start' and 'end' (the first and last date)"),
        ("    w: {start: 2023-03-24 08:00, end: 2023-03-25 08:00, days: [mon]}\n",
         "calendar.windows.w: 'days' applies to recurring windows (with 'daily') only"),
        ("    w: {group: [nowhere]}\n",
         "calendar.windows.w.group.0: unknown window 'nowhere'; windows: w"),
        ("    w: {group: [w]}\n",
         "calendar.windows.w.group.0: 'w' is a group itself; list its windows instead"),
        ("    w: {group: []}\n", "calendar.windows.w: a group lists at least one window"),
        ("    w: {group: [x], start: 2023-03-24}\n",
         "calendar.windows.w: a group lists windows only; remove start"),
    ],
)  # fmt: skip
def test_mistakes_are_located(windows: str, message: str) -> None:
    found = problems(windows)
    assert message in found, found


def test_shipped_style_windows_are_unchanged(tmp_path: Path) -> None:
    cs = load(Path(__file__).parent.parent / "scenarios" / "tutorial.yaml")
    start = datetime(2024, 5, 14, 8, tzinfo=ZoneInfo("Europe/Vienna"))
    assert cs.start == start and cs.windows["conference"] == ((1.0, 10.0),)


def test_explain_counts_the_periods_of_a_recurring_window() -> None:
    text = " ".join(explain(scenario()).split())  # explain wraps its lines
    assert "Window hours: 08:00-22:00 each day from 2023-03-24 to 2023-03-27 (4 periods)." in text
    assert "Window late: 22:00-02:00 on sat from 2023-03-25 to 2023-03-27 (1 period)." in text


def test_an_hour_the_clocks_skip_is_moved_on_by_the_gap() -> None:
    # Sunday 26 March 2023, Berlin: 02:00 CET is followed by 03:00 CEST. "02:30" does
    # not exist; it is read with the offset before the change (CET), i.e. 03:30 CEST.
    windows = '    hours: {daily: "02:30-04:00", start: 2023-03-26, end: 2023-03-26}\n'
    cs = scenario(windows, guard="in_window('hours')")
    ((a, b),) = cs.windows["hours"]
    opens, closes = at_hours(cs.start, a, cs.tz), at_hours(cs.start, b, cs.tz)
    assert (f"{opens:%H:%M %Z}", f"{closes:%H:%M %Z}") == ("03:30 CEST", "04:00 CEST")


def test_hours_over_before_the_start_give_no_stay() -> None:
    # The first day's 08:00-22:00 is over when the scenario starts at 23:00: the actor
    # is not at the venue for an instant at the start (no arrival and departure at 0).
    text = HEAD.format(windows=WINDOWS, stay="hours", guard="in_window('program')", mean="3h")
    cs = load_string(text.replace("start: 2023-03-24 00:00", "start: 2023-03-24 23:00"))
    assert [(s.start, s.end) for s in cs.stays] == [(9, 23), (32, 46), (56, 70)]
    from negosim.runs.runner import trace

    _, lines = trace(cs, 1, 0)
    assert not [line for line in lines if line.time == 0 and line.kind in ("arrive", "leave")]


def test_zone_names_follow_dst_changes() -> None:
    from negosim.scenario.units import zone_label, zone_names

    berlin = ZoneInfo("Europe/Berlin")
    spring = zone_names(datetime(2023, 3, 24, tzinfo=berlin), 96, berlin)
    assert [(f"{t:%d %H:%M}", n) for t, n in spring] == [("24 00:00", "CET"), ("26 03:00", "CEST")]
    assert zone_label(spring) == "CET/CEST"
    autumn = zone_names(datetime(2023, 10, 28, 12, tzinfo=berlin), 48, berlin)
    assert [(f"{t:%d %H:%M}", n) for t, n in autumn] == [("28 12:00", "CEST"), ("29 02:00", "CET")]
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # a half-hour change, at 02:00 local
    names = zone_names(datetime(2024, 4, 6, 12, tzinfo=lord_howe), 48, lord_howe)
    assert [(f"{t:%H:%M}", n) for t, n in names] == [("12:00", "+11"), ("01:30", "+1030")]
    assert zone_label(zone_names(datetime(2023, 3, 24, tzinfo=berlin), 24, berlin)) == "CET"


def test_trace_and_explain_name_the_zone_after_a_dst_change(capsys) -> None:
    from rich.console import Console

    from negosim.output.terminal import render_trace
    from negosim.runs.runner import trace

    cs = scenario(mean="600h")
    row, lines = trace(cs, 1, 0)
    console = Console(width=200, record=True)
    render_trace(cs, row, lines, 1, console)
    out = console.export_text()
    assert "time (CET/CEST)" in out
    later = [line for line in out.splitlines() if "CEST" in line and "time (" not in line]
    assert len(later) == 1 and "Sun 26 Mar 03:00 CEST" in later[0]  # once, where it first applies
    text = " ".join(explain(cs).split())
    assert "Times are venue-local (Europe/Berlin, CET; CEST from Sun 26 Mar 2023 03:00)." in text
