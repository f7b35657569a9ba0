"""The engine as it was before the core rebuild (negosim 0.1.0 before issue 8), kept
only so that benchmarks can measure the new engine side by side with it.

It builds its own `transitions` machine and model (the old engine shared one
per compiled scenario, which is why it was not thread-safe) and its own
``SeedSequence``/``PCG64`` per replication. Do not use it for anything else.

Original docstring follows.

The discrete-event engine: one replication of a compiled scenario.

simpy keeps time and the event queue; the scenario's `transitions` machine
(built once by :mod:`negosim.compile`, part of the :mod:`negosim.tables` the
engine runs on, and shared by every replication in the process) holds the
protocol state. The semantics are those of a generalized
semi-Markov process, written up in ``docs/semantics.md``:

* a clock (an action or a random event) is *enabled* while its protocol
  state matches, its actor can act, its guard holds and its required
  preconditions hold;
* when it becomes enabled its delay is sampled; if it is disabled before
  firing, the pending firing is cancelled; if enabled again, it is sampled
  afresh (and also after it fires, if it is still enabled);
* window edges, arrivals, departures and scheduled events are breakpoints at
  which enabledness is re-evaluated;
* events due at the same instant are processed in a fixed order: the horizon
  first, then breakpoints (in the order they were scheduled), then clocks in
  the order they are declared in the file;
* a replication ends when the protocol enters an outcome state, or at the
  horizon (censored).

Cancelling uses a per-clock generation counter: a stale firing is still
popped from simpy's queue but does nothing. Nothing here validates input;
the compiler has done that.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy
from simpy.events import Event
from transitions import Machine

from negosim.compiler.tables import Assign, Clock, CompiledScenario, Outcome, Stay
from negosim.errors import SimulationError
from negosim.scenario.units import at_hours, format_duration

_HORIZON, _BREAKPOINT, _CLOCK = -1, 0, 1  # simpy priorities: lower runs first
_BUFFER = 64  # uniforms drawn from the generator at a time


class Stream:
    """A replication's own uniform random numbers.

    Replication ``index`` of a run seeded ``seed`` draws from
    ``SeedSequence(seed, spawn_key=(index,))``, the same stream that
    ``SeedSequence(seed).spawn(...)`` would give it: results do not depend on
    how replications are split among workers.
    """

    __slots__ = ("_gen", "_buf", "_i")

    def __init__(self, seed: int, index: int):
        ss = np.random.SeedSequence(seed, spawn_key=(index,))
        self._gen = np.random.Generator(np.random.PCG64(ss))
        self._buf: list[float] = self._gen.random(_BUFFER).tolist()
        self._i = 0

    def u(self) -> float:
        i = self._i
        if i == _BUFFER:
            self._buf = self._gen.random(_BUFFER).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


@dataclass(slots=True)
class Row:
    """The result of one replication: a flat row, what reports consume."""

    index: int
    outcome: str  # outcome state name, or "censored"
    held: bool
    time: float | None  # hours after start at which the outcome was reached
    path: tuple[int, ...]  # protocol state indexes visited
    blocking: tuple[int, ...]  # precondition indexes (failed or censored runs only)
    events: int


@dataclass(slots=True)
class TraceLine:
    """One line of a traced replication (``negosim trace``)."""

    time: float
    kind: str  # window, arrive, leave, event, enable, cancel, fire, state, block, end
    actor: str | None
    text: str


Chooser = Callable[[Clock, "Engine", Outcome], Outcome]
"""Picks the option of a played actor's action when its clock fires; gets the
clock, the engine (for :meth:`Engine.facts` and friends) and the option the
weights drew."""


class _At(Event):
    """A pre-triggered event due after ``delay``, with a given simpy priority.

    simpy's ``Timeout`` always has normal priority; we need the horizon and
    breakpoints to run before clocks due at the same instant.
    """

    def __init__(
        self,
        env: simpy.Environment,
        delay: float,
        priority: int,
        callback: Any,
        data: Any = None,
        token: int = 0,
    ):
        self.env = env
        self.callbacks = [callback]
        self._value = None
        self._ok = True
        self.data = data
        self.token = token
        env.schedule(self, priority, delay)  # type: ignore[arg-type]


class Engine:
    """Runs replications of one compiled scenario. Build once, call :meth:`run` many times."""

    def __init__(self, cs: CompiledScenario, chooser: Chooser | None = None, actor: str = ""):
        self.cs = cs
        self._clocks = cs.clocks
        self._state_index = {name: i for i, name in enumerate(cs.states)}
        p = cs.model.protocol

        class _Model:
            state: str
            trigger: Callable[[str], bool]

        self._model = _Model()
        self._machine = Machine(
            model=self._model,
            states=cs.states,
            initial=p.initial,
            auto_transitions=False,
            ignore_invalid_triggers=True,
            transitions=[t.model_dump() for t in p.transitions],
        )
        self._outcomes = cs.outcome_states
        self.trace: list[TraceLine] | None = None
        if chooser is not None:
            # A played actor (``negosim play``): its options are picked by
            # ``chooser`` instead of by weight. The hook replaces ``_choose`` on
            # this instance only, so the Monte Carlo path pays nothing for it.
            self._chooser = chooser
            self._played = actor
            self._choose = self._choose_played  # type: ignore[method-assign]

    # --- one replication ---------------------------------------------------------

    def run(self, seed: int, index: int, trace: bool = False) -> Row:
        """Run replication ``index`` of the run seeded ``seed``; return its row."""
        cs = self.cs
        rng = Stream(seed, index)
        self._u = rng.u
        env = self._env = simpy.Environment()
        self._s = list(cs.initial)
        self._machine.set_state(cs.states[cs.initial_state], self._model)
        self._state = cs.initial_state
        self._path = [cs.initial_state]
        n = len(self._clocks)
        self._tokens = [0] * n
        self._enabled = [False] * n
        self._blocking: set[int] = set()
        self._held_back: set[tuple[int, int]] = set()
        self._done: str | None = None
        self._end_time: float | None = None
        self._recent: deque[tuple[float, str]] = deque(maxlen=64)
        self.trace = [] if trace else None

        _At(env, cs.horizon, _HORIZON, self._on_horizon)
        for edge in cs.edges:
            if edge.at < cs.horizon:
                _At(env, edge.at, _BREAKPOINT, self._on_edge, edge)
        # Stays may overlap or touch: presence is a count, and every arrival is
        # scheduled before any departure so that at a shared instant the actor
        # arrives for one stay before leaving the other (no zero-length absence).
        self._present: dict[int, int] = {}
        leaving = [self._schedule_stay(stay) for stay in cs.stays]
        for stay, leave in zip(cs.stays, leaving, strict=True):
            if leave is not None:
                _At(env, leave, _BREAKPOINT, self._on_stay, (stay, False))
        for ev in cs.scheduled:
            at = ev.at + (ev.jitter(self._u()) if ev.jitter else 0.0)
            if at < cs.horizon:
                _At(env, max(at, 0.0), _BREAKPOINT, self._on_scheduled, ev)
        self._reevaluate()

        limit = cs.max_events
        steps = 0
        step = env.step
        try:
            while self._done is None:
                step()
                steps += 1
                if steps >= limit and self._done is None:
                    raise SimulationError(self._loop_message(index, steps), self._culprit())
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise SimulationError(
                f"replication {index} failed at {self._when(env.now)} after "
                f"{self._last_fired()}: {type(exc).__name__}: {exc}",
                self._culprit(),
            ) from exc
        held = self._state in cs.success and self._done != "censored"
        blocking = () if held else tuple(sorted(self._blocking))
        return Row(index, self._done, held, self._end_time, tuple(self._path), blocking, steps)

    # --- breakpoints -------------------------------------------------------------

    def _schedule_stay(self, stay: Stay) -> float | None:
        """Sample a stay, schedule its arrival; return when to schedule its departure."""
        arrive = stay.start + (stay.arrival(self._u()) if stay.arrival else 0.0)
        leave = stay.end - (stay.departure(self._u()) if stay.departure else 0.0)
        if arrive >= leave:
            return None
        if arrive <= 0:
            self._present[stay.slot] = self._present.get(stay.slot, 0) + 1
            self._s[stay.slot] = True
            if self.trace is not None:
                self._note(
                    0.0, "arrive", stay.actor, f"{self._actor_name(stay.actor)} is at the venue"
                )
        else:
            _At(self._env, arrive, _BREAKPOINT, self._on_stay, (stay, True))
        return max(leave, 0.0) if leave < self.cs.horizon else None

    def _on_horizon(self, ev: _At) -> None:
        if self._done is None:
            self._done = "censored"
            self._note(self._env.now, "end", None, "horizon reached: no outcome (censored)")

    def _on_edge(self, ev: _At) -> None:
        if self._done is not None:
            return
        edge = ev.data
        self._s[edge.slot] = edge.value
        if self.trace is not None:
            self._note(
                self._env.now,
                "window",
                None,
                f"window {edge.window} {'opens' if edge.value else 'closes'}",
            )
        self._reevaluate()

    def _on_stay(self, ev: _At) -> None:
        if self._done is not None:
            return
        stay, arriving = ev.data
        count = self._present.get(stay.slot, 0) + (1 if arriving else -1)
        self._present[stay.slot] = count
        present = count > 0
        if present == self._s[stay.slot]:
            return  # another stay of the same actor covers this instant
        self._s[stay.slot] = present
        if self.trace is not None:
            name = self._actor_name(stay.actor)
            self._note(
                self._env.now,
                "arrive" if present else "leave",
                stay.actor,
                f"{name} {'arrives at' if present else 'leaves'} the venue",
            )
        self._reevaluate()

    def _on_scheduled(self, ev: _At) -> None:
        if self._done is not None:
            return
        sched = ev.data
        self._recent.append((self._env.now, sched.id))
        self._note(self._env.now, "event", None, sched.text)
        self._apply(sched.sets, sched.trigger, None)
        if self._done is None:
            self._reevaluate()

    # --- clocks -------------------------------------------------------------------

    def _reevaluate(self) -> None:
        """Enable and disable clocks after a change of state; sample new delays."""
        s = self._s
        st = self._state
        enabled = self._enabled
        tokens = self._tokens
        blocking: set[int] = set()
        held_back: set[tuple[int, int]] | None = set() if self.trace is not None else None
        for c in self._clocks:
            ok = c.states[st]
            # Required preconditions are checked whenever the protocol state
            # allows the action, so "blocking" does not depend on whether its
            # actor happens to be available or its guard true at that moment.
            if ok and c.requires:
                for pi, holds in c.requires:
                    if not holds(s):
                        ok = False
                        blocking.add(pi)
                        if held_back is not None:
                            held_back.add((c.index, pi))
            if ok and c.actor_windows is not None:
                ok = any(s[k] for k in c.actor_windows)
            if ok and c.guard is not None:
                ok = c.guard(s)
            i = c.index
            if ok != enabled[i]:
                enabled[i] = ok
                tokens[i] += 1
                if ok:
                    delay = c.delay(self._u())
                    _At(self._env, delay, _CLOCK + i, self._on_fire, c, tokens[i])
                    if self.trace is not None:
                        self._note(
                            self._env.now,
                            "enable",
                            c.actor,
                            f"{c.text}: possible now, due in {format_duration(delay)}",
                        )
                elif self.trace is not None:
                    self._note(self._env.now, "cancel", c.actor, f"{c.text}: no longer possible")
        if held_back is not None:
            self._note_held_back(held_back)
        self._blocking = blocking

    def _note_held_back(self, held_back: set[tuple[int, int]]) -> None:
        """Trace which precondition starts or stops holding back which action."""
        model, now = self.cs.model, self._env.now
        for i, pi in sorted(held_back - self._held_back):
            pre = model.preconditions[self.cs.preconditions[pi]]
            who = self._actor_name(pre.insisted_by)
            self._note(
                now,
                "block",
                pre.insisted_by,
                f"{self._clocks[i].text}: held back, {who} insists: {pre.text}",
            )
        for _, pi in sorted(self._held_back - held_back):
            pre = model.preconditions[self.cs.preconditions[pi]]
            if self._state not in self._outcomes:
                self._note(now, "unblock", pre.insisted_by, f"precondition met: {pre.text}")
        self._held_back = held_back

    def _on_fire(self, ev: _At) -> None:
        c: Clock = ev.data
        i = c.index
        if ev.token != self._tokens[i] or self._done is not None:
            return  # cancelled (disabled since it was sampled), or already over
        self._enabled[i] = False
        self._recent.append((self._env.now, c.id))
        options = c.options
        chosen = options[0] if len(options) == 1 else self._choose(c)
        if self.trace is not None:
            what = c.text if chosen.id == c.id else f"{c.text}: {chosen.text}"
            self._note(self._env.now, "fire", c.actor, what)
        self._apply(chosen.sets, chosen.trigger, c)
        if self._done is None:
            self._reevaluate()

    def _choose(self, c: Clock) -> Outcome:
        s = self._s
        weights = [
            o.weight if isinstance(o.weight, float) else float(o.weight(s)) for o in c.options
        ]
        total = 0.0
        for o, w in zip(c.options, weights, strict=True):
            if w < 0:
                raise SimulationError(
                    f"option {o.id!r} of {c.id!r} has a negative weight ({w:g}) at "
                    f"{self._when(self._env.now)}",
                    (f"{c.kind}s", c.id, "options", o.id, "weight"),
                )
            if not math.isfinite(w):  # nan/inf would silently pick the last option
                raise SimulationError(
                    f"option {o.id!r} of {c.id!r} has weight {w} at "
                    f"{self._when(self._env.now)}; weights must be finite numbers",
                    (f"{c.kind}s", c.id, "options", o.id, "weight"),
                )
            total += w
        if total <= 0:
            raise SimulationError(
                f"every option of {c.id!r} has weight 0 at {self._when(self._env.now)}; "
                "make at least one weight positive whenever the action is possible",
                (f"{c.kind}s", c.id, "options"),
            )
        x = self._u() * total
        for o, w in zip(c.options, weights, strict=True):
            x -= w
            if x < 0:
                return o
        return c.options[-1]

    def _choose_played(self, c: Clock) -> Outcome:
        """The played actor's decision: draw as usual (so the random stream stays
        aligned with the simulated seat), then let the chooser pick."""
        drawn = Engine._choose(self, c)
        if c.actor != self._played or c.chance:
            return drawn
        return self._chooser(c, self, drawn)

    def now(self) -> float:
        """Hours since the start of the replication being run."""
        return float(self._env.now)

    def state(self) -> str:
        """The current protocol state."""
        return self.cs.states[self._state]

    def facts(self) -> dict[str, Any]:
        """The current values of the scenario's facts, by name."""
        names = self.cs.slot_names
        return {names[i]: v for i, v in enumerate(self._s) if names[i] in self.cs.model.facts}

    def present(self, actor: str) -> bool:
        return bool(self._s[self.cs.slot_names.index(f"present:{actor}")])

    def preconditions(self) -> dict[str, bool]:
        """Whether each precondition that some action requires holds now."""
        out: dict[str, bool] = {}
        for c in self._clocks:
            for pi, holds in c.requires:
                out[self.cs.preconditions[pi]] = bool(holds(self._s))
        return out

    def _apply(self, sets: tuple[Assign, ...], trigger: str | None, c: Clock | None) -> None:
        """Apply effects: all right-hand sides are read before any fact is written."""
        if sets:
            s = self._s
            values = [a.value(s) for a in sets]
            for a, v in zip(sets, values, strict=True):
                if a.low is not None and v < a.low:
                    v = a.low
                elif a.high is not None and v > a.high:
                    v = a.high
                if self.trace is not None and s[a.slot] != v:
                    self._note(
                        self._env.now, "fact", None, f"{a.fact}: {_show(s[a.slot])} → {_show(v)}"
                    )
                s[a.slot] = v
        if trigger is not None:
            model = self._model
            before = model.state
            model.trigger(trigger)
            if model.state != before:
                self._state = st = self._state_index[model.state]
                self._path.append(st)
                if st in self._outcomes:
                    self._done = model.state
                    self._end_time = self._env.now
                if self.trace is not None:
                    self._note(self._env.now, "state", None, f"protocol: {before} → {model.state}")
                    if self._done is not None:
                        self._note(self._env.now, "end", None, f"outcome: {model.state}")

    # --- diagnostics --------------------------------------------------------------

    def _note(self, t: float, kind: str, actor: str | None, text: str) -> None:
        if self.trace is not None:
            self.trace.append(TraceLine(t, kind, actor, text))

    def _actor_name(self, actor: str) -> str:
        return self.cs.model.actors[actor].short or actor

    def _when(self, t: float) -> str:
        return at_hours(self.cs.start, t, self.cs.tz).strftime("%a %d %b %Y %H:%M %Z")

    def _culprit(self) -> tuple[str | int, ...] | None:
        """Where in the file the last thing that fired is declared."""
        if not self._recent:
            return None
        name = self._recent[-1][1]
        section = "actions" if name in self.cs.model.actions else "events"
        return (section, name)

    def _last_fired(self) -> str:
        return f"'{self._recent[-1][1]}'" if self._recent else "the start"

    def _loop_message(self, index: int, steps: int) -> str:
        recent = list(self._recent)
        now = self._env.now
        same_time = [name for t, name in recent if t == now]
        if len(same_time) >= 4:
            cycle = _cycle(same_time)
            return (
                f"replication {index} stopped after {steps} events: "
                f"{' → '.join(cycle + cycle[:1])} keeps repeating without time passing at "
                f"{self._when(now)}; give one of them a delay, or a guard its own effects "
                "make false (settings.max_events caps events per replication)"
            )
        tail = " → ".join(name for _, name in recent[-8:])
        return (
            f"replication {index} stopped after {steps} events (settings.max_events) at "
            f"{self._when(now)}; the last to fire were: {tail}. If this many events are "
            "intended, raise settings.max_events"
        )


def _show(value: Any) -> str:
    """A fact value as a scenario file would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


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
