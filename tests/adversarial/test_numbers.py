"""Hostile files, part 5: inputs that used to give silently wrong results or exit 1.

An initial state that is already an outcome, a trigger named like the state
machine's own attributes, a venue-local time in a daylight-saving gap or
overlap, true/false where a number is expected: located errors (exit 2).
``--precision`` says when it was not reached. A bad ``--scheduler``, a results
file or play script that is not UTF-8, endless or absurd input to ``play``:
exit 2 with one line that blames the input, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._helpers_files import SWEEP, TUTORIAL, changed, contract, negosim, refused, snapshot, tutorial

LOCATED = re.compile(r"^[^\n]+:\d+:\d+: [\w.]+: .+$")


def _scenario(tmp_path: Path, edit: Any, name: str = "e.yaml") -> Path:
    data = yaml.safe_load(TUTORIAL.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _located(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert lines and all(LOCATED.match(line) for line in lines), err
    for n in needles:
        assert n in err, err


# --- the scenario ------------------------------------------------------------------------


def test_an_initial_state_that_is_an_outcome_is_an_error(tmp_path: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["protocol"]["initial"] = "held"

    _scenario(tmp_path, edit)
    for command in ("validate", "run"):
        err = refused(negosim(command, "e.yaml", cwd=tmp_path))
        _located(err, "protocol.initial: initial state 'held' is already an outcome")


@pytest.mark.parametrize("name", ["state", "get_graph", "trigger", "is_held", "may_accept"])
def test_triggers_named_like_the_machines_attributes_are_errors(tmp_path: Path, name: str) -> None:
    def edit(d: dict[str, Any]) -> None:
        old = d["protocol"]["transitions"][2]["trigger"]  # meet
        d["protocol"]["transitions"][2]["trigger"] = name
        for action in d["actions"].values():
            if action.get("trigger") == old:
                action["trigger"] = name

    _scenario(tmp_path, edit)
    for command in ("validate", "graph", "run"):
        err = refused(negosim(command, "e.yaml", cwd=tmp_path))
        _located(err, "protocol.transitions.2.trigger:", f"trigger name '{name}' is taken")


@pytest.mark.parametrize(
    "when, needle",
    [
        ("2024-03-31 02:30", "does not exist in Europe/Vienna"),
        ("2024-10-27 02:30", "happens twice in Europe/Vienna"),
    ],
)
def test_venue_local_times_in_a_dst_gap_or_overlap_are_errors(
    tmp_path: Path, when: str, needle: str
) -> None:
    def edit(d: dict[str, Any]) -> None:
        assert d["calendar"]["timezone"] == "Europe/Vienna"
        d["calendar"]["start"] = when
        d["calendar"]["horizon"] = "3d"
        d["calendar"]["windows"] = {"conference": {"start": "1h", "end": "2d"}}

    _scenario(tmp_path, edit)
    err = refused(negosim("validate", "e.yaml", cwd=tmp_path))
    _located(err, "calendar.start:", needle)
    # The same time with its UTC offset is unambiguous, and accepted.
    if "twice" in needle:

        def fixed(d: dict[str, Any]) -> None:
            edit(d)
            d["calendar"]["start"] = when + "+01:00"

        _scenario(tmp_path, fixed)
        contract(negosim("validate", "e.yaml", cwd=tmp_path), 0)


def test_a_window_edge_in_a_dst_gap_is_an_error(tmp_path: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["calendar"]["start"] = "2024-03-30 12:00"
        d["calendar"]["horizon"] = "3d"
        d["calendar"]["windows"] = {
            "conference": {"start": "2024-03-31 02:15", "end": "2024-03-31 09:00"}
        }

    _scenario(tmp_path, edit)
    err = refused(negosim("validate", "e.yaml", cwd=tmp_path), "calendar.windows.conference.start")
    assert "does not exist" in err


@pytest.mark.parametrize("value", ["true", "false", "yes", "on"])
@pytest.mark.parametrize("name", ["p_accept", "answer_median"])
def test_true_or_false_is_not_a_number_on_the_command_line(
    tmp_path: Path, name: str, value: str
) -> None:
    tutorial(tmp_path)
    proc = negosim("run", "t.yaml", "--runs", "10", "--set", f"{name}={value}", cwd=tmp_path)
    if value in ("yes", "on"):  # YAML 1.2 reads these as text: not a number either
        contract(proc, 2)
        return
    err = refused(proc, f"params.{name}.default: expected a number, found {value}")
    assert len(err.strip().splitlines()) == 1, err


def test_true_or_false_is_not_a_number_in_the_file(tmp_path: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["params"]["p_accept"]["default"] = True

    _scenario(tmp_path, edit)
    _located(refused(negosim("validate", "e.yaml", cwd=tmp_path)), "expected a number, found true")


@pytest.mark.parametrize(
    "body, needle",
    [
        ("params:\n  p_accept: {values: [true, 0.5]}\n", "expected a number"),
        ("runs: true\nparams:\n  p_accept: {values: [0.5]}\n", "runs"),
        ("seed: false\nparams:\n  p_accept: {values: [0.5]}\n", "seed"),
        ("params:\n  p_accept: {low: true, high: 1, steps: 2}\n", "expected a number"),
    ],
)
def test_true_or_false_is_not_a_number_in_a_sweep_file(
    tmp_path: Path, body: str, needle: str
) -> None:
    tutorial(tmp_path)
    (tmp_path / "s.yaml").write_text("scenario: t.yaml\n" + body, encoding="utf-8")
    before = snapshot(tmp_path)
    _located(refused(negosim("validate", "s.yaml", cwd=tmp_path)), needle)
    refused(negosim("sweep", "s.yaml", "--out", "o.csv", cwd=tmp_path), needle)
    assert changed(before, snapshot(tmp_path)) == set()


def test_the_schema_says_number_for_numbers(tmp_path: Path) -> None:
    proc = negosim("schema", cwd=tmp_path)
    contract(proc, 0)
    assert '"boolean"' not in json.dumps(json.loads(proc.stdout)["$defs"]["Param"])


# --- --precision -------------------------------------------------------------------------


def test_precision_not_reached_is_said_by_the_library(tmp_path: Path) -> None:
    import negosim as lib
    from negosim.runs.runner import simulate_to_precision

    cs = lib.load(TUTORIAL)
    est = simulate_to_precision(cs, 1e-9, seed=1, max_runs=2000)
    assert est.runs == 2000
    assert est.precision is not None and est.precision["reached"] is False
    assert est.to_json()["precision"]["reached"] is False
    assert "precision" not in lib.simulate(cs, runs=100).to_json()


def test_precision_not_reached_is_said_by_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from negosim.cli.main import main
    from negosim.runs import runner

    monkeypatch.setenv("NO_COLOR", "1")
    capped = functools.partial(runner.simulate_to_precision, max_runs=2000)
    monkeypatch.setattr(runner, "simulate_to_precision", capped)
    code = main(["run", str(TUTORIAL), "--precision", "1e-9", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "NOT reached" in err and "precision 1e-09 reached" not in err
    data = json.loads(out)
    assert data["precision"] == {
        "target": 1e-9,
        "half_width": pytest.approx((data["ci95"][1] - data["ci95"][0]) / 2),
        "reached": False,
        "max_runs": 2000,
    }


def test_precision_reached_is_said_too(tmp_path: Path) -> None:
    tutorial(tmp_path)
    proc = negosim("run", "t.yaml", "--precision", "0.2", "--format", "json", cwd=tmp_path)
    contract(proc, 0)
    assert "precision 0.2 reached after 1,000 runs" in proc.stderr
    assert json.loads(proc.stdout)["precision"]["reached"] is True


# --- the command line and other inputs ---------------------------------------------------


@pytest.mark.parametrize(
    "address", ["bogus", "file:///etc/passwd", "tcp://h:99999", "http://h:1", "h:1\nx"]
)
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_bad_scheduler_is_refused_at_once(tmp_path: Path, command: str, address: str) -> None:
    tutorial(tmp_path)
    extra = SWEEP[:2] if command == "sweep" else ()
    started = time.monotonic()
    proc = negosim(command, "t.yaml", *extra, "--runs", "10", "--scheduler", address, cwd=tmp_path)
    err = refused(proc, "--scheduler", "expected a Dask scheduler address")
    assert len(err.strip().splitlines()) == 1, err
    assert time.monotonic() - started < 30


@pytest.fixture
def results(tmp_path: Path) -> Path:
    tutorial(tmp_path)
    contract(negosim("sweep", "t.yaml", *SWEEP, "--out", "o.csv", cwd=tmp_path), 0)
    (tmp_path / "o.manifest.json").unlink()
    return tmp_path


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"point,p_meeting\n\xff\xfe,1\n", "not valid UTF-8"),
        (b"point,p_meeting,ci95_low,ci95_high\n0,\x00,0,1\n", "p_meeting"),
        (b"point,p_meeting,ci95_low,ci95_high,x\n0,high,0,1,1\n1,0.5,0,1,2\n", "p_meeting"),
        (b"point,p_meeting,ci95_low,ci95_high,x\n0,7,0,1,1\n1,0.5,0,1,2\n", "p_meeting"),
        (b'point,p_meeting\n"unterminated', "missing column"),
    ],
)
@pytest.mark.parametrize("command", ["report", "plot"])
def test_hostile_results_files_are_bad_input(
    results: Path, command: str, content: bytes, needle: str
) -> None:
    pytest.importorskip("matplotlib")
    (results / "bad.csv").write_bytes(content)
    before = snapshot(results)
    out = "r.html" if command == "report" else "r.png"
    err = refused(negosim(command, "bad.csv", "-o", out, cwd=results), "bad.csv", needle)
    assert len(err.strip().splitlines()) == 1, err
    assert changed(before, snapshot(results)) == set()


def test_a_hostile_manifest_beside_results_is_ignored(results: Path) -> None:
    pytest.importorskip("matplotlib")
    for junk in (b"\xff", b"[1]", b'{"sweep": {"params": [1, {"name": 5}]}}',
                 b'{"sensitivity": {"params": {"x": 3}}}'):  # fmt: skip
        (results / "o.manifest.json").write_bytes(junk)
        contract(negosim("report", "o.csv", "-o", "r.html", cwd=results), 0)


# --- play ----------------------------------------------------------------------------------


def test_play_with_endless_zeros_on_stdin(tmp_path: Path) -> None:
    tutorial(tmp_path)
    with open("/dev/zero", "rb") as zero:
        proc = negosim("play", "t.yaml", "--as", "b", cwd=tmp_path, stdin=zero, timeout=60)
    err = refused(proc, "standard input")
    assert "t.yaml" not in err


def test_play_with_random_bytes_on_stdin(tmp_path: Path) -> None:
    tutorial(tmp_path)
    noise = os.urandom(200_000)
    contract(negosim("play", "t.yaml", "--as", "b", cwd=tmp_path, input=noise, timeout=60))


@pytest.mark.parametrize("digits", [5000, 4000, 20])
def test_play_with_a_huge_number_as_a_choice(tmp_path: Path, digits: int) -> None:
    tutorial(tmp_path)
    proc = negosim("play", "t.yaml", "--as", "b", cwd=tmp_path, input="9" * digits + "\n")
    contract(proc)
    assert "t.yaml:" not in proc.stderr  # the input is to blame, not the scenario
    (tmp_path / "s.txt").write_text("9" * digits + "\n", encoding="utf-8")
    proc = negosim("play", "t.yaml", "--as", "b", "--script", "s.txt", cwd=tmp_path)
    err = refused(proc, "s.txt:1:", "is not an option")
    assert len(err) < 500


@pytest.mark.parametrize(
    "content, needle",
    [(b"yes\n\xff\xfe\n", "s.txt:2: not valid UTF-8"), (b"yes\x00\n", "NUL")],
)
def test_play_scripts_that_are_not_text(tmp_path: Path, content: bytes, needle: str) -> None:
    tutorial(tmp_path)
    (tmp_path / "s.txt").write_bytes(content)
    proc = negosim("play", "t.yaml", "--as", "b", "--script", "s.txt", cwd=tmp_path)
    err = refused(proc, needle)
    assert len(err.strip().splitlines()) == 1, err


def test_play_script_from_an_endless_file(tmp_path: Path) -> None:
    tutorial(tmp_path)
    proc = negosim("play", "t.yaml", "--as", "b", "--script", "/dev/zero", cwd=tmp_path)
    refused(proc, "--script /dev/zero", "not a script")


@pytest.mark.parametrize("command", ["report", "plot"])
def test_results_with_failed_points_are_drawn_without_them(tmp_path: Path, command: str) -> None:
    pytest.importorskip("matplotlib")
    tutorial(tmp_path)
    sweep = ("sweep", "t.yaml", "--param", "p_accept=0.5,2,1", "--runs", "20", "--workers", "1")
    contract(negosim(*sweep, "--out", "f.csv", cwd=tmp_path), 0)
    assert ",failed," in (tmp_path / "f.csv").read_text(encoding="utf-8")
    out = "f.html" if command == "report" else "f.png"
    contract(negosim(command, "f.csv", "-o", out, cwd=tmp_path), 0)
