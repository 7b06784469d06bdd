"""`asa-wizard --help` and `asa-wizard lab list`, as a user runs them."""

from __future__ import annotations

import subprocess
import sys

from asa_wizard.lab.scenario import list_scenarios


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asa_wizard", *args], capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "TERM": "dumb"})


def test_help_lists_the_lab_command():
    r = run("--help")
    assert r.returncode == 0
    assert "usage: asa-wizard" in r.stdout
    assert "lab" in r.stdout


def test_lab_list_shows_every_shipped_scenario_with_its_description():
    r = run("lab", "list")
    assert r.returncode == 0, r.stderr
    scenarios = list_scenarios()
    assert {s.name for s in scenarios} >= {"fresh", "fresh-with-seg", "new-server-missing-asa", "healthy",
                                           "duplicate-spn", "rc4-only", "stale-credential", "seg-kcd"}
    assert [s.name for s in scenarios] == sorted(s.name for s in scenarios)
    shown = [s.name for s in scenarios if s.name in r.stdout.split()]  # whole words: fresh is not fresh-with-seg
    assert shown == [s.name for s in scenarios]
    assert r.stdout.index(" fresh ") < r.stdout.index(" fresh-with-seg ")
    for s in scenarios:
        # the first words of the one-line description are shown beside it
        assert " ".join(s.description.split()[:3]) in r.stdout


def test_unknown_scenario_names_the_problem_and_the_fix():
    r = run("lab", "--scenario", "no-such-thing")
    assert r.returncode == 3
    assert "no such scenario" in r.stderr
    assert "asa-wizard lab list" in r.stderr
    assert "Traceback" not in r.stderr
