"""A trainee's records in their data folder (ASA_WIZARD_DATA_DIR): the exercise status the classroom reads
for its progress view, and the trainee's report (the wizard's report plus the exercise result).

    <data folder>/exercise.json    the live ExerciseResult (+ started, updated, student, hints shown)
    <data folder>/report.md        the trainee's report, rewritten whenever the exercise changes
    <data folder>/report.html
    <data folder>/journals/        the wizard's journals (core.journal)

Imports neither textual nor the web server: the wizard's exercise panel writes these files, the classroom
server reads them.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

STATUS_FILE = "exercise.json"
REPORT_FILES = {"markdown": "report.md", "html": "report.html"}
STUDENT_ENV = "ASA_WIZARD_STUDENT"


def data_dir() -> Path:
    """This process's data folder: ASA_WIZARD_DATA_DIR, else ~/.local/share/asa-wizard (as the journals)."""
    from ..core.journal import default_journal_dir

    return default_journal_dir().parent


def student_name() -> str:
    """The trainee's name the classroom gave this process (empty outside a classroom)."""
    return os.environ.get(STUDENT_ENV, "").strip()[:80]


def write_atomic(path: Path, text: str) -> None:
    """Write the whole file or nothing: the server may read it at any moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_status(folder: Path, result: Any, *, started: datetime, updated: datetime, student: str,
                 title: str, hints_shown: list[str]) -> Path:
    data = result.to_dict()
    data.update(started=started.isoformat(), updated=updated.isoformat(), student=student, title=title,
                hints_shown=list(hints_shown))
    path = folder / STATUS_FILE
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return path


def read_status(folder: Path) -> dict[str, Any] | None:
    """The status a trainee's wizard wrote, or None when there is none (yet) or it cannot be read."""
    try:
        data = json.loads((folder / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def count_undone(folder: Path) -> int:
    """Changes reversed in every journal of the folder (a reloaded page starts a new run, not a new count)."""
    from ..core.exercise import count_undone as count
    from ..core.journal import read_events

    total = 0
    for path in sorted((folder / "journals").glob("*.jsonl")):
        try:
            total += count(read_events(path))
        except (OSError, ValueError):  # an unreadable journal counts nothing here; the wizard reports it
            continue
    return total


def write_student_reports(folder: Path, session: Any, result: Any, *, student: str, generated_at: str) -> list[Path]:
    """The trainee's report (Markdown and HTML): the exercise result, then the wizard's report of the session
    (`tui.session.WizardSession`: what was found, what was changed, what passes now)."""
    from ..core.exercise import render_student_report
    from ..core.report import render_report
    from ..resources import templates_dir
    from ..service.operations import build_report

    # the wizard's own report of the session (as its Report step saves it), every run of the session in order
    report = build_report(session.opened, session.env, session.findings, events=session.events(),
                          before=session.baseline, generated_at=generated_at,
                          journal=", ".join(p.name for p in session.runs))
    out = []
    for fmt, name in REPORT_FILES.items():
        text = render_student_report(render_report(report, fmt, templates_dir()), result, fmt, templates_dir(),
                                     student=student)
        write_atomic(folder / name, text)
        out.append(folder / name)
    return out
