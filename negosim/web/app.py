"""The classroom web application (``negosim serve``): routes, pages, live updates.

Pages are rendered on the server from Jinja2 templates (autoescaped: every
text a person typed, and every text of a scenario, is escaped). The browser
runs one small local script (``static/app.js``) that listens to server-sent
events and refreshes the live part of a page when something changed. No
page loads anything from another site.

Who is who: a student is a random token in a cookie per class (joined with
the class's code and a display name, no account); a player's seat in a game is
another token; an instructor is whoever has the server's instructor key or the
class's instructor secret (see :mod:`negosim.web.security`).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..output.explain import explain
from . import security as sec
from .cases import MAX_UPLOAD, Library, check_upload
from .games import MAX_CHOICES, GameCorrupt, replay, result_words, visible_lines
from .jobs import Bus, Pool
from .store import Store, same_secret

HERE = Path(__file__).parent
DEFAULT_RUNS = 10_000
DEBRIEF_RUNS = 2_000
COALESCE_S = 0.25
"""Seconds an event stream waits after a change before it tells the browser (bursts merge)."""


@dataclass
class Settings:
    """How one server runs (``negosim serve``'s options, and what tests change)."""

    db: str | Path
    scenarios: str | Path
    workers: int = 2
    processes: bool = True  # worker processes (serve) or threads (tests)
    sse_seconds: float = 300.0  # an event stream is closed (and reopened by the browser) after
    heartbeat_seconds: float = 15.0


class Refused(Exception):
    """A request refused with a page that says why (status and message)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def build_app(settings: Settings) -> Starlette:
    """The ASGI application of one classroom server."""
    store = Store(settings.db)
    library = Library(settings.scenarios, store)
    bus = Bus()
    pool = Pool(store, library, bus, settings.workers, settings.processes)
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["pct"] = lambda p: "–" if p is None else f"{100 * p:.1f}%"
    # the version of a live channel when the page was made: the page's script asks the
    # server for what changed since, so nothing between rendering and connecting is missed
    env.globals["version"] = bus.version
    web = Web(settings, store, library, bus, pool, env)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        bus.bind(asyncio.get_running_loop())
        pool.resume(web.job_done)
        yield
        pool.shutdown()

    routes = [
        Route("/", web.home),
        Route("/join", web.join, methods=["POST"]),
        Route("/cases", web.cases),
        Route("/cases/{cid}", web.case),
        Route("/cases/{cid}/simulate", web.simulate, methods=["POST"]),
        Route("/cases/{cid}/compare", web.compare, methods=["POST"]),
        Route("/jobs/{jid:int}", web.job),
        Route("/jobs/{jid:int}/report", web.report),
        Route("/events/{channel}", web.events),
        Route("/class/{code}", web.student_page),
        Route("/class/{code}/predict", web.predict, methods=["POST"]),
        Route("/class/{code}/play", web.new_game, methods=["POST"]),
        Route("/games/{gid:int}", web.game),
        Route("/games/{gid:int}/take", web.take_seat, methods=["POST"]),
        Route("/games/{gid:int}/choose", web.choose, methods=["POST"]),
        Route("/teach", web.teach),
        Route("/teach/classes", web.create_class, methods=["POST"]),
        Route("/teach/upload", web.upload, methods=["POST"]),
        Route("/teach/{code}", web.dashboard),
        Route("/teach/{code}/assign", web.assign, methods=["POST"]),
        Route("/teach/{code}/phase", web.phase, methods=["POST"]),
        Route("/teach/{code}/export.csv", web.export),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        Refused: web.refused, 404: web.not_found})  # fmt: skip
    app.state.web = web
    return app


def _cookie(resp: Response, name: str, value: str, path: str = "/") -> None:
    resp.set_cookie(name, value, max_age=180 * 86400, path=path, httponly=True, samesite="strict")


class Web:
    """The request handlers, sharing the store, the library, the pool and the bus."""

    def __init__(self, settings: Settings, store: Store, library: Library, bus: Bus, pool: Pool,
                 env: Environment):  # fmt: skip
        self.settings = settings
        self.store = store
        self.library = library
        self.bus = bus
        self.pool = pool
        self.env = env
        self.key = store.server_key()

    # --- plumbing ------------------------------------------------------------------------

    def page(self, request: Request, template: str, status: int = 200, **ctx: Any) -> Response:
        """Render ``template`` with the CSRF token and the security headers."""
        ctx.setdefault("title", "negosim classroom")
        html = self.env.get_template(template).render(
            request=request, csrf=sec.csrf_token(request), **ctx
        )
        resp = HTMLResponse(html, status_code=status)
        self._finish(request, resp)
        return resp

    def _finish(self, request: Request, resp: Response) -> None:
        new = getattr(request.state, "new_csrf", None)
        if new:
            resp.set_cookie(sec.CSRF_COOKIE, new, max_age=180 * 86400, httponly=True,
                            samesite="strict")  # fmt: skip
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
        )
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"

    def redirect(self, request: Request, url: str) -> Response:
        """A 303 redirect carrying the security headers (and a new CSRF cookie)."""
        resp = RedirectResponse(url, status_code=303)
        self._finish(request, resp)
        return resp

    async def form(self, request: Request) -> FormData:
        """The posted form, once its CSRF token and the browser's post rate are checked."""
        if int(request.headers.get("content-length") or 0) > MAX_UPLOAD + 64 * 1024:
            raise Refused(413, "That form is too large.")
        form = await request.form(max_files=1, max_fields=200)
        sent = form.get("csrf")
        if not sec.csrf_ok(request, sent if isinstance(sent, str) else None):
            raise Refused(
                403,
                "This form was not sent from this server's page (or the page is old): "
                "reload the page and try again.",
            )
        if not self.store.count_use(sec.who(request), 60, sec.POSTS_PER_MINUTE):
            raise Refused(
                429,
                f"Too many requests from this browser (more than "
                f"{sec.POSTS_PER_MINUTE} a minute). Wait a minute and try again.",
            )
        return form

    async def refused(self, request: Request, exc: Exception) -> Response:
        """The page of a :class:`Refused` request: its status and message."""
        assert isinstance(exc, Refused)
        return self.page(request, "message.html", status=exc.status, message=exc.message,
                         title="Not possible")  # fmt: skip

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """The 404 page."""
        return self.page(request, "message.html", status=404, title="Not found",
                         message="There is no such page here.")  # fmt: skip

    def case_or_404(self, cid: str) -> Any:
        """The case with this id, or a 404 page."""
        case = self.library.get(cid)
        if case is None:
            raise Refused(404, "There is no such case in this server's library.")
        return case

    def student_of(self, request: Request, code: str) -> Any:
        """(class, student) for this browser and class code; either may be None."""
        klass = self.store.klass(code)
        if klass is None:
            return None, None
        st = self.store.student(request.cookies.get(f"st_{klass['code']}"))
        if st is None or st["class_id"] != klass["id"]:
            return klass, None
        return klass, st

    def instructor_of(self, request: Request, code: str) -> Any:
        """The class if this browser is its instructor (class secret or server key); else 403."""
        klass = self.store.klass(code)
        if klass is None:
            raise Refused(404, "There is no class with that code.")
        secret = request.cookies.get(f"ts_{klass['code']}", "")
        if secret and same_secret(secret, klass["secret_hash"]):
            return klass
        if self.is_teacher(request):
            return klass
        raise Refused(
            403,
            "This page is the instructor's: open the instructor link for this "
            "class (it holds the class's secret).",
        )

    def is_teacher(self, request: Request) -> bool:
        """Whether this browser holds the server's instructor key."""
        key = request.cookies.get("negosim_key", "")
        return bool(key) and same_secret(key, _digest(self.key))

    # --- home, joining -------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """The home page: join a class with its code and a display name."""
        return self.page(request, "home.html", code=request.query_params.get("code", "")[:12])

    async def join(self, request: Request) -> Response:
        """POST: a student joins a class with its code and a display name."""
        form = await self.form(request)
        code = str(form.get("code") or "").strip().upper()[:12]
        name = sec.clean_name(str(form.get("name") or ""))
        klass = self.store.klass(code) if code else None
        if klass is None:
            return self.page(
                request,
                "home.html",
                status=400,
                code=code,
                error="No class has that join code. Check it with your instructor.",
            )
        if not name:
            return self.page(
                request,
                "home.html",
                status=400,
                code=code,
                error="Type a display name (what your class will see).",
            )
        token = self.store.join(klass["id"], name)
        resp = self.redirect(request, f"/class/{klass['code']}")
        _cookie(resp, f"st_{klass['code']}", token)
        self.bus.notify(f"class-{klass['code']}")
        return resp

    # --- cases and simulations -------------------------------------------------------------

    async def cases(self, request: Request) -> Response:
        """The case library: title, date and shape of every case."""
        self.library.refresh()
        items = []
        for cid in self.library.ids():
            case = self.library.get(cid)
            assert case is not None
            items.append(_case_summary(case))
        return self.page(request, "cases.html", cases=items, title="Cases")

    async def case(self, request: Request) -> Response:
        """A case page: the plain words, the parameters and sources, Simulate and What if."""
        case = self.case_or_404(request.path_params["cid"])
        if case.cs is None:
            return self.page(request, "case_invalid.html", case=case, title=case.filename)
        cs = case.cs
        sliders = [_slider(p) for p in cs.parameters]
        return self.page(
            request, "case.html", case=case, summary=_case_summary(case), m=cs.model,
            words=explain(cs), params=cs.parameters, sliders=[s for s in sliders if s],
            blocked=self._must_predict_first(request, case.id), default_runs=DEFAULT_RUNS,
            max_runs=sec.MAX_RUNS, title=cs.model.title,
        )  # fmt: skip

    def _must_predict_first(self, request: Request, cid: str) -> str | None:
        """The class code if this browser is a student who must predict ``cid`` first."""
        for name, token in request.cookies.items():
            if not name.startswith("st_"):
                continue
            st = self.store.student(token)
            if st is None:
                continue
            klass = self.store.one("SELECT * FROM classes WHERE id=?", (st["class_id"],))
            if (klass and klass["case_id"] == cid and klass["phase"] == "predict"
                    and self.store.prediction(st["id"], cid) is None):  # fmt: skip
                return str(klass["code"])
        return None

    def _runs_seed(self, form: FormData) -> tuple[int, int]:
        try:
            runs = int(str(form.get("runs") or DEFAULT_RUNS))
            seed = int(str(form.get("seed") or 0))
        except ValueError:
            raise Refused(400, "Runs and seed are whole numbers.") from None
        if not sec.MIN_RUNS <= runs <= sec.MAX_RUNS:
            raise Refused(
                400,
                f"Runs per request: between {sec.MIN_RUNS:,} and "
                f"{sec.MAX_RUNS:,} on this server (you asked for {runs:,}).",
            )
        if not 0 <= seed < 2**32:
            raise Refused(400, "The seed is a whole number from 0 to 4294967295.")
        return runs, seed

    def _queue_job(self, request: Request, kind: str, cid: str, spec: dict[str, Any]) -> int:
        if not self.store.count_use("sim:" + sec.who(request), sec.SIMULATION_WINDOW_S,
                                    sec.SIMULATIONS_PER_WINDOW):  # fmt: skip
            raise Refused(
                429,
                f"This browser has asked for {sec.SIMULATIONS_PER_WINDOW} "
                "simulations in ten minutes, the most this server allows. "
                "Wait a few minutes, or look at the results you already have.",
            )
        if self.pool.busy():
            raise Refused(503, "The server is busy with other simulations; try again in a minute.")
        job_id = self.store.add_job(kind, cid, spec, sec.who(request))
        self.pool.submit(job_id, self.job_done)
        return job_id

    async def simulate(self, request: Request) -> Response:
        """POST: queue a simulation of a case on the worker pool."""
        form = await self.form(request)
        case = self.case_or_404(request.path_params["cid"])
        if case.cs is None:
            raise Refused(400, "This case does not load; it cannot be simulated.")
        code = self._must_predict_first(request, case.id)
        if code:
            raise Refused(
                403,
                "Your class is predicting this case: record your prediction "
                f"first (class {code}), then simulate.",
            )
        runs, seed = self._runs_seed(form)
        job_id = self._queue_job(request, "simulate", case.id, {"runs": runs, "seed": seed})
        return self.redirect(request, f"/jobs/{job_id}")

    async def compare(self, request: Request) -> Response:
        """POST: a what-if comparison of slider values (within declared ranges)."""
        form = await self.form(request)
        case = self.case_or_404(request.path_params["cid"])
        if case.cs is None:
            raise Refused(400, "This case does not load; it cannot be simulated.")
        if self._must_predict_first(request, case.id):
            raise Refused(403, "Record your class prediction for this case first.")
        runs, seed = self._runs_seed(form)
        sets: list[tuple[str, Any]] = []
        for p in case.cs.parameters:
            s = _slider(p)
            raw = form.get(f"p.{p.name}")
            if s is None or raw is None or raw == "":
                continue
            try:
                v = float(str(raw))
            except ValueError:
                raise Refused(400, f"{p.name}: not a number: {str(raw)[:20]!r}") from None
            if not (math.isfinite(v) and s["low"] <= v <= s["high"]):
                raise Refused(
                    400,
                    f"{p.name} must be between {s['low']:g} and {s['high']:g} "
                    f"(its declared range); {v:g} is outside it.",
                )
            if abs(v - p.value) > 1e-12:
                sets.append((p.name, f"{v:g}h" if p.kind == "duration" else v))
        if not sets:
            raise Refused(400, "Move at least one slider away from its default to compare.")
        job_id = self._queue_job(request, "compare", case.id,
                                 {"runs": runs, "seed": seed, "set": sets})  # fmt: skip
        return self.redirect(request, f"/jobs/{job_id}")

    def job_done(self, job_id: int) -> None:
        """A job ended: the class or game waiting for it hears of it."""
        for row in self.store.all("SELECT code FROM classes WHERE job_id=?", (job_id,)):
            self.bus.notify(f"class-{row['code']}")
        for row in self.store.all("SELECT id FROM games WHERE debrief_job=?", (job_id,)):
            self.bus.notify(f"game-{row['id']}")

    def _not_before_reveal(self, request: Request, job_id: int) -> None:
        """403 if ``job_id`` is a class's simulation that its instructor has not revealed."""
        for k in self.store.all("SELECT * FROM classes WHERE job_id=?", (job_id,)):
            if k["phase"] == "predict":
                self.instructor_of(request, k["code"])  # raises unless the instructor

    def job_view(self, job_id: int) -> dict[str, Any] | None:
        """A job as the templates read it: status, progress, result."""
        row = self.store.job(job_id)
        if row is None:
            return None
        done, total = self.pool.progress.get(job_id, (0, 0))
        result = json.loads(row["result"]) if row["result"] else None
        view: dict[str, Any] = {
            "id": job_id, "kind": row["kind"], "case_id": row["case_id"],
            "spec": json.loads(row["spec"]), "status": row["status"], "error": row["error"],
            "done": done, "total": total, "result": result, "has_report": bool(row["report"]),
        }  # fmt: skip
        if result and "estimate" in result:
            est = result["estimate"]
            view["likely_day"] = (
                max(est["by_day"], key=est["by_day"].get) if est["by_day"] else None
            )
        return view

    async def job(self, request: Request) -> Response:
        """A simulation's page: live progress, then its results."""
        view = self.job_view(request.path_params["jid"])
        if view is None:
            raise Refused(404, "There is no such simulation.")
        self._not_before_reveal(request, view["id"])
        case = self.library.get(view["case_id"])
        title = case.cs.model.title if case and case.cs else view["case_id"]
        return self.page(request, "job.html", job=view, case_title=title, title=title)

    async def report(self, request: Request) -> Response:
        """A simulation's HTML report, served sandboxed."""
        row = self.store.job(request.path_params["jid"])
        if row is not None:
            self._not_before_reveal(request, row["id"])
        if row is None or not row["report"]:
            raise Refused(404, "This simulation has no report (yet).")
        resp = HTMLResponse(row["report"])
        self._finish(request, resp)
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
        )
        return resp

    # --- live updates -----------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        """Server-sent events: ``data: {"v": VERSION, ...}`` whenever the channel changes."""
        channel = request.path_params["channel"]
        kind, _, ident = channel.partition("-")
        if kind not in ("job", "class", "game") or not ident.isalnum() or len(ident) > 12:
            raise Refused(404, "No such event stream.")
        key = f"class-{ident.upper()}" if kind == "class" else channel
        job_id = int(ident) if kind == "job" and ident.isdigit() else None

        def message(v: int) -> str:
            data: dict[str, Any] = {"v": v}
            if job_id is not None:
                row = self.store.job(job_id)
                done, total = self.pool.progress.get(job_id, (0, 0))
                data.update(status=row["status"] if row else "gone", done=done, total=total)
            return f"data: {json.dumps(data)}\n\n"

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            seen = self.bus.version(key)
            yield message(seen)
            ends = time.monotonic() + self.settings.sse_seconds
            while time.monotonic() < ends:
                if await request.is_disconnected():
                    return
                v = await self.bus.wait(
                    key,
                    seen,
                    min(self.settings.heartbeat_seconds, max(ends - time.monotonic(), 0.01)),
                )
                if v != seen:
                    # a burst (a class of 150 predicting at once) is one message, not 150
                    await asyncio.sleep(COALESCE_S)
                    seen = self.bus.version(key)
                    yield message(seen)
                else:
                    yield ": ping\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # --- the student's class page -------------------------------------------------------------

    async def student_page(self, request: Request) -> Response:
        """A student's class page: the case, the prediction, the reveals, play."""
        code = request.path_params["code"]
        klass, st = self.student_of(request, code)
        if klass is None:
            raise Refused(404, "There is no class with that code.")
        if st is None:
            return self.redirect(request, f"/?code={klass['code']}")
        ctx = self.class_context(klass)
        mine = self.store.prediction(st["id"], klass["case_id"]) if klass["case_id"] else None
        ctx["mine"] = mine
        if mine is not None and ctx.get("resolution"):
            ctx["my_brier"] = (mine["p"] - (1.0 if ctx["resolution"]["met"] else 0.0)) ** 2
        ctx["my_games"] = self.store.all(
            "SELECT g.id, g.case_id, g.status, s.actor FROM seats s JOIN games g "
            "ON g.id = s.game_id WHERE s.token IN (SELECT value FROM json_each(?)) ORDER BY g.id",
            (json.dumps([v for k, v in request.cookies.items() if k.startswith("gs_")]),),
        )
        return self.page(request, "student.html", klass=klass, student=st, title=klass["name"],
                         **ctx)  # fmt: skip

    def class_context(self, klass: Any) -> dict[str, Any]:
        """What both the students' page and the dashboard show of a class."""
        ctx: dict[str, Any] = {"case": None, "sim": None, "resolution": None, "open_games": []}
        if klass["case_id"]:
            case = self.library.get(klass["case_id"])
            ctx["case"] = _case_summary(case) if case else None
            if case and case.cs:
                ctx["days"] = _days(case.cs)
                ctx["actors"] = [(a, x.name) for a, x in case.cs.model.actors.items()
                                 if _decides(case.cs, a)]  # fmt: skip
            if klass["job_id"]:
                ctx["sim"] = self.job_view(klass["job_id"])
            if klass["phase"] == "history":
                ctx["resolution"] = self.library.resolution(klass["case_id"])
            ctx["open_games"] = self.store.all(
                "SELECT g.id, g.sides FROM games g WHERE g.class_id=? AND g.status='waiting' "
                "ORDER BY g.id", (klass["id"],))  # fmt: skip
            ctx["open_games"] = [
                {"id": g["id"], "open": [a for a, v in json.loads(g["sides"]).items()
                                         if v == "open"]}
                for g in ctx["open_games"]
            ]  # fmt: skip
        return ctx

    async def predict(self, request: Request) -> Response:
        """POST: a student records (or changes) their prediction while predictions are open."""
        form = await self.form(request)
        klass, st = self.student_of(request, request.path_params["code"])
        if klass is None or st is None:
            raise Refused(403, "Join the class first (its code and your display name).")
        if not klass["case_id"]:
            raise Refused(400, "Your instructor has not assigned a case yet.")
        if klass["phase"] != "predict":
            raise Refused(400, "Predictions are closed: the simulation has been revealed.")
        try:
            p = float(str(form.get("p") or "")) / 100.0
        except ValueError:
            raise Refused(400, "Give P(meeting) as a percentage from 0 to 100.") from None
        if not (math.isfinite(p) and 0.0 <= p <= 1.0):
            raise Refused(400, "Give P(meeting) as a percentage from 0 to 100.")
        day = str(form.get("day") or "")
        case = self.library.get(klass["case_id"])
        days = _days(case.cs) if case and case.cs else []
        if day not in [d for d, _ in days] + ["none"]:
            raise Refused(400, "Choose the most likely day from the list.")
        self.store.predict(klass["id"], st["id"], klass["case_id"], p, day)
        self.bus.notify(f"class-{klass['code']}")
        return self.redirect(request, f"/class/{klass['code']}")

    # --- the instructor -----------------------------------------------------------------------

    async def teach(self, request: Request) -> Response:
        """The instructor page (``?key=`` stores the server's key in a cookie)."""
        key = request.query_params.get("key")
        if key is not None:
            if not same_secret(key, _digest(self.key)):
                raise Refused(403, "That instructor key is not this server's.")
            resp = self.redirect(request, "/teach")
            _cookie(resp, "negosim_key", key)
            return resp
        if not self.is_teacher(request):
            raise Refused(
                403,
                "This page is the instructor's: open the instructor link that "
                "`negosim serve` printed.",
            )
        classes = self.store.all("SELECT * FROM classes ORDER BY id DESC")
        self.library.refresh()
        return self.page(request, "teach.html", classes=classes, title="Instructor",
                         cases=[_case_summary(c) for c in map(self.library.get, self.library.ids())
                                if c is not None])  # fmt: skip

    async def create_class(self, request: Request) -> Response:
        """POST: the instructor creates a class (join code, class secret)."""
        form = await self.form(request)
        if not self.is_teacher(request):
            raise Refused(403, "Only the instructor creates classes.")
        name = sec.clean_name(str(form.get("name") or ""), 80) or "A class"
        code, secret = self.store.create_class(name)
        resp = self.redirect(request, f"/teach/{code}?created=1")
        _cookie(resp, f"ts_{code}", secret)
        resp.set_cookie(f"new_{code}", secret, max_age=300, httponly=True, samesite="strict")
        return resp

    async def upload(self, request: Request) -> Response:
        """POST: the instructor uploads a scenario; problems are shown with their lines."""
        form = await self.form(request)
        if not self.is_teacher(request):
            raise Refused(403, "Only the instructor uploads cases.")
        f = form.get("file")
        if not isinstance(f, UploadFile) or not f.filename:
            raise Refused(400, "Choose a scenario file (.yaml) to upload.")
        raw = await f.read(MAX_UPLOAD + 1)
        filename = Path(f.filename).name[:80] or "upload.yaml"
        problems: list[str] = []
        if len(raw) > MAX_UPLOAD:
            problems = [f"{filename}: more than {MAX_UPLOAD // 1024} KB; not a scenario"]
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = raw.count(b"\n", 0, exc.start) + 1
                problems = [f"{filename}:{line}: not valid UTF-8"]
            else:
                cs, found = await run_in_threadpool(check_upload, text, filename)
                problems = [str(p) for p in found]
        if problems:
            return self.page(request, "upload_errors.html", status=400, filename=filename,
                             problems=problems, title="Upload: problems")  # fmt: skip
        cid = self.library.add_upload(filename, text)
        return self.redirect(request, f"/cases/{cid}")

    async def dashboard(self, request: Request) -> Response:
        """The instructor's dashboard of a class (``?secret=`` opens it once)."""
        secret = request.query_params.get("secret")
        if secret:
            klass = self.store.klass(request.path_params["code"])
            if klass is None or not same_secret(secret, klass["secret_hash"]):
                raise Refused(403, "That is not this class's instructor secret.")
            resp = self.redirect(request, f"/teach/{klass['code']}")
            _cookie(resp, f"ts_{klass['code']}", secret)
            return resp
        klass = self.instructor_of(request, request.path_params["code"])
        resp = self.page(request, "dashboard.html", **self.dashboard_context(request, klass))
        if request.cookies.get(f"new_{klass['code']}"):
            resp.delete_cookie(f"new_{klass['code']}")  # the secret link is shown once
        return resp

    def dashboard_context(self, request: Request, klass: Any) -> dict[str, Any]:
        """What the dashboard shows: predictions, their spread, reveal, scores, games."""
        ctx = self.class_context(klass)
        rows = self.store.all(
            "SELECT s.id, s.name, p.p, p.day FROM students s LEFT JOIN predictions p ON "
            "p.student_id = s.id AND p.case_id = ? WHERE s.class_id = ? ORDER BY s.id",
            (klass["case_id"] or "", klass["id"]),
        )
        met = ctx["resolution"]["met"] if ctx.get("resolution") else None
        students = []
        for r in rows:
            brier = None if r["p"] is None or met is None else (r["p"] - float(met)) ** 2
            students.append({"name": r["name"], "p": r["p"], "day": r["day"], "brier": brier})
        ps = [s["p"] for s in students if s["p"] is not None]
        bins = [0] * 10
        for p in ps:
            bins[min(int(p * 10), 9)] += 1
        days: dict[str, int] = {}
        for s in students:
            if s["day"]:
                days[s["day"]] = days.get(s["day"], 0) + 1
        sim = ctx.get("sim")
        sim_brier = None
        if met is not None and sim and sim.get("result"):
            sim_brier = (sim["result"]["estimate"]["p_meeting"] - float(met)) ** 2
        briers = [s["brier"] for s in students if s["brier"] is not None]
        games = self.store.all("SELECT * FROM games WHERE class_id=? ORDER BY id DESC",
                               (klass["id"],))  # fmt: skip
        games_view = []
        for g in games:
            seats = self.store.all(
                "SELECT actor, name FROM seats WHERE game_id=? ORDER BY rowid", (g["id"],)
            )
            games_view.append({"id": g["id"], "case_id": g["case_id"], "status": g["status"],
                               "seed": g["seed"], "seats": seats})  # fmt: skip
        fresh = request.cookies.get(f"new_{klass['code']}")
        base = str(request.base_url).rstrip("/")
        return {
            **ctx, "klass": klass, "students": students, "bins": bins,
            "bin_max": max(bins) or 1, "pred_days": days, "n_pred": len(ps),
            "mean_p": sum(ps) / len(ps) if ps else None, "sim_brier": sim_brier,
            "class_brier": sum(briers) / len(briers) if briers else None,
            "games": games_view, "title": f"Dashboard: {klass['name']}",
            "cases": [_case_summary(c) for c in map(self.library.get, self.library.ids())
                      if c is not None and c.cs is not None],
            "join_url": f"{base}/?code={klass['code']}",
            "secret_url": f"{base}/teach/{klass['code']}?secret={fresh}" if fresh else None,
            "has_resolution": bool(klass["case_id"])
            and self.library.resolution(klass["case_id"]) is not None,
        }  # fmt: skip

    async def assign(self, request: Request) -> Response:
        """POST: the instructor assigns a case; the class starts predicting it."""
        form = await self.form(request)
        klass = self.instructor_of(request, request.path_params["code"])
        case = self.case_or_404(str(form.get("case") or ""))
        if case.cs is None:
            raise Refused(400, "That case does not load; fix it before assigning it.")
        self.store.update_class(klass["id"], case_id=case.id, phase="predict", job_id=None)
        self.bus.notify(f"class-{klass['code']}")
        return self.redirect(request, f"/teach/{klass['code']}")

    async def phase(self, request: Request) -> Response:
        """POST: the instructor moves the class on: reveal the simulation, then history."""
        form = await self.form(request)
        klass = self.instructor_of(request, request.path_params["code"])
        action = form.get("action")
        if not klass["case_id"]:
            raise Refused(400, "Assign a case first.")
        if action == "simulation":
            job_id = klass["job_id"]
            if not job_id:
                runs, seed = self._runs_seed(form)
                job_id = self.store.add_job("simulate", klass["case_id"],
                                            {"runs": runs, "seed": seed}, "class")  # fmt: skip
                self.store.update_class(klass["id"], job_id=job_id, phase="simulation")
                self.pool.submit(job_id, self.job_done)
            else:
                self.store.update_class(klass["id"], phase="simulation")
        elif action == "history":
            if klass["phase"] == "predict":
                raise Refused(400, "Reveal the simulation first.")
            self.store.update_class(klass["id"], phase="history")
        elif action == "predict":
            self.store.update_class(klass["id"], phase="predict")
        else:
            raise Refused(400, "Unknown step.")
        self.bus.notify(f"class-{klass['code']}")
        return self.redirect(request, f"/teach/{klass['code']}")

    async def export(self, request: Request) -> Response:
        """The class's data as CSV (spreadsheet formulas neutralised)."""
        klass = self.instructor_of(request, request.path_params["code"])
        rows = self.store.all(
            "SELECT s.name, p.case_id, p.p, p.day, p.created FROM students s LEFT JOIN "
            "predictions p ON p.student_id = s.id WHERE s.class_id=? ORDER BY s.id, p.id",
            (klass["id"],),
        )
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["class", "student", "case", "p_meeting", "most_likely_day", "met",
                    "held_on", "brier", "day_right", "predicted_at"])  # fmt: skip
        for r in rows:
            res = self.library.resolution(r["case_id"]) if r["case_id"] else None
            brier = "" if res is None or r["p"] is None else f"{(r['p'] - res['met']) ** 2:.4f}"
            day_right = (
                ""
                if res is None or r["day"] is None
                else (str((r["day"] == res["date"]) if res["met"] else r["day"] == "none").lower())
            )
            when = (
                ""
                if r["created"] is None
                else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["created"]))
            )
            w.writerow(
                [
                    _cell(klass["code"]),
                    _cell(r["name"]),
                    _cell(r["case_id"] or ""),
                    "" if r["p"] is None else f"{r['p']:.4f}",
                    _cell(r["day"] or ""),
                    "" if res is None else str(res["met"]).lower(),
                    "" if res is None else (res["date"] or ""),
                    brier,
                    day_right,
                    when,
                ]
            )
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="class-{klass["code"]}.csv"'},
        )

    # --- games ----------------------------------------------------------------------------------

    async def new_game(self, request: Request) -> Response:
        """POST: a student starts a game, against the simulator or a classmate."""
        form = await self.form(request)
        klass, st = self.student_of(request, request.path_params["code"])
        if klass is None or st is None:
            raise Refused(403, "Join the class first.")
        if not klass["case_id"]:
            raise Refused(400, "Your instructor has not assigned a case yet.")
        case = self.library.get(klass["case_id"])
        if case is None or case.cs is None:
            raise Refused(400, "The class's case does not load.")
        actor = str(form.get("actor") or "")
        playable = [a for a, _ in [(a, 0) for a in case.cs.model.actors] if _decides(case.cs, a)]
        if actor not in playable:
            raise Refused(400, "Choose a side that has decisions to make.")
        mode = form.get("mode")
        try:
            seed = int(str(form.get("seed") or 0))
        except ValueError:
            raise Refused(400, "The seed is a whole number.") from None
        if not 0 <= seed < 2**32:
            raise Refused(400, "The seed is a whole number from 0 to 4294967295.")
        sides = {a: "sim" for a in case.cs.model.actors}
        sides[actor] = "player"
        status = "playing"
        if mode == "duo":
            others = [a for a in playable if a != actor]
            if not others:
                raise Refused(400, "This case has no other side with decisions to play.")
            sides[others[0]] = "open"
            status = "waiting"
        token = _token()
        with self.store.tx() as db:
            cur = db.execute(
                "INSERT INTO games (class_id, case_id, seed, sides, status, created) VALUES "
                "(?, ?, ?, ?, ?, ?)",
                (klass["id"], case.id, seed, json.dumps(sides), status, time.time()),
            )
            gid = int(cur.lastrowid or 0)
            db.execute("INSERT INTO seats VALUES (?, ?, ?, ?)", (gid, actor, token, st["name"]))
        resp = self.redirect(request, f"/games/{gid}")
        _cookie(resp, f"gs_{gid}", token)
        self.bus.notify(f"class-{klass['code']}")
        return resp

    def seat_of(self, request: Request, gid: int) -> Any:
        """The seat this browser holds in game ``gid``, or None."""
        token = request.cookies.get(f"gs_{gid}", "")
        if not token:
            return None
        return self.store.one("SELECT * FROM seats WHERE game_id=? AND token=?", (gid, token))

    async def take_seat(self, request: Request) -> Response:
        """POST: a classmate takes the open seat of a two-player game."""
        await self.form(request)
        gid = request.path_params["gid"]
        g = self.store.one("SELECT * FROM games WHERE id=?", (gid,))
        if g is None:
            raise Refused(404, "There is no such game.")
        klass = self.store.one("SELECT * FROM classes WHERE id=?", (g["class_id"],))
        st = self.store.student(request.cookies.get(f"st_{klass['code']}")) if klass else None
        if st is None or st["class_id"] != g["class_id"]:
            raise Refused(403, "Only a student of this game's class can take its seat.")
        sides = json.loads(g["sides"])
        open_ = [a for a, v in sides.items() if v == "open"]
        if not open_:
            raise Refused(400, "Both seats of this game are taken.")
        token = _token()
        with self.store.tx() as db:
            sides[open_[0]] = "player"
            db.execute("UPDATE games SET sides=?, status='playing' WHERE id=? AND status="
                       "'waiting'", (json.dumps(sides), gid))  # fmt: skip
            db.execute("INSERT INTO seats VALUES (?, ?, ?, ?)", (gid, open_[0], token, st["name"]))
        resp = self.redirect(request, f"/games/{gid}")
        _cookie(resp, f"gs_{gid}", token)
        self.bus.notify(f"game-{gid}")
        if klass is not None:
            self.bus.notify(f"class-{klass['code']}")
        return resp

    def game_state(self, g: Any) -> Any:
        """The game replayed from its seed and choices: (case, state)."""
        case = self.library.get(g["case_id"])
        if case is None or case.cs is None:
            raise Refused(400, "This game's case no longer loads.")
        sides = json.loads(g["sides"])
        played = [a for a, v in sides.items() if v != "sim"]
        try:
            return case, replay(case.cs, g["seed"], played, json.loads(g["choices"]))
        except GameCorrupt as exc:
            raise Refused(409, f"This game no longer fits its case ({exc}).") from None

    async def game(self, request: Request) -> Response:
        """A game as one player's side sees it (everything once it is over)."""
        gid = request.path_params["gid"]
        g = self.store.one("SELECT * FROM games WHERE id=?", (gid,))
        if g is None:
            raise Refused(404, "There is no such game.")
        seat = self.seat_of(request, gid)
        if seat is None:
            raise Refused(
                403, "This game is its players' (open it from the browser you played in)."
            )
        case, state = await run_in_threadpool(self.game_state, g)
        cs = case.cs
        me = seat["actor"]
        if state.over and g["status"] != "over":
            self._finish_game(g, state)
            g = self.store.one("SELECT * FROM games WHERE id=?", (gid,))
            assert g is not None
        sides = json.loads(g["sides"])
        seats = {
            r["actor"]: r["name"]
            for r in self.store.all("SELECT actor, name FROM seats WHERE game_id=?", (gid,))
        }
        debrief = None
        if g["debrief_job"]:
            dj = self.job_view(g["debrief_job"])
            debrief = dj["result"]["debrief"] if dj and dj["result"] else None
        lines = visible_lines(state.lines, None if state.over else me)
        from ..classroom.play import local_time

        timeline = [(local_time(cs, ln.time), (cs.model.actors[ln.actor].short or ln.actor)
                     if ln.actor else "(world)", ln.text) for ln in lines]  # fmt: skip
        made = [c for c in state.made if state.over or c["actor"] == me]
        return self.page(
            request, "game.html", g=g, me=me, me_name=cs.model.actors[me].name, m=cs.model,
            turn=state.turn, mine=state.turn is not None and state.turn.actor == me,
            waiting=g["status"] == "waiting", sides=sides, seats=seats, timeline=timeline,
            made=made, over=state.over,
            result=result_words(cs, state.row) if state.row is not None else None,
            debrief=debrief, actors={a: x.name for a, x in cs.model.actors.items()},
            title=f"Playing {cs.model.actors[me].name}",
        )  # fmt: skip

    def _finish_game(self, g: Any, state: Any) -> None:
        sides = json.loads(g["sides"])
        spec = {"runs": DEBRIEF_RUNS, "seed": g["seed"],
                "actors": [a for a, v in sides.items() if v != "sim"],
                "choices": [{"actor": c["actor"], "clock": c["clock"], "option": c["option"]}
                            for c in state.made]}  # fmt: skip
        with self.store.tx() as db:
            cur = db.execute("UPDATE games SET status='over' WHERE id=? AND status!='over'",
                             (g["id"],))  # fmt: skip
            if cur.rowcount == 0:
                return
        job_id = self.store.add_job("debrief", g["case_id"], spec, "game")
        with self.store.tx() as db:
            db.execute("UPDATE games SET debrief_job=? WHERE id=?", (job_id, g["id"]))
        self.pool.submit(job_id, self.job_done)

    async def choose(self, request: Request) -> Response:
        """POST: the player whose turn it is decides; the other side hears of it."""
        form = await self.form(request)
        gid = request.path_params["gid"]
        seat = self.seat_of(request, gid)
        if seat is None:
            raise Refused(403, "This is not your game.")
        with self.store.lock:  # one decision at a time per server: the replay and the write
            g = self.store.one("SELECT * FROM games WHERE id=?", (gid,))
            assert g is not None
            if g["status"] == "waiting":
                raise Refused(400, "Wait for the other player to take their seat.")
            _, state = self.game_state(g)
            turn = state.turn
            if turn is None:
                return self.redirect(request, f"/games/{gid}")
            if turn.actor != seat["actor"]:
                raise Refused(409, "It is not your turn: the other side is deciding.")
            option = str(form.get("option") or "")
            if form.get("clock") != turn.clock or option not in [o for o, _ in turn.options]:
                raise Refused(
                    409,
                    "That choice is no longer open (the game moved on); "
                    "here is where it stands now.",
                )
            choices = json.loads(g["choices"])
            if len(choices) >= MAX_CHOICES:
                raise Refused(400, f"A game has at most {MAX_CHOICES} decisions.")
            choices.append({"actor": turn.actor, "clock": turn.clock, "option": option})
            with self.store.tx() as db:
                db.execute("UPDATE games SET choices=? WHERE id=?", (json.dumps(choices), gid))
        self.bus.notify(f"game-{gid}")
        return self.redirect(request, f"/games/{gid}")


def _digest(secret: str) -> str:
    from .store import digest

    return digest(secret)


def _token() -> str:
    import secrets

    return secrets.token_urlsafe(24)


def _cell(text: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _decides(cs: Any, actor: str) -> bool:
    from ..classroom.play import decisions_of

    return bool(decisions_of(cs, actor))


def _days(cs: Any) -> list[tuple[str, str]]:
    """The venue-local days the question is open: (ISO date, label), and "none"."""
    from datetime import timedelta

    start = cs.start.astimezone(cs.tz)
    end = (cs.start + timedelta(hours=cs.horizon)).astimezone(cs.tz)
    out: list[tuple[str, str]] = []
    d = start.date()
    while d <= end.date() and len(out) < 400:
        out.append((d.isoformat(), d.strftime("%a %d %b %Y")))
        d += timedelta(days=1)
    return out


def _case_summary(case: Any) -> dict[str, Any]:
    cs = case.cs
    if cs is None:
        return {"id": case.id, "title": case.filename, "ok": False, "filename": case.filename}
    m = cs.model
    start = cs.start.astimezone(cs.tz)
    return {
        "id": case.id, "ok": True, "title": m.title, "filename": case.filename,
        "date": start.strftime("%d %b %Y"),
        "shape": f"{len(m.actors)} actors, {len(cs.states)} protocol states, "
                 f"{sum(1 for c in cs.clocks if c.kind == 'action')} actions",
        "uploaded": case.path is None,
    }  # fmt: skip


def _slider(p: Any) -> dict[str, Any] | None:
    """A what-if slider for parameter ``p``: only between its declared (finite) bounds."""
    if p.low is None or p.high is None or not (math.isfinite(p.low) and math.isfinite(p.high)):
        return None
    if p.high <= p.low:
        return None
    span = p.high - p.low
    step = 0.01 if p.kind == "probability" else 10 ** math.floor(math.log10(span / 100))
    return {"name": p.name, "low": p.low, "high": p.high, "value": p.value, "step": step,
            "kind": p.kind, "unit": p.unit or "", "text": p.text or ""}  # fmt: skip
