"""The scenario file format, as pydantic v2 models.

This module only says what a well-formed file looks like: keys, types and
ranges that can be checked one value at a time. Everything that needs the
whole file (references between sections, expressions, calendar arithmetic)
is checked once, right after, by :mod:`negosim.compile`, which also turns the
model into the engine's runtime tables. ``negosim schema`` prints the JSON
Schema generated from these models, for editors.

Named things (actors, parameters, facts, actions, events, preconditions,
options, windows) are mappings keyed by their id, so every value in a file
has a readable dotted path such as ``actions.china_responds.delay.median``,
used in error messages and by ``--set``.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

from .units import is_duration, quote_short

Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64),
]
"""A name usable in expressions: letters, digits and underscores."""


def _quantity_text(value: Any) -> Any:
    if isinstance(value, str) and not (
        is_duration(value) or value.isidentifier() or _is_number(value)
    ):
        raise ValueError(
            "expected a number, a duration (36h, 2d, 90min) or a parameter name, "
            f"found {quote_short(value)}"
        )
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, found {'true' if value else 'false'}")
    return value


Number = Annotated[StrictFloat, BeforeValidator(_not_bool)]
"""A number: true/false is refused, not read as 1/0 (YAML and --set alike)."""
NumberOrText = Annotated[StrictFloat | str, BeforeValidator(_not_bool)]
"""A number, or text (a duration, an expression) that is checked later."""

Quantity = Annotated[StrictFloat | str, BeforeValidator(_not_bool), AfterValidator(_quantity_text)]
"""A number, a duration such as ``36h`` (in hours), or the name of a parameter."""

Expr = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _one_line(text: str) -> str:
    text = text.strip()
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI for c in text):
        raise ValueError("must be one line of text (no line breaks or control characters)")
    return text


OneLine = Annotated[str, AfterValidator(_one_line)]
"""A title: it is echoed in one-line results, tables, diagrams and reports."""
"""An expression in negosim's restricted language (see docs/expressions.md)."""

SetValue = bool | float | str
"""A fact assignment: a literal, an enum value, or an expression."""


class Strict(BaseModel):
    """Base of every model: unknown keys are errors, ids are exact."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# --- distributions ---------------------------------------------------------


class Fixed(Strict):
    """Always the same value."""

    dist: Literal["fixed"]
    value: Quantity


class Uniform(Strict):
    """Uniform between ``low`` and ``high``."""

    dist: Literal["uniform"]
    low: Quantity
    high: Quantity


class Triangular(Strict):
    """Triangular with minimum, most likely value and maximum."""

    dist: Literal["triangular"]
    min: Quantity
    mode: Quantity
    max: Quantity


class Exponential(Strict):
    """Exponential (memoryless) with the given mean."""

    dist: Literal["exponential"]
    mean: Quantity


class LogNormal(Strict):
    """Lognormal elicited as analysts do: the median and the 90th percentile."""

    dist: Literal["lognormal"]
    median: Quantity
    p90: Quantity


class Empirical(Strict):
    """One of ``values``, with optional relative ``weights`` (default: equal)."""

    dist: Literal["empirical"]
    values: Annotated[list[Quantity], Field(min_length=1)]
    weights: list[Annotated[StrictFloat, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _same_length(self) -> Empirical:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(
                    f"weights has {len(self.weights)} entries but values has {len(self.values)}"
                )
            if sum(self.weights) <= 0:
                raise ValueError("weights must not all be zero")
        return self


Dist = Annotated[
    Fixed | Uniform | Triangular | Exponential | LogNormal | Empirical,
    Field(discriminator="dist"),
]


# --- calendar and actors -----------------------------------------------------


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Window(Strict):
    """A named period: ``start`` and either ``end`` or ``duration``. Or recurring
    hours: ``daily`` (``"08:00-22:00"``, venue-local) on each date from ``start`` to
    ``end`` (both included), optionally only on the weekdays in ``days``. Or a group
    of other windows (``group``), open while any of them is."""

    start: str | None = Field(
        default=None, description="When it opens (a datetime or a duration after the "
        "calendar's start); with 'daily', the first date"
    )  # fmt: skip
    end: str | None = Field(default=None, description="When it closes; with 'daily', the last date")
    duration: str | None = None
    daily: str | None = Field(
        default=None,
        description="Venue-local hours repeating each day from 'start' to 'end', e.g. "
        "'08:00-22:00' (an end at or before the start is on the next day)",
    )
    days: list[Weekday] | None = Field(
        default=None, description="With 'daily': only on these weekdays (mon ... sun)"
    )
    group: list[Identifier] | None = Field(
        default=None,
        description="Other windows: this one is open while any of them is (a window group)",
    )
    text: str | None = None
    source: str | None = None
    assumption: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Window:
        if self.group is not None:
            given = [k for k in ("start", "end", "duration", "daily", "days")
                     if getattr(self, k) is not None]  # fmt: skip
            if given:
                raise ValueError(f"a group lists windows only; remove {', '.join(given)}")
            if not self.group:
                raise ValueError("a group lists at least one window")
            return self
        if self.start is None:
            raise ValueError("give 'start' (and 'end' or 'duration'), or 'group'")
        if self.daily is not None:
            if self.duration is not None:
                raise ValueError(
                    "'duration' does not go with 'daily' (the hours say how long each day's "
                    "window is): remove it, and give 'end' (the last date)"
                    if self.end is None
                    else "'duration' does not go with 'daily' (the hours say how long each "
                    "day's window is): remove it"
                )
            if self.end is None:
                raise ValueError("with 'daily', give 'start' and 'end' (the first and last date)")
            return self
        if self.days is not None:
            raise ValueError("'days' applies to recurring windows (with 'daily') only")
        if (self.end is None) == (self.duration is None):
            raise ValueError("give exactly one of 'end' and 'duration'")
        return self


class Calendar(Strict):
    """Where and when: the venue's time zone, the simulated period, windows."""

    timezone: str = Field(description="IANA time zone of the venue, e.g. Europe/Berlin")
    start: str = Field(description="Start of the simulated period (venue-local)")
    horizon: str = Field(
        description="When the question closes: a datetime, or a duration after start"
    )
    windows: dict[Identifier, Window] = {}


class Presence(Strict):
    """One stay at the venue: a window (or from/until), with uncertain arrival."""

    window: Identifier | None = None
    from_: str | None = Field(default=None, alias="from")
    until: str | None = None
    arrival: Dist | None = Field(
        default=None, description="Delay after the start of the stay before the actor is there"
    )
    departure: Dist | None = Field(
        default=None, description="How long before the end of the stay the actor leaves"
    )

    @model_validator(mode="after")
    def _window_or_times(self) -> Presence:
        if self.window is None and (self.from_ is None or self.until is None):
            raise ValueError("give 'window', or both 'from' and 'until'")
        if self.window is not None and (self.from_ is not None or self.until is not None):
            raise ValueError("give 'window' or 'from'/'until', not both")
        return self


class Actor(Strict):
    """A party to the negotiation."""

    name: str
    short: str | None = Field(
        default=None, description="Short label for timelines and tables (default: the id)"
    )
    text: str | None = None
    present: list[Presence] = Field(
        default_factory=list, description="When the actor is at the venue"
    )
    available: list[Identifier] | None = Field(
        default=None,
        description="Windows in which the actor can act; absent means always",
    )


# --- parameters and facts -----------------------------------------------------


class Param(Strict):
    """A named number with its provenance; overridable with --set NAME=VALUE."""

    default: NumberOrText
    kind: Literal["number", "probability", "duration", "rate"] = "number"
    low: NumberOrText | None = None
    high: NumberOrText | None = None
    uncertainty: Dist | None = Field(
        default=None,
        description="How unsure the value is; run --uncertainty draws it (unless pinned "
        "with --set), sweeps sample it",
    )
    actor: Identifier | None = None
    text: str | None = None
    source: str | None = Field(default=None, description="The sentence this number comes from")
    assumption: str | None = Field(default=None, description="Why this number, if not sourced")

    @model_validator(mode="after")
    def _provenance(self) -> Param:
        if not (self.source or self.assumption):
            raise ValueError("give a 'source' (the sentence it comes from) or an 'assumption' note")
        return self


class Fact(Strict):
    """A piece of shared world state."""

    type: Literal["bool", "number", "enum"]
    initial: bool | StrictFloat | str
    values: list[Identifier] | None = None
    low: Number | None = None
    high: Number | None = None
    text: str | None = None
    source: str | None = None
    assumption: str | None = None


# --- protocol, preconditions, actions, events ------------------------------------


class Transition(Strict):
    """A named protocol transition (a `transitions` trigger)."""

    trigger: Identifier
    source: Identifier | list[Identifier]
    dest: Identifier


class Outcomes(Strict):
    """Which protocol states end a replication: held (success) or failed."""

    success: Annotated[list[Identifier], Field(min_length=1)] = Field(
        description="States in which the meeting has been held"
    )
    failure: list[Identifier] = Field(
        default_factory=list, description="States in which it definitively failed"
    )


class Protocol(Strict):
    """The meeting's state machine: states, the initial one, transitions, outcomes."""

    states: dict[Identifier, str | None] | list[Identifier]
    initial: Identifier
    transitions: Annotated[list[Transition], Field(min_length=1)]
    outcomes: Outcomes

    def state_names(self) -> list[str]:
        """The state ids in the order written (``states`` as a list or a mapping)."""
        return list(self.states)


class Precondition(Strict):
    """A condition one actor insists on, in plain language and as an expression."""

    text: str
    insisted_by: Identifier
    holds: Expr
    source: str | None = None
    assumption: str | None = None


class Effects(Strict):
    """What happens when something fires: facts set, actors arriving or leaving, a
    protocol trigger."""

    set: dict[Identifier, SetValue] = Field(default_factory=dict)
    present: dict[Identifier, bool] = Field(
        default_factory=dict,
        description="Actors who arrive (true) or leave (false) the venue at once; their "
        "stays' later arrivals and departures still happen",
    )
    available: dict[Identifier, bool] = Field(
        default_factory=dict,
        description="Actors who become unable (false) or able again (true) to act, from "
        "now until an effect says otherwise; their 'available:' windows still apply",
    )
    trigger: Identifier | None = None


class Option(Effects):
    """One choice of an action, picked with probability proportional to its weight."""

    weight: Annotated[StrictFloat | Expr, BeforeValidator(_not_bool)] = 1.0
    text: str | None = None
    source: str | None = None
    assumption: str | None = None


class Action(Effects):
    """Something an actor can do; when enabled, it fires after a random delay."""

    actor: Identifier
    text: str | None = None
    from_: Identifier | list[Identifier] | None = Field(
        default=None, alias="from", description="Protocol states in which it is possible"
    )
    guard: Expr | None = None
    requires: list[Identifier] = Field(default_factory=list)
    delay: Dist
    options: dict[Identifier, Option] = Field(default_factory=dict)
    chance: bool = Field(
        default=False,
        description="The options are chance outcomes (how a round of talks goes), not the "
        "actor's choice: negosim play does not ask the player",
    )
    source: str | None = None
    assumption: str | None = None

    @model_validator(mode="after")
    def _options_or_effects(self) -> Action:
        if self.options and (self.set or self.trigger or self.present or self.available):
            raise ValueError(
                "put 'set'/'present'/'available'/'trigger' inside each option when 'options' "
                "are given"
            )
        return self


class Event(Effects):
    """An outside shock: scheduled (``at``, optional ``jitter``), random (``rate`` per
    day), or triggered by a fact change (``when``: at the instant a condition turns true).

    A scheduled event with a ``guard`` happens at its time only if the guard holds
    then; a random one is possible while its guard holds (and its window is open).
    """

    text: str | None = None
    at: str | None = None
    jitter: Dist | None = None
    rate: NumberOrText | None = Field(default=None, description="Expected occurrences per day")
    when: Expr | None = Field(
        default=None,
        description="Happens at the instant this condition turns from false to true (and "
        "at the start if it is true then); again only after it has been false",
    )
    window: Identifier | None = None
    guard: Expr | None = Field(
        default=None,
        description="Random events: possible only while it holds; scheduled events: "
        "happen at their time only if it holds then",
    )
    source: str | None = None
    assumption: str | None = None

    @model_validator(mode="after")
    def _at_or_rate(self) -> Event:
        kinds = [k for k in ("at", "rate", "when") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of 'at' (scheduled), 'rate' (random) and 'when' (when a "
                "condition turns true)"
            )
        if self.when is not None:
            extra = [k for k in ("window", "guard", "jitter") if getattr(self, k) is not None]
            if extra:
                raise ValueError(
                    f"'{extra[0]}' does not apply to an event with 'when': put the whole "
                    "condition in 'when' (e.g. when: \"talks_failed and in_window('day')\")"
                )
            return self
        if self.at is not None and self.window is not None:
            raise ValueError(
                "'window' applies to random events (with 'rate') only; for a scheduled "
                "event write guard: in_window('...')"
            )
        if self.rate is not None and self.jitter is not None:
            raise ValueError("'jitter' applies to scheduled events (with 'at') only")
        return self


class Settings(Strict):
    """How a replication is run: the event limit that stops one caught in a loop."""

    max_events: Annotated[StrictInt, Field(ge=1, le=10_000_000)] = Field(
        default=10_000,
        description="Events one replication may process before it is stopped as a loop",
    )


class SourceRef(Strict):
    """A document the scenario is built from."""

    title: OneLine
    outlet: str | None = None
    date: str | None = None
    url: str | None = None
    file: str | None = None


def _iso_date(text: str) -> str:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected a date YYYY-MM-DD, found {quote_short(text)}") from None
    return text.strip()


class Scenario(Strict):
    """A negotiation scenario: one YAML file (and the bases it extends)."""

    extends: str | None = Field(
        default=None,
        description="A base scenario file (path relative to this file) whose values this "
        "file's own extend and override: mappings merge key by key, lists and scalars "
        "are replaced",
    )
    abstract: bool = Field(
        default=False,
        description="This file is a base to extend, not a scenario to run (parts may be "
        "missing); not inherited by the files that extend it",
    )
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
    title: OneLine
    description: str = ""
    as_of: Annotated[str, AfterValidator(_iso_date)] | None = Field(
        default=None,
        description="The day (YYYY-MM-DD) the case is modelled as of: only reporting "
        "published by then is used",
    )
    sources: dict[Identifier, SourceRef] = Field(default_factory=dict)
    calendar: Calendar
    params: dict[Identifier, Param] = Field(default_factory=dict)
    facts: dict[Identifier, Fact] = Field(default_factory=dict)
    actors: Annotated[dict[Identifier, Actor], Field(min_length=1)]
    protocol: Protocol
    preconditions: dict[Identifier, Precondition] = Field(default_factory=dict)
    actions: Annotated[dict[Identifier, Action], Field(min_length=1)]
    events: dict[Identifier, Event] = Field(default_factory=dict)
    settings: Settings = Field(default_factory=Settings)


def model_schema() -> dict[str, Any]:
    """The JSON Schema of a complete scenario, one definition per model (the generated
    format reference is made from it; :func:`json_schema` builds on it)."""
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "negosim scenario"
    return schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the scenario format (``negosim schema``).

    A file with ``extends:`` or ``abstract: true`` gives only part of a scenario
    (its base, or the case that extends it, gives the rest), so for it nothing is
    required, at any depth: every value written is still checked (types, unknown
    keys, ranges), but a missing one is not an error. Other files must be complete.
    """
    full = model_schema()
    defs = full.pop("$defs", {})
    required = full.pop("required", [])
    partial = _partial(full["properties"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "negosim scenario",
        "description": full.get("description", ""),
        "type": "object",
        "properties": partial,
        "additionalProperties": False,
        "if": {
            "anyOf": [
                {"required": ["extends"]},
                {"required": ["abstract"], "properties": {"abstract": {"const": True}}},
            ]
        },
        "else": {"required": required, "properties": full["properties"]},
        "$defs": {**defs, **{_PARTIAL + name: _partial(d) for name, d in defs.items()}},
    }


_PARTIAL = "Partial"


def _partial(node: Any) -> Any:
    """``node`` (part of a JSON Schema) with nothing required: no ``required`` lists, and
    references and discriminated unions (``oneOf`` on ``dist``) pointing at the partial
    definitions, as ``anyOf`` (a distribution given in part may match several kinds)."""
    if isinstance(node, list):
        return [_partial(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "required" and isinstance(value, list):
            continue
        if key == "discriminator" and isinstance(value, dict):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out[key] = "#/$defs/" + _PARTIAL + value.removeprefix("#/$defs/")
        elif key == "oneOf":
            out["anyOf"] = _partial(value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _partial(v) for name, v in value.items()}
        else:
            out[key] = _partial(value)
    return out
