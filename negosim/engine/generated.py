"""One generated Python function per compiled scenario: the engine's untraced hot path.

Why this exists. :class:`~negosim.engine.simulation.Replication` spells the
semantics out method by method (``_arrive`` → ``_happen`` → ``_process`` →
``_fire`` → ``_apply`` → ``_reevaluate`` → ``_enable``), reading the engine's
tables and calling the scenario's compiled pieces (guards, weights, effects) as
functions. That is the readable reference, and what the traced and played
replications extend; but run plainly, the layering, the table look-ups and the
calls are most of a replication's cost (issue 8 asks for 3× less CPU per munich
replication than the engine before the rebuild). This module writes, once per
:class:`~negosim.engine.simulation.Engine`, the source of a function that runs a
whole replication in one frame, specialised to the scenario:

* parameters and other slots nothing ever writes are folded in as constants,
  and expressions over constants only are evaluated once, here (same float
  operations, so the same bits);
* each clock's enabledness test, option weights, effects, delay sampler and
  stream offsets are inline code at the place they are used; which clocks to
  re-evaluate after a firing is worked out here, per option and per protocol
  state it can move from (re-evaluating a clock whose inputs did not change is
  a no-op, so a static superset is exact);
* a clock's enabled flag and draw counters are local variables; the happening
  dispatch is a balanced ``if`` tree on integers.

It is a second spelling of the same semantics, held to the first:
``tests/test_generated.py`` compares every field of every row with
:class:`Replication`'s on every shipped and test scenario and on random small
scenarios. Rare paths are not duplicated: a replication that reaches the events
cap, whose weights need explaining or rescaling, or whose arithmetic fails is
run again on :class:`Replication`, which gives the located error (a replication
is a pure function of its seed and index, so the rerun takes the same path).
Scenarios with ``when:`` events are not generated at all: their engine runs
:class:`Replication` (decided once, when the engine is built: :func:`unsupported`).

simpy stays the clock and the event queue, through its public API: timeouts
carry the happening as their value, their one callback hands them to the loop,
which steps the environment. Random numbers come from the same keyed streams in
the same order (:mod:`negosim.engine.streams`).

:meth:`Engine.source` returns the generated source, for reading and debugging.
"""

from __future__ import annotations

import ast
import math
import statistics
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from ..compiler import dists
from ..compiler.expr import _GLOBALS
from .streams import _C1, _C2, _M, _UNIT, GAMMA, PREFETCH, mix, replication_key, run_key, uniform

if TYPE_CHECKING:
    from .simulation import Engine, Row

Runner = Callable[[int, int, "list[float] | None"], "Row"]

COMPILE_LOCK = threading.RLock()
"""Held while Python source is compiled: CPython 3.11's ``compile()`` is not safe to call
from several threads at once ("AST constructor recursion depth mismatch", seen on
threaded Dask workers). ``negosim.runs.backends`` compiles scenarios under it too."""

MAX_LINES = 80_000
"""Generated functions longer than this are not compiled: the engine runs
:class:`Replication` instead (a huge scenario gains little and compiles slowly)."""

_NDTRI = getattr(statistics, "_normal_dist_inv_cdf", None)
"""What ``NormalDist().inv_cdf`` computes (C in CPython), called without the method."""


class _Fallback(Exception):
    """Leave the generated path: the replication is run again on ``Replication``."""


def _first(seed: int, index: int, stream: int) -> float:
    """The first uniform of the stream numbered ``stream`` (when nothing was prefetched)."""
    return uniform(mix(replication_key(run_key(seed), index) ^ stream), 0)


def _blocked(
    req: tuple[tuple[int, Any], ...],
    deciders: tuple[frozenset[int], ...],
    s: list[Any],
    changes: list[tuple[int, int, Any]],
    t: int,
    fired: list[int],
    ender: int | None,
    censored: bool,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``Replication._blocked``: (blocking, why) for the row.

    ``req``: the preconditions (index, compiled test) of the clocks the protocol
    state allows, by index, each once.
    """
    if changes and changes[-1][0] == t:  # undo this instant's changes, latest first
        s = s.copy()
        for at, slot, value in reversed(changes):
            if at != t:
                break
            s[slot] = value
    blocking = tuple(pi for pi, holds in req if not holds(s))
    if not blocking:
        return (), ()
    why = []
    for pi in blocking:
        reason = 1 if censored else 2  # UNDECIDED, OVERTAKEN
        for k in deciders[pi]:
            if k == ender or 0 <= fired[k] < t:
                reason = 0  # REFUSED
                break
        why.append(reason)
    return blocking, tuple(why)


def _code(fn: Any) -> str | None:
    """The Python expression over ``s`` a compiled expression evaluates (None: unknown)."""
    code = getattr(fn, "negosim_code", None)
    return code if isinstance(code, str) else None


class _Folder(ast.NodeTransformer):
    """Replaces reads of constant slots by their values; evaluates constant subtrees.

    A parameter's slot (``params``: slot -> the factory's name for its value) is
    read as that name, and a subtree over constants and parameters only is
    *hoisted*: ``hoist(code)`` names it a value the factory computes once per
    point (:meth:`_Generator.hoist`), as this fold would have computed it.
    """

    def __init__(
        self,
        const: dict[int, Any],
        params: dict[int, str] | None = None,
        hoist: Callable[[str], str] | None = None,
    ) -> None:
        self.const = const
        self.params = params or {}
        self.hoist = hoist
        self.hoisted: set[str] = set(self.params.values())

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if (
            isinstance(node.value, ast.Name)
            and node.value.id == "s"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)
        ):
            if node.slice.value in self.const:
                return ast.Constant(self.const[node.slice.value])
            if node.slice.value in self.params:
                return ast.Name(self.params[node.slice.value], ast.Load())
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        node = super().generic_visit(node)
        if (
            self.hoist is not None
            and isinstance(node, ast.expr)
            and not isinstance(node, ast.Constant | ast.Name)
            and all(_folded(ch, node, self.hoisted) for ch in ast.iter_child_nodes(node))
            and any(isinstance(ch, ast.Name) and ch.id in self.hoisted
                    for ch in ast.iter_child_nodes(node))
        ):  # fmt: skip
            name = self.hoist(ast.unparse(ast.fix_missing_locations(node)))
            self.hoisted.add(name)
            return ast.Name(name, ast.Load())
        if (
            isinstance(node, ast.expr)
            and not isinstance(node, ast.Constant | ast.Name)
            and all(_folded(ch, node) for ch in ast.iter_child_nodes(node))
        ):
            try:
                tree = ast.fix_missing_locations(ast.Expression(node))
                value = eval(  # constants and the expression language's functions only
                    compile(tree, "<fold>", "eval"),
                    {"__builtins__": {}, **_GLOBALS},
                )
            except Exception:  # noqa: BLE001 - left to fail at run time, located there
                return node
            if _constant(value):
                return ast.Constant(value)
        return node


def _folded(
    child: ast.AST, parent: ast.AST, hoisted: set[str] | frozenset[str] = frozenset()
) -> bool:
    """Whether ``child`` of ``parent`` leaves ``parent`` constant: a constant, an
    operator, the name of one of the expression language's functions called, or
    (with ``hoisted``) a value computed once per point."""
    if not isinstance(child, ast.expr):
        return True
    if isinstance(child, ast.Constant):
        return True
    if isinstance(child, ast.Name) and child.id in hoisted:
        return True
    return (
        isinstance(child, ast.Name)
        and child.id in _GLOBALS
        and child is getattr(parent, "func", None)
    )


def _constant(value: Any) -> bool:
    return isinstance(value, bool | str) or (
        isinstance(value, int | float) and math.isfinite(value)
    )


class _Writer:
    """Lines of source with indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 1

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def indent(self) -> _Indent:
        return _Indent(self)


class _Indent:
    def __init__(self, w: _Writer) -> None:
        self.w = w

    def __enter__(self) -> None:
        self.w.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.w.depth -= 1


class _Same:
    """No indentation (the counterpart of :meth:`_Writer.indent`)."""

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass


class _Generator:
    """Writes the source of ``replicate(seed, index, first)`` for one engine."""

    def __init__(self, eng: Engine) -> None:
        from . import simulation as sim

        self.eng = eng
        self.sim = sim
        cs = eng.cs
        self.cs = cs
        self.n = len(eng.clocks)
        self.ns: dict[str, Any] = {"__builtins__": {}, **_GLOBALS}
        written: set[int] = set()
        for c in eng.clocks:
            for o in c.options:
                written.update(a.slot for a in o.sets)
        for sched in cs.scheduled:
            written.update(a.slot for a in sched.sets)
        written.update(st.slot for st in cs.stays)
        written.update(e.slot for e in cs.edges)
        self.written = written
        # Parameters are not folded in: their values are the factory's (one call per
        # point, :func:`generate`), so the code serves every point of a sweep.
        self.inputs: list[Callable[[Any], Any]] = []  # what the factory is given, per point
        self.prelude: list[str] = []  # the factory's lines before ``def replicate``
        self.hoists = 0
        self.hoisted: dict[str, str] = {}  # code -> its name
        self.bound_code: dict[tuple[str, int], str] = {}  # sampler site -> its code
        params = {
            i: self.input(_slot_value(i), f"p{i}", f"parameter {name}")
            for i, name in enumerate(cs.slot_names)
            if name in cs.params and i not in written
        }
        self.const = {
            i: v
            for i, v in enumerate(cs.initial)
            if i not in written and i not in params and _constant(v)
        }
        self.folder = _Folder(self.const, params, self.hoist)
        # The samplers built from parameter values (negosim.compiler.bind rebuilds them).
        self.bound: set[tuple[str, int]] = set()
        for site in cs.param_sites:
            what = "clock" if site.what in ("delay", "rate") else site.what
            self.bound.update((what, k) for k in site.targets)
        self.live = [i for i in range(len(cs.states)) if i not in eng.outcomes]
        # Preconditions: the blocking report needs the slots they read, as effects
        # change them at the current instant, and when their deciders first fired.
        self.blocking = any(c.requires for c in eng.clocks)
        prec_slots: set[int] | None = set()
        for c in eng.clocks:
            for _, holds in c.requires:
                code = _code(holds)
                if code is None or prec_slots is None:
                    prec_slots = None
                    continue
                prec_slots.update(
                    node.slice.value
                    for node in ast.walk(ast.parse(code, mode="eval"))
                    if isinstance(node, ast.Subscript)
                    and isinstance(node.slice, ast.Constant)
                    and isinstance(node.slice.value, int)
                )
        self.prec_slots = written if prec_slots is None else prec_slots
        self.deciders = sorted({k for d in cs.deciders for k in d}) if self.blocking else []
        self.w = _Writer()
        self.counter = 0
        self.keyed: set[int] = set()  # streams drawn from in the loop (locals q<stream>)
        self.folded: dict[str, str] = {}

    # --- helpers ----------------------------------------------------------------------

    def name(self, prefix: str, value: Any) -> str:
        """A global of the generated function bound to ``value``."""
        self.counter += 1
        key = f"_{prefix}{self.counter}"
        self.ns[key] = value
        return key

    def input(self, get: Callable[[Any], Any], name: str, what: str) -> str:
        """A value the factory is given per point: ``get(cs)`` of the point's scenario."""
        self.prelude.append(f"{name} = V[{len(self.inputs)}]  # {what}")
        self.inputs.append(get)
        return name

    def hoist(self, code: str) -> str:
        """A value the factory computes once per point from parameter values: ``code``
        (the same code, the same value: named once)."""
        name = self.hoisted.get(code)
        if name is None:
            self.hoists += 1
            name = self.hoisted[code] = f"h{self.hoists}"
            self.prelude.append(f"{name} = {code}")
        return name

    def expr(self, fn: Any, call: str = "(s)") -> str:
        """Inline code for a compiled expression (a call of it if its code is unknown)."""
        code = _code(fn)
        if code is None:
            return self.name("fn", fn) + call
        return self.fold(code)

    def fold(self, code: str) -> str:
        """``code`` with constant slots and constant subexpressions folded."""
        done = self.folded.get(code)
        if done is None:
            tree = self.folder.visit(ast.parse(code, mode="eval"))
            done = self.folded[code] = "(" + ast.unparse(ast.fix_missing_locations(tree)) + ")"
        return done

    def test(self, i: int, state: int | None) -> str:
        """Whether clock ``i`` is enabled, in protocol state ``state`` (None: ``st``)."""
        c = self.eng.clocks[i]
        fn = self.eng.tests[i]
        parts = getattr(fn, "negosim_parts", None)
        mask = getattr(fn, "negosim_mask", None)
        if parts is None or mask is None or tuple(mask) != tuple(c.states):
            return self.name("test", fn) + ("(s, st)" if state is None else f"(s, {state})")
        out = [self.fold(p) for p in parts]
        out = [p for p in out if p != "(True)"]
        if any(p == "(False)" for p in out):
            return "False"
        if state is not None:
            if not c.states[state]:
                return "False"
        elif not all(c.states[k] for k in self.live):
            out.insert(0, f"{self.name('mask', tuple(c.states))}[st]")
        return " and ".join(out) or "True"

    def draw(self, stream: int, counter: str) -> None:
        """``x = `` the next uniform of ``stream`` (its draws counted in local ``counter``).

        The first :data:`PREFETCH` come from ``first``; later ones are
        :func:`negosim.engine.streams.uniform` of the stream's key (kept in local
        ``q<stream>``), written out.
        """
        w = self.w
        sid = self.eng.stream_ids[stream]
        self.keyed.add(stream)
        q = f"q{stream}"
        w(f"if {counter} < pre:")
        w(f"    x = first[{stream * PREFETCH} + {counter}]")
        w("else:")
        with w.indent():
            w(f"if {q} < 0:")
            with w.indent():
                w("if repk < 0:")
                w("    repk = _repk(_runk(seed), index)")
                w(f"{q} = _mix(repk ^ {sid})  # the stream's key")
            w(f"z = ({q} + ({counter} + 1) * {GAMMA}) & {_M}")
            w(f"z = ((z ^ (z >> 30)) * {_C1}) & {_M}")
            w(f"z = ((z ^ (z >> 27)) * {_C2}) & {_M}")
            w(f"x = ((z ^ (z >> 31)) >> 11) * {_UNIT!r}")
        w(f"{counter} += 1")

    def sampler(self, fn: Any, site: tuple[str, int]) -> str:
        """Code for a delay in hours drawn by ``fn`` from the uniform ``x``.

        ``site`` says where the sampler is (``("clock", i)``, ``("arrival", j)``,
        ``("departure", j)``, ``("jitter", k)``): one built from parameter values
        has its numbers given to the factory per point (:func:`_sampler_values`).
        """
        if site in self.bound:
            done = self.bound_code.get(site)
            if done is None:
                done = self.bound_code[site] = self.bound_sampler(fn, site)
            return done
        spec = dists.spec(fn)
        if spec is not None:
            kind, v, _, _ = spec
            # The same operations as negosim.compiler.dists._build, on the same values.
            if not all(_constant(x) for x in v.values()):
                return self.name("d", fn) + "(x)"
            if kind == "fixed":
                return repr(v["value"])
            if kind == "exponential":
                return f"-{v['mean']!r} * _log(1.0 - x)"
            if kind == "uniform":
                lo, width = v["low"], v["high"] - v["low"]
                return f"{lo!r} + x * {width!r}"
            if kind == "triangular":
                a, c, b = v["min"], v["mode"], v["max"]
                fc = (c - a) / (b - a)
                left, right = (b - a) * (c - a), (b - a) * (b - c)
                return (
                    f"({a!r} + _sqrt(x * {left!r}) if x < {fc!r} "
                    f"else {b!r} - _sqrt((1 - x) * {right!r}))"
                )
            if kind == "lognormal" and _NDTRI is not None:
                mu = math.log(v["median"])
                sigma = math.log(v["p90"] / v["median"]) / dists.Z90
                # NormalDist().inv_cdf(p) is _normal_dist_inv_cdf(p, 0.0, 1.0) for 0 < p < 1
                return (
                    f"_exp({mu!r} + {sigma!r} * _ndtri(x if x > 0 else {dists._TINY!r}, 0.0, 1.0))"
                )
        return self.name("d", fn) + "(x)"

    def bound_sampler(self, fn: Any, site: tuple[str, int]) -> str:
        """:meth:`sampler` for one built from parameter values: the same code, with its
        numbers (and what the sampler computes from them) the factory's."""
        where, k = site
        get: Callable[[Any], Any] = {
            "clock": lambda cs: cs.clocks[k].delay,
            "arrival": lambda cs: cs.stays[k].arrival,
            "departure": lambda cs: cs.stays[k].departure,
            "jitter": lambda cs: cs.scheduled[k].jitter,
        }[where]
        spec = dists.spec(fn)
        kind = None if spec is None else spec[0]
        if kind not in _SAMPLER_NAMES or (kind == "lognormal" and _NDTRI is None):
            return self.input(get, f"d_{where}{k}", f"the {where} sampler {k}") + "(x)"
        names = [f"{n}_{where}{k}" for n in _SAMPLER_NAMES[kind]]
        tag = f"{kind} {where} {k}"
        for j, n in enumerate(names):
            self.input(_sampler_value(get, kind, j), n, tag)
        if kind == "fixed":
            return names[0]
        if kind == "exponential":
            return f"-{names[0]} * _log(1.0 - x)"
        if kind == "uniform":
            return f"{names[0]} + x * {names[1]}"
        if kind == "triangular":
            a, b, fc, left, right = names
            return f"({a} + _sqrt(x * {left}) if x < {fc} else {b} - _sqrt((1 - x) * {right}))"
        mu, sigma = names
        return f"_exp({mu} + {sigma} * _ndtri(x if x > 0 else {dists._TINY!r}, 0.0, 1.0))"

    def ticks(self, fn: Any, site: tuple[str, int]) -> str:
        """Code for ``to_ticks(fn(x))``: a duration drawn from ``x``, in whole ticks."""
        return f"_floor(({self.sampler(fn, site)}) * {self.sim.TICKS_PER_HOUR} + 0.5)"

    def enable(self, i: int) -> None:
        """Clock ``i`` has just been enabled: draw its delay, schedule its firing."""
        w = self.w
        c = self.eng.clocks[i]
        w(f"# {c.kind} {c.id!r} is enabled: draw its delay, schedule its firing")
        w(f"en{i} = True")
        w(f"tok = tk[{i}] = tk[{i}] + 1")
        self.draw(i, f"k{i}")
        w(f"d = ({self.sampler(c.delay, ('clock', i))}) * {self.sim.TICKS_PER_HOUR}")
        w("if d < hz - t:")
        with w.indent():
            w("d = _int(d + 0.5)")
            w("if d == 0:")
            w(f"    heappush(due, (2, 0, {i}, tok, None))")
            w("else:")
            w(f"    timeout(d, (2, 0, {i}, tok, None)).callbacks.append(cb)")

    def reevaluate(self, which: Any, state: int | None) -> None:
        """Re-evaluate clocks ``which`` (in protocol state ``state``; None: ``st``)."""
        w = self.w
        for i in sorted(set(which)):
            test = self.test(i, state)
            if test == "False":
                w(f"if en{i}:")
                w(f"    en{i} = False")
                w(f"    tk[{i}] += 1")
                continue
            if test == "True":
                w(f"if not en{i}:")
                with w.indent():
                    self.enable(i)
                continue
            w(f"if {test}:")
            with w.indent():
                w(f"if not en{i}:")
                with w.indent():
                    self.enable(i)
            w(f"elif en{i}:")
            w(f"    en{i} = False")
            w(f"    tk[{i}] += 1")

    def tree(self, var: str, keys: list[int], body: Callable[[int], None]) -> None:
        """A balanced ``if`` tree on ``var`` over ``keys``, running ``body(key)``."""
        w = self.w
        if len(keys) == 1:
            body(keys[0])
            return
        if len(keys) <= 3:
            for j, k in enumerate(keys):
                if j == len(keys) - 1:
                    w("else:")
                else:
                    w(f"{'if' if j == 0 else 'elif'} {var} == {k}:")
                with w.indent():
                    body(k)
                    w("pass")
            return
        mid = len(keys) // 2
        w(f"if {var} < {keys[mid]}:")
        with w.indent():
            self.tree(var, keys[:mid], body)
        w("else:")
        with w.indent():
            self.tree(var, keys[mid:], body)

    # --- effects ----------------------------------------------------------------------

    def effects(
        self,
        sets: Any,
        trigger: str | None,
        sources: list[int],
        fired: int | None,
        ender: int | None,
    ) -> None:
        """``Replication._apply`` then the re-evaluation: effects, protocol step, clocks.

        ``sources``: the protocol states this can happen in; ``fired``: the clock
        that fired (None for a scheduled event); ``ender``: the action whose firing
        this is, for the blocking report. Ends the loop at an outcome.
        """
        w = self.w
        eng = self.eng
        dirty: set[int] = set() if fired is None else {fired}
        for j, a in enumerate(sets):  # every right-hand side is read before any write
            w(f"v{j} = {self.expr(a.value)}")
        for j, a in enumerate(sets):
            v = f"v{j}"
            if a.low is not None:
                w(f"if {v} < {a.low!r}:")
                w(f"    {v} = {a.low!r}")
                if a.high is not None:
                    w(f"elif {v} > {a.high!r}:")
                    w(f"    {v} = {a.high!r}")
            elif a.high is not None:
                w(f"if {v} > {a.high!r}:")
                w(f"    {v} = {a.high!r}")
            w(f"if s[{a.slot}] != {v}:")
            with w.indent():
                if self.blocking and a.slot in self.prec_slots:
                    w("if changes and changes[-1][0] != t:")
                    w("    changes.clear()")
                    w(f"changes.append((t, {a.slot}, s[{a.slot}]))")
                w(f"s[{a.slot}] = {v}")
            dirty.update(eng.watchers[a.slot])
        table = eng.next_state[trigger] if trigger is not None else None
        moves = [] if table is None else [a for a in sources if table[a] != a]
        if not moves:
            self.reevaluate(dirty, None)
            return
        for j, old in enumerate(moves):
            assert table is not None
            new = table[old]
            w(f"{'if' if j == 0 else 'elif'} st == {old}:")
            with w.indent():
                if new in eng.outcomes and new not in eng.success and self.blocking:
                    fired_list = ", ".join(
                        f"f{k}" if k in self.deciders else "-1" for k in range(self.n)
                    )
                    w(
                        f"blocking, why = _blocked(_REQ[{old}], _DEC, s, changes, t, "
                        f"[{fired_list}], {ender!r}, False)"
                    )
                w(f"st = {new}")
                w(f"path.append({new})")
                if new in eng.outcomes:
                    w(f"done = {self.cs.states[new]!r}")
                    w("end = t")
                    w("break")
                else:
                    self.reevaluate(dirty | set(eng.state_change[old, new]), new)
        w("else:")
        with w.indent():
            self.reevaluate(dirty, None)
            w("pass")

    def scheduled_effects(self, k: int, sched: Any) -> None:
        """A scheduled event happening (``Replication._scheduled``): if its guard holds."""
        w = self.w
        ender = self.eng.action_index.get(sched.id)  # what Replication's ``last`` names
        if sched.guard is not None:
            w(f"if {self.expr(sched.guard)}:")
            with w.indent():
                self.effects(sched.sets, sched.trigger, self.live, None, ender)
                w("pass")
        else:
            self.effects(sched.sets, sched.trigger, self.live, None, ender)

    # --- clocks -----------------------------------------------------------------------

    def fire(self, i: int) -> None:
        """Clock ``i`` fires (``Replication._fire``)."""
        w = self.w
        c = self.eng.clocks[i]
        w(f"# {c.kind} {c.id!r} fires")
        w(f"en{i} = False")
        if i in self.deciders:
            w(f"if f{i} < 0:")
            w(f"    f{i} = t")
        sources = [k for k in self.live if c.states[k]]
        ender = self.eng.action_index.get(c.id)
        options = c.options
        if len(options) == 1:
            self.effects(options[0].sets, options[0].trigger, sources, i, ender)
            return
        ws: list[Any] = list(self.eng.weights[i])
        per_point: dict[int, str] = {}  # weights over parameters: float(w(s)), per point
        for j, w_ in enumerate(ws):  # an expression over constants only is a constant
            if not isinstance(w_, float) and _code(w_) is not None:
                folded = ast.parse(self.expr(w_), mode="eval").body
                if isinstance(folded, ast.Constant) and _constant(folded.value):
                    ws[j] = float(folded.value)  # type: ignore[arg-type]  # float(w(s))
                elif isinstance(folded, ast.Name) and folded.id in self.folder.hoisted:
                    per_point[j] = self.hoist(f"_float({folded.id})")
        consts = [w_ if isinstance(w_, float) else None for w_ in ws]
        static = all(x is not None for x in consts)
        # Weights known once the parameters are: the total and its check are the
        # factory's, made once per point as the static case makes them here.
        fixed = not static and all(x is not None or j in per_point for j, x in enumerate(consts))
        total = 0.0
        if static:
            total = sum(ws)
            static = 0 < total < math.inf and min(ws) >= 0
        if static:
            names = [repr(x) for x in consts]
            total_code = repr(total)
        elif fixed:
            names = [per_point[j] if x is None else repr(x) for j, x in enumerate(consts)]
            add = f"{names[0]} + {names[1]}" if len(names) == 2 else f"_sum(({', '.join(names)},))"
            total_code = self.hoist(add)
            negative = "".join(f" or {per_point[j]} < 0" for j in sorted(per_point))
            w(f"if {self.hoist(f'not 0 < {total_code} < _inf{negative}')}:")
            w("    raise _Fallback")
        else:
            names = []
            for j, w_ in enumerate(ws):
                if isinstance(w_, float):
                    names.append(repr(w_))
                elif j in per_point:
                    names.append(per_point[j])
                else:
                    w(f"w{j} = _float({self.expr(w_)})")
                    names.append(f"w{j}")
            if len(names) == 2:
                w(f"total = {names[0]} + {names[1]}")
            else:
                w(f"total = _sum(({', '.join(names)},))")
            negative = " or ".join(f"{x} < 0" for x in names if not x[0].isdigit())
            w(f"if not 0 < total < _inf{' or ' + negative if negative else ''}:")
            w("    raise _Fallback")
            total_code = "total"
        self.draw(self.n + i, f"c{i}")
        if total_code != "1.0":  # u * 1.0 is u
            w(f"x = x * {total_code}")
        # Replication._choose: the first positive weight above x, else the last positive.
        w("o = -1")
        for j, x in enumerate(names):
            known = static or (fixed and consts[j] is not None)
            positive = float(consts[j]) > 0 if known else None  # type: ignore[arg-type]
            if positive is False:
                continue
            cond = "o < 0" if positive else f"o < 0 and {x} > 0"
            if j == 0:
                cond = "" if positive else f"{x} > 0"
            if cond:
                w(f"if {cond}:")
            with w.indent() if cond else _Same():
                w(f"if x < {x}:")
                w(f"    o = {j}")
                w("else:")
                w(f"    x -= {x}")
                w(f"    last = {j}")
        w("if o < 0:")
        w("    o = last")

        def body(j: int) -> None:
            w(f"# option {options[j].id!r}")
            self.effects(options[j].sets, options[j].trigger, sources, i, ender)

        self.tree("o", list(range(len(options))), body)

    # --- the function -----------------------------------------------------------------

    def source(self) -> str:
        eng, cs, w, sim = self.eng, self.cs, self.w, self.sim
        n = self.n
        ns = self.ns
        ns.update(
            _first=_first, _blocked=_blocked, _Fallback=_Fallback, _sim=sim, _Row=sim.Row,
            heappush=heappush, heappop=heappop, _float=float, _sum=sum, _inf=math.inf,
            _log=math.log, _exp=math.exp, _sqrt=math.sqrt, _ndtri=_NDTRI, _int=int,
            _repk=replication_key, _runk=run_key, _mix=mix, _floor=math.floor, _max=max,
            _tuple=tuple,
            _NOFIRST=[], _TK=[0] * n, _DEC=cs.deciders,
            _REQ=tuple(
                tuple(sorted({pi: holds for c in eng.clocks if c.states[k]
                              for pi, holds in c.requires}.items(), key=lambda r: r[0]))
                for k in range(len(cs.states))
            ),
        )  # fmt: skip
        self.input(lambda cs: list(cs.initial), "_INITIAL", "the slot list at time 0")
        hz = eng.horizon
        w('"""One replication of the scenario: the row ``Replication`` gives (see')
        w("negosim/engine/generated.py). ``first``: the prefetched first draws of every")
        w("stream (streams.block), or None. Per clock i: en<i> enabled, k<i>/c<i> draws")
        w('made from its delay/choice stream, f<i> tick it first fired."""')
        w("# --- the start (Replication.run) ---")
        w("if first is None:")
        w("    first = _NOFIRST")
        w("    pre = 0")
        w("else:")
        w(f"    pre = {PREFETCH}")
        w("repk = -1")
        w("#KEYED")
        w("s = _INITIAL[:]")
        w(f"st = {cs.initial_state}")
        w(f"path = [{cs.initial_state}]")
        w("tk = _TK[:]")
        for i in range(n):
            w(f"en{i} = False")
            w(f"k{i} = 0")
            if len(eng.clocks[i].options) > 1:
                w(f"c{i} = 0")
        for i in self.deciders:
            w(f"f{i} = -1")
        w("present = {}")
        w("changes = []")
        w("due = []")
        w("done = None")
        w("end = None")
        w("blocking = why = ()")
        w("last = -1")
        w("events = instant = at_instant = t = 0")
        w(f"hz = {hz}")
        w("env = _sim._Environment()")
        w("timeout = env.timeout")
        w("peek = env.peek")
        w("step = env.step")
        w("handed = []")
        w("cb = handed.append")
        seq = eng.first_dynamic
        # Replication.run: the horizon, the first window edges, stays, scheduled events.
        seq += 1
        w(f"timeout({hz}, (0, {seq}, 0, 0, None)).callbacks.append(cb)")
        if eng.edge_groups:
            at0, group0 = eng.edge_groups[0]
            w(f"timeout({at0}, (1, {group0[0][0]}, 0, 0, None)).callbacks.append(cb)")
        w(f"seq = {seq}")
        for j, (start, stop, stay) in enumerate(eng.stays):
            a_stream, d_stream = eng.stay_streams[j]
            arrive = str(start)
            if stay.arrival:
                w(f"x = first[{a_stream * PREFETCH}] if pre else _first(seed, index, "
                  f"{eng.stream_ids[a_stream]})")  # fmt: skip
                arrive = f"{start} + {self.ticks(stay.arrival, ('arrival', j))}"
            w(f"arrive = {arrive}")
            leave = str(stop)
            if stay.departure:
                w(f"x = first[{d_stream * PREFETCH}] if pre else _first(seed, index, "
                  f"{eng.stream_ids[d_stream]})")  # fmt: skip
                leave = f"{stop} - {self.ticks(stay.departure, ('departure', j))}"
            w(f"leave = {leave}")
            w("if arrive >= leave:")
            w(f"    lv{j} = None")
            w("else:")
            with w.indent():
                w("if arrive <= 0:")
                w(f"    present[{stay.slot}] = present.get({stay.slot}, 0) + 1")
                w(f"    s[{stay.slot}] = True")
                w("else:")
                w("    seq += 1")
                w(f"    timeout(arrive, (1, seq, {sim._ARRIVE}, 0, {stay.slot}))"
                  ".callbacks.append(cb)")  # fmt: skip
                w(f"lv{j} = _max(leave, 0) if leave < {hz} else None")
        for j, (_, _, stay) in enumerate(eng.stays):
            w(f"if lv{j} is not None:")
            w("    seq += 1")
            w(f"    timeout(lv{j}, (1, seq, {sim._LEAVE}, 0, {stay.slot})).callbacks.append(cb)")
        for k, (at, ev) in enumerate(eng.scheduled):
            if ev.jitter:
                js = eng.jitter_streams[k]
                w(f"x = first[{js * PREFETCH}] if pre else _first(seed, index, "
                  f"{eng.stream_ids[js]})")  # fmt: skip
                w(f"at = {at} + {self.ticks(ev.jitter, ('jitter', k))}")
            else:
                w(f"at = {at}")
            w(f"if at < {hz}:")
            w("    seq += 1")
            w(f"    timeout(_max(at, 0), (1, seq, {sim._SCHEDULED}, 0, {k})).callbacks.append(cb)")
        self.reevaluate(range(n), cs.initial_state)
        # The loop: one happening at a time, each instant in the documented order.
        w("# --- the loop: one happening at a time, each instant in the documented order ---")
        w("while True:")
        with w.indent():
            w("if due and peek() != t:")
            with w.indent():
                w("item = heappop(due)  # the instant is all in: take it in order")
                w("if item[0] == 2 and item[3] != tk[item[2]]:")
                w("    continue")
            w("else:")
            with w.indent():
                w("step()")
                w("item = handed.pop().value")
                w("t = env.now")
                w("if item[0] == 2 and item[3] != tk[item[2]]:")
                w("    continue  # a cancelled firing: disabled since it was sampled")
                w("if due or peek() == t:")
                w("    heappush(due, item)")
                w("    continue")
            w("events += 1")
            capped = cs.max_events <= sim.SAME_INSTANT_LIMIT  # then at_instant < events
            if not capped:
                w("if t != instant:")
                w("    instant = t")
                w("    at_instant = 1")
                w("else:")
                w("    at_instant += 1")
            w("g = item[0]")
            w("if g == 2:  # a clock fires")
            with w.indent():
                w("i = item[2]")
                if n:
                    self.tree("i", list(range(n)), self.fire)
                else:
                    w("pass")
            w("elif g == 0:  # the horizon")
            with w.indent():
                w('done = "censored"')
                if self.blocking:
                    fired_list = ", ".join(
                        f"f{k}" if k in self.deciders else "-1" for k in range(n)
                    )
                    w(f"blocking, why = _blocked(_REQ[st], _DEC, s, changes, t, [{fired_list}], "
                      "None, True)")  # fmt: skip
                w("break")
            w(f"elif item[2] == {sim._EDGE}:  # window edges")
            with w.indent():
                self.edges()
            w(f"elif item[2] == {sim._SCHEDULED}:  # a scheduled event")
            with w.indent():
                if eng.scheduled:
                    w("k = item[4]")
                    self.tree(
                        "k",
                        list(range(len(eng.scheduled))),
                        lambda k: self.scheduled_effects(k, eng.scheduled[k][1]),
                    )
                else:
                    w("pass")
            w("else:  # an arrival or a departure")
            with w.indent():
                self.stays()
            if capped:
                w(f"if events >= {cs.max_events}:")
            else:
                w(f"if events >= {cs.max_events} or at_instant >= {sim.SAME_INSTANT_LIMIT}:")
            w("    raise _Fallback  # the events cap: Replication says what looped")
        w("# --- the end ---")
        # Drain what is still queued (the timeouts only hand themselves over): a queued
        # timeout refers to the environment that queues it, a reference cycle the
        # garbage collector would otherwise have to find.
        w("while peek() != _inf:  # env.run(), without its EmptySchedule exception")
        w("    step()")
        w(f"held = done != 'censored' and st in {self.name('success', eng.success)}")
        w("return _Row(index, done, held, None if end is None else end / "
          f"{sim.TICKS_PER_HOUR}, _tuple(path), () if held else blocking, events, end, "
          "() if held else why)")  # fmt: skip
        keyed = [f"q{k} = " for k in sorted(self.keyed)]
        lines = w.lines
        at = lines.index("    #KEYED")
        lines[at : at + 1] = ["    " + "".join(keyed) + "-1"] if keyed else []
        body = "\n".join("    " + line for line in lines)
        prelude = "\n".join("    " + line for line in self.prelude)
        return (
            "def make(V):\n"
            '    """The replication of one point: ``V`` holds its parameter values and what\n'
            "    they build (see negosim/engine/generated.py); what depends on parameters\n"
            '    alone is computed here, once per point."""\n'
            f"{prelude}\n\n"
            f"    def replicate(seed, index, first):\n{body}\n\n"
            "    return replicate\n"
        )

    def slot_changed(self, slots: list[int]) -> None:
        """``sl`` was written by a breakpoint: re-evaluate the clocks watching it."""
        watchers = self.eng.watchers
        keys = [k for k in sorted(set(slots)) if watchers[k]]
        if not keys:
            self.w("pass")
            return
        if len(keys) < len(set(slots)):
            self.w(f"if sl in {set(keys)!r}:")
            with self.w.indent():
                self.tree("sl", keys, lambda k: self.reevaluate(watchers[k], None))
            return
        self.tree("sl", keys, lambda k: self.reevaluate(watchers[k], None))

    def edges(self) -> None:
        """A group of window edges (``Replication._process`` / ``_edge``)."""
        w = self.w
        eng = self.eng
        groups = eng.edge_groups
        if not groups:
            w("pass")
            return
        data = tuple(tuple((e.slot, e.value) for _, e in g) for _, g in groups)
        nxt = tuple((at, g[0][0]) for at, g in groups[1:])
        w("g = item[3]")
        w(f"for sl, val in {self.name('edges', data)}[g]:")
        with w.indent():
            w("s[sl] = val")
            self.slot_changed([e.slot for e in self.cs.edges])
        w(f"if g + 1 < {len(groups)}:")
        with w.indent():
            w(f"at, kk = {self.name('next', nxt)}[g]")
            w(f"timeout(at - t, (1, kk, {self.sim._EDGE}, g + 1, None)).callbacks.append(cb)")

    def stays(self) -> None:
        """An arrival or departure (``Replication._stay``)."""
        w = self.w
        if not self.eng.stays:
            w("pass")
            return
        w("sl = item[4]")
        w(f"cnt = present.get(sl, 0) + (1 if item[2] == {self.sim._ARRIVE} else -1)")
        w("present[sl] = cnt")
        w("if (cnt > 0) != s[sl]:")
        with w.indent():
            w("s[sl] = cnt > 0")
            self.slot_changed([st.slot for st in self.cs.stays])


MAX_INLINE = 2_000
"""Clock re-evaluations written out in one generated function, at most (about 30
lines each with their draws; munich has 47); a scenario that would need more runs
:class:`Replication` (it would take long to compile)."""


def inline_size(eng: Engine) -> int:
    """How many clock re-evaluations the generated function writes out."""
    size = len(eng.clocks)  # the start
    live = [k for k in range(len(eng.cs.states)) if k not in eng.outcomes]
    happenings: list[tuple[int | None, list[int], Any]] = [
        (c.index, [k for k in live if c.states[k]], o) for c in eng.clocks for o in c.options
    ]
    happenings += [(None, live, ev) for ev in eng.cs.scheduled]
    for i, sources, o in happenings:
        dirty: set[int] = set() if i is None else {i}
        for assign in o.sets:
            dirty.update(eng.watchers[assign.slot])
        size += len(dirty)
        table = eng.next_state.get(o.trigger) if o.trigger is not None else None
        for old in sources if table is not None else []:
            assert table is not None
            new = table[old]
            if new != old and new not in eng.outcomes:
                size += len(dirty | set(eng.state_change[old, new]))
    slots = {e.slot for e in eng.cs.edges} | {s.slot for s in eng.cs.stays}
    return size + sum(len(eng.watchers[k]) for k in slots)


def unsupported(eng: Engine) -> str | None:
    """What in the scenario of ``eng`` the generator does not cover (None: nothing)."""
    if eng.whens:
        return "events with when:"
    if inline_size(eng) > MAX_INLINE:
        return f"more than {MAX_INLINE} clock re-evaluations to write out"
    return None


RERUN = (_Fallback, ArithmeticError, ValueError, TypeError)
"""What a generated replication may raise: run it again on ``Replication``, which gives
the located error (or handles the rare case, as with weights it rescales)."""


_SAMPLER_NAMES: dict[str, tuple[str, ...]] = {
    "fixed": ("value",),
    "exponential": ("mean",),
    "uniform": ("lo", "width"),
    "triangular": ("a", "b", "fc", "left", "right"),
    "lognormal": ("mu", "sigma"),
}
"""The numbers of each kind of sampler the generated code reads (:meth:`_Generator.sampler`)."""


def _sampler_values(fn: Any, kind: str) -> tuple[float, ...]:
    """The numbers :data:`_SAMPLER_NAMES` names for sampler ``fn`` of kind ``kind``,
    computed as :meth:`_Generator.sampler` (and negosim.compiler.dists) computes them."""
    spec = dists.spec(fn)
    if spec is None or spec[0] != kind or not all(_constant(x) for x in spec[1].values()):
        raise ValueError(f"not a {kind} sampler with finite values")  # Replication runs
    v = spec[1]
    if kind == "fixed":
        return (v["value"],)
    if kind == "exponential":
        return (v["mean"],)
    if kind == "uniform":
        return v["low"], v["high"] - v["low"]
    if kind == "triangular":
        a, c, b = v["min"], v["mode"], v["max"]
        return a, b, (c - a) / (b - a), (b - a) * (c - a), (b - a) * (b - c)
    return math.log(v["median"]), math.log(v["p90"] / v["median"]) / dists.Z90


def _slot_value(i: int) -> Callable[[Any], Any]:
    """The factory's input that is slot ``i``'s value at time 0 (a parameter's)."""
    return lambda cs: cs.initial[i]


def _sampler_value(get: Callable[[Any], Any], kind: str, j: int) -> Callable[[Any], float]:
    """The factory's input that is number ``j`` of the sampler ``get(cs)`` gives."""
    return lambda cs: _sampler_values(get(cs), kind)[j]


@dataclass(frozen=True)
class Generated:
    """The replication generated for one engine: the function and its source."""

    replicate: Runner  # (seed, index, first) -> Row; may raise one of RERUN
    source: str


@dataclass(frozen=True)
class _Factory:
    """The generated code of one scenario structure: ``make(V)`` gives the replication
    of a point, ``V`` being ``get(cs)`` of each of ``inputs`` for its scenario."""

    make: Callable[[tuple[Any, ...]], Runner]
    inputs: tuple[Callable[[Any], Any], ...]
    source: str


_made: dict[int, tuple[weakref.ref[Any], Generated | None]] = {}
"""What :func:`generate` made, by compiled scenario (id, and a weak reference to it)."""

_factories: dict[int, tuple[weakref.ref[Any], _Factory | None]] = {}
"""The factories :func:`generate` compiled, by scenario structure (id, weak reference)."""

made_factories = 0
"""How many factories this process has compiled (the tests count compiles with it)."""


def _factory(eng: Engine) -> _Factory | None:
    """The factory of ``eng``'s scenario structure, compiled at its first use (call it
    holding :data:`COMPILE_LOCK`); None if its code is too large or too deep."""
    global made_factories
    structure = eng.cs.structure
    hit = _factories.get(id(structure))
    if hit is not None and hit[0]() is structure:
        return hit[1]
    gen = _Generator(eng)
    src = gen.source()
    made = None
    if src.count("\n") <= MAX_LINES:
        ns = gen.ns
        try:
            code = compile(src, f"<negosim-generated:{eng.cs.id}>", "exec")
        except (SyntaxError, RecursionError, MemoryError, ValueError, OverflowError):
            code = None  # too deep or too large for this interpreter: Replication runs
        if code is not None:
            exec(code, ns)  # noqa: S102 - our source; expressions from negosim.compiler.expr
            made = _Factory(ns["make"], tuple(gen.inputs), src)
            made_factories += 1
    key = id(structure)
    _factories[key] = (weakref.ref(structure, lambda _: _factories.pop(key, None)), made)
    return made


def generate(eng: Engine) -> Generated | None:
    """The generated replication of ``eng``'s scenario; None if it runs ``Replication``.

    The code depends on the scenario's structure alone, not on its parameter
    values: it is compiled once per structure (under :data:`COMPILE_LOCK`), so
    the points of a sweep, which share their scenario's structure
    (:mod:`negosim.compiler.bind`), share it; each point calls its factory with
    its values (what depends on them alone is computed there, once). The
    replication is made once per compiled scenario and kept while it lives. A
    point whose values make that computation fail (a division by zero over
    parameters, say) runs ``Replication``, which gives the located error.
    """
    if unsupported(eng) is not None:
        return None
    cs = eng.cs
    with COMPILE_LOCK:
        hit = _made.get(id(cs))
        if hit is not None and hit[0]() is cs:
            return hit[1]
        factory = _factory(eng)
        made = None
        if factory is not None:
            try:
                replicate = factory.make(tuple(get(cs) for get in factory.inputs))
            except Exception:  # noqa: BLE001 - such a point runs Replication (see above)
                replicate = None
            if replicate is not None:
                made = Generated(replicate, factory.source)
        key = id(cs)
        _made[key] = (weakref.ref(cs, lambda _: _made.pop(key, None)), made)
        return made
