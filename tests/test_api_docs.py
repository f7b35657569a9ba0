"""docs/api.md is generated from the docstrings, current, and documents exactly ``__all__``;
the examples in the API's docstrings run."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import negosim

REPO = Path(__file__).resolve().parent.parent
API_MD = REPO / "docs" / "api.md"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_docs", REPO / "scripts" / "api_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("api_docs", module)
    spec.loader.exec_module(module)
    return module


def test_the_committed_api_reference_is_current() -> None:
    assert API_MD.read_text(encoding="utf-8") == _script().markdown(), (
        "docs/api.md is stale: run python scripts/api_docs.py > docs/api.md"
    )


def test_all_is_exactly_the_documented_set() -> None:
    documented = _script().documented()
    assert len(documented) == len(set(documented))
    assert sorted(negosim.__all__) == sorted(documented)
    text = API_MD.read_text(encoding="utf-8")
    for name in negosim.__all__:
        assert f"`{name}`" in text, name
    assert sorted(dir(negosim)) == sorted(negosim.__all__)


def test_every_public_name_has_a_docstring_and_the_api_an_example() -> None:
    for name in negosim.__all__:
        if name != "__version__":
            assert (getattr(negosim, name).__doc__ or "").strip(), name
    for name in ("load", "load_string", "simulate", "compare", "sweep", "trace", "explain",
                 "Estimate", "Comparison", "Sweep", "Trace", "CompiledScenario"):  # fmt: skip
        assert ">>> " in getattr(negosim, name).__doc__, name


def test_py_typed_is_shipped() -> None:
    assert (REPO / "negosim" / "py.typed").exists()
    assert '"py.typed"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def _doctests() -> list[doctest.DocTest]:
    pytest.importorskip("pandas")
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests: list[doctest.DocTest] = []
    for name in ("api", "runs.results", "runs.compare", "runs.sweepresult", "compiler.tables"):
        module = sys.modules.get(f"negosim.{name}") or importlib.import_module(f"negosim.{name}")
        for t in finder.find(module):
            if (
                t.examples
                and t.name.split(".")[-1] in _CHECKED
                or t.name.split(".")[-2] in _CHECKED
            ):
                tests.append(t)
    return tests


_CHECKED = {"load", "load_string", "simulate", "compare", "sweep", "trace", "explain",
            "Estimate", "Comparison", "Sweep", "Trace", "CompiledScenario"}  # fmt: skip


def test_docstring_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = _doctests()
    assert len(tests) >= 12
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, result
