"""Hostile files, part 1 and 2: reading files negosim should not, writing where it should not.

Each attack runs negosim in a process of its own with a time limit; the exit code is 0
or 2, there is never a traceback, and a snapshot of the temporary directory
before and after proves that nothing but the named outputs was created or
changed (planted symlinks and their targets stay as they were).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ._helpers_files import SWEEP, changed, contract, negosim, refused, snapshot, tutorial

SECRET = "root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\nalice:topsecret-token:1:1:::\n"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file shaped like /etc/shadow (a YAML mapping of its lines)."""
    path = tmp_path / "etc" / "shadow"
    path.parent.mkdir()
    path.write_text(SECRET, encoding="utf-8")
    return path


def _no_leak(text: str) -> None:
    for token in ("saltsalt", "hashhash", "topsecret", "alice"):
        assert token not in text, text


# --- 1. reading files it should not -----------------------------------------------------


def test_validate_a_foreign_file_does_not_echo_it(tmp_path: Path, secret: Path) -> None:
    err = refused(negosim("validate", str(secret), cwd=tmp_path), "not a negosim scenario")
    _no_leak(err)
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [("run",), ("params",), ("trace",), ("graph",)])
def test_other_commands_do_not_echo_it_either(
    tmp_path: Path, secret: Path, command: tuple[str, ...]
) -> None:
    _no_leak(refused(negosim(*command, str(secret), cwd=tmp_path), "not a negosim scenario"))


def test_sweep_file_pointing_at_a_foreign_file(tmp_path: Path, secret: Path) -> None:
    sweeps = tmp_path / "a" / "b"
    sweeps.mkdir(parents=True)
    (sweeps / "s.yaml").write_text(
        "scenario: ../../etc/shadow\nparams:\n  p_accept: {values: [0.5]}\n", encoding="utf-8"
    )
    before = snapshot(tmp_path)
    for args in (("sweep", "a/b/s.yaml", "--out", "o.csv"), ("validate", "a/b/s.yaml")):
        err = refused(negosim(*args, cwd=tmp_path), "scenario:", ".yaml or .yml")
        _no_leak(err)
    assert changed(before, snapshot(tmp_path)) == set()


def test_sweep_file_pointing_at_a_yaml_symlink_to_a_foreign_file(
    tmp_path: Path, secret: Path
) -> None:
    (tmp_path / "evil.yaml").symlink_to(secret)
    (tmp_path / "s.yaml").write_text(
        "scenario: evil.yaml\nparams:\n  p_accept: {values: [0.5]}\n", encoding="utf-8"
    )
    _no_leak(refused(negosim("sweep", "s.yaml", cwd=tmp_path), "not a negosim scenario"))


def test_sweep_file_scenario_is_relative_to_the_sweep_file(tmp_path: Path) -> None:
    (tmp_path / "sw").mkdir()
    tutorial(tmp_path / "sw")
    (tmp_path / "sw" / "s.yaml").write_text(
        "scenario: t.yaml\nruns: 20\nparams:\n  p_accept: {values: [0.5]}\n", encoding="utf-8"
    )
    contract(negosim("sweep", "sw/s.yaml", "--workers", "1", cwd=tmp_path), 0)


# --- 2. writing files it should not -----------------------------------------------------


@pytest.mark.parametrize("planted", ["o.csv.tmp", "o.manifest.json.tmp", "o.partial.csv.tmp"])
def test_sweep_never_writes_through_a_planted_temporary_name(tmp_path: Path, planted: str) -> None:
    tutorial(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (tmp_path / planted).symlink_to(victim)
    before = snapshot(tmp_path)
    proc = negosim("sweep", "t.yaml", *SWEEP, "--out", "o.csv", cwd=tmp_path)
    contract(proc, 0)
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert changed(before, snapshot(tmp_path)) == {"o.csv", "o.manifest.json"}


@pytest.mark.parametrize("planted", ["o.csv", "o.manifest.json", "o.csv.lock"])
def test_a_symlink_at_an_output_name_is_refused_before_any_work(
    tmp_path: Path, planted: str
) -> None:
    tutorial(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (tmp_path / planted).symlink_to(victim)
    before = snapshot(tmp_path)
    proc = negosim("sweep", "t.yaml", *SWEEP, "--out", "o.csv", cwd=tmp_path)
    refused(proc, "symbolic link")
    assert changed(before, snapshot(tmp_path)) == set()


@pytest.mark.parametrize("command", ["report", "plot"])
def test_devices_and_directories_are_not_outputs(tmp_path: Path, command: str) -> None:
    """``-o /dev/full``, a FIFO, a directory, a missing directory: exit 2, nothing written.

    (/dev/full itself only when not root: a regression must not replace a device.)"""
    pytest.importorskip("matplotlib")
    tutorial(tmp_path)
    suffix = ".html" if command == "report" else ".svg"
    (tmp_path / f"d{suffix}").mkdir()
    os.mkfifo(tmp_path / f"fifo{suffix}")
    targets = [f"d{suffix}", f"fifo{suffix}", f"missing/x{suffix}"]
    if os.geteuid() != 0 and command == "report":
        targets.append("/dev/full")
    before = snapshot(tmp_path)
    for target in targets:
        refused(negosim(command, "t.yaml", "--runs", "20", "-o", target, cwd=tmp_path), target)
    assert changed(before, snapshot(tmp_path)) == set()


def test_report_and_plot_do_not_write_through_symlinks(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    tutorial(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (tmp_path / "r.html").symlink_to(victim)
    (tmp_path / "p.svg").symlink_to(victim)
    (tmp_path / "dangling.png").symlink_to(tmp_path / "created-by-attack.png")
    before = snapshot(tmp_path)
    refused(negosim("report", "t.yaml", "--runs", "50", "-o", "r.html", cwd=tmp_path), "symbolic")
    refused(negosim("plot", "t.yaml", "--runs", "50", "-o", "p.svg", cwd=tmp_path), "symbolic")
    proc = negosim("plot", "t.yaml", "--runs", "50", "-o", "dangling.png", cwd=tmp_path)
    refused(proc, "symbolic")
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert changed(before, snapshot(tmp_path)) == set()


def test_report_replaces_its_output_atomically(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    tutorial(tmp_path)
    (tmp_path / "r.html").write_text("old\n", encoding="utf-8")
    (tmp_path / "r.html.tmp").symlink_to(tmp_path / "victim")
    before = snapshot(tmp_path)
    contract(negosim("report", "t.yaml", "--runs", "50", "-o", "r.html", cwd=tmp_path), 0)
    assert changed(before, snapshot(tmp_path)) == {"r.html"}
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("name", ["../../x", "../x", "a/b", "/tmp/x", "~/x", "..", ".hidden"])
def test_new_writes_only_in_the_current_directory(tmp_path: Path, name: str) -> None:
    work = tmp_path / "w" / "d"
    work.mkdir(parents=True)
    before = snapshot(tmp_path)
    refused(negosim("new", name, cwd=work, env={"HOME": str(tmp_path / "home")}), "plain name")
    assert changed(before, snapshot(tmp_path)) == set()


def test_new_does_not_follow_a_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    before = snapshot(tmp_path)
    refused(negosim("new", "x", cwd=tmp_path), "exists")
    refused(negosim("new", "x", "--force", cwd=tmp_path), "symbolic link")
    assert changed(before, snapshot(tmp_path)) == set()


def test_tilde_is_expanded_by_every_command(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "w"
    work.mkdir()
    tutorial(work)
    env = {"HOME": str(home)}
    contract(negosim("sweep", "t.yaml", *SWEEP, "--out", "~/s.csv", cwd=work, env=env), 0)
    contract(negosim("plot", "t.yaml", "--runs", "50", "-o", "~/p.png", cwd=work, env=env), 0)
    contract(negosim("report", "t.yaml", "--runs", "50", "-o", "~/r.html", cwd=work, env=env), 0)
    made = {p.name for p in home.iterdir() if not p.name.startswith(".")}  # not matplotlib's
    assert made == {"s.csv", "s.manifest.json", "p.png", "r.html"}
    assert not (work / "~").exists()


def test_outputs_get_ordinary_permissions(tmp_path: Path) -> None:
    tutorial(tmp_path)
    contract(negosim("sweep", "t.yaml", *SWEEP, "--out", "o.csv", cwd=tmp_path), 0)
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "o.csv").stat().st_mode & 0o777 == 0o666 & ~mask


def test_parquet_output_never_writes_through_a_planted_temporary_name(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    tutorial(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (tmp_path / "o.parquet.tmp").symlink_to(victim)
    before = snapshot(tmp_path)
    contract(negosim("sweep", "t.yaml", *SWEEP, "--out", "o.parquet", cwd=tmp_path), 0)
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert changed(before, snapshot(tmp_path)) == {"o.parquet", "o.manifest.json"}


def test_a_foreign_file_with_a_scenario_key_is_not_echoed(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text(
        "scenario: x.yaml\nsecret-token-1: a\nsecret-token-2: b\n", encoding="utf-8"
    )
    for command in (("validate",), ("sweep",)):
        err = refused(negosim(*command, "f.yaml", cwd=tmp_path), "not a negosim sweep file")
        assert "secret-token" not in err and len(err.strip().splitlines()) == 1
