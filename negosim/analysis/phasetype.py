"""Phase-type fits of delay distributions, for the phase-type mode of ``negosim analyze``.

A phase-type (PH) distribution is the time to absorption of a small Markov
chain: it starts in a phase drawn from ``alpha`` and moves between phases at
the rates of the sub-generator ``T``; leaving the transient phases is the
delay ending. Replacing each non-exponential delay by a PH fit turns a
scenario into a continuous-time Markov chain whose states also record the
phase of each enabled clock.

The fits here are our own: a **mixture of Erlang distributions with one
common rate** ``mu`` (Erlang-1 to Erlang-K), which is a Coxian chain of K
phases of rate ``mu`` that starts in phase 1 and, after phase ``k``, ends
with probability ``w_k / (w_k + ... + w_K)``. For each candidate ``mu`` the
weights are the non-negative least-squares fit of the mixture's CDF to the
target CDF at 400 quantiles, the weights summing to one; ``mu`` is chosen
on a log grid, then refined by golden-section search, to minimise the
Kolmogorov-Smirnov distance (the largest gap between the two CDFs, measured
on 700 points while searching, on about 5000 for the figure reported). Such
mixtures are dense in the distributions on
``[0, inf)``, and starting always in phase 1 keeps the state space small
(enabling a clock never branches).

A second family is tried too, and the one with the smaller KS distance kept:
a **hyper-Erlang** mixture of two or three Erlang branches, each with its own
rate, sharing the ``K`` phases (every split of ``K`` between the branches is
fitted by least squares on the CDF at the quantiles). It fits right-skewed,
long-tailed delays much better, so it is tried for lognormal delays; the
common-rate mixture fits bounded ones (triangular, uniform) better. Every fit
is made for the distribution scaled to mean 1 and then rescaled, so delays of
the same shape (a lognormal's p90/median) share one fit. A hyper-Erlang fit starts in the
first phase of a branch chosen at random, so enabling such a clock branches.

An exponential delay is its own 1-phase fit (KS distance 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations_with_replacement

import numpy as np
from scipy.optimize import nnls
from scipy.special import gammainc, ndtr

from ..compiler.dists import Z90, Spec

FITTABLE = ("exponential", "uniform", "triangular", "lognormal")
"""Delay distributions the phase-type mode fits (fixed and empirical are refused)."""

_QUANTILES = 400  # where the least-squares fit compares the CDFs
_KS_POINTS = 4000  # where the KS distance is measured


@dataclass(frozen=True)
class PhaseType:
    """A phase-type distribution: initial phase probabilities and sub-generator (per hour)."""

    alpha: tuple[float, ...]
    T: tuple[tuple[float, ...], ...]

    @property
    def order(self) -> int:
        """The number of phases."""
        return len(self.alpha)

    def exit_rates(self) -> tuple[float, ...]:
        """The rate at which each phase ends the delay (minus its row sum of ``T``)."""
        return tuple(-sum(row) for row in self.T)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(delay <= x) for an array of hours."""
        from scipy.linalg import expm

        a = np.array(self.alpha)
        t = np.array(self.T)
        ones = np.ones(len(a))
        return np.array([1.0 - a @ expm(t * float(xi)) @ ones for xi in np.atleast_1d(x)])

    def mean(self) -> float:
        """The mean delay in hours: alpha (-T)^-1 1."""
        t = np.array(self.T)
        return float(np.array(self.alpha) @ np.linalg.solve(-t, np.ones(len(self.alpha))))


@dataclass(frozen=True)
class Fit:
    """A phase-type fit of one distribution and how far it is from it."""

    ph: PhaseType
    ks: float  # Kolmogorov-Smirnov distance: max |F_fit(x) - F(x)|
    mean: float  # the distribution's mean (hours)
    fit_mean: float  # the fit's mean (hours)


def mean_of(spec: Spec) -> float:
    """The mean of a delay distribution, in hours."""
    v = spec.values
    if spec.kind == "fixed":
        return v["value"]
    if spec.kind == "uniform":
        return (v["low"] + v["high"]) / 2
    if spec.kind == "triangular":
        return (v["min"] + v["mode"] + v["max"]) / 3
    if spec.kind == "exponential":
        return v["mean"]
    if spec.kind == "lognormal":
        sigma = math.log(v["p90"] / v["median"]) / Z90
        return v["median"] * math.exp(sigma * sigma / 2)
    if spec.kind == "empirical":
        total = sum(spec.weights)
        return sum(a * w for a, w in zip(spec.atoms, spec.weights, strict=True)) / total
    raise ValueError(f"unknown distribution {spec.kind!r}")


def cdf_of(spec: Spec, x: np.ndarray) -> np.ndarray:
    """The CDF of a continuous delay distribution at ``x`` (hours)."""
    v = spec.values
    x = np.asarray(x, dtype=float)
    if spec.kind == "uniform":
        lo, hi = v["low"], v["high"]
        if hi == lo:
            return (x >= lo).astype(float)
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    if spec.kind == "triangular":
        a, c, b = v["min"], v["mode"], v["max"]
        left = np.where(x <= a, 0.0, (x - a) ** 2 / ((b - a) * (c - a) if c > a else 1.0))
        right = np.where(x >= b, 1.0, 1.0 - (b - x) ** 2 / ((b - a) * (b - c) if b > c else 1.0))
        return np.where(x <= c, np.where(c > a, left, 0.0), np.where(b > c, right, 1.0))
    if spec.kind == "exponential":
        return np.where(x > 0, -np.expm1(-np.maximum(x, 0.0) / v["mean"]), 0.0)
    if spec.kind == "lognormal":
        mu, sigma = math.log(v["median"]), math.log(v["p90"] / v["median"]) / Z90
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(x, 1e-300)) - mu) / sigma
        return np.where(x > 0, ndtr(z), 0.0)
    raise ValueError(f"no CDF for {spec.kind!r}")


def quantile_of(spec: Spec, u: np.ndarray) -> np.ndarray:
    """The inverse CDF of a continuous delay distribution (hours)."""
    from scipy.special import ndtri

    v = spec.values
    if spec.kind == "uniform":
        return v["low"] + u * (v["high"] - v["low"])
    if spec.kind == "triangular":
        a, c, b = v["min"], v["mode"], v["max"]
        fc = (c - a) / (b - a)
        return np.where(
            u < fc, a + np.sqrt(u * (b - a) * (c - a)), b - np.sqrt((1 - u) * (b - a) * (b - c))
        )
    if spec.kind == "exponential":
        return -v["mean"] * np.log1p(-u)
    if spec.kind == "lognormal":
        mu, sigma = math.log(v["median"]), math.log(v["p90"] / v["median"]) / Z90
        return np.exp(mu + sigma * ndtri(u))
    raise ValueError(f"no quantile for {spec.kind!r}")


def _erlang_columns(mu: float, k: int, x: np.ndarray) -> np.ndarray:
    """CDFs of Erlang(1..k, rate mu) at ``x``: one column per order."""
    return np.stack([gammainc(j, mu * x) for j in range(1, k + 1)], axis=1)


def coxian(mu: float, weights: np.ndarray) -> PhaseType:
    """The Coxian form of a common-rate Erlang mixture (trailing zero weights dropped)."""
    w = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    w = w / w.sum()
    last = int(np.nonzero(w > 1e-12)[0][-1]) + 1
    w = w[:last] / w[:last].sum()
    tail = np.cumsum(w[::-1])[::-1]  # w_k + ... + w_K
    rows = []
    for k in range(last):
        row = [0.0] * last
        row[k] = -mu
        if k + 1 < last:
            row[k + 1] = mu * (1.0 - min(1.0, w[k] / tail[k]))
        rows.append(tuple(row))
    return PhaseType(tuple([1.0] + [0.0] * (last - 1)), tuple(rows))


def _ks(spec: Spec, mu: float, w: np.ndarray, grid: np.ndarray, target: np.ndarray) -> float:
    fitted = _erlang_columns(mu, len(w), grid) @ w
    return float(np.max(np.abs(fitted - target)))


def fit(spec: Spec, phases: int) -> Fit:
    """Fit ``spec`` by a phase-type distribution of at most ``phases`` phases.

    >>> from negosim.compiler.dists import Spec
    >>> f = fit(Spec("triangular", {"min": 0.5, "mode": 2.0, "max": 8.0}), 8)
    >>> f.ph.order <= 8 and f.ks < 0.05
    True
    """
    # Fit the distribution scaled to mean 1 (a PH fit scales with its rates, the
    # KS distance does not change), so delays of one shape share one fit.
    m = mean_of(spec)
    if not m > 0:
        raise ValueError(f"cannot fit a {spec.kind} delay of mean {m:g}")
    unit = tuple(sorted((k, round(v / m, 12)) for k, v in spec.values.items()))
    f = _fit(spec.kind, unit, phases)
    ph = PhaseType(f.ph.alpha, tuple(tuple(x / m for x in row) for row in f.ph.T))
    return Fit(ph, f.ks, m, f.fit_mean * m)


@lru_cache(maxsize=256)
def _fit(kind: str, items: tuple[tuple[str, float], ...], phases: int) -> Fit:
    spec = Spec(kind, dict(items))
    m = mean_of(spec)
    if kind == "exponential":
        ph = PhaseType((1.0,), ((-1.0 / m,),))
        return Fit(ph, 0.0, m, m)
    if kind not in FITTABLE:
        raise ValueError(f"cannot fit {kind!r}")
    u = (np.arange(_QUANTILES) + 0.5) / _QUANTILES
    xs = quantile_of(spec, u)
    top = float(quantile_of(spec, np.array([0.9999]))[0])
    grid = np.union1d(
        np.linspace(0.0, top * 1.5, _KS_POINTS), quantile_of(spec, np.linspace(1e-4, 1 - 1e-4, 999))
    )
    target = cdf_of(spec, grid)
    coarse = np.union1d(np.linspace(0.0, top * 1.5, 300), xs)  # for the search
    coarse_target = cdf_of(spec, coarse)
    if phases == 1:
        w1 = np.array([1.0])
        ph = PhaseType((1.0,), ((-1.0 / m,),))
        return Fit(ph, _ks(spec, 1.0 / m, w1, grid, target), m, m)
    big = 100.0  # weight of the sum-to-one row

    def solve(mu: float) -> tuple[float, np.ndarray]:
        a = np.vstack([_erlang_columns(mu, phases, xs), np.full((1, phases), big)])
        b = np.concatenate([u, [big]])
        w, _ = nnls(a, b)
        if w.sum() <= 0:
            return math.inf, w
        w = w / w.sum()
        return _ks(spec, mu, w, coarse, coarse_target), w

    base = phases / m
    candidates = base * np.geomspace(0.25, 16.0, 41)
    scores = [solve(float(mu))[0] for mu in candidates]
    best = int(np.argmin(scores))
    lo = math.log(candidates[max(best - 1, 0)])
    hi = math.log(candidates[min(best + 1, len(candidates) - 1)])
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = solve(math.exp(a))[0], solve(math.exp(b))[0]
    for _ in range(30):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = solve(math.exp(a))[0]
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = solve(math.exp(b))[0]
    options = [(scores[best], float(candidates[best])), (fa, math.exp(a)), (fb, math.exp(b))]
    _, mu = min(options)
    _, w = solve(mu)
    ks = _ks(spec, mu, w, grid, target)
    ph = coxian(mu, w)
    # Bounded delays are fitted better by the common-rate mixture: try the
    # hyper-Erlang only for the unbounded (lognormal) ones.
    hyper = (
        _hyper_erlang(spec, phases, xs[::4], u[::4], coarse, coarse_target, m)
        if kind == "lognormal"
        else None
    )
    if hyper is not None:
        orders, rates, weights = hyper
        hks = float(np.max(np.abs(_hyper_cdf(orders, rates, weights, grid) - target)))
        if hks < ks:
            ph = hyper_erlang(orders, rates, weights)
            ks = hks
    return Fit(ph, ks, m, ph.mean())


def _partitions(total: int, most: int) -> list[tuple[int, ...]]:
    """Ways to write ``total`` as a sum of 2..``most`` positive whole numbers, in order."""
    out: set[tuple[int, ...]] = set()
    for r in range(2, most + 1):
        for c in combinations_with_replacement(range(1, total + 1), r):
            if sum(c) == total:
                out.add(c)
    return sorted(out)


def _hyper_cdf(
    orders: tuple[int, ...], rates: np.ndarray, weights: np.ndarray, x: np.ndarray
) -> np.ndarray:
    return sum(
        (w * gammainc(k, r * x) for k, r, w in zip(orders, rates, weights, strict=True)),
        np.zeros_like(x),
    )


def _hyper_erlang(
    spec: Spec,
    phases: int,
    xs: np.ndarray,
    u: np.ndarray,
    grid: np.ndarray,
    target: np.ndarray,
    mean: float,
) -> tuple[tuple[int, ...], np.ndarray, np.ndarray] | None:
    """The best mixture of 2 or 3 Erlang branches (own rates) with ``phases`` phases in all.

    Least squares on the CDF at the quantiles ``xs`` for each split of the
    phases between branches; the split with the smallest KS distance on ``grid``.
    """
    from scipy.optimize import least_squares

    best: tuple[float, tuple[int, ...], np.ndarray, np.ndarray] | None = None
    for orders in _partitions(phases, 3):
        nb = len(orders)
        ks_arr = np.array(orders, dtype=float)

        def unpack(th: np.ndarray, nb: int = nb) -> tuple[np.ndarray, np.ndarray]:
            z = np.concatenate([th[nb:], [0.0]])
            w = np.exp(z - z.max())
            return np.exp(th[:nb]), w / w.sum()

        def resid(th: np.ndarray, orders: tuple[int, ...] = orders) -> np.ndarray:
            rates, w = unpack(th)
            return _hyper_cdf(orders, rates, w, xs) - u

        th0 = np.concatenate([np.log(ks_arr / mean) + np.linspace(-1.0, 1.0, nb), np.zeros(nb - 1)])
        try:
            res = least_squares(resid, th0, max_nfev=100)
        except (ValueError, FloatingPointError):
            continue
        rates, w = unpack(res.x)
        if not np.all(np.isfinite(rates)) or np.any(rates <= 0):
            continue
        ks = float(np.max(np.abs(_hyper_cdf(orders, rates, w, grid) - target)))
        if best is None or ks < best[0]:
            best = (ks, orders, rates, w)
    return None if best is None else best[1:]


def hyper_erlang(orders: tuple[int, ...], rates: np.ndarray, weights: np.ndarray) -> PhaseType:
    """A mixture of Erlang branches as a phase-type distribution (branches side by side)."""
    n = sum(orders)
    alpha = [0.0] * n
    t = [[0.0] * n for _ in range(n)]
    first = 0
    for k, r, w in zip(orders, rates, weights, strict=True):
        alpha[first] = float(w)
        for j in range(first, first + k):
            t[j][j] = -float(r)
            if j + 1 < first + k:
                t[j][j + 1] = float(r)
        first += k
    return PhaseType(tuple(alpha), tuple(tuple(row) for row in t))
