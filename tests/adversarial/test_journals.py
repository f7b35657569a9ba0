"""Hostile files, part 4: a sweep's journal is verified before --resume trusts it.

Every row of a partial file must be a row of this design (point id in range,
parameter values equal to the design's, counts that add up) written by a sweep
with the same settings and scenario content (a key in each row); otherwise the
resume is refused with exit 2 and the reason, and no output is written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._helpers_files import (
    MAIN,
    REPO,
    SWEEP,
    changed,
    contract,
    negosim,
    refused,
    snapshot,
    tutorial,
)

ARGS = ("sweep", "t.yaml", *SWEEP, "--out", "o.csv")


@pytest.fixture
def done(tmp_path: Path) -> Path:
    """A finished 6-point sweep, and its output turned back into a partial file."""
    tutorial(tmp_path)
    contract(negosim(*ARGS, cwd=tmp_path), 0)
    return tmp_path


def _journal(work: Path) -> list[dict[str, str]]:
    """The finished sweep's rows as a journal would hold them (with the sweep key)."""
    key = _key(work)
    with open(work / "o.csv", newline="", encoding="utf-8") as f:
        return [{**r, "sweep_key": key} for r in csv.DictReader(f)]


def _key(work: Path) -> str:
    from negosim.runs.sweeprun import sweep_key

    m = json.loads((work / "o.manifest.json").read_text(encoding="utf-8"))
    return sweep_key(m["sweep"], m["scenario"]["sha256"])


def _plant(work: Path, rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    (work / "o.partial.csv").write_text(buf.getvalue(), encoding="utf-8")
    (work / "o.csv").unlink()


def test_an_honest_journal_resumes(done: Path) -> None:
    want = (done / "o.csv").read_bytes()
    _plant(done, _journal(done)[:4])
    proc = negosim(*ARGS, "--resume", "--format", "json", cwd=done)
    contract(proc, 0)
    assert json.loads(proc.stdout)["resumed"] == 4
    assert (done / "o.csv").read_bytes() == want
    assert not (done / "o.partial.csv").exists()


@pytest.mark.parametrize("point", ["999", "-1", str(2**70), "6", "1.0", " 1", "x", ""])
def test_point_ids_outside_the_design_are_refused(done: Path, point: str) -> None:
    rows = _journal(done)[:3]
    rows.append({**rows[0], "point": point})
    _plant(done, rows)
    before = snapshot(done)
    refused(negosim(*ARGS, "--resume", cwd=done), "o.partial.csv:5:1:", "cannot resume")
    assert changed(before, snapshot(done)) == set()  # no output, journal kept


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("p_accept", "0.25", "not the design's value"),
        ("answer_median", "nan", "not the design's value"),
        ("runs", "41", "runs is not 40"),
        ("held", "41", "add up"),
        ("n_held", "-1", "whole numbers"),
        ("p_meeting", "1e400", "must be numbers"),
        ("p_meeting", "0.99", "held / runs"),
        ("ci95_high", "0.5", "Wilson interval"),
        ("status", "great", "neither ok nor failed"),
        ("sweep_key", "0" * 16, "other settings"),
    ],
)
def test_rows_that_are_not_this_designs_are_refused(
    done: Path, column: str, value: str, reason: str
) -> None:
    rows = _journal(done)[:3]
    rows[1] = {**rows[1], column: value}
    _plant(done, rows)
    before = snapshot(done)
    refused(negosim(*ARGS, "--resume", cwd=done), reason, "cannot resume")
    assert changed(before, snapshot(done)) == set()


def test_a_duplicate_point_is_refused(done: Path) -> None:
    rows = _journal(done)[:3]
    _plant(done, [*rows, rows[0]])
    refused(negosim(*ARGS, "--resume", cwd=done), "appears twice")


def test_without_the_manifest_the_journal_is_still_checked(done: Path) -> None:
    rows = _journal(done)[:3]
    _plant(done, rows)
    (done / "o.manifest.json").unlink()
    # Other settings (more runs): the rows' key does not match them.
    refused(negosim(*ARGS, "--runs", "41", "--resume", cwd=done), "other settings")
    # Another version of the scenario: likewise.
    scenario = done / "t.yaml"
    scenario.write_text(scenario.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    before = snapshot(done)
    refused(negosim(*ARGS, "--resume", cwd=done), "other settings")
    assert changed(before, snapshot(done)) == set()


def test_a_journal_without_the_key_column_is_refused(done: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "sweep_key"} for r in _journal(done)[:3]]
    _plant(done, rows)
    refused(negosim(*ARGS, "--resume", cwd=done), "columns are not those of this sweep")


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00garbage\n",
        b"point,p_accept\n\x00\x00\n",
        b'"unterminated\n',
        b"",
        b"just one line\n",
    ],
)
def test_malformed_partial_files_exit_2_in_one_line(done: Path, content: bytes) -> None:
    (done / "o.partial.csv").write_bytes(content)
    (done / "o.csv").unlink()
    before = snapshot(done)
    err = refused(negosim(*ARGS, "--resume", cwd=done), "o.partial.csv")
    assert len(err.strip().splitlines()) == 1, err
    assert changed(before, snapshot(done)) == set()


@pytest.mark.parametrize(
    "content", [b"\xff\xfe{}", b"{not json", b"[1, 2]", b"null", b'"text"', b"\x00"]
)
def test_malformed_manifests_exit_2_in_one_line(done: Path, content: bytes) -> None:
    _plant(done, _journal(done)[:3])
    (done / "o.manifest.json").write_bytes(content)
    before = snapshot(done)
    err = refused(negosim(*ARGS, "--resume", cwd=done), "o.manifest.json", "not a negosim")
    assert len(err.strip().splitlines()) == 1, err
    assert changed(before, snapshot(done)) == set()


def test_a_second_sweep_on_the_same_output_is_refused(tmp_path: Path) -> None:
    tutorial(tmp_path)
    # On the simpy engine (the slower one), so the first sweep is still running.
    slow = ("sweep", "t.yaml", "--param", "p_accept=0:1:40", "--runs", "2000",
            "--workers", "1", "--engine", "simpy")  # fmt: skip
    env = {"PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    first = subprocess.Popen(
        [sys.executable, "-c", MAIN, *slow, "--out", "o.csv", "--resume"],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "o.partial.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = negosim(*slow, "--out", "o.csv", "--resume", cwd=tmp_path)
        refused(second, "another negosim sweep is writing", "o.csv")
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert (tmp_path / "o.csv").exists() and not (tmp_path / "o.csv.lock").exists()
    assert not (tmp_path / "o.partial.csv").exists()


def test_a_stale_lock_file_does_not_block(done: Path) -> None:
    """A sweep killed with SIGKILL leaves OUT.lock behind but no lock held on it."""
    (done / "o.csv.lock").write_text("", encoding="utf-8")
    contract(negosim(*ARGS, cwd=done), 0)
    assert not (done / "o.csv.lock").exists()
