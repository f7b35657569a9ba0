"""The batch engine: many replications advanced in lockstep over struct-of-arrays state.

Every replication of a chunk keeps its world in arrays (one per slot, the
protocol state, which clocks are enabled, a key per pending happening); each
step processes *one* happening for every live replication, the one the scalar
engine would process next: the earliest instant, and at one instant the
horizon, then breakpoints in the order the scalar engine schedules them
(window edges, arrivals, departures, scheduled events), then clocks in
declaration order. That order is encoded in one integer key per happening,
``tick * KP + column`` (KP a power of two at least the number of columns), so
the next happening is the least key. Draws come from
the same keyed streams (:mod:`negosim.engine.streams`), one stream per clock's
delays and per clock's choices, so a replication consumes exactly the draws
the scalar engine does and gets the same row.

What the scalar engine would turn into an error (an expression that raises,
weights that are not positive finite numbers, the events cap, a zero-time
loop) is not handled here: the replication is handed to the reference
engine, which gives its row or raises its error. Its result is the same by
construction, since a replication is a pure function of (seed, index).
"""

from __future__ import annotations

import copy
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...compiler.expr import Name, compile_expr
from ...compiler.tables import Assign, CompiledScenario
from ..simulation import (
    OVERTAKEN,
    REFUSED,
    SAME_INSTANT_LIMIT,
    TICKS_PER_HOUR,
    UNDECIDED,
    Engine,
    Row,
)
from ..streams import (
    GAMMA,
    keyed_uniforms,
    replication_keys,
    stream_keys_by_stream,
    uniforms_at,
)
from .alloc import keep_freed_memory
from .families import FamilySub, plan
from .vdists import VSampler
from .vexpr import Strings, Vectoriser, VFn, string_literals

INF = np.int64(2**62)  # key of a happening that is not scheduled
CHUNK = 65_536  # at most this many replications advanced together
CHUNK_BYTES = 96 << 20  # and about this much memory in per-replication arrays
CHILD_NODES = 4096  # path nodes whose children are kept in a table (_extend_paths)
TAIL_STEPS, TAIL_ROWS = 200, 16  # after this many steps, so few rows go to the reference
RUNNING, CENSORED = -2, -1
SLOT = re.compile(r"s\[(\d+)\]")  # a slot read in generated code


def _pysum(ws: list[np.ndarray]) -> np.ndarray:
    """``sum(weights)`` as the running Python adds floats (compensated from 3.12 on)."""
    f = ws[0].copy()
    if sys.version_info < (3, 12):
        for x in ws[1:]:
            f = f + x
        return f
    c = np.zeros_like(f)
    with np.errstate(invalid="ignore", over="ignore"):
        for x in ws[1:]:
            t = f + x
            c += np.where(np.abs(f) >= np.abs(x), (f - t) + x, (x - t) + f)
            f = t
        return np.where((c != 0) & np.isfinite(c), f + c, f)


class _Sub:
    """Slot values restricted to some rows (taken on first use)."""

    __slots__ = ("slots", "rows", "cache")

    def __init__(self, slots: list[Any], rows: np.ndarray) -> None:
        self.slots, self.rows = slots, rows
        self.cache: dict[int, Any] = {}

    def __getitem__(self, i: int) -> Any:
        v = self.cache.get(i)
        if v is None:
            x = self.slots[i]
            v = self.cache[i] = x.take(self.rows) if isinstance(x, np.ndarray) else x
        return v


@dataclass
class _Assign:
    slot: int
    value: VFn
    low: float | None
    high: float | None
    allowed: np.ndarray | None  # enum codes an expression may give (checked at run time)
    src: str  # the value's code (or a constant's repr), to recognise families of clocks


@dataclass
class _Effect:
    sets: list[_Assign]
    trigger: int | None  # row of the next-state table
    dirty: frozenset[int]
    ends: bool = False  # ends the replication wherever its clock fires


@dataclass
class BatchResult:
    """Columns of the rows of replications ``start..stop-1`` (see :meth:`rows`)."""

    cs: CompiledScenario
    start: int
    outcome: np.ndarray  # state index, or -1 censored
    held: np.ndarray
    ticks: np.ndarray  # -1 when censored
    events: np.ndarray
    node: np.ndarray  # path, as a node of ``paths``
    blocking: np.ndarray  # (runs, preconditions) bool
    why: np.ndarray  # (runs, preconditions): REFUSED, UNDECIDED or OVERTAKEN where blocking
    paths: list[tuple[int, ...]]
    reference: dict[int, Row] = field(default_factory=dict)  # rows the scalar engine made

    def __len__(self) -> int:
        return len(self.outcome)

    def rows(self) -> Iterator[Row]:
        """The rows, equal field by field to what the scalar engine gives."""
        states = self.cs.states
        for p in range(len(self.outcome)):
            ref = self.reference.get(p)
            if ref is not None:
                yield ref
                continue
            o = int(self.outcome[p])
            held = bool(self.held[p])
            ticks = int(self.ticks[p])
            end = None if ticks < 0 else ticks
            blocking = () if held else tuple(int(i) for i in self.blocking[p].nonzero()[0])
            yield Row(
                self.start + p,
                "censored" if o < 0 else states[o],
                held,
                None if end is None else end / TICKS_PER_HOUR,
                self.paths[int(self.node[p])],
                blocking,
                int(self.events[p]),
                end,
                tuple(int(self.why[p, i]) for i in blocking),
            )


def _raw(e: Any) -> dict[str, Any]:
    """An effect's (action, option or event) written values by the key its
    :class:`Assign` carries."""
    return {
        **e.set,
        **{f"present:{a}": v for a, v in e.present.items()},
        **{f"available:{a}": v for a, v in e.available.items()},
    }


def _names(cs: CompiledScenario) -> dict[str, Name]:
    """The names mapping the compiler used (slot index, type, enum values)."""
    out: dict[str, Name] = {}
    facts = cs.model.facts
    for i, key in enumerate(cs.slot_names):
        if key in facts:
            f = facts[key]
            typ = {"bool": "bool", "number": "number"}.get(f.type, "str")
            out[key] = Name(i, typ, tuple(f.values) if typ == "str" and f.values else None)
        elif key.startswith(("window:", "present:")):
            out[key] = Name(i, "bool")
        elif key.startswith("available:"):
            windows = cs.model.actors[key.removeprefix("available:")].available
            out[key] = Name(i, "bool", None, None if windows is None else tuple(
                f"window:{w}" for w in windows if f"window:{w}" in cs.slot_names))  # fmt: skip
        else:
            out[key] = Name(i, "number")
    return out


class BatchEngine:
    """Runs chunks of replications of one compiled scenario in lockstep.

    Raises :class:`Unsupported` (naming the feature) for a scenario it cannot run
    exactly as the reference :class:`~negosim.engine.simulation.Engine` does.
    """

    def __init__(self, cs: CompiledScenario, reference: Engine | None = None) -> None:
        self.cs = cs
        ref = self.ref = reference or Engine(cs)
        model = cs.model
        names = _names(cs)
        self.types = [names[k].type for k in cs.slot_names]
        texts: list[tuple[str, str]] = []  # (text, expected type) of every expression

        def code(text: str, expect: str) -> str:
            texts.append((text, expect))
            return compile_expr(text, names, expect).code

        # --- gather the code of every expression, from the validated model -----------
        clocks = cs.clocks
        self.C = C = len(clocks)
        test_parts: list[list[str]] = []
        weight_codes: list[list[str | float]] = []
        effects_src: list[list[Any]] = []
        for c in clocks:
            parts: list[str] = []
            if c.kind == "action":
                act = model.actions[c.id]
                parts += [code(model.preconditions[cs.preconditions[pi]].holds, "bool")
                          for pi, _ in c.requires]  # fmt: skip
                if c.avail is not None:
                    parts.append(f"s[{c.avail}]")
                if c.actor_windows is not None:
                    parts.append(" or ".join(f"s[{k}]" for k in c.actor_windows) or "False")
                if act.guard:
                    parts.append(code(act.guard, "bool"))
                ws: list[str | float] = []
                effs: list[Any] = []
                for o in c.options:
                    if act.options:
                        opt = act.options[o.id]
                        sets, trigger = _raw(opt), opt.trigger
                        ws.append(
                            o.weight
                            if isinstance(o.weight, float)
                            else code(str(opt.weight), "number")
                        )
                    else:
                        sets, trigger = _raw(act), act.trigger
                        ws.append(1.0)
                    effs.append((o.sets, sets, trigger))
                weight_codes.append(ws)
            else:
                ev = model.events[c.id]
                if ev.window is not None:
                    parts.append(f"s[{names['window:' + ev.window].index}]")
                if ev.guard:
                    parts.append(code(ev.guard, "bool"))
                weight_codes.append([1.0])
                effs = [(c.options[0].sets, _raw(ev), ev.trigger)]
            test_parts.append(parts)
            effects_src.append(effs)
        sched_src: list[Any] = [(ev.sets, _raw(model.events[ev.id]), ev.trigger)
                                for ev in cs.scheduled]  # fmt: skip
        when_src: list[Any] = [(w.sets, _raw(model.events[w.id]), w.trigger) for w in cs.whens]
        when_codes = [code(str(model.events[w.id].when), "bool") for w in cs.whens]
        sched_guard_codes = [
            code(str(model.events[ev.id].guard), "bool") if ev.guard is not None else None
            for ev in cs.scheduled
        ]
        prec_codes = [code(model.preconditions[p].holds, "bool") for p in cs.preconditions]

        # --- strings: every enum value and literal, sorted ---------------------------------
        strings: set[str] = set()
        for f in model.facts.values():
            strings.update(f.values or ())
            if isinstance(f.initial, str):
                strings.add(f.initial)
        for text, expect in texts:
            strings |= string_literals(compile_expr(text, names, expect).code)
        for effs in [*effects_src, sched_src, when_src]:
            for _, raw, _ in effs:
                for v in raw.values():
                    if isinstance(v, str):
                        strings.add(v)
        self.strings = st = Strings(strings)
        self.vec = vec = Vectoriser(self.types, st)

        # --- tests, weights, effects ------------------------------------------------------------
        nstates = len(cs.states)
        self.masks = np.array([c.states for c in clocks], dtype=bool).reshape(C, nstates)
        # Clocks allowed in every state a running replication can be in (all but the
        # outcomes; a replication in an outcome is no longer re-evaluated): no state
        # to look up.
        running = np.ones(nstates, dtype=bool)
        if cs.initial_state not in cs.outcome_states:  # else a replication starts in one
            running[list(cs.outcome_states)] = False
        self.everywhere = [bool(m[running].all()) for m in self.masks]
        # Where a clock's states are one run of state numbers (nearly always: most are
        # allowed in one state), its state test is one or two comparisons, cheaper than
        # a lookup in the mask at every row (_test).
        self.state_run: list[tuple[int, int] | None] = []
        for m in self.masks:
            allowed = m.nonzero()[0].tolist()
            contiguous = allowed and allowed[-1] - allowed[0] + 1 == len(allowed)
            self.state_run.append((allowed[0], allowed[-1]) if contiguous else None)
        self.tests = [[vec.compile(p)[0] for p in parts] for parts in test_parts]
        self.weight_codes = weight_codes
        self.weight_fns: list[list[VFn | float]] = [
            [w if isinstance(w, float) else vec.compile(w)[0] for w in ws] for ws in weight_codes
        ]
        self.weights = [list(ws) for ws in self.weight_fns]
        self.prec = [vec.compile(p)[0] for p in prec_codes]
        self.sched_guards = [None if g is None else vec.compile(g)[0] for g in sched_guard_codes]
        self.W = len(cs.whens)
        self.when_conds = [vec.compile(w)[0] for w in when_codes]
        # For the blocking report: which clocks can decide each precondition, and the
        # action (clock index, -1 none) a firing names as the one that ended the talks.
        self.deciders = [sorted(d) for d in cs.deciders]
        self.clock_ender = [ref.action_index.get(c.id, -1) for c in clocks]
        self.sched_ender = [ref.action_index.get(ev.id, -1) for ev in cs.scheduled]
        self.when_ender = [ref.action_index.get(w.id, -1) for w in cs.whens]
        P = len(cs.preconditions)
        self.prec_mask = np.zeros((P, nstates), dtype=bool)  # states where pi can block
        for c in clocks:
            for pi, _ in c.requires:
                self.prec_mask[pi] |= np.array(c.states, dtype=bool)
        triggers = list(ref.next_state)
        self.next_table = np.array([ref.next_state[t] for t in triggers], dtype=np.int64)
        self.trig_index = {t: i for i, t in enumerate(triggers)}
        outcomes = np.zeros(nstates, dtype=bool)
        outcomes[list(cs.outcome_states)] = True
        failure = np.zeros(nstates, dtype=bool)
        failure[list(cs.failure)] = True
        success = np.zeros(nstates, dtype=bool)
        success[list(cs.success)] = True
        self.is_outcome, self.is_failure, self.is_success = outcomes, failure, success

        def effect(tab: tuple[Assign, ...], raw: dict[str, Any], trigger: str | None) -> _Effect:
            out = []
            dirty: set[int] = set()
            for a in tab:
                v = raw[a.fact]
                typ = self.types[a.slot]
                allowed = None
                if typ == "bool" and isinstance(v, bool):
                    fn: VFn = vec.constant(v)[0]
                    src = repr(v)
                elif typ == "number" and isinstance(v, float | int) and not isinstance(v, bool):
                    fn = vec.constant(float(v))[0]
                    src = repr(float(v))
                elif (
                    typ == "str" and isinstance(v, str) and v in (model.facts[a.fact].values or ())
                ):
                    fn = vec.constant(v)[0]
                    src = repr(v)
                else:
                    src = code(str(v), typ)
                    fn = vec.compile(src)[0]
                    if typ == "str":
                        allowed = np.array(
                            [st.code(x) for x in model.facts[a.fact].values or ()], dtype=np.int64
                        )
                out.append(_Assign(a.slot, fn, a.low, a.high, allowed, src))
                dirty.update(ref.watchers[a.slot])
            t = None
            if trigger is not None:
                t = self.trig_index[trigger]
                table = ref.next_state[trigger]
                for old, new in enumerate(table):
                    if old != new:
                        dirty.update(ref.state_change[old, new])
            return _Effect(out, t, frozenset(dirty))

        self.clock_effects = [[effect(a, r, t) for a, r, t in effs] for effs in effects_src]
        self.sched_effects = [effect(a, r, t) for a, r, t in sched_src]
        self.when_effects = [effect(a, r, t) for a, r, t in when_src]

        self._samplers()

        # --- columns of the key matrix, in the order of happenings at one instant ----------------
        # Window edges share one column: each replication meets the groups of edges
        # (all at distinct instants) one after the other, so only its next one is keyed.
        S, E = len(cs.stays), len(cs.scheduled)
        self.col_edge = 1
        self.col_arrive = 2
        self.col_leave = 2 + S
        self.col_sched = 2 + 2 * S
        self.col_clock = 2 + 2 * S + E
        self.K = self.col_clock + C
        # Holds KP - 1; the sort is a radix sort on 8 or 16 bits (one pass on 8).
        self.col_type = np.uint8 if self.K < 128 else np.int16 if self.K < 2**14 else np.int64
        self.col_ids = np.arange(self.K, dtype=self.col_type)
        # A key is ``tick * KP + column`` with KP a power of two above every column,
        # so that a key is split with a shift and a mask, not a division. Ticks stay
        # below 2**39 (ten years), so keys stay below INF for any realistic K.
        self.shift = max(1, self.K.bit_length())
        self.KP = 1 << self.shift  # > K: column KP - 1 is free for parked rows (_step)
        # Keys are 32-bit where every key that can matter fits: each step reads all of
        # them for the least (half the memory), and writes them at scattered rows. A
        # happening at the horizon's tick or later never comes first (the horizon,
        # column 0, does, and ends the replication), so a key from the horizon's tick
        # on (an arrival or scheduled event after it) is kept as "not scheduled", INF;
        # a clock's delay is scheduled only before the horizon.
        if (ref.horizon + 1) * self.KP < 2**32 - 1:
            self.key_type: Any = np.uint32
            self.INF: Any = np.uint32(2**32 - 1)
        else:
            self.key_type, self.INF = np.int64, INF
        self.edge_at = np.array([at for at, _ in ref.edge_groups], dtype=np.int64)
        # The key of each group of window edges (INF from the horizon on, as above).
        self.edge_key = np.where(
            self.edge_at < ref.horizon, self.edge_at * self.KP + self.col_edge, self.INF
        ).astype(np.int64)
        self.dirty: list[frozenset[int]] = [frozenset()] * self.K
        d: set[int] = set()
        for e in cs.edges:
            d.update(ref.watchers[e.slot])
        self.dirty[1] = frozenset(d)
        for j, s in enumerate(cs.stays):
            self.dirty[self.col_arrive + j] = self.dirty[self.col_leave + j] = frozenset(
                ref.watchers[s.slot]
            )
        for k, eff in enumerate(self.sched_effects):
            self.dirty[self.col_sched + k] = eff.dirty
        for i in range(C):
            d = {i}
            for eff in self.clock_effects[i]:
                d |= eff.dirty
            self.dirty[self.col_clock + i] = frozenset(d)
        # The clocks a happening makes dirty on every row where it happens. A clock
        # with options makes dirty only itself there; the option each row draws adds
        # its effect's clocks on those rows alone (_happen_only): a round of talks
        # that changes nothing then re-evaluates nothing else (a clock whose inputs
        # did not change keeps its state, so skipping it changes no row).
        # An effect that ends the replication from every state its clock fires in makes
        # nothing dirty: the row is done and never re-evaluated.
        fires_in = [(self.masks[i] & running).nonzero()[0].tolist() for i in range(C)]
        for i in range(C):
            for eff in self.clock_effects[i]:
                if eff.trigger is not None and all(
                    outcomes[ref.next_state[triggers[eff.trigger]][s]] for s in fires_in[i]
                ):
                    eff.dirty, eff.ends = frozenset(), True
        self.col_dirty = list(self.dirty)
        for i in range(C):
            if self.clock_effects[i][0].ends and len(self.clock_effects[i]) == 1:
                self.col_dirty[self.col_clock + i] = frozenset()
        written = {a.slot for effs in self.clock_effects for e in effs for a in e.sets}
        written |= {a.slot for e in self.sched_effects for a in e.sets}
        written |= {a.slot for e in self.when_effects for a in e.sets}
        written |= {e.slot for e in cs.edges} | {s.slot for s in cs.stays}
        self.written = written
        self._values()
        # Slots effects write: their values at the start of the instant are kept.
        self.effect_written = sorted(
            {a.slot for effs in self.clock_effects for e in effs for a in e.sets}
            | {a.slot for e in self.sched_effects for a in e.sets}
            | {a.slot for e in self.when_effects for a in e.sets}
        )
        # The ``when:`` events a happening of each column may wake: those reading a slot
        # it writes (edges and stays their slot, effects what they set).
        wakes: list[set[int]] = [set() for _ in range(self.K)]
        reads = [w.reads for w in cs.whens]
        col_slots: list[set[int]] = [set() for _ in range(self.K)]
        col_slots[1] = {e.slot for e in cs.edges}
        for j, s in enumerate(cs.stays):
            col_slots[self.col_arrive + j].add(s.slot)
            col_slots[self.col_leave + j].add(s.slot)
        for k, eff in enumerate(self.sched_effects):
            col_slots[self.col_sched + k] = {a.slot for a in eff.sets}
        for i in range(C):
            col_slots[self.col_clock + i] = {a.slot for e in self.clock_effects[i] for a in e.sets}
        for col, slots in enumerate(col_slots):
            wakes[col] = {k for k, r in enumerate(reads) if r & slots}
        self.wakes = [sorted(w) for w in wakes]
        # A clock that fires with an effect that leaves the inputs of its own test as
        # they were (a round of talks with no progress, a shock raising a tension its
        # guard does not read) is still enabled: it is re-enabled with a new delay
        # without evaluating its test (_step), unless a when: event could change them.
        self.refire = [
            [i not in e.dirty and not e.ends and not self.wakes[self.col_clock + i] for e in effs]
            for i, effs in enumerate(self.clock_effects)
        ]
        # Clocks that some option re-enables so: their spent key and their disabling are
        # written only on the rows of the other options (_happen_only), not on every row
        # that fired, then the re-enabled rows' again.
        self.refires = [any(r) for r in self.refire]
        for i, effs in enumerate(self.clock_effects):
            if len(effs) == 1 and self.refire[i][0]:
                self.col_dirty[self.col_clock + i] = effs[0].dirty
            elif len(effs) > 1:
                self.col_dirty[self.col_clock + i] = frozenset()  # per option: _happen_only
        # Only the slots the preconditions read need their value as the instant began
        # (for the blocking report); effects keep it for those alone.
        read = {int(m) for p in prec_codes for m in re.findall(r"s\[(\d+)\]", p)}
        self.tracked = frozenset(k for k in self.effect_written if k in read)
        # Only the clocks that decide a precondition need their first firing tick.
        deciding = sorted({k for d in self.deciders for k in d})
        self.fired_col = np.full(C, -1, dtype=np.int64)
        self.fired_col[deciding] = np.arange(len(deciding))
        self.n_fired = len(deciding)
        # Replications advanced together: at most CHUNK, fewer for wide scenarios, so
        # that the per-replication arrays stay within about CHUNK_BYTES. The Python cost
        # of a step is per kind of happening in it, spread over the chunk: the larger
        # the chunk, the less it weighs per replication.
        per_rep = (
            8 * (self.K + len(ref.stream_ids) + self.n_fired)  # keys, streams' cursors
            + 4 * 2 * C  # (was: draw counters; kept, so that chunks stay as they were)
            + C  # enabled
            + 9 * len(self.written)  # slot arrays (at most 8 bytes) and their copies
            + 16 * len(self.tracked)
            + 9 * P
            + 128  # the per-replication vectors
        )
        self.chunk = max(64, min(CHUNK, CHUNK_BYTES // per_rep))
        # The streams the steps draw from, each a row of _Chunk.cursor: every clock's
        # delays, and the choices of clocks with options (the others never draw one).
        drawn = list(range(C)) + [C + i for i in range(C) if len(self.clock_effects[i]) > 1]
        self.cursor_streams = tuple(drawn)
        self.cursor_row = np.full(2 * C, -1, dtype=np.int64)
        self.cursor_row[drawn] = np.arange(len(drawn))
        self.cursor_rows = self.cursor_row.tolist()
        # Clocks alike up to their slots, whose firings are processed together.
        self.test_parts = test_parts
        self.plan = plan(self, test_parts)
        self.plan_key = self._plan_key()

    # --- what depends on parameter values ----------------------------------------------------

    def _samplers(self) -> None:
        """The delay, arrival, departure and jitter samplers, over arrays."""
        cs = self.cs
        self.delays = [VSampler(c.delay, f"{c.kind}s.{c.id}.delay") for c in cs.clocks]
        self.arrivals = [
            VSampler(s.arrival, f"actors.{s.actor}.present.arrival") if s.arrival else None
            for s in cs.stays
        ]
        self.departures = [
            VSampler(s.departure, f"actors.{s.actor}.present.departure") if s.departure else None
            for s in cs.stays
        ]
        self.jitters = [
            VSampler(ev.jitter, f"events.{ev.id}.jitter") if ev.jitter else None
            for ev in cs.scheduled
        ]

    def _values(self) -> None:
        """The slots' initial values, and the weights they fix (after :meth:`_samplers`
        and with :attr:`written` known)."""
        st, written = self.strings, self.written
        # Each slot's initial value as the array functions read it (a chunk keeps the
        # slots nothing writes as these scalars).
        self.initial = [
            st.code(v) if typ == "str" else bool(v) if typ == "bool" else float(v)
            for v, typ in zip(self.cs.initial, self.types, strict=True)
        ]
        # A weight that reads only slots nothing writes (parameters, constant facts) is
        # the same in every replication at every instant: computed once, here, as the
        # chunks would compute it (so options are drawn on fixed weights, _choose_fixed).
        self.weights = [list(ws) for ws in self.weight_fns]
        for i, ws in enumerate(self.weight_codes):
            for j, w in enumerate(ws):
                if isinstance(w, str) and not {int(m) for m in SLOT.findall(w)} & written:
                    v, e = self.weights[i][j](self.initial)  # type: ignore[operator]
                    if np.ndim(v) == 0 and (e is None or (np.ndim(e) == 0 and not e)):
                        self.weights[i][j] = float(v)

    def _plan_key(self) -> tuple[Any, ...]:
        """What of the parameter values :func:`families.plan` reads: which clocks have
        equal delays, and which have the one weight 1.0."""
        first: dict[Any, int] = {}
        same = tuple(first.setdefault(d.spec, i) for i, d in enumerate(self.delays))
        return same, tuple(ws == [1.0] for ws in self.weights)

    def bind(self, cs: CompiledScenario, reference: Engine | None = None) -> BatchEngine:
        """This engine for ``cs``, a scenario of the same structure (made by
        :func:`negosim.compiler.bind.bind` from this engine's, or from one of the same
        structure) with other parameter values: what depends on the structure alone
        (the compiled expressions, effects, columns) is shared, what depends on the
        values (initial slots, fixed weights, samplers, the families if they change)
        is made again. Gives the engine ``BatchEngine(cs)`` gives."""
        if cs.structure is not self.cs.structure:
            raise ValueError("bind: the scenario does not have this engine's structure")
        be = copy.copy(self)
        be.cs = cs
        be.ref = reference or Engine(cs)
        be._samplers()
        be._values()
        be.plan_key = be._plan_key()
        if be.plan_key != self.plan_key:
            be.plan = plan(be, self.test_parts)
        return be

    # --- running ---------------------------------------------------------------------------

    def run(self, seed: int, start: int, stop: int) -> BatchResult:
        """Replications ``start..stop-1``, in chunks of at most :data:`CHUNK`."""
        parts = [self._chunk(seed, a, b) for a, b in self._bounds(start, stop)]
        if len(parts) == 1:
            return parts[0]
        paths: list[tuple[int, ...]] = []
        index: dict[tuple[int, ...], int] = {}
        nodes = []
        ref: dict[int, Row] = {}
        for part in parts:
            remap = np.array([index.setdefault(p, len(index)) for p in part.paths], dtype=np.int64)
            nodes.append(remap[part.node])
            for p, row in part.reference.items():
                ref[part.start - start + p] = row
        paths = list(index)
        return BatchResult(
            self.cs,
            start,
            np.concatenate([p.outcome for p in parts]),
            np.concatenate([p.held for p in parts]),
            np.concatenate([p.ticks for p in parts]),
            np.concatenate([p.events for p in parts]),
            np.concatenate(nodes),
            np.concatenate([p.blocking for p in parts]),
            np.concatenate([p.why for p in parts]),
            paths,
            ref,
        )

    def run_block(self, seed: int, start: int, stop: int) -> Iterator[Row]:
        """Rows of replications ``start..stop-1``, as the reference engine's ``run_block``."""
        for a, b in self._bounds(start, stop):
            yield from self._chunk(seed, a, b).rows()

    def _bounds(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Chunks of nearly equal size (a last chunk of a few replications would pay a
        whole chunk's Python cost per step)."""
        parts = max(1, -(-(stop - start) // self.chunk))
        cuts = [start + (stop - start) * j // parts for j in range(parts + 1)]
        return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]

    def _chunk(self, seed: int, start: int, stop: int) -> BatchResult:
        keep_freed_memory()  # once per process: chunks reuse each other's pages (alloc.py)
        return _Chunk(self, seed, start, stop).run()


class _Chunk:
    """The state of one chunk of replications while it runs."""

    def __init__(self, be: BatchEngine, seed: int, start: int, stop: int) -> None:
        self.be = be
        cs, ref = be.cs, be.ref
        self.seed, self.start = seed, start
        n = self.n = stop - start
        self.reps = np.arange(start, stop, dtype=np.int64)
        self.hz = ref.horizon
        # Persistent, by position in the chunk.
        # Replication keys by position, for the draws made once at the start (arrivals,
        # departures, jitters); dropped after.
        self.repk: Any = replication_keys(seed, self.reps)
        self.out_outcome = np.full(n, RUNNING, dtype=np.int64)
        self.out_ticks = np.full(n, -1, dtype=np.int64)
        self.out_events = np.zeros(n, dtype=np.int64)
        self.out_node = np.zeros(n, dtype=np.int64)
        self.out_block = np.zeros((n, len(cs.preconditions)), dtype=bool)
        self.out_why = np.zeros((n, len(cs.preconditions)), dtype=np.int8)
        self.deferred: list[int] = []
        self.trie: dict[tuple[int, int], int] = {}
        self.paths: list[tuple[int, ...]] = [(cs.initial_state,)]
        self.child = np.full((64, len(cs.states)), -1, dtype=np.int64)  # see _extend_paths
        # Per live replication (compacted as replications finish).
        self.pos = np.arange(n, dtype=np.int64)
        self.slots: list[Any] = []
        for i, x in enumerate(be.initial):
            if i in be.written:
                dt = {"str": np.int64, "bool": bool, "number": np.float64}[be.types[i]]
                self.slots.append(np.full(n, x, dtype=dt))
            else:
                self.slots.append(x)
        # The slots a family of clocks renames are the rows of one block (families.py);
        # each member's slot array is a view of its row.
        self.blocks = [np.array([self.slots[y] for y in ys]) for ys in be.plan.blocks]
        self._block_views()
        self.consts = [np.array([self.slots[y] for y in ys]) for ys in be.plan.consts]
        self.state = np.full(n, cs.initial_state, dtype=np.int64)
        self.node = np.zeros(n, dtype=np.int64)
        # Per-replication matrices are stored (column, replication): a happening reads
        # and writes one clock's column for many replications, which is then one run of
        # memory instead of one cache line per replication (what kept the cost per
        # clock growing with the number of clocks).
        self.enabled = np.zeros((be.C, n), dtype=bool)
        # The next happening of a replication is the least of its keys (a key encodes
        # its column): a reduction down each column of replications, over contiguous
        # memory, about a third of a nanosecond a key.
        self.keys = np.full((be.K, n), be.INF, dtype=be.key_type)
        # Each stream a step draws from (be.cursor_streams: clock delays and choices), of
        # each replication, as the word its next draw mixes, key + (k + 1) * GAMMA for
        # the k-th draw (streams.uniforms_at): a draw is one gather and one add, with no
        # draw counter and no key to look up.
        self.cursor = stream_keys_by_stream(
            self.repk, tuple(ref.stream_ids[k] for k in be.cursor_streams)
        )
        self.cursor += np.uint64(GAMMA)  # (wraps around, as intended)
        # Every unparked row processes one happening a step and all start together, so
        # each has processed as many happenings as there were steps: one counter.
        self.events = 0
        self.instant = np.zeros(n, dtype=np.int64)
        # Happenings at the row's current instant: at most SAME_INSTANT_LIMIT and a few
        # (a row reaching it goes to the reference engine), so 32 bits: a pass a step.
        self.at_instant = np.zeros(n, dtype=np.int32)
        self.count = {s.slot: np.zeros(n, dtype=np.int64) for s in cs.stays}
        self.done = np.full(n, RUNNING, dtype=np.int64)  # per live row: outcome once done
        self.defer = np.zeros(n, dtype=bool)
        # First firing tick of each clock that decides a precondition (column fired_col).
        self.fired = np.full((be.n_fired, n), -1, dtype=np.int64)
        # Each tracked slot's value before its first change at the tick ``prev_t``.
        self.prev = {k: np.array(self.slots[k], copy=True) for k in be.tracked}
        self.prev_t = {k: np.full(n, -1, dtype=np.int64) for k in be.tracked}
        self.end = np.full(n, -1, dtype=np.int64)
        self.edge_next = np.zeros(n, dtype=np.int64)  # the next group of window edges
        self.latch = np.zeros((be.W, n), dtype=bool)  # each ``when:`` condition as last seen
        # Happenings a row processed beyond one a step: its ``when:`` events.
        self.extra = np.zeros(n, dtype=np.int64)
        self.extra_max = 0
        self.parked = np.zeros(n, dtype=bool)  # finished and recorded: no longer stepped
        self.park_bits = np.zeros(n, dtype=be.col_type)  # KP - 1 where parked, else 0
        self.ok = np.ones(n, dtype=bool)  # rows whose clocks are re-evaluated (set each step)
        self.refire: list[tuple[int, np.ndarray]] = []  # (clock, rows): see be.refire
        self.t = np.zeros(n, dtype=np.int64)  # the tick of each row in the current step
        self.live = n

    def _before_horizon(self, ticks: np.ndarray, col: int) -> np.ndarray:
        """The keys of happenings of column ``col`` at ``ticks`` (INF from the horizon on:
        the horizon comes first there, see BatchEngine.key_type)."""
        return np.where(ticks < self.hz, ticks * self.be.KP + col, self.be.INF)

    def _block_views(self) -> None:
        for b, ys in zip(self.blocks, self.be.plan.blocks, strict=True):
            for j, y in enumerate(ys):
                self.slots[y] = b[j]

    # --- draws -------------------------------------------------------------------------------

    def _u(self, stream: int) -> np.ndarray:
        """The first uniform of ``stream`` on every row (only at the start)."""
        keys = stream_keys_by_stream(self.repk, (self.be.ref.stream_ids[stream],))[0]
        return keyed_uniforms(keys, 0)

    def _draw(self, stream: int | np.ndarray, rows: Any) -> np.ndarray:
        """The next uniform of clock stream ``stream`` (or of a stream per row) on
        ``rows`` (indices, or a slice of every row)."""
        if isinstance(stream, np.ndarray):
            j = self.be.cursor_row[stream]
            z = self.cursor[j, rows]
            self.cursor[j, rows] = z + np.uint64(GAMMA)
            return uniforms_at(z)
        cur = self.cursor[self.be.cursor_rows[stream]]
        if isinstance(rows, slice):
            z = cur[rows].copy()  # a view: uniforms_at overwrites its argument
            cur[rows] += np.uint64(GAMMA)
            return uniforms_at(z)
        z = cur.take(rows)
        cur[rows] = z + np.uint64(GAMMA)
        return uniforms_at(z)

    # --- setup and the main loop ------------------------------------------------------------

    def run(self) -> BatchResult:
        # Floating-point warnings are off for the whole chunk (see vexpr): errors are
        # found through explicit masks, and one errstate per operation cost more than
        # the operation on small groups of rows.
        with np.errstate(all="ignore"):
            return self._run()

    def _run(self) -> BatchResult:
        be, ref = self.be, self.ref_engine
        K, hz = be.KP, self.hz  # K: the key multiplier here
        allrows = np.arange(self.n)
        self.keys[0] = hz * K
        if len(be.edge_at):
            self.keys[be.col_edge] = be.edge_key[0]
        for j, (start, end, stay) in enumerate(ref.stays):
            a_stream, d_stream = ref.stay_streams[j]
            arrive = np.full(self.n, start, dtype=np.int64)
            leave = np.full(self.n, end, dtype=np.int64)
            if be.arrivals[j] is not None:
                arrive += be.arrivals[j].ticks(self._u(a_stream))  # type: ignore[union-attr]
            if be.departures[j] is not None:
                leave -= be.departures[j].ticks(self._u(d_stream))  # type: ignore[union-attr]
            valid = arrive < leave
            now = valid & (arrive <= 0)
            self.count[stay.slot][now] += 1
            self.slots[stay.slot][now] = True
            later = valid & (arrive > 0)
            col = be.col_arrive + j
            self.keys[col, later] = self._before_horizon(arrive[later], col)
            goes = valid & (leave < hz)
            col = be.col_leave + j
            self.keys[col, goes] = self._before_horizon(np.maximum(leave[goes], 0), col)
        for k, (at, _) in enumerate(ref.scheduled):
            when = np.full(self.n, at, dtype=np.int64)
            if be.jitters[k] is not None:
                when += be.jitters[k].ticks(self._u(ref.jitter_streams[k]))  # type: ignore[union-attr]
            col = be.col_sched + k
            ok = when < hz
            self.keys[col, ok] = self._before_horizon(np.maximum(when[ok], 0), col)
        self.repk = None  # every later draw comes from self.cursor
        if be.W:  # a condition true at the start counts as turning true
            self._whens(allrows, list(range(be.W)), {})
        self.ok = (self.done == RUNNING) & ~self.defer
        self._reevaluate(range(be.C), None, np.zeros(self.n, dtype=np.int64))
        self._finish()
        steps = 0
        while self.live:
            self._step()
            steps += 1
            if steps >= TAIL_STEPS and self.live <= TAIL_ROWS:
                # A few replications with very long histories: one lockstep step costs
                # about as much as a whole replication on the reference engine.
                self.defer |= (self.done == RUNNING) & ~self.parked
            self._finish()
        self._flush(self.parked.nonzero()[0])  # every row is parked
        return self._result()

    @property
    def ref_engine(self) -> Engine:
        return self.be.ref

    def _step(self) -> None:
        be = self.be
        self.ok = ~self.parked  # unparked rows are running and not deferred
        kmin = self.keys.min(axis=0)  # parked rows: whatever their keys were
        t = kmin >> be.shift  # a key is tick * KP + column
        if t.dtype != np.int64:  # 32-bit keys: ticks as everywhere else
            t = t.astype(np.int64)
        col = kmin & (be.KP - 1)
        col = col.astype(be.col_type)
        # at_instant + 1 where the instant is the same as the row's last, else 1
        # (arithmetic: a where() on a mask that varies row by row costs ten times more).
        self.at_instant *= t == self.instant
        self.at_instant += 1
        self.instant = t
        self.events += 1
        self.t = t
        col |= self.park_bits  # parked rows: the bin KP - 1, above every column
        order = np.argsort(col, kind="stable")
        # Where each column's rows end in ``order``, from the columns sorted (a gather
        # of small integers): cheaper than a bincount, whose counter for a column most
        # rows share (parked rows, a window edge) is a chain of dependent increments.
        ends = np.searchsorted(col.take(order), be.col_ids, side="right").tolist()
        # The columns present, each with where its rows begin in ``order``.
        begins: dict[int, int] = {}
        b = 0
        for c, e in enumerate(ends):
            if e > b:
                begins[c] = b
                b = e
        dirty: dict[int, list[np.ndarray]] = {}  # clock -> the rows that may change it
        self.refire = []
        fams: list[int] = []
        if be.plan.families:
            fam_of = be.plan.fam_of_col
            fams = sorted({int(fam_of[c]) for c in begins if fam_of[c] >= 0})
            begins = {c: b for c, b in begins.items() if fam_of[c] < 0}
        for c, b in begins.items():
            rows = order[b : ends[c]]
            # What a happening does to its own key, and a clock's firing to the clock:
            # the key processed is no longer pending (a window edge sets its next one
            # in _happen_only); the clock is disabled (re-evaluated below, since a clock
            # is dirty after its own firing); its first firing tick is kept where the
            # blocking report needs it. Column by column: one row of the key matrix
            # at a time, rows in ascending order, is several times cheaper than one
            # scatter over (column, row) pairs.
            if c >= be.col_clock:
                self._fire(c - be.col_clock, rows)
            elif c != be.col_edge:
                self.keys[c][rows] = be.INF
            for i in be.col_dirty[c]:
                dirty.setdefault(i, []).append(rows)
            self._happen(c, rows, dirty)
        fired: list[tuple[int, np.ndarray, np.ndarray]] = []
        if fams:
            live = order[: ends[-1]]
            lcol = col[live]
        for f in fams:  # the firings of a family's members, in one call
            sel = be.plan.fam_of_col[lcol] == f
            rows = live[sel]
            member = be.plan.member_of_col[lcol[sel]]
            family = be.plan.families[f]
            self._fire(family.members[member], rows)
            for i in family.others:
                dirty.setdefault(i, []).append(rows)
            if not family.covered:
                fired.append((f, rows, member))
            env = self._family_env(f, rows, member)
            self._apply(be.clock_effects[family.rep][0], rows, None, -1, env, f, member)
        live_now = self.done == RUNNING
        # at_instant <= events, so the caps cannot be reached before this:
        if self.events + self.extra_max >= min(be.cs.max_events, SAME_INSTANT_LIMIT):
            events = self.events + self.extra
            cap = (events >= be.cs.max_events) | (self.at_instant >= SAME_INSTANT_LIMIT)
            self.defer |= live_now & cap
        # Rows whose clocks are still re-evaluated (one mask a step, not one per clock; a
        # row deferred by an error below is still evaluated: its row is the reference's).
        self.ok = live_now & ~self.defer
        # Clocks that fired and whose test holds as it did: enabled again, with a new
        # delay, before anything re-evaluates them (which then finds nothing to change).
        # (Still enabled there, see _fire; a row not fine to evaluate any more keeps the
        # spent key: it ended, or goes to the reference engine, and is parked this step.)
        for i, rows in self.refire:
            r = rows.take(self.ok.take(rows).nonzero()[0])
            if len(r):
                self.keys[be.col_clock + i][r] = self._delay_keys(i, r, i, t)
        # A clock is re-evaluated on every row when many rows may change it (no
        # gathering), else only on those rows: with many clocks, each happening
        # touches few of them, and the cost per replication stays linear.
        # Clocks dirty on the same rows (say, every clock a change of protocol state may
        # enable) are re-evaluated together, sharing the gathered slots. The order in
        # which clocks are re-evaluated does not matter: each reads the facts and the
        # state, and writes only its own columns and draws from its own stream.
        n = len(self.pos)
        everywhere = []
        together: dict[tuple[int, ...], list[int]] = {}
        for i in sorted(dirty):
            parts = dirty[i]
            m = sum(len(r) for r in parts)
            if 4 * m >= n:
                everywhere.append(i)
            else:
                together.setdefault(tuple(id(r) for r in parts), []).append(i)
        for clocks in together.values():
            parts = dirty[clocks[0]]
            # Disjoint (a row has one happening a step); any order gives the same rows.
            rows = np.concatenate(parts) if len(parts) > 1 else parts[0]
            self._reevaluate(clocks, rows, t)
        if everywhere:
            self._reevaluate(everywhere, None, t)
        for f, rows, member in fired:  # each member that fired, on its rows
            self._reevaluate_family(f, rows, member, t)

    def _fire(self, i: int | np.ndarray, rows: np.ndarray) -> None:
        """Clock ``i`` (or a clock per row) fires on ``rows``: its key is spent, it is
        disabled (for a clock some option re-enables without evaluating its test, on
        the rows of its other options only: _happen_only), and its first firing tick
        is kept if the blocking report needs it."""
        be = self.be
        if isinstance(i, np.ndarray):
            self.keys[be.col_clock + i, rows] = be.INF
            self.enabled[i, rows] = False
            if be.n_fired:
                fc = be.fired_col[i]
                m = fc >= 0
                if m.any():
                    r, fc = rows[m], fc[m]
                    f = self.fired[fc, r]
                    self.fired[fc, r] = np.where(f < 0, self.t[r], f)
            return
        if not be.refires[i]:  # else on the rows that are not re-enabled (_happen_only)
            self.keys[be.col_clock + i][rows] = be.INF
            self.enabled[i][rows] = False
        fc = int(be.fired_col[i])
        if fc >= 0:
            fired = self.fired[fc]
            first = rows.take((fired.take(rows) < 0).nonzero()[0])  # indices: cheaper than a mask
            fired[first] = self.t.take(first)

    def _happen(self, c: int, rows: np.ndarray, dirty: dict[int, list[np.ndarray]]) -> None:
        """Process the happening of column ``c`` on ``rows``, then the ``when:`` events it
        wakes (adding the clocks their effects touch to ``dirty``)."""
        self._happen_only(c, rows, dirty)
        wake = self.be.wakes[c]
        if wake and c != self.be.col_edge:
            self._whens(rows, wake, dirty)

    def _happen_only(self, c: int, rows: np.ndarray, dirty: dict[int, list[np.ndarray]]) -> None:
        be = self.be
        if c == 0:
            self.done[rows] = CENSORED
            self._blocked(rows, self.state.take(rows), self.t.take(rows), -1, True)
            return
        if c < be.col_arrive:
            nxt = self.edge_next.take(rows)
            lo, hi = int(nxt.min()), int(nxt.max())  # mostly one group of edges for all rows
            for g in range(lo, hi + 1):
                sub = rows if lo == hi else rows.take((nxt == g).nonzero()[0])
                if not len(sub):
                    continue
                group = self.ref_engine.edge_groups[g][1]
                for m, (_, edge) in enumerate(group):
                    self.slots[edge.slot][sub] = edge.value
                    wake = self.ref_engine.when_watchers[edge.slot]
                    if m + 1 < len(group):
                        extra: dict[int, list[np.ndarray]] = {}
                        if wake:
                            self._whens(sub, sorted(wake), extra)
                        clocks = set(self.ref_engine.watchers[edge.slot])
                        self._reevaluate(sorted(clocks), sub, self.t)
                        for i in sorted(set(extra) - clocks):
                            for r in extra[i]:
                                self._reevaluate((i,), r, self.t)
                    elif wake:
                        self._whens(sub, sorted(wake), dirty)
            last = len(be.edge_at)
            if lo == hi:  # every row met the same group: its next is the same for all
                self.edge_next[rows] = lo + 1
                self.keys[c][rows] = be.edge_key[lo + 1] if lo + 1 < last else be.INF
                return
            nxt = nxt + 1
            self.edge_next[rows] = nxt
            at = be.edge_key[np.minimum(nxt, last - 1)]
            self.keys[c][rows] = np.where(nxt < last, at, be.INF)
            return
        if c < be.col_sched:
            arriving = c < be.col_leave
            stay = be.cs.stays[c - (be.col_arrive if arriving else be.col_leave)]
            count = self.count[stay.slot]
            count[rows] += 1 if arriving else -1
            self.slots[stay.slot][rows] = count.take(rows) > 0
            return
        if c < be.col_clock:
            k = c - be.col_sched
            t = self.t[rows]
            guard = be.sched_guards[k]
            if guard is not None:
                v, e = guard(_Sub(self.slots, rows))
                ok = np.broadcast_to(np.asarray(v, dtype=bool), rows.shape)
                if e is not None:
                    self.defer[rows[np.broadcast_to(e, rows.shape)]] = True
                rows, t = rows[ok], t[ok]  # the guard does not hold: it does not happen
                if not len(rows):
                    return
            self._apply(be.sched_effects[k], rows, t, be.sched_ender[k])
            return
        i = c - be.col_clock  # keys, enabled and fired: done for every clock in _step
        ender = be.clock_ender[i]
        effects = be.clock_effects[i]
        if len(effects) == 1:
            if be.refire[i][0]:
                self.refire.append((i, rows))
            self._apply(effects[0], rows, None, ender)
            return
        chosen = self._choose(i, rows)
        for o, eff in enumerate(effects):
            sel = chosen[o]
            if not len(sel):
                continue
            r = rows.take(sel)
            if be.refire[i][o]:
                self.refire.append((i, r))
            elif not eff.ends:
                if be.refires[i]:  # spent and disabled here, not in _fire
                    self.keys[be.col_clock + i][r] = be.INF
                    self.enabled[i][r] = False
                dirty.setdefault(i, []).append(r)
            for j in eff.dirty:
                dirty.setdefault(j, []).append(r)
            if eff.sets or eff.trigger is not None:  # else "no progress this round"
                self._apply(eff, r, None, ender)

    def _whens(
        self, rows: np.ndarray, check: list[int], dirty: dict[int, list[np.ndarray]]
    ) -> None:
        """The ``when:`` events that happen on ``rows`` after a happening that may have
        changed the conditions of ``check``: per row, the first in file order whose
        condition turned true happens, then all are checked again, as the scalar engine
        does. Rows that reach the events cap go to the reference engine."""
        be = self.be
        while len(rows):
            live = (self.done[rows] == RUNNING) & ~self.defer[rows]
            rows = rows[live]
            if not len(rows):
                return
            env = _Sub(self.slots, rows)
            firing = np.full(len(rows), -1, dtype=np.int64)
            for k in check:
                v, e = be.when_conds[k](env)
                v = np.broadcast_to(np.asarray(v, dtype=bool), rows.shape)
                if e is not None:  # the scalar engine raises: hand these rows over
                    bad = np.broadcast_to(e, rows.shape)
                    self.defer[rows[bad]] = True
                    firing[bad] = -2
                    v = v & ~bad
                latch = self.latch[k, rows]
                self.latch[k, rows] = latch & v  # a condition found false re-arms
                now = (firing == -1) & v & ~latch
                firing[now] = k
            fired = firing >= 0
            if not fired.any():
                return
            rows, firing = rows[fired], firing[fired]
            self.extra[rows] += 1
            self.extra_max = max(self.extra_max, int(self.extra[rows].max()))
            self.at_instant[rows] += 1
            for k in np.unique(firing).tolist():
                sel = firing == k
                r = rows[sel]
                self.latch[k, r] = True
                eff = be.when_effects[k]
                for i in eff.dirty:
                    dirty.setdefault(i, []).append(r)
                self._apply(eff, r, None, be.when_ender[k])
            cap = (self.events + self.extra[rows] >= be.cs.max_events) | (
                self.at_instant[rows] >= SAME_INSTANT_LIMIT
            )
            self.defer[rows[cap & (self.done[rows] == RUNNING)]] = True
            check = list(range(be.W))

    def _choose(self, i: int, rows: np.ndarray) -> list[np.ndarray]:
        """The rows (positions in ``rows``) that draw each option; a row whose weights
        are wrong is in none: it is handed to the reference engine."""
        env = _Sub(self.slots, rows)
        ws: list[Any] = []
        err: Any = None
        for w in self.be.weights[i]:
            if isinstance(w, float):
                ws.append(w)
            else:
                v, e = w(env)
                ws.append(np.asarray(v, dtype=np.float64))
                if e is not None:
                    err = e if err is None else err | e
        n = len(rows)
        if err is None and not any(isinstance(w, np.ndarray) and w.ndim for w in ws):
            return self._choose_fixed(i, rows, [float(w) for w in ws])
        # Every weight as a full array (np.full is cheaper than a broadcast view here).
        ws = [w if isinstance(w, np.ndarray) and w.shape == (n,) else np.full(n, w) for w in ws]
        total = _pysum(ws)
        low = ws[0]
        for w in ws[1:]:
            low = np.minimum(low, w)  # NaN propagates, as np.min did
        bad = ~((total > 0) & (total < np.inf)) | (low < 0)
        if err is not None:
            bad = bad | err
        x = self._draw(self.be.C + i, rows)
        x *= total
        # As _choose_fixed, with weights that vary by row: an option with a weight that
        # is not positive is skipped (x kept), the last positive one is the fallback.
        chosen = np.full(n, -1, dtype=np.int64)
        undecided = np.ones(n, dtype=bool)
        last = np.zeros(n, dtype=np.int64)  # 1 + the last positive option so far
        for o, wb in enumerate(ws):
            pos = wb > 0
            hit = x < wb
            hit &= pos
            hit &= undecided
            chosen[hit.nonzero()[0]] = o
            undecided &= ~hit
            if o + 1 < len(ws):
                np.subtract(x, wb, out=x, where=pos)
            np.maximum(last, pos * (o + 1), out=last)
        rest = undecided.nonzero()[0]
        chosen[rest] = last[rest] - 1
        wrong = bad.nonzero()[0]
        chosen[wrong] = -1
        self.defer[rows[wrong]] = True
        return [(chosen == o).nonzero()[0] for o in range(len(ws))]

    def _choose_fixed(self, i: int, rows: np.ndarray, ws: list[float]) -> list[np.ndarray]:
        """:meth:`_choose` where every row has the same weights ``ws`` (constants, or
        read from slots no effect writes): the checks are done once, on Python floats
        as the scalar engine does them, and a row's option depends on its draw alone."""
        n = len(rows)
        total = sum(ws)  # Python floats: the scalar engine's own sum
        if not (total > 0 and total < math.inf) or any(w < 0 for w in ws):
            self.defer[rows] = True
            return [rows[:0]] * len(ws)
        x = self._draw(self.be.C + i, rows)
        x *= total
        return self._first_hit(x, ws, [o for o, w in enumerate(ws) if w > 0], n)

    @staticmethod
    def _first_hit(x: np.ndarray, ws: list[Any], positive: list[int], n: int) -> list[np.ndarray]:
        """The rows of each option, as the scalar engine chooses: the first option ``o``
        of ``positive`` (those with a positive weight) where ``x < ws[o]``, else
        ``x -= ws[o]`` and on; the last positive one if none (rounding). The same float
        operations on x, row by row; a row that has chosen ignores the rest (no
        subtraction is made after the last comparison: nothing reads it)."""
        out = [np.zeros(0, dtype=np.int64)] * len(ws)
        undecided: np.ndarray | None = None
        for j, o in enumerate(positive[:-1]):
            hit = x < ws[o]
            if undecided is None:
                undecided = ~hit
            else:
                hit &= undecided
                undecided &= ~hit
            out[o] = hit.nonzero()[0]
            if j + 2 < len(positive):
                x -= ws[o]
        out[positive[-1]] = np.arange(n) if undecided is None else undecided.nonzero()[0]
        return out

    def _apply(
        self,
        eff: _Effect,
        rows: np.ndarray,
        t: np.ndarray | None,
        ender: int,
        env: Any = None,
        family: int = -1,
        member: np.ndarray | None = None,
    ) -> None:
        """Apply ``eff`` on ``rows`` at ticks ``t`` (None: gathered here if needed); for
        a ``family``, each row writes the slots of its ``member`` (``env`` reads them)."""
        if eff.sets:
            if env is None:
                env = _Sub(self.slots, rows)
            var = self.be.plan.families[family].var if family >= 0 else {}
            values = []
            for a in eff.sets:
                v, e = a.value(env)
                if a.allowed is not None:
                    e = ~np.isin(v, a.allowed) if e is None else (e | ~np.isin(v, a.allowed))
                if e is not None:
                    self.defer[rows[np.broadcast_to(e, rows.shape)]] = True
                values.append(v)
            tracked = self.be.tracked
            for a, v in zip(eff.sets, values, strict=True):
                if a.low is not None or a.high is not None:
                    v = np.asarray(v, dtype=np.float64)
                    if a.low is not None and a.high is not None:
                        v = np.where(v < a.low, a.low, np.where(v > a.high, a.high, v))
                    elif a.low is not None:
                        v = np.where(v < a.low, a.low, v)
                    elif a.high is not None:
                        v = np.where(v > a.high, a.high, v)
                b = var.get(a.slot)
                if b is not None:  # a renamed slot: never tracked (families.py)
                    self.blocks[b][member, rows] = v
                    continue
                slot = self.slots[a.slot]
                if a.slot in tracked:
                    if t is None:
                        t = self.t.take(rows)
                    old = slot.take(rows)
                    first = (old != v) & (self.prev_t[a.slot].take(rows) != t)  # first change now
                    w = first.nonzero()[0]  # indices, used three times: cheaper than a mask
                    if len(w):
                        r = rows.take(w)
                        self.prev[a.slot][r] = old.take(w)
                        self.prev_t[a.slot][r] = t.take(w)
                slot[rows] = v
        if eff.trigger is None:
            return
        be = self.be
        old = self.state.take(rows)
        new = be.next_table[eff.trigger].take(old)
        moved = (new != old).nonzero()[0]
        if not len(moved):
            return
        if len(moved) < len(rows):
            rows, old, new = rows.take(moved), old.take(moved), new.take(moved)
            if t is not None:
                t = t.take(moved)
        if t is None:
            t = self.t.take(rows)
        fail = be.is_failure.take(new).nonzero()[0]
        if len(fail):
            self._blocked(rows.take(fail), old.take(fail), t.take(fail), ender, False)
        self.state[rows] = new
        self._extend_paths(rows, new)
        ends = be.is_outcome.take(new).nonzero()[0]
        if len(ends):
            r = rows.take(ends)
            self.done[r] = new.take(ends)
            self.end[r] = t.take(ends)

    def _extend_paths(self, rows: np.ndarray, new: np.ndarray) -> None:
        nstates = len(self.be.cs.states)
        code = self.node.take(rows) * nstates + new
        if len(self.paths) <= CHILD_NODES:
            # The child of each path node by state, as a table (-1: not made yet):
            # nearly always every child is there, and a lookup is one gather.
            if self.child.shape[0] < len(self.paths):
                grown = np.full((CHILD_NODES, nstates), -1, dtype=np.int64)
                grown[: self.child.shape[0]] = self.child
                self.child = grown
            flat = self.child.reshape(-1)
            ids = flat.take(code)
            if (ids >= 0).all():
                self.node[rows] = ids
                return
        top = int(code.max()) + 1
        if top <= 4 * len(code) + 1024:  # few distinct paths so far: a table, not a sort
            uniq = (np.bincount(code, minlength=top)).nonzero()[0]
        else:
            uniq = np.unique(code)
        ids = np.empty(len(uniq), dtype=np.int64)
        for j, x in enumerate(uniq.tolist()):
            parent, state = divmod(x, nstates)
            node = self.trie.get((parent, state))
            if node is None:
                node = self.trie[parent, state] = len(self.paths)
                self.paths.append((*self.paths[parent], state))
            if parent < self.child.shape[0]:
                self.child[parent, state] = node
            ids[j] = node
        if top <= 4 * len(code) + 1024:
            table = np.empty(top, dtype=np.int64)
            table[uniq] = ids
            self.node[rows] = table[code]
        else:
            self.node[rows] = ids[np.searchsorted(uniq, code)]

    def _blocked(
        self, rows: np.ndarray, state: np.ndarray, t: np.ndarray, ender: int, censored: bool
    ) -> None:
        """Record, for ``rows`` that end, the preconditions that hold back an action the
        protocol state allows, judged on the facts as they were when this instant began;
        and why. Written straight to the results (by position): a row ends here."""
        be = self.be
        if not be.prec:
            return
        out = np.zeros((len(rows), len(be.prec)), dtype=bool)
        why = np.zeros((len(rows), len(be.prec)), dtype=np.int8)
        env = _Sub(self.slots, rows)
        for k in be.tracked:  # undo this instant's changes
            undo = self.prev_t[k].take(rows) == t
            if undo.any():
                env.cache[k] = np.where(undo, self.prev[k][rows], self.slots[k][rows])
        for pi, fn in enumerate(be.prec):
            m = be.prec_mask[pi].take(state)
            if not m.any():
                continue
            v, e = fn(env)
            out[:, pi] = m & np.logical_not(v)
            if e is not None:
                self.defer[rows[m & np.broadcast_to(e, m.shape)]] = True
            if not out[:, pi].any():
                continue
            refused = np.zeros(len(rows), dtype=bool)
            for k in be.deciders[pi]:
                if k == ender:
                    refused[:] = True
                    break
                f = self.fired[be.fired_col[k]].take(rows)
                refused |= (f >= 0) & (f < t)
            why[:, pi] = np.where(refused, REFUSED, UNDECIDED if censored else OVERTAKEN)
        pos = self.pos.take(rows)
        self.out_block[pos] = out
        self.out_why[pos] = why

    def _reevaluate(self, clocks: Any, rows: np.ndarray | None, t: np.ndarray) -> None:
        """Enable and disable ``clocks`` (on ``rows``, else every live row); sample delays.

        ``t`` is the current tick of every live row (not only of ``rows``)."""
        be = self.be
        env: Any = self.slots if rows is None else _Sub(self.slots, rows)
        state: Any = None
        if rows is None:
            # A clock that no row's protocol state allows and that is enabled nowhere
            # stays as it is everywhere: skipped (say, "meet" before any "scheduled").
            # The states some row is in: a scatter into a small table (a bincount would
            # chain its increments on the state most rows share), made only for a clock
            # enabled nowhere (the scatter costs several times a look for an enabled row).
            here: np.ndarray | None = None
            kept = []
            for i in clocks:
                if not be.everywhere[i] and not self.enabled[i].any():
                    if here is None:
                        here = np.zeros(len(be.cs.states), dtype=bool)
                        here[self.state] = True
                    if not (be.masks[i] & here).any():
                        continue
                kept.append(i)
            clocks = kept
        # On few rows, only those: the cost stays with the rows a happening touched.
        ok_rows = self.ok if rows is None else self.ok.take(rows)
        for i in clocks:
            if not be.everywhere[i] and state is None:
                state = self.state if rows is None else self.state.take(rows)
            test, err = self._test(i, env, state)
            ok_rows = self._settle(i, i, test, err, rows, ok_rows, t)

    def _family_env(self, f: int, rows: np.ndarray, member: np.ndarray) -> FamilySub:
        var = self.be.plan.families[f].var
        return FamilySub(self.slots, rows, var, self.blocks, self.consts, member)

    def _reevaluate_family(
        self, f: int, rows: np.ndarray, member: np.ndarray, t: np.ndarray
    ) -> None:
        """Re-evaluate, on each of ``rows``, the member of family ``f`` that fired there."""
        family = self.be.plan.families[f]
        rep = family.rep
        state = None if self.be.everywhere[rep] else self.state[rows]
        test, err = self._test(rep, self._family_env(f, rows, member), state)
        self._settle(family.members[member], rep, test, err, rows, self.ok[rows], t)

    def _test(self, i: int, env: Any, state: Any) -> tuple[Any, Any]:
        """Whether clock ``i`` is enabled on the rows of ``env`` (``state`` their
        protocol states, unused for a clock allowed in every state), and where its
        test would raise."""
        be = self.be
        test: Any = True
        if not be.everywhere[i]:
            run = be.state_run[i]
            if run is None:
                test = be.masks[i][state]
            elif run[0] == run[1]:
                test = state == run[0]
            elif run[0] == 0:
                test = state <= run[1]
            else:
                test = (state >= run[0]) & (state <= run[1])
        err: Any = None
        for part in be.tests[i]:
            v, e = part(env)
            if e is not None:
                ee = test & e
                err = ee if err is None else err | ee
            test = v if test is True else test & v
        return test, err

    def _settle(
        self,
        i: int | np.ndarray,
        sampler: int,
        test: Any,
        err: Any,
        rows: np.ndarray | None,
        ok_rows: np.ndarray,
        t: np.ndarray,
    ) -> np.ndarray:
        """Enable clock ``i`` where ``test`` holds and disable it where not, on ``rows``
        (else every live row), sampling a delay (with the delay of clock ``sampler``)
        for each newly enabled one; rows where the test would raise go to the reference
        engine. ``i`` may give a clock per row of ``rows`` (a family's members). Returns
        the rows still fine to evaluate."""
        be = self.be
        if err is not None:
            bad = err & ok_rows
            if bad.any():
                where = bad.nonzero()[0] if rows is None else rows[bad]
                self.defer[where] = True
                ok_rows = ok_rows & ~bad
        # Boolean masks are turned into indices once: indexing with a mask costs several
        # times what indexing with its indices does, and each mask is used more than once.
        if isinstance(i, np.ndarray):
            enabled = self.enabled[i, rows]
        else:
            enabled = self.enabled[i] if rows is None else self.enabled[i].take(rows)
        change = (enabled != test) & ok_rows
        ch = change.nonzero()[0]
        if not len(ch):
            return ok_rows
        if rows is None and len(ch) == len(change) and not isinstance(i, np.ndarray):
            # Every row changes (as at the start): whole arrays, no gathers at indices.
            on = test if isinstance(test, np.ndarray) else np.full(len(ch), bool(test))
            self.enabled[i][:] = on
            w_on = on.nonzero()[0]
            self.keys[be.col_clock + i][(~on).nonzero()[0]] = be.INF
            if len(w_on):
                up: Any = slice(None) if len(w_on) == len(ch) else w_on
                self.keys[be.col_clock + i][up] = self._delay_keys(sampler, up, i, t)
            return ok_rows
        idx: Any = ch if rows is None else rows.take(ch)
        on = test.take(ch) if isinstance(test, np.ndarray) else np.full(len(ch), bool(test))
        w_on = on.nonzero()[0]
        w_off = (~on).nonzero()[0]
        up = idx.take(w_on)
        if isinstance(i, np.ndarray):  # a family's members
            ii = i[ch]
            self.enabled[ii, idx] = on
            self.keys[be.col_clock + ii[w_off], idx[w_off]] = be.INF
            if len(up):
                i_on = ii[w_on]
                self.keys[be.col_clock + i_on, up] = self._delay_keys(sampler, up, i_on, t)
            return ok_rows
        if len(up) == len(self.pos):  # every row (as at the start): slices, not indices
            up = slice(None)
        self.enabled[i][idx] = on
        self.keys[be.col_clock + i][idx.take(w_off)] = be.INF
        if len(w_on):
            self.keys[be.col_clock + i][up] = self._delay_keys(sampler, up, i, t)
        return ok_rows

    def _delay_keys(self, sampler: int, up: Any, i: int | np.ndarray, t: np.ndarray) -> np.ndarray:
        """The keys of clock(s) ``i`` newly enabled on rows ``up`` at ticks ``t[up]``,
        drawn from each one's stream with the delay distribution of clock ``sampler``,
        to be stored in :attr:`keys` (with 32-bit keys, a key beyond the horizon is any
        int64 whose low 32 bits are all ones: INF once stored)."""
        now = t[up] if isinstance(up, slice) else t.take(up)  # t has every live row
        # Every row's time left is at most the horizon (ticks are never negative).
        ticks, soon = self.be.delays[sampler].delays(self._draw(i, up), self.hz - now, self.hz)
        key = now + ticks
        key *= self.be.KP
        key += self.be.col_clock + i
        # Beyond the horizon: never happens (INF). With 32-bit keys, a key whose low 32
        # bits are all ones is INF once stored (the store keeps those bits): OR-ing -1
        # into the rows not soon costs half a scatter at their indices.
        if self.be.key_type is np.uint32:
            np.bitwise_or(key, soon.view(np.int8) - np.int8(1), out=key)
        else:
            key[(~soon).nonzero()[0]] = self.be.INF
        return key

    def _finish(self) -> None:
        """Park the replications that ended (or go to the reference engine), and drop
        parked rows once they are three quarters of the arrays (each drop copies every
        array; until then, parked rows cost only in the steps over all rows). Parked rows
        are recorded (:meth:`_flush`) only when dropped: a parked row's values no longer
        change, and one scatter per output for many steps' rows costs less than one
        every step."""
        over = self.done != RUNNING
        over |= self.defer
        over &= ~self.parked
        rows = over.nonzero()[0]
        if not len(rows):
            return
        # From here on, a parked row's extra is its count of happenings: one a step
        # (self.events so far) and its when: events.
        self.extra[rows] = self.extra.take(rows) + self.events
        self.parked[rows] = True
        self.park_bits[rows] = self.be.KP - 1  # _step puts them in a bin of their own
        self.live -= len(rows)
        if 4 * (len(self.pos) - self.live) < 3 * len(self.pos):
            return
        self._flush(self.parked.nonzero()[0])
        # By the indices of the rows kept: far cheaper than by a mask, array after array.
        keep = (~self.parked).nonzero()[0]
        self.pos = self.pos.take(keep)
        self.blocks = [b.take(keep, axis=1) for b in self.blocks]
        self.slots = [x.take(keep) if isinstance(x, np.ndarray) else x for x in self.slots]
        self._block_views()
        for name in ("keys", "enabled", "cursor", "fired", "latch"):
            setattr(self, name, getattr(self, name).take(keep, axis=1))
        for name in ("state", "node", "instant",
                     "at_instant", "done", "defer", "end", "parked", "park_bits",
                     "edge_next", "extra"):  # fmt: skip
            setattr(self, name, getattr(self, name).take(keep))
        self.count = {k: v.take(keep) for k, v in self.count.items()}
        self.prev = {k: v.take(keep) for k, v in self.prev.items()}
        self.prev_t = {k: v.take(keep) for k, v in self.prev_t.items()}

    def _flush(self, rows: np.ndarray) -> None:
        """Record parked ``rows`` (all of them since the last drop) in the results."""
        pos = self.pos.take(rows)
        self.deferred.extend(pos[self.defer.take(rows)].tolist())
        self.out_outcome[pos] = self.done.take(rows)
        self.out_ticks[pos] = self.end.take(rows)
        self.out_events[pos] = self.extra.take(rows)
        self.out_node[pos] = self.node.take(rows)

    def _result(self) -> BatchResult:
        be = self.be
        outcome = self.out_outcome
        # Success of each outcome, false where censored (-1): no boolean indexing.
        held = be.is_success[np.maximum(outcome, 0)]
        held &= outcome >= 0
        ref = {p: be.ref.run(self.seed, self.start + p) for p in sorted(self.deferred)}
        return BatchResult(
            be.cs,
            self.start,
            outcome,
            held,
            self.out_ticks,
            self.out_events,
            self.out_node,
            self.out_block,
            self.out_why,
            self.paths,
            ref,
        )
