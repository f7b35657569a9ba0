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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from ..compiler.tables import CompiledScenario
from ..engine.simulation import Engine, Row
from .backends import Backend, Job, make_backend, model_key, prime, run_job
from .results import Estimate, Tally, estimate, wilson

PRECISION_BATCH = 1_000
PRECISION_MAX_RUNS = 1_000_000

Progress = Callable[[int], None]
"""Called with the number of replications just finished."""


def chunks(runs: int, workers: int) -> Iterator[range]:
    """Split 0..runs-1 into consecutive chunks: enough for load balance, few enough
    that per-task overhead stays small."""
    size = max(200, min(5_000, runs // max(1, workers * 8) or 1))
    for a in range(0, runs, size):
        yield range(a, min(a + size, runs))


def run_chunk(engine: Engine, seed: int, indexes: range) -> Tally:
    """Run the replications ``indexes`` and fold them into a tally."""
    tally = Tally()
    add = tally.add
    for row in engine.run_block(seed, indexes.start, indexes.stop):
        add(row)
    return tally


def rows(cs: CompiledScenario, runs: int, seed: int) -> Iterator[Row]:
    """The replication rows themselves, one at a time (for export and tests)."""
    yield from Engine(cs).run_block(seed, 0, runs)


def simulate(
    cs: CompiledScenario,
    runs: int = 10_000,
    seed: int = 0,
    workers: int = 1,
    progress: Progress | None = None,
    overrides: list[str] | None = None,
    backend: Backend | None = None,
) -> Estimate:
    """Run ``runs`` replications of ``cs`` and summarise them.

    ``backend`` (see :mod:`negosim.backends`) says where; without one, ``workers``
    local processes (in this process if 1). The numbers do not depend on either.

    >>> from negosim import load, simulate
    >>> est = simulate(load("scenarios/tutorial.yaml"), runs=1000, seed=1)
    >>> 0 <= est.p_meeting <= 1
    True
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    started = time.perf_counter()
    with backend_or_local(backend, min(workers, runs)) as be:
        tally = run_tally(cs, range(runs), seed, be, progress)
    elapsed = time.perf_counter() - started
    return estimate(cs, tally, seed, elapsed, overrides)


class Partial(Protocol):
    """What a chunk of work returns: counts that merge in any order, and how many runs."""

    @property
    def runs(self) -> int: ...

    def merge(self, other: Any) -> Any: ...


P = TypeVar("P", bound=Partial)


def fold_chunks(
    backend: Backend,
    indexes: range,
    task: Callable[[int, int], tuple[Callable[[Any], P], Any]],
    total: P,
    progress: Progress | None = None,
) -> P:
    """Run ``indexes`` in chunks on ``backend`` and merge the results into ``total``.

    ``task(start, stop)`` gives the function and argument that run one chunk
    where a worker calls them. A bounded number of chunks is in flight, so the
    workers stay busy and memory stays flat; results merge as they finish.
    """
    todo = iter(chunks(len(indexes), backend.workers))
    limit = max(2, 2 * backend.workers)
    pending: list[Any] = []
    while True:
        while len(pending) < limit and (c := next(todo, None)) is not None:
            fn, arg = task(indexes.start + c.start, indexes.start + c.stop)
            pending.append(backend.submit(fn, arg))
        if not pending:
            return total
        for fut in backend.wait_any(pending):
            pending.remove(fut)
            part = fut.result()
            total.merge(part)
            if progress:
                progress(part.runs)


def run_tally(
    cs: CompiledScenario,
    indexes: range,
    seed: int,
    backend: Backend,
    progress: Progress | None = None,
    key: str | None = None,
) -> Tally:
    """Replications ``indexes`` of ``cs`` on ``backend``, folded into one tally."""
    key = key or model_key(cs.model)
    prime(key, cs)  # in-process and forked workers then skip compiling
    return fold_chunks(
        backend,
        indexes,
        lambda a, b: (run_job, Job(key, cs.model, seed, a, b)),
        Tally(),
        progress,
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
) -> Estimate:
    """Replicate until the 95% Wilson interval's half-width is at most ``precision``.

    The rule (docs/sweeps.md): replications run in batches of ``batch`` (1,000),
    always in index order 0, 1, 2, ...; after each batch the Wilson interval of
    all runs so far is computed, and the run stops at the first batch boundary
    where ``(high - low) / 2 <= precision``, or at ``max_runs``. The number of
    runs is therefore a multiple of ``batch`` and, like the estimate, depends
    only on the seed.
    """
    if not 0 < precision < 0.5:
        raise ValueError("precision must be between 0 and 0.5")
    started = time.perf_counter()
    tally = Tally()
    key = model_key(cs.model)
    with backend_or_local(backend, workers) as be:
        while tally.runs < max_runs:
            n = min(batch, max_runs - tally.runs)
            tally.merge(run_tally(cs, range(tally.runs, tally.runs + n), seed, be, progress, key))
            low, high = wilson(tally.held, tally.runs)
            if (high - low) / 2 <= precision:
                break
    elapsed = time.perf_counter() - started
    return estimate(cs, tally, seed, elapsed, overrides)


def trace(cs: CompiledScenario, seed: int, index: int = 0) -> tuple[Row, list[Any]]:
    """One replication with its timeline (``negosim trace``)."""
    return Engine(cs).trace(seed, index)
