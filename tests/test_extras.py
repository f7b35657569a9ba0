"""Light install, fast start: the extras, and what the light commands import.

``pip install negosim`` brings what run, trace, validate, params, explain, play,
new, schema and graph need; figures, Parquet, Dask and SALib designs are extras.
A command that needs a missing extra exits 2 with one line naming the exact pip
command. Absence is simulated in-process by putting ``None`` in ``sys.modules``
(``import`` then fails as if the package were not installed), and in a
subprocess by a finder that refuses the extras' modules.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from conftest import REPO

from negosim.cli.commands import sweep as sweep_command
from negosim.cli.main import main
from negosim.extras import EXTRAS, MissingExtra, install_command, require
from negosim.runs import designs

MUNICH = str(REPO / "scenarios" / "munich.yaml")
EXTRA_MODULES = sorted(m for modules in EXTRAS.values() for m in modules)
HEAVY = ["pydantic", "numpy", "simpy", "yaml", "rich", "transitions", *EXTRA_MODULES]
"""What --version and --help must not import."""


def _project() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(specs: list[str]) -> set[str]:
    return {m.group(0) for m in (re.match(r"[A-Za-z0-9_.-]+", s) for s in specs) if m}


def _without(monkeypatch: pytest.MonkeyPatch, *extras: str) -> None:
    for extra in extras:
        for name in EXTRAS[extra]:
            monkeypatch.setitem(sys.modules, name, None)


# --- pyproject.toml --------------------------------------------------------------------


def test_base_dependencies_have_no_extra() -> None:
    base = _names(_project()["dependencies"])  # type: ignore[arg-type]
    assert not base & {"matplotlib", "dask", "distributed", "pyarrow", "SALib", "scipy", "pandas"}
    assert {"transitions", "simpy", "pydantic", "pyyaml", "numpy", "rich"} <= base


def test_extras_match_pyproject() -> None:
    extras: dict[str, list[str]] = _project()["optional-dependencies"]  # type: ignore[assignment]
    for extra, modules in EXTRAS.items():
        assert _names(extras[extra]) == set(modules), extra
    assert extras["all"] == [f"negosim[{','.join(EXTRAS)}]"]
    assert "negosim[all]" in extras["test"]
    assert {"import-linter", "pytest", "ruff", "mypy"} <= _names(extras["test"])


def test_sweep_design_choices_are_the_library_designs() -> None:
    assert sweep_command.DESIGNS == designs.DESIGNS
    assert sweep_command.MAX_REPLICATIONS == designs.MAX_REPLICATIONS
    assert sweep_command.MAX_POINTS == designs.MAX_POINTS


# --- one line, exit 2, the exact pip command --------------------------------------------


def test_missing_extra_message() -> None:
    exc = MissingExtra("plots")
    assert exc.line("negosim plot") == (
        "negosim plot: needs the 'plots' extra: pip install 'negosim[plots]'"
    )
    assert str(MissingExtra("parquet", "Parquet output")) == (
        "negosim: Parquet output needs the 'parquet' extra: pip install 'negosim[parquet]'"
    )
    assert install_command("all") == "pip install 'negosim[all]'"


def test_require(monkeypatch: pytest.MonkeyPatch) -> None:
    require("plots")  # installed here: the test extra pulls in every extra
    _without(monkeypatch, "plots")
    with pytest.raises(MissingExtra, match=re.escape("pip install 'negosim[plots]'")):
        require("plots")


CASES = [
    (
        ["plot", MUNICH, "--kind", "curve", "-o", "{tmp}/p.png"],
        ["plots"],
        "negosim plot: needs the 'plots' extra: pip install 'negosim[plots]'",
    ),
    (
        ["plot", "{tmp}/results.parquet", "-o", "{tmp}/p.png"],
        ["parquet"],
        "negosim plot: reading Parquet needs the 'parquet' extra: pip install 'negosim[parquet]'",
    ),
    (
        ["report", MUNICH, "-o", "{tmp}/r.html"],
        ["plots"],
        "negosim report: needs the 'plots' extra: pip install 'negosim[plots]'",
    ),
    (
        ["compare", MUNICH, "--set", "p_us_formal_request=0.6", "--plot", "{tmp}/c.png"],
        ["plots"],
        "negosim compare: --plot needs the 'plots' extra: pip install 'negosim[plots]'",
    ),
    (
        ["sweep", MUNICH, "--design", "sobol", "--samples", "4", "--param", "p_us_formal_request"],
        ["sensitivity"],
        "negosim sweep: the sobol design needs the 'sensitivity' extra: "
        "pip install 'negosim[sensitivity]'",
    ),
    (
        ["sweep", MUNICH, "--param", "p_us_formal_request=0:1:2", "--out", "{tmp}/s.parquet"],
        ["parquet"],
        "negosim sweep: Parquet output needs the 'parquet' extra: pip install 'negosim[parquet]'",
    ),
    (
        ["run", MUNICH, "--dask-local", "1"],
        ["dask"],
        "negosim run: the Dask backend needs the 'dask' extra: pip install 'negosim[dask]'",
    ),
    (
        ["sweep", MUNICH, "--param", "p_us_formal_request=0:1:2", "--scheduler", "tcp://x:1"],
        ["dask"],
        "negosim sweep: the Dask backend needs the 'dask' extra: pip install 'negosim[dask]'",
    ),
]


def test_serve_without_its_extra_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _without(monkeypatch, "serve")
    code = main(["serve", "--db", str(tmp_path / "class.sqlite3"), "--scenarios", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err == "negosim serve: needs the 'serve' extra: pip install 'negosim[serve]'\n"
    assert out == "" and list(tmp_path.iterdir()) == []  # no database made, nothing served


@pytest.mark.parametrize(("argv", "missing", "line"), CASES, ids=lambda c: str(c)[:40])
def test_missing_extra_exits_2_with_the_pip_line(
    argv: list[str],
    missing: list[str],
    line: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _without(monkeypatch, *missing)
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--runs", "20"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err == line + "\n"
    assert out == ""
    assert list(tmp_path.iterdir()) == []  # said before any work, nothing written


def test_library_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from negosim import load
    from negosim.runs.backends import Dask

    _without(monkeypatch, "sensitivity", "dask", "plots")
    ranges = {"p_us_formal_request": designs.ParamRange()}
    params = designs.resolve_params(load(MUNICH), ranges, "lhs")
    spec = designs.SweepSpec(MUNICH, params, "lhs", samples=4)
    with pytest.raises(MissingExtra, match=r"the lhs design .*'negosim\[sensitivity\]'"):
        designs.design(spec)
    with pytest.raises(MissingExtra, match=r"the Dask backend .*'negosim\[dask\]'"):
        Dask(local_workers=1)
    # A fresh import of the figure modules says so too (the originals come back afterwards).
    monkeypatch.delitem(sys.modules, "negosim.output.plots", raising=False)
    with pytest.raises(MissingExtra, match=r"drawing figures .*'negosim\[plots\]'"):
        import negosim.output.plots  # noqa: F401


# --- the light commands need no extra ---------------------------------------------------

BLOCK_EXTRAS = """
import sys

class _NoExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _NoExtras())
"""


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_light_commands_work_without_any_extra(tmp_path: Path) -> None:
    (tmp_path / "choices.txt").write_text("1\n1\n1\n1\n1\n", encoding="utf-8")
    commands = [
        ["run", MUNICH, "--runs", "50", "--format", "json"],
        ["run", MUNICH, "--runs", "50", "--workers", "2", "--format", "json"],
        ["trace", MUNICH, "--seed", "3"],
        ["validate", MUNICH, str(REPO / "sweeps" / "munich-conditions.yaml")],
        ["params", MUNICH],
        ["explain", MUNICH],
        ["play", MUNICH, "--as", "us", "--script", "choices.txt", "--runs", "50"],
        ["new", "my-case"],
        ["schema"],
        ["graph", MUNICH],
        ["graph", MUNICH, "--format", "dot"],
        ["compare", MUNICH, "--set", "p_us_formal_request=0.6", "--runs", "50"],
        ["sweep", MUNICH, "--param", "p_us_formal_request=0:1:3", "--runs", "20",
         "--workers", "1", "--out", "grid.csv"],
    ]  # fmt: skip
    code = BLOCK_EXTRAS.format(blocked=EXTRA_MODULES) + textwrap.dedent(f"""
        import contextlib, io, json
        from negosim.cli.main import main
        codes = []
        for argv in {commands!r}:
            with contextlib.redirect_stdout(io.StringIO()):
                codes.append(main(argv))
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & {set(EXTRA_MODULES)!r})
        print(json.dumps({{"codes": codes, "loaded": loaded}}))
    """)
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert dict(zip(map(" ".join, commands), result["codes"], strict=True)) == {
        " ".join(c): 0 for c in commands
    }, done.stderr
    assert result["loaded"] == []
    assert (tmp_path / "grid.csv").read_text(encoding="utf-8").count("\n") == 4  # header + 3


# --- fast start ---------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_import_nothing_heavy(option: str, tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from negosim.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                main([{option!r}])
            except SystemExit:
                pass
        print(json.dumps([out.getvalue(), sorted({{m.split(".")[0] for m in sys.modules}})]))
    """)
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    printed, loaded = json.loads(done.stdout)
    assert printed.startswith("negosim " if option == "--version" else "usage: negosim")
    assert not set(loaded) & set(HEAVY), sorted(set(loaded) & set(HEAVY))


def test_run_on_the_simpy_engine_does_not_import_the_batch_engine(tmp_path: Path) -> None:
    """`run` keeps the simpy engine by default: it pays nothing for importing the batch
    engine (about 20 ms of CPU at start-up)."""
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from negosim.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["run", {str(REPO / "scenarios" / "munich.yaml")!r}, "--runs", "5",
                         "--format", "json"])
        print(json.dumps([code, json.loads(out.getvalue())["runs"],
                          "negosim.engine.batch" in sys.modules]))
    """)
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [0, 5, False]
