"""Run ``negosim ARGS`` in a new process per attack without paying for a new interpreter.

One server process (started once per test session, with the repository on
``PYTHONPATH``) imports :mod:`negosim.cli.main` and the modules every command loads,
then forks a child for each request. The child is a real, separate process: it takes
the attack's working directory and environment, a 2 GB address-space limit, stdin,
stdout and stderr on files (file descriptors 0, 1 and 2), and exits with
``sys.exit(main())``'s status (an uncaught exception prints its traceback and exits
1, as the interpreter does). The server kills it after the time limit and reports
its exit status and wall time. What the attacks check (exit code, no traceback, no
raw control character, time and memory limits, files touched) is checked on that
process as before; only the interpreter's start and negosim's import are shared
(the console script itself is exercised by ``cli_process`` tests in tests/).

The server reaps its children and the test session waits for the server, so their
CPU time counts in the session's (``/usr/bin/time`` and ``getrusage``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PRELOAD = (
    "negosim.cli.main",
    "negosim.cli.commands",
    "negosim.compiler.loader",
    "negosim.compiler.compile",
    "negosim.engine.simulation",
    "negosim.runs.runner",
)


# --- the server (runs in its own process) ---------------------------------------------


def _serve(request_fd: int, reply_fd: int) -> None:  # pragma: no cover - server process
    import importlib
    import resource
    import select
    import time

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    requests = os.fdopen(request_fd, "r", encoding="utf-8")
    replies = os.fdopen(reply_fd, "w", encoding="utf-8")
    for line in requests:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            _child(req, (request_fd, reply_fd), resource)
        pidfd = os.pidfd_open(pid)
        ready, _, _ = select.select([pidfd], [], [], req["timeout"])
        timed_out = not ready
        if timed_out:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        os.close(pidfd)
        seconds = time.perf_counter() - start
        reply = {"code": os.waitstatus_to_exitcode(status), "seconds": seconds,
                 "timed_out": timed_out}  # fmt: skip
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def _child(req: dict[str, Any], fds: tuple[int, int], resource: Any) -> None:  # pragma: no cover
    code = 1
    try:
        for fd in fds:
            os.close(fd)
        for fd, path, flags in (
            (0, req["stdin"], os.O_RDONLY),
            (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            opened = os.open(path, flags, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        resource.setrlimit(resource.RLIMIT_AS, (req["memory"], req["memory"]))
        sys.argv = ["negosim", *req["argv"]]
        sys.path[0] = os.path.dirname(sys.executable)  # as for the console script
        try:
            from negosim.cli.main import main

            sys.exit(main())
        except SystemExit as exc:  # what the interpreter does with sys.exit's argument
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        import atexit as _atexit

        _atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                code = 120  # the interpreter's status when flushing stdout at exit fails
    finally:
        os._exit(code)


# --- the client (the test process) ----------------------------------------------------


class ForkServer:
    """The test session's side: one server process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._n = 0

    def _start(self) -> None:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        env = {**os.environ}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.pop("NEGOSIM_DEBUG", None)
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(req_r), str(rep_w)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(req_r, rep_w),
            cwd=REPO,
            env=env,
        )
        os.close(req_r)
        os.close(rep_w)
        self._requests = os.fdopen(req_w, "w", encoding="utf-8")
        self._replies = os.fdopen(rep_r, "r", encoding="utf-8")

    def run(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        timeout: float,
        memory: int,
        stdin: Any = None,
        input: bytes | None = None,
    ) -> tuple[int, bytes, bytes, float]:
        """(exit status, stdout, stderr, seconds); raises TimeoutExpired after ``timeout``."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="negosim-attacks-"))
            self._n += 1
            base = self._tmp / str(self._n)
            if input is not None:
                stdin_path = f"{base}.in"
                Path(stdin_path).write_bytes(input)
            elif stdin is None or stdin == subprocess.DEVNULL:
                stdin_path = os.devnull
            else:
                stdin_path = stdin.name  # an open file: the child opens the same path
            req = {"argv": argv, "cwd": str(cwd), "env": env, "timeout": timeout,
                   "memory": memory, "stdin": str(stdin_path), "stdout": f"{base}.out",
                   "stderr": f"{base}.err"}  # fmt: skip
            self._requests.write(json.dumps(req) + "\n")
            self._requests.flush()
            line = self._replies.readline()
            if not line:
                raise RuntimeError("the attack fork server died")
            reply = json.loads(line)
            out = Path(f"{base}.out").read_bytes()
            err = Path(f"{base}.err").read_bytes()
            for suffix in (".in", ".out", ".err"):
                Path(f"{base}{suffix}").unlink(missing_ok=True)
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired(["negosim", *argv], timeout, out, err)
        return reply["code"], out, err, reply["seconds"]

    def stop(self) -> None:
        """Close the request pipe and wait for the server (so its CPU time is counted)."""
        with self._lock:
            if self._proc is not None:
                self._requests.close()
                self._replies.close()
                self._proc.wait(timeout=60)
                self._proc = None
            if self._tmp is not None:
                for p in self._tmp.glob("*"):
                    p.unlink(missing_ok=True)
                self._tmp.rmdir()
                self._tmp = None


SERVER = ForkServer()
atexit.register(SERVER.stop)


if __name__ == "__main__":  # the server process
    _serve(int(sys.argv[1]), int(sys.argv[2]))
