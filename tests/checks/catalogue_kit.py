"""Helpers for the catalogue tests: a shipped scenario (optionally changed), its environment, and the lab's
simulated Kerberos over that same scenario, so the environment and the probe always agree."""

from __future__ import annotations

import copy
from typing import Callable

from asa_wizard.core.checks import Finding, ProbeReport, run_catalogue, run_probes
from asa_wizard.core.logs import LogText
from asa_wizard.core.model import Environment
from asa_wizard.lab.kerberos import LabKerberos
from asa_wizard.lab.scenario import Scenario, find_scenario, load_scenario
from asa_wizard.lab.snapshot import environment_from_scenario


class ScenarioDirectory:
    """The two methods LabKerberos reads, over a Scenario object the test may change."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def current_accounts(self):
        return copy.deepcopy(self.scenario.accounts)


class ScenarioExchange:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.logs: dict[tuple[str, str], list[str]] = {}

    def current_scenario(self) -> Scenario:
        return self.scenario.copy()

    def append_log(self, server: str, kind: str, line: str) -> None:
        self.logs.setdefault((server.lower(), kind), []).append(line)


class Lab:
    def scenario(self, name: str) -> Scenario:
        return load_scenario(find_scenario(name))

    def probe(self, s: Scenario) -> LabKerberos:
        return LabKerberos(ScenarioDirectory(s), ScenarioExchange(s))

    def report(self, s: Scenario, env: Environment | None = None) -> ProbeReport:
        return run_probes(env or environment_from_scenario(s), self.probe(s))

    def run(self, name_or_scenario: str | Scenario, change: Callable[[Scenario], None] | None = None,
            env_change: Callable[[Environment], None] | None = None, logs: list[LogText] | None = None,
            probe: bool = True, only: list[str] | None = None) -> list[Finding]:
        s = self.scenario(name_or_scenario) if isinstance(name_or_scenario, str) else name_or_scenario
        if change:
            change(s)
        env = environment_from_scenario(s)
        if env_change:
            env_change(env)
        report = self.report(s, env) if probe else None
        return run_catalogue(env, probe=report, logs=logs, now=s.now, only=only)


def account(s: Scenario, sam: str):
    return next(a for a in s.accounts if a.sam.lower() == sam.lower())


def by_id(findings: list[Finding], check_id: str) -> list[Finding]:
    out = [f for f in findings if f.check_id == check_id]
    assert out, f"{check_id} produced no finding"
    return out
