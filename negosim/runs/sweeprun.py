"""Running a sweep: design points on a backend, rows written as they finish, resume.

The scenario file is read, validated and compiled once; each design point
binds its values to that compiled scenario as ``--set`` would set them (only
those values are checked again, and only what they change is rebuilt: see
:func:`point_scenario` and :mod:`negosim.compiler.bind`), and its replications
travel to the backend in chunks (:mod:`negosim.backends`) as the compiled
model plus the point's values. Only a
bounded number of chunks is in flight, and each point keeps just a
:class:`~negosim.results.Tally` until it is done, so memory does not grow with
the number of points or replications.

Nothing is lost: while the sweep runs, every finished point is appended to a
CSV *journal* beside the output (``NAME.partial.csv``), flushed and fsync'ed,
so a Ctrl-C or a killed process leaves a readable file. ``resume=True`` reads
the journal (a last line cut short by a kill is dropped), skips the points it
holds and runs the rest. At the end the journal's rows are sorted by point id
and written as the output, CSV or Parquet by the extension, so a resumed sweep
gives the same file as an uninterrupted one; then the journal is removed. A
manifest (``NAME.manifest.json``) records what is needed to reproduce the sweep.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..compiler.bind import bind
from ..compiler.loader import load
from ..compiler.tables import CompiledScenario
from ..errors import InputError, NegosimError, Problem, UsageError
from ..extras import require
from ..files import (
    Lock,
    check_target,
    open_nofollow,
    read_nofollow,
    refuse_symlink,
    user_path,
    write_atomic,
)
from .backends import Backend, Job, check_engine, model_key, prime, run_job_rows
from .designs import NOISE_BLOCKS, SweepSpec, block_bounds, design, point_seed, sensitivity
from .results import Tally, estimate, wilson
from .runner import Task, chunk_bounds, fold_groups

Advance = Callable[[int], None]


def paths(out: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """(output, journal, manifest) paths for ``--out``."""
    p = user_path(out)
    if p.suffix not in (".csv", ".parquet"):
        raise UsageError(f"--out {out}: the file name must end in .csv or .parquet")
    if p.suffix == ".parquet":
        require("parquet", "Parquet output")  # before any point is run
    return p, p.with_name(p.stem + ".partial.csv"), p.with_name(p.stem + ".manifest.json")


def columns(spec: SweepSpec, outcome_names: list[str]) -> list[str]:
    """The output's columns, in order."""
    return [
        "point",
        *[p.name for p in spec.params],
        "status",
        "runs",
        "held",
        "p_meeting",
        "ci95_low",
        "ci95_high",
        "median_time_held",
        *[f"n_{name}" for name in outcome_names],
        "mean_events_per_run",
        *(["held_blocks"] if has_blocks(spec) else []),
        "error",
    ]


def has_blocks(spec: SweepSpec) -> bool:
    """Sobol and Morris rows also count the meetings held in each block of replications,
    for the noise correction of the sensitivity indices (:func:`designs.sensitivity`)."""
    return spec.design in ("sobol", "morris")


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns: rows, sensitivity, manifest, and what it did.

    ``rows`` holds every point, resumed ones included, in point order;
    ``computed``, ``replications`` and ``elapsed_s`` count this invocation only.
    """

    rows: list[dict[str, Any]]
    columns: list[str]
    sensitivity: dict[str, Any] | None
    manifest: dict[str, Any]
    computed: int  # points computed by this invocation (not taken from a journal)
    replications: int  # replications run by this invocation
    elapsed_s: float
    out: Path | None = None
    resumed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)


def file_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's bytes, in hex (the manifest's record of the scenario)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _chunk_size(runs: int, points: int, workers: int, engine: str = "simpy") -> int:
    """Replications per task: one task per point when there are many points, else split
    so that every worker is busy; within the engine's :func:`chunk_bounds`."""
    least, most = chunk_bounds(engine)
    tasks_per_point = max(1, math.ceil(4 * workers / max(1, points)))
    return max(least, min(most, math.ceil(runs / tasks_per_point)))


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


JOURNAL_KEY = "sweep_key"
"""The journal's extra last column: :func:`sweep_key` of the sweep that wrote the row."""


def sweep_key(settings: dict[str, Any], scenario_sha256: str) -> str:
    """A short hash of a sweep's settings and its scenario's content: a journal row
    is only trusted by a sweep with the same key."""
    blob = json.dumps({"sweep": settings, "scenario": scenario_sha256}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class _Journal:
    """The CSV journal: one line per finished point, durable as soon as it is written.

    Its columns are the output's plus :data:`JOURNAL_KEY`. On resume every row is
    checked by ``check(row)`` (a reason to refuse it, or None) before it is trusted;
    a symlink at the journal's name is refused, never followed.
    """

    def __init__(
        self,
        path: Path,
        cols: list[str],
        key: str,
        resume: bool,
        check: Callable[[dict[str, str]], str | None],
    ):
        self.path = path
        self.cols = cols
        self.key = key
        self.rows: dict[int, dict[str, str]] = {}
        refuse_symlink(path, "partial file")
        if resume and path.exists():
            self._read(check)
        elif path.exists():
            raise UsageError(
                f"{path}: a partial sweep is there; add --resume to complete it, "
                "or delete the file to start again"
            )
        # Rewrite what was read (dropping a line cut short by a kill), then append.
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=[*cols, JOURNAL_KEY])
        w.writeheader()
        for r in self.rows.values():
            w.writerow({**r, JOURNAL_KEY: key})
        write_atomic(path, buf.getvalue())
        fd = open_nofollow(path, "partial file", os.O_WRONLY | os.O_APPEND)
        self._f = os.fdopen(fd, "a", newline="", encoding="utf-8")
        self._w = csv.DictWriter(self._f, fieldnames=[*cols, JOURNAL_KEY])

    def _refuse(self, line: int, why: str) -> UsageError:
        why += "; cannot resume (delete it to start again)"
        return UsageError([Problem(str(self.path), line, 1, "", why)])

    def _read(self, check: Callable[[dict[str, str]], str | None]) -> None:
        raw = read_nofollow(self.path, "partial file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._refuse(
                raw.count(b"\n", 0, exc.start) + 1, "not a negosim partial file (not UTF-8)"
            ) from None
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # the last line was cut short
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            if reader.fieldnames != [*self.cols, JOURNAL_KEY]:
                raise self._refuse(1, "its columns are not those of this sweep")
            for r in reader:
                line = reader.line_num
                if None in r or any(v is None for v in r.values()):
                    raise self._refuse(line, "a row with the wrong number of fields")
                if r[JOURNAL_KEY] != self.key:
                    raise self._refuse(
                        line, "a row written by a sweep with other settings or another "
                        "version of the scenario"
                    )  # fmt: skip
                why = check(r)
                if why is None and int(r["point"]) in self.rows:
                    why = f"point {r['point']} appears twice"
                if why is not None:
                    raise self._refuse(line, why)
                del r[JOURNAL_KEY]
                self.rows[int(r["point"])] = r
        except csv.Error as exc:
            raise self._refuse(reader.line_num, f"not a readable CSV file ({exc})") from None

    def _sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def write(self, row: dict[str, Any]) -> None:
        r = {c: _fmt(row.get(c)) for c in self.cols}
        self._w.writerow({**r, JOURNAL_KEY: self.key})
        self._sync()
        self.rows[int(row["point"])] = r

    def close(self) -> None:
        self._f.close()


def _write_manifest(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of an interrupted sweep; UsageError (one line) if it is not one."""
    raw = read_nofollow(path, "manifest")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise UsageError(
            f"{path}: not a negosim sweep manifest (not a JSON object); cannot resume "
            "(delete it to start again)"
        )
    return data


_INT = re.compile(r"(0|[1-9][0-9]{0,17})")


def _row_check(
    spec: SweepSpec, points: list[dict[str, float]], cols: list[str]
) -> Callable[[dict[str, str]], str | None]:
    """Why a journal row cannot be a row of this design (None if it can)."""
    counts = [c for c in cols if c.startswith("n_")]
    floats = ("p_meeting", "ci95_low", "ci95_high", "mean_events_per_run")

    def number(text: str) -> float | None:
        try:
            x = float(text)
        except ValueError:
            return None
        return x if math.isfinite(x) else None

    def check(r: dict[str, str]) -> str | None:
        if not _INT.fullmatch(r["point"]) or int(r["point"]) >= len(points):
            last = len(points) - 1
            return f"point {r['point'][:20]!r} is not a point of this design (0 to {last})"
        j = int(r["point"])
        for p in spec.params:
            want = float(points[j][p.name])
            if number(r[p.name]) != want:
                return f"point {j}: {p.name} is not the design's value {want!r}"
        if r["status"] == "failed":
            return None if r["error"] else f"point {j}: a failed point without its error"
        if r["status"] != "ok":
            return f"point {j}: status is neither ok nor failed"
        if r["runs"] != str(spec.runs):
            return f"point {j}: runs is not {spec.runs}"
        if not all(_INT.fullmatch(r[c]) for c in ("held", *counts)):
            return f"point {j}: held and the n_ columns must be whole numbers"
        if sum(int(r[c]) for c in counts) != spec.runs or int(r["held"]) > spec.runs:
            return f"point {j}: the outcome counts do not add up to runs"
        if any(number(r[c]) is None for c in floats):
            return f"point {j}: {', '.join(floats)} must be numbers"
        if number(r["p_meeting"]) != int(r["held"]) / spec.runs:
            return f"point {j}: p_meeting is not held / runs"
        if (number(r["ci95_low"]), number(r["ci95_high"])) != wilson(int(r["held"]), spec.runs):
            return f"point {j}: ci95_low and ci95_high are not the Wilson interval of held / runs"
        return None

    return check


def _typed(rows: list[dict[str, str]], cols: list[str], spec: SweepSpec) -> list[dict[str, Any]]:
    """Journal strings back to numbers (floats were written with repr: exact)."""
    ints = {"point", "runs", "held"} | {c for c in cols if c.startswith("n_")}
    floats = {p.name for p in spec.params} | {
        "p_meeting",
        "ci95_low",
        "ci95_high",
        "mean_events_per_run",
    }
    out = []
    for r in rows:
        t: dict[str, Any] = {}
        for c in cols:
            v = r.get(c, "")
            if c in ints:
                t[c] = int(v) if v != "" else None
            elif c in floats:
                t[c] = float(v) if v != "" else None
            else:
                t[c] = v if v != "" else None
        out.append(t)
    return out


def _finalise(out: Path, journal: _Journal) -> list[dict[str, str]]:
    """Write the output from the journal, rows sorted by point id."""
    rows = [journal.rows[k] for k in sorted(journal.rows)]
    if out.suffix == ".csv":
        buf = io.StringIO(newline="")
        w = csv.DictWriter(buf, fieldnames=journal.cols)
        w.writeheader()
        w.writerows(rows)
        write_atomic(out, buf.getvalue())
    return rows


def _write_parquet(out: Path, rows: list[dict[str, Any]], cols: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=_arrow_schema(rows, cols))
    write_atomic(out, lambda f: pq.write_table(table, f))


def _arrow_schema(rows: list[dict[str, Any]], cols: list[str]) -> Any:
    import pyarrow as pa

    fields = []
    for c in cols:
        if c in ("point", "runs", "held") or c.startswith("n_"):
            fields.append(pa.field(c, pa.int64()))
        elif c in ("status", "median_time_held", "held_blocks", "error"):
            fields.append(pa.field(c, pa.string()))
        else:
            fields.append(pa.field(c, pa.float64()))
    return pa.schema(fields)


def run_sweep(
    spec: SweepSpec,
    backend: Backend,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    argv: list[str] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    advance_points: Advance | None = None,
    advance_runs: Advance | None = None,
    engine: str = "batch",
) -> SweepResult:
    """Run every design point of ``spec`` (``runs`` replications each) on ``backend``.

    ``engine``: ``"batch"`` (default; a point the batch engine does not cover runs
    on the simpy engine) or ``"simpy"``; the numbers are the same.

    ``on_start(points, replications)`` is called once the work is known (for
    progress bars); ``advance_points``/``advance_runs`` as it gets done. With
    ``out``, one sweep at a time writes it (``OUT.lock``; a second is refused).
    """
    with ExitStack() as stack:
        if out is not None:
            out_path, journal_path, manifest_path = paths(out)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            check_target(out_path)  # refused before anything is written
            check_target(manifest_path)
            refuse_symlink(journal_path, "partial file")
            stack.enter_context(Lock(out_path))
        return _run_sweep(
            spec, backend, out, resume, argv, on_start, advance_points, advance_runs, engine
        )


def _run_sweep(
    spec: SweepSpec,
    backend: Backend,
    out: str | os.PathLike[str] | None,
    resume: bool,
    argv: list[str] | None,
    on_start: Callable[[int, int], None] | None,
    advance_points: Advance | None,
    advance_runs: Advance | None,
    engine: str = "batch",
) -> SweepResult:
    check_engine(engine)
    # Read, validated and compiled once, for every point (by the caller, if it had to).
    base = spec.compiled if spec.compiled is not None else load(spec.scenario, spec.sets)
    base_key = model_key(base.model)
    outcome_names = list(estimate(base, Tally(), 0, 0.0).outcomes)
    cols = columns(spec, outcome_names)
    dsg = design(spec)
    n_points = len(dsg.points)
    manifest: dict[str, Any] = {
        "negosim": __version__,
        "scenario": {
            "file": str(spec.scenario),
            "id": base.id,
            "sha256": file_hash(spec.scenario),
        },
        "sweep": spec.describe(),
        "points": n_points,
        "backend": backend.name,
        "workers": backend.workers,
        "command": argv,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "finished": None,
        "status": "running",
    }
    journal: _Journal | None = None
    out_path = manifest_path = None
    if out is not None:
        out_path, journal_path, manifest_path = paths(out)
        refuse_symlink(journal_path, "partial file")
        if (
            resume
            and journal_path.exists()
            and (manifest_path.exists() or manifest_path.is_symlink())
        ):
            old = _read_manifest(manifest_path)
            if old.get("sweep") != manifest["sweep"] or old.get("scenario") != manifest["scenario"]:
                raise UsageError(
                    f"{manifest_path}: the partial sweep was made with other settings or another "
                    "version of the scenario; cannot resume (delete it to start again)"
                )
            if isinstance(old.get("started"), str):
                manifest["started"] = old["started"]
        key = sweep_key(manifest["sweep"], manifest["scenario"]["sha256"])
        journal = _Journal(journal_path, cols, key, resume, _row_check(spec, dsg.points, cols))
        _write_manifest(manifest_path, manifest)
    done = set(journal.rows) if journal else set()
    todo = [i for i in range(n_points) if i not in done]
    if on_start:
        on_start(n_points, n_points * spec.runs)
    if advance_points and done:
        advance_points(len(done))
        if advance_runs:
            advance_runs(len(done) * spec.runs)

    started = time.perf_counter()
    rows: dict[int, dict[str, Any]] = {}
    replications = 0

    def finish(row: dict[str, Any]) -> None:
        rows[row["point"]] = row
        if journal:
            journal.write(row)
        if advance_points:
            advance_points(1)

    size = _chunk_size(spec.runs, n_points, backend.workers, engine)
    limit = max(2, 4 * backend.workers)  # chunks in flight: enough to keep workers busy
    compiled: dict[int, CompiledScenario] = {}  # points with chunks out
    nblocks = NOISE_BLOCKS if has_blocks(spec) else 1

    def points() -> Iterator[tuple[int, BlockTally, Iterator[Task[BlockTally]]]]:
        """Each point to run, set up only when the loop has room for its chunks.

        A point whose values the scenario refuses is finished here as a failure row."""
        for j in todo:
            values = dsg.points[j]
            sets = point_sets(spec, values)
            try:
                cs = bind(base, sets)
            except InputError as exc:
                why = "; ".join(f"{p.path}: {p.message}" for p in exc.problems)
                finish(_failure(j, values, why))
                if advance_runs:
                    advance_runs(spec.runs)
                continue
            prime(base_key, cs, sets)
            seed = point_seed(spec.seed, j, spec.crn)
            compiled[j] = cs
            # A chunk may span blocks: it counts its meetings block by block. (Chunks
            # cut at block edges made a Sobol point of 200 runs eight chunks of 25,
            # and the batch engine pays its cost per step once per chunk.)
            bounds = tuple(block_bounds(spec.runs, nblocks))
            jobs = (BlockJob(Job(base_key, base.model, seed, a, min(a + size, spec.runs), engine,
                                 sets), bounds)
                    for a in range(0, spec.runs, size))  # fmt: skip
            yield j, BlockTally(Tally(), [0] * nblocks), ((run_block_job, b) for b in jobs)

    def ran(n: int) -> None:
        nonlocal replications
        replications += n
        if advance_runs:
            advance_runs(n)

    try:
        for j, total, error in fold_groups(backend, points(), limit, ran, catch=True):
            cs = compiled.pop(j)
            if error is not None:
                finish(_failure(j, dsg.points[j], _message(error)))
            else:
                row = _row(j, dsg.points[j], cs, total.tally, outcome_names)
                if has_blocks(spec):
                    row["held_blocks"] = " ".join(map(str, total.held))
                finish(row)
    finally:
        if journal:
            journal.close()
    elapsed = time.perf_counter() - started

    if journal and out_path is not None and manifest_path is not None:
        str_rows = _finalise(out_path, journal)
        all_rows = _typed(str_rows, cols, spec)
        if out_path.suffix == ".parquet":
            _write_parquet(out_path, all_rows, cols)
        journal.path.unlink()
    else:
        all_rows = _typed(
            [{c: _fmt(rows[k].get(c)) for c in cols} for k in sorted(rows)], cols, spec
        )
    y = [r["p_meeting"] if r["status"] == "ok" else math.nan for r in all_rows]
    blocks = None
    if has_blocks(spec) and all(r["status"] == "ok" for r in all_rows):
        blocks = [[int(h) for h in r["held_blocks"].split()] for r in all_rows]
    sens = sensitivity(spec, dsg, y, blocks)
    manifest.update(
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        status="complete",
        failed_points=sum(1 for r in all_rows if r["status"] != "ok"),
        sensitivity=sens,
    )
    if manifest_path is not None:
        _write_manifest(manifest_path, manifest)
    return SweepResult(
        rows=all_rows,
        columns=cols,
        sensitivity=sens,
        manifest=manifest,
        computed=len(todo),
        replications=replications,
        elapsed_s=elapsed,
        out=out_path,
        resumed=len(done),
        failures=[r for r in all_rows if r["status"] != "ok"],
    )


@dataclass
class BlockTally:
    """A point's tally, and the meetings held in each block of its replications."""

    tally: Tally
    held: list[int]

    @property
    def runs(self) -> int:
        """How many replications the tally covers."""
        return self.tally.runs

    def merge(self, other: BlockTally) -> BlockTally:
        """Add ``other``'s tally and per-block meeting counts into this one; return it."""
        self.tally.merge(other.tally)
        self.held = [a + b for a, b in zip(self.held, other.held, strict=True)]
        return self


@dataclass(frozen=True)
class BlockJob:
    """A chunk of replications, and where the blocks its meetings are counted in start
    (``bounds``: block ``b`` is replications ``bounds[b]..bounds[b+1]-1``)."""

    job: Job
    bounds: tuple[int, ...]


def run_block_job(bj: BlockJob) -> BlockTally:
    """Run a chunk where this function is called (any backend's worker): its tally, and
    its meetings held counted in each block."""
    tally, held_at = run_job_rows(bj.job)
    start = bj.job.start
    cumulative = np.concatenate(([0], np.cumsum(held_at, dtype=np.int64)))
    held = []
    for lo, hi in itertools.pairwise(bj.bounds):
        lo, hi = min(max(lo, start), bj.job.stop), min(max(hi, start), bj.job.stop)
        held.append(int(cumulative[hi - start] - cumulative[lo - start]))
    return BlockTally(tally, held)


def point_sets(spec: SweepSpec, values: dict[str, float]) -> tuple[tuple[str, Any], ...]:
    """A design point's parameter values as the ``--set`` overrides that give them."""
    return tuple(p.set_value(values[p.name]) for p in spec.params)


def point_scenario(
    spec: SweepSpec, base: CompiledScenario, values: dict[str, float]
) -> CompiledScenario:
    """The scenario of a design point: ``base`` (compiled once, with ``spec.sets``)
    with the point's parameter values bound as ``--set`` would set them
    (:func:`negosim.compiler.bind.bind`: nothing is read, validated or compiled
    again but those values); ScenarioError if the values are refused."""
    return bind(base, point_sets(spec, values))


def _message(exc: Exception) -> str:
    """What went wrong at a point that failed while running, for its ``error`` column."""
    if isinstance(exc, NegosimError):
        return getattr(exc, "message", str(exc))
    return f"{type(exc).__name__}: {exc}"


def _failure(j: int, values: dict[str, float], message: str) -> dict[str, Any]:
    return {"point": j, **values, "status": "failed", "error": message}


def _row(
    j: int, values: dict[str, float], cs: CompiledScenario, tally: Tally, names: list[str]
) -> dict[str, Any]:
    est = estimate(cs, tally, 0, 0.0)
    row: dict[str, Any] = {"point": j, **values, "status": "ok"}
    row.update(
        runs=est.runs,
        held=est.held,
        p_meeting=est.p_meeting,
        ci95_low=est.ci95[0],
        ci95_high=est.ci95[1],
        median_time_held=est.median_time,
        mean_events_per_run=est.mean_events_per_run,
    )
    for name in names:
        row[f"n_{name}"] = est.outcomes.get(name, 0)
    return row
