"""The executor on the lab, through the real LDAP and WinRM adapters: apply makes every check pass, an
interrupted run resumes, undo puts the lab back, and the journal tells the truth without a secret."""

from __future__ import annotations

import threading

import pytest

from asa_wizard.core.executor import Executor, undo_order, unfinished
from asa_wizard.core.journal import Journal, summarize

from .lab_kit import answers_for, open_lab, plan_on, problems_of, state


@pytest.fixture
def journal(tmp_path):
    return Journal.create(tmp_path, actor="CONTOSO\\Administrator", label="test")


@pytest.mark.parametrize("scenario", ["fresh", "new-server-missing-asa", "duplicate-spn", "stale-credential",
                                      "rc4-only"])
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
    answers = answers_for("fresh")
    target = open_lab("fresh")
    try:
        target.lab.exchange.server("EX02").fault = "fail-roll"
        plan = plan_on(target, answers)
        result = Executor(target.directory, target.exchange, journal).apply(plan)
        assert set(result.failed) == {"rollout.copy:EX02"}
        assert "Errors were encountered while propagating credentials" in result.failed["rollout.copy:EX02"]
        # everything that needs EX02's credential waited; EX01's own changes went ahead
        assert {"spn.add:HTTP/mail.contoso.com", "auth.oa:EX02", "iis.eas:EX02"} <= set(result.skipped)
        assert "rollout.generate:EX01" in result.done and "seg.spn:HTTP/svc_awseg" in result.done
        assert unfinished(journal.events())
        target.lab.exchange.server("EX02").fault = "none"
        resumed = Executor(target.directory, target.exchange, Journal.open(journal.path)).resume()
        assert resumed.ok, (resumed.failed, resumed.skipped)
        assert "rollout.generate:EX01" not in resumed.done  # never a second new password
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
        assert done == [c.id for c in plan.changes[:4]]
        resumed = Executor(target.directory, target.exchange, Journal.open(journal.path)).resume()
        assert resumed.ok and set(resumed.done) == {c.id for c in plan.changes[4:]}
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
        assert set(result.skipped) == {"rollout.generate:EX01", "rollout.copy:EX02"}
    finally:
        target.close()


@pytest.mark.parametrize("scenario", ["fresh", "new-server-missing-asa", "seg-kcd"])
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
