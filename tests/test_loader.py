"""Validation: every problem at once, each located as FILE:LINE:COL: dotted.path: message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import base_scenario

import negosim
from negosim import Problem, ScenarioError, UsageError
from negosim.compiler.loader import load as cli_load  # the loader the CLI uses (--set wording)
from negosim.scenario.overrides import parse_set

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>[\w.]+): (?P<msg>.+)$")


def problems_of(path: Path, sets: list[tuple[str, object]] | None = None) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        cli_load(path, sets)
    problems = info.value.problems
    # the exception text is one FILE:LINE:COL: path: message line per problem
    lines = str(info.value).splitlines()
    assert len(lines) == len(problems)
    for line, p in zip(lines, problems, strict=True):
        if p.file.startswith("--set ") and not p.line:  # a value given with --set
            assert line == f"{p.file}: {p.path}: {p.message}"
            continue
        m = LINE.match(line)
        assert m, line
        assert (m["file"], int(m["line"]), int(m["col"]), m["path"]) == (
            str(path),
            p.line,
            p.col,
            p.path,
        )
    return problems


def by_path(problems: list[Problem]) -> dict[str, Problem]:
    out = {p.path: p for p in problems}
    assert len(out) == len(problems), problems  # one problem per place
    return out


MANY = """\
id: bad
title: Many problems
calendar:
  timezone: Europe/Vienna
  start: 2024-05-14 08:00
  horizon: 2024-05-14 18:00
  windows:
    conf: {start: 2024-05-14 12:00, end: 2024-05-14 09:00}
params:
  p_yes: {kind: probability, default: 1.5, assumption: invented}
  slow: {default: 3h, assumption: invented}
facts:
  stance: {type: enum, values: [cold, warm], initial: cold}
actors:
  a: {name: A, available: [nowhere]}
protocol:
  states: [asked, held, lost, orphan]
  initial: asked
  transitions:
    - {trigger: meet, source: asked, dest: held}
    - {trigger: lose, source: asked, dest: lost}
  outcomes:
    success: [held]
    failure: [lost, orphan]
preconditions:
  warm: {text: must be warm, insisted_by: ghost, holds: "stance == 'wram'"}
actions:
  go:
    actor: b
    from: [asked, limbo]
    guard: "stance == 'warm' and unknown_thing > 2"
    requires: [warm, nonexistent]
    delay: {dist: exponential, mean: -3h}
    options:
      yes: {weight: "p_yes *", trigger: meet}
      no: {weight: "1 - p_yes", trigger: lose, set: {mood: true}}
  wait:
    actor: a
    delay: {dist: fixed, value: slower}
    trigger: meet
    guard: in_window('nope') or present('zed')
"""

MANY_EXPECTED = {
    # dotted path: (line, col, message pattern)
    "calendar.windows.conf.end": (8, 42, r"^the window ends before it starts$"),
    "params.p_yes.default": (10, 39, r"must be a probability \(0 to 1\), found 1\.5"),
    "actors.a.available.0": (15, 28, r"unknown window 'nowhere'; windows: conf"),
    "protocol.outcomes.failure.1": (24, 21, r"no transition reaches the outcome state 'orphan'"),
    "preconditions.warm.insisted_by": (26, 43, r"unknown actor 'ghost'; declared: a"),
    "preconditions.warm.holds": (26, 68, r"'wram' is not one of stance's values: cold, warm"),
    "actions.go.actor": (29, 12, r"unknown actor 'b'"),
    "actions.go.from.1": (30, 19, r"unknown state 'limbo'; states: asked, held, lost, orphan"),
    "actions.go.guard": (31, 34, r"unknown name 'unknown_thing'"),
    "actions.go.requires.1": (32, 22, r"unknown precondition 'nonexistent'; declared: warm"),
    "actions.go.delay.mean": (33, 38, r"delay cannot be negative, found -3h"),
    "actions.go.options.yes.weight": (35, 22, r"syntax error.*\(in 'p_yes \*'\)"),
    "actions.go.options.no.set.mood": (36, 54, r"unknown fact 'mood'; declared: stance"),
    "actions.wait.delay.value": (
        39, 33, r"unknown parameter 'slower' \(did you mean 'slow'\?\); declared: p_yes, slow"
    ),
    "actions.wait.guard": (41, 22, r"unknown window 'nope'"),
}


def test_every_problem_is_reported_at_once(write_scenario):
    path = write_scenario(MANY)
    found = problems_of(path)
    # Two unknown names in one expression: both, each at its own column (issue 10).
    (zed,) = [p for p in found if p.message.startswith("unknown actor 'zed'")]
    assert (zed.path, zed.line, zed.col) == ("actions.wait.guard", 41, 41), zed
    assert zed.message.startswith("unknown actor 'zed'; actors: a")
    problems = by_path([p for p in found if p is not zed])
    assert set(problems) == set(MANY_EXPECTED)
    for where, (line, col, pattern) in MANY_EXPECTED.items():
        p = problems[where]
        assert (p.file, p.line, p.col) == (str(path), line, col), p
        assert re.search(pattern, p.message), p
    ordered = list(problems.values())
    assert ordered == sorted(ordered, key=lambda p: (p.line, p.col))


@pytest.mark.parametrize(
    ("guard", "line", "col"),
    [
        ("present('a') and zz > 1", 1, 29),  # plain: the column of 'zz'
        ("\"present('a') and zz > 1\"", 1, 30),  # quoted: one more for the quote
        (">\n      present('a')\n      and zz > 1", 3, 11),  # folded: 'zz' on its own line
        ("|\n      present('a')\n      and zz > 1", 3, 11),  # literal: also
        ("present('a')\n      and zz > 1", 2, 11),  # plain over two lines: also
    ],
)
def test_expression_problems_point_into_the_expression(write_scenario, guard, line, col):
    data = base_scenario()
    text = yaml.safe_dump(data, sort_keys=False)
    text = text.replace("    trigger: meet\n", f"    trigger: meet\n    guard: {guard}\n", 1)
    path = write_scenario(text)
    [problem] = problems_of(path)
    guard_line = text.splitlines().index(next(x for x in text.splitlines() if "guard:" in x))
    assert problem.path.endswith(".guard")
    assert (problem.line, problem.col) == (guard_line + line, col), problem
    assert "unknown name 'zz'" in problem.message


def test_validate_returns_the_same_problems(write_scenario):
    path = write_scenario(MANY)
    assert negosim.validate(path) == problems_of(path)
    assert negosim.validate(write_scenario(base_scenario(), "ok.yaml")) == []


SCHEMA = """\
id: bad
title: Schema problems
calendar:
  timezone: Europe/Vienna
  start: 2024-05-14 08:00
  horizon: 2024-05-14 18:00
params:
  p_yes: {kind: probabilty, default: 0.5, assumption: invented}
  n: {default: 1, assumption: invented, colour: red}
facts:
  ok: {type: boolean, initial: false}
actors:
  a: {name: [A]}
protocol:
  states: [asked, held]
  initial: asked
  transitions:
    - {trigger: meet, source: asked, dest: held}
  outcomes:
    success: [held]
actions:
  go:
    actor: a
    delay: {dist: exponentail, mean: 3h}
    trigger: meet
"""


def test_schema_problems_are_all_reported(write_scenario):
    path = write_scenario(SCHEMA)
    problems = by_path(problems_of(path))
    expected = {
        "params.p_yes.kind": (
            8,
            17,
            r"unknown kind 'probabilty' \(did you mean 'probability'\?\); kinds: number, "
            "probability",
        ),
        "params.n.colour": (9, 41, r"unknown key 'colour'"),
        "facts.ok.type": (
            11,
            14,
            r"unknown type 'boolean' \(did you mean 'bool'\?\); types: bool, number, enum",
        ),
        "actors.a.name": (13, 13, r"expected text, found a list"),
        "actions.go.delay.dist": (24, 19, r"'exponentail'.*'exponential'"),
    }
    assert set(problems) == set(expected)
    for where, (line, col, pattern) in expected.items():
        assert (problems[where].line, problems[where].col) == (line, col), problems[where]
        assert re.search(pattern, problems[where].message), problems[where]


def test_unknown_top_level_key(write_scenario):
    data = base_scenario()
    data["colour"] = "blue"
    (p,) = problems_of(write_scenario(data))
    assert p.path == "colour" and p.message == "unknown key 'colour'"
    assert p.line == len(write_scenario(data).read_text().splitlines())  # dumped last


def test_unknown_time_zone(write_scenario):
    data = base_scenario()
    data["calendar"]["timezone"] = "Europe/Viena"
    (p,) = problems_of(write_scenario(data))
    assert p.path == "calendar.timezone"
    assert re.search(r"unknown time zone 'Europe/Viena' \(use an IANA name", p.message)


@pytest.mark.parametrize(
    ("tweak", "path", "pattern"),
    [
        (
            lambda d: d["calendar"].update(horizon="-2h"),
            "calendar.horizon",
            r"horizon must come after the start",
        ),
        (
            lambda d: d["calendar"].update(start="yesterday"),
            "calendar.start",
            r"'yesterday' is not a date and time",
        ),
        (
            lambda d: d["calendar"].update(windows={"w": {"start": "5h", "duration": "-1h"}}),
            "calendar.windows.w.duration",
            r"ends before it starts",
        ),
        (
            lambda d: d["calendar"].update(windows={"w": {"start": "5h"}}),
            "calendar.windows.w",
            r"exactly one of 'end' and 'duration'",
        ),
        (
            lambda d: d["actions"]["meet"].update(delay={"dist": "fixed", "value": "-2h"}),
            "actions.meet.delay.value",
            r"delay cannot be negative",
        ),
        (
            lambda d: d["actions"]["meet"].update(delay={"dist": "fixed", "value": 2}),
            "actions.meet.delay.value",
            r"a duration needs a unit: write 2h or 2d",
        ),
        (
            lambda d: d["actions"]["meet"].update(
                delay={"dist": "uniform", "low": "3h", "high": "1h"}
            ),
            "actions.meet.delay.high",
            r"high \(1\) is below low \(3\)",
        ),
        (
            lambda d: d["actions"]["meet"].update(
                delay={"dist": "lognormal", "median": "3h", "p90": "2h"}
            ),
            "actions.meet.delay.p90",
            r"must be above the median",
        ),
        (
            lambda d: d["actions"]["meet"].update(delay={"dist": "exponential", "mean": "0h"}),
            "actions.meet.delay.mean",
            r"mean must be positive",
        ),
        (
            lambda d: d["actions"]["meet"].update(actor="zed"),
            "actions.meet.actor",
            r"unknown actor 'zed'; declared: a",
        ),
        (
            lambda d: d["actions"]["meet"].update({"from": "nowhere"}),
            "actions.meet.from",
            r"unknown state 'nowhere'",
        ),
        (
            lambda d: d["actions"]["meet"].update({"from": "held", "trigger": None}),
            "actions.meet.from",
            r"'held' is an outcome state",
        ),
        (
            lambda d: d["actions"]["meet"].update(trigger="dance"),
            "actions.meet.trigger",
            r"unknown trigger 'dance'; protocol triggers: fail, meet",
        ),
        (
            lambda d: d["actions"]["meet"].update(requires=["formal"]),
            "actions.meet.requires.0",
            r"unknown precondition 'formal'; declared: \(none\)",
        ),
        (
            lambda d: d["actions"]["meet"].update(guard="mood > 1"),
            "actions.meet.guard",
            r"unknown name 'mood'",
        ),
        (
            lambda d: d["actions"]["meet"].update(guard="present('zed')"),
            "actions.meet.guard",
            r"unknown actor 'zed'",
        ),
        (
            lambda d: d["actions"]["meet"].update(guard="__import__('os')"),
            "actions.meet.guard",
            r"unknown function '__import__'|not allowed",
        ),
        (
            lambda d: d["actions"]["meet"].update(guard="(1).real"),
            "actions.meet.guard",
            r"attribute access is not allowed",
        ),
        (
            lambda d: d["actions"]["meet"].update(guard="1 + 2"),
            "actions.meet.guard",
            r"expected .*got a number|true/false",
        ),
        (
            lambda d: d["actions"]["meet"].update(set={"mood": 1}),
            "actions.meet.set.mood",
            r"unknown fact 'mood'",
        ),
        (
            lambda d: d.update(
                params={"p": {"kind": "probability", "default": -0.1, "assumption": "x"}}
            ),
            "params.p.default",
            r"must be a probability \(0 to 1\), found -0\.1",
        ),
        (
            lambda d: d.update(params={"p": {"default": 5, "high": 3, "assumption": "x"}}),
            "params.p.default",
            r"must be at most 3 \(params\.p\.high, .*s\.yaml:\d+:\d+\), found 5",
        ),
        (
            lambda d: d.update(params={"p": {"default": 5}}),
            "params.p",
            r"give a 'source'.*or an 'assumption' note",
        ),
        (
            lambda d: d.update(facts={"s": {"type": "enum", "values": ["a", "b"], "initial": "c"}}),
            "facts.s.initial",
            r"'c' is not one of a, b",
        ),
        (
            lambda d: d.update(facts={"n": {"type": "number", "initial": 5, "low": 0, "high": 1}}),
            "facts.n.initial",
            r"outside",
        ),
        (
            lambda d: d.update(events={"e": {"at": "2099-01-01 00:00 nonsense"}}),
            "events.e.at",
            r"not a date and time",
        ),
        (
            lambda d: d.update(events={"e": {"rate": 1, "window": "nope"}}),
            "events.e.window",
            r"unknown window 'nope'",
        ),
        (
            lambda d: d.update(events={"e": {"rate": -1}}),
            "events.e.rate",
            r"rate cannot be negative",
        ),
        (
            lambda d: d["protocol"].update(initial="start"),
            "protocol.initial",
            r"unknown state 'start'",
        ),
        (
            lambda d: d["actors"]["a"].update(present=[{"window": "conf"}]),
            "actors.a.present.0.window",
            r"unknown window 'conf'",
        ),
    ],
)
def test_single_problem(write_scenario, tweak, path, pattern):
    data = base_scenario()
    tweak(data)
    file = write_scenario(data)
    problems = problems_of(file)
    assert [p.path for p in problems] == [path], problems
    assert re.search(pattern, problems[0].message), problems[0]
    assert problems[0].line >= 1 and problems[0].file == str(file)


def test_outcome_state_no_transition_reaches(write_scenario):
    data = base_scenario()
    data["protocol"]["states"].append("cancelled")
    data["protocol"]["outcomes"]["failure"].append("cancelled")
    (p,) = problems_of(write_scenario(data))
    assert p.path == "protocol.outcomes.failure.1"
    assert p.message == "no transition reaches the outcome state 'cancelled' from 'waiting'"


TRIGGER = """\
id: trig
title: Trigger from the wrong state
calendar: {timezone: UTC, start: 2024-01-01 00:00, horizon: 2d}
actors:
  a: {name: A}
protocol:
  states: [asked, accepted, held]
  initial: asked
  transitions:
    - {trigger: accept, source: asked, dest: accepted}
    - {trigger: meet, source: accepted, dest: held}
  outcomes: {success: [held]}
actions:
  accept:
    actor: a
    from: asked
    delay: {dist: fixed, value: 1h}
    trigger: accept
  meet:
    actor: a
    delay: {dist: fixed, value: 1h}
    trigger: meet
  answer:
    actor: a
    from: asked
    delay: {dist: fixed, value: 1h}
    options:
      yes: {trigger: accept}
      now: {trigger: meet}
"""


def test_trigger_not_defined_from_the_action_states(write_scenario):
    problems = by_path(problems_of(write_scenario(TRIGGER)))
    assert set(problems) == {"actions.meet.trigger", "actions.answer.options.now.trigger"}
    meet = problems["actions.meet.trigger"]
    assert (meet.line, meet.col) == (22, 14)
    assert re.search(
        r"trigger 'meet' is not defined from state\(s\) asked; limit the action "
        r"with 'from:'",
        meet.message,
    )
    now = problems["actions.answer.options.now.trigger"]
    assert now.line == 29
    assert "not defined from state(s) asked" in now.message


def test_problems_in_a_list_point_at_the_item(write_scenario):
    text = TRIGGER.replace(
        "from: asked\n    delay: {dist: fixed, value: 1h}\n    trigger: accept",
        "from: [asked, accepted, nowhere]\n    delay: {dist: "
        "fixed, value: 1h}\n    trigger: accept",
    )
    problems = problems_of(write_scenario(text))
    nowhere = next(p for p in problems if p.path == "actions.accept.from.2")
    assert (nowhere.line, nowhere.col) == (16, 29)


# --- --set overrides ------------------------------------------------------------------


@pytest.fixture
def tunable(write_scenario) -> Path:
    data = base_scenario()
    data["params"] = {
        "p_yes": {"kind": "probability", "default": 0.5, "assumption": "test"},
        "wait": {"default": "10h", "assumption": "test"},
    }
    data["actors"]["a"]["present"] = [{"from": "0h", "until": "40h"}]
    meet = data["actions"]["meet"]
    del meet["trigger"]
    meet["delay"] = {"dist": "exponential", "mean": "wait"}
    meet["options"] = {
        "yes": {"weight": "p_yes", "trigger": "meet"},
        "no": {"weight": "1 - p_yes", "trigger": "fail"},
    }
    return write_scenario(data)


def test_set_parameter_by_name(tunable):
    assert cli_load(tunable).params["p_yes"] == 0.5
    cs = cli_load(tunable, [parse_set("p_yes=0.25"), parse_set("wait=2d")])
    assert cs.params == {"p_yes": 0.25, "wait": 48.0}
    est = negosim.simulate(cli_load(tunable, [parse_set("p_yes=1")]), runs=200, seed=1)
    assert est.outcomes["failed"] == 0


def test_set_by_dotted_path(tunable):
    cs = cli_load(
        tunable, [parse_set("calendar.horizon=1h"), parse_set("actors.a.present.0.until=30h")]
    )
    assert cs.horizon == 1.0
    assert cs.stays[0].end == 30.0
    cs = cli_load(tunable, [parse_set("actions.meet.options.no.weight=0")])
    est = negosim.simulate(cs, runs=100, seed=0)
    assert est.outcomes["failed"] == 0


def test_set_does_not_change_the_file(tunable):
    before = tunable.read_text()
    cli_load(tunable, [parse_set("p_yes=0.1")])
    assert tunable.read_text() == before
    assert cli_load(tunable).params["p_yes"] == 0.5


@pytest.mark.parametrize(
    ("arg", "pattern"),
    [
        ("p_ye=0.3", r"^--set p_ye: no parameter named 'p_ye' \(did you mean p_yes\?\)$"),
        (
            "actions.meat.delay=1h",
            r"^--set actions.meat.delay: no key 'meat' at actions "
            r"\(did you mean meet\?\)$",
        ),
        (  # a shortened name, too short for difflib: the key it begins
            "actions.meet.options.y.weight=1",
            r"no key 'y' at actions.meet.options \(did you mean yes\?\)$",
        ),
        ("actors.a.present.3.until=1h", r"is a list of 1; '3' is not an index"),
        ("id.x=1", r"id is a single value, not a mapping or list"),
    ],
)
def test_set_unknown_name_is_a_usage_error(tunable, arg, pattern):
    with pytest.raises(UsageError) as info:
        cli_load(tunable, [parse_set(arg)])
    (p,) = info.value.problems
    assert re.search(pattern, p.message), p.message
    assert "<input>" not in str(p.message)


def test_set_several_unknown_names_reports_each(tunable):
    with pytest.raises(UsageError) as info:
        cli_load(tunable, [parse_set("nope=1"), parse_set("p_yes=0.2"), parse_set("zip=2")])
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 2
    assert messages[0].startswith("--set nope:") and messages[1].startswith("--set zip:")


@pytest.mark.parametrize("arg", ["p_yes", "=3", "p_yes=[1"])
def test_set_malformed_argument(arg):
    with pytest.raises(UsageError, match=r"--set"):
        parse_set(arg)


def test_set_values_are_read_as_yaml():
    assert parse_set("a=0.5") == ("a", 0.5)
    assert parse_set("a=true") == ("a", True)
    assert parse_set("a.b = 36h") == ("a.b", "36h")
    assert parse_set("a=[x, y]") == ("a", ["x", "y"])
    assert parse_set("a=") == ("a", "")


@pytest.mark.parametrize(
    ("arg", "path", "pattern"),
    [
        ("p_yes=1.5", "params.p_yes.default", r"must be a probability \(0 to 1\), found 1\.5"),
        ("p_yes=lots", "params.p_yes.default", r"expected a number, found 'lots'"),
        ("calendar.timezone=Mars/Base", "calendar.timezone", r"unknown time zone 'Mars/Base'"),
        ("actors.a.present.0.until=-5h", "actors.a.present.0.until", r"ends before it starts"),
        (
            "actions.meet.options.yes.weight=-1",
            "actions.meet.options.yes.weight",
            r"cannot be negative",
        ),
    ],
)
def test_bad_value_from_set_is_located_at_the_set(tunable, arg, path, pattern):
    """A value given with --set was not written in the file: the problem says which
    --set gave it, where a problem in the file says FILE:LINE:COL."""
    problems = problems_of(tunable, [parse_set(arg)])
    (p,) = [p for p in problems if p.path == path]
    assert re.search(pattern, p.message), p.message
    assert (p.file, p.line, p.col) == (f"--set {arg}", 0, 0)
    assert str(p).startswith(f"--set {arg}: {path}: ")


# --- values at the edges of the number line and the calendar ---------------------------------


@pytest.mark.parametrize(
    ("tweak", "path", "pattern"),
    [
        (
            lambda d: d["actions"]["meet"].update(
                delay={"dist": "lognormal", "median": "nan", "p90": "3h"}
            ),
            "actions.meet.delay.median",
            r"expected a finite number, found 'nan'",
        ),
        (
            lambda d: d.update(
                params={"p": {"kind": "probability", "default": float("nan"), "assumption": "x"}}
            ),
            "params.p.default",
            r"expected a finite number",
        ),
        (
            lambda d: d.update(params={"p": {"default": "inf", "assumption": "x"}}),
            "params.p.default",
            r"expected a finite number",
        ),
        (
            lambda d: d.update(events={"e": {"rate": "nan"}}),
            "events.e.rate",
            r"expected a finite number",
        ),
        (
            lambda d: d["actions"]["meet"].update(
                trigger=None, options={"x": {"weight": float("inf"), "trigger": "meet"}}
            ),
            "actions.meet.options.x.weight",
            r"expected a finite number",
        ),
        (
            lambda d: d["calendar"].update(horizon="9999-12-31 23:00"),
            "calendar.horizon",
            r"at most 3653 days",
        ),
        (
            lambda d: d["calendar"].update(start="9999-12-31 00:00", horizon="1d"),
            "calendar.start",
            r"too close to year 1 or 9999",
        ),
        (
            lambda d: d["calendar"].update(
                timezone="Asia/Tokyo", start="0001-01-01 00:00", horizon="1d"
            ),
            "calendar.start",
            r"too close to year 1 or 9999",
        ),
        (
            lambda d: d.update(events={"e": {"at": "0001-01-01 00:00", "set": {}}}),
            "events.e.at",
            r"too close to year 1 or 9999",
        ),
    ],
)
def test_edge_values_are_input_errors(write_scenario, tweak, path, pattern):
    data = base_scenario()
    data["calendar"]["timezone"] = "Europe/Berlin"
    tweak(data)
    (p,) = problems_of(write_scenario(data))
    assert p.path == path and re.search(pattern, p.message), p


def test_ten_year_horizon_is_fine(write_scenario):
    data = base_scenario()
    data["calendar"]["horizon"] = "3650d"
    cs = cli_load(write_scenario(data))
    est = negosim.simulate(cs, runs=20, seed=0)
    assert len(est.by_day) == 3650 and est.p_meeting == 1.0  # horizon at a midnight
