"""Every public module, function, class, method and property has a docstring.

Walks every module under ``negosim`` (skipping only names that start with
``_``) and checks: the module's own docstring; each public module-level
function and class *defined* there (``__module__`` is the module, so
re-exports are checked once, where they live); and each public method,
classmethod, staticmethod and property written in such a class's body (not
inherited, not dunder). Dataclass and pydantic fields need none. One failure
lists every offender as ``module.qualname``, so the list is the to-do.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import negosim


def _modules() -> Iterator[ModuleType]:
    yield negosim
    for info in pkgutil.walk_packages(negosim.__path__, prefix="negosim."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        yield importlib.import_module(info.name)


def _public(name: str) -> bool:
    return not name.startswith("_")


def _own_doc(obj: Any) -> str:
    """The docstring written on ``obj`` itself, not one inherited or generated."""
    if inspect.isclass(obj):
        # A class's __doc__ is in its own __dict__ (None when not written);
        # inspect.getdoc would fall back to a base class's.
        doc = obj.__dict__.get("__doc__") or ""
        if dataclasses.is_dataclass(obj) and doc.startswith(obj.__name__ + "("):
            # @dataclass fills a missing docstring with the signature.
            try:
                generated = obj.__name__ + str(inspect.signature(obj)).replace(" -> None", "")
            except (TypeError, ValueError):
                generated = None
            if doc == generated:
                return ""
        return doc.strip()
    return (getattr(obj, "__doc__", None) or "").strip()


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties written in ``cls``'s body."""
    for name, value in vars(cls).items():
        if not _public(name):
            continue
        # Pydantic keeps its decorated validators behind a proxy.
        value = getattr(value, "wrapped", value)
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if isinstance(value, property):
            value = value.fget
        elif isinstance(value, functools.cached_property):
            value = value.func
        if inspect.isfunction(value):
            yield name, value


def _missing() -> list[str]:
    missing: list[str] = []
    for module in _modules():
        if not _own_doc(module):
            missing.append(module.__name__)
        for name, obj in vars(module).items():
            if not _public(name) or getattr(obj, "__module__", None) != module.__name__:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not _own_doc(obj):
                missing.append(f"{module.__name__}.{obj.__qualname__}")
            if inspect.isclass(obj):
                for member, func in _members(obj):
                    if not _own_doc(func):
                        missing.append(f"{module.__name__}.{obj.__qualname__}.{member}")
    return sorted(set(missing))


def test_every_public_name_has_a_docstring() -> None:
    missing = _missing()
    assert not missing, f"{len(missing)} without a docstring:\n  " + "\n  ".join(missing)
