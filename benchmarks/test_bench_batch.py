"""The batch engine side by side with the simpy engine (issue 11).

``pytest benchmarks/test_bench_batch.py --benchmark-enable -s`` prints, from one run:

* CPU microseconds per munich replication on the batch engine, on the simpy
  engine and on the engine as it was before the core rebuild
  (``legacy_engine.py``, what the simpy engine cost when issue 11 was filed),
  measured in alternation (median of several rounds), and the ratios;
* the wall time and peak memory (maximum resident set size of a fresh
  process) of 10^6 munich replications on the batch engine, in one process
  on one core, counted into a tally in chunks of :data:`negosim.runs.runner.BATCH_CHUNK`;
* CPU microseconds per replication, and per clock, of the synthetic 5-, 20-
  and 80-clock scenarios of ``test_bench_core.py`` on the three engines, and
  how the batch engine's cost per clock at 80 clocks compares with that at 5
  (1.0 would be exactly linear).

In the normal test run each executes once, small, as a smoke test.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from negosim import load
from negosim.engine.batch import BatchEngine
from negosim.engine.simulation import Engine

ROOT = Path(__file__).resolve().parents[1]
MUNICH = ROOT / "scenarios" / "munich.yaml"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from legacy_engine import Engine as LegacyEngine  # noqa: E402
from test_bench_core import synthetic  # noqa: E402


def _full(config: Any) -> bool:
    return bool(config.getoption("benchmark_enable"))


def _cpu_us(fn: Callable[[int, int], Any], runs: int, start: int) -> float:
    t = time.process_time()
    fn(start, start + runs)
    return (time.process_time() - t) / runs * 1e6


def _simpy(e: Engine) -> Callable[[int, int], None]:
    def run(a: int, b: int) -> None:
        for _ in e.run_block(1, a, b):
            pass

    return run


def _batch(e: BatchEngine) -> Callable[[int, int], None]:
    return lambda a, b: e.run(1, a, b)


def _legacy(e: LegacyEngine) -> Callable[[int, int], None]:
    def run(a: int, b: int) -> None:
        for i in range(a, b):
            e.run(1, i)

    return run


def test_munich_batch_against_simpy(request: pytest.FixtureRequest) -> None:
    full = _full(request.config)
    cs = load(MUNICH)
    simpy_engine = Engine(cs)
    batch = BatchEngine(cs, simpy_engine)
    legacy = LegacyEngine(cs)
    runs_s, runs_b = (4_000, 50_000) if full else (100, 500)
    rounds = 5 if full else 1
    t_s, t_b, t_l = [], [], []
    for r in range(rounds):
        t_s.append(_cpu_us(_simpy(simpy_engine), runs_s, r * runs_s))
        t_b.append(_cpu_us(_batch(batch), runs_b, r * runs_b))
        t_l.append(_cpu_us(_legacy(legacy), runs_s, r * runs_s))
    s, b, old = statistics.median(t_s), statistics.median(t_b), statistics.median(t_l)
    print(
        f"\nmunich, CPU µs per replication (median of {rounds} rounds): "
        f"batch {b:.2f} ({runs_b} a round), simpy {s:.1f} ({runs_s} a round), "
        f"legacy {old:.1f} ({runs_s} a round); simpy/batch = {s / b:.1f}×, "
        f"legacy/batch = {old / b:.1f}×"
    )
    assert b > 0 and s > 0 and old > 0


_MILLION = """
import json, resource, sys, time
from negosim import load
from negosim.runs.runner import BATCH_CHUNK, replicate
from negosim.runs.results import Tally
cs = load(sys.argv[1])
runs = int(sys.argv[2])
t, cpu = time.perf_counter(), time.process_time()
total = Tally()
for a in range(0, runs, BATCH_CHUNK):
    total.merge(replicate(cs, 1, a, min(a + BATCH_CHUNK, runs)))
wall, cpu = time.perf_counter() - t, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"runs": total.runs, "held": total.held, "wall_s": wall, "cpu_s": cpu,
                  "peak_mb": peak}))
"""


def test_a_million_replications_time_and_memory(request: pytest.FixtureRequest) -> None:
    runs = 1_000_000 if _full(request.config) else 20_000
    out = subprocess.run(
        [sys.executable, "-c", _MILLION, str(MUNICH), str(runs)],
        capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    got = json.loads(out.stdout)
    print(
        f"\nmunich, {got['runs']:,} replications on the batch engine, one process: "
        f"{got['wall_s']:.1f} s wall, {got['cpu_s']:.1f} s CPU, "
        f"peak resident memory {got['peak_mb']:.0f} MB "
        f"(P(meeting) {got['held'] / got['runs']:.4f})"
    )
    assert got["runs"] == runs


def test_cost_against_the_number_of_clocks(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    full = _full(request.config)
    lines = []
    per_clock: dict[int, float] = {}
    for n in (5, 20, 80):
        path = tmp_path / f"s{n}.yaml"
        path.write_text(yaml.safe_dump(synthetic(n), sort_keys=False), encoding="utf-8")
        cs = load(path)
        simpy_engine = Engine(cs)
        batch = BatchEngine(cs, simpy_engine)
        legacy = LegacyEngine(cs)
        runs_s = max(20, (20_000 if full else 200) // n)
        runs_b = 20_000 if full else 300
        rounds = 3 if full else 1
        t_s, t_b, t_l = [], [], []
        for r in range(rounds):  # in alternation, so load on the machine affects all alike
            t_s.append(_cpu_us(_simpy(simpy_engine), runs_s, r * runs_s))
            t_b.append(_cpu_us(_batch(batch), runs_b, r * runs_b))
            t_l.append(_cpu_us(_legacy(legacy), runs_s, r * runs_s))
        s, b, old = statistics.median(t_s), statistics.median(t_b), statistics.median(t_l)
        per_clock[n] = b / n
        lines.append(
            f"{n:>3} clocks: batch {b:8.2f} µs ({b / n:5.3f} per clock), "
            f"simpy {s:8.1f} µs ({s / n:5.2f} per clock), "
            f"legacy {old:8.1f} µs ({old / n:5.2f} per clock); "
            f"simpy/batch {s / b:.1f}×, legacy/batch {old / b:.1f}×"
        )
    lines.append(
        f"batch cost per clock, 80 clocks / 5 clocks: {per_clock[80] / per_clock[5]:.2f} "
        f"(20 / 5: {per_clock[20] / per_clock[5]:.2f})"
    )
    print("\nsynthetic, CPU µs per replication (n + 1 firings each):\n" + "\n".join(lines))
    assert all(v > 0 for v in per_clock.values())
