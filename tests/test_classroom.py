"""`negosim new` writes a scenario that validates and runs; `negosim explain` says it in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SCENARIOS

import negosim
from negosim.classroom.scaffold import scaffold
from negosim.output.explain import explain

FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_new_writes_a_scenario_that_validates_and_runs(cli, tmp_path):
    proc = cli("new", "my-case", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "my-case.yaml"
    assert "wrote my-case.yaml" in proc.stdout
    assert cli("validate", path).returncode == 0
    run = cli("run", path, "--runs", "200", "--format", "json")
    assert run.returncode == 0, run.stderr
    assert '"scenario": "my-case"' in run.stdout
    # the template teaches: it is commented, and every parameter has provenance
    text = path.read_text(encoding="utf-8")
    assert text.count("#") > 10
    cs = negosim.load(path)
    assert all(p.source or p.assumption for p in cs.model.params.values())
    assert cs.model.preconditions and cs.model.events


def test_new_does_not_overwrite_without_force(cli, tmp_path):
    assert cli("new", "x", cwd=tmp_path).returncode == 0
    again = cli("new", "x.yaml", cwd=tmp_path)
    assert again.returncode == 2
    assert "x.yaml exists" in again.stderr
    assert cli("new", "x", "--force", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("name", ["My Case 2024!", "__", "Ünïcode-ok", "a" * 100])
def test_any_name_gives_a_valid_id(name, tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(scaffold(name), encoding="utf-8")
    assert negosim.validate(path) == []


def test_explain_munich_in_plain_words(cli):
    proc = cli("explain", SCENARIOS / "munich.yaml")
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    for needle in [
        "Times are venue-local (Europe/Berlin, CET)",
        "The simulation starts Fri 17 Feb 2023 08:00 and the question closes Sun 19 Feb 2023 13:00",
        "Window conference: from Fri 17 Feb 2023 14:00 until Sun 19 Feb 2023 13:00",
        "Wang Yi (China) insists: The US must formally request the meeting.",
        "only once met: The US must formally request the meeting.",
        "typically after 12h (us_decision_median); one time in ten after more than 36h",
        "Blinken is at the venue and Wang Yi is at the venue",
        "held [meeting held]",
        "declined [failed]",
    ]:
        assert needle in out, needle
    cs = negosim.load(SCENARIOS / "munich.yaml")
    for aid in cs.model.actions:
        assert f"({aid})" in out


def test_explain_shows_overridden_values(cli):
    proc = cli("explain", SCENARIOS / "munich.yaml", "--set", "us_decision_median=1d")
    assert proc.returncode == 0, proc.stderr
    assert "typically after 1d (us_decision_median)" in " ".join(proc.stdout.split())


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_explain_every_shipped_scenario(path: Path):
    cs = negosim.load(path)
    text = explain(cs)
    assert cs.model.title in text
    for actor in cs.model.actors.values():
        assert actor.name in text
    for pre in cs.model.preconditions.values():
        assert " ".join(pre.text.split()) in " ".join(text.split())
    assert max(len(line) for line in text.splitlines()) <= 80


LIBRARY = sorted(p.stem for p in SCENARIOS.glob("*.yaml") if p.stem not in {"munich", "tutorial"})


@pytest.mark.parametrize("name", LIBRARY)
def test_library_case_is_documented_and_its_numbers_have_provenance(name: str):
    """Each library case has sources, a docs page that says what then happened, and
    every literal number in an action's delay comes with a source or an assumption."""
    cs = negosim.load(SCENARIOS / f"{name}.yaml")
    assert cs.model.sources, "a library case cites its sources"
    page = SCENARIOS.parent / "docs" / "cases" / f"{name}.md"
    text = page.read_text(encoding="utf-8")
    assert "## What was known" in text and "## What then happened" in text
    assert f"scenarios/{name}.yaml" in text
    for aid, act in cs.model.actions.items():
        fields = [v for k, v in act.delay.model_dump().items() if k != "dist"]
        literal = any(not (isinstance(v, str) and v in cs.model.params) for v in fields)
        if literal:
            assert act.source or act.assumption, f"{name}: actions.{aid}.delay needs a note"


def test_explain_joins_precondition_sentences_without_stray_full_stops(
    write_scenario,  # type: ignore[no-untyped-def]
) -> None:
    """Two required preconditions written as sentences read 'A; B', not 'A.; B.'."""
    from conftest import base_scenario

    from negosim.output.explain import explain

    data = base_scenario()
    data["facts"] = {"x": {"type": "bool", "initial": True}}
    data["preconditions"] = {
        "seoul": {"text": "Seoul must be willing to meet.", "insisted_by": "a", "holds": "x"},
        "tokyo": {"text": "Tokyo must be willing to meet.", "insisted_by": "a", "holds": "x"},
    }
    data["actions"]["meet"]["requires"] = ["seoul", "tokyo"]
    text = " ".join(explain(negosim.load(write_scenario(data))).split())
    assert "Seoul must be willing to meet; Tokyo must be willing to meet" in text
    assert ".;" not in text
