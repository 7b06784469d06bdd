"""The frame every wizard step shares: title, guidance from `screens/<step>.md`, the step's controls,
and Back / Next. Actions bound on the app (run, apply, copy, cancel) are forwarded to the current pane.

A pane owns its work: it starts its thread worker (`start_work`), shows the progress and the result itself,
and tells the app frame what the frame owns with typed messages (`tui/messages.py`). No pane imports the app:
a pane gets the session when it is made. Errors of its work go to the frame's one error handler."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any, Callable, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Collapsible, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from ...core.errors import Cancelled
from ...core.steps import STEP_IDS, step
from ...resources import screens_dir
from ..messages import Goto, LogLine, ShowProblem, StateChanged, WorkFailed, WorkProgress


@cache
def guidance(step_id: str) -> str:
    """The Markdown a person reads for a step (shipped in `screens/`)."""
    path = screens_dir() / f"{step_id}.md"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"# {step(step_id).title}\n\n{step(step_id).summary}\n"


def guidance_intro(step_id: str) -> str:
    """The first section of the guidance (what the step does), shown above the controls; `?` shows it all."""
    text = guidance(step_id)
    if text.startswith("## "):  # the collapsible's title already says it
        text = text.split("\n", 1)[1] if "\n" in text else ""
    second = text.find("\n## ")
    return (text[:second] if second >= 0 else text).strip() + "\n"


def theme_style(app: Any, name: str, bold: bool = False) -> str:
    """A Rich style from the current Textual theme, for renderables that cannot use $variables."""
    colour = getattr(app.current_theme, name, None) or ""
    return f"{'bold ' if bold else ''}{colour}".strip()


STATUS_THEME = {"pass": "success", "fail": "error", "warn": "warning", "skipped": "secondary"}


def status_text(app: Any, status: str | None) -> Text:
    """Icon + word for a table cell, coloured from the theme."""
    from ..widgets import plain_badge

    return Text(plain_badge(status), style=theme_style(app, STATUS_THEME.get(status or "", "foreground"),
                                                       bold=status == "fail"))


class StepPane(VerticalScroll):
    """One step of the wizard. Subclasses add `compose_controls` and the actions they support."""

    STEP_ID: ClassVar[str] = ""
    # app actions this pane answers to, each a `do_<name>` method: run (r), apply (a), copy (c)
    SUPPORTS: ClassVar[frozenset[str]] = frozenset()
    WORK_GROUP: ClassVar[str | None] = None

    def __init__(self, session: Any, *, show_guidance: bool = True) -> None:
        super().__init__(id=f"step-{self.STEP_ID}", classes="step")
        self.session = session
        self.show_guidance = show_guidance
        self._cancel: threading.Event | None = None
        self._then: dict[Worker, Callable[[Any], None]] = {}

    # --- telling the frame --------------------------------------------------------------------------
    def log_line(self, text: str) -> None:
        self.post_message(LogLine(text))

    def problem(self, problem: str, fix: str = "", *, detail: str | None = None, step_id: str | None = None,
                title: str = "Something went wrong") -> None:
        self.post_message(ShowProblem(problem, fix, detail=detail, step_id=step_id, title=title))

    def goto(self, step_id: str) -> None:
        self.post_message(Goto(step_id))

    def goto_check(self, check_id: str) -> None:
        self.post_message(Goto(check_id=check_id))

    def state_changed(self, *, target: bool = False) -> None:
        self.post_message(StateChanged(target=target))

    # --- the pane's own work ---------------------------------------------------------------------------
    def start_work(self, fn: Callable[..., Any], then: Callable[[Any], None] | None = None, *, name: str,
                   description: str, group: str | None = None) -> Worker:
        """Run `fn(progress, cancel)` in a thread worker owned by this pane; `then(result)` runs on the UI
        thread when it succeeded. Its failure goes to the frame's error handler."""
        if self._cancel is not None:
            self._cancel.set()
        cancel = self._cancel = threading.Event()

        def progress(what: str, done: int = 0, total: int = 0) -> None:
            self.post_message(WorkProgress(what, done, total))

        worker = self.run_worker(lambda: fn(progress, cancel), name=name, group=group or self.work_group or name,
                                 description=description, thread=True, exclusive=True, exit_on_error=False)
        if then is not None:
            self._then[worker] = then
        self.app.refresh_bindings()
        return worker

    @property
    def working(self) -> bool:
        """Work of this pane is running (x cancels it)."""
        return any(w.node is self and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.app.workers)

    @property
    def work_group(self) -> str | None:
        return self.WORK_GROUP

    def cancel_work(self) -> bool:
        """Ask the pane's work to stop at its next safe point (a thread is never abandoned mid-change)."""
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            return True
        return False

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state not in (WorkerState.PENDING, WorkerState.RUNNING):
            self.app.refresh_bindings()
        then = self._then.get(event.worker)
        if event.state == WorkerState.SUCCESS:
            self._then.pop(event.worker, None)
            if then is not None:
                event.stop()
                then(event.worker.result)
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._then.pop(event.worker, None)
            error = event.worker.error
            what = event.worker.description or event.worker.name or "Work"
            self.work_finished(f"{what}: stopped" + (f" ({error.problem})" if isinstance(error, Cancelled)
                                                       else ""))
            self.post_message(WorkFailed(what, error, self.STEP_ID))  # the frame's one error handler

    def on_work_progress(self, message: WorkProgress) -> None:
        message.stop()
        self.show_progress(message.what, message.done, message.total)

    def open_lab(self, name: str, then: Callable[[Any], None] | None = None) -> None:
        """Open (or re-open) the lab on a scenario; every finding of the previous target goes with it."""
        session = self.session

        def work(progress: Callable[..., None], cancel: threading.Event) -> Any:
            progress(f"Opening the lab scenario {name}", 0, 0)
            return session.open_lab(name)

        def done(target: Any) -> None:
            self.log_line(f"Target: {target.label}")
            self.work_finished(f"Opened {target.label}")
            self.state_changed(target=True)
            if then is not None:
                then(target)
            else:
                self.start_discovery()

        self.start_work(work, done, name="open-scenario", description="Opening the lab scenario", group="target")

    def start_discovery(self) -> None:
        """Read the organisation and run every check (any pane may need it first); the frame redraws after."""
        session = self.session

        def work(progress: Callable[..., None], cancel: threading.Event) -> None:
            session.discover(progress=progress, cancel=cancel)
            if cancel.is_set():
                raise Cancelled("Discovery was cancelled.", "Press r to run it again.")
            progress("Running the check catalogue", 0, 0)
            session.run_checks()

        def done(_: Any) -> None:
            env = session.env
            n = len(env.servers) if env else 0
            self.work_finished(f"Discovery finished: {n} server(s), {len(env.namespaces) if env else 0} "
                               "namespace(s)")
            self.log_line(f"Discovery finished: {n} Exchange server(s)")
            self.state_changed()

        self.start_work(work, done, name="discovery", description="Discovery", group="discovery")

    def compose(self) -> ComposeResult:
        info = step(self.STEP_ID)
        number = STEP_IDS.index(self.STEP_ID) + 1
        yield Static(f"Step {number} of {len(STEP_IDS)} · {info.title}", markup=False, classes="step-title")
        with Collapsible(title="What this step does (g: show/hide · ?: why, risks, manual commands)",
                         collapsed=not self.show_guidance, classes="guidance"):
            yield Static("", id=f"guidance-{self.STEP_ID}")  # replaced by the Markdown after the first frame
        yield from self.compose_controls()
        with Horizontal(classes="nav"):
            yield Button("◀ Back (ctrl+b)", id=f"back-{self.STEP_ID}", classes="back",
                         disabled=number == 1)
            yield Button("Next (ctrl+n) ▶", id=f"next-{self.STEP_ID}", classes="next", variant="primary",
                         disabled=number == len(STEP_IDS))

    def compose_controls(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        # The guidance is many widgets: fill it in after the step's own controls are on screen.
        self.call_after_refresh(self._load_guidance)

    async def _load_guidance(self) -> None:
        from textual.widgets import Markdown  # markdown-it is imported on first use, not at start-up

        placeholder = self.query_one(f"#guidance-{self.STEP_ID}", Static)
        from ..guidance import with_names  # the organisation's own names once discovery has read them

        text = with_names(guidance_intro(self.STEP_ID), self.session.env)
        await placeholder.parent.mount(Markdown(text), before=placeholder)
        await placeholder.remove()

    def compose_progress(self) -> ComposeResult:
        with Vertical(classes="progress-row"):
            yield Label("", id=f"progress-label-{self.STEP_ID}", markup=False, classes="progress-label")
            yield ProgressBar(total=None, show_eta=False, id=f"progress-{self.STEP_ID}")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.has_class("back"):
            event.stop()
            i = STEP_IDS.index(self.STEP_ID)
            self.goto(STEP_IDS[max(i - 1, 0)])
        elif event.button.has_class("next"):
            event.stop()
            i = STEP_IDS.index(self.STEP_ID)
            self.goto(STEP_IDS[min(i + 1, len(STEP_IDS) - 1)])

    def set_guidance(self, visible: bool) -> None:
        self.show_guidance = visible
        self.query_one(".guidance", Collapsible).collapsed = not visible

    # --- progress of the pane's work -------------------------------------------------------------
    def show_progress(self, what: str, done: int, total: int) -> None:
        try:
            bar = self.query_one(f"#progress-{self.STEP_ID}", ProgressBar)
        except Exception:
            return
        self.query_one(".progress-row").add_class("active")
        if total > 0:
            bar.update(total=total, progress=done)
        else:
            bar.update(total=None)
        self.query_one(f"#progress-label-{self.STEP_ID}", Label).update(what)

    def work_finished(self, what: str) -> None:
        try:
            bar = self.query_one(f"#progress-{self.STEP_ID}", ProgressBar)
        except Exception:
            return
        self.query_one(".progress-row").add_class("active")
        bar.update(total=1, progress=1)
        self.query_one(f"#progress-label-{self.STEP_ID}", Label).update(what)

    # --- hooks the frame calls -------------------------------------------------------------------------
    def on_shown(self) -> None:
        """The user arrived at this step (first time or again): read the organisation if nothing was read."""
        if self.session.env is None and self.session.target is not None and not self.app_busy("discovery"):
            self.start_discovery()

    def show_detail_of_selection(self) -> None:
        """d: open the detail pane on the row under the cursor of the focused table (or this step's first table)."""
        from textual.widgets import DataTable

        from ..messages import ShowDetail

        focused = self.app.focused
        tables = [focused] if isinstance(focused, DataTable) and focused in self.query(DataTable) else \
            [t for t in self.query(DataTable) if t.row_count]
        for table in tables:
            if not table.row_count:
                continue
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            found = self.detail_for(table.id or "", key or "")
            if found is not None:
                title, sections, copy_text = found
                self.post_message(ShowDetail(title, sections, copy_text=copy_text))
                return
        self.app.notify("Select a finding, a server or a change first (arrows), then press d.", markup=False)

    def detail_for(self, table_id: str, key: str) -> tuple[str, list[tuple[str, str]], str] | None:
        """The detail of one row: findings everywhere, servers and changes where a step shows them."""
        from ..detail import change_sections, finding_sections, server_sections

        if "|" in key:  # a finding row: "check id|n"
            check_id = key.split("|", 1)[0]
            findings = [f for f in self.session.findings if f.check_id == check_id]
            return finding_sections(findings) if findings else None
        env = self.session.env
        server = env.server(key) if env is not None and key else None
        if server is not None:
            return server_sections(server)
        change = next((c for c in getattr(self, "changes", []) if c.id == key), None)
        return change_sections(change) if change is not None else None

    def open_finding(self, key: str) -> None:
        """Enter on a finding: its detail opens, and the step that fixes it."""
        from ..messages import ShowDetail

        found = self.detail_for("", key)
        if found is not None:
            title, sections, copy_text = found
            self.post_message(ShowDetail(title, sections, copy_text=copy_text))
        self.goto_check(key.split("|", 1)[0])

    def app_busy(self, group: str) -> bool:
        return any(w.group == group and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   for w in self.app.workers)

    def refresh_from_session(self) -> None:
        """The environment or the findings changed: redraw what depends on them."""
