"""Honest scenarios: every number in a shipped scenario says where it comes from.

Parameters must have a ``source`` or ``assumption`` (the schema enforces it).
This test covers the numbers written directly elsewhere: delays, jitters,
rates, weights, window times and numeric literals inside expressions. Each
action, option, event or window that contains such a number must carry a
``source`` or an ``assumption`` itself (an option may rely on its action's).
0 and 1 (and ``0h``) are structural, not estimates, and are exempt.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from negosim.scenario.units import is_duration
from negosim.scenario.yamlsource import load_yaml_file

ROOT = Path(__file__).resolve().parents[1]
# The tutorial's numbers are invented for teaching and its header says so.
SCENARIOS = sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if p.name != "tutorial.yaml")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")
_EXEMPT = {0.0, 1.0}


def _numbers(value: Any, declared: set[str]) -> list[str]:
    """The estimated numbers written in ``value`` (recursively), as text."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in (
                "text",
                "source",
                "assumption",
                "dist",
                "trigger",
                "actor",
                "from",
                "requires",
                "window",
                "values",
            ):
                continue
            found += _numbers(inner, declared)
    elif isinstance(value, list):
        for inner in value:
            found += _numbers(inner, declared)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int | float):
        if float(value) not in _EXEMPT:
            found.append(str(value))
    elif isinstance(value, str):
        if is_duration(value):
            if value.strip() not in ("0h", "0min", "0d"):
                found.append(value)
        elif value not in declared:  # an expression: look for numeric literals in it
            found += [m for m in _NUMBER.findall(value) if float(m) not in _EXEMPT]
    return found


def _has_note(item: dict[str, Any]) -> bool:
    return bool(item.get("source") or item.get("assumption"))


def _unexplained(data: dict[str, Any]) -> list[str]:
    declared = set(data.get("params", {})) | set(data.get("facts", {}))
    out = []
    for aid, action in data.get("actions", {}).items():
        options = action.get("options", {})
        own = {k: v for k, v in action.items() if k != "options"}
        if _numbers(own, declared) and not _has_note(action):
            out.append(f"actions.{aid}: {_numbers(own, declared)}")
        for oid, option in options.items():
            if _numbers(option, declared) and not (_has_note(option) or _has_note(action)):
                out.append(f"actions.{aid}.options.{oid}: {_numbers(option, declared)}")
    for eid, event in data.get("events", {}).items():
        if _numbers({k: v for k, v in event.items() if k != "at"}, declared) and not _has_note(
            event
        ):
            out.append(f"events.{eid}")
    for wid, window in data.get("calendar", {}).get("windows", {}).items():
        if not (_has_note(window) or window.get("text")):
            out.append(f"calendar.windows.{wid}: its times need a source or assumption")
    return out


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_every_number_is_explained(path: Path) -> None:
    assert _unexplained(load_yaml_file(path).data) == []


def test_the_check_can_fail() -> None:
    data = {
        "params": {"p": {}},
        "calendar": {"windows": {"w": {"start": "2023-01-01 08:00", "end": "9h"}}},
        "actions": {
            "a": {"delay": {"dist": "exponential", "mean": "5h"}, "guard": "p > 0.3"},
            "b": {"delay": {"dist": "exponential", "mean": "p"}, "assumption": "why"},
        },
    }
    assert _unexplained(data) == [
        "actions.a: ['5h', '0.3']",
        "calendar.windows.w: its times need a source or assumption",
    ]
