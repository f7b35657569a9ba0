"""Hostile files, part 3: text from the input cannot inject into negosim's outputs.

Column names and values of a results file reach the HTML report escaped; a
line break in an output name, a file name or a title cannot start a line of
its own in a one-line result, an error message or a Mermaid/DOT diagram.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

import pytest
import yaml

from ._helpers_files import SWEEP, changed, contract, negosim, refused, snapshot, tutorial

META = '<meta http-equiv="refresh" content="0;url=https://evil.example/">'
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    tutorial(tmp_path)
    contract(negosim("sweep", "t.yaml", *SWEEP, "--out", "o.csv", cwd=tmp_path), 0)
    return tmp_path / "o.csv"


def _rewrite(path: Path, dest: Path, rename: dict[str, str], drop_manifest: bool = True) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[rename.get(c, c) for c in rows[0]])
    w.writeheader()
    for r in rows:
        w.writerow({rename.get(k, k): v for k, v in r.items()})
    dest.write_text(buf.getvalue(), encoding="utf-8")


def test_column_names_are_escaped_in_the_report(results: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    evil = tmp_path / "evil.csv"
    _rewrite(results, evil, {"p_accept": META, "answer_median": SCRIPT})
    before = snapshot(tmp_path)
    contract(negosim("report", "evil.csv", "-o", "r.html", cwd=tmp_path), 0)
    assert changed(before, snapshot(tmp_path)) == {"r.html"}
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<meta http-equiv="refresh"' not in page and "<script" not in page
    assert html.escape(META, quote=True) in page and html.escape(SCRIPT, quote=True) in page


def test_a_results_file_name_is_escaped_in_the_report(results: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    name = "<img src=x onerror=alert(1)>.csv"
    _rewrite(results, tmp_path / name, {})
    contract(negosim("report", name, "-o", "r.html", cwd=tmp_path), 0)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<img src=x" not in page


def test_a_scenario_with_html_everywhere_is_escaped(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    data = yaml.safe_load(tutorial(tmp_path).read_text(encoding="utf-8"))
    data["title"] = f"Title {SCRIPT}"
    data["description"] = META
    data["actors"]["a"]["name"] = SCRIPT
    for action in data["actions"].values():
        action["text"] = SCRIPT
    (tmp_path / "h.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    contract(negosim("report", "h.yaml", "--runs", "50", "-o", "r.html", cwd=tmp_path), 0)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in page and '<meta http-equiv="refresh"' not in page


@pytest.mark.parametrize("bad", ["x\ny", "x\r\ny", "x\u2028y", "x\x1b[31my", "x\u202ey"])
def test_a_title_is_one_line(tmp_path: Path, bad: str) -> None:
    data = yaml.safe_load(tutorial(tmp_path).read_text(encoding="utf-8"))
    data["title"] = bad
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    for command in (("validate",), ("graph",), ("graph", "--format", "dot"), ("run",)):
        err = refused(negosim(*command, "e.yaml", cwd=tmp_path), "title: must be one line")
        assert len(err.strip().splitlines()) == 1, err


def test_titles_of_sources_and_sweep_files_are_one_line_too(tmp_path: Path) -> None:
    data = yaml.safe_load(tutorial(tmp_path).read_text(encoding="utf-8"))
    data["sources"] = {"src": {"title": "a\nb"}}
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    refused(negosim("validate", "e.yaml", cwd=tmp_path), "title: must be one line")
    (tmp_path / "s.yaml").write_text(
        'scenario: t.yaml\ntitle: "a\\nb"\nparams:\n  p_accept: {values: [0.5]}\n',
        encoding="utf-8",
    )
    refused(negosim("validate", "s.yaml", cwd=tmp_path), "title: must be one line")


def test_graph_output_of_a_plain_title_is_unchanged(tmp_path: Path) -> None:
    tutorial(tmp_path)
    proc = negosim("graph", "t.yaml", cwd=tmp_path)
    contract(proc, 0)
    assert proc.stdout.startswith("---\n") and "stateDiagram-v2" in proc.stdout


def test_a_line_break_in_an_output_name_is_escaped(results: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    name = "a\nforged: line.html"
    before = snapshot(tmp_path)
    proc = negosim("report", "o.csv", "-o", name, cwd=tmp_path)
    contract(proc, 0)
    assert len(proc.stdout.strip().splitlines()) == 1, proc.stdout
    assert "\\n" in proc.stdout
    assert changed(before, snapshot(tmp_path)) == {name}


def test_a_line_break_in_a_sweep_output_name_is_escaped(tmp_path: Path) -> None:
    tutorial(tmp_path)
    proc = negosim("sweep", "t.yaml", *SWEEP, "--out", "a\nb.csv", cwd=tmp_path)
    contract(proc, 0)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.endswith("-> 'a\\nb.csv'"), proc.stderr


def test_a_line_break_in_a_file_name_cannot_forge_a_message(tmp_path: Path) -> None:
    tutorial(tmp_path)
    name = "x\nforged.yaml:1:1: all good.yaml"
    (tmp_path / name).write_text("id: [\n", encoding="utf-8")
    proc = negosim("validate", name, cwd=tmp_path)
    refused(proc)
    assert all(line.startswith("x\\x0aforged") for line in proc.stderr.strip().splitlines())
    good = "y\nz.yaml"
    tutorial(tmp_path, good)
    ok = negosim("validate", good, cwd=tmp_path)
    contract(ok, 0)
    assert ok.stdout.strip() == "'y\\nz.yaml': ok"


def test_rich_markup_in_a_file_name_is_printed_as_is(tmp_path: Path) -> None:
    name = "[bold red]x.yaml"
    tutorial(tmp_path, name)
    ok = negosim("validate", name, cwd=tmp_path)
    contract(ok, 0)
    assert ok.stdout.strip() == f"{name}: ok"


@pytest.mark.parametrize("column", ["$\\frac{a$", "$x^$", "a$b$c"])
def test_dollar_signs_in_column_names_are_text_in_figures(
    results: Path, tmp_path: Path, column: str
) -> None:
    pytest.importorskip("matplotlib")
    _rewrite(results, tmp_path / "m.csv", {"p_accept": column})
    (tmp_path / "o.manifest.json").unlink()
    contract(negosim("plot", "m.csv", "-o", "m.png", cwd=tmp_path), 0)
    contract(negosim("report", "m.csv", "-o", "m.html", cwd=tmp_path), 0)


def test_dollar_signs_in_a_title_are_text_in_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    data = yaml.safe_load(tutorial(tmp_path).read_text(encoding="utf-8"))
    data["title"] = "A $\\frac{1 deal"
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    args = ("--kind", "protocol", "--no-runs", "-o", "p.png")
    contract(negosim("plot", "d.yaml", *args, cwd=tmp_path), 0)
