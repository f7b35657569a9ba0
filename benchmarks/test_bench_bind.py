"""What a sweep point costs to set up, compiled again or bound (issue 8).

``pytest benchmarks/test_bench_bind.py --benchmark-enable -s`` prints, from one run,
the wall milliseconds (median over points, each with values of its own) to set
up one munich point:

* the old way, as sweeps did it before: the model with the point's values set,
  compiled (``compile_model``), and its engine built: for the simpy engine its
  generated replication, for the batch engine a ``BatchEngine``;
* the new way: the values bound to the scenario compiled once
  (``negosim.compiler.bind.bind``), the engine's generated factory called with
  them, and the batch engine bound from the structure's (``BatchEngine.bind``);

with the ratios, and for scale what simulating 200 replications of the point
costs on the batch engine. The two ways are measured in alternation, point by
point, so load on the machine weighs on both alike.

In the normal test run each executes once, small, as a smoke test.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from negosim import load
from negosim.compiler.bind import bind
from negosim.compiler.loader import compile_model
from negosim.compiler.tables import CompiledScenario
from negosim.engine.batch import BatchEngine
from negosim.engine.simulation import Engine
from negosim.scenario.overrides import set_param_defaults

ROOT = Path(__file__).resolve().parents[1]
MUNICH = ROOT / "scenarios" / "munich.yaml"


def _sets(i: int) -> list[tuple[str, Any]]:
    """Point ``i``'s values: its own, so that no cache answers for another point."""
    return [
        ("p_us_formal_request", 0.05 + (i % 997) * 5e-4),
        ("round_median", f"{6 + (i % 991) * 0.01:.2f}h"),
        ("shock_rate", 0.2 + (i % 983) * 1e-3),
    ]


def _old_simpy(base: CompiledScenario, sets: list[tuple[str, Any]]) -> Engine:
    cs = compile_model(set_param_defaults(base.model, sets), None, [*base.sets, *sets])
    engine = Engine(cs)
    assert engine.generated is not None
    return engine


def _new_simpy(base: CompiledScenario, sets: list[tuple[str, Any]]) -> Engine:
    engine = Engine(bind(base, sets))
    assert engine.generated is not None
    return engine


def _old_batch(base: CompiledScenario, sets: list[tuple[str, Any]]) -> BatchEngine:
    cs = compile_model(set_param_defaults(base.model, sets), None, [*base.sets, *sets])
    return BatchEngine(cs, Engine(cs))


def _new_batch(proto: BatchEngine) -> Callable[[CompiledScenario, list[tuple[str, Any]]], Any]:
    def make(base: CompiledScenario, sets: list[tuple[str, Any]]) -> BatchEngine:
        cs = bind(base, sets)
        return proto.bind(cs, Engine(cs))

    return make


def _ms(fn: Callable[[CompiledScenario, list[tuple[str, Any]]], Any], base: Any, i: int) -> float:
    t = time.perf_counter()
    fn(base, _sets(i))
    return (time.perf_counter() - t) * 1e3


def test_munich_point_set_up_compiled_against_bound(request: pytest.FixtureRequest) -> None:
    full = bool(request.config.getoption("benchmark_enable"))
    points = 200 if full else 3
    base = load(MUNICH)
    proto = BatchEngine(base)
    Engine(base).generated  # the structure's code: compiled once, before any point  # noqa: B018
    ways = {
        "simpy old": _old_simpy,
        "simpy new": _new_simpy,
        "batch old": _old_batch,
        "batch new": _new_batch(proto),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    for i in range(points):
        for name, fn in ways.items():  # in alternation
            times[name].append(_ms(fn, base, 10_000 + 4 * i + list(ways).index(name)))
    med = {k: statistics.median(v) for k, v in times.items()}
    be = proto.bind(bind(base, _sets(1)), None)
    sim = []
    for r in range(5 if full else 1):
        t = time.perf_counter()
        be.run(1, r * 200, (r + 1) * 200)
        sim.append((time.perf_counter() - t) * 1e3)
    print(
        f"\nmunich, wall ms to set up a sweep point (median of {points} points, each its own "
        f"values): simpy engine: compiled {med['simpy old']:.2f}, bound {med['simpy new']:.3f} "
        f"({med['simpy old'] / med['simpy new']:.0f}× less); batch engine: compiled "
        f"{med['batch old']:.2f}, bound {med['batch new']:.3f} "
        f"({med['batch old'] / med['batch new']:.1f}× less); 200 replications on the batch "
        f"engine take {statistics.median(sim):.1f}"
    )
    assert all(m > 0 for m in med.values())
