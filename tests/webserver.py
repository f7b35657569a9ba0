"""A real ``negosim serve`` in a subprocess on 127.0.0.1, for browser, restart and load tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``negosim serve --host 127.0.0.1`` on ``port`` with ``db`` and ``scenarios``."""

    def __init__(self, db: Path, scenarios: Path, port: int | None = None, workers: int = 1):
        self.db, self.scenarios, self.workers = db, scenarios, workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None
        self.key = ""
        self.banner = ""

    def start(self, timeout: float = 60) -> LiveServer:
        cmd = [sys.executable, "-m", "negosim.cli.main", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--db", str(self.db), "--scenarios",
               str(self.scenarios), "--workers", str(self.workers)]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, start_new_session=True)  # fmt: skip
        assert self.proc.stdout is not None
        ends = time.monotonic() + timeout
        lines = []
        while time.monotonic() < ends:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"instructor link:\s+(\S+)/teach\?key=(\S+)", line)
            if m:
                self.key = m.group(2)
                break
        self.banner = "".join(lines)
        assert self.key, f"the server did not start:\n{self.banner}"
        while time.monotonic() < ends:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the server does not answer on {self.url}\n{self.banner}")

    def kill(self) -> None:
        """Stop it the hard way (SIGKILL to its process group: the workers too)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None
