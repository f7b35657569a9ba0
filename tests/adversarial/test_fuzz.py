"""Fuzzing the command line in-process (issue 9): mutated scenarios, sweep files and arguments.

hypothesis mutates the shipped scenarios and sweep files (lines deleted,
duplicated, swapped or cut short; values replaced by hostile tokens: huge or
negative numbers, booleans, control characters, markup, paths, deep nesting)
and draws argument lists from every command's options; it also mutates the
journal of a sweep (the partial file ``--resume`` reads). Each input goes to
``negosim.cli.main.main(argv)`` in this process. The contract checked for
every input: the exit code is 0 or 2 (1 means an internal error, a bug), no
exception escapes, every stderr line is one line, and no raw control
character reaches stdout or stderr.

The budget is small by default so the suite stays fast; raise it on request::

    NEGOSIM_FUZZ_EXAMPLES=2000 pytest tests/adversarial/test_fuzz.py

(examples per test; hypothesis keeps failing examples in its database and
shrinks them to a minimal input).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from negosim.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))
EXAMPLES = int(os.environ.get("NEGOSIM_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

HOSTILE = [
    "0", "-1", "1e308", "-1e308", "nan", "inf", "true", "null", "~", "''", "[]", "{}",
    "99999999999999999999999999", "1" * 300, "0.0000001", "5e-324",
    "\x1b[2J", "\x1b]0;pwned\x07", ":100:", ":1234:", "[bold]x[/bold]", "<script>",
    "../../../../etc/passwd", "/dev/zero", "&a [*a, *a]", "!!python/object:os.system",
    "2023-02-30 25:61", "1h 2h", "36hours", "P1D", "{a: {b: {c: {d: {e: 1}}}}}",
    "present('nobody')", "in_window('nowhere')", "__import__('os')", "x.__class__",
]  # fmt: skip


def _mutate(text: str, data: st.DataObject) -> str:
    """One to three structural or value mutations of a YAML text."""
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        kind = data.draw(
            st.sampled_from(["delete", "duplicate", "swap", "value", "truncate", "indent"]),
            label="kind",
        )
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = data.draw(st.integers(0, len(lines) - 1), label="other line")
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "truncate":
            cut = data.draw(st.integers(0, len(lines[i])), label="cut")
            lines[i] = lines[i][:cut]
        elif kind == "indent":
            lines[i] = " " * data.draw(st.integers(0, 7), label="spaces") + lines[i].lstrip()
        else:
            token = data.draw(st.sampled_from(HOSTILE) | st.text(max_size=12), label="token")
            head, sep, _ = lines[i].partition(": ")
            lines[i] = f"{head}{sep or ': '}{token}"
    return "\n".join(lines) + "\n"


def _check(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # --help and friends
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert code in (0, 2), f"exit {code} for {argv}\n{err[-3000:]}"
    for name, text in (("stdout", out), ("stderr", err)):
        raw = _RAW_CONTROL.search(text.replace("\n", "").replace("\t", ""))
        assert raw is None, f"raw control character {raw.group()!r} on {name} for {argv}"
    assert "Traceback" not in err


@FUZZ
@given(data=st.data())
def test_mutated_scenarios_keep_the_contract(
    data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = data.draw(st.sampled_from(SCENARIOS), label="scenario")
    path = tmp_path / "mutant.yaml"
    path.write_text(_mutate(source.read_text(encoding="utf-8"), data), encoding="utf-8")
    command = data.draw(
        st.sampled_from([["validate"], ["run", "--runs", "20"], ["params"], ["explain"]]),
        label="command",
    )
    _check([command[0], str(path), *command[1:]], capsys)


@FUZZ
@given(data=st.data())
def test_mutated_sweep_files_keep_the_contract(
    data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = data.draw(st.sampled_from(SWEEPS), label="sweep file")
    text = source.read_text(encoding="utf-8").replace(
        "scenario: ../scenarios/", f"scenario: {REPO / 'scenarios'}/"
    )
    path = tmp_path / "mutant-sweep.yaml"
    path.write_text(_mutate(text, data), encoding="utf-8")
    _check(["validate", str(path)], capsys)


OPTIONS = {
    "run": ["--runs", "--seed", "--set", "--format", "--precision", "--workers"],
    "trace": ["--seed", "--set", "--format"],
    "params": ["--format"],
    "validate": ["--strict"],
    "compare": ["--runs", "--seed", "--set", "--base-set", "--format"],
    "sweep": ["--param", "--design", "--samples", "--runs", "--out", "--workers"],
    "graph": ["--format"],
    "explain": [],
}
VALUES = ["1", "0", "-3", "1e9", "abc", "json", "table", "p_us_formal_request=0.6", "x=1",
          "p=a:b:c", "p_us_formal_request=0:1:3", "sobol", "lhs", "2", "\x1b[31m", "~/x.csv",
          "nope=1", "dot", "mermaid"]  # fmt: skip


@FUZZ
@given(data=st.data())
def test_random_arguments_keep_the_contract(
    data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = data.draw(st.sampled_from(sorted(OPTIONS)), label="command")
    argv = [command, str(REPO / "scenarios" / "tutorial.yaml")]
    for _ in range(data.draw(st.integers(0, 4), label="options")):
        option = data.draw(st.sampled_from([*OPTIONS[command], "--bogus", "--run"]), label="opt")
        argv += [option, data.draw(st.sampled_from(VALUES), label="value")]
    if command == "sweep":
        argv = [a if a != "~/x.csv" else str(tmp_path / "x.csv") for a in argv]
        if "--runs" not in argv:
            argv += ["--runs", "20"]
        if "--workers" not in argv:
            argv += ["--workers", "1"]
    if command in ("run", "compare") and "--runs" not in argv and "--precision" not in argv:
        argv += ["--runs", "20"]
    old = os.getcwd()
    os.chdir(tmp_path)  # anything written lands here
    try:
        _check(argv, capsys)
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def honest_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, str]:
    """A finished 6-point sweep of the tutorial and its output as an honest journal."""
    from negosim.runs.sweeprun import sweep_key

    from ._helpers_files import SWEEP, tutorial

    work = tmp_path_factory.mktemp("honest")
    tutorial(work)
    old = os.getcwd()
    os.chdir(work)
    try:
        assert main(["sweep", "t.yaml", *SWEEP, "--out", "o.csv"]) == 0
    finally:
        os.chdir(old)
    final = (work / "o.csv").read_bytes()
    manifest = json.loads((work / "o.manifest.json").read_text(encoding="utf-8"))
    key = sweep_key(manifest["sweep"], manifest["scenario"]["sha256"])
    lines = final.decode("utf-8").splitlines()
    journal = "\n".join([lines[0] + ",sweep_key", *(f"{x},{key}" for x in lines[1:])]) + "\n"
    (work / "o.csv").unlink()
    return work, final, journal


@FUZZ
@given(data=st.data())
def test_mutated_journals_are_verified_before_they_are_trusted(
    data: st.DataObject,
    honest_sweep: tuple[Path, bytes, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A resumed sweep either refuses the journal (exit 2, nothing written) or writes
    exactly what an uninterrupted sweep writes."""
    from ._helpers_files import SWEEP

    template, final, journal = honest_sweep
    work = Path(tempfile.mkdtemp(dir=tmp_path)) / "w"  # a fresh copy per example
    shutil.copytree(template, work)
    (work / "o.partial.csv").write_text(_mutate(journal, data), encoding="utf-8")
    old = os.getcwd()
    os.chdir(work)
    try:
        _check(["sweep", "t.yaml", *SWEEP, "--out", "o.csv", "--resume"], capsys)
    finally:
        os.chdir(old)
    out = work / "o.csv"
    assert not out.exists() or out.read_bytes() == final
