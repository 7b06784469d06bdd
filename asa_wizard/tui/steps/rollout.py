"""Step 4: the ASA credential onto every server, with Microsoft's script, server by server.

The preview and the commands come from the plan; the work is done by the rollout engine, whose progress
events drive one row per server: pending, running, done, verified, or failed with the reason and the fix.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Label, Select

from .base import status_text
from .changes import ChangePane

PHASE_STATUS = {"verified": "pass", "done": "pass", "failed": "fail", "skipped": "warn", "running": "running",
                "pending": None}


class RolloutPane(ChangePane):
    STEP_ID = "rollout"

    def compose_options(self) -> ComposeResult:
        yield Label("Servers at the same time (copies run in parallel after the first server)",
                    classes="field-label")
        yield Select([(str(n), n) for n in (1, 2, 4, 8)], value=self.answers.rollout.concurrency
                     if self.answers.rollout.concurrency in (1, 2, 4, 8) else 4, allow_blank=False,
                     id="rollout-concurrency")
        yield Label("Every server and its state", classes="section-title")
        yield DataTable(id="rollout-servers", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        # runs before ChangePane.on_mount (Textual calls every on_mount in the MRO, subclass first)
        self.query_one("#rollout-servers", DataTable).add_columns("State", "Server", "Action", "Reason / fix")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "rollout-concurrency":
            self.answers.rollout.concurrency = int(event.value)  # type: ignore[arg-type]
            self.options_changed()

    def sync_options(self) -> None:
        """Before a run: every server with what the plan will do to it, or that it already holds it."""
        env = self.wizard.session.env
        table = self.query_one("#rollout-servers", DataTable)
        if env is None or self.wizard.is_working("rollout"):
            return
        plan = self.wizard.session.plan()
        planned = {c.target.lower(): c for c in plan.changes if c.step == "rollout"} if plan else {}
        table.clear()
        for s in env.servers:
            change = planned.get(s.name.lower())
            if change is not None:
                action = "generate" if change.action == "roll-generate" else "copy"
                table.add_row(status_text(self.app, None), Text(s.name), Text(action), Text("pending"),
                              key=s.name)
            else:
                held = s.asa_latest.account if s.asa_latest else "nothing"
                table.add_row(status_text(self.app, "pass"), Text(s.name), Text("none"),
                              Text(f"holds {held}"), key=s.name)

    def start_apply(self) -> None:
        request = self.wizard.session.rollout_request()
        if request is None:
            self.app.notify("Nothing to roll out: every server holds the current credential.", markup=False)
            return
        self.wizard.run_rollout(request)

    def show_server(self, event: Any) -> None:
        """One progress event from the engine: update that server's row."""
        table = self.query_one("#rollout-servers", DataTable)
        phase = str(getattr(event.phase, "value", event.phase))
        reason = event.message + (f" — Fix: {event.fix}" if event.fix else "")
        row = [status_text(self.app, PHASE_STATUS.get(phase)), Text(event.server), Text(event.action or ""),
               Text(f"{phase}: {reason}")]
        if event.server in {str(k.value) for k in table.rows}:
            for col, value in zip(table.columns, row):
                table.update_cell(event.server, col, value)
        else:
            table.add_row(*row, key=event.server)

    def show_report(self, report: Any) -> None:
        table = self.query_one("#rollout-servers", DataTable)
        table.clear()
        for p in report.servers.values():
            phase = str(getattr(p.phase, "value", p.phase))
            reason = p.reason + (f" — Fix: {p.fix}" if p.fix else "")
            table.add_row(status_text(self.app, PHASE_STATUS.get(phase)), Text(p.server), Text(p.action or ""),
                          Text(f"{phase}: {reason}"), key=p.server)
