"""``negosim sweep``: designs, results against closed forms, CRN, outputs, failures,
sensitivity indices, sweep files, and resume after a real process is killed."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, SCENARIOS, assert_close_binomial, base_scenario, negosim_cmd

import negosim
from negosim.engine.simulation import Engine
from negosim.runs.backends import InProcess, Job, model_key
from negosim.runs.designs import (
    ParamRange,
    SweepSpec,
    block_bounds,
    design,
    parse_param_option,
    resolve_params,
)
from negosim.runs.sweeprun import BlockJob, point_scenario, run_block_job, run_sweep

MUNICH = SCENARIOS / "munich.yaml"


def mean_scenario() -> dict[str, Any]:
    """P(held within 48h) = 1 - exp(-48 / mean_h): a closed form per point."""
    data = base_scenario()
    data["params"] = {
        "mean_h": {"kind": "duration", "default": "10h", "assumption": "test"},
        "p_win": {"kind": "probability", "default": 0.5, "assumption": "test"},
    }
    data["actions"]["meet"]["delay"] = {"dist": "exponential", "mean": "mean_h"}
    return data


def decisive_scenario() -> dict[str, Any]:
    """The meeting is held with probability ``p_win`` exactly; ``chatter_h`` is the mean
    delay of a side action that changes a fact nobody reads: no effect on the outcome."""
    data = base_scenario()
    data["params"] = {
        "p_win": {"kind": "probability", "default": 0.5, "assumption": "test"},
        "chatter_h": {"kind": "duration", "default": "5h", "low": "1h", "high": "20h",
                      "assumption": "test"},
    }  # fmt: skip
    data["facts"] = {"rumours": {"type": "number", "initial": 0}}
    data["actions"] = {
        "decide": {
            "actor": "a",
            "from": "waiting",
            "delay": {"dist": "exponential", "mean": "2h"},
            "options": {
                "yes": {"weight": "p_win", "trigger": "meet"},
                "no": {"weight": "1 - p_win", "trigger": "fail"},
            },
        },
        "chatter": {
            "actor": "a",
            "from": "waiting",
            "delay": {"dist": "exponential", "mean": "chatter_h"},
            "set": {"rumours": "rumours + 1"},
        },
    }
    return data


def _write(tmp_path: Path, data: dict[str, Any], name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _spec(path: Path, ranges: dict[str, ParamRange], design_: str = "grid", **kw: Any) -> SweepSpec:
    cs = negosim.load(path)
    return SweepSpec(str(path), resolve_params(cs, ranges, design_), design_, **kw)


# --- parsing and designs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p", ParamRange()),
        ("p=0:1", ParamRange(low="0", high="1")),
        ("p=0:1:5", ParamRange(low="0", high="1", steps=5)),
        ("p=6h,12h,1d", ParamRange(values=["6h", "12h", "1d"])),
    ],
)
def test_parse_param_option(text: str, expected: ParamRange) -> None:
    assert parse_param_option(text) == ("p", expected)


@pytest.mark.parametrize(
    ("text", "match"), [("=1", "expected NAME"), ("p=0:1:x", "whole number"), ("p=0:1:1", "2")]
)
def test_parse_param_option_errors(text: str, match: str) -> None:
    with pytest.raises(negosim.UsageError, match=match):
        parse_param_option(text)


def test_grid_is_the_full_product_in_scenario_units(tmp_path: Path) -> None:
    path = _write(tmp_path, mean_scenario())
    spec = _spec(
        path,
        {"mean_h": ParamRange(values=["6h", "1d"]), "p_win": ParamRange(low=0, high=1, steps=3)},
    )
    points = design(spec).points
    assert points == [{"mean_h": h, "p_win": p} for h in (6.0, 24.0) for p in (0.0, 0.5, 1.0)]


@pytest.mark.parametrize(
    ("ranges", "design_", "match"),
    [
        ({"nope": ParamRange()}, "lhs", "no parameter named 'nope'"),
        ({"mean_hh": ParamRange()}, "lhs", "did you mean mean_h"),
        ({"mean_h": ParamRange()}, "grid", "a grid needs values"),
        ({"mean_h": ParamRange(values=["1h"])}, "sobol", "for --design grid"),
        ({"mean_h": ParamRange()}, "sobol", "neither an uncertainty distribution nor"),
        ({"p_win": ParamRange(low=1, high=0)}, "lhs", "LOW must be below HIGH"),
    ],
)
def test_resolve_params_errors(
    tmp_path: Path, ranges: dict[str, ParamRange], design_: str, match: str
) -> None:
    cs = negosim.load(_write(tmp_path, mean_scenario()))
    with pytest.raises(negosim.UsageError, match=match):
        resolve_params(cs, ranges, design_)


def test_sampling_designs_follow_declared_distributions() -> None:
    """LHS over munich's declared uncertainty: triangular(0.02, 0.15, 0.4) has mean 0.19."""
    spec = _spec(MUNICH, {"p_us_formal_request": ParamRange()}, "lhs", samples=400, seed=2)
    values = [p["p_us_formal_request"] for p in design(spec).points]
    assert len(values) == 400
    assert min(values) >= 0.02 and max(values) <= 0.4
    assert abs(sum(values) / 400 - (0.02 + 0.15 + 0.4) / 3) < 0.005  # LHS: strata cover it
    sob = _spec(MUNICH, {"p_us_formal_request": ParamRange(), "p_china_declines": ParamRange()},
                "sobol", samples=16)  # fmt: skip
    assert len(design(sob).points) == 16 * (2 + 2)
    mor = _spec(MUNICH, {"p_us_formal_request": ParamRange(low=0, high=1)}, "morris", samples=5)
    assert len(design(mor).points) == 5 * (1 + 1)


# --- results --------------------------------------------------------------------------------


def test_grid_rows_match_closed_form(tmp_path: Path) -> None:
    path = _write(tmp_path, mean_scenario())
    spec = _spec(path, {"mean_h": ParamRange(values=["5h", "20h", "100h"])}, runs=2000, seed=4)
    res = run_sweep(spec, InProcess(), tmp_path / "out.csv")
    assert [r["point"] for r in res.rows] == [0, 1, 2]
    for r in res.rows:
        p = 1 - math.exp(-48 / r["mean_h"])
        assert_close_binomial(r["p_meeting"], p, 2000, f"mean {r['mean_h']}h")
        assert r["ci95_low"] <= r["p_meeting"] <= r["ci95_high"]
        assert r["n_held"] + r["n_failed"] + r["n_censored"] == r["runs"] == 2000
        # Median time held: exists only if more than half of all runs met (censoring).
        assert (r["median_time_held"] is not None) == (r["held"] * 2 > r["runs"])
    # The median of an exponential with mean 5h is 5 ln 2 h = 3h28 after the start.
    assert res.rows[0]["median_time_held"].startswith("2024-01-01T03:")
    assert res.rows[2]["median_time_held"] is None  # p = 0.38: fewer than half met


def test_common_random_numbers(tmp_path: Path) -> None:
    """With CRN an irrelevant parameter gives identical rows; without, independent ones."""
    path = _write(tmp_path, mean_scenario())
    ranges = {"p_win": ParamRange(values=[0.1, 0.2, 0.3])}  # p_win is unused here
    crn = run_sweep(_spec(path, ranges, runs=500, seed=1), InProcess()).rows
    assert len({(r["held"], r["median_time_held"]) for r in crn}) == 1
    data = mean_scenario()
    data["actions"]["meet"]["delay"]["mean"] = f"{48 / math.log(2)}h"  # p = 1/2: most spread
    path2 = _write(tmp_path, data, "half.yaml")
    ranges = {"p_win": ParamRange(values=[0.1 * i for i in range(8)])}
    indep = run_sweep(_spec(path2, ranges, runs=500, seed=1, crn=False), InProcess()).rows
    assert len({r["held"] for r in indep}) > 1
    for r in indep:
        assert_close_binomial(r["p_meeting"], 0.5, 500)


def test_failed_point_is_a_row_and_the_sweep_goes_on(tmp_path: Path) -> None:
    path = _write(tmp_path, mean_scenario())
    spec = _spec(path, {"p_win": ParamRange(values=[0.2, 1.5, 0.7])}, runs=200)
    res = run_sweep(spec, InProcess(), tmp_path / "f.csv")
    assert [r["status"] for r in res.rows] == ["ok", "failed", "ok"]
    assert "params.p_win.default" in res.rows[1]["error"]
    assert "must be a probability" in res.rows[1]["error"]
    assert res.rows[1]["p_meeting"] is None


def test_a_point_is_the_model_a_set_override_gives_without_reading_the_file(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, mean_scenario())
    ranges = {"mean_h": ParamRange(values=["6h", "1d"]), "p_win": ParamRange(values=[0.2, 1])}
    spec = SweepSpec(str(path), resolve_params(negosim.load(path), ranges, "grid"), "grid",
                     sets=[("calendar.horizon", "30h")])  # fmt: skip
    base = negosim.load(path, spec.sets)
    path.unlink()  # a point needs the validated model only
    for values in design(spec).points:
        cs = point_scenario(spec, base, values)
        sets = [*spec.sets, *(p.set_value(values[p.name]) for p in spec.params)]
        path.write_text(yaml.safe_dump(mean_scenario(), sort_keys=False), encoding="utf-8")
        loaded = negosim.load(path, sets)
        path.unlink()
        assert cs.model == loaded.model and model_key(cs.model) == model_key(loaded.model)
        assert cs.params == loaded.params == values and cs.horizon == 30.0
    with pytest.raises(negosim.ScenarioError, match=r"--set p_win=1\.5: .*must be a probability"):
        point_scenario(spec, base, {"mean_h": 6.0, "p_win": 1.5})


def test_csv_parquet_and_manifest(tmp_path: Path) -> None:
    path = _write(tmp_path, mean_scenario())
    spec = _spec(path, {"mean_h": ParamRange(low="4h", high="40h", steps=4)}, runs=300, seed=9)
    a = run_sweep(spec, InProcess(), tmp_path / "r.csv")
    b = run_sweep(spec, InProcess(), tmp_path / "r2.parquet")
    table = pq.read_table(tmp_path / "r2.parquet").to_pylist()
    assert table == a.rows == b.rows
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["p_meeting"]) for r in rows] == [r["p_meeting"] for r in a.rows]
    assert not (tmp_path / "r.partial.csv").exists()
    m = json.loads((tmp_path / "r.manifest.json").read_text())
    assert m["scenario"]["sha256"] and m["sweep"]["seed"] == 9 and m["sweep"]["runs"] == 300
    assert m["sweep"]["design"] == "grid" and m["points"] == 4 and m["status"] == "complete"
    assert m["started"] <= m["finished"] and m["negosim"] == negosim.__version__


# --- sensitivity --------------------------------------------------------------------------


def test_sobol_indices_find_the_decisive_and_the_irrelevant_parameter(tmp_path: Path) -> None:
    path = _write(tmp_path, decisive_scenario())
    spec = _spec(
        path,
        {"p_win": ParamRange(low=0, high=1), "chatter_h": ParamRange()},
        "sobol",
        samples=32,
        runs=400,
        seed=3,
    )
    res = run_sweep(spec, InProcess())
    assert res.sensitivity is not None
    s = res.sensitivity["params"]
    assert s["p_win"]["ST"] > 0.9 and s["p_win"]["S1"] > 0.85
    assert abs(s["chatter_h"]["ST"]) < 0.05
    assert s["chatter_h"]["ST_conf"] is not None


def test_a_parameter_nothing_uses_gives_the_same_row_at_every_point(tmp_path: Path) -> None:
    """Common random numbers: replication i draws the same numbers at every point, so a
    parameter that no expression or distribution reads changes nothing at all; its
    Sobol indices are then exactly 0, with intervals of width 0."""
    path = _write(tmp_path, mean_scenario())  # p_win is declared but never read
    spec = _spec(path, {"p_win": ParamRange(low=0, high=1)}, "lhs", samples=6, runs=300, seed=2)
    rows = run_sweep(spec, InProcess()).rows
    assert len({r["p_win"] for r in rows}) == 6
    same = [{k: v for k, v in r.items() if k not in ("point", "p_win")} for r in rows]
    assert all(r == same[0] for r in same)
    ranges = {"mean_h": ParamRange(low="10h", high="100h"), "p_win": ParamRange(low=0, high=1)}
    res = run_sweep(_spec(path, ranges, "sobol", samples=8, runs=200, seed=2), InProcess())
    s = res.sensitivity["params"]["p_win"]  # type: ignore[index]
    assert (s["S1"], s["S1_conf"], s["ST"], s["ST_conf"]) == (0, 0, 0, 0)


def test_noise_corrected_sobol_is_salibs_estimator_on_noise_free_output() -> None:
    """Without noise (every block equal to the whole) the corrected indices and their
    bootstrap intervals are exactly SALib's, here on the Ishigami function."""
    import numpy as np
    from SALib.analyze import sobol as salib_sobol
    from SALib.sample import sobol as salib_sample
    from SALib.test_functions import Ishigami

    from negosim.runs.designs import sobol_indices

    problem = {"num_vars": 3, "names": ["a", "b", "c"], "bounds": [[-math.pi, math.pi]] * 3}
    y = Ishigami.evaluate(salib_sample.sample(problem, 128, calc_second_order=False, seed=1))
    ref = salib_sobol.analyze(problem, y, calc_second_order=False, seed=7)
    blocks = (np.vstack([y] * 4), np.full(4, 0.25))
    for ours in (sobol_indices(problem, y, None, seed=7), sobol_indices(problem, y, blocks, 7)):
        for k in ("S1", "S1_conf", "ST", "ST_conf"):
            assert np.allclose(ours[k], ref[k], rtol=1e-9, atol=1e-12), k
        assert abs(ours["noise_share"]) < 1e-9


def test_sobol_intervals_of_an_irrelevant_parameter_contain_zero(tmp_path: Path) -> None:
    """P(held within 48h) = 1 - exp(-48 / mean_h) depends on mean_h alone; p_win is read
    by nobody. With independent noise at every point (the hardest case: nothing
    cancels), uncorrected SALib would give p_win a total index above 0 with an interval
    excluding 0 every time; corrected, its intervals contain 0 (in at least 9 of 10
    independent repetitions), and mean_h's total index is near 1 (its interval contains 1
    as often)."""
    path = _write(tmp_path, mean_scenario())
    ranges = {"mean_h": ParamRange(low="10h", high="100h"), "p_win": ParamRange(low=0, high=1)}
    irrelevant = relevant = 0
    for rep in range(10):
        spec = _spec(path, ranges, "sobol", samples=32, runs=100, seed=rep + 1, crn=False)
        sens = run_sweep(spec, InProcess()).sensitivity
        assert sens is not None and sens["noise_corrected"]
        rel, irr = sens["params"]["mean_h"], sens["params"]["p_win"]
        irrelevant += abs(irr["ST"]) <= irr["ST_conf"] and abs(irr["S1"]) <= irr["S1_conf"]
        relevant += abs(rel["ST"] - 1) <= rel["ST_conf"] and abs(rel["S1"] - 1) <= rel["S1_conf"]
        assert rel["ST"] > 0.6 and abs(irr["ST"]) < 0.1
        assert 0 < sens["noise_share"] < 0.2  # p(1 - p) / 100 against the spread of p
        assert sens["ranking"] == [["mean_h"], ["p_win"]]
    assert irrelevant >= 9 and relevant >= 9


def test_a_parameter_that_changes_only_another_clocks_draws_changes_no_row(
    tmp_path: Path,
) -> None:
    """chatter_h sets the delay of a side action that changes a fact nobody reads; a
    shorter delay makes that clock fire, and draw, more often. With one random stream
    per clock the decision's draws do not move, so every row is the same and the Sobol
    indices are exactly 0 +- 0. (With one stream per replication they were not: the
    side action shifted the numbers later draws got; docs/sweeps.md.)"""
    path = _write(tmp_path, decisive_scenario())
    ranges = {"p_win": ParamRange(low=0, high=1), "chatter_h": ParamRange()}
    lhs = run_sweep(
        _spec(path, {"chatter_h": ParamRange()}, "lhs", samples=5, runs=300), InProcess()
    )
    rows = [{k: v for k, v in r.items() if k not in ("point", "chatter_h", "mean_events_per_run")}
            for r in lhs.rows]  # fmt: skip
    assert all(r == rows[0] for r in rows)
    assert len({r["mean_events_per_run"] for r in lhs.rows}) > 1  # chatter did draw more or less
    for rep in range(3):
        spec = _spec(path, ranges, "sobol", samples=16, runs=200, seed=100 + rep)
        s = run_sweep(spec, InProcess()).sensitivity["params"]  # type: ignore[index]
        irr = s["chatter_h"]
        assert (irr["S1"], irr["S1_conf"], irr["ST"], irr["ST_conf"]) == (0, 0, 0, 0)
        assert s["p_win"]["ST"] > 0.7


def test_morris_indices(tmp_path: Path) -> None:
    path = _write(tmp_path, decisive_scenario())
    spec = _spec(
        path, {"p_win": ParamRange(), "chatter_h": ParamRange()}, "morris", samples=10, runs=400
    )
    s = run_sweep(spec, InProcess()).sensitivity["params"]  # type: ignore[index]
    # A step of 2/3 of the range of p_win moves P(meeting) by 2/3: mu* = 2/3 per unit range.
    assert abs(s["p_win"]["mu_star"] - 1.0) < 0.15
    assert s["chatter_h"]["mu_star"] < 0.1
    # The mu* of Monte Carlo noise alone, measured between blocks of replications:
    # far below p_win's effect, and not below what the irrelevant chatter_h shows.
    assert 0 < s["p_win"]["mu_star_noise"] < s["p_win"]["mu_star"] / 10
    assert s["chatter_h"]["mu_star"] <= 2 * s["chatter_h"]["mu_star_noise"]


# --- the command line ------------------------------------------------------------------------


def test_sweep_file_runs_and_validates(cli: Any, tmp_path: Path) -> None:
    r = cli("sweep", REPO / "sweeps" / "munich-conditions.yaml", "--samples", "4", "--runs",
            "100", "--workers", "1", "--out", tmp_path / "c.csv", "--format", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d["rows"]) == 4 * (3 + 2) and set(d["sensitivity"]["params"]) == {
        "p_us_formal_request", "p_china_declines", "p_formula_per_round"
    }  # fmt: skip
    assert "runs/s" in r.stderr
    for row in d["rows"]:  # the blocks' counts add up to the point's
        assert sum(int(h) for h in row["held_blocks"].split()) == row["held"]
    sens = d["sensitivity"]
    assert sens["noise_corrected"] and sens["samples"] == 4
    assert sorted(n for g in sens["ranking"] for n in g) == sorted(sens["params"])
    assert all({"wide", "samples_needed"} <= set(v) for v in sens["params"].values())
    table = cli("sweep", REPO / "sweeps" / "munich-conditions.yaml", "--samples", "4", "--runs",
                "50", "--workers", "1")  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "Ranking by ST:" in table.stdout and "samples instead of 4" in table.stdout


def test_trust_flags_intervals_wider_than_their_index() -> None:
    from negosim.runs.designs import trust

    # 0.10 ± 0.36 from 32 samples: 32 * (0.36 / 0.10)^2 = 415, a Sobol design needs 512.
    v = {"S1": 0.10, "S1_conf": 0.36, "ST": 0.5, "ST_conf": 0.1}
    assert trust(v, "sobol", 32) == {"wide": ["S1"], "samples_needed": 512, "target": 0.10}
    # Within ±0.02 of 0 already: settled as negligible, no number of samples to give.
    v = {"S1": 0.004, "S1_conf": 0.01, "ST": -0.001, "ST_conf": 0.002}
    assert trust(v, "sobol", 64) == {"wide": ["S1", "ST"], "samples_needed": None, "target": None}
    assert trust({"mu_star": 0.2, "mu_star_conf": 0.3}, "morris", 10) == {
        "wide": ["mu_star"], "samples_needed": 23, "target": 0.2}  # fmt: skip
    # An index below 0.02: the samples aim at ±0.02 (is it negligible?), not at the
    # index (0.002 ± 0.029 from 128 would need 128 * 14.5^2 = 26,912 for that):
    # 128 * (0.029 / 0.02)^2 = 269, a Sobol design needs 512.
    v = {"S1": 0.002, "S1_conf": 0.029, "ST": 0.01, "ST_conf": 0.006}
    assert trust(v, "sobol", 128) == {"wide": ["S1"], "samples_needed": 512, "target": 0.02}


def test_ranking_groups_parameters_whose_intervals_overlap() -> None:
    from negosim.runs.designs import ranking

    def st(x: float, h: float) -> dict[str, float]:
        return {"ST": x, "ST_conf": h}

    sens = {"method": "sobol", "params": {"a": st(0.5, 0.1), "b": st(0.45, 0.01),
                                          "c": st(0.38, 0.01), "d": st(0.0, 0.01)}}  # fmt: skip
    assert ranking(sens) == [["a", "b"], ["c"], ["d"]]
    sens["params"]["c"] = st(0.38, 0.03)  # reaches a's interval: not shown below a
    assert ranking(sens) == [["a", "b", "c"], ["d"]]


def test_sweep_file_errors_are_located(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"scenario: {MUNICH}\ndesign: lhs\nruns: 0\nparams:\n  p_win: {{steps: 3}}\n",
        encoding="utf-8",
    )
    r = cli("sweep", bad, "--workers", "1")  # refused before any work: in-process
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert f"{bad}:3:7: runs: Input should be greater than or equal to 1" in lines[0]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--param", "p_us_formal_requestt=0:1:3"], "did you mean p_us_formal_request"),
        (["--design", "sobol", "--samples", "10", "--param", "p_china_declines"], "power of 2"),
        (["--design", "lhs", "--param", "p_china_declines"], "needs --samples"),
        ([], "at least one parameter"),
        (["--param", "p_china_declines=0:1:2", "--out", "x.txt"], "must end in .csv"),
    ],
)
def test_sweep_usage_errors(cli: Any, args: list[str], match: str) -> None:
    r = cli("sweep", MUNICH, *args, "--workers", "1")  # refused before any work: in-process
    assert r.returncode == 2 and match in r.stderr, r.stderr


def test_resume_after_the_process_is_killed(cli: Any, tmp_path: Path) -> None:
    """SIGKILL a real sweep midway; --resume completes it without redoing finished
    points, and the file equals an uninterrupted run's."""
    args = ["sweep", str(MUNICH), "--param", "p_us_formal_request=0:1:24", "--runs", "800",
            "--seed", "2"]  # fmt: skip
    out = tmp_path / "k.csv"
    journal = tmp_path / "k.partial.csv"
    proc = subprocess.Popen(
        [*negosim_cmd(), *args, "--workers", "1", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    written = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists():
            written = journal.read_text().count("\n") - 1
            if written >= 3:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    with open(journal, newline="") as f:
        partial = list(csv.DictReader(f))  # readable after a kill
    done = {int(r["point"]) for r in partial if r["status"] == "ok"}
    assert 3 <= len(done) < 24

    resumed = cli(*args, "--workers", "1", "--out", out, "--resume", "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads(resumed.stdout)
    assert info["resumed"] >= len(done) and info["computed"] == 24 - info["resumed"]
    full = cli(*args, "--workers", "2", "--out", tmp_path / "full.csv")  # any worker count
    assert full.returncode == 0, full.stderr
    assert out.read_bytes() == (tmp_path / "full.csv").read_bytes()
    assert not journal.exists()


def test_resume_refuses_other_settings_and_unflagged_partial(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    (tmp_path / "p.partial.csv").write_text("point\n", encoding="utf-8")
    # refused before any work: in-process
    args = ("sweep", MUNICH, "--param", "p_us_formal_request=0:1:2", "--runs", "50",
            "--workers", "1")  # fmt: skip
    r = cli(*args, "--out", out)
    assert r.returncode == 2 and "add --resume" in r.stderr
    (tmp_path / "p.manifest.json").write_text(json.dumps({"sweep": {"seed": 99}}))
    r = cli(*args, "--out", out, "--resume")
    assert r.returncode == 2 and "other settings" in r.stderr


def test_validate_accepts_sweep_files_and_locates_their_problems(cli: Any, tmp_path: Path) -> None:
    ok = cli("validate", REPO / "sweeps" / "munich-conditions.yaml")
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"scenario: {MUNICH}\ndesign: sobol\nsamples: 10\nparams:\n"
        "  p_china_declinez: {}\n  us_decision_median: {}\n",
        encoding="utf-8",
    )
    r = cli("validate", bad)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert any(
        line.startswith(f"{bad}:5:21: params.p_china_declinez: no parameter named")
        and "did you mean p_china_declines" in line
        for line in lines
    ), lines
    assert any(f"{bad}:6:23: params.us_decision_median: the scenario gives" in x for x in lines)
    assert any(f"{bad}:3:10: samples:" in x and "power of 2" in x for x in lines)


def test_a_point_failing_at_run_time_is_a_failure_row(tmp_path: Path) -> None:
    """A SimulationError in the workers (a negative weight at one value) fails only that
    point, with the engine's message, on local processes too."""
    from negosim.runs.backends import Processes

    data = decisive_scenario()
    data["actions"]["decide"]["options"]["yes"]["weight"] = "p_win - 0.3"
    path = _write(tmp_path, data)
    spec = _spec(path, {"p_win": ParamRange(values=[0.5, 0.1, 0.9])}, runs=300)
    with Processes(2) as be:
        rows = run_sweep(spec, be, tmp_path / "e.csv").rows
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert "negative weight" in rows[1]["error"]
    assert_close_binomial(rows[0]["p_meeting"], 0.2 / 0.7, 300)


def test_morris_elementary_effects_of_a_linear_function_are_its_slopes() -> None:
    """For y = 2a - 3b + 0c every elementary effect is exactly the slope."""
    import numpy as np
    from SALib.sample import morris as morris_sample

    from negosim.runs.designs import MORRIS_LEVELS, _elementary_effects

    problem = {"num_vars": 3, "names": ["a", "b", "c"], "bounds": [[0, 1]] * 3}
    x = morris_sample.sample(problem, 12, num_levels=MORRIS_LEVELS, seed=3)
    y = 2 * x[:, 0] - 3 * x[:, 1]
    ee = _elementary_effects(x, y, 3)
    assert ee.shape == (3, 12)
    np.testing.assert_allclose(ee, [[2.0] * 12, [-3.0] * 12, [0.0] * 12], atol=1e-12)


@pytest.mark.parametrize("engine", ["simpy", "batch"])
@pytest.mark.parametrize(("start", "stop"), [(0, 200), (30, 130), (75, 76)])
def test_a_chunk_spanning_blocks_counts_each_blocks_meetings(
    engine: str, start: int, stop: int
) -> None:
    """A chunk of a point's replications may span several noise blocks: its meetings are
    counted in the block of each replication, as one replication at a time would."""
    cs = negosim.load(MUNICH)
    bounds = tuple(block_bounds(200, 8))  # blocks of 25
    job = Job(model_key(cs.model), cs.model, 5, start, stop, engine)
    got = run_block_job(BlockJob(job, bounds))
    expected = [0] * 8
    for row in Engine(cs).run_block(5, start, stop):
        expected[row.index // 25] += row.held
    assert got.held == expected
    assert sum(expected) == got.tally.held and got.tally.runs == stop - start
    assert sum(1 for h in expected if h) >= (2 if stop - start > 50 else 0)


def test_the_samples_hint_says_what_the_samples_would_settle(capsys) -> None:
    from negosim.cli.commands.sweep import _render_sensitivity
    from negosim.runs.designs import trust

    def sens(**indices: float) -> dict[str, Any]:
        params = {"p": dict(indices)}
        params["p"].update(trust(params["p"], "sobol", 128))
        return {"method": "sobol", "samples": 128, "params": params, "ranking": [["p"]]}

    _render_sensitivity(sens(S1=0.002, S1_conf=0.029, ST=0.01, ST_conf=0.006))
    out = " ".join(capsys.readouterr().out.split())
    assert "about 512 samples instead of 128 would narrow it to ±0.02, enough to tell" in out
    assert "size of the index" not in out
    _render_sensitivity(sens(S1=0.1, S1_conf=0.15, ST=0.3, ST_conf=0.1))
    out = " ".join(capsys.readouterr().out.split())
    assert "about 512 samples instead of 128 would narrow it to the size of the index" in out
    _render_sensitivity(sens(S1=0.001, S1_conf=0.015, ST=0.3, ST_conf=0.1))
    assert "within ±0.02 of 0: the parameter hardly matters" in capsys.readouterr().out
