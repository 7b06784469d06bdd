"""The wizard always tells the truth: after an apply, a cancel, a resume or a Verify, what the checklist and the
steps show follows from what the lab really holds (LabWorld.truth()), never from what the wizard remembered.
And a journal the wizard wrote is resumed by `asa-wizard resume` and by the wizard on its next start."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from asa_wizard.core.journal import read_events, summarize
from asa_wizard.lab.scenario import find_scenario
from asa_wizard.tui.app import AsaWizardApp
from asa_wizard.tui.detail import DetailPane
from asa_wizard.tui.modals import ConfirmModal, ErrorModal
from asa_wizard.tui.widgets import Checklist

from .kit import goto, press, settle, table_rows
from .test_journeys import apply_step, held, scenario_with_fault


def step_badges(app: AsaWizardApp) -> dict[str, str | None]:
    """The status the checklist shows for each step."""
    return dict(app.query_one(Checklist).step_statuses)


def step_line(app: AsaWizardApp, step_id: str) -> str:
    checklist = app.query_one(Checklist)
    for i in range(checklist.option_count):
        option = checklist.get_option_at_index(i)
        if option.id == f"step:{step_id}":
            return str(option.prompt)
    raise AssertionError(step_id)


async def test_statuses_after_the_copy_and_after_a_passing_verify(lab_session):
    """new-server-missing-asa: after the copy the SPNs step is not failing while it says there is nothing to
    change; Target is done once connected; after a fully passing Verify, Verify shows pass (not todo)."""
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert step_badges(app)["target"] == "pass"  # discovery read the target: it is connected
        assert step_badges(app)["rollout"] == "fail"
        await apply_step(app, pilot, "asa")
        await apply_step(app, pilot, "rollout")
        assert step_badges(app)["rollout"] == "pass"

        await goto(app, pilot, "spns")
        assert app.pane("spns").changes == []
        assert "Nothing to change" in str(app.query_one("#blockers-spns").render())
        assert step_badges(app)["spns"] == "pass", step_line(app, "spns")
        assert step_badges(app)["verify"] is None  # not verified since the change

        await goto(app, pilot, "verify")
        await press(app, pilot, "r")
        assert session.verified == "pass"
        assert step_badges(app)["verify"] == "pass"
        assert "pass" in step_line(app, "verify") and "todo" not in step_line(app, "verify")
        assert "r" in {b.binding.key for b in app.active_bindings.values() if b.binding.show}  # r stays in the footer


async def test_cancel_then_refresh_shows_the_truth(lab_session, tmp_path):
    """Cancel a rollout right after confirming: every row and status comes from the re-read lab; r changes
    nothing of it, and Apply offers to finish the interrupted run (never a second password)."""
    session = lab_session(scenario_with_fault(tmp_path, "fresh", "EX01", "slow", "slow_seconds = 1.5\n"))
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await apply_step(app, pilot, "asa")
        await goto(app, pilot, "rollout")
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("y")
        for _ in range(500):  # until the generate on EX01 is under way
            await asyncio.sleep(0.02)
            if any(r[0].endswith("busy") for r in table_rows(app, "#rollout-servers")):
                break
        await pilot.press("x")
        await settle(app, pilot)

        truth = session.target.lab.truth()
        events = list(read_events(session.journal.path))
        # the native roll changes AD once, after every push: cancelled before that, AD is untouched
        assert not any(e.event == "done" and e.change_id == "rollout.ad-password" for e in events)
        rows = {r[1]: r for r in table_rows(app, "#rollout-servers")}
        assert {"EX01", "EX02"} <= set(rows)
        for name in ("EX01", "EX02"):  # each row says what the lab holds, re-read, not what was planned
            cred = held(session, name)
            assert (cred is None) == (rows[name][3] == "pending"), (name, rows[name])
        before = (table_rows(app, "#rollout-servers"), step_badges(app))

        await press(app, pilot, "r")  # refresh: the same truth, nothing remembered changes it
        assert (table_rows(app, "#rollout-servers"), step_badges(app)) == before
        assert session.target.lab.truth() == truth

        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        assert app.screen.confirm == "Resume"
        assert not any("Generate" in line for line in app.screen.lines), app.screen.lines
        await press(app, pilot, "y")
        events = list(read_events(session.journal.path))
        # the native roll: AD is changed exactly once, after every server holds the password it gets
        assert len([e for e in events if e.event == "done" and e.change_id == "rollout.ad-password"]) == 1
        assert held(session, "EX01") is not None and held(session, "EX02") is not None
        assert step_badges(app)["rollout"] == "pass"


async def test_the_detail_pane_shows_a_finding_in_full(lab_session):
    """A finding's evidence, reason and fix are readable in full at 80 columns: select it, press d."""
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#findings-table")
        table.focus()
        await settle(app, pilot)
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        check_id = key.split("|", 1)[0]
        status, _, subject, _ = table_rows(app, "#findings-table")[table.cursor_row]
        assert status.endswith("FAIL")  # failures come first
        finding = next(f for f in session.findings if f.check_id == check_id and f.subject == subject
                       and str(f.status) == "fail")
        await press(app, pilot, "d")
        detail = app.query_one(DetailPane)
        assert detail.display
        shown = "\n".join(str(s.render()) for s in detail.query(".detail-text"))
        assert finding.fix and finding.fix in shown
        assert (finding.reason or finding.evidence) in shown
        assert not app.query_one("#steps").display  # at 80 columns the detail takes the step's place
        await press(app, pilot, "d")
        assert not detail.display and app.query_one("#steps").display


async def test_a_named_flag_instead_of_a_decimal_in_the_confirmation(lab_session):
    session = lab_session("fresh-with-seg")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await goto(app, pilot, "seg")
        await pilot.press("a")
        await pilot.pause()
        lines = " ".join(app.screen.lines) if isinstance(app.screen, ConfirmModal) else ""
        if not lines:  # the SEG waits for earlier steps: read the preview instead
            await press(app, pilot, "escape")
            lines = " ".join(" ".join(r) for r in table_rows(app, "#preview-seg"))
        assert "userAccountControl" in lines
        assert "adds trusted to authenticate for delegation (protocol transition)" in lines
        assert "16843264" not in lines and "66048" not in lines


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    environ = {"PATH": "/usr/bin:/bin", "ASA_WIZARD_DATA_DIR": str(data_dir), "HOME": str(data_dir),
               "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "asa_wizard", *args], capture_output=True, text=True, timeout=180,
                          env=environ, input="", cwd=str(data_dir))


async def wizard_rollout_that_fails(lab_session, tmp_path: Path) -> tuple[Path, str]:
    """The wizard's rollout on new-server-missing-asa with Exch-2019 refusing the roll: the run stays unfinished."""
    scenario = find_scenario("new-server-missing-asa").read_text()
    broken = scenario.replace('fqdn = "exch-2019.tailspintoys.ca"', 'fqdn = "exch-2019.tailspintoys.ca"\n'
                              'fault = "fail-roll"')
    lab = tmp_path / "flaky.toml"
    lab.write_text(broken)
    session = lab_session(str(lab))
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await goto(app, pilot, "rollout")
        await pilot.press("a")
        await pilot.pause()
        await press(app, pilot, "y")
        assert isinstance(app.screen, ErrorModal)
        await press(app, pilot, "escape")
    (path,) = session.runs
    states = {s.change.id: s.state for s in summarize(list(read_events(path)))}
    assert states.get("rollout.copy:Exch-2019") != "done"
    lab.write_text(scenario)  # the server is repaired
    return path, str(lab)


async def test_a_wizard_journal_resumes_from_the_command_line(lab_session, tmp_path, data_dir):
    path, _ = await wizard_rollout_that_fails(lab_session, tmp_path)
    first = list(read_events(path))[0]
    assert first.event == "run-start" and first.data["plan"]["changes"]  # one run, with its plan
    r = run_cli(data_dir, "resume")  # the newest unfinished journal: the wizard's
    assert r.returncode == 0, r.stderr
    assert str(path) in r.stdout and "1 done" in r.stderr
    states = {s.change.id: s.state for s in summarize(list(read_events(path)))}
    assert states["rollout.copy:Exch-2019"] == "done"
    report = run_cli(data_dir, "report", "--journal", str(path))
    assert report.returncode == 0, report.stderr
    assert "rollout.copy:Exch-2019" in report.stdout or "Exch-2019" in report.stdout


async def test_the_wizard_offers_to_resume_an_unfinished_run_on_start(lab_session, tmp_path):
    path, lab = await wizard_rollout_that_fails(lab_session, tmp_path)
    session = lab_session(lab)  # a new start: a fresh lab of the same scenario
    assert held(session, "Exch-2019") is None
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmModal), type(app.screen).__name__
        assert any("Exch-2019" in line for line in app.screen.lines)
        await press(app, pilot, "y")
        await settle(app, pilot)
        assert app.current_step == "rollout"
        assert held(session, "Exch-2019") is not None
        states = {s.change.id: s.state for s in summarize(list(read_events(path)))}
        assert states["rollout.copy:Exch-2019"] == "done"
        assert app.query_one(Checklist).step_statuses["rollout"] == "pass"


async def test_guidance_names_the_choice_on_screen_not_the_answers_file(lab_session):
    session = lab_session("duplicate-spn")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await goto(app, pilot, "spns")
        blockers = str(app.query_one("#blockers-spns").render())
        assert "E14ASA$" in blockers and "Move the SPN from these owners" in blockers
        assert "move_from" not in blockers and "[spns]" not in blockers
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ErrorModal)
        assert "[spns]" not in app.screen.problem + app.screen.fix


async def test_the_palette_finds_apply_and_help_speaks_of_this_organisation(lab_session):
    from textual.command import CommandPalette

    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any(t.startswith("Apply") for t in titles)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        for ch in "apply: credential":
            await pilot.press(ch)
        await pilot.pause(0.3)
        await press(app, pilot, "enter")
        assert app.current_step == "rollout"
        assert isinstance(app.screen, ConfirmModal)  # Apply on the rollout step asks first
        await press(app, pilot, "n")
        text = app.organisation_text("Set-ClientAccessService -Identity EX01 ... mail.contoso.com CONTOSO\\EXASA$")
        assert "mail.tailspintoys.ca" in text and "contoso" not in text.lower()
