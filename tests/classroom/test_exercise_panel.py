"""The exercise panel in the wizard (Pilot): live "n of m faults fixed", hints one at a time, the final score,
and the records the classroom reads (status and the trainee's report)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from asa_wizard.tui.app import AsaWizardApp
from asa_wizard.tui.exercise import ExercisePanel
from asa_wizard.tui.modals import ConfirmModal, ErrorModal
from asa_wizard.tui.session import WizardSession

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr("asa_wizard.tui.exercise._now", c)
    return c


@pytest.fixture
def session():
    opened: list[WizardSession] = []

    def open_(scenario: str) -> WizardSession:
        s = WizardSession()
        s.open_lab(scenario)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


async def settle(app, pilot, rounds: int = 3) -> None:
    for _ in range(rounds):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


def panel_text(app) -> str:
    panel = app.query_one(ExercisePanel)
    return str(panel.query_one("#exercise-status").render()) + "\n" + str(panel.query_one("#exercise-hints").render())


async def test_rc4_exercise_counts_the_fix_the_hint_and_writes_the_records(session, clock, data_dir):
    s = session("rc4-only")
    app = AsaWizardApp(s, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = app.query_one(ExercisePanel)
        await panel.follow()
        assert panel.display
        text = panel_text(app)
        assert "Exercise: 0 of 1 faults fixed" in text
        assert "time left 20:00" in text and "hints 0 of 2" in text

        await pilot.click("#exercise-hint")
        await settle(app, pilot)
        text = panel_text(app)
        assert "hints 1 of 2" in text
        assert "Hint 1: Look at the ASA account step" in text
        assert "Hint 2" not in text

        clock.now = START + timedelta(minutes=7, seconds=30)
        app.goto("asa")
        await settle(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(app, pilot, rounds=5)
        assert not isinstance(app.screen, ErrorModal)
        await panel.follow()
        text = panel_text(app)
        assert "Exercise: 1 of 1 faults fixed" in text
        assert "FINISHED (all objectives met): score 90 / 100" in text  # 100, minus 10 for the hint
        panel.flush()

    status = json.loads((data_dir / "exercise.json").read_text())
    assert status["score"] == 90 and status["finished"] and status["elapsed_seconds"] == 450
    assert status["objectives"] == [{"check_id": "asa.enctypes", "title": status["objectives"][0]["title"],
                                     "status": "pass", "met": True}]
    assert status["hints_shown"] == [status["hints_shown"][0]] and status["hints_used"] == 1
    report = (data_dir / "report.md").read_text()
    assert report.startswith("# Exercise result")
    assert "- Score: **90 / 100**" in report and "- Objectives: 1 of 1 faults fixed" in report
    assert "\n## Summary\n" in report  # the wizard's own report follows
    html = (data_dir / "report.html").read_text()
    assert '<section class="box" id="exercise-result">' in html and "Score: 90 / 100" in html


async def test_the_time_limit_ends_the_exercise(session, clock):
    s = session("rc4-only")
    app = AsaWizardApp(s, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = app.query_one(ExercisePanel)
        await panel.follow()
        clock.now = START + timedelta(minutes=21)
        await panel.follow()
        text = panel_text(app)
        assert "FINISHED (time is up): score 0 / 100" in text and "time left 0:00" in text
        assert panel.query_one("#exercise-hint").disabled


async def test_no_panel_on_a_scenario_without_an_exercise(session):
    s = session("new-server-missing-asa")
    app = AsaWizardApp(s, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = app.query_one(ExercisePanel)
        await panel.follow()
        assert panel.tracker is None
        assert not panel.has_class("-active")
        assert panel.region.height == 0  # takes no room on screen


async def test_random_faults_make_an_exercise_of_a_healthy_scenario(session, clock, monkeypatch):
    monkeypatch.setenv("ASA_WIZARD_RANDOM_FAULTS", "7")
    s = session("healthy")
    app = AsaWizardApp(s, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = app.query_one(ExercisePanel)
        await panel.follow()
        spec = panel.tracker.spec
        assert spec.seed == 7 and len(spec.faults) == 3
        assert f"Exercise: 0 of {len(spec.objectives)} faults fixed" in panel_text(app)


async def test_a_reloaded_page_does_not_buy_time_or_free_hints(session, clock, data_dir):
    """The classroom starts a new wizard on the same folder when the page is reloaded: the exercise's clock
    and the hints already shown carry on from the record."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "exercise.json").write_text(json.dumps({
        "scenario": "rc4-only", "seed": None, "started": (START - timedelta(minutes=5)).isoformat(),
        "hints_used": 1, "finished": False}), encoding="utf-8")
    s = session("rc4-only")
    app = AsaWizardApp(s, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = app.query_one(ExercisePanel)
        await panel.follow()
        text = panel_text(app)
        assert "time left 15:00" in text and "hints 1 of 2" in text
        assert "Hint 1: Look at the ASA account step" in text


async def test_the_panel_follows_the_wizard_the_h_key_shows_a_hint_and_a_reset_counts_as_undone(
        session, clock, data_dir, tmp_path):
    """No call into the panel: it starts on the open lab, takes the findings the wizard's steps announce
    (StateChanged), `h` releases a hint, and a lab reset that throws an applied change away counts as an undone
    change (a reset with nothing applied costs nothing)."""
    from asa_wizard.resources import assets_dir

    text = (assets_dir() / "scenarios" / "rc4-only.toml").read_text(encoding="utf-8")
    # a second objective the ASA step does not fix (no KCD in this scenario): the exercise stays open
    text = text.replace('objectives = ["asa.enctypes"]', 'objectives = ["asa.enctypes", "kcd.target"]')
    assert 'objectives = ["asa.enctypes", "kcd.target"]' in text
    path = tmp_path / "rc4-two.toml"
    path.write_text(text, encoding="utf-8")
    s = session(str(path))
    app = AsaWizardApp(s, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = app.query_one(ExercisePanel)
        assert panel.display and "Exercise: 0 of 2 faults fixed" in panel_text(app)
        assert app.check_action("hint", ()) is True

        await pilot.press("h")
        await settle(app, pilot)
        assert "hints 1 of 2" in panel_text(app) and "Hint 1: Look at the ASA account step" in panel_text(app)

        app.reset_lab()  # nothing applied yet: no cost
        await settle(app, pilot)
        assert "undone" not in panel_text(app)

        app.goto("asa")
        await settle(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(app, pilot, rounds=5)
        assert not isinstance(app.screen, ErrorModal)
        assert "Exercise: 1 of 2 faults fixed" in panel_text(app)  # the apply's re-check, announced

        app.reset_lab()  # the applied change is thrown away
        await settle(app, pilot, rounds=5)
        text = panel_text(app)
        assert "Exercise: 0 of 2 faults fixed" in text and "undone 1" in text
        assert "score so far 0 / 100" in text
        panel.flush()
    status = json.loads((data_dir / "exercise.json").read_text())
    assert status["undone"] == 1 and status["hints_used"] == 1 and not status["finished"]


async def test_no_hint_key_without_an_exercise(session):
    s = session("new-server-missing-asa")
    app = AsaWizardApp(s, start_step="discovery")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert app.check_action("hint", ()) is False
        await pilot.press("h")  # nothing happens, nothing breaks
        await settle(app, pilot)
        assert not app.query_one(ExercisePanel).children
