"""The first screen: opened on a scenario, read from the lab through the real adapters."""

from __future__ import annotations

from asa_wizard.tui.app import AsaWizardApp

from .kit import settle, table_rows


async def test_opens_on_discovery_with_both_servers_and_the_missing_asa(lab_session):
    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        rows = {r[0]: r for r in table_rows(app, "#servers-table")}
        assert set(rows) == {"Exch-2016", "Exch-2019"}
        # columns: Server, ASA latest, ASA previous, Reachable, Product / version, Site, FQDN
        assert rows["Exch-2019"][1] == "not set"
        assert rows["Exch-2016"][1].startswith("Tailspintoys\\E15ASA$")
        assert rows["Exch-2019"][4].startswith("Exchange 2019")
        assert rows["Exch-2016"][5] == "Default-First-Site-Name"
        namespaces = {r[0]: r for r in table_rows(app, "#namespaces-table")}
        assert set(namespaces) == {"mail.tailspintoys.ca", "autodiscover.tailspintoys.ca"}
        assert namespaces["mail.tailspintoys.ca"][3] == "E15ASA$"
        # the first catalogue run is on screen: the missing credential is a failure with a fix
        findings = table_rows(app, "#findings-table")
        coverage = [r for r in findings if "Exch-2019" in r[2] and r[0].endswith("FAIL")]
        assert coverage, findings


async def test_checklist_shows_icon_and_word_for_every_step(lab_session):
    from asa_wizard.core.steps import STEP_IDS
    from asa_wizard.tui.widgets import Checklist

    session = lab_session("new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        checklist = app.query_one(Checklist)
        prompts = [str(checklist.get_option_at_index(i).prompt) for i in range(checklist.option_count)]
        step_lines = [p for p in prompts if any(f"{n}. " in p for n in range(1, len(STEP_IDS) + 1))]
        assert len(step_lines) == len(STEP_IDS)
        assert any("✖" in p and "FAIL" in p and "Rollout" in p for p in prompts)
        assert any("✔" in p and "pass" in p and "Discovery" in p for p in prompts)


async def test_the_command_line_path_opens_the_lab_after_the_first_paint():
    """`asa-wizard lab --scenario X` builds the app like this: the lab opens in a worker, discovery follows."""
    from asa_wizard.tui.session import WizardSession

    session = WizardSession(scenario_name="new-server-missing-asa")
    app = AsaWizardApp(session, start_step="discovery", open_lab="new-server-missing-asa")
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot, rounds=5)
            assert session.target is not None and session.target.is_lab
            assert "new-server-missing-asa" in str(app.query_one("#target-bar").render())
            assert {r[0] for r in table_rows(app, "#servers-table")} == {"Exch-2016", "Exch-2019"}
    finally:
        session.close()
