"""Fixtures of the catalogue tests (the helpers live in catalogue_kit.py)."""

from __future__ import annotations

import pytest
from catalogue_kit import Lab


@pytest.fixture
def lab() -> Lab:
    return Lab()
