"""Terminal output fits 80 columns and carries no escape codes without colour.

Checked with output captured (not a terminal; in this process, through
``negosim.cli.main.main``) and through the console script on a pseudo-terminal
with ``NO_COLOR=1``; a terminal without ``NO_COLOR`` does get escape codes, so
the check can tell the difference.
"""

from __future__ import annotations

import os
import pty
import subprocess

import pytest
from conftest import SCENARIOS, negosim_cmd, run_in_process
from rich.cells import cell_len

MUNICH = str(SCENARIOS / "munich.yaml")
COMMANDS = [
    ["run", MUNICH, "--runs", "300"],
    ["trace", MUNICH, "--seed", "3"],
    ["params", MUNICH],
    ["compare", MUNICH, "--set", "p_us_formal_request=0.6", "--runs", "300"],
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.pop("NEGOSIM_DEBUG", None)
    return {**env, "COLUMNS": "80", "LINES": "50", **extra}


def _on_pty(args: list[str], env: dict[str, str]) -> str:
    """Run with stdout on a pseudo-terminal (stderr captured apart); return stdout."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*negosim_cmd(), *args], stdout=follower, stderr=subprocess.PIPE,
                            env=env)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    return b"".join(chunks).decode("utf-8")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_fits_80_columns_when_captured(args: list[str]) -> None:
    # captured in this process: what the console script prints to a pipe (test_docs.py
    # compares the two ways); the terminal needs a process of its own (below)
    env: dict[str, str | None] = {"NO_COLOR": None, "FORCE_COLOR": None, "NEGOSIM_DEBUG": None}
    r = run_in_process(args, env={**env, "COLUMNS": "80", "LINES": "50"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) > 5
    wide = [line for line in lines if cell_len(line) > 80]
    assert wide == []
    assert "\x1b" not in r.stdout  # not a terminal: plain text
    assert "…" not in r.stdout  # nothing cut off to fit


@pytest.mark.parametrize("args", COMMANDS[:2], ids=lambda a: a[0])
def test_no_color_on_a_terminal(args: list[str]) -> None:
    plain = _on_pty(args, _env(NO_COLOR="1", TERM="xterm-256color"))
    assert "\x1b" not in plain
    assert all(cell_len(line) <= 80 for line in plain.splitlines())
    coloured = _on_pty(args, _env(TERM="xterm-256color"))
    assert "\x1b[" in coloured
