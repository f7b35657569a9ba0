"""Bind other parameter values to a compiled scenario without compiling it again.

A sweep, a calibration and an uncertainty run simulate one scenario at many
parameter values. Compiling it for each (and building each engine from
scratch) costs more than simulating a few hundred replications, so
:func:`bind` makes a scenario with other values from an already compiled one:
it re-resolves the parameter table (the compiler's own code, so each value is
checked as when the file is compiled) and rebuilds only what parameter values
feed: the parameter slots of the slot list (expressions read parameters from
there, so every compiled expression is shared) and the distributions that name
a parameter (:attr:`CompiledScenario.param_sites`). Every other table is the
original's; the result has the same :attr:`CompiledScenario.structure`, which
lets the engines reuse what they built for the structure
(:mod:`negosim.engine.generated`, :mod:`negosim.engine.batch`).

The result is the scenario that compiling the model with these values gives,
field for field (``tests/test_bind.py`` checks the rows on every shipped
scenario). Where values would change more than values, it *is* that compile:
when a value is refused (so the ``ScenarioError`` is the compiler's, message for
message), when a parameter's kind changes (a default written as a duration
makes a ``number`` parameter a duration), or when a rate parameter becomes zero
or stops being zero (a zero-rate event has no clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..scenario import schema
from ..scenario.overrides import set_param_defaults
from . import dists
from .compile import _Compiler
from .tables import Clock, CompiledScenario, Scheduled, Stay

Values = Mapping[str, Any] | Iterable[tuple[str, Any]]
"""Parameter values by name, as ``--set NAME=VALUE`` gives them (``0.3``, ``"36h"``)."""


def bind(cs: CompiledScenario, values: Values) -> CompiledScenario:
    """``cs`` with the parameter values ``values``, sharing every table it can.

    ``values`` maps parameter names to values as ``--set NAME=VALUE`` reads
    them (``{"p_yes": 0.4, "wait": "36h"}``, or a list of pairs). The result is
    what loading the file with these overrides gives, without compiling it
    again: UsageError for an unknown name and ScenarioError for a refused
    value, with the messages compiling gives. ``sets`` records the overrides
    (``cs.sets`` then these); lints are not run again (``warnings`` is empty).

    >>> from negosim import load
    >>> from negosim.compiler.bind import bind
    >>> munich = load("scenarios/munich.yaml")
    >>> point = bind(munich, {"round_median": "10h"})
    >>> point.params["round_median"], point.structure is munich.structure
    (10.0, True)
    """
    sets = list(values.items()) if isinstance(values, Mapping) else list(values)
    if not sets:
        return cs
    model = set_param_defaults(cs.model, sets)
    all_sets = (*cs.sets, *sets)
    c = _Compiler(model)
    c.param_values()
    kinds = {p.name: p.kind for p in cs.parameters}
    if c.problems or c.param_kind != kinds or set(c.params) != set(cs.params):
        return _compiled(cs, model, all_sets)
    clocks: list[Clock] = list(cs.clocks)
    stays: list[Stay] = list(cs.stays)
    scheduled: list[Scheduled] = list(cs.scheduled)
    # Only what reads a changed value is made again (the same bits: -0.0 is not 0.0).
    changed = {n for n, v in c.params.items() if v.hex() != float(cs.params[n]).hex()}
    for site in cs.param_sites:
        if not _names(site.spec) & changed:
            continue
        if site.what == "rate":
            rate = c.quantity(site.loc, site.spec, duration=False)
            if rate is None or rate < 0 or bool(rate) != bool(site.targets):
                return _compiled(cs, model, all_sets)  # refused, or a clock comes or goes
            delay = dists.build("exponential", {"mean": 24.0 / rate})  # as the compiler does
            for k in site.targets:
                clocks[k] = replace(clocks[k], delay=delay)
            continue
        sampler = c.sampler(site.loc, site.spec, nonnegative=site.what != "jitter")
        if sampler is None:
            return _compiled(cs, model, all_sets)
        for k in site.targets:
            if site.what == "delay":
                clocks[k] = replace(clocks[k], delay=sampler)
            elif site.what == "jitter":
                scheduled[k] = replace(scheduled[k], jitter=sampler)
            elif site.what == "arrival":
                stays[k] = replace(stays[k], arrival=sampler)
            else:
                stays[k] = replace(stays[k], departure=sampler)
    if c.problems:
        return _compiled(cs, model, all_sets)
    initial = list(cs.initial)
    for k, name in enumerate(cs.slot_names):
        if name in c.params:  # a parameter's slot (facts and parameters never share a name)
            initial[k] = c.params[name]
    return replace(
        cs,
        model=model,
        initial=tuple(initial),
        params=c.params,
        parameters=_located(c.parameters, cs),
        clocks=tuple(clocks),
        stays=tuple(stays),
        scheduled=tuple(scheduled),
        sets=all_sets,
        warnings=(),
        same_structure=cs,
    )


def _names(spec: Any) -> set[str]:
    """The names a distribution or a rate is written with (parameters among them)."""
    if isinstance(spec, str):
        return {spec}
    if isinstance(spec, schema.Empirical):
        values = list(spec.values)
    else:
        values = [getattr(spec, f) for f in dists.FIELDS[spec.dist]]
    return {v for v in values if isinstance(v, str)}


def _located(parameters: Iterable[Any], cs: CompiledScenario) -> tuple[Any, ...]:
    """``parameters`` with the file and line ``cs`` gives each (where it is declared)."""
    where = {p.name: (p.file, p.line) for p in cs.parameters}
    return tuple(replace(p, file=where[p.name][0], line=where[p.name][1]) for p in parameters)


def _compiled(
    cs: CompiledScenario, model: Any, sets: tuple[tuple[str, Any], ...]
) -> CompiledScenario:
    """``model`` compiled from scratch (its ScenarioError if refused): what :func:`bind`
    gives when the values change more than values."""
    from .loader import compile_model

    fresh = compile_model(model, None, list(sets))
    return replace(
        fresh,
        source=cs.source,
        source_text=cs.source_text,
        sets=sets,
        parameters=_located(fresh.parameters, cs),
    )
