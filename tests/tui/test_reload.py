"""The wizard as the classroom starts it after a page reload (`asa-wizard lab --scenario fresh --restore`): the lab
is where the student's journals left it, and the log says so (tests/classroom/test_restore.py has the rules)."""

from __future__ import annotations

from pathlib import Path

from asa_wizard.cli import main
from asa_wizard.tui.app import AsaWizardApp
from asa_wizard.tui.session import WizardSession

from .kit import press, settle, table_rows

ANSWERS = Path(__file__).parents[1] / "golden" / "answers-fresh.toml"


async def test_the_reloaded_page_says_what_it_made_again_and_shows_the_servers_as_left(tmp_path, monkeypatch):
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["apply", "--answers", str(ANSWERS), "--yes"]) == 0  # the page before the reload
    session = WizardSession(scenario_name="fresh", restore=True)
    app = AsaWizardApp(session, start_step="discovery", open_lab="fresh")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot, rounds=5)
            await press(app, pilot, "ctrl+l")  # open the log pane
            log = "".join("".join(strip.text.split()) for strip in app.query_one("#log").lines)
            assert "Lab:the10change(s)thislab'sjournalsrecordedweremadeagain" in log
            servers = table_rows(app, "#servers-table")
            assert {r[0] for r in servers} == {"EX01", "EX02"}
            assert all(any("EXASA$" in cell for cell in r) for r in servers), servers
    finally:
        session.close()


async def test_nothing_reads_the_lab_while_its_runs_are_made_again(tmp_path, monkeypatch):
    """Making the runs again takes time (a slow machine, many runs): the wizard must not show, nor keep, what it
    read of the lab half-way (the servers without the credential the run pushed)."""
    import time

    from asa_wizard.service import operations

    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["apply", "--answers", str(ANSWERS), "--yes"]) == 0
    replay = operations._replay

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return replay(*args, **kwargs)

    monkeypatch.setattr(operations, "_replay", slow)
    session = WizardSession(scenario_name="fresh", restore=True)
    app = AsaWizardApp(session, start_step="discovery", open_lab="fresh")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot, rounds=5)
            servers = table_rows(app, "#servers-table")
            assert {r[0] for r in servers} == {"EX01", "EX02"}
            assert all(any("EXASA$" in cell for cell in r) for r in servers), servers
    finally:
        session.close()
