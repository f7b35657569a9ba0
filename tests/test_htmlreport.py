"""The HTML report: self-contained, escaped, complete; and rendered in a real browser.

The browser tests drive Debian's Chromium (``/usr/bin/chromium``, installed by
``.ci/run``) headless through the ``playwright`` package; no browser is ever
downloaded. They skip on a developer machine without Chromium, and fail on CI
(``CI=true``), where a skip would hide a broken install step.
"""

from __future__ import annotations

import csv
import html.parser
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SCENARIOS, base_scenario

import negosim
from negosim.cli.main import main
from negosim.compiler.describe import parameter_rows
from negosim.output import htmlreport
from negosim.runs.results import wilson
from negosim.runs.runner import simulate

CHROMIUM = os.environ.get("NEGOSIM_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]  # fmt: skip


class _Refs(html.parser.HTMLParser):
    """Collects tags and every attribute that could make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []
        self.imgs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "srcset", "action", "poster", "data", "background"):
                self.refs.append((tag, k, v or ""))
            if tag == "img" and k == "src":
                self.imgs.append(v or "")


def _parse(text: str) -> _Refs:
    p = _Refs()
    p.feed(text)
    return p


@pytest.fixture(scope="module")
def munich_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "munich.html"
    assert main(["report", str(SCENARIOS / "munich.yaml"), "-o", str(out), "--runs", "1000"]) == 0
    return out


def test_report_is_self_contained(munich_report: Path) -> None:
    text = munich_report.read_text(encoding="utf-8")
    p = _parse(text)
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    assert all(v.startswith("data:") for _, _, v in p.refs), p.refs
    assert "@import" not in text and "url(" not in text
    assert len(p.imgs) == 5 and all(s.startswith("data:image/svg+xml;base64,") for s in p.imgs)


def test_report_has_every_part(munich_report: Path) -> None:
    cs = negosim.load(SCENARIOS / "munich.yaml")
    est = simulate(cs, runs=1000, seed=0)
    text = munich_report.read_text(encoding="utf-8")
    low, high = est.ci95
    assert f"{100 * est.p_meeting:.1f}%" in text
    assert f"95% CI {100 * low:.1f}% – {100 * high:.1f}% (Wilson)" in text
    assert htmlreport._e(cs.model.description.strip()) in text
    for src in cs.model.sources.values():
        assert htmlreport._e(src.title) in text
    for row in parameter_rows(cs):  # the assumptions table: every parameter, its note
        assert f"<code>{row['name']}</code>" in text
        for note in (row["source"], row["assumption"]):
            if note:
                assert htmlreport._e(note.strip()) in text
    assert "One sample run" in text
    assert "outcome: " in text or "horizon reached: no outcome" in text  # how it ended


def test_report_escapes_scenario_text(write_scenario: Callable[..., Path], tmp_path: Path) -> None:
    data = base_scenario()
    data["title"] = "<script>alert('x')</script> & co"
    data["description"] = '<img src="http://example.invalid/x.png"> "quoted"'
    data["sources"] = {"s": {"title": "<b>bold</b>", "url": "http://example.invalid/a"}}
    out = tmp_path / "r.html"
    assert main(["report", str(write_scenario(data)), "-o", str(out), "--runs", "100"]) == 0
    text = out.read_text(encoding="utf-8")
    p = _parse(text)
    assert "script" not in p.tags and "b" not in p.tags
    assert all(v.startswith("data:") for _, _, v in p.refs)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in text
    assert "&lt;img src=&quot;http://example.invalid/x.png&quot;&gt;" in text


def _sweep_csv(path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["p_accept", "runs", "p_meeting", "ci95_low", "ci95_high"])
        for i in range(5):
            k = 100 * (i + 1)
            w.writerow([i / 4, 1000, k / 1000, *wilson(k, 1000)])
    return path


def test_sweep_report(tmp_path: Path) -> None:
    sweep = _sweep_csv(tmp_path / "sweep.csv")
    idx = tmp_path / "idx.csv"
    idx.write_text(
        "param,ST,ST_conf,S1,S1_conf\np_accept,0.8,0.05,0.7,0.04\nanswer_median,0.1,0.02,0.05,0.02\n"
    )
    out = tmp_path / "s.html"
    assert main(["report", str(sweep), "--indices", str(idx), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    p = _parse(text)
    assert len(p.imgs) == 2 and all(v.startswith("data:") for _, _, v in p.refs)
    assert "Lowest P(meeting)" in text and "p_accept = 0" in text and "50.0%" in text


# --- in a real browser --------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} not installed (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed (pip install -e '.[test]')"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run on CI: {missing}")
        pytest.skip(missing)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def _open(browser: Any, path: Path, shot: Path | None = None) -> dict[str, Any]:
    """Load ``path``; return console errors, page errors, requests and image boxes."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    seen: dict[str, Any] = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: seen["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_load_state("networkidle")
    seen["images"] = page.evaluate(
        """() => Array.from(document.images).map(i => {
             const r = i.getBoundingClientRect();
             return {complete: i.complete, natural: i.naturalWidth,
                     x: r.x, y: r.y, w: r.width, h: r.height}; })"""
    )
    if shot:
        page.screenshot(path=str(shot), full_page=True)
    page.close()
    return seen


def test_browser_harness_sees_requests_and_errors(browser: Any, tmp_path: Path) -> None:
    """The checks below can fail: a page that fetches and errs is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="http://127.0.0.1:9/x.png">'
                   "<script>console.error('boom')</script></body></html>")  # fmt: skip
    seen = _open(browser, bad)
    assert any(u.startswith("http://127.0.0.1:9/") for u in seen["requests"])
    assert ("error", "boom") in seen["console"]


def test_report_renders_offline_in_chromium(
    browser: Any, munich_report: Path, tmp_path: Path
) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    seen = _open(browser, munich_report, shot)
    errors = [text for kind, text in seen["console"] if kind == "error"]
    assert errors == [] and seen["errors"] == []
    assert seen["requests"] == [munich_report.resolve().as_uri()]
    images = seen["images"]
    assert len(images) == 5
    assert all(i["complete"] and i["natural"] > 0 and i["w"] > 300 and i["h"] > 150 for i in images)
    # The whole-page screenshot: not blank, and every figure's box has drawn content
    # (dark strokes and text on white), not an empty frame or a broken-image icon.
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape[1] == 1366 and pixels.shape[0] > 2000
    assert pixels.std() > 20
    for i in images:
        box = pixels[int(i["y"]) : int(i["y"] + i["h"]), int(i["x"]) : int(i["x"] + i["w"])]
        assert box.shape[0] > 150 and box.std() > 15 and (box < 128).mean() > 0.005, i


def test_sweep_report_renders_offline_in_chromium(browser: Any, tmp_path: Path) -> None:
    sweep = _sweep_csv(tmp_path / "sweep.csv")
    out = tmp_path / "s.html"
    assert main(["report", str(sweep), "-o", str(out)]) == 0
    seen = _open(browser, out)
    assert [t for k, t in seen["console"] if k == "error"] == [] and seen["errors"] == []
    assert seen["requests"] == [out.resolve().as_uri()]
    assert len(seen["images"]) == 1 and seen["images"][0]["natural"] > 0


def test_report_on_a_narrow_screen(browser: Any, munich_report: Path) -> None:
    page = browser.new_page(viewport={"width": 420, "height": 800})
    page.goto(munich_report.resolve().as_uri(), wait_until="load")
    # Nothing wider than the screen but the tables, which scroll inside their box.
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    page.close()
    assert overflow <= 420
