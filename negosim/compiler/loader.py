"""From a file name to a compiled scenario: read, override, validate, compile.

This is the one place input is checked. Problems from every stage are
reported together where possible: YAML problems stop early (there is no data
to check), schema problems are all reported at once, and whole-file problems
(references, expressions, calendar) are all reported once the structure is
valid.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from dataclasses import replace
from typing import Any

import pydantic

from ..errors import ExpressionError, Problem, ScenarioError
from ..scenario.overrides import apply_overrides
from ..scenario.schema import Scenario
from ..scenario.yamlsource import (
    YamlDocument,
    dotted,
    load_scenario_file,
    problems_from_validation_error,
    sort_problems,
)
from .compile import compile_scenario
from .expr import Name, compile_expr
from .lints import lint
from .parameters import Parameter
from .resolve import Loc, shown_expression
from .tables import CompiledScenario


def load_model(
    path: str | os.PathLike[str], sets: list[tuple[str, Any]] | None = None
) -> tuple[Scenario, YamlDocument]:
    """Read and validate ``path`` and its bases (with ``--set`` overrides); ScenarioError
    if invalid."""
    return validate_document(load_scenario_file(path, keep_going=True), sets)


def validate_document(
    doc: YamlDocument, sets: list[tuple[str, Any]] | None = None
) -> tuple[Scenario, YamlDocument]:
    """Validate an already parsed document (with ``--set`` overrides); ScenarioError if invalid.

    An abstract base (``abstract: true``) is refused: it is not meant to be run.
    """
    refuse_abstract(doc)
    refuse_unresolved_base(doc)
    require_scenario(doc)
    if sets:
        doc.data = apply_overrides(doc.data, sets)
    early = list(doc.problems)  # duplicate keys: reported with everything else
    try:
        model = Scenario.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        problems = early + [_key_hint(p) for p in problems_from_validation_error(exc, doc)]
        problems += _whole_file_problems(exc, doc)
        raise ScenarioError(_annotate(sort_problems(problems, doc), sets)) from None
    if early:
        _, issues = compile_scenario(model)
        problems = early + [
            doc.problem(p.loc, p.message, p.offset, at_key=p.at_key) for p in issues
        ]
        raise ScenarioError(_annotate(sort_problems(problems, doc), sets))
    return model, doc


def is_abstract(doc: YamlDocument) -> bool:
    """Whether ``doc`` says ``abstract: true``: a base, not a scenario to run."""
    return isinstance(doc.data, dict) and doc.data.get("abstract") is True


def refuse_abstract(doc: YamlDocument) -> None:
    """ScenarioError (one line, at ``abstract``) if ``doc`` is an abstract base."""
    if is_abstract(doc):
        line, col = doc.locate_key(("abstract",))
        raise ScenarioError(
            [
                Problem(
                    doc.file,
                    line,
                    col,
                    "abstract",
                    "this is an abstract base (abstract: true), not a scenario to run: "
                    f"write a case with 'extends: {os.path.basename(doc.file)}' that adds "
                    "what is missing, and run that",
                )
            ]
        )


def refuse_unresolved_base(doc: YamlDocument) -> None:
    """ScenarioError if ``doc`` names a base that was not read (text, not a file)."""
    if isinstance(doc.data, dict) and "extends" in doc.data and not doc.bases:
        line, col = doc.locate(("extends",))
        raise ScenarioError(
            [
                Problem(
                    doc.file,
                    line,
                    col,
                    "extends",
                    "'extends' needs a scenario file to be relative to: load the file "
                    "(negosim.load(path)), not its text",
                )
            ]
        )


def check_base(doc: YamlDocument) -> None:
    """Validate an abstract base: every value it gives must be valid, but parts of a
    scenario may be missing (a case that extends it gives them). ScenarioError if not."""
    try:
        Scenario.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        missing = ("missing", "union_tag_not_found")
        real = [e for e in exc.errors() if e["type"] not in missing]
        if real:
            problems = problems_from_validation_error(
                pydantic.ValidationError.from_exception_data(exc.title, real),  # type: ignore[arg-type]
                doc,
            )
            if problems:
                raise ScenarioError(problems) from None


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


def _key_hint(problem: Problem) -> Problem:
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


SCENARIO_MARKERS = ("id", "protocol")
"""Top-level keys every scenario has: a file without them is not a scenario at all."""


def require_scenario(doc: YamlDocument) -> None:
    """ScenarioError (one line) if ``doc`` is not a negosim scenario.

    A file that is not a scenario (``/etc/passwd``, a sweep file named by
    mistake) is refused with one line that names no key and quotes no text of
    it: its lines would otherwise be echoed back in "unknown key" messages.
    """
    data = doc.data
    missing = [k for k in SCENARIO_MARKERS if not (isinstance(data, dict) and k in data)]
    if missing:
        raise ScenarioError(
            [
                Problem(
                    doc.file,
                    1,
                    1,
                    "",
                    "not a negosim scenario (no "
                    + " or ".join(f"'{k}'" for k in missing)
                    + " at the top level)",
                )
            ]
        )


# Sections that are mappings of named items: an invalid item can be left out
# and the rest of the file still checked as a whole.
_ITEM_SECTIONS = ("sources", "params", "facts", "actors", "preconditions", "actions", "events")


_QUOTED_EXPRESSION = re.compile(r" \(in (\"[^\"]*\"|'[^']*')\)$")
"""The expression a problem's message quotes at its end: ``(in "present('a') and x")``."""


def _whole_file_problems(exc: pydantic.ValidationError, doc: YamlDocument) -> list[Problem]:
    """Reference and expression problems in the parts of the file the schema accepted.

    So that one run reports everything: leave out each named item the schema
    rejected, validate the rest, and compile it. Problems that only mention a
    left-out item (e.g. "unknown precondition 'x'" when 'x' itself was
    invalid) are dropped, as they would be noise. If the schema's problems lie
    outside named items (calendar, protocol...), there is nothing sound to
    check and this returns nothing.
    """
    data = doc.data
    if not isinstance(data, dict):
        return []
    pruned: dict[str, set[str]] = {}
    unknown_top: set[str] = set()
    for err in exc.errors():
        loc = err["loc"]
        if len(loc) == 1 and err["type"] == "extra_forbidden":
            unknown_top.add(str(loc[0]))  # an unknown top-level key: just leave it out
            continue
        if len(loc) < 2 or loc[0] not in _ITEM_SECTIONS or not isinstance(loc[1], str):
            return _expression_problems(doc, exc)
        pruned.setdefault(str(loc[0]), set()).add(loc[1])
    rest = {k: v for k, v in data.items() if k not in unknown_top}
    for section, names in pruned.items():
        items = rest.get(section)
        if not isinstance(items, dict):
            return _expression_problems(doc, exc)
        rest[section] = {k: v for k, v in items.items() if k not in names}
    try:
        model = Scenario.model_validate(rest)
    except pydantic.ValidationError:
        # e.g. a section left empty that must not be: check what can be checked alone
        return _expression_problems(doc, exc)
    _, problems = compile_scenario(model)
    gone = {f"'{name}'" for names in pruned.values() for name in names}
    found = [
        doc.problem(p.loc, p.message, p.offset, at_key=p.at_key)
        for p in problems
        if not any(g in _QUOTED_EXPRESSION.sub("", p.message) for g in gone)
    ]
    # The expressions of the left-out items are checked on their own: a misspelt name
    # in a guard is reported with the unknown distribution of the same action.
    def left_out(path: str) -> bool:
        section, _, rest = path.partition(".")
        return rest.split(".")[0] in pruned.get(section, ())

    alone = _expression_problems(doc, exc)
    # An unknown name is told against every name the file declares, the left-out
    # items' too: 'alpho' is most likely the actor 'alpha' whose key was misspelt.
    declared_too = {(p.path, p.line, p.col): p for p in alone if p.message.startswith("unknown ")}
    found = [
        declared_too.get((p.path, p.line, p.col), p) if p.message.startswith("unknown ") else p
        for p in found
    ]
    return found + [p for p in alone if left_out(p.path)]


_FACT_TYPES = {"bool": "bool", "number": "number", "enum": "str"}


def _expression_problems(doc: YamlDocument, exc: pydantic.ValidationError) -> list[Problem]:
    """The problems of each expression on its own, when the file as a whole cannot be compiled.

    A schema problem in the calendar or the protocol leaves nothing sound to
    compile, but a misspelt name in a guard can still be found and reported in
    the same pass: each expression is compiled against the names the file
    declares (facts, parameters, actors, windows), as far as they can be read.
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


def load(
    path: str | os.PathLike[str], sets: list[tuple[str, Any]] | None = None
) -> CompiledScenario:
    """Load, validate and compile a scenario file, ready to simulate.

    >>> from negosim import load
    >>> scenario = load("scenarios/tutorial.yaml")
    """
    model, doc = load_model(path, sets)
    compiled = compile_model(model, doc, sets)
    return replace(
        compiled,
        source=os.fspath(path),
        sets=tuple(sets or ()),
        warnings=tuple(lint_problems(compiled, doc, sets)),
    )


WARNING = "warning: "
"""How a lint's message starts: ``FILE:LINE:COL: path: warning: ...``."""


def lint_problems(
    compiled: CompiledScenario, doc: YamlDocument | None, sets: list[tuple[str, Any]] | None = None
) -> list[Problem]:
    """The lints of ``compiled`` (see :mod:`negosim.compiler.lints`), located in ``doc``."""
    found = []
    for issue in lint(compiled):
        if doc is None:
            found.append(Problem("<scenario>", 0, 0, dotted(issue.loc), WARNING + issue.message))
        else:
            problem = doc.problem(issue.loc, WARNING + issue.message)
            if problem.file != doc.file and "never used" in issue.message:
                continue  # a base declares it for the cases that use it
            found.append(problem)
    found = sort_problems(found, doc) if doc is not None else found
    return _annotate(found, sets)


def compile_model(
    model: Scenario, doc: YamlDocument | None = None, sets: list[tuple[str, Any]] | None = None
) -> CompiledScenario:
    """Compile an already validated model; ScenarioError (located if ``doc``) if inconsistent."""
    compiled, problems = compile_scenario(model)
    if compiled is None:
        if doc is None:
            located = [Problem("<scenario>", 0, 0, dotted(p.loc), p.message) for p in problems]
        else:
            located = sort_problems(
                [doc.problem(p.loc, p.message, p.offset, at_key=p.at_key) for p in problems], doc
            )
        raise ScenarioError(_annotate(located, sets))
    if doc is not None:  # say where each parameter's default is written (case or base)
        declared = tuple(_declared(p, doc) for p in compiled.parameters)
        compiled = replace(compiled, parameters=declared)
    return compiled


def _declared(p: Parameter, doc: YamlDocument) -> Parameter:
    """``p`` with the file and line where its default is written: the parameter's own
    line if the same file declares it, else the line of ``default`` in the case or base."""
    loc: tuple[str, ...] = ("params", p.name)
    file = doc.file_of((*loc, "default"))
    if doc.file_of(loc) != file:
        loc = (*loc, "default")
    return replace(p, file=file, line=doc.locate_key(loc)[0])


def validate(path: str | os.PathLike[str], warnings: bool = False) -> list[Problem]:
    """Every problem in ``path`` (empty if the file is valid); with ``warnings``, its lints too."""
    try:
        compiled = load(path)
    except ScenarioError as exc:
        return exc.problems
    return list(compiled.warnings) if warnings else []


def _annotate(problems: list[Problem], sets: list[tuple[str, Any]] | None) -> list[Problem]:
    """Say which problems concern a value given with --set rather than in the file."""
    if not sets:
        return problems
    paths = {(p if "." in p else f"params.{p}.default"): p for p, _ in sets}
    out = []
    for prob in problems:
        for full, given in paths.items():
            if prob.path == full or prob.path.startswith(full + "."):
                prob = Problem(
                    prob.file,
                    prob.line,
                    prob.col,
                    prob.path,
                    f"{prob.message} (value from --set {given})",
                )
                break
        out.append(prob)
    return out
