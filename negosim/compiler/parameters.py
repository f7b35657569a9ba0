"""The parameter table: every parameter of a scenario, worked out once at compile time.

:mod:`negosim.compiler.compile` builds one :class:`Parameter` per declared
parameter (``CompiledScenario.parameters``); ``negosim params``, the HTML
report, ``negosim explain`` and sweep designs all read it, so they agree with
what the engine runs on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..scenario import schema
from ..scenario.units import format_duration
from . import dists


@dataclass(frozen=True)
class Uncertainty:
    """A parameter's uncertainty distribution: as written, and compiled.

    ``sample`` is its inverse CDF with every value resolved (hours for
    durations); ``low``/``high`` bound its support (None where unbounded).
    """

    spec: schema.Dist
    text: str  # as written, e.g. "triangular(min=0.05, mode=0.25, max=0.6)"
    sample: dists.Sampler = field(compare=False, repr=False)
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Origin:
    """Where one of a parameter's values is written: ``field`` (``default``, ``low``,
    ``high``, ``uncertainty``, ``source``, ``assumption``) in ``file`` at ``line``, the
    case or a base it extends; or given with ``--set`` (``file`` is then ``--set ...``
    and ``line`` None)."""

    field: str
    file: str
    line: int | None


ORIGIN_FIELDS = ("default", "low", "high", "uncertainty", "source", "assumption")
"""The values of a parameter whose origin ``negosim params`` reports."""


@dataclass(frozen=True)
class Parameter:
    """One parameter, worked out once by the compiler for everything that reads it.

    ``value`` is the compiled default (hours for durations, per day for rates);
    ``written`` is the default as written in the file (or given with ``--set``).
    ``kind`` is the effective kind: a ``number`` whose default is written as a
    duration (``36h``) is a duration. ``low``/``high`` are the range a reader
    sees and a sweep samples: the declared bounds, else the uncertainty
    distribution's support, else what the kind implies (0-1 for probabilities,
    at least 0 for rates and durations); None where unbounded. ``path`` is where
    it is declared in the file (``params.NAME``), ``file``/``line`` its position
    when compiled from a file; ``origins`` where each of its values written
    (:data:`ORIGIN_FIELDS`) comes from, which differs between them when a case
    overrides part of a base's parameter.
    """

    name: str
    value: float
    kind: str  # "number" | "probability" | "duration" | "rate"
    written: float | str
    low: float | None
    high: float | None
    uncertainty: Uncertainty | None
    source: str | None
    assumption: str | None
    actor: str | None
    text: str | None
    path: str
    file: str | None = None
    line: int | None = None
    origins: tuple[Origin, ...] = ()

    @property
    def unit(self) -> str | None:
        """The unit of ``value``: ``hours`` for durations, ``per day`` for rates, else None."""
        return {"duration": "hours", "rate": "per day"}.get(self.kind)

    @property
    def display(self) -> str:
        """The value as a person would write it: ``12h`` for durations, else ``0.15``."""
        return format_duration(self.value) if self.kind == "duration" else f"{self.value:g}"

    def to_json(self) -> dict[str, Any]:
        """The ``negosim params --format json`` object (docs/cli.md lists its fields)."""
        return {
            "name": self.name,
            "default": self.value,
            "display": self.display,
            "kind": self.kind,
            "unit": self.unit,
            "low": self.low,
            "high": self.high,
            "uncertainty": self.uncertainty.text if self.uncertainty else None,
            "actor": self.actor,
            "text": self.text,
            "source": self.source,
            "assumption": self.assumption,
            "file": self.file,
            "line": self.line,
            "origins": {o.field: {"file": o.file, "line": o.line} for o in self.origins},
        }
