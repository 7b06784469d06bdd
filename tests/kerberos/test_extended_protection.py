"""Extended Protection: what the wizard reads from each server, the two checks, the lab's per-path rules and
the per-path proof of the simulated Kerberos."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checks"))
from catalogue_kit import Lab, by_id  # noqa: E402

from asa_wizard.core.checks import Status, run_probes  # noqa: E402
from asa_wizard.core.errors import ConfigError  # noqa: E402
from asa_wizard.core.model import ExchangeServer  # noqa: E402
from asa_wizard.core.ports import ProbeOutcome, ProbeResult, TicketResult, client_path  # noqa: E402
from asa_wizard.lab.extended_protection import decide, location_for_path  # noqa: E402
from asa_wizard.lab.scenario import load_scenario  # noqa: E402
from asa_wizard.lab.snapshot import environment_from_scenario  # noqa: E402
from asa_wizard.lab.world import LabWorld  # noqa: E402

FE = "Default Web Site"


@pytest.fixture
def lab() -> Lab:
    return Lab()


def test_ssl_offloading_with_extended_protection_fails_with_the_fix(lab: Lab):
    findings = lab.run("ssl-offload-ep")
    offload = by_id(findings, "ep.ssl-offloading")
    assert [(f.subject, f.status) for f in offload] == [("EX01", Status.FAIL), ("EX02", Status.FAIL)]
    f = offload[0]
    assert "SSLOffloading = $true" in f.evidence and "Default Web Site/Rpc: Require" in f.evidence
    assert ("Get-OutlookAnywhere -Server 'EX01' | Set-OutlookAnywhere -SSLOffloading $false "
            "-InternalClientsRequireSsl $true -ExternalClientsRequireSsl $true") in f.fix
    # Extended Protection itself is as Exchange 2019 CU14 sets it up, and Kerberos to each server works
    assert all(x.status == Status.PASS for x in by_id(findings, "ep.configured"))
    assert all(x.status == Status.PASS for x in by_id(findings, "kerberos.server"))


def test_other_scenarios_do_not_report_offloading(lab: Lab):
    for name in ("healthy", "stale-credential", "new-server-missing-asa"):
        assert all(f.status != Status.FAIL for f in by_id(lab.run(name), "ep.ssl-offloading")), name


def test_offloading_without_extended_protection_is_not_this_finding(lab: Lab):
    from asa_wizard.lab.extended_protection import settings_for

    def off(s):
        for srv in s.servers:
            srv.extended_protection = dict.fromkeys(settings_for(srv), "None")

    findings = lab.run("ssl-offload-ep", change=off)
    assert all(f.status == Status.PASS for f in by_id(findings, "ep.ssl-offloading"))
    configured = by_id(findings, "ep.configured")
    assert all(f.status == Status.WARN and "not configured" in f.evidence for f in configured)
    assert "ExchangeExtendedProtectionManagement.ps1 -ExchangeServerNames EX01" in configured[0].fix


def test_more_than_expected_fails_and_less_warns_with_the_exact_setting(lab: Lab):
    def tweak(s):
        s.server("EX01").extended_protection = {f"{FE}/EWS": "Require"}
        s.server("EX02").extended_protection = {f"{FE}/MAPI": "Allow"}

    findings = {f.subject: f for f in by_id(lab.run("healthy", change=tweak), "ep.configured")}
    ex01, ex02 = findings["EX01"], findings["EX02"]
    assert ex01.status == Status.FAIL and "Default Web Site/EWS: Require (expected Allow)" in ex01.evidence
    assert ("Set-WebConfigurationProperty -PSPath 'IIS:\\' -Location 'Default Web Site/EWS' -Filter "
            "'system.webServer/security/authentication/windowsAuthentication/extendedProtection' -Name 'tokenChecking' "
            "-Value 'Allow'") in ex01.fix
    assert ex02.status == Status.WARN and "Default Web Site/MAPI: Allow (expected Require)" in ex02.evidence


def test_builds_before_extended_protection_support(lab: Lab):
    findings = by_id(lab.run("new-server-missing-asa"), "ep.configured")
    assert all(f.status == Status.SKIPPED and "predates Extended Protection support" in f.skipped_reason
               for f in findings)

    def turn_on(s):
        s.server("Exch-2019").extended_protection = {f"{FE}/RPC": "Require"}

    changed = {f.subject: f for f in by_id(lab.run("new-server-missing-asa", change=turn_on), "ep.configured")}
    assert changed["Exch-2019"].status == Status.FAIL
    assert "does not support it" in changed["Exch-2019"].evidence


def test_not_read_means_skipped_with_the_reason(lab: Lab):
    findings = lab.run("ssl-offload-ep", env_change=lambda env: env.extended_protection.clear())
    for cid in ("ep.configured", "ep.ssl-offloading"):
        assert all(f.status == Status.SKIPPED and "not read" in f.skipped_reason for f in by_id(findings, cid))


# --- reading it over the lab's WinRM, and discovery ------------------------------------------------------
def test_the_wizard_reads_it_over_winrm_and_discovery_keeps_it():
    from asa_wizard.core.discovery import DiscoveryOptions, discover

    with LabWorld.open("ssl-offload-ep") as world:
        ep = world.exchange_port().read_extended_protection("ex01.contoso.com")
        script = world.exchange.received[-1]
        env = discover(world.directory_port(), world.exchange_port(), DiscoveryOptions(asa_sam="EXASA$"))
    assert ep.ssl_offloading is True and ep.exsetup_version == "15.02.1544.004"
    assert ep.setting("Default Web Site/RPC") == "Require" and ep.setting("Default Web Site/EWS") == "Allow"
    assert ep.setting("Exchange Back End/MAPI/emsmdb") == "Require"
    assert "Get-WebConfigurationProperty" in script and "$Server='ex01.contoso.com'" in script
    assert set(env.extended_protection) == {"EX01", "EX02"}
    assert env.extended_protection["EX02"].ssl_offloading is True


def test_scenario_values_are_validated(tmp_path):
    from asa_wizard.resources import scenario_dir

    text = (scenario_dir() / "healthy.toml").read_text()
    bad_location = text.replace('[[servers]]\nname = "EX01"',
                                '[[servers]]\nname = "EX01"\nextended_protection = { "Default Web Site/Nope" = "Allow" }', 1)
    p = tmp_path / "bad.toml"
    p.write_text(bad_location)
    with pytest.raises(ConfigError) as e:
        load_scenario(p)
    assert "not an Exchange virtual directory location" in str(e.value) and "Default Web Site/Nope" in str(e.value)
    p.write_text(text.replace('[[servers]]\nname = "EX01"',
                              '[[servers]]\nname = "EX01"\nextended_protection = { "Default Web Site/EWS" = "On" }', 1))
    with pytest.raises(ConfigError) as e:
        load_scenario(p)
    assert '"None", "Allow" or "Require"' in str(e.value)


# --- the lab's per-path rules and results ----------------------------------------------------------------
@pytest.mark.parametrize("path, location", [
    ("/mapi/emsmdb/", "Default Web Site/MAPI"), ("/rpc/rpcproxy.dll", "Default Web Site/RPC"),
    ("/Microsoft-Server-ActiveSync", "Default Web Site/Microsoft-Server-ActiveSync"),
    ("/Microsoft-Server-ActiveSync/Proxy/x", "Default Web Site/Microsoft-Server-ActiveSync/Proxy"),
    ("/EWS/Exchange.asmx", "Default Web Site/EWS"), ("/Autodiscover/Autodiscover.xml", "Default Web Site/Autodiscover"),
])
def test_a_path_maps_to_its_virtual_directory(path, location):
    assert location_for_path(path) == location


@pytest.mark.parametrize("setting, bound, mismatch, accepted", [
    ("None", False, True, True), ("Allow", False, False, True), ("Allow", True, False, True),
    ("Allow", False, True, False), ("Require", False, False, False), ("Require", True, False, True),
    ("Require", False, True, False),
])
def test_iis_extended_protection_rule(setting, bound, mismatch, accepted):
    assert decide(setting, bound, mismatch)[0] is accepted


def test_the_lab_probe_reports_each_path(lab: Lab):
    s = lab.scenario("healthy")
    probe = lab.probe(s)
    ex01 = ExchangeServer(name="EX01", fqdn="ex01.contoso.com")
    mail = probe.probe_server(ex01, "mail.contoso.com")
    assert mail.outcome == ProbeOutcome.ACCEPTED
    got = {p.path.key: (p.outcome.value, p.channel_bound) for p in mail.paths}
    assert got == {"ews": ("accepted", True), "mapi": ("accepted", True), "rpc": ("accepted", True),
                   "eas": ("not-offered", False)}  # ActiveSync offers Basic only in this scenario
    autodiscover = probe.probe_server(ex01, "autodiscover.contoso.com")
    assert [(p.path.key, p.outcome.value, p.channel_bound) for p in autodiscover.paths] == [
        ("autodiscover", "accepted", False)]  # Autodiscover: Extended Protection None
    only = probe.probe_server(ex01, "mail.contoso.com", paths=(client_path("mapi"),))
    assert [p.path.key for p in only.paths] == ["mapi"]


def test_evidence_lists_every_path(lab: Lab):
    f = next(x for x in by_id(lab.run("stale-credential"), "kerberos.server") if x.status == Status.FAIL)
    assert "EWS /EWS/Exchange.asmx: rejected" in f.evidence
    assert "Outlook Anywhere /rpc/rpcproxy.dll: rejected" in f.evidence


def test_a_probe_without_paths_is_still_used():
    """A probe that takes (server, namespace) only still gives one result per server and namespace."""
    class Old:
        def describe(self):
            return "old"

        def service_ticket(self, spn):
            return TicketResult(spn, True, enctype="aes256-cts-hmac-sha1-96")

        def probe_server(self, server, namespace):
            return ProbeResult(server.name, f"HTTP/{namespace}", ProbeOutcome.ACCEPTED, "ok")

        def s4u(self, *a):
            raise AssertionError

    env = environment_from_scenario(load_scenario(Lab().scenario("healthy").path))
    report = run_probes(env, Old())
    assert {r.outcome for r in report.servers} == {ProbeOutcome.ACCEPTED} and len(report.servers) == 4


@pytest.mark.parametrize("version, supported", [
    ("15.2.1544.4", True), ("15.2.1118.11", True), ("15.2.1118.7", False), ("15.2.986.28", True),
    ("15.2.986.5", False), ("15.1.2507.11", True), ("15.1.2375.30", True), ("15.1.2375.7", False),
    ("15.0.1497.38", True), ("15.0.1497.36", False), ("14.3.513.0", False),
])
def test_which_builds_support_extended_protection(version, supported):
    from asa_wizard.core.checks.extended_protection import ep_supported
    from asa_wizard.core.model import parse_build

    assert ep_supported(parse_build(version)) is supported
