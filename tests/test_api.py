"""The Python API (issue 14): one documented surface, the CLI's numbers, Python errors."""

from __future__ import annotations

import csv
import html
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import negosim
from negosim import ScenarioError

REPO = Path(__file__).resolve().parent.parent
MUNICH = REPO / "scenarios" / "munich.yaml"
RUNS = 300


@pytest.fixture(scope="module")
def munich() -> negosim.CompiledScenario:
    return negosim.load(MUNICH)


def _json(done: Any) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _no_elapsed(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "elapsed_s"}


# --- the same numbers as the command line -----------------------------------------------


def test_estimate_to_dict_is_the_cli_json(cli: Callable[..., Any], munich: Any) -> None:
    est = negosim.simulate(munich, runs=RUNS, seed=3, set={"p_us_formal_request": 0.5})
    out = _json(
        cli("run", MUNICH, "--runs", RUNS, "--seed", 3, "--set", "p_us_formal_request=0.5",
            "--format", "json")
    )  # fmt: skip
    assert _no_elapsed(est.to_dict()) == _no_elapsed(out)
    assert est.by_part_of_day == out["by_part_of_day"]
    assert est.median_time_held == out["median_time_held"]


def test_simulate_takes_a_path_and_keeps_rows(munich: Any) -> None:
    a = negosim.simulate(MUNICH, runs=100, seed=1)
    b = negosim.simulate(munich, runs=100, seed=1, keep_rows=True)
    assert _no_elapsed(a.to_dict()) == _no_elapsed(b.to_dict())
    assert b.rows is not None and len(b.rows) == 100
    assert sum(r["held"] for r in b.rows) == b.held
    assert {r["outcome"] for r in b.rows} <= set(b.outcomes)


def test_comparison_to_dict_is_the_cli_json(cli: Callable[..., Any], munich: Any) -> None:
    cmp = negosim.compare(munich, set={"p_us_formal_request": 0.9}, runs=RUNS, seed=2)
    out = _json(
        cli("compare", MUNICH, "--runs", RUNS, "--seed", 2, "--set", "p_us_formal_request=0.9",
            "--format", "json")
    )  # fmt: skip
    assert _no_elapsed(cmp.to_dict()) == _no_elapsed(out)


def test_compare_base_set_is_the_cli_base_set(cli: Callable[..., Any], munich: Any) -> None:
    cmp = negosim.compare(munich, set={"p_china_declines": 0.0},
                          base_set={"p_us_formal_request": 0.2}, runs=200, seed=4)  # fmt: skip
    out = _json(
        cli("compare", MUNICH, "--runs", 200, "--seed", 4, "--set", "p_china_declines=0.0",
            "--base-set", "p_us_formal_request=0.2", "--format", "json")
    )  # fmt: skip
    assert _no_elapsed(cmp.to_dict()) == _no_elapsed(out)


def test_trace_to_dict_is_the_cli_json(cli: Callable[..., Any], munich: Any) -> None:
    t = negosim.trace(munich, seed=2023)
    out = _json(cli("trace", MUNICH, "--seed", 2023, "--format", "json"))
    assert t.to_dict() == out
    assert all(len(line) <= 80 for line in str(t).splitlines())


def test_sweep_rows_are_the_cli_csv(cli: Callable[..., Any], munich: Any, tmp_path: Path) -> None:
    sw = negosim.sweep(munich, params={"p_us_formal_request": (0.2, 0.8, 3)}, runs=100, seed=1)
    out = tmp_path / "s.csv"
    done = cli("sweep", MUNICH, "--param", "p_us_formal_request=0.2:0.8:3", "--runs", 100,
               "--seed", 1, "--out", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with out.open(encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    assert sw.columns == header
    assert [r["p_meeting"] for r in sw.rows] == pytest.approx([float(r["p_meeting"]) for r in rows])
    assert [row["p_us_formal_request"] for row in sw.rows] == [0.2, 0.5, 0.8]


def test_explain_is_the_cli_text(cli: Callable[..., Any], munich: Any) -> None:
    done = cli("explain", MUNICH)
    assert done.returncode == 0
    assert negosim.explain(munich).strip() == done.stdout.strip()


# --- set= and load_string ---------------------------------------------------------------


def test_set_takes_a_dict_and_the_old_pairs() -> None:
    by_dict = negosim.load(MUNICH, set={"p_us_formal_request": 0.5})
    by_pairs = negosim.load(MUNICH, [("p_us_formal_request", 0.5)])
    old_keyword = negosim.load(MUNICH, sets=[("p_us_formal_request", 0.5)])
    for cs in (by_dict, by_pairs, old_keyword):
        assert cs.params["p_us_formal_request"] == 0.5
    assert negosim.load(MUNICH, set={}).params == negosim.load(MUNICH).params


def test_set_on_a_loaded_scenario_adds_to_its_own(munich: Any) -> None:
    half = negosim.load(MUNICH, set={"p_us_formal_request": 0.5})
    a = negosim.simulate(half, runs=100, set={"p_china_declines": 0.1})
    b = negosim.simulate(
        MUNICH, runs=100, set={"p_us_formal_request": 0.5, "p_china_declines": 0.1}
    )
    assert _no_elapsed(a.to_dict()) == _no_elapsed(b.to_dict())
    assert a.overrides == ["p_us_formal_request=0.5", "p_china_declines=0.1"]


def test_load_string_locates_problems_in_the_string() -> None:
    text = MUNICH.read_text(encoding="utf-8")
    assert negosim.load_string(text).id == "munich-2023"
    with pytest.raises(ScenarioError) as info:
        negosim.load_string(text.replace("horizon:", "horizn:", 1))
    assert str(info.value).startswith("<string>:")
    assert re.match(r"^<string>:\d+:\d+: ", str(info.value).splitlines()[0])
    cs = negosim.load_string(text, set={"p_us_formal_request": 0.25})
    assert negosim.simulate(cs, runs=50, set={"p_china_declines": 0.1}).runs == 50


# --- errors that speak Python -------------------------------------------------------------


def test_unknown_set_name_names_the_keyword() -> None:
    with pytest.raises(ScenarioError) as info:
        negosim.load(MUNICH, set={"p_us_formal_reqest": 0.5})
    msg = str(info.value)
    assert msg.startswith("set={'p_us_formal_reqest': 0.5}: no parameter named")
    assert "did you mean p_us_formal_request" in msg
    assert "--set" not in msg and "<input>" not in msg


def test_bad_set_value_is_located_at_the_keyword() -> None:
    with pytest.raises(ScenarioError) as info:
        negosim.load(MUNICH, set={"p_us_formal_request": 5})
    (line,) = str(info.value).splitlines()
    assert line == (
        "set={'p_us_formal_request': 5}: params.p_us_formal_request.default: "
        "must be a probability (0 to 1), found 5"
    )


def test_missing_file_and_bad_sweep_params_are_scenario_errors(munich: Any) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        negosim.load(REPO / "nope.yaml")
    with pytest.raises(ScenarioError) as info:
        negosim.sweep(munich, params={"nope": [1, 2]}, runs=10)
    assert str(info.value).startswith("params={'nope': ...}: no parameter named 'nope'")
    with pytest.raises(TypeError, match="set= takes a dict"):
        negosim.load(MUNICH, set=["p_us_formal_request=0.5"])  # type: ignore[list-item]


# --- pandas --------------------------------------------------------------------------------


def test_frames(munich: Any) -> None:
    pd = pytest.importorskip("pandas")
    est = negosim.simulate(munich, runs=200, seed=1, keep_rows=True)
    parts = est.to_frame()
    assert list(parts.columns) == ["day", "part_of_day", "p_held"]
    assert parts["p_held"].sum() == pytest.approx(est.p_meeting)
    days = est.to_frame("day")
    assert list(days["day"]) == list(est.by_day)
    rows = est.rows_frame()
    assert list(rows.columns) == [
        "run", "outcome", "held", "time", "hours", "path", "blocking", "events"
    ]  # fmt: skip
    assert len(rows) == 200 and rows["held"].sum() == est.held
    assert str(rows["time"].dt.tz) == "Europe/Berlin"
    held = rows[rows["held"]]
    assert (held["path"].str.endswith("held")).all()
    assert set(",".join(rows["blocking"]).replace(", ", ",").split(",")) - {""} <= set(
        munich.preconditions
    )
    sw = negosim.sweep(munich, params={"p_us_formal_request": [0.2, 0.8]}, runs=50)
    frame = sw.to_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == sw.columns
    with pytest.raises(ValueError, match="sobol and morris"):
        sw.sensitivity_frame()
    cmp = negosim.compare(munich, set={"p_us_formal_request": 0.9}, runs=100)
    assert list(cmp.to_frame().columns) == ["day", "base", "variant", "diff"]
    with pytest.raises(ValueError, match="keep_rows"):
        negosim.simulate(munich, runs=10).rows_frame()


def test_sensitivity_frame(munich: Any) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("SALib")
    sw = negosim.sweep(munich, params={"p_us_formal_request": None, "p_china_declines": None},
                       design="morris", samples=4, runs=50)  # fmt: skip
    frame = sw.sensitivity_frame()
    assert list(frame["param"]) == ["p_us_formal_request", "p_china_declines"]
    assert "mu_star" in frame.columns


def test_frames_without_pandas_say_how_to_install(
    munich: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    est = negosim.simulate(munich, runs=20)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(negosim.MissingExtra) as info:
        est.to_frame()
    assert str(info.value) == (
        "negosim: Estimate.to_frame() needs the 'pandas' extra: pip install 'negosim[pandas]'"
    )


# --- notebook display ------------------------------------------------------------------


def test_reprs_fit_80_columns(munich: Any) -> None:
    est = negosim.simulate(munich, runs=100)
    cmp = negosim.compare(munich, set={"p_us_formal_request": 0.9}, runs=100)
    sw = negosim.sweep(munich, params={"p_us_formal_request": (0.0, 1.0, 7)}, runs=20)
    t = negosim.trace(munich, seed=1)
    for obj in (est, cmp, sw, t, munich):
        text = repr(obj)
        assert text and all(len(line) <= 80 for line in text.splitlines()), text
    assert repr(est).startswith("Estimate('munich-2023'")


def test_html_is_escaped_and_self_contained(write_scenario: Callable[..., Path]) -> None:
    text = MUNICH.read_text(encoding="utf-8")
    evil = "<script>alert('x')</script> & co"
    path = write_scenario(re.sub(r"(?m)^title: .*$", f"title: {json.dumps(evil)}", text, count=1))
    cs = negosim.load(path)
    est = negosim.simulate(cs, runs=50)
    cmp = negosim.compare(cs, set={"p_us_formal_request": 0.9}, runs=50)
    sw = negosim.sweep(cs, params={"p_us_formal_request": [0.2, 0.8]}, runs=20)
    t = negosim.trace(cs, seed=1)
    for obj in (cs, est, cmp, sw, t):
        page = obj._repr_html_()
        assert "<script" not in page, type(obj)
        # nothing fetched from elsewhere: no src or href but to an anchor in the page
        assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#)""", page), type(obj)
        assert "<link" not in page and "<img" not in page and "<metadata" not in page
    assert html.escape(evil, quote=True) in cs._repr_html_()
    assert html.escape(evil, quote=True) in est._repr_html_()


def test_html_has_an_inline_svg_figure_with_matplotlib(munich: Any) -> None:
    pytest.importorskip("matplotlib")
    page = negosim.simulate(munich, runs=50)._repr_html_()
    assert "<svg" in page and "<?xml" not in page and "<!DOCTYPE" not in page


def test_html_without_matplotlib_has_tables_only(
    munich: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    est = negosim.simulate(munich, runs=50)
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)
    page = est._repr_html_()
    assert "<table>" in page and "<svg" not in page


def test_progress_can_be_a_callable_or_off(munich: Any) -> None:
    seen: list[int] = []
    negosim.simulate(munich, runs=1_200, progress=seen.append)
    assert sum(seen) == 1_200
    seen.clear()
    negosim.simulate(munich, runs=1_200, progress=seen.append, keep_rows=True)
    assert sum(seen) == 1_200
    negosim.simulate(munich, runs=50, progress=False)
    negosim.simulate(munich, runs=50, progress=True)  # a rich bar; not a terminal here
