"""The lab's Exchange cmdlets with Microsoft's semantics, over the real wire (pypsrp to the lab's /PowerShell)."""

from __future__ import annotations

import pytest

from asa_wizard.adapters.psrp import PsCredential, RpsError
from asa_wizard.core.secrets import Secret
from asa_wizard.lab.exchange_cmdlets import VIEWER, VIEWER_PASSWORD
from asa_wizard.lab.scenario import find_scenario, load_scenario

ASA = "CONTOSO\\EXASA$"


def lab(name: str = "reroll-with-spns", **settings):
    s = load_scenario(find_scenario(name))
    for k, v in settings.items():
        setattr(s, k, v)
    return s


def creds(rps, server: str, password: bool = False) -> list[dict]:
    flag = "IncludeAlternateServiceAccountCredentialPassword" if password else \
        "IncludeAlternateServiceAccountCredentialStatus"
    (row,) = rps.invoke(server, "Get-ClientAccessService", {"Identity": server, flag: True})
    return row["AlternateServiceAccountConfiguration"]["EffectiveCredentials"]


def test_the_credential_list_is_per_server_newest_first_with_when_added(world_of):
    w = world_of(lab())
    rps = w.rps()
    try:
        rps.invoke("ex01.contoso.com", "Set-ClientAccessService", {
            "Identity": "ex01.contoso.com", "CleanUpInvalidAlternateServiceAccountCredentials": True,
            "AlternateServiceAccountCredential": PsCredential(ASA, Secret("Second-Lab-Pass-1!"))})
        one = creds(rps, "ex01.contoso.com")
        two = creds(rps, "ex02.contoso.com")
        assert [c["QualifiedUserName"] for c in one] == [ASA, ASA] and len(two) == 1  # per server
        assert one[0]["WhenAdded"] > one[1]["WhenAdded"]  # newest first, stamped at push time
        assert one[0]["WhenAdded"] > w.directory_port().get_account("EXASA$").pwd_last_set  # not a proof of AD
        assert one[0]["Credential"].password is None  # no password without the switch
    finally:
        rps.close()


def test_passwords_only_through_a_session_on_that_same_server(world_of):
    w = world_of(lab())
    rps = w.rps()
    try:
        rps.invoke("ex01.contoso.com", "Set-ClientAccessService", {
            "Identity": "ex01.contoso.com", "AlternateServiceAccountCredential": PsCredential(ASA, Secret("Pw-On-Ex01!"))})
        here = creds(rps, "ex01.contoso.com", password=True)
        assert here[0]["Credential"].password == Secret("Pw-On-Ex01!")
        with pytest.raises(RpsError) as info:
            rps.invoke("ex02.contoso.com", "Get-ClientAccessService", {
                "Identity": "ex01.contoso.com", "IncludeAlternateServiceAccountCredentialPassword": True})
        assert "only be read through a session on EX01" in info.value.problem
    finally:
        rps.close()


def test_remove_wipes_cleanup_keeps_only_what_validates_and_new_ones_are_prepended_in_order(world_of):
    w = world_of(lab())
    rps = w.rps()
    try:
        a, b = PsCredential(ASA, Secret("Pw-A-123456!")), PsCredential(ASA, Secret("Pw-B-123456!"))
        rps.invoke("ex01.contoso.com", "Set-ClientAccessService", {"Identity": "ex01.contoso.com",
                                                                    "AlternateServiceAccountCredential": [a, b]})
        got = [c["Credential"].password for c in creds(rps, "ex01.contoso.com", password=True)]
        assert got[:2] == [a.password, b.password] and len(got) == 3  # prepended in the order given, old kept
        rps.invoke("ex01.contoso.com", "Set-ClientAccessService", {
            "Identity": "ex01.contoso.com", "CleanUpInvalidAlternateServiceAccountCredentials": True})
        (left,) = w.exchange.server("EX01").credentials  # a and b never validated against AD: dropped
        assert w.exchange.credential_valid(left)
        rps.invoke("ex01.contoso.com", "Set-ClientAccessService", {
            "Identity": "ex01.contoso.com", "RemoveAlternateServiceAccountCredentials": True})
        assert creds(rps, "ex01.contoso.com") == []
    finally:
        rps.close()


def test_asa_parameters_cannot_be_mixed_with_autodiscover_ones(world_of):
    w = world_of(lab())
    rps = w.rps()
    try:
        with pytest.raises(RpsError) as info:
            rps.invoke("ex01.contoso.com", "Set-ClientAccessService", {
                "Identity": "ex01.contoso.com", "RemoveAlternateServiceAccountCredentials": True,
                "AutoDiscoverServiceInternalUri": "https://autodiscover.contoso.com/Autodiscover/Autodiscover.xml"})
        assert "Parameter set cannot be resolved" in info.value.problem
        assert len(w.exchange.server("EX01").credentials) == 1  # nothing changed
    finally:
        rps.close()


def test_rbac_hides_the_password_switch_from_a_user_without_organization_configuration(world_of):
    w = world_of(lab())
    admin = w.rps()
    viewer = w.rps(f"CONTOSO\\{VIEWER}", VIEWER_PASSWORD)
    try:
        assert "IncludeAlternateServiceAccountCredentialPassword" in admin.parameters("ex01.contoso.com",
                                                                                      "Get-ClientAccessService")
        seen = viewer.parameters("ex01.contoso.com", "Get-ClientAccessService")
        assert "IncludeAlternateServiceAccountCredentialStatus" in seen
        assert "IncludeAlternateServiceAccountCredentialPassword" not in seen
        assert not viewer.parameters("ex01.contoso.com", "Set-ClientAccessService")  # hidden altogether
        pre = w.exchange_port().preflight("ex01.contoso.com")
        assert pre.ok
    finally:
        admin.close()
        viewer.close()


def test_remote_powershell_disabled_refuses_the_session_and_the_preflight_says_so(world_of):
    w = world_of(lab(remote_powershell_enabled=False))
    pre = w.exchange_port().preflight("ex01.contoso.com")
    assert not pre.ok and "RemotePowerShellEnabled" in pre.problems[0][0]


def test_an_orphaned_sid_in_iis_iusrs_is_listed_not_fatal(world_of):
    s = lab()
    s.server("EX01").iis_iusrs.append("S-1-5-21-1004336348-1177238915-682003330-4120")
    w = world_of(s)
    state = w.exchange_port().read_server("EX01")
    assert "S-1-5-21-1004336348-1177238915-682003330-4120" in state.iis_iusrs and not state.errors


def test_a_failing_part_of_a_read_is_reported_as_that_part(world_of):
    s = lab()
    s.server("EX02").fault = "iis-unreadable"
    w = world_of(s)
    state = w.exchange_port().read_server("EX02")
    assert set(state.errors) == {"iis"} and "applicationHost.config" in state.errors["iis"]
    assert state.server.asa_latest is not None and state.iis_iusrs  # the other parts were read
    assert state.server.service_host_running is True
    assert state.iis_log_folder == "C:\\inetpub\\logs\\LogFiles\\W3SVC1"
