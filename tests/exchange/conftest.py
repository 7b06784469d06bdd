"""A lab world per test: its own Exchange state and its own HTTPS WS-Management endpoint on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from asa_wizard.lab.scenario import Scenario, find_scenario, load_scenario
from asa_wizard.lab.world import LabWorld


def scenario(name: str, **faults: str) -> Scenario:
    """A shipped scenario with per-server faults set (server name -> fault)."""
    s = load_scenario(find_scenario(name))
    for server, fault in faults.items():
        found = s.server(server)
        assert found is not None, server
        found.fault = fault
    return s


@pytest.fixture
def world_of() -> Iterator[Callable[[Scenario], LabWorld]]:
    worlds: list[LabWorld] = []

    def make(s: Scenario) -> LabWorld:
        w = LabWorld(s)
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        w.close()
