"""Messages a newcomer understands (issue 10, point 5).

Every unknown name says which declared one was probably meant; a problem inside
an expression written over several lines (folded ``>``, literal ``|``, plain)
is located at the offending name, and the expression is quoted on one line;
every unknown name of an expression is reported in one pass, with the
problems of the rest of the file; YAML syntax errors are in plain words.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import base_scenario

import negosim
from negosim.errors import Problem

GUARDS = """\
id: multi
title: Multi-line guards
calendar: {timezone: UTC, start: 2024-01-01 00:00, horizon: 48h}
facts:
  cleared: {type: bool, initial: false}
actors:
  a: {name: A, present: [{from: 2024-01-01 00:00, until: 2024-01-02 00:00}]}
  china: {name: China}
protocol:
  states: [waiting, held]
  initial: waiting
  transitions:
    - {trigger: meet, source: waiting, dest: held}
  outcomes: {success: [held]}
actions:
  meet:
    actor: a
    guard: >
      present('a')
      and claered
      and present('chna')
    delay: {dist: fixed, value: 1h}
    trigger: meet
  other:
    actor: a
    guard: |
      present('a') and
        not cleard
    delay: {dist: fixed, value: 1h}
    set: {cleared: true}
"""


def problems(write_scenario: Callable[..., Path], content: str | dict[str, Any]) -> list[Problem]:
    return negosim.validate(write_scenario(content))


def test_every_unknown_name_in_a_multi_line_expression_in_one_pass(
    write_scenario: Callable[..., Path],
) -> None:
    found = problems(write_scenario, GUARDS)
    where = [(p.path, p.line, p.col) for p in found]
    assert where == [
        ("actions.meet.guard", 20, 11),  # 'claered', on the guard's second line
        ("actions.meet.guard", 21, 19),  # 'chna' inside present(...)
        ("actions.other.guard", 28, 13),  # a literal block: 'cleard' after the indentation
    ]
    assert "unknown name 'claered' (did you mean 'cleared'?)" in found[0].message
    assert "unknown actor 'chna' (did you mean 'china'?); actors: a, china" in found[1].message
    assert "unknown name 'cleard' (did you mean 'cleared'?)" in found[2].message
    for p in found:  # quoted on one line: no raw or escaped line breaks
        assert "\\n" not in str(p) and "\n" not in str(p)
    assert "(in \"present('a') and claered and present('chna')\")" in found[0].message


def test_a_literal_block_expression_compiles(write_scenario: Callable[..., Path]) -> None:
    fixed = GUARDS.replace("claered", "cleared").replace("chna", "a").replace("cleard", "cleared")
    cs = negosim.load(write_scenario(fixed))
    assert negosim.simulate(cs, runs=50).runs == 50


def test_an_unknown_key_says_which_was_meant(write_scenario: Callable[..., Path]) -> None:
    data = base_scenario()
    data["actions"]["meet"]["requries"] = []
    data["actions"]["meet"]["delay"] = {"dist": "lognormal", "median": "2h", "p09": "6h"}
    messages = {p.path: p.message for p in problems(write_scenario, data)}
    assert messages["actions.meet.requries"] == "unknown key 'requries' (did you mean 'requires'?)"
    assert messages["actions.meet.delay.p09"] == "unknown key 'p09' (did you mean 'p90'?)"


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        (("actions", "meet", "actor", "aa"), "actions.meet.actor", "(did you mean 'a'?)"),
        (("actions", "meet", "from", "wating"), "actions.meet.from", "(did you mean 'waiting'?)"),
        (("actions", "meet", "trigger", "meat"), "actions.meet.trigger", "(did you mean 'meet'?)"),
        (("actions", "meet", "guard", "abss(1) > 0"), "actions.meet.guard", "did you mean 'abs'"),
    ],
)
def test_unknown_references_say_which_was_meant(
    write_scenario: Callable[..., Path], change: tuple[str, str, str, str], path: str, expected: str
) -> None:
    data = base_scenario()
    section, name, key, value = change
    data[section][name][key] = value
    [p] = problems(write_scenario, data)
    assert p.path == path and expected in p.message, p


def test_schema_and_expression_problems_come_together(write_scenario: Callable[..., Path]) -> None:
    data = base_scenario()
    data["actions"]["meet"]["guard"] = "preset('a')"
    data["actions"]["other"] = {
        "actor": "a", "delya": {"dist": "fixed", "value": "1h"}, "trigger": "fail",
    }  # fmt: skip
    paths = [p.path for p in problems(write_scenario, data)]
    assert "actions.meet.guard" in paths and "actions.other.delya" in paths


def test_a_missing_file_and_an_unknown_distribution(
    tmp_path: Path, write_scenario: Callable[..., Path]
) -> None:
    [p] = negosim.validate(tmp_path / "nowhere.yaml")
    assert str(p) == f"{tmp_path / 'nowhere.yaml'}: no such file"
    data = base_scenario()
    data["actions"]["meet"]["delay"] = {"dist": "lognormall", "median": "2h", "p90": "6h"}
    [p] = problems(write_scenario, data)
    assert "unknown distribution 'lognormall' (did you mean 'lognormal'?); valid:" in p.message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("id: x\ncalendar:\n    timezone: UTC\n  start: 2024\n", 4, "indented differently"),
        ("id: x\ncalendar:\n\ttimezone: UTC\n", 3, "never tabs"),
        ("id: x\ntitle: 'open\n", 3, "opened at line 2 is never closed"),
        ('id: x\ntitle: "Talks" in Bali\n', 2,
         "unexpected 'i' after a complete value on this line: if it is part of the value, "
         "put the whole value in quotes"),
        ("id: x\nactors: {a: {name: A}}}\n", 2, "unexpected '}' after a complete value"),
        ("id: x\ntitle: @home\n", 2,
         "a value cannot start with '@', which YAML reserves: put the value in quotes"),
        ("id: x\ntitle: `code`\n", 2, "a value cannot start with '`'"),
    ],
)
def test_yaml_errors_in_plain_words(
    write_scenario: Callable[..., Path], text: str, line: int, words: str
) -> None:
    [p] = problems(write_scenario, text)
    assert p.line == line and words in p.message, p
    assert "<block" not in p.message and "token" not in p.message


def test_yaml_dump_of_a_multi_line_guard_keeps_working(load_data: Callable[..., Any]) -> None:
    data = base_scenario()
    data["facts"] = {"ok": {"type": "bool", "initial": True}}
    data["actions"]["meet"]["guard"] = "ok\nand ok"  # what yaml.safe_dump writes over lines
    assert "guard" in yaml.safe_dump(data)
    assert load_data(data).clocks[0].guard is not None


def test_expression_problems_are_found_even_when_the_calendar_is_broken(
    write_scenario: Callable[..., Path],
) -> None:
    data = base_scenario()
    del data["calendar"]["horizon"]  # a schema problem outside the named items
    data["facts"] = {"cleared": {"type": "bool", "initial": False}}
    data["actions"]["meet"]["guard"] = "claered and present('b')"
    found = problems(write_scenario, data)
    assert [p.path for p in found] == ["calendar", "actions.meet.guard", "actions.meet.guard"]
    assert found[0].message == "missing required key 'horizon'"
    assert "unknown name 'claered' (did you mean 'cleared'?)" in found[1].message
    assert "unknown actor 'b'; actors: a" in found[2].message
    assert found[2].col - found[1].col == len("claered and present(")


def test_a_duplicate_key_is_reported_with_the_other_problems(
    write_scenario: Callable[..., Path],
) -> None:
    text = yaml.safe_dump(base_scenario(), sort_keys=False)
    text = text.replace("  meet:\n", "  meet:\n    guard: presnt('a')\n", 1)
    text += "  meet:\n    actor: a\n"  # a second 'meet' action: a duplicate key
    found = problems(write_scenario, text)
    assert [p.message.split(" (")[0] for p in found] == [
        "unknown function 'presnt'",
        "duplicate key 'meet'",
    ]
    assert "did you mean 'present'?" in found[0].message
    # with a schema problem as well
    broken = text.replace("horizon: 48h\n", "")
    messages = [p.message for p in problems(write_scenario, broken)]
    assert "missing required key 'horizon'" in messages
    assert any(m.startswith("duplicate key 'meet'") for m in messages)


def test_a_misspelt_name_written_as_a_key_is_located_at_the_key(tmp_path: Path) -> None:
    """An unknown actor in a ``present:``/``available:`` effect, or an unknown fact in
    ``set:``, is reported where the name is written (the key), in the base or the case,
    with "did you mean"; not where its value is."""
    (tmp_path / "base.yaml").write_text(
        "abstract: true\n"
        "events:\n"
        "  crisis:\n"
        "    at: 2h\n"
        "    available:\n"
        "      chna: false\n",
        encoding="utf-8",
    )
    case = GUARDS.replace("id: multi", "extends: base.yaml\nid: multi")
    for typo, right in [("claered", "cleared"), ("cleard", "cleared"), ("'chna'", "'china'")]:
        case = case.replace(typo, right)  # the guards are right: only the keys are wrong
    case = case.replace(
        "    set: {cleared: true}\n", "    set: {claered: true}\n    present: {aa:\n      false}\n"
    )
    (tmp_path / "case.yaml").write_text(case, encoding="utf-8")
    found = [str(p) for p in negosim.validate(tmp_path / "case.yaml")]
    lines = case.splitlines()
    row = next(i for i, t in enumerate(lines, 1) if "claered" in t)
    assert found == [
        f"{tmp_path / 'case.yaml'}:{row}:11: actions.other.set.claered: unknown fact 'claered'"
        " (did you mean 'cleared'?); declared: cleared",
        f"{tmp_path / 'case.yaml'}:{row + 1}:15: actions.other.present.aa: unknown actor 'aa'"
        " (did you mean 'a'?); declared: a, china",
        f"{tmp_path / 'base.yaml'}:6:7: events.crisis.available.chna: unknown actor 'chna'"
        " (did you mean 'china'?); declared: a, china",
    ]


def test_a_schema_problem_does_not_hide_the_expressions_of_the_same_item(
    write_scenario: Callable[..., Path],
) -> None:
    """An unknown distribution in an action leaves the action out of the whole-file check;
    its guard is still checked on its own, in the same pass."""
    text = GUARDS.replace(
        "    delay: {dist: fixed, value: 1h}\n    trigger: meet\n",
        "    delay: {dist: fixxed, value: 1h}\n    trigger: meet\n",
    )
    found = [f"{p.line}:{p.col}: {p.path}: {p.message.split(';')[0]}"
             for p in problems(write_scenario, text)]  # fmt: skip
    assert found == [
        "20:11: actions.meet.guard: unknown name 'claered' (did you mean 'cleared'?)",
        "21:19: actions.meet.guard: unknown actor 'chna' (did you mean 'china'?)",
        "22:19: actions.meet.delay.dist: unknown distribution 'fixxed' (did you mean 'fixed'?)",
        "28:13: actions.other.guard: unknown name 'cleard' (did you mean 'cleared'?)",
    ]


def test_misspelt_enum_values_say_which_was_meant(write_scenario: Callable[..., Path]) -> None:
    """A value of an enum fact is a name too: in a comparison (every one of the
    expression, in one pass), in set: and as the initial value."""
    data = base_scenario()
    data["facts"] = {"mood": {"type": "enum", "values": ["cool", "warm"], "initial": "warn"}}
    data["actions"]["meet"]["guard"] = "mood == 'wram' and mood != 'cold'"
    data["actions"]["meet"]["set"] = {"mood": "wram"}
    found = [f"{p.path}: {p.message}" for p in problems(write_scenario, data)]
    tail = " (in \"mood == 'wram' and mood != 'cold'\")"
    assert found == [  # in the order of the file: actions, then facts
        "actions.meet.guard: 'wram' is not one of mood's values: cool, warm"
        " (did you mean 'warm'?)" + tail,
        "actions.meet.guard: 'cold' is not one of mood's values: cool, warm"
        " (did you mean 'cool'?)" + tail,
        "actions.meet.set.mood: 'wram' is not one of mood's values: cool, warm"
        " (did you mean 'warm'?)",
        "facts.mood.initial: 'warn' is not one of cool, warm (did you mean 'warm'?)",
    ]


def test_a_multi_line_expression_in_a_base_is_located_at_the_name(tmp_path: Path) -> None:
    """The columns inside a guard written over several lines are found in the file that
    wrote it, also when that is a base (two levels down)."""
    guard = "    guard: >\n      present('a')\n        and claered\n        and present('chna')\n"
    base = "abstract: true\nactions:\n  meet:\n" + guard
    (tmp_path / "inner.yaml").write_text(base, encoding="utf-8")
    (tmp_path / "outer.yaml").write_text("abstract: true\nextends: inner.yaml\n", "utf-8")
    case = GUARDS.replace("id: multi", "extends: outer.yaml\nid: multi")
    case = case.replace("    guard: >\n      present('a')\n      and claered\n"
                        "      and present('chna')\n", "")  # fmt: skip
    case = case.replace("cleard", "cleared")
    (tmp_path / "case.yaml").write_text(case, encoding="utf-8")
    found = [(p.file, p.line, p.col) for p in negosim.validate(tmp_path / "case.yaml")]
    inner = str(tmp_path / "inner.yaml")
    assert found == [(inner, 6, 13), (inner, 7, 21)]  # 'claered', then 'chna'


def test_a_schema_problem_in_an_actor_does_not_hide_guards_that_name_it(
    write_scenario: Callable[..., Path],
) -> None:
    """The actor with an unknown key is left out of the whole-file check; problems that
    are about it are dropped as noise, but not those that only quote it in an expression."""
    text = GUARDS.replace("  china: {name: China}\n", "  china: {name: China, colour: red}\n")
    found = [(p.path, p.message.split(";")[0]) for p in problems(write_scenario, text)]
    assert found == [
        ("actors.china.colour", "unknown key 'colour'"),
        ("actions.meet.guard", "unknown name 'claered' (did you mean 'cleared'?)"),
        # a real typo, though china is left out: told against every declared actor
        ("actions.meet.guard", "unknown actor 'chna' (did you mean 'china'?)"),
        ("actions.other.guard", "unknown name 'cleard' (did you mean 'cleared'?)"),
    ]
