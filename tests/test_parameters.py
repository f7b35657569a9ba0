"""The parameter table: compiled once, read by ``negosim params``, sweeps and reports.

``CompiledScenario.parameters`` is the one place where a parameter's kind,
value, range and uncertainty are worked out; these tests check that what
``params`` shows, what a sweep varies and what the engine runs on agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, base_scenario

import negosim
from negosim.compiler.describe import parameter_rows
from negosim.output.explain import explain
from negosim.runs.backends import InProcess
from negosim.runs.designs import ParamRange, SweepSpec, design, resolve_params
from negosim.runs.sweeprun import run_sweep

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def quoted_number_scenario() -> dict[str, Any]:
    """A plain number written as a quoted string ('0.5'), used as an event rate."""
    data = base_scenario()
    data["params"] = {"x": {"default": "0.5", "assumption": "test"}}
    data["events"] = {"noise": {"rate": "x", "text": "noise"}}
    return data


def test_a_quoted_number_is_a_number_everywhere(write_scenario, cli) -> None:
    path = write_scenario(quoted_number_scenario())
    cs = negosim.load(path)
    assert cs.params == {"x": 0.5}
    (p,) = cs.parameters
    assert (p.name, p.value, p.kind, p.written, p.unit) == ("x", 0.5, "number", "0.5", None)
    assert (p.low, p.high, p.display) == (None, None, "0.5")
    proc = cli("params", path, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert (row["default"], row["display"], row["kind"]) == (0.5, "0.5", "number")
    assert (row["unit"], row["low"], row["high"]) == (None, None, None)
    table = cli("params", path)
    assert "30min" not in table.stdout and "0.5" in table.stdout
    assert "30min" not in explain(cs) and "0.5 (x)" in explain(cs)


def test_a_quoted_number_sweeps_as_a_number(write_scenario, tmp_path: Path) -> None:
    """Swept as a duration, every point would set x to '0.2h' and fail as an event rate."""
    path = write_scenario(quoted_number_scenario())
    cs = negosim.load(path)
    params = resolve_params(cs, {"x": ParamRange(low=0.2, high=0.8, steps=3)}, "grid")
    assert params[0].kind == "number"
    spec = SweepSpec(str(path), params, "grid", runs=50, seed=1)
    res = run_sweep(spec, InProcess())
    assert [r["status"] for r in res.rows] == ["ok"] * 3, res.failures


def test_the_table_is_in_file_order_and_says_where_each_parameter_is() -> None:
    cs = negosim.load(SCENARIOS / "munich.yaml")
    assert [p.name for p in cs.parameters] == list(cs.model.params)
    text = (SCENARIOS / "munich.yaml").read_text(encoding="utf-8").splitlines()
    for p in cs.parameters:
        assert p.file == str(SCENARIOS / "munich.yaml") and p.path == f"params.{p.name}"
        assert p.line is not None and text[p.line - 1].strip().startswith(f"{p.name}:")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_params_sweep_and_compile_agree(path: Path) -> None:
    """For every parameter of every shipped scenario: the value compiled is the value
    ``params`` shows; a sweep varies it in the kind and range ``params`` shows; and a
    point's value, set the way a sweep sets it, compiles to that very value."""
    cs = negosim.load(path)
    rows = {r["name"]: r for r in parameter_rows(cs)}
    assert list(rows) == list(cs.model.params) == [p.name for p in cs.parameters]
    swept: list[tuple[Any, Any, list[float]]] = []  # (parameter, its sweep param, values)
    for p in cs.parameters:
        row = rows[p.name]
        assert row["default"] == p.value == cs.params[p.name]
        assert (row["kind"], row["low"], row["high"]) == (p.kind, p.low, p.high)
        assert row["uncertainty"] == (p.uncertainty.text if p.uncertainty else None)
        if p.uncertainty is None and (p.low is None or p.high is None or p.low >= p.high):
            continue  # nothing to sample: a sweep needs a range for it (checked in test_sweep)
        (sp,) = resolve_params(cs, {p.name: ParamRange()}, "lhs")
        assert sp.kind == p.kind
        spec = SweepSpec(str(path), [sp], "lhs", samples=8, seed=3)
        values = [point[p.name] for point in design(spec).points]
        for v in values:
            if p.low is not None:
                assert v >= p.low - 1e-12, (p.name, v)
            if p.high is not None:
                assert v <= p.high + 1e-12, (p.name, v)
        swept.append((p, sp, values))
    # Each parameter's k-th value, all set together: one load per k (not one per value).
    for k in range(8):
        again = negosim.load(path, [sp.set_value(values[k]) for _, sp, values in swept])
        for p, _, values in swept:
            v = values[k]
            (q,) = [x for x in again.parameters if x.name == p.name]
            assert again.params[p.name] == q.value
            assert q.kind == p.kind and q.value == pytest.approx(v, rel=1e-12, abs=1e-12)
