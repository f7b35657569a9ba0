"""How honest ``run --precision`` is: the coverage of its data-dependent stopping rule.

docs/sweeps.md quotes scripts/precision_coverage.py; these tests run the same
computations, small: the exact coverage of the rule (binomial probabilities) and
real ``simulate_to_precision`` runs on a scenario with a closed-form answer.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import negosim
from negosim.runs.runner import simulate_to_precision

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "precision_coverage", REPO / "scripts" / "precision_coverage.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("p", "coverage"), [(0.5, 0.9493), (0.3, 0.9516), (0.86, 0.9389)])
def test_exact_coverage_is_what_the_docs_say(script: ModuleType, p: float, coverage: float) -> None:
    cover, bias, runs = script.exact(p, 0.02)
    assert round(cover, 4) == coverage
    assert abs(bias) < 0.002 and 1000 <= runs <= 3001


def test_simulated_coverage_of_precision_runs(script: ModuleType, tmp_path: Path) -> None:
    """100 real runs to ±0.04 in batches of 100 (p = 0.3, known in closed form): the
    reported 95% interval contains p in at least 90 of them."""
    p = 0.3
    path = tmp_path / "closed-form.yaml"
    path.write_text(script.SCENARIO.format(mean=repr(-48 / math.log(1 - p))), encoding="utf-8")
    cs = negosim.load(path)
    ests: list[Any] = [simulate_to_precision(cs, 0.04, seed=s, batch=100) for s in range(100)]
    hits = sum(e.ci95[0] <= p <= e.ci95[1] for e in ests)
    assert hits >= 90
    exact, _, _ = script.exact(p, 0.04, batch=100)
    assert exact > 0.93
    assert {e.runs % 100 for e in ests} == {0}
