"""Probability distributions as inverse CDFs of one uniform number.

Every sampler takes a single uniform ``u`` in [0, 1) and returns a value.
Sampling by inversion costs one uniform per draw whatever the distribution,
which keeps replications on their own reproducible streams and makes common
random numbers across sweep points meaningful: the same ``u`` gives the
same quantile of the (possibly changed) distribution.

Values are resolved to plain floats (hours for durations) by the caller
before a sampler is built, so sampling does no look-ups.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from statistics import NormalDist
from typing import NamedTuple
from weakref import WeakKeyDictionary

from ..scenario import schema

Sampler = Callable[[float], float]
"""Maps a uniform number in [0, 1) to a draw."""

Z90 = NormalDist().inv_cdf(0.9)  # 1.2815...: the 90th percentile of N(0, 1)
_TINY = 1e-300

# Field names of each distribution whose values are quantities, in order.
FIELDS: dict[str, tuple[str, ...]] = {
    "fixed": ("value",),
    "uniform": ("low", "high"),
    "triangular": ("min", "mode", "max"),
    "exponential": ("mean",),
    "lognormal": ("median", "p90"),
}


def check(kind: str, v: dict[str, float]) -> list[tuple[str, str]]:
    """Problems with resolved values ``v`` of a ``kind`` distribution: (field, message)."""
    out: list[tuple[str, str]] = []
    if kind == "uniform" and v["low"] > v["high"]:
        out.append(("high", f"high ({v['high']:g}) is below low ({v['low']:g})"))
    elif kind == "triangular":
        if not v["min"] <= v["mode"] <= v["max"]:
            out.append(("mode", "need min <= mode <= max"))
        elif v["min"] == v["max"]:
            out.append(("max", "max must be above min (use dist: fixed for a constant)"))
    elif kind == "exponential" and v["mean"] <= 0:
        out.append(("mean", f"mean must be positive, found {v['mean']:g}"))
    elif kind == "lognormal":
        if v["median"] <= 0:
            out.append(("median", f"median must be positive, found {v['median']:g}"))
        elif v["p90"] <= v["median"]:
            out.append(("p90", f"p90 ({v['p90']:g}) must be above the median ({v['median']:g})"))
    return out


class Spec(NamedTuple):
    """What a sampler samples: its kind and resolved values (hours for durations)."""

    kind: str
    values: dict[str, float]
    atoms: tuple[float, ...] = ()  # empirical: the values
    weights: tuple[float, ...] = ()  # empirical: their weights


_SPECS: WeakKeyDictionary[Sampler, Spec] = WeakKeyDictionary()


def spec_of(sampler: Sampler) -> Spec | None:
    """The distribution a sampler made by :func:`build` draws from (None if not made there).

    Exact analysis (:mod:`negosim.analysis`) reads it: a compiled clock keeps only
    its sampler.
    """
    return _SPECS.get(sampler)


def build(
    kind: str,
    v: dict[str, float],
    values: list[float] | None = None,
    weights: list[float] | None = None,
) -> Sampler:
    """The inverse-CDF sampler of a ``kind`` distribution with resolved values.

    The sampler carries what it was built from (:func:`spec`, and :func:`spec_of`
    for the exact analysis), so that a vectorised engine can rebuild the same
    quantile function over arrays.
    """
    sampler = _build(kind, v, values, weights)
    atoms = tuple(values or ())
    _SPECS[sampler] = Spec(kind, dict(v), atoms, tuple(weights or [1.0] * len(atoms)))
    sampler.negosim_spec = (  # type: ignore[attr-defined]
        kind,
        dict(v),
        atoms,
        tuple(weights or ()),
    )
    return sampler


def spec(
    sampler: Sampler,
) -> tuple[str, dict[str, float], tuple[float, ...], tuple[float, ...]] | None:
    """What ``sampler`` was built from by :func:`build`: (kind, values, empirical values,
    empirical weights); None for a sampler made elsewhere."""
    return getattr(sampler, "negosim_spec", None)


def _build(
    kind: str,
    v: dict[str, float],
    values: list[float] | None = None,
    weights: list[float] | None = None,
) -> Sampler:
    if kind == "fixed":
        c = v["value"]
        return lambda u: c
    if kind == "uniform":
        lo, width = v["low"], v["high"] - v["low"]
        return lambda u: lo + u * width
    if kind == "triangular":
        a, c, b = v["min"], v["mode"], v["max"]
        fc = (c - a) / (b - a)
        left, right = (b - a) * (c - a), (b - a) * (b - c)
        return lambda u: a + math.sqrt(u * left) if u < fc else b - math.sqrt((1 - u) * right)
    if kind == "exponential":
        mean = v["mean"]
        return lambda u: -mean * math.log(1.0 - u)
    if kind == "lognormal":
        mu, sigma = math.log(v["median"]), math.log(v["p90"] / v["median"]) / Z90
        inv = NormalDist().inv_cdf
        return lambda u: math.exp(mu + sigma * inv(u if u > 0 else _TINY))
    if kind == "empirical":
        assert values is not None
        w = weights or [1.0] * len(values)
        total = sum(w)
        cum = [x / total for x in accumulate(w)]
        cum[-1] = 1.0
        vals = list(values)
        last = len(vals) - 1
        return lambda u: vals[min(bisect_right(cum, u), last)]
    raise ValueError(f"unknown distribution {kind!r}")


def bounds(
    kind: str, v: dict[str, float], values: list[float] | None = None
) -> tuple[float | None, float | None]:
    """The support's (low, high); None where unbounded."""
    if kind == "fixed":
        return v["value"], v["value"]
    if kind == "uniform":
        return v["low"], v["high"]
    if kind == "triangular":
        return v["min"], v["max"]
    if kind == "exponential":
        return 0.0, None
    if kind == "lognormal":
        return 0.0, None
    assert values is not None
    return min(values), max(values)


def describe(
    spec: schema.Fixed
    | schema.Uniform
    | schema.Triangular
    | schema.Exponential
    | schema.LogNormal
    | schema.Empirical,
) -> str:
    """A short human description, as written in the file: ``lognormal(median=12h, p90=2d)``."""
    if isinstance(spec, schema.Empirical):
        inner = ", ".join(str(x) for x in spec.values)
        return f"empirical({inner})"
    fields = FIELDS[spec.dist]
    inner = ", ".join(
        f"{f}={getattr(spec, f):g}"
        if isinstance(getattr(spec, f), float)
        else f"{f}={getattr(spec, f)}"
        for f in fields
    )
    return f"{spec.dist}({inner})"
