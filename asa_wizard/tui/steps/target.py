"""Step 1: what the wizard works on. The embedded lab (a scenario) or a real domain.

The real-domain form has one field per target option of `service/options.py` (the same options as the
headless commands' flags and the answers file's [target]): a new option there is a new field here.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import (Button, Checkbox, DataTable, Input, Label, Select, Static, TabbedContent,
                             TabPane)

from ...service.options import OPTIONS, Option, answers_from_fields
from ..messages import AskCredentials
from ..widgets import TickBox
from .base import StepPane

SECTION_TITLES = {"directory": "Domain controller", "exchange": "Exchange servers (WinRM)",
                  "accounts": "Accounts the checks look at"}
CHOICE_WORDS = {
    "ldaps": "LDAPS (636)", "starttls": "StartTLS (389)",
    "simple": "User and password", "kerberos": "Kerberos (current ticket)", "ntlm": "NTLM",
    "credssp": "CredSSP", "https": "HTTPS", "http": "HTTP (message encryption on)",
}
DEFAULTS = {"target.bind": "kerberos", "target.ldap": "ldaps", "target.winrm.transport": "kerberos",
            "target.winrm.scheme": "https"}


def field_id(option: Option) -> str:
    return "real-" + option.flag.lstrip("-")


class TargetPane(StepPane):
    STEP_ID = "target"
    SUPPORTS = frozenset({"run"})
    WORK_GROUP = "target"

    def compose_controls(self) -> ComposeResult:
        from ...lab.scenario import list_scenarios

        scenarios = list_scenarios()
        self._scenarios = {s.name: s for s in scenarios}
        current = self.session.scenario_name
        with TabbedContent(initial="tab-lab", id="target-tabs"):
            with TabPane("Training lab", id="tab-lab"):
                yield Label("Scenario", classes="field-label")
                yield Select([(Content(s.name), s.name) for s in scenarios], value=current if current in self._scenarios
                             else Select.NULL, allow_blank=current not in self._scenarios, id="scenario-select")
                yield Static("", id="scenario-briefing", markup=False)
                with Horizontal(classes="buttons"):
                    yield Button("Open this scenario", id="open-scenario")
                    yield Button("Test connections (r)", id="test-connections", variant="primary")
            with TabPane("Real domain", id="tab-real"):
                with Vertical(classes="form"):
                    section = None
                    for option in OPTIONS:
                        if option.section != section:
                            section = option.section
                            yield Label(SECTION_TITLES[section], classes="section-title")
                        yield from self._field(option)
                    with Horizontal(classes="buttons"):
                        yield Button("Credentials…", id="real-credentials")
                        yield Button("Connect and test (r)", id="real-test", variant="primary")
        yield Label("Connection test", classes="section-title")
        yield from self.compose_progress()
        yield DataTable(id="connection-results", cursor_type="row", zebra_stripes=True)

    def _field(self, option: Option) -> ComposeResult:
        if option.kind == "bool":
            yield TickBox(option.label, id=field_id(option))
            return
        yield Label(option.label, classes="field-label")
        if option.kind == "choice":
            yield Select([(CHOICE_WORDS.get(c, c), c) for c in option.choices],
                         value=DEFAULTS.get(option.path, option.choices[0]), allow_blank=False, id=field_id(option))
        else:
            yield Input(placeholder=option.placeholder, id=field_id(option))

    def on_mount(self) -> None:
        table = self.query_one("#connection-results", DataTable)
        table.add_columns("Part", "Result")
        self._show_briefing()

    def _selected(self) -> str | None:
        value = self.query_one("#scenario-select", Select).value
        return value if isinstance(value, str) else None

    def _show_briefing(self) -> None:
        name = self._selected()
        s = self._scenarios.get(name) if name else None
        text = f"{s.title}\n\n{s.briefing.strip()}" if s else "Choose a scenario."
        self.query_one("#scenario-briefing", Static).update(Text(text))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "scenario-select":
            self._show_briefing()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button == "open-scenario":
            event.stop()
            self.do_open()
        elif button in ("test-connections", "real-test"):
            event.stop()
            self.do_run()
        elif button == "real-credentials":
            event.stop()
            answers = self._real_answers()
            if answers is not None:
                key, user = self._password_key(answers)
                self.post_message(AskCredentials(key, user))

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id in ("real-insecure-skip-tls-verify", "real-winrm-insecure-skip-tls-verify"):
            self.state_changed(target=True)

    # --- the form -------------------------------------------------------------------------------------
    def field_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for option in OPTIONS:
            widget = self.query_one(f"#{field_id(option)}")
            values[option.path] = widget.value if not isinstance(widget, Select) else str(widget.value)
        return values

    def _real_answers(self) -> Any:
        from ...core.errors import WizardError

        try:
            return answers_from_fields(self.field_values(), self.session.answers)
        except WizardError as exc:
            self.problem(exc.problem, exc.fix, title="The form is not complete")
            return None

    @staticmethod
    def _password_key(answers: Any) -> tuple[str, str]:
        from ...service import credential_key

        t = answers.target
        if t.bind != "kerberos":
            return credential_key("ldap", t.user or "", t.dc or ""), t.user or ""
        user = t.winrm.user or t.user or ""
        return credential_key("winrm", user, t.dc or ""), user

    # --- actions --------------------------------------------------------------------------------------
    def do_open(self) -> None:
        name = self._selected()
        if name:
            self.open_scenario(name)

    def do_run(self) -> None:
        """Test the connections of the open target (opening the chosen scenario first if it changed)."""
        tabs = self.query_one("#target-tabs", TabbedContent)
        if tabs.active == "tab-real":
            answers = self._real_answers()
            if answers is not None:
                self.connect_real(answers)
            return
        name = self._selected()
        if name and name != self.session.scenario_name:
            self.open_scenario(name, then=self.test_connections)
        else:
            self.test_connections()

    def open_scenario(self, name: str, then: Callable[[], None] | None = None) -> None:
        self.open_lab(name, (lambda _: then()) if then is not None else None)

    def test_connections(self) -> None:
        session = self.session

        def work(progress: Any, cancel: Any) -> Any:
            progress("Testing the connections", 0, 0)
            return session.test_connections()

        self.start_work(work, self._tested, name="test-connections", description="Testing the connections")

    def _tested(self, rows: list[tuple[str, str]]) -> None:
        self.show_results(rows)
        self.work_finished("All connections answered")
        self.log_line("Connections tested: " + "; ".join(f"{a}: {b}" for a, b in rows))
        self.state_changed(target=True)
        if self.session.env is None:
            self.start_discovery()

    def connect_real(self, answers: Any) -> None:
        """Connect with the form's answers; a missing password is asked for, then it connects again."""
        from ...service import NeedsPassword

        session = self.session
        store = self.app.secret_store()

        def work(progress: Any, cancel: Any) -> Any:
            progress(f"Connecting to {answers.target.dc}", 0, 0)
            try:
                session.open_real(answers, secrets=store)
            except NeedsPassword as exc:
                return exc
            return session.test_connections()

        def done(outcome: Any) -> None:
            if isinstance(outcome, NeedsPassword):
                self.post_message(AskCredentials(outcome.key, outcome.user, then=lambda: self.connect_real(answers)))
                return
            self.log_line(f"Target: {session.target.label}")
            self._tested(outcome)

        self.start_work(work, done, name="connect-real", description="Connecting to the domain")

    def show_results(self, rows: list[tuple[str, str]]) -> None:
        table = self.query_one("#connection-results", DataTable)
        table.clear()
        for part, result in rows:
            table.add_row(Text(part), Text(result))
