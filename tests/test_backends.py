"""Backends: in-process, local processes and Dask give bit-identical results.

A Dask LocalCluster with 2 worker processes is started once for the module.
Also the precision stopping rule of ``negosim run --precision``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, assert_close_binomial, base_scenario

import negosim
from negosim.runs.backends import Dask, InProcess, Processes, make_backend
from negosim.runs.designs import ParamRange, SweepSpec, resolve_params
from negosim.runs.runner import PRECISION_BATCH, simulate_to_precision
from negosim.runs.sweeprun import run_sweep

MUNICH = SCENARIOS / "munich.yaml"


@pytest.fixture(scope="module")
def dask_backend() -> Iterator[Dask]:
    with Dask(local_workers=2) as be:
        yield be


def _json(est: negosim.Estimate) -> dict[str, Any]:
    d = est.to_json()
    d.pop("elapsed_s")
    return d


def test_dask_cluster_has_two_workers(dask_backend: Dask) -> None:
    assert dask_backend.workers == 2


def test_simulate_identical_on_every_backend(dask_backend: Dask) -> None:
    cs = negosim.load(MUNICH)
    runs = 3_000
    reference = _json(negosim.simulate(cs, runs=runs, seed=11, backend=InProcess()))
    with Processes(2) as procs:
        assert _json(negosim.simulate(cs, runs=runs, seed=11, backend=procs)) == reference
    assert _json(negosim.simulate(cs, runs=runs, seed=11, backend=dask_backend)) == reference
    # and for any worker count
    assert _json(negosim.simulate(cs, runs=runs, seed=11, workers=2)) == reference
    assert reference["runs"] == runs


def test_sweep_identical_on_every_backend(dask_backend: Dask, tmp_path: Path) -> None:
    cs = negosim.load(MUNICH)
    params = resolve_params(
        cs,
        {
            "p_us_formal_request": ParamRange(low=0, high=1, steps=3),
            "p_china_declines": ParamRange(values=[0.1, 0.5]),
        },
        "grid",
    )
    spec = SweepSpec(str(MUNICH), params, "grid", runs=300, seed=5)
    outputs = []
    with Processes(2) as procs:
        for i, be in enumerate([InProcess(), procs, dask_backend]):
            out = tmp_path / f"s{i}.csv"
            res = run_sweep(spec, be, out)
            assert len(res.rows) == 6 and not res.failures
            outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_make_backend_choices() -> None:
    assert isinstance(make_backend(1), InProcess)
    with make_backend(2) as be:
        assert isinstance(be, Processes) and be.workers == 2
    with pytest.raises(negosim.UsageError, match="either --scheduler or --dask-local"):
        make_backend(1, "tcp://127.0.0.1:1", 2)


def test_task_errors_reach_the_caller(dask_backend: Dask) -> None:
    for be in (InProcess(), dask_backend):
        fut = be.submit(math.sqrt, -1.0)
        with pytest.raises(ValueError, match="math domain error"):
            fut.result()


# --- the precision stopping rule ------------------------------------------------------


@pytest.mark.parametrize("target", [0.02, 0.004])
def test_precision_rule(target: float, write_scenario: Any) -> None:
    """P(held) = 1 - exp(-48/10): stops at the first batch whose half-width <= target."""
    cs = negosim.load(write_scenario(base_scenario()))
    p = 1 - math.exp(-4.8)
    est = simulate_to_precision(cs, target, seed=3)
    low, high = est.ci95
    assert (high - low) / 2 <= target
    assert est.runs % PRECISION_BATCH == 0
    # The rule stops at the first such boundary: one batch fewer was not enough.
    if est.runs > PRECISION_BATCH:
        fewer = negosim.simulate(cs, runs=est.runs - PRECISION_BATCH, seed=3)
        assert (fewer.ci95[1] - fewer.ci95[0]) / 2 > target
    assert_close_binomial(est.p_meeting, p, est.runs, "precision run")
    # Deterministic for a seed, and on any backend.
    with Processes(2) as procs:
        again = simulate_to_precision(cs, target, seed=3, backend=procs)
    assert _json(again) == _json(est)


def test_precision_needs_more_runs_when_p_is_near_one_half(write_scenario: Any) -> None:
    data = base_scenario()
    data["actions"]["meet"]["delay"] = {"dist": "exponential", "mean": f"{48 / math.log(2)}h"}
    cs = negosim.load(write_scenario(data))
    est = simulate_to_precision(cs, 0.01, seed=1)
    # p = 1/2 needs n >= (1.96 / 0.01)^2 / 4 = 9604 runs, so 10 batches of 1000.
    assert est.runs == 10_000
    assert_close_binomial(est.p_meeting, 0.5, est.runs)


def test_run_precision_cli(cli: Any) -> None:
    r = cli("run", MUNICH, "--precision", "0.02", "--format", "json")
    assert r.returncode == 0, r.stderr

    d = json.loads(r.stdout)
    assert (d["ci95"][1] - d["ci95"][0]) / 2 <= 0.02
    assert f"after {d['runs']:,} runs" in r.stderr
    bad = cli("run", MUNICH, "--precision", "0.7")
    assert bad.returncode == 2 and "below 0.5" in bad.stderr


def test_run_on_a_running_scheduler(dask_backend: Dask, cli: Any) -> None:
    """`--scheduler ADDRESS` connects to an existing cluster (here the module's)."""
    address = dask_backend._cluster.scheduler_address
    outs = []
    for extra in (["--workers", "1"], ["--scheduler", address]):
        r = cli("run", MUNICH, "--runs", "1500", "--seed", "8", "--format", "json", *extra)
        assert r.returncode == 0, r.stderr
        outs.append({k: v for k, v in json.loads(r.stdout).items() if k != "elapsed_s"})
    assert outs[0] == outs[1]
