"""Keyboard first: Back/Next, help, copying the manual commands, the command palette, going to the step that
fixes a failure."""

from __future__ import annotations

from textual.command import CommandPalette
from textual.widgets import DataTable

from asa_wizard.tui.app import AsaWizardApp
from asa_wizard.tui.modals import HelpModal

from .kit import press, settle


async def test_next_back_and_help(lab_session):
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="target")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "ctrl+n")
        assert app.current_step == "discovery"
        await press(app, pilot, "ctrl+b")
        assert app.current_step == "target"
        await press(app, pilot, "question_mark")
        assert isinstance(app.screen, HelpModal)
        assert "Test-WSMan" in app.screen.markdown  # the manual commands are in the help
        assert ("ctrl+n", "Next") in [(k, d) for k, d in app.screen.keys] or any(d == "Next" for _, d in
                                                                               app.screen.keys)
        await press(app, pilot, "escape")
        assert not isinstance(app.screen, HelpModal)


async def test_copy_puts_the_manual_commands_on_the_clipboard(lab_session):
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="rollout")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "c")
        assert "Set-ClientAccessService -Identity 'exch-2019.tailspintoys.ca' -RemoveAlternateServiceAccountCredentials" \
               " -AlternateServiceAccountCredential $c" in app.clipboard
        assert "(Get-ClientAccessService 'exch-2016.tailspintoys.ca' -IncludeAlternateServiceAccountCredentialPassword)" \
               in app.clipboard


async def test_a_failure_leads_to_the_step_that_fixes_it(lab_session):
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#findings-table", DataTable)
        table.focus()
        titles = [str(table.get_row_at(i)[1].plain) for i in range(table.row_count)]
        row = titles.index("Every server holds the ASA credential")
        assert str(table.get_row_at(row)[0].plain) == "✖ FAIL"
        table.move_cursor(row=row)
        await press(app, pilot, "enter")
        assert app.current_step == "rollout"


async def test_the_command_palette_offers_every_step(lab_session):
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="target")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        for ch in "verify":
            await pilot.press(ch)
        await pilot.pause(0.3)
        await press(app, pilot, "enter")
        assert app.current_step == "verify"


async def test_the_session_answers_can_be_saved_and_planned_headless(lab_session, tmp_path):
    from asa_wizard.core.answers import load_answers
    from asa_wizard.core.plan import build_plan

    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        out = tmp_path / "answers.toml"
        app.save_answers(str(out))
        await settle(app, pilot)
        saved = load_answers(out)
        assert saved.target.lab == "new-server-missing-asa"
        assert saved.asa.name == "E15ASA$"
        # the saved answers give the plan the wizard would apply: copy the credential to Exch-2019 only
        plan = build_plan(session.env, saved)
        ids = [c.id for c in plan.changes]
        assert any("Exch-2019" in i for i in ids), ids
        assert not any("Exch-2016" in i for i in ids), ids
        text = out.read_text()
        assert "Tailspin-Lab-2022!" not in text  # the lab's admin password
