"""Speed of exact analysis on munich (issue 12): targets 0.5 s exponential, 2 s with 8 phases.

Run with ``pytest benchmarks/test_bench_exact.py --benchmark-enable``. The
8-phase figure includes fitting the five delays (the fit cache is cleared
before every round); the second test measures the chain alone, fits cached,
as a sweep or a slider sees it after its first point.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from negosim import load
from negosim.analysis.check import exponential_variant
from negosim.analysis.ctmc import analyze
from negosim.analysis.phasetype import _fit

ROOT = Path(__file__).resolve().parents[1]
MUNICH = ROOT / "scenarios" / "munich.yaml"


@pytest.fixture(scope="module")
def munich():  # type: ignore[no-untyped-def]
    return load(MUNICH)


def test_munich_all_exponential(benchmark):  # type: ignore[no-untyped-def]
    cs = exponential_variant(str(MUNICH))
    a = benchmark.pedantic(analyze, args=(cs,), rounds=5, iterations=1)
    assert abs(a.p_meeting - 0.39384) < 5e-5
    benchmark.extra_info["states"] = a.states


def test_munich_8_phases_with_fitting(benchmark, munich):  # type: ignore[no-untyped-def]
    a = benchmark.pedantic(
        analyze, args=(munich,), kwargs={"phases": 8}, setup=_fit.cache_clear, rounds=5
    )
    assert 0.40 < a.p_meeting < 0.42
    benchmark.extra_info["states"] = a.states


def test_munich_8_phases_fits_cached(benchmark, munich):  # type: ignore[no-untyped-def]
    analyze(munich, phases=8)
    a = benchmark.pedantic(analyze, args=(munich,), kwargs={"phases": 8}, rounds=5, iterations=1)
    assert 0.40 < a.p_meeting < 0.42
