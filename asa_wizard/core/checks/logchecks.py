"""What the servers' and clients' logs say: the symptoms a person sees before anything else."""

from __future__ import annotations

from asa_wizard.core.logs import LogText, parse_httpproxy, parse_iis, parse_krb_modified
from .base import CHECKS, Context, Finding, Status, check, fmt_time, join

NO_LOGS = "No {what} was given (point the wizard at a log file, or fetch it over WinRM)."


# Kerberos event 4 (KRB_AP_ERR_MODIFIED) is logged by the Kerberos CLIENT that got the refusal, not by the
# Exchange server and not by the KDC: the check reads an export of a client's System log, never a server's.
CLIENT_LOG_NEEDED = (
    "No client's System log export was given. Event 4 (KRB_AP_ERR_MODIFIED) is logged on the client that presented "
    "the ticket (a user's PC), not on the Exchange server: on an affected client run wevtutil qe System "
    "/q:\"*[System[Provider[@Name='Microsoft-Windows-Security-Kerberos'] and (EventID=4)]]\" /f:text > krb4.txt "
    "and give the file to the wizard.")


def _logs(ctx: Context, kind: str) -> list[LogText]:
    return [log for log in (ctx.logs or []) if log.kind == kind]


def _top(pairs: list[tuple[str, int]], n: int = 5) -> str:
    shown = [f"{k} ({v})" for k, v in pairs[:n]]
    more = len(pairs) - n
    return join(shown) + (f" and {more} more" if more > 0 else "")


def _server_fix(ctx: Context, server_name: str) -> str:
    server = ctx.env.server(server_name) if server_name else None
    if server is not None and ctx.asa is not None:
        return ctx.roll_fix([server])
    return "Give every server behind the name the ASA's current credential (see rollout.coverage, rollout.current)."


@check("logs.iis-401", "IIS logs show no Kerberos logon failures", "rollout",
       "IIS W3C log lines with 401 1 2148074254 (SEC_E_NO_CREDENTIALS): the server could not use the ticket.")
def logs_iis_401(ctx: Context) -> list[Finding]:
    c = CHECKS["logs.iis-401"]
    logs = _logs(ctx, "iis")
    if not logs:
        return [c.skipped(NO_LOGS.format(what="IIS log"))]
    out = []
    for log in logs:
        s = parse_iis(log.text)
        if s.failures == 0:
            out.append(c.finding(Status.PASS, subject=log.label,
                                 evidence=f"{s.requests} requests, none failed with 401 1 2148074254."))
            continue
        out.append(c.finding(
            Status.FAIL, subject=log.label,
            evidence=f"{s.failures} of {s.requests} requests failed with 401 1 2148074254 between "
                     f"{fmt_time(s.first)} and {fmt_time(s.last)}.\nClients: {_top(s.clients)}\nURLs: {_top(s.urls)}",
            reason="0x8009030E (SEC_E_NO_CREDENTIALS): the server could not decrypt the clients' Kerberos tickets. "
                   "Typically the server lacks the ASA credential (a new or rebuilt server) or holds an old one.",
            fix=_server_fix(ctx, log.server)))
    return out


@check("logs.httpproxy-auth", "HttpProxy logs show Negotiate", "client-auth",
       "The AuthenticationType column of the HttpProxy logs (Mapi, RpcHttp): Negotiate expected, NTLM flagged.")
def logs_httpproxy_auth(ctx: Context) -> list[Finding]:
    c = CHECKS["logs.httpproxy-auth"]
    logs = _logs(ctx, "httpproxy")
    if not logs:
        return [c.skipped(NO_LOGS.format(what="HttpProxy log"))]
    out = []
    for log in logs:
        s = parse_httpproxy(log.text)
        if s.authenticated == 0:
            out.append(c.skipped(f"No authenticated request in this log ({s.requests} requests).", subject=log.label))
            continue
        counts = ", ".join(f"{t or '(anonymous)'} {n}" for t, n in s.by_type.items())
        evidence = (f"AuthenticationType: {counts} ({join(s.protocols)}; {fmt_time(s.first)} to {fmt_time(s.last)}).")
        kerberos = s.count("Negotiate", "Kerberos")
        legacy = s.count("NTLM", "Basic")
        if kerberos == 0:
            out.append(c.finding(Status.FAIL, subject=log.label, evidence=evidence,
                                 reason="No client authenticated with Negotiate: Outlook is not using Kerberos.",
                                 fix="Offer Negotiate to Outlook (see auth.outlook-anywhere, auth.mapi; wizard step "
                                     "client-auth), after the ASA and SPNs are in place."))
        elif legacy:
            out.append(c.finding(Status.WARN, subject=log.label, evidence=evidence,
                                 reason=f"{legacy} requests still used NTLM or Basic. Negotiate is expected; note "
                                        "that Negotiate can itself carry NTLM: confirm Kerberos on a client with klist.",
                                 fix="Find the clients still on NTLM (older Outlook profiles, clients outside the "
                                     "domain) and check auth.outlook-anywhere and auth.mapi on every server."))
        else:
            out.append(c.finding(Status.PASS, subject=log.label,
                                 evidence=evidence + " Confirm Kerberos on a client with klist (Negotiate can carry "
                                                     "NTLM)."))
    return out


@check("logs.krb-ap-err-modified", "No client logs KRB_AP_ERR_MODIFIED", "rollout",
       "Kerberos event 4 in a client's System log: the server named could not decrypt a ticket for the SPN named.")
def logs_krb_modified(ctx: Context) -> list[Finding]:
    c = CHECKS["logs.krb-ap-err-modified"]
    logs = _logs(ctx, "system")
    if not logs:
        return [c.skipped(CLIENT_LOG_NEEDED)]
    out = []
    for log in logs:
        events = parse_krb_modified(log.text)
        if not events:
            out.append(c.finding(Status.PASS, subject=log.label, evidence="No KRB_AP_ERR_MODIFIED event in this log."))
            continue
        by_account: dict[str, list] = {}
        for e in events:
            by_account.setdefault(e.server_account.lower(), []).append(e)
        for account, evs in by_account.items():
            name = evs[0].server_name
            targets = sorted({e.target for e in evs}, key=str.lower)
            dates = [e.when_text for e in evs if e.when_text]
            clients = sorted({e.computer for e in evs if e.computer})
            evidence = (f"{len(evs)} event(s): the server {evs[0].server_account} could not decrypt tickets for "
                        f"{join(targets)}" + (f" ({dates[0]} to {dates[-1]})" if dates else "")
                        + (f"; logged on {join(clients)}" if clients else "") + f" [{log.label}].")
            out.append(c.finding(
                Status.FAIL, subject=name, evidence=evidence,
                reason="The SPN's owner and the key this server holds differ: the server lacks the ASA credential or "
                       "holds an old password, or the SPN sits on another account (see spn.owner).",
                fix=_server_fix(ctx, name)))
    return out
