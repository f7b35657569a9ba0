"""`negosim serve`: the classroom web application, driven through Starlette's TestClient.

Each test gets a fresh server on a temporary database and a temporary scenario
directory (copies of the library's files), with worker threads instead of
processes where the pool itself is not what is tested.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, run_in_process

pytest.importorskip("starlette")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from negosim.web.app import Settings, build_app  # noqa: E402
from negosim.web.server import announce, is_local  # noqa: E402
from negosim.web.store import SCHEMA_VERSION, Store, StoreError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

XSS = '<script>alert("x")</script>'


@pytest.fixture
def library(tmp_path: Path) -> Path:
    d = tmp_path / "scenarios"
    d.mkdir()
    for name in ("munich.yaml", "tutorial.yaml"):
        shutil.copy(SCENARIOS / name, d / name)
    return d


Server = Callable[..., Any]


@pytest.fixture
def server(tmp_path: Path, library: Path) -> Iterator[Server]:
    """``server(processes=False)``: a started app and a client factory."""
    started: list[Any] = []

    def start(processes: bool = False, db: Path | None = None) -> Any:
        app = build_app(
            Settings(db=db or tmp_path / "class.sqlite3", scenarios=library, workers=2,
                     processes=processes, sse_seconds=1.0, heartbeat_seconds=0.2)
        )  # fmt: skip
        first = TestClient(app)
        first.__enter__()
        started.append(first)

        def client() -> TestClient:
            c = TestClient(app)
            c.__enter__()  # the lifespan already ran; this only opens a client
            started.append(c)
            return c

        app.state.client = client
        app.state.first = first
        return app

    yield start
    for c in reversed(started):
        c.__exit__(None, None, None)


def csrf(c: TestClient) -> str:
    if not c.cookies.get("negosim_csrf"):
        c.get("/")
    token = c.cookies.get("negosim_csrf")
    assert token
    return token


def post(c: TestClient, url: str, **data: Any) -> Any:
    return c.post(url, data={"csrf": csrf(c), **data})


def wait_job(app: Any, job_id: int, timeout: float = 120) -> dict[str, Any]:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        row = app.state.web.store.job(job_id)
        if row["status"] in ("done", "failed"):
            return dict(row)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end")


def job_id_of(resp: Any) -> int:
    m = re.search(r"/jobs/(\d+)$", str(resp.url))
    assert m, resp.url
    return int(m.group(1))


def teacher(app: Any) -> TestClient:
    c = app.state.client()
    r = c.get(f"/teach?key={app.state.web.key}")
    assert r.status_code == 200 and "New class" in r.text
    return c


def new_class(app: Any, name: str = "IR 101") -> tuple[TestClient, str]:
    t = teacher(app)
    r = post(t, "/teach/classes", name=name)
    code = str(r.url).split("/teach/")[1].split("?")[0]
    return t, code


def student(app: Any, code: str, name: str) -> TestClient:
    s = app.state.client()
    r = post(s, "/join", code=code, name=name)
    assert r.status_code == 200 and str(r.url).endswith(f"/class/{code}"), r.text
    return s


def cli_json(*args: str) -> dict[str, Any]:
    """``negosim ARGS --format json`` (in this process, as the ``cli`` fixture runs it)."""
    done = run_in_process([*args, "--format", "json"])
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


# --- cases and simulations ---------------------------------------------------------------


def test_case_list_and_case_page(server: Server) -> None:
    app = server()
    c = app.state.first
    r = c.get("/cases")
    assert r.status_code == 200
    assert "Blinken–Wang Yi at the Munich Security Conference" in r.text
    assert "protocol states" in r.text and "17 Feb 2023" in r.text
    page = c.get("/cases/munich").text
    assert "The case in plain words" in page
    assert "p_us_formal_request" in page and "source:" in page and "assumption:" in page
    # sliders only for parameters with declared finite ranges, bounded by them
    assert 'name="p.p_formula_per_round" min="0.05" max="0.4"' in page
    assert 'name="p.us_decision_median"' not in page  # a duration without an upper bound


def test_simulate_runs_on_the_pool_and_matches_the_cli(server: Server) -> None:
    app = server(processes=True)
    c = app.state.first
    r = post(c, "/cases/munich/simulate", runs="3000", seed="7")
    assert r.status_code == 200 and "Simulating" in r.text or "P(meeting held)" in r.text
    job = wait_job(app, job_id_of(r))
    assert job["status"] == "done", job["error"]
    web = json.loads(job["result"])["estimate"]
    cli = cli_json("run", str(SCENARIOS / "munich.yaml"), "--runs", "3000", "--seed", "7")
    web.pop("elapsed_s", None)
    cli.pop("elapsed_s", None)
    assert web == cli
    page = c.get(f"/jobs/{job_id_of(r)}").text
    assert f"{100 * cli['p_meeting']:.1f}%" in page
    assert "held by end of day" in page
    report = c.get(f"/jobs/{job_id_of(r)}/report")
    assert report.status_code == 200 and "<svg" in report.text or "data:image/svg" in report.text
    assert "sandbox" in report.headers["content-security-policy"]


def test_what_if_is_the_paired_comparison_of_compare(server: Server) -> None:
    app = server()
    c = app.state.first
    r = post(c, "/cases/munich/compare", runs="2000", seed="3", **{"p.p_formula_per_round": "0.35"})
    job = wait_job(app, job_id_of(r))
    assert job["status"] == "done", job["error"]
    web = json.loads(job["result"])["comparison"]
    cli = cli_json("compare", str(SCENARIOS / "munich.yaml"), "--set",
                   "p_formula_per_round=0.35", "--runs", "2000", "--seed", "3")  # fmt: skip
    for d in (web, cli):
        d.pop("elapsed_s", None)
    web["base"]["scenario"] = cli["base"]["scenario"]
    assert web["diff"] == cli["diff"] and web["diff_ci95"] == cli["diff_ci95"]
    assert web["pairs"] == cli["pairs"]
    page = c.get(f"/jobs/{job_id_of(r)}").text
    assert "Difference (paired)" in page and f"{100 * cli['diff']:+.1f} pts" in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("p.p_formula_per_round", "0.9", "must be between 0.05 and 0.4"),
        ("p.p_formula_per_round", "nan", "must be between"),
        ("p.p_formula_per_round", "x", "not a number"),
        ("runs", "999999", "Runs per request: between 100 and 20,000"),
        ("seed", "-1", "seed is a whole number"),
    ],
)
def test_what_if_stays_in_the_declared_ranges_and_caps(
    server: Server, field: str, value: str, message: str
) -> None:
    c = server().state.first
    data = {"runs": "1000", "seed": "0", "p.p_formula_per_round": "0.3", field: value}
    r = post(c, "/cases/munich/compare", **data)
    assert r.status_code == 400
    assert message in r.text


def test_simulation_requests_per_browser_are_capped(server: Server, monkeypatch: Any) -> None:
    from negosim.web import security

    monkeypatch.setattr(security, "SIMULATIONS_PER_WINDOW", 2)
    app = server()
    c = app.state.first
    for _ in range(2):
        assert post(c, "/cases/tutorial/simulate", runs="200", seed="1").status_code == 200
    r = post(c, "/cases/tutorial/simulate", runs="200", seed="1")
    assert r.status_code == 429
    assert "simulations in ten minutes" in r.text


def test_form_posts_per_minute_are_capped(server: Server, monkeypatch: Any) -> None:
    from negosim.web import security

    monkeypatch.setattr(security, "POSTS_PER_MINUTE", 3)
    c = server().state.first
    codes = [post(c, "/join", code="NOPE", name="a").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]


def test_progress_streams_as_server_sent_events(server: Server) -> None:
    app = server()
    c = app.state.first
    r = post(c, "/cases/tutorial/simulate", runs="2000", seed="1")
    jid = job_id_of(r)
    wait_job(app, jid)
    with c.stream("GET", f"/events/job-{jid}") as s:
        text = ""
        for chunk in s.iter_text():
            text += chunk
            if "data:" in text:
                break
    data = json.loads(re.search(r"data: (\{.*\})", text).group(1))  # type: ignore[union-attr]
    assert data["status"] == "done"
    assert c.get("/events/nothing-1").status_code == 404


# --- a class ----------------------------------------------------------------------------------


def resolve(library: Path, met: bool = True, date: str = "2023-02-18") -> None:
    (library / "resolutions").mkdir(exist_ok=True)
    (library / "resolutions" / "munich.yaml").write_text(
        f"met: {'true' if met else 'false'}\ndate: {date}\nnote: Blinken and Wang met.\n",
        encoding="utf-8",
    )


def test_a_class_predicts_then_sees_the_simulation_then_history(
    server: Server, library: Path
) -> None:
    resolve(library)
    app = server()
    t = teacher(app)
    r = post(t, "/teach/classes", name="IR 101")
    code = str(r.url).split("/teach/")[1].split("?")[0]
    assert len(code) == 6
    assert f"/teach/{code}?secret=" in r.text  # the class's instructor link, shown once
    r = t.get(f"/teach/{code}")
    assert f"/?code={code}" in r.text and "?secret=" not in r.text
    post(t, f"/teach/{code}/assign", case="munich")
    ann = student(app, code, "Ann")
    bob = student(app, code, XSS)
    page = ann.get(f"/class/{code}").text
    assert "Record my prediction" in page and "The simulation" not in page
    # before predicting, the student cannot simulate the assigned case
    r = post(ann, "/cases/munich/simulate", runs="500", seed="0")
    assert r.status_code == 403 and "record your prediction" in r.text.lower()
    assert post(ann, f"/class/{code}/predict", p="70", day="2023-02-18").status_code == 200
    assert post(bob, f"/class/{code}/predict", p="20", day="none").status_code == 200
    assert post(bob, f"/class/{code}/predict", p="120", day="none").status_code == 400
    assert post(bob, f"/class/{code}/predict", p="20", day="../x").status_code == 400
    dash = t.get(f"/teach/{code}").text
    assert "Predictions (2 of 2 students)" in dash and "45.0%" in dash  # the mean
    assert XSS not in dash and "&lt;script&gt;" in dash
    post(t, f"/teach/{code}/phase", action="simulation", runs="2000", seed="0")
    klass = app.state.web.store.klass(code)
    job = wait_job(app, klass["job_id"])
    assert job["status"] == "done"
    p_sim = json.loads(job["result"])["estimate"]["p_meeting"]
    page = ann.get(f"/class/{code}").text
    assert "P(meeting held)" in page and "Record my prediction" not in page
    assert post(ann, f"/class/{code}/predict", p="10", day="none").status_code == 400  # closed
    assert ann.get(f"/jobs/{klass['job_id']}").status_code == 200
    post(t, f"/teach/{code}/phase", action="predict")  # back to predicting: hidden again
    assert ann.get(f"/jobs/{klass['job_id']}").status_code == 403
    assert ann.get(f"/jobs/{klass['job_id']}/report").status_code == 403
    assert t.get(f"/jobs/{klass['job_id']}").status_code == 200
    post(t, f"/teach/{code}/phase", action="simulation")
    post(t, f"/teach/{code}/phase", action="history")
    page = ann.get(f"/class/{code}").text
    assert "The meeting was held" in page and "Your Brier score: <strong>0.090</strong>" in page
    dash = t.get(f"/teach/{code}").text
    assert "Class mean Brier score: <strong>0.365</strong>" in dash  # (0.09 + 0.64) / 2
    assert f"{(p_sim - 1) ** 2:.3f}" in dash
    export = t.get(f"/teach/{code}/export.csv")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["student"] for r in rows] == ["Ann", XSS]
    assert rows[0]["brier"] == "0.0900" and rows[0]["day_right"] == "true"
    assert rows[1]["brier"] == "0.6400" and rows[1]["day_right"] == "false"


def test_history_without_a_resolution_file_is_skipped(server: Server) -> None:
    app = server()
    t, code = new_class(app)
    post(t, f"/teach/{code}/assign", case="tutorial")
    s = student(app, code, "Ann")
    post(s, f"/class/{code}/predict", p="50", day="none")
    post(t, f"/teach/{code}/phase", action="simulation", runs="500", seed="0")
    post(t, f"/teach/{code}/phase", action="history")
    assert "has no resolution file" in t.get(f"/teach/{code}").text
    assert "no resolution file" in s.get(f"/class/{code}").text
    rows = list(csv.DictReader(io.StringIO(t.get(f"/teach/{code}/export.csv").text)))
    assert rows[0]["brier"] == ""


def test_csv_export_neutralises_formulas(server: Server) -> None:
    app = server()
    t, code = new_class(app)
    student(app, code, "=HYPERLINK(1)")
    text = t.get(f"/teach/{code}/export.csv").text
    assert "'=HYPERLINK(1)" in text


# --- security ---------------------------------------------------------------------------------


def test_instructor_pages_need_the_secret(server: Server) -> None:
    app = server()
    t, code = new_class(app)
    stranger = app.state.client()
    for url in ("/teach", f"/teach/{code}", f"/teach/{code}/export.csv"):
        assert stranger.get(url).status_code == 403, url
    assert stranger.get("/teach?key=wrong").status_code == 403
    assert post(stranger, "/teach/classes", name="x").status_code == 403
    assert post(stranger, f"/teach/{code}/assign", case="munich").status_code == 403
    assert post(stranger, f"/teach/{code}/phase", action="history").status_code == 403
    # a student of the class is no instructor either
    s = student(app, code, "Ann")
    assert s.get(f"/teach/{code}").status_code == 403


def test_a_class_secret_opens_only_its_own_class(server: Server) -> None:
    app = server()
    t, code_a = new_class(app, "A")
    r = post(t, "/teach/classes", name="B")
    code_b = str(r.url).split("/teach/")[1].split("?")[0]
    secret_a = t.cookies.get(f"ts_{code_a}")
    assert secret_a
    other = app.state.client()
    assert other.get(f"/teach/{code_a}?secret={secret_a}").status_code == 200
    assert other.get(f"/teach/{code_b}").status_code == 403
    assert other.get(f"/teach/{code_b}?secret={secret_a}").status_code == 403


def test_students_see_and_change_only_their_class(server: Server) -> None:
    app = server()
    t, code_a = new_class(app, "A")
    r = post(t, "/teach/classes", name="B")
    code_b = str(r.url).split("/teach/")[1].split("?")[0]
    post(t, f"/teach/{code_b}/assign", case="munich")
    ann = student(app, code_a, "Ann")
    r = ann.get(f"/class/{code_b}")
    assert str(r.url).endswith(f"/?code={code_b}")  # asked to join, shown nothing
    assert post(ann, f"/class/{code_b}/predict", p="50", day="none").status_code == 403
    assert post(ann, f"/class/{code_b}/play", actor="us", mode="solo").status_code == 403


def test_form_posts_need_the_csrf_token(server: Server) -> None:
    app = server()
    t, code = new_class(app)
    s = app.state.client()
    s.get("/")
    r = s.post("/join", data={"code": code, "name": "x"})
    assert r.status_code == 403 and "reload the page" in r.text
    r = s.post("/join", data={"code": code, "name": "x", "csrf": "forged-token-000000000"})
    assert r.status_code == 403
    r = s.post("/join", data={"code": code, "name": "x", "csrf": csrf(s)},
               headers={"origin": "http://evil.example"})  # fmt: skip
    assert r.status_code == 403
    assert post(s, "/join", code=code, name="x").status_code == 200


def test_every_typed_text_is_escaped(server: Server) -> None:
    app = server()
    t, code = new_class(app, XSS)
    post(t, f"/teach/{code}/assign", case="munich")
    s = student(app, code, XSS)
    post(s, f"/class/{code}/play", actor="us", mode="duo", seed="0")
    pages = [t.get("/teach").text, t.get(f"/teach/{code}").text, s.get(f"/class/{code}").text]
    r = post(s, "/join", code=XSS, name="x")
    pages.append(r.text)
    for text in pages:
        assert XSS not in text
    assert "&lt;script&gt;" in pages[1]


def test_no_request_path_reaches_outside_the_scenario_directory(
    server: Server, library: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.yaml"
    shutil.copy(SCENARIOS / "tutorial.yaml", secret)
    (library / "link.yaml").symlink_to(secret)
    app = server()
    c = app.state.first
    assert "link" not in [cid for cid in app.state.web.library.ids()]
    for url in ("/cases/..%2Fsecret", "/cases/../secret", "/cases/%2e%2e%2fsecret",
                "/cases/link", "/cases/.hidden", "/static/../app.py", "/static/%2e%2e/app.py",
                "/cases/secret"):  # fmt: skip
        r = c.get(url)
        assert r.status_code == 404, url
    assert post(c, "/cases/..%2Fsecret/simulate", runs="200").status_code == 404


def test_an_upload_is_validated_with_line_numbers(server: Server) -> None:
    app = server()
    t = teacher(app)
    bad = (SCENARIOS / "tutorial.yaml").read_text(encoding="utf-8").replace(
        "p_accept", "p_acept", 1)  # fmt: skip
    r = t.post("/teach/upload", data={"csrf": csrf(t)},
               files={"file": ("my<case>.yaml", bad.encode(), "application/x-yaml")})  # fmt: skip
    assert r.status_code == 400
    assert re.search(r"my&lt;case&gt;\.yaml:\d+:\d+: ", r.text), r.text
    assert "did you mean" in r.text or "p_accept" in r.text
    r = t.post("/teach/upload", data={"csrf": csrf(t)},
               files={"file": ("x.yaml", b"\xff\xfe", "application/x-yaml")})  # fmt: skip
    assert r.status_code == 400 and "x.yaml:1: not valid UTF-8" in r.text
    good = (SCENARIOS / "tutorial.yaml").read_bytes()
    r = t.post("/teach/upload", data={"csrf": csrf(t)},
               files={"file": ("../../mine.yaml", good, "application/x-yaml")})  # fmt: skip
    assert r.status_code == 200 and str(r.url).endswith("/cases/up-1")
    assert not (Path.cwd().parent / "mine.yaml").exists()
    s = app.state.client()
    r = s.post("/teach/upload", data={"csrf": csrf(s)},
               files={"file": ("x.yaml", good, "application/x-yaml")})  # fmt: skip
    assert r.status_code == 403


def test_serve_warns_beyond_localhost() -> None:
    assert is_local("127.0.0.1") and is_local("localhost") and is_local("::1")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.5")
    out = io.StringIO()
    announce("127.0.0.1", 8765, "KEY", Path("db"), Path("scen"), out)
    assert "students open:    http://127.0.0.1:8765/" in out.getvalue()
    assert "instructor link:  http://127.0.0.1:8765/teach?key=KEY" in out.getvalue()
    assert "warning" not in out.getvalue()
    out = io.StringIO()
    announce("0.0.0.0", 8765, "KEY", Path("db"), Path("scen"), out)
    assert "warning: listening on 0.0.0.0, beyond this machine" in out.getvalue()


# --- play -----------------------------------------------------------------------------------


def play_out(clients: dict[str, TestClient], gid: int, pick: Callable[[str, list[str]], str],
             limit: int = 60) -> str:  # fmt: skip
    """Play game ``gid`` to its end: whoever's turn it is picks; return the last page."""
    any_client = next(iter(clients.values()))
    for _ in range(limit):
        pages = {a: c.get(f"/games/{gid}").text for a, c in clients.items()}
        if "What happened" in pages[next(iter(pages))]:
            return pages[next(iter(pages))]
        movers = [a for a, p in pages.items() if "Your decision" in p]
        assert len(movers) == 1, pages
        page = pages[movers[0]]
        clock = re.search(r'name="clock" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        options = re.findall(r'name="option" value="([^"]+)"', page)
        r = post(clients[movers[0]], f"/games/{gid}/choose", clock=clock,
                 option=pick(movers[0], options))  # fmt: skip
        assert r.status_code == 200, r.text
    raise AssertionError(f"game did not end: {any_client}")


def test_one_student_plays_against_the_simulator_and_rejoins(server: Server) -> None:
    app = server()
    t, code = new_class(app)
    post(t, f"/teach/{code}/assign", case="munich")
    s = student(app, code, "Ann")
    r = post(s, f"/class/{code}/play", actor="china", mode="solo", seed="3")
    gid = int(str(r.url).rsplit("/", 1)[1])
    assert "Beijing refuses outright while its condition is unmet" in r.text  # one outcome
    assert 'value="not_yet"' in r.text
    post(s, f"/games/{gid}/choose", clock="china_closes_door", option="not_yet")
    # the tab is closed; the same browser comes back to the same place
    again = app.state.client()
    again.cookies.update(dict(s.cookies))
    page = again.get(f"/games/{gid}").text
    assert "china_closes_door" in page and "Your decision" in page
    assert app.state.client().get(f"/games/{gid}").status_code == 403  # not their game
    last = play_out({"china": again}, gid, lambda a, opts: opts[0])
    assert "Result:" in last
    game = app.state.web.store.one("SELECT * FROM games WHERE id=?", (gid,))
    wait_job(app, game["debrief_job"])
    page = again.get(f"/games/{gid}").text
    assert "The unchanged scenario (every side simulated) gets the meeting" in page
    assert "always choosing as they did" in page
    assert f"{gid}</td>" in t.get(f"/teach/{code}").text  # listed on the dashboard


def test_two_students_play_opposite_sides_live(server: Server) -> None:
    app = server()
    t, code = new_class(app)
    post(t, f"/teach/{code}/assign", case="munich")
    ann, bob = student(app, code, "Ann"), student(app, code, "Bob")
    r = post(ann, f"/class/{code}/play", actor="us", mode="duo", seed="5")
    gid = int(str(r.url).rsplit("/", 1)[1])
    assert "Waiting for a classmate" in r.text
    assert f"/games/{gid}/take" in bob.get(f"/class/{code}").text
    version = app.state.web.bus.version(f"game-{gid}")
    assert post(bob, f"/games/{gid}/take").status_code == 200
    assert app.state.web.bus.version(f"game-{gid}") > version  # the waiting page is told
    assert post(student(app, code, "Cy"), f"/games/{gid}/take").status_code == 400  # full
    ann_page, bob_page = ann.get(f"/games/{gid}").text, bob.get(f"/games/{gid}").text
    assert ("Your decision" in ann_page) != ("Your decision" in bob_page)
    # each side sees only its own situation: the one deciding gets the options
    waiting_page = bob_page if "Your decision" in ann_page else ann_page
    assert 'name="option"' not in waiting_page and "is deciding" in waiting_page
    mover = ann if "Your decision" in ann_page else bob
    other = bob if mover is ann else ann
    clock = re.search(r'name="clock" value="([^"]+)"', mover.get(f"/games/{gid}").text)
    assert clock
    r = post(other, f"/games/{gid}/choose", clock=clock.group(1), option="x")
    assert r.status_code == 409 and "not your turn" in r.text
    last = play_out({"us": ann, "china": bob}, gid, lambda a, opts: opts[0])
    assert "The players&#39; choices" in last or "The players' choices" in last
    assert "Wang Yi" in last and "Blinken" in last
    game = app.state.web.store.one("SELECT * FROM games WHERE id=?", (gid,))
    debrief = json.loads(wait_job(app, game["debrief_job"])["result"])["debrief"]
    assert set(debrief["players"]) == {"us", "china"}


# --- storage and restarts ----------------------------------------------------------------------


def test_restart_loses_nothing_and_reruns_interrupted_jobs(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "keep.sqlite3"
    app = server(db=db)
    t, code = new_class(app)
    post(t, f"/teach/{code}/assign", case="tutorial")
    s = student(app, code, "Ann")
    post(s, f"/class/{code}/predict", p="40", day="none")
    # a job the server was running when it stopped
    job = app.state.web.store.add_job("simulate", "tutorial", {"runs": 500, "seed": 2}, "x")
    app.state.web.store.set_job_status(job, "running")
    key = app.state.web.key
    again = server(db=db)
    assert again.state.web.key == key  # the instructor link still works
    assert wait_job(again, job)["status"] == "done"
    s2 = again.state.client()
    s2.cookies.update(dict(s.cookies))
    page = s2.get(f"/class/{code}").text
    assert "Your prediction: P(meeting) = 40.0%" in page
    t2 = again.state.client()
    t2.cookies.update(dict(t.cookies))
    assert "Ann" in t2.get(f"/teach/{code}").text


def test_the_database_refuses_a_newer_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite3")
    with store.tx() as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (SCHEMA_VERSION + 1,))
    store.close()
    with pytest.raises(StoreError, match="newer negosim"):
        Store(tmp_path / "x.sqlite3")
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="not a negosim classroom database"):
        Store(tmp_path / "junk.sqlite3")
    assert Store(tmp_path / "y.sqlite3").one("PRAGMA journal_mode")[0] == "wal"  # type: ignore[index]


def test_killed_mid_class_a_real_server_restarts_with_everything(
    library: Path, tmp_path: Path
) -> None:
    """SIGKILL while a simulation runs; the restarted server has the class and finishes it."""
    import httpx
    from webserver import LiveServer

    server = LiveServer(tmp_path / "live.sqlite3", library).start()
    try:

        def client() -> httpx.Client:
            c = httpx.Client(base_url=server.url, follow_redirects=True, timeout=30)
            c.get("/")
            return c

        def send(c: httpx.Client, url: str, **data: Any) -> Any:
            return c.post(url, data={"csrf": c.cookies["negosim_csrf"], **data})

        t = client()
        t.get(f"/teach?key={server.key}")
        code = str(send(t, "/teach/classes", name="live").url).split("/teach/")[1].split("?")[0]
        send(t, f"/teach/{code}/assign", case="munich")
        s = client()
        send(s, "/join", code=code, name="Ann")
        send(s, f"/class/{code}/predict", p="64", day="2023-02-18")
        send(t, f"/teach/{code}/phase", action="simulation", runs="20000", seed="0")
        server.kill()  # mid-class, while the simulation runs
        server.start()
        page = s.get(f"/class/{code}").text
        assert "Your prediction: P(meeting) = 64.0%" in page
        ends = time.monotonic() + 180
        while "P(meeting held)" not in page and time.monotonic() < ends:
            time.sleep(0.5)
            page = s.get(f"/class/{code}").text
        assert "P(meeting held)" in page  # the interrupted simulation ran again
        assert "Ann" in t.get(f"/teach/{code}").text
    finally:
        server.stop()
