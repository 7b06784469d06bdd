"""Extended Protection (channel binding in IIS Windows authentication) on each Exchange server.

Exchange Server 2019 CU14 and later enable Extended Protection at setup. The expected `tokenChecking` per
virtual directory is the table of Microsoft's HealthChecker / ExchangeExtendedProtectionManagement.ps1
(`EXPECTED`). Extended Protection cannot work behind SSL offloading: the server must terminate the client's
TLS itself, or the channel binding it checks is not the client's (Kerberos and NTLM then fail).
"""

from __future__ import annotations

from collections.abc import Iterator

from asa_wizard.core.model import ExchangeServer, ExtendedProtection, parse_build
from asa_wizard.core.ports import PathResult, ProbeOutcome
from asa_wizard.core.commands import FALSE, TRUE, command, pipeline
from .base import CHECKS, Context, Finding, Status, check

FE = "Default Web Site"
BE = "Exchange Back End"

# (location, expected tokenChecking) on a build that supports Extended Protection
EXPECTED: dict[str, str] = {
    f"{FE}/API": "Require", f"{BE}/API": "Require",
    f"{FE}/Autodiscover": "None", f"{BE}/Autodiscover": "None",
    f"{FE}/ECP": "Require", f"{BE}/ECP": "Require",
    f"{FE}/EWS": "Allow", f"{BE}/EWS": "Require",
    f"{FE}/Microsoft-Server-ActiveSync": "Allow", f"{BE}/Microsoft-Server-ActiveSync": "Require",
    f"{FE}/Microsoft-Server-ActiveSync/Proxy": "Allow", f"{BE}/Microsoft-Server-ActiveSync/Proxy": "Require",
    f"{FE}/OAB": "Allow", f"{BE}/OAB": "Require",
    f"{FE}/Powershell": "None", f"{BE}/Powershell": "Require",
    f"{FE}/OWA": "Require", f"{BE}/OWA": "Require",
    f"{FE}/RPC": "Require", f"{BE}/RPC": "Require",
    f"{FE}/MAPI": "Require",
    f"{BE}/PushNotifications": "Require",
    f"{BE}/RPCWithCert": "Require",
    f"{BE}/MAPI/emsmdb": "Require",
    f"{BE}/MAPI/nspi": "Require",
}
RANK = {"None": 0, "Allow": 1, "Require": 2}
NO_PROBE = "No Kerberos probe ran (wizard step verify runs it)."
DEFAULT_ON_BUILD = (15, 2, 1544)  # Exchange Server 2019 CU14: setup turns Extended Protection on


def ep_supported(build: tuple[int, ...]) -> bool:
    """Does this Exchange build (ExSetup version: SUs count) support Extended Protection (August 2022 SU+)?"""
    if len(build) < 3 or build[0] != 15:
        return False
    minor, b, rev = build[1], build[2], build[3] if len(build) > 3 else 0
    if minor == 2:
        return b > 1118 or (b == 1118 and rev >= 11) or (b == 986 and rev >= 28)
    if minor == 1:
        return b > 2507 or (b == 2507 and rev >= 11) or (b == 2375 and rev >= 30)
    if minor == 0:
        return b > 1497 or (b == 1497 and rev >= 38)
    return False


def expected_for(build: tuple[int, ...]) -> dict[str, str]:
    """The expected tokenChecking per location for a build: the table, or None everywhere before support."""
    if ep_supported(build):
        return dict(EXPECTED)
    return dict.fromkeys(EXPECTED, "None")


def _build_of(server: ExchangeServer, ep: ExtendedProtection) -> tuple[int, ...]:
    return parse_build(ep.exsetup_version) or server.build


def _read_servers(c, ctx: Context, out: list[Finding]) -> Iterator[tuple[ExchangeServer, ExtendedProtection]]:
    """The client-facing servers whose Extended Protection was read, with it; each other one is added to `out`
    as skipped, with the reason."""
    for server in ctx.client_servers():
        ep = ctx.env.extended_protection.get(server.name)
        if ep is None:
            out.append(c.skipped("Extended Protection was not read from this server (it needs WinRM to the "
                                 "server).", subject=server.name))
        elif ep.error:
            out.append(c.skipped(f"Extended Protection could not be read: {ep.error}", subject=server.name))
        else:
            yield server, ep


@check("ep.configured", "Extended Protection is configured as Exchange expects", "client-auth",
       "tokenChecking of every Exchange virtual directory against Microsoft's table for the server's build.")
def ep_configured(ctx: Context) -> list[Finding]:
    c = CHECKS["ep.configured"]
    out: list[Finding] = []
    for s, ep in _read_servers(c, ctx, out):
        build = _build_of(s, ep)
        version = ep.exsetup_version or s.version or "unknown build"
        if not ep_supported(build):
            if ep.enabled:
                out.append(c.finding(
                    Status.FAIL, subject=s.name,
                    evidence=f"Extended Protection is configured on {version}, a build that does not support it.",
                    reason="Extended Protection is configured, but not supported on this Exchange Server build: "
                           "clients can fail to authenticate.",
                    fix=f"Install the latest Exchange security update on {s.name}, or turn Extended Protection off "
                        "with Microsoft's ExchangeExtendedProtectionManagement.ps1 -RollbackType "
                        "RestoreConfiguration."))
            else:
                out.append(c.skipped(f"{version} predates Extended Protection support (August 2022 security "
                                     "update): nothing to compare.", subject=s.name))
            continue
        expected = expected_for(build)
        higher, lower, missing = [], [], []
        for location, want in expected.items():
            have = ep.setting(location)
            if have is None:
                missing.append(location)
            elif RANK.get(have, 0) > RANK[want]:
                higher.append(f"{location}: {have} (expected {want})")
            elif RANK.get(have, 0) < RANK[want]:
                lower.append(f"{location}: {have} (expected {want})")
        if not ep.enabled:
            out.append(c.finding(
                Status.WARN, subject=s.name, evidence=f"Extended Protection is not configured on {s.name} ({version}).",
                reason="Without Extended Protection the server is open to authentication relay (CVE-2024-21410). "
                       "It does not break Kerberos, but clients that bind the channel are not checked.",
                fix=f"Run Microsoft's ExchangeExtendedProtectionManagement.ps1 -ExchangeServerNames {s.name} "
                    "(https://aka.ms/ExchangeEPDoc) after checking the load balancer does not offload TLS."))
            continue
        if not higher and not lower:
            front = "; ".join(f"{loc.split('/', 1)[1]} {ep.setting(loc)}" for loc in expected
                              if loc.startswith(FE + "/") and ep.setting(loc) is not None)
            out.append(c.finding(Status.PASS, subject=s.name,
                                 evidence=f"All {len(expected) - len(missing)} locations as expected ({version}); "
                                          f"front end: {front}"
                                 + (f" (not present on this server: {', '.join(missing)})" if missing else "")))
            continue
        evidence = "\n".join(higher + lower)
        if higher:
            out.append(c.finding(
                Status.FAIL, subject=s.name, evidence="Extended Protection isn't configured as expected:\n" + evidence,
                reason="A virtual directory requires more channel binding than Exchange supports there: clients "
                       "that do not bind the channel on it (Outlook for Mac, some ActiveSync devices, the EWS "
                       "clients of hybrid) fail to authenticate.",
                fix=_fix(s, higher + lower)))
        else:
            out.append(c.finding(
                Status.WARN, subject=s.name, evidence="Extended Protection isn't configured as expected:\n" + evidence,
                reason="A virtual directory checks less than Exchange expects: it works, but authentication relay "
                       "to it is not blocked.",
                fix=_fix(s, lower)))
    return out or [c.skipped("No client-facing Exchange servers were found.")]


def _fix(server: ExchangeServer, lines: list[str]) -> str:
    cmds = []
    for line in lines:
        location, _, rest = line.partition(": ")
        want = rest.rsplit("expected ", 1)[1].rstrip(")")
        cmds.append(command("Set-WebConfigurationProperty", PSPath="IIS:\\", Location=location,
                            Filter="system.webServer/security/authentication/windowsAuthentication/extendedProtection",
                            Name="tokenChecking", Value=want))
    return ("On " + server.name + " (elevated PowerShell), or run Microsoft's ExchangeExtendedProtectionManagement.ps1 "
            f"-ExchangeServerNames {server.name}:\n" + "\n".join(cmds))


@check("ep.ssl-offloading", "No SSL offloading where Extended Protection is on", "client-auth",
       "Outlook Anywhere's SSLOffloading on each server that has Extended Protection turned on.")
def ep_ssl_offloading(ctx: Context) -> list[Finding]:
    c = CHECKS["ep.ssl-offloading"]
    out: list[Finding] = []
    for s, ep in _read_servers(c, ctx, out):
        if ep.ssl_offloading is None:
            out.append(c.skipped("No Outlook Anywhere virtual directory reported SSLOffloading.", subject=s.name))
            continue
        rpc = ep.setting(f"{FE}/RPC") or "None"
        evidence = (f"Outlook Anywhere SSLOffloading = {'$true' if ep.ssl_offloading else '$false'}; "
                    f"Extended Protection {'on' if ep.enabled else 'off'} (Default Web Site/Rpc: {rpc})")
        if not ep.ssl_offloading or not ep.enabled:
            out.append(c.finding(Status.PASS, subject=s.name, evidence=evidence))
            continue
        out.append(c.finding(
            Status.FAIL, subject=s.name, evidence=evidence,
            reason="Extended Protection is not supported with SSL offloading: the load balancer ends the client's TLS, "
                   "so the channel binding the server checks is not the client's. Kerberos and NTLM both fail for "
                   "Outlook Anywhere (Microsoft's EP script refuses to run on such a server).",
            fix=pipeline(command("Get-OutlookAnywhere", Server=s.name),
                         command("Set-OutlookAnywhere", SSLOffloading=FALSE, InternalClientsRequireSsl=TRUE,
                                 ExternalClientsRequireSsl=TRUE)) + "\n"
                "and let the load balancer pass TLS through to the server, or re-encrypt (SSL bridging) with the "
                "same certificate the servers have: the channel binding is the hash of that certificate."))
    return out or [c.skipped("No client-facing Exchange servers were found.")]


@check("ep.channel-binding", "The ticket is accepted with the channel binding of the client's TLS", "verify",
       "Per server and path: a ticket bound to the probe's own TLS connection (Extended Protection) is accepted; "
       "a path that accepts the ticket only without the binding has a TLS-terminating device in front of it.")
def ep_channel_binding(ctx: Context) -> list[Finding]:
    c = CHECKS["ep.channel-binding"]
    if ctx.probe is None:
        return [c.skipped(NO_PROBE)]
    by_server: dict[str, list[PathResult]] = {}
    why_not: dict[str, str] = {}
    for r in ctx.probe.servers:
        by_server.setdefault(r.server.lower(), []).extend(r.paths)
        if not r.paths and r.detail:
            why_not.setdefault(r.server.lower(), f"{r.spn}: {r.outcome.value} - {r.detail}")
    out = []
    for s in ctx.client_servers():
        paths = by_server.get(s.name.lower(), [])
        if not paths:
            out.append(c.skipped("No path of this server was probed" + (
                f" ({why_not[s.name.lower()]})" if s.name.lower() in why_not else "") + ".", subject=s.name))
            continue
        proven = [p for p in paths if p.outcome == ProbeOutcome.ACCEPTED]
        broken = [p for p in paths if p.outcome == ProbeOutcome.CHANNEL_BINDING]
        if broken:
            out.append(c.finding(
                Status.FAIL, subject=s.name, evidence="\n".join(path_line(p) for p in broken + proven),
                reason="Extended Protection checks the channel binding of the TLS connection the server itself "
                       "terminated. The ticket was refused with the binding of the probe's connection and accepted "
                       "without it, so another TLS connection ends in front of the server (a TLS-terminating load "
                       "balancer or proxy). Clients going that way fail Kerberos and NTLM on every Require path.",
                fix=binding_fix(s)))
        elif not proven:
            out.append(c.skipped("No path of this server accepted the ticket, so the channel binding is not proven "
                                 "(see kerberos.server).", subject=s.name))
        else:
            evidence = "\n".join(path_line(p) + (" (channel-bound)" if p.channel_bound else "") for p in proven)
            out.append(c.finding(Status.PASS, subject=s.name, evidence=evidence))
    return out or [c.skipped("No client-facing Exchange servers were found.")]


def path_line(p: PathResult) -> str:
    """One path's result as the evidence shows it: 'MAPI over HTTP /mapi/emsmdb/: accepted - ...'."""
    return f"{p.path.title} {p.path.path}: {p.outcome.value}" + (f" - {p.detail}" if p.detail else "")


def binding_fix(server: ExchangeServer) -> str:
    return ("Let the load balancer (or reverse proxy) in front of " + server.name + " pass TLS through, or re-encrypt "
            "(SSL bridging) with the very certificate the server has: the channel binding is the hash of the "
            "certificate the client saw, so a device with another certificate breaks it. Then check that "
            f"{command('Get-OutlookAnywhere', Server=server.name)} shows SSLOffloading $false (see ep.ssl-offloading).")
