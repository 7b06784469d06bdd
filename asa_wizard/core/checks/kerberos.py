"""Proof: a ticket for each namespace, accepted by each server, and the gateway's S4U path.

`run_probes` asks a `KerberosProbe` (real or lab) for everything the checks need; the checks read the
`ProbeReport`, so a report can also be built elsewhere (another machine, a saved run) and checked here.
"""

from __future__ import annotations

import inspect
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from asa_wizard.core.errors import WizardError
from asa_wizard.core.model import Environment, ExchangeServer
from asa_wizard.core.ports import (
    ClientPath,
    KerberosProbe,
    ProbeOutcome,
    ProbeResult,
    TicketResult,
    paths_for_services,
)
from .base import CHECKS, SEVERITY, Context, Finding, ProbeReport, Status, check, join
from .extended_protection import NO_PROBE, binding_fix, path_line
from asa_wizard.core.commands import command, hashtable, setspn
from .kcd import target_spns


OUTCOME_STATUS = {
    ProbeOutcome.ACCEPTED: Status.PASS,
    ProbeOutcome.REJECTED: Status.FAIL,
    ProbeOutcome.CHANNEL_BINDING: Status.FAIL,
    ProbeOutcome.NOT_OFFERED: Status.WARN,  # overall only when no path of the server offers Negotiate
    ProbeOutcome.NTLM_FALLBACK: Status.FAIL,
    ProbeOutcome.KDC_REFUSED: Status.FAIL,
    ProbeOutcome.UNREACHABLE: Status.WARN,
    ProbeOutcome.ERROR: Status.WARN,
}


# --- running the probe ----------------------------------------------------------------------------------
def probe_targets(env: Environment) -> list[tuple[str, list[ExchangeServer]]]:
    """(namespace, the servers that answer it) for every namespace: what `run_probes` sends tickets to."""
    out = []
    for ns in env.namespaces:
        servers = [s for s in (env.server(n) for n in ns.servers) if s is not None and "Edge" not in s.roles]
        out.append((ns.host, servers))
    return out


def probe_paths(env: Environment, host: str) -> tuple[ClientPath, ...]:
    """The client paths a namespace serves (Autodiscover, EWS, MAPI, Outlook Anywhere, ActiveSync)."""
    ns = next((n for n in env.namespaces if n.host.lower() == host.lower()), None)
    return paths_for_services(ns.services) if ns is not None else ()


def _takes_paths(probe: KerberosProbe) -> bool:
    """Probes written before the per-path proof take (server, namespace) only."""
    try:
        return "paths" in inspect.signature(probe.probe_server).parameters
    except (TypeError, ValueError):
        return False


def run_probes(env: Environment, probe: KerberosProbe, cancel: threading.Event | None = None,
               concurrency: int = 8) -> ProbeReport:
    """Ask for a ticket per namespace, present it to every server behind the namespace, and run the gateway's
    S4U for each test user against each ActiveSync server. Failures become results, never exceptions."""
    report = ProbeReport(client=probe.describe())
    targets = probe_targets(env)
    for host, _ in targets:
        report.tickets.append(_safe_ticket(probe, f"HTTP/{host}"))

    jobs = [(s, host) for host, servers in targets for s in servers]
    per_path = _takes_paths(probe)

    def one(job: tuple[ExchangeServer, str]) -> ProbeResult:
        server, host = job
        if cancel is not None and cancel.is_set():
            return ProbeResult(server.name, f"HTTP/{host}", ProbeOutcome.ERROR, "cancelled")
        try:
            if per_path:
                return probe.probe_server(server, host, paths=probe_paths(env, host) or None)
            return probe.probe_server(server, host)
        except WizardError as exc:
            return ProbeResult(server.name, f"HTTP/{host}", ProbeOutcome.ERROR, str(exc), at=_now())

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="kerberos-probe") as pool:
        report.servers = list(pool.map(one, jobs))

    seg = env.seg
    if seg is None:
        report.s4u_skipped = "No Secure Email Gateway is configured."
    elif not seg.test_users:
        report.s4u_skipped = "No test user was chosen for the gateway (wizard step seg)."
    else:
        ctx = Context(env, None, None, _now())
        for spn in target_spns(ctx):
            host = spn.split("/", 1)[1]
            servers = next((sv for h, sv in targets if h == host), [])
            for server in servers:
                for user in seg.test_users:
                    try:
                        report.s4u.append(probe.s4u(seg.service_account, user, spn, server))
                    except WizardError as exc:
                        report.s4u.append(ProbeResult(server.name, spn, ProbeOutcome.ERROR, str(exc), at=_now()))
        if not report.s4u:
            report.s4u_skipped = "No ActiveSync namespace with servers was found."
    return report


def _safe_ticket(probe: KerberosProbe, spn: str) -> TicketResult:
    try:
        return probe.service_ticket(spn)
    except WizardError as exc:
        return TicketResult(spn=spn, ok=False, error=str(exc))


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- problems on this machine's side: the check could not run, the domain is not at fault -----------------
# (pattern in the Kerberos library's words, what it means, the fix with {realm} and {kdc})
CLIENT_SIDE = [
    (re.compile(r"Cannot find KDC for realm|Cannot resolve network address for KDC|does not specify default realm|"
                r"KRB5_REALM_UNKNOWN|KRB5_KDC_UNKNOWN", re.I),
     "this machine's Kerberos configuration names no KDC for the realm {realm}",
     "Add the realm to /etc/krb5.conf (or the file KRB5_CONFIG names):\n[realms]\n    {realm} = {{\n        kdc = {kdc}\n"
     "    }}\nor turn on DNS lookup of KDCs there ([libdefaults] dns_lookup_kdc = true) if the domain's SRV records "
     "resolve from here."),
    (re.compile(r"No Kerberos credentials available|No credentials cache found|credentials cache .*not found|"
                r"No credentials were supplied|KRB5_FCC_NOFILE|KRB5_CC_NOTFOUND|ticket expired", re.I),
     "this machine has no (valid) Kerberos ticket to ask with",
     "kinit <user>@{realm} (and check KRB5CCNAME), or use a simple bind with a password so the wizard gets its own "
     "ticket."),
    (re.compile(r"Cannot contact any KDC|KRB5_KDC_UNREACH", re.I),
     "this machine cannot reach a KDC of {realm} (TCP/UDP 88)",
     "Check that port 88 of {kdc} is reachable from here (firewall), and the kdc line for {realm} in krb5.conf."),
    (re.compile(r"Clock skew too great|KRB_AP_ERR_SKEW", re.I),
     "this machine's clock differs from the domain controller's by more than the allowed 5 minutes",
     "Synchronise this machine's clock with the domain (chronyc makestep, or ntpdate {kdc})."),
]


def client_side_problem(ctx: Context, error: str) -> tuple[str, str] | None:
    """(what is wrong on this machine, the fix) when a Kerberos error is the client's, not the domain's."""
    domain = ctx.env.forest.domain_of_dn(ctx.asa.dn) if ctx.asa is not None else None
    realm = domain.realm if domain else (ctx.env.forest.root_domain or "REALM").upper()
    kdc = ctx.env.forest.dc_host_name or f"dc1.{realm.lower()}"
    for pattern, what, fix in CLIENT_SIDE:
        if pattern.search(error or ""):
            return what.format(realm=realm, kdc=kdc), fix.format(realm=realm, kdc=kdc)
    return None


def _client_blocked(ctx: Context) -> tuple[str, str, str] | None:
    """(error, what, fix) of the first ticket refused for a reason on this machine's side."""
    for t in ctx.probe.tickets if ctx.probe else []:
        if not t.ok:
            found = client_side_problem(ctx, t.error or "")
            if found:
                return t.error or "", found[0], found[1]
    return None


def _could_not_run(c, blocked: tuple[str, str, str]) -> Finding:
    error, what, fix = blocked
    return c.finding(Status.SKIPPED, evidence=error, fix=fix,
                     skipped_reason=f"Could not run: {what}. This is not a finding about the domain.")


# --- the checks -----------------------------------------------------------------------------------------
def _enctype_label(enctype: str | None) -> str:
    e = (enctype or "unknown").lower()
    if "aes256" in e:
        return "AES256"
    if "aes128" in e:
        return "AES128"
    if "rc4" in e or "arcfour" in e:
        return "RC4"
    if "des" in e:
        return "DES"
    return enctype or "unknown"


def _ticket_fix(ctx: Context, spn: str, error: str) -> str:
    """What to do when the KDC would not issue a ticket for `spn`, in the environment's own names."""
    e = error.upper()
    asa = ctx.qualified(ctx.asa, ctx.asa_name or "<ASA>$")
    if "NOT_UNIQUE" in e:
        owners = ctx.owners(spn)
        others = [a for a in owners if ctx.asa is None or a.dn.lower() != ctx.asa.dn.lower()]
        return "\n".join(setspn("-D", spn, ctx.qualified(a)) for a in others) + "\n(see spn.duplicate; wizard step spns)"
    if "UNKNOWN" in e:
        return (f"{setspn('-S', spn, asa)}\n(only after every server holds the ASA credential: wizard steps rollout, "
                "then spns)")
    if "ETYPE" in e:
        return "Give the ASA AES encryption types and roll its password (see asa.enctypes)."
    return "Check that this machine can reach a domain controller (KDC, port 88) and has a ticket (klist)."


@check("kerberos.ticket", "A Kerberos ticket can be had for each namespace", "spns",
       "The KDC issues a service ticket for HTTP/<namespace>, and its encryption type (AES256 expected).")
def kerberos_ticket(ctx: Context) -> list[Finding]:
    c = CHECKS["kerberos.ticket"]
    if ctx.probe is None:
        return [c.skipped(NO_PROBE)]
    blocked = _client_blocked(ctx)
    if blocked:
        return [_could_not_run(c, blocked)]
    out = []
    for ns in ctx.env.namespaces:
        t = ctx.probe.ticket(ns.spn)
        if t is None:
            out.append(c.skipped("This namespace was not probed.", subject=ns.host))
        elif not t.ok:
            out.append(c.finding(
                Status.FAIL, subject=ns.host, evidence=f"No ticket for {ns.spn}: {t.error or 'refused'}",
                reason="Without a ticket the client cannot use Kerberos for this name and silently falls back to NTLM.",
                fix=_ticket_fix(ctx, ns.spn, t.error or "")))
        else:
            label = _enctype_label(t.enctype)
            evidence = f"Ticket for {ns.spn}: {label} ({t.enctype or 'enctype not reported'})" + (
                f", key version {t.kvno}" if t.kvno is not None else "")
            holders = ctx.owners(ns.spn)
            if holders:
                evidence += f"; issued with the key of {join([ctx.qualified(h) for h in holders])}, which holds {ns.spn}"
            if label in ("AES256", "AES128"):
                out.append(c.finding(Status.PASS, subject=ns.host, evidence=evidence))
            else:
                out.append(c.finding(
                    Status.WARN, subject=ns.host, evidence=evidence,
                    reason="The ticket works today but is encrypted with a legacy type; domain controllers with the "
                           "2026 RC4 enforcement (KB5073381) stop issuing RC4 tickets to accounts without AES.",
                    fix=_rc4_fix(ctx, ns.spn, holders)))
    return out or [c.skipped("No namespaces were found.")]


def _rc4_fix(ctx: Context, spn: str, holders: list) -> str:
    """The RC4 ticket came from the key of whoever holds the SPN: name that account, ASA or not."""
    asa = ctx.asa
    others = [h for h in holders if asa is None or h.dn.lower() != asa.dn.lower()]
    if others:
        names = join([ctx.qualified(h) for h in others])
        return (f"The ticket was issued with the key of {names}, not the ASA: move {spn} to the ASA (see spn.owner; "
                f"wizard step spns). Or, if {names} should keep it, give it AES: "
                + "; ".join(command("Set-ADComputer" if h.is_computer else "Set-ADUser", Identity=h.sam,
                                    Replace=hashtable({"msDS-SupportedEncryptionTypes": 24})) for h in others)
                + " and reset its password.")
    name = ctx.qualified(asa, ctx.asa_name or "<ASA>$")
    return f"Set AES on the ASA {name} and roll its password (see asa.enctypes; wizard step asa)."


def _result_line(r: ProbeResult) -> str:
    head = f"{r.spn}: {r.outcome.value}" + (f" ({_enctype_label(r.enctype)})" if r.enctype else "")
    if not r.paths:
        return head + (f" - {r.detail}" if r.detail else "")
    return "\n".join([head, *(f"  {path_line(p)}" for p in r.paths)])


def _server_fix(ctx: Context, server: ExchangeServer, bad: list[ProbeResult]) -> str:
    fixes: list[str] = []
    for r in bad:
        ticket = ctx.probe.ticket(r.spn) if ctx.probe else None
        if r.outcome == ProbeOutcome.REJECTED:
            fix = ctx.roll_fix([server]) if ctx.asa is not None else "Create and roll out the ASA (wizard step asa)."
            fix += "\n(if the SPN sits on another account than the ASA, see spn.owner)"
        elif r.outcome == ProbeOutcome.CHANNEL_BINDING:
            fix = binding_fix(server)
        elif r.outcome == ProbeOutcome.NTLM_FALLBACK and ticket is not None and not ticket.ok:
            fix = _ticket_fix(ctx, r.spn, ticket.error or "")
        elif r.outcome == ProbeOutcome.NTLM_FALLBACK:
            fix = (f"{server.name} answered with NTLM only: offer Negotiate on its virtual directories "
                   "(see auth.outlook-anywhere, auth.mapi; wizard step client-auth).")
        elif r.outcome == ProbeOutcome.NOT_OFFERED:
            fix = (f"Turn on Windows authentication with the Negotiate provider where clients should use Kerberos on "
                   f"{server.name} (wizard steps client-auth and iis-auth).")
        elif r.outcome == ProbeOutcome.UNREACHABLE:
            fix = (f"{command('Test-NetConnection', server.fqdn or server.name, Port=443)} "
                   "(firewall, DNS or the server is down).")
        elif r.outcome == ProbeOutcome.KDC_REFUSED:
            fix = _ticket_fix(ctx, r.spn, r.detail)
        else:
            fix = "Run the probe again; if it repeats, check the server's HTTPS endpoint and this machine's Kerberos."
        if fix not in fixes:
            fixes.append(fix)
    return "\n".join(fixes)


@check("kerberos.server", "Each server accepts the Kerberos ticket", "rollout",
       "Per server, straight to its address with the namespace as host name: the ticket is accepted (Kerberos), "
       "not answered with NTLM, not rejected with KRB_AP_ERR_MODIFIED.")
def kerberos_server(ctx: Context) -> list[Finding]:
    c = CHECKS["kerberos.server"]
    if ctx.probe is None:
        return [c.skipped(NO_PROBE)]
    blocked = _client_blocked(ctx)
    if blocked:
        return [_could_not_run(c, blocked)]
    by_server: dict[str, list[ProbeResult]] = {}
    for r in ctx.probe.servers:
        by_server.setdefault(r.server.lower(), []).append(r)
    out = []
    for s in ctx.client_servers():
        results = by_server.get(s.name.lower(), [])
        if not results:
            out.append(c.skipped("This server is not behind any probed namespace.", subject=s.name))
            continue
        status = max((OUTCOME_STATUS[r.outcome] for r in results), key=_rank)
        evidence = "\n".join(_result_line(r) for r in results)
        if status == Status.PASS:
            out.append(c.finding(Status.PASS, subject=s.name, evidence=evidence))
            continue
        bad = [r for r in results if OUTCOME_STATUS[r.outcome] != Status.PASS]
        reasons = {
            ProbeOutcome.REJECTED: "the server could not decrypt the ticket: it holds a different key than the KDC "
                                   "used (no ASA credential, an old password, or the SPN on another account)",
            ProbeOutcome.CHANNEL_BINDING: "the server accepts the ticket but not with the channel binding of the "
                                          "probe's TLS connection: something between ends the TLS (see "
                                          "ep.channel-binding)",
            ProbeOutcome.NTLM_FALLBACK: "Kerberos was not used: clients authenticate with NTLM",
            ProbeOutcome.NOT_OFFERED: "no probed path offers Negotiate, so Kerberos is not proven on this server",
            ProbeOutcome.KDC_REFUSED: "the KDC refused the ticket",
            ProbeOutcome.UNREACHABLE: "the server could not be reached, so it is not proven",
            ProbeOutcome.ERROR: "the probe failed, so the server is not proven",
        }
        reason = "; ".join(dict.fromkeys(reasons[r.outcome] for r in bad)) + "."
        out.append(c.finding(status, subject=s.name, evidence=evidence, reason=reason[0].upper() + reason[1:],
                             fix=_server_fix(ctx, s, bad)))
    return out or [c.skipped("No client-facing Exchange servers were found.")]


def _rank(st: Status) -> int:
    return SEVERITY[st]


@check("kerberos.s4u", "The gateway can impersonate a test user to ActiveSync", "seg",
       "As the SEG service account: S4U2Self for a test user, S4U2Proxy to HTTP/<ActiveSync namespace>, and the "
       "ticket presented to each server's ActiveSync endpoint.")
def kerberos_s4u(ctx: Context) -> list[Finding]:
    c = CHECKS["kerberos.s4u"]
    if ctx.env.seg is None:
        return [c.skipped("No Secure Email Gateway is configured (wizard step seg names its service account).")]
    if ctx.probe is None:
        return [c.skipped(NO_PROBE)]
    blocked = _client_blocked(ctx)
    if blocked:
        return [_could_not_run(c, blocked)]
    if not ctx.probe.s4u:
        return [c.skipped(ctx.probe.s4u_skipped or "No S4U probe ran.")]
    by_server: dict[str, list[ProbeResult]] = {}
    for r in ctx.probe.s4u:
        by_server.setdefault(r.server, []).append(r)
    out = []
    for name, results in by_server.items():
        status = max((OUTCOME_STATUS[r.outcome] for r in results), key=_rank)
        evidence = "\n".join(f"{r.client or '?'} -> " + _result_line(r) for r in results)
        if status == Status.PASS:
            out.append(c.finding(Status.PASS, subject=name, evidence=evidence))
            continue
        out.append(c.finding(status, subject=name, evidence=evidence,
                             reason="The gateway cannot obtain or use a ticket on the user's behalf: devices behind "
                                    "it cannot reach their mailboxes with Kerberos.",
                             fix=_s4u_fix(ctx, name, results)))
    return out


def _s4u_fix(ctx: Context, server_name: str, results: list[ProbeResult]) -> str:
    """The failing KCD checks' own fixes (exact and named), else the server-side fix."""
    fixes = []
    if any(r.outcome == ProbeOutcome.KDC_REFUSED for r in results):
        for cid in ("kcd.service-account-spn", "kcd.protocol-transition", "kcd.no-unconstrained", "kcd.target",
                    "kcd.users-delegable"):
            for f in CHECKS[cid].run(ctx):
                if f.status == Status.FAIL and f.fix:
                    fixes.append(f"{cid}: {f.fix}")
        if not fixes:
            fixes.append("KDC_ERR_BADOPTION: check the delegation settings of the service account (wizard step seg).")
    server = ctx.env.server(server_name)
    if server is not None and any(r.outcome != ProbeOutcome.KDC_REFUSED and r.outcome != ProbeOutcome.ACCEPTED
                                  for r in results):
        fixes.append(_server_fix(ctx, server, [r for r in results if r.outcome not in (ProbeOutcome.ACCEPTED,
                                                                                      ProbeOutcome.KDC_REFUSED)]))
    return "\n".join(fixes)

