"""``--set`` overrides: change a parameter or any value of a scenario file.

``NAME=VALUE`` sets the default of the parameter ``NAME``;
``dotted.path=VALUE`` replaces the value at that path of the file
(``actors.us.present.0.window=conference``). Values are read as YAML
scalars (``true``, ``0.3``, ``36h``, ``[a, b]``). Overrides are applied to the
raw data before validation, so an overridden value is checked exactly like
one written in the file. A sweep sets parameter defaults on the validated
model instead (:func:`set_param_defaults`), which validates just those.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import pydantic

from ..errors import Problem, ScenarioError, UsageError
from .schema import Param, Scenario
from .units import is_duration
from .yamlsource import dotted, load_yaml_text


def parse_set(arg: str) -> tuple[str, Any]:
    """Split ``PATH=VALUE`` and read VALUE as YAML; UsageError if malformed."""
    path, sep, text = arg.partition("=")
    path = path.strip()
    if not sep or not path:
        raise UsageError(f"--set {arg}: expected NAME=VALUE or dotted.path=VALUE")
    try:
        value = load_yaml_text(f"v: {text}" if text.strip() else "v: ''", "--set").data["v"]
    except ScenarioError as exc:
        raise UsageError(
            f"--set {arg}: cannot read the value {text!r} ({exc.problems[0].message})"
        ) from None
    return path, value


def apply_overrides(data: Any, sets: list[tuple[str, Any]]) -> Any:
    """A copy of ``data`` with each override applied; UsageError for unknown names/paths."""
    if not sets:
        return data
    data = copy.deepcopy(data)
    problems: list[Problem] = []
    for path, value in sets:
        try:
            _apply_one(data, path, value)
        except UsageError as exc:
            problems.extend(exc.problems)  # not str(exc): that adds a "<input>:0:0:" prefix
    if problems:
        raise UsageError(problems)
    return data


def set_param_defaults(model: Scenario, sets: list[tuple[str, Any]]) -> Scenario:
    """``model`` with ``NAME=VALUE`` overrides of parameter defaults applied.

    The same model as reading the file again with these ``--set`` overrides, but
    only the changed parameters are validated: nothing is parsed and the rest of
    the model is shared, not copied (a sweep point costs a compile, not a load).
    UsageError for unknown names; pydantic's ValidationError for a bad value.
    """
    params = dict(model.params)
    for name, value in sets:
        old = params.get(name)
        if old is None:
            raise UsageError(
                f"--set {name}: no parameter named {name!r}{_hint(name, list(params))}"
            )
        data = old.model_dump(by_alias=True, exclude_unset=True)
        _apply_one({"params": {name: data}}, name, value)
        try:
            params[name] = Param.model_validate(data)
        except pydantic.ValidationError as exc:
            raise ScenarioError(
                [
                    Problem("<scenario>", 0, 0, dotted(("params", name, *e["loc"])), e["msg"])
                    for e in exc.errors()
                ]  # fmt: skip
            ) from None
    return model.model_copy(update={"params": params})


def _apply_one(data: Any, path: str, value: Any) -> None:
    if "." not in path:
        params = data.get("params") if isinstance(data, dict) else None
        if not isinstance(params, dict) or path not in params:
            known = sorted(params) if isinstance(params, dict) else []
            raise UsageError(f"--set {path}: no parameter named {path!r}{_hint(path, known)}")
        if isinstance(params[path], dict):
            old = params[path].get("default")
            if (
                isinstance(old, str)
                and is_duration(old)
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                raise UsageError(
                    f"--set {path}={value}: {path} is a duration; "
                    f"write it with a unit, e.g. {path}={value}h"
                )
            params[path]["default"] = value
            return
        raise UsageError(f"--set {path}: the parameter is not a mapping with a default")
    parts = path.split(".")
    node = data
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth]) or "the top level"
        last = depth == len(parts) - 1
        if isinstance(node, dict):
            if part not in node:
                raise UsageError(
                    f"--set {path}: no key {part!r} at {here}{_hint(part, [str(k) for k in node])}"
                )
            if last:
                node[part] = value
            else:
                node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UsageError(
                    f"--set {path}: {here} is a list of {len(node)}; {part!r} is not an index in it"
                )
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        else:
            raise UsageError(f"--set {path}: {here} is a single value, not a mapping or list")


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    if not close:  # a shortened name (`us_decides` for `us_decides_on_formal_request`)
        close = [k for k in known if k.startswith(name) or name.startswith(k)][:3]
    if close:
        return f" (did you mean {', '.join(close)}?)"
    if known:
        shown = ", ".join(sorted(known)[:12])
        return f" (have: {shown}{', …' if len(known) > 12 else ''})"
    return ""
