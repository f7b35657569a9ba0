"""The ``negosim`` command line.

Most tests call the command in this process (the ``cli`` fixture); a few, so commented,
use ``cli_process``, the installed console script in a real process, for
what only a process shows: its exit status and everything it writes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SCENARIOS, base_scenario, with_ask_step

from negosim.scenario.yamlsource import load_yaml_file

RUN_FIELDS = {
    "scenario",
    "runs",
    "seed",
    "p_meeting",
    "ci95",
    "by_day",
    "outcomes",
    "blocking",
    "mean_events_per_run",
    "elapsed_s",
}
BILLION_LAUGHS = (
    "a: &a ["
    + ", ".join(["lol"] * 9)
    + "]\n"
    + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
)
PROBLEM = re.compile(r"^.+:\d+:\d+: [\w.]+: .+$")


def cli_scenario() -> dict[str, Any]:
    """Two days in Berlin, a window, a precondition and options: exercises every field."""
    data = base_scenario()
    data["id"] = "cli-test"
    data["calendar"].update(
        timezone="Europe/Berlin", start="2024-01-01 18:00", horizon="2024-01-03 12:00"
    )
    data["calendar"]["windows"] = {"conf": {"start": "2024-01-02 09:00", "end": "2024-01-03 12:00"}}
    data["params"] = {"p_yes": {"kind": "probability", "default": 0.6, "assumption": "test"}}
    data["facts"] = {"asked": {"type": "bool", "initial": False}}
    data["actors"]["b"] = {"name": "Minister B", "present": [{"window": "conf"}]}
    data["preconditions"] = {
        "asked": {"text": "A must ask first", "insisted_by": "b", "holds": "asked"}
    }
    data["events"] = {"ask": {"rate": 1.0, "set": {"asked": True}, "text": "A asks"}}
    meet = data["actions"]["meet"]
    del meet["trigger"]
    meet.update(
        actor="b",
        requires=["asked"],
        guard="present('b')",
        delay={"dist": "lognormal", "median": "3h", "p90": "12h"},
    )
    meet["options"] = {
        "yes": {"weight": "p_yes", "trigger": "meet"},
        "no": {"weight": "1 - p_yes", "trigger": "fail"},
    }
    return data


@pytest.fixture
def scenario(write_scenario) -> Path:
    return write_scenario(cli_scenario(), "cli.yaml")


def run_json(cli, *args: Any) -> dict[str, Any]:
    proc = cli("run", *args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # exactly one JSON document, nothing else on stdout


def without_time(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "elapsed_s"}


def assert_input_error(proc: Any, *needles: str) -> list[str]:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert "internal error" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    return lines


# --- run ---------------------------------------------------------------------------------


def test_run_json_has_every_field(cli_process, scenario):
    # a real process: exactly one JSON document on stdout, exit status 0
    result = run_json(cli_process, scenario, "--runs", "600", "--seed", "5")
    assert set(result) >= RUN_FIELDS
    assert result["scenario"] == "cli-test"
    assert (result["runs"], result["seed"]) == (600, 5)
    assert 0 < result["p_meeting"] < 1
    low, high = result["ci95"]
    assert 0 <= low <= result["p_meeting"] <= high <= 1
    assert list(result["by_day"]) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert sum(result["by_day"].values()) == pytest.approx(result["p_meeting"])
    assert set(result["outcomes"]) == {"held", "failed", "censored"}
    assert sum(result["outcomes"].values()) == 600
    assert result["outcomes"]["held"] == round(result["p_meeting"] * 600)
    assert set(result["blocking"]) == {"asked"}
    assert 0 < result["blocking"]["asked"] <= 600 - result["outcomes"]["held"]
    assert result["mean_events_per_run"] > 1
    assert result["elapsed_s"] >= 0


def test_run_table_output(cli, scenario):
    proc = cli("run", scenario, "--runs", "300")
    assert proc.returncode == 0, proc.stderr
    assert "P(meeting held)" in proc.stdout and "Wilson" in proc.stdout
    assert "A must ask first" in proc.stdout


def test_same_seed_same_numbers_for_any_worker_count(cli, scenario):
    # 900 runs: several chunks, so workers really split the work
    results = [
        run_json(cli, scenario, "--runs", "900", "--seed", "3", "--workers", w)
        for w in ("1", "2", "3")
    ]
    assert without_time(results[0]) == without_time(results[1]) == without_time(results[2])
    other = run_json(cli, scenario, "--runs", "900", "--seed", "4")
    assert without_time(other) != without_time(results[0])
    assert other["p_meeting"] != results[0]["p_meeting"] or other["by_day"] != results[0]["by_day"]


def test_run_with_set(cli, scenario):
    result = run_json(
        cli,
        scenario,
        "--runs",
        "300",
        "--set",
        "p_yes=1",
        "--set",
        "calendar.horizon=2024-01-04 12:00",
    )
    assert result["outcomes"]["failed"] == 0
    assert "2024-01-04" in result["by_day"]


# --- bad input: exit 2, one line per problem, no traceback --------------------------------


def test_bad_scenario_exit_2(cli_process, write_scenario):
    data = cli_scenario()
    data["actions"]["meet"]["actor"] = "zed"
    data["preconditions"]["asked"]["holds"] = "asked and"
    path = write_scenario(data)
    # a real process: exit status 2, one line per problem, no traceback
    lines = assert_input_error(cli_process("run", path), "unknown actor 'zed'", "syntax error")
    assert len(lines) == 2
    assert all(PROBLEM.match(line) and line.startswith(str(path)) for line in lines)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        ("dir", "directory"),
        ("", "empty file"),
        (b"id: \xff\xfe oops\n", "not valid UTF-8"),
        (BILLION_LAUGHS, "too large"),
        ("- just\n- a list\n", "expected a mapping"),
        ("id: [unclosed\n", "invalid YAML"),
    ],
)
def test_unreadable_files_exit_2(cli, tmp_path, content, needle):
    path = tmp_path / "x.yaml"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    (line,) = assert_input_error(cli("run", path, "--runs", "10"))
    assert line.startswith(str(path)) and needle in line, line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "p_ye=0.5"], "did you mean p_yes?"),
        (["--set", "p_yes=2"], "--set p_yes=2: params.p_yes.default: must be a probability"),
        (["--set", "nonsense"], "expected NAME=VALUE"),
        (["--runs", "0"], "--runs"),
        (["--runs", "many"], "--runs"),
        (["--seed", "-1"], "--seed"),
        (["--workers", "0"], "--workers"),
        (["--format", "xml"], "--format"),
    ],
)
def test_bad_arguments_exit_2(cli, scenario, args, needle):
    (line,) = assert_input_error(cli("run", scenario, *args), needle)
    assert not line.startswith("<input>")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["runn", "x.yaml"], "negosim: argument COMMAND: invalid choice: 'runn' (choose from"),
        (["runn", "x.yaml"], "'serve'); did you mean 'run'? (see negosim --help)"),
        (["run", "{s}", "--run", "5"],
         "negosim run: unrecognized arguments: --run 5; did you mean --runs? "
         "(see negosim run --help)"),
        (["run", "{s}", "--formt=json"],
         "negosim run: unrecognized arguments: --formt=json; did you mean --format?"),
        (["run", "{s}", "--format", "jsn"],
         "invalid choice: 'jsn' (choose from 'table', 'json'); did you mean 'json'?"),
        (["--verion"], "negosim: unrecognized arguments: --verion; did you mean --version?"),
    ],
)  # fmt: skip
def test_a_misspelt_command_or_option_gets_did_you_mean(cli, scenario, args, expected):
    (line,) = assert_input_error(cli(*[str(scenario) if a == "{s}" else a for a in args]))
    assert expected in line


def test_unknown_arguments_far_from_any_option_get_no_guess(cli, scenario):
    (line,) = assert_input_error(cli("run", scenario, "--zzz", "other.yaml"))
    assert line == "negosim run: unrecognized arguments: --zzz other.yaml (see negosim run --help)"


def test_unknown_command_exit_2(cli_process):
    assert_input_error(cli_process("fly"), "invalid choice")
    proc = cli_process()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_zero_time_loop_exit_2_with_location(cli, write_scenario):
    data = base_scenario()
    data["settings"] = {"max_events": 200}
    data["facts"] = {"flag": {"type": "bool", "initial": False}}
    zero = {"dist": "fixed", "value": "0h"}
    data["actions"]["ping"] = {
        "actor": "a",
        "guard": "not flag",
        "delay": zero,
        "set": {"flag": True},
    }
    data["actions"]["pong"] = {"actor": "a", "guard": "flag", "delay": zero, "set": {"flag": False}}
    path = write_scenario(data)
    (line,) = assert_input_error(cli("run", path, "--runs", "5"), "without time passing")
    assert PROBLEM.match(line) and "ping" in line and "pong" in line


# --- validate ---------------------------------------------------------------------------------


def test_validate_several_files(cli, write_scenario):
    good = write_scenario(base_scenario(), "good.yaml")
    good2 = write_scenario(cli_scenario(), "good2.yaml")
    proc = cli("validate", good, good2)
    assert proc.returncode == 0, proc.stderr
    assert f"{good}: ok" in proc.stdout and f"{good2}: ok" in proc.stdout

    bad1 = base_scenario()
    bad1["actions"]["meet"]["trigger"] = "dance"
    bad2 = base_scenario()
    bad2["calendar"]["timezone"] = "Nowhere/City"
    bad2["actions"]["meet"]["guard"] = "mood"
    p1, p2 = write_scenario(bad1, "bad1.yaml"), write_scenario(bad2, "bad2.yaml")
    proc = cli("validate", p1, good, p2)
    lines = assert_input_error(
        proc, "unknown trigger 'dance'", "unknown time zone", "unknown name 'mood'"
    )
    assert f"{good}: ok" in proc.stdout
    assert len(lines) == 3 and all(PROBLEM.match(line) for line in lines)
    assert lines[0].startswith(f"{p1}:") and lines[2].startswith(f"{p2}:")


# --- params, schema, graph, trace --------------------------------------------------------------


def test_params_json(cli, scenario):
    data = cli_scenario()
    data["params"]["wait"] = {"default": "6h", "low": "1h", "source": "“It takes hours.”"}
    data["params"]["n"] = {
        "default": 3,
        "uncertainty": {"dist": "uniform", "low": 1, "high": 5},
        "assumption": "a guess",
    }
    # an uncertainty may refer to another parameter by name
    data["params"]["spread"] = {
        "default": 1,
        "uncertainty": {"dist": "uniform", "low": "p_yes", "high": 2},
        "assumption": "x",
    }
    path = scenario.with_name("params.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = cli("params", path, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert isinstance(rows, list)
    assert [r["name"] for r in rows] == ["p_yes", "wait", "n", "spread"]
    for r in rows:
        assert {"name", "default", "low", "high", "source", "assumption"} <= set(r)
    p_yes, wait, n, spread = rows
    assert (spread["low"], spread["high"]) == (0.6, 2.0)
    assert (p_yes["default"], p_yes["low"], p_yes["high"]) == (0.6, 0.0, 1.0)
    assert p_yes["assumption"] == "test" and p_yes["source"] is None
    assert (wait["default"], wait["low"], wait["high"]) == (6.0, 1.0, None)
    assert wait["source"] == "“It takes hours.”"
    assert (n["low"], n["high"]) == (1.0, 5.0)
    table = cli("params", path)
    assert table.returncode == 0 and "p_yes" in table.stdout and "a guess" in table.stdout


def test_schema_is_json_schema_of_the_format(cli):
    proc = cli("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    tutorial = yaml.safe_load((SCENARIOS / "tutorial.yaml").read_text())
    assert set(schema["else"]["required"]) <= set(tutorial) <= set(schema["properties"])
    assert schema.get("additionalProperties") is False


def test_the_schema_accepts_bases_and_cases_that_extend_them(cli):
    """A file with extends: or abstract: true may leave out what its base (or case) gives,
    at any depth, but what it writes is checked; a file without them must be complete."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(cli("schema").stdout))
    for path in sorted(SCENARIOS.glob("*.yaml")) + sorted(SCENARIOS.glob("bases/*.yaml")):
        data = load_yaml_file(path).data
        assert not list(validator.iter_errors(data)), path
    case = {
        "extends": "bases/sidelines.yaml",
        "calendar": {"start": "2024-01-01 08:00"},  # no timezone: the base may give it
        "protocol": {"states": {"requested": "asked"}},  # one state's text, nothing else
        "actions": {"meet": {"delay": {"median": "3h"}}},  # one field of a distribution
    }
    assert validator.is_valid(case)
    assert validator.is_valid({"abstract": True, "params": {"p": {"default": 0.5}}})
    for wrong in (
        {"calendar": {"strat": "2024-01-01"}},
        {"actors": {"a": {"present": "yes"}}},
        {"actions": {"meet": {"delay": {"dist": "lognorml"}}}},
        {"actions": {"meet": {"delay": {"dist": "fixed", "median": "3h"}}}},
    ):
        assert not validator.is_valid({"extends": "b.yaml", **wrong}), wrong
    assert not validator.is_valid({"abstract": False, "params": {"p": {"default": 0.5}}})
    tutorial = load_yaml_file(SCENARIOS / "tutorial.yaml").data
    del tutorial["calendar"]["timezone"]
    assert not validator.is_valid(tutorial)  # a file that extends nothing must be complete


def test_schema_validates_the_tutorial(cli):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(cli("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    # the data exactly as negosim reads it (keys and datetimes kept as the text written)
    data = load_yaml_file(SCENARIOS / "tutorial.yaml").data
    jsonschema.Draft202012Validator(schema).validate(data)
    data["colour"] = "blue"
    assert not jsonschema.Draft202012Validator(schema).is_valid(data)


def test_graph_mermaid_and_dot(cli, write_scenario):
    data = with_ask_step(base_scenario())
    data["actions"]["meet"]["from"] = "asked"
    data["actions"]["ask"] = {
        "actor": "a",
        "from": "waiting",
        "delay": {"dist": "fixed", "value": "1h"},
        "trigger": "ask",
    }
    path = write_scenario(data)
    proc = cli("graph", path)
    assert proc.returncode == 0, proc.stderr
    assert "stateDiagram-v2" in proc.stdout
    for src, dest, trigger in [
        ("waiting", "asked", "ask"),
        ("asked", "held", "meet"),
        ("waiting", "failed", "fail"),
        ("asked", "failed", "fail"),
    ]:
        assert re.search(rf"{src} --> {dest}\s*:\s*{trigger}", proc.stdout), (src, dest)
    dot = cli("graph", path, "--format", "dot")
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.lstrip().startswith("digraph")
    assert "waiting -> asked" in dot.stdout and "asked -> held" in dot.stdout


def test_trace_prints_venue_local_times(cli, write_scenario):
    data = base_scenario()
    # 08:00 UTC is 09:00 in Berlin in winter
    data["calendar"].update(timezone="Europe/Berlin", start="2024-01-15 09:00")
    data["actions"]["meet"]["delay"] = {"dist": "fixed", "value": "2h 30min"}
    path = write_scenario(data)
    proc = cli("trace", path, "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "11:30" in proc.stdout and "10:30" not in proc.stdout
    assert "CET" in proc.stdout
    js = cli("trace", path, "--seed", "3", "--format", "json")
    events = json.loads(js.stdout)["events"]
    assert events[0]["time"] == "2024-01-15T11:30+01:00"
    assert json.loads(js.stdout)["held"] is True


# --- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "trace", "validate", "params", "schema", "graph", None])
def test_help_has_an_example(cli, command):
    proc = cli(*([command] if command else []), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "example" in proc.stdout.lower()
    assert "usage: negosim" in proc.stdout


def test_version(cli_process):
    proc = cli_process("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("negosim ")


@pytest.mark.parametrize(
    "args",
    [
        ("plot", "scenarios/tutorial.yaml", "--kind", "curve", "--runs", "10", "-o"),
        ("report", "scenarios/tutorial.yaml", "--runs", "10", "-o"),
    ],
)
def test_an_unwritable_output_is_bad_input(cli, tmp_path, args) -> None:
    target = tmp_path / "missing-dir" / "out.png"
    if args[0] == "report":
        target = target.with_suffix(".html")
    r = cli(*args, target)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"{target}: No such file or directory"
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


# --- every problem of a file in one pass (issue 10, point 5) ----------------------------------

SIX_MISTAKES = """\
id: six
title: Six independent mistakes
calendar:
  timezone: Europe/Vienna
  start: 2024-05-14 08:00
  horizon: 48
  windows:
    conference: {start: 2024-05-14 09:00, end: 2024-05-14 18:00}
params:
  p_accept: {kind: probability, default: 0.7, assumption: invented}
actors:
  a: {name: Minister A, present: [{window: conference}]}
  b: {name: Minister B, presnet: [{window: conference}]}
protocol:
  states: [requested, accepted, held, declined]
  initial: requested
  transitions:
    - {trigger: accept, source: requested, dest: accepted}
    - {trigger: decline, source: requested, dest: declined}
    - {trigger: meet, source: accepted, dest: held}
  outcomes: {success: [held], failure: [declined]}
actions:
  b_answers:
    actor: b
    from: requestd
    delay: {dist: lognormla, median: 2h, p90: 6h}
    options:
      yes: {weight: p_accept, trigger: acept}
      no: {weight: 1 - p_accept, trigger: decline}
  meet:
    actor: a
    from: accepted
    guard: present('a') and present('b') and in_window('confrence')
    delay: {dist: triangular, min: 30min, mode: 1h, max: 3h}
    trigger: meet
"""


def test_every_independent_mistake_is_reported_in_one_pass(cli, write_scenario):
    """Six mistakes in different places, three of them in one action whose delay the
    schema refuses (its from-state and an option's trigger are still checked), with a
    schema problem in the calendar and an unknown key in an actor: one run of
    ``negosim validate`` reports all six, each located and with "did you mean"."""
    path = write_scenario(SIX_MISTAKES, "six.yaml")
    lines = assert_input_error(cli("validate", path))
    assert len(lines) == len(set(lines))  # each once
    assert lines == [
        f"{path}:6:12: calendar.horizon: expected text, found the number 48",
        f"{path}:13:25: actors.b.presnet: unknown key 'presnet' (did you mean 'present'?)",
        f"{path}:25:11: actions.b_answers.from: unknown state 'requestd' (did you mean "
        "'requested'?); states: accepted, declined, held, requested",
        f"{path}:26:19: actions.b_answers.delay.dist: unknown distribution 'lognormla' (did "
        "you mean 'lognormal'?); valid: fixed, uniform, triangular, exponential, lognormal, "
        "empirical",
        f"{path}:28:40: actions.b_answers.options.yes.trigger: unknown trigger 'acept' (did "
        "you mean 'accept'?); protocol triggers: accept, decline, meet",
        f"{path}:33:56: actions.meet.guard: unknown window 'confrence' (did you mean "
        "'conference'?); windows: conference (in \"present('a') and present('b') and "
        "in_window('confrence')\")",
    ]


@pytest.mark.parametrize(
    ("fix", "gone"),
    [
        (("horizon: 48", "horizon: 2024-05-15 18:00"), "calendar.horizon"),
        (("presnet", "present"), "actors.b.presnet"),
        (("from: requestd", "from: requested"), "actions.b_answers.from"),
        (("lognormla", "lognormal"), "actions.b_answers.delay.dist"),
        (("trigger: acept", "trigger: accept"), "actions.b_answers.options.yes.trigger"),
        (("'confrence'", "'conference'"), "actions.meet.guard"),
    ],
)
def test_fixing_one_mistake_changes_only_its_line(cli, write_scenario, fix, gone):
    """The mistakes are independent: fixing one removes its line and no other appears
    (nothing was hidden behind it), and no message is ever repeated."""
    whole = assert_input_error(cli("validate", write_scenario(SIX_MISTAKES, "six.yaml")))
    path = write_scenario(SIX_MISTAKES.replace(*fix), "six.yaml")
    lines = assert_input_error(cli("validate", path))
    assert len(lines) == len(set(lines)) == 5
    assert lines == [line for line in whole if f": {gone}: " not in line]


def test_a_schema_problem_in_the_calendar_does_not_hide_a_bad_state(cli, write_scenario):
    """An unknown key in an actor and a horizon of the wrong type used to leave only the
    expressions to check: a misspelt state elsewhere came out after the first fix."""
    text = SIX_MISTAKES.replace("from: accepted", "from: acepted")
    lines = assert_input_error(cli("validate", write_scenario(text, "six.yaml")))
    assert any(": actions.meet.from: unknown state 'acepted' (did you mean 'accepted'?)" in line
               for line in lines)  # fmt: skip
    assert len(lines) == len(set(lines)) == 7


def test_a_broken_protocol_does_not_hide_a_misspelt_trigger(cli, write_scenario):
    """The protocol's own problem (a transition from an unknown state) leaves no state
    machine to check triggers against; its trigger names are still known."""
    text = SIX_MISTAKES.replace(
        "{trigger: decline, source: requested,", "{trigger: decline, source: requestd,"
    )
    lines = assert_input_error(cli("validate", write_scenario(text, "six.yaml")))
    assert len(lines) == len(set(lines)) == 7
    assert any(": protocol.transitions.1.source: unknown state 'requestd'" in x for x in lines)
    said = "unknown trigger 'acept' (did you mean 'accept'?); protocol triggers: accept, decline"
    assert any(f": actions.b_answers.options.yes.trigger: {said}, meet" in x for x in lines)


def test_a_stand_in_says_nothing_of_its_own(cli, write_scenario):
    """What the compiler would say about a stand-in (the fixed delay put for an unknown
    distribution, a parameter default of the wrong type) is not reported."""
    data = cli_scenario()
    data["actions"]["meet"]["delay"] = {"dist": "weibull", "scale": "3h"}
    data["params"]["p_yes"]["default"] = True
    lines = assert_input_error(cli("validate", write_scenario(data, "cli.yaml")))
    assert [line.split(": ")[1] for line in lines] == [
        "actions.meet.delay.dist",
        "params.p_yes.default",
    ], lines


# --- range errors: the bound broken and where it is written (issue 10, point 1) --------------


def _sidelines_case(tmp_path: Path, default: float) -> Path:
    """A case on the shipped sidelines base that overrides one stance's default."""
    case = (SCENARIOS / "shangri-la-2023.yaml").read_text(encoding="utf-8")
    case = case.replace(
        "extends: bases/sidelines.yaml",
        f"extends: {SCENARIOS / 'bases' / 'sidelines.yaml'}",
    )
    case = case.replace(
        "params:\n", f"params:\n  yes_if_condition_unmet: {{default: {default}}}\n", 1
    )
    path = tmp_path / "case.yaml"
    path.write_text(case, encoding="utf-8")
    return path


def _where(path: Path, text: str) -> str:
    """``LINE:COL`` of the first ``text`` in the file at ``path``."""
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text in line:
            return f"{row}:{line.index(text) + 1}"
    raise AssertionError(text)


def _bound_line(name: str, key: str) -> tuple[int, int]:
    """Line and column of ``key`` of parameter ``name`` in bases/stances.yaml."""
    doc = load_yaml_file(SCENARIOS / "bases" / "stances.yaml")
    return doc.locate(("params", name, key))


def test_a_value_above_a_declared_high_names_it_and_its_place(cli, tmp_path):
    """0.9 is a probability: the bound it breaks is the base's high: 0.7, named with the
    file and line it is written at; the value is located in the case that wrote it."""
    path = _sidelines_case(tmp_path, 0.9)
    stances = SCENARIOS / "bases" / "stances.yaml"
    line, col = _bound_line("yes_if_condition_unmet", "high")
    (problem,) = assert_input_error(cli("validate", path))
    assert problem == (
        f"{path}:{_where(path, '0.9}')}: params.yes_if_condition_unmet.default: must be at "
        f"most 0.7 (params.yes_if_condition_unmet.high, {stances}:{line}:{col}), found 0.9"
    )
    assert "probability" not in problem


def test_a_value_below_a_declared_low_names_it(cli, tmp_path):
    path = _sidelines_case(tmp_path, 0.1)
    text = path.read_text(encoding="utf-8").replace(
        "yes_if_condition_unmet: {default: 0.1}",
        "yes_if_condition_unmet: {default: 0.1, low: 0.15}",
    )
    path.write_text(text, encoding="utf-8")
    (problem,) = assert_input_error(cli("validate", path))
    assert problem == (
        f"{path}:{_where(path, '0.1,')}: params.yes_if_condition_unmet.default: must be at "
        f"least 0.15 (params.yes_if_condition_unmet.low, {path}:{_where(path, '0.15}')}), "
        "found 0.1"
    )


def test_outside_0_to_1_a_probability_says_so(cli, tmp_path):
    (problem,) = assert_input_error(cli("validate", _sidelines_case(tmp_path, 1.2)))
    assert problem.endswith("must be a probability (0 to 1), found 1.2")
    (problem,) = assert_input_error(cli("validate", _sidelines_case(tmp_path, -0.2)))
    assert problem.endswith("must be a probability (0 to 1), found -0.2")


def test_a_set_value_out_of_range_is_located_at_the_set(cli):
    """The repro of issue 10: the message names the declared bound, not "a
    probability", and is located at the --set, not at the base's default."""
    shangri = SCENARIOS / "shangri-la-2023.yaml"
    stances = SCENARIOS / "bases" / "stances.yaml"
    line, col = _bound_line("yes_if_condition_unmet", "high")
    (problem,) = assert_input_error(
        cli("run", shangri, "--runs", "10", "--set", "yes_if_condition_unmet=0.9")
    )
    assert problem == (
        "--set yes_if_condition_unmet=0.9: params.yes_if_condition_unmet.default: must be at "
        f"most 0.7 (params.yes_if_condition_unmet.high, {stances}:{line}:{col}), found 0.9"
    )
    # a bound given with --set is located at its --set too
    (problem,) = assert_input_error(
        cli(
            "run",
            shangri,
            "--runs",
            "10",
            "--set",
            "yes_if_condition_unmet=0.5",
            "--set",
            "params.yes_if_condition_unmet.high=0.4",
        )  # fmt: skip
    )
    assert problem == (
        "--set yes_if_condition_unmet=0.5: params.yes_if_condition_unmet.default: must be at "
        "most 0.4 (params.yes_if_condition_unmet.high, "
        "--set params.yes_if_condition_unmet.high=0.4), found 0.5"
    )


def test_a_duration_out_of_range_is_shown_as_a_duration(cli, write_scenario):
    data = cli_scenario()
    data["params"]["wait"] = {"default": "3d", "high": "2d", "assumption": "test"}
    data["actions"]["meet"]["delay"] = {"dist": "exponential", "mean": "wait"}
    (problem,) = assert_input_error(cli("validate", write_scenario(data, "cli.yaml")))
    assert re.search(r"params\.wait\.default: must be at most 2d \(params\.wait\.high, "
                     r".*cli\.yaml:\d+:\d+\), found 3d$", problem), problem  # fmt: skip


# A schema problem in the protocol, or a whole section missing, used to hide every
# other problem of the file (the review of issue 10, point 5): each is neutralised like
# the other sections' and the rest compiled; only what its stand-in causes is dropped.

COFFEE = """\
id: coffee
title: A coffee
calendar:
  timezone: Europe/Vienna
  start: 2024-05-14 08:00
  horizon: 2024-05-14 18:00
  windows:
    conference: {start: 2024-05-14 09:00, end: 2024-05-14 18:00}
params:
  p_accept: {kind: probability, default: 1.7, assumption: invented}
  answer_median: {kind: duration, default: 2h, assumption: invented}
actors:
  a: {name: Minister A, present: [{window: conference}]}
  b: {name: Minister B, present: [{window: confrence}]}
protocol:
  states: [requested, accepted, held, declined]
  initial: requested
  transitions:
    - {trigger: accept, source: requested, dest: accepted}
    - {trigger: decline, source: requested, dest: declined}
    - {trigger: meet, source: accepted, dest: held}
  outcomes: {success: [held], failure: [declined]}
actions:
  b_answers:
    actor: b
    from: requested
    delay: {dist: lognormal, median: answer_median, p90: 6h}
    options:
      yes: {weight: p_accept, trigger: accept}
      no: {weight: 1 - p_accept, trigger: declien}
  meet:
    actor: a
    from: acepted
    guard: present('a') and presnt('b')
    delay: {dist: triangular, min: 30min, mode: 1h, max: 3h}
    trigger: meet
"""

P17 = "must be a probability (0 to 1), found 1.7"
CONFRENCE = "unknown window 'confrence' (did you mean 'conference'?); windows: conference"
DECLIEN = (
    "unknown trigger 'declien' (did you mean 'decline'?); protocol triggers: accept, decline, meet"
)
ACEPTED = (
    "unknown state 'acepted' (did you mean 'accepted'?); states: accepted, declined, held, "
    "requested"
)
PRESNT = (
    "unknown function 'presnt' (did you mean 'present'?); available functions: abs, "
    "available, clamp, exp, in_window, log, logistic, max, min, present, sqrt (in "
    "\"present('a') and presnt('b')\")"
)
COFFEE_EDITS = {
    "dest": [("source: accepted, dest: held}", "source: accepted}")],
    "initial": [("  initial: requested\n", "")],
    "states": [("states: [requested, accepted, held, declined]", "states: requested")],
    "trigger": [("{trigger: decline, source", "{source")],
    "transitions": [(re.compile(r"  transitions:\n(    - .*\n)+"), "  transitions: []\n")],
    "outcomes": [("  outcomes: {success: [held], failure: [declined]}\n", "")],
    "calendar": [(re.compile(r"calendar:\n(  .*\n)+"), "")],
    "actions": [(re.compile(r"actions:\n(  .*\n)+"), "")],
    "actors": [(re.compile(r"actors:\n(  .*\n)+"), "actors: {}\n")],
    "protocol": [(re.compile(r"protocol:\n(  .*\n)+"), "")],
    "id": [("id: coffee\n", "")],
}


def _coffee(name: str) -> str:
    text = COFFEE
    for old, new in COFFEE_EDITS.get(name, []):
        if isinstance(old, str):
            assert old in text, old
            text = text.replace(old, new)
        else:
            text, n = old.subn(new, text)
            assert n == 1, old
    return text


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            "plain",
            [
                ("10:42", "params.p_accept.default", P17),
                ("14:44", "actors.b.present.0.window", CONFRENCE),
                ("30:43", "actions.b_answers.options.no.trigger", DECLIEN),
                ("33:11", "actions.meet.from", ACEPTED),
                ("34:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "dest",
            [
                ("10:42", "params.p_accept.default", P17),
                ("14:44", "actors.b.present.0.window", CONFRENCE),
                ("21:7", "protocol.transitions.2", "missing required key 'dest'"),
                ("30:43", "actions.b_answers.options.no.trigger", DECLIEN),
                ("33:11", "actions.meet.from", ACEPTED),
                ("34:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "initial",
            [
                ("10:42", "params.p_accept.default", P17),
                ("14:44", "actors.b.present.0.window", CONFRENCE),
                ("16:3", "protocol", "missing required key 'initial'"),
                ("29:43", "actions.b_answers.options.no.trigger", DECLIEN),
                ("32:11", "actions.meet.from", ACEPTED),
                ("33:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "states",
            [
                ("10:42", "params.p_accept.default", P17),
                ("14:44", "actors.b.present.0.window", CONFRENCE),
                (
                    "16:11",
                    "protocol.states",
                    "expected a list or a mapping of states, found the text 'requested'",
                ),
                ("30:43", "actions.b_answers.options.no.trigger", DECLIEN),
                ("33:11", "actions.meet.from", ACEPTED),
                ("34:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "trigger",
            [
                ("10:42", "params.p_accept.default", P17),
                ("14:44", "actors.b.present.0.window", CONFRENCE),
                ("20:7", "protocol.transitions.1", "missing required key 'trigger'"),
                ("33:11", "actions.meet.from", ACEPTED),
                ("34:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "transitions",
            [
                ("10:42", "params.p_accept.default", P17),
                ("14:44", "actors.b.present.0.window", CONFRENCE),
                ("18:16", "protocol.transitions", "no transitions: give at least one"),
                ("30:11", "actions.meet.from", ACEPTED),
                ("31:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "outcomes",
            [
                ("10:42", "params.p_accept.default", P17),
                ("14:44", "actors.b.present.0.window", CONFRENCE),
                ("16:3", "protocol", "missing required key 'outcomes'"),
                ("29:43", "actions.b_answers.options.no.trigger", DECLIEN),
                ("32:11", "actions.meet.from", ACEPTED),
                ("33:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "calendar",
            [
                ("1:1", "", "missing required key 'calendar'"),
                ("4:42", "params.p_accept.default", P17),
                ("24:43", "actions.b_answers.options.no.trigger", DECLIEN),
                ("27:11", "actions.meet.from", ACEPTED),
                ("28:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "actions",
            [
                ("1:1", "", "missing required key 'actions'"),
                ("10:42", "params.p_accept.default", P17),
                ("14:44", "actors.b.present.0.window", CONFRENCE),
            ],
        ),
        (
            "actors",
            [
                ("10:42", "params.p_accept.default", P17),
                ("12:9", "actors", "no actors: a scenario needs at least one"),
                ("28:43", "actions.b_answers.options.no.trigger", DECLIEN),
                ("31:11", "actions.meet.from", ACEPTED),
                ("32:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "protocol",
            [
                ("1:1", "", "missing required key 'protocol'"),
                ("10:42", "params.p_accept.default", P17),
                ("14:44", "actors.b.present.0.window", CONFRENCE),
                ("26:29", "actions.meet.guard", PRESNT),
            ],
        ),
        (
            "id",
            [
                ("1:1", "", "missing required key 'id'"),
                ("9:42", "params.p_accept.default", P17),
                ("13:44", "actors.b.present.0.window", CONFRENCE),
                ("29:43", "actions.b_answers.options.no.trigger", DECLIEN),
                ("32:11", "actions.meet.from", ACEPTED),
                ("33:29", "actions.meet.guard", PRESNT),
            ],
        ),
    ],
)
def test_a_broken_protocol_or_missing_section_hides_nothing(cli, write_scenario, broken, expected):
    """Five independent mistakes (a probability of 1.7, an unknown window, a misspelt
    trigger, a misspelt state, a misspelt function) are all reported, each once, whatever
    is also wrong with the protocol or missing from the file. What cannot be judged
    without the broken part is left out, not guessed at: with no calendar the window
    names, with no protocol (or a transition missing its trigger) the triggers and
    states, with no actions the actions' own mistakes (there are none)."""
    path = write_scenario(_coffee(broken), f"{broken}.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines == [
        f"{path}:{where}: " + (f"{at}: " if at else "") + message for where, at, message in expected
    ]
    assert len(lines) == len(set(lines))


REFUSED_DEFAULTS = """\
id: refused
title: Refused defaults used in delays, a guard and a rate
calendar:
  timezone: Europe/Vienna
  start: 2024-05-14 08:00
  horizon: 2024-05-14 18:00
params:
  p_accept: {kind: probability, default: 0.5, assumption: x}
  answer_median: {default: 2 hours and a bit, assumption: x}
  other_median: {kind: duration, default: -3h, assumption: x}
  rate_y: {kind: rate, default: -1, assumption: x}
actors:
  a: {name: A, present: [{from: 0h, until: 10h}]}
protocol:
  states: [requested, held, declined]
  initial: requested
  transitions:
    - {trigger: meet, source: requested, dest: held}
    - {trigger: decline, source: requested, dest: declined}
  outcomes: {success: [held], failure: [declined]}
actions:
  m:
    actor: a
    from: requested
    delay: {dist: lognormal, median: answer_median, p90: 6h}
    trigger: meet
  n:
    actor: a
    from: requested
    delay: {dist: exponential, mean: other_median}
    guard: other_median > 1 and p_accept > 0.1
    trigger: decline
events:
  ev: {rate: rate_y, set: {}}
"""


def test_a_refused_default_is_reported_once_and_its_uses_are_not_unknown(cli, write_scenario):
    """A default of the wrong type, or out of its kind's range, is reported at the
    default; its uses (a delay's median or mean, an event's rate) are neither an
    "unknown parameter" nor a second problem ("a delay cannot be negative")."""
    path = write_scenario(REFUSED_DEFAULTS, "refused.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines == [
        f"{path}:9:28: params.answer_median.default: expected a number, found '2 hours and a bit'",
        f"{path}:10:43: params.other_median.default: must be at least 0 (a duration cannot "
        "be negative), found -3h",
        f"{path}:11:33: params.rate_y.default: must be at least 0 (a rate cannot be "
        "negative), found -1",
    ]


def test_a_bad_set_is_reported_once_at_the_set(cli):
    """``--set round_median=-2h`` used to add a second line blaming the file's delay."""
    r = cli("run", SCENARIOS / "munich.yaml", "--set", "round_median=-2h")
    assert assert_input_error(r) == [
        "--set round_median=-2h: params.round_median.default: must be at least 0 (a duration "
        "cannot be negative), found -2h"
    ]


def test_schema_messages_in_plain_words(cli, write_scenario):
    """An unknown weekday gets "did you mean" and the list of days; an empty mapping of
    actions says so in words, not in pydantic's; the rest of the file is still checked."""
    text = _coffee("plain").replace(
        "    conference: {start: 2024-05-14 09:00, end: 2024-05-14 18:00}\n",
        "    conference: {start: 2024-05-14 09:00, end: 2024-05-14 18:00}\n"
        '    lunch: {daily: "12:00-13:00", start: 2024-05-14, end: 2024-05-14, '
        "days: [mon, tues]}\n",
    )
    text = text[: text.index("actions:")] + "actions: {}\n"
    path = write_scenario(text, "words.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines == [
        f"{path}:9:83: calendar.windows.lunch.days.1: unknown day 'tues' (did you mean "
        "'tue'?); days: mon, tue, wed, thu, fri, sat, sun",
        f"{path}:11:42: params.p_accept.default: {P17}",
        f"{path}:15:44: actors.b.present.0.window: {CONFRENCE}, lunch",
        f"{path}:24:10: actions: no actions: a scenario needs at least one",
    ]


def test_every_fault_of_a_window_is_reported(cli, write_scenario):
    """A window with two faults reports both: bad hours and dates in the wrong order; a
    'duration' with 'daily' (said as such, not "give 'start' and 'end'", which are
    given) and a start that is not a date."""
    text = _coffee("plain").replace(
        "    conference: {start: 2024-05-14 09:00, end: 2024-05-14 18:00}\n",
        "    conference: {start: 2024-05-14 09:00, end: 2024-05-14 18:00}\n"
        '    hours: {daily: "8-22", start: 2024-05-14, end: 2024-05-13}\n'
        '    both: {daily: "08:00-22:00", start: 2024-05-14 09:00, end: 2024-05-16, '
        "duration: 3h}\n",
    )
    path = write_scenario(text, "windows.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines[:4] == [
        f"{path}:9:20: calendar.windows.hours.daily: write the hours as 08:00-22:00, not '8-22'",
        f"{path}:9:52: calendar.windows.hours.end: the last date comes before the first",
        f"{path}:10:11: calendar.windows.both: 'duration' does not go with 'daily' (the "
        "hours say how long each day's window is): remove it",
        f"{path}:10:41: calendar.windows.both.start: with 'daily', write a date such as "
        "2023-06-02, not '2024-05-14 09:00'",
    ]
    assert lines[4:] == [
        f"{path}:12:42: params.p_accept.default: {P17}",
        f"{path}:16:44: actors.b.present.0.window: unknown window 'confrence' (did you mean "
        "'conference'?); windows: both, conference, hours",
        f"{path}:32:43: actions.b_answers.options.no.trigger: {DECLIEN}",
        f"{path}:35:11: actions.meet.from: {ACEPTED}",
        f"{path}:36:29: actions.meet.guard: {PRESNT}",
    ]


def test_a_parameter_without_provenance_still_has_its_default_checked(cli, write_scenario):
    """A missing source/assumption used to hide the parameter's out-of-range default."""
    text = COFFEE.replace(
        "p_accept: {kind: probability, default: 1.7, assumption: invented}",
        "p_accept: {kind: probability, default: 1.7}",
    )
    path = write_scenario(text, "provenance.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines == [
        f"{path}:10:13: params.p_accept: give a 'source' (the sentence it comes from) or an "
        "'assumption' note",
        f"{path}:10:42: params.p_accept.default: {P17}",
        f"{path}:14:44: actors.b.present.0.window: {CONFRENCE}",
        f"{path}:30:43: actions.b_answers.options.no.trigger: {DECLIEN}",
        f"{path}:33:11: actions.meet.from: {ACEPTED}",
        f"{path}:34:29: actions.meet.guard: {PRESNT}",
    ]


def test_a_broken_transition_does_not_hide_an_event_trigger(cli, write_scenario):
    """With no state machine (a transition from an unknown state), an event's misspelt
    trigger is still told against the protocol's trigger names, as an action's is."""
    text = COFFEE.replace(
        "{trigger: accept, source: requested,", "{trigger: accept, source: requestd,"
    )
    text += "events:\n  snub: {at: 2024-05-14 12:00, set: {}, trigger: declin}\n"
    path = write_scenario(text, "event.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines == [
        f"{path}:10:42: params.p_accept.default: {P17}",
        f"{path}:14:44: actors.b.present.0.window: {CONFRENCE}",
        f"{path}:19:33: protocol.transitions.0.source: unknown state 'requestd' (did you "
        "mean 'requested'?); states: accepted, declined, held, requested",
        f"{path}:30:43: actions.b_answers.options.no.trigger: {DECLIEN}",
        f"{path}:33:11: actions.meet.from: {ACEPTED}",
        f"{path}:34:29: actions.meet.guard: {PRESNT}",
        f"{path}:38:50: events.snub.trigger: unknown trigger 'declin' (did you mean "
        "'decline'?); protocol triggers: accept, decline, meet",
    ]


PYDANTIC_WORDING = """\
id: My Case
title: Words
calendar: {timezone: UTC, start: 2024-01-01 00:00, horizon: 1d}
params:
  p: 5
actors:
  a: {name: 5, present: [{from: 0h, until: 1h}]}
facts:
  f: {type: bool, initial: maybe}
protocol:
  states: [a, b, off]
  initial: a
  transitions: [{trigger: go, source: a, dest: b}]
  outcomes: {success: [b]}
actions:
  g: {actor: a, chance: maybe, delay: {dist: fixed, value: 1h}, trigger: go}
"""


def test_type_and_pattern_problems_are_said_in_plain_words(cli, write_scenario):
    """No "Input should be a valid dictionary or instance of Param", no regular
    expression; a state named off (YAML reads it as false) is one line saying so, not
    also "protocol.states: Input should be a valid dictionary"."""
    path = write_scenario(PYDANTIC_WORDING, "words.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines == [
        f"{path}:1:5: id: an id is lower-case letters, digits, '-' and '_', starting with a "
        "letter or digit; found 'My Case'",
        f"{path}:5:6: params.p: expected a mapping (KEY: VALUE lines), found the number 5",
        f"{path}:7:13: actors.a.name: expected text, found the number 5",
        f"{path}:9:28: facts.f.initial: expected true or false, found 'maybe'",
        f"{path}:11:18: protocol.states.2: YAML reads the word off as false, not as text: "
        "write it in quotes ('off')",
        f"{path}:16:25: actions.g.chance: expected true or false, found the text 'maybe'",
    ]


def test_a_wrong_enum_value_an_effect_may_give_is_found_at_load(cli, write_scenario):
    """``'warm' if tension > 1 else 'hott'`` validated, and the run failed with
    "mood cannot be set to 'hott'": each value an effect may give is checked."""
    text = COFFEE.replace(
        "actors:\n",
        "facts:\n  mood: {type: enum, values: [cold, warm, hot], initial: cold}\n"
        "  tension: {type: number, initial: 0}\nactors:\n",
    ).replace(
        "yes: {weight: p_accept, trigger: accept}",
        "yes: {weight: p_accept, trigger: accept, set: {mood: \"'warm' if tension > 1 "
        "else 'hott'\"}}",
    )
    path = write_scenario(text, "enum.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines == [
        f"{path}:10:42: params.p_accept.default: {P17}",
        f"{path}:17:44: actors.b.present.0.window: {CONFRENCE}",
        f"{path}:32:88: actions.b_answers.options.yes.set.mood: 'hott' is not one of mood's "
        "values: cold, warm, hot (did you mean 'hot'?) (in \"'warm' if tension > 1 else "
        "'hott'\")",
        f"{path}:33:43: actions.b_answers.options.no.trigger: {DECLIEN}",
        f"{path}:36:11: actions.meet.from: {ACEPTED}",
        f"{path}:37:29: actions.meet.guard: {PRESNT}",
    ]


def test_a_repeated_state_is_named_and_short_names_get_did_you_mean(cli, write_scenario):
    """The repeated state is named, at its second listing; 's9' (50% like 's0'
    to difflib) is one character from 's0' and 's1', and both are offered."""
    text = COFFEE.replace(
        "states: [requested, accepted, held, declined]",
        "states: [requested, accepted, held, declined, s0, s1, held]",
    ).replace("from: acepted", "from: s9")
    path = write_scenario(text, "states.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines == [
        f"{path}:10:42: params.p_accept.default: {P17}",
        f"{path}:14:44: actors.b.present.0.window: {CONFRENCE}",
        f"{path}:16:57: protocol.states.6: the state 'held' is listed twice",
        f"{path}:30:43: actions.b_answers.options.no.trigger: {DECLIEN}",
        f"{path}:33:11: actions.meet.from: unknown state 's9' (did you mean 's0' or 's1'?); "
        "states: accepted, declined, held, requested, s0, s1",
        f"{path}:34:29: actions.meet.guard: {PRESNT}",
    ]


CALENDAR_BEHIND_A_BAD_ZONE = """\
id: tz
title: Calendar mistakes behind a bad zone
calendar:
  timezone: Europe/Viena
  start: 2024-05-14 08:00
  horizon: 2024-05-16 18:00
  windows:
    conference: {start: 2024-05-14 09:00, end: 2024-05-14 08:00}
    hours: {daily: "08:00-25:00", start: 2024-05-14, end: 2024-05-15}
params:
  p: {kind: probability, default: 0.5, assumption: x}
actors:
  a: {name: A, present: [{from: 2024-05-14 10:00, until: 2024-05-14 09:00}]}
  b: {name: B, present: [{from: 2024-05-14 1O:00, until: 2024-05-14 12:00}]}
protocol:
  states: [requested, held]
  initial: requested
  transitions:
    - {trigger: meet, source: requested, dest: held}
  outcomes: {success: [held]}
actions:
  m: {actor: a, delay: {dist: fixed, value: 1h}, trigger: meet}
events:
  e: {at: 2024-05-14 27:00, jitter: {dist: uniform, low: 1h, high: -1h}, set: {}}
"""

TIMES_OF_THE_FILE = [
    ("8:48", "calendar.windows.conference.end: the window ends before it starts"),
    ("9:20", "calendar.windows.hours.daily: 25:00 is not a time of day"),
    ("13:58", "actors.a.present.0.until: the stay ends before it starts"),
    ("14:33", "actors.b.present.0.from: '2024-05-14 1O:00' is not a date and time (write "
     "e.g. 2023-02-17 14:00)"),
    ("24:11", "events.e.at: '2024-05-14 27:00' is not a date and time (write e.g. "
     "2023-02-17 14:00)"),
    ("24:68", "events.e.jitter.high: high (-1) is below low (1)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fix", "first"),
    [
        (None, "4:13: calendar.timezone: unknown time zone 'Europe/Viena' (use an IANA name "
               "such as Europe/Berlin)"),
        (("Europe/Viena", "Europe/Vienna", "horizon: 2024-05-16", "horizon: 2024-05-13"),
         "6:12: calendar.horizon: the horizon must come after the start"),
        (("Europe/Viena", "Europe/Vienna", "start: 2024-05-14 08:00", "start: 2024-05-14 8h"),
         "5:10: calendar.start: '2024-05-14 8h' is not a date and time (write e.g. "
         "2023-02-17 14:00)"),
    ],
)  # fmt: skip
def test_a_bad_zone_start_or_horizon_hides_no_other_time(cli, write_scenario, fix, first):
    """An unknown time zone, a start that is not a time, or a horizon before the start
    used to stop every other time of the file from being checked: the other times are
    now read against a stand-in (UTC, a fixed start), which says nothing of its own."""
    text = CALENDAR_BEHIND_A_BAD_ZONE
    for old, new in zip(*[iter(fix or ())] * 2, strict=True):
        assert old in text
        text = text.replace(old, new)
    path = write_scenario(text, "zone.yaml")
    lines = assert_input_error(cli("validate", path))
    assert lines == [f"{path}:{first}"] + [f"{path}:{at}: {msg}" for at, msg in TIMES_OF_THE_FILE]


def test_a_quote_closed_by_a_later_apostrophe_names_the_line_it_was_opened(cli, write_scenario):
    """An unclosed 'quotation mark is closed by the next apostrophe, far below: the
    message says where the quoted value was opened, not only where the parser stopped."""
    text = COFFEE.replace("title: A coffee", "title: 'A coffee").replace(
        "guard: present('a') and presnt('b')", "guard: present('a')"
    )
    path = write_scenario(text, "quote.yaml")
    assert assert_input_error(cli("validate", path)) == [
        f"{path}:34:21: invalid YAML: unexpected 'a' after a complete value on this line: "
        "the quotation mark before it closes the value quoted at line 2 (is the closing "
        "quotation mark missing there? a ' inside it is written '')"
    ]


# --- every pair of independent mistakes (issue 10, point 5) ----------------------------------

PAIRWISE = {  # one mistake each, in a different place of the tutorial
    "zone": ("timezone: Europe/Vienna", "timezone: Europe/Viena"),
    "horizon": ("horizon: 2024-05-14 18:00 ", "horizon: soon "),
    "window": ("end: 2024-05-14 18:00}", "end: 2024-05-14 25:00}"),
    "probability": ("default: 0.7", "default: 1.7"),
    "duration": ("default: 2h", "default: -2h"),
    "actor key": ("short: B\n", "shrt: B\n"),
    "distribution": ("dist: uniform", "dist: unifrom"),
    "dest": ("dest: declined}", "dest: declinde}"),
    "from": ("from: requested\n", "from: requestd\n"),
    "weight": ("weight: p_accept,", "weight: p_acept,"),
    "guard": ("present('b')\n", "presnt('b')\n"),
    "trigger": ("    trigger: meet\n", "    trigger: meat\n"),
    "initial": ("initial: requested", "initial: requestd"),
    "outcome": ("success: [held]", "success: [hled]"),
    "p90": ("p90: 6h}", "p90: 6hh}"),
}


def test_no_mistake_hides_another(tmp_path: Path) -> None:
    """For every pair of fifteen mistakes in different sections (calendar, params, actors,
    protocol, actions, expressions), validating the file with both reports exactly what
    each reports alone: the problems of a file come out in one pass."""
    from itertools import combinations

    from negosim.compiler.loader import validate

    base = (SCENARIOS / "tutorial.yaml").read_text(encoding="utf-8")
    assert all(base.count(old) == 1 for old, _ in PAIRWISE.values())

    def said(*names: str) -> set[str]:
        text = base
        for name in names:
            text = text.replace(*PAIRWISE[name])
        path = tmp_path / "case.yaml"
        path.write_text(text, encoding="utf-8")
        found = [f"{p.path}: {p.message}" for p in validate(path)]
        assert len(found) == len(set(found)), found  # each once
        return set(found)

    alone = {name: said(name) for name in PAIRWISE}
    assert all(len(lines) == 1 for lines in alone.values()), alone
    for a, b in combinations(PAIRWISE, 2):
        assert said(a, b) == alone[a] | alone[b], (a, b)
