"""Every example in docs/ works, and the docs agree with the code.

* Each ```yaml block that is a complete scenario (a top-level ``id:``) is
  written to a temporary directory (as the ``# file: NAME`` its first line
  gives, else ``DOC-N.yaml``), loaded with :func:`negosim.load` and run. A
  block marked ``# invalid:`` must instead fail to load, one marked
  ``# run fails:`` must load and then stop with a SimulationError. A block whose first
  line is ``# from PATH`` is an excerpt: its lines must appear in PATH.
* Each line of a ```console or ```bash block that starts with ``negosim`` (or
  ``$ negosim``) is run, in the temporary directory (so the doc's own files
  are found by name), with paths of the repository (``scenarios/...``) made
  absolute: through :func:`negosim.cli.main.main` in this process (its return
  value is the exit code), or through the installed console script if it
  starts worker processes or a Dask cluster. It must exit 0, or the code named
  by a ``# exits N`` comment. Output redirections (``>``, ``|``) are dropped:
  the output is captured. If such a failing command is the only one of its
  block and a ```text block follows, its stderr must be that text. A
  ``--runs N`` above 2000 runs 2000 replications (the check is the exit code
  and the output, not the figures; the prose's figures are checked below): set
  ``NEGOSIM_DOCS_RUNS=0`` to run every count as written, or to another cap. A
  sweep that does not choose ``--workers`` runs on one (same results).
* The worked example of docs/semantics.md: the closed-form numbers are
  computed here from the scenario in the doc, must be the numbers the doc
  states, and must match a simulation within binomial tolerance.
* Lists that could drift are compared with the code: the expression
  functions, the ``--help`` texts, the JSON fields, the schema's fields and the
  declared dependencies.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import run_in_process, starts_workers

import negosim
from negosim.cli.main import build_parser
from negosim.compiler.describe import parameter_rows
from negosim.compiler.expr import FUNCTIONS
from negosim.runs.runner import trace as engine_trace  # (row, timeline lines)
from negosim.scenario.schema import model_schema
from negosim.scenario.units import hours_between, parse_datetime, parse_duration, zone

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
DOC_NAMES = [
    "index.md", "tutorial.md", "scenario-format.md", "expressions.md", "semantics.md",
    "cli.md", "dependencies.md", "instructors.md", "reference.md", "reports.md", "sweeps.md",
    "performance.md", "security.md", "api.md", "backtest.md", "exact.md",
    "classroom-web.md",
    *sorted(str(p.relative_to(DOCS)) for p in DOCS.glob("*/*.md")),
]  # fmt: skip
Z = 4.5  # tolerance, in binomial standard errors


# --- reading the docs -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Block:
    doc: str
    lang: str
    body: str
    line: int  # 1-based line of the opening fence
    after: str  # the text between this block and the next one (or the end)


def _blocks(doc: str) -> list[Block]:
    lines = (DOCS / doc).read_text(encoding="utf-8").split("\n")
    found: list[tuple[str, str, int, int]] = []  # lang, body, open line, close index
    i = 0
    while i < len(lines):
        m = re.fullmatch(r"```([A-Za-z]*)\s*", lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not re.fullmatch(r"```\s*", lines[j]):
                j += 1
            assert j < len(lines), f"{doc}:{i + 1}: unclosed code block"
            found.append((m.group(1), "\n".join(lines[i + 1 : j]) + "\n", i + 1, j))
            i = j + 1
        else:
            i += 1
    out = []
    for k, (lang, body, line, close) in enumerate(found):
        nxt = found[k + 1][2] - 1 if k + 1 < len(found) else len(lines)
        out.append(Block(doc, lang, body, line, "\n".join(lines[close + 1 : nxt])))
    return out


BLOCKS = [b for doc in DOC_NAMES for b in _blocks(doc)]


def _doc_text(doc: str) -> str:
    return (DOCS / doc).read_text(encoding="utf-8")


def _section(doc: str, heading: str) -> str:
    """The text of the section under ``heading`` (a full heading line) up to the next one
    of the same or a higher level."""
    lines = _doc_text(doc).split("\n")
    start = lines.index(heading) + 1
    level = len(heading) - len(heading.lstrip("#"))
    fenced = False
    for end in range(start, len(lines)):
        if lines[end].startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", lines[end]):
            return "\n".join(lines[start:end])
    return "\n".join(lines[start:])


def _is_scenario(b: Block) -> bool:
    return (
        b.lang == "yaml"
        and re.search(r"^id:", b.body, re.M) is not None
        and not (b.body.startswith("# from "))
    )


def _file_name(b: Block, index: int) -> str:
    m = re.match(r"# file: (\S+)", b.body)
    return m.group(1) if m else f"{Path(b.doc).stem}-{index}.yaml"


SCENARIOS = [(b, _file_name(b, i)) for i, b in enumerate(BLOCKS) if _is_scenario(b)]
EXCERPTS = [b for b in BLOCKS if b.lang == "yaml" and b.body.startswith("# from ")]


@dataclasses.dataclass(frozen=True)
class Command:
    block: Block
    text: str  # as written, without the prompt
    argv: tuple[str, ...]  # after "negosim"
    expect: int


def _commands() -> list[Command]:
    out = []
    for b in BLOCKS:
        if b.lang not in ("console", "bash", "sh", "shell"):
            continue
        for raw in b.body.splitlines():
            line = raw.strip().removeprefix("$ ").strip()
            if not line.startswith("negosim "):
                continue
            m = re.search(r"#\s*exits\s+(\d+)", line)
            words = shlex.split(line, comments=True)
            for stop in (">", ">>", "|", "2>", "&&", ";"):
                if stop in words:
                    words = words[: words.index(stop)]
            out.append(Command(b, line, tuple(words[1:]), int(m.group(1)) if m else 0))
    return out


COMMANDS = _commands()


def _console_script() -> str:
    here = Path(sys.executable).parent / "negosim"
    found = str(here) if here.exists() else shutil.which("negosim")
    assert found, "the negosim console script is not installed"
    return found


def _resolve(arg: str) -> list[str]:
    """Repository paths made absolute; globs expanded against the repository."""
    if arg.startswith("-") or "=" in arg:
        return [arg]
    if any(c in arg for c in "*?["):
        hits = sorted(glob.glob(str(REPO / arg)))
        return hits or [arg]
    if (REPO / arg).exists():
        return [str(REPO / arg)]
    return [arg]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding every scenario the docs define, under its file name, and
    the shipped scenarios and bases they may extend (bases/*.yaml, scenarios/...)."""
    d = tmp_path_factory.mktemp("docs")
    shutil.copytree(REPO / "scenarios" / "bases", d / "bases")
    shutil.copytree(REPO / "scenarios", d / "scenarios")  # for `extends: scenarios/...`
    seen: dict[str, str] = {}
    for b, name in SCENARIOS:
        assert seen.get(name, b.body) == b.body, f"{name} is defined twice, differently"
        seen[name] = b.body
        (d / name).write_text(b.body, encoding="utf-8")
    return d


def _run(
    argv: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``negosim ARGV`` in this process, or through the console script if it starts
    worker processes or a Dask cluster."""
    env = {"COLUMNS": "100", **(env or {})}
    if starts_workers(argv):
        return subprocess.run(
            [_console_script(), *argv],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **env},
        )
    return run_in_process(argv, cwd, dict(env))


RUNS_CAP = int(os.environ.get("NEGOSIM_DOCS_RUNS", "2000"))


def _equivalent(argv: list[str]) -> list[str]:
    """The command to run for a documented one: ``--runs N`` lowered to
    :data:`RUNS_CAP` (0: no cap), and a sweep that does not say ``--workers`` on one
    worker (it gives the same file for any worker count: tests/test_sweep.py)."""
    out = list(argv)
    for i in range(len(out) - 1):
        if out[i] == "--runs" and RUNS_CAP and int(out[i + 1]) > RUNS_CAP:
            out[i + 1] = str(RUNS_CAP)
    if out[0] == "sweep" and "--workers" not in out and not starts_workers(["run", *out[1:]]):
        out += ["--workers", "1"]
    return out


@pytest.fixture(scope="module")
def results(workdir: Path) -> dict[int, subprocess.CompletedProcess[str]]:
    """Every documented command, run once: in this process one after the other, while
    the few that need a process of their own run alongside."""
    unique = list(dict.fromkeys(c.argv for c in COMMANDS))  # some commands recur
    argvs = {w: _equivalent([a for arg in w for a in _resolve(arg)]) for w in unique}
    done: dict[tuple[str, ...], Any] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            w: pool.submit(_run, argv, workdir) for w, argv in argvs.items() if starts_workers(argv)
        }
        for w, argv in argvs.items():
            if w not in futures:
                done[w] = _run(argv, workdir)
        done.update({w: f.result() for w, f in futures.items()})
    return {i: done[c.argv] for i, c in enumerate(COMMANDS)}


# --- the examples run -----------------------------------------------------------------


def test_docs_have_examples() -> None:
    assert len(SCENARIOS) >= 5
    assert len(COMMANDS) >= 20
    assert {b.doc for b, _ in SCENARIOS} >= {"semantics.md", "scenario-format.md", "tutorial.md"}


@pytest.mark.parametrize(
    ("block", "name"), SCENARIOS, ids=[f"{b.doc}:{b.line}:{n}" for b, n in SCENARIOS]
)
def test_scenario_block_loads_and_runs(block: Block, name: str, workdir: Path) -> None:
    path = workdir / name
    if "\n# invalid:" in "\n" + block.body:
        with pytest.raises(negosim.ScenarioError):
            negosim.load(path)
        return
    cs = negosim.load(path)
    if "\n# run fails:" in "\n" + block.body:
        with pytest.raises(negosim.SimulationError):
            negosim.simulate(cs, runs=300, seed=1)
        return
    est = negosim.simulate(cs, runs=300, seed=1)
    assert est.runs == 300
    assert sum(est.outcomes.values()) == 300
    assert 0 <= est.p_meeting <= 1


@pytest.mark.parametrize("block", EXCERPTS, ids=[f"{b.doc}:{b.line}" for b in EXCERPTS])
def test_excerpt_is_verbatim(block: Block) -> None:
    first, *lines = block.body.splitlines()
    source = (REPO / first.removeprefix("# from ").strip()).read_text(encoding="utf-8")
    known = {line.rstrip() for line in source.splitlines()}
    missing = [line for line in lines if line.strip() and line.rstrip() not in known]
    assert not missing, f"{block.doc}:{block.line}: not in {first[7:]}: {missing}"


@pytest.mark.parametrize(
    "index", range(len(COMMANDS)), ids=[f"{c.block.doc}:{c.text}" for c in COMMANDS]
)
def test_documented_command(index: int, results: dict[int, Any]) -> None:
    c = COMMANDS[index]
    r = results[index]
    assert r.returncode == c.expect, (
        f"{c.block.doc}:{c.block.line}: `{c.text}` exited {r.returncode}, expected "
        f"{c.expect}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-2000:]}"
    )
    if c.expect == 0:
        assert r.stdout.strip(), f"`{c.text}` printed nothing"
    else:
        assert "Traceback" not in r.stderr


def test_documented_error_output(results: dict[int, Any]) -> None:
    """A failing command shown alone, followed by a ```text block: that is its stderr."""
    checked = 0
    for i, c in enumerate(COMMANDS):
        same_block = [d for d in COMMANDS if d.block == c.block]
        if c.expect == 0 or len(same_block) != 1 or c.block.after.strip():
            continue
        nxt = BLOCKS[BLOCKS.index(c.block) + 1]
        if nxt.lang != "text":
            continue
        assert results[i].stderr.splitlines() == nxt.body.splitlines(), c.text
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize(
    "block",
    [b for b in BLOCKS if b.lang == "python"],
    ids=lambda b: f"{b.doc}:{b.line}",
)
def test_python_block(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    exec(compile(block.body, f"{block.doc}:{block.line}", "exec"), {"__name__": "__doc__"})


# --- the worked example -------------------------------------------------------------------


def _scenario(name: str, workdir: Path) -> Path:
    assert name in {n for _, n in SCENARIOS}, f"{name} is no longer defined in the docs"
    return workdir / name


def _open_hours(cs: negosim.CompiledScenario) -> float:
    """Hours before the horizon in which the answering actor can act."""
    model = cs.model
    actor = model.actors[model.actions["answer"].actor]
    if actor.available is None:
        return cs.horizon
    tz = zone(model.calendar.timezone)
    total = 0.0
    for wid in actor.available:
        w = model.calendar.windows[wid]
        a = hours_between(cs.start, parse_datetime(w.start, tz))
        b = hours_between(cs.start, parse_datetime(w.end or "", tz))
        total += max(0.0, min(b, cs.horizon) - max(a, 0.0))
    return total


def _day_exposures(cs: negosim.CompiledScenario) -> list[float]:
    """Open hours in each venue-local day from the start (the example starts at midnight)."""
    model = cs.model
    actor = model.actors[model.actions["answer"].actor]
    days = math.ceil(cs.horizon / 24)
    if actor.available is None:
        return [min(24.0, cs.horizon - 24 * d) for d in range(days)]
    tz = zone(model.calendar.timezone)
    out = [0.0] * days
    for wid in actor.available:
        w = model.calendar.windows[wid]
        a = hours_between(cs.start, parse_datetime(w.start, tz))
        b = hours_between(cs.start, parse_datetime(w.end or "", tz))
        for d in range(days):
            out[d] += max(0.0, min(b, 24.0 * (d + 1)) - max(a, 24.0 * d))
    return out


@pytest.mark.parametrize("name", ["worked.yaml", "worked-window.yaml"])
def test_worked_example_closed_form(name: str, workdir: Path) -> None:
    cs = negosim.load(_scenario(name, workdir))
    delay = cs.model.actions["answer"].delay
    assert delay.dist == "exponential"
    m = parse_duration(str(delay.mean))
    exposure = _open_hours(cs)
    p = 1 - math.exp(-exposure / m)
    cumulative, by_day = 0.0, []
    for hours in _day_exposures(cs):
        by_day.append(math.exp(-cumulative / m) - math.exp(-(cumulative + hours) / m))
        cumulative += hours

    # The doc states these numbers (to four decimals) ...
    text = _section("semantics.md", "## Worked example")
    for value in [p, *by_day]:
        assert f"**{value:.4f}**" in text, f"semantics.md should state {value:.4f} for {name}"

    # ... and a simulation agrees, within binomial tolerance.
    n = 40_000
    est = negosim.simulate(cs, runs=n, seed=11)
    assert abs(est.p_meeting - p) <= Z * math.sqrt(p * (1 - p) / n), (est.p_meeting, p)
    for (day, simulated), exact in zip(est.by_day.items(), by_day, strict=True):
        tol = Z * math.sqrt(exact * (1 - exact) / n)
        assert abs(simulated - exact) <= tol, (day, simulated, exact)

    # The median: m ln 2 open hours, about 16:38 in both parts of the example.
    assert "16:38" in text
    median_open = m * math.log(2)
    density = math.exp(-median_open / m) / m  # per open hour, at the median
    se_hours = 0.5 / math.sqrt(n) / density
    assert est.median_time_held is not None
    local = est.median_time_held[11:16]
    minutes = int(local[:2]) * 60 + int(local[3:])
    assert abs(minutes - (16 * 60 + 38)) <= Z * se_hours * 60 + 1, est.median_time_held


def test_worked_example_restart_not_resume(workdir: Path) -> None:
    cs = negosim.load(
        _scenario("worked-window.yaml", workdir),
        [("actions.answer.delay", {"dist": "fixed", "value": "10h"})],
    )
    assert negosim.simulate(cs, runs=200, seed=0).p_meeting == 0.0
    cs = negosim.load(
        _scenario("worked-window.yaml", workdir),
        [("actions.answer.delay", {"dist": "fixed", "value": "8h"})],
    )
    est = negosim.simulate(cs, runs=200, seed=0)
    assert est.p_meeting == 1.0
    assert est.median_time_held is not None and est.median_time_held.startswith("2023-02-16T17:00")


# --- figures quoted in the prose ---------------------------------------------------------------

CLAIMS = [
    # doc, phrase in the doc, scenario (repo path or doc file), --set overrides, percent
    ("tutorial.md", "P(meeting held) = 65.8%", "scenarios/tutorial.yaml", [], 65.8),
    ("tutorial.md", "rises from 65.8% to about 85%", "scenarios/tutorial.yaml",
     [("p_accept", 0.9)], 85.0),
    ("tutorial.md", "P(meeting held) drops to about 62%", "scenarios/tutorial.yaml",
     [("actors.b.present.0.arrival.high", "8h")], 62.0),
    ("tutorial.md", "P(meeting held) falls to about 42%", "tutorial-in-person.yaml", [], 42.0),
    ("tutorial.md", "P(meeting held) drops to about 63%", "tutorial-crisis.yaml", [], 63.0),
    ("tutorial.md", "rises only to about 69%", "tutorial-three-days.yaml", [], 69.0),
]  # fmt: skip


@pytest.mark.parametrize("claim", CLAIMS, ids=[c[1] for c in CLAIMS])
def test_figures_in_prose(claim: tuple[Any, ...], workdir: Path) -> None:
    doc, phrase, scenario, sets, percent = claim
    assert phrase in _doc_text(doc)
    path = REPO / scenario if scenario.startswith("scenarios/") else workdir / scenario
    n = 10_000
    est = negosim.simulate(negosim.load(path, sets), runs=n, seed=0)
    p = percent / 100
    # "about" figures are rounded to whole percents: allow that on top of sampling error
    assert abs(est.p_meeting - p) <= Z * math.sqrt(p * (1 - p) / n) + 0.005, est.p_meeting


# --- lists that must not drift from the code ---------------------------------------------------


def test_function_list_matches_code() -> None:
    section = _section("expressions.md", "## Functions")
    listed = [b for b in _blocks("expressions.md") if b.body in section and b.lang == "text"]
    assert len(listed) == 1
    assert listed[0].body.splitlines() == [desc for _, desc in FUNCTIONS.values()]


def _commands() -> list[str]:
    """Every subcommand the parser knows, so a new command cannot go undocumented."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


@pytest.mark.parametrize("command", ["", *_commands()])
def test_cli_help_matches_doc(command: str) -> None:
    argv = [command, "--help"] if command else ["--help"]
    r = _run(argv, REPO, {"COLUMNS": "80"})
    assert r.returncode == 0
    shown = " ".join(r.stdout.split())
    docs = [" ".join(b.body.split()) for b in _blocks("cli.md") if b.lang == "text"]
    assert shown in docs, f"docs/cli.md lacks the current `negosim {command} --help`"


def _first_column(section: str) -> set[str]:
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def test_run_json_fields_documented() -> None:
    est = negosim.simulate(negosim.load(REPO / "scenarios/tutorial.yaml"), runs=200, seed=0)
    assert _first_column(_section("cli.md", "### JSON output")) == set(est.to_json())


def test_params_json_fields_documented() -> None:
    rows = parameter_rows(negosim.load(REPO / "scenarios/tutorial.yaml"))
    assert _first_column(_section("cli.md", "## `negosim params`")) == set(rows[0])


def test_trace_json_fields_documented(workdir: Path) -> None:
    r = _run(["trace", str(REPO / "scenarios/tutorial.yaml"), "--format", "json"], REPO)
    data = json.loads(r.stdout)
    section = _section("cli.md", "## `negosim trace`")
    for key in [*data, *data["events"][0]]:
        assert f"`{key}`" in section or f'"{key}"' in section, key
    # Every kind of timeline line that the documented examples produce is documented.
    kinds = set()
    for name in ("full-example.yaml", "tutorial-in-person.yaml"):
        cs = negosim.load(_scenario(name, workdir))
        for seed in range(20):
            kinds |= {line.kind for line in engine_trace(cs, seed)[1]}
    assert {"window", "fire", "state", "end", "enable", "block", "unblock"} <= kinds
    for kind in kinds:
        assert f"`{kind}`" in section, kind


def test_scenario_format_documents_every_field() -> None:
    text = _doc_text("scenario-format.md")
    schema = model_schema()
    models = [schema, *schema["$defs"].values()]
    missing = sorted(
        {name for model in models for name in model.get("properties", {})}
        - {name for name in re.findall(r"`([A-Za-z_0-9]+)`", text)}
    )
    assert not missing, f"docs/scenario-format.md does not mention {missing}"
    for dist in ("fixed", "uniform", "triangular", "exponential", "lognormal", "empirical"):
        assert f"| `{dist}` |" in text


def test_dependencies_documented() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    declared = [*project["dependencies"], *(spec for specs in extras.values() for spec in specs)]
    text = _doc_text("dependencies.md")
    for spec in declared:
        name = re.match(r"[A-Za-z0-9_.-]+", spec)
        assert name, spec
        if name.group(0) == "negosim":  # an extra made of other extras ("negosim[all]")
            continue
        assert f"`{name.group(0)}`" in text, f"dependencies.md lacks {spec}"
    for extra in extras:
        assert f"`negosim[{extra}]`" in text, f"dependencies.md lacks the extra {extra!r}"


def test_docs_link_to_existing_files() -> None:
    for doc in DOC_NAMES:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", _doc_text(doc)):
            if "://" in target:
                continue
            assert ((DOCS / doc).parent / target).exists(), f"{doc} links to missing {target}"
