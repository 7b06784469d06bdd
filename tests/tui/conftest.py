"""Fixtures for the wizard's Pilot and snapshot tests: the lab opened on a scenario, the journal and reports
in a temporary folder, the cursor blink off (stable screenshots)."""

from __future__ import annotations

import pytest

from asa_wizard.tui.session import WizardSession


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Journals and default report paths go to a temporary folder, never to the user's home."""
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    return tmp_path / "data"


@pytest.fixture
def lab_session():
    """A session on a lab scenario (closed after the test): `lab_session("fresh")`."""
    opened: list[WizardSession] = []

    def open_(scenario: str, *, dry_run: bool = False) -> WizardSession:
        session = WizardSession(dry_run=dry_run)
        session.open_lab(scenario)
        opened.append(session)
        return session

    yield open_
    for s in opened:
        s.close()
