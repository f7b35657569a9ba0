"""Shared fixtures: small scenarios built in the test, written to tmp_path.

``base_scenario()`` returns a minimal valid scenario as plain data (one actor, a
protocol waiting -> held | failed, one exponential action); tests tweak it and
write it with the ``write_scenario`` fixture, which accepts YAML text or data.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import negosim

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"

_BASE: dict[str, Any] = {
    "id": "t",
    "title": "A test scenario",
    "calendar": {
        "timezone": "UTC",
        "start": "2024-01-01 00:00",
        "horizon": "48h",
    },
    "actors": {"a": {"name": "Minister A"}},
    "protocol": {
        "states": ["waiting", "held", "failed"],
        "initial": "waiting",
        "transitions": [
            {"trigger": "meet", "source": "waiting", "dest": "held"},
            {"trigger": "fail", "source": "waiting", "dest": "failed"},
        ],
        "outcomes": {"success": ["held"], "failure": ["failed"]},
    },
    "actions": {
        "meet": {
            "actor": "a",
            "from": "waiting",
            "delay": {"dist": "exponential", "mean": "10h"},
            "trigger": "meet",
        },
    },
}


def base_scenario() -> dict[str, Any]:
    """A fresh copy of a minimal valid scenario (UTC, start 2024-01-01 00:00, 48h)."""
    return copy.deepcopy(_BASE)


def with_ask_step(data: dict[str, Any]) -> dict[str, Any]:
    """Give ``data`` a four-state protocol: waiting -ask-> asked -meet-> held, or failed."""
    data["protocol"]["states"] = ["waiting", "asked", "held", "failed"]
    data["protocol"]["transitions"] = [
        {"trigger": "ask", "source": "waiting", "dest": "asked"},
        {"trigger": "meet", "source": "asked", "dest": "held"},
        {"trigger": "fail", "source": ["waiting", "asked"], "dest": "failed"},
    ]
    return data


def binomial_tol(p: float, n: int, k: float = 4.5) -> float:
    """k standard errors of a binomial proportion (at least a tiny floor for p in {0, 1})."""
    return k * math.sqrt(max(p * (1 - p), 1e-12) / n) + 1e-12


def assert_close_binomial(p_hat: float, p: float, n: int, what: str = "") -> None:
    tol = binomial_tol(p, n)
    assert abs(p_hat - p) < tol, f"{what}: estimated {p_hat:.5f}, expected {p:.5f} ± {tol:.5f}"


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """``write_scenario(text_or_data, name="s.yaml") -> path`` in tmp_path."""

    def write(content: str | bytes | dict[str, Any], name: str = "s.yaml") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def load_data(write_scenario: Callable[..., Path]) -> Callable[..., negosim.CompiledScenario]:
    """``load_data(data, sets=None)``: write a scenario dict and load it."""

    def load(
        data: dict[str, Any],
        sets: list[tuple[str, Any]] | None = None,
    ) -> negosim.CompiledScenario:
        return negosim.load(write_scenario(data), sets)

    return load


def negosim_cmd() -> list[str]:
    """The installed console script, or the module if it is not on PATH."""
    exe = shutil.which("negosim") or str(Path(sys.executable).parent / "negosim")
    if os.path.exists(exe):
        return [exe]
    return [sys.executable, "-m", "negosim.cli.main"]


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(*args)`` runs the negosim command and returns the completed process."""

    def run(*args: str | os.PathLike[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        env.pop("NEGOSIM_DEBUG", None)
        return subprocess.run(
            [*negosim_cmd(), *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=120,
        )

    return run
