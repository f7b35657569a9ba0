"""The Python API: what ``from negosim import ...`` gives a notebook or a script.

Every function here does what the command of the same name does, with keyword
arguments named as the command's options (``runs``, ``seed``, ``workers``,
``set``, ``design``, ``samples``...) and results whose attributes are named as
the keys of the command's JSON. ``set`` is a dict of overrides, name or dotted
path to value, as ``--set NAME=VALUE`` would give them::

    from negosim import load, simulate, compare
    munich = load("scenarios/munich.yaml")
    estimate = simulate(munich, runs=2_000, seed=1)
    what_if = compare(munich, set={"p_china_accept_informal": 0.5}, runs=2_000)

Bad input raises :class:`~negosim.errors.ScenarioError` whose lines are the
ones the command line prints, located in the file, naming the keyword
(``set={'p_accept': 2}``) where the command line would name ``--set``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from .compiler.loader import compile_model, lint_problems, validate_document
from .compiler.tables import CompiledScenario
from .display import block, clip, esc, lines, table
from .errors import InputError, Problem, ScenarioError
from .runs.compare import Comparison
from .runs.results import Estimate, Tally, estimate, readable_row
from .runs.sweepresult import Sweep
from .scenario.yamlsource import load_scenario_file, load_yaml_text

Sets = Mapping[str, Any] | list[tuple[str, Any]] | None
"""Overrides: a dict ``{name or dotted.path: value}`` (or a list of such pairs)."""

ScenarioLike = CompiledScenario | str | os.PathLike[str]
"""A loaded scenario, or the path of a scenario file."""

ProgressArg = bool | Callable[[int], None] | None
"""``True`` for a progress bar (terminal or Jupyter), or a callable given runs done."""

__all__ = [
    "Trace",
    "compare",
    "explain",
    "load",
    "load_string",
    "simulate",
    "sweep",
    "trace",
]


# --- overrides and errors ---------------------------------------------------------------


def _pairs(sets: Sets) -> list[tuple[str, Any]]:
    """``set=`` as a list of (name or path, value) pairs; TypeError if it is neither form."""
    if sets is None:
        return []
    if isinstance(sets, Mapping):
        return [(str(k), v) for k, v in sets.items()]
    out = []
    for item in sets:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise TypeError(
                "set= takes a dict {name: value} (or a list of (name, value) pairs), "
                f"found {item!r} in it"
            )
        out.append((str(item[0]), item[1]))
    return out


def _text(value: Any) -> str:
    """A value as ``--set`` would be written (``true``, ``0.5``, ``36h``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _overrides(sets: Sequence[tuple[str, Any]]) -> list[str]:
    """The ``overrides`` of the JSON: ``NAME=VALUE`` as the command line records them."""
    return [f"{k}={_text(v)}" for k, v in sets]


_OPTION = re.compile(r"--(set|param) ([^\s=:,()]+)(=[^\s:,()]*)?")
_KEYWORD = {"set": "set", "param": "params"}


def _pythonic(message: str, values: dict[str, Any]) -> str:
    """``message`` naming keywords where the command line names options."""

    def keyword(m: re.Match[str]) -> str:
        name = m.group(2)
        value = values.get(name, ...) if m.group(1) == "set" else ...
        shown = "..." if value is ... else repr(value)
        return f"{_KEYWORD[m.group(1)]}={{{name!r}: {shown}}}"

    message = _OPTION.sub(keyword, message)
    return re.sub(
        r"--(design|samples|runs|seed|workers|out|max-replications)\b",
        lambda m: m.group(1).replace("-", "_") + "=",
        message,
    )


def _speak_python(exc: InputError, sets: list[tuple[str, Any]]) -> ScenarioError:
    """The ScenarioError to raise for ``exc``: the same lines, keywords for options."""
    values = dict(sets)
    return ScenarioError(
        [
            Problem(
                _pythonic(p.file, values) if p.file.startswith("--") else p.file,  # a --set
                p.line,
                p.col,
                p.path,
                _pythonic(p.message, values),
            )
            for p in exc.problems
        ]
    )


@contextmanager
def _python_errors(sets: list[tuple[str, Any]]) -> Iterator[None]:
    try:
        yield
    except InputError as exc:
        raise _speak_python(exc, sets) from None


# --- loading ----------------------------------------------------------------------------


def load(path: str | os.PathLike[str], set: Sets = None, *, sets: Sets = None) -> CompiledScenario:
    """Read, validate and compile the scenario file ``path``, ready to simulate.

    ``set`` overrides values as ``--set`` does: ``{"p_us_formal_request": 0.5}``
    sets a parameter's default by name, ``{"actors.us.arrival": "2h"}`` any value
    by its dotted path. (``sets=``, a list of pairs, is the older spelling.)
    Raises :class:`ScenarioError` listing every problem found, each as
    ``FILE:LINE:COL: dotted.path: what is wrong``.

    >>> from negosim import load
    >>> munich = load("scenarios/munich.yaml", set={"p_us_formal_request": 0.5})
    >>> munich.params["p_us_formal_request"]
    0.5
    """
    pairs = _pairs(set) + _pairs(sets)
    with _python_errors(pairs):
        model, doc = validate_document(load_scenario_file(path, keep_going=True), pairs)
        cs = compile_model(model, doc, pairs)
        warnings = tuple(lint_problems(cs, doc, pairs))
    return replace(cs, warnings=warnings, source=os.fspath(path), sets=tuple(pairs))


def load_string(text: str, set: Sets = None) -> CompiledScenario:
    """Like :func:`load`, from the YAML text of a scenario; problems are located
    as ``<string>:LINE:COL``.

    >>> from negosim import load_string
    >>> text = open("scenarios/tutorial.yaml", encoding="utf-8").read()
    >>> load_string(text).id
    'tutorial'
    """
    pairs = _pairs(set)
    with _python_errors(pairs):
        model, doc = validate_document(load_yaml_text(text, "<string>", keep_going=True), pairs)
        cs = compile_model(model, doc, pairs)
        warnings = tuple(lint_problems(cs, doc, pairs))
    return replace(cs, warnings=warnings, source_text=text, sets=tuple(pairs))


def _scenario(scenario: ScenarioLike, extra: Sets = None) -> CompiledScenario:
    """``scenario`` loaded if a path, with the overrides ``extra`` added to its own."""
    pairs = _pairs(extra)
    if not isinstance(scenario, CompiledScenario):
        return load(scenario, pairs)
    if not pairs:
        return scenario
    merged = [*scenario.sets, *pairs]
    if scenario.source is not None:
        return load(scenario.source, merged)
    if scenario.source_text is not None:
        return load_string(scenario.source_text, merged)
    raise TypeError("set= needs a scenario loaded with load() or load_string()")


@contextmanager
def _progress(
    progress: ProgressArg, total: int | None, what: str
) -> Iterator[Callable[[int], None]]:
    """``advance(n)`` for ``progress=``: nothing, the caller's callable, or a rich bar."""
    if not progress:
        yield lambda n: None
        return
    if callable(progress):
        yield progress
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    # rich draws in a terminal and, through IPython's display, in Jupyter.
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


# --- running ----------------------------------------------------------------------------


def simulate(
    scenario: ScenarioLike,
    runs: int = 10_000,
    seed: int = 0,
    workers: int = 1,
    set: Sets = None,
    progress: ProgressArg = False,
    keep_rows: bool = False,
    *,
    backend: Any = None,
) -> Estimate:
    """Estimate whether and when the meeting happens over ``runs`` replications.

    The same numbers as ``negosim run FILE --runs RUNS --seed SEED [--set ...]``:
    ``simulate(...).to_dict()`` is its ``--format json`` object (``elapsed_s``
    aside), for any ``workers``. ``set`` adds overrides to the scenario's own.
    ``progress=True`` shows a progress bar (in a terminal or in Jupyter).
    ``keep_rows=True`` keeps every replication in ``.rows`` (and
    :meth:`Estimate.rows_frame`); the runs then happen in this process.
    ``backend`` (a :mod:`negosim.runs.backends` backend, e.g. Dask) says where to run.

    >>> from negosim import load, simulate
    >>> est = simulate(load("scenarios/tutorial.yaml"), runs=1_000, seed=1)
    >>> 0 <= est.ci95[0] <= est.p_meeting <= est.ci95[1] <= 1
    True
    """
    from .engine.simulation import Engine
    from .runs.runner import simulate as run

    cs = _scenario(scenario, set)
    overrides = _overrides(cs.sets)
    if runs < 1:
        raise ValueError("runs must be at least 1")
    with _progress(progress, runs, f"{cs.id}: simulating") as advance:
        if not keep_rows:
            return run(cs, runs=runs, seed=seed, workers=workers, progress=advance,
                       overrides=overrides, backend=backend)  # fmt: skip
        import time

        started = time.perf_counter()
        tally, kept = Tally(), []
        for row in Engine(cs).run_block(seed, 0, runs):
            tally.add(row)
            kept.append(readable_row(cs, row))
            if row.index % 500 == 499:
                advance(500)
        advance(runs % 500)
        est = estimate(cs, tally, seed, time.perf_counter() - started, overrides)
    est.rows = kept
    return est


def compare(
    base: ScenarioLike,
    variant: ScenarioLike | None = None,
    *,
    set: Sets = None,
    base_set: Sets = None,
    runs: int = 10_000,
    seed: int = 0,
    workers: int = 1,
    progress: ProgressArg = False,
) -> Comparison:
    """What if? ``base`` against ``variant`` over paired runs (common random numbers).

    As ``negosim compare FILE [OTHER_FILE] [--set ...] [--base-set ...]``: the
    variant is ``variant`` (default: ``base`` itself) with the overrides ``set``;
    ``base_set`` changes the baseline. ``Comparison.to_dict()`` is the command's
    JSON: ``diff`` = P(variant) - P(base) with a paired 95% interval.

    >>> from negosim import load, compare
    >>> munich = load("scenarios/munich.yaml")
    >>> cmp = compare(munich, set={"p_us_formal_request": 0.9}, runs=500)
    >>> -1 <= cmp.diff <= 1
    True
    """
    from .runs.compare import compare as run

    cs_base = _scenario(base, base_set)
    cs_variant = _scenario(variant if variant is not None else base, set)
    if runs < 1:
        raise ValueError("runs must be at least 1")
    with _progress(progress, runs, f"{cs_base.id}: comparing") as advance:
        return run(
            cs_base, cs_variant, runs=runs, seed=seed, progress=advance,
            base_overrides=_overrides(cs_base.sets), variant_overrides=_overrides(cs_variant.sets),
            workers=workers,
        )  # fmt: skip


ParamSpec = Any
"""How one swept parameter varies (see :func:`sweep`)."""


def _param_range(name: str, spec: ParamSpec) -> Any:
    from .runs.designs import ParamRange, parse_param_option

    if spec is None:
        return ParamRange()
    if isinstance(spec, str):
        return parse_param_option(f"{name}={spec}")[1]
    if isinstance(spec, Mapping):
        return ParamRange(**spec)
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        low, high, *steps = spec
        return ParamRange(low=low, high=high, steps=steps[0] if steps else None)
    if isinstance(spec, list | tuple):
        return ParamRange(values=list(spec))
    raise TypeError(
        f"params={{{name!r}: {spec!r}}}: expected a list of values, (low, high), "
        "(low, high, steps), 'LOW:HIGH[:STEPS]' or None"
    )


def sweep(
    scenario: ScenarioLike,
    params: Mapping[str, ParamSpec],
    design: str = "grid",
    samples: int | None = None,
    runs: int = 1_000,
    seed: int = 0,
    workers: int = 1,
    set: Sets = None,
    crn: bool = True,
    out: str | os.PathLike[str] | None = None,
    progress: ProgressArg = False,
    max_replications: int | None = None,
) -> Sweep:
    """Run ``scenario`` at many parameter values: one row per design point.

    As ``negosim sweep FILE --param ... --design ... --samples ...``. ``params``
    maps each parameter to how it varies: a list of values (a grid),
    ``(low, high, steps)`` (a grid of ``steps`` values), ``(low, high)`` (a
    range for the sampling designs ``lhs``, ``sobol``, ``morris``), a string as
    ``--param`` takes it (``"0.2:0.8:4"``) or None (the parameter's own
    uncertainty or range). ``out`` also writes the CSV or Parquet file.
    A sweep above ``max_replications`` replications in all (default: the
    CLI's ``--max-replications``) is refused before anything runs.
    The result's ``rows`` and ``to_frame()`` have the columns of the CSV;
    ``sensitivity_frame()`` gives the indices of a Sobol or Morris design.

    >>> from negosim import load, sweep
    >>> sw = sweep(load("scenarios/munich.yaml"),
    ...            params={"p_us_formal_request": [0.2, 0.8]}, runs=200)
    >>> [row["p_us_formal_request"] for row in sw.rows]
    [0.2, 0.8]
    """
    from .extras import require
    from .runs.backends import make_backend
    from .runs.designs import MAX_REPLICATIONS, SweepSpec, check_samples, check_size, resolve_params
    from .runs.sweeprun import run_sweep

    cs = _scenario(scenario)
    pairs = [*cs.sets, *_pairs(set)]
    with _python_errors(pairs):
        ranges = {name: _param_range(name, spec) for name, spec in params.items()}
        check_samples(design, samples)
        check_size(design, samples, ranges, runs, max_replications or MAX_REPLICATIONS)
        if design != "grid":
            require("sensitivity", f"design={design!r}")
        base = _scenario(cs, set)
        resolved = resolve_params(base, ranges, design)
        with _source_file(cs) as path, make_backend(max(1, workers)) as backend:
            spec = SweepSpec(path, resolved, design, samples, runs, seed, crn, pairs, base)
            with _progress(progress, None, f"{cs.id}: sweeping") as advance:
                result = run_sweep(spec, backend, out=out, advance_runs=advance)
    return Sweep.of(result)


@contextmanager
def _source_file(cs: CompiledScenario) -> Iterator[str]:
    """The scenario's file, or a temporary one holding the text it was loaded from."""
    if cs.source is not None:
        yield cs.source
        return
    if cs.source_text is None:
        raise TypeError("sweep() needs a scenario loaded with load() or load_string()")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{cs.id}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(cs.source_text)
        yield path


# --- reading a scenario -----------------------------------------------------------------


@dataclass(repr=False)
class Trace:
    """One replication as a venue-local timeline (what ``negosim trace`` shows).

    ``events`` are dicts with ``time`` (venue-local ISO), ``hours``, ``kind``,
    ``actor`` and ``text``; :meth:`to_dict` is ``negosim trace --format json``.

    >>> from negosim import load, trace
    >>> t = trace(load("scenarios/munich.yaml"), seed=2023)
    >>> t.to_dict()["seed"], t.events[0]["time"][:10]
    (2023, '2023-02-17')
    """

    scenario: str
    seed: int
    run: int
    outcome: str
    held: bool
    events: list[dict[str, Any]]
    blocking: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The ``negosim trace --format json`` object."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "run": self.run,
            "outcome": self.outcome,
            "held": self.held,
            "events": self.events,
            "blocking": self.blocking,
        }

    def to_frame(self) -> Any:
        """The timeline as a pandas DataFrame (``negosim[pandas]``): one row per event."""
        from .extras import require

        require("pandas", "Trace.to_frame()")
        import pandas as pd

        return pd.DataFrame(self.events, columns=["time", "hours", "kind", "actor", "text"])

    def __str__(self) -> str:
        out = [f"{self.scenario}: replication {self.run} of seed {self.seed}"]
        for e in self.events:
            who = f" {e['actor']}:" if e["actor"] else ""
            out.append(clip(f"{e['time'][5:16].replace('T', ' ')}{who} {e['text']}"))
        end = f"outcome: {self.outcome}"
        if self.blocking:
            end += f" (standing: {', '.join(self.blocking)})"
        out.append(clip(end))
        return "\n".join(out)

    def __repr__(self) -> str:
        return lines(
            f"Trace({self.scenario!r}, seed {self.seed}, run {self.run}: {self.outcome}, "
            f"{len(self.events)} events)"
        )

    def _repr_html_(self) -> str:
        rows = [[e["time"], e["actor"] or "", e["kind"], e["text"]] for e in self.events]
        verdict = f"outcome: {self.outcome}"
        if self.blocking:
            verdict += f"; preconditions standing: {', '.join(self.blocking)}"
        return block(
            f"negosim trace: {self.scenario}, seed {self.seed}, run {self.run}",
            table(["time", "who", "kind", "what"], rows),
            f"<p>{esc(verdict)}</p>",
        )


def trace(
    scenario: ScenarioLike,
    seed: int = 0,
    run: int = 0,
    verbose: bool = False,
    set: Sets = None,
) -> Trace:
    """Replication ``run`` of ``seed`` as a timeline, as ``negosim trace`` shows it.

    ``verbose`` keeps the clocks' enable and cancel lines. ``print()`` the
    result for text; in a notebook it shows as a table.

    >>> from negosim import load, trace
    >>> t = trace(load("scenarios/munich.yaml"), seed=2023)
    >>> t.outcome in {"held", "declined", "called_off", "censored"}
    True
    """
    from .output.terminal import trace_rows
    from .runs.runner import trace as run_trace

    cs = _scenario(scenario, set)
    row, timeline = run_trace(cs, seed, run)
    return Trace(
        scenario=cs.id,
        seed=seed,
        run=run,
        outcome=row.outcome,
        held=row.held,
        events=trace_rows(cs, timeline, verbose),
        blocking=[cs.preconditions[i] for i in row.blocking],
    )


def explain(scenario: ScenarioLike, set: Sets = None) -> str:
    """The scenario in plain words, as ``negosim explain`` prints it.

    >>> from negosim import explain, load
    >>> print(explain(load("scenarios/tutorial.yaml")).splitlines()[0])
    A coffee on the sidelines (tutorial)
    """
    from .output.explain import explain as words

    return words(_scenario(scenario, set))
