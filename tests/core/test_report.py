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


def test_the_wizards_report_of_a_lab_run_uses_the_journals_clock_and_says_so(tmp_path, monkeypatch):
    """The wizard reports through the service with the lab open: its generated time is the journal's last event
    (this machine's clock), like every change's time, never the lab's; the lab's own dates are labelled."""
    from asa_wizard.core.answers import parse_answers
    from asa_wizard.service import apply, discover, make_plan, new_journal, open_target, run_checks
    from asa_wizard.service.operations import build_report as service_report

    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    opened = open_target(parse_answers('[target]\nlab = "new-server-missing-asa"\n[asa]\nname = "E15ASA$"\n', "a"))
    try:
        env = discover(opened)
        before = run_checks(opened, env)
        journal = new_journal(opened)
        result = apply(opened, make_plan(opened, env), journal, before=before)
        events = journal.events()
        report = service_report(opened, result.env, result.after, events=events, before=before)
        assert opened.now is not None and opened.now.isoformat()[:16] not in report.generated_at
    finally:
        opened.close()
    assert report.generated_at == events[-1].ts and "lab time" not in report.generated_at
    assert {c.when for c in report.changes} <= {e.ts for e in events}
    md = render_report(report, "markdown", TEMPLATES)
    assert "this machine's clock in UTC" in md and "scenario's own fixed clock" in md
    real = build_report(after=[], target="dc1.contoso.com", generated_at="g")  # a real target: no lab sentence
    assert "this machine's clock in UTC" in real.clock and "scenario" not in real.clock


def test_checks_missing_on_one_side_are_named_not_counted_silently():
    def row(check_id, status, subject=""):
        class F:
            pass
        f = F()
        f.check_id, f.title, f.status, f.subject = check_id, check_id, status, subject
        f.evidence = f.reason = f.fix = f.skipped_reason = ""
        return f

    before = [row("asa.exists", "fail"), row("rollout.coverage", "fail")]
    after = [row("asa.exists", "pass", "EXASA$"), row("rollout.coverage", "pass", "EX01"),
             row("rollout.coverage", "fail", "EX02"), row("spn.present", "pass")]
    report = build_report(after=after, before=before, target="t", generated_at="g")
    assert report.check_counts() == {"fail": 1, "warn": 0, "pass": 2, "skipped": 0, "total": 3}
    assert report.check_counts("before") == {"fail": 2, "warn": 0, "pass": 0, "skipped": 0, "total": 2}
    assert report.checks_not_run("before") == ["spn.present"] and report.checks_not_run("after") == []
    md = render_report(report, "markdown", TEMPLATES)
    assert "Now: 3 checks: 2 passed, 0 warnings, 1 failed" in md and "Before: 2 checks: 0 passed" in md
    assert "Not run before the changes (no finding then): `spn.present`." in md
    html = render_report(report, "html", TEMPLATES)
    assert "Not run before the changes (no finding then): <code>spn.present</code>." in html
