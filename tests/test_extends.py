"""``extends:``: scenarios built on base files (issue 10, point 1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from negosim import load
from negosim.cli.main import main
from negosim.errors import ScenarioError
from negosim.scenario.yamlsource import MAX_BASES, load_scenario_file

BASE = """\
abstract: true
params:
  p_accept:
    kind: probability
    default: 0.7
    assumption: base value
  answer_median:
    default: 2h
    assumption: base value
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
      no: {weight: 1 - p_accept, trigger: decline}
  meet:
    actor: a
    from: accepted
    guard: present('a') and present('b')
    delay: {dist: triangular, min: 30min, mode: 1h, max: 3h}
    trigger: meet
"""

CASE = """\
extends: bases/base.yaml
id: case
title: A case on a base
calendar:
  timezone: Europe/Vienna
  start: 2024-05-14 08:00
  horizon: 2024-05-14 18:00
  windows:
    conference: {start: 2024-05-14 09:00, end: 2024-05-14 18:00}
params:
  p_accept:
    default: 0.4
actors:
  a: {name: A, present: [{window: conference}]}
  b: {name: B, present: [{window: conference}]}
"""


def write(tmp: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text, encoding="utf-8")


def problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load(path)
    return [str(p) for p in info.value.problems]


def test_mappings_merge_key_by_key_and_the_case_wins(tmp_path: Path) -> None:
    write(tmp_path, {"bases/base.yaml": BASE, "case.yaml": CASE})
    cs = load(tmp_path / "case.yaml")
    assert cs.params["p_accept"] == 0.4  # the case's value
    p = cs.model.params["p_accept"]
    assert p.kind == "probability" and p.assumption == "base value"  # the rest from the base
    assert list(cs.model.actions) == ["b_answers", "meet"]  # the base's order
    assert cs.model.abstract is False  # not inherited


def test_lists_and_scalars_are_replaced(tmp_path: Path) -> None:
    case = (
        CASE
        + """\
protocol:
  states: [requested, accepted, held, declined, lapsed]
  transitions:
    - {trigger: accept, source: requested, dest: accepted}
    - {trigger: decline, source: requested, dest: declined}
    - {trigger: meet, source: accepted, dest: held}
"""
    )
    write(tmp_path, {"bases/base.yaml": BASE, "case.yaml": case})
    cs = load(tmp_path / "case.yaml")
    assert cs.states == ("requested", "accepted", "held", "declined", "lapsed")
    assert len(cs.model.protocol.transitions) == 3  # replaced, not appended
    assert cs.model.protocol.initial == "requested"  # kept from the base


def test_a_chain_of_bases(tmp_path: Path) -> None:
    middle = "abstract: true\nextends: base.yaml\nparams:\n  answer_median: {default: 5h}\n"
    write(
        tmp_path,
        {
            "bases/base.yaml": BASE,
            "bases/middle.yaml": middle,
            "case.yaml": CASE.replace("bases/base.yaml", "bases/middle.yaml"),
        },
    )
    cs = load(tmp_path / "case.yaml")
    assert cs.params["answer_median"] == 5.0
    assert cs.params["p_accept"] == 0.4
    doc = load_scenario_file(tmp_path / "case.yaml")
    assert doc.bases == (
        os.path.join(str(tmp_path), "bases", "middle.yaml"),
        os.path.join(str(tmp_path), "bases", "base.yaml"),
    )


def test_a_cycle_is_an_error_naming_the_chain(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": "abstract: true\nextends: b.yaml\n",
            "b.yaml": "abstract: true\nextends: a.yaml\n",
        },
    )
    [msg] = problems(tmp_path / "a.yaml")
    a, b = str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")
    assert msg == f"{b}:2:10: extends: 'extends' makes a cycle: {a} → {b} → {a}"


def test_a_file_extending_itself(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": "abstract: true\nextends: a.yaml\n"})
    [msg] = problems(tmp_path / "a.yaml")
    assert "makes a cycle" in msg


def test_the_chain_is_bounded(tmp_path: Path) -> None:
    files = {
        f"b{i}.yaml": f"abstract: true\nextends: b{i + 1}.yaml\n" for i in range(MAX_BASES + 2)
    }
    files[f"b{MAX_BASES + 2}.yaml"] = "abstract: true\n"
    write(tmp_path, files)
    [msg] = problems(tmp_path / "b0.yaml")
    assert f"too many bases in a chain (at most {MAX_BASES})" in msg


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing.yaml", "no such file"),
        ("dir.yaml", "not a regular file"),
        ("fifo.yaml", "not a regular file"),
        ("notes.txt", "ending in .yaml or .yml"),
        ("other.yaml", "not a negosim scenario or base"),
        ("big.yaml", "file too large"),
    ],
)
def test_hostile_bases_are_refused(tmp_path: Path, target: str, message: str) -> None:
    (tmp_path / "dir.yaml").mkdir()
    os.mkfifo(tmp_path / "fifo.yaml")  # would block a reader that waits for data
    (tmp_path / "notes.txt").write_text("abstract: true\n")
    (tmp_path / "other.yaml").write_text("password: hunter2\n")
    (tmp_path / "big.yaml").write_text("abstract: true\n" + "#" * 300_000 + "\n")
    (tmp_path / "case.yaml").write_text(f"extends: {target}\nid: x\n")
    [msg] = problems(tmp_path / "case.yaml")
    assert message in msg and msg.startswith(f"{tmp_path / 'case.yaml'}:1:10: extends: ")
    assert "hunter2" not in msg and "password" not in msg


def test_a_case_can_extend_a_case_that_is_built_on_a_base(tmp_path: Path) -> None:
    """A complete case whose protocol comes from its own base is a valid base too (a
    what-if on a library case), while a file with an id but no protocol from anywhere
    is not."""
    variant = "extends: case.yaml\nid: variant\nparams:\n  p_accept: {default: 0.9}\n"
    write(tmp_path, {"bases/base.yaml": BASE, "case.yaml": CASE, "variant.yaml": variant})
    compiled = load(tmp_path / "variant.yaml")
    assert compiled.id == "variant"
    assert {p.name: p.value for p in compiled.parameters}["p_accept"] == 0.9
    write(tmp_path, {"noproto.yaml": "extends: bases/stub.yaml\nid: stub\n",
                     "bases/stub.yaml": "abstract: true\n",
                     "on-stub.yaml": "extends: noproto.yaml\nid: x\n"})  # fmt: skip
    [msg] = problems(tmp_path / "on-stub.yaml")
    assert msg == (
        f"{tmp_path / 'on-stub.yaml'}:1:10: extends: {tmp_path / 'noproto.yaml'}: not a negosim"
        " scenario or base (no 'abstract: true', nor 'id' and 'protocol', at the top level or"
        " from its own bases)"
    )


def test_errors_point_at_the_file_and_line_that_wrote_the_value(tmp_path: Path) -> None:
    base = BASE.replace("guard: present('a') and present('b')", "guard: present('a') and presnt")
    case = CASE.replace("default: 0.4", "default: 1.4")
    write(tmp_path, {"bases/base.yaml": base, "case.yaml": case})
    msgs = problems(tmp_path / "case.yaml")
    case_file, base_file = str(tmp_path / "case.yaml"), str(tmp_path / "bases" / "base.yaml")
    assert msgs[0].startswith(f"{case_file}:12:14: params.p_accept.default: ")
    assert msgs[1].startswith(f"{base_file}:29:29: actions.meet.guard: ")  # case first, then base
    assert "presnt" in msgs[1] and len(msgs) == 2


def test_schema_errors_in_a_base_are_located_in_the_base(tmp_path: Path) -> None:
    base = BASE.replace("    from: accepted\n", "    from: accepted\n    colour: red\n")
    write(tmp_path, {"bases/base.yaml": base, "case.yaml": CASE})
    [msg] = problems(tmp_path / "case.yaml")
    assert msg == (
        f"{tmp_path / 'bases' / 'base.yaml'}:29:5: actions.meet.colour: unknown key 'colour'"
    )


def test_an_abstract_base_is_refused_by_run_but_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, {"bases/base.yaml": BASE})
    base = tmp_path / "bases" / "base.yaml"
    assert main(["validate", str(base)]) == 0
    assert " ".join(capsys.readouterr().out.split()) == f"{base}: ok (abstract base)"
    assert main(["run", str(base), "--runs", "10"]) == 2
    err = capsys.readouterr().err
    assert f"{base}:1:1: abstract: this is an abstract base" in err
    assert "extends: base.yaml" in err


def test_an_invalid_value_in_an_abstract_base_is_reported_by_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, {"base.yaml": BASE.replace("default: 0.7", "default: true")})
    assert main(["validate", str(tmp_path / "base.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'base.yaml'}:5:14: params.p_accept.default: " in err


def test_params_says_which_file_each_value_comes_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    write(tmp_path, {"bases/base.yaml": BASE, "case.yaml": CASE})
    case = tmp_path / "case.yaml"
    assert main(["params", str(case), "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["p_accept"]["file"], rows["p_accept"]["line"]) == (str(case), 11)
    base = str(tmp_path / "bases" / "base.yaml")
    assert (rows["answer_median"]["file"], rows["answer_median"]["line"]) == (base, 7)
    assert main(["params", str(case)]) == 0
    out = capsys.readouterr().out
    assert f"from {base}:7" in out and f"from {case}" not in out


def test_params_says_where_each_value_comes_from_when_they_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case overrides p_accept's default and gives it a range; its kind and
    assumption stay the base's: the JSON says where each value is written, the
    table names only the file that is not the case, with what it gives."""
    monkeypatch.setenv("COLUMNS", "250")
    case_text = CASE.replace("default: 0.4\n", "default: 0.4\n    low: 0.1\n    high: 0.9\n")
    write(tmp_path, {"bases/base.yaml": BASE, "case.yaml": case_text})
    case, base = str(tmp_path / "case.yaml"), str(tmp_path / "bases" / "base.yaml")
    assert main(["params", case, "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["p_accept"]["origins"] == {
        "default": {"file": case, "line": 12},
        "low": {"file": case, "line": 13},
        "high": {"file": case, "line": 14},
        "assumption": {"file": base, "line": 6},
    }
    assert rows["answer_median"]["origins"] == {
        "default": {"file": base, "line": 8},
        "assumption": {"file": base, "line": 9},
    }
    assert main(["params", case, "--set", "p_accept=0.5", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["p_accept"]["origins"]["default"] == {"file": "--set p_accept=0.5", "line": None}
    assert main(["params", case]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"assumption from {base}:6" in out  # p_accept: only what the base gives
    assert f"from {base}:7" in out  # answer_median: wholly in the base, as before
    assert f"from {case}" not in out and "default from" not in out and "range from" not in out


def test_params_names_each_base_of_a_chain_it_draws_on(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the shipped library a stance's default is calibrated.yaml's, its range and
    assumption are stances.yaml's (which calibrated.yaml extends)."""
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    assert main(["params", "scenarios/shangri-la-2023.yaml"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    stances = load_scenario_file("scenarios/bases/stances.yaml")
    line = stances.locate_key(("params", "yes_if_condition_unmet", "low"))[0]
    assert (
        "default from scenarios/bases/calibrated.yaml:15; range, assumption from "
        f"scenarios/bases/stances.yaml:{line}"
    ) in out


def test_numbers_are_those_of_the_same_scenario_written_in_one_file(tmp_path: Path) -> None:
    from negosim import simulate

    write(tmp_path, {"bases/base.yaml": BASE, "case.yaml": CASE})
    whole = BASE.replace("abstract: true\n", "") + CASE.split("\n", 1)[1].replace(
        "params:\n  p_accept:\n    default: 0.4\n", ""
    )
    whole = whole.replace("default: 0.7", "default: 0.4")
    (tmp_path / "whole.yaml").write_text(whole)
    a = simulate(load(tmp_path / "case.yaml"), runs=2000, seed=3)
    b = simulate(load(tmp_path / "whole.yaml"), runs=2000, seed=3)
    assert a.p_meeting == b.p_meeting


def test_text_cannot_extend_a_file(tmp_path: Path) -> None:
    from negosim import load_string

    write(tmp_path, {"bases/base.yaml": BASE})
    with pytest.raises(ScenarioError) as info:
        load_string(CASE)
    [p] = info.value.problems
    assert (p.file, p.line, p.col, p.path) == ("<string>", 1, 10, "extends")
    assert "load the file" in p.message


# --- part of a scenario is still checked (the review of issue 10, point 5) ---------------

OWN_MISTAKES = """\
extends: {base}
id: c
title: case
calendar:
  timezone: Europe/Vienna
  start: 2024-05-14 08:00
  horizon: 2024-05-14 18:00
actors:
  a: {{name: A, present: [{{from: 0h, until: 10h}}]}}
  b: {{name: B, present: [{{from: 0h, until: 10h}}], avialable: []}}
actions:
  answer:
    guard: presnt('a')
"""


@pytest.mark.parametrize(
    ("files", "base_problem"),
    [
        (
            {"bsyn.yaml": "abstract: true\nparams:\n  p: {kind: probability, default: 0.5\n"},
            "bsyn.yaml:4:1: invalid YAML: the '{' opened at line 3 is not closed with '}' "
            "before this point (or an item in it needs quotes)",
        ),
        ({}, "case.yaml:1:10: extends: {tmp}/bsyn.yaml: no such file"),
        (
            {
                "bsyn.yaml": "extends: cyc.yaml\nabstract: true\n",
                "cyc.yaml": "extends: bsyn.yaml\nabstract: true\n",
            },
            "cyc.yaml:1:10: extends: 'extends' makes a cycle: {tmp}/case.yaml → "
            "{tmp}/bsyn.yaml → {tmp}/cyc.yaml → {tmp}/bsyn.yaml",
        ),
    ],
    ids=["yaml-error", "missing", "cycle"],
)
def test_a_broken_base_does_not_hide_the_case_s_own_mistakes(
    tmp_path: Path, files: dict[str, str], base_problem: str
) -> None:
    """A base that cannot be read (a YAML error, no such file, a cycle) is reported with
    what can be checked of the case without it: an unknown key, a misspelt function.
    What the base would have given (a protocol, the actions' actors) is not missing.
    The case's own lines come first (a missing base is said at its 'extends')."""
    write(tmp_path, {**files, "case.yaml": OWN_MISTAKES.format(base="bsyn.yaml")})
    case = tmp_path / "case.yaml"
    own = [
        f"{case}:10:51: actors.b.avialable: unknown key 'avialable' (did you mean 'available'?)",
        f"{case}:13:12: actions.answer.guard: unknown function 'presnt' (did you mean "
        "'present'?); available functions: abs, available, clamp, exp, in_window, log, "
        "logistic, max, min, present, sqrt (in \"presnt('a')\")",
    ]
    said = f"{tmp_path}/" + base_problem.replace("{tmp}", str(tmp_path))
    assert problems(case) == (own + [said] if files else [said, *own])


def test_what_an_unreadable_base_would_give_is_not_missing(tmp_path: Path) -> None:
    """With its base unreadable, a case's parameter without a source, or its window
    without dates (both may be given by the base, key by key), is not a problem; a stay
    without times is (a list replaces the base's), and so is a wrong value."""
    write(
        tmp_path,
        {
            "case.yaml": OWN_MISTAKES.format(base="nope.yaml")
            .replace(
                "  horizon: 2024-05-14 18:00\n",
                '  horizon: 2024-05-14 18:00\n  windows:\n    day: {daily: "08:00-22:00"}\n',
            )
            .replace("actors:\n", "params:\n  p_yes: {kind: probability, default: 1.4}\nactors:\n")
            .replace(
                "a: {name: A, present: [{from: 0h, until: 10h}]}", "a: {name: A, present: [{}]}"
            )
        },
    )
    case = tmp_path / "case.yaml"
    assert problems(case) == [
        f"{case}:1:10: extends: {tmp_path}/nope.yaml: no such file",
        f"{case}:11:39: params.p_yes.default: must be a probability (0 to 1), found 1.4",
        f"{case}:13:26: actors.a.present.0: give 'window', or both 'from' and 'until'",
        f"{case}:14:51: actors.b.avialable: unknown key 'avialable' (did you mean 'available'?)",
        f"{case}:17:12: actions.answer.guard: unknown function 'presnt' (did you mean "
        "'present'?); available functions: abs, available, clamp, exp, in_window, log, "
        "logistic, max, min, present, sqrt (in \"presnt('a')\")",
    ]


BROKEN_BASE = """\
abstract: true
params:
  p_yes: {kind: probability, default: 1.5, assumption: x}
  q: {default: 0.5, low: 0, high: 0.4, assumption: x}
  wait: {kind: duration, default: -2h, assumption: x}
  s: {default: abc, assumption: x}
  t: {default: 3h, assumption: x}
protocol:
  states: [requested, held, declined]
  initial: requested
  transitions:
    - {trigger: meet, source: requested, dest: held}
    - {trigger: decline, source: requested, dest: declnied}
  outcomes: {success: [held], failure: [declined]}
actions:
  answer:
    actor: b
    from: requested
    delay: {dist: exponential, mean: tt}
    guard: x_of_the_case > 1
    options:
      yes: {weight: p_yes, trigger: meet}
      no: {weight: 1 - p_yes, trigger: decline}
"""


def test_a_base_that_lists_its_states_names_no_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base that lists the states (a list: a case replaces it whole) and starts in
    another was "ok (abstract base)"; a parameter without provenance in a base still
    has its default checked."""
    write(
        tmp_path,
        {
            "base.yaml": "abstract: true\nparams:\n  r: {kind: rate, default: -1}\n"
            "protocol:\n  states: [a, b]\n  initial: c\n"
        },
    )
    base = tmp_path / "base.yaml"
    assert main(["validate", str(base)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{base}:3:6: params.r: give a 'source' (the sentence it comes from) or an "
        "'assumption' note",
        f"{base}:3:28: params.r.default: must be at least 0 (a rate cannot be negative), found -1",
        f"{base}:6:12: protocol.initial: unknown state 'c'; states: a, b",
    ]


def test_an_abstract_base_is_range_and_name_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a base gives is checked like a whole scenario's (ranges, types, bounds, and the
    names it declares itself: a misspelt state, a misspelt parameter), each once; what it
    leaves to its cases is not missing, and a name unlike any it declares (the actor 'b',
    'x_of_the_case') may be declared by a case."""
    write(tmp_path, {"base.yaml": BROKEN_BASE})
    base = tmp_path / "base.yaml"
    assert main(["validate", str(base)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{base}:3:39: params.p_yes.default: must be a probability (0 to 1), found 1.5",
        f"{base}:4:16: params.q.default: must be at most 0.4 (params.q.high, {base}:4:35), "
        "found 0.5",
        f"{base}:5:35: params.wait.default: must be at least 0 (a duration cannot be "
        "negative), found -2h",
        f"{base}:6:16: params.s.default: expected a number, found 'abc'",
        f"{base}:13:51: protocol.transitions.1.dest: unknown state 'declnied' (did you mean "
        "'declined'?); states: declined, held, requested",
        f"{base}:19:38: actions.answer.delay.mean: unknown parameter 'tt' (did you mean "
        "'t'?); declared: p_yes, q, t, wait",
    ]
