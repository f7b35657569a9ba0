"""Compiled expressions over arrays: one value per replication, with Python's semantics.

The scalar engine evaluates the Python code that :func:`negosim.compiler.expr.compile_expr`
generates from an expression's checked tree (``s[3] == 'warm' and present...``).
This module parses that same generated code (it came from a whitelisted tree,
so only the constructs listed below occur) and builds a function of an
environment of slot arrays that returns ``(value, error)``:

* ``value`` is what the scalar code gives for each replication: numbers as
  float64 (bools in arithmetic count as 0 and 1, ints are exact floats), truth
  values as bool, strings as integer codes in a sorted table of every string
  the scenario can produce, so that ``==`` and ``<`` on codes order as on
  the strings themselves;
* ``error`` marks the replications for which the scalar code would raise
  (division or ``%`` by zero, ``log``/``sqrt`` outside their domain,
  ``exp``/``**`` overflow, ``clamp`` with crossed bounds), honouring the
  short-circuits of ``and``, ``or``, chained comparisons and ``x if c else y``
  exactly: a branch Python does not evaluate cannot fail. The batch engine
  hands such replications to the reference engine, which raises the error
  with its usual message.

``exp``, ``log``, ``logistic`` and ``**`` are computed element by element
with :mod:`math`, as the scalar code does: numpy's own versions may differ in
the last bit, and an expression's value feeds comparisons that must come out
the same on both engines.

The array functions are called under ``np.errstate(all="ignore")`` (the batch
engine sets it once for a whole chunk, not once per operation): overflow, a
NaN compared or a division by zero gives numpy's value silently, and the
error mask above says where the scalar code would have raised.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ...compiler.expr import _logistic, _pow

Env = Any
"""Slot values: ``env[i]`` is an array (one value per replication) or a scalar constant."""
Err = Any  # None (cannot fail) or a bool array / bool: where the scalar code raises
VFn = Callable[[Env], tuple[Any, Err]]

MAX_EXACT_INT = 2**53


class Unsupported(Exception):
    """Something the batch engine does not cover; the message names the feature."""


class Strings:
    """Every string value a scenario can produce, sorted, as integer codes."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values: tuple[str, ...] = tuple(sorted(set(values)))
        self.codes = {v: i for i, v in enumerate(self.values)}
        self.truthy = np.array([bool(v) for v in self.values] or [False], dtype=bool)

    def code(self, value: str) -> int:
        """The code of ``value`` (it must be in the table)."""
        return self.codes[value]


def string_literals(code: str) -> set[str]:
    """The string constants in generated code (to build the :class:`Strings` table)."""
    tree = ast.parse(code, mode="eval")
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _any(*errs: Err) -> Err:
    out = None
    for e in errs:
        if e is None:
            continue
        out = e if out is None else (out | e)
    return out


def _where(t: Any, e: Err) -> Err:
    """Error ``e`` only where ``t`` is true (a branch evaluated only then)."""
    return None if e is None else (t & e)


def _float(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x if x.dtype == np.float64 else x.astype(np.float64)
    return float(x)


def _each(fn: Callable[..., float], *args: Any) -> tuple[Any, Err]:
    """``fn`` element by element with Python floats; errors become the error mask."""
    if not any(isinstance(a, np.ndarray) for a in args):
        try:
            return fn(*(float(a) for a in args)), None
        except (ArithmeticError, ValueError):
            return math.nan, True
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
    cols = [a.ravel().tolist() for a in arrays]
    out = np.empty(arrays[0].size)
    err = np.zeros(arrays[0].size, dtype=bool)
    for i, xs in enumerate(zip(*cols, strict=True)):
        try:
            out[i] = fn(*xs)
        except (ArithmeticError, ValueError):
            out[i] = math.nan
            err[i] = True
    return out.reshape(arrays[0].shape), (err.reshape(arrays[0].shape) if err.any() else None)


def _exp(x: float) -> float:
    return math.exp(x)


def _log(x: float) -> float:
    return math.log(x)


class Vectoriser:
    """Builds array functions from generated expression code.

    ``types[i]`` is the type of slot ``i`` (``"bool"``, ``"number"`` or ``"str"``).
    """

    def __init__(self, types: Sequence[str], strings: Strings) -> None:
        self.types = types
        self.strings = strings

    def compile(self, code: str) -> tuple[VFn, str]:
        """The array function of ``code`` and its result type."""
        try:
            tree = ast.parse(code, mode="eval")
        except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
            raise Unsupported(f"an expression the batch engine cannot read ({exc})") from None
        return self.node(tree.body)

    # --- helpers -------------------------------------------------------------------

    def truth(self, fn: VFn, typ: str) -> VFn:
        """Python's truth of a value of type ``typ`` (``bool(x)``), as bools."""
        if typ == "bool":
            return fn
        if typ == "str":
            table = self.strings.truthy

            def t_str(env: Env) -> tuple[Any, Err]:
                v, e = fn(env)
                return table[v], e

            return t_str

        def t_num(env: Env) -> tuple[Any, Err]:
            v, e = fn(env)
            return v != 0, e

        return t_num

    def as_number(self, fn: VFn, typ: str) -> VFn:
        """A bool-typed function as float64 (True is 1.0); others unchanged."""
        if typ != "bool":
            return fn

        def num(env: Env) -> tuple[Any, Err]:
            v, e = fn(env)
            return _float(v), e

        return num

    # --- nodes ---------------------------------------------------------------------

    def node(self, node: ast.expr) -> tuple[VFn, str]:
        """The array function and result type of one node of generated code."""
        if isinstance(node, ast.Constant):
            return self.constant(node.value)
        if isinstance(node, ast.Subscript):
            assert isinstance(node.value, ast.Name) and node.value.id == "s"
            assert isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int)
            i = node.slice.value
            return (lambda env: (env[i], None)), self.types[i]
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.BoolOp):
            return self.boolop(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            return self.ifexp(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.call(node.func.id, node.args)
        raise Unsupported(f"expression construct {type(node).__name__}")

    def constant(self, value: Any) -> tuple[VFn, str]:
        """A literal: bool, exact float (ints up to 2**53), or a string's code."""
        if isinstance(value, bool):
            return (lambda env: (value, None)), "bool"
        if isinstance(value, str):
            code = self.strings.code(value)
            return (lambda env: (code, None)), "str"
        if isinstance(value, int):
            if abs(value) > MAX_EXACT_INT:
                raise Unsupported(f"integer literal {value} beyond 2**53 in an expression")
            value = float(value)
        if isinstance(value, float):
            x = value
            return (lambda env: (x, None)), "number"
        raise Unsupported(f"constant {value!r}")

    def unary(self, node: ast.UnaryOp) -> tuple[VFn, str]:
        """``not x``, ``-x``, ``+x``."""
        fn, typ = self.node(node.operand)
        if isinstance(node.op, ast.Not):
            t = self.truth(fn, typ)

            def not_(env: Env) -> tuple[Any, Err]:
                v, e = t(env)
                return np.logical_not(v), e

            return not_, "bool"
        num = self.as_number(fn, typ)
        if isinstance(node.op, ast.USub):

            def neg(env: Env) -> tuple[Any, Err]:
                v, e = num(env)
                return -_float(v), e

            return neg, "number"

        def pos(env: Env) -> tuple[Any, Err]:
            v, e = num(env)
            return _float(v), e

        return pos, "number"

    def binop(self, node: ast.BinOp) -> tuple[VFn, str]:
        """``+ - * / %`` on floats; ``/`` and ``%`` by zero are errors, as in Python."""
        (lf, lt), (rf, rt) = self.node(node.left), self.node(node.right)
        a, b = self.as_number(lf, lt), self.as_number(rf, rt)
        op = type(node.op)

        def arith(env: Env) -> tuple[Any, Err]:
            (x, ex), (y, ey) = a(env), b(env)
            x, y = _float(x), _float(y)
            if op is ast.Add:
                return x + y, _any(ex, ey)
            if op is ast.Sub:
                return x - y, _any(ex, ey)
            if op is ast.Mult:
                return x * y, _any(ex, ey)
            zero = np.equal(y, 0.0)
            safe = np.where(zero, 1.0, y) if isinstance(zero, np.ndarray) else (y or 1.0)
            if op is ast.Div:
                return x / safe, _any(ex, ey, zero)
            return np.remainder(x, safe), _any(ex, ey, zero)

        if op not in (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod):
            raise Unsupported(f"operator {op.__name__}")
        return arith, "number"

    def boolop(self, node: ast.BoolOp) -> tuple[VFn, str]:
        """``and``/``or``: Python's value (an operand), errors only where evaluated."""
        parts = [self.node(v) for v in node.values]
        types = {t for _, t in parts}
        typ = types.pop() if len(types) == 1 else "number"
        is_and = isinstance(node.op, ast.And)
        fns = [(f if typ != "number" else self.as_number(f, t)) for f, t in parts]
        truths = [self.truth(f, t) for f, t in parts]
        if typ == "bool":

            def logical(env: Env) -> tuple[Any, Err]:
                v, e = fns[0](env)
                for f in fns[1:]:
                    w, ew = f(env)
                    e = _any(e, _where(v if is_and else np.logical_not(v), ew))
                    v = (v & w) if is_and else (v | w)
                return v, e

            return logical, "bool"

        def valued(env: Env) -> tuple[Any, Err]:
            v, e = fns[0](env)
            t, _ = truths[0](env)
            for f, tf in zip(fns[1:], truths[1:], strict=True):
                w, ew = f(env)
                tw, _ = tf(env)
                go = t if is_and else np.logical_not(t)  # where the next operand is evaluated
                e = _any(e, _where(go, ew))
                v = np.where(go, w, v)
                t = np.where(go, tw, t)
            return v, e

        return valued, typ

    def compare(self, node: ast.Compare) -> tuple[VFn, str]:
        """A comparison chain, stopping (for errors) where Python's would."""
        items = [self.node(x) for x in [node.left, *node.comparators]]
        fns = [f for f, _ in items]  # bools compare with numbers as 0 and 1, as in Python
        ops = [type(o) for o in node.ops]
        table = {
            ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less,
            ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
        }  # fmt: skip
        funcs = [table[o] for o in ops]

        def cmp(env: Env) -> tuple[Any, Err]:
            x, e = fns[0](env)
            result: Any = True
            for f, op in zip(fns[1:], funcs, strict=True):
                y, ey = f(env)
                e = _any(e, _where(result, ey))  # evaluated only while the chain holds
                result = result & op(x, y)
                x = y
            return result, e

        return cmp, "bool"

    def ifexp(self, node: ast.IfExp) -> tuple[VFn, str]:
        """``b if c else o``: only the branch taken can fail."""
        cf, ct = self.node(node.test)
        (bf, bt), (of, ot) = self.node(node.body), self.node(node.orelse)
        typ = bt if bt == ot else "number"
        if typ == "number":
            bf, of = self.as_number(bf, bt), self.as_number(of, ot)
        test = self.truth(cf, ct)

        def choose(env: Env) -> tuple[Any, Err]:
            c, ec = test(env)
            (b, eb), (o, eo) = bf(env), of(env)
            err = _any(ec, _where(c, eb), _where(np.logical_not(c), eo))
            return np.where(c, b, o) if isinstance(c, np.ndarray) else (b if c else o), err

        return choose, typ

    def call(self, name: str, args: list[ast.expr]) -> tuple[VFn, str]:
        """The allowed functions, with the scalar code's results and errors."""
        parts = [self.node(a) for a in args]
        fns = [self.as_number(f, t) for f, t in parts]

        def values(env: Env) -> tuple[list[Any], Err]:
            out, errs = [], []
            for f in fns:
                v, e = f(env)
                out.append(_float(v))
                errs.append(e)
            return out, _any(*errs)

        if name in ("_f_min", "_f_max"):
            better = np.less if name == "_f_min" else np.greater

            def extreme(env: Env) -> tuple[Any, Err]:
                xs, e = values(env)
                r = xs[0]
                for x in xs[1:]:  # as min()/max(): keep the first unless strictly beaten
                    r = np.where(better(x, r), x, r)
                return r, e

            return extreme, "number"
        if name == "_f_abs":

            def absolute(env: Env) -> tuple[Any, Err]:
                xs, e = values(env)
                return np.abs(xs[0]), e

            return absolute, "number"
        if name == "_f_clamp":

            def clamp(env: Env) -> tuple[Any, Err]:
                (x, lo, hi), e = values(env)
                bad = np.greater(lo, hi)
                r = np.where(np.less(x, lo), lo, np.where(np.greater(x, hi), hi, x))
                return r, _any(e, bad)

            return clamp, "number"
        if name == "_f_sqrt":

            def sqrt(env: Env) -> tuple[Any, Err]:
                xs, e = values(env)
                return np.sqrt(xs[0]), _any(e, np.less(xs[0], 0.0))

            return sqrt, "number"
        scalar: dict[str, Callable[..., float]] = {
            "_f_exp": _exp, "_f_log": _log, "_f_logistic": _logistic, "_pow": _pow,
        }  # fmt: skip
        if name in scalar:
            fn = scalar[name]

            def pointwise(env: Env) -> tuple[Any, Err]:
                xs, e = values(env)
                v, ev = _each(fn, *xs)
                return v, _any(e, ev)

            return pointwise, "number"
        raise Unsupported(f"function {name.removeprefix('_f_')}()")
