"""The Verify step's Kerberos proof path by path: a server row expands into one row per client path (what the
probe sent there and what the server answered), and its detail lists the paths, at 80x24."""

from __future__ import annotations

from textual.widgets import DataTable

from asa_wizard.tui.app import AsaWizardApp
from asa_wizard.tui.detail import DetailPane

from .kit import goto, press, settle, table_rows


def _row_of(app: AsaWizardApp, server: str, spn: str) -> int:
    rows = table_rows(app, "#proof-table")
    return next(i for i, r in enumerate(rows) if r[1] == server and r[2] == spn)


async def test_a_server_row_expands_into_its_client_paths(lab_session):
    session = lab_session("ssl-offload-ep")
    app = AsaWizardApp(session, start_step="discovery")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await goto(app, pilot, "verify")
        await press(app, pilot, "r")
        collapsed = table_rows(app, "#proof-table")
        assert not any("↳" in r[1] for r in collapsed), collapsed
        mail = collapsed[_row_of(app, "EX01", "HTTP/mail.contoso.com")]
        assert mail[0].endswith("pass") and mail[3].startswith("accepted") and "4 paths: enter" in mail[3], mail

        table = app.query_one("#proof-table", DataTable)
        table.focus()
        table.move_cursor(row=_row_of(app, "EX01", "HTTP/mail.contoso.com"))
        await press(app, pilot, "enter")
        rows = table_rows(app, "#proof-table")
        at = _row_of(app, "EX01", "HTTP/mail.contoso.com")
        assert table.cursor_row == at  # the cursor stays on the server it expanded
        paths = {r[1].replace("↳", "").strip(): r for r in rows[at + 1:at + 5]}
        assert len(rows) == len(collapsed) + 4
        assert {title: r[2] for title, r in paths.items()} == {
            "EWS": "/EWS/Exchange.asmx", "MAPI over HTTP": "/mapi/emsmdb/",
            "Outlook Anywhere": "/rpc/rpcproxy.dll", "ActiveSync": "/Microsoft-Server-ActiveSync"}, rows
        # straight to the server (no balancer in between) every Negotiate path takes the ticket; MAPI, where
        # Extended Protection is Require, with the channel binding of the probe's own TLS connection
        for title in ("EWS", "MAPI over HTTP", "Outlook Anywhere"):
            assert paths[title][0].endswith("pass") and paths[title][3].startswith("accepted"), paths[title]
        # ActiveSync offers Basic only (Exchange's default): not offered is shown as skipped, not as a failure
        assert paths["ActiveSync"][0].endswith("skip"), paths["ActiveSync"]
        assert paths["ActiveSync"][3].startswith("not-offered") and "Basic" in paths["ActiveSync"][3]
        assert "channel-bound" in paths["MAPI over HTTP"][3]
        # the other server stays collapsed
        assert not rows[_row_of(app, "EX02", "HTTP/mail.contoso.com") + 1][1].strip().startswith("↳")

        await press(app, pilot, "d")  # the detail pane lists the paths, readable at 80 columns
        detail = app.query_one(DetailPane)
        assert detail.display
        assert "EX01 HTTP/mail.contoso.com: accepted" in detail.copy_text
        assert "MAPI over HTTP /mapi/emsmdb/: accepted" in detail.copy_text
        assert "Outlook Anywhere /rpc/rpcproxy.dll: accepted" in detail.copy_text
        await press(app, pilot, "escape")

        table.focus()
        table.move_cursor(row=at)
        await press(app, pilot, "enter")  # enter again folds the paths away
        assert table_rows(app, "#proof-table") == collapsed
