"""The whole lab on the wire: `ExchangeRps` (pypsrp) -> `/PowerShell` (psrpcore) -> the lab's Exchange model
(`asa_wizard.lab.exchange_cmdlets`), with the scenario's own logons and settings."""

from __future__ import annotations

import pytest

from asa_wizard.adapters.psrp import PsCredential, RpsError
from asa_wizard.core.secrets import Secret

from .conftest import scenario

EX01 = "ex01.contoso.com"
EX02 = "ex02.contoso.com"
PASSWORD_SWITCH = "IncludeAlternateServiceAccountCredentialPassword"


def test_rbac_hides_the_password_switch_from_a_user_without_organization_configuration(world_of):
    w = world_of(scenario("healthy"))
    with w.rps() as admin, w.rps("CONTOSO\\labviewer", "LabView1!Only") as viewer:
        assert PASSWORD_SWITCH in admin.parameters(EX01, "Get-ClientAccessService")
        seen = viewer.parameters(EX01, "Get-ClientAccessService")
        assert seen and PASSWORD_SWITCH not in seen
        assert "Identity" in seen


def test_remote_powershell_disabled_for_the_lab_admin_refuses_the_session(world_of):
    s = scenario("healthy")
    s.remote_powershell_enabled = False
    w = world_of(s)
    with w.rps() as rps, pytest.raises(RpsError) as info:
        rps.invoke(EX01, "Get-ExchangeServer", {})
    assert info.value.error_id == "AccessDenied"
    assert "RemotePowerShellEnabled is $false" in info.value.problem
    assert "-RemotePowerShellEnabled $true" in info.value.fix
    assert w.endpoint.psrp.open_shells() == 0


def test_a_pushed_credential_reads_back_only_through_a_session_on_that_server(world_of):
    w = world_of(scenario("healthy"))
    password = Secret("Pushed-Over-PSRP-7c1d!")
    with w.rps() as rps:
        rps.invoke(EX01, "Set-ClientAccessService", {
            "Identity": "EX01", "AlternateServiceAccountCredential": [PsCredential("CONTOSO\\EXASA$", password)],
            "CleanUpInvalidAlternateServiceAccountCredentials": True})
        [row] = rps.invoke(EX01, "Get-ClientAccessService", {"Identity": "EX01", PASSWORD_SWITCH: True})
        latest = row["AlternateServiceAccountConfiguration"]["EffectiveCredentials"][0]
        assert latest["QualifiedUserName"] == "CONTOSO\\EXASA$"
        assert latest["Credential"].password == password
        with pytest.raises(RpsError) as info:
            rps.invoke(EX02, "Get-ClientAccessService", {"Identity": "EX01", PASSWORD_SWITCH: True})
        assert info.value.server == EX02 and "EX01" in info.value.problem
        [status] = rps.invoke(EX02, "Get-ClientAccessService",
                              {"Identity": "EX01", "IncludeAlternateServiceAccountCredentialStatus": True})
        assert status["AlternateServiceAccountConfiguration"]["EffectiveCredentials"][0]["Credential"].password \
            is None
    assert password.reveal() not in repr(row)
