"""A replication that records its timeline (``negosim trace``, ``negosim play``).

:class:`TracedReplication` runs exactly as :class:`~negosim.engine.simulation.Replication`
does — same draws, same order, same row — and writes a :class:`TraceLine` for
each thing a reader wants to see: windows opening and closing, arrivals and
departures, scheduled events, ``when:`` events (and the condition that turned
true), actors made unable or able to act, actions becoming possible or impossible, what
fired and what it chose, facts that changed, protocol steps, preconditions that
start or stop holding an action back, and the end. Monte Carlo runs use the
plain replication and pay nothing for any of this.
"""

from __future__ import annotations

from typing import Any

from ..compiler.tables import Assign, Clock, Outcome
from ..scenario.units import format_duration
from .simulation import TICKS_PER_HOUR, Engine, Replication, TraceLine


class TracedReplication(Replication):
    """A replication that keeps a list of :class:`TraceLine` in :attr:`lines`."""

    __slots__ = ("lines", "held_back")

    def __init__(self, engine: Engine, seed: int, index: int) -> None:
        super().__init__(engine, seed, index)
        self.lines: list[TraceLine] = []
        self.held_back: set[tuple[int, int]] = set()

    def note(self, kind: str, actor: str | None, text: str, ticks: int | None = None) -> None:
        """Add a line at the current instant (or at ``ticks``)."""
        at = self.t if ticks is None else ticks
        self.lines.append(TraceLine(at / TICKS_PER_HOUR, kind, actor, text))

    def _name(self, actor: str) -> str:
        return self.cs.model.actors[actor].short or actor

    def _noted_arrival(self, stay: Any) -> None:
        self.note("arrive", stay.actor, f"{self._name(stay.actor)} is at the venue", 0)

    def _horizon(self) -> None:
        super()._horizon()
        self.note("end", None, "horizon reached: no outcome (censored)")

    def _edge(self, edge: Any) -> None:
        self.note("window", None, f"window {edge.window} {'opens' if edge.value else 'closes'}")
        super()._edge(edge)

    def _stay(self, stay: Any, arriving: bool) -> None:
        before = self.s[stay.slot]
        count = self.present.get(stay.slot, 0) + (1 if arriving else -1)
        if (count > 0) != before:
            verb = "arrives at" if arriving else "leaves"
            self.note("arrive" if arriving else "leave", stay.actor,
                      f"{self._name(stay.actor)} {verb} the venue")  # fmt: skip
        super()._stay(stay, arriving)

    def _scheduled(self, sched: Any) -> None:
        if sched.guard is not None and not sched.guard(self.s):
            self.note("event", None, f"{sched.text}: does not happen ({sched.guard_text} "
                      "does not hold)")  # fmt: skip
        elif sched.guard is not None:
            self.note("event", None, f"{sched.text} ({sched.guard_text} holds)")
        else:
            self.note("event", None, sched.text)
        super()._scheduled(sched)

    def _watched(self, w: Any) -> None:
        self.note("event", None, f"{w.text} ({w.cond_text} has become true)")
        super()._watched(w)

    def _enable(self, c: Clock) -> float:
        delay = super()._enable(c)
        due = format_duration(delay / TICKS_PER_HOUR)
        self.note("enable", c.actor, f"{c.text}: possible now, due in {due}")
        return delay

    def _disable(self, c: Clock) -> None:
        self.note("cancel", c.actor, f"{c.text}: no longer possible")

    def _reevaluate(self, which: tuple[int, ...] | set[int]) -> None:
        # In declaration order, so the timeline reads the same every time; then
        # which precondition holds back which action.
        super()._reevaluate(tuple(sorted(which)))
        self._note_held_back()

    def _note_held_back(self) -> None:
        """Trace which precondition starts or stops holding back which action."""
        clocks, s, st = self.engine.clocks, self.s, self.state
        held_back = {
            (c.index, pi)
            for c in clocks
            if c.states[st]
            for pi, holds in c.requires
            if not holds(s)
        }
        model = self.cs.model
        for i, pi in sorted(held_back - self.held_back):
            pre = model.preconditions[self.cs.preconditions[pi]]
            who = self._name(pre.insisted_by)
            self.note("block", pre.insisted_by,
                      f"{clocks[i].text}: held back, {who} insists: {pre.text}")  # fmt: skip
        for _, pi in sorted(self.held_back - held_back):
            pre = model.preconditions[self.cs.preconditions[pi]]
            if self.state not in self.engine.outcomes:
                self.note("unblock", pre.insisted_by, f"precondition met: {pre.text}")
        self.held_back = held_back

    def _fired(self, c: Clock, chosen: Outcome) -> None:
        what = c.text if chosen.id == c.id else f"{c.text}: {chosen.text}"
        self.note("fire", c.actor, what)

    def _apply(self, sets: tuple[Assign, ...], trigger: str | None) -> None:
        state = self.state
        super()._apply(sets, trigger)
        if trigger is None or self.state != state:
            return
        # A trigger with no transition from the current state does nothing (only
        # events can fire one: the loader checks actions). Say so, or a reader sees
        # the event and wonders why the protocol did not move.
        if not self.cs.machine.events[trigger].transitions.get(self.cs.states[state]):
            self.note("state", None, f"protocol: '{trigger}' does nothing in state "
                      f"{self.cs.states[state]} (no transition from it)")  # fmt: skip

    def _fact(self, a: Assign, old: Any, new: Any) -> None:
        if a.fact.startswith("present:"):  # an effect moved an actor: say it as a stay would
            actor = a.fact.removeprefix("present:")
            verb = "arrives at" if new else "leaves"
            self.note("arrive" if new else "leave", actor, f"{self._name(actor)} {verb} the venue")
            return
        if a.fact.startswith("available:"):  # an effect lets an actor act, or stops it
            actor = a.fact.removeprefix("available:")
            said = "can act again" if new else "cannot act until further notice"
            self.note("available" if new else "unavailable", actor, f"{self._name(actor)} {said}")
            return
        self.note("fact", None, f"{a.fact}: {_show(old)} → {_show(new)}")

    def _moved(self, old: int, new: int) -> None:
        states = self.cs.states
        self.note("state", None, f"protocol: {states[old]} → {states[new]}")
        if new in self.engine.outcomes:
            self.note("end", None, f"outcome: {states[new]}")


def _show(value: Any) -> str:
    """A fact value as a scenario file would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)
