"""Hang-level slowdowns while running: zero-time loops, long horizons, huge designs."""

from __future__ import annotations

import json

import pytest

from .attack_base import variant, write

LOOP = """\
id: loop
title: A loop without time passing
calendar: {timezone: UTC, start: 2024-01-01 00:00, horizon: 1d}
settings: {max_events: 10000000}
facts:
  x: {type: number, initial: 0}
actors:
  a: {name: A}
protocol:
  states: [waiting, done]
  initial: waiting
  transitions:
    - {trigger: finish, source: waiting, dest: done}
  outcomes: {success: [done]}
actions:
  ping:
    actor: a
    guard: x == 0
    delay: {dist: fixed, value: 0h}
    set: {x: 1}
  pong:
    actor: a
    guard: x == 1
    delay: {dist: fixed, value: 0h}
    set: {x: 0}
"""


@pytest.mark.parametrize("command", ["run", "trace"])
def test_a_zero_time_loop_stops_whatever_max_events_says(hostile, tmp_path, command):
    # was: 110 s with settings.max_events 10,000,000, although no time passes
    res = hostile(command, write(tmp_path, LOOP), codes=(2,))
    [line] = [x for x in res.lines if ": warning: " not in x]  # 'run' also prints lints
    assert line.startswith(f"{tmp_path / 's.yaml'}:22:5: actions.pong: replication 0 stopped ")
    assert "ping → pong → ping keeps repeating without time passing" in line
    assert line.endswith("(at most 10000 events may happen at one instant)")


def test_a_ten_year_horizon_prints_quickly(hostile, tmp_path):
    # was: 25 s to print one row per day of 3,653 days
    path = variant(tmp_path, "horizon: 48h", "horizon: 3653d")
    path.write_text(path.read_text().replace("mean: 10h", "mean: 1000d"))
    res = hostile("run", path, "--runs", "2000", limit=3.0, codes=(0,))
    assert "days shown; --format json has all" in res.stdout
    assert len(res.stdout.splitlines()) < 200
    data = json.loads(hostile("run", path, "--runs", "2000", "--format", "json", limit=3.0).stdout)
    assert len(data["by_day"]) == 3653


def test_a_ten_year_horizon_compares_quickly(hostile, tmp_path):
    path = variant(tmp_path, "horizon: 48h", "horizon: 3653d")
    path.write_text(path.read_text().replace("mean: 10h", "mean: 1000d"))
    res = hostile("compare", path, "--runs", "500", "--set", "p=0.3", limit=4.0, codes=(0,))
    assert len(res.stdout.splitlines()) < 120


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--param", "p=0:1:10000000"], "grid design has 10,000,000 points, above the limit of "
         "1,000,000 points"),
        (["--design", "lhs", "--samples", "100000000", "--param", "p=0:1"],
         "lhs design has 100,000,000 points"),
        (["--design", "morris", "--samples", "100000000000000000000", "--param", "p=0:1"],
         "morris design has 200,000,000,000,000,000,000 points"),
        (["--param", "p=0:1:100001"], "above the limit of 100,000,000 (--max-replications)"),
        (["--param", "p=0:1:1001", "--runs", "100000", "--max-replications", "100000"],
         "above the limit of 100,000 (--max-replications)"),
    ],
)  # fmt: skip
def test_huge_designs_are_refused_before_anything_runs(hostile, tmp_path, args, needle):
    res = hostile("sweep", write(tmp_path), "--workers", "1", *args, codes=(2,))
    [line] = res.lines
    assert needle in line


def test_max_replications_raises_the_limit_deliberately(hostile, tmp_path):
    args = ["--param", "p=0:1:3", "--runs", "10", "--workers", "1", "--format", "json"]
    hostile("sweep", write(tmp_path), *args, "--max-replications", "29", codes=(2,))
    res = hostile("sweep", write(tmp_path), *args, "--max-replications", "30", limit=5.0)
    assert len(json.loads(res.stdout)["rows"]) == 3


def test_a_huge_sweep_file_is_refused_by_validate(hostile, tmp_path):
    write(tmp_path)
    sweep = tmp_path / "sw.yaml"
    sweep.write_text("scenario: s.yaml\nparams:\n  p: {low: 0, high: 1, steps: 10000000}\n")
    res = hostile("validate", sweep, codes=(2,))
    [line] = res.lines
    assert line.startswith(f"{sweep}:3:3: params: the grid design has 10,000,000 points")
