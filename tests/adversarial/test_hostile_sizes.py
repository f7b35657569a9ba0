"""Hang-level slowdowns: inputs whose reading or running once took minutes."""

from __future__ import annotations

import pytest

from negosim.scenario.yamlsource import MAX_BYTES, MAX_NODES

from .attack_base import BASE, variant, write

DIGITS = "1" * 60_000


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("mean: 10h", f"mean: {DIGITS}h", "actions.meet.delay.mean"),
        ("horizon: 48h", f"horizon: {DIGITS}h", "calendar.horizon"),
        ("end: 2024-01-02 10:00}", f"duration: {DIGITS}}}", "calendar.windows.conf.duration"),
    ],
)
def test_a_60000_digit_duration_is_refused_at_once(hostile, tmp_path, old, new, path):
    # was: 33 s for 20,000 digits (a backtracking regex, quadratic); 181 s for 60,000
    res = hostile("validate", variant(tmp_path, old, new), codes=(2,))
    [line] = res.lines
    assert f": {path}: " in line
    assert line.split(":")[1] != "0"  # located at its line
    assert len(line) < 400  # the value is not echoed whole


def test_a_60000_digit_duration_in_set_is_refused_at_once(hostile, tmp_path):
    res = hostile("run", write(tmp_path), "--set", f"actions.meet.delay.mean={DIGITS}h",
                  codes=(2,))  # fmt: skip
    [line] = res.lines
    assert "actions.meet.delay.mean" in line


def test_a_long_list_is_refused_while_reading(hostile, tmp_path):
    # was: 57 s for 200,000 items (400 KB), counted only after parsing
    text = BASE + "extra:\n" + "- 1\n" * (MAX_NODES + 10)
    assert len(text) < MAX_BYTES
    res = hostile("validate", write(tmp_path, text), codes=(2,))
    [line] = res.lines
    assert f"document too large: more than {MAX_NODES} values" in line


def test_a_large_file_is_refused_unread(hostile, tmp_path):
    text = BASE + "extra:\n" + "- 1\n" * 200_000  # 800 KB
    res = hostile("validate", write(tmp_path, text), codes=(2,))
    [line] = res.lines
    assert line.endswith(f"file too large: more than {MAX_BYTES} bytes (256 KiB)")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_devices_are_refused(hostile, device):
    # was: /dev/zero grew without bound, /dev/urandom never ended
    res = hostile("validate", device, codes=(2,))
    assert res.lines == [f"{device}: file too large: more than {MAX_BYTES} bytes (256 KiB)"]


def test_deep_nesting_is_refused(hostile, tmp_path):
    res = hostile("validate", write(tmp_path, BASE + "extra: " + "[" * 50_000 + "\n"), codes=(2,))
    [line] = res.lines
    assert "nested too deeply (more than 100 levels)" in line
