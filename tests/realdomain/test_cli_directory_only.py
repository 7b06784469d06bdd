"""The command-line options of directory-only work, on the lab in a subprocess as a user runs them:
`plan`/`apply`/`undo --no-exchange`, `--confirm-servers-hold-credential`, `check --namespace` and `--test-user`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "COLUMNS": "200",
           "ASA_WIZARD_DATA_DIR": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "asa_wizard", *args], capture_output=True, text=True, timeout=180,
                          check=False, env=env, cwd=str(tmp_path), input="")


ANSWERS = """version = 1
[target]
lab = "new-server-missing-asa"
[asa]
name = "E15ASA$"
[spns]
namespaces = ["extra.contoso.com"]
"""


def test_plan_without_exchange_waits_for_the_confirmation_then_apply_and_undo(tmp_path):
    answers = tmp_path / "contoso.toml"
    answers.write_text(ANSWERS)
    r = run(tmp_path, "plan", "--answers", str(answers), "--no-exchange", "--format", "json")
    assert r.returncode == 1, r.stderr
    plan = json.loads(r.stdout)
    assert not any(c["system"] == "exchange" for c in plan["changes"])
    assert not any(c["id"] == "spn.add:HTTP/extra.contoso.com" for c in plan["changes"])
    (pre,) = [p for p in plan["prerequisites"] if "extra.contoso.com" in p["text"]]
    assert pre["blocking"] and pre["status"] == "unmet" and "--confirm-servers-hold-credential" in pre["fix"]

    r = run(tmp_path, "apply", "--answers", str(answers), "--no-exchange", "--yes")
    assert r.returncode == 3 and "blocking prerequisite" in r.stderr  # never started
    assert not list(tmp_path.rglob("*.jsonl"))  # no journal: nothing was started

    r = run(tmp_path, "plan", "--answers", str(answers), "--no-exchange", "--confirm-servers-hold-credential",
            "--format", "json")
    assert r.returncode == 0, r.stderr
    ids = [c["id"] for c in json.loads(r.stdout)["changes"]]
    assert ids == ["spn.add:HTTP/extra.contoso.com"]

    r = run(tmp_path, "apply", "--answers", str(answers), "--no-exchange", "--confirm-servers-hold-credential",
            "--yes", "--journal-dir", str(tmp_path / "j"))
    assert r.returncode == 0, r.stderr
    (journal,) = (tmp_path / "j").glob("*.jsonl")
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert events[0]["data"]["target"]["no_exchange"] is True
    assert [e["change"]["id"] for e in events if e["event"] == "done"] == ["spn.add:HTTP/extra.contoso.com"]

    r = run(tmp_path, "undo", "--journal", str(journal), "--yes")
    assert r.returncode == 0, r.stderr
    assert "undone" in r.stderr and "setspn -D 'HTTP/extra.contoso.com'" in r.stderr


def test_check_names_namespaces_and_test_users_on_the_command_line(tmp_path):
    r = run(tmp_path, "check", "--lab", "seg-kcd", "--namespace", "extra.contoso.com", "--seg-account", "svc_awseg",
            "--test-user", "alice", "--test-user", "bob", "--format", "json")
    doc = json.loads(r.stdout)
    by = {(f["id"], f["subject"]): f for f in doc["findings"]}
    extra = by[("spn.present", "extra.contoso.com")]
    assert extra["status"] == "fail" and "named in the answers / --namespace" in extra["evidence"]
    assert ("kcd.users-delegable", "alice") in by
    assert by[("kcd.users-delegable", "bob")]["status"] == "fail"  # no such user in the lab


def test_test_users_need_the_gateway_account(tmp_path):
    r = run(tmp_path, "check", "--lab", "seg-kcd", "--test-user", "alice")
    assert r.returncode == 3
    assert "--seg-account" in r.stderr and "Traceback" not in r.stderr
