"""Check a validated scenario as a whole and compile it into runtime tables.

:mod:`negosim.schema` checks each value on its own; this module checks what
needs the whole file (references to actors, states, facts, parameters,
windows and preconditions; expressions; calendar arithmetic; reachability of
outcomes) and, in the same pass, builds the flat structures the engine runs
on: a slot list for the world state, compiled expressions, inverse-CDF
samplers (values resolved by :mod:`negosim.resolve`), and one `transitions`
machine for the protocol, in the tables of :mod:`negosim.tables`. It runs once per
scenario, never per replication; a sweep point's values are bound to the compiled
scenario (:mod:`negosim.compiler.bind`, which rebuilds the ``param_sites`` recorded
here), not compiled again.

All problems are collected, not just the first; each is a (loc, message) pair
that the loader turns into a located ``FILE:LINE:COL`` line.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from transitions import Machine

from ..scenario import schema
from ..scenario.units import (
    at_hours,
    format_duration,
    hours_between,
    is_duration,
    parse_datetime,
    parse_duration,
    zone,
)
from . import dists
from .expr import Compiled, Name, conjunction
from .parameters import Parameter, Uncertainty
from .resolve import Issue, Loc, Resolver, did_you_mean, unknown
from .tables import (
    Clock,
    CompiledScenario,
    Edge,
    Outcome,
    ParamSite,
    Scheduled,
    Stay,
    Value,
    Watched,
)


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


MAX_HORIZON_DAYS = 3653  # reports list every local day up to the horizon


def _check_wall_clock(text: str, when: datetime, tz: ZoneInfo) -> None:
    """ValueError if a venue-local time (written without an offset) falls in a DST gap
    (it never happens) or a DST overlap (it happens twice): never guessed silently."""
    if when.tzinfo is not tz:
        return  # written with its UTC offset: unambiguous
    early, late = when.replace(fold=0), when.replace(fold=1)
    a, b = early.utcoffset(), late.utcoffset()
    if a == b:
        return
    shown = when.strftime("%Y-%m-%d %H:%M")
    roundtrip = early.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if roundtrip != when.replace(tzinfo=None):
        raise ValueError(
            f"{shown} does not exist in {tz.key}: the clocks skip it (a daylight-saving gap); "
            "choose a time outside the gap"
        )
    raise ValueError(
        f"{shown} happens twice in {tz.key} (the clocks go back); write it with its UTC "
        f"offset, {early.isoformat(' ', 'minutes')} or {late.isoformat(' ', 'minutes')}"
    )


_HOURS = re.compile(r"\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _merged(periods: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """``periods`` sorted, those that overlap or touch joined into one."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(periods):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(out)


UTC_ZONE = ZoneInfo("UTC")
_STAND_IN_START = datetime(2000, 1, 1, tzinfo=UTC_ZONE)
"""The start the other times are checked against when the calendar's own is wrong."""

_MACHINE_ATTRIBUTES = frozenset({"state", "trigger", "get_graph"})
"""Names ``transitions`` (and its diagram extension) sets on the model: no trigger may
be called so, or it would replace the machine's own attribute."""


class _Compiler(Resolver):
    """Checks each section of the file and builds its part of the runtime tables."""

    def __init__(self, sc: schema.Scenario):
        super().__init__(sc)
        self.parameters: list[Parameter] = []
        self.clock: tuple[ZoneInfo, datetime] = (UTC_ZONE, _STAND_IN_START)

    # --- sections --------------------------------------------------------------

    def calendar(self) -> tuple[ZoneInfo, datetime, float] | None:
        """The zone, start and horizon; None if one is wrong (reported). Either way
        ``self.clock`` is set, so that the other times of the file are still checked."""
        cal = self.sc.calendar
        # Stand-ins for a wrong zone or start: what is checked against them (a time
        # of day, a window ending before it starts) does not depend on them, and
        # neither gives a message of its own (UTC has no daylight-saving gaps).
        try:
            tz = zone(cal.timezone)
        except ValueError as exc:
            self.bad(("calendar", "timezone"), str(exc))
            tz = None
        try:
            start = parse_datetime(cal.start, tz or UTC_ZONE)
            if tz is not None:
                _check_wall_clock(cal.start, start, tz)
        except ValueError as exc:
            self.bad(("calendar", "start"), str(exc))
            self.clock = (tz or UTC_ZONE, _STAND_IN_START.replace(tzinfo=tz or UTC_ZONE))
            # How the horizon is written is still checked (not its order: no start).
            self.time_or_offset(("calendar", "horizon"), cal.horizon, *self.clock)
            return None
        if tz is None:
            self.clock = (UTC_ZONE, start)
            horizon = self.time_or_offset(("calendar", "horizon"), cal.horizon, UTC_ZONE, start)
            if horizon is not None and horizon <= 0:  # in one zone, whichever it is
                self.bad(("calendar", "horizon"), "the horizon must come after the start")
            return None
        self.clock = (tz, start)
        horizon = self.time_or_offset(("calendar", "horizon"), cal.horizon, tz, start)
        if horizon is None:
            return None
        if horizon <= 0:
            self.bad(("calendar", "horizon"), "the horizon must come after the start")
            return None
        if horizon > MAX_HORIZON_DAYS * 24:
            self.bad(
                ("calendar", "horizon"),
                f"the horizon is {horizon / 24:.0f} days after the start; "
                f"at most {MAX_HORIZON_DAYS} days (10 years) are supported",
            )
            return None
        try:  # reports walk the local calendar from the day before to the day after
            at_hours(start, -48.0, tz)
            at_hours(start, horizon + 48.0, tz)
        except OverflowError:
            self.bad(("calendar", "start"), "the simulated period is too close to year 1 or 9999")
            return None
        return tz, start, horizon

    def time_or_offset(self, loc: Loc, text: str, tz: ZoneInfo, start: datetime) -> float | None:
        """Hours after start of a datetime, or of a duration counted from start."""
        if is_duration(text):
            return parse_duration(text)
        try:
            when = parse_datetime(text, tz)
            _check_wall_clock(text, when, tz)
            return hours_between(start, when)
        except ValueError as exc:
            self.bad(loc, str(exc))
            return None
        except OverflowError:  # e.g. 0001-01-01 00:00 in a zone east of UTC
            self.bad(loc, f"{text!r} is too close to year 1 or 9999")
            return None

    def windows(self, tz: ZoneInfo, start: datetime) -> dict[str, tuple[tuple[float, float], ...]]:
        """Each window's periods (hours after start), merged where they overlap or touch."""
        spans: dict[str, tuple[tuple[float, float], ...]] = {}
        windows = self.sc.calendar.windows
        for wid, w in windows.items():
            loc: Loc = ("calendar", "windows", wid)
            if w.group is not None:
                continue
            if w.daily is not None:
                periods = self.recurring(loc, w, tz, start)
                if periods is not None:
                    spans[wid] = _merged(periods)
                continue
            a = self.time_or_offset((*loc, "start"), w.start or "", tz, start)
            if a is None:
                continue
            if w.end is not None:
                b = self.time_or_offset((*loc, "end"), w.end, tz, start)
            else:
                try:
                    b = a + parse_duration(w.duration or "")
                except ValueError as exc:
                    self.bad((*loc, "duration"), str(exc))
                    continue
            if b is None:
                continue
            if b <= a:
                self.bad((*loc, "end" if w.end else "duration"), "the window ends before it starts")
                continue
            spans[wid] = ((a, b),)
        for wid, w in windows.items():  # groups: the union of their members' periods
            if w.group is None:
                continue
            periods = []
            for j, member in enumerate(w.group):
                where: Loc = ("calendar", "windows", wid, "group", j)
                if member not in windows:
                    self.bad(where, unknown("window", member, windows, "windows"))
                elif windows[member].group is not None:
                    self.bad(where, f"{member!r} is a group itself; list its windows instead")
                else:
                    periods += spans.get(member, ())
            spans[wid] = _merged(periods)
        return spans

    def recurring(
        self, loc: Loc, w: schema.Window, tz: ZoneInfo, start: datetime
    ) -> list[tuple[float, float]] | None:
        """The periods of a window with ``daily`` hours, venue-local on each day (DST-correct)."""
        days: list[date] = []
        for key in ("start", "end"):
            text = str(getattr(w, key))
            try:
                days.append(date.fromisoformat(text.strip()))
            except ValueError:
                msg = f"with 'daily', write a date such as 2023-06-02, not {text!r}"
                self.bad((*loc, key), msg)
        match = _HOURS.fullmatch(w.daily or "")
        hours: list[time] = []
        if match is None:
            self.bad((*loc, "daily"), f"write the hours as 08:00-22:00, not {w.daily!r}")
        else:
            for h, m in ((match[1], match[2]), (match[3], match[4])):
                if int(m) > 59 or int(h) > 24 or (int(h) == 24 and int(m) > 0):
                    self.bad((*loc, "daily"), f"{h}:{m} is not a time of day")
                else:
                    hours.append(time(0) if int(h) == 24 else time(int(h), int(m)))
            if len(hours) == 2 and hours[0] == hours[1] and match[3] != "24":
                self.bad((*loc, "daily"), "the hours open and close at the same time")
        if len(days) < 2:
            return None
        first, last = days  # checked even if the hours are wrong: both are reported
        if last < first:
            self.bad((*loc, "end"), "the last date comes before the first")
            return None
        if (last - first).days > MAX_HORIZON_DAYS:
            self.bad((*loc, "end"), f"at most {MAX_HORIZON_DAYS} days of recurring hours")
            return None
        if len(hours) < 2:
            return None
        wanted = set(w.days) if w.days else None
        opens, closes = hours
        next_day = closes <= opens  # e.g. 22:00-02:00, or 00:00-24:00
        periods = []
        day = first
        while day <= last:
            if wanted is None or _WEEKDAYS[day.weekday()] in wanted:
                # A wall time in a DST gap is read as after the gap (fold=0), one that
                # happens twice as the first of the two.
                a = datetime.combine(day, opens, tzinfo=tz)
                b = datetime.combine(day + timedelta(days=next_day), closes, tzinfo=tz)
                periods.append((hours_between(start, a), hours_between(start, b)))
            day += timedelta(days=1)
        if not periods:
            self.bad((*loc, "days"), "no date from 'start' to 'end' falls on these days")
            return None
        return periods

    def param_number(self, loc: Loc, x: float | str, kind: str) -> float | None:
        """A parameter's default or bound: a number, or a duration for duration parameters."""
        if isinstance(x, float | int):
            number = float(x)
        elif kind == "duration" and is_duration(x):
            return parse_duration(x)
        else:
            try:
                number = float(x)
            except ValueError:
                unit = "a duration such as 12h" if kind == "duration" else "a number"
                self.bad(loc, f"expected {unit}, found {x!r}")
                return None
        if not math.isfinite(number):  # nan would pass every range check
            self.bad(loc, f"expected a finite number, found {x!r}")
            return None
        return number

    @staticmethod
    def shown(x: float, kind: str) -> str:
        """A parameter's value or bound as the reader wrote it: ``36h``, ``0.7``."""
        return format_duration(x) if kind == "duration" else f"{x:g}"

    def check_range(
        self, loc: Loc, kind: str, value: float, low: float | None, high: float | None
    ) -> bool:
        """A problem at ``loc``'s default if it breaks a bound: the one the kind implies
        (0 to 1 for a probability, at least 0 for a rate or duration), else the
        declared ``low``/``high``, named with its path (the loader adds where it is
        written: a base, a case)."""
        at, found = (*loc, "default"), self.shown(value, kind)
        if kind == "probability" and not 0.0 <= value <= 1.0:
            self.bad(at, f"must be a probability (0 to 1), found {found}")
        elif kind in ("rate", "duration") and value < 0:
            self.bad(at, f"must be at least 0 (a {kind} cannot be negative), found {found}")
        elif low is not None and value < low:
            bound = (*loc, "low")
            self.bad(at, f"must be at least {self.shown(low, kind)} ({_dotted(bound)}), "
                     f"found {found}", refer=bound)  # fmt: skip
        elif high is not None and value > high:
            bound = (*loc, "high")
            self.bad(at, f"must be at most {self.shown(high, kind)} ({_dotted(bound)}), "
                     f"found {found}", refer=bound)  # fmt: skip
        else:
            return True
        return False

    def param_values(self) -> None:
        """Resolve every parameter and build the parameter table (:class:`Parameter`)."""
        declared: dict[str, tuple[float | None, float | None]] = {}
        for pid, p in self.sc.params.items():
            loc: Loc = ("params", pid)
            kind: str = p.kind
            if isinstance(p.default, str) and is_duration(p.default) and kind == "number":
                kind = "duration"
            self.param_kind[pid] = kind

            value = self.param_number((*loc, "default"), p.default, kind)
            low = self.param_number((*loc, "low"), p.low, kind) if p.low is not None else None
            high = self.param_number((*loc, "high"), p.high, kind) if p.high is not None else None
            declared[pid] = (low, high)
            if value is None:
                self.refused.add(pid)
                continue
            if low is not None and high is not None and low > high:
                self.bad((*loc, "high"), f"high ({high:g}) is below low ({low:g})")
            if not self.check_range(loc, kind, value, low, high):
                self.refused.add(pid)
            if p.actor is not None and p.actor not in self.sc.actors:
                self.bad(
                    (*loc, "actor"),
                    unknown("actor", p.actor, self.sc.actors, "declared"),
                )
            self.params[pid] = value
        # Uncertainty distributions may only refer to parameters resolved above.
        for pid, p in self.sc.params.items():
            if pid not in self.params:
                continue
            kind = self.param_kind[pid]
            uncertainty = None
            if p.uncertainty is not None:
                built = self.distribution(
                    ("params", pid, "uncertainty"),
                    p.uncertainty,
                    duration=kind == "duration",
                    nonnegative=False,
                )
                if built is not None:
                    sample, u_low, u_high = built
                    uncertainty = Uncertainty(
                        p.uncertainty, dists.describe(p.uncertainty), sample, u_low, u_high
                    )
            # The range shown and swept: declared, else the distribution's support,
            # else what the kind implies.
            low, high = declared[pid]
            if low is None and high is None and uncertainty is not None:
                low, high = uncertainty.low, uncertainty.high
            if kind == "probability":
                low = 0.0 if low is None else low
                high = 1.0 if high is None else high
            elif kind in ("rate", "duration") and low is None:
                low = 0.0
            self.parameters.append(
                Parameter(
                    name=pid,
                    value=self.params[pid],
                    kind=kind,
                    written=p.default,
                    low=low,
                    high=high,
                    uncertainty=uncertainty,
                    source=p.source,
                    assumption=p.assumption,
                    actor=p.actor,
                    text=p.text,
                    path=f"params.{pid}",
                )
            )

    def facts(self) -> None:
        for fid, f in self.sc.facts.items():
            loc: Loc = ("facts", fid)
            init = f.initial
            if f.type == "bool":
                if not isinstance(init, bool):
                    self.bad((*loc, "initial"), f"expected true or false, found {init!r}")
                self._slot(fid, "bool", bool(init))
            elif f.type == "number":
                if isinstance(init, bool) or not isinstance(init, float | int):
                    self.bad((*loc, "initial"), f"expected a number, found {init!r}")
                    init = 0.0
                if f.low is not None and f.high is not None and f.low > f.high:
                    self.bad((*loc, "high"), f"high ({f.high:g}) is below low ({f.low:g})")
                elif (f.low is not None and init < f.low) or (f.high is not None and init > f.high):
                    self.bad((*loc, "initial"), f"{init:g} is outside [{f.low}, {f.high}]")
                self._slot(fid, "number", float(init))
            else:
                if not f.values:
                    self.bad((*loc, "values"), "an enum fact needs a list of values")
                    values: tuple[str, ...] = ()
                else:
                    values = tuple(f.values)
                if values and init not in values:
                    hint = did_you_mean(str(init), values)
                    self.bad((*loc, "initial"), f"{init!r} is not one of {', '.join(values)}{hint}")
                self._slot(fid, "str", str(init), values)
            if f.type != "enum" and f.values is not None:
                self.bad((*loc, "values"), "only enum facts have values")

    def protocol(self) -> tuple[list[str], Machine] | None:
        p = self.sc.protocol
        states = p.state_names()
        known = set(states)
        ok = True
        seen: set[str] = set()
        for i, name in enumerate(states):
            if name in seen:  # said at its second listing (a mapping cannot repeat a key)
                at: Loc = ("protocol", "states", i) if isinstance(p.states, list) else (
                    "protocol", "states")  # fmt: skip
                self.bad(at, f"the state {name!r} is listed twice")
                ok = False
            seen.add(name)
        if p.initial not in known:
            self.bad(
                ("protocol", "initial"), unknown("state", p.initial, states, "states")
            )
            ok = False
        reached = {p.initial}
        for i, t in enumerate(p.transitions):
            sources = [t.source] if isinstance(t.source, str) else t.source
            for j, src in enumerate(sources):
                if src not in known:
                    where: Loc = ("protocol", "transitions", i, "source")
                    if isinstance(t.source, list):
                        where = (*where, j)
                    self.bad(where, unknown("state", src, states, "states"))
                    ok = False
            if t.dest not in known:
                self.bad(
                    ("protocol", "transitions", i, "dest"),
                    unknown("state", t.dest, states, "states"),
                )
                ok = False
        for kind in ("success", "failure"):
            for j, s in enumerate(getattr(p.outcomes, kind)):
                if s not in known:
                    self.bad(
                        ("protocol", "outcomes", kind, j),
                        unknown("state", s, states, "states"),
                    )
                    ok = False
        if p.initial in [*p.outcomes.success, *p.outcomes.failure]:
            self.bad(
                ("protocol", "initial"),
                f"initial state {p.initial!r} is already an outcome: every run would end "
                "before anything happens; start in a state before the outcome",
            )
            ok = False
        triggers = {t.trigger for t in p.transitions}
        reserved = (
            _MACHINE_ATTRIBUTES
            | {f"{pre}_{s}" for s in states for pre in ("is", "to")}
            | {f"may_{t}" for t in triggers}
        )
        for i, t in enumerate(p.transitions):
            if t.trigger in reserved or t.trigger.startswith("__"):
                self.bad(
                    ("protocol", "transitions", i, "trigger"),
                    f"trigger name {t.trigger!r} is taken by the state machine itself "
                    f"(its model's {t.trigger!r}); choose another name",
                )
                ok = False
        if not ok:
            return None
        # Reachability from the initial state along the transition table.
        frontier = [p.initial]
        while frontier:
            here = frontier.pop()
            for t in p.transitions:
                sources = [t.source] if isinstance(t.source, str) else t.source
                if here in sources and t.dest not in reached:
                    reached.add(t.dest)
                    frontier.append(t.dest)
        for kind in ("success", "failure"):
            for j, s in enumerate(getattr(p.outcomes, kind)):
                if s not in reached:
                    self.bad(
                        ("protocol", "outcomes", kind, j),
                        f"no transition reaches the outcome state {s!r} from {p.initial!r}",
                    )
        overlap = set(p.outcomes.success) & set(p.outcomes.failure)
        if overlap:
            self.bad(("protocol", "outcomes"), f"{sorted(overlap)} are both success and failure")
        machine = Machine(
            model=None,
            states=states,
            initial=p.initial,
            auto_transitions=False,
            ignore_invalid_triggers=True,
            transitions=[t.model_dump() for t in p.transitions],
        )
        return states, machine

    def trigger_ok(
        self, loc: Loc, trigger: str | None, machine: Machine | None, from_states: list[str]
    ) -> None:
        if trigger is None:
            return
        if machine is None:
            # The protocol has a problem of its own (reported): its trigger names are
            # still known, so a misspelt one is reported in the same pass.
            declared = list(dict.fromkeys(t.trigger for t in self.sc.protocol.transitions))
            if declared and trigger not in declared:
                what = unknown("trigger", trigger, declared, "protocol triggers")
                self.bad((*loc, "trigger"), what)
            return
        event = machine.events.get(trigger)
        if event is None:
            self.bad(
                (*loc, "trigger"),
                unknown("trigger", trigger, machine.events, "protocol triggers"),
            )
            return
        missing = [s for s in from_states if s not in event.transitions]
        if missing:
            self.bad(
                (*loc, "trigger"),
                f"trigger {trigger!r} is not defined from state(s) {', '.join(missing)}; "
                "limit the action with 'from:' or add the transition",
            )


def _event_guard(
    c: _Compiler, loc: Loc, ev: schema.Event
) -> tuple[Value | None, frozenset[int], list[str]]:
    """A random event is enabled while its window is open and its guard holds.

    Returns the combined guard and the slots it reads."""
    window: int | None = None
    if ev.window is not None:
        key = f"window:{ev.window}"
        if key in c.names:
            window = c.names[key].index
        else:
            c.bad(
                (*loc, "window"),
                unknown("window", ev.window, c.sc.calendar.windows, "windows"),
            )
    compiled = c.expr((*loc, "guard"), ev.guard, "bool") if ev.guard else None
    g = compiled.fn if compiled else None
    reads = _reads(c, compiled) | (frozenset() if window is None else frozenset((window,)))
    codes = ([] if window is None else [f"s[{window}]"]) + ([compiled.code] if compiled else [])
    if window is not None and g is not None:
        return (lambda s: s[window] and g(s)), reads, codes
    if window is not None:
        return (lambda s: s[window]), reads, codes
    return g, reads, codes


def _windows_code(slots: tuple[int, ...] | None) -> list[str]:
    """An actor's availability as code: one of its window slots is true."""
    if slots is None:
        return []
    return [" or ".join(f"s[{k}]" for k in slots) or "False"]


def _reads(c: _Compiler, *compiled: Compiled | None) -> frozenset[int]:
    """The slots that compiled expressions read (what the engine watches for changes)."""
    return frozenset(c.names[n].index for e in compiled if e is not None for n in e.names)


def _uses_params(c: _Compiler, spec: Any) -> bool:
    """Whether distribution ``spec`` names a parameter (its sampler is then rebuilt for
    other parameter values, :mod:`negosim.compiler.bind`)."""
    if isinstance(spec, schema.Empirical):
        values = list(spec.values)
    else:
        values = [getattr(spec, f) for f in dists.FIELDS[spec.dist]]
    return any(isinstance(v, str) and v in c.params for v in values)


def _as_list(x: str | list[str] | None) -> list[str] | None:
    return [x] if isinstance(x, str) else x


def compile_scenario(sc: schema.Scenario) -> tuple[CompiledScenario | None, list[Issue]]:
    """Check ``sc`` as a whole and build its runtime tables.

    Returns ``(compiled, [])`` or ``(None, problems)``; never raises for bad input.
    """
    c = _Compiler(sc)
    cal = c.calendar()
    c.param_values()
    c.facts()
    for pid in sc.params:
        if pid in c.names:
            c.bad(("params", pid), f"{pid!r} is both a fact and a parameter")
        elif pid in c.params:
            c._slot(pid, "number", c.params[pid])
        else:  # its default was refused (reported): its uses are not "unknown name"
            c._slot(pid, "number", 0.0)
    spans: dict[str, tuple[tuple[float, float], ...]] = {}
    spans = c.windows(*c.clock)  # checked even if the calendar is wrong (not built then)
    for wid in sc.calendar.windows:
        c._slot(f"window:{wid}", "bool", any(a <= 0 < b for a, b in spans.get(wid, ())))
    for aid in sc.actors:
        c._slot(f"present:{aid}", "bool", False)
    # Whether effects let each actor act (``available: {a: false}``): true at the start.
    # ``available('a')`` reads it and the actor's windows.
    for aid, actor in sc.actors.items():
        index = c._slot(f"available:{aid}", "bool", True)
        if actor.available is not None:
            windows = tuple(f"window:{w}" for w in actor.available if f"window:{w}" in c.names)
            c.names[f"available:{aid}"] = Name(index, "bool", None, windows)
    effects = [*sc.actions.values(), *(o for a in sc.actions.values() for o in a.options.values()),
               *sc.events.values()]  # fmt: skip
    overridden = {a for e in effects for a in e.available if a in sc.actors}

    proto = c.protocol()
    states, machine = proto if proto else (sc.protocol.state_names(), None)
    outcome_names = set(sc.protocol.outcomes.success) | set(sc.protocol.outcomes.failure)
    live_states = [s for s in states if s not in outcome_names]

    # What parameter values build (rebuilt by negosim.compiler.bind for other values).
    sites: list[ParamSite] = []
    # Actors: availability windows and stays at the venue.
    actor_windows: dict[str, tuple[int, ...] | None] = {}
    stays: list[Stay] = []
    for aid, actor in sc.actors.items():
        loc: Loc = ("actors", aid)
        if actor.available is None:
            actor_windows[aid] = None
        else:
            for j, w in enumerate(actor.available):
                if w not in sc.calendar.windows:
                    c.bad(
                        (*loc, "available", j),
                        unknown("window", w, sc.calendar.windows, "windows"),
                    )
            actor_windows[aid] = tuple(
                c.names[f"window:{w}"].index for w in actor.available if f"window:{w}" in c.names
            )
        for j, stay in enumerate(actor.present):
            here: Loc = (*loc, "present", j)
            periods: tuple[tuple[float, float], ...] = ()
            if stay.window is not None:
                if stay.window not in sc.calendar.windows:
                    c.bad(
                        (*here, "window"),
                        unknown("window", stay.window, sc.calendar.windows, "windows"),
                    )
                periods = spans.get(stay.window, ())  # a recurring window: one stay each
            else:
                begin = c.time_or_offset((*here, "from"), stay.from_ or "", *c.clock)
                until = c.time_or_offset((*here, "until"), stay.until or "", *c.clock)
                if begin is not None and until is not None:
                    if until <= begin:
                        c.bad((*here, "until"), "the stay ends before it starts")
                    else:
                        periods = ((begin, until),)
            arrival = c.sampler((*here, "arrival"), stay.arrival) if stay.arrival else None
            departure = c.sampler((*here, "departure"), stay.departure) if stay.departure else None
            first = len(stays)
            for a, b in periods:
                if b <= 0:
                    # Over before the start (a recurring window's hours on the first day,
                    # before the start time): no stay, rather than one that arrives and
                    # leaves at time 0.
                    continue
                stays.append(
                    Stay(aid, c.names[f"present:{aid}"].index, a, b, arrival, departure, j)
                )
            targets = tuple(range(first, len(stays)))
            for what, spec in (("arrival", stay.arrival), ("departure", stay.departure)):
                if spec is not None and _uses_params(c, spec):
                    sites.append(ParamSite((*here, what), spec, what, targets))

    # Preconditions.
    prec_ids = list(sc.preconditions)
    prec_fns: dict[str, Value] = {}
    prec_exprs: dict[str, Compiled] = {}
    for pid, pre in sc.preconditions.items():
        if pre.insisted_by not in sc.actors:
            c.bad(
                ("preconditions", pid, "insisted_by"),
                unknown("actor", pre.insisted_by, sc.actors, "declared"),
            )
        e = c.expr(("preconditions", pid, "holds"), pre.holds, "bool")
        if e is not None:
            prec_fns[pid] = e.fn
            prec_exprs[pid] = e

    def state_mask(loc: Loc, from_: list[str] | None) -> tuple[tuple[bool, ...], list[str]]:
        allowed = live_states if from_ is None else from_
        for j, s in enumerate(allowed):
            if s not in states:
                c.bad(
                    loc if isinstance(from_, list) and len(from_) == 1 else (*loc, j),
                    unknown("state", s, states, "states"),
                )
            elif s in outcome_names:
                c.bad(loc, f"{s!r} is an outcome state: nothing happens after an outcome")
        return tuple(s in allowed for s in states), [s for s in allowed if s in states]

    clocks: list[Clock] = []
    for aid, act in sc.actions.items():
        loc = ("actions", aid)
        if act.actor not in sc.actors:
            c.bad((*loc, "actor"), unknown("actor", act.actor, sc.actors, "declared"))
        mask, from_states = state_mask((*loc, "from"), _as_list(act.from_))
        guard = c.expr((*loc, "guard"), act.guard, "bool") if act.guard else None
        requires = []
        for j, pid in enumerate(act.requires):
            if pid not in sc.preconditions:
                c.bad(
                    (*loc, "requires", j),
                    unknown("precondition", pid, sc.preconditions, "declared"),
                )
            elif pid in prec_fns:
                requires.append((prec_ids.index(pid), prec_fns[pid]))
        delay = c.sampler((*loc, "delay"), act.delay)
        options: list[Outcome] = []
        if act.options:
            for oid, opt in act.options.items():
                oloc: Loc = (*loc, "options", oid)
                weight: Value | float
                if isinstance(opt.weight, float | int):
                    if not math.isfinite(opt.weight):
                        c.bad((*oloc, "weight"), f"expected a finite number, found {opt.weight}")
                    elif opt.weight < 0:
                        c.bad(
                            (*oloc, "weight"), f"a weight cannot be negative, found {opt.weight:g}"
                        )
                    weight = float(opt.weight)
                else:
                    we = c.expr((*oloc, "weight"), opt.weight, "number")
                    weight = we.fn if we else 0.0
                c.trigger_ok(oloc, opt.trigger, machine, from_states)
                sets = c.effects(oloc, opt.set, opt.present, opt.available)
                options.append(Outcome(oid, weight, sets, opt.trigger, opt.text or oid))
        else:
            c.trigger_ok(loc, act.trigger, machine, from_states)
            sets = c.effects(loc, act.set, act.present, act.available)
            options.append(Outcome(aid, 1.0, sets, act.trigger, act.text or aid))
        avail = c.names[f"available:{act.actor}"].index if act.actor in overridden else None
        if delay is not None:
            if _uses_params(c, act.delay):
                sites.append(ParamSite((*loc, "delay"), act.delay, "delay", (len(clocks),)))
            clocks.append(
                Clock(
                    len(clocks),
                    aid,
                    "action",
                    act.actor,
                    mask,
                    actor_windows.get(act.actor),
                    guard.fn if guard else None,
                    tuple(requires),
                    delay,
                    tuple(options),
                    act.text or aid,
                    act.chance,
                    _reads(c, guard, *(prec_exprs[p] for p in act.requires if p in prec_exprs))
                    | (frozenset() if avail is None else frozenset((avail,))),
                    conjunction(
                        mask,
                        [prec_exprs[p].code for p in act.requires if p in prec_exprs]
                        + ([] if avail is None else [f"s[{avail}]"])
                        + _windows_code(actor_windows.get(act.actor))
                        + ([guard.code] if guard else []),
                    ),
                    avail,
                )
            )

    scheduled: list[Scheduled] = []
    whens: list[Watched] = []
    for eid, ev in sc.events.items():
        loc = ("events", eid)
        sets = c.effects(loc, ev.set, ev.present, ev.available)
        c.trigger_ok(loc, ev.trigger, machine, [])  # an event may fire in any state
        if ev.at is not None:
            at = c.time_or_offset((*loc, "at"), ev.at, *c.clock)
            jitter = (
                c.sampler((*loc, "jitter"), ev.jitter, nonnegative=False) if ev.jitter else None
            )
            guard = c.expr((*loc, "guard"), ev.guard, "bool") if ev.guard else None
            if at is not None:
                if ev.jitter is not None and _uses_params(c, ev.jitter):
                    at_k = (len(scheduled),)
                    sites.append(ParamSite((*loc, "jitter"), ev.jitter, "jitter", at_k))
                scheduled.append(
                    Scheduled(
                        eid,
                        at,
                        jitter,
                        sets,
                        ev.trigger,
                        ev.text or eid,
                        guard.fn if guard else None,
                        " ".join((ev.guard or "").split()),
                    )  # fmt: skip
                )
            continue
        if ev.when is not None:
            cond = c.expr((*loc, "when"), ev.when, "bool")
            if cond is not None:
                whens.append(
                    Watched(
                        eid, cond.fn, sets, ev.trigger, ev.text or eid,
                        " ".join(ev.when.split()), _reads(c, cond), cond.code,
                    )  # fmt: skip
                )
            continue
        assert ev.rate is not None
        rate = c.quantity((*loc, "rate"), ev.rate, duration=False)
        if rate is not None and rate < 0:
            c.bad((*loc, "rate"), f"a rate cannot be negative, found {rate:g}")
            rate = None
        guard_fn, reads, codes = _event_guard(c, loc, ev)
        if isinstance(ev.rate, str) and ev.rate in c.params:
            sites.append(ParamSite((*loc, "rate"), ev.rate, "rate", (len(clocks),) if rate else ()))
        if rate:  # a zero rate never fires: leave it out of the clock table
            mean_h = 24.0 / rate
            clocks.append(
                Clock(
                    len(clocks),
                    eid,
                    "event",
                    None,
                    tuple(s not in outcome_names for s in states),
                    None,
                    guard_fn,
                    (),
                    dists.build("exponential", {"mean": mean_h}),
                    (Outcome(eid, 1.0, sets, ev.trigger, ev.text or eid),),
                    ev.text or eid,
                    reads=reads,
                    test=conjunction(tuple(s not in outcome_names for s in states), codes),
                )
            )

    if cal is None or machine is None or c.problems:
        return None, c.problems
    tz, start, horizon = cal
    # Every opening, then every closing, each in file order, sorted (stably) by time.
    edges = sorted(
        [
            Edge(a, c.names[f"window:{w}"].index, w, True)
            for w, periods in spans.items()
            for a, _ in periods
            if a > 0
        ]
        + [
            Edge(b, c.names[f"window:{w}"].index, w, False)
            for w, periods in spans.items()
            for _, b in periods
            if b > 0
        ],
        key=lambda e: e.at,
    )
    # For each precondition, the clocks whose effects can change what it reads: the
    # decisions the blocking report asks about ("was it refused, or never decided?").
    writes = [frozenset(a.slot for o in clock.options for a in o.sets) for clock in clocks]
    deciders = tuple(
        frozenset(k for k, w in enumerate(writes) if w & _reads(c, prec_exprs.get(pid)))
        for pid in prec_ids
    )
    success = frozenset(states.index(s) for s in sc.protocol.outcomes.success)
    failure = frozenset(states.index(s) for s in sc.protocol.outcomes.failure)
    return CompiledScenario(
        model=sc,
        tz=tz,
        start=start,
        horizon=horizon,
        slot_names=tuple(c.slot_names),
        initial=tuple(c.initial),
        states=tuple(states),
        initial_state=states.index(sc.protocol.initial),
        success=success,
        failure=failure,
        machine=machine,
        clocks=tuple(clocks),
        scheduled=tuple(scheduled),
        stays=tuple(stays),
        edges=tuple(edges),
        preconditions=tuple(prec_ids),
        max_events=sc.settings.max_events,
        params=c.params,
        parameters=tuple(c.parameters),
        windows={w: tuple(p) for w, p in spans.items()},
        expr_names=dict(c.expr_names),
        quantity_params=frozenset(c.quantity_params),
        deciders=deciders,
        whens=tuple(whens),
        param_sites=tuple(sites),
    ), []
