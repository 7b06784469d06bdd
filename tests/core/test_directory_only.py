"""Directory-only plans (no_exchange), servers whose credential is unknown, changes that stand together, and the
executor's refusal of a plan with an unmet blocking prerequisite — on the lab, through the real adapters."""

from __future__ import annotations

import pytest

from asa_wizard.core.answers import dumps_answers, parse_answers
from asa_wizard.core.discovery import DiscoveryOptions, discover
from asa_wizard.core.errors import ConnectionFailed, WizardError
from asa_wizard.core.executor import Executor
from asa_wizard.core.journal import Journal, summarize
from asa_wizard.core.plan import KEYS_GROUP, build_plan, discovery_seg

from .lab_kit import answers_for, open_lab, plan_on, state


class Unreadable:
    """The lab's Exchange port, with one server that cannot be reached over WinRM."""

    def __init__(self, port, server: str) -> None:
        self._port = port
        self._server = server.lower()

    def read_server(self, server: str):
        if server.lower() == self._server:
            raise ConnectionFailed(f"Cannot reach {server} over WinRM (port 5986).", "Check the firewall.")
        return self._port.read_server(server)

    def __getattr__(self, name: str):
        return getattr(self._port, name)


@pytest.fixture
def journal(tmp_path):
    return Journal.create(tmp_path, actor="CONTOSO\\Administrator", label="test")


def directory_only(scenario: str, extra: str = ""):
    answers = answers_for(scenario)
    answers.no_exchange = True
    if extra:
        more = parse_answers(f'[target]\nlab = "{scenario}"\n' + extra)
        answers.spns = more.spns
    return answers


def env_without_servers(target, answers):
    return discover(target.directory, None, DiscoveryOptions(asa_sam=answers.asa.name, seg=discovery_seg(answers),
                                                             namespaces=list(answers.spns.namespaces)))


def test_answers_carry_no_exchange_and_the_confirmation_and_write_them_back():
    a = parse_answers('version = 1\nno_exchange = true\n[target]\nlab = "fresh"\n[spns]\n'
                      'confirm_servers_hold_credential = true\n')
    assert a.no_exchange and a.spns.confirm_servers_hold_credential
    again = parse_answers(dumps_answers(a))
    assert again.no_exchange and again.spns.confirm_servers_hold_credential
    plain = parse_answers('[target]\nlab = "fresh"\n')
    assert not plain.no_exchange and not plain.spns.confirm_servers_hold_credential
    assert "no_exchange" not in dumps_answers(plain)


def test_a_directory_only_plan_has_only_directory_changes_and_says_what_it_left_out():
    target = open_lab("seg-kcd")
    try:
        answers = directory_only("seg-kcd")
        plan = build_plan(env_without_servers(target, answers), answers, target.label)
    finally:
        target.close()
    assert plan.changes and all(c.system.value == "directory" for c in plan.changes)
    assert not any(c.action.startswith("roll") for c in plan.changes)
    assert any("Directory-side changes only" in n and "IIS_IUSRS" in n and "rollout" in n for n in plan.notes)
    assert not plan.blockers, [b.text for b in plan.blockers]


def test_an_spn_on_the_asa_waits_for_the_users_confirmation_when_the_servers_are_not_read(journal):
    target = open_lab("new-server-missing-asa")
    try:
        answers = directory_only("new-server-missing-asa", '[spns]\nnamespaces = ["extra.contoso.com"]\n')
        answers.asa.enctypes = None
        env = env_without_servers(target, answers)
        plan = build_plan(env, answers, target.label)
        (blocker,) = [b for b in plan.blockers if "extra.contoso.com" in b.text]
        assert "holds the current" in blocker.text and "Get-ClientAccessService" in blocker.fix
        assert "--confirm-servers-hold-credential" in blocker.fix
        assert not any(c.action == "add-spns" for c in plan.changes)
        before = state(target)
        with pytest.raises(WizardError, match="blocking prerequisite"):
            Executor(target.directory, None, journal).apply(plan)
        assert state(target) == before and journal.events() == []  # nothing changed, nothing written

        answers.spns.confirm_servers_hold_credential = True
        plan = build_plan(env, answers, target.label)
        assert not plan.blockers
        (met,) = [p for p in plan.prerequisites if "extra.contoso.com" in p.text]
        assert met.status == "met" and "Confirmed by the user" in met.text
        (add,) = [c for c in plan.changes if c.id == "spn.add:HTTP/extra.contoso.com"]
        assert "confirmation" in (add.warning or "")
        result = Executor(target.directory, None, journal).apply(plan)
        assert result.ok and "spn.add:HTTP/extra.contoso.com" in result.done
        assert target.directory.get_account("E15ASA$").has_spn("HTTP/extra.contoso.com")
        undone = Executor(target.directory, None, Journal.open(journal.path)).undo()
        assert not undone.failed
        assert state(target) == before
    finally:
        target.close()


def test_gaining_aes_is_not_planned_without_the_servers_that_roll_the_password():
    target = open_lab("rc4-only")
    try:
        answers = directory_only("rc4-only")
        plan = build_plan(env_without_servers(target, answers), answers, target.label)
    finally:
        target.close()
    assert not any(c.id == "asa.enctypes" for c in plan.changes)
    (pre,) = [p for p in plan.prerequisites if "gains AES" in p.text]
    assert pre.status == "unmet" and "together" in pre.text


def test_a_server_that_cannot_be_read_is_unknown_never_holding_nothing():
    target = open_lab("new-server-missing-asa")
    try:
        answers = answers_for("new-server-missing-asa")
        names = [s.name for s in target.lab.scenario.servers]
        target.lab.exchange.server(names[0]).fault = "unreachable"
        plan = plan_on(target, answers)
    finally:
        target.close()
    blockers = [b for b in plan.blockers if names[0] in b.text]
    assert blockers and "unknown" in blockers[0].text and "--no-exchange" in blockers[0].fix
    # no new password because "nobody holds it": the unknown server may hold the current one
    assert not any(c.action == "roll-generate" for c in plan.changes)
    assert not any(c.target == names[0] for c in plan.changes if c.action.startswith("roll"))


def test_new_encryption_types_and_the_password_roll_are_one_group():
    target = open_lab("rc4-only")
    try:
        plan = plan_on(target, answers_for("rc4-only"))
    finally:
        target.close()
    grouped = [c.id for c in plan.changes if c.params.get("group") == KEYS_GROUP]
    assert "asa.enctypes" in grouped and any(i.startswith("rollout.generate:") for i in grouped)


def test_when_the_roll_fails_the_new_encryption_types_are_put_back(journal):
    target = open_lab("rc4-only")
    try:
        answers = answers_for("rc4-only")
        plan = plan_on(target, answers)
        generate = next(c for c in plan.changes if c.action == "roll-generate")
        before = target.directory.get_account("EXASA$").enctypes
        target.lab.exchange.server(generate.target).fault = "fail-roll"
        result = Executor(target.directory, target.exchange, journal).apply(plan)
        assert generate.id in result.failed
        assert "asa.enctypes" in result.failed and "put back" in result.failed["asa.enctypes"]
        assert "asa.enctypes" not in result.done
        assert target.directory.get_account("EXASA$").enctypes == before
        states = {s.change.id: s.state for s in summarize(journal.events())}
        assert states["asa.enctypes"] == "undone"
    finally:
        target.close()


def test_when_the_roll_cannot_start_nothing_of_the_group_starts(journal):
    target = open_lab("rc4-only")
    try:
        plan = plan_on(target, answers_for("rc4-only"))
        generate = next(c for c in plan.changes if c.action == "roll-generate")
        before = state(target)
        result = Executor(target.directory, Unreadable(target.exchange, generate.params["server"]),
                          journal).apply(plan)
        grouped = {c.id for c in plan.changes if c.params.get("group") == KEYS_GROUP}
        assert grouped <= set(result.failed) | set(result.skipped)
        assert all("together or not at all" in result.failed[c] for c in grouped if c in result.failed)
        assert not result.done
        assert state(target) == before
    finally:
        target.close()
