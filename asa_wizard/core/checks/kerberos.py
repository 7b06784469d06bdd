"""Proof: a ticket for each namespace, accepted by each server, and the gateway's S4U path.

`run_probes` asks a `KerberosProbe` (real or lab) for everything the checks need; the checks read the
`ProbeReport`, so a report can also be built elsewhere (another machine, a saved run) and checked here.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from asa_wizard.core.errors import WizardError
from asa_wizard.core.model import Environment, ExchangeServer
from asa_wizard.core.ports import KerberosProbe, ProbeOutcome, ProbeResult, TicketResult
from asa_wizard.core.commands import command, setspn
from .base import CHECKS, SEVERITY, Context, Finding, ProbeReport, Status, check
from .kcd import target_spns

NO_PROBE = "No Kerberos probe ran (wizard step verify runs it)."

OUTCOME_STATUS = {
    ProbeOutcome.ACCEPTED: Status.PASS,
    ProbeOutcome.REJECTED: Status.FAIL,
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


def run_probes(env: Environment, probe: KerberosProbe, cancel: threading.Event | None = None,
               concurrency: int = 8) -> ProbeReport:
    """Ask for a ticket per namespace, present it to every server behind the namespace, and run the gateway's
    S4U for each test user against each ActiveSync server. Failures become results, never exceptions."""
    report = ProbeReport(client=probe.describe())
    targets = probe_targets(env)
    for host, _ in targets:
        report.tickets.append(_safe_ticket(probe, f"HTTP/{host}"))

    jobs = [(s, host) for host, servers in targets for s in servers]

    def one(job: tuple[ExchangeServer, str]) -> ProbeResult:
        server, host = job
        if cancel is not None and cancel.is_set():
            return ProbeResult(server.name, f"HTTP/{host}", ProbeOutcome.ERROR, "cancelled")
        try:
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
            if label in ("AES256", "AES128"):
                out.append(c.finding(Status.PASS, subject=ns.host, evidence=evidence))
            else:
                out.append(c.finding(
                    Status.WARN, subject=ns.host, evidence=evidence,
                    reason="The ticket works today but is encrypted with a legacy type; domain controllers with the "
                           "2026 RC4 enforcement (KB5073381) stop issuing RC4 tickets to accounts without AES.",
                    fix="Set AES on the ASA and roll its password (see asa.enctypes; wizard step asa)."))
    return out or [c.skipped("No namespaces were found.")]


def _result_line(r: ProbeResult) -> str:
    return f"{r.spn}: {r.outcome.value}" + (f" ({_enctype_label(r.enctype)})" if r.enctype else "") + (
        f" - {r.detail}" if r.detail else "")


def _server_fix(ctx: Context, server: ExchangeServer, bad: list[ProbeResult]) -> str:
    fixes: list[str] = []
    for r in bad:
        ticket = ctx.probe.ticket(r.spn) if ctx.probe else None
        if r.outcome == ProbeOutcome.REJECTED:
            fix = ctx.roll_fix([server]) if ctx.asa is not None else "Create and roll out the ASA (wizard step asa)."
            fix += "\n(if the SPN sits on another account than the ASA, see spn.owner)"
        elif r.outcome == ProbeOutcome.NTLM_FALLBACK and ticket is not None and not ticket.ok:
            fix = _ticket_fix(ctx, r.spn, ticket.error or "")
        elif r.outcome == ProbeOutcome.NTLM_FALLBACK:
            fix = (f"{server.name} answered with NTLM only: offer Negotiate on its virtual directories "
                   "(see auth.outlook-anywhere, auth.mapi; wizard step client-auth).")
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
            ProbeOutcome.NTLM_FALLBACK: "Kerberos was not used: clients authenticate with NTLM",
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

