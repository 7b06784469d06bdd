"""Step 1: what the wizard works on. The embedded lab (a scenario) or a real domain (DC, bind, WinRM)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import (Button, Checkbox, DataTable, Input, Label, Select, Static, TabbedContent,
                             TabPane)

from ..session import RealTargetForm
from .base import StepPane
from ..widgets import TickBox

BIND_METHODS = [
    ("LDAPS (636), Kerberos (current ticket)", "ldaps-kerberos"),
    ("LDAPS (636), user and password", "ldaps-simple"),
    ("LDAPS (636), NTLM", "ldaps-ntlm"),
    ("StartTLS (389), Kerberos", "starttls-kerberos"),
    ("StartTLS (389), user and password", "starttls-simple"),
]
WINRM_TRANSPORTS = [("Kerberos (HTTPS 5986)", "kerberos"), ("NTLM (HTTPS 5986)", "ntlm"),
                    ("CredSSP (HTTPS 5986)", "credssp")]


class TargetPane(StepPane):
    STEP_ID = "target"
    SUPPORTS = frozenset({"run"})
    WORK_GROUP = "target"

    def compose_controls(self) -> ComposeResult:
        from ...lab.scenario import list_scenarios

        scenarios = list_scenarios()
        self._scenarios = {s.name: s for s in scenarios}
        current = self.wizard.session.scenario_name
        with TabbedContent(initial="tab-lab", id="target-tabs"):
            with TabPane("Training lab", id="tab-lab"):
                yield Label("Scenario", classes="field-label")
                yield Select([(Content(s.name), s.name) for s in scenarios], value=current if current in self._scenarios
                             else Select.NULL, allow_blank=current not in self._scenarios, id="scenario-select")
                yield Static("", id="scenario-briefing", markup=False)
                with Horizontal(classes="buttons"):
                    yield Button("Open this scenario (o)", id="open-scenario")
                    yield Button("Test connections (r)", id="test-connections", variant="primary")
            with TabPane("Real domain", id="tab-real"):
                with Vertical(classes="form"):
                    yield Label("Domain controller (FQDN)", classes="field-label")
                    yield Input(placeholder="dc1.contoso.com", id="real-dc")
                    yield Label("Bind method", classes="field-label")
                    yield Select(BIND_METHODS, value="ldaps-kerberos", allow_blank=False, id="real-bind")
                    yield Label("User", classes="field-label")
                    yield Input(placeholder="CONTOSO\\admin", id="real-user")
                    yield Label("WinRM transport to the Exchange servers", classes="field-label")
                    yield Select(WINRM_TRANSPORTS, value="kerberos", allow_blank=False, id="real-winrm")
                    yield TickBox("Skip TLS certificate validation (not recommended; shown in red)",
                                   id="real-insecure")
                    with Horizontal(classes="buttons"):
                        yield Button("Credentials…", id="real-credentials")
                        yield Button("Test connections (r)", id="real-test", variant="primary")
        yield Label("Connection test", classes="section-title")
        yield from self.compose_progress()
        yield DataTable(id="connection-results", cursor_type="row", zebra_stripes=True)

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
            form = self.real_form()
            self.wizard.ask_credentials(form.secret_key, form.user)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "real-insecure":
            self.wizard.set_insecure_tls(event.value)

    def do_open(self) -> None:
        name = self._selected()
        if name:
            self.wizard.open_scenario(name)

    def do_run(self) -> None:
        """Test the connections of the open target (opening the chosen scenario first if it changed)."""
        tabs = self.query_one("#target-tabs", TabbedContent)
        if tabs.active == "tab-real":
            form = self.real_form()
            if not form.dc or not form.user and form.needs_password:
                self.wizard.show_error("The domain controller and the user are needed.",
                                       "Fill in both, then test the connections again.")
                return
            self.wizard.connect_real(form)
            return
        name = self._selected()
        if name and name != self.wizard.session.scenario_name:
            self.wizard.open_scenario(name, then_test=True)
        else:
            self.wizard.test_connections()

    def real_form(self) -> RealTargetForm:
        mode, bind = str(self.query_one("#real-bind", Select).value).split("-", 1)
        return RealTargetForm(dc=self.query_one("#real-dc", Input).value.strip(), ldap_mode=mode, bind=bind,
                              user=self.query_one("#real-user", Input).value.strip(),
                              winrm=str(self.query_one("#real-winrm", Select).value),
                              insecure_tls=self.query_one("#real-insecure", TickBox).value)

    def show_results(self, rows: list[tuple[str, str]]) -> None:
        table = self.query_one("#connection-results", DataTable)
        table.clear()
        for part, result in rows:
            table.add_row(Text(part), Text(result))
