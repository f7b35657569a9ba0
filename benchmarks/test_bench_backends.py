"""Throughput per backend, speed-up from 1 to 2 workers, and flat memory (issue 3).

Run with ``pytest benchmarks --benchmark-enable -s``: each benchmark prints its
figure (replications per second, speed-up, peak memory). In the normal run
they execute once as smoke tests, with small sizes.
"""

from __future__ import annotations

import gc
import os
import resource
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from negosim import load, simulate
from negosim.runs.backends import Dask, InProcess, Processes
from negosim.runs.designs import ParamRange, SweepSpec, resolve_params
from negosim.runs.runner import run_tally
from negosim.runs.sweeprun import run_sweep

ROOT = Path(__file__).resolve().parents[1]
MUNICH = ROOT / "scenarios" / "munich.yaml"


def _runs(config: Any, full: int, smoke: int) -> int:
    return full if config.getoption("benchmark_enable") else smoke


@pytest.fixture(scope="module")
def munich():  # type: ignore[no-untyped-def]
    return load(MUNICH)


@pytest.fixture(scope="module")
def dask2() -> Iterator[Dask]:
    with Dask(local_workers=2) as be:
        yield be


def _rate(cs: Any, runs: int, backend: Any) -> float:
    started = time.perf_counter()
    est = simulate(cs, runs=runs, seed=1, backend=backend)
    return est.runs / (time.perf_counter() - started)


@pytest.mark.parametrize("name", ["in-process", "processes-1", "processes-2", "dask-2"])
def test_runs_per_second_per_backend(benchmark, munich, dask2, name, request):  # type: ignore[no-untyped-def]
    runs = _runs(request.config, 40_000, 1_000)
    if name == "in-process":
        backend: Any = InProcess()
    elif name == "dask-2":
        backend = dask2
    else:
        backend = Processes(int(name[-1]))
    try:
        rate = benchmark.pedantic(_rate, args=(munich, runs, backend), rounds=2, iterations=1)
    finally:
        if isinstance(backend, Processes):
            backend.close()
    benchmark.extra_info["runs_per_s"] = rate
    print(f"\n{name}: {rate:,.0f} replications/s ({runs:,} runs of munich)")
    assert rate > 0


def test_speedup_one_to_two_workers(munich, request):  # type: ignore[no-untyped-def]
    runs = _runs(request.config, 60_000, 1_000)
    rates = {1: 0.0, 2: 0.0}
    with Processes(1) as one, Processes(2) as two:
        pools = {1: one, 2: two}
        for w in (1, 2):
            _rate(munich, 1_000, pools[w])  # start the pool's processes
        for _ in range(3):  # interleaved, best of 3: the machine may be shared
            for w in (1, 2):
                rates[w] = max(rates[w], _rate(munich, runs, pools[w]))
    speedup = rates[2] / rates[1]
    print(f"\nspeed-up 1 -> 2 worker processes: {speedup:.2f}x "
          f"({rates[1]:,.0f} -> {rates[2]:,.0f} runs/s, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")  # fmt: skip
    # Wall-clock speed-up needs idle cores; the work itself must not grow with workers:
    # CPU seconds per replication, measured on the pools' processes once they exit.
    per_run = {}
    for w in (1, 2):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with Processes(w) as be:
            simulate(munich, runs=runs, seed=1, backend=be)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        per_run[w] = cpu / runs
    eff = per_run[1] / per_run[2]
    print(f"CPU per replication: {per_run[1] * 1e6:.0f} us with 1 worker, "
          f"{per_run[2] * 1e6:.0f} us with 2 (parallel efficiency {eff:.2f})")  # fmt: skip
    assert speedup > 0


def _peak(cs: Any, runs: int) -> int:
    gc.collect()
    tracemalloc.start()
    tally = run_tally(cs, range(runs), 1, InProcess())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert tally.runs == runs
    return peak


def test_memory_flat_in_replications(munich, request):  # type: ignore[no-untyped-def]
    """Peak traced memory for 10x the replications stays flat (streaming tallies)."""
    n = _runs(request.config, 40_000, 500)  # from 40,000 runs on, chunks are at their cap
    _peak(munich, 200)  # first-use allocations (caches) out of the way
    small, large = _peak(munich, n), _peak(munich, 10 * n)
    bound = _histogram_bound(munich)
    print(f"\npeak memory: {small / 1e6:.2f} MB for {n:,} runs, "
          f"{large / 1e6:.2f} MB for {10 * n:,} runs (the full time-of-meeting "
          f"histogram, the only part that can grow, is at most {bound / 1e6:.2f} MB)")  # fmt: skip
    # A tally holds counts per minute of the horizon and per path: bounded by the
    # scenario, not by the number of runs. At most three are alive at once (the total
    # and two chunks in flight), each briefly doubled while its dict is resized.
    assert large < small + 6 * bound


def _histogram_bound(cs: Any) -> int:
    """Traced size of a tally's time histogram with every minute of the horizon filled."""
    from collections import Counter

    gc.collect()
    tracemalloc.start()
    full = Counter({m: 1 for m in range(int(cs.horizon * 60) + 1)})
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del full
    return size


def test_sweep_memory_flat_in_replications(munich, tmp_path, request):  # type: ignore[no-untyped-def]
    """The same for a whole sweep: 10x the replications per point, same peak."""
    runs = _runs(request.config, 2_000, 100)
    params = resolve_params(munich, {"p_us_formal_request": ParamRange(low=0, high=1, steps=4)},
                            "grid")  # fmt: skip
    peaks = []
    for i, r in enumerate((runs, 10 * runs)):
        spec = SweepSpec(str(MUNICH), params, "grid", runs=r, seed=1)
        gc.collect()
        tracemalloc.start()
        run_sweep(spec, InProcess(), tmp_path / f"m{i}.csv")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    print(f"\nsweep peak memory: {peaks[0] / 1e6:.2f} MB ({runs} runs/point), "
          f"{peaks[1] / 1e6:.2f} MB ({10 * runs} runs/point)")  # fmt: skip
    assert peaks[1] < peaks[0] + 8 * _histogram_bound(munich)
