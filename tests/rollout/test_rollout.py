"""The rollout engine against the lab through the real WinRM adapter (pywinrm over loopback HTTPS)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from asa_wizard.core.journal import Journal, summarize
from asa_wizard.core.model import AccountKind
from asa_wizard.core.rollout import Phase, RolloutRequest, run_rollout, spn_registration_allowed
from asa_wizard.lab.scenario import LabAccount, Scenario, find_scenario, load_scenario
from asa_wizard.lab.world import LabWorld

ASA = "CONTOSO\\EXASA$"


def contoso(count: int = 4, **faults: str) -> Scenario:
    """`fresh` with `count` servers and the ASA created in AD (no server holds it yet)."""
    s = load_scenario(find_scenario("fresh")).with_servers(count)
    for srv in s.servers:
        srv.fault = faults.get(srv.name, "none")
    s.accounts.append(LabAccount(sam="EXASA$", kind=AccountKind.COMPUTER, ou="OU=Service Accounts", enctypes=24))
    s.asa = "EXASA$"
    return s


def request(world: LabWorld, **kw) -> RolloutRequest:
    return RolloutRequest(account=kw.pop("account", ASA), servers=world.truth().servers, **kw)


def pwd_last_set(world: LabWorld, sam: str):
    return lambda: next(a.pwd_last_set for a in world.directory.current_accounts() if a.sam == sam)


def test_fresh_generate_then_copy(world_of, tmp_path):
    w = world_of(contoso(2))
    journal = Journal.create(tmp_path)
    events = []
    report = run_rollout(w.exchange_port(), journal, request(w), progress=events.append,
                         pwd_last_set=pwd_last_set(w, "EXASA$"))
    assert report.complete and report.generated and report.source == "EX01"
    assert w.directory.account_key_version("EXASA$") == 2
    servers = {s.name: s for s in w.current_scenario().servers}
    assert servers["EX01"].asa_latest.key_version == servers["EX02"].asa_latest.key_version == 2
    assert report.servers["EX01"].action == "generate" and report.servers["EX02"].action == "copy"
    states = {s.change.id: s.state for s in summarize(journal.events())}
    assert states == {"rollout.generate:EX01": "done", "rollout.copy:EX02": "done"}
    assert [e.phase for e in events if e.server == "EX02"] == [Phase.PENDING, Phase.RUNNING, Phase.DONE,
                                                              Phase.VERIFIED]
    assert events[-1].finished == events[-1].total == 2
    assert report.blocked == []
    assert spn_registration_allowed(report, "mail.contoso.com")[0]


def test_new_server_gets_a_copy_without_a_new_password(world_of, tmp_path):
    w = world_of(load_scenario(find_scenario("new-server-missing-asa")))
    report = run_rollout(w.exchange_port(), Journal.create(tmp_path),
                         request(w, account="TAILSPINTOYS\\E15ASA$", source="Exch-2016"),
                         pwd_last_set=pwd_last_set(w, "E15ASA$"))
    assert report.complete and not report.generated
    assert w.directory.account_key_version("E15ASA$") == 2
    assert w.current_scenario().server("Exch-2019").asa_latest.key_version == 2
    assert all("GenerateNewPasswordFor" not in s for s in w.exchange.received)
    env_after = w.truth()
    env_after.asa_sam = "E15ASA$"
    assert spn_registration_allowed(env_after, "mail.tailspintoys.ca")[0]


def test_copy_from_a_stale_source_is_refused(world_of, tmp_path):
    w = world_of(load_scenario(find_scenario("stale-credential")))
    stale = next(s.name for s in w.scenario.servers if s.asa_latest.key_version == 3)
    report = run_rollout(w.exchange_port(), Journal.create(tmp_path),
                         request(w, account="CONTOSO\\EXASA$", source=stale), pwd_last_set=pwd_last_set(w, "EXASA$"))
    assert not report.complete
    assert all(p.phase == Phase.SKIPPED for p in report.servers.values())
    assert "does not hold the current" in next(iter(report.servers.values())).reason


def test_failure_midway_then_resume_without_a_new_password(world_of, tmp_path):
    w = world_of(contoso(4, EX03="fail-roll"))
    port = w.exchange_port()
    journal = Journal.create(tmp_path)
    first = run_rollout(port, journal, request(w, concurrency=2), pwd_last_set=pwd_last_set(w, "EXASA$"))
    assert first.in_phase(Phase.VERIFIED) == ["EX01", "EX02", "EX04"]
    assert first.in_phase(Phase.FAILED) == ["EX03"]
    assert "propagating credentials" in first.servers["EX03"].reason
    assert any("EX03" in b and "SPN" in b for b in first.blocked)
    assert spn_registration_allowed(first, "mail.contoso.com") == (
        False, "Not yet: EX03 do not hold the verified credential for mail.contoso.com.")
    states = {s.change.id: s.state for s in summarize(journal.events())}
    assert states["rollout.copy:EX03"] == "failed" and states["rollout.copy:EX04"] == "done"
    assert w.directory.account_key_version("EXASA$") == 2

    w.exchange.server("EX03").fault = "none"  # the admin fixed the server
    resumed = run_rollout(port, Journal.open(journal.path), request(w, concurrency=2),
                          pwd_last_set=pwd_last_set(w, "EXASA$"))
    assert resumed.complete and not resumed.generated
    assert w.directory.account_key_version("EXASA$") == 2  # AD rolled once over both runs
    generates = [s for s in w.exchange.received if "-GenerateNewPasswordFor $Account" in s]
    assert len(generates) == 1
    copies_in_resume = [s for s in w.exchange.received[-4:] if "-CopyFrom $Source" in s]
    assert len(copies_in_resume) == 1  # only EX03; the others were re-read, not copied again


def test_unreachable_server_from_the_start(world_of, tmp_path):
    w = world_of(contoso(3, EX01="unreachable"))
    report = run_rollout(w.exchange_port(), Journal.create(tmp_path), request(w))
    assert report.source == "EX02"  # the first reachable server took the generate
    assert report.servers["EX01"].phase == Phase.FAILED
    assert "refused" in report.servers["EX01"].reason
    assert report.in_phase(Phase.VERIFIED) == ["EX02", "EX03"]
    assert not spn_registration_allowed(report, "mail.contoso.com")[0]


def test_failed_generate_blocks_every_copy(world_of, tmp_path):
    w = world_of(contoso(3, EX01="access-denied"))
    journal = Journal.create(tmp_path)
    report = run_rollout(w.exchange_port(), journal, request(w))
    assert report.servers["EX01"].phase == Phase.FAILED
    assert "Reset Password" in report.servers["EX01"].fix
    assert report.in_phase(Phase.SKIPPED) == ["EX02", "EX03"]
    assert not any("-CopyFrom $Source" in s for s in w.exchange.received)
    assert w.directory.account_key_version("EXASA$") == 1


def test_interrupted_generate_is_decided_by_rereading(world_of, tmp_path):
    w = world_of(contoso(3))
    real = w.exchange_port()

    class Crash(BaseException):
        pass

    class CrashAfterGenerate:
        """The wizard dies after the script ran but before the journal recorded it."""

        def __getattr__(self, name):
            return getattr(real, name)

        def roll_generate(self, server, account):
            real.roll_generate(server, account)
            raise Crash()

    journal = Journal.create(tmp_path)
    with pytest.raises(Crash):
        run_rollout(CrashAfterGenerate(), journal, request(w))
    assert [s.state for s in summarize(journal.events())] == ["interrupted"]
    report = run_rollout(real, Journal.open(journal.path), request(w), pwd_last_set=pwd_last_set(w, "EXASA$"))
    assert report.complete and report.source == "EX01" and not report.generated
    assert w.directory.account_key_version("EXASA$") == 2


def test_cancellation_finishes_running_servers_and_resumes(world_of, tmp_path):
    s = contoso(4)
    for srv in s.servers:
        srv.fault, srv.slow_seconds = "slow", 0.2
    w = world_of(s)
    port = w.exchange_port()
    cancel = threading.Event()

    def on_event(e):
        if e.phase == Phase.VERIFIED and e.server == "EX02":
            cancel.set()

    journal = Journal.create(tmp_path)
    first = run_rollout(port, journal, request(w, concurrency=1), progress=on_event, cancel=cancel)
    assert first.cancelled
    assert first.in_phase(Phase.VERIFIED) == ["EX01", "EX02"]
    assert first.in_phase(Phase.PENDING) == ["EX03", "EX04"]
    assert {s.change.id for s in summarize(journal.events())} == {"rollout.generate:EX01", "rollout.copy:EX02"}
    second = run_rollout(port, Journal.open(journal.path), request(w, concurrency=4))
    assert second.complete and not second.generated
    assert w.directory.account_key_version("EXASA$") == 2


def test_secrets_absent_from_journal_and_wire(world_of, tmp_path):
    w = world_of(contoso(2))
    _, admin_password = w.exchange.current_credentials()
    journal = Journal.create(tmp_path)
    report = run_rollout(w.exchange_port(), journal, request(w))
    assert report.complete
    text = Path(journal.path).read_text()
    for ev in journal.events():
        json.dumps(ev.change)
    assert admin_password not in text
    assert all(admin_password not in s for s in w.exchange.received)
    assert all(admin_password not in line for _, line in w.endpoint.command_lines)
    assert all(admin_password not in (p.log_excerpt + p.reason) for p in report.servers.values())
    change = summarize(journal.events())[0].change
    assert change.commands == ["Set-Location $exscripts", ".\\RollAlternateServiceAccountPassword.ps1 "
                               "-ToSpecificServers 'ex01.contoso.com' -GenerateNewPasswordFor 'CONTOSO\\EXASA$'"]


def test_spn_gate_from_an_environment(world_of):
    w = world_of(load_scenario(find_scenario("new-server-missing-asa")))
    env = w.truth()
    allowed, reason = spn_registration_allowed(env, "mail.tailspintoys.ca")
    assert not allowed and "Exch-2019 (does not hold E15ASA$)" in reason
