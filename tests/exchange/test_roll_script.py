"""Microsoft's RollAlternateServiceAccountPassword.ps1 as the lab models it (run over WinRM on one server): its
order, its second hop, its verdict from the exit code and this run's events 14001-14004."""

from __future__ import annotations

from asa_wizard.core.journal import Journal
from asa_wizard.core.ports import ProbeOutcome, RollOutcome
from asa_wizard.core.rollout import Phase, RolloutRequest, run_rollout
from asa_wizard.lab.scenario import find_scenario, load_scenario

ASA = "CONTOSO\\EXASA$"
SERVERS = ["ex01.contoso.com", "ex02.contoso.com", "ex03.contoso.com"]


def reroll(delegate: bool = True, **faults: str):
    s = load_scenario(find_scenario("reroll-with-spns"))
    s.sessions_can_delegate = delegate
    for srv in s.servers:
        srv.fault = faults.get(srv.name, "none")
    return s


def events_of(world, server="ex01.contoso.com"):
    return [i for i, _ in world.exchange.events.get(server, [])]


def all_accepting(world) -> bool:
    probe = world.kerberos_probe()
    return all(probe.probe_server(s, "mail.contoso.com").outcome == ProbeOutcome.ACCEPTED
               for s in world.truth().servers)


def test_without_delegation_the_second_hop_fails_and_is_named(world_of):
    w = world_of(reroll(delegate=False))
    before = w.directory.account_key_version("EXASA$")
    port = w.exchange_port()
    problems = port.second_hop("ex01.contoso.com", "ex02.contoso.com")
    assert problems and all("second hop" in p for p, _ in problems)
    r = port.roll_with_script("ex01.contoso.com", SERVERS, ASA)
    assert r.outcome == RollOutcome.FAILED
    assert "second hop" in r.message and "Reset Password right is not the cause" in r.message
    assert "CredSSP" in r.fix and "delegation" in r.fix and "natively" in r.fix
    assert w.directory.account_key_version("EXASA$") == before  # AD untouched
    assert all(len(w.exchange.server(n).credentials) == 1 for n in ("EX01", "EX02", "EX03"))  # nothing pushed
    assert events_of(w) == [14001, 14004]
    assert all_accepting(w)


def test_the_engine_refuses_the_script_until_the_hop_is_proven_and_says_how(world_of, tmp_path):
    w = world_of(reroll(delegate=False))
    report = run_rollout(w.exchange_port(), Journal.create(tmp_path),
                         RolloutRequest(ASA, w.truth().servers, method="script"), directory=w.directory_port())
    assert not report.ad_changed and not any(w.exchange.events.values())  # the script never ran
    first = report.servers["EX01"]
    assert first.phase == Phase.FAILED and "second hop" in first.reason and "CredSSP" in first.fix
    assert "Reset Password" not in first.fix


def test_with_delegation_the_script_pushes_everywhere_then_changes_ad_once(world_of, tmp_path):
    w = world_of(reroll(delegate=True))
    before = w.directory.account_key_version("EXASA$")
    report = run_rollout(w.exchange_port(), Journal.create(tmp_path),
                         RolloutRequest(ASA, w.truth().servers, method="script"), directory=w.directory_port())
    assert report.complete, {n: p.reason for n, p in report.servers.items()}
    assert w.directory.account_key_version("EXASA$") == before + 1
    assert events_of(w) == [14001, 14002]
    for n in ("EX01", "EX02", "EX03"):
        creds = w.exchange.server(n).credentials
        assert len(creds) == 2 and w.exchange.credential_valid(creds[0])  # new in front, previous kept
    assert all_accepting(w)


def test_a_failed_push_in_the_script_leaves_ad_alone_and_exits_1(world_of):
    w = world_of(reroll(delegate=True, EX02="fail-roll"))
    before = w.directory.account_key_version("EXASA$")
    r = w.exchange_port().roll_with_script("ex01.contoso.com", SERVERS, ASA)
    assert r.outcome == RollOutcome.FAILED and "propagating credentials" in r.message
    assert "THE SCRIPT HAS FAILED" in r.log_excerpt
    assert w.directory.account_key_version("EXASA$") == before
    assert events_of(w) == [14001, 14004]
    assert all_accepting(w)  # EX01 and EX03 hold a not-yet-valid credential next to the working one


def test_an_earlier_success_is_not_read_as_this_runs(world_of):
    """Events are read from the start of this run: a 14002 of an earlier run does not make a failure a success."""
    w = world_of(reroll(delegate=True))
    port = w.exchange_port()
    assert port.roll_with_script("ex01.contoso.com", SERVERS, ASA).outcome == RollOutcome.SUCCEEDED
    w.exchange.server("EX03").fault = "fail-roll"
    second = port.roll_with_script("ex01.contoso.com", SERVERS, ASA)
    assert second.outcome == RollOutcome.FAILED
    assert events_of(w) == [14001, 14002, 14001, 14004]


def test_the_script_checks_rbac_first(world_of):
    s = reroll()
    s.admin_roles = ["View-Only Organization Management"]
    w = world_of(s)
    r = w.exchange_port().roll_with_script("ex01.contoso.com", SERVERS, ASA)
    assert r.outcome == RollOutcome.FAILED and "Organization Configuration" in r.message
    assert events_of(w) == []  # the RBAC gate comes before event 14001
