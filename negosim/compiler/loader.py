"""From a file name to a compiled scenario: read, override, validate, compile.

This is the one place input is checked. Problems from every stage are
reported together where possible: YAML problems stop early (there is no data
to check); schema problems are all reported at once, with the whole-file
problems (references, expressions, calendar) of the rest of the file, each
schema problem being set aside as narrowly as the schema allows
(:func:`whole_file_problems`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pydantic

from ..errors import Problem, ScenarioError
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
from .lints import lint
from .onepass import (
    annotate,
    key_hint,
    locate_issue,
    partial_problems,
    set_given,
    whole_file_problems,
)
from .parameters import ORIGIN_FIELDS, Origin, Parameter
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
    if doc.base_problems:  # the base is unreadable: what the file's own part shows
        raise ScenarioError(sort_problems(doc.base_problems + partial_problems(doc), doc))
    refuse_abstract(doc)
    refuse_unresolved_base(doc)
    require_scenario(doc)
    if sets:
        doc.data = apply_overrides(doc.data, sets)
    early = list(doc.problems)  # duplicate keys: reported with everything else
    try:
        model = Scenario.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        problems = early + [key_hint(p) for p in problems_from_validation_error(exc, doc)]
        problems += whole_file_problems(exc, doc, sets)
        raise ScenarioError(annotate(sort_problems(problems, doc), sets)) from None
    if early:
        _, issues = compile_scenario(model)
        problems = early + [locate_issue(doc, p, sets) for p in issues]
        raise ScenarioError(annotate(sort_problems(problems, doc), sets))
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
    problems = doc.base_problems + partial_problems(doc)
    if problems:
        raise ScenarioError(sort_problems(problems, doc))


SCENARIO_MARKERS = ("id", "protocol")
"""Top-level keys every scenario has: a file without them is not a scenario at all."""

_SCENARIO_KEYS = ("id", "title", "calendar", "actors", "protocol", "actions")
"""A file with two of these is a scenario, if an incomplete one (its missing keys are
reported with its other problems); with fewer it is something else."""


def require_scenario(doc: YamlDocument) -> None:
    """ScenarioError (one line) if ``doc`` is not a negosim scenario.

    A file that is not a scenario (``/etc/passwd``, a sweep file named by
    mistake) is refused with one line that names no key and quotes no text of
    it: its lines would otherwise be echoed back in "unknown key" messages.
    """
    data = doc.data
    missing = [k for k in SCENARIO_MARKERS if not (isinstance(data, dict) and k in data)]
    if missing and isinstance(data, dict) and sum(k in data for k in _SCENARIO_KEYS) >= 2:
        return  # a scenario without its id (or protocol): said with its other problems
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
    return annotate(found, sets)


def compile_model(
    model: Scenario, doc: YamlDocument | None = None, sets: list[tuple[str, Any]] | None = None
) -> CompiledScenario:
    """Compile an already validated model; ScenarioError (located if ``doc``) if inconsistent."""
    compiled, problems = compile_scenario(model)
    if compiled is None:
        if doc is None:
            located = [Problem("<scenario>", 0, 0, dotted(p.loc), p.message) for p in problems]
        else:
            located = sort_problems([locate_issue(doc, p, sets) for p in problems], doc)
        raise ScenarioError(annotate(located, sets))
    if doc is not None:  # say where each parameter's values are written (case or base)
        declared = tuple(_declared(p, doc, sets) for p in compiled.parameters)
        compiled = replace(compiled, parameters=declared)
    return compiled


def _declared(p: Parameter, doc: YamlDocument, sets: list[tuple[str, Any]] | None) -> Parameter:
    """``p`` with the file and line where its default is written (the parameter's own
    line if the same file declares it, else the line of ``default`` in the case or
    base), and where each of its other values is written (a --set says so)."""
    loc: tuple[str, ...] = ("params", p.name)
    file = doc.file_of((*loc, "default"))
    line = doc.locate_key(loc if doc.file_of(loc) == file else (*loc, "default"))[0]
    params = doc.data.get("params") if isinstance(doc.data, dict) else None
    written = params.get(p.name) if isinstance(params, dict) else None
    origins = []
    for key in ORIGIN_FIELDS:
        if isinstance(written, dict) and key in written:
            given = set_given(dotted((*loc, key)), sets)
            if given is not None:
                origins.append(Origin(key, given, None))
            else:
                at = (*loc, key)
                origins.append(Origin(key, doc.file_of(at), doc.locate_key(at)[0]))
    return replace(p, file=file, line=line, origins=tuple(origins))


def validate(path: str | os.PathLike[str], warnings: bool = False) -> list[Problem]:
    """Every problem in ``path`` (empty if the file is valid); with ``warnings``, its lints too."""
    try:
        compiled = load(path)
    except ScenarioError as exc:
        return exc.problems
    return list(compiled.warnings) if warnings else []

