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
