"""Read scenario YAML safely and remember where every value came from.

The scenario schema (pydantic) only sees plain Python data; this module keeps a
parallel tree of source positions so any problem, whether found while reading
the YAML or later by pydantic or the loader, can be reported to the user as
``FILE:LINE:COL: dotted.path: message`` (see :class:`negosim.errors.Problem`).

Reading is deliberately narrow: PyYAML composes the node graph with its safe
machinery and we convert it ourselves. Only mappings with scalar keys (kept as
the text written, as ``str``), sequences and YAML 1.1 safe scalars (null, bool,
int, float, str) are produced. Timestamps, dates and sexagesimal numbers such
as ``12:30`` stay strings exactly as written: the schema interprets them.
Any other tag (``!!python/...``, ``!!binary``, ``!local``...) is refused, as are
duplicate keys, alias bombs and documents nested absurdly deep. ``<<`` merge
keys are supported. Every problem is collected and raised at once as one
:class:`~negosim.errors.ScenarioError`.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from negosim.errors import Problem, ScenarioError

__all__ = [
    "Loc", "YamlDocument", "dotted", "format_problems", "load_scenario_file", "load_yaml_file",
    "load_yaml_text", "problems_from_validation_error", "sort_problems",
]  # fmt: skip

Loc = tuple[str | int, ...]

# Limits, all checked while reading (a hostile file is refused in well under a
# second, before it is held in memory): the largest shipped scenario is 16 KB
# with about 800 values.
MAX_BYTES = 256 * 1024  # bytes of one file; more are not even read
MAX_NODES = 20_000  # values in the document, counting alias expansions
MAX_ALIASES = 1_000  # alias uses (``*name``) in one document
MAX_DEPTH = 100  # nesting levels (scenarios need about ten)
_TOO_DEEP = f"document nested too deeply (more than {MAX_DEPTH} levels)"
_TOO_LARGE = f"document too large: more than {MAX_NODES} values here, counting alias expansions"
_TOO_BIG = f"file too large: more than {MAX_BYTES} bytes ({MAX_BYTES // 1024} KiB)"

_T = "tag:yaml.org,2002:"
_MAP, _SEQ, _STR, _NULL = _T + "map", _T + "seq", _T + "str", _T + "null"
_BOOL, _INT, _FLOAT = _T + "bool", _T + "int", _T + "float"
_AS_TEXT = {_STR, _T + "timestamp", _T + "merge", _T + "value"}  # kept as the text written
_TYPED = {_NULL, _BOOL, _INT, _FLOAT}
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what PyYAML counts as a new line
_FOUND_TYPES = {
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of",
    "finite_number", "int_from_float", "literal_error", "enum", "too_short", "too_long",
    "string_too_short", "string_too_long", "string_pattern_mismatch", "bool_parsing",
}  # fmt: skip


@dataclass(slots=True)
class _Pos:
    """Where one value starts (1-based), and where its children and its key start."""

    line: int
    col: int
    key: tuple[int, int] | None = None  # the mapping key naming this value, if any
    children: dict[str, _Pos] | list[_Pos] | None = None
    # For a scalar written on one line, plain or quoted: how many columns after
    # ``col`` its text starts (1 past a quote), so a character offset inside it
    # (e.g. where an expression goes wrong) can be located exactly.
    text_col: int | None = None
    # The file it was written in, when not the document's own (a base named by
    # ``extends``); None for the document's own file.
    file: str | None = None
    # For a scalar over several lines (folded ``>``, literal ``|``, plain or quoted):
    # where its text lies in the file (start and end character index) and its
    # style, so that an offset inside its value can still be located exactly.
    span: tuple[int, int, str | None] | None = None


class _Abort(Exception):
    """Stop reading at once: the problem makes going on pointless or dangerous."""

    def __init__(self, mark: yaml.Mark | None, message: str):
        super().__init__(message)
        self.mark = mark
        self.message = message


def dotted(loc: Loc) -> str:
    """``("actions", 2, "guard")`` -> ``"actions.2.guard"``; ``()`` -> ``""``."""
    return ".".join(str(part) for part in loc)


def format_problems(problems: list[Problem]) -> str:
    """One ``FILE:LINE:COL: path: message`` line per problem."""
    return "\n".join(str(p) for p in problems)


@dataclass
class YamlDocument:
    """Plain data read from one YAML file, with the source position of every value."""

    file: str  # display name: the path as the user gave it
    data: Any  # dict (str keys) / list / str / int / float / bool / None
    _root: _Pos | None = field(default=None, repr=False, compare=False)
    bases: tuple[str, ...] = ()  # the files named by ``extends``, nearest first
    text: str | None = field(default=None, repr=False, compare=False)  # the YAML read
    # Problems that did not stop the reading (with ``keep_going``: duplicate keys, the
    # first value kept), for the loader to report with everything else it finds.
    problems: list[Problem] = field(default_factory=list, repr=False, compare=False)
    # The YAML read from each base (by the name in ``bases``), to locate a problem
    # inside a value written over several lines in a base.
    base_texts: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # With ``keep_going``: why the base named by ``extends`` could not be read (a YAML
    # error in it, no such file, a cycle); ``data`` is then the file's own, unmerged,
    # so that what can be checked of it is checked in the same pass.
    base_problems: list[Problem] = field(default_factory=list, repr=False, compare=False)

    def _walk(self, loc: Loc) -> tuple[list[str | int], _Pos | None]:
        """Follow ``loc`` through the data, skipping parts that name no key/index.

        Returns the data path actually followed and the position of the deepest
        value reached (None for the root).
        """
        data, pos, path = self.data, self._root, []
        found: _Pos | None = None
        for part in loc:
            step: str | int
            if isinstance(data, dict) and not isinstance(part, bool) and str(part) in data:
                step = str(part)
            elif isinstance(data, list) and type(part) is int and 0 <= part < len(data):
                step = part
            else:
                continue  # a pydantic union/discriminator tag, '[key]', or a missing key
            data = data[step]
            path.append(step)
            kids = pos.children if pos is not None else None
            if isinstance(kids, dict) and isinstance(step, str):
                pos = kids.get(step)
            elif isinstance(kids, list) and isinstance(step, int) and step < len(kids):
                pos = kids[step]
            else:
                pos = None  # data changed after loading: keep the last known position
            found = pos or found
        return path, found

    def locate(self, loc: Loc) -> tuple[int, int]:
        """1-based (line, col) of the deepest value on ``loc`` that exists.

        For a missing key that is the enclosing mapping; for the root, (1, 1).
        Parts of ``loc`` that are not keys/indexes of the data are skipped.
        """
        pos = self._walk(loc)[1]
        return (pos.line, pos.col) if pos is not None else (1, 1)

    def file_of(self, loc: Loc) -> str:
        """The file in which the deepest value on ``loc`` was written (a base or this file)."""
        pos = self._walk(loc)[1]
        return pos.file if pos is not None and pos.file else self.file

    def locate_key(self, loc: Loc) -> tuple[int, int]:
        """1-based (line, col) of the key naming the value at ``loc`` (else :meth:`locate`)."""
        pos = self._walk(loc)[1]
        if pos is not None and pos.key is not None:
            return pos.key
        return (pos.line, pos.col) if pos is not None else (1, 1)

    def problem(
        self, loc: Loc, message: str, offset: int | None = None, *, at_key: bool = False
    ) -> Problem:
        """A Problem located at ``loc`` (see :meth:`locate`), path ``dotted(loc)``.

        ``offset`` is a character offset inside the value's text (where an
        expression goes wrong); it moves the column there when the value is a
        one-line scalar, the only case where text offsets map to columns.
        ``at_key`` locates it at the key naming the value instead (a misspelt
        name written as a key: ``present: {wnag: false}``).
        """
        path, pos = self._walk(loc)
        line, col = (pos.line, pos.col) if pos is not None else (1, 1)
        if at_key and pos is not None and pos.key is not None and path and path[-1] == loc[-1]:
            line, col = pos.key
            offset = None
        if offset is not None and pos is not None and pos.text_col is not None:
            col += pos.text_col + offset
        file = pos.file if pos is not None and pos.file else self.file
        text = self.base_texts.get(pos.file) if pos is not None and pos.file else self.text
        if (offset is not None and pos is not None and pos.text_col is None and pos.span
                and text is not None):
            value = self.data
            for step in path:
                value = value[step]
            if isinstance(value, str):
                line, col = _locate_in_scalar(text, pos.span, value, offset) or (line, col)
        return Problem(file, line, col, dotted(loc), message)


# ---------------------------------------------------------------- reading


class _Loader(yaml.SafeLoader):
    """PyYAML's safe composer, counting alias uses and nesting as it goes."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.alias_uses = 0
        self.depth = 0
        self.nodes = 0  # values composed so far (alias expansions are counted later)

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.alias_uses += 1
            if self.alias_uses > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _Abort(mark, f"too many aliases (more than {MAX_ALIASES})")
        elif self.depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _Abort(mark, _TOO_DEEP)
        else:
            self.nodes += 1
            if self.nodes > MAX_NODES:  # stop now: a long list is not read to its end
                raise _Abort(self.peek_event().start_mark, _TOO_LARGE)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _mark(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def _fail(file: str, line: int, col: int, message: str) -> ScenarioError:
    return ScenarioError([Problem(file, line, col, "", message)])


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


def _kind(node: Node) -> str:
    if not isinstance(node, ScalarNode):
        return "a list" if isinstance(node, SequenceNode) else "a mapping"
    kinds = {_NULL: "null", _BOOL: "a boolean", _INT: "a number", _FLOAT: "a number"}
    return kinds.get(node.tag, "a string")


def _compose(loader: _Loader) -> Node | None:
    """The single document's node graph (None if there is none)."""
    loader.get_event()  # stream start
    if loader.check_event(yaml.StreamEndEvent):
        return None
    root = loader.compose_document()
    if not loader.check_event(yaml.StreamEndEvent):
        raise _Abort(loader.get_event().start_mark, "expected one YAML document, found another")
    return root


def _check_size(root: Node) -> None:
    """Refuse alias bombs and recursion before expanding anything."""
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (values once expanded, depth)
    active: set[int] = set()

    def visit(node: Node) -> tuple[int, int]:
        ident = id(node)
        if ident in memo:
            return memo[ident]
        if ident in active:
            raise _Abort(node.start_mark, "recursive alias: this value contains itself")
        size, depth = 1, 1
        if not isinstance(node, ScalarNode):
            active.add(ident)
            children = node.value
            if isinstance(node, MappingNode):
                children = [child for pair in node.value for child in pair]
            for child in children:
                child_size, child_depth = visit(child)
                size, depth = size + child_size, max(depth, child_depth + 1)
            active.discard(ident)
            if size > MAX_NODES:
                raise _Abort(node.start_mark, _TOO_LARGE)
            if depth > MAX_DEPTH:
                raise _Abort(node.start_mark, _TOO_DEEP)
        memo[ident] = (size, depth)
        return size, depth

    visit(root)


class _Converter:
    """Node graph -> plain data + positions, collecting every problem."""

    def __init__(self, loader: _Loader, file: str):
        self.loader = loader
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, node: Node, path: Loc, message: str) -> None:
        line, col = _mark(node.start_mark)
        self.problems.append(Problem(self.file, line, col, dotted(path), message))

    def convert(self, node: Node, path: Loc) -> tuple[Any, _Pos]:
        pos = _Pos(*_mark(node.start_mark))
        if isinstance(node, ScalarNode):
            if node.start_mark.line == node.end_mark.line and node.style in (None, "'", '"'):
                pos.text_col = 0 if node.style is None else 1
            else:
                pos.span = (node.start_mark.index, node.end_mark.index, node.style)
            return self.scalar(node, path), pos
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            pairs = [self.convert(child, (*path, i)) for i, child in enumerate(node.value)]
            pos.children = [p for _, p in pairs]
            return [v for v, _ in pairs], pos
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return self.mapping(node, path, pos)
        self.problem(node, path, f"unsupported tag {_tag_name(node.tag)}")
        return None, pos

    def mapping(self, node: MappingNode, path: Loc, pos: _Pos) -> tuple[Any, _Pos]:
        data: dict[str, Any] = {}
        kids: dict[str, _Pos] = {}
        merged: dict[str, Any] = {}
        merged_kids: dict[str, _Pos] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _T + "merge":
                self.merge(value_node, path, merged, merged_kids)
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in data:
                first = kids[key].key or (0, 0)
                msg = f"duplicate key '{key}' (first at line {first[0]})"
                self.problem(key_node, (*path, key), msg)
                continue
            data[key], kids[key] = self.convert(value_node, (*path, key))
            kids[key].key = _mark(key_node.start_mark)
        if merged:  # explicit keys win; merged ones come first, as in PyYAML
            data, kids = merged | data, merged_kids | kids
        pos.children = kids
        return data, pos

    def merge(self, node: Node, path: Loc, into: dict[str, Any], kids: dict[str, _Pos]) -> None:
        sources = node.value if isinstance(node, SequenceNode) and node.tag == _SEQ else [node]
        for source in sources:
            if not (isinstance(source, MappingNode) and source.tag == _MAP):
                self.problem(source, path, "a '<<' merge takes a mapping or a list of mappings")
                continue
            data, pos = self.convert(source, path)
            assert isinstance(pos.children, dict)
            for key, value in data.items():
                if key not in into:  # the first source naming a key wins
                    into[key], kids[key] = value, pos.children[key]

    def key(self, node: Node, path: Loc) -> str | None:
        if not isinstance(node, ScalarNode):
            self.problem(node, path, f"a mapping key must be a plain scalar, not {_kind(node)}")
            return None
        if node.tag not in _AS_TEXT | _TYPED:
            self.problem(node, path, f"unsupported tag {_tag_name(node.tag)}")
            return None
        return str(node.value)

    def scalar(self, node: ScalarNode, path: Loc) -> Any:
        tag, text = node.tag, node.value
        if tag in _AS_TEXT or (tag in (_INT, _FLOAT) and ":" in text):
            return text  # timestamps and sexagesimal numbers stay as written
        if tag not in _TYPED:
            self.problem(node, path, f"unsupported tag {_tag_name(tag)}")
            return None
        construct = {
            _NULL: self.loader.construct_yaml_null,
            _BOOL: self.loader.construct_yaml_bool,
            _INT: self.loader.construct_yaml_int,
            _FLOAT: self.loader.construct_yaml_float,
        }[tag]
        try:
            return construct(node)
        except (ValueError, KeyError):  # e.g. '._' (a PyYAML float), 5000-digit ints
            if self.loader.resolve(ScalarNode, text, (True, False)) == tag:
                return text  # the tag was implicit: keep the text
            self.problem(node, path, f"invalid {_tag_name(tag)} value {text!r}")
            return None


def _locate_in_scalar(
    text: str, span: tuple[int, int, str | None], value: str, offset: int
) -> tuple[int, int] | None:
    """(line, col) in the file of character ``offset`` of a multi-line scalar's ``value``.

    YAML folds the lines of such a scalar (``>``, plain, quoted) or keeps them
    (``|``), always dropping the indentation; walking the value and the source
    side by side, every character that is not white space is found again in
    the source. None if the two cannot be matched (escapes in a double-quoted
    scalar, say): the caller then points at the value's start.
    """
    start, end, style = span
    source = text[start:end]
    j = 0
    if style in ("|", ">"):
        j = source.find("\n") + 1  # the content starts after the indicator's line
        if j == 0:
            return None
    elif style in ("'", '"'):
        j = 1
    index = None
    for i, ch in enumerate(value):
        if i == offset:
            index = j
        if ch.isspace():
            if j < len(source) and source[j] == ch:
                j += 1
            continue
        while j < len(source) and source[j].isspace():
            j += 1
        if i == offset:
            index = j
        if style == "'" and ch == "'" and source.startswith("''", j):
            j += 2
        elif j < len(source) and source[j] == ch:
            j += 1
        else:
            return None
    if index is None:
        index = j
    return _line_col(text, start + index)


def _line_col(text: str, index: int) -> tuple[int, int]:
    line, start = 1, 0
    for match in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, match.end()
    return line, index - start + 1


def _plain(exc: yaml.MarkedYAMLError, text: str) -> str:
    """A YAML parser error in plain words, with the lines it concerns.

    PyYAML speaks of tokens ("expected <block end>, but found '<block mapping
    start>'"); a newcomer needs to hear "this line is indented differently".
    Errors without a rephrasing keep the parser's words.
    """
    problem = exc.problem or ""
    context = exc.context or ""
    since = f" at line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
    if problem.startswith("expected <block end>, but found '-'"):
        return (
            "a list item ('-') where a key was expected: indent it under the key it "
            "belongs to, or check the indentation of this line"
        )
    after = _text_before_mark(exc, text)
    if after and (
        problem.startswith("expected <block end>")
        or ("flow" not in context and problem.startswith("expected <block mapping start>"))
    ):
        opened = _quote_opened(text, exc.problem_mark)
        if opened is not None:
            line, quote = opened
            inside = "''" if quote == "'" else '\\"'
            return (
                f"unexpected {after!r} after a complete value on this line: the quotation "
                f"mark before it closes the value quoted at line {line} (is the closing "
                f"quotation mark missing there? a {quote} inside it is written {inside})"
            )
        return (
            f"unexpected {after!r} after a complete value on this line: if it is part "
            "of the value, put the whole value in quotes; otherwise remove it"
        )
    if problem.startswith("expected <block end>") or problem.startswith(
        "expected <block mapping start>"
    ):
        if "<block sequence start>" in problem:  # the line is a list item ('- ...')
            where = f" (the list starts{since})" if "collection" in context else ""
            return (
                "this list item is indented differently from the items before it: the "
                f"'-' of every item of one list must be in the same column{where}"
            )
        return (
            "this line is indented differently from the lines before it: the keys of one "
            f"mapping must start in the same column (the mapping starts{since})"
        )
    if problem.startswith("mapping values are not allowed here"):
        return (
            "a ':' here starts a key where a value was expected: check the indentation of "
            "this line, or put the value in quotes if it contains ': '"
        )
    if problem.startswith("could not find expected ':'"):
        where = f"line {exc.context_mark.line + 1}" if exc.context_mark is not None else "a line"
        return (
            f"{where} has no ':' after its key: write 'key: value' (or quote a value that "
            "runs over several lines)"
        )
    if "end of stream" in problem and "quoted scalar" in context:
        return f"the quotation mark opened{since} is never closed"
    if problem.startswith("found character '\\t'"):
        return "a tab character: YAML is indented with spaces, never tabs"
    if problem.startswith("found character") and problem.endswith("cannot start any token"):
        char = problem.removeprefix("found character ").split(" ", 1)[0]
        return (
            f"a value cannot start with {char}, which YAML reserves: put the value in "
            "quotes"
        )
    for bracket, closing, what in (("[", "]", "flow sequence"), ("{", "}", "flow mapping")):
        if what in context and problem.startswith("expected ','"):
            return (
                f"the '{bracket}' opened{since} is not closed with '{closing}' before this "
                f"point (or an item in it needs quotes)"
            )
    if problem.startswith("found undefined alias"):
        name = problem.rsplit(" ", 1)[-1]
        name = name.strip("'")
        return f"*{name} refers to no anchor &{name} defined before it"
    if problem.startswith("found unknown escape character"):
        return (
            "an unknown escape (a backslash) in a double-quoted string: use single quotes, "
            "or write the backslash twice"
        )
    message = problem or context
    if context and problem and exc.context_mark is not None:
        message += f" ({context}{since})"
    return message


def _quote_opened(text: str, mark: yaml.Mark | None) -> tuple[int, str] | None:
    """Where (line, quotation mark) the quoted value that ends just before ``mark`` was
    opened, if on an earlier line: a quotation mark left open, closed much later by an
    apostrophe (``B's``), makes the parser stop far from the mistake."""
    if mark is None:
        return None
    last = None
    try:
        for token in yaml.scan(text):
            if token.start_mark.index >= mark.index:
                break
            if isinstance(token, yaml.ScalarToken):
                last = token
    except yaml.YAMLError:
        pass
    if last is None or last.style not in ("'", '"') or last.end_mark.index > mark.index:
        return None
    if text[last.end_mark.index : mark.index].strip() or last.start_mark.line >= mark.line:
        return None
    return last.start_mark.line + 1, str(last.style)


def _text_before_mark(exc: yaml.MarkedYAMLError, text: str) -> str:
    """The character at the error's mark if something other than indentation comes before
    it on its line (text after a closed quotation mark or bracket), else ``""``."""
    mark = exc.problem_mark
    if mark is None or mark.index >= len(text):
        return ""
    start = text.rfind("\n", 0, mark.index) + 1
    if not text[start : mark.index].strip():
        return ""  # the first thing on its line: an indentation problem
    return text[mark.index]


def load_yaml_text(text: str, file: str = "<string>", keep_going: bool = False) -> YamlDocument:
    """Parse one YAML document whose top level is a mapping; raise ScenarioError.

    With ``keep_going``, a duplicate key (and nothing worse) does not stop the
    reading: the first value is kept and the problem left in ``problems``, so
    that the caller reports it with the file's other problems in one pass.
    """
    if len(text) > MAX_BYTES:
        raise _fail(file, 0, 0, _TOO_BIG)
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        root = _compose(loader)
        if root is not None and isinstance(root, MappingNode):
            _check_size(root)
    except _Abort as exc:
        line, col = _mark(exc.mark) if exc.mark is not None else (0, 0)
        raise _fail(file, line, col, exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _mark(mark) if mark is not None else (0, 0)
        raise _fail(file, line, col, f"invalid YAML: {_plain(exc, text)}") from None
    except yaml.reader.ReaderError as exc:
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        line, col = _line_col(text, exc.position)
        message = f"invalid YAML: character #x{char:04x}: {exc.reason}"
        raise _fail(file, line, col, message) from None
    except yaml.YAMLError as exc:
        raise _fail(file, 0, 0, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _fail(file, 0, 0, _TOO_DEEP) from None
    finally:
        if loader is not None:
            loader.dispose()

    if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL and not root.value):
        raise _fail(file, 1, 1, "empty file: expected a scenario mapping")
    if not isinstance(root, MappingNode):
        line, col = _mark(root.start_mark)
        raise _fail(file, line, col, f"expected a mapping at the top level, found {_kind(root)}")
    converter = _Converter(loader, file)
    data, pos = converter.convert(root, ())
    if converter.problems and not (
        keep_going and all(p.message.startswith("duplicate key ") for p in converter.problems)
    ):
        raise ScenarioError(_tidy(converter.problems))
    return YamlDocument(file, data, pos, text=text, problems=_tidy(converter.problems))


def load_yaml_file(path: str | os.PathLike[str], keep_going: bool = False) -> YamlDocument:
    """Read a UTF-8 YAML file (see :func:`load_yaml_text`); raise ScenarioError."""
    file = os.fspath(path)
    target = Path(file)
    if target.is_dir():
        raise _fail(file, 0, 0, "is a directory, expected a YAML file")
    try:
        with target.open("rb") as f:  # at most one byte more than allowed: /dev/zero ends
            raw = f.read(MAX_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise _fail(file, 0, 0, "no such file") from None
    except PermissionError:
        raise _fail(file, 0, 0, "cannot read file: permission denied") from None
    except OSError as exc:
        raise _fail(file, 0, 0, f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise _fail(file, 0, 0, _TOO_BIG)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        col = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _fail(file, line, col, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    return load_yaml_text(text.removeprefix("\ufeff"), file, keep_going)


# ---------------------------------------------------------------- bases (extends)

MAX_BASES = 8
"""Bases one scenario may be built on, counting bases of bases (a chain this long
is already hard to follow)."""
_BASE_SUFFIXES = (".yaml", ".yml")
_NOT_A_BASE = (
    "{}: not a negosim scenario or base (no 'abstract: true', nor 'id' and 'protocol', "
    "at the top level or from its own bases)"
)


def load_scenario_file(path: str | os.PathLike[str], keep_going: bool = False) -> YamlDocument:
    """Read a scenario file (see :func:`load_yaml_file`) and the bases it ``extends``.

    ``extends: PATH`` (top level, relative to the file that writes it) names a
    base file; the base's values come first and the file's own values win:
    mappings merge key by key, lists and scalars are replaced. A base may
    extend another base (at most :data:`MAX_BASES` in a chain); a cycle is an
    error naming the chain. A base's own ``abstract`` is not inherited. Every
    value keeps the file and position where it was written, so problems point
    at the base or the case (:meth:`YamlDocument.problem`).
    """
    doc = load_yaml_file(path, keep_going=keep_going)
    try:
        return _extend(doc, [(os.path.realpath(doc.file), doc.file)])
    except ScenarioError as exc:
        if not keep_going:
            raise
        doc.base_problems = list(exc.problems)
        return doc


def _extend(doc: YamlDocument, chain: list[tuple[str, str]]) -> YamlDocument:
    """``doc`` merged onto the base it names, recursively.

    ``chain``: (real path, name as shown) of ``doc`` and the files that extend it."""
    data = doc.data
    if not isinstance(data, dict) or "extends" not in data:
        return doc
    where = doc._walk(("extends",))[1]
    line, col = (where.line, where.col) if where is not None else (1, 1)

    def fail(message: str) -> ScenarioError:
        return ScenarioError([Problem(doc.file, line, col, "extends", message)])

    text = data["extends"]
    if not isinstance(text, str) or not text.strip():
        raise fail("expected the path of a base scenario file (relative to this file)")
    if len(text) > 1000 or not text.isprintable():
        raise fail("not a usable file name")
    if not text.endswith(_BASE_SUFFIXES):
        raise fail(f"a base must be a YAML file ending in .yaml or .yml, not {text!r}")
    base_file = os.path.normpath(os.path.join(os.path.dirname(doc.file), text))
    ident = os.path.realpath(base_file)
    if any(ident == seen for seen, _ in chain):
        names = [name for _, name in reversed(chain)] + [base_file]
        raise fail("'extends' makes a cycle: " + " → ".join(names))
    if len(chain) > MAX_BASES:
        raise fail(f"too many bases in a chain (at most {MAX_BASES})")
    raw = _read_base(base_file, fail)
    abstract = raw.data.get("abstract") is True
    if not (abstract or ("id" in raw.data and ("protocol" in raw.data or "extends" in raw.data))):
        # Quote nothing of a file that is not a scenario (see compiler.loader.require_scenario).
        raise fail(_NOT_A_BASE.format(base_file))
    base = _extend(raw, [(ident, base_file), *chain])
    if not (abstract or "protocol" in base.data):  # a case on a base that gives no protocol
        raise fail(_NOT_A_BASE.format(base_file))
    assert base._root is not None and doc._root is not None
    _mark_file(base._root, base_file)
    base.data.pop("abstract", None)  # being a base is not inherited
    if isinstance(base._root.children, dict):
        base._root.children.pop("abstract", None)
    merged, root = _merge(base.data, base._root, data, doc._root)
    texts = {**base.base_texts, **({base_file: base.text} if base.text is not None else {})}
    return YamlDocument(doc.file, merged, root, (base_file, *base.bases), text=doc.text,
                        problems=doc.problems, base_texts=texts)


def _read_base(file: str, fail: Callable[[str], ScenarioError]) -> YamlDocument:
    """A base file: a regular file (never a device, pipe or directory), bounded in size."""
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise fail(f"{file}: no such file") from None
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise fail(f"{file}: not a regular file; a base must be a YAML file")
        raw = os.read(fd, MAX_BYTES + 1)
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise fail(f"{file}: {_TOO_BIG}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"{file}: not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    return load_yaml_text(text.removeprefix("\ufeff"), file)


def _mark_file(pos: _Pos, file: str) -> None:
    """Say that every value under ``pos`` not already marked was written in ``file``."""
    stack = [pos]
    while stack:
        p = stack.pop()
        if p.file is None:
            p.file = file
        kids = p.children
        if isinstance(kids, dict):
            stack.extend(kids.values())
        elif isinstance(kids, list):
            stack.extend(kids)


def _merge(base: Any, base_pos: _Pos, case: Any, case_pos: _Pos) -> tuple[Any, _Pos]:
    """The case's value over the base's: mappings key by key, anything else replaced.

    Keys keep the base's order, the case's new keys follow in its own order."""
    if not (isinstance(base, dict) and isinstance(case, dict)):
        return case, case_pos
    base_kids = base_pos.children if isinstance(base_pos.children, dict) else {}
    case_kids = case_pos.children if isinstance(case_pos.children, dict) else {}
    data: dict[str, Any] = {}
    kids: dict[str, _Pos] = {}
    for key, value in base.items():
        if key in case:
            data[key], kids[key] = _merge(value, base_kids[key], case[key], case_kids[key])
        else:
            data[key], kids[key] = value, base_kids[key]
    for key, value in case.items():
        if key not in base:
            data[key], kids[key] = value, case_kids[key]
    pos = _Pos(case_pos.line, case_pos.col, case_pos.key, kids, case_pos.text_col, case_pos.file)
    return data, pos


# ---------------------------------------------------------------- pydantic errors


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tidy(problems: list[Problem]) -> list[Problem]:
    """Drop repeats (an aliased value is checked once per use) and sort by position."""
    seen: set[tuple[int, int, str]] = set()
    unique = []
    for p in problems:
        if (p.line, p.col, p.message) not in seen:
            seen.add((p.line, p.col, p.message))
            unique.append(p)
    return sorted(unique, key=lambda p: (p.line, p.col))


def _unknown_tag(key: str, ctx: dict[str, Any]) -> str:
    """``unknown distribution 'lognormall' (did you mean 'lognormal'?); valid: ...``."""
    tag = str(ctx.get("tag", ""))
    valid = [s.strip().strip("'") for s in str(ctx.get("expected_tags", "")).split(",")]
    valid = [v for v in valid if v]
    what = "distribution" if key == "dist" else f"'{key}'"
    close = difflib.get_close_matches(tag, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {what} {tag!r}{hint}; valid: {', '.join(valid)}"


_WHAT = {
    "dict_type": "a mapping", "list_type": "a list", "string_type": "a text",
    "float_type": "a number", "float_parsing": "a number", "int_type": "a whole number",
    "bool_type": "true or false", "bool_parsing": "true or false",
}  # fmt: skip


def _found(value: Any) -> str:
    """A found value in words: ``a text 'requested'``, ``the number 3``."""
    if isinstance(value, str):
        return f"the text {_short(value)}"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value:g}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return _short(value)


def _one_per_union(errors: list[Any], doc: YamlDocument) -> list[Any]:
    """``errors`` with the type errors of one value against each member of a union
    (``states`` as a mapping, or as a list) made one: ``expected a list or a mapping
    of states, found the text 'requested'``."""
    by_path: dict[tuple[Any, ...], list[int]] = {}
    for i, err in enumerate(errors):
        if err["type"] in _WHAT:
            path = tuple(doc._walk(tuple(err["loc"]))[0])
            by_path.setdefault(path, []).append(i)
    merged: dict[int, Any] = {}
    dropped: set[int] = set()
    for path, indices in by_path.items():
        kinds = list(dict.fromkeys(_WHAT[errors[i]["type"]] for i in indices))
        if len(indices) < 2 or len(kinds) < 2:
            continue
        kinds.sort(key=lambda k: k != "a list")  # the plainer form first
        key = str(path[-1]) if path and isinstance(path[-1], str) else ""
        of = f" of {key}" if key and {"a list", "a mapping"} >= set(kinds) else ""
        first = errors[indices[0]]
        value = first.get("input")
        message = f"expected {' or '.join(kinds)}{of}, found {_found(value)}"
        merged[indices[0]] = {**first, "type": "union_types", "msg": message, "loc": path}
        dropped.update(indices[1:])
    return [merged.get(i, err) for i, err in enumerate(errors) if i not in dropped]


_PLAIN = {
    "model_type": "expected a mapping (KEY: VALUE lines)",
    "dict_type": "expected a mapping (KEY: VALUE lines)",
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}
"""Type errors said in words (pydantic says "Input should be a valid dictionary or
instance of Param")."""

_PATTERNS = {
    r"^[a-z0-9][a-z0-9_-]*$": "an id is lower-case letters, digits, '-' and '_', starting "
    "with a letter or digit",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "a name is letters, digits and '_', starting with a letter "
    "or '_'",
}
"""What the schema's patterns (:mod:`negosim.scenario.schema`) ask for, in words."""


def _plain_type(err: Any, doc: YamlDocument, loc: Loc) -> str:
    """A type or pattern error in words: ``expected text, found the number 5``; a word
    YAML reads as true/false where text is expected (``off``) says so."""
    value = err.get("input")
    if err["type"] == "string_pattern_mismatch":
        pattern = str(err.get("ctx", {}).get("pattern", ""))
        return f"{_PATTERNS[pattern]}; found {_short(value)}"
    if err["type"] == "string_type" and isinstance(value, bool):
        word = _word_at(doc, loc)
        if word is not None and word.lower() not in ("true", "false"):
            shown = "true" if value else "false"
            return (
                f"YAML reads the word {word} as {shown}, not as text: write it in quotes "
                f"('{word}')"
            )
    return f"{_PLAIN[err['type']]}, found {_found(value)}"


def _word_at(doc: YamlDocument, loc: Loc) -> str | None:
    """The word written where ``loc``'s value starts, if it is one."""
    _, pos = doc._walk(loc)
    if pos is None:
        return None
    text = doc.base_texts.get(pos.file) if pos.file else doc.text
    lines = text.splitlines() if text is not None else []
    if not 0 < pos.line <= len(lines):
        return None
    match = re.match(r"[A-Za-z]+", lines[pos.line - 1][pos.col - 1 :])
    return match[0] if match else None


def _shape_written(errors: list[Any]) -> list[Any]:
    """``errors`` without a value's errors against a union member of the other shape:
    a list of states with a wrong item is not also "not a mapping"."""
    deeper = {
        (tuple(e["loc"][:i]), part)
        for e in errors
        for i, part in enumerate(e["loc"])
        if isinstance(part, str) and "[" in part and i + 1 < len(e["loc"])
    }
    out = []
    for err in errors:
        loc = tuple(err["loc"])
        tag = loc[-1] if loc else None
        if (
            err["type"] in ("dict_type", "list_type")
            and isinstance(tag, str)
            and "[" in tag
            and any(at == loc[:-1] and other != tag for at, other in deeper)
        ):
            continue
        out.append(err)
    return out


def _not_one_of(key: str, value: Any, expected: str) -> str:
    """``unknown day 'tues' (did you mean 'tue'?); days: mon, tue, ...``."""
    valid = re.findall(r"'([^']*)'", expected)
    noun = key[:-1] if key.endswith("s") and len(key) > 3 else key
    close = difflib.get_close_matches(str(value), valid, n=1) if isinstance(value, str) else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {noun} {_short(value)}{hint}; {noun}s: {', '.join(valid)}"


def _too_few(key: str, depth: int, least: Any, value: Any) -> str:
    """``no actions: a scenario needs at least one`` (an empty mapping or list)."""
    if least == 1:
        return f"no {key}: " + (
            "a scenario needs at least one" if depth == 1 else "give at least one"
        )
    return f"{key}: give at least {least}, found {len(value)}"


def problems_from_validation_error(
    exc: pydantic.ValidationError, doc: YamlDocument
) -> list[Problem]:
    """One located Problem per pydantic error, sorted by position.

    The path is the real data path: pydantic's union/discriminator tags and
    ``[key]`` are dropped. A missing key is reported at (and with the path of)
    the enclosing mapping; an unknown key at the key itself.
    """
    problems: list[Problem] = []
    errors = _one_per_union(_shape_written(exc.errors(include_url=False)), doc)
    for err in errors:
        loc: Loc = tuple(err["loc"])
        kind, msg = err["type"], err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        disc = str(err.get("ctx", {}).get("discriminator", ""))
        key = next((str(p) for p in reversed(loc) if isinstance(p, str) and "[" not in p), "")
        if kind == "union_types":
            msg = err["msg"]
        elif kind == "literal_error" and key:
            msg = _not_one_of(key, err.get("input"), str(err.get("ctx", {}).get("expected", "")))
        elif kind == "too_short" and key and isinstance(err.get("input"), dict | list):
            msg = _too_few(key, len(loc), err.get("ctx", {}).get("min_length", 1), err["input"])
        elif kind == "missing" and loc:
            what = f"key '{loc[-1]}'" if isinstance(loc[-1], str) else f"item {loc[-1]}"
            msg = f"missing required {what}"
        elif kind == "extra_forbidden" and loc:
            msg = f"unknown key '{loc[-1]}'"
        elif kind == "union_tag_invalid" and disc.startswith("'"):
            loc = (*loc, disc.strip("'"))  # point at the tag's value
            msg = _unknown_tag(disc.strip("'"), err.get("ctx", {}))
        elif kind == "union_tag_not_found" and disc.startswith("'"):
            msg = f"missing required key {disc}"
        elif kind in _PLAIN or str(err.get("ctx", {}).get("pattern")) in _PATTERNS:
            msg = _plain_type(err, doc, loc)
        elif kind.endswith(("_type", "_parsing")) or kind in _FOUND_TYPES:
            msg += f" (found: {_short(err.get('input'))})"
        path, pos = doc._walk(loc)
        line, col = (pos.line, pos.col) if pos is not None else (1, 1)
        if (kind == "extra_forbidden" or "[key]" in loc) and pos is not None and pos.key:
            line, col = pos.key
        file = pos.file if pos is not None and pos.file else doc.file
        problems.append(Problem(file, line, col, dotted(tuple(path)), msg))
    return sort_problems(list(dict.fromkeys(problems)), doc)  # stable; no repeats


def sort_problems(problems: list[Problem], doc: YamlDocument) -> list[Problem]:
    """``problems`` in reading order: the document's own file first, then its bases
    (nearest first), each by line and column."""
    files = [doc.file, *doc.bases]
    rank = {f: i for i, f in enumerate(files)}
    return sorted(problems, key=lambda p: (rank.get(p.file, len(files)), p.line, p.col))
