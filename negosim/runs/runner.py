"""Monte Carlo over replications, in one process or several.

Replications are numbered 0..runs-1 and replication ``i`` always draws from
its own keyed streams (see :mod:`negosim.engine.streams`);
they travel to workers in chunks of consecutive indexes, and each chunk comes
back as a :class:`~negosim.results.Tally` of integer counts. Adding tallies
does not depend on their order, so the same seed gives the same numbers for
any ``workers``.

Where the chunks run is a :mod:`negosim.backends` backend (in-process, local
processes or Dask); workers receive the validated pydantic model (compiled
objects hold functions, which do not pickle) and compile it once each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import numpy as np

from ..compiler.tables import CompiledScenario
from ..engine.simulation import Engine, Row
from .backends import (
    Backend,
    Job,
    batch_for,
    check_engine,
    make_backend,
    model_key,
    prime,
    run_job,
)
from .results import Estimate, Tally, estimate, wilson

if TYPE_CHECKING:  # the batch engine is imported only where it runs (start-up time)
    from ..engine.batch import BatchEngine

PRECISION_BATCH = 1_000
PRECISION_MAX_RUNS = 1_000_000

Progress = Callable[[int], None]
"""Called with the number of replications just finished."""


BATCH_CHUNK = 20_000
"""Replications per chunk on the batch engine: its cost per step is spread over a chunk."""

_CHUNKING = {"simpy": (200, 5_000, 8), "batch": (2_000, BATCH_CHUNK, 1)}
"""Per engine: the fewest and most replications in a chunk, and chunks per worker.

The simpy engine costs the same per replication in any chunk, so its runs are
cut in eight chunks a worker for load balance and a progress bar that moves.
The batch engine pays its Python work once per step of a chunk (about 12 ms a
chunk for munich, some 5,000 of its replications), so it gets one chunk a
worker, and never fewer than 2,000 replications in one."""


def chunk_bounds(engine: str) -> tuple[int, int]:
    """The fewest and the most replications in one chunk for ``engine``."""
    least, most, _ = _CHUNKING.get(engine, _CHUNKING["simpy"])
    return least, most


def chunks(runs: int, workers: int, engine: str = "simpy") -> Iterator[range]:
    """Split 0..runs-1 into consecutive chunks for ``engine``: enough for load balance,
    few enough that the cost per chunk stays small (see :data:`_CHUNKING`)."""
    least, most, per_worker = _CHUNKING.get(engine, _CHUNKING["simpy"])
    size = max(least, min(most, -(-runs // max(1, workers * per_worker))))
    for a in range(0, runs, size):
        yield range(a, min(a + size, runs))


def _batch_engine(cs: CompiledScenario) -> BatchEngine | None:
    """The cached batch engine of ``cs`` (None: it does not cover the scenario)."""
    key = model_key(cs.model)
    prime(key, cs)
    return batch_for(key, cs.model)


def rows(cs: CompiledScenario, runs: int, seed: int, engine: str = "simpy") -> Iterator[Row]:
    """The replication rows themselves, one at a time (for export and tests).

    ``engine="batch"`` computes them with the batch engine (the same rows; the
    simpy engine is used if the batch engine does not cover the scenario).
    """
    check_engine(engine)
    be = _batch_engine(cs) if engine == "batch" else None
    if be is not None:
        yield from be.run_block(seed, 0, runs)
        return
    yield from Engine(cs).run_block(seed, 0, runs)


def columns(
    cs: CompiledScenario, runs: int, seed: int, engine: str = "batch"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replications ``0..runs-1`` as three columns: the outcome (index into
    ``cs.states``, -1 censored), whether the meeting was held, and the ticks at
    which the run ended (-1 censored).

    The same columns on either engine (``"batch"``, the default, falls back to
    simpy where it does not cover the scenario); cheaper than :func:`rows` when
    only these fields are wanted (calibration reads them at every grid point).
    """
    check_engine(engine)
    be = _batch_engine(cs) if engine == "batch" else None
    if be is not None:
        res = be.run(seed, 0, runs)
        outcome = res.outcome.astype(np.int64)
        held = res.held.astype(bool)
        ticks = res.ticks.astype(np.int64)
        for p, row in res.reference.items():  # rows the batch engine left to simpy
            outcome[p], held[p], ticks[p] = _columns_of(cs, row)
        return outcome, held, ticks
    outcome = np.empty(runs, dtype=np.int64)
    held = np.empty(runs, dtype=bool)
    ticks = np.empty(runs, dtype=np.int64)
    for p, row in enumerate(Engine(cs).run_block(seed, 0, runs)):
        outcome[p], held[p], ticks[p] = _columns_of(cs, row)
    return outcome, held, ticks


def _columns_of(cs: CompiledScenario, row: Row) -> tuple[int, bool, int]:
    """A row's (outcome index or -1, held, ticks or -1), as :func:`columns` gives them."""
    outcome = -1 if row.outcome == "censored" else cs.states.index(row.outcome)
    return outcome, row.held, -1 if row.ticks is None else row.ticks


def replicate(
    cs: CompiledScenario, seed: int, start: int, stop: int, engine: str = "batch"
) -> Tally:
    """Replications ``start..stop-1`` of ``cs`` counted in a :class:`Tally`, in this process.

    The building block for callers that run many small sets of replications
    (backtests, calibration): ``engine`` is ``"batch"`` (default; the simpy
    engine where the batch engine does not cover the scenario) or ``"simpy"``.
    The counts are the same on either engine.
    """
    check_engine(engine)
    key = model_key(cs.model)
    prime(key, cs)
    return run_job(Job(key, cs.model, seed, start, stop, engine))


def simulate(
    cs: CompiledScenario,
    runs: int = 10_000,
    seed: int = 0,
    workers: int = 1,
    progress: Progress | None = None,
    overrides: list[str] | None = None,
    backend: Backend | None = None,
    engine: str = "simpy",
) -> Estimate:
    """Run ``runs`` replications of ``cs`` and summarise them.

    ``backend`` (see :mod:`negosim.backends`) says where; without one, ``workers``
    local processes (in this process if 1). The numbers do not depend on either,
    nor on ``engine`` (``"simpy"``, or ``"batch"``: faster, the same numbers).

    >>> from negosim import load, simulate
    >>> est = simulate(load("scenarios/tutorial.yaml"), runs=1000, seed=1)
    >>> 0 <= est.p_meeting <= 1
    True
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    started = time.perf_counter()
    with backend_or_local(backend, min(workers, runs)) as be:
        tally = run_tally(cs, range(runs), seed, be, progress, engine=engine)
    elapsed = time.perf_counter() - started
    return estimate(cs, tally, seed, elapsed, overrides)


class Partial(Protocol):
    """What a chunk of work returns: counts that merge in any order, and how many runs."""

    @property
    def runs(self) -> int:
        """How many replications these counts cover."""
        ...

    def merge(self, other: Any) -> Any:
        """Add ``other``'s counts into these, in place; return self."""
        ...


P = TypeVar("P", bound=Partial)
K = TypeVar("K")
Task = tuple[Callable[[Any], P], Any]
"""A chunk of work: a function and its one argument, called where a worker runs it."""


class _Group(Generic[K, P]):
    """A group's running total while its chunks are out."""

    __slots__ = ("key", "total", "error", "left", "all_sent")

    def __init__(self, key: K, total: P):
        self.key = key
        self.total = total
        self.error: Exception | None = None
        self.left = 0  # chunks in flight
        self.all_sent = False


def fold_groups(
    backend: Backend,
    groups: Iterable[tuple[K, P, Iterable[Task[P]]]],
    limit: int,
    progress: Progress | None = None,
    catch: bool = False,
) -> Iterator[tuple[K, P, Exception | None]]:
    """The chunk-and-fold loop: run groups of chunks on ``backend``, one total per group.

    ``groups`` yields ``(key, total, tasks)``: a run, a comparison or a sweep point,
    the empty total its chunks merge into, and its chunks. Both are taken lazily,
    only while fewer than ``limit`` chunks are in flight, so the workers stay busy,
    memory stays flat and a group is set up only when there is room for it. Results
    merge as they finish (totals add up in any order, so the numbers do not depend on
    it); ``progress(part.runs)`` follows every merged chunk. Once all of a group's
    chunks are in, this yields ``(key, total, error)``. A chunk that raises ends the
    loop with its exception, unless ``catch``: then the group's first exception is
    its ``error`` (its other chunks still merge) and the other groups go on.
    """
    source = iter(groups)
    current: tuple[_Group[K, P], Iterator[Task[P]]] | None = None
    exhausted = False
    pending: dict[Any, _Group[K, P]] = {}  # future -> its group
    while True:
        while len(pending) < limit and not exhausted:
            if current is None:
                nxt = next(source, None)
                if nxt is None:
                    exhausted = True
                    break
                key, total, tasks = nxt
                current = (_Group(key, total), iter(tasks))
            group, tasks = current
            task = next(tasks, None)
            if task is None:
                group.all_sent = True
                current = None
                if group.left == 0:
                    yield group.key, group.total, group.error
                continue
            fn, arg = task
            pending[backend.submit(fn, arg)] = group
            group.left += 1
        if not pending:
            return
        for fut in backend.wait_any(list(pending)):
            group = pending.pop(fut)
            group.left -= 1
            try:
                part = fut.result()
            except Exception as exc:
                if not catch:
                    raise
                if group.error is None:
                    group.error = exc
            else:
                group.total.merge(part)
                if progress:
                    progress(part.runs)
            if group.left == 0 and group.all_sent:
                yield group.key, group.total, group.error


def fold_chunks(
    backend: Backend,
    indexes: range,
    task: Callable[[int, int], Task[P]],
    total: P,
    progress: Progress | None = None,
    engine: str = "simpy",
) -> P:
    """Run ``indexes`` in chunks on ``backend`` and merge the results into ``total``.

    ``task(start, stop)`` gives the function and argument that run one chunk
    where a worker calls them. The loop is :func:`fold_groups` with one group.
    """
    tasks = (
        task(indexes.start + c.start, indexes.start + c.stop)
        for c in chunks(len(indexes), backend.workers, engine)
    )
    limit = max(2, 2 * backend.workers)
    for _, folded, _ in fold_groups(backend, [(None, total, tasks)], limit, progress):
        return folded
    return total  # pragma: no cover - one group always comes back


def run_tally(
    cs: CompiledScenario,
    indexes: range,
    seed: int,
    backend: Backend,
    progress: Progress | None = None,
    key: str | None = None,
    engine: str = "simpy",
) -> Tally:
    """Replications ``indexes`` of ``cs`` on ``backend``, folded into one tally."""
    check_engine(engine)
    key = key or model_key(cs.model)
    prime(key, cs)  # in-process and forked workers then skip compiling
    return fold_chunks(
        backend,
        indexes,
        lambda a, b: (run_job, Job(key, cs.model, seed, a, b, engine)),
        Tally(),
        progress,
        engine,
    )


@contextmanager
def backend_or_local(backend: Backend | None, workers: int) -> Iterator[Backend]:
    """The caller's backend (left open), or a local one made and closed here."""
    if backend is not None:
        yield backend
        return
    with make_backend(max(1, workers)) as be:
        yield be


def simulate_to_precision(
    cs: CompiledScenario,
    precision: float,
    seed: int = 0,
    workers: int = 1,
    progress: Progress | None = None,
    overrides: list[str] | None = None,
    backend: Backend | None = None,
    batch: int = PRECISION_BATCH,
    max_runs: int = PRECISION_MAX_RUNS,
    engine: str = "simpy",
) -> Estimate:
    """Replicate until the 95% Wilson interval's half-width is at most ``precision``.

    The rule (docs/sweeps.md): replications run in batches of ``batch`` (1,000),
    always in index order 0, 1, 2, ...; after each batch the Wilson interval of
    all runs so far is computed, and the run stops at the first batch boundary
    where ``(high - low) / 2 <= precision``, or at ``max_runs``. The number of
    runs is therefore a multiple of ``batch`` and, like the estimate, depends
    only on the seed. The estimate's ``precision`` says whether the target was
    reached or the cap stopped the run first.
    """
    if not 0 < precision < 0.5:
        raise ValueError("precision must be between 0 and 0.5")
    started = time.perf_counter()
    tally = Tally()
    key = model_key(cs.model)
    with backend_or_local(backend, workers) as be:
        while tally.runs < max_runs:
            n = min(batch, max_runs - tally.runs)
            tally.merge(
                run_tally(cs, range(tally.runs, tally.runs + n), seed, be, progress, key, engine)
            )
            low, high = wilson(tally.held, tally.runs)
            if (high - low) / 2 <= precision:
                break
    elapsed = time.perf_counter() - started
    est = estimate(cs, tally, seed, elapsed, overrides)
    low, high = est.ci95
    half = (high - low) / 2
    # Said honestly: the cap can stop the run before the precision is reached.
    est.precision = {
        "target": precision,
        "half_width": half,
        "reached": half <= precision,
        "max_runs": max_runs,
    }
    return est


def trace(cs: CompiledScenario, seed: int, index: int = 0) -> tuple[Row, list[Any]]:
    """One replication with its timeline (``negosim trace``)."""
    return Engine(cs).trace(seed, index)
