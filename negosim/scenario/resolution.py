"""What happened in a real case: the resolution file a backtest scores against.

A resolution lives in ``resolutions/<case-id>.yaml``, apart from the scenario:
``negosim run`` never reads it, so a model cannot be tuned to its outcome by
accident. The format (see ``resolutions/README.md``)::

    case: munich-2023          # the scenario's id
    met: true                  # did the meeting the scenario asks about happen?
    date: 2023-02-18           # venue-local date (only when met)
    part_of_day: evening       # when it began: night 00-06, morning 06-12, afternoon 12-18,
                               # evening 18-24; left out if the reporting does not say
    length_minutes: 60         # if known (only when met)
    sources:                   # as a scenario's sources: title, outlet, date, url
      ap: {title: ..., outlet: ..., date: 2023-02-18, url: https://...}

Read with :func:`load_resolution`; a problem is a
:class:`~negosim.errors.ScenarioError` located as ``FILE:LINE:COL``.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated, Literal

import pydantic
from pydantic import Field, StringConstraints, field_validator, model_validator

from negosim.errors import ScenarioError

from .schema import Identifier, SourceRef, Strict
from .yamlsource import load_yaml_file, problems_from_validation_error

__all__ = ["PARTS_OF_DAY", "Resolution", "load_resolution"]

PARTS_OF_DAY = ("night", "morning", "afternoon", "evening")
"""Venue-local parts of the day, as negosim's results name them: 00-06, 06-12, 12-18, 18-24."""


class Resolution(Strict):
    """The outcome of one case: whether the meeting happened, when, how long, and sources."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    case: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)] = (
        Field(description="The id of the scenario this resolves")
    )
    met: bool = Field(description="Whether the meeting the scenario asks about took place")
    date: dt.date | None = Field(default=None, description="Venue-local date of the meeting")
    part_of_day: Literal["night", "morning", "afternoon", "evening"] | None = Field(
        default=None,
        description="When it began, venue-local: night 00-06, morning 06-12, afternoon 12-18, "
        "evening 18-24; absent if the reporting does not say",
    )
    length_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] | None = Field(
        default=None, description="How long the meeting lasted, if known"
    )
    sources: Annotated[dict[Identifier, SourceRef], Field(min_length=1)] = Field(
        description="Reporting of the outcome: title, outlet, date, url"
    )

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"expected a date YYYY-MM-DD, found {value!r}") from None
        return value

    @model_validator(mode="after")
    def _when_only_if_met(self) -> Resolution:
        if self.met and self.date is None:
            raise ValueError("a meeting that took place needs its 'date'")
        if not self.met and (
            self.date is not None or self.part_of_day is not None or self.length_minutes is not None
        ):
            raise ValueError(
                "a meeting that did not take place has no 'date', 'part_of_day' or 'length_minutes'"
            )
        return self


def load_resolution(path: str | os.PathLike[str]) -> Resolution:
    """Read and validate one resolution file; raise ScenarioError (FILE:LINE:COL) if it is wrong."""
    doc = load_yaml_file(path)
    if not isinstance(doc.data, dict):
        raise ScenarioError([doc.problem((), "expected a mapping of keys (case, met, date, ...)")])
    try:
        return Resolution.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        raise ScenarioError(problems_from_validation_error(exc, doc)) from None
