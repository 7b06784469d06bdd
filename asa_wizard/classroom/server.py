"""`asa-wizard serve`: the classroom web server, built on textual-serve.

textual-serve's `Server` runs one process per browser websocket (`AppService`) and pipes the terminal through
xterm.js. This subclass keeps that machinery and changes what a classroom needs:

- sessions: `/lab/<id>` is one student's lab; its websocket `/ws/<id>` starts
  `python -m asa_wizard lab --scenario NAME [--random-faults SEED]` with the session's own data folder
  (ASA_WIZARD_DATA_DIR), so journals, exercise status and reports never mix;
- the instructor page `/` (start labs, pick the scenario or let the student pick, live progress), the
  student's `/join`, `/api/sessions`, the class summary `/summary.md` and `/summary.html`, each student's
  report `/lab/<id>/report.html`;
- our own page templates (`assets/classroom/`): nothing is loaded from outside the server (textual-serve's page
  links a web font on the internet: we serve its bundled font file instead) and the page shows the product
  and the scenario, not the command line;
- a token: required in every URL (or the cookie it sets) when one is given, and generated when the server is
  bound beyond loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import shlex
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from ..core.errors import ConfigError
from ..resources import assets_dir, templates_dir
from . import records

log = logging.getLogger("asa-wizard.classroom")

TOKEN_COOKIE = "asa_wizard_token"
SESSION_RE = re.compile(r"^[0-9a-f]{12}$")
TERMINAL_HOOK = "const t=new w(e,{ping:r});"


def is_loopback(host: str) -> bool:
    """True when `host` is reachable from this machine only."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def decide_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """(the token to require, whether it was generated). Beyond loopback a token is always required."""
    if token is not None:
        if len(token) < 8 or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise ConfigError("--token", "the token must be at least 8 letters, digits, '-' or '_'",
                              "Use a longer token, or leave --token out and use the one printed at start.")
        return token, False
    if is_loopback(host):
        return None, False
    return secrets.token_urlsafe(18), True


@dataclass
class ClassSession:
    id: str
    number: int
    student: str
    scenario: str | None  # None: the student picks it
    seed: int | None
    created: str

    def folder(self, root: Path) -> Path:
        return root / "sessions" / self.id


class SessionAppService(AppService):
    """textual-serve's process runner with the session's own environment on top of the server's."""

    def __init__(self, command: str, *, extra_env: dict[str, str], **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.extra_env = extra_env

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        env = super()._build_environment(width=width, height=height)
        env.update(self.extra_env)
        return env


class Classroom(Server):
    def __init__(self, *, host: str, port: int, root: Path, scenario: str | None = None,
                 random_faults: int | None = None, token: str | None = None, max_sessions: int = 40,
                 python: str = sys.executable) -> None:
        super().__init__(command="asa-wizard lab", host=host, port=port, title="ASA wizard classroom")
        self.root = root
        self.scenario = scenario
        self.random_faults = random_faults
        self.token = token
        self.max_sessions = max_sessions
        self.python = python
        self.sessions: dict[str, ClassSession] = {}
        self.live: dict[str, AppService] = {}
        self.started = datetime.now(timezone.utc)
        self._titles: dict[str, str] = {}
        self._pages = self._page_templates()
        self._textual_js = self._patched_textual_js()
        self._load_sessions()

    # --- scenarios and sessions --------------------------------------------------------------------
    @staticmethod
    def scenarios() -> list[Any]:
        from ..lab.scenario import list_scenarios

        return list_scenarios()

    def scenario_title(self, name: str | None) -> str:
        if not name:
            return ""
        if name not in self._titles:
            from ..lab.scenario import find_scenario, load_scenario

            try:
                self._titles[name] = load_scenario(find_scenario(name)).title
            except ConfigError:
                return name
        return self._titles[name]

    def _load_sessions(self) -> None:
        for meta in sorted((self.root / "sessions").glob("*/session.json")):
            try:
                s = ClassSession(**json.loads(meta.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue
            self.sessions[s.id] = s

    def _save(self, s: ClassSession) -> None:
        records.write_atomic(s.folder(self.root) / "session.json", json.dumps(asdict(s), indent=2) + "\n")

    def check_scenario(self, name: str | None) -> str | None:
        """A scenario name from a form: a shipped one, or ConfigError."""
        if not name:
            return None
        if name == self.scenario:  # the server's own choice (a shipped name or a scenario file)
            return name
        names = [s.name for s in self.scenarios()]
        if name not in names:
            raise ConfigError(name, "no such scenario", "Use one of: " + ", ".join(names))
        return name

    def create_session(self, student: str, scenario: str | None, seed: int | None = None) -> ClassSession:
        student = " ".join(student.split())[:80]
        number = len(self.sessions) + 1
        if seed is None and self.random_faults is not None:
            seed = self.random_faults + number  # neighbours get different faults, each reproducible
        s = ClassSession(id=secrets.token_hex(6), number=number, student=student or f"Student {number}",
                         scenario=self.check_scenario(scenario or self.scenario), seed=seed,
                         created=datetime.now(timezone.utc).replace(microsecond=0).isoformat())
        s.folder(self.root).mkdir(parents=True, exist_ok=True)
        self._save(s)
        self.sessions[s.id] = s
        return s

    def command_for(self, s: ClassSession) -> str:
        # --restore: a page reload starts a new process; it makes again what the student's journals recorded
        argv = [self.python, "-m", "asa_wizard", "lab", "--scenario", s.scenario or "healthy", "--restore"]
        if s.seed is not None:
            argv += ["--random-faults", str(s.seed)]
        return shlex.join(argv)

    def environment(self, s: ClassSession) -> dict[str, str]:
        from ..lab.faults import SEED_ENV

        env = {"ASA_WIZARD_DATA_DIR": str(s.folder(self.root)), records.STUDENT_ENV: s.student, SEED_ENV: ""}
        # the wizard's process must import this same asa_wizard (a source checkout, or the installed package)
        package_root = str(Path(__file__).resolve().parents[2])
        current = os.environ.get("PYTHONPATH", "")
        if package_root not in current.split(os.pathsep):
            env["PYTHONPATH"] = package_root + (os.pathsep + current if current else "")
        return env

    def read_status(self, s: ClassSession) -> dict[str, Any] | None:
        return live_status(records.read_status(s.folder(self.root)), datetime.now(timezone.utc))

    def status(self, s: ClassSession) -> dict[str, Any]:
        from ..core.exercise import class_row

        st = self.read_status(s)
        row = class_row(s.student, s.scenario or "(student picks)", st)
        return {"id": s.id, "number": s.number, "student": s.student, "scenario": s.scenario,
                "title": self.scenario_title(s.scenario), "seed": s.seed, "live": s.id in self.live,
                "url": f"/lab/{s.id}", "report": f"/lab/{s.id}/report.html" if st else None,
                "fixed": row.fixed, "hints": row.hints, "undone": row.undone, "time": row.time,
                "score": row.score, "state": ("running · " if s.id in self.live else "") + row.state}

    # --- web application ---------------------------------------------------------------------------
    @staticmethod
    def _page_templates() -> Any:
        import jinja2

        return jinja2.Environment(loader=jinja2.FileSystemLoader(str(assets_dir() / "classroom")),
                                  autoescape=True, trim_blocks=True, lstrip_blocks=True,
                                  undefined=jinja2.StrictUndefined)

    def page(self, name: str, status: int = 200, **context: Any) -> web.Response:
        context.setdefault("product", "ASA wizard")
        text = self._pages.get_template(name).render(**context)
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")

    def _patched_textual_js(self) -> bytes:
        """textual-serve's client, with the terminal objects kept on `window.asaWizardTerminals` so the page
        (and the browser tests) can read what the terminal shows."""
        data = (self.statics_path / "js" / "textual.js").read_text(encoding="utf-8")
        if TERMINAL_HOOK in data:
            data = data.replace(TERMINAL_HOOK, TERMINAL_HOOK
                                + "(window.asaWizardTerminals=window.asaWizardTerminals||[]).push(t);", 1)
        else:
            log.warning("textual-serve's client changed: the page cannot expose the terminal's text")
        return data.encode("utf-8")

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard])
        app.add_routes([
            web.get("/", self.handle_index, name="index"),
            web.post("/sessions", self.handle_create),
            web.get("/join", self.handle_join),
            web.post("/join", self.handle_join_post),
            web.get("/api/sessions", self.handle_api_sessions),
            web.get("/summary.md", self.handle_summary),
            web.get("/summary.html", self.handle_summary),
            web.get("/lab/{sid}", self.handle_lab, name="lab"),
            web.post("/lab/{sid}", self.handle_pick),
            web.get("/lab/{sid}/report.{fmt}", self.handle_report),
            web.get("/ws/{sid}", self.handle_session_websocket, name="websocket"),
            web.get("/favicon.ico", self.handle_favicon),
            web.get("/download/{key}", self.handle_download, name="download"),
            web.get("/static/js/textual.js", self.handle_textual_js),
            web.static("/static", self.statics_path, show_index=False, name="static"),
        ])
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        return app

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The token (when there is one) on every page; no form posted from another site."""
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
                return self.page("message.html.j2", 403, title="Refused",
                                 message="This form was sent from another site.", fix="Use the classroom's own page.")
        if self.token is None or request.path.startswith("/static/"):
            return await handler(request)
        given = request.query.get("token")
        cookie = request.cookies.get(TOKEN_COOKIE)
        if given is not None and hmac.compare_digest(given, self.token):
            response = await handler(request)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="Strict")
            return response
        if cookie is not None and hmac.compare_digest(cookie, self.token):
            return await handler(request)
        return self.page("message.html.j2", 403, title="Token needed",
                         message="This classroom needs its token in the address.",
                         fix="Open the address printed when the classroom started (it ends in ?token=...).")

    async def handle_textual_js(self, request: web.Request) -> web.Response:
        return web.Response(body=self._textual_js, content_type="application/javascript")

    def _session(self, request: web.Request) -> ClassSession:
        sid = request.match_info["sid"]
        s = self.sessions.get(sid) if SESSION_RE.fullmatch(sid) else None
        if s is None:
            raise web.HTTPNotFound(text=self.page("message.html.j2", title="No such lab",
                                                  message="There is no lab at this address.",
                                                  fix="Ask the instructor for your link, or start one at /join.").text,
                                   content_type="text/html")
        return s

    async def handle_index(self, request: web.Request) -> web.Response:
        return self.page("instructor.html.j2", scenarios=self.scenarios(), fixed=self.scenario,
                         fixed_title=self.scenario_title(self.scenario), sessions=[self.status(s) for s in
                                                                                    self.sessions.values()],
                         random_faults=self.random_faults, bound=self.bound_text(), root=str(self.root))

    async def handle_create(self, request: web.Request) -> web.Response:
        form = await request.post()
        seed_text = str(form.get("seed", "")).strip()
        try:
            from ..lab.faults import parse_seed

            seed = parse_seed(seed_text) if seed_text else None
            self.create_session(str(form.get("student", "")), str(form.get("scenario", "")) or None, seed)
        except ConfigError as exc:
            return self.page("message.html.j2", 400, title="Not started", message=exc.problem, fix=exc.fix)
        raise web.HTTPSeeOther("/")

    async def handle_join(self, request: web.Request) -> web.Response:
        return self.page("join.html.j2", scenarios=self.scenarios(), fixed=self.scenario,
                         fixed_title=self.scenario_title(self.scenario))

    async def handle_join_post(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            s = self.create_session(str(form.get("student", "")), str(form.get("scenario", "")) or None)
        except ConfigError as exc:
            return self.page("message.html.j2", 400, title="Not started", message=exc.problem, fix=exc.fix)
        raise web.HTTPSeeOther(f"/lab/{s.id}")

    async def handle_pick(self, request: web.Request) -> web.Response:
        s = self._session(request)
        form = await request.post()
        if s.scenario is None:
            try:
                s.scenario = self.check_scenario(str(form.get("scenario", "")))
            except ConfigError as exc:
                return self.page("message.html.j2", 400, title="Not started", message=exc.problem, fix=exc.fix)
            self._save(s)
        raise web.HTTPSeeOther(f"/lab/{s.id}")

    async def handle_lab(self, request: web.Request) -> web.Response:
        s = self._session(request)
        if s.scenario is None:
            return self.page("pick.html.j2", session=s, scenarios=self.scenarios())
        if s.id not in self.live and len(self.live) >= self.max_sessions:
            return self.page("message.html.j2", 503, title="The classroom is full",
                             message=f"{len(self.live)} labs are running, the most this classroom allows.",
                             fix="Ask the instructor to close a lab or to start the classroom with a higher "
                                 "--max-sessions.")
        scheme = "wss" if request.secure else "ws"
        return self.page("lab.html.j2", session=s, title=self.scenario_title(s.scenario),
                         websocket_url=f"{scheme}://{request.host}/ws/{s.id}",
                         font_size=_to_int(request.query.get("fontsize", "16"), 16))

    async def handle_api_sessions(self, request: web.Request) -> web.Response:
        return web.json_response({"sessions": [self.status(s) for s in self.sessions.values()],
                                  "live": len(self.live), "max_sessions": self.max_sessions})

    def summary(self, fmt: str) -> str:
        from ..core.exercise import class_row, render_class_summary

        rows = [class_row(s.student, s.scenario or "(student picks)", self.read_status(s))
                for s in self.sessions.values()]
        stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        return render_class_summary(rows, fmt, templates_dir(), generated_at=stamp)

    async def handle_summary(self, request: web.Request) -> web.Response:
        if request.path.endswith(".md"):
            return web.Response(text=self.summary("markdown"), content_type="text/markdown", charset="utf-8")
        return web.Response(text=self.summary("html"), content_type="text/html", charset="utf-8")

    async def handle_report(self, request: web.Request) -> web.Response:
        s = self._session(request)
        fmt = request.match_info["fmt"]
        name = {"md": records.REPORT_FILES["markdown"], "html": records.REPORT_FILES["html"]}.get(fmt)
        path = s.folder(self.root) / name if name else None
        if path is None or not path.is_file():
            return self.page("message.html.j2", 404, title="No report yet",
                             message=f"{s.student}'s wizard has not written a report yet.",
                             fix="It is written once the lab is open and the checks have run.")
        return web.Response(text=path.read_text(encoding="utf-8"),
                            content_type="text/markdown" if fmt == "md" else "text/html", charset="utf-8")

    async def handle_session_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser connection: one wizard process on the session's lab (as textual-serve's handler, with
        the session's command and environment). A second tab on the same lab takes it over."""
        s = self._session(request)
        websocket = web.WebSocketResponse(heartbeat=15)
        width = _to_int(request.query.get("width", "80"), 80)
        height = _to_int(request.query.get("height", "24"), 24)
        if s.scenario is None or (s.id not in self.live and len(self.live) >= self.max_sessions):
            await websocket.prepare(request)
            await websocket.close()
            return websocket
        previous = self.live.pop(s.id, None)
        if previous is not None:
            await previous.stop()
        app_service: AppService | None = None
        try:
            await websocket.prepare(request)
            app_service = SessionAppService(self.command_for(s), extra_env=self.environment(s),
                                            write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                            close=websocket.close, download_manager=self.download_manager,
                                            debug=self.debug)
            self.live[s.id] = app_service
            log.info("lab %s (%s, %s) started", s.id, s.student, s.scenario)
            await app_service.start(width, height)
            try:
                await self._process_messages(websocket, app_service)
            finally:
                await app_service.stop()
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:
            log.exception("a lab connection failed")
        finally:
            if app_service is not None:
                await app_service.stop()
                if self.live.get(s.id) is app_service:
                    del self.live[s.id]
                log.info("lab %s closed", s.id)
        return websocket

    async def handle_favicon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    def initialize_logging(self) -> None:
        """One line per event; no local variables in tracebacks (they could hold the token)."""
        logging.basicConfig(level="DEBUG" if self.debug else "INFO", format="%(asctime)s %(name)s: %(message)s")
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    # --- start and stop ------------------------------------------------------------------------------
    def bound_text(self) -> str:
        if is_loopback(self.host):
            return (f"bound to {self.host} (loopback): only this machine can open it. For a classroom network "
                    "start it with --host 0.0.0.0 (a token is then required).")
        return f"bound to {self.host}: reachable from the network; every address needs the token."

    def url(self, path: str = "/") -> str:
        host = self.host if self.host not in ("0.0.0.0", "::") else _hostname()
        if ":" in host:
            host = f"[{host}]"
        query = f"?token={self.token}" if self.token else ""
        return f"http://{host}:{self.port}{path}{query}"

    async def on_startup(self, app: web.Application) -> None:
        print(f"ASA wizard classroom: {self.bound_text()}", flush=True)
        print(f"Instructor page: {self.url('/')}", flush=True)
        print(f"Students join at: {self.url('/join')}", flush=True)
        if self.scenario:
            print(f"Scenario: {self.scenario} ({self.scenario_title(self.scenario)})", flush=True)
        print(f"Session folders: {self.root / 'sessions'}", flush=True)
        print("Press Ctrl+C to stop (every lab is closed).", flush=True)

    async def on_shutdown(self, app: web.Application) -> None:
        for service in list(self.live.values()):
            await service.stop()
        self.live.clear()


def live_status(status: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """A lab's recorded status with the clock brought up to `now`: the wizard records only when something
    changes, and a closed lab records nothing, yet its time runs on until the limit ends the exercise."""
    if not status or status.get("finished"):
        return status
    try:
        started = datetime.fromisoformat(status["started"])
    except (KeyError, TypeError, ValueError):
        return status
    out = dict(status)
    elapsed = max(int((now - started).total_seconds()), int(status.get("elapsed_seconds") or 0))
    limit = status.get("time_limit_seconds")
    if limit and elapsed >= limit:
        out.update(elapsed_seconds=int(limit), finished=True, reason="time is up")
    else:
        out["elapsed_seconds"] = elapsed
    return out


def _to_int(value: str, default: int) -> int:
    try:
        return max(8, min(int(value), 400))
    except ValueError:
        return default


def _hostname() -> str:
    import socket

    return socket.gethostname()


def default_root() -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return records.data_dir() / "classroom" / stamp


def run_serve(args: argparse.Namespace) -> int:
    """`asa-wizard serve`: check the options, then serve until Ctrl+C."""
    from ..lab.faults import parse_seed
    from ..lab.scenario import find_scenario, load_scenario

    if args.scenario is not None:
        path = find_scenario(args.scenario)
        load_scenario(path)
    seed = parse_seed(args.random_faults) if args.random_faults is not None else None
    if not 1 <= args.port <= 65535:
        raise ConfigError("--port", f"{args.port} is not a TCP port", "Use a number from 1 to 65535.")
    if args.max_sessions < 1:
        raise ConfigError("--max-sessions", "must be at least 1", "Use --max-sessions 20 for a class of twenty.")
    token, _generated = decide_token(args.host, args.token)
    root = Path(args.data_dir).expanduser() if args.data_dir else default_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(str(root), f"cannot create the classroom folder ({exc.strerror})",
                          "Give a folder you can write to with --data-dir.") from None
    classroom = Classroom(host=args.host, port=args.port, root=root, scenario=args.scenario, random_faults=seed,
                          token=token, max_sessions=args.max_sessions)
    try:
        classroom.serve()
    except OSError as exc:
        raise ConfigError(f"{args.host}:{args.port}", f"cannot listen there ({exc.strerror})",
                          "Pick another --port, or stop what already uses it.") from None
    return 0
