"""Hostile input (issue 9): run the ``negosim`` command in a new process under limits.

``hostile(*args)`` runs the command with a wall-clock time limit and a 2 GB
address-space limit, and checks the contracts every attack must keep: exit
code 0 or 2, no traceback, no raw control characters (ESC, BEL, C1 codes) on
stdout or stderr, and, for inputs under 1 MB, an answer within
:data:`FAST` seconds. The process is forked from one that has already imported
negosim (``_forkserver``): a separate process per attack, without a new
interpreter's start each time.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._forkserver import SERVER
from ._helpers_files import FAST, MEMORY, RAW_CONTROL, REPO


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


def run_hostile(
    *args: str | os.PathLike[str],
    limit: float = FAST,
    codes: tuple[int, ...] = (0, 2),
    cwd: Path = REPO,
) -> Result:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    env.pop("NEGOSIM_DEBUG", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    try:
        code, out, err, seconds = SERVER.run(
            [str(a) for a in args], cwd=cwd, env=env, timeout=max(limit * 5, 10), memory=MEMORY
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"negosim {' '.join(map(str, args))[:200]}: still running after the limit")
    res = Result(
        code, out.decode("utf-8", "surrogateescape"), err.decode("utf-8", "surrogateescape"),
        seconds,
    )  # fmt: skip
    what = f"negosim {' '.join(map(str, args))[:200]}"
    assert res.returncode in codes, f"{what}: exit {res.returncode}\n{res.stderr[-2000:]}"
    assert "Traceback" not in res.stderr, f"{what}: traceback\n{res.stderr[-2000:]}"
    for name, text in (("stdout", res.stdout), ("stderr", res.stderr)):
        raw = RAW_CONTROL.search(text)
        assert raw is None, f"{what}: raw control character {raw.group()!r} on {name}"
    assert seconds < limit, f"{what}: took {seconds:.1f} s (limit {limit} s)"
    return res


@pytest.fixture
def hostile() -> Callable[..., Result]:
    """``hostile(*args, limit=2.0, codes=(0, 2))``: run negosim and check the contracts."""
    return run_hostile


@pytest.fixture(scope="session", autouse=True)
def _attack_server() -> Iterator[None]:
    """Stop the fork server at the end of the session (its CPU time is then counted)."""
    yield
    SERVER.stop()
