"""Helpers that drive the wizard like a person would: keys, then wait for the workers and the screen."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable
from textual.worker import WorkerCancelled, WorkerFailed

from asa_wizard.tui.app import AsaWizardApp


async def settle(app: AsaWizardApp, pilot: Any, rounds: int = 3) -> None:
    """Let every worker finish and every message be handled (workers can start further workers)."""
    for _ in range(rounds):
        await pilot.pause()
        try:
            await app.workers.wait_for_complete()
        except (WorkerFailed, WorkerCancelled):
            # a worker that failed before it left the list: the app's one error handler reports it (the test
            # looks at what the screen shows), and waiting must not end the test run early
            pass
    await pilot.pause()
    # DataTable measures its columns when it next goes idle: under load a screenshot can come first and
    # show every column at its header's width. Wait (bounded) until every table has measured its rows.
    # Three times in a row: a message handled meanwhile (a pane refreshing its table) can start a new
    # measurement. Bounded at 10 s: on a loaded CI machine 3 s were seen to run out before a table had measured.
    clean = 0
    for _ in range(200):
        if any(t._require_update_dimensions or t._updated_cells for t in app.query(DataTable)):
            clean = 0
        else:
            clean += 1
            if clean == 3:
                break
        await pilot.pause(0.05)


async def press(app: AsaWizardApp, pilot: Any, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(app, pilot)


async def goto(app: AsaWizardApp, pilot: Any, step_id: str) -> None:
    app.goto(step_id)
    await settle(app, pilot)
    assert app.current_step == step_id


def table_rows(app: AsaWizardApp, selector: str) -> list[list[str]]:
    """The cells of a table as the user reads them (plain text)."""
    table = app.screen.query_one(selector, DataTable) if app.screen.query(selector) else app.query_one(
        selector, DataTable)
    rows = []
    for key in table.rows:
        rows.append([str(getattr(c, "plain", c)) for c in table.get_row(key)])
    return rows


def statuses(app: AsaWizardApp) -> dict[str, str | None]:
    """The checklist's status per check id."""
    from asa_wizard.tui.widgets import Checklist

    return dict(app.query_one(Checklist).statuses)


def not_green(app: AsaWizardApp) -> dict[str, str | None]:
    return {k: v for k, v in statuses(app).items() if v not in ("pass", "skipped")}
