"""A run ends its sessions on the servers: Exchange counts a user's open remote PowerShell shells against its
throttling policy (18 by default), so a run that left its runspace pools open would lock its own account out
of the endpoint after a few runs. Closing the target closes them before the lab stops."""

from __future__ import annotations

from asa_wizard.core.answers import Answers
from asa_wizard.service import discover
from asa_wizard.service.session import open_target


def test_closing_a_run_closes_its_runspace_pools_on_the_servers(monkeypatch):
    answers = Answers()
    answers.target.lab = "healthy"
    opened = open_target(answers)
    world = opened.target.lab
    discover(opened)
    assert world.endpoint.psrp.open_shells() >= 1  # the organisation read kept its pool for the run
    left_open: list[int] = []
    stop = world.close
    monkeypatch.setattr(world, "close", lambda: (left_open.append(world.endpoint.psrp.open_shells()), stop()))
    opened.close()
    assert left_open == [0]
