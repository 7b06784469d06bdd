"""The rollout engine: the ASA credential onto every Exchange server, in the order that never breaks Kerberos.

The native roll (the default, see docs/exchange.md "The roll"): the wizard generates ONE new password (a
`Secret`, in memory only), pushes it to EVERY target server through each server's own endpoint
(`Set-ClientAccessService -CleanUpInvalidAlternateServiceAccountCredentials -AlternateServiceAccountCredential`,
the credential encrypted with the session key), and only when every push worked resets the ASA's password in AD
once, over LDAPS. This is the order of Microsoft's script with several servers and -GenerateNewPasswordFor:
until AD changes, every server still holds the old, working password next to the new, not-yet-valid one, so
no server ever refuses a ticket. On partial failure AD is untouched: the report names the servers that hold
the not-yet-valid credential (harmless) and how to finish (fix the failed servers, roll again: the unused
credential is cleaned up by the next push).

Before any change, a pre-flight on every target server: the endpoint answers, the session is allowed
(RemotePowerShellEnabled), RBAC shows the ASA parameters (Organization Configuration). One failure: nothing
is pushed, AD is untouched.

A server joining servers that already hold the current password (`RolloutRequest.source`) gets a -CopyFrom:
every credential of the source, read through a session on the source, REPLACES the target's list. AD is not
touched. The source must be proven to hold the current password first.

After the AD change each server is verified by key version when a Kerberos probe and the namespaces are given
(core.current: a ticket of the ASA's current msDS-KeyVersionNumber accepted), else by reading its credential
list back (WhenAdded, a hint).

Journal: `intent` before and `done`/`failed` after every push, copy and the AD change. The password is never
written anywhere, so a run interrupted before the AD change is finished by rolling again (a new password, the
unused one cleaned up); after the AD change, servers that missed it are finished by -CopyFrom from a server that
holds it. Undo of a push removes the credential only where the server held none before.

Per-server states: pending -> running -> done (holds the new credential, AD not yet changed) -> verified, or
failed (reason and fix), or skipped. Cancellation: running pushes finish, nothing new starts, AD is not changed.

Progress callback contract: `progress(event)` is called from worker threads, never two calls at once (the
engine serialises them), in the order the states changed (after the AD change each server gets a DONE event
saying so). It must return quickly and must not call back into the engine. An exception
raised by the callback is kept in `RolloutReport.callback_error` and never stops the rollout.
"""

from __future__ import annotations

import copy
import enum
import hmac
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from .changes import Change, System
from .current import credential_verdict, same_account
from .errors import WizardError
from .journal import ChangeStatus, Journal, JournalEvent, summarize
from .commands import SWITCH, command, roll_script, variable
from .model import Account, AsaCredential, Environment, ExchangeServer, Namespace
from .passwords import generate_password
from .ports import DirectoryPort, ExchangePort, KerberosProbe, RollOutcome, RollResult, ServerState, read_parts
from .secrets import Secret

DEFAULT_CONCURRENCY = 4
AD_ID = "rollout.ad-password"


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
    action: str | None = None  # "generate" | "push" | "copy"
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
    account: str  # DOMAIN\NAME$
    # every target server, in order of preference; an ExchangeServer whose ASA state was read
    # (asa_state_known) also says what it held before, which decides what undo does on it
    servers: list[ExchangeServer | str]
    source: str | None = None  # -CopyFrom this server (it holds the current password) instead of a new password
    concurrency: int = DEFAULT_CONCURRENCY
    generate_on: str | None = None  # the server whose change is the plan's roll-generate (journal ids only)
    planned: list[Change] = field(default_factory=list)  # a plan's roll changes: journalled as they are
    namespaces: list[str] = field(default_factory=list)  # host names to prove the key version on (with a probe)
    # "native" (default): the wizard pushes and resets AD. "script": Microsoft's RollAlternateServiceAccountPassword.ps1
    # run on the first server over WinRM, only after the pre-flight proved the second hop (CredSSP/delegation).
    method: str = "native"


@dataclass
class RolloutReport:
    servers: dict[str, ServerProgress]
    source: str | None = None  # the server whose credentials were copied (copy mode)
    generated: bool = False  # a new password was generated in this run
    ad_changed: bool = False  # the ASA's password was set (changed or reset) in AD in this run
    # how it was set, in words: "changed with its old password" (a user account whose old password the servers
    # hold: no Reset Password right needed) or "reset"
    ad_how: str = ""
    notes: list[str] = field(default_factory=list)  # what did not go as first tried, without harm (say it)
    key_version: int | None = None  # msDS-KeyVersionNumber after the AD change
    cancelled: bool = False
    blocked: list[str] = field(default_factory=list)  # later steps that must wait, and why
    pending_credential: list[str] = field(default_factory=list)  # servers holding a not-yet-valid credential
    callback_error: str | None = None

    @property
    def complete(self) -> bool:
        return all(p.phase == Phase.VERIFIED for p in self.servers.values())

    def in_phase(self, phase: Phase) -> list[str]:
        return [n for n, p in self.servers.items() if p.phase == phase]


def generate_id(server: str) -> str:
    return f"rollout.generate:{server}"


def push_id(server: str) -> str:
    return f"rollout.push:{server}"


def copy_id(server: str) -> str:
    return f"rollout.copy:{server}"


def _cred(c: AsaCredential | None) -> dict[str, str | None] | None:
    """A credential as the journal and the plan record it."""
    if c is None:
        return None
    return {"account": c.account, "when": c.when_added.isoformat() if c.when_added else None}


class Rollout:
    """One rollout run (or the resume of one): `run()` returns the report."""

    def __init__(self, exchange: ExchangePort, journal: Journal, request: RolloutRequest, *,
                 progress: Callable[[RolloutEvent], None] | None = None, cancel: threading.Event | None = None,
                 pwd_last_set: Callable[[], datetime | None] | None = None,
                 directory: DirectoryPort | None = None, probe: KerberosProbe | None = None) -> None:
        if request.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.exchange = exchange
        self.journal = journal
        self.request = request
        self.directory = directory
        self.probe = probe
        self.cancel = cancel or threading.Event()
        self._progress = progress
        self._pwd_last_set = pwd_last_set
        self._lock = threading.Lock()
        self._callback_lock = threading.Lock()
        servers = [s if isinstance(s, ExchangeServer) else ExchangeServer(name=s, fqdn="") for s in request.servers]
        self._health = {s.name: s for s in servers}
        self._planned = {c.id: c for c in request.planned}
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
        self._emit(event)

    def _emit(self, event: RolloutEvent) -> None:
        if self._progress is None:
            return
        with self._callback_lock:
            try:
                self._progress(event)
            except Exception as exc:  # a display problem must not leave servers half-rolled
                if self.report.callback_error is None:
                    self.report.callback_error = f"{type(exc).__name__}: {exc}"

    # --- journal ------------------------------------------------------------------------------------
    def _change(self, name: str, action: str) -> Change:
        """The journal's record of one push or copy: the plan's own change when a plan drives the run."""
        if action == "copy":
            cid = copy_id(name)
        elif self.request.generate_on and self._name_of(self.request.generate_on) == name:
            cid = generate_id(name)
        elif not self._planned and not self.request.generate_on and name == next(iter(self.report.servers)):
            cid = generate_id(name)  # the wizard's own run: the first server's push carries the generate's id
        else:
            cid = push_id(name) if push_id(name) in self._planned or generate_id(name) not in self._planned \
                else generate_id(name)
        if cid in self._planned:
            return copy.deepcopy(self._planned[cid])
        address = self.report.servers[name].address
        before = self._before.get(name)
        if action == "copy":
            source = self.report.source or ""
            summary = f"Copy every credential of {source} to {name} (replaces {name}'s own)"
            # $c: every credential of the source, read in a session on the source (core/plan/rollout.py's copy commands)
            commands = [command("Set-ClientAccessService", Identity=address, RemoveAlternateServiceAccountCredentials=SWITCH,
                                AlternateServiceAccountCredential=variable("c"))]
        else:
            summary = f"Push the new {self.request.account} credential to {name}"
            commands = [command("Set-ClientAccessService", Identity=address,
                                CleanUpInvalidAlternateServiceAccountCredentials=SWITCH,
                                AlternateServiceAccountCredential=variable("cred"))]
        return Change(
            id=cid, system=System.EXCHANGE, action=f"roll-{'copy' if action == 'copy' else 'push'}", target=name,
            summary=summary, attribute="AlternateServiceAccountCredential", old=before, new=self.request.account,
            params={"account": self.request.account, "source": self.report.source, "server": address},
            commands=commands,
            undo_commands=[] if before else [command("Set-ClientAccessService", Identity=address,
                                                     RemoveAlternateServiceAccountCredentials=SWITCH)],
            proven_by=["rollout.coverage", "rollout.current"], step="rollout",
            warning=None if not before else (
                f"{name} already held a credential: undo leaves the new one in place (the old password cannot "
                "be restored, and the server keeps it as its previous credential)."))

    def _undo(self, name: str) -> dict[str, object]:
        return {"server": self.report.servers[name].address, "remove": self._before.get(name) is None}

    def _read_asa(self, address: str) -> ServerState:
        """The server's credential list, through its own endpoint."""
        return read_parts(self.exchange, address, {"asa"})

    def _learn_before(self, name: str) -> bool:
        if name in self._before:
            return True
        try:
            state = self._read_asa(self.report.servers[name].address)
        except WizardError as exc:
            self._set(name, Phase.FAILED, exc.problem, fix=exc.fix)
            return False
        self._before[name] = _cred(state.server.asa_latest)
        return True

    def _journaled(self, name: str, action: str, call: Callable[[], RollResult]) -> RollResult:
        change = self._change(name, action)
        self.journal.write("intent", change)
        try:
            result = call()
        except WizardError as exc:
            self.journal.write("failed", change, message=str(exc))
            raise
        if result.outcome == RollOutcome.FAILED:
            self.journal.write("failed", change, message=f"{result.message} — {result.fix}")
        else:
            change.new = _cred(result.latest)
            self.journal.write("done", change, undo=self._undo(name), message=result.message)
        return result

    def _name_of(self, server: str) -> str:
        for name, p in self.report.servers.items():
            if server.lower() in (name.lower(), p.address.lower()):
                return name
        return server

    # --- the run ------------------------------------------------------------------------------------
    def run(self) -> RolloutReport:
        events = self.journal.events()
        history = {s.change.id: s for s in summarize(events)}
        self._remember_before(events)
        for name in self.report.servers:
            self._set(name, Phase.PENDING, "waiting")
        if self.request.source is not None:
            self._copy_mode(self._name_of(self.request.source), history)
        elif AD_ID in history and history[AD_ID].state == "done":
            self._finish_after_ad(history)
        elif self.request.method == "script":
            self._script_roll()
        else:
            self._native_roll()
        return self._finish()

    def _remember_before(self, events: Iterable[JournalEvent]) -> None:
        seen: set[str] = set()
        for e in events:
            c = e.change
            if e.event != "intent" or not c or not str(c.get("action") or "").startswith("roll-") \
                    or c.get("id") == AD_ID:
                continue
            name = self._name_of(c.get("target") or "")
            if name in self.report.servers and name not in seen:
                seen.add(name)
                self._before[name] = c.get("old")

    def _parallel(self, fn: Callable[[str], Any], names: list[str]) -> None:
        with ThreadPoolExecutor(max_workers=self.request.concurrency, thread_name_prefix="rollout") as pool:
            list(pool.map(fn, names))

    # --- native roll --------------------------------------------------------------------------------
    def _preflight(self) -> bool:
        names = list(self.report.servers)
        problems: dict[str, list[tuple[str, str]]] = {}

        def one(name: str) -> None:
            self._set(name, Phase.RUNNING, f"pre-flight on {name}: endpoint, session, RBAC", action="push")
            try:
                pf = self.exchange.preflight(self.report.servers[name].address)
                found = list(pf.problems)
            except WizardError as exc:
                found = [(exc.problem, exc.fix)]
            if found:
                problems[name] = found
                self._set(name, Phase.FAILED, "; ".join(p for p, _ in found), fix=found[0][1])
        self._parallel(one, names)
        if self.directory is None:
            for name in names:
                if name not in problems:
                    self._set(name, Phase.SKIPPED, "Nothing was changed: the native roll resets the ASA password in "
                              "AD, and no directory connection was given.", fix="Connect to a domain controller "
                              "(LDAPS), then roll again.")
            return False
        if problems:
            for name in names:
                if name not in problems:
                    self._set(name, Phase.SKIPPED, f"Nothing was changed: the pre-flight failed on "
                              f"{', '.join(problems)}.", fix="Fix the reason shown for those servers, then roll again.")
            return False
        if self.cancel.is_set():
            self.report.cancelled = True
            return False
        return True

    def _native_roll(self) -> None:
        if not self._preflight():
            return
        asa = self._asa()
        if asa is None:
            for name in self.report.servers:
                self._set(name, Phase.SKIPPED, f"Nothing was changed: {self.request.account} was not found in AD.",
                          fix="Create the ASA first (wizard step asa), then roll.")
            return
        password = generate_password()
        self.report.generated = True
        failed: list[str] = []

        def push(name: str) -> None:
            if self.cancel.is_set():
                self.report.cancelled = True
                self._set(name, Phase.SKIPPED, "cancelled before its push", fix="Roll again when ready.")
                return
            p = self.report.servers[name]
            if not self._learn_before(name):
                failed.append(name)
                return
            self._set(name, Phase.RUNNING, f"pushing the new credential to {name}", action="push")
            try:
                result = self._journaled(name, "push", lambda: self.exchange.push_credential(
                    p.address, self.request.account, password))
            except WizardError as exc:
                result = RollResult(name, RollOutcome.FAILED, exc.problem, exc.fix)
            p.latest = result.latest
            if result.outcome == RollOutcome.FAILED:
                failed.append(name)
                self._set(name, Phase.FAILED, result.message, fix=result.fix)
            elif result.latest is None or not same_account(result.latest.account, self.request.account):
                failed.append(name)
                self._set(name, Phase.FAILED, f"{name} did not show the new credential after the push",
                          fix="Read the server's credentials (Get-ClientAccessService "
                              "-IncludeAlternateServiceAccountCredentialStatus), then roll again.")
            else:
                self._set(name, Phase.DONE, f"{name} holds the new credential (not valid until AD changes) next to "
                          "the working one")

        self._parallel(push, list(self.report.servers))
        holding = self.report.in_phase(Phase.DONE)
        if failed or self.cancel.is_set():
            if self.cancel.is_set():
                self.report.cancelled = True
            self.report.pending_credential = holding
            why = (f"the push failed on {', '.join(failed)}" if failed else "the roll was cancelled")
            for name in holding:
                self._set(name, Phase.SKIPPED, f"{name} holds the new, not-yet-valid credential next to the working "
                          f"one; Active Directory was not changed because {why}.",
                          fix="Fix the failed servers, then roll again (the unused credential is cleaned up).")
            self.report.blocked.append(
                f"Active Directory was NOT changed because {why}: every server still uses the current password, no "
                f"ticket is refused. {', '.join(holding) or 'No server'} "
                f"{'holds' if len(holding) == 1 else 'hold'} the new, not-yet-valid credential (harmless). To finish: "
                "fix the failed servers and roll again; a new password is pushed to every server and the unused "
                "credential is cleaned up.")
            return
        change = self._ad_change(asa, self.report.servers[holding[0]].address)
        old = None if asa.is_computer else self._old_password(holding[0], password)
        self.journal.write("intent", change)
        try:
            kvno, how = self._set_in_ad(asa, old, password)
        except WizardError as exc:
            self.journal.write("failed", change, message=" ".join([str(exc), *self.report.notes]))
            self.report.pending_credential = holding
            verb = "reset" if asa.is_computer else "changed or reset"
            for name in holding:
                self._set(name, Phase.FAILED, " ".join([
                    f"The ASA's password could not be {verb} in AD: {exc.problem}", *self.report.notes,
                    "Every server keeps the current password (no outage) and holds the new, not-yet-valid "
                    "credential."]), fix=exc.fix)
            return
        self.report.ad_changed, self.report.ad_how = True, how
        self.report.key_version = kvno
        self.journal.write("done", change, undo={"dn": asa.dn, "keep": True},
                           message=" ".join([f"password {how}; msDS-KeyVersionNumber {kvno}.", *self.report.notes]))
        for name in holding:  # every server row says it: the new credential is now the valid one
            self._set(name, Phase.DONE, f"the ASA's password was {how} in AD (key version {kvno}); verifying {name}")
        self._parallel(lambda n: self._verify(n, asa), holding)

    def _old_password(self, server: str, new: Secret) -> Secret | None:
        """For a user-account ASA, as Microsoft's script does it: the password the servers still use, read from
        the first server that took the push. After the push it holds exactly two credentials of the account, the
        new one first; the second is the current password. Anything else: None (the password is reset), and a
        note says why."""
        try:
            held = self.exchange.credential_passwords(self.report.servers[server].address, self.request.account)
        except WizardError as exc:
            self.report.notes.append(f"The current password could not be read from {server} ({exc.problem}); the "
                                     "password is reset instead of changed.")
            return None
        if len(held) == 2 and hmac.compare_digest(held[0].reveal().encode(), new.reveal().encode()):
            return held[1]
        if len(held) == 1:
            self.report.notes.append(f"{server} knows no working credential of {self.request.account} yet, so the "
                                     "password is reset instead of changed with the old one.")
        elif len(held) == 2:
            self.report.notes.append(f"The credentials of {self.request.account} on {server} are in an unexpected "
                                     "order, so the password is reset instead of changed with the old one.")
        else:
            self.report.notes.append(f"{server} holds {len(held)} credentials of {self.request.account} where 2 "
                                     "were expected, so the password is reset instead of changed with the old one.")
        return None

    def _set_in_ad(self, asa: Account, old: Secret | None, new: Secret) -> tuple[int | None, str]:
        """Change with the old password when there is one (it needs no Reset Password right); when the directory
        refuses the change (the minimum password age, usually), or there is no old password, reset."""
        directory = self.directory
        assert directory is not None
        if old is not None:
            try:
                return directory.change_password(asa.dn, old, new), "changed with its old password"
            except WizardError as exc:
                self.report.notes.append(f"The password of {self.request.account} could not be changed with the old "
                                         f"one ({exc.problem}); it is reset instead, which needs the Reset Password "
                                         "right.")
        return directory.reset_password(asa.dn, new), "reset"

    # --- Microsoft's script (an option) --------------------------------------------------------------
    def _script_roll(self) -> None:
        """RollAlternateServiceAccountPassword.ps1 -ToSpecificServers <all> -GenerateNewPasswordFor, on the first
        server, only after the pre-flight proved the second hop: from inside a session on that server, a session
        to every other server's endpoint and a bind to a DC (the script does both with the caller's identity)."""
        if not self._preflight():
            return
        names = list(self.report.servers)
        first = names[0]
        run_on = self.report.servers[first].address
        problems: list[tuple[str, str]] = []
        for other in names[1:] or names[:1]:
            problems += self.exchange.second_hop(run_on, self.report.servers[other].address)
        if problems:
            for name in names:
                self._set(name, Phase.FAILED if name == first else Phase.SKIPPED,
                          "Microsoft's script cannot run here: " + " ".join(dict.fromkeys(p for p, _ in problems)),
                          fix=problems[0][1])
            return
        for name in names:
            self._set(name, Phase.RUNNING, f"Microsoft's script pushes to {name}", action="push")
        change = Change(id=generate_id(first), system=System.EXCHANGE, action="roll-generate", target=first,
                        summary=f"Microsoft's roll script run on {first} for {', '.join(names)}",
                        attribute="AlternateServiceAccountCredential", old=self._before.get(first),
                        new=self.request.account, params={"account": self.request.account, "server": run_on},
                        commands=[roll_script([self.report.servers[n].address for n in names],
                                              GenerateNewPasswordFor=self.request.account)], step="rollout")
        self.journal.write("intent", change)
        result = self.exchange.roll_with_script(run_on, [self.report.servers[n].address for n in names],
                                                self.request.account)
        self.report.servers[first].log_excerpt = result.log_excerpt
        if result.outcome == RollOutcome.FAILED:
            self.journal.write("failed", change, message=f"{result.message} — {result.fix}")
            for name in names:
                self._set(name, Phase.FAILED, result.message, fix=result.fix)
            return
        self.journal.write("done", change, undo={"server": run_on, "remove": False}, message=result.message)
        self.report.generated = self.report.ad_changed = True
        asa = self._asa()
        self._parallel(lambda n: self._verify(n, asa), names)

    def _asa(self) -> Account | None:
        sam = self.request.account.split("\\")[-1]
        if self.directory is None:
            return None
        try:
            return self.directory.get_account(sam)
        except WizardError:
            return None

    def _ad_change(self, asa: Account, first: str) -> Change:
        from .plan.rollout import ad_password_change

        if AD_ID in self._planned:
            return copy.deepcopy(self._planned[AD_ID])
        return ad_password_change(asa, self.request.account, [], first)

    def _verify(self, name: str, asa: Account | None) -> None:
        """After the AD change: prove the server holds the current password (key version), else read it back."""
        p = self.report.servers[name]
        if asa is not None and self.directory is not None:
            fresh = self.directory.get_account(asa.sam) or asa
        else:
            fresh = asa
        server = ExchangeServer(name=name, fqdn=p.address, asa_latest=p.latest, asa_state_known=p.latest is not None)
        proving = self.probe is not None and self.request.namespaces and fresh is not None
        if proving and p.latest is None:
            # the verdict needs the server's credential list beside the tickets (a source never pushed to here)
            try:
                state = self._read_asa(p.address)
            except WizardError as exc:
                self._set(name, Phase.FAILED, f"cannot verify {name}: {exc.problem}", fix=exc.fix)
                return
            p.latest = state.server.asa_latest
            server.asa_latest, server.asa_previous = p.latest, state.server.asa_previous
            server.asa_state_known = True
        if proving:
            assert self.probe is not None and fresh is not None
            probes = []
            for host in self.request.namespaces:
                try:
                    probes.append(self.probe.probe_server(server, host))
                except WizardError:
                    continue
            verdict = credential_verdict(server, fresh, self.request.account, probes)
        else:
            # without a probe the credential list is all there is: the push's own read-back when there was one
            # (re-reading the same list proves nothing more), else a read of the server
            try:
                if p.latest is None or p.action not in ("push", "generate"):
                    state = self._read_asa(p.address)
                    p.latest = state.server.asa_latest
                    server.asa_previous = state.server.asa_previous
                server.asa_latest, server.asa_state_known = p.latest, True
            except WizardError as exc:
                self._set(name, Phase.FAILED, f"cannot verify {name}: {exc.problem}", fix=exc.fix)
                return
            verdict = credential_verdict(server, fresh, self.request.account) if fresh is not None else None
            if verdict is None:
                self._set(name, Phase.VERIFIED, f"{name} holds the {self.request.account} credential")
                return
        if verdict.current:
            self._set(name, Phase.VERIFIED, f"{name} holds the current {self.request.account} password: {verdict.why}")
        else:
            self._set(name, Phase.FAILED, f"verification failed: {verdict.why}",
                      fix=f"Copy the credentials to {name} from a verified server.")

    # --- after an earlier run changed AD -----------------------------------------------------------
    def _finish_after_ad(self, history: Mapping[str, ChangeStatus]) -> None:
        asa = self._asa()
        holders = [n for n in self.report.servers
                   if (st := history.get(generate_id(n)) or history.get(push_id(n))) and st.state == "done"]
        for n in holders:
            self._verify(n, asa)
        good = [n for n in holders if self.report.servers[n].phase == Phase.VERIFIED]
        rest = [n for n in self.report.servers if n not in holders]
        if not rest:
            return
        if not good:
            for n in rest:
                self._set(n, Phase.SKIPPED, "An earlier run changed the password in AD, and no server can be "
                          "proven to hold it.", fix="Roll a new password (a new rollout, not a resume).")
            return
        self.report.source = good[0]
        self._copy_to(good[0], rest, asa)

    # --- copy mode ----------------------------------------------------------------------------------
    def _copy_mode(self, source: str, history: Mapping[str, ChangeStatus]) -> None:
        self.report.source = source
        asa = self._asa()
        if source in self.report.servers:
            p = self.report.servers[source]
            self._verify(source, asa)
            if p.phase != Phase.VERIFIED:
                self._block_all_except(source, f"Blocked: {source}, the source of the copies, does not hold the "
                                       f"current {self.request.account} password.",
                                       "Choose a server that holds it, or roll a new password (no source).")
                return
        else:
            probe = ServerProgress(source, source)
            self.report.servers[source] = probe
            self._verify(source, asa)
            ok = probe.phase == Phase.VERIFIED
            del self.report.servers[source]
            if not ok:
                self._block_all_except(None, f"The source server {source} does not hold the current "
                                       f"{self.request.account} password, so there is nothing safe to copy.",
                                       "Choose a server that holds it, or roll a new password (no source).")
                return
        todo = [n for n, p in self.report.servers.items() if p.phase == Phase.PENDING]
        self._copy_to(source, todo, asa, history)

    def _copy_to(self, source: str, names: list[str], asa: Account | None,
                 history: Mapping[str, ChangeStatus] | None = None) -> None:
        src_address = self.report.servers[source].address if source in self.report.servers else source

        def one(name: str) -> None:
            if self.cancel.is_set():
                self.report.cancelled = True
                return
            p = self.report.servers[name]
            st = (history or {}).get(copy_id(name))
            if st is not None and st.state == "done":
                p.action = "copy"
                self._verify(name, asa)
                return
            self._set(name, Phase.RUNNING, f"copying the credentials of {source} to {name}", action="copy")
            if not self._learn_before(name):
                return
            try:
                result = self._journaled(name, "copy", lambda: self.exchange.copy_credentials(p.address, src_address))
            except WizardError as exc:
                self._set(name, Phase.FAILED, exc.problem, fix=exc.fix)
                return
            p.latest, p.log_excerpt = result.latest, result.log_excerpt
            if result.outcome == RollOutcome.FAILED:
                self._set(name, Phase.FAILED, result.message, fix=result.fix)
                return
            self._set(name, Phase.DONE, result.message)
            self._verify(name, asa)

        self._parallel(one, names)

    def _block_all_except(self, keep: str | None, reason: str, fix: str) -> None:
        for name, p in self.report.servers.items():
            if name != keep and p.phase in (Phase.PENDING, Phase.RUNNING):
                self._set(name, Phase.SKIPPED, reason, fix=fix)

    def _finish(self) -> RolloutReport:
        missing = [n for n, p in self.report.servers.items() if p.phase != Phase.VERIFIED]
        if missing:
            who = ", ".join(missing)
            self.report.blocked += [
                f"Register the HTTP SPNs on the ASA: wait until every server behind the namespace holds the "
                f"current password (not yet: {who}); a ticket no server can decrypt means an outage.",
                f"Switch clients to Negotiate: wait for the same servers ({who}).",
                f"Kerberos constrained delegation for the SEG: wait for the same servers ({who}).",
            ]
        if self.cancel.is_set():
            self.report.cancelled = True
        return self.report


def run_rollout(exchange: ExchangePort, journal: Journal, request: RolloutRequest, *,
                progress: Callable[[RolloutEvent], None] | None = None, cancel: threading.Event | None = None,
                pwd_last_set: Callable[[], datetime | None] | None = None, directory: DirectoryPort | None = None,
                probe: KerberosProbe | None = None) -> RolloutReport:
    """Run (or resume, with the same journal) a rollout. The native roll needs `directory` (it resets the ASA's
    password once, after every push); `probe` with `request.namespaces` proves each server by key version."""
    return Rollout(exchange, journal, request, progress=progress, cancel=cancel, pwd_last_set=pwd_last_set,
                   directory=directory, probe=probe).run()


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
    qualified = asa.sam  # a bare name compares by sAMAccountName
    for name in names:
        s = env.server(name)
        if s is None or not s.asa_state_known:
            problems.append(f"{name} (state unknown)")
            continue
        verdict = credential_verdict(s, asa, qualified)
        if verdict.holding.value == "missing":
            problems.append(f"{name} (does not hold {asa.sam})")
        elif not verdict.current:
            problems.append(f"{name} (holds an older password)")
    if problems:
        return False, f"Not yet for {host}: {', '.join(problems)}."
    return True, f"Every server behind {host} holds the current {asa.sam} credential."
