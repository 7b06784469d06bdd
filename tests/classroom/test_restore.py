"""A lab opened again on the data folder of an earlier process (the classroom after a page reload, `asa-wizard
lab --restore`) is where the student left it: every run its journals recorded on the same scenario is made again,
oldest first, what was undone stays undone, and a "Reset the lab" throws the runs before it away for good."""

from __future__ import annotations

from pathlib import Path

import pytest

from asa_wizard.cli import main
from asa_wizard.core.journal import read_events
from asa_wizard.core.report import finding_rows, recorded_findings
from asa_wizard.service.operations import journals, mark_lab_reset
from asa_wizard.tui.session import WizardSession

ANSWERS = Path(__file__).parents[1] / "golden" / "answers-fresh.toml"


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def statuses(rows) -> dict[tuple[str, str], str]:
    return {(r.id, r.subject): r.status for r in rows}


def opened_again(scenario: str, restore: bool = True) -> tuple[WizardSession, dict[tuple[str, str], str]]:
    session = WizardSession(scenario_name=scenario, restore=restore)
    session.open_lab(scenario)
    session.discover()
    session.run_checks()
    return session, statuses(finding_rows(session.findings))


def applied(data: Path) -> dict[tuple[str, str], str]:
    """`asa-wizard apply --yes` of the golden answers on `fresh`; what its journal recorded after the changes."""
    assert main(["apply", "--answers", str(ANSWERS), "--yes"]) == 0
    (path,) = journals()
    note = recorded_findings(list(read_events(path)))
    assert note is not None
    return statuses(finding_rows([*map(_row, note.data["findings"]["after"])]))


def _row(d):
    from asa_wizard.core.report import FindingRow

    return FindingRow(**d)


def test_a_lab_opened_again_is_where_its_journals_left_it(data):
    after = applied(data)
    fresh_session, fresh = opened_again("fresh", restore=False)
    fresh_session.close()
    assert fresh != after  # the run changed what the checks see
    session, restored = opened_again("fresh")
    try:
        assert session.restored > 0
        assert restored == after
        assert session.answers.asa.name == "EXASA$"  # the student's ASA comes back with the changes
    finally:
        session.close()
    assert len(journals()) == 1  # making the changes again journals nothing new


def test_runs_before_the_last_lab_reset_are_not_made_again(data):
    applied(data)
    mark_lab_reset()
    session, restored = opened_again("fresh")
    fresh_session, fresh = opened_again("fresh", restore=False)
    try:
        assert session.restored == 0 and restored == fresh
    finally:
        session.close()
        fresh_session.close()


def test_another_scenarios_runs_are_not_made_again(data):
    applied(data)
    session, _ = opened_again("healthy")
    try:
        assert session.restored == 0
    finally:
        session.close()


def test_the_classroom_opens_each_students_lab_with_restore(tmp_path):
    from asa_wizard.classroom.server import ClassSession, Classroom

    room = Classroom(host="127.0.0.1", port=0, root=tmp_path, scenario="healthy")
    s = ClassSession(id="a1", number=1, student="Ada", scenario="healthy", seed=7, created="now")
    assert "lab --scenario healthy --restore --random-faults 7" in room.command_for(s)

