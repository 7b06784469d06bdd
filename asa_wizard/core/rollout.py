"""The rollout engine: the ASA credential onto every Exchange server, in Microsoft's safe order.

Order (as Microsoft documents it): generate the new password on ONE server (the first reachable, healthy
one: `-GenerateNewPasswordFor`), then copy that credential to every other server (`-CopyFrom <first>`) in
parallel, bounded. When some servers already hold the right credential (a new server was added), there is
no generate at all: only copies from a server that holds it (`RolloutRequest.source`).

Safety:
- The journal gets an `intent` before and a `done`/`failed` after every roll, so an interrupted run resumes
  where it stopped and never generates a password some servers already hold: a done generate leaves only
  copies; a generate whose outcome is unknown (intent, no done) is decided by re-reading that server.
- A failed generate blocks every copy (nothing to copy); a failed or unreachable server blocks the steps
  that depend on every server holding the credential: `spn_registration_allowed` says which.
- Verification reads each server's credential after its roll (the roll script reads it back in the same
  call; servers finished in an earlier run are re-read): the account must match and the credential must be
  at least as new as the password (the script pushes before it changes AD, so a few minutes of slack). The
  source of the copies is verified before any copy starts (a credential that fails is not handed on); a copy
  that fails verification is journalled as failed, so a resume copies it again.
- Undo: every `done` records {"server": address, "remove": <the server held no ASA credential before>}.
  A server that held none gets `Set-ClientAccessService -RemoveAlternateServiceAccountCredentials` on undo;
  one that held a credential keeps the new one (an old password cannot be restored). What a server held
  "before" is what it held before the first roll this journal recorded for it (so a resume never mistakes
  the run's own credential for an earlier one), else what the request's servers say (discovery), else a
  read of the server just before its roll.

Driven by a plan (`RolloutRequest.planned`: the executor), the journal records the plan's own changes (ids,
commands, dependencies) and the generate runs on the server the plan chose (`generate_on`), nowhere else.

Per-server states: pending -> running -> done -> verified, or failed (with the reason and a fix), or
skipped (blocked by an earlier failure). Cancellation (a threading.Event): running rolls finish, nothing
new starts, unstarted servers stay pending for the resume.

Progress callback contract: `progress(event)` is called from worker threads, never two calls at once (the
engine serialises them), in the order the states changed. It must return quickly and must not call back
into the engine; a UI hands the event to its own thread (Textual: `post_message` / `call_from_thread`).
An exception raised by the callback is kept in `RolloutReport.callback_error` and never stops the rollout.
"""

from __future__ import annotations

import copy
import enum
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable, Mapping, TypeVar

from .changes import Change, System
from .errors import (
    AuthenticationFailed,
    ConnectionFailed,
    NotFound,
    WizardError,
)
from .journal import ChangeStatus, Journal, JournalEvent, summarize
from .model import AsaCredential, Environment, ExchangeServer, Namespace, normalize_account
from .commands import SWITCH, command, roll_script, variable
from .ports import ExchangePort, RollOutcome, RollResult

# Microsoft's script pushes the credential to the servers first and sets the AD password afterwards, so
# the first server's WhenAdded can precede pwdLastSet by the length of the run.
CLOCK_SLACK = timedelta(minutes=10)
DEFAULT_CONCURRENCY = 4
T = TypeVar("T")
# Failures where the script never ran: nothing changed, another server may take the generate.
_DID_NOT_RUN = (ConnectionFailed, AuthenticationFailed, NotFound)


class Phase(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    VERIFIED = "verified"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


@dataclass
class ServerProgress:
    server: str  # the name (ids, display)
    address: str  # what the ExchangePort is called with (FQDN when known)
    phase: Phase = Phase.PENDING
    action: str | None = None  # "generate" | "copy"
    reason: str = ""
    fix: str = ""
    latest: AsaCredential | None = None
    log_excerpt: str = ""


@dataclass(frozen=True)
class RolloutEvent:
    server: str
    phase: Phase
    action: str | None
    message: str
    fix: str = ""
    finished: int = 0  # servers in a final state (verified, failed, skipped)
    total: int = 0


@dataclass
class RolloutRequest:
    account: str  # DOMAIN\NAME$ as the script takes it
    # every server behind the namespaces, in order of preference; an ExchangeServer whose ASA state was read
    # (asa_state_known) also says what it held before, which decides what undo does on it
    servers: list[ExchangeServer | str]
    source: str | None = None  # copy from this server (it holds the credential) instead of generating
    concurrency: int = DEFAULT_CONCURRENCY
    generate_on: str | None = None  # only this server may take the generate (None: the first healthy one)
    planned: list[Change] = field(default_factory=list)  # a plan's roll changes: journalled as they are


@dataclass
class RolloutReport:
    servers: dict[str, ServerProgress]
    source: str | None = None  # the server whose credential the others received
    generated: bool = False  # a new password was generated in this run
    cancelled: bool = False
    blocked: list[str] = field(default_factory=list)  # later steps that must wait, and why
    callback_error: str | None = None

    @property
    def complete(self) -> bool:
        return all(p.phase == Phase.VERIFIED for p in self.servers.values())

    def in_phase(self, phase: Phase) -> list[str]:
        return [n for n, p in self.servers.items() if p.phase == phase]


def generate_id(server: str) -> str:
    return f"rollout.generate:{server}"


def copy_id(server: str) -> str:
    return f"rollout.copy:{server}"


def _cred(c: AsaCredential | None) -> dict[str, str | None] | None:
    """A credential as the journal and the plan record it."""
    if c is None:
        return None
    return {"account": c.account, "when": c.when_added.isoformat() if c.when_added else None}


def _same_cred(a: Mapping[str, str | None] | None, b: Mapping[str, str | None] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return normalize_account(a["account"] or "") == normalize_account(b["account"] or "") and \
        (a.get("when") or None) == (b.get("when") or None)


class Rollout:
    """One rollout run (or the resume of one): `run()` returns the report."""

    def __init__(self, exchange: ExchangePort, journal: Journal, request: RolloutRequest, *,
                 progress: Callable[[RolloutEvent], None] | None = None, cancel: threading.Event | None = None,
                 pwd_last_set: Callable[[], datetime | None] | None = None) -> None:
        if request.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.exchange = exchange
        self.journal = journal
        self.request = request
        self.cancel = cancel or threading.Event()
        self._progress = progress
        self._pwd_last_set = pwd_last_set
        self._lock = threading.Lock()
        self._callback_lock = threading.Lock()
        servers = [s if isinstance(s, ExchangeServer) else ExchangeServer(name=s, fqdn="") for s in request.servers]
        self._health = {s.name: s for s in servers}
        self._planned = {c.id: c for c in request.planned}
        # server name -> the credential it held before this journal's first roll on it (None: none); absent:
        # not known yet (read just before the roll)
        self._before: dict[str, dict[str, str | None] | None] = {
            s.name: _cred(s.asa_latest) for s in servers if s.asa_state_known}
        self.report = RolloutReport(servers={s.name: ServerProgress(s.name, s.fqdn or s.name) for s in servers})

    # --- progress -----------------------------------------------------------------------------------
    def _set(self, name: str, phase: Phase, message: str, *, action: str | None = None, fix: str = "") -> None:
        with self._lock:
            p = self.report.servers[name]
            p.phase = phase
            if action is not None:
                p.action = action
            if phase in (Phase.FAILED, Phase.SKIPPED):
                p.reason, p.fix = message, fix
            finished = sum(1 for x in self.report.servers.values()
                           if x.phase in (Phase.VERIFIED, Phase.FAILED, Phase.SKIPPED))
            event = RolloutEvent(name, phase, p.action, message, fix, finished, len(self.report.servers))
        if self._progress is None:
            return
        with self._callback_lock:
            try:
                self._progress(event)
            except Exception as exc:  # a display problem must not leave servers half-rolled
                if self.report.callback_error is None:
                    self.report.callback_error = f"{type(exc).__name__}: {exc}"

    # --- journal ------------------------------------------------------------------------------------
    def _change(self, name: str, action: str, source: str | None) -> Change:
        """The journal's record of one roll: the plan's own change when a plan drives the run."""
        cid = generate_id(name) if action == "generate" else copy_id(name)
        if cid in self._planned:
            return copy.deepcopy(self._planned[cid])
        address = self.report.servers[name].address
        if action == "generate":
            summary = f"Generate a new password for {self.request.account} and give it to {name}"
            script = roll_script(address, GenerateNewPasswordFor=self.request.account)
        else:
            summary = f"Copy the {self.request.account} credential from {source} to {name}"
            script = roll_script(address, CopyFrom=source or "")
        before = self._before.get(name)
        return Change(
            id=cid, system=System.EXCHANGE, action=f"roll-{action}", target=name, summary=summary,
            attribute="AlternateServiceAccountCredential", old=before, new=self.request.account,
            params={"account": self.request.account, "source": source, "address": address},
            commands=[command("Set-Location", variable("exscripts")), script],
            undo_commands=[] if before else [command("Set-ClientAccessService", Identity=address,
                                                     RemoveAlternateServiceAccountCredentials=SWITCH)],
            proven_by=["rollout.coverage", "rollout.current"], step="rollout",
            depends_on=[generate_id(source)] if action == "copy" and source and self.request.source is None else [],
            warning=None if not before else (
                f"{name} already held a credential: undo leaves the new one in place (the old password cannot "
                "be restored, and the server keeps it as its previous credential)."),
        )

    def _undo(self, name: str) -> dict[str, object]:
        """What undo needs: remove the credential only where the server held none before."""
        return {"server": self.report.servers[name].address, "remove": self._before.get(name) is None}

    def _learn_before(self, name: str) -> bool:
        """Make sure what `name` held before is known (read it if nothing says); False if it cannot be read."""
        if name in self._before:
            return True
        try:
            state = self.exchange.read_server(self.report.servers[name].address)
        except WizardError as exc:
            self._set(name, Phase.FAILED, exc.problem, fix=exc.fix)
            return False
        self._before[name] = _cred(state.server.asa_latest)
        return True

    def _journaled_roll(self, name: str, action: str, source: str | None) -> RollResult:
        change = self._change(name, action, source)
        self.journal.write("intent", change)
        address = self.report.servers[name].address
        try:
            if action == "generate":
                result = self.exchange.roll_generate(address, self.request.account)
            else:
                result = self.exchange.roll_copy(address, self.report.servers[source or ""].address
                                                 if source in self.report.servers else source or "")
        except WizardError as exc:
            self.journal.write("failed", change, message=str(exc))
            raise
        if result.outcome == RollOutcome.FAILED:
            self.journal.write("failed", change, message=f"{result.message} — {result.fix}")
        else:
            change.new = _cred(result.latest)
            self.journal.write("done", change, undo=self._undo(name), message=result.message)
        return result

    # --- the run ------------------------------------------------------------------------------------
    def run(self) -> RolloutReport:
        events = self.journal.events()
        history = {s.change.id: s for s in summarize(events)}
        self._remember_before(events)
        for name in self.report.servers:
            self._set(name, Phase.PENDING, "waiting")
        bound: datetime | None = None
        source = self.request.source
        if source is None:
            source, bound = self._generate_step(history)
            if source is None:
                return self._finish()
        else:
            source_name = self._name_of(source)
            bound = self._copy_source_bound(source_name)
            if bound is None:
                return self._finish()
            source = source_name
        self.report.source = source
        self._copy_step(source, history, bound)
        return self._finish()

    def _remember_before(self, events: Iterable[JournalEvent]) -> None:
        """What each server held before the first roll this journal recorded on it (an earlier run's)."""
        seen: set[str] = set()
        for e in events:
            c = e.change
            if e.event != "intent" or not c or c.get("action") not in ("roll-generate", "roll-copy"):
                continue
            name = self._name_of(c.get("target") or "")
            if name in self.report.servers and name not in seen:
                seen.add(name)
                self._before[name] = c.get("old")

    def _name_of(self, server: str) -> str:
        for name, p in self.report.servers.items():
            if server.lower() in (name.lower(), p.address.lower()):
                return name
        return server

    def _bound(self, at_least: datetime | None) -> datetime | None:
        ad = self._pwd_last_set() if self._pwd_last_set else None
        values = [v for v in (at_least, ad) if v is not None]
        return max(values) if values else None

    def _holds(self, cred: AsaCredential | None, bound: datetime | None) -> bool:
        if cred is None or normalize_account(cred.account) != normalize_account(self.request.account):
            return False
        if bound is None:
            return True
        return cred.when_added is not None and cred.when_added >= bound - CLOCK_SLACK

    def _copy_source_bound(self, source: str) -> datetime | None:
        """Copy-only: the source must hold the account's current credential; it sets the bar for the others."""
        try:
            state = self.exchange.read_server(self.report.servers[source].address
                                              if source in self.report.servers else source)
        except WizardError as exc:
            self._block_all(f"The source server {source} cannot be read: {exc.problem}", exc.fix)
            return None
        latest = state.server.asa_latest
        bound = self._bound(None)
        if not self._holds(latest, bound):
            self._block_all(f"The source server {source} does not hold the current {self.request.account} "
                            "credential, so there is nothing safe to copy.",
                            "Choose a server that holds it, or roll a new password (no source).")
            return None
        if source in self.report.servers:
            self.report.servers[source].latest = latest
            self._set(source, Phase.VERIFIED, f"{source} already holds the credential (source of the copies)",
                      action="copy")
        return latest.when_added if latest and latest.when_added else bound

    def _candidates(self) -> list[str]:
        """Servers in the order they may take the generate: healthy and reachable ones first; only the chosen
        one when the request names it (a plan's generate belongs to that server)."""
        if self.request.generate_on:
            return [self._name_of(self.request.generate_on)]

        def healthy(name: str) -> bool:
            s = self._health[name]
            return s.reachable is not False and s.service_host_running is not False
        names = list(self.report.servers)
        return [n for n in names if healthy(n)] + [n for n in names if not healthy(n)]

    def _generate_step(self, history: Mapping[str, ChangeStatus]) -> tuple[str | None, datetime | None]:
        """Find or make the server holding the new credential. Never generates twice."""
        for name in self.report.servers:
            st = history.get(generate_id(name))
            if st is None:
                continue
            if st.state == "done":
                new = st.change.new or {}
                when = datetime.fromisoformat(new["when"]) if new.get("when") else None
                self._set(name, Phase.DONE, f"the new password was generated on {name} in an earlier run",
                          action="generate")
                return name, self._bound(when)
            if st.state == "interrupted":
                decided = self._decide_interrupted_generate(name, st.change)
                if decided is not None:
                    return decided
                if self.report.servers[name].phase == Phase.FAILED:
                    self._block_all_except(name, f"The outcome of the generate on {name} is not safe to repeat.",
                                           "Read the reason on that server, then resume.")
                    return None, None
        for name in self._candidates():
            if self.cancel.is_set():
                self.report.cancelled = True
                return None, None
            outcome = self._try_generate(name)
            if outcome == "done":
                self.report.generated = True
                latest = self.report.servers[name].latest
                return name, self._bound(latest.when_added if latest else None)
            if outcome == "stop":
                self._block_all_except(name, f"Blocked: the new password could not be generated on {name}.",
                                       "Fix the reason shown for that server, then resume the rollout.")
                return None, None
        if self.request.generate_on:
            chosen = self._name_of(self.request.generate_on)
            self._block_all_except(chosen, f"Blocked: the new password could not be generated on {chosen}.",
                                   "Fix the reason shown for that server, then resume the rollout.")
        else:
            self._block_all_except(None, "No server could take the generate.",
                                   "Make one server reachable, then resume.")
        return None, None

    def _decide_interrupted_generate(self, name: str, change: Change) -> tuple[str, datetime | None] | None:
        """The previous run stopped during a generate: re-read the server before deciding anything."""
        p = self.report.servers[name]
        try:
            state = self.exchange.read_server(p.address)
        except WizardError as exc:
            self._set(name, Phase.FAILED, f"The earlier generate on {name} may or may not have completed and the "
                      f"server cannot be read now: {exc.problem}", action="generate", fix=exc.fix)
            return None
        latest = state.server.asa_latest
        pushed = latest is not None and self._holds(latest, None) and not _same_cred(_cred(latest), change.old)
        if not pushed:
            self.journal.write("failed", change, message="re-read after an interruption: the server did not "
                                                         "receive a new credential, so nothing changed")
            return None  # nothing was pushed, so AD was not changed either: generating again is safe
        bound = self._bound(latest.when_added)
        if not self._holds(latest, bound):
            self.journal.write("failed", change, message="the server holds a new credential but Active Directory "
                                                         "has a newer password")
            self._set(name, Phase.FAILED, f"{name} received a credential that Active Directory does not have (the "
                      "earlier run stopped between the two steps of the script).", action="generate",
                      fix="Roll a new password: start a new rollout (not a resume).")
            return None
        change.new = _cred(latest)
        self.journal.write("done", change, undo=self._undo(name),
                           message="confirmed by re-reading the server after an interruption")
        p.latest = latest
        self._set(name, Phase.DONE, f"the earlier generate on {name} had completed (confirmed by re-reading)",
                  action="generate")
        return name, bound

    def _on_server(self, name: str, call: Callable[[], T]) -> tuple[T, str]:
        """Run one call for the generate on `name`. A failure marks the server failed and gives the verdict:
        'next' when the script never ran there (another server may take the generate), else 'stop'."""
        try:
            return call(), ""
        except _DID_NOT_RUN as exc:
            self._set(name, Phase.FAILED, exc.problem, fix=exc.fix)
            return None, "next"  # type: ignore[return-value]
        except WizardError as exc:
            self._set(name, Phase.FAILED, exc.problem, fix=exc.fix)
            return None, "stop"  # type: ignore[return-value]

    def _try_generate(self, name: str) -> str:
        """'done', 'next' (the script never ran there: try another server) or 'stop'."""
        p = self.report.servers[name]
        self._set(name, Phase.RUNNING, f"checking {name} before generating", action="generate")
        before, verdict = self._on_server(name, lambda: self.exchange.read_server(p.address))
        if verdict:
            return verdict
        if before.server.service_host_running is False:
            self._set(name, Phase.FAILED, f"MSExchangeServiceHost is not running on {name}; it manages the ASA.",
                      fix=f"Start-Service MSExchangeServiceHost on {name}, then resume.")
            return "next"
        self._before.setdefault(name, _cred(before.server.asa_latest))
        self._set(name, Phase.RUNNING, f"generating a new password on {name}", action="generate")
        result, verdict = self._on_server(name, lambda: self._journaled_roll(name, "generate", None))
        if verdict:
            return verdict
        p.latest, p.log_excerpt = result.latest, result.log_excerpt
        if result.outcome == RollOutcome.FAILED:
            self._set(name, Phase.FAILED, result.message, fix=result.fix)
            return "stop"
        self._set(name, Phase.DONE, result.message)
        return "done"

    def _copy_step(self, source: str, history: Mapping[str, ChangeStatus], bound: datetime | None) -> None:
        if source in self.report.servers and self.report.servers[source].phase != Phase.VERIFIED:
            self._verify(source, bound)  # before any copy: a credential that fails it is not handed on
            if self.report.servers[source].phase == Phase.FAILED:
                self._block_all_except(source, f"Blocked: {source}, the source of the copies, does not hold the "
                                       f"current {self.request.account} credential.",
                                       "Fix the reason shown for that server, then resume the rollout.")
                return
        todo: list[str] = []
        reread: list[str] = []
        for name, p in self.report.servers.items():
            if p.phase in (Phase.FAILED, Phase.VERIFIED):
                continue
            st = history.get(copy_id(name))
            if st is not None and st.state == "done":
                p.action = "copy"
                reread.append(name)
            else:
                todo.append(name)
        with ThreadPoolExecutor(max_workers=self.request.concurrency, thread_name_prefix="rollout") as pool:
            list(pool.map(lambda n: self._copy_one(n, source, bound), todo))
            list(pool.map(lambda n: self._verify(n, bound), reread))

    def _copy_one(self, name: str, source: str, bound: datetime | None) -> None:
        if self.cancel.is_set():
            self.report.cancelled = True
            return
        p = self.report.servers[name]
        self._set(name, Phase.RUNNING, f"copying the credential from {source} to {name}", action="copy")
        if not self._learn_before(name):
            return
        try:
            result = self._journaled_roll(name, "copy", source)
        except WizardError as exc:
            self._set(name, Phase.FAILED, exc.problem, fix=exc.fix)
            return
        p.latest, p.log_excerpt = result.latest, result.log_excerpt
        if result.outcome == RollOutcome.FAILED:
            self._set(name, Phase.FAILED, result.message, fix=result.fix)
            return
        self._set(name, Phase.DONE, result.message)
        self._check(name, result.latest, bound)

    def _verify(self, name: str, bound: datetime | None) -> None:
        """Re-read a server that finished earlier (or the generate's server) and check what it holds."""
        p = self.report.servers[name]
        if p.latest is not None and name == self.report.source and self.report.generated:
            self._check(name, p.latest, bound)
            return
        try:
            state = self.exchange.read_server(p.address)
        except WizardError as exc:
            self._set(name, Phase.FAILED, f"cannot verify {name}: {exc.problem}", fix=exc.fix)
            return
        p.latest = state.server.asa_latest
        self._check(name, p.latest, bound)

    def _check(self, name: str, latest: AsaCredential | None, bound: datetime | None) -> None:
        if self._holds(latest, bound):
            self._set(name, Phase.VERIFIED, f"{name} holds the current {self.request.account} credential")
            return
        have = f"{latest.account} added {latest.when_added:%Y-%m-%d %H:%M} UTC" if latest and latest.when_added \
            else (latest.account if latest else "nothing")
        problem = f"verification failed: {name} holds {have}, not the current {self.request.account} credential"
        if self.report.servers[name].action == "copy":  # journalled as failed: a resume copies it again
            self.journal.write("failed", self._change(name, "copy", self.report.source), message=problem)
        self._set(name, Phase.FAILED, problem,
                  fix=f"Copy it again: {roll_script(name, CopyFrom=self.report.source or '')}")

    def _block_all(self, reason: str, fix: str) -> None:
        self._block_all_except(None, reason, fix)

    def _block_all_except(self, keep: str | None, reason: str, fix: str) -> None:
        for name, p in self.report.servers.items():
            if name != keep and p.phase in (Phase.PENDING, Phase.RUNNING):
                self._set(name, Phase.SKIPPED, reason, fix=fix)

    def _finish(self) -> RolloutReport:
        missing = [n for n, p in self.report.servers.items() if p.phase != Phase.VERIFIED]
        if missing:
            who = ", ".join(missing)
            self.report.blocked = [
                f"Register the HTTP SPNs on the ASA: wait until every server behind the namespace holds the "
                f"credential (not yet: {who}); a ticket no server can decrypt means an outage.",
                f"Switch clients to Negotiate: wait for the same servers ({who}).",
                f"Kerberos constrained delegation for the SEG: wait for the same servers ({who}).",
            ]
        if self.cancel.is_set():
            self.report.cancelled = True
        return self.report


def run_rollout(exchange: ExchangePort, journal: Journal, request: RolloutRequest, *,
                progress: Callable[[RolloutEvent], None] | None = None, cancel: threading.Event | None = None,
                pwd_last_set: Callable[[], datetime | None] | None = None) -> RolloutReport:
    """Run (or resume, with the same journal) a rollout."""
    return Rollout(exchange, journal, request, progress=progress, cancel=cancel, pwd_last_set=pwd_last_set).run()


def spn_registration_allowed(env_or_states: Environment | RolloutReport | Mapping[str, ServerProgress],
                             namespace: Namespace | str) -> tuple[bool, str]:
    """May HTTP/<namespace> be registered on the ASA now? Only when every server behind it holds the ASA's
    current credential (else clients get tickets a server cannot decrypt)."""
    host = namespace.host if isinstance(namespace, Namespace) else namespace.lower().removeprefix("http/")
    if isinstance(env_or_states, Environment):
        return _allowed_from_environment(env_or_states, host)
    states = env_or_states.servers if isinstance(env_or_states, RolloutReport) else env_or_states
    missing = [n for n, p in states.items() if p.phase != Phase.VERIFIED]
    if not states:
        return False, f"No server is known behind {host}."
    if missing:
        return False, f"Not yet: {', '.join(missing)} do not hold the verified credential for {host}."
    return True, f"Every server behind {host} holds the verified credential."


def _allowed_from_environment(env: Environment, host: str) -> tuple[bool, str]:
    ns = next((n for n in env.namespaces if n.host.lower() == host.lower()), None)
    names: Iterable[str] = ns.servers if ns and ns.servers else [s.name for s in env.servers]
    asa = env.asa
    if asa is None:
        return False, "No ASA is chosen yet."
    problems = []
    for name in names:
        s = env.server(name)
        if s is None or not s.asa_state_known:
            problems.append(f"{name} (state unknown)")
            continue
        latest = s.asa_latest
        if latest is None or normalize_account(latest.account).split("\\")[-1] != asa.sam.lower():
            problems.append(f"{name} (does not hold {asa.sam})")
        elif asa.pwd_last_set and latest.when_added and latest.when_added < asa.pwd_last_set - CLOCK_SLACK:
            problems.append(f"{name} (holds an older password)")
    if problems:
        return False, f"Not yet for {host}: {', '.join(problems)}."
    return True, f"Every server behind {host} holds the current {asa.sam} credential."
