"""Client authentication: Outlook Anywhere and MAPI offer Negotiate, and the names resolve as A records."""

from __future__ import annotations

from asa_wizard.core.model import Service
from asa_wizard.core.commands import command, pipeline
from .base import CHECKS, Context, Finding, Status, check, join


def _has(methods: list[str], name: str) -> bool:
    return name.lower() in (m.lower() for m in methods)


@check("auth.outlook-anywhere", "Outlook Anywhere uses Negotiate", "client-auth",
       "Outlook Anywhere's InternalClientAuthenticationMethod is Negotiate and its IIS methods include Negotiate.")
def auth_outlook_anywhere(ctx: Context) -> list[Finding]:
    c = CHECKS["auth.outlook-anywhere"]
    out = []
    for s in ctx.env.servers:
        for v in ctx.env.vdirs_for(s.name, Service.OUTLOOK_ANYWHERE):
            evidence = (f"InternalClientAuthenticationMethod = {v.internal_client_auth or 'unknown'}; "
                        f"IISAuthenticationMethods = {join(v.auth_methods)}")
            fixes = []
            if (v.internal_client_auth or "").lower() != "negotiate":
                fixes.append(pipeline(command("Get-OutlookAnywhere", Server=s.name),
                                      command("Set-OutlookAnywhere", InternalClientAuthenticationMethod="Negotiate")))
            if v.auth_methods and not _has(v.auth_methods, "Negotiate"):
                fixes.append(pipeline(command("Get-OutlookAnywhere", Server=s.name),
                                      command("Set-OutlookAnywhere", IISAuthenticationMethods=[*v.auth_methods,
                                                                                               "Negotiate"])))
            if not fixes:
                out.append(c.finding(Status.PASS, subject=s.name, evidence=evidence))
                continue
            out.append(c.finding(
                Status.FAIL, subject=s.name, evidence=evidence,
                reason="Outlook only tries Kerberos when the server advertises Negotiate; with Ntlm every Outlook "
                       "Anywhere connection authenticates with NTLM even when the ASA is in place.",
                fix="\n".join(fixes) + "\n(wizard step client-auth; only after the ASA and SPNs are in place)"))
    return out or [c.skipped("No Outlook Anywhere virtual directory was found.")]


@check("auth.mapi", "MAPI over HTTP offers Negotiate", "client-auth",
       "The MAPI virtual directory's IISAuthenticationMethods include Negotiate (and keep OAuth in hybrid).")
def auth_mapi(ctx: Context) -> list[Finding]:
    c = CHECKS["auth.mapi"]
    out = []
    for s in ctx.env.servers:
        for v in ctx.env.vdirs_for(s.name, Service.MAPI):
            evidence = f"IISAuthenticationMethods = {join(v.auth_methods)}" + (" (hybrid organisation)"
                                                                               if ctx.env.hybrid else "")
            missing = [m for m in (["OAuth"] if ctx.env.hybrid else []) + ["Negotiate"] if not _has(v.auth_methods, m)]
            if not missing:
                out.append(c.finding(Status.PASS, subject=s.name, evidence=evidence))
                continue
            methods = [*v.auth_methods, *missing]
            reason = "MAPI clients use Kerberos only when Negotiate is offered."
            if "OAuth" in missing:
                reason += (" In hybrid, OAuth must stay in the list: the plain form of the command drops it and "
                           "breaks hybrid free/busy and modern authentication.")
            out.append(c.finding(
                Status.FAIL, subject=s.name, evidence=evidence, reason=reason,
                fix=pipeline(command("Get-MapiVirtualDirectory", Server=s.name),
                             command("Set-MapiVirtualDirectory", IISAuthenticationMethods=methods))
                + "\n(wizard step client-auth; appends to the existing list)"))
    return out or [c.skipped("No MAPI virtual directory was found.")]


@check("auth.namespace-dns", "Namespaces are A records, not CNAMEs", "discovery",
       "Each load-balanced name resolves through an A record where that could be seen.")
def auth_namespace_dns(ctx: Context) -> list[Finding]:
    c = CHECKS["auth.namespace-dns"]
    out = []
    for ns in ctx.env.namespaces:
        if ns.is_cname is None:
            out.append(c.skipped("The DNS record type of this name was not looked up.", subject=ns.host))
        elif ns.is_cname:
            zone = ns.host.split(".", 1)[1] if "." in ns.host else ns.host
            label = ns.host.split(".", 1)[0]
            out.append(c.finding(
                Status.WARN, subject=ns.host, evidence=f"{ns.host} is a CNAME.",
                reason="Windows clients build the SPN from the name the CNAME points to, so they ask for a ticket "
                       f"to the target host instead of {ns.spn}: Kerberos falls back to NTLM or hits the wrong account.",
                fix="Replace the CNAME with an A record for the load balancer's address:\n"
                    + command("Remove-DnsServerResourceRecord", ZoneName=zone, Name=label, RRType="CName") + "\n"
                    + command("Add-DnsServerResourceRecordA", ZoneName=zone, Name=label,
                              IPv4Address="<load balancer address>")))
        else:
            out.append(c.finding(Status.PASS, subject=ns.host, evidence=f"{ns.host} is not a CNAME."))
    return out or [c.skipped("No namespaces were found.")]
