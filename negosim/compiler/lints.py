"""Lints: things a valid scenario says that are probably not what its author meant.

A lint never stops a scenario from loading: the file is valid, it runs, but
part of it can never matter (a parameter nothing reads, an action whose states
cannot be reached) or will quietly distort the numbers (an actor who is never
present, a departure that can come before the arrival). ``negosim validate``
prints each as ``FILE:LINE:COL: path: warning: ...`` (exit code 0, 2 with
``--strict``); ``negosim run`` prints them once on stderr and goes on.

Lints work on the validated model and the compiled tables
(:class:`~negosim.compiler.tables.CompiledScenario`), after every error has
been ruled out; each is a (loc, message) :class:`~negosim.compiler.resolve.Issue`
that the loader locates in the file. docs/lints.md lists them with examples.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from ..scenario.units import at_hours, format_duration
from .resolve import Issue, Loc
from .tables import CompiledScenario

GRID = 400
"""Points of the inverse-CDF grid on which arrival and departure draws are compared."""
NEVER_PRESENT_SHARE = 0.001
"""A stay is flagged when the actor misses it in at least this share of runs."""
MAX_CORNERS = 4096
"""Combinations of extreme values tried per option weight."""

_DYNAMIC = ("present:", "window:")


def lint(cs: CompiledScenario) -> list[Issue]:
    """Every lint of ``cs``, in the order the sections appear in a file."""
    out: list[Issue] = []
    _outside_horizon(cs, out)
    _unused(cs, out)
    _never_present(cs, out)
    _stays(cs, out)
    dead = _dead_guards(cs, out)
    _whens(cs, out)
    _unreachable(cs, dead, out)
    _weights(cs, out)
    return out


def _where(locs: Iterable[Loc]) -> str:
    shown = [".".join(str(p) for p in loc) for loc in locs]
    return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def _hours(h: float) -> str:
    return format_duration(h) if math.isfinite(h) else "unbounded"


# --- calendar ------------------------------------------------------------------------


def _outside_horizon(cs: CompiledScenario, out: list[Issue]) -> None:
    """Windows, stays and scheduled events that lie wholly outside [start, horizon)."""

    def when(h: float) -> str:
        return at_hours(cs.start, h, cs.tz).strftime("%Y-%m-%d %H:%M")

    period = f"the simulated period runs from {when(0)} to {when(cs.horizon)}"
    for wid, periods in cs.windows.items():
        if all(b <= 0 or a >= cs.horizon for a, b in periods):
            out.append(
                Issue(
                    ("calendar", "windows", wid),
                    f"window '{wid}' lies outside the simulated period ({period}): "
                    "it is never open",
                )
            )
    # Per ``present:`` entry: outside if none of its stays (one per period of a
    # recurring window) overlaps the period. Periods over before the start give no
    # stay at all, so an entry with no stays lies wholly before it.
    overlaps: dict[tuple[str, int], bool] = {
        (aid, j): False for aid, a in cs.model.actors.items() for j in range(len(a.present))
    }
    for stay in cs.stays:
        if stay.end > 0 and stay.start < cs.horizon:
            overlaps[stay.actor, stay.entry] = True
    for (aid, j), inside in overlaps.items():
        if not inside:
            out.append(
                Issue(
                    ("actors", aid, "present", j),
                    f"this stay lies outside the simulated period ({period}): "
                    f"'{aid}' is never present during it",
                )
            )
    for ev in cs.scheduled:
        if ev.jitter is None and ev.at >= cs.horizon:
            out.append(
                Issue(
                    ("events", ev.id, "at"),
                    f"event '{ev.id}' is scheduled at or after the horizon ({period}): "
                    "it never happens",
                )
            )


# --- declared and never used ---------------------------------------------------------


def _unused(cs: CompiledScenario, out: list[Issue]) -> None:
    model = cs.model
    read: set[str] = set().union(*cs.expr_names.values()) if cs.expr_names else set()
    for pid in model.params:
        if pid not in read and pid not in cs.quantity_params:
            out.append(
                Issue(
                    ("params", pid),
                    f"parameter '{pid}' is declared but never used: no expression, delay "
                    "or rate names it, so changing it changes nothing",
                )
            )
    written = _written_facts(cs)
    for fid in model.facts:
        if fid not in read and fid not in written:
            out.append(
                Issue(
                    ("facts", fid),
                    f"fact '{fid}' is declared but never used: nothing reads or sets it",
                )
            )
    windows: set[str] = {n.removeprefix("window:") for n in read if n.startswith("window:")}
    for actor in model.actors.values():
        windows.update(p.window for p in actor.present if p.window)
        windows.update(actor.available or ())
    windows.update(ev.window for ev in model.events.values() if ev.window)
    for wid in list(windows):  # a group used means its members are used
        w = model.calendar.windows.get(wid)
        if w is not None and w.group:
            windows.update(w.group)
    for wid in model.calendar.windows:
        if wid not in windows:
            out.append(
                Issue(
                    ("calendar", "windows", wid),
                    f"window '{wid}' is declared but never used: no stay, 'available:', "
                    "event or in_window() names it",
                )
            )


def _written_facts(cs: CompiledScenario) -> set[str]:
    facts = {a.fact for c in cs.clocks for o in c.options for a in o.sets}
    facts |= {a.fact for w in cs.whens for a in w.sets}
    return facts | {a.fact for ev in cs.scheduled for a in ev.sets}


# --- presence ------------------------------------------------------------------------


def _never_present(cs: CompiledScenario, out: list[Issue]) -> None:
    absent = _absent(cs)  # no stays, and no effect brings the actor
    for aid in cs.model.actors:
        if f"present:{aid}" not in absent:
            continue
        uses = [loc for loc, names in cs.expr_names.items() if f"present:{aid}" in names]
        if uses:
            out.append(
                Issue(
                    ("actors", aid),
                    f"actor '{aid}' is never present (no 'present:' stays), yet "
                    f"present('{aid}') is used in {_where(uses)}: it is always false there; "
                    "give the actor a stay",
                )
            )


def _top(sampler: Any) -> str:
    """The largest value a draw can take, as a duration (or "no upper bound")."""
    try:
        top = float(sampler(1.0))
    except (ArithmeticError, ValueError):
        top = math.inf
    return format_duration(top) if math.isfinite(top) else "no upper bound"


def _grid(sampler: Any) -> list[float]:
    if sampler is None:
        return [0.0]
    return sorted(sampler((i + 0.5) / GRID) for i in range(GRID))


def _stays(cs: CompiledScenario, out: list[Issue]) -> None:
    """Arrival and departure draws that can meet: the actor then misses the stay."""
    said: set[tuple[str, int]] = set()  # a recurring window's stays: say it once
    for stay in cs.stays:
        aid = stay.actor
        if stay.arrival is None and stay.departure is None:
            continue
        span = stay.end - stay.start
        arrivals, departures = _grid(stay.arrival), _grid(stay.departure)
        missed = sum(len(departures) - bisect_left(departures, span - a) for a in arrivals) / (
            len(arrivals) * len(departures)
        )
        if missed < NEVER_PRESENT_SHARE:
            continue
        parts = []
        if stay.arrival is not None:
            parts.append(f"the arrival delay (up to {_top(stay.arrival)})")
        if stay.departure is not None:
            parts.append(f"the early departure (up to {_top(stay.departure)})")
        field = "departure" if stay.departure is not None else "arrival"
        if (aid, stay.entry) in said:
            continue
        said.add((aid, stay.entry))
        out.append(
            Issue(
                ("actors", aid, "present", stay.entry, field),
                f"the stay lasts {_hours(span)}, and {' plus '.join(parts)} can be longer: "
                f"in about {missed:.1%} of runs '{aid}' leaves before arriving and is never "
                "present during this stay",
            )
        )


# --- actions that can never be enabled, outcomes that cannot be reached ----------------


def _never_true(cs: CompiledScenario, fn: Any, names: frozenset[str], written: set[str]) -> bool:
    """Whether a condition is false whatever the things it reads that can change do.

    What nothing changes keeps its initial value; presence, windows and facts
    that effects set take every value they can (true/false, each enum value).
    A number fact that changes cannot be enumerated: then nothing is claimed.
    """
    absent = _absent(cs)
    varying = sorted(
        n for n in names if (n.startswith(_DYNAMIC) or n in written) and n not in absent
    )
    choices: list[list[Any]] = []
    for n in varying:
        fact = cs.model.facts.get(n)
        if fact is None or fact.type == "bool":
            choices.append([False, True])
        elif fact.type == "enum":
            choices.append(list(fact.values or ()))
        else:
            return False
    if math.prod(len(c) for c in choices) > MAX_CORNERS:
        return False
    slots = [cs.slot_names.index(n) for n in varying]
    world = list(cs.initial)
    for combo in itertools.product(*choices):
        for k, v in zip(slots, combo, strict=True):
            world[k] = v
        try:
            if fn(world):
                return False
        except (ArithmeticError, ValueError, TypeError):
            return False  # the run reports it; no guess here
    return True


def _absent(cs: CompiledScenario) -> set[str]:
    """``present:X`` for every actor with no stays that no effect brings: always false."""
    written = _written_facts(cs)
    return {
        f"present:{a}"
        for a, actor in cs.model.actors.items()
        if not actor.present and f"present:{a}" not in written
    }


def _fixed(cs: CompiledScenario, names: frozenset[str], written: set[str]) -> str:
    """``; it reads x, present('y'), which never change`` (what keeps it false)."""
    absent = _absent(cs)
    fixed = sorted(n for n in names if n in absent or not (n.startswith(_DYNAMIC) or n in written))
    if not fixed:
        return ""
    shown = [
        f"{n.split(':')[0]}('{n.split(':', 1)[1]}')" if n.startswith(("present:", "available:"))
        else n
        for n in fixed
    ]  # fmt: skip
    verb = "never changes" if len(shown) == 1 else "never change"
    return f"; it reads {', '.join(shown)}, which {verb}"


def _dead_guards(cs: CompiledScenario, out: list[Issue]) -> set[str]:
    """Actions and events whose guard or required precondition can never hold."""
    written = _written_facts(cs)
    dead: set[str] = set()
    never: dict[str, str] = {}
    for pid in cs.model.preconditions:
        names = cs.expr_names.get(("preconditions", pid, "holds"))
        fn = _precondition(cs, pid)
        if names is not None and fn is not None and _never_true(cs, fn, names, written):
            never[pid] = _fixed(cs, names, written)
    for c in cs.clocks:
        section = "actions" if c.kind == "action" else "events"
        loc: Loc = (section, c.id, "guard")
        names = cs.expr_names.get(loc)
        if names is not None:  # an event's guard also reads its window
            names |= {cs.slot_names[k] for k in c.reads}
        if names is not None and c.guard is not None and _never_true(cs, c.guard, names, written):
            dead.add(c.id)
            out.append(
                Issue(
                    loc,
                    f"the guard can never be true, whatever changes during a run"
                    f"{_fixed(cs, names, written)}: '{c.id}' can never happen",
                )
            )
        if c.kind == "action":
            for j, pid in enumerate(cs.model.actions[c.id].requires):
                if pid in never:
                    dead.add(c.id)
                    out.append(
                        Issue(
                            ("actions", c.id, "requires", j),
                            f"precondition '{pid}' can never hold, whatever changes during "
                            f"a run{never[pid]}: '{c.id}' can never happen",
                        )
                    )
    return dead


def _whens(cs: CompiledScenario, out: list[Issue]) -> None:
    """``when:`` conditions that can never change, or never be true: the event then
    happens at the start or never."""
    written = _written_facts(cs)
    absent = _absent(cs)
    for w in cs.whens:
        loc: Loc = ("events", w.id, "when")
        names = cs.expr_names.get(loc, frozenset())
        varies = [n for n in names if (n.startswith(_DYNAMIC) or n in written) and n not in absent]
        if not varies:
            try:
                at_start = bool(w.cond(list(cs.initial)))
            except (ArithmeticError, ValueError, TypeError):
                continue  # the run reports it
            fate = "happens once, at the start" if at_start else "never happens"
            reads = _fixed(cs, names, written) or "; it reads nothing that can change"
            out.append(
                Issue(
                    loc,
                    f"the condition can never change during a run{reads}: '{w.id}' {fate}; "
                    "use 'at:' for a fixed time, or test something that changes",
                )
            )
        elif _never_true(cs, w.cond, names, written):
            out.append(
                Issue(
                    loc,
                    f"the condition can never be true, whatever changes during a run"
                    f"{_fixed(cs, names, written)}: '{w.id}' never happens",
                )
            )


def _precondition(cs: CompiledScenario, pid: str) -> Any:
    """The compiled expression of precondition ``pid`` (None if no action requires it)."""
    index = cs.preconditions.index(pid)
    for c in cs.clocks:
        for pi, fn in c.requires:
            if pi == index:
                return fn
    return None


def _reachable(cs: CompiledScenario, dead: set[str]) -> set[int]:
    """Protocol states some sequence of actions and events can lead to from the initial one."""
    states = cs.states
    index = {s: i for i, s in enumerate(states)}
    moves: list[tuple[tuple[bool, ...] | None, set[str]]] = [
        (c.states, {o.trigger for o in c.options if o.trigger})
        for c in cs.clocks
        if c.id not in dead
    ]
    moves += [(None, {ev.trigger}) for ev in cs.scheduled if ev.trigger]
    moves += [(None, {w.trigger}) for w in cs.whens if w.trigger]
    reached = {cs.initial_state}
    grew = True
    while grew:
        grew = False
        for mask, triggers in moves:
            for st in list(reached):
                if (mask is not None and not mask[st]) or st in cs.outcome_states:
                    continue
                for trig in triggers:
                    event = cs.machine.events.get(trig)
                    for t in event.transitions.get(states[st], []) if event else []:
                        dest = index[str(t.dest)]
                        if dest not in reached:
                            reached.add(dest)
                            grew = True
    return reached


def _unreachable(cs: CompiledScenario, dead: set[str], out: list[Issue]) -> None:
    reached = _reachable(cs, dead)
    live = [s for i, s in enumerate(cs.states) if i in reached]
    initial = cs.states[cs.initial_state]
    for aid, act in cs.model.actions.items():
        if aid in dead:
            continue
        allowed = [act.from_] if isinstance(act.from_, str) else act.from_
        if allowed is None:
            continue
        if not any(s in live for s in allowed):
            out.append(
                Issue(
                    ("actions", aid, "from"),
                    f"'{aid}' can never be enabled: no action or event leads from "
                    f"'{initial}' to {' or '.join(repr(s) for s in allowed)}",
                )
            )
    for j, s in enumerate(cs.model.protocol.outcomes.success):
        if s not in live:
            out.append(
                Issue(
                    ("protocol", "outcomes", "success", j),
                    f"the success state '{s}' cannot be reached: no sequence of actions and "
                    f"events leads there from '{initial}' (states reached: {', '.join(live)})",
                )
            )


# --- option weights --------------------------------------------------------------------


def _candidates(cs: CompiledScenario, name: str) -> list[Any]:
    """The values ``name`` can take that a weight is most likely to go negative at."""
    slot = cs.slot_names.index(name)
    initial = cs.initial[slot]
    if name.startswith(_DYNAMIC):
        return [False, True]
    params = {p.name: p for p in cs.parameters}
    if name in params:
        p = params[name]
        if p.low is not None and p.high is not None:
            return list(dict.fromkeys([initial, p.low, p.high]))
        return [initial]
    fact = cs.model.facts.get(name)
    if fact is None:
        return [initial]
    if fact.type == "bool":
        return [False, True]
    if fact.type == "enum":
        return list(fact.values or [initial])
    if fact.low is not None and fact.high is not None:
        return list(dict.fromkeys([initial, fact.low, fact.high]))
    return [initial]  # no declared range: nothing to say about other values


def _weights(cs: CompiledScenario, out: list[Issue]) -> None:
    for c in cs.clocks:
        if c.kind != "action":
            continue
        for o in c.options:
            loc: Loc = ("actions", c.id, "options", o.id, "weight")
            names = sorted(cs.expr_names.get(loc, ()))
            if isinstance(o.weight, float) or not names:
                continue
            choices = [_candidates(cs, n) for n in names]
            if math.prod(len(v) for v in choices) > MAX_CORNERS:
                choices = [v[:2] for v in choices]
                if math.prod(len(v) for v in choices) > MAX_CORNERS:
                    continue
            found = _negative(cs, o.weight, names, choices)
            if found is not None:
                value, at = found
                given = ", ".join(f"{n} = {v:g}" if isinstance(v, float) else f"{n} = {v}"
                                  for n, v in at.items())  # fmt: skip
                out.append(
                    Issue(
                        loc,
                        f"the weight can be negative ({value:g} when {given}); a run that "
                        "meets it stops with an error: keep it at least 0, e.g. max(0, ...)",
                    )
                )


def _negative(
    cs: CompiledScenario, weight: Any, names: list[str], choices: list[list[Any]]
) -> tuple[float, dict[str, Any]] | None:
    """The most negative value of ``weight`` over ``choices`` and where (None: never)."""
    slots = [cs.slot_names.index(n) for n in names]
    world = list(cs.initial)
    worst: tuple[float, tuple[Any, ...]] | None = None
    for combo in itertools.product(*choices):
        for k, v in zip(slots, combo, strict=True):
            world[k] = v
        try:
            value = float(weight(world))
        except (ArithmeticError, ValueError, TypeError):
            continue
        if value < 0 and (worst is None or value < worst[0]):
            worst = (value, combo)
    if worst is None:
        return None
    value, combo = worst
    at = {n: v for n, k, v in zip(names, slots, combo, strict=True) if v != cs.initial[k]}
    return value, at or dict(zip(names, combo, strict=True))
