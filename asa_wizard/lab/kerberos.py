"""The lab's Kerberos: a KDC and the servers' acceptors simulated by the rules Windows follows.

It reads the lab's current state every call (the directory's accounts and each server's held
credentials), so a change the wizard makes is seen by the next probe:

- A ticket for an SPN is issued only if exactly one account holds it (HTTP/<name> also resolves to a
  computer account through HOST/<name>, as AD's default sPNMappings do). No owner:
  KDC_ERR_S_PRINCIPAL_UNKNOWN; two owners: KDC_ERR_PRINCIPAL_NOT_UNIQUE (the DC logs event 11). Either way
  the client falls back to NTLM.
- The ticket is AES256 when the owner allows AES (msDS-SupportedEncryptionTypes), RC4 when it allows only
  RC4; with the attribute unset the DC default decides: RC4 before the 2026 enforcement, AES after.
- A server accepts iff one of its credentials names the owner and holds the owner's current password (the
  digest of the password AD has now, whose key version is the ticket's kvno); otherwise KRB_AP_ERR_MODIFIED,
  worded like the client's System event 4. The result carries the ticket's kvno: an accepted ticket of the
  current msDS-KeyVersionNumber is the proof that the server holds the current password.
- S4U: the service account needs an SPN, TRUSTED_TO_AUTH_FOR_DELEGATION and the target in
  msDS-AllowedToDelegateTo, and the user must be delegable, else KDC_ERR_BADOPTION; then the acceptance rule.

Every probe also leaves the lines a real server would log (IIS) and the client's event 4 text
(`client_system_log`), so the log checks can be practised on the lab.

Cost: on the LabWorld's own parts a probe reads one server's live state and a view of the accounts that
the directory rebuilds only after a write (`accounts_snapshot`), with the owners of each SPN indexed, so
a check of N servers costs O(N), not a copy of the whole organisation per probe. Other directory and
Exchange objects (the tests' small fakes) are read whole on every call, as before.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Protocol

from ..core.model import (
    ENC_AES128,
    ENC_AES256,
    ENC_RC4,
    UAC_NOT_DELEGATED,
    UAC_TRUSTED_TO_AUTH_FOR_DELEGATION,
    ExchangeServer,
)
from ..core.model import Service
from ..core.ports import (
    ClientPath,
    PathResult,
    ProbeOutcome,
    ProbeResult,
    TicketResult,
    client_path,
    overall_outcome,
    paths_for_services,
)
from .extended_protection import decide, setting_for_path, settings_for
from .scenario import LabAccount, LabServer, LabVdir, Scenario
from .snapshot import account_uac, all_accounts, server_computer_account

# The 2026 RC4 hardening (KB5073381): from enforcement on, accounts without the attribute get AES tickets.
RC4_ENFORCEMENT = datetime(2026, 4, 1, tzinfo=timezone.utc)

AES256 = "aes256-cts-hmac-sha1-96"
AES128 = "aes128-cts-hmac-sha1-96"
RC4 = "rc4-hmac"


class _Directory(Protocol):
    def current_accounts(self) -> list[LabAccount]: ...


class _Exchange(Protocol):
    def current_scenario(self) -> Scenario: ...

    def append_log(self, server: str, kind: str, line: str) -> None: ...


def ticket_enctype(enctypes: int | None, now: datetime) -> str | None:
    """The session-ticket encryption a Windows KDC picks for an account (None: no common type)."""
    if enctypes is None:
        return AES256 if now >= RC4_ENFORCEMENT else RC4
    if enctypes & ENC_AES256:
        return AES256
    if enctypes & ENC_AES128:
        return AES128
    if enctypes & ENC_RC4:
        return RC4
    return None


def modified_event_text(server_account: str, spn: str, realm: str) -> str:
    """The description of the client's System event 4, as Windows words it."""
    return (f"The Kerberos client received a KRB_AP_ERR_MODIFIED error from the server {server_account}. The target "
            f"name used was {spn}. This indicates that the target server failed to decrypt the ticket provided by "
            "the client. This can occur when the target server principal name (SPN) is registered on an account "
            "other than the account the target service is using. Ensure that the target SPN is only registered on "
            "the account used by the server. This error can also happen if the target service account password is "
            "different than what is configured on the Kerberos Key Distribution Center for that target service. "
            "Ensure that the service on the server and the KDC are both configured to use the same password. If "
            f"the server name is not fully qualified, and the target domain ({realm}) is different from the client "
            f"domain ({realm}), check if there are identically named server accounts in these two domains, or use "
            "the fully-qualified name to identify the server.")


@dataclass
class _View:
    """What one probe reads: the organisation's names, the lab clock, the accounts (indexed by SPN and by
    sAMAccountName, in the directory's order) and a way to find a server's live state."""

    scenario: Scenario  # names only (realm, NetBIOS, domain, admin); its accounts and servers are not read
    now: datetime
    server: Callable[[str], LabServer | None]
    accounts: "_Accounts"


@dataclass
class _Accounts:
    by_spn: dict[str, list[LabAccount]] = field(default_factory=dict)  # lower-cased SPN -> owners, in order
    by_sam: dict[str, LabAccount] = field(default_factory=dict)

    @classmethod
    def of(cls, accounts: list[LabAccount]) -> "_Accounts":
        out = cls()
        for a in accounts:
            for spn in dict.fromkeys(s.lower() for s in a.spns):
                out.by_spn.setdefault(spn, []).append(a)
            out.by_sam[a.sam.lower()] = a  # the last of a name, as a dict of them would keep
        return out


class LabKerberos:
    """`KerberosProbe` for the training lab (see the module docstring for the rules)."""

    def __init__(self, directory: _Directory, exchange: _Exchange, client: str | None = None) -> None:
        self.directory = directory
        self.exchange = exchange
        self._client = client  # sAMAccountName of the user the probe runs as; default: the lab admin
        self._events: list[str] = []
        self._lock = threading.Lock()
        # The LabWorld's parts offer cheap reads (one server, the accounts view); fakes are read whole.
        self._live = all(hasattr(directory, n) for n in ("accounts_snapshot", "generation")) and \
            all(hasattr(exchange, n) for n in ("server", "now"))
        self._names: Scenario | None = None
        self._cached: tuple[int, _Accounts] | None = None

    # --- state ----------------------------------------------------------------------------------------
    def _state(self) -> _View:
        if not self._live:
            scenario = self.exchange.current_scenario()
            scenario.accounts = self.directory.current_accounts()
            return _View(scenario, scenario.now, scenario.server, _Accounts.of(all_accounts(scenario)))
        if self._names is None:  # once: the names and the server list do not change (the directory's copy)
            self._names = getattr(self.directory, "scenario", None) or self.exchange.current_scenario()
        names = self._names
        generation, current = self.directory.accounts_snapshot()
        cached = self._cached
        if cached is None or cached[0] != generation:
            # as all_accounts(): a server whose computer account is not in the directory still has one
            have = {a.sam.lower() for a in current}
            extra = [server_computer_account(names, s) for s in names.servers if f"{s.name}$".lower() not in have]
            self._cached = cached = (generation, _Accounts.of([*current, *extra]))
        return _View(names, self.exchange.now(), self.exchange.server, cached[1])

    def _client_name(self, scenario: Scenario) -> str:
        return self._client or scenario.admin_user.rpartition("\\")[2]

    def describe(self) -> str:
        scenario = self._state().scenario
        return f"the lab's simulated KDC ({scenario.realm}), client {self._client_name(scenario)}@{scenario.realm}"

    @staticmethod
    def _owners(spn: str, view: _View) -> list[LabAccount]:
        owners = view.accounts.by_spn.get(spn.lower(), [])
        service, _, host = spn.partition("/")
        if not owners and service.lower() == "http":
            owners = view.accounts.by_spn.get(f"host/{host}".lower(), [])
        return list(owners)

    def _issue(self, spn: str, view: _View) -> tuple[TicketResult, LabAccount | None]:
        scenario = view.scenario
        owners = self._owners(spn, view)
        if not owners:
            return TicketResult(spn, False, error=f"KDC_ERR_S_PRINCIPAL_UNKNOWN: no account holds {spn}"), None
        if len(owners) > 1:
            names = ", ".join(f"{scenario.netbios}\\{a.sam}" for a in owners)
            return TicketResult(spn, False, error=f"KDC_ERR_PRINCIPAL_NOT_UNIQUE: {spn} is registered on {names} "
                                                  "(the domain controller logs KDC event 11)"), None
        owner = owners[0]
        enctype = ticket_enctype(owner.enctypes, view.now)
        if enctype is None:
            return TicketResult(spn, False, error=f"KDC_ERR_ETYPE_NOSUPP: {owner.sam} allows no supported "
                                                  "encryption type"), None
        return TicketResult(spn, True, enctype=enctype, kvno=owner.key_version), owner

    # --- the port -------------------------------------------------------------------------------------
    def service_ticket(self, spn: str) -> TicketResult:
        return self._issue(spn, self._state())[0]

    def probe_server(self, server: ExchangeServer, namespace: str,
                     paths: tuple[ClientPath, ...] | None = None) -> ProbeResult:
        """Per path, as a client that binds the channel of its own TLS connection to the server (HTTPS with
        the namespace as TLS name, straight to the server's address)."""
        view = self._state()
        spn = f"HTTP/{namespace}"
        client = f"{self._client_name(view.scenario)}@{view.scenario.realm}"
        if paths is None:
            paths = _paths_of(view.scenario, server, namespace)
        return self._present(view, server, spn, client, paths)

    def s4u(self, service_account: str, user: str, spn: str, server: ExchangeServer) -> ProbeResult:
        view = self._state()
        by_sam = view.accounts.by_sam
        svc, who = by_sam.get(service_account.lower()), by_sam.get(user.lower())
        at = view.now
        client = f"{user}@{view.scenario.realm}"
        refused = self._s4u_refusal(svc, who, service_account, user, spn)
        if refused:
            return ProbeResult(server.name, spn, ProbeOutcome.KDC_REFUSED, refused, client=client, at=at)
        return self._present(view, server, spn, client, (client_path("eas"),), gateway=True)

    @staticmethod
    def _s4u_refusal(svc: LabAccount | None, who: LabAccount | None, service_account: str, user: str,
                     spn: str) -> str:
        if svc is None:
            return f"KDC_ERR_C_PRINCIPAL_UNKNOWN: the service account {service_account} does not exist"
        if who is None:
            return f"KDC_ERR_C_PRINCIPAL_UNKNOWN: S4U2Self for {user}: no such user"
        uac, user_uac = account_uac(svc), account_uac(who)
        reasons = []
        if not svc.spns:
            reasons.append(f"{svc.sam} has no SPN")
        if not uac & UAC_TRUSTED_TO_AUTH_FOR_DELEGATION:
            reasons.append(f"{svc.sam} is not trusted to authenticate for delegation (protocol transition): the "
                           "S4U2Self ticket is not forwardable")
        if spn.lower() not in (d.lower() for d in svc.delegate_to):
            reasons.append(f"{spn} is not in msDS-AllowedToDelegateTo of {svc.sam}")
        if user_uac & UAC_NOT_DELEGATED or who.protected_user:
            reasons.append(f"{who.sam} cannot be delegated (sensitive account or Protected Users)")
        if reasons:
            return ("KDC_ERR_BADOPTION: KDC can't fulfill requested option (constrained delegation failed): "
                    + "; ".join(reasons))
        return ""

    def _present(self, view: _View, server: ExchangeServer, spn: str, client: str, paths: tuple[ClientPath, ...],
                 gateway: bool = False) -> ProbeResult:
        scenario, at = view.scenario, view.now
        lab_server = view.server(server.name) or view.server(server.fqdn)
        if lab_server is None or lab_server.fault == "unreachable":
            return ProbeResult(server.name, spn, ProbeOutcome.UNREACHABLE,
                               f"{server.fqdn or server.name}:443 did not answer", at=at)
        ticket, owner = self._issue(spn, view)
        if not ticket.ok or owner is None:
            for p in paths:
                self._log_iis(lab_server, at, p.path, 200, 0, 0, client)
            return ProbeResult(server.name, spn, ProbeOutcome.NTLM_FALLBACK,
                               f"no Kerberos ticket ({ticket.error}); the client fell back to NTLM", at=at)
        holds = self._holds_key(scenario, lab_server, owner)
        account = f"{lab_server.name.lower()}$"
        ep = settings_for(lab_server)
        results: list[PathResult] = []
        for p in paths:
            offered = _offers(lab_server, p, gateway)
            if offered != "negotiate":
                results.append(PathResult(p, ProbeOutcome.NOT_OFFERED if offered == "basic" else
                                          ProbeOutcome.NTLM_FALLBACK, _NOT_OFFERED[offered], status=401))
                continue
            if not holds:
                self._log_iis(lab_server, at, p.path, 401, 1, 2148074254, "", p.method)
                results.append(PathResult(p, ProbeOutcome.REJECTED, "KRB_AP_ERR_MODIFIED: HTTP 401 after the Kerberos "
                                                                    "token", status=401))
                continue
            setting = setting_for_path(ep, p.path)
            ok, why = decide(setting, bound=True, mismatch=False)
            if not ok:  # cannot happen for a client that binds its own connection; kept for the rule's sake
                self._log_iis(lab_server, at, p.path, 401, 1, 2148074254, "")
                results.append(PathResult(p, ProbeOutcome.CHANNEL_BINDING, why, status=401))
                continue
            self._log_iis(lab_server, at, p.path, 200, 0, 0, client, p.method)
            results.append(PathResult(p, ProbeOutcome.ACCEPTED, "Kerberos (mutual authentication); Extended "
                                      f"Protection {setting}", status=200, channel_bound=setting != "None"))
        outcome = overall_outcome([r.outcome for r in results]) if results else ProbeOutcome.ACCEPTED
        if outcome == ProbeOutcome.REJECTED:
            self._log_event(scenario, at, account, spn)
            return ProbeResult(server.name, spn, ProbeOutcome.REJECTED,
                               f"KRB_AP_ERR_MODIFIED: the server {account} failed to decrypt the ticket for {spn} "
                               f"(encrypted with key version {owner.key_version} of {scenario.netbios}\\{owner.sam})",
                               enctype=ticket.enctype, at=at, paths=results, kvno=ticket.kvno)
        detail = {ProbeOutcome.ACCEPTED: "Kerberos (mutual authentication)",
                  ProbeOutcome.NTLM_FALLBACK: "a path offers only NTLM: clients use NTLM there",
                  ProbeOutcome.NOT_OFFERED: "no path offers Negotiate"}.get(outcome, outcome.value)
        return ProbeResult(server.name, spn, outcome, detail, enctype=ticket.enctype,
                           client=client if outcome == ProbeOutcome.ACCEPTED else None, at=at, paths=results,
                           kvno=ticket.kvno)

    @staticmethod
    def _holds_key(scenario: Scenario, server: LabServer, owner: LabAccount) -> bool:
        """Exchange tries every credential of the server's list (newest first) on a ticket."""
        for cred in server.credentials:
            domain, _, sam = cred.account.rpartition("\\")
            same = sam.lower() == owner.sam.lower() and (not domain or domain.lower() == scenario.netbios.lower())
            if same and cred.digest == owner.digest:
                return True
        return False

    # --- what the servers and the client log ----------------------------------------------------------
    # (IIS lines: one per request, as IIS writes them)
    def _log_iis(self, server: LabServer, at: datetime, path: str, status: int, sub: int, win32: int,
                 client: str, method: str = "POST") -> None:
        user = client.split("@")[0] if client else "-"
        line = (f"{at:%Y-%m-%d %H:%M:%S} 127.0.0.1 {method} {path} - 443 {user} 127.0.0.1 asa-wizard-probe - "
                f"{status} {sub} {win32} 12")
        self.exchange.append_log(server.name, "iis", line)

    def _log_event(self, scenario: Scenario, at: datetime, account: str, spn: str) -> None:
        text = (f"Log Name: System\nSource: Microsoft-Windows-Security-Kerberos\nDate: {at:%m/%d/%Y %I:%M:%S %p}\n"
                f"Event ID: 4\nTask Category: None\nLevel: Error\nKeywords: Classic\nUser: N/A\n"
                f"Computer: asa-wizard.{scenario.domain}\nDescription:\n"
                f"{modified_event_text(account, spn, scenario.realm)}\n")
        with self._lock:
            self._events.append(text)

    def client_system_log(self) -> str:
        """The System log of the machine the probe ran on, as Event Viewer's text export (event 4 entries)."""
        with self._lock:
            return "\n".join(self._events)


# --- which paths a lab server serves and what they offer ------------------------------------------------
_NOT_OFFERED = {
    "basic": "HTTP 401 offering Basic only: Windows authentication is off on this virtual directory",
    "ntlm": "HTTP 401 offering NTLM only: the virtual directory's authentication methods lack Negotiate",
}


def _paths_of(scenario: Scenario, server: ExchangeServer, namespace: str) -> tuple[ClientPath, ...]:
    """The client paths of this server that publish `namespace` (the scenario's virtual directories)."""
    lab_server = scenario.server(server.name) or scenario.server(server.fqdn)
    if lab_server is None:
        return ()
    services = {svc for svc, v in lab_server.vdirs.items()
                if namespace.lower() in ((v.internal_host or "").lower(), (v.external_host or "").lower())}
    return paths_for_services(services)


def _offers(server: LabServer, path: ClientPath, gateway: bool) -> str:
    """'negotiate', 'ntlm' or 'basic': what the virtual directory behind `path` answers a client with."""
    v: LabVdir | None = server.vdirs.get(path.service)
    if v is None:
        return "negotiate"
    if path.service == Service.EAS:
        if gateway:  # the gateway's proof is judged by kcd.eas-auth; its ticket reaches the acceptor here
            return "negotiate"
        if not v.windows:
            return "basic"
        return "negotiate" if any(p.lower().startswith("negotiate") for p in v.providers) else "ntlm"
    methods = {m.lower() for m in v.auth_methods}
    if not methods or methods & {"negotiate", "windowsintegrated", "kerberos"}:
        return "negotiate"
    return "ntlm" if "ntlm" in methods else "basic"
