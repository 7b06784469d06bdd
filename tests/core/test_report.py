"""Reports: deterministic, self-contained, escaped, and with the before / after and the journal's changes."""

from __future__ import annotations

import re

from asa_wizard.core.executor import Executor
from asa_wizard.core.journal import Journal
from asa_wizard.core.model import Account, AccountKind
from asa_wizard.core.report import build_report, check_json, finding_rows, render_plan, render_report

from asa_wizard.resources import templates_dir

from .lab_kit import answers_for, env_of, findings, open_lab, plan_on

TEMPLATES = templates_dir()


def run_fresh(tmp_path):
    answers = answers_for("fresh")
    target = open_lab("fresh")
    try:
        before = findings(target, answers)
        journal = Journal.create(tmp_path, actor="CONTOSO\\Administrator")
        Executor(target.directory, target.exchange, journal).apply(plan_on(target, answers))
        env = env_of(target, answers)
        after = findings(target, answers)
    finally:
        target.close()
    return env, before, after, journal


def test_report_is_deterministic_and_complete(tmp_path):
    env, before, after, journal = run_fresh(tmp_path)
    events = journal.events()

    def make():
        return build_report(after=after, env=env, before=before, events=events, target="Lab: fresh",
                            generated_at=events[-1].ts, journal=journal.path.name)

    for fmt in ("markdown", "html", "json"):
        assert render_report(make(), fmt, TEMPLATES) == render_report(make(), fmt, TEMPLATES)
    md = render_report(make(), "markdown", TEMPLATES)
    assert "Now: " in md and "0 failed" in md and "Before: " in md
    assert "| 1 | Create the computer account CONTOSO\\EXASA$" in md
    assert "CONTOSO\\Administrator" in md  # who made the changes
    assert "| EX01 | ex01.contoso.com | Exchange 2019 |" in md
    assert "Every check passed." in md


def test_html_is_self_contained_and_escapes_outside_text(tmp_path):
    env, before, after, journal = run_fresh(tmp_path)
    env.accounts.append(Account(dn="CN=<script>alert(1)</script>,CN=Users,DC=contoso,DC=com", sam="evil<b>",
                                kind=AccountKind.USER, spns=["HTTP/x"]))
    html = render_report(build_report(after=after, env=env, events=journal.events(), target="<i>lab</i>",
                                      generated_at="2026-03-02T09:00:00+00:00"), "html", TEMPLATES)
    assert "<script" not in html and "&lt;script&gt;" in html and "&lt;i&gt;lab&lt;/i&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<link" not in html and "@import" not in html and "<style>" in html


def test_markdown_escapes_text_that_would_become_markup():
    class F:
        check_id, title, status, subject = "spn.owner", "x", "fail", "*bold* [link](http://e) | pipe"
        evidence = reason = fix = skipped_reason = ""

    md = render_report(build_report(after=[F()], target="t", generated_at="g"), "markdown", TEMPLATES)
    assert "\\*bold\\* \\[link\\](http://e) \\| pipe" in md


def test_check_json_is_stable_and_documented_fields_are_there():
    class F:
        check_id, title, status, subject, evidence = "asa.exists", "The ASA exists", "pass", "EXASA$", "found"
        reason = fix = skipped_reason = ""

    doc = check_json(finding_rows([F()]), target="t", generated_at="2026-01-01T00:00:00+00:00")
    assert doc == check_json(finding_rows([F()]), target="t", generated_at="2026-01-01T00:00:00+00:00")
    import json

    d = json.loads(doc)
    assert d["schema"] == "asa-wizard/check" and d["schema_version"] == 1
    assert d["summary"] == {"pass": 1, "warn": 0, "fail": 0, "skipped": 0, "exit_code": 0}
    assert set(d["findings"][0]) >= {"id", "status", "subject", "evidence", "fix", "title", "area", "reason"}


def test_plan_html_is_self_contained(tmp_path):
    answers = answers_for("fresh")
    target = open_lab("fresh")
    try:
        plan = plan_on(target, answers)
    finally:
        target.close()
    html = render_plan(plan, "html", TEMPLATES)
    assert html.count("<h3") == len(plan.changes)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "Set-ClientAccessService -Identity &#39;ex01.contoso.com&#39;" in html
