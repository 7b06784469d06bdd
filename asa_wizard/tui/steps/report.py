"""Step 10: write it down. What was found, what was changed, what passes now; where the user chooses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Select, Static

from .base import StepPane

FORMATS = [("Markdown (.md)", "markdown"), ("HTML, self-contained (.html)", "html")]
SUFFIX = {"markdown": ".md", "html": ".html"}


def default_report_path(label: str) -> str:
    base = os.environ.get("ASA_WIZARD_DATA_DIR") or str(Path.home())
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in label.lower()).strip("-")[:40] or "report"
    return str(Path(base) / f"asa-wizard-{safe}.md")


class ReportPane(StepPane):
    STEP_ID = "report"
    SUPPORTS = frozenset({"run"})
    WORK_GROUP = "report"

    def compose_controls(self) -> ComposeResult:
        name = self.session.scenario_name or "report"
        yield Label("Format", classes="field-label")
        yield Select(FORMATS, value="markdown", allow_blank=False, id="report-format")
        yield Label("Save to (a file path)", classes="field-label")
        yield Input(value=default_report_path(name), id="report-path")
        with Horizontal(classes="buttons"):
            yield Button("Save report (r)", id="report-save", variant="primary")
        yield from self.compose_progress()
        yield Static("", id="report-result", markup=False, classes="outcome")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "report-format":
            path_input = self.query_one("#report-path", Input)
            path = Path(path_input.value)
            path_input.value = str(path.with_suffix(SUFFIX[str(event.value)]))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "report-save":
            event.stop()
            self.do_run()

    def do_run(self) -> None:
        path = self.query_one("#report-path", Input).value.strip()
        if not path:
            self.problem("No file was chosen for the report.", "Type a path, then press r.")
            return
        fmt = str(self.query_one("#report-format", Select).value)
        session = self.session

        def work(progress: Any, cancel: Any) -> str:
            progress("Writing the report", 0, 0)
            return session.save_report(path, fmt)

        self.start_work(work, self._saved, name="report", description="Saving the report")

    def _saved(self, path: str) -> None:
        self.saved(path)
        self.work_finished("Report saved")
        self.log_line(f"Report saved: {path}")
        self.app.notify(f"Report saved: {path}", markup=False)
        self.state_changed()

    def saved(self, path: str) -> None:
        self.query_one("#report-result", Static).update(f"Saved: {path}")
