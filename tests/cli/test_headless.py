"""The headless commands as a user (or a CI job) runs them: in a subprocess, without textual, with the exit
codes, outputs and files the documentation promises, and never a password in any of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asa_wizard.lab.scenario import list_scenarios, load_scenario, find_scenario
from asa_wizard.resources import assets_dir

GOLDEN = assets_dir().parent / "tests" / "golden"
RUNNER = ("import sys\nfrom asa_wizard.cli import main\nrc = main(sys.argv[1:])\n"
          "assert 'textual' not in sys.modules, 'a headless command imported textual'\nsys.exit(rc)\n")


def run(data_dir: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        prelude: str = "") -> subprocess.CompletedProcess:
    """The command in a subprocess with a clean environment (plus `env`); `prelude` runs before it."""
    environ = {"PATH": "/usr/bin:/bin", "COLUMNS": "160", "TERM": "dumb", "ASA_WIZARD_DATA_DIR": str(data_dir),
               "HOME": str(data_dir), "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})}
    return subprocess.run([sys.executable, "-c", prelude + RUNNER, *args], capture_output=True, text=True,
                          timeout=120, env=environ, input=stdin if stdin is not None else "", cwd=str(data_dir))


def worst_per_check(doc: dict) -> dict[str, str]:
    rank = {"warn": 1, "fail": 2}
    out: dict[str, str] = {}
    for f in doc["findings"]:
        if f["status"] in rank and rank[f["status"]] > rank.get(out.get(f["id"], ""), 0):
            out[f["id"]] = f["status"]
    return out


@pytest.mark.parametrize("scenario", [s.name for s in list_scenarios()])
def test_check_finds_what_each_scenario_describes(scenario, tmp_path):
    r = run(tmp_path, "check", "--lab", scenario, "--format", "json")
    expected = load_scenario(find_scenario(scenario)).expected_findings
    doc = json.loads(r.stdout)
    assert worst_per_check(doc) == expected
    want = 2 if "fail" in expected.values() else 1 if expected else 0
    assert r.returncode == want == doc["summary"]["exit_code"], r.stderr


def test_check_text_is_a_table_grouped_by_area(tmp_path):
    r = run(tmp_path, "check", "--lab", "stale-credential")
    assert r.returncode == 2
    for area in ("Alternate service account", "Credential rollout", "Kerberos proof"):
        assert area in r.stdout
    assert "EX02" in r.stdout and "CopyFrom" in r.stdout
    assert "Reading Lab: stale-credential" in r.stderr  # progress goes to stderr


def test_check_could_not_run_is_exit_3(tmp_path):
    r = run(tmp_path, "check", "--lab", "no-such-scenario")
    assert r.returncode == 3 and "no such scenario" in r.stderr and "Traceback" not in r.stderr
    r = run(tmp_path, "check")
    assert r.returncode == 3 and "no target" in r.stderr


@pytest.mark.parametrize("name", ["fresh", "fresh-with-seg", "new-server-missing-asa"])
def test_plan_matches_the_reviewed_golden_runbook(name, tmp_path):
    r = run(tmp_path, "plan", "--answers", str(GOLDEN / f"answers-{name}.toml"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == (GOLDEN / f"plan-{name}.md").read_text(encoding="utf-8")


def test_plan_with_a_blocker_exits_1_and_says_why(tmp_path):
    answers = tmp_path / "a.toml"
    answers.write_text('[target]\nlab = "duplicate-spn"\n[asa]\nname = "EXASA$"\n')
    r = run(tmp_path, "plan", "--answers", str(answers), "--format", "html", "--out", str(tmp_path / "p.html"))
    assert r.returncode == 1 and "blocking" in r.stderr
    assert "Blocking: not met." in (tmp_path / "p.html").read_text()


def test_malformed_answers_are_rejected_with_file_line_and_field(tmp_path):
    answers = tmp_path / "bad.toml"
    answers.write_text('[target]\nlab = "fresh"\n[asa]\nmode = "create"\nname = "EXASA$"\nenctypes = 7\n')
    r = run(tmp_path, "plan", "--answers", str(answers))
    assert r.returncode == 3
    assert f"{answers}, line 6, field 'asa.enctypes'" in " ".join(r.stderr.split())


def test_apply_refuses_without_yes_when_no_one_can_confirm(tmp_path):
    r = run(tmp_path, "apply", "--answers", str(GOLDEN / "answers-fresh.toml"))
    assert r.returncode == 3 and "--yes" in r.stderr
    assert not list(tmp_path.glob("journals/*.jsonl"))  # nothing was started


def test_apply_then_check_report_undo_and_no_secret_anywhere(tmp_path):
    password = load_scenario(find_scenario("fresh-with-seg")).admin_password
    applied = run(tmp_path, "apply", "--answers", str(GOLDEN / "answers-fresh-with-seg.toml"), "--yes", "--then-check")
    assert applied.returncode == 0, applied.stderr
    assert "0 failed" in applied.stdout and "[17/17]" in applied.stderr
    (journal,) = (tmp_path / "journals").glob("*.jsonl")
    assert f"Journal: {journal}" in applied.stdout

    rep1 = run(tmp_path, "report", "--journal", str(journal), "--out", str(tmp_path / "r1.md"))
    rep2 = run(tmp_path, "report", "--journal", str(journal), "--out", str(tmp_path / "r2.md"))
    html = run(tmp_path, "report", "--journal", str(journal), "--format", "html", "--out", str(tmp_path / "r.html"))
    assert rep1.returncode == rep2.returncode == html.returncode == 0, rep1.stderr
    report = (tmp_path / "r1.md").read_text()
    assert report == (tmp_path / "r2.md").read_text()  # same input, same bytes
    assert "Changes: 17 recorded (17 done)" in report and "Every check passed." in report

    shown = run(tmp_path, "undo", "--journal", str(journal), stdin="")
    assert shown.returncode == 3 and "Undo, newest first" in shown.stderr
    # the last step's changes first (its servers' changes ran side by side, so either server may come first), the
    # account's creation last
    first, last = shown.stderr.index("   1. ActiveSync on EX0"), shown.stderr.index("17. Create the computer account")
    assert first < last
    undone = run(tmp_path, "undo", "--journal", str(journal), "--yes")
    assert undone.returncode == 0, undone.stderr

    plan = run(tmp_path, "plan", "--answers", str(GOLDEN / "answers-fresh-with-seg.toml"), "--format", "json")
    artefacts = [applied.stdout, applied.stderr, rep1.stderr, shown.stderr, undone.stdout, undone.stderr,
                 plan.stdout, journal.read_text(), report, (tmp_path / "r.html").read_text()]
    for text in artefacts:
        assert password not in text


def test_interrupted_apply_then_resume(tmp_path):
    """A server fails mid-rollout: apply exits 2 and says how to resume; resume (after the fix) finishes."""
    scenario = (find_scenario("new-server-missing-asa")).read_text()
    broken = scenario.replace('fqdn = "exch-2019.tailspintoys.ca"', 'fqdn = "exch-2019.tailspintoys.ca"\n'
                              'fault = "fail-roll"')
    assert broken != scenario
    lab = tmp_path / "flaky.toml"
    lab.write_text(broken)
    answers = tmp_path / "a.toml"
    answers.write_text(f'[target]\nlab = "{lab}"\n[asa]\nname = "E15ASA$"\n')
    applied = run(tmp_path, "apply", "--answers", str(answers), "--yes")
    assert applied.returncode == 2
    assert "Failed: rollout.copy:Exch-2019" in applied.stderr and "asa-wizard resume --journal" in applied.stderr
    lab.write_text(scenario)  # the server is repaired
    resumed = run(tmp_path, "resume")  # the newest unfinished journal
    assert resumed.returncode == 0, resumed.stderr
    assert "1 done" in resumed.stderr
    again = run(tmp_path, "resume")
    assert again.returncode == 3 and "no suitable journal" in again.stderr


def test_apply_rolls_out_through_the_engine(tmp_path):
    """`apply` hands the credential rollout to the rollout engine: one new password pushed to every server, the
    AD password reset once after the last push, every server verified, and the journal records what each server
    holds and what undo does there. (The bound on pushes in flight is tested in tests/rollout.)"""
    scenario = find_scenario("fresh").read_text()
    for n in (3, 4):
        scenario += f'\n[[servers]]\nname = "EX0{n}"\nversion = "Version 15.2 (Build 1544.4)"\n' \
                    'roles = ["Mailbox", "ClientAccess"]\n'
    scenario = scenario.replace('roles = ["Mailbox", "ClientAccess"]\n',
                                'roles = ["Mailbox", "ClientAccess"]\nfault = "slow"\nslow_seconds = 0.3\n')
    lab = tmp_path / "four.toml"
    lab.write_text(scenario)
    answers = tmp_path / "a.toml"
    answers.write_text(f'[target]\nlab = "{lab}"\n[asa]\nmode = "create"\nname = "EXASA$"\n[rollout]\n'
                       'concurrency = 2\n[client_auth]\noutlook_anywhere = false\nmapi = false\n')
    r = run(tmp_path, "apply", "--answers", str(answers), "--yes")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("[")]
    pushes = [n for n, line in enumerate(lines) if "done" in line.split()[1]
              and ("and push it to" in line or "Push the new" in line)]
    reset = next(n for n, line in enumerate(lines) if "done" in line.split()[1] and "Reset the password" in line)
    assert len(pushes) == 4 and max(pushes) < reset  # AD changes once, after every server holds the new password
    for n in (1, 2, 3, 4):
        assert f"EX0{n} holds the current CONTOSO\\EXASA$ password" in r.stderr  # the engine's verification
    (journal,) = (tmp_path / "journals").glob("*.jsonl")
    done = [json.loads(line) for line in journal.read_text().splitlines() if '"event": "done"' in line]
    rolls = {e["change"]["target"]: e for e in done if e["change"]["step"] == "rollout"
             and e["change"]["system"] == "exchange"}
    assert sorted(rolls) == ["EX01", "EX02", "EX03", "EX04"]
    (reset,) = [e for e in done if e["change"]["id"] == "rollout.ad-password"]
    assert reset["seq"] > max(e["seq"] for e in rolls.values())  # AD after every push
    assert rolls["EX04"]["undo"] == {"server": "ex04.contoso.com", "remove": True}
    assert rolls["EX04"]["change"]["new"]["account"] == "CONTOSO\\EXASA$"


# --- a real domain controller ------------------------------------------------------------------------------
@pytest.fixture
def samba_asa(samba_dc, unique_name):
    """A computer account in the Samba DC to name as the ASA (no SPN: the shared namespace SPNs stay untouched)."""
    name = unique_name("asa")
    conn = samba_dc.admin_connection()
    dn = f"CN={name},CN=Computers,{samba_dc.base_dn}"
    conn.add(dn, ["top", "person", "organizationalPerson", "user", "computer"],
             {"sAMAccountName": f"{name}$", "userAccountControl": "4096", "msDS-SupportedEncryptionTypes": "24"})
    assert conn.result["result"] == 0, conn.result
    yield f"{name}$"
    conn.delete(dn)
    conn.unbind()


def check_samba(samba_dc, tmp_path, asa, *extra: str, prelude: str = "") -> subprocess.CompletedProcess:
    return run(tmp_path, "check", "--dc", samba_dc.host, "--dc-tls-name", samba_dc.tls_name, "--ca-file",
               str(samba_dc.ca_file), "--user", samba_dc.admin_upn, "--asa", asa, "--no-exchange", *extra,
               prelude=prelude, env={"ASA_WIZARD_LDAP_PASSWORD": samba_dc.admin_password.reveal(),
                                     "KRB5_CONFIG": str(samba_dc.krb5_conf),
                                     "KRB5CCNAME": f"FILE:{tmp_path / 'ccache'}"})


def test_check_a_real_dc_without_exchange(samba_dc, samba_asa, tmp_path):
    """LDAPS with the DC's CA, no WinRM: the directory checks and the KDC's answer for the namespace SPN run;
    what needs the Exchange servers is skipped, saying so."""
    pytest.importorskip("gssapi")
    r = check_samba(samba_dc, tmp_path, samba_asa, "--format", "json")
    assert r.returncode == 2, r.stderr  # the autodiscover name has no SPN: a failure
    doc = json.loads(r.stdout)
    found = {(f["id"], f["subject"]): f for f in doc["findings"]}
    assert found[("asa.exists", samba_asa)]["status"] == "pass"
    assert found[("asa.enctypes", samba_asa)]["status"] == "pass"
    spn = found[("spn.present", "autodiscover.contoso.lab")]
    assert spn["status"] == "fail" and "No account in the forest holds HTTP/autodiscover.contoso.lab" in \
        spn["evidence"]
    ticket = next(f for f in doc["findings"] if f["id"] == "kerberos.ticket")  # the KDC really was asked
    assert ticket["status"] == "fail" and "HTTP/autodiscover.contoso.lab" in ticket["subject"] + ticket["evidence"]
    assert "PRINCIPAL_UNKNOWN" in ticket["evidence"] + ticket["reason"]
    for cid in ("rollout.coverage", "auth.mapi", "kerberos.server", "spn.order"):
        (f,) = [f for f in doc["findings"] if f["id"] == cid]
        assert f["status"] == "skipped" and "--no-exchange" in f["skipped_reason"]
    assert samba_dc.admin_password.reveal() not in r.stdout + r.stderr


def test_check_without_gssapi_says_how_to_install_it(samba_dc, samba_asa, tmp_path):
    r = check_samba(samba_dc, tmp_path, samba_asa, "--only", "kerberos", "--format", "json",
                    prelude="import sys\nsys.modules['gssapi'] = None\n")
    assert r.returncode == 0, r.stderr  # nothing failed: nothing could run
    reasons = {f["id"]: f["skipped_reason"] for f in json.loads(r.stdout)["findings"]}
    assert "pip install 'asa-wizard[kerberos]'" in reasons["kerberos.ticket"]
    assert "--no-exchange" in reasons["kerberos.server"]


def test_the_checks_skipped_by_target_options_are_in_the_catalogue():
    """--no-exchange and a missing python-gssapi name checks by id: a renamed check must not slip through."""
    from asa_wizard.core.checks import CHECKS
    from asa_wizard.headless_cli import EXCHANGE_CHECKS, KERBEROS_CHECKS

    assert set(EXCHANGE_CHECKS) | set(KERBEROS_CHECKS) <= set(CHECKS)
    assert {c for c in CHECKS if c.startswith("kerberos.")} | {"ep.channel-binding"} == set(KERBEROS_CHECKS)


@pytest.mark.parametrize("name", ["new-server-missing-asa", "fresh"])
def test_the_report_counts_the_same_checks_before_and_after_and_names_its_clock(name, tmp_path):
    applied = run(tmp_path, "apply", "--answers", str(GOLDEN / f"answers-{name}.toml"), "--yes")
    assert applied.returncode == 0, applied.stderr
    (journal,) = (tmp_path / "journals").glob("*.jsonl")
    as_json = run(tmp_path, "report", "--journal", str(journal), "--format", "json", "--out", str(tmp_path / "r.json"))
    as_md = run(tmp_path, "report", "--journal", str(journal), "--out", str(tmp_path / "r.md"))
    assert as_json.returncode == as_md.returncode == 0, as_json.stderr + as_md.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    before_ids = {r["id"] for r in doc["before"]}
    after_ids = {r["id"] for r in doc["after"]}
    assert before_ids == after_ids  # the same catalogue on both sides...
    checks = doc["checks"]
    assert checks["before"]["total"] == checks["after"]["total"] == len(after_ids)
    assert checks["not_run_before"] == checks["not_run_after"] == []
    assert sum(checks["after"][s] for s in ("pass", "warn", "fail", "skipped")) == len(after_ids)
    md = (tmp_path / "r.md").read_text()
    n = len(after_ids)
    assert f"Now: {n} checks: " in md and f"Before: {n} checks: " in md  # ...counted the same way
    assert "Not run" not in md

    # one clock: the journal's (this machine's, UTC), said so; the lab's own dates are labelled as the lab's
    times = [e["ts"] for e in map(json.loads, journal.read_text().splitlines())]
    assert doc["generated_at"] in times and "lab time" not in md
    assert {c["when"] for c in doc["changes"]} <= set(times)
    assert "- Times (generated, and when each change was made) are this machine's clock in UTC" in md
    assert "scenario's own fixed clock" in md and "| When (UTC, this machine) |" in md
