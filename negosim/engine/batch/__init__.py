"""The vectorised batch engine (lockstep replications over numpy arrays); see
:mod:`negosim.engine.batch.engine` and ``docs/semantics.md``."""

from .engine import BatchEngine, BatchResult
from .vexpr import Unsupported

__all__ = ["BatchEngine", "BatchResult", "Unsupported"]
