"""negosim's small expression language: guards, option weights and fact effects.

Scenario files contain expressions such as ``china_stance == 'warm' and present('us')``.
They are written in a strict subset of Python expression syntax and compiled ONCE, at
load time, into a plain Python function ``fn(s)`` over the runtime slot list ``s``;
evaluating a guard then costs about as much as the comparison itself.

Why this is safe although it ends in ``eval``:

* The text is parsed with :func:`ast.parse` (``mode="eval"``), never executed. Every
  node of the tree is checked against a whitelist: literals (numbers, strings, bools),
  declared names, arithmetic, comparisons, ``and``/``or``/``not``, ``x if c else y`` and
  calls to the few functions in :data:`FUNCTIONS`. Attribute access, subscripts,
  lambdas, comprehensions, f-strings, walrus, keyword arguments, dunder names and every
  other construct are rejected with an :class:`~negosim.errors.ExpressionError`.
* The Python source that is finally compiled is *generated* from the checked tree, not
  copied from the text: names become ``s[i]``, functions become private globals, and
  string/number literals are emitted with :func:`repr`. Nothing the author wrote reaches
  the compiler verbatim.
* The generated ``lambda s: ...`` is evaluated with ``{"__builtins__": {}}`` plus the
  allowed functions as its only globals, so it cannot reach ``open``, ``__import__`` etc.
* ``**`` goes through :func:`math.pow` on floats (no giant integers), strings never take
  part in arithmetic (no ``'a' * 10**9``), input is capped at 2000 characters and the tree
  at 60 levels of nesting. Any parser failure (syntax, null bytes, recursion, memory)
  becomes an ``ExpressionError``.
"""

from __future__ import annotations

import ast
import difflib
import functools
import io
import math
import re
import threading
import tokenize
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from negosim.errors import ExpressionError

MAX_LENGTH = 2000
MAX_DEPTH = 60
TYPES = ("bool", "number", "str")


@dataclass(frozen=True)
class Name:
    """A name an expression may use: where its value lives and what it is."""

    index: int  # slot index in the runtime state list `s`
    type: str  # "bool" | "number" | "str"
    values: tuple[str, ...] | None = None  # allowed values for enum facts (type "str")
    # For ``available:ACTOR``: the keys of the actor's ``available:`` windows (None: it
    # has none), any one of which must be open too.
    windows: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Compiled:
    """A compiled expression: call ``fn(s)`` to evaluate it."""

    text: str
    fn: Callable[[list[Any]], Any]
    names: frozenset[str]  # keys of the `names` mapping used (incl. "present:us" etc.)
    type: str  # "bool" | "number" | "str"
    code: str = ""  # the Python expression over ``s`` that ``fn`` evaluates


def _clamp(x: float, lo: float, hi: float) -> float:
    if lo > hi:
        raise ValueError(f"clamp: lower bound {lo} is above upper bound {hi}")
    return lo if x < lo else hi if x > hi else x


def _logistic(x: float) -> float:
    x = float(x)
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)  # x < 0: cannot overflow
    return e / (1.0 + e)


def _pow(a: float, b: float) -> float:
    # math.pow: float result, OverflowError on overflow, ValueError (never complex) on
    # a negative base with a fractional exponent or 0 ** negative.
    return math.pow(float(a), float(b))


FUNCTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "min": (min, "min(a, b, ...): the smallest of two or more numbers"),
    "max": (max, "max(a, b, ...): the largest of two or more numbers"),
    "abs": (abs, "abs(x): absolute value"),
    "clamp": (_clamp, "clamp(x, lo, hi): x limited to the range [lo, hi]"),
    "exp": (math.exp, "exp(x): e to the power x"),
    "log": (math.log, "log(x): natural logarithm (x must be > 0)"),
    "sqrt": (math.sqrt, "sqrt(x): square root (x must be >= 0)"),
    "logistic": (_logistic, "logistic(x): 1 / (1 + e^-x), between 0 and 1"),
}
_ARITY: dict[str, tuple[int, int | None]] = {
    "min": (2, None), "max": (2, None), "abs": (1, 1), "clamp": (3, 3),
    "exp": (1, 1), "log": (1, 1), "sqrt": (1, 1), "logistic": (1, 1),
}  # fmt: skip
_SPECIAL = {
    "present": ("present:", "actor"),
    "in_window": ("window:", "window"),
    "available": ("available:", "actor"),
}
_GLOBALS: dict[str, Any] = {f"_f_{k}": f for k, (f, _) in FUNCTIONS.items()} | {"_pow": _pow}

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%", ast.Pow: "**"
}  # fmt: skip
_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="
}  # fmt: skip
_FORBIDDEN_OPS = {
    ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.Invert: "~",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
}  # fmt: skip
_FORBIDDEN_NODES: dict[type[ast.AST], str] = {
    kind: f"{what} not allowed"
    for kinds, what in [
        ((ast.Attribute,), "attribute access is"),
        ((ast.Subscript, ast.Slice), "subscripts and slicing are"),
        ((ast.Lambda,), "lambda is"),
        ((ast.ListComp, ast.SetComp, ast.DictComp), "comprehensions are"),
        ((ast.GeneratorExp,), "generator expressions are"),
        ((ast.NamedExpr,), "the walrus operator ':=' is"),
        ((ast.Starred,), "starred arguments (*args) are"),
        ((ast.Await,), "await is"),
        ((ast.Yield, ast.YieldFrom), "yield is"),
        ((ast.JoinedStr, ast.FormattedValue), "f-strings are"),
        ((ast.List,), "lists are"), ((ast.Tuple,), "tuples are"),
        ((ast.Set,), "sets are"), ((ast.Dict,), "dicts are"),
    ]
    for kind in kinds
}  # fmt: skip
_ALLOWED = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.Name,
            ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)  # fmt: skip
_NUMERIC = ("bool", "number")
_DESC = {"bool": "a true/false condition", "number": "a number", "str": "a string"}
_KIND = {"bool": "a bool", "number": "a number", "str": "a string"}


class _Source:
    """Maps ast positions (line, UTF-8 byte column) to 0-based offsets in the text."""

    def __init__(self, text: str, base: int) -> None:
        self.text, self.base = text, base
        self.starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]

    def _line(self, lineno: int) -> tuple[int, str]:
        i = min(max(lineno, 1), len(self.starts)) - 1
        end = self.starts[i + 1] if i + 1 < len(self.starts) else len(self.text)
        return self.starts[i], self.text[self.starts[i] : end]

    def chars(self, lineno: int, col: int) -> int:
        start, line = self._line(lineno)
        return self.base + start + min(max(col, 0), len(line))

    def at(self, lineno: int | None, col_bytes: int | None) -> int:
        start, line = self._line(lineno or 1)
        raw = line.encode("utf-8", "surrogatepass")[: max(col_bytes or 0, 0)]
        return self.base + start + len(raw.decode("utf-8", "ignore"))

    def node(self, node: ast.AST) -> int:
        if isinstance(node, ast.Attribute):  # point at the dot, not at the object
            pos = self.at(node.value.end_lineno, node.value.end_col_offset) - self.base
            while pos < len(self.text) and self.text[pos] in " \t\r\n\\)":
                pos += 1
            return self.base + pos
        return self.at(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))


def _ast_parse(body: str, mode: str) -> ast.mod:
    with warnings.catch_warnings():  # e.g. SyntaxWarning "invalid decimal literal" in '1if'
        warnings.simplefilter("ignore")
        return ast.parse(body, mode=mode)


def _parse(text: str) -> tuple[ast.expr, _Source]:
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is too long ({len(text)} > {MAX_LENGTH} characters)")
    body = text.lstrip(" \t\f\r\n")
    if not body.strip():
        raise ExpressionError("empty expression")
    base = len(text) - len(body)
    # Line breaks are spaces (a YAML '|' block keeps them; Python would not continue a
    # line there). One character for one: offsets into the text stay exact.
    body = body.replace("\r", " ").replace("\n", " ")
    src = _Source(body, base)
    try:
        tree = _ast_parse(body, "eval")
    except SyntaxError as e:
        raise _syntax_error(body, src, e) from None
    except (RecursionError, MemoryError):
        raise ExpressionError("expression is nested too deeply", 0) from None
    except (ValueError, OverflowError) as e:  # null bytes, lone surrogates, ...
        raise ExpressionError(f"cannot read expression: {e}", 0) from None
    assert isinstance(tree, ast.Expression)
    _check_brackets(body, src)
    _check_tree(tree.body, src)
    return tree.body, src


@functools.lru_cache(maxsize=2048)
def _parse_text(text: str) -> tuple[ast.expr, _Source]:
    """:func:`_parse`, remembered: a sweep compiles the same expressions at every point.

    The tree and source map are only read afterwards, so sharing them is safe;
    a text that fails raises again each time (exceptions are not cached).
    """
    return _parse(text)


def _check_brackets(body: str, src: _Source) -> None:
    """Parentheses make no AST nodes, so limit their nesting on the tokens."""
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(body).readline):
            if tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise ExpressionError(
                        f"expression is nested too deeply (more than {MAX_DEPTH} brackets)",
                        src.chars(*tok.start),
                    )
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # ast.parse accepted the text; a tokenizer quirk is no reason to reject it


def _syntax_error(body: str, src: _Source, e: SyntaxError) -> ExpressionError:
    offset = src.chars(e.lineno or 1, (e.offset or 1) - 1)
    msg = e.msg or "invalid syntax"
    if "null bytes" in msg:
        return ExpressionError(
            "expression contains a null byte", src.base + max(body.find("\0"), 0)
        )
    if "too many nested" in msg:
        return ExpressionError("expression is nested too deeply", offset)
    try:  # a statement (import, assignment, def...) is valid Python but not an expression
        module = _ast_parse(body, "exec")
        is_statement = isinstance(module, ast.Module) and bool(module.body)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        is_statement = False
    if is_statement:
        return ExpressionError("expected an expression, not a statement", src.base)
    return ExpressionError(f"syntax error: {msg}", offset)


def _check_tree(root: ast.expr, src: _Source) -> None:
    """Iterative (no recursion) depth + whitelist check, in source order."""
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        too_deep = f"expression is nested too deeply (more than {MAX_DEPTH} levels)"
        message = too_deep if depth > MAX_DEPTH else _forbidden(node)
        if message:
            raise ExpressionError(message, src.node(node))
        inner = depth + 1 if isinstance(node, ast.expr) else depth
        stack.extend((c, inner) for c in reversed(list(ast.iter_child_nodes(node))))


def _forbidden(node: ast.AST) -> str | None:
    kind = type(node)
    if kind in _FORBIDDEN_NODES:
        return _FORBIDDEN_NODES[kind]
    if kind in _FORBIDDEN_OPS:
        return f"operator '{_FORBIDDEN_OPS[kind]}' is not allowed"
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool | int | float | str):
            return None
        special = {bytes: "bytes literals are", complex: "complex numbers are"}
        return f"{special.get(type(v), f'{v!r} is')} not allowed"
    if isinstance(node, ast.Name) and node.id.startswith("__"):
        return f"names starting with '__' are not allowed ('{node.id}')"
    if isinstance(node, ast.keyword):
        return "keyword arguments are not allowed" if node.arg else "'**' is not allowed"
    if isinstance(node, _ALLOWED):
        return None
    return f"{kind.__name__} is not allowed"


def _unify(a: str, b: str) -> str | None:
    """The type of a value that is either an `a` or a `b` (None: incompatible)."""
    return a if a == b else "number" if a in _NUMERIC and b in _NUMERIC else None


class _Gen:
    """Type-checks a whitelisted tree and generates the Python source for it."""

    def __init__(self, src: _Source, names: Mapping[str, Name]) -> None:
        self.src, self.names, self.used = src, names, set[str]()

    def err(self, message: str, node: ast.AST) -> ExpressionError:
        return ExpressionError(message, self.src.node(node))

    def slot(self, key: str) -> str:
        self.used.add(key)
        return f"s[{int(self.names[key].index)}]"

    def visit(self, node: ast.expr) -> tuple[str, str]:
        if isinstance(node, ast.Constant):
            v = node.value
            t = "bool" if isinstance(v, bool) else "str" if isinstance(v, str) else "number"
            return ("1e999" if v == math.inf else repr(v)), t  # repr(inf) is not source
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            code, t = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                return f"(not {code})", "bool"
            op = "-" if isinstance(node.op, ast.USub) else "+"
            if t not in _NUMERIC:
                raise self.err(f"cannot apply unary '{op}' to a string", node)
            return f"({op}{code})", "number"
        if isinstance(node, ast.BinOp):
            op = _BINOPS[type(node.op)]
            (lc, lt), (rc, rt) = self.visit(node.left), self.visit(node.right)
            if not (lt in _NUMERIC and rt in _NUMERIC):
                raise self.err(f"cannot apply '{op}' to {_KIND[lt]} and {_KIND[rt]}", node)
            code = f"_pow({lc}, {rc})" if op == "**" else f"({lc} {op} {rc})"
            return code, "number"
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            parts = [self.visit(v) for v in node.values]
            t = parts[0][1]
            for _, other in parts[1:]:
                u = _unify(t, other)
                if u is None:
                    raise self.err(
                        f"cannot combine {_KIND[t]} and {_KIND[other]} with '{word}'", node
                    )
                t = u
            return "(" + f" {word} ".join(c for c, _ in parts) + ")", t
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            (tc, _), (bc, bt), (oc, ot) = map(self.visit, (node.test, node.body, node.orelse))
            ut = _unify(bt, ot)
            if ut is None:
                raise self.err(f"the two branches give {_KIND[bt]} and {_KIND[ot]}", node)
            return f"({bc} if {tc} else {oc})", ut
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.err(f"{type(node).__name__} is not allowed", node)  # pragma: no cover

    def name(self, node: ast.Name) -> tuple[str, str]:
        if node.id in ("true", "false"):
            return repr(node.id == "true"), "bool"
        if node.id not in self.names:
            raise self.err(_unknown_name(node.id, self.names), node)
        t = self.names[node.id].type
        if t not in TYPES:
            raise ValueError(f"name {node.id!r} has invalid type {t!r}; expected one of {TYPES}")
        return self.slot(node.id), t

    def compare(self, node: ast.Compare) -> tuple[str, str]:
        items = [node.left, *node.comparators]
        parts = [self.visit(x) for x in items]
        code = parts[0][0]
        for i, op_node in enumerate(node.ops):
            op = _CMPOPS[type(op_node)]
            (_, lt), (rc, rt) = parts[i], parts[i + 1]
            if not (lt in _NUMERIC and rt in _NUMERIC) and lt != rt:
                raise self.err(f"cannot compare {_KIND[lt]} with {_KIND[rt]} using '{op}'", node)
            if op in ("==", "!="):
                self.check_enum(items[i], items[i + 1])
                self.check_enum(items[i + 1], items[i])
            code += f" {op} {rc}"
        return f"({code})", "bool"

    def check_enum(self, name: ast.expr, lit: ast.expr) -> None:
        if not (isinstance(name, ast.Name) and isinstance(lit, ast.Constant)):
            return
        decl = self.names.get(name.id)
        if decl is None or decl.values is None or not isinstance(lit.value, str):
            return
        if lit.value not in decl.values:
            raise self.err(_not_a_value(lit.value, name.id, decl.values), lit)

    def call(self, node: ast.Call) -> tuple[str, str]:
        if not isinstance(node.func, ast.Name):
            raise self.err("only the listed functions may be called", node)
        fname, args = node.func.id, node.args
        if fname in _SPECIAL:
            prefix, what = _SPECIAL[fname]
            arg = args[0].value if len(args) == 1 and isinstance(args[0], ast.Constant) else None
            if not isinstance(arg, str):
                raise self.err(
                    f"{fname}() takes one {what} name in quotes, e.g. {fname}('x')", node
                )
            if prefix + arg not in self.names:
                raise self.err(_unknown_special(what, prefix, arg, self.names), args[0])
            key = prefix + arg
            windows = self.names[key].windows
            if windows is not None:  # available('a'): its override and one of its windows
                opened = " or ".join(self.slot(w) for w in windows) or "False"
                return f"({self.slot(key)} and ({opened}))", "bool"
            return self.slot(key), "bool"
        if fname not in FUNCTIONS:
            if fname in self.names:
                raise self.err(f"'{fname}' is not a function", node)
            raise self.err(_unknown_function(fname), node)
        lo, hi = _ARITY[fname]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}"
            raise self.err(f"{fname}() takes {want} argument(s), got {len(args)}", node)
        codes = []
        for a in args:
            c, t = self.visit(a)
            if t not in _NUMERIC:
                raise self.err(f"{fname}() expects numbers, got {_KIND[t]}", a)
            codes.append(c)
        return f"_f_{fname}({', '.join(codes)})", "number"


def _hint(name: str, choices: list[str]) -> str:
    return meant(closest(name, choices))


def meant(close: list[str]) -> str:
    """`` (did you mean 'a'?)``, `` (did you mean 'a' or 'b'?)``; ``""`` for none."""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)" if close else ""


def closest(name: str, choices: Iterable[Any]) -> list[str]:
    """The declared name ``name`` was most likely meant as: the closest by difflib;
    failing that (short names: 's9' and 's0' are only 50% alike), those one typed
    character away (one changed, added or left out), at most three."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close or len(name) < 2:
        return close
    return sorted(c for c in choices if c != name and _one_edit(name, c))[:3]


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one character changed, added or left out."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = sorted((a, b), key=len)
    if len(long) - len(short) != 1:
        return False
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _unknown_name(name: str, names: Mapping[str, Name]) -> str:
    declared = sorted(k for k in names if ":" not in k)
    if not declared:
        return f"unknown name '{name}'; no names are declared"
    close = difflib.get_close_matches(name, declared, n=10, cutoff=0.6)
    shown = (close + [k for k in declared if k not in close])[:10]
    more = ", ..." if len(declared) > 10 else ""
    return (
        f"unknown name '{name}'{_hint(name, declared)}; declared names are: "
        f"{', '.join(shown)}{more}"
    )


def _unknown_special(what: str, prefix: str, arg: str, names: Mapping[str, Name]) -> str:
    declared = sorted(k[len(prefix) :] for k in names if k.startswith(prefix))
    listed = ", ".join(declared[:12]) + (", ..." if len(declared) > 12 else "")
    return f"unknown {what} {arg!r}{_hint(arg, declared)}; {what}s: {listed or '(none)'}"


def _not_a_value(value: str, fact: str, values: tuple[str, ...]) -> str:
    """``'wram' is not one of mood's values: cool, warm (did you mean 'warm'?)``."""
    hint = _hint(value, list(values))
    return f"{value!r} is not one of {fact}'s values: {', '.join(values)}{hint}"


def _enum_mismatches(
    root: ast.expr, src: _Source, names: Mapping[str, Name]
) -> list[ExpressionError]:
    """Every string compared with ``==``/``!=`` to an enum fact that is not one of its
    values (``mood == 'wram'``), so that all are reported with the unknown names."""
    found = []
    for node in ast.walk(root):
        if not isinstance(node, ast.Compare):
            continue
        items = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                continue
            for name, lit in ((items[i], items[i + 1]), (items[i + 1], items[i])):
                if not (isinstance(name, ast.Name) and isinstance(lit, ast.Constant)):
                    continue
                decl = names.get(name.id)
                if decl is None or decl.values is None or not isinstance(lit.value, str):
                    continue
                if lit.value not in decl.values:
                    message = _not_a_value(lit.value, name.id, decl.values)
                    found.append(ExpressionError(message, src.node(lit)))
    return found


def not_assignable(text: str, fact: str, values: tuple[str, ...]) -> list[ExpressionError]:
    """The strings an expression may give (``'warm' if t > 1 else 'hott'``: each branch
    of a conditional, each operand of ``and``/``or``) that are not one of an enum fact's
    ``values``: setting the fact to one would fail only while running."""
    body, src = _parse_text(text)
    found = []
    todo = [body]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.IfExp):
            todo += [node.orelse, node.body]
        elif isinstance(node, ast.BoolOp):
            todo += reversed(node.values)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (node.value not in values)
        ):
            message = _not_a_value(node.value, fact, values)
            found.append(ExpressionError(message, src.node(node)))
    return found


def _unknown_function(fname: str) -> str:
    known = sorted([*FUNCTIONS, *_SPECIAL])
    listed = ", ".join(known)
    return f"unknown function '{fname}'{_hint(fname, known)}; available functions: {listed}"


def _unknowns(root: ast.expr, src: _Source, names: Mapping[str, Name]) -> list[ExpressionError]:
    """Every unknown name, actor, window and function in the tree, in source order.

    So that a file with two misspelt names in one expression is reported in one
    pass, not one name per attempt.
    """
    found: list[ExpressionError] = []
    callees: set[int] = set()
    for node in ast.walk(root):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            callees.add(id(node.func))
            fname, args = node.func.id, node.args
            if fname in _SPECIAL:
                callees.update(id(a) for a in args)  # present(us): "in quotes" says more
                prefix, what = _SPECIAL[fname]
                arg = args[0] if len(args) == 1 else None
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and prefix + arg.value not in names
                ):
                    message = _unknown_special(what, prefix, arg.value, names)
                    found.append(ExpressionError(message, src.node(arg)))
            elif fname not in FUNCTIONS and fname not in names:
                found.append(ExpressionError(_unknown_function(fname), src.node(node)))
    for node in ast.walk(root):
        if (
            isinstance(node, ast.Name)
            and id(node) not in callees
            and node.id not in ("true", "false")
            and node.id not in names
            and node.id not in FUNCTIONS
            and node.id not in _SPECIAL
        ):
            found.append(ExpressionError(_unknown_name(node.id, names), src.node(node)))
    found += _enum_mismatches(root, src, names)
    return sorted(found, key=lambda e: e.offset)


_Deps = tuple[tuple[str, "Name | None"], ...]
_COMPILED: dict[tuple[str, str | None], list[tuple[_Deps, Compiled]]] = {}
"""Expressions compiled before, by text and expected type: each with what it read of
its ``names`` (every identifier in it, present or not), so it is reused only where
those names mean the same. A sweep or a calibration compiles the same expressions
at every point, over names that differ only in values the slots hold."""
_COMPILED_LOCK = threading.Lock()
_COMPILED_MAX = 4096


def compile_expr(text: str, names: Mapping[str, Name], expect: str | None = None) -> Compiled:
    """Compile ``text`` into a :class:`Compiled` over the slots given by ``names``.

    ``expect``: "bool" requires a true/false result; "number" accepts a number or a bool;
    "str" requires a string; None accepts anything. Raises ExpressionError on any problem.
    """
    if expect is not None and expect not in TYPES:
        raise ValueError(f"expect must be one of {TYPES} or None, got {expect!r}")
    if not isinstance(text, str):
        return _compile(text, names, expect)[0]
    key = (str(text), expect)
    with _COMPILED_LOCK:
        known = list(_COMPILED.get(key, ()))
    for deps, done in known:
        if all(names.get(k) == v for k, v in deps):
            return done if done.text is text else replace(done, text=text)
    done, body = _compile(text, names, expect)
    ids = {n.id for n in ast.walk(body) if isinstance(n, ast.Name)} | done.names
    deps = tuple((k, names.get(k)) for k in sorted(ids))
    with _COMPILED_LOCK:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()  # bounded: a long-lived process compiling many scenarios
        variants = _COMPILED.setdefault(key, [])
        variants.append((deps, done))
        del variants[:-8]  # the same text over other slot layouts: keep the latest few
    return done


def _compile(text: str, names: Mapping[str, Name], expect: str | None) -> tuple[Compiled, ast.expr]:
    """:func:`compile_expr` itself, and the expression's tree."""
    body, src = _parse_text(text) if isinstance(text, str) else _parse(text)
    unknown = _unknowns(body, src, names)
    if unknown:
        first, *others = unknown
        first.others = others
        raise first
    gen = _Gen(src, names)
    code, t = gen.visit(body)
    if expect is not None and t != expect and not (expect == "number" and t == "bool"):
        raise ExpressionError(f"expected {_DESC[expect]}, got {_KIND[t]}", src.node(body))
    try:
        # fresh globals per function: no builtins, only the allowed functions
        glob = {"__builtins__": {}, **_GLOBALS}
        fn = eval(compile(f"lambda s: {code}", "<negosim-expr>", "eval"), glob)
    except (SyntaxError, RecursionError, MemoryError, ValueError, OverflowError) as e:
        raise ExpressionError(f"expression is too complex: {e}", src.base) from None
    fn.negosim_code = code  # what the generated engine (negosim.engine.generated) inlines
    return Compiled(text=text, fn=fn, names=frozenset(gen.used), type=t, code=code), body


def conjunction(mask: tuple[bool, ...], parts: list[str]) -> Callable[[list[Any], int], bool]:
    """One function ``f(s, state)``: ``mask[state]`` and every part (compiled codes) holds.

    The engine's test of whether a clock is enabled, generated once per clock
    with its preconditions, actor windows and guard inlined: one call per
    test instead of one per condition. Same restricted globals as
    :func:`compile_expr`.
    """
    code = " and ".join(["_m[st]", *(f"({p})" for p in parts)])
    glob = {"__builtins__": {}, **_GLOBALS, "_m": mask}
    fn: Callable[[list[Any], int], bool] = eval(
        compile(f"lambda s, st: {code}", "<negosim-enabled>", "eval"), glob
    )
    # What the generated engine (negosim.engine.generated) inlines instead of calling.
    fn.negosim_mask, fn.negosim_parts = mask, tuple(parts)  # type: ignore[attr-defined]
    return fn
