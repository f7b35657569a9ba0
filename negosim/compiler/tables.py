"""The runtime tables a compiled scenario consists of, which the engine runs on.

:mod:`negosim.compile` builds them once per scenario from the validated file;
:mod:`negosim.engine` reads them for every replication and never changes
them. Everything is resolved: slots are list indexes, values are floats
(hours for times), expressions are plain functions, distributions are
inverse-CDF samplers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from transitions import Machine

from ..display import block, lines, table
from ..errors import Problem
from ..scenario import schema
from ..scenario.units import hours_between
from . import dists
from .parameters import Parameter

Value = Callable[[list[Any]], Any]
"""A compiled expression or constant: evaluated on the slot list."""


@dataclass(frozen=True)
class Assign:
    """Set fact slot ``slot`` to ``value(s)``, clamped to ``[low, high]`` for numbers.

    An actor's presence is a slot too: ``fact`` is then ``present:ACTOR``; so is
    whether effects let it act: ``available:ACTOR``."""

    slot: int
    fact: str
    value: Value
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Outcome:
    """One option of an action: its weight and its effects."""

    id: str
    weight: Value | float
    sets: tuple[Assign, ...]
    trigger: str | None
    text: str


@dataclass(frozen=True)
class Clock:
    """A timed thing that fires when enabled long enough: an action or a random event.

    ``states[i]`` says whether the protocol state with index ``i`` allows it;
    ``actor_windows`` lists the window slots in which its actor can act (None:
    always); ``requires`` pairs precondition indexes with their compiled
    expressions; ``avail`` is the slot of the actor's availability override when an
    effect can change it (None: it is always true).
    """

    index: int
    id: str
    kind: str  # "action" | "event"
    actor: str | None
    states: tuple[bool, ...]
    actor_windows: tuple[int, ...] | None
    guard: Value | None
    requires: tuple[tuple[int, Value], ...]
    delay: dists.Sampler
    options: tuple[Outcome, ...]
    text: str
    chance: bool = False  # options are chance outcomes, not the actor's choice
    reads: frozenset[int] = frozenset()  # slots its guard and preconditions read
    test: Callable[[list[Any], int], bool] | None = None  # enabled(s, state), all inlined
    avail: int | None = None  # slot of the actor's availability override (None: never changes)


@dataclass(frozen=True)
class Scheduled:
    """A scheduled event: a fixed time (hours), optional jitter, effects, and an
    optional guard: it happens at its time only if the guard holds then."""

    id: str
    at: float
    jitter: dists.Sampler | None
    sets: tuple[Assign, ...]
    trigger: str | None
    text: str
    guard: Value | None = None
    guard_text: str | None = None  # the guard as written, for the trace


@dataclass(frozen=True)
class Watched:
    """An event with ``when:``: it happens at the instant ``cond`` turns true."""

    id: str
    cond: Value
    sets: tuple[Assign, ...]
    trigger: str | None
    text: str
    cond_text: str  # the condition as written (on one line), for the trace
    reads: frozenset[int] = frozenset()  # the slots ``cond`` reads
    code: str = ""  # ``cond`` as Python code over ``s`` (for the batch engine)


@dataclass(frozen=True)
class Stay:
    """An actor's presence at the venue: slot, period, optional arrival/departure delays."""

    actor: str
    slot: int
    start: float
    end: float
    arrival: dists.Sampler | None
    departure: dists.Sampler | None
    entry: int = 0  # which of the actor's ``present:`` entries it comes from (for messages)


@dataclass(frozen=True)
class Edge:
    """A window opening (value True) or closing (False) at a fixed time."""

    at: float
    slot: int
    window: str
    value: bool


@dataclass(repr=False)
class CompiledScenario:
    """Everything the engine needs, resolved to indexes, floats and functions.

    What :func:`negosim.load` returns: pass it to ``simulate``, ``compare``,
    ``sweep``, ``trace`` or ``explain``. ``source`` is the file it was read from
    (None for :func:`negosim.load_string`), ``sets`` the overrides applied.

    >>> from negosim import load
    >>> load("scenarios/tutorial.yaml").id
    'tutorial'
    """

    model: schema.Scenario
    tz: ZoneInfo
    start: datetime
    horizon: float  # hours after start
    slot_names: list[str]
    initial: list[Any]  # the slot list at time 0
    states: list[str]
    initial_state: int
    success: frozenset[int]
    failure: frozenset[int]
    machine: Machine  # the protocol as `transitions` defines it (no model attached)
    clocks: tuple[Clock, ...]
    scheduled: tuple[Scheduled, ...]
    stays: tuple[Stay, ...]
    edges: tuple[Edge, ...]
    preconditions: list[str]
    max_events: int
    params: dict[str, float] = field(default_factory=dict)
    parameters: tuple[Parameter, ...] = ()  # the parameter table, in file order
    # Each window's periods (hours after start): one for a plain window, one per
    # day for recurring hours, the union of its members' for a group.
    windows: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    source: str | None = None  # the file read (None if from text or a model)
    source_text: str | None = None  # the YAML text, for scenarios loaded from a string
    sets: list[tuple[str, Any]] = field(default_factory=list)  # the overrides applied
    # What the file uses (for negosim.compiler.lints): the names each expression reads,
    # keyed by its location, and the parameters named where a quantity is expected.
    expr_names: dict[tuple[str | int, ...], frozenset[str]] = field(default_factory=dict)
    quantity_params: frozenset[str] = frozenset()
    # For each precondition (in ``preconditions`` order): the clocks whose effects can
    # change what it reads (the blocking report's "decisions" about it).
    deciders: tuple[frozenset[int], ...] = ()
    whens: tuple[Watched, ...] = ()  # events with ``when:``, in file order
    warnings: list[Problem] = field(default_factory=list)  # what the lints found at load

    def __repr__(self) -> str:
        where = self.source or "<string>"
        return lines(
            f"CompiledScenario({self.id!r} from {where})",
            f"  {self.model.title}",
            f"  states: {', '.join(self.states)}",
            f"  parameters: {', '.join(p.name for p in self.parameters)}",
        )

    def _repr_html_(self) -> str:
        head = table(
            ["id", "file", "start", "horizon (h)", "states", "preconditions"],
            [[self.id, self.source or "<string>", self.start.isoformat(timespec="minutes"),
              f"{self.horizon:g}", " > ".join(self.states), ", ".join(self.preconditions)]],
            self.model.title,
        )  # fmt: skip
        params = table(
            ["parameter", "value", "low", "high", "source or assumption"],
            [
                [
                    p.name,
                    p.written,
                    "" if p.low is None else f"{p.low:g}",
                    "" if p.high is None else f"{p.high:g}",
                    p.source or p.assumption or "",
                ]
                for p in self.parameters
            ],  # fmt: skip
        )
        return block(f"negosim scenario: {self.id}", head, params)

    @property
    def id(self) -> str:
        """The scenario's ``id`` as written in the file."""
        return self.model.id

    @property
    def outcome_states(self) -> frozenset[int]:
        """Indexes of the protocol states that end a replication: success or failure."""
        return self.success | self.failure


def day_parts(cs: CompiledScenario) -> Iterator[tuple[float, datetime]]:
    """Venue-local 6-hour marks (00, 06, 12, 18) from the start's day to the horizon.

    Yields (hours after start, local datetime); used to bucket meeting times by
    day and part of day in local time, DST included.
    """
    local = cs.start.astimezone(cs.tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    while True:
        for h in (0, 6, 12, 18):
            mark = (day + timedelta(hours=h)).replace(tzinfo=cs.tz)
            at = hours_between(cs.start, mark)
            if at >= cs.horizon:
                return
            yield at, mark
        day += timedelta(days=1)
