"""Monte Carlo over replications, in one process or several.

Replications are numbered 0..runs-1 and replication ``i`` always draws from
its own stream spawned from the run's seed (see :class:`negosim.engine.Stream`);
they travel to workers in chunks of consecutive indexes, and each chunk comes
back as a :class:`~negosim.results.Tally` of integer counts. Adding tallies
does not depend on their order, so the same seed gives the same numbers for
any ``workers``.

Workers receive the validated pydantic model (compiled objects hold
functions, which do not pickle) and compile it once each.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from .compile import CompiledScenario
from .engine import Engine, Row
from .loader import compile_model
from .results import Estimate, Tally, estimate
from .schema import Scenario

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
    run = engine.run
    add = tally.add
    for i in indexes:
        add(run(seed, i))
    return tally


def rows(cs: CompiledScenario, runs: int, seed: int) -> Iterator[Row]:
    """The replication rows themselves, one at a time (for export and tests)."""
    engine = Engine(cs)
    for i in range(runs):
        yield engine.run(seed, i)


_worker_engine: Engine | None = None


def _init_worker(model: Scenario) -> None:
    global _worker_engine
    _worker_engine = Engine(compile_model(model))


def _work(args: tuple[int, int, int]) -> Tally:
    seed, a, b = args
    assert _worker_engine is not None
    return run_chunk(_worker_engine, seed, range(a, b))


def simulate(
    cs: CompiledScenario,
    runs: int = 10_000,
    seed: int = 0,
    workers: int = 1,
    progress: Progress | None = None,
    overrides: list[str] | None = None,
) -> Estimate:
    """Run ``runs`` replications of ``cs`` and summarise them.

    >>> from negosim import load, simulate
    >>> est = simulate(load("scenarios/tutorial.yaml"), runs=1000, seed=1)
    >>> 0 <= est.p_meeting <= 1
    True
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    workers = max(1, min(workers, runs))
    started = time.perf_counter()
    tally = Tally()
    if workers == 1:
        engine = Engine(cs)
        for chunk in chunks(runs, 1):
            tally.merge(run_chunk(engine, seed, chunk))
            if progress:
                progress(len(chunk))
    else:
        ctx = mp.get_context("fork" if hasattr(os, "fork") else "spawn")
        tasks = [(seed, c.start, c.stop) for c in chunks(runs, workers)]
        with ctx.Pool(workers, initializer=_init_worker, initargs=(cs.model,)) as pool:
            for part in pool.imap_unordered(_work, tasks):
                tally.merge(part)
                if progress:
                    progress(part.runs)
    elapsed = time.perf_counter() - started
    return estimate(cs, tally, seed, elapsed, overrides)


def trace(cs: CompiledScenario, seed: int, index: int = 0) -> tuple[Row, list[Any]]:
    """One replication with its timeline (``negosim trace``)."""
    engine = Engine(cs)
    row = engine.run(seed, index, trace=True)
    assert engine.trace is not None
    return row, engine.trace
