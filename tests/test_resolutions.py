"""Resolution files (what happened) and the case library they resolve.

The loader is tested on files written here; the library checks read every
shipped scenario and resolution: each real case has exactly one resolution,
named by the scenario's id, whose date lies after the scenario's ``as_of`` and
inside its simulated period, and a page in docs/cases that keeps the outcome
below a fold.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from conftest import SCENARIOS

import negosim
from negosim.errors import ScenarioError
from negosim.scenario.resolution import PARTS_OF_DAY, Resolution, load_resolution

REPO = SCENARIOS.parent
RESOLUTIONS = REPO / "resolutions"
CASES = REPO / "docs" / "cases"
NOT_CASES = {"tutorial"}  # shipped scenarios that are not real cases
VALIDATION_ONLY = [  # kept out of the library for independent validation (issue 13)
    ("Blinken", "Lavrov", "2023-03"),
    ("Blinken", "Lavrov", "2023-07"),
    ("Blinken", "Wang", "2023-07"),
    ("Biden", "Xi", "2023-11"),
    ("Austin", "Dong", "2024-0"),
    ("Obama", "Putin", "2015-11"),
    ("Xi", "Abe", "2014-11"),
    ("Yoon", "Kishida", "2022-09"),
]

GOOD = """\
case: demo-2020
met: true
date: 2020-05-02
part_of_day: afternoon
length_minutes: 45
sources:
  wire: {title: They met, outlet: A wire, date: 2020-05-02, url: https://example.org/a}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "demo-2020.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_resolution_loads(tmp_path: Path) -> None:
    res = load_resolution(write(tmp_path, GOOD))
    assert isinstance(res, Resolution)
    assert (res.case, res.met, res.date) == ("demo-2020", True, dt.date(2020, 5, 2))
    assert (res.part_of_day, res.length_minutes) == ("afternoon", 45.0)
    assert res.sources["wire"].url == "https://example.org/a"


def test_a_meeting_that_did_not_happen_has_no_date(tmp_path: Path) -> None:
    text = "case: demo-2020\nmet: false\nsources:\n  w: {title: No meeting}\n"
    res = load_resolution(write(tmp_path, text))
    assert (res.met, res.date, res.part_of_day, res.length_minutes) == (False, None, None, None)
    with pytest.raises(ScenarioError, match="did not take place has no 'date'"):
        load_resolution(write(tmp_path, text.replace("met: false", "met: false\ndate: 2020-05-02")))


@pytest.mark.parametrize(
    ("old", "new", "message", "line"),
    [
        ("length_minutes: 45", "length_minutes: 45\nwinner: us", "unknown key 'winner'", 6),
        ("part_of_day: afternoon", "part_of_day: teatime", "part_of_day", 4),
        ("date: 2020-05-02", "date: 2020-13-02", "expected a date YYYY-MM-DD", 3),
        ("date: 2020-05-02\n", "", "needs its 'date'", 1),
        ("met: true", "met: maybe", "met", 2),
        ("length_minutes: 45", "length_minutes: -5", "length_minutes", 5),
        ("case: demo-2020", "case: Demo 2020", "case", 1),
    ],
)
def test_a_wrong_resolution_is_located(
    tmp_path: Path, old: str, new: str, message: str, line: int
) -> None:
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ScenarioError) as info:
        load_resolution(path)
    text = str(info.value)
    assert message in text
    assert text.startswith(f"{path}:{line}:"), text


def test_sources_are_required_and_not_a_list(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="sources"):
        load_resolution(write(tmp_path, "case: demo-2020\nmet: false\n"))
    with pytest.raises(ScenarioError, match="sources"):
        load_resolution(write(tmp_path, "case: demo-2020\nmet: false\nsources: [a, b]\n"))
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_resolution(write(tmp_path, "- case\n"))


def test_parts_of_day_are_the_results_parts() -> None:
    from negosim.runs.results import PARTS

    assert set(PARTS_OF_DAY) == set(PARTS)


# --- the library --------------------------------------------------------------------

LIBRARY = sorted(p for p in SCENARIOS.glob("*.yaml") if p.stem not in NOT_CASES)


def _scenario(path: Path) -> negosim.CompiledScenario:
    return negosim.load(path)


def test_the_library_has_at_least_twenty_cases_as_its_index_says() -> None:
    met = [load_resolution(p).met for p in sorted(RESOLUTIONS.glob("*.yaml"))]
    assert len(LIBRARY) >= 20 and len(met) == len(LIBRARY)
    words = {6: "six", 14: "fourteen", 20: "twenty"}
    index = " ".join((CASES / "index.md").read_text(encoding="utf-8").split())
    assert f"The {words[len(met)]} cases" in index
    took, did_not = words[sum(met)], words[len(met) - sum(met)]
    assert f"{took} of the meetings asked about took place and {did_not}" in index
    assert len(index.split("| [")) - 1 == len(LIBRARY)


def test_every_case_is_resolved_once() -> None:
    ids = [_scenario(p).model.id for p in LIBRARY]
    assert len(set(ids)) == len(ids)
    files = sorted(p.stem for p in RESOLUTIONS.glob("*.yaml"))
    assert files == sorted(ids)


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_a_case_is_resolved_after_its_as_of_date(path: Path) -> None:
    model = _scenario(path).model
    assert model.as_of, f"{path.name}: a library case says which day it is modelled as of"
    assert model.sources and all(s.file is None for s in model.sources.values())
    dates = [s.date[:10] for s in model.sources.values() if s.date]
    assert dates and min(dates) <= model.as_of, "a source published by the as-of day"
    res = load_resolution(RESOLUTIONS / f"{model.id}.yaml")
    if res.met:  # nothing the model cites was written after the day of the meeting
        assert max(dates) <= str(res.date), max(dates)
    assert res.case == model.id
    as_of = dt.date.fromisoformat(model.as_of)
    start = dt.date.fromisoformat(model.calendar.start[:10])
    horizon = dt.date.fromisoformat(model.calendar.horizon[:10])
    assert as_of <= start
    if res.met:
        assert res.date is not None and start <= res.date <= horizon
    assert all(s.file is None for s in res.sources.values())


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_a_case_page_keeps_the_outcome_below_a_fold(path: Path) -> None:
    model = _scenario(path).model
    page = (CASES / f"{model.id}.md").read_text(encoding="utf-8")
    assert f"scenarios/{path.name}" in page
    assert "## What was known" in page and "## How it is modelled" in page
    happened = page.split("## What then happened", 1)[1]
    assert "<details>" in happened and "</details>" in happened
    index = (CASES / "index.md").read_text(encoding="utf-8")
    assert f"({model.id}.md)" in index


def test_no_validation_case_is_in_the_library() -> None:
    for path in LIBRARY:
        model = _scenario(path).model
        text = f"{model.title} {model.as_of}"
        for a, b, when in VALIDATION_ONLY:
            clash = a in text and b in text and (model.as_of or "").startswith(when)
            assert not clash, f"{path.name} is kept aside for validation"
        assert not re.search(r"\bAntalya\b.*2015|APEC.*Beijing.*2014", model.title)
