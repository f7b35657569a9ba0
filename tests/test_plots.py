"""Plots and protocol pictures: the numbers they draw, and the command that writes them."""

from __future__ import annotations

import csv
import json
import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, base_scenario, with_ask_step

import negosim
from negosim.cli.main import main
from negosim.output import diagram, plots
from negosim.runs.results import wilson
from negosim.runs.runner import rows, simulate

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def munich() -> tuple[Any, Any]:
    cs = negosim.load(SCENARIOS / "munich.yaml")
    return cs, simulate(cs, runs=1500, seed=5)


def test_held_curve_is_share_of_all_runs(munich: tuple[Any, Any]) -> None:
    cs, est = munich
    start = cs.start.astimezone(cs.tz)
    times, p, low, high = plots.held_curve(est, start, cs.horizon)
    assert times[0] == start and p[0] == 0.0
    assert times[-1] == start + timedelta(hours=cs.horizon)
    # Censoring honest: the curve ends at P(meeting) (held / all runs), not at 1.
    assert p[-1] == est.p_meeting
    assert all(a <= b for a, b in zip(p, p[1:], strict=False))
    assert all(lo <= x <= hi for lo, x, hi in zip(low, p, high, strict=True))
    # Each point's band is the Wilson interval of the runs held by then.
    assert (low[-1], high[-1]) == wilson(est.held, est.runs)
    # Against the rows themselves: the share held by a time in the middle.
    mid = cs.horizon * 0.75
    held_by_mid = sum(1 for r in rows(cs, 1500, 5) if r.held and r.time is not None
                      and int(r.time * 60) <= int(mid * 60))  # fmt: skip
    at = start + timedelta(minutes=int(mid * 60))
    i = max(k for k, t in enumerate(times) if t <= at)
    assert p[i] == held_by_mid / 1500


def test_transition_counts_match_rows(munich: tuple[Any, Any]) -> None:
    cs, est = munich
    want: Counter[tuple[str, str]] = Counter()
    for r in rows(cs, 1500, 5):
        for a, b in zip(r.path, r.path[1:], strict=False):
            want[(cs.states[a], cs.states[b])] += 1
    assert diagram.edge_counts(est.step_transitions) == want
    # Every run that ended in an outcome state took exactly one transition into it.
    ended = sum(n for name, n in est.outcomes.items() if name != "censored")
    into_outcomes = sum(n for (_, b), n in want.items() if b in cs.model.protocol.outcomes.success
                        or b in cs.model.protocol.outcomes.failure)  # fmt: skip
    assert into_outcomes == ended


def test_state_diagram_labels_every_transition_with_its_count(munich: tuple[Any, Any]) -> None:
    cs, est = munich
    sh = diagram.shape(cs)
    fig = diagram.state_diagram(sh, est.step_transitions, est.runs)
    texts = [t.get_text() for t in fig.axes[0].texts]
    counts = diagram.edge_counts(est.step_transitions)
    for a, b, trigger in sh.edges:
        n = counts.get((a, b), 0)
        assert any(t.startswith(f"{trigger} {n:,}") for t in texts), (a, b, trigger)
    for state in sh.states:
        assert any(t.replace("\n", "_") == state for t in texts), state


def test_layout_columns_follow_bfs_depth(load_data: Callable[..., Any]) -> None:
    data = with_ask_step(base_scenario())
    data["actions"]["meet"]["trigger"] = "ask"
    pos = diagram.layout(diagram.shape(load_data(data)))
    assert pos["waiting"][0] < pos["asked"][0] < pos["held"][0] == pos["failed"][0]
    assert pos["held"][1] > pos["failed"][1]  # success above failure


def test_path_flow_conserves_runs(munich: tuple[Any, Any]) -> None:
    cs, est = munich
    fig = diagram.path_flow(diagram.shape(cs), est.step_transitions, est.runs)
    # Each column's boxes add up to all runs (a run whose path ended stays put).
    heights: Counter[float] = Counter()
    for patch in fig.axes[0].patches:
        if type(patch).__name__ == "FancyBboxPatch":
            heights[round(patch.get_x() + 0.06, 6)] += patch.get_height()
    assert len(heights) >= 3
    assert all(math.isclose(h, est.runs) for h in heights.values())


def _hrefs(svg: Path) -> list[str]:
    return [v for el in ET.parse(svg).iter() for k, v in el.attrib.items() if k.endswith("href")]


@pytest.mark.parametrize("kind", ["when", "curve", "outcomes", "paths", "protocol"])
def test_plot_command_writes_png_and_svg(kind: str, tmp_path: Path) -> None:
    png, svg = tmp_path / f"{kind}.png", tmp_path / f"{kind}.svg"
    for out in (png, svg):  # in-process: the same path as the console script, faster
        args = ["plot", str(SCENARIOS / "tutorial.yaml"), "--kind", kind, "-o", str(out)]
        assert main([*args, "--runs", "300"]) == 0
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5000
    assert ET.parse(svg).getroot().tag.endswith("svg")
    # Text drawn as paths: no font is needed; references are internal only.
    assert b"@font-face" not in svg.read_bytes() and b"<text" not in svg.read_bytes()
    assert all(h.startswith("#") for h in _hrefs(svg))


def test_protocol_without_runs(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    r = cli("plot", SCENARIOS / "munich.yaml", "--kind", "protocol", "--no-runs", "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == PNG


def _write_csv(path: Path, rows_: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows_[0]))
        w.writeheader()
        w.writerows(rows_)
    return path


def _point(p: float, n: int = 1000, **params: float) -> dict[str, Any]:
    lo, hi = wilson(round(p * n), n)
    return {**params, "runs": n, "p_meeting": p, "ci95_low": lo, "ci95_high": hi}


def test_sweep_one_parameter_is_a_line_with_band(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "s.csv",
                      [_point(0.2 + 0.1 * i, x=i / 4, fixed=1.0) for i in range(5)])  # fmt: skip
    data = plots.read_rows(path)
    assert plots.sweep_params(data) == ["x"]  # 'fixed' does not vary, 'runs' is not a parameter
    ax = plots.sweep(data, path).axes[0]
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6])
    assert len(ax.collections) == 1  # the band
    assert ax.get_xlabel() == "x"


def test_sweep_two_parameters_is_a_heatmap(tmp_path: Path) -> None:
    pts = [_point(0.1 * i + 0.05 * j, a=i, b=j) for i in range(3) for j in range(4)]
    path = _write_csv(tmp_path / "s.csv", pts)
    fig = plots.sweep(plots.read_rows(path), path)
    (im,) = fig.axes[0].get_images()
    grid = im.get_array()
    assert grid.shape == (4, 3)
    assert grid[3, 2] == pytest.approx(0.35)


def test_tornado_from_sobol_csv_and_morris_json(tmp_path: Path) -> None:
    sobol = _write_csv(tmp_path / "sobol.csv", [
        {"param": "p_accept", "ST": 0.6, "ST_conf": 0.05, "S1": 0.5, "S1_conf": 0.04},
        {"param": "answer_median", "ST": 0.2, "ST_conf": 0.03, "S1": 0.1, "S1_conf": 0.02},
    ])  # fmt: skip
    ax = plots.tornado(plots.read_rows(sobol)).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["answer_median", "p_accept"]
    morris = tmp_path / "morris.json"
    morris.write_text(json.dumps({"names": ["a", "b", "c"], "mu_star": [0.1, 0.3, 0.2],
                                  "sigma": [0.05, 0.1, 0.02]}))  # fmt: skip
    ax = plots.tornado(plots.read_rows(morris)).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "c", "b"]


def test_results_file_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    def run(*args: Any) -> tuple[int, str]:
        code = main(["plot", *map(str, args), "-o", str(tmp_path / "x.png")])
        return code, capsys.readouterr().err

    three = _write_csv(tmp_path / "three.csv",
                       [_point(0.5, a=i, b=i % 2, c=i % 3) for i in range(6)])  # fmt: skip
    assert run(three) == (
        2,
        f"{three}: expected 1 or 2 swept parameter columns, found 3 (a, b, c); for a design "
        "over more parameters, plot its sensitivity indices with --kind tornado\n",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("x,p_meeting\n1,0.5\n")
    assert run(bad) == (2, f"{bad}: missing column(s) ci95_high, ci95_low\n")
    code, err = run(bad, "--kind", "curve")
    assert code == 2 and "a results file takes --kind sweep or tornado" in err
    code, err = run(tmp_path / "missing.csv")
    assert code == 2 and "cannot read" in err and "Traceback" not in err
    code, err = run(SCENARIOS / "tutorial.yaml", "--kind", "tornado")
    assert code == 2 and "is for sweep results" in err
    assert not (tmp_path / "x.png").exists()


def test_the_curve_names_both_zones_across_a_dst_change(load_data: Any) -> None:
    data = base_scenario()
    data["calendar"].update(timezone="Europe/Berlin", start="2024-03-30 12:00")
    cs = load_data(data)  # 48 h: the clocks go forward on Sunday 31 March at 02:00
    fig = plots.curve(simulate(cs, runs=50, seed=1), cs.start.astimezone(cs.tz), cs.horizon)
    assert fig.axes[0].get_xlabel() == "venue-local time (CET/CEST)"
    data["calendar"]["start"] = "2024-04-02 12:00"
    cs = load_data(data)
    fig = plots.curve(simulate(cs, runs=50, seed=1), cs.start.astimezone(cs.tz), cs.horizon)
    assert fig.axes[0].get_xlabel() == "venue-local time (CEST)"


@pytest.mark.parametrize("hours", [6, 50, 96, 200, 900])
def test_the_curve_picks_its_ticks_without_a_warning(hours: int) -> None:
    """3-4 days used to leave matplotlib's date locator without a step (a UserWarning
    on stderr); beyond a week the ticks say the date, since weekdays repeat."""
    import io
    import warnings
    from datetime import datetime
    from zoneinfo import ZoneInfo

    start = datetime(2023, 3, 24, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.curve(None, start, hours, exact=[(0, 0.0), (hours, 0.5)])
        fig.savefig(io.BytesIO(), format="png")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) == len(set(labels)) >= 3
