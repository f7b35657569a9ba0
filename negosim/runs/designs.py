"""What a sweep is: its parameters, its design points and their sensitivity analysis.

A :class:`SweepSpec` names a scenario, the parameters to vary (by the names
``negosim params`` lists) and a design: a full ``grid`` of given values, or a
Latin hypercube (``lhs``), Sobol or Morris design from SALib. It comes from
``negosim sweep`` options or from a sweep file (``sweeps/*.yaml``, validated
like scenarios, with the same ``FILE:LINE:COL: path: message`` errors).

Sampling designs draw points in the unit hypercube; each column is then mapped
to the parameter's values by an inverse CDF: uniform over a range given for the
sweep, else the parameter's ``uncertainty`` distribution (between its 0.1% and
99.9% quantiles, so unbounded distributions stay finite), else uniform over its
declared ``low``/``high``. Sensitivity indices are computed by SALib on the unit
hypercube, so Morris effects are per the whole range of each parameter.

Running the points lives in :mod:`negosim.sweeprun`.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
from pydantic import Field, StrictBool, StrictInt

from ..compiler import dists
from ..compiler.parameters import Parameter
from ..compiler.tables import CompiledScenario
from ..errors import Problem, ScenarioError, UsageError
from ..extras import require
from ..scenario.schema import NumberOrText, OneLine, Strict
from ..scenario.units import is_duration, parse_duration
from ..scenario.yamlsource import YamlDocument, load_yaml_file, problems_from_validation_error

DESIGNS = ("grid", "lhs", "sobol", "morris")
MORRIS_LEVELS = 4
_QUANTILE_CLIP = 0.001  # distributions are mapped between their 0.1% and 99.9% quantiles


# --- the sweep file ------------------------------------------------------------------


class ParamRange(Strict):
    """How one parameter varies: ``values``, or ``low``/``high`` (with ``steps`` for a grid);
    nothing at all means the scenario's own uncertainty distribution or range."""

    low: NumberOrText | None = None
    high: NumberOrText | None = None
    steps: StrictInt | None = Field(default=None, ge=2)
    values: list[NumberOrText] | None = Field(default=None, min_length=1)


class SweepFile(Strict):
    """A sweep file (``sweeps/*.yaml``): a scenario and the parameters to vary."""

    scenario: str = Field(description="the scenario file, relative to this file")
    design: Literal["grid", "lhs", "sobol", "morris"] = "grid"
    samples: StrictInt | None = Field(default=None, ge=1)
    runs: StrictInt = Field(default=1000, ge=1)
    seed: StrictInt = Field(default=0, ge=0)
    crn: StrictBool = True
    params: dict[str, ParamRange] = Field(min_length=1)
    set: dict[str, Any] = Field(default_factory=dict, description="fixed --set overrides")
    title: OneLine | None = None


# --- the resolved sweep ----------------------------------------------------------------


@dataclass
class SweepParam:
    """One varied parameter, in the scenario's units (hours for durations)."""

    name: str
    kind: str
    values: list[float] | None = None  # grid values
    low: float | None = None  # explicit range for sampling designs
    high: float | None = None
    dist: str | None = None  # how a unit-hypercube column maps to values (for the manifest)
    ppf: Callable[[float], float] | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "values": self.values,
            "low": self.low,
            "high": self.high,
            "dist": self.dist,
        }

    def set_value(self, value: float) -> tuple[str, Any]:
        """The ``--set`` override giving this parameter ``value``."""
        if self.kind == "duration":
            return (self.name, np.format_float_positional(value, trim="-") + "h")
        return (self.name, value)


@dataclass
class SweepSpec:
    """Everything that decides a sweep's rows (recorded in its manifest)."""

    scenario: str
    params: list[SweepParam]
    design: str = "grid"
    samples: int | None = None
    runs: int = 1000
    seed: int = 0
    crn: bool = True
    sets: list[tuple[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "samples": self.samples,
            "runs": self.runs,
            "seed": self.seed,
            "crn": self.crn,
            "params": [p.describe() for p in self.params],
            "sets": [[k, v] for k, v in self.sets],
        }


@dataclass
class Design:
    """The design points: parameter values per point, and the unit-hypercube sample."""

    points: list[dict[str, float]]
    unit: np.ndarray | None  # (points, params) for sampling designs, None for a grid


def point_seed(seed: int, point: int, crn: bool) -> int:
    """The seed of a point's replication streams.

    With common random numbers (the default) every point uses ``seed`` itself, so
    replication ``i`` draws from ``Stream(seed, i)`` at every point. Without them,
    point ``j`` uses a 63-bit seed derived by ``SeedSequence([seed, j])``.
    """
    if crn:
        return seed
    state = np.random.SeedSequence([seed, point]).generate_state(1, np.uint64)[0]
    return int(state) >> 1


# --- parsing ----------------------------------------------------------------------------


def _number(text: Any, kind: str, where: str) -> float:
    """A value of the parameter: a number, or (durations) a duration like ``36h``."""
    if isinstance(text, bool):
        raise UsageError(f"{where}: expected a number, found {text!r}")
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip()
    try:
        if kind == "duration" and is_duration(s):
            return parse_duration(s)
        return float(s)
    except ValueError:
        raise UsageError(f"{where}: expected a number, found {s!r}") from None


def parse_param_option(text: str) -> tuple[str, ParamRange]:
    """``--param NAME``, ``NAME=LOW:HIGH``, ``NAME=LOW:HIGH:STEPS`` or ``NAME=a,b,c``."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not name:
        raise UsageError(f"--param {text}: expected NAME, NAME=LOW:HIGH[:STEPS] or NAME=a,b,c")
    if not sep:
        return name, ParamRange()
    if "," in rest:
        return name, ParamRange(values=[v.strip() for v in rest.split(",")])
    parts = [p.strip() for p in rest.split(":")]
    if len(parts) == 2:
        return name, ParamRange(low=parts[0], high=parts[1])
    if len(parts) == 3:
        try:
            steps = int(parts[2])
        except ValueError:
            raise UsageError(f"--param {text}: STEPS must be a whole number") from None
        if steps < 2:
            raise UsageError(f"--param {text}: STEPS must be at least 2")
        return name, ParamRange(low=parts[0], high=parts[1], steps=steps)
    if len(parts) == 1 and parts[0]:
        return name, ParamRange(values=[parts[0]])
    raise UsageError(f"--param {text}: expected NAME, NAME=LOW:HIGH[:STEPS] or NAME=a,b,c")


def resolve_params(
    cs: CompiledScenario, ranges: dict[str, ParamRange], design: str
) -> list[SweepParam]:
    """Check the requested parameters against the scenario; UsageError listing every problem."""
    table = _table(cs)
    out: list[SweepParam] = []
    problems: list[str] = []
    for name, rng in ranges.items():
        try:
            out.append(_resolve_one(table, name, rng, design))
        except UsageError as exc:
            problems.extend(p.message for p in exc.problems)
    if problems:
        raise UsageError([Problem("<input>", 0, 0, "", m) for m in problems])
    return out


def _resolve_one(
    table: dict[str, Parameter], name: str, rng: ParamRange, design: str
) -> SweepParam:
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"--param {name}: no parameter named {name!r}{hint}")
    param = table[name]
    kind = param.kind
    where = f"--param {name}"
    p = SweepParam(name=name, kind=kind)
    if rng.values is not None:
        if design != "grid":
            raise UsageError(f"{where}: a list of values is for --design grid; give LOW:HIGH")
        p.values = [_number(v, kind, where) for v in rng.values]
        return p
    if (rng.low is None) != (rng.high is None):
        raise UsageError(f"{where}: give both LOW and HIGH")
    if design == "grid":
        if rng.low is None or rng.steps is None:
            raise UsageError(f"{where}: a grid needs values: NAME=LOW:HIGH:STEPS or NAME=a,b,c")
        low, high = _number(rng.low, kind, where), _number(rng.high, kind, where)
        p.values = np.linspace(low, high, rng.steps).tolist()
        return p
    if rng.steps is not None:
        raise UsageError(f"{where}: STEPS is for --design grid; give LOW:HIGH")
    if rng.low is not None:
        p.low, p.high = _number(rng.low, kind, where), _number(rng.high, kind, where)
        if not p.low < p.high:
            raise UsageError(f"{where}: LOW must be below HIGH")
        p.dist = f"uniform({p.low:g}, {p.high:g})"
        p.ppf = _uniform(p.low, p.high)
        return p
    if param.uncertainty is not None:
        p.dist = param.uncertainty.text
        p.ppf = _clipped(param.uncertainty.sample)
        return p
    if param.low is not None and param.high is not None and param.low < param.high:
        p.low, p.high = param.low, param.high
        p.dist = f"uniform({p.low:g}, {p.high:g})"
        p.ppf = _uniform(p.low, p.high)
        return p
    raise UsageError(
        f"{where}: the scenario gives {name} neither an uncertainty distribution nor a "
        f"low and high; give a range: --param {name}=LOW:HIGH"
    )


def _uniform(low: float, high: float) -> Callable[[float], float]:
    return lambda u: low + u * (high - low)


def _clipped(sample: dists.Sampler) -> Callable[[float], float]:
    """An uncertainty distribution's inverse CDF between its 0.1% and 99.9% quantiles."""
    lo, hi = _QUANTILE_CLIP, 1 - _QUANTILE_CLIP
    return lambda u: sample(min(max(u, lo), hi))


# --- sweep files --------------------------------------------------------------------------


def is_sweep_file(doc: YamlDocument) -> bool:
    """A sweep file names a scenario; a scenario file has a protocol."""
    return isinstance(doc.data, dict) and "scenario" in doc.data and "protocol" not in doc.data


def scenario_path(sweep_file: str | os.PathLike[str], scenario: str) -> Path:
    """A sweep file's ``scenario:``, relative to the sweep file (``~`` expanded)."""
    return Path(sweep_file).parent / Path(scenario).expanduser()


def read_sweep_file(path: str | os.PathLike[str]) -> tuple[SweepFile, YamlDocument]:
    """Read and validate a sweep file; ScenarioError with located problems if invalid."""
    doc = load_yaml_file(path)
    if not isinstance(doc.data, dict) or "params" not in doc.data:
        # Not a sweep file at all: one line, quoting none of its keys (see
        # negosim.compiler.loader.require_scenario).
        raise ScenarioError(
            [Problem(doc.file, 1, 1, "", "not a negosim sweep file (no 'params' at the top level)")]
        )
    try:
        sf = SweepFile.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        raise ScenarioError(problems_from_validation_error(exc, doc)) from None
    problems: list[Problem] = []
    scenario = scenario_path(path, sf.scenario)
    if Path(sf.scenario).suffix.lower() not in (".yaml", ".yml"):
        problems.append(
            doc.problem(("scenario",), "expected a scenario file ending in .yaml or .yml")
        )
    elif not scenario.is_file():
        problems.append(doc.problem(("scenario",), f"no such file: {scenario}"))
    for name, rng in sf.params.items():
        loc = ("params", name)
        if rng.values is not None and (rng.low is not None or rng.steps is not None):
            problems.append(doc.problem(loc, "give either values or low/high, not both"))
        if sf.design != "grid" and (rng.values is not None or rng.steps is not None):
            problems.append(
                doc.problem(loc, f"values and steps are for design grid, not {sf.design}")
            )
    if sf.design != "grid" and sf.samples is None:
        problems.append(doc.problem(("design",), f"design {sf.design} needs 'samples'"))
    if problems:
        raise ScenarioError(problems)
    return sf, doc


def check_sweep_file(path: str | os.PathLike[str]) -> SweepSpec:
    """A sweep file checked completely, as ``negosim validate`` does: the file itself,
    its scenario, and each parameter against that scenario (problems located)."""
    from ..compiler.loader import load

    sf, doc = read_sweep_file(path)
    scenario = str(scenario_path(path, sf.scenario))
    base = load(scenario, list(sf.set.items()))
    problems: list[Problem] = []
    params: list[SweepParam] = []
    for name, rng in sf.params.items():
        try:
            params.append(_resolve_one(_table(base), name, rng, sf.design))
        except UsageError as exc:
            where = f"--param {name}: "
            problems += [doc.problem(("params", name), p.message.removeprefix(where))
                         for p in exc.problems]  # fmt: skip
    try:
        check_samples(sf.design, sf.samples)
    except UsageError as exc:
        problems += [doc.problem(("samples",), p.message) for p in exc.problems]
    if problems:
        raise ScenarioError(problems)
    return SweepSpec(
        scenario, params, sf.design, sf.samples, sf.runs, sf.seed, sf.crn, list(sf.set.items())
    )


def _table(cs: CompiledScenario) -> dict[str, Parameter]:
    return {p.name: p for p in cs.parameters}


def check_samples(design: str, samples: int | None) -> None:
    if design == "grid":
        if samples is not None:
            raise UsageError("--samples is for the lhs, sobol and morris designs")
        return
    if samples is None:
        raise UsageError(f"--design {design} needs --samples N")
    if design == "sobol" and samples & (samples - 1):
        raise UsageError(
            f"--samples for a Sobol design must be a power of 2 (e.g. 64), found {samples}"
        )


# --- design points ---------------------------------------------------------------------------


def _problem(params: list[SweepParam]) -> dict[str, Any]:
    return {
        "num_vars": len(params),
        "names": [p.name for p in params],
        "bounds": [[0.0, 1.0]] * len(params),
    }


def design(spec: SweepSpec) -> Design:
    """The design points of ``spec``, in a fixed order (the point ids 0, 1, 2, ...)."""
    params = spec.params
    if spec.design == "grid":
        assert all(p.values is not None for p in params)
        combos = product(*[p.values or [] for p in params])
        return Design([dict(zip([p.name for p in params], c, strict=True)) for c in combos], None)
    assert spec.samples is not None
    require("sensitivity", f"the {spec.design} design")
    problem = _problem(params)
    if spec.design == "lhs":
        from SALib.sample import latin

        unit = latin.sample(problem, spec.samples, seed=spec.seed)
    elif spec.design == "sobol":
        from SALib.sample import sobol

        unit = sobol.sample(problem, spec.samples, calc_second_order=False, seed=spec.seed)
    elif spec.design == "morris":
        from SALib.sample import morris

        unit = morris.sample(problem, spec.samples, num_levels=MORRIS_LEVELS, seed=spec.seed)
    else:  # pragma: no cover - checked by argparse and the sweep-file schema
        raise UsageError(f"unknown design {spec.design!r}")
    points = []
    for u in unit:
        points.append({p.name: float(p.ppf(float(x))) for p, x in zip(params, u, strict=True)})  # type: ignore[misc]
    return Design(points, np.asarray(unit))


# --- sensitivity --------------------------------------------------------------------------------


def sensitivity(spec: SweepSpec, dsg: Design, y: list[float]) -> dict[str, Any] | None:
    """SALib's indices of ``p_meeting`` for a Sobol or Morris design, with 95% intervals.

    Sobol: first-order ``S1`` and total ``ST`` indices with bootstrap half-widths
    (``S1_conf``, ``ST_conf``). Morris: ``mu_star`` (mean absolute elementary
    effect, per the whole range of the parameter) with ``mu_star_conf``, and
    ``sigma`` (spread of the effects: interactions or non-linearity).
    Returns None for other designs.
    """
    if spec.design not in ("sobol", "morris"):
        return None
    if any(not math.isfinite(v) for v in y):
        return {"error": "some design points failed; indices need every point"}
    require("sensitivity", f"the {spec.design} design")
    problem = _problem(spec.params)
    yy = np.asarray(y, dtype=float)
    names = [p.name for p in spec.params]
    if spec.design == "sobol":
        from SALib.analyze import sobol

        res = sobol.analyze(problem, yy, calc_second_order=False, seed=spec.seed)
        keys = ("S1", "S1_conf", "ST", "ST_conf")
    else:
        from SALib.analyze import morris

        assert dsg.unit is not None
        res = morris.analyze(problem, dsg.unit, yy, num_levels=MORRIS_LEVELS, seed=spec.seed)
        keys = ("mu_star", "mu_star_conf", "sigma", "mu")
    return {
        "method": spec.design,
        "output": "p_meeting",
        "params": {n: {k: _clean(float(res[k][i])) for k in keys} for i, n in enumerate(names)},
    }


def _clean(x: float) -> float | None:
    return x if math.isfinite(x) else None
