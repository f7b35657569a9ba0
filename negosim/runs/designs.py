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
from statistics import NormalDist
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
        """The parameter's name, kind, values or range and mapping, for the manifest."""
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
    # The scenario as already loaded with ``sets`` (None: the sweep loads it): what
    # resolved the parameters is what the points bind to, read and compiled once.
    compiled: CompiledScenario | None = field(default=None, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        """The sweep's settings as plain data: the manifest's ``sweep`` entry."""
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
    replication ``i`` draws from the same keyed streams at every point. Without them,
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
    try:
        check_size(sf.design, sf.samples, sf.params, sf.runs)
    except UsageError as exc:
        raise ScenarioError([doc.problem(("params",), p.message) for p in exc.problems]) from None
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


MAX_POINTS = 1_000_000
"""Design points of one sweep: each is held in memory before the sweep starts."""
MAX_REPLICATIONS = 100_000_000
"""Default limit on points × runs of one sweep (``--max-replications`` raises it)."""


def design_points(design: str, samples: int | None, ranges: dict[str, ParamRange]) -> int:
    """How many points a design has, computed from the request alone (nothing built)."""
    k = len(ranges)
    if design == "grid":
        n = 1
        for rng in ranges.values():
            n *= len(rng.values) if rng.values is not None else (rng.steps or 1)
        return n
    per_sample = {"sobol": k + 2, "morris": k + 1}.get(design, 1)
    return (samples or 0) * per_sample


def check_size(
    design: str,
    samples: int | None,
    ranges: dict[str, ParamRange],
    runs: int,
    max_replications: int = MAX_REPLICATIONS,
) -> None:
    """Refuse a sweep too large to mean, before anything is built or run (issue 9)."""
    points = design_points(design, samples, ranges)
    if points > MAX_POINTS:
        raise UsageError(
            f"the {design} design has {points:,} points, above the limit of {MAX_POINTS:,} "
            "points per sweep; use fewer steps or samples"
        )
    if points * runs > max_replications:
        raise UsageError(
            f"the sweep needs {points:,} points × {runs:,} runs = {points * runs:,} "
            f"replications, above the limit of {max_replications:,} (--max-replications); "
            "use fewer points or runs, or raise the limit with --max-replications N"
        )


def check_samples(design: str, samples: int | None) -> None:
    """Raise UsageError unless ``samples`` suits ``design``.

    A grid takes no ``--samples``; lhs, sobol and morris need it, sobol a power of 2.
    """
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

NOISE_BLOCKS = 8
"""Each point's replications are counted in this many blocks (replications
0..runs/8-1, runs/8..runs/4-1, ...) so that the indices can be corrected for
Monte Carlo noise (:func:`sensitivity`)."""
RESAMPLES = 100  # bootstrap resamples of the design, as SALib's default
NEGLIGIBLE = 0.02  # an index known to within this of 0 is settled: the parameter hardly matters


def block_bounds(runs: int, blocks: int = NOISE_BLOCKS) -> list[int]:
    """Replication indexes where each block starts, and ``runs`` at the end."""
    return [b * runs // blocks for b in range(blocks + 1)]


def sensitivity(
    spec: SweepSpec, dsg: Design, y: list[float], held_blocks: list[list[int]] | None = None
) -> dict[str, Any] | None:
    """Sensitivity indices of ``p_meeting`` for a Sobol or Morris design, with 95% intervals.

    Sobol: first-order ``S1`` and total ``ST`` indices with 95% half-widths
    (``S1_conf``, ``ST_conf``), corrected for Monte Carlo noise when
    ``held_blocks`` (per point, the meetings held in each of the
    :data:`NOISE_BLOCKS` blocks of replications) is given: see
    :func:`sobol_indices`. Morris: ``mu_star`` (mean absolute elementary effect,
    per the whole range of the parameter) with ``mu_star_conf``, and ``sigma``
    (spread of the effects: interactions or non-linearity); with ``held_blocks``
    also ``mu_star_noise``, the mu* that Monte Carlo noise alone would give.
    Each parameter also lists the indices whose interval is wider than the
    index itself (``wide``) and roughly how many samples would settle them
    (``samples_needed``, see :func:`trust`); ``ranking`` groups the parameters
    whose order is not established (:func:`ranking`). Returns None for other
    designs.
    """
    if spec.design not in ("sobol", "morris"):
        return None
    if any(not math.isfinite(v) for v in y):
        return {"error": "some design points failed; indices need every point"}
    require("sensitivity", f"the {spec.design} design")
    assert spec.samples is not None
    problem = _problem(spec.params)
    yy = np.asarray(y, dtype=float)
    names = [p.name for p in spec.params]
    blocks = _block_estimates(spec.runs, held_blocks)
    out: dict[str, Any] = {"method": spec.design, "output": "p_meeting", "samples": spec.samples}
    if spec.design == "sobol":
        res = sobol_indices(problem, yy, blocks, seed=spec.seed)
        if "error" in res:
            return {"error": res["error"]}
        keys: tuple[str, ...] = ("S1", "S1_conf", "ST", "ST_conf")
        out["noise_share"] = res["noise_share"]
    else:
        from SALib.analyze import morris

        assert dsg.unit is not None
        res = morris.analyze(problem, dsg.unit, yy, num_levels=MORRIS_LEVELS, seed=spec.seed)
        keys = ("mu_star", "mu_star_conf", "sigma", "mu")
        if blocks is not None:
            res["mu_star_noise"] = _morris_noise(problem, dsg.unit, blocks)
            keys = (*keys, "mu_star_noise")
    params = {n: {k: _clean(float(res[k][i])) for k in keys} for i, n in enumerate(names)}
    for v in params.values():
        v.update(trust(v, spec.design, spec.samples))
    out["params"] = params
    out["noise_corrected"] = blocks is not None
    out["ranking"] = ranking(out)
    return out


def trust(v: dict[str, Any], method: str, samples: int) -> dict[str, Any]:
    """Which of a parameter's indices have a 95% interval wider than the index itself,
    and roughly how many samples would settle them.

    Such an index is not known even to be above 0. Half-widths shrink like
    1/sqrt(N), so N samples giving half-width h need about N * (h / target)^2
    samples for a half-width ``target``: the index itself (the interval would
    then just exclude 0), but at least :data:`NEGLIGIBLE` (within that of 0, an
    index is settled as negligible); for Sobol, the next power of 2.
    ``samples_needed`` is None when nothing is flagged or the flagged intervals
    are already narrower than :data:`NEGLIGIBLE`; ``target`` is the half-width
    ``samples_needed`` aims at, so a reader can tell "would exclude 0" (target
    = the index) from "would tell whether it is negligible" (target =
    :data:`NEGLIGIBLE`, for an index smaller than that).
    """
    pairs = [("S1", "S1_conf"), ("ST", "ST_conf")] if method == "sobol" else [
        ("mu_star", "mu_star_conf")]  # fmt: skip
    wide = []
    needed, target = 0, None
    for k, c in pairs:
        x, h = v.get(k), v.get(c)
        if x is None or h is None or not h > abs(x):
            continue
        wide.append(k)
        aim = max(abs(x), NEGLIGIBLE)
        n = math.ceil(samples * (h / aim) ** 2)
        if n > needed:
            needed, target = n, aim
    if needed <= samples:
        return {"wide": wide, "samples_needed": None, "target": None}
    assert target is not None  # set with ``needed``
    if method == "sobol":
        needed = 1 << (needed - 1).bit_length()
    return {"wide": wide, "samples_needed": needed, "target": _clean(target)}


def ranking(sens: dict[str, Any]) -> list[list[str]]:
    """Parameters from most to least influential (by ST, or mu* for Morris), in groups
    whose 95% intervals overlap: the order within a group is not established."""
    key, conf = ("ST", "ST_conf") if sens["method"] == "sobol" else ("mu_star", "mu_star_conf")
    items = [(n, v[key] or 0.0, v[conf] or 0.0) for n, v in sens["params"].items()]
    items.sort(key=lambda t: -t[1])
    groups: list[list[str]] = []
    low = math.inf
    for n, x, h in items:
        if groups and x + h >= low:
            groups[-1].append(n)
        else:
            groups.append([n])
        low = min(low, x - h) if len(groups[-1]) > 1 else x - h
    return groups


Blocks = tuple[np.ndarray, np.ndarray]
"""Per-block P(meeting), ``(blocks, points)``, and each block's share of the runs."""


def _block_estimates(runs: int, held_blocks: list[list[int]] | None) -> Blocks | None:
    if held_blocks is None:
        return None
    sizes = np.diff(block_bounds(runs, len(held_blocks[0]) if held_blocks else NOISE_BLOCKS))
    keep = sizes > 0
    if keep.sum() < 2:
        return None  # fewer than two independent blocks: no correction possible
    held = np.asarray(held_blocks, dtype=float).T[keep]  # (blocks, points)
    return held / sizes[keep][:, None], sizes[keep] / runs


def sobol_indices(
    problem: dict[str, Any],
    y: np.ndarray,
    blocks: Blocks | None = None,
    seed: int | None = None,
    resamples: int = RESAMPLES,
    conf_level: float = 0.95,
) -> dict[str, Any]:
    """First-order and total Sobol indices of ``y`` on SALib's Sobol design, corrected
    for Monte Carlo noise, with 95% bootstrap half-widths.

    The estimators are SALib's (Saltelli et al. 2010 for S1, Jansen for ST, both
    divided by the variance of the A and B rows; for noise-free ``y`` the numbers
    are those of :func:`SALib.analyze.sobol.analyze`, intervals included). All
    three are *quadratic* in ``y``. Each P(meeting) is an estimate, ``y = f + e``
    with Monte Carlo noise ``e``, so every quadratic ``Q(y)`` is biased by
    ``Q(e)``: noise inflates the variance and the total indices (a parameter with
    no effect on ``f`` gets ``ST > 0``, and a bootstrap interval around it
    excludes 0). With common random numbers the noise is correlated between
    points in a way the results do not show, so its size cannot simply be taken
    as ``p(1 - p) / runs``.

    What is known exactly is that a point's replications fall in independent
    blocks (different streams), ``y = sum_r w_r y_r`` with ``w_r`` each block's
    share of the runs. For two blocks ``r != s`` the noises are independent with
    mean 0, so the cross term ``B(y_r, y_s)`` of ``Q`` (its bilinear form) has
    expectation ``Q(f)``: the weighted mean of the cross terms,
    ``(Q(y) - sum_r w_r^2 Q(y_r)) / (1 - sum_r w_r^2)``, is unbiased whatever the
    correlation between points. ``blocks`` is :data:`Blocks`; None means no
    correction.

    The intervals' variance is the bootstrap's, resampling the rows of the
    design as SALib does (same resamples for the same seed, 0 included) and
    recomputing the corrected indices on each, plus a delete-one-block
    jackknife's (:func:`_jackknife`), which sees the noise that common random
    numbers make common to rows. ``noise_share`` is the part of the variance of
    ``y`` across the design that is Monte Carlo noise. The centring by the mean
    of ``y`` (as SALib does) is data-dependent, a bias of order noise / N.
    """
    from SALib.analyze.sobol import separate_output_values

    d = int(problem["num_vars"])
    n = y.size // (d + 2)
    centre = float(y.mean())
    ys = [y] if blocks is None else [y, *blocks[0]]
    parts = [separate_output_values(v - centre, d, n, False)[:3] for v in ys]
    w = np.zeros(0) if blocks is None else blocks[1]
    w2 = float((w**2).sum())

    def stats(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Variance (k,), S1 and ST numerators (k, d) on the rows ``idx`` (n, k)."""
        qs = []
        for a, b, ab in parts:
            a_, b_, ab_ = a[idx], b[idx], ab[idx]  # (n, k), (n, k), (n, k, d)
            m = (a_.mean(0) + b_.mean(0)) / 2
            var = (a_**2 + b_**2).mean(0) / 2 - m**2
            s1 = np.mean(b_[..., None] * (ab_ - a_[..., None]), axis=0)
            st = 0.5 * np.mean((a_[..., None] - ab_) ** 2, axis=0)
            qs.append((var, s1, st))
        if len(qs) == 1:
            return qs[0]
        full, per_block = qs[0], qs[1:]
        var, s1, st = (
            (full[i] - sum(wr**2 * q[i] for wr, q in zip(w, per_block, strict=True))) / (1 - w2)
            for i in range(3)
        )
        return var, s1, st

    var, s1, st = stats(np.arange(n)[:, None])
    raw_var = float(np.var(np.r_[parts[0][0], parts[0][1]]))
    if not var[0] > 1e-12:
        return {
            "error": "P(meeting) does not vary across the design beyond Monte Carlo noise; "
            "no parameter is shown to matter (more runs per point would tell more)"
        }
    rng = np.random.default_rng(seed)  # unlike SALib, seed 0 is a seed too: reproducible
    r = rng.integers(n, size=(n, resamples))
    bvar, bs1, bst = stats(r)
    ok = bvar > 1e-12
    boot1 = (bs1[ok] / bvar[ok, None]).var(axis=0, ddof=1)
    bootT = (bst[ok] / bvar[ok, None]).var(axis=0, ddof=1)
    jack1 = jackT = np.zeros(d)
    if blocks is not None:
        jack1, jackT = _jackknife(parts[1:], w)
    z = NormalDist().inv_cdf(0.5 + conf_level / 2)
    return {
        "S1": s1[0] / var[0],
        "ST": st[0] / var[0],
        "S1_conf": z * np.sqrt(boot1 + jack1),
        "ST_conf": z * np.sqrt(bootT + jackT),
        "noise_share": _clean(max(0.0, 1 - float(var[0]) / raw_var)) if raw_var > 0 else 0.0,
    }


def _jackknife(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Delete-one-block jackknife variances of the corrected S1 and ST.

    The bootstrap over rows of the design sees Monte Carlo noise only as far as
    it is independent from row to row; with common random numbers it is not
    (every row uses the same replications). Blocks are independent whatever the
    design, so the spread of the indices computed without each block in turn
    measures the noise's share of the error; it is added to the bootstrap's.
    """
    a = np.asarray([p[0] for p in parts])  # (R, n)
    b = np.asarray([p[1] for p in parts])
    ab = np.asarray([p[2] for p in parts])  # (R, n, d)
    n = a.shape[1]
    m = (a.mean(1) + b.mean(1)) / 2
    var = (a @ a.T + b @ b.T) / (2 * n) - np.outer(m, m)  # bilinear forms, (R, R)
    x = np.einsum("rn,snd->rsd", b, ab - a[..., None]) / n
    s1 = (x + x.transpose(1, 0, 2)) / 2
    diff = a[..., None] - ab
    st = np.einsum("rnd,snd->rsd", diff, diff) / (2 * n)
    blocks = len(w)
    est1, estT = [], []
    for out in range(blocks):
        ww = np.where(np.arange(blocks) == out, 0.0, w)
        cross = np.outer(ww, ww)
        np.fill_diagonal(cross, 0.0)
        v = float((cross * var).sum())
        if not v > 1e-12:
            continue
        est1.append(np.einsum("rs,rsd->d", cross, s1) / v)
        estT.append(np.einsum("rs,rsd->d", cross, st) / v)
    if len(est1) < 2:
        return np.zeros(ab.shape[2]), np.zeros(ab.shape[2])
    k = len(est1)
    return (
        (k - 1) / k * ((np.asarray(est1) - np.mean(est1, axis=0)) ** 2).sum(axis=0),
        (k - 1) / k * ((np.asarray(estT) - np.mean(estT, axis=0)) ** 2).sum(axis=0),
    )


def _morris_noise(problem: dict[str, Any], unit: np.ndarray, blocks: Blocks) -> np.ndarray:
    """The mu* that Monte Carlo noise alone would give each parameter.

    An elementary effect is linear in ``y``: its value from all runs is the
    weighted mean of its per-block values, and the spread of those (R
    independent blocks) estimates its noise variance without assuming anything
    about the correlation between points: ``sum_r w_r (e_r - e)^2 / (R - 1)``.
    mu* of pure noise with that variance is its mean absolute value, sqrt(2/pi)
    times its standard deviation; a mu* not clearly above it is not an effect.
    """
    d = int(problem["num_vars"])
    est, w = blocks
    e = np.asarray([_elementary_effects(unit, np.asarray(yb), d) for yb in est])
    mean = np.tensordot(w, e, axes=1)  # (d, trajectories): the effects of all runs
    var = np.tensordot(w, (e - mean) ** 2, axes=1) / (len(w) - 1)
    return np.sqrt(2 / np.pi) * np.sqrt(var.mean(axis=1))


def _elementary_effects(unit: np.ndarray, y: np.ndarray, d: int) -> np.ndarray:
    """Morris elementary effects, shape (d, trajectories), from a unit-cube design.

    Each trajectory is d + 1 rows; consecutive rows differ in one coordinate
    by ±delta, and the effect of that coordinate is the change in ``y`` over the
    change in it (SALib's unscaled effects, computed here so as not to rely on
    its private helpers).
    """
    x = unit.reshape(-1, d + 1, d)
    yt = y.reshape(-1, d + 1)
    dx = np.diff(x, axis=1)  # (trajectories, d, d): one non-zero per step
    dy = np.diff(yt, axis=1)  # (trajectories, d)
    which = np.abs(dx).argmax(axis=2)  # the coordinate each step moves
    step = np.take_along_axis(dx, which[..., None], axis=2)[..., 0]
    out = np.empty((d, x.shape[0]))
    for t in range(x.shape[0]):
        out[which[t], t] = dy[t] / step[t]
    return out


def _clean(x: float) -> float | None:
    return x if math.isfinite(x) else None
