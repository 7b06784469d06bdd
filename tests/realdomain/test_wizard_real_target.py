"""The wizard's real-domain target against the customer-like forest in a real Samba AD DC, driven with Pilot: the
form's "Directory only" box, namespaces and gateway account; the ASA that discovery found is reused (not
proposed for creation); a plan's blocking prerequisite is shown on the step before Apply, in the wizard's words,
and the SPNs step's confirmation box is what lifts it."""

from __future__ import annotations

import pytest
from customer_forest import build, remove
from textual.widgets import Input, Select, SelectionList, TabbedContent

from asa_wizard.tui.app import AsaWizardApp
from asa_wizard.tui.modals import ConfirmModal, ErrorModal
from asa_wizard.tui.session import WizardSession
from asa_wizard.tui.widgets import TickBox

from tests.tui.kit import goto, press, settle, table_rows

pytestmark = pytest.mark.samba


@pytest.fixture
def forest(samba_dc, unique_name):
    f = build(samba_dc, unique_name("w"))
    try:
        yield f
    finally:
        remove(f)


@pytest.fixture
def wizard_env(samba_dc, tmp_path, monkeypatch):
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("ASA_WIZARD_LDAP_PASSWORD", samba_dc.admin_password.reveal())
    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'ccache'}")


def blockers_text(app: AsaWizardApp, step_id: str) -> str:
    return str(app.query_one(f"#blockers-{step_id}").render())


async def test_directory_only_real_target_reuses_the_found_asa_and_waits_for_the_confirmation(
        samba_dc, forest, wizard_env):
    f = forest
    session = WizardSession()
    session.open_lab("fresh")
    session.discover()
    session.run_checks()
    lab_subjects = {x.subject for x in session.findings if x.subject.endswith(".contoso.com")}
    assert lab_subjects  # the lab's namespaces (its domain is contoso.com; the Samba DC's is contoso.lab)
    app = AsaWizardApp(session, start_step="target")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            app.query_one("#target-tabs", TabbedContent).active = "tab-real"
            app.query_one("#real-dc", Input).value = samba_dc.host
            app.query_one("#real-dc-tls-name", Input).value = samba_dc.tls_name
            app.query_one("#real-ca-file", Input).value = str(samba_dc.ca_file)
            app.query_one("#real-user", Input).value = samba_dc.admin_upn
            app.query_one("#real-bind", Select).value = "simple"
            app.query_one("#real-no-exchange", TickBox).value = True
            app.query_one("#real-seg-account", Input).value = f.seg
            app.query_one("#real-namespace", Input).value = f"{f.mail}, {f.autodiscover}"
            app.query_one("#connection-results").focus()
            await press(app, pilot, "r")
            await settle(app, pilot, 5)
            assert not isinstance(app.screen, ErrorModal), app.screen.problem  # type: ignore[attr-defined]

            # connected without WinRM; the lab's findings are gone, the customer's are there
            assert session.target is not None and not session.target.is_lab and session.target.exchange is None
            assert session.answers.no_exchange and session.env is not None
            assert {f.mail, f.autodiscover} <= {ns.host for ns in session.env.namespaces}
            subjects = {x.subject for x in session.findings}
            assert f.mail in subjects and f.seg in subjects
            assert not lab_subjects & subjects
            skipped = {x.check_id for x in session.findings if str(x.status.value) == "skipped"}
            assert "rollout.coverage" in skipped  # needs the servers: not read in a directory-only session

            # nobody named the ASA: the one discovery found from the SPNs is reused, not created
            await goto(app, pilot, "asa")
            assert app.query_one("#asa-mode", Select).value == "reuse"
            assert app.query_one("#asa-name", Input).value == f.asa
            found = str(app.query_one("#asa-found").render())
            assert f.asa in found and "reused" in found
            assert not any(c.action == "create-account" for c in session.plan().changes)

            # the SPN move waits for the user's confirmation: shown before Apply, in the wizard's words
            await goto(app, pilot, "spns")
            app.query_one("#spn-move-from", SelectionList).select(f.q(f.server_a + "$"))
            await settle(app, pilot)
            text = blockers_text(app, "spns")
            assert f"Every server behind {f.mail}" in text
            assert "I confirmed by hand" in text and "--confirm-servers-hold-credential" not in text
            await pilot.press("a")
            await settle(app, pilot)
            assert isinstance(app.screen, ErrorModal) and f"Every server behind {f.mail}" in app.screen.problem
            await press(app, pilot, "escape")

            app.query_one("#spn-confirm", TickBox).value = True
            await settle(app, pilot)
            assert session.answers.spns.confirm_servers_hold_credential
            assert "Every server behind" not in blockers_text(app, "spns")
            rows = [r[0] for r in table_rows(app, "#preview-spns")]
            assert any(f"HTTP/{f.mail}" in r for r in rows), rows
            await pilot.press("a")
            await settle(app, pilot)
            assert isinstance(app.screen, ConfirmModal)  # Apply now asks; nothing was changed by this test
            await press(app, pilot, "escape")
    finally:
        session.close()
