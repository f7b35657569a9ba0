"""Sweep results feed the plots and reports: the files `negosim sweep` writes are
what `negosim plot` and `negosim report` read, parameters and indices included."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from conftest import run_in_process

from negosim.errors import UsageError
from negosim.output import plots

Cli = Callable[..., CompletedProcess[str]]
MUNICH = Path(__file__).resolve().parents[1] / "scenarios" / "munich.yaml"


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-parameter grid (CSV), a two-parameter grid (Parquet) and a small Sobol."""
    out = tmp_path_factory.mktemp("sweeps")
    runs = [
        ["--param", "p_us_formal_request=0:1:3", "--out", "one.csv"],
        ["--param", "p_us_formal_request=0,1", "--param", "p_china_declines=0.1,0.5",
         "--out", "two.parquet"],
        ["--design", "sobol", "--samples", "4", "--param", "p_us_formal_request",
         "--param", "p_china_declines", "--out", "sobol.csv"],
    ]  # fmt: skip
    for args in runs:
        r = run_in_process(["sweep", str(MUNICH), "--runs", "100", "--workers", "1", *args], out)
        assert r.returncode == 0, r.stderr
    return out


def test_swept_parameters_come_from_the_manifest(sweeps: Path) -> None:
    one = plots.read_rows(sweeps / "one.csv")
    assert plots.sweep_params(one, sweeps / "one.csv") == ["p_us_formal_request"]
    two = plots.read_rows(sweeps / "two.parquet")
    assert len(two) == 4
    assert plots.sweep_params(two, sweeps / "two.parquet") == [
        "p_us_formal_request",
        "p_china_declines",
    ]


def test_indices_are_read_from_the_manifest(sweeps: Path) -> None:
    rows = plots.indices_rows(sweeps / "sobol.csv")
    manifest = json.loads((sweeps / "sobol.manifest.json").read_text())
    assert rows is not None
    assert {r["param"] for r in rows} == set(manifest["sensitivity"]["params"])
    assert all({"ST", "ST_conf", "S1", "S1_conf"} <= set(r) for r in rows)
    assert plots.indices_rows(sweeps / "one.csv") is None  # a grid has no indices


@pytest.mark.parametrize(
    ("file", "kind"),
    [("one.csv", "sweep"), ("two.parquet", "sweep"), ("sobol.csv", "tornado")],
)
def test_plot_sweep_results(cli: Cli, sweeps: Path, file: str, kind: str) -> None:
    target = sweeps / f"{Path(file).stem}-{kind}.png"
    r = cli("plot", sweeps / file, "--kind", kind, "-o", target)
    assert r.returncode == 0, r.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_more_than_two_parameters_point_to_the_tornado(sweeps: Path) -> None:
    rows = plots.read_rows(sweeps / "sobol.csv")
    for row in rows:  # a third varying column, and no manifest to say otherwise
        row["p_third"] = float(row["point"])
    with pytest.raises(UsageError, match="--kind tornado"):
        plots.sweep(rows)


def test_sweep_report_includes_the_tornado(cli: Cli, sweeps: Path) -> None:
    target = sweeps / "sobol.html"
    r = cli("report", sweeps / "sobol.csv", "-o", target)
    assert r.returncode == 0, r.stderr
    html = target.read_text()
    assert "tornado" in html.lower() or "sensitivity" in html.lower()
    assert html.count("data:image/svg+xml") >= 2  # the sweep figure and the indices
