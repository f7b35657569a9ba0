"""Shared fixtures: small scenarios built in the test, written to tmp_path.

``base_scenario()`` returns a minimal valid scenario as plain data (one actor, a
protocol waiting -> held | failed, one exponential action); tests tweak it and
write it with the ``write_scenario`` fixture, which accepts YAML text or data.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import shutil
import subprocess
import sys
import warnings
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


def starts_workers(argv: list[str]) -> bool:
    """Whether a command line would start worker processes or a Dask cluster: a sweep
    (all cores by default) unless it says ``--workers 1``, ``--workers N`` above 1,
    ``--dask-local`` or ``--scheduler`` (``--help`` and ``--version`` start nothing)."""
    words = [w for arg in argv for w in (arg.split("=", 1) if arg.startswith("--") else [arg])]
    if {"--help", "-h", "--version"} & set(words):
        return False
    if "--dask-local" in words or "--scheduler" in words:
        return True
    if "--workers" in words[:-1]:
        return words[words.index("--workers") + 1] != "1"
    return bool(words) and words[0] == "sweep"


def run_in_process(
    argv: list[str], cwd: Path = REPO, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """``negosim ARGV`` as :func:`negosim.cli.main.main` in this process: the exit code
    it returns (or argparse's ``SystemExit`` for --help), stdout and stderr captured.

    What the process would print on stderr is kept: warnings are recorded under
    Python's default filters (not pytest's) and appended to stderr as the interpreter
    would print them. Environment variables in ``env`` (None: unset) hold for the call.
    """
    from negosim.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    try:
        for k, v in (env or {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        with (
            contextlib.chdir(cwd),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.resetwarnings()
            for category in (
                DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning
            ):  # fmt: skip
                warnings.simplefilter("ignore", category)
            try:
                code = main(argv)
            except SystemExit as exc:  # --help, --version
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
    stderr = err.getvalue() + "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught
    )
    return subprocess.CompletedProcess(["negosim", *argv], code, out.getvalue(), stderr)


_CLI_ENV: dict[str, str | None] = {"COLUMNS": "200", "NO_COLOR": "1", "NEGOSIM_DEBUG": None}


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(*args, cwd=REPO)`` runs ``negosim ARGS`` and returns the completed process.

    In this process (:func:`run_in_process`): the command line is parsed and dispatched
    exactly as the console script does, and the exit code is what ``main`` returns. A
    command that would start worker processes or a Dask cluster runs as a real
    subprocess (forking the test process is not something to rely on). What only a
    subprocess can show (the console script, signals, a terminal) uses ``cli_process``.
    """

    def run(*args: str | os.PathLike[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
        argv = [str(a) for a in args]
        if starts_workers(argv):
            return _subprocess(argv, cwd)
        return run_in_process(argv, cwd, _CLI_ENV)

    return run


def _subprocess(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLI_ENV}
    env.update({k: v for k, v in _CLI_ENV.items() if v is not None})
    return subprocess.run(
        [*negosim_cmd(), *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


@pytest.fixture
def cli_process() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli_process(*args, cwd=REPO)``: like ``cli``, always through the installed
    console script in a new process (its exit status is the process's)."""

    def run(*args: str | os.PathLike[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
        return _subprocess([str(a) for a in args], cwd)

    return run
