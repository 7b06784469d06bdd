"""Step 9: prove it. The whole catalogue, and a Kerberos ticket presented to every server directly."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Label, Static

from .base import StepPane, cell, status_text
from .discovery import fill_findings

# a server's overall outcome (its worst path) and one path's outcome, as the table's status
OUTCOME_STATUS = {"accepted": "pass", "ntlm-fallback": "fail", "rejected": "fail", "kdc-refused": "fail",
                  "unreachable": "fail", "error": "fail", "channel-binding": "fail", "not-offered": "warn"}
PATH_STATUS = {**OUTCOME_STATUS, "not-offered": "skipped"}  # a path without Negotiate is not a failure


def _value(outcome: Any) -> str:
    return str(getattr(outcome, "value", outcome))


def proof_sections(r: Any) -> tuple[str, list[tuple[str, str]], str]:
    """The detail pane on one server's proof: the overall result, then every client path it was probed on."""
    from ...core.checks.extended_protection import path_line
    from ..widgets import plain_badge

    outcome = _value(r.outcome)
    overall = f"{outcome}: {r.detail}" if r.detail else outcome
    sections = [("SPN", r.spn), ("Result (the worst path)", overall + (f" ({r.enctype})" if r.enctype else ""))]
    lines = []
    for p in getattr(r, "paths", None) or []:
        line = path_line(p) + (" (channel-bound)" if p.channel_bound else "")
        sections.append((f"{plain_badge(PATH_STATUS.get(_value(p.outcome), 'fail'))} — {p.path.title}", line))
        lines.append(line)
    return f"{r.server} — {r.spn}", sections, "\n".join([f"{r.server} {r.spn}: {overall}", *lines])


class VerifyPane(StepPane):
    STEP_ID = "verify"
    SUPPORTS = frozenset({"run"})
    WORK_GROUP = "verify"

    def compose_controls(self) -> ComposeResult:
        with Horizontal(classes="buttons"):
            yield Button("Verify now (r)", id="verify-run", variant="primary")
        yield from self.compose_progress()
        yield Static("Not verified yet. Press r.", id="verify-summary", markup=False, classes="outcome")
        yield Label("Kerberos proof per server (enter: its paths)", classes="section-title")
        yield DataTable(id="proof-table", cursor_type="row", zebra_stripes=True)
        yield Label("Problems and their fixes (enter: go to the step that fixes it)", classes="section-title")
        yield DataTable(id="verify-problems", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self._proof: list[Any] = []  # the last Verify's results: one per server and namespace, then the S4U ones
        self._s4u_skipped = ""
        self._expanded: set[int] = set()  # the results whose paths are shown, one row each
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
        self._proof = list(report.servers) + list(report.s4u)
        self._s4u_skipped = report.s4u_skipped or ""
        self._expanded = set()
        self._fill_proof()
        self.refresh_from_session()

    def _fill_proof(self) -> None:
        """One row per server and namespace (its worst path); under an expanded one, a row per client path."""
        table = self.query_one("#proof-table", DataTable)
        table.clear()
        for i, r in enumerate(self._proof):
            outcome = _value(r.outcome)
            detail = f"{outcome}: {r.detail}" if r.detail else outcome
            if r.enctype:
                detail += f" ({r.enctype})"
            paths = getattr(r, "paths", None) or []
            if paths and i not in self._expanded:
                detail += f" [{len(paths)} {'path' if len(paths) == 1 else 'paths'}: enter]"
            table.add_row(status_text(self.app, OUTCOME_STATUS.get(outcome, "fail")), cell(r.server), cell(r.spn),
                          cell(detail), key=f"proof:{i}")
            if i in self._expanded:
                for j, p in enumerate(paths):
                    text = _value(p.outcome) + (f" - {p.detail}" if p.detail else "")
                    if p.channel_bound:
                        text += " (channel-bound)"
                    table.add_row(status_text(self.app, PATH_STATUS.get(_value(p.outcome), "fail")),
                                  cell(f"  ↳ {p.path.title}"), cell(p.path.path), cell(text), key=f"proof:{i}:{j}")
        if self._s4u_skipped:
            table.add_row(status_text(self.app, "skipped"), cell("SEG"), cell("S4U"), cell(self._s4u_skipped),
                          key="proof:s4u-skipped")

    def toggle_paths(self, index: int) -> None:
        """Show or hide the client paths of one result; the cursor stays on that result's row."""
        if not 0 <= index < len(self._proof) or not getattr(self._proof[index], "paths", None):
            return
        self._expanded ^= {index}
        self._fill_proof()
        table = self.query_one("#proof-table", DataTable)
        table.move_cursor(row=table.get_row_index(f"proof:{index}"))

    def detail_for(self, table_id: str, key: str) -> tuple[str, list[tuple[str, str]], str] | None:
        if key.startswith("proof:") and key.split(":")[1].isdigit():
            index = int(key.split(":")[1])
            return proof_sections(self._proof[index]) if index < len(self._proof) else None
        return super().detail_for(table_id, key)

    def refresh_from_session(self) -> None:
        from ..widgets import status_of

        findings = self.session.findings
        fill_findings(self.app, self.query_one("#verify-problems", DataTable), findings, problems_only=True)
        if self.session.verified is None:
            # a change since the last Verify (or none yet): its proof no longer says what is true
            self._proof, self._s4u_skipped, self._expanded = [], "", set()
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
        key = event.row_key.value or ""
        if event.data_table.id == "proof-table" and key.split(":")[1:2] != ["s4u-skipped"] and ":" in key:
            event.stop()
            self.toggle_paths(int(key.split(":")[1]))
            return
        if event.data_table.id == "verify-problems" and event.row_key.value:
            event.stop()
            self.open_finding(event.row_key.value)
