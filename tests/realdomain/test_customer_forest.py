"""`check`, `plan`, `apply` and `undo` without the Exchange servers against a customer-like forest in a real Samba
AD DC (tests/realdomain/customer_forest.py): every mistake is found, nothing right is called wrong, the directory
changes are planned and applied only after the user's confirmation, and undo puts back every touched attribute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from customer_forest import build, remove

from asa_wizard.adapters.ldap import LdapDirectory, LdapSettings
from asa_wizard.core.answers import parse_answers
from asa_wizard.core.checks import run_catalogue
from asa_wizard.core.discovery import DiscoveryOptions, discover
from asa_wizard.core.errors import ConnectionFailed, WizardError
from asa_wizard.core.executor import Executor
from asa_wizard.core.journal import Journal
from asa_wizard.core.plan import build_plan, discovery_seg

pytestmark = pytest.mark.samba


@pytest.fixture
def forest(samba_dc, unique_name):
    f = build(samba_dc, unique_name("c"))
    try:
        yield f
    finally:
        remove(f)


def run_cli(dc, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "COLUMNS": "160",
           "ASA_WIZARD_DATA_DIR": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path),
           "ASA_WIZARD_LDAP_PASSWORD": dc.admin_password.reveal(), "KRB5_CONFIG": str(dc.krb5_conf),
           "KRB5CCNAME": f"FILE:{tmp_path / 'ccache'}"}
    return subprocess.run([sys.executable, "-m", "asa_wizard", *args], capture_output=True, text=True, timeout=180,
                          check=False, env=env, cwd=str(tmp_path))


def target_args(dc) -> list[str]:
    return ["--dc", dc.host, "--dc-tls-name", dc.tls_name, "--ca-file", str(dc.ca_file), "--user", dc.admin_upn]


def problems(doc: dict) -> dict[tuple[str, str], str]:
    return {(f["id"], f["subject"]): f["status"] for f in doc["findings"] if f["status"] in ("warn", "fail")}


def directory_of(dc) -> LdapDirectory:
    return LdapDirectory(LdapSettings(host=dc.host, user=dc.admin_upn, password=dc.admin_password,
                                      ca_file=str(dc.ca_file), tls_name=dc.tls_name, use_global_catalog=True,
                                      receive_timeout=30))


def test_check_without_exchange_finds_every_mistake_and_nothing_else(samba_dc, forest, tmp_path):
    pytest.importorskip("gssapi")
    f = forest
    ns = f"ns{f.x}.{samba_dc.domain}"
    r = run_cli(samba_dc, tmp_path, "check", *target_args(samba_dc), "--no-exchange", "--seg-account", f.seg,
                "--test-user", f.test_user, "--test-user", f.protected_user, "--namespace", ns, "--format", "json")
    assert r.returncode == 2, r.stderr
    doc = json.loads(r.stdout)
    shared = "autodiscover.contoso.lab"  # the session DC's own EX01/EX02 publish it without an SPN: true failures
    assert problems(doc) == {
        ("asa.enctypes", f.asa): "fail",
        ("spn.present", ns): "fail", ("spn.present", shared): "fail",
        ("spn.owner", f.mail): "fail",
        ("kcd.protocol-transition", f.seg): "fail", ("kcd.no-unconstrained", f.seg): "fail",
        ("kcd.target", f.seg): "fail",
        ("kcd.unconstrained-forest", f.q(f.seg)): "warn", ("kcd.unconstrained-forest", f.q(f.svc)): "warn",
        ("kcd.users-delegable", f.protected_user): "fail",
        ("kerberos.ticket", f.autodiscover): "warn", ("kerberos.ticket", f.mail): "warn",
        ("kerberos.ticket", ns): "fail", ("kerberos.ticket", shared): "fail",
    }
    by = {(x["id"], x["subject"]): x for x in doc["findings"]}
    # nobody named the ASA: discovery found it from the SPNs
    assert by[("asa.exists", f.asa)]["status"] == "pass"
    assert by[("spn.present", f.mail)]["status"] == "pass"  # registered, on the wrong account (spn.owner)
    assert "forest-wide, through the global catalog" in by[("spn.present", f.mail)]["evidence"]
    assert f"Exchange server {f.server_a}" in by[("spn.owner", f.mail)]["evidence"]
    target = by[("kcd.target", f.seg)]
    assert f"{f.stale}: not registered on the ASA (stale" in target["evidence"]
    assert f"HTTP/{f.mail}: registered on {f.q(f.server_a + '$')}" in target["evidence"]
    assert f"-Remove @{{'msDS-AllowedToDelegateTo'='{f.stale}'}}" in target["fix"]
    assert "Protected Users" in by[("kcd.users-delegable", f.protected_user)]["evidence"]
    assert by[("kcd.users-delegable", f.test_user)]["status"] == "pass"
    # the RC4 ticket for the mail name came from server A's key, and the finding says so
    mail_ticket = by[("kerberos.ticket", f.mail)]
    assert f"issued with the key of {f.q(f.server_a + '$')}" in mail_ticket["evidence"]
    assert f"{f.q(f.server_a + '$')}, not the ASA" in mail_ticket["fix"]
    assert f.q(f.asa) in by[("kerberos.ticket", f.autodiscover)]["evidence"]
    assert "Set AES on the ASA" in by[("kerberos.ticket", f.autodiscover)]["fix"]
    assert samba_dc.admin_password.reveal() not in r.stdout + r.stderr


def test_plan_apply_undo_without_exchange(samba_dc, forest, tmp_path):
    f = forest
    answers = parse_answers(f"""version = 1
no_exchange = true
[target]
dc = "{samba_dc.tls_name}"
user = "{samba_dc.admin_upn}"
[asa]
enctypes = 24
[spns]
namespaces = ["{f.mail}", "{f.autodiscover}"]
move_from = ["{samba_dc.netbios}\\\\{f.server_a}$"]
[seg]
service_account = "{f.seg}"
test_users = ["{f.test_user}"]
""")
    before = f.snapshot()
    directory = directory_of(samba_dc)
    try:
        def environment():
            return discover(directory, None, DiscoveryOptions(seg=discovery_seg(answers),
                                                              namespaces=list(answers.spns.namespaces)))

        env = environment()
        assert env.asa_sam == f.asa and "SPN" in env.asa_source
        plan = build_plan(env, answers, "customer")
        assert all(c.system.value == "directory" for c in plan.changes)
        texts = [b.text for b in plan.blockers]
        assert any(f"Every server behind {f.mail}" in t and f.server_a in t and f.server_b in t for t in texts)
        # the RC4-only ASA gains AES only together with the password roll: not in a directory-only plan
        assert any("gains AES" in p.text and p.status == "unmet" for p in plan.prerequisites)
        assert not any(c.action in ("add-spns", "remove-spns") and f.mail in str(c.params) for c in plan.changes)
        journal = Journal.create(tmp_path, actor=samba_dc.admin_upn, label="test")
        with pytest.raises(WizardError, match="blocking prerequisite"):
            Executor(directory, None, journal).apply(plan)
        assert f.snapshot() == before

        answers.spns.confirm_servers_hold_credential = True
        plan = build_plan(env, answers, "customer")
        assert not plan.blockers, [b.text for b in plan.blockers]
        ids = [c.id for c in plan.changes]
        assert ids == [f"spn.remove:HTTP/{f.mail}@{f.server_a}$", f"spn.add:HTTP/{f.mail}", "seg.delegate-to",
                       "seg.protocol-transition"]
        delegate = plan.change("seg.delegate-to")
        assert delegate.new == [f"HTTP/{f.mail}"] and f.stale in delegate.summary
        result = Executor(directory, None, journal).apply(plan)
        assert result.ok and result.done == ids, (result.failed, result.skipped)

        after = run_catalogue(environment(), now=None)
        status = {(x.check_id, x.subject): x.status.value for x in after}
        assert status[("spn.owner", f.mail)] == "pass"
        assert status[("kcd.target", f.seg)] == "pass"
        assert status[("kcd.no-unconstrained", f.seg)] == "pass"
        assert status[("kcd.protocol-transition", f.seg)] == "pass"
        assert ("kcd.unconstrained-forest", f.q(f.seg)) not in status  # fixed; the other service stays listed
        assert status[("kcd.unconstrained-forest", f.q(f.svc))] == "warn"
        changed = f.snapshot()
        assert changed["seg"]["msDS-AllowedToDelegateTo"] == [f"HTTP/{f.mail}"]

        undone = Executor(directory, None, Journal.open(journal.path)).undo()
        assert not undone.failed and sorted(undone.done) == sorted(ids)
        assert f.snapshot() == before
    finally:
        directory.close()


class _Unreachable:
    """WinRM that reaches no server."""

    def describe(self) -> str:
        return "WinRM (unreachable)"

    def read_server(self, server: str):
        raise ConnectionFailed(f"Cannot reach {server} over WinRM (HTTPS 5986).", "Check the firewall.")


def test_unreadable_servers_block_the_plan_instead_of_holding_nothing(samba_dc, forest, tmp_path):
    f = forest
    answers = parse_answers(f'version = 1\n[target]\ndc = "{samba_dc.tls_name}"\nuser = "x@y.z"\n[asa]\nenctypes = 24\n')
    directory = directory_of(samba_dc)
    try:
        env = discover(directory, _Unreachable(), DiscoveryOptions())
        assert all(s.reachable is False and not s.asa_state_known for s in env.servers)
        plan = build_plan(env, answers, "customer")
    finally:
        directory.close()
    blocked = " ".join(b.text for b in plan.blockers)
    assert f.server_a in blocked and f.server_b in blocked and "unknown (not 'none')" in blocked
    assert not any(c.action.startswith("roll") for c in plan.changes)  # no new password "because nobody holds it"
    before = f.snapshot()
    with pytest.raises(WizardError, match="blocking prerequisite"):
        Executor(directory_of(samba_dc), None, Journal.create(tmp_path, actor="t", label="t")).apply(plan)
    assert f.snapshot() == before
