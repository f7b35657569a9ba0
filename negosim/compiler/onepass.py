"""Every problem of a file in one pass, each located where it was written.

The schema refuses a file at its first wrong value in each place; the compiler
needs a whole, valid model. To report everything at once, this module sets
aside what the schema refused as narrowly as it can: a wrong optional value is
left out, a wrong required one gets a stand-in (a fixed delay for an unknown
distribution, the first state for a missing ``initial``, UTC for an unknown
zone...), whole items or sections only when nothing narrower works. The
compiler then checks the rest, and what it says about a stand-in is dropped
(:func:`whole_file_problems`). :func:`partial_problems` does the same for part
of a scenario (an abstract base, or a case whose base cannot be read).

It also says where each problem is: the file and line of the value, base or
case, or the ``--set`` that gave it (:func:`locate_issue`, :func:`annotate`).
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pydantic

from ..errors import ExpressionError, Problem
from ..scenario.schema import Scenario
from ..scenario.yamlsource import (
    YamlDocument,
    dotted,
    problems_from_validation_error,
)
from .compile import compile_scenario
from .expr import Name, compile_expr
from .resolve import Issue, Loc, shown_expression

_NAMED = re.compile(r"unknown (parameter|name|state|trigger|actor|window|fact|precondition) ")
"""How the messages start that name something not declared: in part of a scenario,
a name another file may declare."""


_GIVEN_BY_BASE = (
    "give a 'source' ",
    "give 'start' (and ",
    "with 'daily', give 'start' and 'end' ",
)
"""How the messages start that say a key is missing from a mapping (a parameter, a
window), which a base may give: a case's mapping is merged into its base's, key by key
(a list, such as an actor's stays, replaces the base's whole)."""


def partial_problems(doc: YamlDocument) -> list[Problem]:
    """The problems of part of a scenario (an abstract base, or a case whose base could
    not be read): what it gives is checked (unknown keys, types, ranges, expressions)
    and what it leaves out is not missing. A name it uses but does not declare may be
    declared by the file that completes it, so it is a problem only if it looks like a
    misspelling of a name this part declares ("did you mean")."""
    if not isinstance(doc.data, dict):
        return []
    problems = list(doc.problems)
    try:
        model = Scenario.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        missing = ("missing", "union_tag_not_found")
        real = [e for e in exc.errors() if e["type"] not in missing]
        if real:
            refused = pydantic.ValidationError.from_exception_data(exc.title, real)  # type: ignore[arg-type]
            problems += [key_hint(p) for p in problems_from_validation_error(refused, doc)]
        found = whole_file_problems(exc, doc)
    else:
        _, issues = compile_scenario(model)
        found = [locate_issue(doc, p, None) for p in issues]
    # The states are a list (a case replaces it whole): if this part lists them, a
    # state it names that is not in the list is unknown whatever completes it.
    listed = bool(_states_written(doc.data)) and doc.file_of(("protocol", "states")) == doc.file
    problems += [
        p
        for p in found
        if not _NAMED.match(p.message)
        or "(did you mean" in p.message
        or (listed and p.message.startswith("unknown state ") and p.file == doc.file)
    ]
    if doc.base_problems:  # an unusable 'extends' is said once, by the base problem
        # and what the base would have given is not missing: it cannot be read.
        problems = [
            p for p in problems if p.path != "extends" and not p.message.startswith(_GIVEN_BY_BASE)
        ]
    return list(dict.fromkeys(problems))


def _fields(t: Any) -> dict[str, Any]:
    """The keys a value of type ``t`` may have (by alias) and their types; {} if none."""
    t = _bare(t)
    if isinstance(t, type) and issubclass(t, pydantic.BaseModel):
        return {f.alias or name: f.annotation for name, f in t.model_fields.items()}
    out: dict[str, Any] = {}
    for member in typing.get_args(t) if typing.get_origin(t) in _UNIONS else ():
        out.update(_fields(member))  # a distribution: the keys of every kind
    return out


_UNIONS = (typing.Union, types.UnionType)


def _bare(t: Any) -> Any:
    """``t`` without Annotated and None."""
    while typing.get_origin(t) is typing.Annotated:
        t = typing.get_args(t)[0]
    if typing.get_origin(t) in _UNIONS:
        members = [m for m in typing.get_args(t) if m is not type(None)]
        if len(members) == 1:
            return _bare(members[0])
    return t


def key_hint(problem: Problem) -> Problem:
    """``unknown key 'delya'`` -> ``unknown key 'delya' (did you mean 'delay'?)``.

    The keys allowed where the unknown one was written are found by walking the
    schema along the problem's path.
    """
    prefix = "unknown key '"
    if not problem.message.startswith(prefix) or not problem.message.endswith("'"):
        return problem
    key = problem.message[len(prefix) : -1]
    t: Any = Scenario
    for part in problem.path.split(".")[:-1] if problem.path else []:
        t = _bare(t)
        origin = typing.get_origin(t)
        if origin is dict or origin is list:
            t = typing.get_args(t)[-1]
            continue
        t = _fields(t).get(part)
        if t is None:
            return problem
    allowed = sorted(_fields(t))
    if not allowed:
        return problem
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if not close:
        return problem
    message = f"{problem.message} (did you mean '{close[0]}'?)"
    return replace(problem, message=message)


# Sections that are mappings of named items: an invalid item can be left out
# and the rest of the file still checked as a whole.
_ITEM_SECTIONS = ("sources", "params", "facts", "actors", "preconditions", "actions", "events")


_QUOTED_EXPRESSION = re.compile(r" \(in (\"[^\"]*\"|'[^']*')\)$")
"""The expression a problem's message quotes at its end: ``(in "present('a') and x")``."""

_CALENDAR_CORE = (("calendar", "timezone"), ("calendar", "start"), ("calendar", "horizon"))

# Stand-ins for required values the schema refused, so that the rest of their item (or
# of the file) can still be compiled and checked. Whatever the compiler then says at
# (or inside) a stand-in, or at an item holding one, is about the stand-in and dropped.
# Keyed by (model, field); a field not listed here that is optional is left out instead.
_STAND_INS: dict[tuple[str, str], Callable[[tuple[str | int, ...], Any], Any]] = {
    ("Scenario", "id"): lambda loc, data: "x",
    ("Scenario", "title"): lambda loc, data: "x",
    ("Scenario", "calendar"): lambda loc, data: {
        "timezone": "UTC", "start": "2000-01-01 00:00", "horizon": "3650d"
    },
    ("Scenario", "actors"): lambda loc, data: {"_": {"name": "_"}},
    ("Scenario", "protocol"): lambda loc, data: {
        "states": ["_", "__"], "initial": "_", "outcomes": {"success": ["__"]},
        "transitions": [{"trigger": "_", "source": "_", "dest": "__"}],
    },
    ("Scenario", "actions"): lambda loc, data: {
        "_": {"actor": "_", "delay": {"dist": "fixed", "value": 0.0}}
    },
    ("Calendar", "timezone"): lambda loc, data: "UTC",
    ("Calendar", "start"): lambda loc, data: "2000-01-01 00:00",
    ("Calendar", "horizon"): lambda loc, data: "1d",
    ("Actor", "name"): lambda loc, data: str(loc[-2]),
    ("Action", "actor"): lambda loc, data: "_",
    ("Action", "delay"): lambda loc, data: {"dist": "fixed", "value": 0.0},
    ("Precondition", "text"): lambda loc, data: "-",
    ("Precondition", "insisted_by"): lambda loc, data: "_",
    ("Precondition", "holds"): lambda loc, data: "true",
    ("SourceRef", "title"): lambda loc, data: "-",
    # The protocol: stand-ins that keep its other states and triggers checkable.
    ("Protocol", "states"): lambda loc, data: _states_used(data),
    ("Protocol", "initial"): lambda loc, data: (_states_written(data) or ["_"])[0],
    ("Protocol", "transitions"): lambda loc, data: [
        {"trigger": "_", "source": "_", "dest": "_"}
    ],
    ("Protocol", "outcomes"): lambda loc, data: {"success": ["_"]},
    ("Transition", "trigger"): lambda loc, data: "_",
    ("Transition", "source"): lambda loc, data: _initial_written(data),
    ("Transition", "dest"): lambda loc, data: _source_of(data, loc),
}  # fmt: skip


def _protocol_of(data: Any) -> dict[str, Any]:
    protocol = data.get("protocol") if isinstance(data, dict) else None
    return protocol if isinstance(protocol, dict) else {}


def _states_written(data: Any) -> list[str]:
    """The state names the protocol lists (as a list or a mapping), if it lists any."""
    states = _protocol_of(data).get("states")
    if isinstance(states, dict | list):
        return [s for s in states if isinstance(s, str)]
    return []


def _states_used(data: Any) -> list[str]:
    """Stand-in states: what ``states`` says if it is one name, and every state the rest
    of the protocol names (so that only the names used elsewhere can be unknown)."""
    protocol = _protocol_of(data)
    names: list[Any] = [protocol.get("states"), protocol.get("initial")]
    for t in protocol.get("transitions") or []:
        if isinstance(t, dict):
            source = t.get("source")
            names += [*(source if isinstance(source, list) else [source]), t.get("dest")]
    outcomes = protocol.get("outcomes")
    if isinstance(outcomes, dict):
        for kind in ("success", "failure"):
            listed = outcomes.get(kind)
            names += listed if isinstance(listed, list) else []
    used = [n for n in names if isinstance(n, str) and n.isidentifier()]
    return list(dict.fromkeys(used)) or ["_"]


def _initial_written(data: Any) -> str:
    initial = _protocol_of(data).get("initial")
    return initial if isinstance(initial, str) else "_"


def _source_of(data: Any, loc: tuple[str | int, ...]) -> str:
    """A transition's stand-in dest: its own source (a loop leaves the rest intact)."""
    try:
        source = _get(data, loc[:-1]).get("source")
    except (KeyError, IndexError, TypeError, AttributeError):
        return "_"
    if isinstance(source, list):
        source = source[0] if source else None
    return source if isinstance(source, str) else "_"


def _step_into(t: Any, node: Any) -> Any:
    """``t`` without Annotated/None; of a union, the member ``node`` is written as."""
    t = _bare(t)
    if typing.get_origin(t) not in _UNIONS:
        return t
    for member in typing.get_args(t):
        member = _bare(member)
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, pydantic.BaseModel):
            tag = member.model_fields.get("dist")  # a distribution: the kind written
            if isinstance(node, dict) and (
                tag is None or node.get("dist") in typing.get_args(tag.annotation)
            ):
                return member
        elif (origin is list and isinstance(node, list)) or (
            origin is dict and isinstance(node, dict)
        ):
            return member
    return None


def _fields_on(path: tuple[str | int, ...], data: Any) -> list[tuple[int, str, str, bool]]:
    """The model fields ``path`` goes through, outermost first: (how many parts of
    ``path`` lead to it, model name, field alias, whether it is required)."""
    out: list[tuple[int, str, str, bool]] = []
    t: Any = Scenario
    node = data
    for depth, part in enumerate(path, 1):
        t = _step_into(t, node)
        origin = typing.get_origin(t)
        if isinstance(t, type) and issubclass(t, pydantic.BaseModel):
            fields = {f.alias or name: f for name, f in t.model_fields.items()}
            field = fields.get(str(part))
            if field is None:
                break
            out.append((depth, t.__name__, str(part), field.is_required()))
            t = field.annotation
        elif origin is dict or origin is list:
            t = typing.get_args(t)[-1]
        else:
            break
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[str | int, ...]:
    """The data path of a pydantic error location: its union tags and ``[key]`` dropped."""
    path: list[str | int] = []
    for part in loc:
        key = isinstance(data, dict) and isinstance(part, str) and part in data
        index = isinstance(data, list) and type(part) is int and 0 <= part < len(data)
        if key or index:
            path.append(part)
            data = data[part]
    return tuple(path)


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


_NOT_WITH = {
    "group": ("start", "end", "duration", "daily", "days"),
    "daily": ("duration",),
}
"""The keys a window of each form refuses (see :class:`negosim.scenario.schema.Window`)."""


def _window_form(node: Any) -> str | None:
    if not isinstance(node, dict):
        return None
    return "group" if "group" in node else "daily" if "daily" in node else None


class _Unrepairable(Exception):
    """A schema problem that leaves nothing sound to compile around it."""


def _item_of(path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """The named item ``path`` lies in (``("actions", "meet")``, a window), if any."""
    if len(path) >= 2 and path[0] in _ITEM_SECTIONS:
        return path[:2]
    if len(path) >= 3 and path[:2] == ("calendar", "windows"):
        return path[:3]
    return None


def _repair(data: dict[str, Any], err: Any, repaired: set[tuple[str | int, ...]],
            pruned: set[tuple[str | int, ...]]) -> None:  # fmt: skip
    """Neutralise one schema problem in ``data`` (changed in place), as finely as the
    schema allows: leave out an unknown key or an optional value, put a stand-in for a
    required one, or, failing that, leave out the named item it lies in. ``repaired``
    and ``pruned`` collect what was changed. _Unrepairable if none of that is sound."""
    loc = tuple(err["loc"])
    path = _data_path(loc, data)
    item = _item_of(path)
    if err["type"] == "extra_forbidden" and len(path) == len(loc):
        parent = _get(data, path[:-1])
        if isinstance(parent, dict):
            parent.pop(path[-1], None)  # nothing reads an unknown key: nothing to drop
            return
    if err["type"] == "missing" and isinstance(loc[-1], str):
        path = (*path, loc[-1])
    if True:
        for depth, model, key, required in reversed(_fields_on(path, data)):
            if item is not None and depth <= len(item):
                break  # never repair above the item: leave the item out instead
            where = path[:depth]
            if where in repaired:
                break  # repaired already and still wrong: give up on finer repairs
            parent = _get(data, where[:-1])
            if not isinstance(parent, dict):
                break
            stand_in = _STAND_INS.get((model, key))
            if stand_in is not None:
                parent[key] = stand_in(where, data)
            elif not required:
                parent.pop(key, None)
            else:
                continue
            repaired.add(where)
            if model == "Calendar":
                repaired.update(_CALENDAR_CORE)  # times are read against each other
            return
    if item is not None and path == item and item[0] == "calendar":
        node = _get(data, item)
        form = _window_form(node)
        extra = [k for k in _NOT_WITH[form] if k in node] if form is not None else []
        if extra and (*item, extra[0]) not in repaired:
            for key in extra:  # a key that does not go with the window's form: the rest
                node.pop(key)  # of the window is still checked
                repaired.add((*item, key))
            return
    if item is not None:
        if path == item and item[0] == "params" and isinstance(_get(data, item), dict):
            node = _get(data, item)
            noted = (*item, "assumption")
            if not (node.get("source") or node.get("assumption")) and noted not in repaired:
                # A parameter without provenance: a stand-in note, so that the rest of it
                # (its default against its range) is still checked. Marked at the note
                # alone, which nothing else reads: what is said of the default stays.
                node["assumption"] = "-"
                repaired.add(noted)
                return
        items = _get(data, item[:-1])
        if isinstance(items, dict):
            items.pop(item[-1], None)
            pruned.add(item)
            return
    raise _Unrepairable


def _repaired(doc: YamlDocument, exc: pydantic.ValidationError) -> tuple[
    Scenario, set[tuple[str | int, ...]], set[tuple[str | int, ...]]
] | None:  # fmt: skip
    """The file with every schema problem neutralised (see :func:`_repair`), validated;
    with the paths repaired and the items left out. None if that cannot be done."""
    data = copy.deepcopy(doc.data)
    repaired: set[tuple[str | int, ...]] = set()
    pruned: set[tuple[str | int, ...]] = set()
    errors = exc.errors()
    for _ in range(8):  # a repair can uncover another problem (a rule across fields)
        try:
            seen: set[tuple[Any, ...]] = set()
            for err in errors:
                at = (
                    _data_path(tuple(err["loc"]), data),
                    err["type"] == "missing" and err["loc"][-1],
                )
                if at in seen:
                    continue  # one value wrong against each member of a union: repaired once
                seen.add(at)
                _repair(data, err, repaired, pruned)
        except (_Unrepairable, KeyError, IndexError, TypeError):
            return None
        try:
            return Scenario.model_validate(data), repaired, pruned
        except pydantic.ValidationError as again:
            errors = again.errors()
    return None


def _under(loc: tuple[str | int, ...], paths: set[tuple[str | int, ...]]) -> bool:
    """Whether ``loc`` is at or inside one of ``paths``, or is an item (or part of one)
    that holds one: ``actions.meet`` holds ``actions.meet.delay``, ``actions`` does not."""
    return any(loc[: len(p)] == p or (len(loc) >= 2 and p[: len(loc)] == loc) for p in paths)


def whole_file_problems(
    exc: pydantic.ValidationError, doc: YamlDocument, sets: list[tuple[str, Any]] | None = None
) -> list[Problem]:
    """Reference and expression problems of the file, around the problems the schema found.

    So that one run reports everything: each schema problem is neutralised as
    finely as can be (:func:`_repaired`: an unknown key or a wrong optional value
    left out, a wrong required one replaced by a stand-in, else the named item
    left out), and the result is compiled. What the compiler then says about a
    stand-in, or about an item that holds one, is dropped; so are problems that
    only mention a left-out item (e.g. "unknown precondition 'x'" when 'x' itself
    was invalid): they would be noise, and so are the messages a stand-in makes
    meaningless wherever they are (:func:`_moot`: every window is "unknown" with a
    stand-in calendar). If nothing sound is left to compile after all, the
    expressions are still checked one by one.
    """
    if not isinstance(doc.data, dict):
        return []
    fixed = _repaired(doc, exc)
    if fixed is None:
        return _expression_problems(doc, exc)
    model, repaired, pruned = fixed
    _, problems = compile_scenario(model)
    gone = {f"'{item[-1]}'" for item in pruned}
    moot = _moot(repaired)
    found = [
        locate_issue(doc, p, sets)
        for p in problems
        if not _under(tuple(p.loc), repaired)
        and not any(g in _QUOTED_EXPRESSION.sub("", p.message) for g in gone)
        and not p.message.startswith(moot)
    ]
    if not pruned:
        return found

    # The expressions of the left-out items are checked on their own: a misspelt name
    # in a guard is reported with the problem that left its item out.
    def left_out(path: str) -> bool:
        parts = tuple(path.split("."))
        return any(parts[: len(item)] == item for item in pruned)

    alone = _expression_problems(doc, exc)
    # An unknown name is told against every name the file declares, the left-out
    # items' too: 'alpho' is most likely the actor 'alpha' whose key was misspelt.
    declared_too = {(p.path, p.line, p.col): p for p in alone if p.message.startswith("unknown ")}
    found = [
        declared_too.get((p.path, p.line, p.col), p) if p.message.startswith("unknown ") else p
        for p in found
    ]
    return found + [p for p in alone if left_out(p.path)]


def _moot(repaired: set[tuple[str | int, ...]]) -> tuple[str, ...]:
    """How the messages start that a stand-in makes meaningless wherever they are: with
    a stand-in calendar every window is "unknown", with a stand-in protocol every
    state and trigger, with a stand-in transition the reachability of the outcomes."""
    moot: list[str] = []
    if ("calendar",) in repaired:
        moot.append("unknown window ")
    if ("actors",) in repaired:
        moot.append("unknown actor ")
    if ("protocol",) in repaired:
        moot += ["unknown state ", "unknown trigger ", "trigger '"]
    transitions = [p for p in repaired if p[:2] == ("protocol", "transitions")]
    if transitions:
        moot.append("no transition reaches ")
    if any(len(p) < 4 or p[3] == "trigger" for p in transitions):
        moot += ["unknown trigger ", "trigger '"]
    if ("protocol", "initial") in repaired or ("protocol", "states") in repaired:
        moot.append("no transition reaches ")
    return tuple(moot)


_FACT_TYPES = {"bool": "bool", "number": "number", "enum": "str"}


def _expression_problems(doc: YamlDocument, exc: pydantic.ValidationError) -> list[Problem]:
    """The problems of each expression on its own, when the file as a whole cannot be compiled.

    When a schema problem leaves nothing sound to compile, a misspelt name in a
    guard can still be found and reported in the same pass: each expression is
    compiled against the names the file declares (facts, parameters, actors,
    windows), as far as they can be read.
    """
    data = doc.data
    if not isinstance(data, dict):
        return []

    def items(section: Any) -> dict[str, Any]:
        return section if isinstance(section, dict) else {}

    names: dict[str, Name] = {}
    for fid, fact in items(data.get("facts")).items():
        kind = _FACT_TYPES.get(str(fact.get("type"))) if isinstance(fact, dict) else None
        if kind is None:
            return []  # an unreadable fact: its uses cannot be judged
        values = fact.get("values")
        enum = tuple(str(v) for v in values) if kind == "str" and isinstance(values, list) else None
        names[fid] = Name(len(names), kind, enum)
    for pid in items(data.get("params")):
        names.setdefault(pid, Name(len(names), "number"))
    calendar = data.get("calendar")
    for wid in items(calendar.get("windows") if isinstance(calendar, dict) else None):
        names[f"window:{wid}"] = Name(len(names), "bool")
    for aid in items(data.get("actors")):
        names[f"present:{aid}"] = Name(len(names), "bool")
    for aid in items(data.get("actors")):
        names[f"available:{aid}"] = Name(len(names), "bool")
    found: list[tuple[Loc, Any, str]] = []
    for pid, pre in items(data.get("preconditions")).items():
        found.append((("preconditions", pid, "holds"), items(pre).get("holds"), "bool"))
    for section in ("actions", "events"):
        for aid, act in items(data.get(section)).items():
            found.append(((section, aid, "guard"), items(act).get("guard"), "bool"))
            if section == "events":
                found.append(((section, aid, "when"), items(act).get("when"), "bool"))
            for oid, opt in items(items(act).get("options")).items():
                weight = items(opt).get("weight")
                found.append(((section, aid, "options", oid, "weight"), weight, "number"))
    schema_locs = {tuple(str(x) for x in err["loc"][:3]) for err in exc.errors()}
    problems = []
    for loc, text, expect in found:
        if not isinstance(text, str) or tuple(str(x) for x in loc[:3]) in schema_locs:
            continue
        try:
            compile_expr(text, names, expect)
        except ExpressionError as err:
            for one in (err, *err.others):
                message = f"{one.message} (in {shown_expression(text)})"
                problems.append(doc.problem(loc, message, one.offset))
    return problems


def set_given(path: str, sets: list[tuple[str, Any]] | None) -> str | None:
    """``--set NAME=VALUE`` if the value at ``path`` (or around it) was given with --set
    (the last one that did, as it wins), else None."""
    for given, value in reversed(sets or []):
        full = given if "." in given else f"params.{given}.default"
        if path == full or path.startswith(full + "."):
            text = _set_text(value)
            return f"--set {given}" + (f"={text}" if text is not None else "")
    return None


def _set_text(value: Any) -> str | None:
    """A --set value as it was most likely typed, if it is a short single word."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float | str):
        text = str(value)
    else:
        return None
    return text if _SET_WORD.fullmatch(text) else None


_SET_WORD = re.compile(r"[^\s:,()=]{1,40}")
"""A value shown after ``--set NAME=``: one short word (no spaces, colons or parentheses,
which would make the line ambiguous, also for :func:`negosim.api` which rewrites it)."""


def locate_issue(doc: YamlDocument, issue: Issue, sets: list[tuple[str, Any]] | None) -> Problem:
    """``issue`` located in ``doc``; a value its message names (``issue.refer``, e.g. the
    bound a default breaks) gets where it is written: ``(params.p.high, base.yaml:12:11)``,
    or the --set that gave it."""
    message = issue.message
    if issue.refer is not None:
        path = dotted(issue.refer)
        where = set_given(path, sets)
        if where is None:
            line, col = doc.locate(issue.refer)
            where = f"{doc.file_of(issue.refer)}:{line}:{col}"
        message = message.replace(f"({path})", f"({path}, {where})", 1)
    return doc.problem(issue.loc, message, issue.offset, at_key=issue.at_key)


def annotate(problems: list[Problem], sets: list[tuple[str, Any]] | None) -> list[Problem]:
    """Locate the problems with a value given with --set at that --set, not in the file:
    ``--set p_yes=2: params.p_yes.default: must be a probability (0 to 1), found 2``."""
    if not sets:
        return problems
    out = []
    for prob in problems:
        given = set_given(prob.path, sets)
        if given is not None:
            prob = Problem(given, 0, 0, prob.path, prob.message)
        out.append(prob)
    return out
