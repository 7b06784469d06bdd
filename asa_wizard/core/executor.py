"""Apply a plan through the ports, with the journal: `intent` before each change, `done` (with what undo needs)
or `failed` after it. The object is re-read before every change: a change already in place is recorded and not
made again, an object that moved away from the plan stops that change (StaleObject). The re-read feeds the
change (an Exchange virtual directory is set by the Identity its re-read returned, the value read is the one
undo restores); a Windows-side change is re-read and made in one compare-and-set on the server. A failed change
stops every change that depends on it; the others go on. Cancellation stops between changes. `resume` finishes a run
from its journal; `undo` reverses the done changes newest first.

The credential rollout (roll-generate / roll-push / roll-ad-password, or roll-copy) is run by the rollout engine
(core.rollout), the same one the wizard's rollout step uses: a new password pushed to every server before the
AD password is reset once, bounded concurrency (the plan's), cancellation, per-server verification, journal
records (the plan's own changes, with what undo needs). Its per-server outcome becomes this run's result and
progress.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from .changes import Change
from .errors import SpnConflict, StaleObject, WizardError
from .journal import Journal, JournalEvent, summarize
from .model import AccountKind, AsaCredential, ExchangeServer, IisAuth, Service
from .plan import Plan
from .ports import DirectoryPort, ExchangePort, KerberosProbe, read_parts
from .rollout import Phase, Rollout, RolloutEvent, RolloutRequest

ROLL_ACTIONS = ("roll-generate", "roll-push", "roll-copy", "roll-ad-password")
SERVER_ROLLS = ("roll-generate", "roll-push", "roll-copy")
# Windows-side changes whose re-read and change are one compare-and-set on the server (`Executor._swap`)
SWAPS = ("add-iis-iusrs", "set-iis-auth")


@dataclass
class ProgressEvent:
    """One line of progress for a person: a change started, finished, failed, was skipped or undone."""

    change_id: str
    summary: str
    state: str  # running | done | already | failed | skipped | undone | kept | cancelled
    index: int
    total: int
    message: str = ""


Progress = Callable[[ProgressEvent], None]


@dataclass
class RunResult:
    journal: Path
    done: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # change id -> why
    skipped: dict[str, str] = field(default_factory=dict)  # change id -> the failed change it waited for
    cancelled: bool = False
    # What the target looked like right after the run, as written to its journal (the application service fills
    # these after an apply: the environment and the findings); `record_error` says why they are missing.
    env: Any = None
    after: list[Any] | None = None
    record_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.cancelled


class Executor:
    def __init__(self, directory: DirectoryPort, exchange: ExchangePort | None, journal: Journal, *,
                 progress: Progress | None = None, cancel: threading.Event | None = None,
                 probe: KerberosProbe | None = None, namespaces: list[str] | None = None,
                 roll_method: str = "native") -> None:
        self.directory = directory
        self.exchange = exchange
        # the rollout's key-version proof (the target's Kerberos probe on these host names) and how it rolls
        self.probe = probe
        self.namespaces = list(namespaces or [])
        self.roll_method = roll_method
        self.journal = journal
        self.progress = progress or (lambda ev: None)
        self.cancel = cancel or threading.Event()
        self._lock = threading.Lock()
        self._result = RunResult(journal.path)
        self._blocked: set[str] = set()
        self._index = 0
        self._total = 0
        self._undo_of: dict[str, dict[str, Any]] = {}  # change id -> its undo, for the changes done in this run

    # --- entry points -----------------------------------------------------------------------------
    def apply(self, plan: Plan, *, target: dict[str, Any] | None = None) -> RunResult:
        """Run every change of the plan. `target` (no secrets) is recorded so `resume` can reconnect. A plan with
        a blocking prerequisite that is not met is refused before anything is written or changed."""
        if plan.blockers:
            raise WizardError(f"The plan has {len(plan.blockers)} blocking prerequisite(s) not met: "
                              + " ".join(b.text for b in plan.blockers) + " Nothing was changed.",
                              "Resolve them (the plan shows each with its fix), then make the plan again.")
        self.journal.write("run-start", message=f"apply: {len(plan.changes)} changes on {plan.target}",
                           data={"plan": plan.to_dict(), "target": target or {}})
        return self._run(plan, set(), set())

    def resume(self) -> RunResult:
        """Finish the run recorded in the journal: the changes not done yet, interrupted ones re-read first."""
        plan, _ = plan_from_journal(self.journal.events())
        states = {st.change.id: st.state for st in summarize(self.journal.events())}
        done = {cid for cid, s in states.items() if s in ("done", "undone")}
        interrupted = {cid for cid, s in states.items() if s == "interrupted"}
        self.journal.write("note", message=f"resume: {len(plan.changes) - len(done)} changes left")
        return self._run(plan, done, interrupted)

    def undo(self) -> RunResult:
        """Reverse every done change, newest first."""
        todo = undo_order(self.journal.events())
        self._total = len(todo)
        self.journal.write("note", message=f"undo: {len(todo)} changes")
        for i, (change, undo) in enumerate(todo, 1):
            if self.cancel.is_set():
                self._cancelled()
                break
            self._say(change, "running", i, "undo")
            try:
                kept = self._reverse(change, undo or {})
            except WizardError as exc:
                self._result.failed[change.id] = str(exc)
                self.journal.write("note", message=f"undo of {change.id} failed: {exc}",
                                   data={"undo_failed": change.id})
                self._say(change, "failed", i, str(exc))
                continue
            self.journal.write("undone", change, undo=undo, message=kept or "reversed")
            self._result.done.append(change.id)
            self._say(change, "kept" if kept else "undone", i, kept)
        self.journal.write("run-end", message="undo finished")
        return self._result

    # --- the run ----------------------------------------------------------------------------------
    def _run(self, plan: Plan, done: set[str], interrupted: set[str]) -> RunResult:
        pending = [c for c in plan.changes if c.id not in done]
        self._total = len(pending)
        self._interrupted = interrupted
        rolled = False
        checked: set[str] = set()
        batch: list[Change] = []
        for c in pending:
            if batch and not self._joins(batch, c):
                self._run_batch(batch, plan.concurrency)
                batch = []
            if self.cancel.is_set():
                self._cancelled()
                break
            group = c.params.get("group")
            if group and group not in checked:
                checked.add(group)
                self._start_group(group, [p for p in pending if p.params.get("group") == group])
            if c.action not in ROLL_ACTIONS:
                if c.id not in self._result.failed:
                    if self._parallel(c):
                        batch.append(c)
                    else:
                        self._run_change(c)
                continue
            if rolled:
                continue
            rolled = True  # the rollout step runs as one, at its first change (its changes stand together)
            self._rollout(plan, [p for p in pending if p.action in ROLL_ACTIONS and p.id not in self._result.failed])
            self._finish_groups(pending)
            if self.cancel.is_set():
                self._cancelled()
                break
        if batch:
            self._run_batch(batch, plan.concurrency)
            if self.cancel.is_set() and not self._result.cancelled:
                self._cancelled()
        end = "cancelled" if self._result.cancelled else ("finished with failures" if self._result.failed else
                                                          "finished")
        self.journal.write("run-end", message=end)
        return self._result

    # --- the per-server changes of one step, on different servers at once -----------------------------
    @staticmethod
    def _parallel(c: Change) -> bool:
        """A change on one Exchange server that stands alone (no group): it may run beside the same step's
        changes on the other servers."""
        return c.system.value == "exchange" and bool(c.params.get("server")) and not c.params.get("group")

    @staticmethod
    def _joins(batch: list[Change], c: Change) -> bool:
        """`c` runs in the same batch: a per-server change of the same step that depends on nothing in the batch
        (a server's own changes keep their order within the batch)."""
        ids = {b.id for b in batch}
        return Executor._parallel(c) and c.step == batch[0].step and not ids & set(c.depends_on)

    def _run_batch(self, batch: list[Change], concurrency: int) -> None:
        """The batch's changes, at most `concurrency` servers at a time, each server's changes in plan order
        (each change journaled on its own, as when they run one by one)."""
        by_server: dict[str, list[Change]] = {}
        for c in batch:
            if c.id not in self._result.failed:
                by_server.setdefault(str(c.params.get("server")).lower(), []).append(c)

        def server_changes(changes: list[Change]) -> None:
            for c in changes:
                if self.cancel.is_set():
                    return
                self._run_change(c)

        if len(by_server) <= 1 or concurrency <= 1:
            for changes in by_server.values():
                server_changes(changes)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(concurrency, len(by_server)), thread_name_prefix="apply") as pool:
            list(pool.map(server_changes, by_server.values()))

    # --- changes that stand together: new encryption types and the password roll that creates their keys ----
    def _start_group(self, group: str, members: list[Change]) -> None:
        """Before the first change of a group: can all of it run? If not, none of it starts."""
        rolls = [c for c in members if c.action in ROLL_ACTIONS]
        if not rolls:
            return
        why = ""
        if self.exchange is None:
            why = str(_no_exchange())
        else:
            generate = next((c for c in rolls if c.action == "roll-generate"), None)
            server = generate.params["server"] if generate else rolls[0].params.get("source", rolls[0].params["server"])
            try:
                self.exchange.read_server(server)
            except WizardError as exc:
                why = f"{server} cannot be read ({exc.problem})"
        if not why:
            return
        names = ", ".join(c.id for c in members)
        for c in members:
            with self._lock:
                self._index += 1
                index = self._index
            self._failed(c, f"not started: these changes are applied together or not at all ({names}), and {why}.",
                         index)

    def _finish_groups(self, pending: list[Change]) -> None:
        """After the rollout: a group whose password roll did not happen has its directory changes put back."""
        groups: dict[str, list[Change]] = {}
        for c in pending:
            if c.params.get("group"):
                groups.setdefault(c.params["group"], []).append(c)
        for members in groups.values():
            # the change that creates the new keys: the AD reset of a native roll, else Microsoft's generate
            generate = next((c for c in members if c.action == "roll-ad-password"), None) or next(
                (c for c in members if c.action == "roll-generate"), None)
            if generate is None or generate.id in self._result.done or generate.id in self._result.already:
                continue
            for c in reversed([m for m in members if m.action not in ROLL_ACTIONS and m.id in self._undo_of]):
                undo = self._undo_of.pop(c.id)
                why = (f"put back: it goes together with {generate.id}, which did not complete "
                       f"({self._result.failed.get(generate.id) or self._result.skipped.get(generate.id) or 'not run'})")
                try:
                    self._reverse(c, undo)
                except WizardError as exc:
                    self.journal.write("note", message=f"{c.id} could not be put back: {exc}", data={"undo_failed": c.id})
                    self._result.failed[c.id] = f"{why}, and putting it back failed: {exc}"
                    continue
                self.journal.write("undone", c, undo=undo, message=why)
                if c.id in self._result.done:
                    self._result.done.remove(c.id)
                self._result.failed[c.id] = why
                with self._lock:
                    self._blocked.add(c.id)
                self._say(c, "undone", self._index, why)

    def _cancelled(self) -> None:
        if not self._result.cancelled:
            self._result.cancelled = True
            self.journal.write("note", message="cancelled by the user: resume finishes the remaining changes")

    def _admit(self, c: Change) -> bool:
        """The dependency rule: a change whose dependency did not complete is not attempted (and blocks its own
        dependants). Recorded in the journal as a note, so the report lists it."""
        with self._lock:
            waits_for = next((d for d in c.depends_on if d in self._blocked), None)
            if waits_for:
                self._blocked.add(c.id)
                self._index += 1
                index = self._index
        if not waits_for:
            return True
        self._skipped(c, waits_for, f"not attempted: it depends on {waits_for}, which did not complete", index)
        return False

    def _skipped(self, c: Change, because: str, why: str, index: int | None = None) -> None:
        self.journal.write("note", message=why, data={"skipped": c.to_dict(), "because": because})
        self._result.skipped[c.id] = because
        if index is not None:
            self._say(c, "skipped", index, why)

    def _failed(self, c: Change, why: str, index: int | None = None) -> None:
        with self._lock:
            self._blocked.add(c.id)
        self.journal.write("failed", c, message=why)
        self._result.failed[c.id] = why
        if index is not None:
            self._say(c, "failed", index, why)

    def _run_change(self, c: Change) -> bool:
        """One change: dependency rule, intent, re-read, act, done/failed. True when the change is in place."""
        if not self._admit(c):
            return False
        if self.cancel.is_set():
            with self._lock:
                self._blocked.add(c.id)
            return False
        with self._lock:
            self._index += 1
            index = self._index
        self._say(c, "running", index)
        self.journal.write("intent", c)
        try:
            if c.action in SWAPS:  # the re-read and the change in one call on the server (a compare-and-set)
                state, undo = self._swap(c)
            else:
                state, read = self._reread(c)
                undo = self._do(c, read) if state == "old" else {}
            if state == "new":
                undo = planned_undo(c) if c.id in self._interrupted else None
                msg = "already in place (re-read before the change)"
                self.journal.write("done", c, undo=undo, message=msg)
                self._result.already.append(c.id)
                self._say(c, "already", index, msg)
                return True
        except WizardError as exc:
            self._failed(c, str(exc), index)
            return False
        self._undo_of[c.id] = undo
        self.journal.write("done", c, undo=undo)
        self._result.done.append(c.id)
        self._say(c, "done", index)
        return True

    # --- the credential rollout, by the rollout engine ------------------------------------------------
    def _rollout(self, plan: Plan, pending: list[Change]) -> None:
        """Run the plan's roll changes with the rollout engine. Changes done in an earlier run go to the engine
        too: it finds the generate's server in the journal (never generating again) and re-reads the servers
        that finished before; only the pending ones count in this run's result."""
        admitted = {c.id for c in pending if self._admit(c)}
        if not admitted:
            return
        if self.exchange is None:
            for c in pending:
                if c.id in admitted:
                    with self._lock:
                        self._index += 1
                    self._failed(c, str(_no_exchange()), self._index)
            return
        pending_ids = {c.id for c in pending}
        every = [c for c in plan.changes if c.action in ROLL_ACTIONS and (c.id in admitted or c.id not in pending_ids)]
        rolls = [c for c in every if c.action in SERVER_ROLLS]
        ad_change = next((c for c in every if c.action == "roll-ad-password"), None)
        by_server = {c.target: c for c in rolls}
        generate = next((c for c in rolls if c.action in ("roll-generate", "roll-push")), None)
        account = plan.asa or (generate.params["account"] if generate else "")
        request = RolloutRequest(account=account, servers=[_planned_server(c) for c in rolls],
                                 source=None if generate else rolls[0].params["source"],
                                 concurrency=plan.concurrency,
                                 generate_on=next((c.target for c in rolls if c.action == "roll-generate"), None),
                                 planned=every, namespaces=list(self.namespaces) if self.probe is not None else [],
                                 method=self.roll_method)
        indices: dict[str, int] = {}

        def on_event(ev: RolloutEvent) -> None:
            c = by_server.get(ev.server)
            state = _ROLL_STATES.get(ev.phase)
            if c is None or c.id not in admitted or state is None or (state == "running" and c.id in indices):
                return
            if c.id not in indices:
                with self._lock:
                    self._index += 1
                    indices[c.id] = self._index
            self._say(c, state, indices[c.id], f"{ev.message} — {ev.fix}" if ev.fix else ev.message)

        start = max((e.seq for e in self.journal.events()), default=0)
        report = Rollout(self.exchange, self.journal, request, progress=on_event, cancel=self.cancel,
                         pwd_last_set=self._pwd_last_set(account), directory=self.directory,
                         probe=self.probe).run()
        recorded = [e for e in self.journal.events() if e.seq > start and e.change_id in admitted]
        done = [e.change_id for e in recorded if e.event == "done"]
        for cid in dict.fromkeys(done):  # in the order the journal recorded them (undo goes newest first)
            if ad_change is not None and cid == ad_change.id:
                with self._lock:
                    self._index += 1
                self._result.done.append(cid)
                self._say(ad_change, "done", self._index, " ".join(
                    [f"the ASA's password was {report.ad_how or 'reset'} in AD once, after every push.", *report.notes]))
            elif report.servers[plan.change(cid).target].phase == Phase.VERIFIED:
                self._result.done.append(cid)
        if ad_change is not None and ad_change.id in admitted and not report.ad_changed:
            with self._lock:
                self._blocked.add(ad_change.id)
            why = next((b for b in report.blocked if "Active Directory was NOT changed" in b),
                       "Active Directory was not changed: not every server holds the new credential.")
            if not any(e.change_id == ad_change.id for e in recorded):
                self.journal.write("failed", ad_change, message=why)
            self._result.failed[ad_change.id] = why
        for c in rolls:
            p = report.servers[c.target]
            if c.id not in admitted or p.phase == Phase.VERIFIED:
                continue
            with self._lock:
                self._blocked.add(c.id)
            why = f"{p.reason} — {p.fix}" if p.fix else p.reason
            if p.phase == Phase.FAILED:
                if not any(e.change_id == c.id for e in recorded):  # it failed before its roll started
                    self.journal.write("failed", c, message=why)
                self._result.failed[c.id] = why
            elif p.phase == Phase.SKIPPED:
                self._skipped(c, generate.id if generate and c is not generate else request.source or "", why)

    def _pwd_last_set(self, account: str) -> Callable[[], datetime | None]:
        """The ASA's pwdLastSet, read when the engine needs it (a credential older than it is stale)."""
        sam = account.split("\\")[-1]

        def read() -> datetime | None:
            found = self.directory.get_account(sam) if sam else None
            return found.pwd_last_set if found else None

        return read

    def _say(self, c: Change, state: str, index: int, message: str = "") -> None:
        self.progress(ProgressEvent(c.id, c.summary, state, index, self._total, message))

    # --- re-read: "old" (as planned), "new" (already done), else StaleObject ------------------------
    def _reread(self, c: Change) -> tuple[str, Any]:
        """The verdict, and what was read (a server's state, which the change then sets by: None for the
        directory)."""
        p = c.params
        if c.system.value == "directory":
            return self._reread_directory(c), None
        state = self._read_for(c)
        if c.action == "set-oa-client-auth":
            v = _vdir(state.vdirs, Service.OUTLOOK_ANYWHERE)
            return _compare(c, (v.internal_client_auth or "").lower() if v else None, (c.old or "").lower(),
                            c.new.lower()), state
        if c.action == "set-mapi-auth":
            v = _vdir(state.vdirs, Service.MAPI)
            have = sorted(m.lower() for m in v.auth_methods) if v else None
            return _compare(c, have, sorted(m.lower() for m in c.old), sorted(m.lower() for m in c.new)), state
        if c.action == "set-iis-auth":  # (a port without the compare-and-set; add-iis-iusrs never comes here)
            service = Service.EAS if p["application"] == "Microsoft-Server-ActiveSync" else Service.EWS
            v = _vdir(state.vdirs, service)
            have = asdict(v.iis) if v is not None and v.iis is not None else None
            return _compare(c, have, c.old, c.new), state
        raise ValueError(f"unknown exchange action {c.action}")

    def _reread_directory(self, c: Change) -> str:
        p = c.params
        if c.action == "create-account":
            acct = self.directory.get_account(p["sam"])
            if acct is None:
                return "old"
            if c.id in self._interrupted and acct.dn.lower() == c.target.lower():
                return "new"
            raise StaleObject(f"{p['sam']} exists already ({acct.dn}); the plan expected to create it.",
                              "Make a new plan: it will use the existing account.")
        acct = self.directory.get_account_by_dn(p["dn"])
        if acct is None:
            raise StaleObject(f"{p['dn']} no longer exists.", "Make a new plan.")
        if c.action == "set-enctypes":
            return _compare(c, acct.enctypes, c.old, c.new)
        if c.action == "add-spns":
            return "new" if all(acct.has_spn(s) for s in p["spns"]) else "old"
        if c.action == "remove-spns":
            return "old" if any(acct.has_spn(s) for s in p["spns"]) else "new"
        if c.action == "set-uac":
            return _compare(c, acct.uac, c.old, c.new)
        if c.action == "set-delegate-to":
            have = sorted(x.lower() for x in acct.delegate_to)
            return _compare(c, have, sorted(x.lower() for x in c.old or []), sorted(x.lower() for x in c.new))
        raise ValueError(f"unknown directory action {c.action}")

    # --- re-read and change in one call on the server (Windows-side changes, over the kept WinRM shell) -----
    def _swap(self, c: Change) -> tuple[str, dict[str, Any]]:
        """The verdict ("old": changed now, "new": already in place; else StaleObject, nothing changed) and
        the change's undo ("old" only), from one compare-and-set on the server. A port without the
        compare-and-set re-reads and changes in two calls."""
        x = self._exchange()
        p = c.params
        server = p["server"]
        if c.action == "add-iis-iusrs":
            # the group's own IsMember and Add in one script: it adds only when the member is missing
            if not x.add_iis_iusrs(server, p["member"]):
                return "new", {}
            return "old", {"server": server, "member": p["member"], "remove": True}
        change = getattr(x, "change_iis_auth", None)
        if change is None:
            state, read = self._reread(c)
            return state, self._do(c, read) if state == "old" else {}
        swap = change(server, p["application"], IisAuth(**c.old), IisAuth(**c.new))
        if swap.state == "stale":
            have = asdict(swap.found) if swap.found is not None else None
            _compare(c, have, c.old, c.new)  # raises StaleObject naming what was found
            raise StaleObject(f"{c.target}: {c.attribute or c.action} is {have!r} now; the plan expected "
                              f"{c.old!r}.", "Someone changed it since the plan was made: make a new plan.")
        if swap.state == "new":
            return "new", {}
        return "old", {"server": server, "application": p["application"], "auth": asdict(swap.found)}

    def _read_for(self, c: Change) -> Any:
        """The server state a change's re-read needs: only that part when the port can read parts."""
        parts = {"set-oa-client-auth": {"outlook-anywhere"}, "set-mapi-auth": {"mapi"}}.get(c.action, {"windows"})
        return read_parts(self._exchange(), c.params["server"], parts)

    def _exchange(self) -> ExchangePort:
        if self.exchange is None:
            raise _no_exchange()
        return self.exchange

    # --- act ----------------------------------------------------------------------------------------
    def _do(self, c: Change, read: Any = None) -> dict[str, Any]:
        """Make the change; `read`: the server's state its re-read just returned (a change that sets an object
        by its Identity takes it from there)."""
        p = c.params
        d = self.directory
        if c.action == "create-account":
            created = d.create_account(p["sam"], AccountKind(p["kind"]), p["ou_dn"], int(p["enctypes"]),
                                       p.get("description", ""))
            return {"dn": created.account.dn, "delete": created.created}
        if c.action == "set-enctypes":
            return {"dn": p["dn"], "value": d.set_enctypes(p["dn"], p["value"])}
        if c.action == "add-spns":
            return {"dn": p["dn"], "spns": d.add_spns(p["dn"], list(p["spns"]))}
        if c.action == "remove-spns":
            return {"dn": p["dn"], "spns": d.remove_spns(p["dn"], list(p["spns"]))}
        if c.action == "set-uac":
            return {"dn": p["dn"], "value": d.set_uac(p["dn"], int(p["value"]))}
        if c.action == "set-delegate-to":
            return {"dn": p["dn"], "spns": d.set_delegate_to(p["dn"], list(p["spns"]))}
        x = self._exchange()
        server = p["server"]
        if c.action == "set-oa-client-auth":
            return {"server": server, "method": x.set_outlook_anywhere_client_auth(server, p["method"], read)}
        if c.action == "set-mapi-auth":
            return {"server": server, "methods": x.set_mapi_auth_methods(server, list(p["methods"]), read)}
        if c.action == "add-iis-iusrs":
            return {"server": server, "member": p["member"], "remove": x.add_iis_iusrs(server, p["member"])}
        if c.action == "set-iis-auth":
            prev = x.set_iis_auth(server, p["application"], IisAuth(**p["auth"]))
            return {"server": server, "application": p["application"], "auth": asdict(prev)}
        raise ValueError(f"unknown action {c.action}")

    def _reverse(self, c: Change, u: dict[str, Any]) -> str:
        """Undo one change with what the journal recorded. Returns a note when the change is kept on purpose."""
        d = self.directory
        a = c.action
        if a == "create-account":
            if not u.get("delete", True):
                return "the account existed before: kept"
            d.delete_account(u["dn"])
        elif a == "set-enctypes":
            d.set_enctypes(u["dn"], u["value"])
        elif a == "add-spns":
            if u.get("spns"):
                d.remove_spns(u["dn"], list(u["spns"]))
        elif a == "remove-spns":
            if u.get("spns"):
                try:
                    d.add_spns(u["dn"], list(u["spns"]))
                except SpnConflict as exc:
                    return (f"kept off: {exc.spn} is registered on {exc.owner} now, and putting it back would make "
                            "a duplicate again")
        elif a == "set-uac":
            d.set_uac(u["dn"], int(u["value"]), restore=True)  # may put back what this change removed
        elif a == "set-delegate-to":
            d.set_delegate_to(u["dn"], list(u.get("spns") or []))
        elif a == "roll-ad-password":
            return "a password reset cannot be undone: the servers keep the credential they hold"
        elif a in ROLL_ACTIONS:
            if not u.get("remove"):
                return "the server held a credential before: the new one stays (the old password cannot return)"
            self._exchange().remove_asa(u["server"])
        elif a == "set-oa-client-auth":
            if u.get("method") is None:
                return "the previous value was not known: kept"
            self._exchange().set_outlook_anywhere_client_auth(u["server"], u["method"])
        elif a == "set-mapi-auth":
            self._exchange().set_mapi_auth_methods(u["server"], list(u.get("methods") or []))
        elif a == "add-iis-iusrs":
            if not u.get("remove"):
                return "it was a member before: kept"
            self._exchange().remove_iis_iusrs(u["server"], u["member"])
        elif a == "set-iis-auth":
            self._exchange().set_iis_auth(u["server"], u["application"], IisAuth(**u["auth"]))
        else:
            raise ValueError(f"unknown action {a}")
        return ""


# ----------------------------------------------------------------------------------------------------
def _compare(c: Change, have: Any, old: Any, new: Any) -> str:
    if have == new:
        return "new"
    if have == old:
        return "old"
    raise StaleObject(f"{c.target}: {c.attribute or c.action} is {have!r} now; the plan expected {old!r}.",
                      "Someone changed it since the plan was made: make a new plan.")


def _vdir(vdirs: list[Any], service: Service) -> Any:
    return next((v for v in vdirs if v.service == service), None)


def _no_exchange() -> WizardError:
    return WizardError("This change needs the Exchange servers, and no WinRM connection is set up.",
                       "Give the WinRM options (or use the lab), then resume.")


# The rollout engine's per-server phases as this run's progress states (pending and done-but-not-yet-verified
# say nothing new to a person).
_ROLL_STATES = {Phase.RUNNING: "running", Phase.VERIFIED: "done", Phase.FAILED: "failed", Phase.SKIPPED: "skipped"}


def _planned_server(c: Change) -> ExchangeServer:
    """The server a planned roll is for, holding what it held when the plan was made: the engine's undo record
    removes the credential only where that was nothing."""
    old = c.old or None
    held = AsaCredential(old["account"], datetime.fromisoformat(old["when"]) if old.get("when") else None) \
        if old else None
    return ExchangeServer(name=c.target, fqdn=c.params["server"], asa_latest=held, asa_state_known=True)


def planned_undo(c: Change) -> dict[str, Any] | None:
    """Undo information from the plan itself, for a change found in place on resume (its `done` was lost)."""
    p = c.params
    a = c.action
    if a == "create-account":
        return {"dn": c.target, "delete": True}
    if a in ("set-enctypes", "set-uac"):
        return {"dn": p["dn"], "value": c.old}
    if a in ("add-spns", "remove-spns"):
        return {"dn": p["dn"], "spns": list(p["spns"])}
    if a == "set-delegate-to":
        return {"dn": p["dn"], "spns": list(c.old or [])}
    if a == "set-oa-client-auth":
        return {"server": p["server"], "method": c.old}
    if a == "set-mapi-auth":
        return {"server": p["server"], "methods": list(c.old or [])}
    if a == "add-iis-iusrs":
        return {"server": p["server"], "member": p["member"], "remove": True}
    if a == "set-iis-auth":
        return {"server": p["server"], "application": p["application"], "auth": c.old}
    return None


def plan_from_journal(events: list[JournalEvent]) -> tuple[Plan, dict[str, Any]]:
    """The plan and target recorded at the start of the run."""
    for e in events:
        if e.event == "run-start" and e.data and "plan" in e.data:
            return Plan.from_dict(e.data["plan"]), dict(e.data.get("target") or {})
    raise WizardError("This journal does not record a plan (it was not written by apply).",
                      "Resume only runs that `asa-wizard apply` or the wizard started.")


def undo_order(events: list[JournalEvent]) -> list[tuple[Change, dict[str, Any] | None]]:
    """The done (not yet undone) changes, newest first, with the undo information recorded for each."""
    done_seq: dict[str, int] = {}
    for e in events:
        if e.change_id and e.event == "done":
            done_seq[e.change_id] = e.seq
    out = [(st.change, st.undo, done_seq.get(st.change.id, 0)) for st in summarize(events) if st.state == "done"]
    out.sort(key=lambda t: -t[2])
    return [(c, u) for c, u, _ in out if u is not None]


def unfinished(events: list[JournalEvent]) -> bool:
    """Does this journal hold an apply run that did not finish all its changes?"""
    try:
        plan, _ = plan_from_journal(events)
    except WizardError:
        return False
    states = {st.change.id: st.state for st in summarize(events)}
    return any(states.get(c.id) not in ("done", "undone") for c in plan.changes)


__all__ = ["Executor", "ProgressEvent", "RunResult", "plan_from_journal", "planned_undo", "undo_order",
           "unfinished"]
