"""The scenario library of one server: the files of ``--scenarios DIR`` and uploads.

A case is named by an id the server made (the file's stem, or ``up-N`` for an
upload), never by a path: a request names an id, the id is looked up in this
table, and only the table's own paths are opened. No request reaches the file
system outside the scenario directory, whatever it says.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from ..compiler.loader import compile_model, validate_document
from ..compiler.tables import CompiledScenario
from ..errors import Problem, ScenarioError
from ..scenario.yamlsource import load_scenario_file, load_yaml_text
from .store import Store

CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
"""The ids a case may have (a file stem or ``up-N``): no separators, no leading dot."""

MAX_UPLOAD = 512 * 1024
"""Bytes of an uploaded scenario file."""


@dataclass
class Case:
    """One case of the library: where it comes from and, once loaded, its compiled form."""

    id: str
    path: Path | None  # a file of the scenario directory, or None for an upload
    text: str | None  # an upload's YAML text
    filename: str
    cs: CompiledScenario | None = None
    problems: list[Problem] | None = None

    def source(self) -> dict[str, Any]:
        """What a worker process needs to load it again (a path or the text)."""
        if self.path is not None:
            return {"path": str(self.path)}
        return {"text": self.text, "filename": self.filename}


def load_source(source: dict[str, Any], sets: list[tuple[str, Any]] | None = None
                ) -> CompiledScenario:  # fmt: skip
    """Load a case from :meth:`Case.source` (in a worker process, or here)."""
    pairs = list(sets or [])
    if "path" in source:
        doc = load_scenario_file(source["path"])  # with the bases it extends
    else:
        doc = load_yaml_text(source["text"], source.get("filename") or "<upload>")
    model, doc = validate_document(doc, pairs)
    cs = compile_model(model, doc, pairs)
    if "path" in source:
        return replace(cs, source=source["path"], sets=tuple(pairs))
    return replace(cs, source_text=source["text"], sets=tuple(pairs))


def check_upload(text: str, filename: str) -> tuple[CompiledScenario | None, list[Problem]]:
    """Validate an uploaded scenario as ``negosim validate`` does: (scenario, problems)."""
    try:
        return load_source({"text": text, "filename": filename}), []
    except ScenarioError as exc:
        return None, exc.problems


class Library:
    """The cases a server offers: the scenario directory's files, then the uploads."""

    def __init__(self, directory: str | Path, store: Store):
        self.dir = Path(directory).resolve()
        self.store = store
        self._lock = threading.Lock()
        self._cases: dict[str, Case] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read the directory listing and the uploads again (new files appear)."""
        found: dict[str, Case] = {}
        if self.dir.is_dir():
            for path in sorted(self.dir.iterdir()):
                if path.suffix not in (".yaml", ".yml") or not path.is_file():
                    continue
                if path.resolve().parent != self.dir or not CASE_ID.match(path.stem):
                    continue  # a symlink out of the directory, or an odd name: not offered
                found[path.stem] = Case(path.stem, path, None, path.name)
        for row in self.store.all("SELECT case_id, filename, text FROM uploads ORDER BY id"):
            found[row["case_id"]] = Case(row["case_id"], None, row["text"], row["filename"])
        with self._lock:
            for cid, case in found.items():
                old = self._cases.get(cid)
                if old is not None and old.path == case.path and old.text == case.text:
                    found[cid] = old  # keep what is already compiled
            self._cases = found

    def ids(self) -> list[str]:
        """The ids of the cases on offer, in order."""
        with self._lock:
            return list(self._cases)

    def get(self, case_id: str) -> Case | None:
        """The case with this id, compiled (problems kept if it does not load); None if unknown."""
        if not CASE_ID.match(case_id or ""):
            return None
        with self._lock:
            case = self._cases.get(case_id)
        if case is None:
            return None
        if case.cs is None and case.problems is None:
            try:
                case.cs = load_source(case.source())
            except ScenarioError as exc:
                case.problems = exc.problems
        return case

    def add_upload(self, filename: str, text: str) -> str:
        """Store a validated upload; return its case id."""
        with self.store.tx() as db:
            n = db.execute("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM uploads").fetchone()["n"]
            case_id = f"up-{n}"
            db.execute(
                "INSERT INTO uploads (case_id, filename, text, created) VALUES (?, ?, ?, "
                "strftime('%s','now'))",
                (case_id, filename, text),
            )
        self.refresh()
        return case_id

    def resolution(self, case_id: str) -> dict[str, Any] | None:
        """What really happened, from ``resolutions/CASE.yaml`` beside the scenarios.

        The file is looked for in ``DIR/resolutions/`` and ``DIR/../resolutions/``
        under the case's own id (never a name from a request). It needs ``met``
        (true or false) and may give ``date`` (the day it was held, YYYY-MM-DD) and
        ``note``. A case without one, or with one that does not read, has none.
        """
        if not CASE_ID.match(case_id) or case_id not in self.ids():
            return None
        names = [case_id]  # the file's name, and the scenario's id (how resolutions are named)
        case = self.get(case_id)
        if case is not None and case.cs is not None and CASE_ID.match(case.cs.id):
            names.append(case.cs.id)
        folders = (self.dir / "resolutions", self.dir.parent / "resolutions")
        for folder, name in ((f, n) for f in folders for n in names):
            path = folder / f"{name}.yaml"
            try:
                if not path.is_file() or path.stat().st_size > 64 * 1024:
                    continue
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            if not isinstance(data, dict) or not isinstance(data.get("met"), bool):
                continue
            date = data.get("date")
            return {
                "met": data["met"],
                "date": str(date) if date is not None else None,
                "note": str(data.get("note") or "")[:2000],
            }
        return None
