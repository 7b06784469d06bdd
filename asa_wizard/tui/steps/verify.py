"""Step 9: prove it. The whole catalogue, and a Kerberos ticket presented to every server directly."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Label, Static

from .base import StepPane, status_text
from .discovery import fill_findings

OUTCOME_STATUS = {"accepted": "pass", "ntlm-fallback": "fail", "rejected": "fail", "kdc-refused": "fail",
                  "unreachable": "fail", "error": "fail"}


class VerifyPane(StepPane):
    STEP_ID = "verify"
    SUPPORTS = frozenset({"run"})
    WORK_GROUP = "verify"

    def compose_controls(self) -> ComposeResult:
        with Horizontal(classes="buttons"):
            yield Button("Verify now (r)", id="verify-run", variant="primary")
        yield from self.compose_progress()
        yield Static("Not verified yet. Press r.", id="verify-summary", markup=False, classes="outcome")
        yield Label("Kerberos proof per server (ticket presented straight to the server)", classes="section-title")
        yield DataTable(id="proof-table", cursor_type="row", zebra_stripes=True)
        yield Label("Problems and their fixes (enter: go to the step that fixes it)", classes="section-title")
        yield DataTable(id="verify-problems", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#proof-table", DataTable).add_columns("Result", "Server", "SPN", "Detail")
        self.query_one("#verify-problems", DataTable).add_columns("Status", "Check", "Subject", "Problem — Fix")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "verify-run":
            event.stop()
            self.do_run()

    def on_shown(self) -> None:
        """Verify reads everything itself: nothing starts until r."""

    def do_run(self) -> None:
        session = self.session

        def work(progress: Any, cancel: Any) -> Any:
            from ...core.errors import Cancelled

            proof = session.verify(progress=progress, cancel=cancel)
            if cancel.is_set():
                raise Cancelled("Verification was cancelled.", "Press r to run it again.")
            return proof

        self.start_work(work, self._verified, name="verify", description="Verification")

    def _verified(self, report: Any) -> None:
        self.show_proof(report)
        self.work_finished("Verification finished")
        accepted = sum(1 for r in report.servers if getattr(r.outcome, "value", r.outcome) == "accepted")
        self.log_line(f"Verification finished: Kerberos accepted on {accepted} of {len(report.servers)} "
                      "server/namespace pair(s)")
        self.state_changed()

    def show_proof(self, report: Any) -> None:
        table = self.query_one("#proof-table", DataTable)
        table.clear()
        for r in list(report.servers) + list(report.s4u):
            outcome = getattr(r.outcome, "value", str(r.outcome))
            detail = f"{outcome}: {r.detail}" if r.detail else outcome
            if r.enctype:
                detail += f" ({r.enctype})"
            table.add_row(status_text(self.app, OUTCOME_STATUS.get(outcome, "fail")), Text(r.server), Text(r.spn),
                          Text(detail))
        if report.s4u_skipped:
            table.add_row(status_text(self.app, "skipped"), Text("SEG"), Text("S4U"), Text(report.s4u_skipped))
        self.refresh_from_session()

    def refresh_from_session(self) -> None:
        from ..widgets import status_of

        findings = self.session.findings
        fill_findings(self.app, self.query_one("#verify-problems", DataTable), findings, problems_only=True)
        if self.session.verified is None:
            # a change since the last Verify (or none yet): its proof no longer says what is true
            self.query_one("#proof-table", DataTable).clear()
            self.query_one("#verify-summary", Static).update(
                "Not verified since the last change. Press r." if self.session.runs else "Not verified yet. Press r.")
            return
        if not findings:
            return
        fails = sum(1 for f in findings if status_of(f) == "fail")
        warns = sum(1 for f in findings if status_of(f) == "warn")
        passes = sum(1 for f in findings if status_of(f) == "pass")
        summary = (f"✖ {fails} failing, ▲ {warns} warning(s), ✔ {passes} passing." if fails or warns
                   else f"✔ Everything checked passes ({passes} result(s)).")
        self.query_one("#verify-summary", Static).update(summary)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "verify-problems" and event.row_key.value:
            event.stop()
            self.open_finding(event.row_key.value)
