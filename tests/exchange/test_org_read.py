"""Reading an organisation the way an administrator does: the Exchange cmdlets once, through one server's
endpoint, for every server (Microsoft's documented verification command, the virtual directories with
-ADPropertiesOnly), then one Windows-side script per server over WinRM; a server the organisation-wide read
cannot cover is read through its own endpoint, which names what is wrong with it."""

from __future__ import annotations

from asa_wizard.core.discovery import discover
from asa_wizard.core.model import Service
from asa_wizard.lab.scenario import find_scenario, load_scenario

from .conftest import scenario


def _read(w):
    return discover(w.directory_port(), w.exchange_port())


def test_the_cmdlets_run_once_for_the_whole_organisation_and_windows_once_per_server(world_of):
    sent = {}
    for n in (2, 12):
        w = world_of(load_scenario(find_scenario("healthy")).with_servers(n))
        env = _read(w)
        assert len(env.servers) == n and all(s.reachable for s in env.servers)
        assert all(s.asa_latest is not None for s in env.servers)  # every server's ASA status was read
        cmdlets = [c[1] for c in w.exchange.cmdlets]
        sent[n] = cmdlets
        # one Windows-side script per server (IIS, IIS_IUSRS, the service host, the log folder and Extended
        # Protection together), each server on its own WinRM endpoint
        scripts = [server for server, _ in w.endpoint.command_lines]
        assert sorted(scripts) == sorted(s.fqdn for s in env.servers)
        assert {s.name for s in env.servers} == set(env.extended_protection)
    # the same cmdlets, however many servers: organisation-wide, through one endpoint
    assert sorted(sent[2]) == sorted(sent[12])
    assert "Get-ClientAccessService" in sent[12] and "Get-OwaVirtualDirectory" in sent[12]


def test_the_status_of_every_server_comes_from_one_call_and_the_virtual_directories_from_the_directory(world_of):
    w = world_of(load_scenario(find_scenario("healthy")).with_servers(3))
    _read(w)
    calls = {c[1]: c[2] for c in w.exchange.cmdlets}
    assert calls["Get-ClientAccessService"] == ["IncludeAlternateServiceAccountCredentialStatus"]  # no -Identity
    for cmdlet in ("Get-OutlookAnywhere", "Get-MapiVirtualDirectory", "Get-ActiveSyncVirtualDirectory",
                   "Get-WebServicesVirtualDirectory", "Get-OwaVirtualDirectory"):
        assert calls[cmdlet] == ["ADPropertiesOnly"], cmdlet


def test_a_server_that_is_down_is_named_unreachable_and_the_others_are_read(world_of):
    w = world_of(scenario("fresh", EX02="unreachable"))
    env = _read(w)
    down = env.server("EX02")
    up = env.server("EX01")
    assert down is not None and up is not None
    assert down.reachable is False and "refused" in (down.error or "")
    assert up.reachable is True and up.asa_state_known
    assert any(v.server == "EX01" and v.service == Service.MAPI for v in env.vdirs)


def test_the_organisation_wide_status_reports_a_server_it_cannot_reach(world_of):
    w = world_of(scenario("fresh", EX02="unreachable"))
    rps = w.start_endpoint().rps()
    try:
        rows, errors = rps.invoke_each("ex01.contoso.com", "Get-ClientAccessService",
                                       {"IncludeAlternateServiceAccountCredentialStatus": True})
        assert [r["Name"] for r in rows] == ["EX01"]
        assert [e.target for e in errors] == ["EX02"]
        assert "unavailable" in errors[0].problem
        # the directory still answers for it: -ADPropertiesOnly reads no metabase
        oa, none = rps.invoke_each("ex01.contoso.com", "Get-OutlookAnywhere", {"ADPropertiesOnly": True})
        assert sorted(r["Server"] for r in oa) == ["EX01", "EX02"] and none == []
        # without it Exchange reads each server's IIS metabase too, and a server that is down is an error
        oa, failed = rps.invoke_each("ex01.contoso.com", "Get-OutlookAnywhere", {})
        assert [r["Server"] for r in oa] == ["EX01"] and [e.target for e in failed] == ["EX02"]
    finally:
        rps.close()


def test_read_parts_reads_only_what_is_asked(world_of):
    w = world_of(load_scenario(find_scenario("healthy")))
    port = w.exchange_port()
    try:
        state = port.read_parts("ex01.contoso.com", {"mapi"})
        assert [v.service for v in state.vdirs] == [Service.MAPI]
        assert [c[1] for c in w.exchange.cmdlets] == ["Get-MapiVirtualDirectory"]
        assert w.endpoint.command_lines == []  # nothing read over WinRM
        assert state.server.asa_state_known is False  # not read, so not known
    finally:
        port.close()
