"""The catalogue as a whole: its registry, its step map, and what it says about every shipped scenario."""

from __future__ import annotations

import pytest
from catalogue_kit import Lab

from asa_wizard.core.checks import (
    AREAS,
    CHECKS,
    STEP_CHECKS,
    STEPS,
    Status,
    for_step,
    problems,
    run_catalogue,
    summarize,
)
from asa_wizard.core.model import SegConfig
from asa_wizard.lab.scenario import list_scenarios
from asa_wizard.lab.snapshot import environment_from_scenario

ISSUE_IDS = """inventory.servers asa.exists asa.enabled asa.kind asa.password-age asa.enctypes asa.one-per-generation
spn.present spn.owner spn.duplicate spn.order rollout.coverage rollout.current rollout.same-account
rollout.service-host auth.outlook-anywhere auth.mapi auth.namespace-dns kcd.service-account-spn
kcd.protocol-transition kcd.no-unconstrained kcd.target kcd.same-domain kcd.iis-iusrs kcd.eas-auth kcd.ews-auth
kcd.users-delegable kerberos.ticket kerberos.server kerberos.s4u logs.iis-401 logs.httpproxy-auth
logs.krb-ap-err-modified""".split()

SCENARIOS = [s.name for s in list_scenarios()]


def test_every_check_the_issue_names_is_registered_with_metadata():
    assert set(ISSUE_IDS) <= set(CHECKS)
    for c in CHECKS.values():
        assert c.area in AREAS and c.id.startswith(c.area + ".")
        assert c.step in STEPS
        assert c.title and c.summary


def test_every_check_proves_some_step_and_the_step_map_names_only_real_checks():
    named = [cid for ids in STEP_CHECKS.values() for cid in ids]
    assert set(STEP_CHECKS) == set(STEPS)
    assert set(named) <= set(CHECKS)
    assert set(CHECKS) <= set(named)


def test_the_shipped_scenarios_are_all_covered():
    assert {"fresh", "fresh-with-seg", "new-server-missing-asa", "healthy", "duplicate-spn", "rc4-only",
            "stale-credential", "seg-kcd"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_catalogue_finds_exactly_what_the_scenario_says_is_wrong(lab: Lab, name: str):
    s = lab.scenario(name)
    findings = lab.run(s)
    assert problems(findings) == s.expected_findings
    if name == "healthy":
        assert all(f.status in (Status.PASS, Status.SKIPPED) for f in findings)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_fail_and_warn_explains_itself(lab: Lab, name: str):
    for f in lab.run(name):
        if f.status in (Status.FAIL, Status.WARN):
            assert f.evidence and f.reason and f.fix, f
        if f.status == Status.SKIPPED:
            assert f.skipped_reason, f


def test_findings_come_in_catalogue_order_and_are_deterministic(lab: Lab):
    a = lab.run("seg-kcd")
    b = lab.run("seg-kcd")
    assert a == b
    order = list(CHECKS)
    positions = [order.index(f.check_id) for f in a]
    assert positions == sorted(positions)


def test_without_probe_or_logs_those_checks_are_skipped_with_the_reason(lab: Lab):
    findings = lab.run("stale-credential", probe=False)
    status = summarize(findings)
    for cid in ("kerberos.ticket", "kerberos.server", "logs.iis-401", "logs.httpproxy-auth",
                "logs.krb-ap-err-modified"):
        assert status[cid] == Status.SKIPPED
    ticket = next(f for f in findings if f.check_id == "kerberos.server")
    assert "probe" in ticket.skipped_reason
    # the rollout problem is still found from the environment alone
    assert status["rollout.current"] == Status.FAIL


def test_kcd_checks_are_skipped_without_a_gateway(lab: Lab):
    findings = lab.run("healthy")
    # kcd.unconstrained-forest looks at the whole forest, gateway or not
    kcd = [f for f in findings if (f.check_id.startswith("kcd.") and f.check_id != "kcd.unconstrained-forest")
           or f.check_id == "kerberos.s4u"]
    assert kcd and all(f.status == Status.SKIPPED for f in kcd)
    assert all("Secure Email Gateway" in f.skipped_reason for f in kcd)


def test_only_selects_ids_and_areas_and_refuses_unknown_names(lab: Lab):
    findings = lab.run("fresh", only=["spn", "asa.exists"])
    assert {f.check_id for f in findings} == {"asa.exists", "spn.present", "spn.owner", "spn.duplicate", "spn.order"}
    with pytest.raises(ValueError, match="spn.nonsense"):
        lab.run("fresh", only=["spn.nonsense"])


def test_a_probe_port_can_be_passed_directly(lab: Lab):
    s = lab.scenario("stale-credential")
    env = environment_from_scenario(s)
    findings = run_catalogue(env, probe=lab.probe(s), now=s.now)
    assert problems(findings) == s.expected_findings


def test_for_step_returns_the_checks_that_prove_it(lab: Lab):
    findings = lab.run("new-server-missing-asa")
    rollout = for_step(findings, "rollout")
    assert {f.check_id for f in rollout} == set(STEP_CHECKS["rollout"])


# --- through the lab's real adapters ----------------------------------------------------------------------
@pytest.mark.parametrize("name", SCENARIOS)
def test_discovery_through_the_lab_adapters_gives_the_same_verdict(name: str):
    from asa_wizard.core.discovery import DiscoveryOptions, discover
    from asa_wizard.lab.world import LabWorld

    with LabWorld.open(name) as world:
        s = world.scenario
        seg = SegConfig(s.seg.service_account, list(s.seg.test_users), s.seg.ews_proxy) if s.seg else None
        env = discover(world.directory_port(), world.exchange_port(), DiscoveryOptions(asa_sam=s.asa, seg=seg))
        findings = run_catalogue(env, probe=world.kerberos_probe(), now=s.now)
    expected = dict(s.expected_findings)
    got = problems(findings)
    # discovery cannot see DNS record types: auth.namespace-dns is skipped there, never a problem
    assert summarize(findings)["auth.namespace-dns"] == Status.SKIPPED
    assert got == expected


def test_the_catalogue_runs_area_by_area_in_the_documented_order():
    areas = [c.area for c in CHECKS.values()]
    assert sorted(areas, key=AREAS.index) == areas


def test_docs_describe_every_check():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "checks.md").read_text(encoding="utf-8")
    missing = [cid for cid in CHECKS if f"`{cid}`" not in text]
    assert missing == []
