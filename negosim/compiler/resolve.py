"""Turn the values written in a scenario file into runtime values.

A number, a duration or a parameter name becomes a float; a distribution an
inverse-CDF sampler; an expression a compiled function over the slot list; a
``set:`` mapping a tuple of assignments. :mod:`negosim.compile` uses this for
every section of the file. Problems are collected, not raised.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from ..errors import ExpressionError
from ..scenario import schema
from ..scenario.units import is_duration, parse_duration
from . import dists
from .expr import Compiled, Name, closest, compile_expr, meant, not_assignable
from .tables import Assign, Value

Loc = tuple[str | int, ...]


class Issue(NamedTuple):
    """A problem found while compiling: where (``loc``), what, and for an
    expression the character ``offset`` inside it where it goes wrong."""

    loc: Loc
    message: str
    offset: int | None = None
    at_key: bool = False  # located at the key naming the value (a misspelt name used as a key)
    # Another value the message names as ``(dotted.path)``, e.g. the bound a default
    # breaks; the loader adds where that is written: ``(params.p.high, base.yaml:12:11)``.
    refer: Loc | None = None


def _const(value: Any) -> Value:
    fn = lambda s: value  # noqa: E731
    if isinstance(value, bool | str) or (isinstance(value, float) and math.isfinite(value)):
        fn.negosim_code = repr(value)  # type: ignore[attr-defined]  # see negosim.engine.generated
    return fn


class Resolver:
    """Resolves values written in the file into runtime values, collecting problems.

    Slots, quantities (numbers, durations, parameter names), distributions,
    expressions and fact assignments; every problem becomes an :class:`Issue`
    in ``problems`` instead of an exception, so all are reported at once.
    """

    def __init__(self, sc: schema.Scenario):
        self.sc = sc
        self.problems: list[Issue] = []
        self.names: dict[str, Name] = {}
        self.slot_names: list[str] = []
        self.initial: list[Any] = []
        self.params: dict[str, float] = {}
        self.param_kind: dict[str, str] = {}
        # Parameters whose default was refused (reported once, at the default): a use
        # of one is neither an unknown name nor a second problem of its own.
        self.refused: set[str] = set()
        # What the file uses, for the lints (negosim.compiler.lints): the names each
        # expression reads, by location, and the parameters named as quantities.
        self.expr_names: dict[Loc, frozenset[str]] = {}
        self.quantity_params: set[str] = set()

    def bad(
        self,
        loc: Loc,
        message: str,
        offset: int | None = None,
        *,
        at_key: bool = False,
        refer: Loc | None = None,
    ) -> None:
        """Record a problem at ``loc`` (``offset``: where in an expression; ``at_key``: at
        the key naming the value, for a name written as a key; ``refer``: another value
        the message names, see :class:`Issue`); do not raise."""
        self.problems.append(Issue(loc, message, offset, at_key, refer))

    # --- slots -------------------------------------------------------------

    def _slot(self, key: str, typ: str, value: Any, values: tuple[str, ...] | None = None) -> int:
        index = len(self.initial)
        self.names[key] = Name(index, typ, values)
        self.slot_names.append(key)
        self.initial.append(value)
        return index

    # --- quantities ----------------------------------------------------------

    def quantity(self, loc: Loc, value: float | str, *, duration: bool) -> float | None:
        """Resolve a number, duration or parameter name; None (and a problem) if bad.

        Where a duration is expected, plain numbers (written bare or quoted)
        need a unit, except 0; where a number is expected, durations and
        duration parameters are refused.
        """
        if isinstance(value, str) and is_duration(value):
            if not duration:
                self.bad(loc, f"expected a number here, found the duration {value!r}")
                return None
            return parse_duration(value)
        if isinstance(value, str) and value in self.refused:
            self.quantity_params.add(value)
            return None
        if isinstance(value, str) and value in self.params:
            self.quantity_params.add(value)
            is_dur = self.param_kind[value] == "duration"
            if duration and not is_dur:
                self.bad(loc, f"parameter {value!r} is not a duration (give it kind: duration)")
                return None
            if not duration and is_dur:
                self.bad(loc, f"parameter {value!r} is a duration; a number is expected here")
                return None
            return self.params[value]
        try:
            number = float(value)
        except ValueError:
            self.bad(loc, unknown("parameter", value, self.params, "declared"))
            return None
        if not math.isfinite(number):
            self.bad(loc, f"expected a finite number, found {value!r}")
            return None
        if duration and number != 0:
            self.bad(loc, f"a duration needs a unit: write {number:g}h or {number:g}d")
            return None
        return number

    def sampler(
        self, loc: Loc, spec: Any, *, duration: bool = True, nonnegative: bool = True
    ) -> dists.Sampler | None:
        """The inverse-CDF sampler of distribution ``spec``; None (and a problem) if bad."""
        built = self.distribution(loc, spec, duration=duration, nonnegative=nonnegative)
        return built[0] if built else None

    def distribution(
        self, loc: Loc, spec: Any, *, duration: bool = True, nonnegative: bool = True
    ) -> tuple[dists.Sampler, float | None, float | None] | None:
        """The inverse-CDF sampler of ``spec`` and the (low, high) of its support."""
        if isinstance(spec, schema.Empirical):
            vals = [
                self.quantity((*loc, "values", i), v, duration=duration)
                for i, v in enumerate(spec.values)
            ]
            if any(v is None for v in vals):
                return None
            values = [float(v) for v in vals if v is not None]
            if nonnegative and min(values) < 0:
                self.bad((*loc, "values"), "a delay cannot be negative")
                return None
            sampler = dists.build("empirical", {}, values, spec.weights)
            return (sampler, *dists.bounds("empirical", {}, values))
        resolved: dict[str, float] = {}
        for f in dists.FIELDS[spec.dist]:
            q = self.quantity((*loc, f), getattr(spec, f), duration=duration)
            if q is None:
                return None
            if nonnegative and q < 0:
                self.bad((*loc, f), f"a delay cannot be negative, found {getattr(spec, f)}")
                return None
            resolved[f] = q
        issues = dists.check(spec.dist, resolved)
        for f, msg in issues:
            self.bad((*loc, f), msg)
        if issues:
            return None
        return (dists.build(spec.dist, resolved), *dists.bounds(spec.dist, resolved))

    # --- expressions ---------------------------------------------------------

    def expr(self, loc: Loc, text: str, expect: str | None) -> Compiled | None:
        """Compile expression ``text`` (result type ``expect``); None (and a problem) if bad."""
        try:
            compiled = compile_expr(text, self.names, expect)
        except ExpressionError as exc:
            for problem in (exc, *exc.others):
                self.bad(loc, f"{problem.message} (in {shown_expression(text)})", problem.offset)
            return None
        self.expr_names[loc] = compiled.names
        return compiled

    def assigns(self, loc: Loc, sets: dict[str, Any]) -> tuple[Assign, ...]:
        """Compile a ``set:`` mapping into one :class:`Assign` per fact, skipping bad ones."""
        out = []
        for fact_id, value in sets.items():
            here = (*loc, "set", fact_id)
            fact = self.sc.facts.get(fact_id)
            if fact is None:
                self.bad(here, unknown("fact", fact_id, self.sc.facts, "declared"), at_key=True)
                continue
            slot = self.names[fact_id].index
            fn = self._assign_value(here, fact_id, fact, value)
            if fn is not None:
                out.append(Assign(slot, fact_id, fn, fact.low, fact.high))
        return tuple(out)

    def actor_flags(self, loc: Loc, field: str, flags: dict[str, bool]) -> tuple[Assign, ...]:
        """Compile a ``present:`` or ``available:`` mapping (``field``): one :class:`Assign`
        per actor's ``FIELD:ACTOR`` slot (presence, or the availability override)."""
        out = []
        for actor, value in flags.items():
            key = f"{field}:{actor}"
            if actor not in self.sc.actors or key not in self.names:
                self.bad(
                    (*loc, field, actor), unknown("actor", actor, self.sc.actors), at_key=True
                )
                continue
            out.append(Assign(self.names[key].index, key, _const(bool(value))))
        return tuple(out)

    def effects(
        self, loc: Loc, sets: dict[str, Any], present: dict[str, bool], available: dict[str, bool]
    ) -> tuple[Assign, ...]:
        """Every assignment of one effect: facts, then presence, then availability."""
        return (
            self.assigns(loc, sets)
            + self.actor_flags(loc, "present", present)
            + self.actor_flags(loc, "available", available)
        )

    def _assign_value(self, loc: Loc, fact_id: str, fact: schema.Fact, value: Any) -> Value | None:
        if fact.type == "bool":
            if isinstance(value, bool):
                return _const(value)
            if isinstance(value, str):
                c = self.expr(loc, value, "bool")
                return c.fn if c else None
        elif fact.type == "number":
            if isinstance(value, float | int) and not isinstance(value, bool):
                return _const(float(value))
            if isinstance(value, str):
                c = self.expr(loc, value, "number")
                return c.fn if c else None
        else:  # enum
            if isinstance(value, str) and fact.values and value in fact.values:
                return _const(value)
            if isinstance(value, str) and not fact.values:
                return None  # the fact has no values (reported there): nothing to judge by
            if isinstance(value, str) and value.isidentifier() and value not in self.names:
                values = tuple(fact.values or ())  # a misspelt value, not an expression
                self.bad(loc, f"{value!r} is not one of {fact_id}'s values: "
                              f"{', '.join(values)}{did_you_mean(value, values)}")  # fmt: skip
                return None
            if isinstance(value, str):
                c = self.expr(loc, value, "str")
                if c is None:
                    return None
                values = tuple(fact.values or ())
                wrong = not_assignable(value, fact_id, values)
                for one in wrong:  # found now, not when the run sets it
                    self.bad(loc, f"{one.message} (in {shown_expression(value)})", one.offset)
                return None if wrong else _enum_checked(c.fn, fact_id, values)
        self.bad(loc, f"fact {fact_id!r} is a {fact.type}; cannot set it to {value!r}")
        return None


def _enum_checked(fn: Value, fact: str, values: tuple[str, ...]) -> Value:
    """An enum assignment computed at run time must still give a declared value."""

    def checked(s: list[Any]) -> Any:
        v = fn(s)
        if v not in values:
            raise ValueError(f"{fact} cannot be set to {v!r}: not one of {', '.join(values)}")
        return v

    return checked


SHOWN_EXPRESSION = 120
"""Characters of an expression quoted in a message, at most."""


def shown_expression(text: str) -> str:
    """An expression quoted on one line: a multi-line (folded) YAML value has its line
    breaks and indentation shown as single spaces, not as escaped line breaks."""
    flat = " ".join(text.split())
    if len(flat) > SHOWN_EXPRESSION:
        flat = flat[: SHOWN_EXPRESSION - 3] + "..."
    return repr(flat)


def did_you_mean(name: str, names: Any) -> str:
    """`` (did you mean 'china'?)`` for the declared name closest to ``name``, else ``""``."""
    return meant(closest(str(name), names))


def unknown(what: str, name: Any, names: Any, label: str = "declared") -> str:
    """``unknown actor 'chna' (did you mean 'china'?); declared: china, us``."""
    return f"unknown {what} {name!r}{did_you_mean(name, names)}; {label}: {listing(names)}"


def listing(names: Any) -> str:
    """``names`` sorted and comma-separated for a message: at most 12, then the count."""
    items = sorted(set(names))  # a name listed twice (reported there) is shown once
    if not items:
        return "(none)"
    shown = ", ".join(items[:12])
    return shown + (f", … ({len(items)} in all)" if len(items) > 12 else "")
