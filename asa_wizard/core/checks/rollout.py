"""The ASA credential on every Exchange server: present, current, the same account, and managed."""

from __future__ import annotations

from asa_wizard.core.model import AsaCredential, ExchangeServer
from asa_wizard.core.commands import command, script_block
from .base import CHECKS, Context, Finding, Status, aware, check, fmt_time, join


def held(s: ExchangeServer) -> str:
    """The server's ASA state the way Get-ClientAccessService shows it."""

    def one(c: AsaCredential | None) -> str:
        return f"{fmt_time(c.when_added)}, {c.account}" if c else "<Not set>"

    return f"Latest: {one(s.asa_latest)}; Previous: {one(s.asa_previous)}"


def _unknown(s: ExchangeServer) -> str | None:
    if s.reachable is False:
        return f"{s.name} could not be read: {s.error or 'no answer'}."
    if not s.asa_state_known:
        return f"The ASA state of {s.name} was not read (WinRM)."
    return None


@check("rollout.coverage", "Every server holds the ASA credential", "rollout",
       "Each client-facing Exchange server holds the ASA as its latest or previous credential.")
def rollout_coverage(ctx: Context) -> list[Finding]:
    c = CHECKS["rollout.coverage"]
    asa = ctx.asa
    if asa is None:
        return [c.skipped("There is no ASA yet (see asa.exists).")]
    out = []
    for s in ctx.client_servers():
        if (why := _unknown(s)) is not None:
            out.append(c.finding(Status.WARN, subject=s.name, evidence=why,
                                 reason="A server that cannot be checked may lack the credential and reject tickets.",
                                 fix="Check WinRM to the server (Test-WSMan), then run the discovery again."))
        elif ctx.holds(s, asa) is not None:
            out.append(c.finding(Status.PASS, subject=s.name, evidence=held(s)))
        else:
            out.append(c.finding(
                Status.FAIL, subject=s.name, evidence=f"{s.name} holds no credential of {ctx.qualified(asa)}. {held(s)}",
                reason="Clients that the load balancer sends to this server present tickets encrypted with the ASA's "
                       "key, which it does not have: KRB_AP_ERR_MODIFIED, 401 1 2148074254, Outlook prompts.",
                fix=ctx.roll_fix([s])))
    return out or [c.skipped("No client-facing Exchange servers were found.")]


@check("rollout.current", "Every server holds the current ASA password", "rollout",
       "The server accepts a ticket of the ASA's current key version (msDS-KeyVersionNumber) when a Kerberos "
       "probe ran; without one, its newest credential is not older than pwdLastSet (WhenAdded: only a hint).")
def rollout_current(ctx: Context) -> list[Finding]:
    c = CHECKS["rollout.current"]
    asa = ctx.asa
    if asa is None:
        return [c.skipped("There is no ASA yet (see asa.exists).")]
    out = []
    pwd = aware(asa.pwd_last_set)
    for s in ctx.client_servers():
        cred = ctx.holds(s, asa)
        if _unknown(s) is not None or cred is None:
            out.append(c.skipped(f"{s.name} holds no readable credential of the ASA (see rollout.coverage).",
                                 subject=s.name))
            continue
        verdict = ctx.verdict(s)
        kvno = f" (msDS-KeyVersionNumber {asa.key_version})" if asa.key_version is not None else ""
        if verdict.current:
            out.append(c.finding(Status.PASS, subject=s.name,
                                 evidence=f"{held(s)}; AD password set {fmt_time(pwd)}{kvno}; {verdict.why}"))
            continue
        out.append(c.finding(
            Status.FAIL, subject=s.name,
            evidence=f"{verdict.why}. {held(s)}; the password in AD was set {fmt_time(pwd)}{kvno}.",
            reason="The server holds an older password of the ASA: it cannot decrypt tickets issued with the current "
                   "key (KRB_AP_ERR_MODIFIED). Typically the roll ran while this server was down, or the server "
                   "received a copy of an old password.",
            fix=ctx.roll_fix([s])))
    return out or [c.skipped("No client-facing Exchange servers were found.")]


@check("rollout.same-account", "All servers hold the same ASA", "rollout",
       "Every server's latest credential names the same account, the ASA.")
def rollout_same_account(ctx: Context) -> list[Finding]:
    c = CHECKS["rollout.same-account"]
    asa = ctx.asa
    holding = [s for s in ctx.client_servers() if s.asa_latest is not None]
    if asa is None or not holding:
        return [c.skipped("No server holds an ASA credential yet." if asa else "There is no ASA yet (see asa.exists).")]
    other = [s for s in holding if not ctx.credential_is(s.asa_latest, asa)]
    if not other:
        return [c.finding(Status.PASS, evidence=f"{join([s.name for s in holding])} hold {ctx.qualified(asa)}.")]
    return [c.finding(
        Status.FAIL, subject=s.name,
        evidence=f"{s.name}'s latest credential is {s.asa_latest.account if s.asa_latest else '?'}, not "
                 f"{ctx.qualified(asa)}.",
        reason="Servers behind one name must share one key: tickets for the name can be decrypted only by the "
               "servers that hold the SPN owner's credential.",
        fix=ctx.roll_fix([s])) for s in other]


@check("rollout.service-host", "MSExchangeServiceHost is running", "rollout",
       "The Microsoft Exchange Service Host service, which manages the ASA credential, runs on each server.")
def rollout_service_host(ctx: Context) -> list[Finding]:
    c = CHECKS["rollout.service-host"]
    out = []
    for s in ctx.client_servers():
        if s.service_host_running is None:
            out.append(c.skipped("The service state was not read.", subject=s.name))
        elif s.service_host_running:
            out.append(c.finding(Status.PASS, subject=s.name, evidence="MSExchangeServiceHost is running."))
        else:
            out.append(c.finding(
                Status.FAIL, subject=s.name, evidence="MSExchangeServiceHost is stopped.",
                reason="The service host loads the ASA credential for the Client Access services; without it the "
                       "rollout script cannot push the credential and the server may not use it.",
                fix=command("Invoke-Command", ComputerName=s.fqdn or s.name, ScriptBlock=script_block(
                    command("Set-Service", "MSExchangeServiceHost", StartupType="Automatic"),
                    command("Start-Service", "MSExchangeServiceHost")))))
    return out or [c.skipped("No client-facing Exchange servers were found.")]
