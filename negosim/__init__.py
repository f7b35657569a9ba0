"""negosim: simulate the negotiation of a diplomatic meeting.

The public API is small::

    from negosim import load, simulate, trace
    scenario = load("scenarios/munich.yaml", sets=[("p_us_formal_request", 0.5)])
    estimate = simulate(scenario, runs=10_000, seed=1)
    print(estimate.p_meeting, estimate.ci95)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .compiler.loader import load, validate
from .compiler.tables import CompiledScenario
from .engine.simulation import Engine, Row
from .errors import (
    ExpressionError,
    InputError,
    NegosimError,
    Problem,
    ScenarioError,
    SimulationError,
    UsageError,
)
from .runs.results import Estimate, Tally, wilson
from .runs.runner import rows, simulate, trace

try:
    __version__ = version("negosim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "CompiledScenario",
    "Engine",
    "Estimate",
    "ExpressionError",
    "InputError",
    "NegosimError",
    "Problem",
    "Row",
    "ScenarioError",
    "SimulationError",
    "Tally",
    "UsageError",
    "load",
    "rows",
    "simulate",
    "trace",
    "validate",
    "wilson",
    "__version__",
]
