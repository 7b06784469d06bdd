"""Service principal names of the load-balanced namespaces: present, on the ASA, once, and in order."""

from __future__ import annotations

from asa_wizard.core.model import Account, ExchangeServer
from asa_wizard.core.commands import setspn
from .base import CHECKS, Context, Finding, Status, check, join


def _describe(ctx: Context, a: Account) -> str:
    server = ctx.is_server_computer(a)
    if server is not None:
        return f"{ctx.qualified(a)} (the computer account of Exchange server {server.name})"
    if ctx.asa is not None and a.dn.lower() == ctx.asa.dn.lower():
        return f"{ctx.qualified(a)} (the ASA)"
    return ctx.qualified(a) + (f" ({a.description})" if a.description else "")


def _is_asa(ctx: Context, a: Account) -> bool:
    return ctx.asa is not None and a.dn.lower() == ctx.asa.dn.lower()


@check("spn.present", "Each namespace has its HTTP SPN", "spns",
       "HTTP/<namespace> is registered for every load-balanced host name (forest-wide lookup).")
def spn_present(ctx: Context) -> list[Finding]:
    c = CHECKS["spn.present"]
    if not ctx.env.namespaces:
        return [c.skipped("No namespaces were found (no virtual directory host names, no Autodiscover SCP).")]
    target = ctx.qualified(ctx.asa, ctx.asa_name or "<ASA>$")
    scope = f" (looked up {ctx.env.spn_scope})" if ctx.env.spn_scope else ""
    out = []
    for ns in ctx.env.namespaces:
        owners = ctx.owners(ns.spn)
        if owners:
            out.append(c.finding(Status.PASS, subject=ns.host,
                                 evidence=f"{ns.spn} is registered on {join([_describe(ctx, a) for a in owners])}"
                                          f"{scope}."))
            continue
        first = "" if ctx.asa is not None else "Create the ASA first (wizard step asa), then "
        out.append(c.finding(
            Status.FAIL, subject=ns.host,
            evidence=f"No account in {'this domain' if 'domain only' in scope else 'the forest'} holds {ns.spn}{scope}"
                     + (f" (serves {join(sorted(s.title for s in ns.services))})." if ns.services else
                        " (named in the answers / --namespace)."),
            reason="Without the SPN the KDC cannot issue a ticket for the name (KDC_ERR_S_PRINCIPAL_UNKNOWN) and "
                   "clients silently use NTLM.",
            fix=f"{first}after every server holds the ASA credential (wizard step rollout):\n"
                f"{setspn('-F -Q', ns.spn)}\n{setspn('-S', ns.spn, target)}\n(wizard step spns)"))
    return out


@check("spn.owner", "The HTTP SPNs sit on the ASA", "spns",
       "Each namespace's HTTP SPN is on the ASA, not on an Exchange server's computer account or an old ASA.")
def spn_owner(ctx: Context) -> list[Finding]:
    c = CHECKS["spn.owner"]
    out = []
    for ns in ctx.env.namespaces:
        owners = ctx.owners(ns.spn)
        if not owners:
            out.append(c.skipped(f"{ns.spn} is not registered (see spn.present).", subject=ns.host))
            continue
        wrong = [a for a in owners if not _is_asa(ctx, a)]
        if ctx.asa is None:
            wrong = [a for a in wrong if ctx.is_server_computer(a) is not None]
            if not wrong:
                out.append(c.skipped("There is no ASA to compare the owner with (see asa.exists).", subject=ns.host))
                continue
        evidence = f"{ns.spn} is registered on {join([_describe(ctx, a) for a in owners])}."
        if not wrong:
            out.append(c.finding(Status.PASS, subject=ns.host, evidence=evidence))
            continue
        fix: list[str] = [setspn("-D", ns.spn, ctx.qualified(a)) for a in wrong]
        if not any(_is_asa(ctx, a) for a in owners):
            fix.append(setspn("-S", ns.spn, ctx.qualified(ctx.asa, ctx.asa_name or '<ASA>$')))
        out.append(c.finding(
            Status.FAIL, subject=ns.host, evidence=evidence,
            reason="Tickets for the name are encrypted with the key of the account that holds the SPN; only the "
                   "ASA's key is on every server, so any other owner makes servers reject the ticket "
                   "(KRB_AP_ERR_MODIFIED), and a second owner makes the KDC refuse it.",
            fix="\n".join(fix) + "\n(wizard step spns; name the owner before moving it)"))
    return out or [c.skipped("No namespaces were found.")]


@check("spn.duplicate", "No HTTP SPN is registered twice", "spns",
       "Forest-wide, each namespace SPN (and each SPN on the ASA) has exactly one owner.")
def spn_duplicate(ctx: Context) -> list[Finding]:
    c = CHECKS["spn.duplicate"]
    spns: list[str] = [ns.spn for ns in ctx.env.namespaces]
    if ctx.asa is not None:
        spns += [s for s in ctx.asa.spns if s.lower() not in {x.lower() for x in spns}]
    registered = [s for s in spns if ctx.owners(s)]
    if not registered:
        return [c.skipped("None of the namespace SPNs is registered yet.")]
    out = []
    for spn in registered:
        owners = ctx.owners(spn)
        if len(owners) < 2:
            continue
        keep = [a for a in owners if _is_asa(ctx, a)]
        remove = [a for a in owners if a not in keep] if keep else owners
        fix = "\n".join(setspn("-D", spn, ctx.qualified(a)) for a in remove)
        if not keep:
            fix = (f"Decide which account is the ASA ({join([ctx.qualified(a) for a in owners])}), then remove the SPN "
                   f"from the others:\n" + fix)
        out.append(c.finding(
            Status.FAIL, subject=spn,
            evidence=f"{spn} is registered on {len(owners)} accounts: {join([_describe(ctx, a) for a in owners])}"
                     + (f" (looked up {ctx.env.spn_scope})." if ctx.env.spn_scope else "."),
            reason="With two owners the KDC cannot tell which key to use: it refuses the ticket (and logs event 11, "
                   "KDC_ERR_PRINCIPAL_NOT_UNIQUE) and clients fall back to NTLM.",
            fix=fix + "\n(wizard step spns)"))
    if not out:
        out.append(c.finding(Status.PASS, evidence=f"Each of {len(registered)} registered SPNs has one owner: "
                             f"{join(registered)}."))
    return out


@check("spn.order", "No SPN points at servers that lack the credential", "rollout",
       "SPNs that exist while a server behind the namespace holds no credential of the SPN's owner: an outage.")
def spn_order(ctx: Context) -> list[Finding]:
    c = CHECKS["spn.order"]
    out = []
    for ns in ctx.env.namespaces:
        owners = ctx.owners(ns.spn)
        owner = next((a for a in owners if _is_asa(ctx, a)), owners[0] if len(owners) == 1 else None)
        if owner is None:
            why = "is not registered" if not owners else "has several owners (see spn.duplicate)"
            out.append(c.skipped(f"{ns.spn} {why}.", subject=ns.host))
            continue
        if ctx.is_server_computer(owner) is not None:
            out.append(c.skipped(f"{ns.spn} is on a server's own account (see spn.owner).", subject=ns.host))
            continue
        servers = ctx.servers_for(ns)
        unknown: list[ExchangeServer] = [s for s in servers if not s.asa_state_known or s.reachable is False]
        lacking = [s for s in servers if s not in unknown and ctx.holds(s, owner) is None]
        if lacking:
            out.append(c.finding(
                Status.FAIL, subject=ns.host,
                evidence=f"{ns.spn} is registered on {ctx.qualified(owner)}, but {join([s.name for s in lacking])} "
                         f"hold{'s' if len(lacking) == 1 else ''} no credential of it.",
                reason="Clients get tickets for the name that those servers cannot decrypt: Outlook prompts and "
                       "Autodiscover fails on them (IIS logs 401 1 2148074254, clients log KRB_AP_ERR_MODIFIED). "
                       "The credential must be on every server before the SPN exists.",
                fix=ctx.roll_fix(lacking) if ctx.asa is not None and owner.dn == ctx.asa.dn else
                f"Roll out {ctx.qualified(owner)} to {join([s.name for s in lacking])} first, or remove the SPN "
                f"until then: {setspn('-D', ns.spn, ctx.qualified(owner))}"))
        elif unknown:
            out.append(c.finding(Status.WARN, subject=ns.host,
                                 evidence=f"The ASA state of {join([s.name for s in unknown])} could not be read.",
                                 reason="A server behind the name that lacks the credential rejects every ticket.",
                                 fix="Make the servers readable over WinRM and run the discovery again."))
        else:
            out.append(c.finding(Status.PASS, subject=ns.host,
                                 evidence=f"Every server behind {ns.host} ({join([s.name for s in servers])}) holds a "
                                          f"credential of {ctx.qualified(owner)}."))
    return out or [c.skipped("No namespaces were found.")]
