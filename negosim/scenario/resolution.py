"""Resolution files: what happened in a resolved case, kept apart from its scenario.

A scenario is modelled only from reporting before its outcome; what then
happened lives in ``resolutions/<case-id>.yaml``, which ``negosim run`` never
reads and ``negosim backtest`` scores forecasts against::

    case: munich-2023          # the scenario's id (or its file's stem)
    met: true
    date: 2023-02-18           # venue-local ISO date (absent if not met)
    part_of_day: evening       # night 00-06, morning 06-12, afternoon 12-18, evening 18-24
    length_minutes: 60         # optional
    sources:
      - {title: ..., outlet: ..., date: 2023-02-19, url: https://...}

Validated with pydantic (unknown keys are errors) and reported at
``FILE:LINE:COL`` like scenario files.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..errors import Problem, ScenarioError
from .yamlsource import load_yaml_file, problems_from_validation_error

MAX_RESOLUTIONS = 1_000
"""Resolution files read from one directory at most (every input may be hostile)."""

PartOfDay = Literal["night", "morning", "afternoon", "evening"]
"""Venue-local parts of the day, as in ``run``'s by-part table: 00-06, 06-12, 12-18, 18-24."""


def _iso_date(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO date such as 2023-02-18, found {text!r}") from None
    if len(text) != 10:
        raise ValueError(f"expected an ISO date such as 2023-02-18, found {text!r}")
    return text


IsoDate = Annotated[str, StringConstraints(max_length=10), pydantic.AfterValidator(_iso_date)]
OneLine = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\n\r]*$")]


class ResolutionSource(BaseModel):
    """A report of the outcome: title, outlet, date, and a URL where one exists."""

    model_config = ConfigDict(extra="forbid")

    title: OneLine
    outlet: OneLine
    date: IsoDate
    url: Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://\S+$")] | None = None


class Resolution(BaseModel):
    """What happened in one case (see the module's docstring for the file format)."""

    model_config = ConfigDict(extra="forbid")

    case: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
    met: bool
    date: IsoDate | None = None
    part_of_day: PartOfDay | None = None
    length_minutes: Annotated[float, Field(gt=0, le=100_000)] | None = None
    sources: Annotated[list[ResolutionSource], Field(min_length=1, max_length=50)]

    @model_validator(mode="after")
    def _when_if_met(self) -> Resolution:
        if self.met and (self.date is None or self.part_of_day is None):
            raise ValueError("a meeting that was held needs its 'date' and 'part_of_day'")
        if not self.met and (
            self.date is not None or self.part_of_day is not None or self.length_minutes
        ):
            raise ValueError("a meeting that was not held has no 'date', 'part_of_day' or length")
        return self


def load_resolution(path: str | os.PathLike[str]) -> Resolution:
    """Read and validate one resolution file; ScenarioError with located problems if invalid."""
    doc = load_yaml_file(path)
    if not isinstance(doc.data, dict) or "case" not in doc.data or "met" not in doc.data:
        raise ScenarioError(
            [Problem(doc.file, 1, 1, "", "not a resolution file (no 'case' and 'met' keys)")]
        )
    try:
        return Resolution.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        raise ScenarioError(problems_from_validation_error(exc, doc)) from None


def load_resolutions(path: str | os.PathLike[str]) -> dict[str, Resolution]:
    """Every resolution in a file or a directory of ``*.yaml`` files, keyed by case.

    ScenarioError listing every problem (invalid files, a case given twice).
    """
    p = Path(path)
    files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    if len(files) > MAX_RESOLUTIONS:
        raise ScenarioError(
            f"{path}: {len(files)} resolution files; at most {MAX_RESOLUTIONS} are read"
        )
    out: dict[str, Resolution] = {}
    problems: list[Problem] = []
    for f in files:
        try:
            res = load_resolution(f)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        if res.case in out:
            problems.append(Problem(os.fspath(f), 1, 1, "case", f"case {res.case!r} given twice"))
        out[res.case] = res
    if problems:
        raise ScenarioError(problems)
    return out
