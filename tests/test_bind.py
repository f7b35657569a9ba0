"""Binding parameter values to a compiled scenario (negosim/compiler/bind.py).

A sweep, a calibration and an uncertainty run compile their scenario once and
bind each point's values to it; the engines reuse what they built for the
scenario's structure. Everything here holds that to compiling each point from
scratch (what they did before): the same tables, the same rows on both engines
bit for bit, the same error messages; and that the runs really compile once.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
from conftest import REPO, SCENARIOS, base_scenario, with_ask_step
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import negosim
from negosim.compiler import dists, loader
from negosim.compiler.bind import bind
from negosim.compiler.loader import compile_model
from negosim.compiler.parameters import Parameter
from negosim.compiler.tables import CompiledScenario
from negosim.engine import generated
from negosim.engine.batch import BatchEngine, Unsupported
from negosim.engine.simulation import Engine
from negosim.errors import NegosimError, ScenarioError, UsageError
from negosim.runs import calibrate as calibrate_mod
from negosim.runs import uncertainty
from negosim.runs.backends import InProcess, batch_of
from negosim.runs.designs import ParamRange, SweepSpec, design, point_seed, resolve_params
from negosim.runs.runner import replicate
from negosim.runs.sweeprun import point_sets, run_sweep
from negosim.scenario.overrides import set_param_defaults

RUNS = 120


def _with_params(path: Path) -> bool:
    try:
        return bool(negosim.load(path).parameters)
    except NegosimError:
        return False  # a base, or a file made to fail


FILES = sorted(
    p
    for p in [*SCENARIOS.glob("*.yaml"), *(REPO / "tests" / "data").glob("**/*.yaml")]
    if _with_params(p)
)


def recompiled(cs: CompiledScenario, sets: list[tuple[str, Any]]) -> CompiledScenario:
    """The point as sweeps made it before binding: the model with the values set,
    compiled from scratch."""
    return compile_model(set_param_defaults(cs.model, sets), None, [*cs.sets, *sets])


def _written(p: Parameter, x: float) -> tuple[str, Any]:
    """The ``--set`` pair giving ``p`` the value ``x`` (hours for a duration)."""
    if p.kind == "duration":
        return (p.name, np.format_float_positional(x, trim="-") + "h")
    return (p.name, x)


@st.composite
def point(draw: st.DrawFn, cs: CompiledScenario) -> list[tuple[str, Any]]:
    """Values for a few of ``cs``'s parameters: in range mostly, now and then outside
    (then both ways must refuse them alike)."""
    names = draw(st.lists(st.sampled_from(cs.parameters), min_size=1, unique_by=lambda p: p.name))
    out = []
    for p in names:
        low = p.low if p.low is not None else min(0.0, p.value)
        high = p.high if p.high is not None else max(2 * p.value, low + 1.0)
        x = draw(
            st.one_of(
                st.floats(low, high, allow_nan=False),
                st.sampled_from([low, high, p.value, 0.0, -1.0, high + 1.0]),
            )
        )
        out.append(_written(p, x))
    return out


def assert_same_point(cs: CompiledScenario, sets: list[tuple[str, Any]], seed: int = 7) -> None:
    """``bind(cs, sets)`` is the point compiled from scratch: its tables, its rows on
    both engines, or the error it raises, message for message."""
    try:
        want = recompiled(cs, sets)
    except (ScenarioError, UsageError) as exc:
        with pytest.raises(type(exc)) as got:
            bind(cs, sets)
        assert str(got.value) == str(exc)
        return
    got = bind(cs, sets)
    assert got.initial == want.initial and got.params == want.params
    assert [(p.name, p.value, p.written, p.low, p.high, p.kind) for p in got.parameters] == [
        (p.name, p.value, p.written, p.low, p.high, p.kind) for p in want.parameters
    ]
    assert got.model == want.model
    for a, b in zip(got.clocks, want.clocks, strict=True):
        assert (a.id, dists.spec(a.delay)) == (b.id, dists.spec(b.delay))
    for sa, sb in zip(got.stays, want.stays, strict=True):
        for what in ("arrival", "departure"):
            fa, fb = getattr(sa, what), getattr(sb, what)
            assert (fa is None) == (fb is None) and (fa is None or dists.spec(fa) == dists.spec(fb))
    for ea, eb in zip(got.scheduled, want.scheduled, strict=True):
        assert (ea.jitter is None) == (eb.jitter is None)
        assert ea.jitter is None or dists.spec(ea.jitter) == dists.spec(eb.jitter)
    # The simpy engine: the generated replication of the bound point is the structure's
    # (when it is generated at all), and its rows are the recompiled point's.
    mine, theirs = Engine(got), Engine(want)
    rows = _rows(theirs, seed)
    assert _rows(mine, seed) == rows
    base_gen = Engine(cs).generated
    if got.structure is cs.structure and base_gen is not None and mine.generated is not None:
        assert mine.generated.source is base_gen.source  # compiled once, for both
    # The batch engine: bound from the base's, the rows of one built for the point.
    try:
        proto = BatchEngine(cs)
    except Unsupported:
        return
    try:
        fresh = BatchEngine(want, theirs)
    except Unsupported as exc:  # these values only (e.g. a rate of 5e-324): refused alike
        with pytest.raises(Unsupported, match=re.escape(str(exc))):
            proto.bind(got, mine) if got.structure is cs.structure else BatchEngine(got, mine)
        assert batch_of(mine) is None  # a sweep runs that point on simpy
        return
    bound = proto.bind(got, mine) if got.structure is cs.structure else BatchEngine(got, mine)
    assert _rows(bound, seed) == rows
    assert _rows(fresh, seed) == rows


def _rows(engine: Engine | BatchEngine, seed: int) -> list[Any] | str:
    """The rows of replications 0..RUNS-1, or the error that stops them (its message)."""
    try:
        return list(engine.run_block(seed, 0, RUNS))
    except NegosimError as exc:
        return str(exc)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_bound_point_is_the_point_compiled_again(path: Path, data: st.DataObject) -> None:
    cs = _loaded(path)
    assert_same_point(cs, data.draw(point(cs)), seed=data.draw(st.integers(0, 2**32)))


_LOADED: dict[Path, CompiledScenario] = {}


def _loaded(path: Path) -> CompiledScenario:
    if path not in _LOADED:
        _LOADED[path] = negosim.load(path)
    return _LOADED[path]


def test_every_shipped_scenario_with_parameters_is_covered() -> None:
    shipped = [p for p in FILES if p.parent == SCENARIOS]
    assert len(shipped) >= 20 and SCENARIOS / "munich.yaml" in shipped
    assert any("tests" in p.parts for p in FILES)


def _parametrised() -> dict[str, Any]:
    """A scenario with a parameter in every place one can be: delays of every kind
    (empirical too), a stay's arrival and departure, a scheduled event's jitter, a
    random event's rate, option weights, guards and effects."""
    data = with_ask_step(base_scenario())
    data["calendar"]["horizon"] = "30h"
    data["calendar"]["windows"] = {"w1": {"start": "2h", "end": "20h"}}
    h = {"kind": "duration", "assumption": "t"}
    data["params"] = {
        "p": {"kind": "probability", "default": 0.4, "assumption": "t"},
        "k": {"kind": "number", "default": 2.0, "low": 0.5, "high": 6, "assumption": "t"},
        "arr": {**h, "default": "3h", "high": "6h"},
        "dep": {**h, "default": "2h", "high": "5h"},
        "jit": {**h, "default": "3h", "high": "6h"},
        "med": {**h, "default": "3h", "high": "8h"},
        "p90": {**h, "default": "9h", "high": "20h"},
        "hold": {**h, "default": "0h", "high": "2h"},
        "lo": {**h, "default": "1h", "high": "1h"},
        "mean": {**h, "default": "4h", "high": "10h"},
        "rate": {"kind": "rate", "default": 6.0, "high": 12, "assumption": "t"},
    }
    data["facts"] = {
        "n": {"type": "number", "initial": 0, "low": 0, "high": 4},
        "x": {"type": "number", "initial": 1.5},
    }
    data["actors"]["a"]["present"] = [
        {"from": "0h", "until": "12h", "arrival": {"dist": "uniform", "low": "0h", "high": "arr"}},
        {"from": "10h", "until": "30h",
         "departure": {"dist": "empirical", "values": ["0h", "dep", "5h"], "weights": [1, 2, 1]}},
    ]  # fmt: skip
    data["actors"]["b"] = {"name": "B"}
    data["events"] = {
        "news": {"at": "5h", "jitter": {"dist": "triangular", "min": "-2h", "mode": "0h",
                                        "max": "jit"},
                 "guard": "x < k * 2", "set": {"x": "x * k"}},
        "shock": {"rate": "rate", "window": "w1", "set": {"n": "n + 1"}},
        "deadline": {"at": "28h", "trigger": "fail"},
    }  # fmt: skip
    data["actions"] = {
        "ask": {"actor": "a", "from": "waiting", "guard": "present('a') and k > 1",
                "delay": {"dist": "lognormal", "median": "med", "p90": "p90"},
                "options": {
                    "yes": {"weight": "p * clamp(k, 1, 3)", "trigger": "ask"},
                    "no": {"weight": "max(0, 1 - p * k / 3)", "set": {"n": "n - 1"}},
                }},
        "nudge": {"actor": "b", "from": ["waiting", "asked"], "guard": "n < k",
                  "delay": {"dist": "fixed", "value": "hold"}, "set": {"n": "n + 1"}},
        "meet": {"actor": "b", "from": "asked",
                 "delay": {"dist": "exponential", "mean": "mean"},
                 "options": {"go": {"weight": "p", "trigger": "meet"},
                             "wait": {"weight": "1 - p"}}},
        "walk": {"actor": "a", "from": "asked", "guard": "exp(n) > 30 / k",
                 "delay": {"dist": "uniform", "low": "lo", "high": "p90"}, "trigger": "fail"},
    }  # fmt: skip
    return data


@pytest.fixture(scope="module")
def parametrised(tmp_path_factory: pytest.TempPathFactory) -> CompiledScenario:
    import yaml

    path = tmp_path_factory.mktemp("bind") / "p.yaml"
    path.write_text(yaml.safe_dump(_parametrised(), sort_keys=False), encoding="utf-8")
    return negosim.load(path)


def test_the_parametrised_scenario_has_a_site_of_every_kind(
    parametrised: CompiledScenario,
) -> None:
    kinds = {s.what for s in parametrised.param_sites}
    assert kinds == {"delay", "arrival", "departure", "jitter", "rate"}
    assert Engine(parametrised).generated is not None
    BatchEngine(parametrised)  # covered: the comparisons below run both engines


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_place_a_parameter_can_be_binds_as_it_compiles(
    parametrised: CompiledScenario, data: st.DataObject
) -> None:
    assert_same_point(
        parametrised, data.draw(point(parametrised)), seed=data.draw(st.integers(0, 99))
    )


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        ([("p", 1.5)], r"--set p=1\.5: params\.p\.default: must be a probability "
                       r"\(0 to 1\), found 1\.5"),
        # Once, at its bound: not again as "p90 (9) must be above the median (12)".
        ([("med", "12h")], r"^--set med=12h: params\.med\.default: must be at most 8h "
                           r"\(params\.med\.high\), found 12h$"),
        ([("hold", "-1h")], r"params\.hold\.default: must be at least 0"),
        ([("rate", -1.0)], r"params\.rate\.default: must be at least 0"),
        ([("nope", 1.0)], r"no parameter named 'nope'"),
    ],
)  # fmt: skip
def test_refused_values_say_what_compiling_says(
    parametrised: CompiledScenario, sets: list[tuple[str, Any]], match: str
) -> None:
    with pytest.raises((ScenarioError, UsageError), match=match) as got:
        bind(parametrised, sets)
    with pytest.raises(type(got.value)) as want:
        recompiled(parametrised, sets)
    assert str(got.value) == str(want.value)


def test_a_rate_that_becomes_zero_compiles_the_point_again(
    parametrised: CompiledScenario,
) -> None:
    """A zero-rate event has no clock: the structure changes, so bind compiles."""
    off = bind(parametrised, [("rate", 0.0)])
    assert off.structure is not parametrised.structure
    assert len(off.clocks) == len(parametrised.clocks) - 1
    assert_same_point(parametrised, [("rate", 0.0)])
    on = bind(off, [("rate", 2.0)])  # and back
    assert on.structure is not off.structure and len(on.clocks) == len(parametrised.clocks)
    assert_same_point(off, [("rate", 2.0)])


def test_a_bound_point_shares_what_values_do_not_change(parametrised: CompiledScenario) -> None:
    point = bind(parametrised, {"mean": "7h", "p": 0.9})
    assert point.structure is parametrised.structure
    assert point.params["mean"] == 7.0 and point.params["p"] == 0.9
    assert point.sets == (("mean", "7h"), ("p", 0.9))
    meet = [c.id for c in parametrised.clocks].index("meet")
    for i, (a, b) in enumerate(zip(point.clocks, parametrised.clocks, strict=True)):
        assert (a is b) == (i != meet)  # only the clock whose delay reads "mean" is new
    assert point.stays == parametrised.stays and point.stays[0] is parametrised.stays[0]
    assert point.machine is parametrised.machine and point.whens is parametrised.whens
    assert point.with_values({}) is point
    assert parametrised.with_values({"p": 0.9}).params == point.params | {"mean": 4.0}


def test_the_compiled_scenario_is_frozen(parametrised: CompiledScenario) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field"):
        parametrised.initial = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(parametrised, "source", "elsewhere.yaml")  # noqa: B010
    with pytest.raises(TypeError):
        parametrised.params["p"] = 0.5  # type: ignore[index]
    assert isinstance(parametrised.initial, tuple) and isinstance(parametrised.sets, tuple)
    # The validated model inside is frozen too (pydantic's frozen models).
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        parametrised.model.id = "hacked"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        next(iter(parametrised.model.actions.values())).actor = "b"  # type: ignore[misc]
    # A replace is a scenario of its own structure: nothing built for this one is reused.
    other = dataclasses.replace(parametrised, horizon=10.0)
    assert other.structure is not parametrised.structure


# --- the runs compile once -------------------------------------------------------------------


class Counts:
    """How often the compiler, the code generator and the batch engine build."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.compiles = 0
        self.batch = 0
        real_compile = loader.compile_scenario
        real_init = BatchEngine.__init__

        def compile_scenario(*a: Any, **k: Any) -> Any:
            self.compiles += 1
            return real_compile(*a, **k)

        def init(be: BatchEngine, *a: Any, **k: Any) -> None:
            self.batch += 1
            real_init(be, *a, **k)

        monkeypatch.setattr(loader, "compile_scenario", compile_scenario)
        monkeypatch.setattr(BatchEngine, "__init__", init)
        self.factories = generated.made_factories

    @property
    def generated(self) -> int:
        return generated.made_factories - self.factories


def _sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    # A title of its own: engines are cached by model content across tests.
    text = (SCENARIOS / "munich.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("\ntitle:", "\ntitle: bind test -", 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("engine", ["simpy", "batch"])
def test_a_sweep_compiles_its_scenario_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    path = _sweep_file(tmp_path)
    cs = negosim.load(path)
    ranges = {"p_us_formal_request": ParamRange(low="0.05", high="0.6", steps=3),
              "round_median": ParamRange(values=["4h", "10h"])}  # fmt: skip
    spec = SweepSpec(str(path), resolve_params(cs, ranges, "grid"), "grid", runs=40, seed=3)
    counts = Counts(monkeypatch)
    res = run_sweep(spec, InProcess(), engine=engine)
    assert len(res.rows) == 6 and all(r["status"] == "ok" for r in res.rows)
    assert counts.compiles == 1  # the load; no point is compiled
    assert counts.generated <= 1  # the structure's code, once (the batch engine may not need it)
    assert counts.batch == (1 if engine == "batch" else 0)
    # Each row is the one the point compiled from scratch gives.
    dsg = design(spec)
    for j in (0, 5):
        want = recompiled(cs, list(point_sets(spec, dsg.points[j])))
        tally = replicate(want, point_seed(spec.seed, j, spec.crn), 0, 40, "simpy")
        row = res.rows[j]
        assert (row["held"], row["n_held"], row["n_censored"]) == (
            tally.held,
            tally.outcomes.get("held", 0),
            tally.outcomes.get("censored", 0),
        )


@pytest.mark.parametrize("engine", ["batch", "simpy"])
def test_the_sweep_command_compiles_its_scenario_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """From the command line too: the load that resolves the parameters is the one the
    points bind to (it used to be loaded three times before the first point)."""
    from negosim.cli.main import main

    path = _sweep_file(tmp_path)
    counts = Counts(monkeypatch)
    argv = ["sweep", str(path), "--param", "p_us_formal_request=0.05:0.6:3", "--runs", "40",
            "--workers", "1", "--engine", engine, "--format", "json"]  # fmt: skip
    assert main(argv) == 0
    assert counts.compiles == 1


def test_an_uncertainty_run_compiles_its_scenario_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cs = negosim.load(_sweep_file(tmp_path))
    counts = Counts(monkeypatch)
    u = uncertainty.simulate_uncertain(cs, runs=240, seed=2, draws=6, engine="batch")
    assert u.draws == 6 and counts.compiles == 0 and counts.batch <= 1
    # A draw's P(meeting) is that of its values compiled from scratch.
    for d in (0, 5):
        _, sets = uncertainty.draw_sets(uncertainty.uncertain_parameters(cs), 2, d)
        want = recompiled(cs, list(sets))
        rows = list(Engine(want).run_block(2, d * 40, (d + 1) * 40))
        assert u.draw_p[d] == sum(r.held for r in rows) / 40


def test_a_calibration_compiles_each_case_once(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (SCENARIOS / "tutorial.yaml").read_text(encoding="utf-8")
    cs = negosim.load_string(text.replace("\ntitle:", "\ntitle: bind calibration -", 1))
    name = cs.parameters[0].name
    counts = Counts(monkeypatch)
    tables = [calibrate_mod.scenario_at(cs, {name: x}) for x in (0.1, 0.2, 0.3)]
    for t in tables:
        calibrate_mod.columns(t, 50, 1, "batch")
    assert counts.compiles == 0 and counts.batch <= 1 and counts.generated <= 1
    assert all(t.structure is cs.structure for t in tables)


def test_the_batch_engine_of_a_point_is_bound_not_built(parametrised: CompiledScenario) -> None:
    points = [bind(parametrised, {"p": x, "mean": f"{1 + x}h"}) for x in (0.2, 0.5, 0.8)]
    engines = [batch_of(Engine(p)) for p in points]
    first = engines[0]
    assert first is not None
    for be, p in zip(engines[1:], points[1:], strict=True):
        assert be is not None and be.cs is p and be.vec is first.vec  # shared code
        assert be.initial != first.initial


def test_threads_binding_points_of_one_structure_at_once_agree(
    parametrised: CompiledScenario,
) -> None:
    """Points made and run on four threads at once give each point's own rows."""
    from concurrent.futures import ThreadPoolExecutor

    values = [0.1, 0.3, 0.5, 0.7, 0.9, 0.2, 0.4, 0.6]

    def run(x: float) -> list[Any]:
        return list(Engine(bind(parametrised, {"p": x})).run_block(4, 0, 60))

    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(run, values))
    for x, rows in zip(values, got, strict=True):
        assert rows == list(Engine(recompiled(parametrised, [("p", x)])).run_block(4, 0, 60))


def test_a_worker_compiles_the_model_once_and_binds_each_point(
    parametrised: CompiledScenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a worker process does with the jobs of a sweep (negosim.runs.backends)."""
    from negosim.runs import backends

    model = parametrised.model.model_copy(update={"title": "a worker's own model"})
    key = backends.model_key(model)
    fresh = compile_model(model)
    counts = Counts(monkeypatch)
    points = [(("p", x), ("mean", f"{2 + x}h")) for x in (0.1, 0.2, 0.3, 0.4)]
    for values in points:
        job = backends.Job(key, model, 3, 0, 50, "batch", values)
        tally, _ = backends.run_job_rows(job)
        want = recompiled(fresh, list(values))
        assert tally.held == sum(r.held for r in Engine(want).run_block(3, 0, 50))
    assert counts.compiles == 1 + len(points)  # the model once; here, each `want` too
    assert counts.batch == 1
    assert backends.engine_for(key, model, points[0]).cs.structure is (
        backends.engine_for(key, model).cs.structure
    )


def test_a_point_the_batch_engine_refuses_runs_on_simpy() -> None:
    """A rate of 5e-324 (found by hypothesis) gives a delay distribution the batch engine
    refuses although it covers the scenario: that point alone is run on simpy."""
    cs = negosim.load(SCENARIOS / "singapore-2018.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and quietly: no numpy warning reaches the user
        assert_same_point(cs, [("collapse_rate", 5e-324)])
