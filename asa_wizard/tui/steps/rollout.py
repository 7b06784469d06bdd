"""Step 4: the ASA credential onto every server, with Microsoft's script, server by server.

The preview and the commands come from the plan; the work is done by the executor, which hands the roll
changes to the rollout engine. Its progress events drive one row per server: pending, running, verified, or
failed with the reason and the fix. After the run every row is read again from the servers themselves.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import DataTable, Label, Select

from .base import cell, status_text
from .changes import ChangePane

PHASE_STATUS = {"verified": "pass", "done": "pass", "failed": "fail", "skipped": "warn", "running": "running",
                "pending": None}


class RolloutPane(ChangePane):
    STEP_ID = "rollout"

    def __init__(self, session: Any, **kw: Any) -> None:
        super().__init__(session, **kw)
        self._outcome: dict[str, tuple[str | None, str]] = {}  # server -> the last run's outcome there

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
        """Every server as it is now (re-read after every run): what the plan will do to it, or what it holds;
        the servers of the last run keep that run's outcome beside it."""
        env = self.session.env
        table = self.query_one("#rollout-servers", DataTable)
        if env is None or self.app_busy("changes"):
            return
        plan = self.session.plan()
        planned = {c.target.lower(): c for c in plan.changes if c.step == "rollout"} if plan else {}
        outcome = self._outcome
        table.clear()
        for s in env.servers:
            change = planned.get(s.name.lower())
            last = outcome.get(s.name.lower())
            if change is not None:
                action = "generate" if change.action == "roll-generate" else "copy"
                state, text = (last if last and last[0] != "pass" else (None, "pending"))
                table.add_row(status_text(self.app, state), cell(s.name), cell(action), cell(text), key=s.name)
            else:
                held = s.asa_latest.account if s.asa_latest else "nothing"
                text = last[1] if last and last[0] == "pass" else f"holds {held}"
                table.add_row(status_text(self.app, "pass"), cell(s.name), cell("none"), cell(text), key=s.name)

    def start_apply(self) -> None:
        self._outcome = {}
        super().start_apply()

    def start_resume(self, path, *, replay: bool = False) -> None:
        self._outcome = {}
        super().start_resume(path, replay=replay)

    def show_change(self, event: Any) -> None:
        """One progress event of a roll change: update that server's row."""
        change = next((c for c in self.changes if c.id == event.change_id), None)
        server = change.target if change is not None else event.change_id.split(":", 1)[-1]
        action = ("generate" if event.change_id.startswith("rollout.generate") else
                  "push" if event.change_id.startswith("rollout.push") else "copy")
        phase = {"running": "running", "done": "verified", "already": "verified"}.get(event.state, event.state)
        message = event.message
        if " — " in message:
            reason, fix = message.split(" — ", 1)
            message = f"{reason} — Fix: {fix}"
        text = f"{phase}: {message}" if message else phase
        state = PHASE_STATUS.get(phase, "fail" if phase in ("failed", "cancelled") else None)
        if phase != "running":
            self._outcome[server.lower()] = (state, text)
        table = self.query_one("#rollout-servers", DataTable)
        row = [status_text(self.app, state), cell(server), cell(action), cell(text)]
        if server in {str(k.value) for k in table.rows}:
            for col, value in zip(table.columns, row):
                table.update_cell(server, col, value)
        else:
            table.add_row(*row, key=server)
