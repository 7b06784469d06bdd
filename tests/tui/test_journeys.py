"""Whole journeys on the lab, driven with the keyboard the way a person would, checked against what the lab
really holds afterwards (LabWorld.truth(), read from the lab's own state, not from the wizard)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import SelectionList

from asa_wizard.core.journal import read_events, summarize
from asa_wizard.resources import scenario_dir
from asa_wizard.tui.app import AsaWizardApp
from asa_wizard.tui.modals import ConfirmModal, ErrorModal
from asa_wizard.tui.widgets import Checklist

from .kit import goto, not_green, press, settle, statuses, table_rows


async def apply_step(app, pilot, step_id: str) -> list[str]:
    """Go to a step, press a, read the confirmation, confirm. Returns the lines the modal repeated."""
    await goto(app, pilot, step_id)
    await pilot.press("a")
    await pilot.pause()
    assert isinstance(app.screen, ConfirmModal), f"no confirmation on {step_id}: {type(app.screen).__name__}"
    lines = list(app.screen.lines)
    await press(app, pilot, "y")
    assert not isinstance(app.screen, ErrorModal), app.screen.problem
    return lines


def held(session, server: str) -> str | None:
    s = session.target.lab.truth().server(server)
    return s.asa_latest.account if s and s.asa_latest else None


async def test_new_server_missing_asa_to_all_green(lab_session):
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert statuses(app)["rollout.coverage"] == "fail"
        spns_before = sorted(session.target.lab.truth().account_by_sam("E15ASA$").spns)

        await apply_step(app, pilot, "asa")  # AES only: the one warning of this scenario
        lines = await apply_step(app, pilot, "rollout")
        assert lines == ["Copy every TAILSPINTOYS\\E15ASA$ credential of Exch-2016 to Exch-2019 "
                         "(exch-2019.tailspintoys.ca); this replaces the credentials Exch-2019 holds  "
                         "[AlternateServiceAccountCredential: (none) -> TAILSPINTOYS\\E15ASA$]"]
        assert held(session, "Exch-2019") == "Tailspintoys\\E15ASA$" or held(session, "Exch-2019").lower() == \
            "tailspintoys\\e15asa$"
        rollout_rows = {r[1]: r for r in table_rows(app, "#rollout-servers")}
        assert "verified" in rollout_rows["Exch-2019"][3]

        # the SPNs were already right: nothing to do on that step
        await goto(app, pilot, "spns")
        assert app.pane("spns").changes == []
        assert sorted(session.target.lab.truth().account_by_sam("E15ASA$").spns) == spns_before

        await goto(app, pilot, "verify")
        await press(app, pilot, "r")
        proof = table_rows(app, "#proof-table")
        accepted = {(r[1], r[2]) for r in proof if r[0].endswith("pass") and r[3].startswith("accepted")}
        for server in ("Exch-2016", "Exch-2019"):
            for spn in ("HTTP/mail.tailspintoys.ca", "HTTP/autodiscover.tailspintoys.ca"):
                assert (server, spn) in accepted, proof
        assert not_green(app) == {}


async def test_fresh_greenfield_goes_all_green_without_unticking_anything(lab_session):
    """No gateway in the story, none in the wizard: the SEG and IIS steps are left as they are, every step that
    changes something is applied as the wizard offers it, and Verify passes everything."""
    session = lab_session("fresh")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert statuses(app)["asa.exists"] == "fail"
        assert not any(cid.startswith("kcd.") for cid in not_green(app))  # nothing asks for a gateway
        for step_id in ("seg", "iis-auth"):  # offered as optional, and nothing ticked
            await goto(app, pilot, step_id)
            assert app.pane(step_id).changes == []
        for step_id in ("asa", "rollout", "spns", "client-auth"):
            await apply_step(app, pilot, step_id)
        await goto(app, pilot, "verify")
        await press(app, pilot, "r")
        assert not_green(app) == {}
        badges = dict(app.query_one(Checklist).step_statuses)
        assert badges == {"target": "pass", "discovery": "pass", "asa": "pass", "rollout": "pass", "spns": "pass",
                          "client-auth": "pass", "seg": "skipped", "iis-auth": "skipped", "verify": "pass",
                          "report": None}  # the report is done once saved
        truth = session.target.lab.truth()
        asa = truth.account_by_sam("EXCHASA$")
        assert asa is not None and sorted(s.lower() for s in asa.spns) == [
            "http/autodiscover.contoso.com", "http/mail.contoso.com"]
        assert all(s.asa_latest and s.asa_latest.account.lower().endswith("\\exchasa$") for s in truth.servers)
        assert truth.account_by_sam("svc_awseg") is None
        proof = table_rows(app, "#proof-table")
        for server in ("EX01", "EX02"):
            for spn in ("HTTP/mail.contoso.com", "HTTP/autodiscover.contoso.com"):
                assert any(r[1] == server and r[2] == spn and r[3].startswith("accepted") for r in proof), proof


async def test_fresh_with_seg_to_a_complete_setup_with_seg(lab_session):
    session = lab_session("fresh-with-seg")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert statuses(app)["asa.exists"] == "fail"
        for step_id in ("asa", "rollout", "spns", "client-auth", "seg", "iis-auth"):
            await apply_step(app, pilot, step_id)
        await goto(app, pilot, "verify")
        await press(app, pilot, "r")
        assert not_green(app) == {}
        truth = session.target.lab.truth()
        asa = truth.account_by_sam("EXCHASA$")
        assert asa is not None and sorted(s.lower() for s in asa.spns) == [
            "http/autodiscover.contoso.com", "http/mail.contoso.com"]
        seg = truth.account_by_sam("svc_awseg")
        assert seg.delegate_to == ["HTTP/mail.contoso.com"]
        assert all(s.asa_latest and s.asa_latest.account.lower().endswith("\\exchasa$") for s in truth.servers)
        proof = table_rows(app, "#proof-table")
        assert any(r[2] == "HTTP/mail.contoso.com" and r[3].startswith("accepted") for r in proof if "S4U" not in r[2])


async def test_duplicate_spn_is_moved_only_after_naming_the_owner(lab_session):
    session = lab_session("duplicate-spn")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await goto(app, pilot, "spns")
        owners = {r[0]: r for r in table_rows(app, "#spn-owners")}
        assert "CONFLICT" in owners["HTTP/mail.fabrikam.com"][1] and "E14ASA$" in owners["HTTP/mail.fabrikam.com"][1]
        # without naming the owner, Apply explains why it cannot go on
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ErrorModal)
        assert "E14ASA$" in app.screen.problem
        await press(app, pilot, "escape")
        assert session.target.lab.truth().account_by_sam("E14ASA$").has_spn("HTTP/mail.fabrikam.com")

        chooser = app.query_one("#spn-move-from", SelectionList)
        assert [str(chooser.get_option_at_index(i).value) for i in range(chooser.option_count)] == \
            ["FABRIKAM\\E14ASA$"]
        chooser.select(chooser.get_option_at_index(0))
        await settle(app, pilot)
        lines = await apply_step(app, pilot, "spns")
        assert any(line.lower().startswith("remove http/mail.fabrikam.com from fabrikam\\e14asa$") for line in lines)
        truth = session.target.lab.truth()
        assert not truth.account_by_sam("E14ASA$").has_spn("HTTP/mail.fabrikam.com")
        assert truth.account_by_sam("EXASA$").has_spn("HTTP/mail.fabrikam.com")
        await goto(app, pilot, "verify")
        await press(app, pilot, "r")
        assert not_green(app) == {}


async def test_dry_run_changes_nothing(lab_session):
    session = lab_session("fresh-with-seg", dry_run=True)
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert "DRY-RUN" in str(app.query_one("#target-bar").render())
        before = session.target.lab.truth()
        for step_id in ("asa", "rollout", "seg"):
            await goto(app, pilot, step_id)
            assert app.pane(step_id).changes, f"{step_id} should preview changes"
            await press(app, pilot, "a")
            assert not isinstance(app.screen, ConfirmModal)
        assert session.target.lab.truth() == before
        assert session.journal is None  # nothing was even started


async def test_dry_run_toggle_stops_an_apply(lab_session):
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        before = session.target.lab.truth()
        await press(app, pilot, "ctrl+t")
        assert session.dry_run
        await goto(app, pilot, "rollout")
        await press(app, pilot, "a")
        assert session.target.lab.truth() == before
        assert held(session, "Exch-2019") is None


def scenario_with_fault(tmp_path: Path, name: str, server: str, fault: str, extra: str = "") -> str:
    text = (scenario_dir() / f"{name}.toml").read_text(encoding="utf-8")
    marker = f'name = "{server}"\n'
    assert marker in text
    text = text.replace(marker, f'{marker}fault = "{fault}"\n{extra}', 1)
    path = tmp_path / f"{name}-{fault}.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


async def test_cancel_in_the_middle_of_a_rollout_leaves_a_resumable_journal(lab_session, tmp_path):
    # EX01 answers every Exchange call after 1.5 s: its push takes two calls, the window to cancel in
    session = lab_session(scenario_with_fault(tmp_path, "fresh", "EX01", "slow", "slow_seconds = 1.5\n"))
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await apply_step(app, pilot, "asa")
        await goto(app, pilot, "rollout")
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("y")
        lab = session.target.lab
        kvno = lab.directory.account_key_version("EXCHASA$")
        for _ in range(500):  # until the roll on EX01 is under way (its pre-flight, before any push)
            await asyncio.sleep(0.02)
            if any(r[0].endswith("busy") for r in table_rows(app, "#rollout-servers")):
                break
        await pilot.press("x")
        await settle(app, pilot)
        states = {s.change.id: s.state for s in summarize(list(read_events(session.journal.path)))}
        assert states.get("rollout.ad-password") != "done"
        assert lab.directory.account_key_version("EXCHASA$") == kvno  # cancelled before AD: nothing refuses tickets

        # Apply again: a new password to both servers, AD changed exactly once
        await pilot.press("a")
        await pilot.pause()
        await press(app, pilot, "y")
        assert lab.directory.account_key_version("EXCHASA$") == kvno + 1
        for name in ("EX01", "EX02"):
            assert held(session, name) is not None and held(session, name).lower().endswith("\\exchasa$")
            assert lab.exchange.credential_valid(lab.exchange.server(name).credentials[0])


async def test_a_failing_server_shows_its_reason_and_the_fix(lab_session, tmp_path):
    session = lab_session(scenario_with_fault(tmp_path, "new-server-missing-asa", "Exch-2019", "access-denied"))
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await goto(app, pilot, "rollout")
        await pilot.press("a")
        await pilot.pause()
        await press(app, pilot, "y")
        assert isinstance(app.screen, ErrorModal)
        assert "Exch-2019" in app.screen.problem
        assert app.screen.fix  # the fix is on screen, not only the failure
        await press(app, pilot, "escape")
        rows = {r[1]: r for r in table_rows(app, "#rollout-servers")}
        assert "failed" in rows["Exch-2019"][3] and "Fix:" in rows["Exch-2019"][3]
        assert rows["Exch-2019"][0].endswith("FAIL")
