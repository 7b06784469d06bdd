"""Inventory and the alternate service account itself."""

from __future__ import annotations

from datetime import timedelta

from asa_wizard.core.model import (
    ENC_AES128,
    ENC_AES256,
    ENC_RC4,
    AccountKind,
    UAC_DONT_EXPIRE_PASSWD,
    enctype_names,
)
from .base import CHECKS, Context, Finding, Status, aware, check, fmt_time, join, plural
from asa_wizard.core.commands import SWITCH, command, hashtable, roll_script, subexpression, switch

# Stale-computer cleanup scripts commonly disable or delete computers whose password is older than this.
STALE_COMPUTER_AGE = timedelta(days=90)


@check("inventory.servers", "Exchange servers found", "discovery",
       "The Exchange servers in the configuration partition: version, site, and whether they could be read; "
       "Exchange 2010 next to 2013 or later is flagged.")
def inventory_servers(ctx: Context) -> list[Finding]:
    c = CHECKS["inventory.servers"]
    servers = ctx.env.servers
    if not servers:
        return [c.finding(Status.FAIL, evidence="No msExchExchangeServer object was found in the configuration "
                          "partition.", reason="Without servers there is nothing to configure: the wrong forest, or "
                          "the account cannot read CN=Microsoft Exchange,CN=Services.",
                          fix="wizard step target: connect to the forest that holds the Exchange organisation.")]
    lines = [f"{s.name}: {s.product} ({s.version or 'version unknown'}), site {s.site or 'unknown'}"
             + ("" if s.reachable is not False else f", not readable: {s.error or 'no answer'}") for s in servers]
    evidence = plural(len(servers), "server") + ":\n" + "\n".join(lines)
    generations = {s.generation for s in servers} - {"unknown"}
    unread = [s for s in servers if s.reachable is False]
    if {"2010", "2013+"} <= generations:
        old = [s.name for s in servers if s.generation == "2010"]
        return [c.finding(Status.WARN, evidence=evidence,
                          reason=f"Exchange 2010 ({join(old)}) and 2013 or later cannot share an ASA: each generation "
                          "needs its own, and array-wide password rolls fail silently across them.",
                          fix="Give the Exchange 2010 servers their own ASA (or finish the migration); "
                          "run the rollout per generation with -ToSpecificServers.")]
    if unread:
        return [c.finding(Status.WARN, evidence=evidence,
                          reason=f"{join([s.name for s in unread])} could not be read: the ASA state of those servers "
                          "is unknown, so the checks cannot prove them.",
                          fix="Check WinRM to those servers (Test-WSMan <server>) and the credentials, then run the "
                          "discovery again (wizard step discovery).")]
    return [c.finding(Status.PASS, evidence=evidence)]


@check("asa.exists", "The alternate service account exists", "asa",
       "The ASA account named by the user (or by the servers' credentials) is in the directory.")
def asa_exists(ctx: Context) -> list[Finding]:
    c = CHECKS["asa.exists"]
    asa = ctx.asa
    if asa is not None:
        return [c.finding(Status.PASS, subject=asa.sam, evidence=f"{ctx.qualified(asa)} at {asa.dn}")]
    name = ctx.env.asa_sam or "EXASA$"
    base = name[:-1] if name.endswith("$") else name
    seen = ctx.env.asa_sam and f"{ctx.env.asa_sam} was not found in the directory." or \
        "No ASA was chosen and no Exchange server holds an ASA credential."
    return [c.finding(
        Status.FAIL, subject=ctx.env.asa_sam or "", evidence=seen,
        reason="Without an ASA every server behind a load-balanced name has its own key, so Kerberos tickets for "
               "the shared name cannot work and clients use NTLM.",
        fix=command("New-ADComputer", Name=base, SamAccountName=base,
                    AccountPassword=subexpression(command("Read-Host", AsSecureString=SWITCH)), Enabled=switch(True))
        + "\n" + command("Set-ADComputer", Identity=base + "$", Replace=hashtable({"msDS-SupportedEncryptionTypes": 24}))
        + "\n"
            "(wizard step asa; the initial password is never used: the rollout sets it)")]


def _need_asa(ctx: Context, check_id: str) -> list[Finding] | None:
    if ctx.asa is None:
        return [CHECKS[check_id].skipped("There is no ASA yet (see asa.exists).")]
    return None


@check("asa.enabled", "The ASA is enabled", "asa", "userAccountControl of the ASA has no ACCOUNTDISABLE (0x2).")
def asa_enabled(ctx: Context) -> list[Finding]:
    c = CHECKS["asa.enabled"]
    if (skip := _need_asa(ctx, c.id)) is not None:
        return skip
    asa = ctx.asa
    assert asa is not None
    evidence = f"userAccountControl = 0x{asa.uac:x}"
    if asa.enabled:
        return [c.finding(Status.PASS, subject=asa.sam, evidence=evidence + " (enabled)")]
    return [c.finding(Status.FAIL, subject=asa.sam, evidence=evidence + " (ACCOUNTDISABLE is set)",
                      reason="The ASA must be an enabled account (Microsoft's procedure creates it with -Enabled:$true); a "
                      "disabled ASA usually means a stale-object cleanup reached it, and its next step, deletion, "
                      "ends Kerberos on every server.",
                      fix=command("Enable-ADAccount", Identity=asa.sam))]


@check("asa.kind", "The ASA is a computer account", "asa",
       "Computer (0x1000) is recommended, a user account (0x200) works, a gMSA is not supported.")
def asa_kind(ctx: Context) -> list[Finding]:
    c = CHECKS["asa.kind"]
    if (skip := _need_asa(ctx, c.id)) is not None:
        return skip
    asa = ctx.asa
    assert asa is not None
    if asa.kind == AccountKind.COMPUTER:
        return [c.finding(Status.PASS, subject=asa.sam, evidence=f"{asa.sam} is a computer account.")]
    if asa.kind == AccountKind.GMSA:
        return [c.finding(Status.FAIL, subject=asa.sam, evidence=f"{asa.sam} is a group managed service account.",
                          reason="Exchange does not support a gMSA as the ASA: the rollout script cannot set its "
                          "password and the servers cannot hold it.",
                          fix="Create a computer account ASA (wizard step asa), roll it out, then move the SPNs to it.")]
    return [c.finding(Status.WARN, subject=asa.sam, evidence=f"{asa.sam} is a user account.",
                      reason="A user account works, but a computer account is recommended: it cannot log on "
                      "interactively and its password never expires by policy.",
                      fix="Keep it if it works (make sure its password does not expire), or move to a computer "
                      "account ASA with wizard step asa.")]


@check("asa.password-age", "The ASA password is not at risk of expiry or cleanup", "rollout",
       "pwdLastSet of a computer ASA against stale-computer cleanup; expiry of a user ASA's password.")
def asa_password_age(ctx: Context) -> list[Finding]:
    c = CHECKS["asa.password-age"]
    if (skip := _need_asa(ctx, c.id)) is not None:
        return skip
    asa = ctx.asa
    assert asa is not None
    pwd = aware(asa.pwd_last_set)
    if pwd is None:
        return [c.skipped("pwdLastSet of the ASA was not read.", subject=asa.sam)]
    age = ctx.now - pwd
    evidence = f"pwdLastSet {fmt_time(pwd)} ({age.days} days ago)"
    roll = roll_script([s.fqdn or s.name for s in ctx.client_servers()], GenerateNewPasswordFor=ctx.qualified(asa),
                       CreateScheduledTask="Exchange-RollAsa")
    if asa.is_computer:
        if age > STALE_COMPUTER_AGE:
            return [c.finding(Status.WARN, subject=asa.sam, evidence=evidence,
                              reason="No machine rolls an ASA's password, so the account looks like a stale computer "
                              "to cleanup scripts (commonly 90 days); if one disables or deletes it, Kerberos stops "
                              "on every server.",
                              fix=f"Exclude {asa.sam} from stale-computer cleanup and roll the password on a schedule:\n"
                              + roll)]
        return [c.finding(Status.PASS, subject=asa.sam, evidence=evidence)]
    if not asa.has_flag(UAC_DONT_EXPIRE_PASSWD):
        return [c.finding(Status.WARN, subject=asa.sam, evidence=evidence + "; the password can expire",
                          reason="A user ASA whose password expires forces a roll at the domain's pace; if nobody "
                          "rolls it, the script's ChangePassword path fails later.",
                          fix=command("Set-ADUser", Identity=asa.sam, PasswordNeverExpires=True) + "\n"
                          "or schedule the roll:\n" + roll)]
    return [c.finding(Status.PASS, subject=asa.sam, evidence=evidence + "; the password does not expire")]


RC4_NOTE = ("Windows domain controllers change how RC4 is handled in 2026 (KB5073381, CVE-2026-20833): the January "
            "2026 updates add audit events (KDCSVC 201-209); from the April 2026 updates, accounts without an explicit "
            "msDS-SupportedEncryptionTypes get AES-only tickets by default; enforcement begins with the July 2026 "
            "updates (the audit mode and its opt-out go away).")
WHY_24 = ("24 (AES only) is this tool's recommendation: RC4 is being removed from Windows Kerberos, an explicit 24 keeps "
          "the ASA working whatever the domain default becomes, and no supported Exchange client needs RC4.")


@check("asa.enctypes", "The ASA has AES encryption types", "asa",
       "msDS-SupportedEncryptionTypes of the ASA: AES present. 28 (RC4+AES) is Microsoft's documented value and "
       "passes with a note; 24 (AES only) is recommended.")
def asa_enctypes(ctx: Context) -> list[Finding]:
    c = CHECKS["asa.enctypes"]
    if (skip := _need_asa(ctx, c.id)) is not None:
        return skip
    asa = ctx.asa
    assert asa is not None
    value = asa.enctypes
    setter = "Set-ADComputer" if asa.is_computer else "Set-ADUser"
    set24 = command(setter, Identity=asa.sam, Replace=hashtable({"msDS-SupportedEncryptionTypes": 24}))
    roll = roll_script([s.fqdn or s.name for s in ctx.client_servers()], GenerateNewPasswordFor=ctx.qualified(asa))
    if value is None:
        return [c.finding(Status.WARN, subject=asa.sam, evidence="msDS-SupportedEncryptionTypes is not set.",
                          reason="Without the attribute the domain controller's default decides the ticket "
                          "encryption; until 2026 that was RC4 for many domains. " + RC4_NOTE,
                          fix=set24 + "\nthen roll the password so AES keys exist:\n" + roll)]
    names = join(enctype_names(value))
    evidence = f"msDS-SupportedEncryptionTypes = {value} ({names})"
    has_aes = bool(value & (ENC_AES128 | ENC_AES256))
    if not has_aes:
        return [c.finding(Status.FAIL, subject=asa.sam, evidence=evidence,
                          reason="Tickets for the Exchange names are RC4 (or DES). " + RC4_NOTE
                          + " Kerberos to Exchange then stops: clients fall back to NTLM.",
                          fix=set24 + "\nthen roll the password so AES keys exist (the old password may predate them):\n"
                          + roll + "\n(wizard step asa)")]
    if value == ENC_RC4 | ENC_AES128 | ENC_AES256:
        return [c.finding(Status.PASS, subject=asa.sam,
                          evidence=evidence + ": Microsoft's documented value for the ASA (it enables RC4, AES128 and "
                          "AES256). Informational: " + WHY_24 + " To move: " + set24 + ", then roll the password.")]
    if value & ENC_RC4:
        return [c.finding(Status.WARN, subject=asa.sam, evidence=evidence,
                          reason="AES is present and used, but RC4 is still allowed. " + RC4_NOTE
                          + " Move to AES only once the KDCSVC audit events are clean. " + WHY_24,
                          fix=set24)]
    return [c.finding(Status.PASS, subject=asa.sam, evidence=evidence)]


@check("asa.one-per-generation", "One ASA per Exchange generation", "asa",
       "No ASA credential is shared between Exchange 2010 and Exchange 2013 or later servers.")
def asa_one_per_generation(ctx: Context) -> list[Finding]:
    c = CHECKS["asa.one-per-generation"]
    by_account: dict[str, dict[str, list[str]]] = {}
    for s in ctx.env.servers:
        if s.asa_latest is None or s.generation == "unknown":
            continue
        key = s.asa_latest.account.lower()
        by_account.setdefault(key, {}).setdefault(s.generation, []).append(s.name)
    if not by_account:
        return [c.skipped("No server holds an ASA credential yet.")]
    findings = []
    for account, gens in sorted(by_account.items()):
        shown = next(s.asa_latest.account for s in ctx.env.servers
                     if s.asa_latest and s.asa_latest.account.lower() == account)
        evidence = "; ".join(f"Exchange {g}: {join(names)}" for g, names in sorted(gens.items()))
        if len(gens) > 1:
            findings.append(c.finding(
                Status.FAIL, subject=shown, evidence=f"{shown} is held by {evidence}",
                reason="Exchange 2010 and 2013 or later cannot share an ASA: tickets for the shared names fail on one "
                       "of the generations.",
                fix="Create a separate ASA for the other generation (wizard step asa) and roll it to those servers "
                    "with -ToSpecificServers; keep each namespace's SPN on the ASA of the servers that answer it."))
        else:
            findings.append(c.finding(Status.PASS, subject=shown, evidence=f"{shown} is held by {evidence}"))
    return findings
