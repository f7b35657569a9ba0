"""``negosim analyze``: the scenario as a continuous-time Markov chain, solved exactly.

When every delay is exponential (random events are), a scenario is, between
two calendar breakpoints, a continuous-time Markov chain on its discrete
state (``docs/semantics.md``, "Why there is no now in expressions"). This
module builds that chain and computes its transient distribution:

* **States** are (protocol state, every slot value, the phase of every
  enabled clock, the status of every stay, whether each jittered scheduled
  event has happened); an outcome state is one absorbing state per protocol
  outcome. Only states reachable from the start are built, and building stops
  (a refusal, never a partial answer) above ``max_states``.
* **Transitions**: an enabled clock in its last phase fires at its exit rate;
  its options split that rate by their weights (evaluated in the state); the
  effects are applied as the engine applies them, then every clock is
  re-evaluated: one that stays enabled keeps its phase, a newly enabled one
  (and the one that fired, if still enabled) starts afresh, a disabled one
  forgets its phase (restart, not resume).
* **Breakpoints** (window edges, arrivals, departures, scheduled events) are
  applied at their instants, in the documented tie order, as maps of the
  distribution; nothing fires between them in zero time, since every delay
  has a density.
* **Random breakpoint times** (a uniform or triangular arrival, departure or
  jitter; an empirical one) are integrated over: the offset's distribution is
  replaced by Gauss-Legendre nodes on each piece between fixed breakpoints
  (where the answer is a smooth function of the offset) and, at the ``i``-th
  node, the share ``w_i / (w_i + ... + w_n)`` of the states in which it has not
  happened yet see it happen. That is the exact answer for the node
  distribution, and the quadrature error of a smooth integrand.
* **Solving**: between breakpoints the distribution moves by uniformization
  (``p(t) = sum_k Poisson(k; L t) p P^k`` with ``P = I + Q/L``): a sum of
  non-negative terms, no cancellation, and an a-priori error bound (the
  Poisson tail, kept below 1e-13 per step of at most ``L t = 30``). Each
  segment starts from its own ``p``: there is no ``start != 0`` anywhere.

Non-exponential delays are refused unless ``phases`` is given, in which case
lognormal, triangular and uniform delays are replaced by phase-type fits
(:mod:`negosim.analysis.phasetype`). Fixed and empirical delays are always
refused: the answer would be silently wrong.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from itertools import product
from typing import Any

import numpy as np

from ..compiler.dists import Spec, spec_of
from ..compiler.tables import Assign, Clock, CompiledScenario, day_parts
from ..display import block, pct, table
from ..engine.simulation import SAME_INSTANT_LIMIT, next_state_table
from ..errors import SimulationError, UsageError
from ..scenario.units import at_hours
from .phasetype import FITTABLE, Fit, PhaseType, fit

MAX_STATES = 100_000
"""Default limit on the number of states (``--max-states``)."""
NODES = 8
"""Gauss-Legendre nodes per piece for a random breakpoint time."""
STEP_TOL = 1e-13  # Poisson tail left out per uniformization step
MAX_LT = 30.0  # largest L*t of one uniformization step (keeps exp(-L t) far from underflow)

Key = tuple[Any, ...]
Dist = list[tuple[Key, float]]


class NotAnalyzable(UsageError):
    """The scenario has something exact analysis cannot represent; the message names it."""


@dataclass
class Analysis:
    """The exact answer for one scenario (the keys of ``negosim analyze --format json``)."""

    scenario: str
    title: str
    p_meeting: float
    by_day: dict[str, float]
    held_by_end_of_day: dict[str, float]
    outcomes: dict[str, float]
    states: int
    method: str
    elapsed_s: float
    tolerance: float  # bound on the truncation error of uniformization (probability)
    fits: list[dict[str, Any]] = field(default_factory=list)
    curve: list[tuple[float, float]] = field(default_factory=list)  # (hours, P(held by t))
    horizon: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``negosim analyze --format json`` object."""
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "title": self.title,
            "p_meeting": self.p_meeting,
            "by_day": self.by_day,
            "held_by_end_of_day": self.held_by_end_of_day,
            "outcomes": self.outcomes,
            "states": self.states,
            "method": self.method,
            "tolerance": self.tolerance,
            "fits": self.fits,
            "horizon": self.horizon,
            "elapsed_s": self.elapsed_s,
        }
        if self.curve:
            out["curve"] = [{"hours": h, "p_held": p} for h, p in self.curve]
        return out

    def __repr__(self) -> str:
        return (
            f"Analysis({self.scenario!r}: P(meeting) = {self.p_meeting:.6f}, {self.states} states)"
        )

    def _repr_html_(self) -> str:
        head = table(
            ["P(meeting)", "states", "method"], [[pct(self.p_meeting), self.states, self.method]]
        )
        days = table(
            ["day", "held that day", "held by end of day"],
            [[d, pct(p), pct(self.held_by_end_of_day[d])] for d, p in self.by_day.items()],
        )
        return block(f"negosim analysis: {self.scenario}", head, days)


# --- what each clock's delay becomes ---------------------------------------------------


def _where(c: Clock) -> str:
    return f"{c.kind} {c.id!r}"


def clock_phases(
    cs: CompiledScenario, phases: int | None
) -> tuple[list[PhaseType], list[dict[str, Any]]]:
    """The phase-type delay of every clock, and a description of each fit made."""
    out: list[PhaseType] = []
    fits: list[dict[str, Any]] = []
    for c in cs.clocks:
        spec = spec_of(c.delay)
        if spec is None:
            raise NotAnalyzable(f"{_where(c)}: its delay distribution is not known to analyze")
        if spec.kind in ("fixed", "empirical"):
            raise NotAnalyzable(
                f"{_where(c)} has a {spec.kind} delay: analyze refuses fixed and empirical "
                "delays (no Markov chain represents them faithfully); use negosim run"
            )
        if spec.kind != "exponential" and phases is None:
            raise NotAnalyzable(
                f"{_where(c)} has a {spec.kind} delay: exact mode needs every delay "
                "exponential; try --phases K for phase-type fits"
            )
        if spec.kind not in FITTABLE:
            raise NotAnalyzable(f"{_where(c)} has a {spec.kind} delay, which analyze cannot fit")
        f: Fit = fit(spec, phases or 1)
        out.append(f.ph)
        if spec.kind != "exponential":
            fits.append(
                {
                    "clock": c.id,
                    "distribution": _describe(spec),
                    "phases": f.ph.order,
                    "ks": f.ks,
                    "mean_h": f.mean,
                    "fit_mean_h": f.fit_mean,
                }
            )
    return out, fits


def _describe(spec: Spec) -> str:
    inner = ", ".join(f"{k}={v:g}h" for k, v in spec.values.items())
    return f"{spec.kind}({inner})"


# --- breakpoints -----------------------------------------------------------------------


@dataclass
class _Breakpoint:
    """One thing that happens at a known instant (or at one quadrature node)."""

    at: float
    order: tuple[int, int]  # tie order: (class, index); marks first, then edges ...
    kind: str  # mark, edge, arrive, leave, scheduled
    index: int  # edge, stay or scheduled-event index
    share: float = 1.0  # fraction of the not-yet-happened mass that sees it now


def _gauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return x, w


def _offset_nodes(
    spec: Spec | None, where: str, to_time: Callable[[float], float], cuts: list[float], nodes: int
) -> list[tuple[float, float]] | None:
    """(time, probability) nodes of a random breakpoint time; None if it is not random."""
    if spec is None:
        return None
    v = spec.values
    if spec.kind == "fixed":
        return None
    if spec.kind == "empirical":
        total = sum(spec.weights)
        return [(to_time(a), w / total) for a, w in zip(spec.atoms, spec.weights, strict=True)]
    pieces: list[tuple[float, float, Callable[[float], float]]]
    if spec.kind == "uniform":
        lo, hi = v["low"], v["high"]
        if hi <= lo:
            return [(to_time(lo), 1.0)]
        pieces = [(lo, hi, lambda x: 1.0 / (hi - lo))]
    elif spec.kind == "triangular":
        a, c, b = v["min"], v["mode"], v["max"]
        pieces = []
        if c > a:
            pieces.append((a, c, lambda x: 2 * (x - a) / ((b - a) * (c - a))))
        if b > c:
            pieces.append((c, b, lambda x: 2 * (b - x) / ((b - a) * (b - c))))
    else:
        raise NotAnalyzable(
            f"{where} has a {spec.kind} distribution: analyze integrates over fixed, uniform, "
            "triangular and empirical breakpoint times only"
        )
    gx, gw = _gauss(nodes)
    out: list[tuple[float, float]] = []
    for lo, hi, pdf in pieces:
        # split the offset range where the time crosses a fixed breakpoint
        inner = sorted({lo, hi} | {x for x in _offsets_at(cuts, to_time, lo, hi)})
        for a, b in zip(inner, inner[1:], strict=False):
            if b - a <= 1e-12:
                continue
            half, mid = (b - a) / 2, (a + b) / 2
            for xi, wi in zip(gx, gw, strict=True):
                x = mid + half * float(xi)
                out.append((to_time(x), float(wi) * half * pdf(x)))
    return out


def _offsets_at(
    cuts: list[float], to_time: Callable[[float], float], lo: float, hi: float
) -> Iterator[float]:
    """Offsets in (lo, hi) at which the breakpoint time equals one of ``cuts``."""
    t0, t1 = to_time(0.0), to_time(1.0)
    slope = t1 - t0  # +1 or -1
    for c in cuts:
        x = (c - t0) / slope
        if lo < x < hi:
            yield x


# --- the chain -------------------------------------------------------------------------


class _Chain:
    """The reachable state space, its generator and the breakpoint maps, built lazily."""

    def __init__(self, cs: CompiledScenario, phs: list[PhaseType], max_states: int) -> None:
        self.cs = cs
        self.phs = phs
        self.max_states = max_states
        self.clocks = cs.clocks
        self.tests = [c.test or _plain_test(c) for c in cs.clocks]
        self.next_state = next_state_table(cs)
        self.outcomes = cs.outcome_states
        self.exit = [ph.exit_rates() for ph in phs]
        self.alpha = [[(k + 1, a) for k, a in enumerate(ph.alpha) if a > 0] for ph in phs]
        self.keys: list[Key] = []
        self.index: dict[Key, int] = {}
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.rates: list[float] = []
        self.explored = 0  # keys[:explored] have their transitions listed
        self.maps: dict[tuple[str, int], dict[Key, Dist]] = {}

    # keys ------------------------------------------------------------------------
    def add(self, key: Key) -> int:
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.keys)
            self.keys.append(key)
            if len(self.keys) > self.max_states:
                raise NotAnalyzable(
                    f"the state space exceeds {self.max_states:,} states (--max-states); "
                    "use fewer --phases, or negosim run"
                )
        return i

    def absorbing(self, key: Key) -> bool:
        return key[0] == "out"

    # semantics -------------------------------------------------------------------
    def evaluate(
        self, s: list[Any], st: int, old: tuple[int, ...], fired: int | None = None
    ) -> list[tuple[tuple[int, ...], float]]:
        """Phases of every clock after a re-evaluation (branching on a new clock's start)."""
        choices: list[list[tuple[int, float]]] = []
        try:
            for i, test in enumerate(self.tests):
                if test(s, st):
                    if old[i] > 0 and i != fired:
                        choices.append([(old[i], 1.0)])
                    else:
                        choices.append(self.alpha[i])
                else:
                    choices.append([(0, 1.0)])
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise SimulationError(
                f"analysis: evaluating a guard failed: {type(exc).__name__}: {exc}"
            ) from exc
        if all(len(c) == 1 for c in choices):
            return [(tuple(c[0][0] for c in choices), 1.0)]
        out = []
        for combo in product(*choices):
            p = math.prod(x[1] for x in combo)
            out.append((tuple(x[0] for x in combo), p))
        return out

    def effects(
        self, s: list[Any], st: int, sets: tuple[Assign, ...], trigger: str | None
    ) -> tuple[list[Any], int]:
        """The slots and protocol state after applying effects (right-hand sides read first)."""
        s2 = list(s)
        try:
            values = [a.value(s) for a in sets]
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise SimulationError(
                f"analysis: evaluating an effect failed: {type(exc).__name__}: {exc}"
            ) from exc
        for a, v in zip(sets, values, strict=True):
            if a.low is not None and v < a.low:
                v = a.low
            elif a.high is not None and v > a.high:
                v = a.high
            s2[a.slot] = v
        if trigger is not None:
            st = self.next_state[trigger][st]
        return s2, st

    def settle(
        self,
        s: list[Any],
        st: int,
        old: tuple[int, ...],
        rest: tuple[Any, ...],
        fired: int | None,
        before: tuple[Any, ...] | None = None,
    ) -> Dist:
        """The keys after a change of slots/state (from the slots ``before``; None: the
        start): the ``when:`` events it sets off, then absorbing, or re-evaluated clocks."""
        if self.cs.whens and st not in self.outcomes:
            s, st = self.whens(s, st, before)
        if st in self.outcomes:
            return [(("out", st), 1.0)]
        return [((st, tuple(s), ph, *rest), p) for ph, p in self.evaluate(s, st, old, fired)]

    def whens(self, s: list[Any], st: int, before: tuple[Any, ...] | None) -> tuple[list[Any], int]:
        """Apply the ``when:`` events whose condition turned true, as the engine does: a
        condition found false re-arms its event; the first true and armed one in file
        order happens, then all are evaluated again. A latch starts as the condition's
        value on the settled slots ``before`` (false for every one at the start)."""
        whens = self.cs.whens
        try:
            latch = [False] * len(whens) if before is None else [
                bool(w.cond(list(before))) for w in whens]  # fmt: skip
            count = 0
            while st not in self.outcomes:
                first = -1
                for k, w in enumerate(whens):
                    now = bool(w.cond(s))
                    if not now:
                        latch[k] = False  # re-armed
                    elif first < 0 and not latch[k]:
                        first = k
                if first < 0:
                    break
                w = whens[first]
                latch[first] = True
                s, st = self.effects(s, st, w.sets, w.trigger)
                count += 1
                if count >= SAME_INSTANT_LIMIT:
                    raise SimulationError(
                        f"analysis: 'when:' events keep setting each other off without time "
                        f"passing (last: {w.id!r}); make one's effects leave another's "
                        "condition alone",
                        ("events", w.id),
                    )
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise SimulationError(
                f"analysis: evaluating a 'when:' condition failed: {type(exc).__name__}: {exc}"
            ) from exc
        return s, st

    def weights(self, c: Clock, s: list[Any]) -> list[float]:
        ws: list[float] = []
        for o in c.options:
            try:
                w = o.weight if isinstance(o.weight, float) else float(o.weight(s))
            except (ArithmeticError, ValueError, TypeError) as exc:
                raise SimulationError(
                    f"analysis: the weight of option {o.id!r} of {c.id!r} failed: "
                    f"{type(exc).__name__}: {exc}",
                    (f"{c.kind}s", c.id, "options", o.id, "weight"),
                ) from exc
            if w < 0 or not math.isfinite(w):
                raise SimulationError(
                    f"option {o.id!r} of {c.id!r} has weight {w:g} in a reachable state; "
                    "weights must be finite and not negative",
                    (f"{c.kind}s", c.id, "options", o.id, "weight"),
                )
            ws.append(w)
        if len(ws) > 1 and sum(ws) <= 0:
            raise SimulationError(
                f"every option of {c.id!r} has weight 0 in a reachable state; "
                "make at least one weight positive whenever the action is possible",
                (f"{c.kind}s", c.id, "options"),
            )
        return ws

    def transitions(self, key: Key) -> Iterator[tuple[Key, float]]:
        st, slots, ph, *rest = key
        s = list(slots)
        for i, c in enumerate(self.clocks):
            k = ph[i]
            if k == 0:
                continue
            row = self.phs[i].T[k - 1]
            for j, r in enumerate(row):
                if j != k - 1 and r > 0:
                    yield (st, slots, ph[:i] + (j + 1,) + ph[i + 1 :], *rest), r
            out = self.exit[i][k - 1]
            if out <= 0:
                continue
            opts = c.options
            ws = [1.0] if len(opts) == 1 else self.weights(c, s)
            total = sum(ws)
            for o, w in zip(opts, ws, strict=True):
                if w <= 0:
                    continue
                s2, st2 = self.effects(s, st, o.sets, o.trigger)
                for key2, p in self.settle(s2, st2, ph, tuple(rest), i, slots):
                    yield key2, out * w / total * p

    def explore(self) -> None:
        """List the transitions of every key not yet explored, adding the keys they reach."""
        while self.explored < len(self.keys):
            i = self.explored
            key = self.keys[i]
            self.explored += 1
            if self.absorbing(key):
                continue
            for key2, rate in self.transitions(key):
                j = self.add(key2)
                if j != i:
                    self.rows.append(i)
                    self.cols.append(j)
                    self.rates.append(rate)

    # breakpoints -------------------------------------------------------------------
    def happen(self, bp: _Breakpoint, key: Key, sched_flag: dict[int, int]) -> Dist:
        """What breakpoint ``bp`` does to the states of ``key`` (before the share applies)."""
        if self.absorbing(key):
            return [(key, 1.0)]
        st, slots, ph, stays, flags = key
        s = list(slots)
        cs = self.cs
        if bp.kind == "edge":
            e = cs.edges[bp.index]
            s[e.slot] = e.value
            return self.settle(s, st, ph, (stays, flags), None, slots)
        if bp.kind in ("arrive", "leave"):
            j = bp.index
            status = stays[j]
            if bp.kind == "arrive":
                if status != 0:
                    return [(key, 1.0)]
                new = 1
            else:
                if status == 2:
                    return [(key, 1.0)]
                new = 2
            stays2 = stays[:j] + (new,) + stays[j + 1 :]
            slot = cs.stays[j].slot
            s[slot] = any(stays2[m] == 1 for m in range(len(stays2)) if cs.stays[m].slot == slot)
            if s[slot] == slots[slot]:
                return [((st, slots, ph, stays2, flags), 1.0)]
            return self.settle(s, st, ph, (stays2, flags), None, slots)
        # a scheduled event
        ev = cs.scheduled[bp.index]
        flag = sched_flag.get(bp.index)
        if flag is not None:
            if flags[flag]:
                return [(key, 1.0)]
            flags = flags[:flag] + (True,) + flags[flag + 1 :]
        if ev.guard is not None and not ev.guard(s):  # it does not happen (nor later)
            return [((st, slots, ph, stays, flags), 1.0)]
        s2, st2 = self.effects(s, st, ev.sets, ev.trigger)
        return self.settle(s2, st2, ph, (stays, flags), None, slots)


def _plain_test(c: Clock) -> Callable[[list[Any], int], bool]:
    def test(s: list[Any], st: int) -> bool:
        if not c.states[st] or not all(holds(s) for _, holds in c.requires):
            return False
        if c.avail is not None and not s[c.avail]:
            return False
        if c.actor_windows is not None and not any(s[k] for k in c.actor_windows):
            return False
        return c.guard is None or bool(c.guard(s))

    return test


# --- solving ---------------------------------------------------------------------------


class _Solver:
    """Uniformization on the chain's generator, rebuilt when the state space grows."""

    def __init__(self, chain: _Chain) -> None:
        self.chain = chain
        self.n = -1
        self.pt: Any = None
        self.rate = 0.0
        self.error = 0.0  # accumulated truncation bound

    def _build(self) -> None:
        from scipy.sparse import coo_matrix

        ch = self.chain
        n = len(ch.keys)
        q = coo_matrix((ch.rates, (ch.rows, ch.cols)), shape=(n, n)).tocsr()
        out = np.asarray(q.sum(axis=1)).ravel()
        lam = float(out.max()) if n else 0.0
        self.rate = lam
        if lam > 0:
            from scipy.sparse import diags

            p = q / lam + diags(1.0 - out / lam)
            self.pt = p.T.tocsr()
        self.n = n

    def advance(self, p: np.ndarray, dt: float) -> np.ndarray:
        if dt <= 0:
            return p
        if self.n != len(self.chain.keys):
            self._build()
        if self.rate <= 0:
            return p
        lt_total = self.rate * dt
        steps = max(1, math.ceil(lt_total / MAX_LT))
        lt = lt_total / steps
        for _ in range(steps):
            w = math.exp(-lt)
            term = p
            acc = w * p
            cum = w
            k = 0
            while 1.0 - cum > STEP_TOL and k < 10_000:
                k += 1
                term = self.pt @ term
                w *= lt / k
                acc = acc + w * term
                cum += w
            self.error += max(0.0, 1.0 - cum)
            p = acc
        return p


# --- the analysis ----------------------------------------------------------------------


def analyze(
    cs: CompiledScenario,
    phases: int | None = None,
    max_states: int = MAX_STATES,
    curve_points: int = 0,
    nodes: int = NODES,
) -> Analysis:
    """Solve scenario ``cs`` exactly (or with ``phases``-phase fits) at every day's end.

    Raises :class:`NotAnalyzable` with a one-line reason for a scenario it
    cannot represent. ``curve_points`` > 0 also records P(held by t) at that
    many evenly spaced times (for plots).

    >>> from negosim import load
    >>> a = analyze(load("scenarios/tutorial.yaml"), phases=4)
    >>> 0 < a.p_meeting < 1
    True
    """
    started = time.perf_counter()
    phs, fits = clock_phases(cs, phases)
    chain = _Chain(cs, phs, max_states)
    hz = cs.horizon

    # Marks: local midnights (and curve points), measured before what happens then.
    marks = list(day_parts(cs))
    days = list(dict.fromkeys(mark.date().isoformat() for _, mark in marks))
    day_end: dict[str, float] = {}
    for at, mark in marks:
        if mark.hour == 0 and at > 0:
            day_end[date.fromordinal(mark.date().toordinal() - 1).isoformat()] = at
    for d in days:
        day_end.setdefault(d, hz)

    # Fixed instants: where the answer's dependence on a random offset may kink.
    cuts = [e.at for e in cs.edges] + [0.0, hz] + list(day_end.values())
    for st in cs.stays:
        for sampler, base, sign in ((st.arrival, st.start, 1.0), (st.departure, st.end, -1.0)):
            sp = spec_of(sampler) if sampler else None
            if sp is None or sp.kind == "fixed":
                cuts.append(base + sign * (sp.values["value"] if sp else 0.0))
    for ev in cs.scheduled:
        sp = spec_of(ev.jitter) if ev.jitter else None
        if sp is None or sp.kind == "fixed":
            cuts.append(ev.at + (sp.values["value"] if sp else 0.0))

    bps: list[_Breakpoint] = []
    initial_arrivals: list[tuple[int, float]] = []  # (stay, probability present at time 0)
    random_stays = False
    for k, e in enumerate(cs.edges):
        if 0 < e.at < hz:
            bps.append(_Breakpoint(e.at, (1, k), "edge", k))
    for j, stay in enumerate(cs.stays):
        where = f"actors.{stay.actor}.present"
        a_spec = spec_of(stay.arrival) if stay.arrival else None
        d_spec = spec_of(stay.departure) if stay.departure else None
        if stay.arrival and a_spec is None or stay.departure and d_spec is None:
            raise NotAnalyzable(f"{where}: its arrival or departure distribution is unknown")
        start, end = stay.start, stay.end
        a_nodes = _offset_nodes(a_spec, f"{where} arrival", partial(_after, start), cuts, nodes)
        d_nodes = _offset_nodes(d_spec, f"{where} departure", partial(_before, end), cuts, nodes)
        a_fixed = start + (a_spec.values["value"] if a_spec and a_spec.kind == "fixed" else 0.0)
        d_fixed = end - (d_spec.values["value"] if d_spec and d_spec.kind == "fixed" else 0.0)
        if a_nodes is None and d_nodes is None and a_fixed >= d_fixed:
            continue  # never comes during this stay
        random_stays = random_stays or a_nodes is not None or d_nodes is not None
        arrivals = a_nodes if a_nodes is not None else [(a_fixed, 1.0)]
        for t, share in _shares(arrivals):
            if t <= 0:
                initial_arrivals.append((j, share))
            elif t < hz:
                bps.append(_Breakpoint(t, (2, j), "arrive", j, share))
        departures = d_nodes if d_nodes is not None else [(d_fixed, 1.0)]
        for t, share in _shares(departures):
            if t < hz:
                bps.append(_Breakpoint(max(t, 0.0), (3, j), "leave", j, share))
    sched_flag: dict[int, int] = {}
    for k, ev in enumerate(cs.scheduled):
        sp = spec_of(ev.jitter) if ev.jitter else None
        if ev.jitter and sp is None:
            raise NotAnalyzable(f"events.{ev.id}.jitter: its distribution is unknown")
        ev_nodes = _offset_nodes(sp, f"events.{ev.id}.jitter", partial(_after, ev.at), cuts, nodes)
        if ev_nodes is None:
            at = ev.at + (sp.values["value"] if sp else 0.0)
            if at < hz:
                bps.append(_Breakpoint(max(at, 0.0), (4, k), "scheduled", k))
        else:
            sched_flag[k] = len(sched_flag)
            for t, share in _shares(ev_nodes):
                if t < hz:
                    bps.append(_Breakpoint(max(t, 0.0), (4, k), "scheduled", k, share))

    mark_times = sorted({t for t in day_end.values() if t < hz})
    curve_times = (
        [hz * i / (curve_points - 1) for i in range(curve_points)] if curve_points > 1 else []
    )
    for t in sorted(set(mark_times) | {t for t in curve_times if 0 < t < hz}):
        bps.append(_Breakpoint(t, (0, 0), "mark", 0))
    bps.sort(key=lambda b: (b.at, b.order))

    # The start: slots, stays present from time 0, clocks evaluated.
    n_stays = len(cs.stays)
    start_slots = list(cs.initial)
    base_stays = tuple([0] * n_stays)
    flags0 = tuple([False] * len(sched_flag))
    dist: dict[tuple[tuple[Any, ...], tuple[int, ...]], float] = {
        (tuple(start_slots), base_stays): 1.0
    }
    for j, share in initial_arrivals:
        nxt: dict[tuple[tuple[Any, ...], tuple[int, ...]], float] = {}
        for (slots, stays), p in dist.items():
            if stays[j] == 0 and share > 0:
                s = list(slots)
                s[cs.stays[j].slot] = True
                st2 = stays[:j] + (1,) + stays[j + 1 :]
                nxt[(tuple(s), st2)] = nxt.get((tuple(s), st2), 0.0) + p * share
                if share < 1:
                    nxt[(slots, stays)] = nxt.get((slots, stays), 0.0) + p * (1 - share)
            else:
                nxt[(slots, stays)] = nxt.get((slots, stays), 0.0) + p
        dist = nxt
    zero = tuple([0] * len(cs.clocks))
    init: dict[int, float] = {}
    for (slots, stays), p in dist.items():
        for key, q in chain.settle(list(slots), cs.initial_state, zero, (stays, flags0), None):
            i = chain.add(key)
            init[i] = init.get(i, 0.0) + p * q
    chain.explore()
    solver = _Solver(chain)
    p_vec = np.zeros(len(chain.keys))
    for i, q in init.items():
        p_vec[i] += q

    success_keys = {("out", s) for s in cs.success}
    outcome_keys = {("out", s): cs.states[s] for s in sorted(cs.outcome_states)}

    def held(p: np.ndarray) -> float:
        return float(sum(p[chain.index[k]] for k in success_keys if k in chain.index))

    at_mark: dict[float, float] = {}
    now = 0.0
    for bp in bps:
        p_vec = solver.advance(p_vec, bp.at - now)
        now = bp.at
        if bp.kind == "mark":
            at_mark[bp.at] = held(p_vec)
            continue
        cache = chain.maps.setdefault((bp.kind, bp.index), {})
        new = np.zeros(len(chain.keys))
        moved = False
        for i in map(int, np.nonzero(p_vec)[0]):
            key = chain.keys[i]
            if chain.absorbing(key):
                new[i] += p_vec[i]
                continue
            res = cache.get(key)
            if res is None:
                res = cache[key] = chain.happen(bp, key, sched_flag)
            if len(res) == 1 and res[0][0] == key:
                new[i] += p_vec[i]
                continue
            moved = True
            mass = p_vec[i] * bp.share
            if bp.share < 1:
                new[i] += p_vec[i] - mass
            for key2, q in res:
                j = chain.add(key2)
                if j >= len(new):
                    new = np.concatenate([new, np.zeros(len(chain.keys) - len(new))])
                new[j] += mass * q
        if moved:
            chain.explore()
            if len(new) < len(chain.keys):
                new = np.concatenate([new, np.zeros(len(chain.keys) - len(new))])
        p_vec = new
    p_vec = solver.advance(p_vec, hz - now)
    at_mark[hz] = held(p_vec)
    curve: list[tuple[float, float]] = []
    if curve_times:
        curve = [(t, at_mark.get(t, 0.0) if t > 0 else 0.0) for t in curve_times]
        curve[-1] = (hz, at_mark[hz])
    held_by = {d: at_mark[min(day_end[d], hz)] for d in days}
    by_day: dict[str, float] = {}
    before = 0.0
    for d in days:
        by_day[d] = held_by[d] - before
        before = held_by[d]
    outcomes = {
        name: float(p_vec[chain.index[k]]) if k in chain.index else 0.0
        for k, name in outcome_keys.items()
    }
    outcomes["censored"] = max(0.0, 1.0 - sum(outcomes.values()))
    if phases is None:
        method = "exact CTMC (every delay exponential), uniformization"
    else:
        method = f"phase-type CTMC (fits of at most {phases} phases), uniformization"
    if random_stays or sched_flag:
        method += f"; random breakpoint times by {nodes}-node Gauss-Legendre quadrature"
    return Analysis(
        scenario=cs.model.id,
        title=cs.model.title,
        p_meeting=at_mark[hz],
        by_day=by_day,
        held_by_end_of_day=held_by,
        outcomes=outcomes,
        states=len(chain.keys),
        method=method,
        elapsed_s=time.perf_counter() - started,
        tolerance=solver.error,
        fits=fits,
        curve=curve,
        horizon=at_hours(cs.start, hz, cs.tz).isoformat(timespec="minutes"),
    )


def _after(base: float, x: float) -> float:
    return base + x


def _before(base: float, x: float) -> float:
    return base - x


def _shares(nodes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Node (time, weight) pairs as (time, share of the remaining weight), in time order."""
    ordered = sorted(nodes)
    total = sum(w for _, w in ordered)
    left = total
    out = []
    for t, w in ordered:
        share = 0.0 if left <= 0 else min(1.0, w / left)
        out.append((t, share))
        left -= w
    return out
