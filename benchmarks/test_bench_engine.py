"""Speed of the engine on the Munich scenario (pytest-benchmark).

Run with ``pytest benchmarks --benchmark-enable`` (benchmarks are disabled in
the normal test run, where they execute once as smoke tests). Targets from
issue 2: 10,000 replications of munich in under 2 s on one core, with no
per-replication rebuilding of machines, models or compiled expressions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from negosim import Engine, load, simulate
from negosim.runs.backends import run_chunk

ROOT = Path(__file__).resolve().parents[1]
MUNICH = ROOT / "scenarios" / "munich.yaml"


@pytest.fixture(scope="module")
def munich():  # type: ignore[no-untyped-def]
    return load(MUNICH)


def test_one_replication(benchmark, munich):  # type: ignore[no-untyped-def]
    engine = Engine(munich)
    counter = iter(range(10**9))
    row = benchmark(lambda: engine.run(1, next(counter)))
    assert row.events > 0


def test_10k_replications(benchmark, munich):  # type: ignore[no-untyped-def]
    engine = Engine(munich)
    tally = benchmark.pedantic(run_chunk, args=(engine, 1, range(10_000)), rounds=3, iterations=1)
    assert tally.runs == 10_000
    benchmark.extra_info["mean_events_per_run"] = tally.events / tally.runs


def test_simulate_10k_end_to_end(benchmark, munich):  # type: ignore[no-untyped-def]
    est = benchmark.pedantic(
        simulate, args=(munich,), kwargs={"runs": 10_000, "seed": 1}, rounds=3, iterations=1
    )
    assert est.runs == 10_000
    benchmark.extra_info["runs_per_s"] = est.runs / est.elapsed_s


def test_load_and_compile(benchmark):  # type: ignore[no-untyped-def]
    cs = benchmark(load, MUNICH)
    assert cs.clocks
