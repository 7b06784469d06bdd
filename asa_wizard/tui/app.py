"""The wizard's frame: the target bar, the checklist, the current step, the detail pane, the log and the footer.

The app is the frame, the navigation, the log and the one error handler. Each step's pane owns its work (it
starts its worker and shows its results) and tells the frame what the frame owns with the typed messages of
`tui/messages.py`. After any change the checklist is recomputed from the session (`WizardSession.step_statuses`),
never remembered.
"""

from __future__ import annotations

import importlib
import traceback
from datetime import datetime
from typing import Any, Callable, Iterable

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, OptionList, RichLog
from textual.worker import WorkerState

from ..core.errors import Cancelled, WizardError
from ..core.steps import STEP_IDS, step
from ..resources import assets_dir
from .detail import DetailPane
from .messages import AskCredentials, Goto, LogLine, ShowDetail, ShowProblem, StateChanged, WorkFailed
from .session import WizardSession
from .steps.base import StepPane, guidance
from .widgets import Checklist, TargetBar


def pane_class(step_id: str) -> type[StepPane]:
    """The pane of a step, as the step registry names it, imported when first needed (fast start-up)."""
    module, _, name = step(step_id).pane.rpartition(".")
    return getattr(importlib.import_module(f"asa_wizard.tui.steps.{module}"), name)


class AsaWizardApp(App[int]):
    CSS_PATH = str(assets_dir() / "app.tcss")
    TITLE = "ASA wizard"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", show=False),  # the step's Next / Back buttons name them
        Binding("ctrl+b", "back", "Back", show=False),
        Binding("r", "run", "Run"),
        Binding("a", "apply", "Apply"),
        Binding("c", "copy", "Copy cmds"),
        Binding("o,space", "press_focused", "Press", show=False),
        Binding("d", "detail", "Detail"),
        Binding("x", "cancel_work", "Cancel"),
        Binding("ctrl+t", "toggle_dry_run", "Dry-run"),
        Binding("ctrl+l", "toggle_log", "Log"),
        Binding("ctrl+w", "toggle_checklist", "Checklist"),
        Binding("g", "toggle_guidance", "Guide"),
        Binding("h", "hint", "Hint"),  # shown only while the lab scenario's exercise runs
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
        from ..adapters.secrets import KeyringSecretStore

        self._secret_store_factory = KeyringSecretStore
        self._secret_store: Any = None
        self.answers_path: Any = None

    # --- layout --------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        from ..core.checks import CHECKS

        yield TargetBar(id="target-bar")
        from .exercise import ExercisePanel  # hidden unless the lab scenario has an exercise

        yield ExercisePanel(id="exercise")
        with Horizontal(id="main"):
            yield Checklist({cid: c.title for cid, c in CHECKS.items()}, id="checklist")
            yield ContentSwitcher(id="steps")
            yield DetailPane(id="detail")
        yield RichLog(id="log", markup=False, wrap=True, highlight=False, max_lines=2000)
        yield Footer()

    async def on_mount(self) -> None:
        # On a small terminal the step's controls come first; the guidance is one key (g) away.
        self.show_guidance = self.size.height >= 32
        self._show_target_bar()
        self.log_line("Wizard started" + (" in dry-run mode" if self.session.dry_run else ""))
        if self.session.target is not None:
            self.log_line(f"Target: {self.session.target.label}")
        self.refresh_state()
        # The frame (target bar, checklist, footer) is painted first; the step follows right after it.
        self.call_after_refresh(self._first_step)

    async def _first_step(self) -> None:
        await self.show_step(self.start_step)
        if self.open_lab_after_paint:
            pane = self.current_pane
            if pane is not None:
                pane.open_lab(self.open_lab_after_paint, lambda _: self._after_open())
        elif self.session.target is not None:
            self.offer_resume()

    def _after_open(self) -> None:
        if self.session.restored:
            self.log_line(f"Lab: the {self.session.restored} change(s) this lab's journals recorded were made again "
                          "(the lab was opened again, as after a page reload)")
        pane = self.current_pane
        if pane is not None:
            pane.on_shown()
        self.offer_resume()

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
            pane = pane_class(step_id)(self.session, show_guidance=self.show_guidance)
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
            if parts[0] == "check":
                self.show_check_detail(parts[2])

    # --- messages from the panes ----------------------------------------------------------------------
    def on_log_line(self, message: LogLine) -> None:
        self.log_line(message.text)

    def on_show_problem(self, message: ShowProblem) -> None:
        self.show_error(message.problem, message.fix, detail=message.detail, step_id=message.step_id,
                        title=message.title)

    def on_goto(self, message: Goto) -> None:
        if message.check_id:
            self.goto_check(message.check_id)
        elif message.step_id:
            self.goto(message.step_id)

    def on_state_changed(self, message: StateChanged) -> None:
        if message.target:
            self._show_target_bar()
        self.refresh_state()
        panel = self.exercise_panel
        if panel is not None:
            panel.session_changed()

    @property
    def exercise_panel(self) -> Any:
        from .exercise import ExercisePanel

        try:
            return self.query_one("#exercise", ExercisePanel)
        except Exception:
            return None

    def on_ask_credentials(self, message: AskCredentials) -> None:
        self.ask_credentials(message.key, message.user, then=message.then)

    def on_show_detail(self, message: ShowDetail) -> None:
        self.query_one(DetailPane).show(message.title, message.sections, copy_text=message.copy_text)

    def on_work_failed(self, message: WorkFailed) -> None:
        """The one error handler: every pane's failed work ends here."""
        what, error = message.what, message.error
        if error is None:
            self.log_line(f"{what}: cancelled")
            return
        if isinstance(error, Cancelled):
            self.log_line(f"{what}: {error.problem}")
            self.notify(error.problem, title=what, markup=False)
            self.refresh_state()
            return
        if isinstance(error, WizardError):
            self.show_error(error.problem, error.fix, detail=error.detail, title=f"{what} failed",
                            step_id=getattr(error, "step", None))
            return
        detail = "".join(traceback.format_exception(error))
        self.show_error(f"{what} stopped: {type(error).__name__}: {error}",
                        "This is a bug in the wizard. The detail below and the log pane (ctrl+l) show where.",
                        detail=detail, title=f"{what} failed")

    def refresh_state(self) -> None:
        """Everything on screen follows from the session: the checklist's statuses and every open pane."""
        checklist = self.query_one(Checklist)
        checklist.show(self.session.findings, self.session.step_statuses())
        for pane in self.query(StepPane):
            pane.refresh_from_session()
        self.refresh_bindings()

    # --- actions forwarded to the current pane ---------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("run", "apply", "copy"):
            pane = self.current_pane
            return bool(pane is not None and action in pane.SUPPORTS)
        if action == "hint":  # only while an exercise runs
            panel = self.exercise_panel
            return bool(panel is not None and panel.tracker is not None)
        if action == "cancel_work":  # shown while the step's work runs
            pane = self.current_pane
            return bool(pane is not None and pane.working)
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

    def action_press_focused(self) -> None:
        """o / Space act on what has the focus: press the button, tick the checkbox, open the table row."""
        from textual.widgets import Button, Checkbox, DataTable

        focused = self.focused
        if isinstance(focused, Button):
            focused.press()
        elif isinstance(focused, Checkbox):
            focused.toggle()
        elif isinstance(focused, DataTable):
            focused.action_select_cursor()

    def action_detail(self) -> None:
        """d: the detail of what is selected (a finding, a server, a change), or close the detail pane."""
        detail = self.query_one(DetailPane)
        if detail.display:
            detail.close()
            return
        pane = self.current_pane
        if pane is not None:
            pane.show_detail_of_selection()

    def show_check_detail(self, check_id: str) -> None:
        from .detail import finding_sections

        findings = [f for f in self.session.findings if f.check_id == check_id]
        if findings:
            title, sections, copy_text = finding_sections(findings)
            self.query_one(DetailPane).show(title, sections, copy_text=copy_text)

    def action_cancel_work(self) -> None:
        pane = self.current_pane
        if pane is not None and pane.cancel_work():
            self.log_line(f"Cancel requested: {pane.work_group} stops at the next safe point")

    def is_working(self, group: str) -> bool:
        return any(w.group == group and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers)

    def run_discovery(self) -> None:
        pane = self.current_pane or self.pane("discovery")
        if pane is not None:
            pane.start_discovery()

    def action_toggle_dry_run(self) -> None:
        self.session.dry_run = not self.session.dry_run
        self._show_target_bar()
        self.log_line("Dry-run " + ("on: changes are previewed, never applied" if self.session.dry_run else "off"))
        self.notify("Dry-run is ON: nothing will be changed." if self.session.dry_run else "Dry-run is off.",
                    markup=False)
        pane = self.current_pane
        if pane is not None:
            pane.refresh_from_session()

    def action_hint(self) -> None:
        """h: the exercise's next hint (each one costs points)."""
        panel = self.exercise_panel
        if panel is not None:
            panel.reveal_hint()

    def action_toggle_log(self) -> None:
        self.query_one("#log", RichLog).toggle_class("shown")

    def action_toggle_checklist(self) -> None:
        """ctrl+w: the checklist narrow, wide (labels in full), or hidden (the step gets the width)."""
        self.query_one(Checklist).widen()

    def action_toggle_guidance(self) -> None:
        self.show_guidance = not self.show_guidance
        for pane in self.query(StepPane):
            pane.set_guidance(self.show_guidance)

    def action_help(self) -> None:
        from .modals import HelpModal

        keys = [(b.key_display or b.key, b.description) for b in self.BINDINGS if isinstance(b, Binding)
                and self.check_action(b.action.split("(")[0], ()) is not False]
        keys.append(("ctrl+p", "Command palette: go to any step, run any action"))
        self.push_screen(HelpModal(step(self.current_step).title, self.organisation_text(guidance(self.current_step)),
                                   keys))

    def organisation_text(self, text: str) -> str:
        """Guidance speaks of contoso.com; with a target open, the organisation's own names are shown instead."""
        from .guidance import with_names

        return with_names(text, self.session.env)

    async def action_quit(self) -> None:
        running = [w for w in self.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   and w.group != "navigate"]
        if not running:
            self.exit(0)
            return
        from .modals import ConfirmModal

        def answered(yes: bool | None) -> None:
            if yes:
                for pane in self.query(StepPane):
                    pane.cancel_work()
                self.exit(0)

        lines = [f"{w.description or w.name} is still running." for w in running]
        lines.append("Quitting cancels it; a change in progress is left in the journal so it can be resumed.")
        self.push_screen(ConfirmModal("Work is still running. Quit anyway?", lines, confirm="Quit", danger=True),
                         answered)

    # --- resume on start ----------------------------------------------------------------------------------
    def offer_resume(self) -> None:
        """An unfinished run of this target (an earlier session's, or `asa-wizard apply`'s): offer to finish it."""
        path = self.session.unfinished_run()
        if path is None or self.session.dry_run:
            return
        from ..service.operations import ROLL_AGAIN, remaining, rolls_again
        from .modals import ConfirmModal
        from .steps.changes import change_lines

        left = remaining(path)
        first = left[0].step if left else "rollout"

        def answered(yes: bool | None) -> None:
            if not yes:
                self.log_line(f"Unfinished run left as it is: {path}")
                return

            async def go() -> None:
                await self.show_step(first)
                pane = self.current_pane
                if pane is not None and hasattr(pane, "start_resume"):
                    # a restored lab is already where the run left it: its done changes are not made twice
                    pane.start_resume(path, replay=not self.session.restore)

            self.run_worker(go(), group="navigate", exclusive=True)

        lines = change_lines(left) + ([ROLL_AGAIN] if rolls_again(path) else []) + [f"Journal: {path}"]
        self.push_screen(ConfirmModal(f"An unfinished run of this target was found: finish its {len(left)} "
                                      "change(s)?", lines, confirm="Resume"), answered)

    # --- command palette -------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from .commands import wizard_commands

        yield from super().get_system_commands(screen)
        yield from wizard_commands(self)

    # --- messages to the user --------------------------------------------------------------------------
    def log_line(self, text: str) -> None:
        """Write to the log pane, literally (outside text is never parsed as markup; control characters are
        shown escaped)."""
        from ..core.text import terminal_safe

        stamp = datetime.now().strftime("%H:%M:%S")
        self.query_one("#log", RichLog).write(Text(f"{stamp}  {terminal_safe(text)}"))

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

    # --- credentials ---------------------------------------------------------------------------------------
    def secret_store(self) -> Any:
        if self._secret_store is None:
            self._secret_store = self._secret_store_factory()
        return self._secret_store

    def ask_credentials(self, key: str, user: str = "", then: Callable[[], None] | None = None) -> None:
        """Ask in a modal; offer the keyring (named) or say why the password stays in memory. `key` names the
        secret (`service.credential_key`, as the headless commands look it up); `then` runs once it is kept."""
        from .credentials import ask_credentials

        ask_credentials(self, key, user, then)

    def set_insecure_tls(self, insecure: bool) -> None:
        if self.session.target is not None:
            self.session.target.insecure_tls = insecure
        self._show_target_bar()

    # --- files -----------------------------------------------------------------------------------------------
    def save_answers(self, path: str | None = None) -> None:
        """Save every choice of this session as an answers file (no password is ever in it), so a consultant
        can put the same plan through change control and apply it with `asa-wizard apply`."""
        from pathlib import Path

        from ..core.answers import save_answers

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
        panel = self.exercise_panel
        if panel is not None:
            panel.lab_reset()  # changes thrown away count as undone in an exercise
        target.lab.reset()
        from ..service.operations import mark_lab_reset

        mark_lab_reset()  # a later reopening (a page reload) leaves the runs before this reset out
        self.log_line("Lab reset to the scenario file")
        self.notify("The lab was reset to the scenario.", markup=False)
        self.run_discovery()


def run_lab(scenario_name: str, dry_run: bool = False, restore: bool = False) -> int:
    """Open the lab on `scenario_name`, run the wizard on it, close the lab. `restore`: make again the changes this
    data folder's journals recorded on the same scenario (`service.operations.restore_lab`)."""
    session = WizardSession(dry_run=dry_run, scenario_name=scenario_name, restore=restore)
    try:
        # the lab opens in a worker once the first screen is painted; discovery follows it
        app = AsaWizardApp(session, start_step="discovery", open_lab=scenario_name)
        result = app.run()
    finally:
        session.close()
    return int(result or 0)
