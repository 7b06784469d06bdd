"""The wizard: one screen with the checklist, the current step and a log pane.

All long work (opening the lab, discovery, applying changes, the rollout, verification) runs in named
thread workers on the app; they report progress with messages and their results and errors come back
through one `Worker.StateChanged` handler. Errors a person can act on are shown with their fix in a modal.
"""

from __future__ import annotations

import threading
import traceback
from datetime import datetime
from typing import Any, Callable, Iterable

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, OptionList, RichLog
from textual.worker import Worker, WorkerState

from ..core.errors import Cancelled, WizardError
from ..core.steps import STEP_IDS, step
from ..resources import assets_dir
from ..target import Target
from .session import WizardSession
from .steps.base import StepPane, guidance
from .widgets import Checklist, TargetBar


class WorkProgress(Message):
    """Posted from a thread worker (post_message is thread-safe): progress of the work of one step."""

    def __init__(self, step_id: str, what: str, done: int, total: int) -> None:
        super().__init__()
        self.step_id = step_id
        self.what = what
        self.done = done
        self.total = total


class RolloutUpdate(Message):
    """Posted from the rollout engine's callback: one server changed state."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


def pane_class(step_id: str) -> type[StepPane]:
    """The pane of a step, imported when first needed (keeps start-up fast)."""
    if step_id == "target":
        from .steps.target import TargetPane

        return TargetPane
    if step_id == "discovery":
        from .steps.discovery import DiscoveryPane

        return DiscoveryPane
    if step_id == "verify":
        from .steps.verify import VerifyPane

        return VerifyPane
    if step_id == "report":
        from .steps.report import ReportPane

        return ReportPane
    if step_id == "rollout":
        from .steps.rollout import RolloutPane

        return RolloutPane
    from .steps.changes import change_pane

    return change_pane(step_id)


class AsaWizardApp(App[int]):
    CSS_PATH = str(assets_dir() / "app.tcss")
    TITLE = "ASA wizard"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("ctrl+n", "next", "Next"),
        Binding("ctrl+b", "back", "Back"),
        Binding("r", "run", "Run"),
        Binding("a", "apply", "Apply"),
        Binding("c", "copy", "Copy cmds"),
        Binding("x", "cancel_work", "Cancel"),
        Binding("ctrl+t", "toggle_dry_run", "Dry-run"),
        Binding("ctrl+l", "toggle_log", "Log"),
        Binding("g", "toggle_guidance", "Guide"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, session: WizardSession, *, start_step: str = "target", open_lab: str | None = None) -> None:
        """`open_lab`: a scenario to open in a worker after the first paint (the command line's choice)."""
        super().__init__()
        self.session = session
        self.start_step = start_step
        self.open_lab_after_paint = open_lab
        self.current_step = start_step
        self.show_guidance = True
        self._cancel: dict[str, threading.Event] = {}
        self._then_test = False
        self._applying_step = "target"
        from ..adapters.secrets import KeyringSecretStore

        self._secret_store_factory = KeyringSecretStore
        self._secret_store: Any = None
        self._after_credentials: Callable[[], None] | None = None

    # --- layout --------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        from ..core.checks import CHECKS, STEP_CHECKS

        yield TargetBar(id="target-bar")
        from .exercise import ExercisePanel  # hidden unless the lab scenario has an exercise

        yield ExercisePanel(id="exercise")
        with Horizontal(id="main"):
            yield Checklist(dict(STEP_CHECKS), {cid: c.title for cid, c in CHECKS.items()}, id="checklist")
            yield ContentSwitcher(id="steps")
        yield RichLog(id="log", markup=False, wrap=True, highlight=False, max_lines=2000)
        yield Footer()

    async def on_mount(self) -> None:
        # On a small terminal the step's controls come first; the guidance is one key (g) away.
        self.show_guidance = self.size.height >= 32
        self._show_target_bar()
        self.log_line("Wizard started" + (" in dry-run mode" if self.session.dry_run else ""))
        if self.session.target is not None:
            self.log_line(f"Target: {self.session.target.label}")
            self.query_one(Checklist).set_step_status("target", "pass")
        # The frame (target bar, checklist, footer) is painted first; the step follows right after it.
        self.call_after_refresh(self._first_step)

    async def _first_step(self) -> None:
        await self.show_step(self.start_step)
        if self.open_lab_after_paint:
            self.call_after_refresh(self.open_scenario, self.open_lab_after_paint)

    def _show_target_bar(self) -> None:
        target = self.session.target
        self.query_one(TargetBar).show(target.label if target else "no target chosen",
                                       dry_run=self.session.dry_run,
                                       insecure_tls=bool(target and target.insecure_tls))

    # --- steps -------------------------------------------------------------------------------------------
    def pane(self, step_id: str) -> StepPane | None:
        try:
            return self.query_one(f"#step-{step_id}", StepPane)
        except Exception:
            return None

    @property
    def current_pane(self) -> StepPane | None:
        return self.pane(self.current_step)

    async def show_step(self, step_id: str) -> None:
        switcher = self.query_one("#steps", ContentSwitcher)
        pane = self.pane(step_id)
        if pane is None:
            pane = pane_class(step_id)()
            await switcher.add_content(pane, set_current=True)
        else:
            switcher.current = pane.id
        self.current_step = step_id
        self.query_one(Checklist).set_current(step_id)
        self.refresh_bindings()
        self.call_after_refresh(pane.on_shown)  # long work starts after the step is on screen

    def goto(self, step_id: str) -> None:
        self.run_worker(self.show_step(step_id), group="navigate", exclusive=True)

    def goto_check(self, check_id: str) -> None:
        from ..core.checks import CHECKS

        check = CHECKS.get(check_id)
        if check is not None:
            self.goto(check.step)

    def action_next(self) -> None:
        i = STEP_IDS.index(self.current_step)
        if i + 1 < len(STEP_IDS):
            self.goto(STEP_IDS[i + 1])

    def action_back(self) -> None:
        i = STEP_IDS.index(self.current_step)
        if i > 0:
            self.goto(STEP_IDS[i - 1])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "checklist" and event.option.id:
            parts = event.option.id.split(":")
            self.goto(parts[1])

    # --- actions forwarded to the current pane ---------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("run", "apply", "copy"):
            pane = self.current_pane
            return bool(pane is not None and action in pane.SUPPORTS)
        if action == "cancel_work":
            pane = self.current_pane
            return bool(pane is not None and pane.WORK_GROUP)
        return True

    def _forward(self, action: str) -> None:
        pane = self.current_pane
        if pane is not None and action in pane.SUPPORTS:
            getattr(pane, f"do_{action}")()

    def action_run(self) -> None:
        self._forward("run")

    def action_apply(self) -> None:
        self._forward("apply")

    def action_copy(self) -> None:
        self._forward("copy")

    def action_cancel_work(self) -> None:
        pane = self.current_pane
        group = pane.WORK_GROUP if pane else None
        if group:
            self.cancel_group(group)

    def is_working(self, group: str) -> bool:
        return any(w.group == group and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers)

    def cancel_group(self, group: str) -> None:
        """Ask the work to stop at its next safe point. The thread is not abandoned: cancelling a thread worker
        in Textual would report it finished while it still runs (a rollout in the middle of a server), so
        the work ends by itself and reports what it did."""
        event = self._cancel.get(group)
        if event is not None:
            event.set()
        self.log_line(f"Cancel requested: {group} stops at the next safe point")

    def action_toggle_dry_run(self) -> None:
        self.session.dry_run = not self.session.dry_run
        self._show_target_bar()
        self.log_line("Dry-run " + ("on: changes are previewed, never applied" if self.session.dry_run else "off"))
        self.notify("Dry-run is ON: nothing will be changed." if self.session.dry_run else "Dry-run is off.",
                    markup=False)
        pane = self.current_pane
        if pane is not None:
            pane.refresh_from_session()

    def action_toggle_log(self) -> None:
        self.query_one("#log", RichLog).toggle_class("shown")

    def action_toggle_guidance(self) -> None:
        self.show_guidance = not self.show_guidance
        for pane in self.query(StepPane):
            pane.set_guidance(self.show_guidance)

    def action_help(self) -> None:
        from .modals import HelpModal

        keys = [(b.key_display or b.key, b.description) for b in self.BINDINGS if isinstance(b, Binding)
                and self.check_action(b.action.split("(")[0], ()) is not False]
        keys.append(("ctrl+p", "Command palette: go to any step, run any action"))
        self.push_screen(HelpModal(step(self.current_step).title, guidance(self.current_step), keys))

    async def action_quit(self) -> None:
        running = [w for w in self.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   and w.group != "navigate"]
        if not running:
            self.exit(0)
            return
        from .modals import ConfirmModal

        def answered(yes: bool | None) -> None:
            if yes:
                for group in {w.group for w in running}:
                    self.cancel_group(group)
                self.exit(0)

        lines = [f"{w.description or w.name} is still running." for w in running]
        lines.append("Quitting cancels it; a change in progress is left in the journal so it can be resumed.")
        self.push_screen(ConfirmModal("Work is still running. Quit anyway?", lines, confirm="Quit", danger=True),
                         answered)

    # --- command palette -------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for n, step_id in enumerate(STEP_IDS, 1):
            info = step(step_id)
            yield SystemCommand(f"Go to step {n}: {info.title}", info.summary,
                                lambda s=step_id: self.goto(s))
        yield SystemCommand("Run discovery again", "Re-read the forest, the servers and the namespaces",
                            self.run_discovery)
        yield SystemCommand("Toggle dry-run", "Preview changes without ever applying them",
                            self.action_toggle_dry_run)
        yield SystemCommand("Toggle the log pane", "Show or hide what the wizard did", self.action_toggle_log)
        yield SystemCommand("Toggle guidance", "Show or hide the guidance above each step",
                            self.action_toggle_guidance)
        yield SystemCommand("Help for this step", "The step's guidance and keys", self.action_help)
        yield SystemCommand("Save the answers file",
                            "Write this session's choices to a TOML file for `asa-wizard plan` / `apply`",
                            self.save_answers)
        if self.session.target is not None and self.session.target.is_lab:
            yield SystemCommand("Reset the lab", "Put the training scenario back as the file describes it",
                                self.reset_lab)

    # --- messages to the user --------------------------------------------------------------------------
    def log_line(self, text: str) -> None:
        """Write to the log pane, literally (outside text is never parsed as markup)."""
        stamp = datetime.now().strftime("%H:%M:%S")
        self.query_one("#log", RichLog).write(Text(f"{stamp}  {text}"))

    def show_error(self, problem: str, fix: str = "", *, detail: str | None = None, step_id: str | None = None,
                   title: str = "Something went wrong") -> None:
        from .modals import ErrorModal

        self.log_line(f"Problem: {problem}" + (f" Fix: {fix}" if fix else ""))
        step_title = step(step_id).title if step_id else None

        def chosen(target_step: str | None) -> None:
            if target_step:
                self.goto(target_step)

        self.push_screen(ErrorModal(problem, fix, detail=detail, step=step_id, step_title=step_title, title=title),
                         chosen)

    def secret_store(self) -> Any:
        if self._secret_store is None:
            self._secret_store = self._secret_store_factory()
        return self._secret_store

    def ask_credentials(self, key: str, user: str = "", then: Callable[[], None] | None = None) -> None:
        """Ask in a modal; offer the keyring (named) or say why the password stays in memory. `key` names the
        secret (`ldap:user@dc`, as the headless commands look it up); `then` runs once it is kept."""
        self._after_credentials = then
        self._prepare_secret_store(key, user)

    @work(thread=True, exclusive=True, exit_on_error=False, group="credentials", name="secret-store",
          description="Opening the keyring")
    def _prepare_secret_store(self, key: str, user: str) -> tuple[str, str]:
        self.secret_store()  # probing the keyring can block: never on the UI thread
        return key, user

    def _finish_secret_store(self, args: tuple[str, str]) -> None:
        from .modals import CredentialModal

        key, user = args
        store = self.secret_store()
        modal = CredentialModal(key, user=user, store_where=store.where,
                                store_refused=store.persist_refused_reason())

        def answered(answer: Any) -> None:
            if answer is not None:
                self._keep_secret(key, answer)

        self.push_screen(modal, answered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="credentials", name="keep-secret",
          description="Storing the credentials")
    def _keep_secret(self, key: str, answer: Any) -> str:
        store = self.secret_store()
        if answer.remember:
            store.set(key, answer.password)
            where = store.where
        else:
            store.keep(key, answer.password)
            where = "this session's memory only"
        return f"Credentials for {answer.user} kept in {where}."

    def _finish_keep_secret(self, message: str) -> None:
        self.log_line(message)
        self.notify(message, markup=False)
        then, self._after_credentials = self._after_credentials, None
        if then is not None:
            then()

    # --- work: a real domain ---------------------------------------------------------------------------
    def connect_real(self, form: Any) -> None:
        """Ask for the password when the form needs one (and none is kept yet), then connect and test."""
        self._connect_real_worker(form)

    @work(thread=True, exclusive=True, exit_on_error=False, group="target", name="connect-real",
          description="Connecting to the domain")
    def _connect_real_worker(self, form: Any) -> Any:
        self.post_message(WorkProgress("target", f"Connecting to {form.dc}", 0, 0))
        password = self.secret_store().get(form.secret_key) if form.needs_password else None
        if form.needs_password and password is None:
            return form  # no password yet: ask, then come back
        self.session.open_real(form, password)
        return self.session.test_connections()

    def _finish_connect_real(self, outcome: Any) -> None:
        if isinstance(outcome, list):
            self._show_target_bar()
            self._finish_test_connections(outcome)
            return
        form = outcome
        self.ask_credentials(form.secret_key, form.user, then=lambda: self.connect_real(form))

    def set_insecure_tls(self, insecure: bool) -> None:
        if self.session.target is not None:
            self.session.target.insecure_tls = insecure
        self._show_target_bar()

    # --- work: target --------------------------------------------------------------------------------
    def _event(self, group: str) -> threading.Event:
        old = self._cancel.get(group)
        if old is not None:
            old.set()
        event = threading.Event()
        self._cancel[group] = event
        return event

    def _progress(self, step_id: str) -> Callable[[str, int, int], None]:
        return lambda what, done, total: self.post_message(WorkProgress(step_id, what, done, total))

    def open_scenario(self, name: str, then_test: bool = False) -> None:
        self._then_test = then_test
        self._open_scenario_worker(name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="target", name="open-scenario",
          description="Opening the lab scenario")
    def _open_scenario_worker(self, name: str) -> Target:
        self.post_message(WorkProgress("target", f"Opening the lab scenario {name}", 0, 0))
        return self.session.open_lab(name)

    def _finish_open_scenario(self, target: Target) -> None:
        self.log_line(f"Target: {target.label}")
        self._show_target_bar()
        checklist = self.query_one(Checklist)
        checklist.update_findings([], only=list(checklist.statuses))
        checklist.set_step_status("target", None)
        for pane in self.query(StepPane):
            pane.refresh_from_session()
        target_pane = self.pane("target")
        if target_pane is not None:
            target_pane.work_finished(f"Opened {target.label}")
        if self._then_test:
            self.test_connections()
        current = self.current_pane
        if current is not None:
            current.on_shown()

    def test_connections(self) -> None:
        self._test_connections_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="target", name="test-connections",
          description="Testing the connections")
    def _test_connections_worker(self) -> list[tuple[str, str]]:
        self.post_message(WorkProgress("target", "Testing the connections", 0, 0))
        return self.session.test_connections()

    def _finish_test_connections(self, rows: list[tuple[str, str]]) -> None:
        pane = self.pane("target")
        if pane is not None:
            pane.show_results(rows)  # type: ignore[attr-defined]
            pane.work_finished("All connections answered")
        self.query_one(Checklist).set_step_status("target", "pass")
        self.log_line("Connections tested: " + "; ".join(f"{a}: {b}" for a, b in rows))

    def save_answers(self, path: str | None = None) -> None:
        """Save every choice of this session as an answers file (no password is ever in it), so a consultant
        can put the same plan through change control and apply it with `asa-wizard apply`."""
        from pathlib import Path

        from ..core.answers import save_answers

        if self.session.answers is None:
            self.notify("Nothing to save yet: choose a target first.", severity="warning", markup=False)
            return
        name = self.session.scenario_name or "session"
        where = Path(path) if path else Path.cwd() / f"asa-wizard-answers-{name}.toml"
        try:
            saved = save_answers(self.session.answers, where)
        except OSError as exc:
            self.show_error(f"Could not write {where}: {exc.strerror}.", "Choose a folder you can write to.")
            return
        self.answers_path = saved
        self.log_line(f"Answers saved to {saved}")
        self.notify(f"Answers saved to {saved}", markup=False)

    def reset_lab(self) -> None:
        target = self.session.target
        if target is None or target.lab is None:
            return
        target.lab.reset()
        self.log_line("Lab reset to the scenario file")
        self.notify("The lab was reset to the scenario.", markup=False)
        self.run_discovery()

    # --- work: discovery ---------------------------------------------------------------------------------
    def run_discovery(self) -> None:
        self._discovery_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="discovery", name="discovery",
          description="Discovery")
    def _discovery_worker(self) -> None:
        cancel = self._event("discovery")
        progress = self._progress("discovery")
        self.session.discover(progress=progress, cancel=cancel)
        if cancel.is_set():
            raise Cancelled("Discovery was cancelled.", "Press r to run it again.")
        progress("Running the check catalogue", 0, 0)
        self.session.run_checks()

    def _finish_discovery(self, _: None) -> None:
        self.refresh_findings()
        self.query_one(Checklist).set_step_status("discovery", "pass")
        env = self.session.env
        n = len(env.servers) if env else 0
        pane = self.pane("discovery")
        if pane is not None:
            pane.work_finished(f"Discovery finished: {n} server(s), {len(env.namespaces) if env else 0} namespace(s)")
        self.log_line(f"Discovery finished: {n} Exchange server(s)")

    # --- work: verification and the report ---------------------------------------------------------------
    def run_verify(self) -> None:
        self._verify_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="verify", name="verify",
          description="Verification")
    def _verify_worker(self) -> Any:
        cancel = self._event("verify")
        report = self.session.verify(progress=self._progress("verify"), cancel=cancel)
        if cancel.is_set():
            raise Cancelled("Verification was cancelled.", "Press r to run it again.")
        return report

    def _finish_verify(self, report: Any) -> None:
        self.refresh_findings()
        pane = self.pane("verify")
        if pane is not None:
            pane.show_proof(report)  # type: ignore[attr-defined]
            pane.work_finished("Verification finished")
        accepted = sum(1 for r in report.servers if getattr(r.outcome, "value", r.outcome) == "accepted")
        self.log_line(f"Verification finished: Kerberos accepted on {accepted} of {len(report.servers)} "
                      "server/namespace pair(s)")

    def save_report(self, path: str, fmt: str) -> None:
        self._report_worker(path, fmt)

    @work(thread=True, exclusive=True, exit_on_error=False, group="report", name="report",
          description="Saving the report")
    def _report_worker(self, path: str, fmt: str) -> str:
        from datetime import timezone

        stamp = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        return self.session.save_report(path, fmt, generated_at=stamp)

    def _finish_report(self, path: str) -> None:
        pane = self.pane("report")
        if pane is not None:
            pane.saved(path)  # type: ignore[attr-defined]
            pane.work_finished("Report saved")
        self.query_one(Checklist).set_step_status("report", "pass")
        self.log_line(f"Report saved: {path}")
        self.notify(f"Report saved: {path}", markup=False)

    # --- work: changes ------------------------------------------------------------------------------------
    def busy_changing(self) -> bool:
        """One change run at a time: a second one would race the first on the same objects."""
        if self.is_working("changes") or self.is_working("rollout"):
            self.notify("Changes are being applied: wait for them to finish (or cancel with x).", markup=False)
            return True
        return False

    def apply_changes(self, step_id: str, changes: list[Any]) -> None:
        if self.busy_changing():
            return
        self.log_line(f"Applying {len(changes)} change(s) of step {step_id}")
        self._applying_step = step_id
        self._apply_worker(step_id, [c.id for c in changes])

    @work(thread=True, exclusive=True, exit_on_error=False, group="changes", name="apply",
          description="Applying the changes")
    def _apply_worker(self, step_id: str, change_ids: list[str]) -> tuple[str, Any]:
        cancel = self._event(step_id)
        say = self._progress(step_id)

        def progress(ev: Any) -> None:
            say(f"{ev.state}: {ev.summary}" + (f" ({ev.message})" if ev.message else ""), ev.index, ev.total)

        result = self.session.apply(step_id, change_ids, progress=progress, cancel=cancel)
        self._recheck(step_id, say)
        return step_id, result

    def _recheck(self, step_id: str, say: Callable[[str, int, int], None]) -> None:
        """After a change: read the organisation again and run the step's checks (in the worker thread)."""
        from ..core.checks import STEP_CHECKS

        say("Reading the organisation again", 0, 0)
        self.session.discover()
        say("Running the checks of this step", 0, 0)
        self.session.run_checks(only=list(STEP_CHECKS.get(step_id, [])) or None)

    def _finish_apply(self, outcome: tuple[str, Any]) -> None:
        step_id, result = outcome
        self._after_change(step_id)
        pane = self.pane(step_id)
        if pane is not None:
            pane.work_finished(f"{len(result.done)} done, {len(result.already)} already in place, "
                               f"{len(result.failed)} failed" + (", cancelled" if result.cancelled else ""))
        self.log_line(f"Journal: {result.journal}")
        for cid in result.done:
            self.log_line(f"Done: {cid}")
        if result.failed:
            lines = [f"{cid}: {why}" for cid, why in result.failed.items()]
            lines += [f"{cid}: not attempted, waits for {dep}" for cid, dep in result.skipped.items()]
            self.show_error(f"{len(result.failed)} change(s) failed.", "\n".join(lines),
                            detail=f"Journal: {result.journal}", step_id=None, title="Some changes failed")

    def _after_change(self, step_id: str) -> None:
        from ..core.checks import STEP_CHECKS

        self.refresh_findings(only=list(STEP_CHECKS.get(step_id, [])) or None)
        failing = [f for f in self.session.findings if f.check_id in STEP_CHECKS.get(step_id, [])
                   and getattr(f.status, "value", f.status) == "fail"]
        for f in failing:
            self.log_line(f"Still failing: {f.title} ({f.subject}): {f.reason or f.evidence} Fix: {f.fix}")
        if not failing:
            self.notify("Step done: its checks pass.", markup=False)

    def run_rollout(self, request: Any) -> None:
        if self.busy_changing():
            return
        self.log_line(f"Rollout of {request.account} to {len(request.servers)} server(s)")
        self._rollout_worker(request)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollout", name="rollout",
          description="The credential rollout")
    def _rollout_worker(self, request: Any) -> Any:
        cancel = self._event("rollout")
        say = self._progress("rollout")

        def progress(ev: Any) -> None:
            self.post_message(RolloutUpdate(ev))
            say(f"{ev.server}: {ev.phase} {ev.message}", ev.finished, ev.total)

        report = self.session.rollout(request, progress=progress, cancel=cancel)
        if not report.cancelled:
            self._recheck("rollout", say)
        return report

    def on_rollout_update(self, message: RolloutUpdate) -> None:
        pane = self.pane("rollout")
        if pane is not None:
            pane.show_server(message.event)  # type: ignore[attr-defined]

    def _finish_rollout(self, report: Any) -> None:
        pane = self.pane("rollout")
        if report.cancelled:
            self.log_line("Rollout cancelled: the journal keeps what was done; Apply resumes it.")
            self.notify("Rollout cancelled. Apply again to resume from the journal.", markup=False)
            if pane is not None:
                pane.work_finished("Cancelled: apply again to resume")
            return
        self._after_change("rollout")
        if pane is not None:
            pane.show_report(report)  # type: ignore[attr-defined]
            pane.work_finished("Rollout finished" if report.complete else "Rollout finished with problems")
        failed = [p for p in report.servers.values() if str(p.phase) in ("failed", "skipped")]
        if failed:
            problem = "; ".join(f"{p.server}: {p.reason}" for p in failed)
            fix = " ".join(p.fix for p in failed if p.fix)
            self.show_error(f"The rollout did not reach every server. {problem}", fix, title="Rollout problems")

    def refresh_findings(self, only: list[str] | None = None) -> None:
        """Findings changed: the checklist and every open pane redraw."""
        self.query_one(Checklist).update_findings(self.session.findings, only=only)
        for pane in self.query(StepPane):
            pane.refresh_from_session()

    # --- worker results and errors: one place ------------------------------------------------------------
    def on_work_progress(self, message: WorkProgress) -> None:
        pane = self.pane(message.step_id)
        if pane is not None:
            pane.show_progress(message.what, message.done, message.total)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.SUCCESS:
            finish = getattr(self, f"_finish_{(worker.name or '').replace('-', '_')}", None)
            if finish is not None:
                finish(worker.result)
        elif event.state == WorkerState.CANCELLED:
            self.log_line(f"{worker.description or worker.name}: cancelled")
        elif event.state == WorkerState.ERROR:
            self._worker_failed(worker, worker.error)

    def _worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        what = worker.description or worker.name or "Work"
        pane = self.pane(self._step_of_group(worker.group))
        if pane is not None:
            pane.work_finished(f"{what}: stopped")
        if isinstance(error, Cancelled):
            self.log_line(f"{what}: {error.problem}")
            self.notify(error.problem, title=what, markup=False)
            return
        if isinstance(error, WizardError):
            self.show_error(error.problem, error.fix, detail=error.detail, title=f"{what} failed",
                            step_id=getattr(error, "step", None))
            return
        detail = "".join(traceback.format_exception(error)) if error else None
        self.show_error(f"{what} stopped: {type(error).__name__}: {error}",
                        "This is a bug in the wizard. The detail below and the log pane (ctrl+l) show where.",
                        detail=detail, title=f"{what} failed")

    def _step_of_group(self, group: str) -> str:
        if group == "changes":
            return self._applying_step
        return group if group in STEP_IDS else "target"


def run_lab(scenario_name: str, dry_run: bool = False) -> int:
    """Open the lab on `scenario_name`, run the wizard on it, close the lab."""
    session = WizardSession(dry_run=dry_run, scenario_name=scenario_name)
    try:
        # the lab opens in a worker once the first screen is painted; discovery follows it
        app = AsaWizardApp(session, start_step="discovery", open_lab=scenario_name)
        result = app.run()
    finally:
        session.close()
    return int(result or 0)
