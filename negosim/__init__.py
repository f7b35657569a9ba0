"""negosim: simulate the negotiation of a diplomatic meeting.

The public API is small::

    from negosim import load, simulate, trace
    scenario = load("scenarios/munich.yaml", sets=[("p_us_formal_request", 0.5)])
    estimate = simulate(scenario, runs=10_000, seed=1)
    print(estimate.p_meeting, estimate.ci95)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    ExpressionError,
    InputError,
    NegosimError,
    Problem,
    ScenarioError,
    SimulationError,
    UsageError,
)

if TYPE_CHECKING:
    from .compiler.loader import load, validate
    from .compiler.tables import CompiledScenario
    from .engine.simulation import Engine, Row
    from .runs.results import Estimate, Tally, wilson
    from .runs.runner import rows, simulate, trace

# The rest of the API is imported on first use, so that `negosim --version` and `--help`
# do not pay for pydantic, numpy and simpy (see docs/dependencies.md).
_LAZY = {
    "load": "compiler.loader",
    "validate": "compiler.loader",
    "CompiledScenario": "compiler.tables",
    "Engine": "engine.simulation",
    "Row": "engine.simulation",
    "Estimate": "runs.results",
    "Tally": "runs.results",
    "wilson": "runs.results",
    "rows": "runs.runner",
    "simulate": "runs.runner",
    "trace": "runs.runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("negosim")
        except PackageNotFoundError:  # running from a source tree that is not installed
            v = "0+unknown"
        globals()["__version__"] = v
        return v
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


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
