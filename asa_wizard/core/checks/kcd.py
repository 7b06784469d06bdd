"""Kerberos constrained delegation for a Secure Email Gateway: the service account impersonates users
(S4U2Self) and asks for tickets to the Exchange HTTP SPN on their behalf (S4U2Proxy)."""

from __future__ import annotations

from typing import Callable

from asa_wizard.core.model import (
    UAC_NOT_DELEGATED,
    UAC_TRUSTED_FOR_DELEGATION,
    UAC_TRUSTED_TO_AUTH_FOR_DELEGATION,
    Account,
    IisAuth,
    Service,
    normalize_account,
)
from asa_wizard.core.commands import (APPCMD, FALSE, command, hashtable, native, script_block, setspn,
                                        subexpression)
from .base import CHECKS, Check, Context, Finding, Status, check, join

NO_SEG = "No Secure Email Gateway is configured (wizard step seg names its service account)."


def _seg_account(ctx: Context, c: Check) -> tuple[Account | None, list[Finding] | None]:
    """The SEG service account, or the finding that says why the check cannot run."""
    seg = ctx.env.seg
    if seg is None:
        return None, [c.skipped(NO_SEG)]
    account = ctx.env.account_by_sam(seg.service_account)
    if account is None:
        return None, [c.finding(Status.FAIL, subject=seg.service_account,
                                evidence=f"The SEG service account {seg.service_account} was not found in the directory.",
                                reason="The gateway cannot impersonate anyone without its service account.",
                                fix="Check the name (sAMAccountName) in wizard step seg, or create the account.")]
    return account, None


def _set_cmd(a: Account) -> str:
    return "Set-ADComputer" if a.is_computer else "Set-ADUser"


def target_spns(ctx: Context) -> list[str]:
    """The SPNs the gateway must be allowed to delegate to: HTTP/<ActiveSync namespace> (and EWS if proxied)."""
    services = [Service.EAS] + ([Service.EWS] if ctx.env.seg and ctx.env.seg.ews_proxy else [])
    return [ns.spn for ns in ctx.namespaces_for(*services)]


@check("kcd.service-account-spn", "The SEG service account has an SPN", "seg",
       "The gateway's service account holds at least one SPN (AD only offers delegation for accounts with one).")
def kcd_service_account_spn(ctx: Context) -> list[Finding]:
    c = CHECKS["kcd.service-account-spn"]
    a, skip = _seg_account(ctx, c)
    if a is None:
        return skip or []
    if a.spns:
        return [c.finding(Status.PASS, subject=a.sam, evidence=f"{a.sam} holds {join(a.spns)}.")]
    base = a.sam.rstrip("$")
    return [c.finding(Status.FAIL, subject=a.sam, evidence=f"{a.sam} has no servicePrincipalName.",
                      reason="Delegation cannot be set for an account until it has an SPN (the Delegation tab does not "
                      "appear), and S4U needs the gateway to be a service principal.",
                      fix=f"{setspn('-S', f'HTTP/{base}', ctx.qualified(a))}\n(wizard step seg)")]


@check("kcd.protocol-transition", "The SEG account may use any authentication protocol", "seg",
       "TRUSTED_TO_AUTH_FOR_DELEGATION (0x1000000) is set on the gateway's service account (protocol transition).")
def kcd_protocol_transition(ctx: Context) -> list[Finding]:
    return _uac_flag(
        ctx, "kcd.protocol-transition", UAC_TRUSTED_TO_AUTH_FOR_DELEGATION, "TRUSTED_TO_AUTH_FOR_DELEGATION", True,
        reason="The gateway receives certificates or passwords, not Kerberos tickets, from devices: it "
        "needs protocol transition (S4U2Self with a forwardable ticket), else the KDC answers "
        "S4U2Proxy with KDC_ERR_BADOPTION.",
        fix=lambda identity: command("Set-ADAccountControl", Identity=identity, TrustedToAuthForDelegation=True)
        + "\n(ADUC: Delegation tab, 'Use any authentication protocol'; wizard step seg)")


@check("kcd.no-unconstrained", "The SEG account is not trusted for unconstrained delegation", "seg",
       "TRUSTED_FOR_DELEGATION (0x80000) is not set on the gateway's service account.")
def kcd_no_unconstrained(ctx: Context) -> list[Finding]:
    return _uac_flag(
        ctx, "kcd.no-unconstrained", UAC_TRUSTED_FOR_DELEGATION, "TRUSTED_FOR_DELEGATION", False,
        reason="Unconstrained delegation lets the gateway act as any user to any service in the forest; "
        "and with it set, the constrained delegation list is not what the KDC uses.",
        fix=lambda identity: command("Set-ADAccountControl", Identity=identity, TrustedForDelegation=False)
        + "\n(wizard step seg)")


def _uac_flag(ctx: Context, check_id: str, flag: int, name: str, wanted: bool, reason: str,
              fix: Callable[[str], str]) -> list[Finding]:
    """The gateway account's userAccountControl flag `name`, which passes when its being set is `wanted`;
    `fix` makes the fix for the account's sAMAccountName."""
    c = CHECKS[check_id]
    a, skip = _seg_account(ctx, c)
    if a is None:
        return skip or []
    is_set = a.has_flag(flag)
    evidence = f"userAccountControl = 0x{a.uac:x} ({name} {'set' if is_set else 'not set'})"
    if is_set == wanted:
        return [c.finding(Status.PASS, subject=a.sam, evidence=evidence)]
    return [c.finding(Status.FAIL, subject=a.sam, evidence=evidence, reason=reason,
                      fix=fix(a.sam))]


@check("kcd.target", "The SEG may delegate to the ActiveSync SPN on the ASA", "seg",
       "Every entry of the gateway's msDS-AllowedToDelegateTo is judged: HTTP/<ActiveSync namespace> must be there and "
       "registered on the ASA; an entry that is not an SPN on the ASA is stale.")
def kcd_target(ctx: Context) -> list[Finding]:
    c = CHECKS["kcd.target"]
    a, skip = _seg_account(ctx, c)
    if a is None:
        return skip or []
    wanted = target_spns(ctx)
    asa = ctx.asa
    allowed = {s.lower() for s in a.delegate_to}
    if not wanted and not a.delegate_to:
        return [c.skipped("No ActiveSync namespace was found and the account delegates to nothing.", subject=a.sam)]
    lines, stale = [], []
    for entry in a.delegate_to:
        if asa is not None and asa.has_spn(entry):
            lines.append(f"{entry}: registered on the ASA {ctx.qualified(asa)}")
            continue
        holders = [x for x in ctx.owners(entry) if asa is None or x.dn.lower() != asa.dn.lower()]
        where = (f"registered on {join([ctx.qualified(h) for h in holders])}" if holders else
                 "not registered on the ASA" if asa is not None else "the ASA is not known")
        lines.append(f"{entry}: {where}" + (" (stale: not an SPN on the ASA)" if asa is not None else ""))
        if asa is not None:
            stale.append(entry)
    if not a.delegate_to:
        lines.append("msDS-AllowedToDelegateTo is empty")
    missing = [s for s in wanted if s.lower() not in allowed]
    off_asa = [s for s in wanted if asa is None or not asa.has_spn(s)]
    evidence = (f"ActiveSync SPN(s): {join(wanted) if wanted else 'none found'}; msDS-AllowedToDelegateTo of "
                f"{a.sam}:\n" + "\n".join(lines))
    fix = [command(_set_cmd(a), Identity=a.sam, Add=hashtable({"msDS-AllowedToDelegateTo": s})) for s in missing]
    if asa is None and wanted:
        fix.insert(0, "Create the ASA and register the ActiveSync SPN on it first (wizard steps asa, rollout, spns).")
    elif asa is not None:
        fix += [setspn("-S", s, ctx.qualified(asa)) for s in wanted if not asa.has_spn(s)]
    fix += [command(_set_cmd(a), Identity=a.sam, Remove=hashtable({"msDS-AllowedToDelegateTo": s})) for s in stale]
    if wanted and (missing or off_asa):
        reason = ("The KDC issues the gateway a ticket on the user's behalf only for SPNs in this list; the SPN must "
                  "be the one on the ASA so that every Exchange server can decrypt it. Otherwise S4U2Proxy fails "
                  "with KDC_ERR_BADOPTION.")
        if stale:
            reason += " Stale entries let the gateway act as its users towards services it does not serve."
        return [c.finding(Status.FAIL, subject=a.sam, evidence=evidence, reason=reason,
                          fix="\n".join(fix) + "\n(wizard step seg)")]
    if stale:
        return [c.finding(Status.WARN, subject=a.sam, evidence=evidence,
                          reason="An entry that is not an SPN on the ASA is stale (an old ASA, a server's own "
                                 "account, another service): the gateway may still impersonate every user towards it, "
                                 "which it does not need.",
                          fix="\n".join(fix) + "\n(wizard step seg)")]
    return [c.finding(Status.PASS, subject=a.sam, evidence=evidence)]


@check("kcd.unconstrained-forest", "No account but the domain controllers has unconstrained delegation", "seg",
       "Forest-wide: every account with TRUSTED_FOR_DELEGATION (0x80000) that is not a domain controller.")
def kcd_unconstrained_forest(ctx: Context) -> list[Finding]:
    c = CHECKS["kcd.unconstrained-forest"]
    found = ctx.env.unconstrained_delegation
    if found is None:
        return [c.skipped("The directory was not searched for accounts with unconstrained delegation.")]
    if not found:
        return [c.finding(Status.PASS, evidence="No account other than the domain controllers is trusted for "
                                                "unconstrained delegation (forest-wide).")]
    out = []
    seg = ctx.env.seg.service_account.lower() if ctx.env.seg else ""
    for a in found:
        server = ctx.is_server_computer(a)
        what = (f"the computer account of Exchange server {server.name}" if server is not None else
                "the SEG service account (see kcd.no-unconstrained)" if a.sam.lower() == seg else
                "the ASA" if ctx.asa is not None and a.dn.lower() == ctx.asa.dn.lower() else
                ("a computer account" if a.is_computer else "a user (service) account"))
        out.append(c.finding(
            Status.WARN, subject=ctx.qualified(a),
            evidence=f"{ctx.qualified(a)} ({what}, {a.dn}): userAccountControl = 0x{a.uac:x}, TRUSTED_FOR_DELEGATION "
                     "set.",
            reason="Every user who authenticates to a service on this account leaves a forwardable TGT there: whoever "
                   "controls the account can act as those users (domain admins included) anywhere in the forest. "
                   "Only domain controllers need it; services use constrained delegation.",
            fix=f"{command('Set-ADAccountControl', Identity=a.sam, TrustedForDelegation=FALSE)}\n(first give the "
                f"service constrained delegation to the SPNs it really needs, e.g. "
                f"{command(_set_cmd(a), Identity=a.sam, Add=hashtable({'msDS-AllowedToDelegateTo': 'HTTP/<name>'}))})"))
    return out


@check("kcd.same-domain", "Gateway, users and ASA are in one domain", "seg",
       "Classic constrained delegation needs the service account, the users and the target in the same domain.")
def kcd_same_domain(ctx: Context) -> list[Finding]:
    c = CHECKS["kcd.same-domain"]
    a, skip = _seg_account(ctx, c)
    if a is None:
        return skip or []
    seg = ctx.env.seg
    assert seg is not None
    parties = [("service account", a), ("ASA", ctx.asa)] + [
        (f"test user {u}", ctx.env.account_by_sam(u)) for u in seg.test_users]
    domains = {}
    for label, acct in parties:
        if acct is None:
            continue
        d = ctx.env.forest.domain_of_dn(acct.dn)
        domains[label] = d.dns_name if d else "unknown"
    evidence = "; ".join(f"{label}: {d}" for label, d in domains.items())
    if len(set(domains.values())) <= 1:
        return [c.finding(Status.PASS, subject=a.sam, evidence=evidence)]
    asa_name = ctx.asa.sam if ctx.asa else "<ASA>$"
    return [c.finding(Status.FAIL, subject=a.sam, evidence=evidence,
                      reason="Classic KCD (msDS-AllowedToDelegateTo) only works inside one domain.",
                      fix="Use resource-based constrained delegation on the ASA instead:\n"
                      + command("Set-ADComputer", Identity=asa_name, PrincipalsAllowedToDelegateToAccount=subexpression(
                          command("Get-ADUser", Identity=a.sam, Server="<the gateway's domain>"))))]


def _eas_servers(ctx: Context, service: Service):
    return [(s, v) for s in ctx.client_servers() for v in ctx.env.vdirs_for(s.name, service)]


@check("kcd.iis-iusrs", "The SEG account is in IIS_IUSRS on each server", "seg",
       "The gateway's service account is a member of the local IIS_IUSRS group on every ActiveSync server.")
def kcd_iis_iusrs(ctx: Context) -> list[Finding]:
    c = CHECKS["kcd.iis-iusrs"]
    a, skip = _seg_account(ctx, c)
    if a is None:
        return skip or []
    member = ctx.qualified(a)
    out = []
    for s, _ in _eas_servers(ctx, Service.EAS):
        members = ctx.env.iis_iusrs.get(s.name)
        if members is None:
            out.append(c.skipped("IIS_IUSRS members were not read.", subject=s.name))
        elif normalize_account(member) in {normalize_account(m) for m in members}:
            out.append(c.finding(Status.PASS, subject=s.name, evidence=f"IIS_IUSRS: {join(members)}"))
        else:
            out.append(c.finding(
                Status.FAIL, subject=s.name, evidence=f"{member} is not in IIS_IUSRS (members: {join(members)}).",
                reason="IIS needs the delegating account in IIS_IUSRS to accept the tickets the gateway obtained on "
                       "users' behalf on this server.",
                fix=command("Invoke-Command", ComputerName=s.fqdn or s.name, ScriptBlock=script_block(
                    command("Add-LocalGroupMember", Group="IIS_IUSRS", Member=member))) + "\n(wizard step seg)"))
    return out or [c.skipped("No ActiveSync virtual directory was found.")]


def _iis_auth_findings(ctx: Context, c: Check, service: Service, app: str, cmdlet: str, basic_param: str,
                       windows_param: str) -> list[Finding]:
    out = []
    for s, v in _eas_servers(ctx, service):
        iis: IisAuth | None = v.iis
        if iis is None:
            out.append(c.skipped(f"The IIS settings of {app} were not read.", subject=s.name))
            continue
        evidence = (f"{app}: Basic {'on' if iis.basic else 'off'}, Windows {'on' if iis.windows else 'off'}, "
                    f"providers {join(iis.providers)}, useKernelMode {str(iis.use_kernel_mode).lower()}, "
                    f"useAppPoolCredentials {str(iis.use_app_pool_credentials).lower()}")
        negotiate = any(p.lower().startswith("negotiate") for p in iis.providers)
        errors = iis.basic or not iis.windows or not negotiate
        soft = not (iis.use_kernel_mode and iis.use_app_pool_credentials)
        appcmd = command("Invoke-Command", ComputerName=s.fqdn or s.name, ScriptBlock=script_block(native(
            APPCMD, "set", "config", f"Default Web Site/{app}",
            "-section:system.webServer/security/authentication/windowsAuthentication",
            *(["/+providers.[value='Negotiate']"] if not negotiate else []),
            "/useKernelMode:true", "/useAppPoolCredentials:true", "/commit:apphost")))
        set_vdir = command(cmdlet, Identity=f"{s.name}\\{app} (Default Web Site)",
                           **{basic_param.lstrip("-"): False, windows_param.lstrip("-"): True})
        fix = (f"{set_vdir}\n{appcmd}\n"
               "(wizard step iis-auth; Exchange cumulative updates can rewrite IIS settings made outside the "
               "cmdlets: check again after each update)")
        if errors:
            out.append(c.finding(Status.FAIL, subject=s.name, evidence=evidence,
                                 reason="The gateway presents Kerberos tickets: the application must use Windows "
                                 "authentication with the Negotiate provider, and Basic must be off so devices cannot "
                                 "bypass the gateway with passwords.", fix=fix))
        elif soft:
            out.append(c.finding(Status.WARN, subject=s.name, evidence=evidence,
                                 reason="The gateway's documentation asks for useKernelMode and useAppPoolCredentials; "
                                 "Exchange app pools run as LocalSystem, so this is advice, not a proven need.",
                                 fix=fix))
        else:
            out.append(c.finding(Status.PASS, subject=s.name, evidence=evidence))
    return out or [c.skipped(f"No {app} virtual directory was found.")]


@check("kcd.eas-auth", "ActiveSync accepts the gateway's Kerberos tickets", "iis-auth",
       "Microsoft-Server-ActiveSync on each server: Basic off, Windows authentication on with Negotiate.")
def kcd_eas_auth(ctx: Context) -> list[Finding]:
    c = CHECKS["kcd.eas-auth"]
    if ctx.env.seg is None:
        return [c.skipped(NO_SEG)]
    return _iis_auth_findings(ctx, c, Service.EAS, "Microsoft-Server-ActiveSync", "Set-ActiveSyncVirtualDirectory",
                              "-BasicAuthEnabled", "-WindowsAuthEnabled")


@check("kcd.ews-auth", "EWS accepts the gateway's Kerberos tickets", "iis-auth",
       "When the gateway proxies EWS: EWS on each server has Basic off and Windows authentication with Negotiate.")
def kcd_ews_auth(ctx: Context) -> list[Finding]:
    c = CHECKS["kcd.ews-auth"]
    if ctx.env.seg is None:
        return [c.skipped(NO_SEG)]
    if not ctx.env.seg.ews_proxy:
        return [c.skipped("The gateway does not proxy EWS.")]
    return _iis_auth_findings(ctx, c, Service.EWS, "EWS", "Set-WebServicesVirtualDirectory", "-BasicAuthentication",
                              "-WindowsAuthentication")


@check("kcd.users-delegable", "The test users can be delegated", "seg",
       "The chosen test users are not 'sensitive and cannot be delegated' (0x100000) nor in Protected Users.")
def kcd_users_delegable(ctx: Context) -> list[Finding]:
    c = CHECKS["kcd.users-delegable"]
    seg = ctx.env.seg
    if seg is None:
        return [c.skipped(NO_SEG)]
    if not seg.test_users:
        return [c.skipped("No test user was chosen (wizard step seg).")]
    protected = {dn.lower() for dn in ctx.env.protected_users}
    out = []
    for name in seg.test_users:
        u = ctx.env.account_by_sam(name)
        if u is None:
            out.append(c.finding(Status.FAIL, subject=name, evidence=f"{name} was not found in the directory.",
                                 reason="The gateway cannot impersonate a user that does not exist.",
                                 fix="Choose an existing test user in wizard step seg."))
            continue
        problems, fixes = [], []
        if u.has_flag(UAC_NOT_DELEGATED):
            problems.append("'Account is sensitive and cannot be delegated' is set (NOT_DELEGATED)")
            fixes.append(command("Set-ADAccountControl", Identity=u.sam, AccountNotDelegated=False))
        if u.dn.lower() in protected:
            problems.append("the user is in Protected Users")
            fixes.append(command("Remove-ADGroupMember", Identity="Protected Users", Members=u.sam))
        if not problems:
            out.append(c.finding(Status.PASS, subject=u.sam, evidence=f"{u.sam} can be delegated."))
            continue
        out.append(c.finding(Status.FAIL, subject=u.sam, evidence=f"{u.sam}: " + "; ".join(problems) + ".",
                             reason="The KDC never issues delegated tickets for such users: S4U2Proxy fails with "
                             "KDC_ERR_BADOPTION and the gateway cannot serve them.",
                             fix="\n".join(fixes) + "\n(or choose another test user: privileged accounts are "
                             "protected on purpose)"))
    return out
