"""Simulations off the request thread: a worker pool, progress, and live notices.

A request that wants numbers adds a job row and returns at once; the job runs
in a pool of worker processes (``negosim serve``) or threads (tests), reports
its progress through a queue, and its result is written to the database when
it ends. :class:`Bus` tells the pages that wait for something (a job's
progress, a class's dashboard, a game) that it changed; their server-sent
event streams wake up and the browser fetches the new state.

The job functions call the notebook API (:func:`negosim.api.simulate`,
:func:`negosim.api.compare`), so a class sees exactly what ``negosim run`` and
``negosim compare`` print for the same seed and settings.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from .. import api
from ..errors import NegosimError
from .cases import load_source

_progress_queue: Any = None


def _init_worker(q: Any) -> None:
    global _progress_queue
    _progress_queue = q


def _reporter(job_id: int, total: int) -> Callable[[int], None]:
    """``advance(n)`` that sends (job, done, total) to the server, at most ~20 times a run."""
    done = 0
    last = 0
    step = max(total // 20, 1)

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        if _progress_queue is not None and (done - last >= step or done >= total):
            last = done
            _progress_queue.put((job_id, done, total))

    return advance


def run_job(job_id: int, kind: str, source: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a worker: ``simulate``, ``compare`` or ``debrief``; a JSON-able dict."""
    try:
        cs = load_source(source)
        if kind == "simulate":
            runs, seed = int(spec["runs"]), int(spec["seed"])
            est = api.simulate(cs, runs=runs, seed=seed, progress=_reporter(job_id, runs))
            out: dict[str, Any] = {"estimate": est.to_dict()}
            out["report"] = _report(cs, est)
            return out
        if kind == "compare":
            runs, seed = int(spec["runs"]), int(spec["seed"])
            sets = [(k, v) for k, v in spec["set"]]
            cmp = api.compare(cs, set=sets, runs=runs, seed=seed,
                              progress=_reporter(job_id, runs))  # fmt: skip
            return {"comparison": cmp.to_dict()}
        if kind == "debrief":
            from .games import debrief

            return {"debrief": debrief(cs, spec, _reporter(job_id, int(spec["runs"])))}
        raise ValueError(f"unknown job kind {kind!r}")
    except NegosimError as exc:
        return {"error": str(exc)}


def _report(cs: Any, est: Any) -> str | None:
    """The HTML report's page (figures included) when the plots extra is installed."""
    try:
        from ..output.htmlreport import scenario_report

        return scenario_report(cs, est)
    except ImportError:
        return None


class Bus:
    """Change counters per channel (``job:7``, ``class:ABC123``, ``game:3``) that
    coroutines can wait on; :meth:`notify` may be called from any thread."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._cond: asyncio.Condition | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the server's event loop (the lifespan does it once)."""
        self.loop = loop
        self._cond = asyncio.Condition()

    def version(self, channel: str) -> int:
        """How many times ``channel`` has changed since the server started."""
        return self.versions.get(channel, 0)

    def notify(self, channel: str) -> None:
        """Tell the waiters of ``channel`` that it changed (from any thread)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            self.versions[channel] = self.version(channel) + 1
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._bump(channel)
        else:
            loop.call_soon_threadsafe(self._bump, channel)

    def _bump(self, channel: str) -> None:
        self.versions[channel] = self.version(channel) + 1
        asyncio.ensure_future(self._wake())

    async def _wake(self) -> None:
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()

    async def wait(self, channel: str, seen: int, timeout: float) -> int:
        """The channel's version once it differs from ``seen``, or after ``timeout``."""
        if self._cond is None:
            self.bind(asyncio.get_running_loop())
        assert self._cond is not None
        deadline = time.monotonic() + timeout
        async with self._cond:
            while self.version(channel) == seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._cond.wait(), left)
                except TimeoutError:
                    break
        return self.version(channel)


class Pool:
    """The worker pool and the bookkeeping around it (progress, results to the store)."""

    def __init__(self, store: Any, library: Any, bus: Bus, workers: int = 2,
                 processes: bool = True, max_queued: int = 50):  # fmt: skip
        self.store = store
        self.library = library
        self.bus = bus
        self.max_queued = max_queued
        self.progress: dict[int, tuple[int, int]] = {}
        self.listeners: dict[int, list[Callable[[int], None]]] = {}
        self.pending = 0
        self._lock = threading.Lock()
        self.executor: Executor
        if processes:
            ctx = multiprocessing.get_context("spawn")
            self.queue: Any = ctx.Queue()
            self.executor = ProcessPoolExecutor(
                max_workers=workers, mp_context=ctx, initializer=_init_worker,
                initargs=(self.queue,),
            )  # fmt: skip
        else:
            self.queue = queue.Queue()
            _init_worker(self.queue)
            self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="negosim")
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_progress, daemon=True)
        self._reader.start()

    def busy(self) -> bool:
        """Whether the queue is full: a new job would wait too long."""
        return self.pending >= self.max_queued

    def submit(self, job_id: int, on_done: Callable[[int], None] | None = None) -> None:
        """Run the stored job ``job_id`` (queued or interrupted) on the pool."""
        row = self.store.job(job_id)
        case = self.library.get(row["case_id"]) if row else None
        if row is None or case is None or case.cs is None:
            self.store.finish_job(job_id, error="the case is no longer in the library")
            self.bus.notify(f"job-{job_id}")
            return
        import json

        spec = json.loads(row["spec"])
        with self._lock:
            self.pending += 1
            if on_done:
                self.listeners.setdefault(job_id, []).append(on_done)
        self.store.set_job_status(job_id, "running")
        self.progress[job_id] = (0, int(spec.get("runs", 1)))
        fut = self.executor.submit(run_job, job_id, row["kind"], case.source(), spec)
        fut.add_done_callback(lambda f: self._done(job_id, f))

    def _done(self, job_id: int, fut: Future[dict[str, Any]]) -> None:
        with self._lock:
            self.pending -= 1
            listeners = self.listeners.pop(job_id, [])
        try:
            out = fut.result()
        except Exception as exc:  # noqa: BLE001 - a worker that died: said on the page
            out = {"error": f"the simulation failed: {type(exc).__name__}: {exc}"}
        if self._stop.is_set():
            return  # shutting down: the job stays 'running' and is run again at the next start
        try:
            if "error" in out:
                self.store.finish_job(job_id, error=out["error"])
            else:
                report = out.pop("report", None)
                self.store.finish_job(job_id, result=out, report=report)
        except Exception:  # noqa: BLE001 - the database was closed under us (shutdown)
            return
        self.progress.pop(job_id, None)
        for fn in listeners:
            fn(job_id)
        self.bus.notify(f"job-{job_id}")

    def _read_progress(self) -> None:
        while not self._stop.is_set():
            try:
                job_id, done, total = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            except (EOFError, OSError, ValueError):
                return
            self.progress[job_id] = (done, total)
            self.bus.notify(f"job-{job_id}")

    def resume(self, on_done: Callable[[int], None] | None = None) -> int:
        """Run again the jobs the last server left queued or running; how many."""
        rows = self.store.unfinished_jobs()
        for row in rows:
            self.submit(int(row["id"]), on_done)
        return len(rows)

    def shutdown(self) -> None:
        """Stop reading progress and the pool; running jobs are run again next start."""
        self._stop.set()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self._reader.join(timeout=2)
