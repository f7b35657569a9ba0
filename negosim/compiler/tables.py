"""The runtime tables a compiled scenario consists of, which the engine runs on.

:mod:`negosim.compile` builds them once per scenario from the validated file;
:mod:`negosim.engine` reads them for every replication and never changes
them. Everything is resolved: slots are list indexes, values are floats
(hours for times), expressions are plain functions, distributions are
inverse-CDF samplers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
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


class Structure:
    """The identity of a compiled scenario's structure: everything but parameter values.

    :func:`negosim.compiler.bind.bind` gives a scenario with other parameter values
    the same ``Structure`` as the one it binds, so what is built from the structure
    alone (the generated engine's code, the batch engine's compiled expressions) is
    made once and shared by every point of a sweep. Compared by identity; weakly
    referenceable, so caches keyed by it end with the scenarios that hold it.
    """

    __slots__ = ("__weakref__",)


@dataclass(frozen=True)
class ParamSite:
    """A value of the runtime tables built from parameter values, rebuilt by ``bind``.

    ``loc`` is where it is written (``("actions", "us_reply", "delay")``), ``spec``
    what is written there (a distribution, or a rate), ``what`` its kind
    (``delay``, ``jitter``, ``arrival``, ``departure``, ``rate``) and ``targets``
    the indexes of the clocks (delay, rate), stays (arrival, departure) or
    scheduled events (jitter) that hold it.
    """

    loc: tuple[str | int, ...]
    spec: Any
    what: str
    targets: tuple[int, ...]


def _frozen_map(x: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """A read-only view of a copy of ``x`` (kept as is if it already is one)."""
    return x if isinstance(x, MappingProxyType) else MappingProxyType(dict(x))


@dataclass(frozen=True, repr=False, eq=False)
class CompiledScenario:
    """Everything the engine needs, resolved to indexes, floats and functions.

    What :func:`negosim.load` returns: pass it to ``simulate``, ``compare``,
    ``sweep``, ``trace`` or ``explain``. ``source`` is the file it was read from
    (None for :func:`negosim.load_string`), ``sets`` the overrides applied.

    Immutable: a frozen dataclass whose containers are tuples and read-only
    mappings, so one compiled scenario can be shared by threads, engines and
    sweep points. :meth:`with_values` gives one with other parameter values.

    >>> from negosim import load
    >>> load("scenarios/tutorial.yaml").id
    'tutorial'
    """

    model: schema.Scenario
    tz: ZoneInfo
    start: datetime
    horizon: float  # hours after start
    slot_names: tuple[str, ...]
    initial: tuple[Any, ...]  # the slot list at time 0
    states: tuple[str, ...]
    initial_state: int
    success: frozenset[int]
    failure: frozenset[int]
    machine: Machine  # the protocol as `transitions` defines it (no model attached)
    clocks: tuple[Clock, ...]
    scheduled: tuple[Scheduled, ...]
    stays: tuple[Stay, ...]
    edges: tuple[Edge, ...]
    preconditions: tuple[str, ...]
    max_events: int
    params: Mapping[str, float] = field(default_factory=dict)
    parameters: tuple[Parameter, ...] = ()  # the parameter table, in file order
    # Each window's periods (hours after start): one for a plain window, one per
    # day for recurring hours, the union of its members' for a group.
    windows: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    source: str | None = None  # the file read (None if from text or a model)
    source_text: str | None = None  # the YAML text, for scenarios loaded from a string
    sets: tuple[tuple[str, Any], ...] = ()  # the overrides applied
    # What the file uses (for negosim.compiler.lints): the names each expression reads,
    # keyed by its location, and the parameters named where a quantity is expected.
    expr_names: Mapping[tuple[str | int, ...], frozenset[str]] = field(default_factory=dict)
    quantity_params: frozenset[str] = frozenset()
    # For each precondition (in ``preconditions`` order): the clocks whose effects can
    # change what it reads (the blocking report's "decisions" about it).
    deciders: tuple[frozenset[int], ...] = ()
    whens: tuple[Watched, ...] = ()  # events with ``when:``, in file order
    warnings: tuple[Problem, ...] = ()  # what the lints found at load
    # The values built from parameter values (what ``bind`` rebuilds).
    param_sites: tuple[ParamSite, ...] = ()
    # The identity of everything else: new for every scenario made, but shared with
    # ``same_structure`` when it is given (``bind`` gives the scenario it binds; a
    # ``dataclasses.replace`` does not, as it may change anything).
    structure: Structure = field(init=False, repr=False)
    same_structure: InitVar[CompiledScenario | None] = None

    def __post_init__(self, same_structure: CompiledScenario | None) -> None:
        structure = Structure() if same_structure is None else same_structure.structure
        object.__setattr__(self, "structure", structure)
        # Lists and dicts given by a caller become tuples and read-only views: nothing
        # can change a compiled scenario after it is made.
        for name in ("slot_names", "initial", "states", "preconditions", "sets", "warnings"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        for name in ("params", "windows", "expr_names"):
            object.__setattr__(self, name, _frozen_map(getattr(self, name)))

    def with_values(self, values: Mapping[str, Any]) -> CompiledScenario:
        """This scenario with other parameter values, as ``--set NAME=VALUE`` gives them.

        Nothing is compiled again: the result shares every table and compiled
        expression with this one and replaces only what the values change (the
        parameter slots, the parameter table, the distributions built from
        parameters); values are checked as when the file is compiled, with the same
        ``ScenarioError`` messages. See :func:`negosim.compiler.bind.bind`.

        >>> from negosim import load
        >>> munich = load("scenarios/munich.yaml")
        >>> munich.with_values({"p_us_formal_request": 0.5}).params["p_us_formal_request"]
        0.5
        """
        from .bind import bind

        return bind(self, values)

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
