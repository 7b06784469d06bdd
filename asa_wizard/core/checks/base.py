"""The pieces every check shares: the finding, the registry, and the context a check reads.

A check is a function `(ctx) -> list[Finding]` registered with `@check(...)`. The context wraps the
`Environment` with the lookups several checks need (which account is the ASA, which servers answer a
namespace, which server holds which credential), so each check stays a few lines of reasoning.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from asa_wizard.core.commands import quote, roll_script
from asa_wizard.core.logs import LogText
from asa_wizard.core.model import Account, AccountKind, AsaCredential, Environment, ExchangeServer, Namespace, Service
from asa_wizard.core.ports import ProbeResult, TicketResult
from asa_wizard.core.steps import STEP_IDS

AREAS = ("inventory", "asa", "spn", "rollout", "auth", "ep", "kcd", "kerberos", "logs")
STEPS = STEP_IDS  # the wizard steps a check may name: the one step registry's ids


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


# The rollout script updates every server first and AD last: a server's credential that is current is dated a
# little before pwdLastSet. Six hours covers a slow roll across many servers; older means an older password.
from asa_wizard.core.current import HINT_WINDOW as ROLL_WINDOW  # noqa: E402,F401 - one rule

# worst first: a check's overall status is the worst of its findings
SEVERITY = {Status.FAIL: 3, Status.WARN: 2, Status.PASS: 1, Status.SKIPPED: 0}


@dataclass
class Finding:
    """One result of one check for one subject. Every text is plain (the UI escapes it)."""

    check_id: str
    title: str
    status: Status
    subject: str = ""  # a server, a namespace, an account, or "" for the whole organisation
    evidence: str = ""  # what the check saw
    reason: str = ""  # why it matters
    fix: str = ""  # exact commands, or "wizard step X"
    skipped_reason: str = ""

    @property
    def area(self) -> str:
        return CHECKS[self.check_id].area

    @property
    def step(self) -> str:
        return CHECKS[self.check_id].step


@dataclass
class ProbeReport:
    """What a Kerberos probe saw: one ticket per namespace SPN, one result per server and namespace,
    and the SEG's S4U results. Built by `run_probes` (or by hand in tests)."""

    tickets: list[TicketResult] = field(default_factory=list)
    servers: list[ProbeResult] = field(default_factory=list)
    s4u: list[ProbeResult] = field(default_factory=list)
    s4u_skipped: str = ""  # why no S4U probe ran (no SEG, no test user)
    client: str = ""  # the probe's own description: who asked, from where

    def ticket(self, spn: str) -> TicketResult | None:
        for t in self.tickets:
            if t.spn.lower() == spn.lower():
                return t
        return None


@dataclass
class Check:
    id: str
    title: str
    area: str
    step: str  # the wizard step that fixes what this check finds
    run: Callable[["Context"], list[Finding]]
    summary: str = ""  # what it looks at, one sentence (docs/checks.md has the rest)

    def finding(self, status: Status, subject: str = "", evidence: str = "", reason: str = "", fix: str = "",
                skipped_reason: str = "") -> Finding:
        return Finding(self.id, self.title, status, subject, evidence, reason, fix, skipped_reason)

    def skipped(self, why: str, subject: str = "") -> Finding:
        return Finding(self.id, self.title, Status.SKIPPED, subject, skipped_reason=why)


CHECKS: dict[str, Check] = {}


def check(check_id: str, title: str, step: str, summary: str = "") -> Callable:
    """Register a check; the catalogue runs them in registration order (area by area)."""
    area = check_id.split(".", 1)[0]
    assert area in AREAS, check_id
    assert step in STEPS, step

    def register(fn: Callable[["Context"], list[Finding]]) -> Callable[["Context"], list[Finding]]:
        assert check_id not in CHECKS, check_id
        CHECKS[check_id] = Check(check_id, title, area, step, fn, summary or (fn.__doc__ or "").strip())
        return fn

    return register


# --- small text helpers ---------------------------------------------------------------------------------
def ps_quote(value: str) -> str:
    """A PowerShell single-quoted literal: nothing inside is expanded (the command builder's `quote`)."""
    return quote(value)


def aware(dt: datetime | None) -> datetime | None:
    """Datetimes without a zone are taken as UTC so they compare with the clock."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def fmt_time(dt: datetime | None) -> str:
    dt = aware(dt)
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "never"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def join(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


# --- the context ----------------------------------------------------------------------------------------
class Context:
    """The environment plus lookups shared by the checks. Read-only: checks never change the inputs."""

    def __init__(self, env: Environment, probe: ProbeReport | None, logs: list[LogText] | None, now: datetime):
        self.env = env
        self.probe = probe
        self._probes_of: dict[str, list] = {}  # the probe's results per server, grouped once
        for r in probe.servers if probe is not None else []:
            self._probes_of.setdefault(r.server.lower(), []).append(r)
        self.logs = logs
        self.now = aware(now)
        self.asa = self._find_asa()

    # --- accounts -------------------------------------------------------------------------------------
    def _find_asa(self) -> Account | None:
        """The ASA the user chose; without a choice, the account the servers' latest credentials name."""
        if self.env.asa_sam:
            return self.env.asa
        counts: dict[str, int] = {}
        for s in self.env.servers:
            if s.asa_latest:
                counts[s.asa_latest.account] = counts.get(s.asa_latest.account, 0) + 1
        for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower())):
            acct = self.account_for_credential(name)
            if acct is not None:
                return acct
        return None

    @property
    def asa_name(self) -> str:
        """The ASA's sAMAccountName as chosen, even when the account does not exist."""
        if self.asa is not None:
            return self.asa.sam
        return self.env.asa_sam or ""

    def netbios_of(self, account: Account | None) -> str:
        domain = self.env.forest.domain_of_dn(account.dn) if account is not None else None
        if domain is None and self.env.forest.domains:
            domain = self.env.forest.domains[0]
        return domain.netbios_name if domain else ""

    def qualified(self, account: Account | None, sam: str | None = None) -> str:
        """DOMAIN\\sam, as setspn and the rollout script want it."""
        name = account.sam if account is not None else (sam or "")
        netbios = self.netbios_of(account)
        return f"{netbios}\\{name}" if netbios else name

    def account_for_credential(self, qualified: str) -> Account | None:
        """The account a server credential (DOMAIN\\NAME$) names, matched by NetBIOS domain and sam."""
        domain, _, sam = qualified.rpartition("\\")
        for a in self.env.accounts:
            if a.sam.lower() != sam.strip().lower():
                continue
            if not domain or self.netbios_of(a).lower() == domain.strip().lower():
                return a
        return None

    def credential_is(self, cred: AsaCredential | None, account: Account | None) -> bool:
        if cred is None or account is None:
            return False
        domain, _, sam = cred.account.rpartition("\\")
        if sam.strip().lower() != account.sam.lower():
            return False
        return not domain or domain.strip().lower() == self.netbios_of(account).lower()

    def holds(self, server: ExchangeServer, account: Account | None) -> AsaCredential | None:
        """The credential of `account` the server holds (latest first), if any."""
        for cred in (server.asa_latest, server.asa_previous):
            if self.credential_is(cred, account):
                return cred
        return None

    def is_server_computer(self, account: Account) -> ExchangeServer | None:
        """The Exchange server whose own computer account this is."""
        if not account.is_computer:
            return None
        for s in self.env.servers:
            if account.sam.lower() == f"{s.name.lower()}$":
                return s
        return None

    def owners(self, spn: str) -> list[Account]:
        """Every known account holding `spn` (case-insensitive), in a stable order."""
        out: list[Account] = []
        for dn in self.env.spn_owners.get(spn.lower(), []):
            a = self.env.account_by_dn(dn)
            out.append(a if a is not None else Account(dn=dn, sam=_cn(dn), kind=_guess_kind(dn)))
        return sorted(out, key=lambda a: a.dn.lower())

    # --- servers --------------------------------------------------------------------------------------
    def client_servers(self) -> list[ExchangeServer]:
        """Every server that serves clients (all but Edge Transport): each needs the ASA credential."""
        return [s for s in self.env.servers if "Edge" not in s.roles]

    def servers_for(self, ns: Namespace) -> list[ExchangeServer]:
        out, seen = [], set()
        for name in ns.servers:
            s = self.env.server(name)
            if s is not None and id(s) not in seen:
                seen.add(id(s))
                out.append(s)
        return out

    def current_servers(self) -> list[ExchangeServer]:
        """Servers holding the ASA's current password (core.current's one rule): good -CopyFrom sources."""
        asa = self.asa
        if asa is None:
            return []
        return [s for s in self.client_servers() if self.verdict(s).current]

    def verdict(self, server: ExchangeServer):
        """core.current.credential_verdict for this server, with the probe's tickets as the proof when run."""
        from asa_wizard.core.current import credential_verdict

        asa = self.asa
        assert asa is not None
        probes = self._probes_of.get(server.name.lower(), []) if self.probe is not None else None
        return credential_verdict(server, asa, self.qualified(asa), probes)

    def roll_fix(self, targets: list[ExchangeServer]) -> str:
        """The supported way to give `targets` the ASA credential: copy from a good server, else generate."""
        names = [t.fqdn or t.name for t in targets]
        good = [s for s in self.current_servers() if s not in targets]
        if good:
            src = good[0]
            return ("\n".join(
                roll_script(t.fqdn or t.name, CopyFrom=src.fqdn or src.name) for t in targets)
                + "\n(run from $exscripts on an Exchange server; wizard step rollout does the same)")
        account = self.qualified(self.asa, self.asa_name or "EXASA$")
        return (f"{roll_script(names, GenerateNewPasswordFor=account)}\n"
                "(no server holds the current password to copy: this sets a new one on these servers and then in AD;"
                " wizard step rollout)")

    # --- namespaces -----------------------------------------------------------------------------------
    def namespaces_for(self, *services: Service) -> list[Namespace]:
        return [n for n in self.env.namespaces if n.services & set(services)]


def _cn(dn: str) -> str:
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[1] if "=" in first else first


def _guess_kind(dn: str) -> AccountKind:
    return AccountKind.COMPUTER if "cn=computers" in dn.lower() else AccountKind.USER

