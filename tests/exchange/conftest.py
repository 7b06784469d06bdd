"""Shipped scenarios with faults set per server (the `world_of` fixture is in tests/conftest.py)."""

from __future__ import annotations

from asa_wizard.lab.scenario import Scenario, find_scenario, load_scenario


def scenario(name: str, **faults: str) -> Scenario:
    """A shipped scenario with per-server faults set (server name -> fault)."""
    s = load_scenario(find_scenario(name))
    for server, fault in faults.items():
        found = s.server(server)
        assert found is not None, server
        found.fault = fault
    return s
