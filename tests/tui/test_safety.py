"""Outside text is shown literally, secrets stay secret, and running work is never dropped silently."""

from __future__ import annotations

from textual.widgets import Input, RichLog, Static

from asa_wizard.core.errors import ConnectionFailed
from asa_wizard.tui.app import AsaWizardApp
from asa_wizard.tui.modals import ConfirmModal, CredentialModal, ErrorModal

from .kit import press, settle

NASTY_PROBLEM = "Bind refused for CN=[/b]Evil,OU=[red]x[/red],DC=contoso,DC=com"
NASTY_FIX = r"Check the CA file C:\[test]\ca.pem and try again [/]"


def log_text(app: AsaWizardApp) -> str:
    """What the log pane shows, whitespace removed (the pane wraps long lines)."""
    return "".join("".join(strip.text.split()) for strip in app.query_one("#log", RichLog).lines)


def squeeze(text: str) -> str:
    return "".join(text.split())


async def test_an_error_with_markup_characters_is_shown_literally(lab_session, monkeypatch):
    session = lab_session("new-server-missing-asa")

    def failing_discover(progress=None, cancel=None):
        raise ConnectionFailed(NASTY_PROBLEM, NASTY_FIX)

    monkeypatch.setattr(session, "discover", failing_discover)
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ErrorModal)
        shown_problem = str(app.screen.query_one("#error-problem", Static).render())
        shown_fix = str(app.screen.query_one("#error-fix", Static).render())
        assert shown_problem == NASTY_PROBLEM
        assert shown_fix == NASTY_FIX
        await press(app, pilot, "escape")
        assert not isinstance(app.screen, ErrorModal)
        await press(app, pilot, "ctrl+l")  # open the log pane
        assert squeeze(NASTY_PROBLEM) in log_text(app) and squeeze(NASTY_FIX) in log_text(app)


async def test_the_password_is_never_echoed_nor_logged(lab_session):
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="target")
    password = "Sup3r-Secret-[/b]-Pw"
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.ask_credentials("ldap:CONTOSO\\admin@dc1.contoso.com", "CONTOSO\\admin")
        await settle(app, pilot)
        assert isinstance(app.screen, CredentialModal)
        assert "null" in app.screen.store_refused or "memory" in app.screen.store_refused
        app.screen.query_one("#cred-password", Input).focus()
        for ch in password:
            await pilot.press(ch)
        await pilot.pause()
        assert password not in app.export_screenshot()
        await press(app, pilot, "enter")
        assert not isinstance(app.screen, CredentialModal)
        store = app.secret_store()
        assert store.get("ldap:CONTOSO\\admin@dc1.contoso.com").reveal() == password
        await press(app, pilot, "ctrl+l")
        assert squeeze("Credentials for CONTOSO\\admin") in log_text(app)
        assert password not in log_text(app)


async def test_quitting_with_work_running_asks_first(lab_session, tmp_path):
    from .test_journeys import scenario_with_fault

    session = lab_session(scenario_with_fault(tmp_path, "new-server-missing-asa", "Exch-2019", "slow",
                                              "slow_seconds = 2\n"))
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(500):  # discovery starts once the step is on screen (after the first frames)
            if app.is_working("discovery"):
                break
            await pilot.pause()
        assert app.is_working("discovery")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        assert any("Discovery" in line for line in app.screen.lines)
        await pilot.press("n")  # stay
        await settle(app, pilot)
        assert app.is_running and not isinstance(app.screen, ConfirmModal)
        assert session.env is not None and len(session.env.servers) == 2


async def test_a_real_domain_asks_for_the_password_then_explains_a_refused_connection(lab_session):
    from textual.widgets import Select, TabbedContent

    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="target")
    password = "Real-Dc-Pw-42"
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.query_one("#target-tabs", TabbedContent).active = "tab-real"
        app.query_one("#real-dc", Input).value = "localhost"
        app.query_one("#real-user", Input).value = "CONTOSO\\admin"
        app.query_one("#real-bind", Select).value = "simple"
        app.query_one("#real-winrm-transport", Select).value = "ntlm"
        app.query_one("#connection-results").focus()
        await press(app, pilot, "r")
        assert isinstance(app.screen, CredentialModal)
        app.screen.query_one("#cred-password", Input).focus()
        for ch in password:
            await pilot.press(ch)
        await press(app, pilot, "enter")
        await settle(app, pilot, )
        assert isinstance(app.screen, ErrorModal), type(app.screen).__name__
        assert "localhost" in app.screen.problem
        assert app.screen.fix
        assert password not in app.screen.problem + app.screen.fix + (app.screen.detail or "")
        assert session.target is not None and session.target.label == "localhost"
