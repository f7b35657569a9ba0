"""Helpers of the hostile-file tests: run negosim in a new process with a time limit,
check the exit-code contract, and prove which files an attack touched.

(Not a conftest: other adversarial test files come with their own fixtures.)
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ._forkserver import SERVER

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "scenarios" / "tutorial.yaml"
MAIN = "import sys; from negosim.cli.main import main; sys.exit(main())"

Tree = dict[str, tuple[str, int, int, str]]
FAST = 10.0  # seconds: any input under 1 MB is answered promptly
# (a bound that catches hangs, not a speed target: those live in benchmarks/)
MEMORY = 2 * 1024**3  # bytes of address space for the process under attack
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_seconds: dict[int, float] = {}  # id(CompletedProcess) -> wall time


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def negosim(
    *args: str,
    cwd: Path,
    timeout: float = 120,
    stdin: Any = subprocess.DEVNULL,
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``negosim ARGS`` in ``cwd``, in a new process under a 2 GB address-space limit,
    killed after ``timeout`` seconds (a hang fails); :func:`contract` checks the time
    it took. The process is forked from one that has already imported negosim
    (see ``_forkserver``)."""
    full = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", **(env or {})}
    full.pop("NEGOSIM_DEBUG", None)
    code, out, err, seconds = SERVER.run(
        list(args),
        cwd=cwd,
        env=full,
        timeout=timeout,
        memory=MEMORY,
        stdin=None if input is not None else stdin,
        input=input.encode() if isinstance(input, str) else input,
    )
    done = subprocess.CompletedProcess(
        ["negosim", *args], code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    )
    _seconds[id(done)] = seconds
    return done


def contract(proc: subprocess.CompletedProcess[str], *codes: int, limit: float = FAST) -> None:
    """Exit code 0 or 2 (or as given), never a traceback, never an internal error, no
    raw control character on stdout or stderr, and an answer within ``limit`` seconds."""
    allowed = codes or (0, 2)
    text = proc.stdout + proc.stderr
    assert proc.returncode in allowed, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in text, text[-2000:]
    assert "internal error" not in text, text[-2000:]
    raw = RAW_CONTROL.search(text)
    assert raw is None, f"raw control character {raw.group()!r} in the output"
    seconds = _seconds.get(id(proc))
    assert seconds is None or seconds < limit, f"took {seconds:.1f} s (limit {limit} s)"


def refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2 with the reason on stderr (each needle in it); returns stderr."""
    contract(proc, 2)
    for n in needles:
        assert n in proc.stderr, proc.stderr
    return proc.stderr


def snapshot(root: Path) -> Tree:
    """Every entry under ``root``: kind, size, mtime and symlink target."""
    tree: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_symlink():
                tree[rel] = ("link", 0, 0, os.readlink(p))
            elif p.is_dir():
                tree[rel] = ("dir", 0, 0, "")
            else:
                tree[rel] = ("file", st.st_size, st.st_mtime_ns, "")
    return tree


def changed(before: Tree, after: Tree) -> set[str]:
    """Paths created, removed or modified between two snapshots."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def tutorial(dest: Path, name: str = "t.yaml") -> Path:
    path = dest / name
    shutil.copy(TUTORIAL, path)
    return path


SWEEP = ("--param", "p_accept=0:1:3", "--param", "answer_median=1h,2h", "--runs", "40",
         "--workers", "1")  # fmt: skip
"""A 6-point grid over the tutorial, fast enough to run many times."""
