"""The discrete-event engine: one replication of a compiled scenario.

An :class:`Engine` is built once per compiled scenario and holds only tables
derived from it (times in integer ticks, the protocol's next-state table, who
watches which slot, stream numbers); it is never written after construction
(but for the generated replication it fetches at its first run, the same for
every thread), so any number of threads may share one. Everything a
replication changes lives in its own :class:`Replication` object, or in the
local variables of the function :mod:`negosim.engine.generated` writes for the
scenario, which :meth:`Engine.run` and :meth:`Engine.run_block` call: a second
spelling of :class:`Replication`, tested to give the same rows, for speed.
Traced and played replications run :class:`Replication`. The semantics are those of a
generalized semi-Markov process, written up in ``docs/semantics.md``:

* a clock (an action or a random event) is *enabled* while its protocol
  state matches, its actor can act, its guard holds and its required
  preconditions hold;
* when it becomes enabled its delay is sampled; if it is disabled before
  firing, the pending firing is cancelled; if enabled again, it is sampled
  afresh (and also after it fires, if it is still enabled);
* window edges, arrivals, departures and scheduled events are breakpoints at
  which enabledness is re-evaluated; a scheduled event with a guard happens
  only if the guard holds at its time;
* an actor's presence is a slot like a fact: stays write it at their arrival
  and departure, and effects (``present: {actor: false}``) write it at once;
  so is whether effects let an actor act (``available: {actor: false}``), a
  hidden slot its actions' clocks watch;
* an event with ``when:`` happens inside the happening that turned its
  condition from false to true, right after that happening's effects and
  before the clocks are re-evaluated (edge-triggered: a latch per event keeps
  the condition's last value);
* time is an integer number of ticks (:data:`TICKS_PER_HOUR`: one tick is a
  millisecond), so equal instants compare equal; what happens at one instant
  happens in a fixed order: the horizon first, then breakpoints (in the order
  they were scheduled), then clocks in the order they are declared in the file
  (a clock that falls due at that instant while it is being processed joins
  them in its place);
* a replication ends when the protocol enters an outcome state, or at the
  horizon (censored).

simpy is the clock and the event queue, used through its public API
(``Environment.timeout``, ``Event.callbacks``, ``peek``, ``run``). A timeout
hands its happening to the replication, which collects everything due at the
current instant and processes it in the documented order once simpy has no
more events at that instant. After each happening only the clocks whose inputs
changed are re-evaluated: those watching a slot that was written, those whose
``from`` states differ between the old and the new protocol state, and the
clock that fired. The protocol moves through a next-state table derived once
from the scenario's `transitions` machine, which stays the definition of the
protocol (validated and drawn elsewhere) but is not called per event.

Random numbers come from keyed streams (:mod:`negosim.engine.streams`): each
clock's delays, each clock's choices, each stay's arrival and departure and
each scheduled event's jitter have a stream of their own, named after what
draws from it.

Nothing here validates input; the compiler has done that.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

import simpy

from ..compiler.tables import Assign, Clock, CompiledScenario, Outcome
from ..errors import SimulationError
from ..scenario.units import at_hours
from .generated import RERUN, generate, unsupported
from .streams import PREFETCH, Draws, block, stream_id

if TYPE_CHECKING:
    from .generated import Generated

TICKS_PER_HOUR = 3_600_000
"""Time unit of the engine: one tick is one millisecond."""
TICKS_PER_MINUTE = TICKS_PER_HOUR // 60
BLOCK = 256  # replications whose first draws numpy computes at once (Engine.run_block)
SAME_INSTANT_LIMIT = 10_000
"""Happenings one replication may process at one instant (the default max_events):
more is a zero-time loop, stopped however large settings.max_events is (issue 9)."""

# Order of happenings at one instant: (group, order) with lower first.
_HORIZON, _BREAKPOINT, _CLOCK = 0, 1, 2
# Kinds of breakpoint.
_EDGE, _ARRIVE, _LEAVE, _SCHEDULED = 0, 1, 2, 3


def to_ticks(hours: float) -> int:
    """Hours as a whole number of ticks, rounded to the nearest tick."""
    return math.floor(hours * TICKS_PER_HOUR + 0.5)


@dataclass(slots=True)
class Row:
    """The result of one replication: a flat row, what reports consume."""

    index: int
    outcome: str  # outcome state name, or "censored"
    held: bool
    time: float | None  # hours after start at which the outcome was reached
    path: tuple[int, ...]  # protocol state indexes visited
    blocking: tuple[int, ...]  # precondition indexes (failed or censored runs only)
    events: int  # happenings processed (breakpoints, firings, the horizon)
    ticks: int | None = None  # ``time`` in exact ticks (see TICKS_PER_HOUR)
    why: tuple[int, ...] = ()  # for each of ``blocking``: REFUSED, UNDECIDED or OVERTAKEN


REFUSED, UNDECIDED, OVERTAKEN = 0, 1, 2
"""Why a precondition stood at the end of a run without the meeting (``Row.why``): an
action that could meet it had been taken (or ended the talks itself); none had been
taken by the horizon; none had been taken when another path ended the talks."""


@dataclass(slots=True)
class TraceLine:
    """One line of a traced replication (``negosim trace``)."""

    time: float
    kind: str  # window, arrive, leave, (un)available, event, enable, cancel, fire, state,
    # block, end
    actor: str | None
    text: str


class Engine:
    """Runs replications of one compiled scenario. Build once, call :meth:`run` many times.

    Thread-safe: :meth:`run` keeps every replication's state in a fresh
    :class:`Replication` (or in the locals of the generated replication); the
    engine's own tables are read-only.
    """

    replication: type[Replication]

    def __init__(self, cs: CompiledScenario) -> None:
        self.cs = cs
        self.replication = Replication
        clocks = cs.clocks
        n = len(clocks)
        self.clocks = clocks
        self.horizon = to_ticks(cs.horizon)
        # Window edges are known in advance: one timeout per distinct instant,
        # scheduled one after the other (a run that ends early makes none of
        # the rest). Their order among breakpoints is their place in this list.
        groups: dict[int, list[tuple[int, Any]]] = {}
        for k, e in enumerate(cs.edges):
            if to_ticks(e.at) < self.horizon:
                groups.setdefault(to_ticks(e.at), []).append((k, e))
        self.edge_groups = tuple((at, tuple(g)) for at, g in sorted(groups.items()))
        self.first_dynamic = len(cs.edges)  # order of breakpoints scheduled per run
        self.stays = tuple((to_ticks(s.start), to_ticks(s.end), s) for s in cs.stays)
        self.scheduled = tuple((to_ticks(ev.at), ev) for ev in cs.scheduled)
        self.outcomes = cs.outcome_states
        self.success = cs.success
        # Stream numbers: delays 0..n-1, choices n..2n-1, then stays (arrival,
        # departure) and scheduled jitters. The numbers index a replication's
        # counters; the names (hashed) key the streams themselves.
        names = [f"delay:{c.kind}:{c.id}" for c in clocks]
        names += [f"choice:{c.kind}:{c.id}" for c in clocks]
        self.stay_streams: list[tuple[int, int]] = []
        seen: dict[str, int] = {}
        for s in cs.stays:
            k = seen[s.actor] = seen.get(s.actor, -1) + 1
            self.stay_streams.append((len(names), len(names) + 1))
            names += [f"arrival:{s.actor}:{k}", f"departure:{s.actor}:{k}"]
        self.jitter_streams = tuple(range(len(names), len(names) + len(cs.scheduled)))
        names += [f"jitter:{ev.id}" for ev in cs.scheduled]
        self.stream_ids = tuple(stream_id(x) for x in names)
        # The protocol's next-state table, from the `transitions` machine.
        self.next_state = next_state_table(cs)
        # Which clocks watch which slot (guards, preconditions, actor windows).
        watchers: list[list[int]] = [[] for _ in cs.slot_names]
        for c in clocks:
            for slot in c.reads | frozenset(c.actor_windows or ()):
                watchers[slot].append(c.index)
        self.watchers = tuple(tuple(w) for w in watchers)
        # Events with ``when:``, and which of them watch which slot.
        self.whens = cs.whens
        when_watchers: list[list[int]] = [[] for _ in cs.slot_names]
        for k, w in enumerate(cs.whens):
            for slot in w.reads:
                when_watchers[slot].append(k)
        self.when_watchers = tuple(tuple(w) for w in when_watchers)
        self.all_whens = frozenset(range(len(cs.whens)))
        # Which clocks a change of protocol state can enable or disable.
        self.state_change: dict[tuple[int, int], tuple[int, ...]] = {}
        for table in self.next_state.values():
            for old, new in enumerate(table):
                if old != new and (old, new) not in self.state_change:
                    self.state_change[old, new] = tuple(
                        i for i in range(n) if clocks[i].states[old] != clocks[i].states[new]
                    )
        self.all_clocks = tuple(range(n))
        self.tests = tuple(c.test or _test(c) for c in clocks)
        self.weights = tuple(tuple(o.weight for o in c.options) for c in clocks)
        # The clock of each action, by id (which action's firing ended the talks).
        self.action_index = {c.id: c.index for c in clocks if c.kind == "action"}
        # The untraced hot path: one function generated for this scenario (at the first
        # run, once per compiled scenario), unless the scenario needs what the
        # generator does not cover: then Replication runs. Decided here, once.
        self.generates = unsupported(self) is None
        self._generated: Generated | None = None

    @property
    def generated(self) -> Generated | None:
        """The replication generated for this scenario (:mod:`negosim.engine.generated`),
        which :meth:`run` and :meth:`run_block` use; None: they run :class:`Replication`.

        Made at first use (a trace or a game never needs it) and shared by every
        engine of the same compiled scenario; threads that race here get the same one.
        """
        if self._generated is None and self.generates:
            self._generated = generate(self)
        return self._generated

    def run(self, seed: int, index: int) -> Row:
        """Run replication ``index`` of the run seeded ``seed``; return its row."""
        gen = self.generated
        if gen is not None:
            try:
                return gen.replicate(seed, index, None)
            except RERUN:
                pass  # Replication gives the located error, or handles the rare case
        return self.replication(self, seed, index).run()

    def run_block(self, seed: int, start: int, stop: int) -> Iterator[Row]:
        """Rows of replications ``start..stop-1``, the same as :meth:`run` gives one by one.

        Faster for many runs: the first draws of every stream come from numpy
        in blocks of :data:`BLOCK` replications.
        """
        make = self.replication
        ids = self.stream_ids
        gen = self.generated
        for a in range(start, stop, BLOCK):
            b = min(a + BLOCK, stop)
            firsts = block(seed, a, b, ids)
            if gen is None:
                for i, first in zip(range(a, b), firsts, strict=True):
                    yield make(self, seed, i, first).run()
                continue
            replicate = gen.replicate
            for i, first in zip(range(a, b), firsts, strict=True):
                try:
                    row = replicate(seed, i, first)
                except RERUN:  # Replication gives the located error, or handles the rare case
                    row = make(self, seed, i, first).run()
                yield row

    def source(self) -> str | None:
        """The Python source of this scenario's generated replication (None: the
        scenario runs :class:`Replication`, see :mod:`negosim.engine.generated`)."""
        return None if self.generated is None else self.generated.source

    def trace(self, seed: int, index: int = 0) -> tuple[Row, list[TraceLine]]:
        """Run one replication and record its timeline (``negosim trace``)."""
        from .tracing import TracedReplication

        rep = TracedReplication(self, seed, index)
        return rep.run(), rep.lines


class _Environment(simpy.Environment):
    """simpy's environment, without a reference cycle per instance.

    ``Environment.__init__`` binds the event factories (``timeout``, ``event``,
    ...) of the instance's own class to the instance (``BoundClass.bind_early``),
    which makes every environment a reference cycle. This subclass declares no
    factories of its own, so nothing is bound; ``env.timeout`` still works
    (simpy's descriptor binds on access), and a replication reads it once.
    """


def _test(c: Clock) -> Callable[[list[Any], int], bool]:
    """Whether clock ``c`` is enabled, for a clock built without a generated test."""

    def test(s: list[Any], st: int) -> bool:
        if not c.states[st] or not all(holds(s) for _, holds in c.requires):
            return False
        if c.avail is not None and not s[c.avail]:
            return False
        if c.actor_windows is not None and not any(s[k] for k in c.actor_windows):
            return False
        return c.guard is None or bool(c.guard(s))

    return test


def next_state_table(cs: CompiledScenario) -> dict[str, tuple[int, ...]]:
    """For each trigger, the state each protocol state moves to (itself if none).

    Read once from the `transitions` machine: the first transition of a trigger
    from a state wins, as `transitions` does when no conditions are attached;
    an internal transition (no destination) stays put.
    """
    index = {name: i for i, name in enumerate(cs.states)}
    table: dict[str, tuple[int, ...]] = {}
    for trigger, event in cs.machine.events.items():
        row = list(range(len(cs.states)))
        for source, transitions in event.transitions.items():
            if transitions and transitions[0].dest is not None:
                row[index[source]] = index[transitions[0].dest]
        table[trigger] = tuple(row)
    return table


class Replication:
    """The state of one replication: slots, protocol state, clocks, its random draws.

    Made by :meth:`Engine.run` for one run and thrown away after it; subclasses
    record a timeline (:class:`~negosim.engine.tracing.TracedReplication`) or
    let a player choose (``negosim.classroom.play``).
    """

    __slots__ = (
        "engine", "cs", "seed", "index", "first", "u", "s", "state", "path", "tokens",
        "enabled", "present", "done", "end", "blocking", "last", "due", "seq", "events",
        "limit", "env", "t", "_timeout", "_cb", "_dirty", "_nclocks", "_k", "_hz",
        "instant", "at_instant", "fired", "changes", "why", "latch", "_wpending",
    )  # fmt: skip

    def __init__(
        self, engine: Engine, seed: int, index: int, first: list[float] | None = None
    ) -> None:
        cs = engine.cs
        self.engine = engine
        self.cs = cs
        self.seed, self.index, self.first = seed, index, first
        draws = Draws(engine.stream_ids, seed, index, first)
        self.u = draws.u
        self._k = draws.next  # draw counters per stream (shared with draws)
        self._hz = engine.horizon
        self.s: list[Any] = list(cs.initial)
        self.state = cs.initial_state
        self.path = [cs.initial_state]
        n = len(engine.clocks)
        self.tokens = [0] * n
        self.enabled = [False] * n
        self.present: dict[int, int] = {}
        self.done: str | None = None
        self.end: int | None = None  # tick of the outcome
        self.blocking: tuple[int, ...] = ()
        self.why: tuple[int, ...] = ()
        # For the blocking report: when each clock first fired (-1: never), and the
        # changes of facts at the latest instant with any, as (tick, slot, earlier value).
        self.fired = [-1] * n
        self.changes: list[tuple[int, int, Any]] = []
        self.last: str | None = None  # id of the last action or event that fired
        self.due: list[tuple[int, int, int, int, Any]] = []
        self.seq = engine.first_dynamic
        self.events = 0
        self.limit = cs.max_events
        self.instant = 0  # the instant (tick) of the last happening, and how many happened then
        self.at_instant = 0
        self._dirty: set[int] = set()
        # Events with ``when:``: each one's condition as last seen (false at the start),
        # and those whose condition may have changed since (to check).
        self.latch = [False] * len(engine.whens)
        self._wpending: set[int] = set()
        self.t = 0  # the current instant, in ticks (env.now, read once per happening)
        self._nclocks = n

    # --- running -------------------------------------------------------------------

    def run(self) -> Row:
        """Run to an outcome or the horizon; return the row."""
        eng = self.engine
        env = self.env = _Environment()
        self._timeout = env.timeout
        self._cb = self._arrive
        try:
            self._at(eng.horizon, _HORIZON, 0, None)
            if eng.edge_groups:
                self._next_edges(0)
            # Stays may overlap or touch: presence is a count, and every arrival
            # is scheduled before any departure so that at a shared instant the
            # actor arrives for one stay before leaving the other.
            leaving = [self._arrival(j) for j in range(len(eng.stays))]
            for j, leave in enumerate(leaving):
                if leave is not None:
                    self._at(leave, _BREAKPOINT, _LEAVE, eng.stays[j][2])
            u = self.u
            for k, (at, ev) in enumerate(eng.scheduled):
                if ev.jitter:
                    at += to_ticks(ev.jitter(u(eng.jitter_streams[k])))
                if at < eng.horizon:
                    self._at(max(at, 0), _BREAKPOINT, _SCHEDULED, ev)
            if eng.whens:  # a condition true at the start counts as turning true
                self._wpending.update(eng.all_whens)
                self._whens()
                self._dirty.clear()  # every clock is evaluated next
            if self.done is None:
                self._reevaluate(eng.all_clocks)
                self._settle()
            while self.done is None:
                env.step()
            env.run()  # drain what is still queued (callbacks return at once) ...
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise SimulationError(
                f"replication {self.index} failed at {self._when(env.now)} after "
                f"{self._last_fired()}: {type(exc).__name__}: {exc}",
                self._culprit(),
            ) from exc
        finally:
            # ... and break the cycle replication -> env -> queued timeouts ->
            # callbacks -> replication, so reference counting frees a replication
            # at once: nothing is left for the garbage collector.
            self.env = self._timeout = self._cb = None  # type: ignore[assignment]
        held = self.done != "censored" and self.state in eng.success
        end = self.end
        return Row(
            self.index,
            self.done,
            held,
            None if end is None else end / TICKS_PER_HOUR,
            tuple(self.path),
            () if held else self.blocking,
            self.events,
            end,
            () if held else self.why,
        )

    def _at(self, at: int, group: int, order: int, data: Any) -> None:
        """Schedule a horizon or breakpoint happening at tick ``at``."""
        self.seq += 1
        ev = self._timeout(at - self.t, (group, self.seq, order, 0, data))
        ev.callbacks.append(self._cb)

    def _next_edges(self, g: int) -> None:
        """Schedule the ``g``-th group of window edges (all at one instant)."""
        at, group = self.engine.edge_groups[g]
        ev = self._timeout(at - self.t, (_BREAKPOINT, group[0][0], _EDGE, g, group))
        ev.callbacks.append(self._cb)

    def _arrive(self, ev: simpy.Event) -> None:
        """simpy callback: a timeout came due. Process the instant once all of it is in."""
        if self.done is not None:
            return  # over: draining the queue
        item: tuple[int, int, int, int, Any] = ev.value  # type: ignore[assignment]
        env = self.env
        t = self.t = env.now  # type: ignore[assignment]  # ints in, ints out
        if item[0] == _CLOCK and item[3] != self.tokens[item[2]]:
            pass  # a cancelled firing: disabled since it was sampled
        elif not self.due and env.peek() != t:
            self._happen(item)  # alone at its instant: the common case
        else:
            heappush(self.due, item)
        self._settle()

    def _settle(self) -> None:
        """Process what is due now if simpy holds nothing else for this instant."""
        if self.due and self.env.peek() != self.t:
            self._instant()

    def _instant(self) -> None:
        """Process everything due at the current instant, in the documented order."""
        due = self.due
        while due and self.done is None:
            item = heappop(due)
            if item[0] != _CLOCK or item[3] == self.tokens[item[2]]:
                self._happen(item)
        due.clear()

    def _happen(self, item: tuple[int, int, int, int, Any]) -> None:
        """Process one happening (never a cancelled firing); enforce the events cap."""
        if self.done is None:
            self.events += 1
            # Issue 9: a zero-time loop is stopped after SAME_INSTANT_LIMIT happenings at
            # one instant, whatever settings.max_events allows (no time passes, so a
            # larger cap only delays the same error).
            if self.t != self.instant:
                self.instant, self.at_instant = self.t, 0
            self.at_instant += 1
            self._process(item)
            if (
                self.events >= self.limit or self.at_instant >= SAME_INSTANT_LIMIT
            ) and self.done is None:
                self._cap()

    def _cap(self) -> None:
        raise SimulationError(*self._replay()._loop())

    def _process(self, item: tuple[int, int, int, int, Any]) -> None:
        group, _, order, token, data = item
        if group == _CLOCK:
            self._fire(order)
        elif group == _HORIZON:
            self._horizon()
        elif order == _EDGE:
            for _, edge in data:
                self._edge(edge)
                if self.done is not None:
                    return
            if token + 1 < len(self.engine.edge_groups):
                self._next_edges(token + 1)
        elif order == _SCHEDULED:
            self._scheduled(data)
        else:
            self._stay(data, order == _ARRIVE)

    # --- breakpoints ---------------------------------------------------------------

    def _arrival(self, j: int) -> int | None:
        """Sample stay ``j``; schedule its arrival; return when it departs (None: never)."""
        eng = self.engine
        start, end, stay = eng.stays[j]
        a_stream, d_stream = eng.stay_streams[j]
        u = self.u
        arrive = start + (to_ticks(stay.arrival(u(a_stream))) if stay.arrival else 0)
        leave = end - (to_ticks(stay.departure(u(d_stream))) if stay.departure else 0)
        if arrive >= leave:
            return None
        if arrive <= 0:
            self.present[stay.slot] = self.present.get(stay.slot, 0) + 1
            self.s[stay.slot] = True
            self._noted_arrival(stay)
        else:
            self._at(arrive, _BREAKPOINT, _ARRIVE, stay)
        return max(leave, 0) if leave < eng.horizon else None

    def _noted_arrival(self, stay: Any) -> None:
        """An actor present from the start (the traced replication says so)."""

    def _horizon(self) -> None:
        self.done = "censored"
        self._blocked(censored=True)

    def _edge(self, edge: Any) -> None:
        self.s[edge.slot] = edge.value
        self._changed(edge.slot)

    def _stay(self, stay: Any, arriving: bool) -> None:
        count = self.present.get(stay.slot, 0) + (1 if arriving else -1)
        self.present[stay.slot] = count
        present = count > 0
        if present == self.s[stay.slot]:
            return  # another stay of the same actor covers this instant
        self.s[stay.slot] = present
        self._changed(stay.slot)

    def _changed(self, slot: int) -> None:
        """A breakpoint wrote ``slot``: ``when:`` events first, then the clocks watching."""
        eng = self.engine
        wake = eng.when_watchers[slot]
        if not wake:
            self._reevaluate(eng.watchers[slot])
            return
        self._dirty.update(eng.watchers[slot])
        self._wpending.update(wake)
        self._whens()
        self._flush()

    def _scheduled(self, sched: Any) -> None:
        if sched.guard is not None and not sched.guard(self.s):
            return  # its guard does not hold at its time: it does not happen
        self.last = sched.id
        self._apply(sched.sets, sched.trigger)
        if self._wpending:
            self._whens()
        self._flush()

    def _whens(self) -> None:
        """Let the ``when:`` events whose condition turned true happen, in file order.

        Every condition that may have changed is evaluated; one found false re-arms
        its event; of those found true and armed, the first in file order happens,
        and the rest are evaluated again after its effects (with whatever those
        changed). Each counts as a happening (the events cap applies).
        """
        pending, latch, whens = self._wpending, self.latch, self.engine.whens
        s = self.s
        while pending and self.done is None:
            first = -1
            for k in sorted(pending):
                if not whens[k].cond(s):
                    latch[k] = False
                elif first < 0 and not latch[k]:
                    first = k
                elif not latch[k]:
                    continue  # true and armed: evaluated again after the first happens
                pending.discard(k)
            if first < 0:
                break
            latch[first] = True
            self._watched(whens[first])
        pending.clear()

    def _watched(self, w: Any) -> None:
        """Event ``w`` happens: its condition has just turned true."""
        self.events += 1
        self.at_instant += 1
        self.last = w.id
        self._apply(w.sets, w.trigger)
        if (
            self.events >= self.limit or self.at_instant >= SAME_INSTANT_LIMIT
        ) and self.done is None:
            self._cap()

    # --- clocks --------------------------------------------------------------------

    def _reevaluate(self, which: tuple[int, ...] | set[int]) -> None:
        """Enable and disable clocks ``which`` after a change; sample new delays."""
        tests = self.engine.tests
        s = self.s
        st = self.state
        enabled = self.enabled
        for i in which:
            ok = tests[i](s, st)
            if ok != enabled[i]:
                enabled[i] = ok
                self.tokens[i] += 1
                if ok:
                    self._enable(self.engine.clocks[i])
                else:
                    self._disable(self.engine.clocks[i])

    def _enable(self, c: Clock) -> float:
        """Sample the delay of clock ``c`` (just enabled), schedule its firing.

        Returns the delay in ticks (a float only when it is beyond the horizon,
        possibly infinite: such a firing is not scheduled, the horizon comes first).
        """
        i = c.index
        k = self._k[i]
        if k < PREFETCH and self.first is not None:  # Draws.u, inlined: the hot path
            self._k[i] = k + 1
            delay = c.delay(self.first[i * PREFETCH + k]) * TICKS_PER_HOUR
        else:
            delay = c.delay(self.u(i)) * TICKS_PER_HOUR
        if not delay < self._hz - self.t:
            return delay
        ticks = int(delay + 0.5)  # to_ticks (delays are not negative)
        token = self.tokens[i]
        if ticks == 0:
            # Due now: it joins the instant being processed, in its place.
            heappush(self.due, (_CLOCK, 0, i, token, None))
        else:
            self._timeout(ticks, (_CLOCK, 0, i, token, None)).callbacks.append(self._cb)
        return ticks

    def _disable(self, c: Clock) -> None:
        """Clock ``c`` was disabled: its pending firing is now stale (token moved on)."""

    def _fire(self, i: int) -> None:
        c = self.engine.clocks[i]
        self.enabled[i] = False
        self.last = c.id
        if self.fired[i] < 0:
            self.fired[i] = self.t
        options = c.options
        chosen = options[0] if len(options) == 1 else self._choose(c)
        self._fired(c, chosen)
        dirty = self._dirty
        dirty.add(i)
        self._apply(chosen.sets, chosen.trigger)
        if self._wpending:
            self._whens()
        if self.done is None:  # _flush, inlined
            self._dirty = set()
            self._reevaluate(dirty)
        else:
            dirty.clear()

    def _fired(self, c: Clock, chosen: Outcome) -> None:
        """Clock ``c`` fired with option ``chosen`` (the traced replication notes it)."""

    def _choose(self, c: Clock) -> Outcome:
        """Draw one of the options of ``c`` by weight."""
        s = self.s
        weights = [w if isinstance(w, float) else float(w(s)) for w in self.engine.weights[c.index]]
        total = sum(weights)
        if not 0 < total < math.inf or min(weights) < 0:
            weights, total = self._checked_weights(c, weights)
        x = self.u(self._nclocks + c.index) * total
        last = None
        for o, w in zip(c.options, weights, strict=True):
            if w > 0:  # an option of weight zero is never chosen
                if x < w:
                    return o
                x -= w
                last = o
        assert last is not None
        return last  # rounding left x just above the last positive weight

    def _checked_weights(self, c: Clock, weights: list[float]) -> tuple[list[float], float]:
        """Weights whose sum is not a positive finite number: explain, or rescale."""
        for o, w in zip(c.options, weights, strict=True):
            where = (f"{c.kind}s", c.id, "options", o.id, "weight")
            if w < 0:
                raise SimulationError(
                    f"option {o.id!r} of {c.id!r} has a negative weight ({w:g}) at "
                    f"{self._when(self.env.now)}",
                    where,
                )
            if not math.isfinite(w):  # nan/inf would silently pick the last option
                raise SimulationError(
                    f"option {o.id!r} of {c.id!r} has weight {w} at "
                    f"{self._when(self.env.now)}; weights must be finite numbers",
                    where,
                )
        top = max(weights)
        if top <= 0:
            raise SimulationError(
                f"every option of {c.id!r} has weight 0 at {self._when(self.env.now)}; "
                "make at least one weight positive whenever the action is possible",
                (f"{c.kind}s", c.id, "options"),
            )
        weights = [w / top for w in weights]  # finite weights whose sum overflows
        return weights, math.fsum(weights)

    def _apply(self, sets: tuple[Assign, ...], trigger: str | None) -> None:
        """Apply effects: all right-hand sides are read before any fact is written."""
        watchers = self.engine.watchers
        if sets:
            s = self.s
            values = [a.value(s) for a in sets]
            for a, v in zip(sets, values, strict=True):
                if a.low is not None and v < a.low:
                    v = a.low
                elif a.high is not None and v > a.high:
                    v = a.high
                if s[a.slot] != v:
                    changes = self.changes  # this instant's only: bounded memory
                    if changes and changes[-1][0] != self.t:
                        changes.clear()
                    changes.append((self.t, a.slot, s[a.slot]))
                    self._fact(a, s[a.slot], v)
                    s[a.slot] = v
                    self._dirty.update(watchers[a.slot])
                    self._wpending.update(self.engine.when_watchers[a.slot])
        if trigger is not None:
            old = self.state
            new = self.engine.next_state[trigger][old]
            if new != old:
                if new in self.engine.outcomes and new not in self.engine.success:
                    # What stood in the way is judged on the world as it was
                    # before the step that ended the talks.
                    self._blocked(old)
                self.state = new
                self.path.append(new)
                self._dirty.update(self.engine.state_change[old, new])
                self._moved(old, new)
                if new in self.engine.outcomes:
                    self.done = self.cs.states[new]
                    self.end = self.t

    def _fact(self, a: Assign, old: Any, new: Any) -> None:
        """Fact ``a.fact`` changes from ``old`` to ``new`` (the traced replication notes it)."""

    def _moved(self, old: int, new: int) -> None:
        """The protocol moved from state ``old`` to ``new`` (noted when traced)."""

    def _flush(self) -> None:
        """Re-evaluate the clocks whose inputs the last happening changed."""
        if self.done is None and self._dirty:
            dirty = self._dirty
            self._dirty = set()
            self._reevaluate(dirty)
        else:
            self._dirty.clear()

    def _blocked(self, state: int | None = None, censored: bool = False) -> None:
        """Set ``blocking``: the preconditions that hold back an action the protocol state
        allows, judged on the facts as they were when this instant began (so that what
        else was decided at the same instant, in declaration order, does not count);
        and ``why`` each stood (:data:`REFUSED`, :data:`UNDECIDED`, :data:`OVERTAKEN`)."""
        st = self.state if state is None else state
        s = self.s
        changes, t = self.changes, self.t
        if changes and changes[-1][0] == t:  # undo this instant's changes, latest first
            s = s.copy()
            for at, slot, value in reversed(changes):
                if at != t:
                    break
                s[slot] = value
        out = {
            pi
            for c in self.engine.clocks
            if c.states[st] and c.requires
            for pi, holds in c.requires
            if not holds(s)
        }
        if not out:
            return
        self.blocking = tuple(sorted(out))
        deciders, fired = self.cs.deciders, self.fired
        ender = None if censored else self.engine.action_index.get(self.last or "")
        why = []
        for pi in self.blocking:
            reason = UNDECIDED if censored else OVERTAKEN
            for k in deciders[pi]:
                if k == ender or 0 <= fired[k] < t:
                    reason = REFUSED
                    break
            why.append(reason)
        self.why = tuple(why)

    # --- inspection (for a player deciding, and for diagnostics) -----------------------

    def now(self) -> float:
        """Hours since the start of this replication."""
        return self.env.now / TICKS_PER_HOUR

    def protocol_state(self) -> str:
        """The current protocol state."""
        return self.cs.states[self.state]

    def facts(self) -> dict[str, Any]:
        """The current values of the scenario's facts, by name."""
        names = self.cs.slot_names
        return {names[i]: v for i, v in enumerate(self.s) if names[i] in self.cs.model.facts}

    def is_present(self, actor: str) -> bool:
        """Whether ``actor`` is at the venue now."""
        return bool(self.s[self.cs.slot_names.index(f"present:{actor}")])

    def preconditions(self) -> dict[str, bool]:
        """Whether each precondition that some action requires holds now."""
        out: dict[str, bool] = {}
        for c in self.engine.clocks:
            for pi, holds in c.requires:
                out[self.cs.preconditions[pi]] = bool(holds(self.s))
        return out

    def _when(self, ticks: int | float) -> str:
        return at_hours(self.cs.start, ticks / TICKS_PER_HOUR, self.cs.tz).strftime(
            "%a %d %b %Y %H:%M %Z"
        )

    def _culprit(self, name: str | None = None) -> tuple[str | int, ...] | None:
        """Where in the file the last thing that fired is declared."""
        name = name or self.last
        if name is None:
            return None
        section = "actions" if name in self.cs.model.actions else "events"
        return (section, name)

    def _last_fired(self) -> str:
        return f"'{self.last}'" if self.last else "the start"

    def _replay(self) -> _Recording:
        """This replication run again, recording what fired (for the events-cap message).

        The hot path keeps no history; a replication is a pure function of its
        seed and index, so replaying it reproduces the same events.
        """
        rec = _Recording(self.engine, self.seed, self.index, self.first)
        with suppress(_CapReached):
            rec.run()
        return rec


class _CapReached(Exception):
    """Raised inside a recording replay when it reaches the events cap."""


class _Recording(Replication):
    """A replication that keeps the recent history, replayed to explain the events cap."""

    __slots__ = ("recent",)

    def __init__(
        self, engine: Engine, seed: int, index: int, first: list[float] | None = None
    ) -> None:
        super().__init__(engine, seed, index, first)
        self.recent: deque[tuple[float, str]] = deque(maxlen=64)

    def _fire(self, i: int) -> None:
        self.recent.append((self.t, self.engine.clocks[i].id))  # before the ``when:`` it wakes
        super()._fire(i)

    def _scheduled(self, sched: Any) -> None:
        self.recent.append((self.t, sched.id))
        super()._scheduled(sched)

    def _watched(self, w: Any) -> None:
        self.recent.append((self.t, w.id))
        super()._watched(w)

    def _cap(self) -> None:
        raise _CapReached

    def _loop(self) -> tuple[str, tuple[str | int, ...] | None]:
        """The events-cap message and where to point (the last thing that fired)."""
        recent = list(self.recent)
        now = recent[-1][0] if recent else 0
        index, events = self.index, self.events
        same_time = [name for t, name in recent if t == now]
        culprit = self._culprit(recent[-1][1] if recent else None)
        cap = (
            "settings.max_events caps events per replication"
            if events >= self.limit
            else f"at most {SAME_INSTANT_LIMIT} events may happen at one instant"
        )
        if len(same_time) >= 4:
            cycle = _cycle(same_time)
            return (
                f"replication {index} stopped after {events} events: "
                f"{' → '.join(cycle + cycle[:1])} keeps repeating without time passing at "
                f"{self._when(now)}; give one of them a delay, or a guard its own effects "
                f"make false ({cap})"
            ), culprit
        tail = " → ".join(name for _, name in recent[-8:])
        return (
            f"replication {index} stopped after {events} events "
            f"(settings.max_events) at {self._when(now)}; the last to fire were: {tail}. "
            "If this many events are intended, raise settings.max_events"
        ), culprit


Chooser = Callable[[Clock, Replication, Outcome], Outcome]
"""Picks the option of a played actor's action when its clock fires; gets the
clock, the replication (for :meth:`Replication.facts` and friends) and the
option the weights drew."""


def _cycle(names: list[str]) -> list[str]:
    """The shortest period of the whole of ``names`` (for loop messages).

    ``ping ping pong ping ping pong`` has period 3, not 1: a unit must repeat
    across all the recent history, not just at its end.
    """
    n = len(names)
    for size in range(1, n // 2 + 1):
        if all(names[i] == names[i + size] for i in range(n - size)):
            return names[-size:]
    return names[-4:]
