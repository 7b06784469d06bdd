"""The pre-flight's GetCommandMetadata, read from each CommandMetadata's CLIXML like pipeline output: the same
parameter names as pypsrp's own reading of the same answer, for an administrator and for a user whose RBAC
roles hide the password switch."""

from __future__ import annotations

import pytest

from asa_wizard.lab.exchange_cmdlets import VIEWER, VIEWER_PASSWORD

from .conftest import scenario

EX01 = "ex01.contoso.com"
CMDLETS = ["Get-ClientAccessService", "Set-ClientAccessService", "Get-Mailbox"]


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_the_parameters_are_those_pypsrp_reads_from_the_same_answer(world_of, who):
    w = world_of(scenario("fresh"))
    logon = () if who == "admin" else (f"CONTOSO\\{VIEWER}", VIEWER_PASSWORD)
    with w.rps(*logon) as rps:
        ours = rps.parameters_of(EX01, CMDLETS)
        pool = rps._pools[EX01].pool
        theirs = {c: frozenset() for c in CMDLETS}
        for meta in pool.get_command_metadata(CMDLETS):
            theirs[meta.name] = frozenset(str(k) for k in meta.parameters)
    assert ours == theirs
    assert ours["Get-Mailbox"] == frozenset()  # not a command this endpoint offers the lab's users
    password = "IncludeAlternateServiceAccountCredentialPassword" in ours["Get-ClientAccessService"]
    assert password == (who == "admin")  # View-Only Organization Management does not see it
    assert "IncludeAlternateServiceAccountCredentialStatus" in ours["Get-ClientAccessService"]
