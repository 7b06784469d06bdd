"""Fixtures for the classroom tests: journals, exercise records and reports in a temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.delenv("ASA_WIZARD_RANDOM_FAULTS", raising=False)
    monkeypatch.delenv("ASA_WIZARD_STUDENT", raising=False)
    return tmp_path / "data"
