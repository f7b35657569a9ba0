"""Where replications run: in this process, in local processes, or on a Dask cluster.

Every backend offers the same small, ``concurrent.futures``-style interface
(:class:`Backend`): ``submit(fn, *args)`` returns a future with ``result()``,
``as_completed(futures)`` yields them as they finish, and ``close()`` (or a
``with`` block) releases the workers. :mod:`negosim.runner` and
:mod:`negosim.sweep` only talk to this interface.

Work travels as :class:`Job` chunks: a scenario *model* (the validated pydantic
object; compiled scenarios hold functions, which do not pickle), its content
key, the parameter values of the point (a sweep's, a calibration's or an
uncertainty draw's; none for a plain run), a seed and a range of replication
indexes. Each worker compiles a given model once and keeps the engine in a
small per-process cache keyed by the content hash (:func:`engine_for`); a
point's scenario is that compiled model with the point's values bound
(:mod:`negosim.compiler.bind`), so a sweep compiles its scenario once per
worker, never per point, replication or chunk, and the engines of its points
share what they build from the scenario's structure (the generated code, the
batch engine's compiled expressions: :func:`batch_for`). A chunk comes back as a
:class:`~negosim.results.Tally` of integer counts; adding tallies does not
depend on order, which is why every backend and worker count gives
bit-identical numbers for the same seed.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures import as_completed as _cf_as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self

import numpy as np

from ..compiler.bind import bind
from ..compiler.loader import compile_model
from ..compiler.tables import CompiledScenario, Structure
from ..engine.generated import COMPILE_LOCK
from ..engine.simulation import Engine
from ..errors import UsageError, one_line
from ..extras import require
from ..scenario.schema import Scenario
from .results import Tally

if TYPE_CHECKING:  # the batch engine is imported only where it runs (start-up time)
    from ..engine.batch import BatchEngine

ENGINES = ("simpy", "batch")
"""The engines a chunk can run on: the reference simpy engine, or the batch engine
(:mod:`negosim.engine.batch`), which gives the same rows and falls back to the
reference for a scenario it does not cover."""
_CACHE_SIZE = 16  # compiled engines kept per process: enough for chunks of in-flight points
_engines: OrderedDict[str, Engine] = OrderedDict()
_batch: OrderedDict[str, BatchEngine | None] = OrderedDict()
# The first batch engine made for each scenario structure (None: it does not cover it),
# which the engines of the structure's other points are bound from (BatchEngine.bind).
# The structure is held with it, so that its id stays its own while it is cached.
_by_structure: OrderedDict[int, tuple[Structure, BatchEngine | None]] = OrderedDict()
_lock = threading.Lock()  # a Dask worker runs chunks on several threads of one process
# Compiling is serialised: CPython 3.11's compile() is not safe to call from two
# threads at once ("AST constructor recursion depth mismatch", seen on threaded Dask
# workers), and one compile per model is all the cache needs anyway. The lock is the
# one the engine holds while it compiles its generated replication (re-entrant).
_compile_lock = COMPILE_LOCK


def model_key(model: Scenario) -> str:
    """Content hash of a validated scenario model (names a sweep point's compiled form)."""
    return hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:24]


Values = tuple[tuple[str, Any], ...]
"""A point's parameter values, as ``--set NAME=VALUE`` pairs (empty: the model's own)."""


def point_key(key: str, values: Values) -> str:
    """The cache key of the point ``values`` of the model whose key is ``key``."""
    if not values:
        return key
    return key + ":" + hashlib.sha256(repr(values).encode()).hexdigest()[:24]


def prime(key: str, cs: CompiledScenario, values: Values = ()) -> None:
    """Put an already compiled scenario in this process's cache (forked workers inherit
    it): the model keyed ``key``, or its point ``values`` (``cs`` has them bound)."""
    engine = Engine(cs)
    key = point_key(key, values)
    with _lock:
        _engines[key] = engine
        _engines.move_to_end(key)
        while len(_engines) > _CACHE_SIZE:
            _engines.popitem(last=False)


def engine_for(key: str, model: Scenario, values: Values = ()) -> Engine:
    """The engine of ``model`` with the parameter values ``values`` bound, made at most
    once per process while it stays cached; the model itself is compiled once."""
    point = point_key(key, values)
    with _lock:
        engine = _engines.get(point)
        if engine is not None:
            _engines.move_to_end(point)
            return engine
    with _compile_lock:
        with _lock:
            engine = _engines.get(point)  # another thread may have compiled it meanwhile
        if engine is not None:
            return engine
        if values:
            engine = Engine(bind(engine_for(key, model).cs, values))
        else:
            engine = Engine(compile_model(model))
    with _lock:
        _engines[point] = engine
        while len(_engines) > _CACHE_SIZE:
            _engines.popitem(last=False)
    return engine


def batch_for(key: str, model: Scenario, values: Values = ()) -> BatchEngine | None:
    """The batch engine of ``model`` with ``values`` bound (None: it does not cover the
    scenario), made at most once per process while it stays cached."""
    point = point_key(key, values)
    with _lock:
        if point in _batch:
            _batch.move_to_end(point)
            return _batch[point]
    be = batch_of(engine_for(key, model, values))
    with _lock:
        _batch[point] = be
        while len(_batch) > _CACHE_SIZE:
            _batch.popitem(last=False)
    return be


def batch_of(engine: Engine) -> BatchEngine | None:
    """The batch engine of ``engine``'s scenario (None: it does not cover it): bound
    from the one made for the scenario's structure if there is one (the points of a
    sweep), else made (:class:`~negosim.engine.batch.BatchEngine`)."""
    from ..engine.batch import BatchEngine, Unsupported

    structure = engine.cs.structure
    with _compile_lock:  # the batch engine compiles its expressions too
        hit = _by_structure.get(id(structure))
        if hit is not None and hit[0] is structure:
            _by_structure.move_to_end(id(structure))
            if hit[1] is None:
                return None
            try:
                return hit[1].bind(engine.cs, engine)
            except Unsupported:  # this point's values (a distribution it refuses): simpy
                return None
        try:
            be: BatchEngine | None = BatchEngine(engine.cs, engine)
        except Unsupported:
            be = None
        _by_structure[id(structure)] = (structure, be)
        while len(_by_structure) > _CACHE_SIZE:
            _by_structure.popitem(last=False)
    return be


def batch_support(cs: CompiledScenario) -> str | None:
    """Why the batch engine cannot run ``cs`` (one line naming the feature), or None."""
    from ..engine.batch import BatchEngine, Unsupported

    try:
        BatchEngine(cs)
    except Unsupported as exc:
        return f"the batch engine does not cover {exc}"
    return None


def check_engine(engine: str) -> None:
    """UsageError unless ``engine`` is one of :data:`ENGINES`."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")


@dataclass(frozen=True)
class Job:
    """Replications ``start..stop-1`` of one scenario, drawn from ``seed``'s streams,
    on ``engine`` (see :data:`ENGINES`): ``model`` (content key ``key``) with the
    parameter values ``values`` bound."""

    key: str
    model: Scenario
    seed: int
    start: int
    stop: int
    engine: str = "simpy"
    values: Values = ()  # the point's parameter values, bound to ``model`` (key: its key)


def run_chunk(engine: Engine, seed: int, indexes: range) -> Tally:
    """Run the replications ``indexes`` and fold them into a tally."""
    tally = Tally()
    add = tally.add
    for row in engine.run_block(seed, indexes.start, indexes.stop):
        add(row)
    return tally


def run_job(job: Job) -> Tally:
    """Run a chunk of replications where this function is called (any backend's worker)."""
    return run_job_rows(job)[0]


def run_job_rows(job: Job) -> tuple[Tally, np.ndarray]:
    """:func:`run_job`'s tally, and whether each of its replications held the meeting (a
    bool per replication, ``job.start`` first), for counts by block of replications."""
    if job.engine == "batch":
        be = batch_for(job.key, job.model, job.values)
        if be is not None:
            res = be.run(job.seed, job.start, job.stop)
            tally = Tally()
            tally.add_batch(res)
            held = res.held.copy()
            for p, row in res.reference.items():
                held[p] = row.held
            return tally, held
    tally = Tally()
    held = np.zeros(job.stop - job.start, dtype=bool)
    engine = engine_for(job.key, job.model, job.values)
    for p, row in enumerate(engine.run_block(job.seed, job.start, job.stop)):
        tally.add(row)
        held[p] = row.held
    return tally, held


class Backend(Protocol):
    """The executor interface every backend implements."""

    workers: int
    name: str

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(*args)`` on a worker; return its future (``result()`` gives the value)."""
        ...

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """Yield ``futures`` as they finish, whatever order they were submitted in."""
        ...

    def wait_any(self, futures: list[Any]) -> list[Any]:
        """Block until at least one of ``futures`` is done; return the done ones."""
        ...

    def close(self) -> None:
        """Release the workers; the backend takes no more tasks."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class _Base:
    workers = 1
    name = "base"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass


class InProcess(_Base):
    """Runs each task at ``submit`` in the calling process (no parallelism, no pickling)."""

    name = "in-process"

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` now, here; return a future already holding its result or error."""
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller via result()
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            fut.set_exception(exc)
        return fut

    def as_completed(self, futures: Iterable[Future[Any]]) -> Iterator[Future[Any]]:
        """Yield ``futures`` in the order given: all finished at ``submit``."""
        return iter(list(futures))

    def wait_any(self, futures: list[Future[Any]]) -> list[Future[Any]]:
        """All of ``futures``: each finished at ``submit``."""
        return list(futures)  # all done at submit


class Processes(_Base):
    """A pool of local worker processes (``concurrent.futures.ProcessPoolExecutor``).

    On systems with ``fork`` the workers start with this process's cache of
    compiled scenarios (see :func:`prime`), so the first point costs nothing to
    set up; elsewhere each worker compiles a model the first time it sees it.
    """

    name = "processes"

    def __init__(self, workers: int):
        self.workers = workers
        # Imported here: a single-process run does not pay for the process machinery.
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("fork" if hasattr(os, "fork") else "spawn")
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue ``fn(*args)`` on the process pool; return its future."""
        return self._pool.submit(fn, *args)

    def as_completed(self, futures: Iterable[Future[Any]]) -> Iterator[Future[Any]]:
        """Yield ``futures`` as their worker processes finish them."""
        return _cf_as_completed(list(futures))

    def wait_any(self, futures: list[Future[Any]]) -> list[Future[Any]]:
        """Block until at least one of ``futures`` is done; return the done ones."""
        return list(wait(futures, return_when=FIRST_COMPLETED).done)

    def close(self) -> None:
        """Shut the pool down: wait for running tasks, cancel queued ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class Dask(_Base):
    """Dask distributed: a running scheduler (``tcp://HOST:PORT``) or a LocalCluster.

    Each Dask worker process keeps its own cache of compiled scenarios (this
    module's globals live in the worker), so a point is compiled once per worker.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, local_workers: int | None = None):
        require("dask", "the Dask backend")
        from distributed import Client, LocalCluster

        self._cluster: Any = None
        try:
            if scheduler is not None:
                self._client = Client(scheduler, timeout="10s")
            else:
                self._cluster = LocalCluster(
                    n_workers=local_workers or 1,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # any free port: never clash with a running one
                )
                self._client = Client(self._cluster)
        except (OSError, ValueError, TypeError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise UsageError(
                one_line(f"cannot connect to the Dask scheduler {scheduler}: {exc}")
            ) from None
        nthreads = self._client.nthreads()
        self.workers = max(1, sum(nthreads.values()))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Submit ``fn(*args)`` to the cluster as its own task; return the Dask future."""
        # pure=False: two identical chunks are still two tasks (Dask would merge them).
        return self._client.submit(fn, *args, pure=False)

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """Yield ``futures`` as the cluster finishes them."""
        from distributed import as_completed

        return iter(as_completed(list(futures)))

    def wait_any(self, futures: list[Any]) -> list[Any]:
        """Block until at least one of ``futures`` is done; return the done ones."""
        from distributed import wait as dask_wait

        return list(dask_wait(futures, return_when="FIRST_COMPLETED").done)

    def close(self) -> None:
        """Close the client, and the LocalCluster if this backend started one."""
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


_SCHEDULER = re.compile(
    r"(?:(?:tcp|tls|ws|wss)://)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])"
    r":(?P<port>[0-9]{1,5})"
)


def check_scheduler(address: str) -> None:
    """UsageError unless ``address`` is a Dask scheduler address, HOST:PORT with an
    optional tcp://, tls://, ws:// or wss://: said before anything is imported or run."""
    m = _SCHEDULER.fullmatch(address)
    if m is None or not 0 < int(m["port"]) < 65536:
        raise UsageError(
            f"--scheduler {one_line(address[:200])}: expected a Dask scheduler address "
            "HOST:PORT, e.g. tcp://10.0.0.5:8786"
        )


def make_backend(
    workers: int = 1, scheduler: str | None = None, dask_local: int | None = None
) -> Backend:
    """The backend the command-line options ask for (``--workers``, ``--scheduler``,
    ``--dask-local``); one worker and no Dask means in-process."""
    if scheduler is not None and dask_local is not None:
        raise UsageError("give either --scheduler or --dask-local, not both")
    if scheduler is not None:
        check_scheduler(scheduler)
    if scheduler is not None or dask_local is not None:
        return Dask(scheduler, dask_local)
    if workers <= 1:
        return InProcess()
    return Processes(workers)
