"""A small valid scenario as text, for attacks to distort (imported by the tests)."""

from __future__ import annotations

from pathlib import Path

BASE = """\
id: t
title: A test scenario
calendar:
  timezone: UTC
  start: 2024-01-01 00:00
  horizon: 48h
  windows:
    conf: {start: 2024-01-01 10:00, end: 2024-01-02 10:00}
facts:
  x: {type: number, initial: 0}
params:
  p: {kind: probability, default: 0.5, assumption: a test value}
actors:
  a: {name: Minister A}
protocol:
  states: [waiting, held, failed]
  initial: waiting
  transitions:
    - {trigger: meet, source: waiting, dest: held}
    - {trigger: fail, source: waiting, dest: failed}
  outcomes: {success: [held], failure: [failed]}
actions:
  meet:
    actor: a
    from: waiting
    delay: {dist: exponential, mean: 10h}
    trigger: meet
"""


def write(tmp_path: Path, text: str = BASE, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def variant(tmp_path: Path, old: str, new: str, name: str = "s.yaml") -> Path:
    """BASE with ``old`` replaced by ``new`` (which must occur), written to ``tmp_path``."""
    assert old in BASE, old
    return write(tmp_path, BASE.replace(old, new, 1), name)
