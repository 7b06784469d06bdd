"""The executor on the lab, through the real LDAP and WinRM adapters: apply makes every check pass, an
interrupted run resumes, undo puts the lab back, and the journal tells the truth without a secret."""

from __future__ import annotations

import threading

import pytest

from asa_wizard.core.answers import parse_answers
from asa_wizard.core.executor import Executor, undo_order, unfinished
from asa_wizard.core.journal import Journal, summarize
from asa_wizard.core.plan import build_plan
from asa_wizard.core.rollout import RolloutRequest, run_rollout
from asa_wizard.lab.scenario import Scenario, find_scenario, load_scenario
from asa_wizard.lab.world import LabWorld
from asa_wizard.target import Target

from .lab_kit import ANSWERS, answers_for, env_of, open_lab, plan_on, problems_of, state


@pytest.fixture
def journal(tmp_path):
    return Journal.create(tmp_path, actor="CONTOSO\\Administrator", label="test")


@pytest.mark.parametrize("scenario", ["fresh", "fresh-with-seg", "new-server-missing-asa", "duplicate-spn",
                                      "stale-credential", "rc4-only", "reroll-with-spns"])
def test_apply_then_check_passes_everything(scenario, journal):
    answers = answers_for(scenario)
    target = open_lab(scenario)
    try:
        assert problems_of(target, answers) == target.lab.scenario.expected_findings
        plan = plan_on(target, answers)
        assert plan.changes and not plan.blockers
        result = Executor(target.directory, target.exchange, journal).apply(plan)
        assert result.ok, (result.failed, result.skipped)
        assert problems_of(target, answers) == {}
        if not answers.rollout.new_password:  # a re-roll asked for would roll again, by design
            assert plan_on(target, answers).changes == []  # nothing left to do
    finally:
        target.close()
    states = {st.change.id: st.state for st in summarize(journal.events())}
    assert states == {c.id: "done" for c in plan.changes}
    password = target.lab.scenario.admin_password
    assert password not in journal.path.read_text()


def test_journal_has_intent_before_done_and_records_undo(journal):
    answers = answers_for("new-server-missing-asa")
    target = open_lab("new-server-missing-asa")
    try:
        Executor(target.directory, target.exchange, journal).apply(plan_on(target, answers))
    finally:
        target.close()
    kinds = [(e.event, e.change_id) for e in journal.events()]
    assert kinds[0][0] == "run-start" and kinds[-1] == ("run-end", None)
    for cid in ("asa.enctypes", "rollout.copy:Exch-2019"):
        assert kinds.index(("intent", cid)) < kinds.index(("done", cid))
    done = {e.change_id: e.undo for e in journal.events() if e.event == "done"}
    assert done["asa.enctypes"]["value"] == 28  # what it replaced, read back by the port
    assert done["rollout.copy:Exch-2019"] == {"server": "exch-2019.tailspintoys.ca", "remove": True}


def test_a_failed_server_stops_what_depends_on_it_and_resume_finishes(journal):
    """EX02 refuses the push: AD is not changed (every server keeps the working password), everything that needs
    the roll waits; resume pushes a fresh password to both and changes AD exactly once."""
    answers = answers_for("fresh-with-seg")
    target = open_lab("fresh-with-seg")
    try:
        target.lab.exchange.server("EX02").fault = "fail-roll"
        plan = plan_on(target, answers)
        result = Executor(target.directory, target.exchange, journal).apply(plan)
        assert {"rollout.push:EX02", "rollout.ad-password"} <= set(result.failed)
        assert "Exchange Service Host service on ex02.contoso.com did not answer" in result.failed["rollout.push:EX02"]
        assert "Active Directory was NOT changed" in result.failed["rollout.ad-password"]
        # everything that needs the credential waited; the SEG account's own change went ahead
        assert {"spn.add:HTTP/mail.contoso.com", "auth.oa:EX02", "iis.eas:EX02"} <= set(result.skipped)
        assert "seg.spn:HTTP/svc_awseg" in result.done
        assert unfinished(journal.events())
        created = target.lab.directory.account_key_version("EXASA$")
        ex01 = target.lab.exchange.server("EX01").credentials
        assert len(ex01) == 1 and not target.lab.exchange.credential_valid(ex01[0])  # pushed, not yet valid
        target.lab.exchange.server("EX02").fault = "none"
        resumed = Executor(target.directory, target.exchange, Journal.open(journal.path)).resume()
        assert resumed.ok, (resumed.failed, resumed.skipped)
        assert target.lab.directory.account_key_version("EXASA$") == created + 1  # AD changed exactly once
        for name in ("EX01", "EX02"):  # one credential each: the unused one of the failed run was cleaned up
            (cred,) = target.lab.exchange.server(name).credentials
            assert target.lab.exchange.credential_valid(cred)
        assert problems_of(target, answers) == {}
    finally:
        target.close()
    assert not unfinished(journal.events())


def test_cancel_in_the_middle_leaves_a_resumable_journal(journal):
    answers = answers_for("fresh")
    target = open_lab("fresh")
    cancel = threading.Event()

    def progress(ev):
        if ev.change_id == "spn.add:HTTP/autodiscover.contoso.com" and ev.state == "done":
            cancel.set()

    try:
        plan = plan_on(target, answers)
        result = Executor(target.directory, target.exchange, journal, progress=progress, cancel=cancel).apply(plan)
        assert result.cancelled and not result.failed
        done = [st.change.id for st in summarize(journal.events()) if st.state == "done"]
        assert sorted(done) == sorted(c.id for c in plan.changes[:5])  # the account, the roll, one SPN
        resumed = Executor(target.directory, target.exchange, Journal.open(journal.path)).resume()
        assert resumed.ok and set(resumed.done) == {c.id for c in plan.changes[5:]}
        assert problems_of(target, answers) == {}
    finally:
        target.close()


def test_resume_after_a_crash_between_the_change_and_its_record(journal):
    """The change happened but `done` was never written: resume re-reads, sees it in place, records it."""
    answers = answers_for("new-server-missing-asa")
    target = open_lab("new-server-missing-asa")
    try:
        plan = plan_on(target, answers)
        enc = plan.change("asa.enctypes")
        journal.write("run-start", data={"plan": plan.to_dict(), "target": {}})
        journal.write("intent", enc)
        target.directory.set_enctypes(enc.params["dn"], 24)  # the crash came right after the change
        result = Executor(target.directory, target.exchange, Journal.open(journal.path)).resume()
        assert result.already == ["asa.enctypes"] and result.done == ["rollout.copy:Exch-2019"]
        undo = {c.id: u for c, u in undo_order(journal.events())}
        assert undo["asa.enctypes"] == {"dn": enc.params["dn"], "value": 28}
    finally:
        target.close()


def test_an_object_changed_since_the_plan_is_not_touched(journal):
    answers = answers_for("rc4-only")
    target = open_lab("rc4-only")
    try:
        plan = plan_on(target, answers)
        target.directory.set_enctypes(plan.change("asa.enctypes").params["dn"], 8)  # someone else, meanwhile
        result = Executor(target.directory, target.exchange, journal).apply(plan)
        assert "the plan expected 4" in result.failed["asa.enctypes"]
        assert set(result.skipped) == {"rollout.generate:EX01", "rollout.push:EX02", "rollout.ad-password"}
    finally:
        target.close()


@pytest.mark.parametrize("scenario", ["fresh", "fresh-with-seg", "new-server-missing-asa", "seg-kcd"])
def test_undo_returns_the_lab_to_the_scenario(scenario, journal):
    answers = answers_for(scenario)
    target = open_lab(scenario)
    try:
        before = state(target)
        result = Executor(target.directory, target.exchange, journal).apply(plan_on(target, answers))
        assert result.ok
        assert state(target) != before
        order = [c.id for c, _ in undo_order(journal.events())]
        assert order == list(reversed(result.done))  # newest first
        undone = Executor(target.directory, target.exchange, Journal.open(journal.path)).undo()
        assert not undone.failed
        assert state(target) == before
        assert undo_order(journal.events()) == []
    finally:
        target.close()


def test_undo_keeps_a_credential_it_cannot_restore(journal):
    answers = answers_for("stale-credential")
    target = open_lab("stale-credential")
    try:
        Executor(target.directory, target.exchange, journal).apply(plan_on(target, answers))
        notes = []
        Executor(target.directory, target.exchange, Journal.open(journal.path),
                 progress=lambda ev: notes.append((ev.state, ev.message))).undo()
        assert ("kept", "the server held a credential before: the new one stays (the old password cannot return)") \
            in notes
        assert problems_of(target, answers) == {}  # undo did not break Kerberos on EX02
    finally:
        target.close()


# --- the credential rollout runs on the rollout engine -------------------------------------------------------


def lab_target(scenario: Scenario, exchange=None) -> Target:
    world = LabWorld(scenario)
    return Target(label="Lab", directory=world.directory_port(), exchange=exchange(world.exchange_port())
                  if exchange else world.exchange_port(), kerberos=world.kerberos_probe(), is_lab=True, lab=world)


class Meeting:
    """The real port, counting the calls of one method running at once. The first `meet` calls wait for each
    other (a barrier that times out when they run one after another), so the run proves they were in flight
    together; the servers in flight at each call's start are recorded."""

    def __init__(self, real, meet: int, method: str) -> None:
        self.real, self.meet, self.method = real, meet, method
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(meet, timeout=10)
        self.started = self.in_flight = self.most = 0
        self.servers_in_flight: list[list[str]] = []
        self.now: list[str] = []

    def __getattr__(self, name):
        if name == self.method:
            return lambda server, *args: self._meet(getattr(self.real, name), server, *args)
        return getattr(self.real, name)

    def _meet(self, call, server, *args):
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.now.append(server)
            self.servers_in_flight.append(list(self.now))
            first = self.started < self.meet
            self.started += 1
        try:
            if first:
                self.barrier.wait()
            return call(server, *args)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.now.remove(server)


def test_apply_rolls_out_through_the_engine_with_the_plans_concurrency(journal):
    answers = parse_answers('[target]\nlab = "fresh"\n' + ANSWERS["fresh"] + "[rollout]\nconcurrency = 2\n", "a.toml")
    counting: list[Meeting] = []
    target = lab_target(load_scenario(find_scenario("fresh")).with_servers(5),
                        lambda real: counting.append(Meeting(real, 2, "push_credential")) or counting[0])
    events = []
    try:
        plan = plan_on(target, answers)
        rolls = [c.id for c in plan.changes if c.step == "rollout"]
        assert plan.concurrency == 2 and len(rolls) == 6  # five pushes and the one AD change
        result = Executor(target.directory, target.exchange, journal, progress=events.append).apply(plan)
        assert result.ok, (result.failed, result.skipped)
        assert counting[0].most == 2  # two pushes at once, never more
        sets = [c for c in target.lab.exchange.cmdlets if c[1] == "Set-ClientAccessService"]
        assert len(sets) == 5  # one push per server
    finally:
        target.close()
    # the engine verified every server and said so, in the run's progress
    finished = {e.change_id: e.message for e in events if e.change_id in rolls and e.state == "done"}
    for n in range(1, 6):
        cid = f"rollout.{'generate' if n == 1 else 'push'}:EX0{n}"
        assert finished[cid].startswith(f"EX0{n} holds the current CONTOSO\\EXASA$ password")
    done = {e.change_id: e for e in journal.events() if e.event == "done" and e.change_id in rolls}
    assert done["rollout.push:EX03"].undo == {"server": "ex03.contoso.com", "remove": True}
    assert done["rollout.push:EX03"].change["new"]["account"] == "CONTOSO\\EXASA$"  # what the server holds now
    assert max(e.seq for e in journal.events() if e.change_id and e.change_id.startswith("rollout.") and
               e.change_id != "rollout.ad-password" and e.event == "done") < \
        next(e.seq for e in journal.events() if e.change_id == "rollout.ad-password" and e.event == "done")


@pytest.mark.parametrize("via", ["wizard", "apply"])
def test_undo_after_a_rollout_removes_only_credentials_that_were_not_there(via, journal):
    """Exch-2016 held the ASA credential, Exch-2019 held none; a new password is rolled to both. Undo takes it
    off Exch-2019 and leaves it on Exch-2016 (its old password cannot come back; AD has the new one)."""
    answers = parse_answers('[target]\nlab = "new-server-missing-asa"\n[asa]\nname = "E15ASA$"\n'
                            "[rollout]\nnew_password = true\n", "a.toml")
    target = open_lab("new-server-missing-asa")
    held = {s.name: s.asa_latest for s in target.lab.current_scenario().servers}
    assert held["Exch-2016"] is not None and held["Exch-2019"] is None
    try:
        env = env_of(target, answers)
        if via == "apply":
            assert Executor(target.directory, target.exchange, journal).apply(build_plan(env, answers)).ok
        else:  # as the wizard's rollout step runs it: the engine alone, on the discovered servers
            report = run_rollout(target.exchange, journal, RolloutRequest("TAILSPINTOYS\\E15ASA$", env.servers),
                                 directory=target.directory)
            assert report.complete and report.generated and report.ad_changed
        notes = []
        undone = Executor(target.directory, target.exchange, Journal.open(journal.path),
                          progress=lambda ev: notes.append((ev.change_id, ev.state, ev.message))).undo()
        assert not undone.failed
        now = {s.name: s.asa_latest for s in target.lab.current_scenario().servers}
        assert now["Exch-2019"] is None
        assert target.lab.directory.account_key_version("E15ASA$") == held["Exch-2016"].key_version + 1
        assert now["Exch-2016"].digest == target.lab.directory.account_digest("E15ASA$")  # it stays, as in AD
        kept = {cid for cid, st, msg in notes if st == "kept" and "the old password cannot return" in msg}
        assert kept & {"rollout.generate:Exch-2016", "rollout.push:Exch-2016"}
        assert {cid for cid, st, _ in notes if st == "undone"} == {"rollout.push:Exch-2019"}
        assert problems_of(target, answers).get("kerberos.server") == "fail"  # Exch-2019 is back to the field report
    finally:
        target.close()


def test_resume_after_a_crash_mid_push_changes_ad_once_and_leaves_nothing_unused(journal):
    """The push to EX01 happened but the wizard died before journalling it (the password lived only in its
    memory): AD was not changed; resume pushes a new password to both servers, AD changes exactly once, and the
    unused credential on EX01 is cleaned up by the new push."""
    answers = answers_for("fresh")

    class Crash(BaseException):
        pass

    class CrashAfterPush:
        def __init__(self, real):
            self.real = real
            self.key_version_before: int | None = None

        def __getattr__(self, name):
            return getattr(self.real, name)

        def push_credential(self, server, account, password):
            self.key_version_before = target.lab.directory.account_key_version("EXASA$")
            self.real.push_credential(server, account, password)
            raise Crash()

    target = open_lab("fresh")
    try:
        plan = plan_on(target, answers)
        crashing = CrashAfterPush(target.exchange)
        with pytest.raises(Crash):
            Executor(target.directory, crashing, journal).apply(plan)
        states = {st.change.id: st.state for st in summarize(journal.events())}
        assert states["asa.create"] == "done" and states["rollout.generate:EX01"] == "interrupted"
        assert "rollout.ad-password" not in states
        assert target.lab.directory.account_key_version("EXASA$") == crashing.key_version_before  # AD untouched
        resumed = Executor(target.directory, target.exchange, Journal.open(journal.path)).resume()
        assert resumed.ok, (resumed.failed, resumed.skipped)
        assert {"rollout.generate:EX01", "rollout.push:EX02", "rollout.ad-password"} <= set(resumed.done)
        assert target.lab.directory.account_key_version("EXASA$") == crashing.key_version_before + 1
        (cred,) = target.lab.exchange.server("EX01").credentials
        assert target.lab.exchange.credential_valid(cred)
        assert problems_of(target, answers) == {}
    finally:
        target.close()


def test_a_steps_changes_on_several_servers_run_at_once_within_the_plans_concurrency(journal):
    answers = parse_answers('[target]\nlab = "fresh"\n' + ANSWERS["fresh"] + "[rollout]\nconcurrency = 3\n", "a.toml")
    meeting: list[Meeting] = []
    target = lab_target(load_scenario(find_scenario("fresh")).with_servers(6),
                        lambda real: meeting.append(Meeting(real, 3, "set_outlook_anywhere_client_auth")) or meeting[0])
    try:
        plan = plan_on(target, answers)
        oa = [c for c in plan.changes if c.action == "set-oa-client-auth"]
        assert len(oa) == 6
        result = Executor(target.directory, target.exchange, journal).apply(plan)
        assert result.ok, (result.failed, result.skipped)
        assert meeting[0].most == 3  # three servers at once (the barrier would have timed out otherwise), never more
        # one change per server at a time: a server's own changes keep their order
        assert all(len(s) == len(set(s)) for s in meeting[0].servers_in_flight)
        # every change still has its intent before its done, each journaled on its own
        events = [(e.event, e.change_id) for e in journal.events() if e.change_id in {c.id for c in oa}]
        for c in oa:
            assert events.index(("intent", c.id)) < events.index(("done", c.id))
        # and the lab holds what the plan said, on every server
        lab = target.lab.exchange.current_scenario()
        from asa_wizard.core.model import Service
        assert {s.vdirs[Service.OUTLOOK_ANYWHERE].internal_client_auth for s in lab.servers} == {"Negotiate"}
    finally:
        target.close()


def test_a_changes_re_read_asks_only_for_the_part_it_changes(journal):
    answers = answers_for("fresh")
    target = open_lab("fresh")
    try:
        plan = plan_on(target, answers)
        before = len(target.lab.exchange.cmdlets)
        result = Executor(target.directory, target.exchange, journal).apply(plan)
        assert result.ok, (result.failed, result.skipped)
        sent = [c[1] for c in target.lab.exchange.cmdlets[before:]]
        # an Outlook Anywhere change re-reads Outlook Anywhere once (the set goes by the Identity that read
        # returned), never the whole server: no Get-ExchangeServer or virtual directory sweep per change
        per_server_oa = [c for c in target.lab.exchange.cmdlets[before:] if c[1] == "Get-OutlookAnywhere"]
        assert len(per_server_oa) == len([c for c in plan.changes if c.action == "set-oa-client-auth"])
        assert "Get-OwaVirtualDirectory" not in sent
    finally:
        target.close()


class CancelAfterFirstPush:
    """The real port; the first push, once done, cancels the run (as a user pressing x after it)."""

    def __init__(self, real, cancel: threading.Event) -> None:
        self.real, self.cancel = real, cancel

    def __getattr__(self, name):
        return getattr(self.real, name)

    def push_credential(self, server, account, password):
        try:
            return self.real.push_credential(server, account, password)
        finally:
            self.cancel.set()


def test_finishing_a_roll_cancelled_before_its_ad_change_is_said_to_roll_a_new_password(journal):
    from asa_wizard.service.operations import ROLL_AGAIN, rolls_again

    answers = parse_answers('[target]\nlab = "fresh"\n' + ANSWERS["fresh"] + "[rollout]\nconcurrency = 1\n", "a.toml")
    cancel = threading.Event()
    target = lab_target(load_scenario(find_scenario("fresh")),
                        lambda real: CancelAfterFirstPush(real, cancel))
    try:
        plan = plan_on(target, answers)
        result = Executor(target.directory, target.exchange, journal, cancel=cancel).apply(plan)
        assert result.cancelled
        states = {s.change.id: s.state for s in summarize(journal.events())}
        assert states.get("rollout.ad-password") != "done"
        assert any(cid.startswith("rollout.") and st == "done" for cid, st in states.items())
        # what the resume prompts say: a new password, pushed to every server again, AD once
        assert rolls_again(journal.path)
        assert "generates a new password" in ROLL_AGAIN and "every server" in ROLL_AGAIN
        # and it is what happens: the resume rolls once more and AD changes exactly once
        kvno = target.lab.directory.account_key_version("EXASA$")
        assert kvno is not None  # the account was created before the roll
        again = Executor(target.directory, target.exchange, Journal.open(journal.path)).resume()
        assert again.ok, (again.failed, again.skipped)
        assert target.lab.directory.account_key_version("EXASA$") == kvno + 1
        assert not rolls_again(journal.path)
    finally:
        target.close()
