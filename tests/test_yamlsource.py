"""Tests for negosim.scenario.yamlsource: safe YAML reading with located problems."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from negosim.errors import Problem, ScenarioError
from negosim.scenario.yamlsource import (
    YamlDocument,
    dotted,
    format_problems,
    load_yaml_file,
    load_yaml_text,
    problems_from_validation_error,
)

SCENARIO = """\
# a scenario
title: Sidelines
start: 2023-02-17 08:00
day: 2023-02-17
slot: 12:30
actors:
  us:
    arrival: 3.5
    staff: [a, b]
  cn: {arrival: 2}
actions:
  - name: request
    guard: "x > 1"
  - name: accept
    weights: [1, 2.5, yes, ~]
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        load_yaml_text(text, "s.yaml")
    return info.value.problems


def only_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def write(tmp_path: Path, content: str | bytes, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ---------------------------------------------------------------- data and locations


def test_plain_data() -> None:
    doc = load_yaml_text(SCENARIO, "s.yaml")
    assert doc.file == "s.yaml"
    assert doc.data["actors"] == {"us": {"arrival": 3.5, "staff": ["a", "b"]}, "cn": {"arrival": 2}}
    assert doc.data["actions"][1]["weights"] == [1, 2.5, True, None]
    assert doc.data["actions"][0]["guard"] == "x > 1"


def test_timestamps_and_sexagesimal_stay_strings() -> None:
    doc = load_yaml_text(SCENARIO)
    assert doc.data["start"] == "2023-02-17 08:00"
    assert doc.data["day"] == "2023-02-17"
    assert doc.data["slot"] == "12:30"
    doc = load_yaml_text("a: 2023-02-17T08:00:00+01:00\nb: !!timestamp 2001-12-14\n")
    assert doc.data == {"a": "2023-02-17T08:00:00+01:00", "b": "2001-12-14"}


def test_keys_are_strings_as_written() -> None:
    doc = load_yaml_text("1: a\ntrue: b\n1.50: c\n")
    assert doc.data == {"1": "a", "true": "b", "1.50": "c"}


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        ((), (1, 1)),
        (("title",), (2, 8)),
        (("actors",), (7, 3)),  # a block mapping starts at its first key
        (("actors", "us", "arrival"), (8, 14)),
        (("actors", "us", "staff", 1), (9, 16)),
        (("actors", "cn"), (10, 7)),
        (("actors", "cn", "arrival"), (10, 17)),
        (("actions", 1, "weights", 3), (15, 28)),
        (("actors", "us", "departure"), (8, 5)),  # missing key: the enclosing mapping
        (("nope",), (1, 1)),  # missing at the top level: the root
        (("actions", 7), (12, 3)),  # index out of range: the list
        (("actors", "us", "lognormal", "arrival"), (8, 14)),  # non-key parts skipped
    ],
)
def test_locate(loc: tuple[str | int, ...], expected: tuple[int, int]) -> None:
    assert load_yaml_text(SCENARIO).locate(loc) == expected


def test_problem_and_dotted() -> None:
    doc = load_yaml_text(SCENARIO, "s.yaml")
    problem = doc.problem(("actions", 0, "guard"), "bad guard")
    assert problem == Problem("s.yaml", 13, 12, "actions.0.guard", "bad guard")
    assert str(problem) == "s.yaml:13:12: actions.0.guard: bad guard"
    assert dotted(("actors", "us", "arrival")) == "actors.us.arrival"
    assert dotted(()) == ""
    assert format_problems([problem, problem]) == f"{problem}\n{problem}"


def test_document_without_positions() -> None:
    doc = YamlDocument("x.yaml", {"a": {"b": 1}})
    assert doc.locate(("a", "b")) == (1, 1)


def test_anchor_alias_and_merge() -> None:
    doc = load_yaml_text("base: &b {p: 1, q: 2}\nother: *b\nmerged:\n  <<: *b\n  q: 3\n")
    assert doc.data == {
        "base": {"p": 1, "q": 2},
        "other": {"p": 1, "q": 2},
        "merged": {"p": 1, "q": 3},
    }
    assert doc.data["other"] is not doc.data["base"]  # independent copies
    assert doc.locate(("merged", "q")) == (5, 6)
    assert doc.locate(("merged", "p")) == (1, 14)  # where the merged value is written


# ---------------------------------------------------------------- content problems


def test_duplicate_keys_all_reported() -> None:
    problems = problems_of("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n")
    assert [str(p) for p in problems] == [
        "s.yaml:4:3: b.c: duplicate key 'c' (first at line 3)",
        "s.yaml:5:1: a: duplicate key 'a' (first at line 1)",
    ]


def test_python_tags_refused_nothing_executed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.chdir(tmp_path)
    text = f'a: !!python/object/apply:os.system ["touch {marker}"]\nb: !!python/name:os.system\n'
    problems = problems_of(text)
    assert [(p.line, p.col, p.path) for p in problems] == [(1, 4, "a"), (2, 4, "b")]
    assert problems[0].message == "unsupported tag !!python/object/apply:os.system"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !custom x\n", "unsupported tag !custom"),
        ("a: !!binary aGk=\n", "unsupported tag !!binary"),
        ("a: !!set {x}\n", "unsupported tag !!set"),
        ("a: !!int abc\n", "invalid !!int value 'abc'"),
        ("? [x]\n: 1\n", "a mapping key must be a plain scalar, not a list"),
    ],
)
def test_bad_values(text: str, message: str) -> None:
    assert only_problem(text).message == message


def test_recursive_alias() -> None:
    problem = only_problem("a: &a [1, *a]\n")
    assert "recursive alias" in problem.message
    assert (problem.line, problem.col) == (1, 4)


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_refused_fast() -> None:
    started = time.perf_counter()
    problem = only_problem(BILLION_LAUGHS)
    assert time.perf_counter() - started < 0.5
    assert "document too large" in problem.message
    assert problem.line == 5  # the first value expanding past the limit


def test_too_many_aliases() -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 1001) + "]\n"
    problem = only_problem(text)
    assert problem.message == "too many aliases (more than 1000)"
    assert problem.line == 2


def test_deep_nesting_refused() -> None:
    assert "nested too deeply" in only_problem("a: " + "[" * 5000).message


# ---------------------------------------------------------------- file-level problems


def test_load_file(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffa: 1\n")
    doc = load_yaml_file(path)
    assert doc.data == {"a": 1}
    assert doc.file == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_yaml_file(tmp_path / "nope.yaml")
    assert info.value.problems == [Problem(str(tmp_path / "nope.yaml"), 0, 0, "", "no such file")]


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_yaml_file(str(tmp_path))
    assert str(info.value) == f"{tmp_path}: is a directory, expected a YAML file"


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "a: 1\n")

    def deny(self: Path, *args: object, **kwargs: object) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(ScenarioError, match="cannot read file: permission denied"):
        load_yaml_file(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b"a: 1\nb: caf\xc3\xa9 \xff\n")
    with pytest.raises(ScenarioError) as info:
        load_yaml_file(path)
    assert str(info.value) == f"{path}:2:9: not valid UTF-8 (byte 0xff)"


@pytest.mark.parametrize("content", ["", "# only\n\n# comments\n", "---\n"])
def test_empty(tmp_path: Path, content: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_yaml_file(write(tmp_path, content))
    [problem] = info.value.problems
    assert problem.message == "empty file: expected a scenario mapping"


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("just text\n", "a string"), ("42\n", "a number"), ("~\n", "null")],
)
def test_top_level_not_a_mapping(text: str, found: str) -> None:
    assert only_problem(text).message == f"expected a mapping at the top level, found {found}"


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        # issue 10: in plain words, with the lines concerned, not the parser's tokens
        ("a: 1\nb: c: d\n", 2, 5, "a ':' here starts a key where a value was expected"),
        ("a: 1\nb: [1, 2\nc: 3\n", 3, 2, "the '[' opened at line 2 is not closed with ']'"),
        ("a: 1\n\tb: 2\n", 2, 1, "a tab character: YAML is indented with spaces, never tabs"),
        ("a: 'open\n", 2, 1, "the quotation mark opened at line 1 is never closed"),
        ("a: *nope\n", 1, 4, "*nope refers to no anchor &nope defined before it"),
        ("a:\n    b: 1\n  c: 2\n", 3, 3, "this line is indented differently from the lines"),
        ("a: 1\n- b\n", 2, 1, "a list item ('-') where a key was expected"),
        # a list item deeper than the ones before it, then one between list and key
        ("a:\n  - {x: 1}\n   - {x: 2}\n", 3, 4, "same column (the list starts at line 2)"),
        ("a:\n  b:\n    - {x: 1}\n   - {x: 2}\n", 4, 4, "this list item is indented differently"),
        ("a: 1\nb c\nd: 2\n", 3, 1, "line 2 has no ':' after its key"),
        ("a: 1\nb: x\x00y\n", 2, 5, "character #x0000"),
    ],
)
def test_malformed_yaml(tmp_path: Path, text: str, line: int, col: int, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_yaml_file(path)
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.col, problem.path) == (str(path), line, col, "")
    assert problem.message.startswith("invalid YAML: ")
    assert fragment in problem.message


def test_two_documents(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_yaml_file(write(tmp_path, "a: 1\n---\nb: 2\n"))
    [problem] = info.value.problems
    assert (problem.line, problem.col) == (2, 1)
    assert problem.message.startswith("expected one YAML document")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        doc = load_yaml_text(text)
    except ScenarioError as exc:
        assert exc.problems
    else:
        assert isinstance(doc.data, dict)


# ---------------------------------------------------------------- pydantic errors


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Normal(Strict):
    dist: Literal["normal"]
    mean: float
    sd: float = Field(gt=0)


class LogNormal(Strict):
    dist: Literal["lognormal"]
    mu: float
    sigma: float


Delay = Annotated[Normal | LogNormal, Field(discriminator="dist")]


class Action(Strict):
    name: str
    prob: float = Field(ge=0, le=1)
    delay: Delay

    @field_validator("name")
    @classmethod
    def not_bad(cls, value: str) -> str:
        if value == "bad":
            raise ValueError("name must not be 'bad'")
        return value


class Scenario(Strict):
    title: str
    actions: list[Action]
    actors: dict[Annotated[str, Field(pattern="^[a-z]+$")], Delay] = {}


INVALID = """\
actions:
  - name: a
    prob: 1.5
    delay: {dist: normal, mean: 1, sd: 2}
  - name: bad
    prob: 0.5
    colour: red
    delay:
      dist: lognormal
      mu: x
  - prob: 0.1
    delay: {dist: weibull}
actors:
  us: {dist: normal, mean: 1}
  US: {dist: normal, mean: 1, sd: 1}
"""


def test_problems_from_validation_error() -> None:
    doc = load_yaml_text(INVALID, "s.yaml")
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate(doc.data)
    problems = problems_from_validation_error(info.value, doc)
    assert format_problems(problems).splitlines() == [
        "s.yaml:1:1: missing required key 'title'",
        "s.yaml:3:11: actions.0.prob: Input should be less than or equal to 1 (found: 1.5)",
        "s.yaml:5:11: actions.1.name: name must not be 'bad'",
        "s.yaml:7:5: actions.1.colour: unknown key 'colour'",
        "s.yaml:9:7: actions.1.delay: missing required key 'sigma'",
        "s.yaml:10:11: actions.1.delay.mu: Input should be a valid number, "
        "unable to parse string as a number (found: 'x')",
        "s.yaml:11:5: actions.2: missing required key 'name'",
        "s.yaml:12:19: actions.2.delay.dist: unknown distribution 'weibull'; "
        "valid: normal, lognormal",
        "s.yaml:14:7: actors.us: missing required key 'sd'",
        "s.yaml:15:3: actors.US: String should match pattern '^[a-z]+$' (found: 'US')",
    ]


def test_found_repr_is_truncated() -> None:
    doc = load_yaml_text("title: t\nactions: " + "x" * 100 + "\n")
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate(doc.data)
    [problem] = problems_from_validation_error(info.value, doc)
    assert (problem.line, problem.col, problem.path) == (2, 10, "actions")
    found = problem.message.split("(found: ", 1)[1].rstrip(")")
    assert len(found) <= 40
    assert found.endswith("...")


def test_an_unknown_distribution_lists_the_valid_ones(write_scenario) -> None:  # type: ignore[no-untyped-def]
    """Not pydantic's tag message: the name, the nearest valid one and the list."""
    from conftest import base_scenario

    import negosim

    data = base_scenario()
    data["actions"]["meet"]["delay"] = {"dist": "lognormall", "median": "1h", "p90": "2h"}
    with pytest.raises(negosim.ScenarioError) as info:
        negosim.load(write_scenario(data))
    assert str(info.value).endswith(
        "actions.meet.delay.dist: unknown distribution 'lognormall' (did you mean 'lognormal'?); "
        "valid: fixed, uniform, triangular, exponential, lognormal, empirical"
    )
