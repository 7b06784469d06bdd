"""What keeps the cost of a run linear in the number of servers, tested for behaviour (timings live in
benchmarks/bench_scale.py): discovery issues each directory search once, and as many for 20 servers as for 2;
the lab's indexed filters answer exactly as the mock's own evaluation; the report of a run renders from what
the run recorded, without opening the target, with the findings it recorded."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pytest
from ldap3 import MOCK_SYNC, SUBTREE, Connection

from asa_wizard import headless_cli
from asa_wizard.core.changes import Change
from asa_wizard.core.discovery import DiscoveryOptions, discover
from asa_wizard.core.errors import WizardError
from asa_wizard.core.journal import Journal, read_events
from asa_wizard.core.report import FINDINGS_KEY, recorded_findings
from asa_wizard.lab.scenario import find_scenario, load_scenario
from asa_wizard.resources import assets_dir

GOLDEN = assets_dir().parent / "tests" / "golden"


# --- discovery: each search once ---------------------------------------------------------------------------
def recorded_discovery(world_of, servers: int) -> tuple[list[tuple], object]:
    """Discovery of the healthy organisation grown to `servers`, through the real adapter whose connections
    record every search they send (first pages only: a paged search is one search)."""
    world = world_of(load_scenario(find_scenario("healthy")).with_servers(servers))
    searches: list[tuple] = []
    teach = world.directory._teach_ad

    def recording(conn: Connection) -> None:
        teach(conn)
        plain = conn.search

        def search(base, flt, scope=SUBTREE, **kw):
            if not kw.get("paged_cookie"):
                searches.append((conn.server.port, base.lower(), flt, scope, tuple(kw.get("attributes") or ())))
            return plain(base, flt, scope, **kw)

        conn.search = search

    world.directory._teach_ad = recording
    env = discover(world.directory_port(), world.exchange_port(), DiscoveryOptions(asa_sam="EXASA$"))
    return searches, env


def test_discovery_issues_each_search_once_and_no_more_for_more_servers(world_of):
    small, env_small = recorded_discovery(world_of, 2)
    large, env_large = recorded_discovery(world_of, 20)
    for searches in (small, large):
        repeated = {s: n for s, n in Counter(searches).items() if n > 1}
        assert not repeated, repeated
        assert not any("description=" in s[2].lower() for s in searches)  # no unindexed substring scan
    assert len(large) == len(small)  # the servers' accounts and SPNs are fetched in batches, not one by one
    # and what it found is complete: every server, its computer account, the ASA once
    assert len(env_large.servers) == 20
    sams = [a.sam for a in env_large.accounts]
    assert sams.count("EXASA$") == 1
    assert {f"EX{i:02d}$" for i in range(1, 21)} <= set(sams)
    assert env_large.spn_owners["http/mail.contoso.com"] == [env_large.asa.dn]


# --- the lab directory's indexes --------------------------------------------------------------------------
FILTERS = [
    "(objectClass=user)",
    "(&(objectClass=user)(sAMAccountName=EXASA$))",
    "(&(objectClass=user)(|(sAMAccountName=ex01$)(sAMAccountName=EX03$)(sAMAccountName=nobody)))",
    "(|(servicePrincipalName=http/MAIL.contoso.com)(servicePrincipalName=HOST/ex02.contoso.com))",
    "(servicePrincipalName=*)",
    "(&(objectClass=user)(description=*alternate service account*))",
    "(&(objectClass=serviceConnectionPoint)(keywords=77378F46-2C66-4aa9-A6A6-3E7A48B19596))",
    "(&(objectClass=user)(userAccountControl=4096))",
    "(&(objectClass=user)(!(sAMAccountName=EXASA$)))",
    "(&(objectClass=crossRef)(nETBIOSName=*))",
]


def dns_found(conn: Connection, base: str, flt: str) -> set[str]:
    assert conn.search(base, flt, SUBTREE, attributes=["cn"]), conn.result
    return {e["dn"].lower() for e in conn.response if e.get("type") == "searchResEntry"}


def test_indexed_filters_answer_as_the_mock_evaluates_them_before_and_after_writes(world_of):
    world = world_of(load_scenario(find_scenario("healthy")).with_servers(5))
    lab = world.directory
    indexed = Connection(lab.server, client_strategy=MOCK_SYNC)
    lab._teach_ad(indexed)
    plain = Connection(lab.server, client_strategy=MOCK_SYNC)  # the mock's own evaluation, same directory
    indexed.open()
    plain.open()
    base = world.scenario.domain_dn

    def compare() -> None:
        for flt in FILTERS:
            assert dns_found(indexed, base, flt) == dns_found(plain, base, flt), flt

    compare()
    assert dns_found(indexed, base, FILTERS[2]) == {
        f"cn=ex01,cn=computers,{base}".lower(), f"cn=ex03,cn=computers,{base}".lower()}
    port = world.directory_port()
    asa = port.get_account("EXASA$")
    port.remove_spns(asa.dn, ["HTTP/mail.contoso.com"])
    port.add_spns(port.get_account("EX02$").dn, ["HTTP/mail.contoso.com"])
    compare()  # the index was dropped by the writes: the new owner is found, the old one is not
    assert dns_found(indexed, base, FILTERS[3]) == {f"cn=ex02,cn=computers,{base}".lower()}


# --- the report of a run from its record --------------------------------------------------------------------
def apply_fresh(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    args = argparse.Namespace(answers=str(GOLDEN / "answers-fresh.toml"), lab=None, yes=True,
                              journal_dir=str(tmp_path / "journals"), then_check=False)
    assert headless_cli.cmd_apply(args) == 0
    (journal,) = (tmp_path / "journals").glob("*.jsonl")
    return journal


def report_args(journal: Path, out: Path, recheck: bool = False) -> argparse.Namespace:
    return argparse.Namespace(journal=str(journal), format="json", out=str(out), recheck=recheck)


def statuses(rows: list[dict]) -> dict[tuple[str, str], str]:
    return {(r["id"], r["subject"]): r["status"] for r in rows}


def test_report_renders_from_the_record_without_opening_the_target(tmp_path, monkeypatch):
    journal = apply_fresh(tmp_path, monkeypatch)
    events = list(read_events(journal))
    note = recorded_findings(events)
    assert note is not None and note.seq == events[-1].seq  # written after the run's last change
    recorded = note.data[FINDINGS_KEY]

    def no_target(*args, **kwargs):
        raise AssertionError("the report opened the target")

    with monkeypatch.context() as m:
        m.setattr("asa_wizard.service.operations.open_target", no_target)
        m.setattr("asa_wizard.target.open_lab", no_target)
        assert headless_cli.cmd_report(report_args(journal, tmp_path / "r.json")) == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["after"] == recorded["after"]  # the findings the run recorded, as recorded
    assert doc["summary"]["fail"] == 0 and doc["summary"]["pass"] > 0
    before = next(e for e in events if e.event == "run-start").data["target"]["before"]
    assert doc["before"] == before and any(r["status"] == "fail" for r in before)
    done = [e for e in events if e.event == "done"]
    planned = next(e for e in events if e.event == "run-start").data["plan"]["changes"]
    assert len(doc["changes"]) == len(done) == len(planned) >= 10 and {c["state"] for c in doc["changes"]} == {"done"}
    assert doc["environment"]["asa"] == "EXASA$"
    assert [s["name"] for s in doc["environment"]["servers"]] == ["EX01", "EX02"]
    assert doc["target"] == recorded["target"] and "fresh" in doc["target"]

    # re-checking is explicit, and on the lab it finds what the run recorded
    assert headless_cli.cmd_report(report_args(journal, tmp_path / "again.json", recheck=True)) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert statuses(again["after"]) == statuses(recorded["after"])


def test_a_record_older_than_the_last_change_is_not_reported(tmp_path, monkeypatch):
    journal = apply_fresh(tmp_path, monkeypatch)
    events = list(read_events(journal))
    last_done = next(e for e in reversed(events) if e.event == "done")
    Journal.open(journal).write("undone", Change.from_dict(last_done.change), message="reversed")  # as undo does
    with pytest.raises(WizardError) as info:
        headless_cli.cmd_report(report_args(journal, tmp_path / "r.json"))
    assert "after this journal recorded its findings" in str(info.value) and "--recheck" in info.value.fix
    assert not (tmp_path / "r.json").exists()


def test_a_journal_without_findings_says_to_recheck(tmp_path):
    journal = Journal.create(tmp_path, actor="CONTOSO\\admin", label="apply")
    journal.write("run-start", data={"plan": {"target": "lab", "changes": []}, "target": {}})
    with pytest.raises(WizardError) as info:
        headless_cli.cmd_report(report_args(journal.path, tmp_path / "r.json"))
    assert "records no findings" in str(info.value) and "--recheck" in info.value.fix


def test_a_service_apply_of_one_step_and_its_undo_each_leave_a_record_the_report_renders(tmp_path, monkeypatch):
    """The wizard applies one step at a time through the service: that journal is reported from its record too,
    and an undo records what it left, so the report after it needs no re-check either."""
    from asa_wizard.core.answers import load_answers
    from asa_wizard.core.report import finding_rows
    from asa_wizard.service import apply, journal_report, make_plan, new_journal, open_target, run_checks, undo
    from asa_wizard.service import discover as read

    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    opened = open_target(load_answers(str(GOLDEN / "answers-fresh.toml")))
    try:
        env = read(opened)
        plan = make_plan(opened, env)
        asa_step = [c.id for c in plan.changes if c.step == "asa"]
        assert asa_step and len(asa_step) < len(plan.changes)
        journal = new_journal(opened)
        result = apply(opened, plan, journal, change_ids=asa_step, before=run_checks(opened, env), step="asa")
        assert not result.failed and result.after is not None and not result.record_error
        assert any(a.sam.upper() == "EXASA$" for a in result.env.accounts)  # read after the change
        undone = undo(opened, journal.path)
        assert not undone.failed and undone.after is not None
    finally:
        opened.close()

    def no_target(*args, **kwargs):
        raise AssertionError("the report opened the target")

    monkeypatch.setattr("asa_wizard.service.operations.open_target", no_target)
    events = list(read_events(journal.path))
    notes = [e for e in events if e.event == "note" and FINDINGS_KEY in (e.data or {})]
    assert len(notes) == 2  # one after the apply, one after the undo
    report = journal_report(journal.path)
    assert [(r.id, r.subject, r.status) for r in report.after] == \
        [(r.id, r.subject, r.status) for r in finding_rows(undone.after)]
    exists = {r.status for r in report.after if r.id == "asa.exists"}
    assert exists == {"fail"}  # the account the step created is gone again, as the record after the undo says
    assert {c.state for c in report.changes} == {"undone"} and len(report.changes) == len(asa_step)


def test_the_lab_directory_is_stored_exactly_as_the_mock_would_store_it(monkeypatch):
    """The lab fills its directory without the mock's per-entry parsing; every entry must be the same."""
    from asa_wizard.lab.directory import LabDirectory
    from asa_wizard.lab.scenario import list_scenarios

    for s in list_scenarios():
        fast = dict(LabDirectory(s.copy()).server.dit)
        with monkeypatch.context() as m:
            m.setattr(LabDirectory, "_insert", lambda self, conn, dn, attrs: conn.strategy.add_entry(dn, attrs))
            plain = dict(LabDirectory(s.copy()).server.dit)
        assert list(fast) == list(plain), s.name
        for dn in plain:  # the mock keeps the object classes in a set's order, which is arbitrary
            def normal(entry):
                return {k: sorted(v) if k.lower() == "objectclass" else v for k, v in entry.items()}

            assert list(fast[dn]) == list(plain[dn]), (s.name, dn)
            assert normal(fast[dn]) == normal(plain[dn]), (s.name, dn)
