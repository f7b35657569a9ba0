"""negosim: simulate the negotiation of a diplomatic meeting.

The public API is small (docs/api.md documents every name in ``__all__``)::

    from negosim import compare, load, simulate, sweep
    munich = load("scenarios/munich.yaml", set={"p_us_formal_request": 0.5})
    estimate = simulate(munich, runs=10_000, seed=1)
    print(estimate.p_meeting, estimate.ci95)
    estimate.to_dict()          # the JSON of `negosim run --format json`
    estimate.to_frame()         # a pandas DataFrame (pip install 'negosim[pandas]')
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
    from .api import Trace, compare, explain, load, load_string, simulate, sweep, trace
    from .compiler.loader import validate
    from .compiler.tables import CompiledScenario
    from .engine.simulation import Engine, Row
    from .extras import MissingExtra
    from .runs.compare import Comparison
    from .runs.results import Estimate, Tally, wilson
    from .runs.runner import rows
    from .runs.sweepresult import Sweep

# The rest of the API is imported on first use, so that `negosim --version` and `--help`
# do not pay for pydantic, numpy and simpy (see docs/dependencies.md).
_LAZY = {
    "load": "api",
    "load_string": "api",
    "simulate": "api",
    "compare": "api",
    "sweep": "api",
    "trace": "api",
    "explain": "api",
    "Trace": "api",
    "validate": "compiler.loader",
    "CompiledScenario": "compiler.tables",
    "Engine": "engine.simulation",
    "Row": "engine.simulation",
    "MissingExtra": "extras",
    "Comparison": "runs.compare",
    "Estimate": "runs.results",
    "Tally": "runs.results",
    "wilson": "runs.results",
    "rows": "runs.runner",
    "Sweep": "runs.sweepresult",
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
    "Comparison",
    "CompiledScenario",
    "Engine",
    "Estimate",
    "ExpressionError",
    "InputError",
    "MissingExtra",
    "NegosimError",
    "Problem",
    "Row",
    "ScenarioError",
    "SimulationError",
    "Sweep",
    "Tally",
    "Trace",
    "UsageError",
    "compare",
    "explain",
    "load",
    "load_string",
    "rows",
    "simulate",
    "sweep",
    "trace",
    "validate",
    "wilson",
    "__version__",
]
