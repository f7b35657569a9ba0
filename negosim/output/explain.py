"""A scenario in plain language (``negosim explain``): who, where, when, what, conditions.

Reads the compiled scenario (so times are resolved to venue-local dates and
parameters to their values, ``--set`` included) and the model's texts. It
renders; it never runs the engine.
"""

from __future__ import annotations

import re
import textwrap

from ..compiler import dists
from ..compiler.tables import CompiledScenario
from ..scenario import schema
from ..scenario.units import at_hours, format_duration, zone_names

_WIDTH = 78


def _wrap(text: str, indent: str = "  ", hang: str = "  ") -> list[str]:
    return textwrap.wrap(" ".join(text.split()), _WIDTH, initial_indent=indent,
                         subsequent_indent=indent + hang)  # fmt: skip


def _when(cs: CompiledScenario, hours: float) -> str:
    return at_hours(cs.start, hours, cs.tz).strftime("%a %d %b %Y %H:%M")


def _quantity(cs: CompiledScenario, value: float | str) -> str:
    """A distribution field as written, with a parameter's value shown."""
    if isinstance(value, str):
        for p in cs.parameters:
            if p.name == value:
                return f"{p.display} ({value})"
    return f"{value:g}" if isinstance(value, float) else str(value)


def delay_words(cs: CompiledScenario, spec: schema.Dist) -> str:
    """How long something takes, in words."""
    q = lambda v: _quantity(cs, v)  # noqa: E731 - a local shorthand
    if isinstance(spec, schema.Fixed):
        return f"after exactly {q(spec.value)}"
    if isinstance(spec, schema.Uniform):
        return f"after anywhere between {q(spec.low)} and {q(spec.high)}"
    if isinstance(spec, schema.Triangular):
        return f"after {q(spec.min)} to {q(spec.max)}, most likely {q(spec.mode)}"
    if isinstance(spec, schema.Exponential):
        return f"at any moment, on average after {q(spec.mean)}"
    if isinstance(spec, schema.LogNormal):
        return f"typically after {q(spec.median)}; one time in ten after more than {q(spec.p90)}"
    return f"after {dists.describe(spec)}"


def expression_words(cs: CompiledScenario, text: str) -> str:
    """An expression with presence and window tests spelled out."""
    actors = cs.model.actors

    def present(m: re.Match[str]) -> str:
        a = actors.get(m.group(1))
        return f"{(a.short or m.group(1)) if a else m.group(1)} is at the venue"

    text = " ".join(text.split())
    text = re.sub(r"present\('([^']*)'\)", present, text)
    def available(m: re.Match[str]) -> str:
        a = actors.get(m.group(1))
        return f"{(a.short or m.group(1)) if a else m.group(1)} can act"

    text = re.sub(r"in_window\('([^']*)'\)", r"during \1", text)
    text = re.sub(r"available\('([^']*)'\)", available, text)
    return text


def _moves(m: schema.Scenario, present: dict[str, bool], available: dict[str, bool]) -> str:
    """``{yoon: false}`` -> "then Yoon Suk Yeol leaves the venue"; ``available:`` ->
    "then Kishida Fumio cannot act until further notice"."""
    said = [
        f"{m.actors[a].name if a in m.actors else a} "
        + ("arrives at the venue" if here else "leaves the venue")
        for a, here in present.items()
    ] + [
        f"{m.actors[a].name if a in m.actors else a} "
        + ("can act again" if can else "cannot act until further notice")
        for a, can in available.items()
    ]
    return "then " + " and ".join(said)


def explain(cs: CompiledScenario) -> str:
    """The whole scenario as plain text."""
    m = cs.model
    out: list[str] = [m.title, "=" * len(m.title)]
    if m.description:
        out += _wrap(m.description, "", "")
    zones = zone_names(cs.start, cs.horizon, cs.tz)
    tz = zones[0][1] + "".join(
        f"; {name} from {since:%a %d %b %Y %H:%M}" for since, name in zones[1:]
    )
    out += ["", "WHEN AND WHERE", f"  Times are venue-local ({m.calendar.timezone}, {tz})."]
    out += _wrap(
        f"The simulation starts {_when(cs, 0)} and the question closes "
        f"{_when(cs, cs.horizon)} ({format_duration(cs.horizon)} later)."
    )
    for wid, w in m.calendar.windows.items():
        periods = cs.windows.get(wid, ())
        if w.daily is not None:
            on = f" on {', '.join(w.days)}" if w.days else " each day"
            out += _wrap(
                f"Window {wid}: {w.daily}{on} from {w.start} to {w.end} "
                f"({len(periods)} period{'' if len(periods) == 1 else 's'})."
            )
        elif w.group is not None:
            out += _wrap(f"Window {wid}: while any of {', '.join(w.group)} is open.")
        elif periods:
            a, b = periods[0]
            opens = "open from the start" if a <= 0 else f"from {_when(cs, a)}"
            closes = f"until {_when(cs, b)}" + (
                " (after the question closes)" if b > cs.horizon else ""
            )
            out += _wrap(f"Window {wid}: {opens} {closes}.")
        if w.text:
            out += _wrap(w.text, "    ")

    out += ["", "WHO"]
    for aid, actor in m.actors.items():
        out += _wrap(f"{actor.name} ({aid})" + (f": {actor.text}" if actor.text else ""))
        for stay in actor.present:
            where = f"window {stay.window}" if stay.window else f"{stay.from_} to {stay.until}"
            line = f"    At the venue: {where}"
            if stay.arrival:
                line += f"; arrives {delay_words(cs, stay.arrival)} from its start"
            if stay.departure:
                line += f"; leaves {delay_words(cs, stay.departure)} before its end"
            out += _wrap(line, "    ")
        if not actor.present:
            out.append("    Never at the venue.")
        if actor.available is not None:
            out.append(f"    Can act only during: {', '.join(actor.available)}.")

    out += ["", "THE MEETING"]
    states = m.protocol.states
    names = list(states) if isinstance(states, dict) else states
    for s in names:
        desc = states.get(s) if isinstance(states, dict) else None
        tag = " [start]" if s == m.protocol.initial else ""
        tag += " [meeting held]" if s in m.protocol.outcomes.success else ""
        tag += " [failed]" if s in m.protocol.outcomes.failure else ""
        out += _wrap(f"{s}{tag}" + (f": {desc}" if desc else ""))
    out.append("  Reaching the horizon first means: not within the horizon (censored).")

    if m.preconditions:
        out += ["", "PRECONDITIONS"]
        for pid, p in m.preconditions.items():
            who = m.actors[p.insisted_by].name
            out += _wrap(f"{who} insists: {p.text} ({pid}; met when: "
                         f"{expression_words(cs, p.holds)})")  # fmt: skip

    out += ["", "WHAT EACH SIDE MAY DO"]
    for aid, actor in m.actors.items():
        acts = [(k, act) for k, act in m.actions.items() if act.actor == aid]
        if not acts:
            continue
        out.append(f"  {actor.name}:")
        for k, act in acts:
            out += _wrap(f"- {act.text or k} ({k})", "    ")
            frm = act.from_
            if frm is not None:
                frm_text = frm if isinstance(frm, str) else ", ".join(frm)
                out += _wrap(f"in state: {frm_text}", "        ")
            if act.guard:
                out += _wrap(f"only when: {expression_words(cs, act.guard)}", "        ")
            if act.requires:
                # Texts are sentences ("Seoul must be willing to meet."): drop the
                # full stop before joining, or the list reads ".;".
                conds = "; ".join(
                    m.preconditions[r].text.strip().rstrip(".") for r in act.requires
                ) + "."
                out += _wrap(f"only once met: {conds}", "        ")
            out += _wrap(f"happens {delay_words(cs, act.delay)}", "        ")
            if act.present or act.available:
                out += _wrap(_moves(m, act.present, act.available), "        ")
            for oid, o in act.options.items():
                wt = o.weight
                weight = f"{wt:g}" if isinstance(wt, float | int) else expression_words(cs, wt)
                out += _wrap(f"* {o.text or oid} (weight {weight})", "        ")
                if o.present or o.available:
                    out += _wrap(_moves(m, o.present, o.available), "          ")

    if m.events:
        out += ["", "OUTSIDE EVENTS"]
        for eid, ev in m.events.items():
            if ev.at is not None:
                when = f"at {ev.at}" + (f", give or take {delay_words(cs, ev.jitter)}"
                                        if ev.jitter else "")  # fmt: skip
                if ev.guard:
                    when += f", only if then {expression_words(cs, ev.guard)}"
            elif ev.when is not None:
                when = (f"as soon as {expression_words(cs, ev.when)} (again each time it "
                        "becomes true after being false)")  # fmt: skip
            else:
                when = f"at random, {_quantity(cs, ev.rate or 0)} times a day on average"
                if ev.window:
                    when += f" during {ev.window}"
                if ev.guard:
                    when += f" while {expression_words(cs, ev.guard)}"
            out += _wrap(f"- {ev.text or eid} ({eid}): {when}")
            if ev.present or ev.available:
                out += _wrap(_moves(m, ev.present, ev.available), "    ")

    if m.sources:
        out += ["", "SOURCES"]
        for src in m.sources.values():
            bits = [x for x in (src.outlet, src.date) if x]
            out += _wrap(f"- {src.title}" + (f" ({', '.join(bits)})" if bits else ""))
    return "\n".join(out) + "\n"
