"""The rebuilt core side by side with the engine it replaced (issue 8).

``pytest benchmarks/test_bench_core.py --benchmark-enable -s`` prints, from one
process and one run:

* CPU microseconds per munich replication for the new engine (``Engine.run_block``:
  the replication generated for the scenario, :mod:`negosim.engine.generated`), the
  reference :class:`~negosim.engine.simulation.Replication` it is checked against
  (what traces and played games run), the engine as it was before the rebuild
  (``benchmarks/legacy_engine.py``, kept only for this) and a bare simpy skeleton
  that creates and processes the same number of timeouts as the new engine does
  (the floor simpy itself sets), with ratios;
* CPU microseconds per replication of a synthetic scenario with 5, 20 and 80
  clocks, for both engines: the new engine's cost per clock stays flat (it
  re-evaluates only the clocks whose inputs changed), the old one's grows
  with the number of clocks.

The engines are measured in alternation, several rounds, and the
median of each is reported, so load on the machine affects them alike. In
the normal test run each of these executes once, small, as a smoke test.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import simpy
import yaml

from negosim import load
from negosim.engine.simulation import Engine, Replication
from negosim.engine.streams import block

ROOT = Path(__file__).resolve().parents[1]
MUNICH = ROOT / "scenarios" / "munich.yaml"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from legacy_engine import Engine as LegacyEngine  # noqa: E402


def _full(config: Any) -> bool:
    return bool(config.getoption("benchmark_enable"))


def _cpu_us_per_run(fn: Callable[[int, int], Any], runs: int, start: int) -> float:
    t = time.process_time()
    fn(start, start + runs)
    return (time.process_time() - t) / runs * 1e6


def _timeouts_per_run(engine: Engine, runs: int) -> float:
    """How many simpy timeouts the new engine creates per replication (counted)."""
    import negosim.engine.simulation as sim

    made = 0
    base = sim._Environment

    class Counting(base):  # type: ignore[misc, valid-type]
        def timeout(self, delay: Any = 0, value: Any = None) -> simpy.Timeout:
            nonlocal made
            made += 1
            return simpy.Timeout(self, delay, value)

    sim._Environment = Counting  # type: ignore[misc]
    try:
        for _ in engine.run_block(0, 0, runs):
            pass
    finally:
        sim._Environment = base  # type: ignore[misc]
    assert made > 0, "the engine no longer creates its timeouts through _Environment"
    return made / runs


def _bare_simpy(n_timeouts: float) -> Callable[[int, int], None]:
    """A replication that does nothing but simpy's part: an environment, timeouts, steps."""
    whole, frac = int(n_timeouts), n_timeouts - int(n_timeouts)

    def run(a: int, b: int) -> None:
        for i in range(a, b):
            env = simpy.Environment()
            n = whole + (1 if (i * frac) % 1 + frac >= 1 else 0)

            def cb(ev: simpy.Event) -> None:
                pass

            for k in range(n):
                env.timeout(k + 1).callbacks.append(cb)
            env.run()

    return run


def _rounds(config: Any) -> int:
    return 7 if _full(config) else 1


def test_munich_against_the_old_engine_and_bare_simpy(request: pytest.FixtureRequest) -> None:
    cs = load(MUNICH)
    new, old = Engine(cs), LegacyEngine(cs)
    runs = 4_000 if _full(request.config) else 200
    n_timeouts = _timeouts_per_run(new, runs)
    bare = _bare_simpy(n_timeouts)

    assert new.generated is not None, "munich no longer runs the generated replication"

    def run_new(a: int, b: int) -> None:
        for _ in new.run_block(1, a, b):
            pass

    def run_reference(a: int, b: int) -> None:
        """``run_block`` as it is without the generated replication."""
        for start in range(a, b, 256):
            stop = min(start + 256, b)
            firsts = block(1, start, stop, new.stream_ids)
            for i, first in zip(range(start, stop), firsts, strict=True):
                Replication(new, 1, i, first).run()

    def run_old(a: int, b: int) -> None:
        for i in range(a, b):
            old.run(1, i)

    times: dict[str, list[float]] = {"new": [], "Replication": [], "old": [], "bare simpy": []}
    for r in range(_rounds(request.config)):
        times["new"].append(_cpu_us_per_run(run_new, runs, r * runs))
        times["Replication"].append(_cpu_us_per_run(run_reference, runs, r * runs))
        times["old"].append(_cpu_us_per_run(run_old, runs, r * runs))
        times["bare simpy"].append(_cpu_us_per_run(bare, runs, r * runs))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"\nmunich, CPU µs per replication (median of {len(times['new'])} rounds of {runs}): "
        f"new (generated) {med['new']:.1f}, Replication {med['Replication']:.1f}, "
        f"old {med['old']:.1f}, bare simpy with the same {n_timeouts:.1f} timeouts "
        f"{med['bare simpy']:.1f}; old/new = {med['old'] / med['new']:.2f}×, "
        f"old/Replication = {med['old'] / med['Replication']:.2f}×, "
        f"new/bare simpy = {med['new'] / med['bare simpy']:.2f}×"
    )
    assert all(v > 0 for v in med.values())


def synthetic(n: int) -> dict[str, Any]:
    """``n`` independent actions each fire once (exponential, mean 1 h) and count up;
    the meeting happens when all have fired. n + 1 firings per replication."""
    actions: dict[str, Any] = {
        f"a{i}": {
            "actor": "a",
            "from": "waiting",
            "guard": f"not done{i}",
            "delay": {"dist": "exponential", "mean": "1h"},
            "set": {f"done{i}": True, "k": "k + 1"},
        }
        for i in range(n)
    }
    actions["meet"] = {"actor": "a", "from": "waiting", "guard": f"k >= {n}",
                       "delay": {"dist": "fixed", "value": "1min"}, "trigger": "meet"}  # fmt: skip
    facts: dict[str, Any] = {f"done{i}": {"type": "bool", "initial": False} for i in range(n)}
    facts["k"] = {"type": "number", "initial": 0}
    return {
        "id": f"synthetic-{n}",
        "title": f"{n} clocks",
        "calendar": {"timezone": "UTC", "start": "2024-01-01 00:00", "horizon": "30d"},
        "actors": {"a": {"name": "A"}},
        "facts": facts,
        "protocol": {
            "states": ["waiting", "held"],
            "initial": "waiting",
            "transitions": [{"trigger": "meet", "source": "waiting", "dest": "held"}],
            "outcomes": {"success": ["held"], "failure": []},
        },
        "actions": actions,
        "settings": {"max_events": 100_000},
    }


def test_cost_grows_linearly_with_the_number_of_clocks(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    full = _full(request.config)
    lines = []
    per_clock_new = []
    for n in (5, 20, 80):
        path = tmp_path / f"s{n}.yaml"
        path.write_text(yaml.safe_dump(synthetic(n), sort_keys=False), encoding="utf-8")
        cs = load(path)
        new, old = Engine(cs), LegacyEngine(cs)
        runs = max(20, (20_000 if full else 200) // n)

        def run_new(a: int, b: int, e: Engine = new) -> None:
            for _ in e.run_block(1, a, b):
                pass

        def run_old(a: int, b: int, e: Any = old) -> None:
            for i in range(a, b):
                e.run(1, i)

        t_new = statistics.median(
            _cpu_us_per_run(run_new, runs, r * runs) for r in range(_rounds(request.config))
        )
        t_old = statistics.median(
            _cpu_us_per_run(run_old, runs, r * runs) for r in range(_rounds(request.config))
        )
        per_clock_new.append(t_new / n)
        lines.append(
            f"{n:>3} clocks: new {t_new:8.1f} µs ({t_new / n:5.2f} per clock), "
            f"old {t_old:8.1f} µs ({t_old / n:5.2f} per clock), old/new {t_old / t_new:.1f}×"
        )
    print("\nsynthetic, CPU µs per replication (n + 1 firings each):\n" + "\n".join(lines))
    if full:
        # linear: the cost per clock at 80 clocks is within 2× of that at 20
        assert per_clock_new[2] < 2 * per_clock_new[1]
