"""Text from files and arguments is shown as written: no markup, emoji or control codes."""

from __future__ import annotations

import json

import pytest

from .attack_base import BASE, variant, write

EVIL = "Evil\\e]0;pwned\\a\\e[2J :smile: [bold]x[/bold] \\u202e"  # YAML escapes
SHOWN = "Evil\\x1b]0;pwned"


def _unknown_key_at(tmp_path, line):
    return write(tmp_path, "#\n" * (line - 2) + BASE.replace("id: t\n", "id: t\nbogus: 1\n"))


@pytest.mark.parametrize("line", [100, 1234])
def test_line_numbers_are_not_emoji(hostile, tmp_path, line):
    # was: FILE💯1: and FILE🔢1: (rich expanded :100: and :1234: as emoji shortcodes)
    path = _unknown_key_at(tmp_path, line)
    res = hostile("validate", path, codes=(2,))
    assert res.lines == [f"{path}:{line}:1: bogus: unknown key 'bogus'"]


def test_arguments_are_echoed_as_written(hostile, tmp_path):
    # was: a🅱c
    res = hostile("sweep", write(tmp_path), "--param", "p=a:b:c", "--workers", "1", codes=(2,))
    assert res.lines == ["--param p=a:b:c: STEPS must be a whole number"]


def test_a_quoted_key_with_escape_sequences_is_shown_escaped(hostile, tmp_path):
    path = write(tmp_path, BASE.replace("id: t\n", 'id: t\n"bad\\e[2Jkey\\e]0;x\\a": 1\n'))
    res = hostile("validate", path, codes=(2,))
    assert res.lines == [
        f"{path}:2:1: bad\\x1b[2Jkey\\x1b]0;x\\x07: unknown key 'bad\\x1b[2Jkey\\x1b]0;x\\x07'"
    ]


def test_a_newline_in_a_key_keeps_one_line_per_problem(hostile, tmp_path):
    path = write(tmp_path, BASE.replace("id: t\n", 'id: t\n"two\\nlines": 1\n'))
    res = hostile("validate", path, codes=(2,))
    assert res.lines == [f"{path}:2:1: two\\x0alines: unknown key 'two\\x0alines'"]


def test_a_title_with_control_characters_is_refused(hostile, tmp_path):
    """A title is one line of plain text (the schema says so); other text is shown escaped."""
    path = variant(tmp_path, "title: A test scenario", f'title: "{EVIL}"')
    res = hostile("validate", path, codes=(2,))
    assert res.lines == [
        f"{path}:2:8: title: must be one line of text (no line breaks or control characters)"
    ]


@pytest.fixture
def evil(tmp_path):
    """Markup and emoji codes in the title; control sequences in an actor's name, an
    action's text and a parameter's assumption."""
    path = variant(tmp_path, "title: A test scenario", 'title: "Evil :smile: [bold]x[/bold]"')
    text = path.read_text().replace("{name: Minister A}", '{name: "Min\\e[31mister"}')
    text = text.replace("    trigger: meet\n", f'    trigger: meet\n    text: "{EVIL}"\n', 1)
    text = text.replace("assumption: a test value", f'assumption: "{EVIL}"')
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--runs", "10"],
        ["trace"],
        ["trace", "--verbose"],
        ["explain"],
        ["params"],
        ["graph"],
        ["sweep", "--param", "p=0:1:2", "--runs", "5", "--workers", "1"],
    ],
)
def test_control_characters_in_titles_never_reach_the_terminal(hostile, evil, args):
    res = hostile(args[0], evil, *args[1:], limit=5.0, codes=(0,))
    if args[0] in ("trace", "explain", "params"):
        assert SHOWN in res.stdout
    assert "[bold]x[/bold]" in res.stdout or args[0] in ("graph", "sweep")
    assert ":smile:" in res.stdout or args[0] in ("graph", "sweep")


@pytest.mark.parametrize("command", ["run", "trace", "params"])
def test_json_escapes_what_a_terminal_would_obey(hostile, evil, command):
    res = hostile(command, evil, "--format", "json", codes=(0,))
    json.loads(res.stdout)  # still valid JSON
    if command == "trace":
        assert "\\u001b]0;pwned" in res.stdout


def test_error_messages_escape_the_file_name(hostile, tmp_path):
    res = hostile("validate", tmp_path / "no\x1b[2Jsuch.yaml", codes=(2,))
    assert res.lines == [f"{tmp_path}/no\\x1b[2Jsuch.yaml: no such file"]
