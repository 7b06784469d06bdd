"""Exercise scoring (core.exercise) on scenarios with known faults, the `[exercise]` table of the scenario
format, and the reports built from the results."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from asa_wizard.core.checks import Finding, Status
from asa_wizard.core.errors import ConfigError
from asa_wizard.core.exercise import (
    ExerciseSpec,
    ExerciseTracker,
    class_row,
    render_class_summary,
    render_exercise,
    score,
)
from asa_wizard.lab.scenario import find_scenario, load_scenario
from asa_wizard.resources import templates_dir
from asa_wizard.tui.session import WizardSession

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def test_stale_credential_exercise_scores_the_real_fix():
    """The scenario's exercise, scored on the wizard's own session: discovery, the rollout's copy, the checks."""
    session = WizardSession()
    session.open_lab("stale-credential")
    try:
        spec = ExerciseSpec.from_scenario(session.target.lab.scenario)
        assert spec is not None
        assert spec.objectives == ("rollout.current", "kerberos.server")
        assert spec.time_limit_seconds == 30 * 60 and len(spec.hints) == 3
        tracker = ExerciseTracker(spec, started=T0)
        session.discover()
        tracker.observe(session.run_checks(), T0 + timedelta(minutes=1))
        r = tracker.result(T0 + timedelta(minutes=1))
        assert (r.met, r.total, r.progress, r.finished, r.score) == (0, 2, "0 of 2 faults fixed", False, 0)
        assert [o.status for o in r.objectives] == ["fail", "fail"]

        assert tracker.reveal_hint(T0 + timedelta(minutes=2)).startswith("Compare the date")
        plan = session.plan()
        rollout = [c.id for c in plan.changes if c.step == "rollout"]
        assert rollout
        assert any("a copy from EX01" in n for n in plan.notes)  # a copy, not a new password
        assert not any("new ASA password" in n for n in plan.notes)
        result = session.apply("rollout", rollout)
        assert result.ok and result.done == rollout
        session.discover()
        tracker.observe(session.run_checks(), T0 + timedelta(minutes=12, seconds=5), undone=1)
        r = tracker.result(T0 + timedelta(hours=2))
        assert (r.met, r.finished, r.reason) == (2, True, "all objectives met")
        assert r.elapsed_seconds == 12 * 60 + 5  # the clock stopped when the last objective was met
        assert r.score == 100 - 10 - 5  # one hint, one undone change
        assert tracker.reveal_hint(T0 + timedelta(hours=2)) is None  # over: no more hints
    finally:
        session.close()


def test_a_partial_run_keeps_the_other_objectives():
    spec = ExerciseSpec(objectives=("asa.enctypes", "spn.present"))
    t = ExerciseTracker(spec, started=T0)
    f = lambda cid, st: Finding(check_id=cid, title="", status=st)
    t.observe([f("asa.enctypes", Status.FAIL), f("spn.present", Status.PASS)], T0)
    t.observe([f("asa.enctypes", Status.PASS)], T0)  # only the ASA step's checks ran again
    r = t.result(T0)
    assert r.met == 2 and r.finished
    # a check that passes on one server and fails on another is not met
    t2 = ExerciseTracker(ExerciseSpec(objectives=("rollout.current",)), started=T0)
    t2.observe([f("rollout.current", Status.PASS), f("rollout.current", Status.FAIL)], T0)
    assert t2.result(T0).met == 0


def test_after_the_time_limit_nothing_counts_any_more():
    spec = ExerciseSpec(objectives=("asa.enctypes",), hints=("a", "b"), time_limit_seconds=600)
    t = ExerciseTracker(spec, started=T0)
    t.observe([Finding(check_id="asa.enctypes", title="", status=Status.PASS)], T0 + timedelta(seconds=601))
    r = t.result(T0 + timedelta(seconds=900))
    assert (r.met, r.finished, r.reason, r.elapsed_seconds, r.remaining_seconds) == (0, True, "time is up", 600, 0)
    assert t.reveal_hint(T0 + timedelta(seconds=900)) is None


def test_the_score_never_goes_below_zero():
    assert score(4, 4, 0, 0) == 100
    assert score(3, 4, 1, 1) == 60
    assert score(0, 4, 5, 5) == 0


def test_exercise_section_and_class_summary_render(tmp_path):
    spec = ExerciseSpec(objectives=("asa.enctypes", "spn.present"), hints=("h",), time_limit_seconds=1200,
                        scenario="healthy", seed=42, faults=("rc4-only (EXASA$)",))
    t = ExerciseTracker(spec, started=T0)
    t.observe([Finding(check_id="asa.enctypes", title="", status=Status.PASS), Finding(check_id="spn.present", title="", status=Status.FAIL)],
              T0 + timedelta(minutes=5))
    r = t.result(T0 + timedelta(minutes=5))
    md = render_exercise(r, "markdown", templates_dir(), student="Ann <b>")
    assert md.startswith("# Exercise result: Ann \\<b>\n\n- Scenario: healthy (random faults, seed 42)\n")
    assert "- Score: **50 / 100**" in md and "- Time: 5:00 of 20:00" in md
    assert "rc4-only" not in md  # the faults are for the instructor's copy only
    assert "rc4-only (EXASA$)" in render_exercise(r, "markdown", templates_dir(), show_faults=True)
    html = render_exercise(r, "html", templates_dir(), student="Ann <b>")
    assert "Ann &lt;b&gt;" in html and "<b>" not in html

    rows = [class_row("Ann", "healthy", r.to_dict()), class_row("Bob <i>", "rc4-only", None)]
    summary = render_class_summary(rows, "markdown", templates_dir(), generated_at="2026-03-02T10:00:00+00:00")
    assert "| Ann | healthy (seed 42) | 1 of 2 | 0 of 1 | 0 | 5:00 / 20:00 | 50 | in progress |" in summary
    assert "| Bob \\<i> | rc4-only | – | – | – | – | – | not started |" in summary
    assert "average score 50 / 100" in summary
    html = render_class_summary(rows, "html", templates_dir(), generated_at="x")
    assert "Bob &lt;i&gt;" in html and "https://" not in html


# --- the scenario format ------------------------------------------------------------------------------
def scenario_with(tmp_path: Path, exercise: str) -> Path:
    text = find_scenario("healthy").read_text(encoding="utf-8") + "\n" + exercise
    p = tmp_path / "ex.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_the_exercise_table_is_read(tmp_path):
    s = load_scenario(scenario_with(tmp_path, '[exercise]\nobjectives = ["asa.enctypes"]\nhints = ["one", "two"]\n'
                                              "time_limit_minutes = 15\n"))
    assert s.exercise is not None
    assert (s.exercise.objectives, s.exercise.hints, s.exercise.time_limit_minutes) == (["asa.enctypes"],
                                                                                       ["one", "two"], 15)


@pytest.mark.parametrize("body, field, problem", [
    ('objectives = ["asa.nope"]', "exercise.objectives", "unknown check 'asa.nope'"),
    ("objectives = []", "exercise.objectives", "no objective"),
    ('objectives = ["asa.enctypes"]\ntime_limit_minutes = 0', "exercise.time_limit_minutes", "out of range"),
    ('objectives = ["asa.enctypes"]\nhint = ["x"]', "exercise.hint", "unknown field"),
    ('objectives = "asa.enctypes"', "exercise.objectives", "must be a list of strings"),
    ('objectives = ["asa.enctypes"]\nhints = ["look \\u001b[2J here"]', "exercise.hints", "control character"),
    ('objectives = ["asa.enctypes"]\ntime_limit_minutes = true', "exercise.time_limit_minutes", "whole number"),
])
def test_a_wrong_exercise_names_the_line_and_field(tmp_path, body, field, problem):
    path = scenario_with(tmp_path, "[exercise]\n" + body + "\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert err.value.field == field and problem in err.value.problem
    assert err.value.line is not None and err.value.line > 80
    assert err.value.fix


def test_objectives_default_to_the_expected_failures():
    s = load_scenario(find_scenario("duplicate-spn"))
    assert s.exercise is not None
    assert s.exercise.objectives == [k for k, v in s.expected_findings.items() if v == "fail"]
