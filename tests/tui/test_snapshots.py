"""Every step at 80x24 and 120x40, on the lab, after its workers finished and with the cursor blink off.

Regenerate after a deliberate change with `--snapshot-update`, then look at the SVGs before keeping them.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input, TextArea

from asa_wizard.core.steps import STEP_IDS
from asa_wizard.tui.app import AsaWizardApp

from .kit import settle

SIZES = [(80, 24), (120, 40)]
SCENARIO = "new-server-missing-asa"


@pytest.fixture(autouse=True)
def fixed_data_dir(monkeypatch):
    """The report step shows a default path under the data folder: make it the same on every machine."""
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", "/srv/asa-wizard")


def still(app: AsaWizardApp) -> None:
    for widget in app.query(Input).results():
        widget.cursor_blink = False
    for widget in app.query(TextArea).results():
        widget.cursor_blink = False


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("step_id", STEP_IDS)
def test_step_snapshot(step_id, size, snap_compare, lab_session):
    session = lab_session(SCENARIO)
    app = AsaWizardApp(session, start_step=step_id)

    async def run_before(pilot) -> None:
        await settle(app, pilot)
        if step_id == "verify":
            await pilot.press("r")
            await settle(app, pilot)
        still(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
