"""Exercises: a scenario's objectives (checks to make pass), hints released one at a time, a time limit, and
the score.

    tracker = ExerciseTracker(spec, started=now)
    tracker.observe(findings, now=now)       # after every catalogue run
    tracker.reveal_hint(now=now)             # the next hint, counted
    tracker.result(now=now).score            # 0..100

Pure: the caller passes the clock and the findings; nothing here reads files or the time.

Score: 100 points shared equally by the objectives met, minus `HINT_PENALTY` per hint shown, minus
`UNDO_PENALTY` per change that had to be undone, never below 0. The exercise ends when every objective is met
or the time limit is reached; after that the result no longer changes (a fix after the time is up does not
count).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterable

from .checks import CHECKS, SEVERITY, Status

HINT_PENALTY = 10
UNDO_PENALTY = 5


@dataclass(frozen=True)
class ExerciseSpec:
    objectives: tuple[str, ...]  # check ids to make pass
    hints: tuple[str, ...] = ()
    time_limit_seconds: int | None = None
    scenario: str = ""
    seed: int | None = None  # --random-faults
    faults: tuple[str, ...] = ()  # what was broken (instructor only)

    @classmethod
    def from_scenario(cls, scenario: Any, seed: int | None = None) -> "ExerciseSpec | None":
        """The exercise of a lab scenario (`lab.scenario.Scenario`), or None when it declares none."""
        ex = getattr(scenario, "exercise", None)
        if ex is None:
            return None
        minutes = ex.time_limit_minutes
        return cls(objectives=tuple(ex.objectives), hints=tuple(ex.hints),
                   time_limit_seconds=minutes * 60 if minutes else None, scenario=scenario.name, seed=seed,
                   faults=tuple(ex.faults))


@dataclass
class ObjectiveState:
    check_id: str
    title: str
    status: str  # pass | fail | warn | skipped | not run
    met: bool


@dataclass
class ExerciseResult:
    scenario: str
    seed: int | None
    objectives: list[ObjectiveState]
    met: int
    total: int
    hints_used: int
    hints_total: int
    undone: int
    elapsed_seconds: int
    time_limit_seconds: int | None
    finished: bool
    reason: str  # "" while running | "all objectives met" | "time is up" | "stopped"
    score: int
    faults: list[str] = field(default_factory=list)

    @property
    def progress(self) -> str:
        return f"{self.met} of {self.total} faults fixed"

    @property
    def remaining_seconds(self) -> int | None:
        if self.time_limit_seconds is None:
            return None
        return max(0, self.time_limit_seconds - self.elapsed_seconds)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["progress"] = self.progress
        out["remaining_seconds"] = self.remaining_seconds
        return out


def objective_status(findings: Iterable[Any], check_id: str) -> str:
    """The worst status of one check in `findings`, or "not run"."""
    worst: Status | None = None
    for f in findings:
        if f.check_id == check_id and (worst is None or SEVERITY[f.status] > SEVERITY[worst]):
            worst = f.status
    return worst.value if worst is not None else "not run"


def score(met: int, total: int, hints_used: int, undone: int) -> int:
    points = 100 * met / total if total else 0
    return max(0, round(points - HINT_PENALTY * hints_used - UNDO_PENALTY * undone))


class ExerciseTracker:
    """The live state of one trainee's exercise."""

    def __init__(self, spec: ExerciseSpec, started: datetime) -> None:
        self.spec = spec
        self.started = started
        self.statuses: dict[str, str] = {cid: "not run" for cid in spec.objectives}
        self.hints_used = 0
        self.undone = 0
        self.ended: datetime | None = None
        self.reason = ""

    # --- events ---------------------------------------------------------------------------------------
    def observe(self, findings: Iterable[Any], now: datetime, undone: int | None = None) -> None:
        """The catalogue ran (or a change was undone): take its findings, unless the exercise is over."""
        if self._expire(now):
            return
        findings = list(findings)
        ran = {f.check_id for f in findings}
        for cid in self.spec.objectives:
            if cid in ran:  # a partial run (one step's checks) leaves the others as they were
                self.statuses[cid] = objective_status(findings, cid)
        if undone is not None:
            self.undone = undone
        if self.spec.objectives and all(self._met(cid) for cid in self.spec.objectives):
            self.ended, self.reason = now, "all objectives met"

    def reveal_hint(self, now: datetime) -> str | None:
        """The next hint (counted against the score), or None when all are shown or the exercise is over."""
        if self._expire(now) or self.hints_used >= len(self.spec.hints):
            return None
        self.hints_used += 1
        return self.spec.hints[self.hints_used - 1]

    def stop(self, now: datetime) -> None:
        if not self._expire(now) and self.ended is None:
            self.ended, self.reason = now, "stopped"

    @property
    def hints_shown(self) -> list[str]:
        return list(self.spec.hints[: self.hints_used])

    # --- state ----------------------------------------------------------------------------------------
    def _met(self, cid: str) -> bool:
        return self.statuses.get(cid) == Status.PASS.value

    def _expire(self, now: datetime) -> bool:
        """True when the exercise is over (the time limit ends it at the limit itself)."""
        if self.ended is not None:
            return True
        limit = self.spec.time_limit_seconds
        if limit is not None and (now - self.started).total_seconds() >= limit:
            from datetime import timedelta

            self.ended, self.reason = self.started + timedelta(seconds=limit), "time is up"
            return True
        return False

    def result(self, now: datetime) -> ExerciseResult:
        self._expire(now)
        end = self.ended or now
        objectives = [ObjectiveState(cid, CHECKS[cid].title if cid in CHECKS else cid, self.statuses[cid],
                                     self._met(cid)) for cid in self.spec.objectives]
        met = sum(1 for o in objectives if o.met)
        return ExerciseResult(
            scenario=self.spec.scenario, seed=self.spec.seed, objectives=objectives, met=met,
            total=len(objectives), hints_used=self.hints_used, hints_total=len(self.spec.hints),
            undone=self.undone, elapsed_seconds=max(0, int((end - self.started).total_seconds())),
            time_limit_seconds=self.spec.time_limit_seconds, finished=self.ended is not None, reason=self.reason,
            score=score(met, len(objectives), self.hints_used, self.undone), faults=list(self.spec.faults))


def count_undone(events: Iterable[Any]) -> int:
    """Changes reversed in a run's journal events (`core.journal.JournalEvent`)."""
    return sum(1 for e in events if getattr(e, "event", None) == "undone")


def format_duration(seconds: int | None) -> str:
    if seconds is None:
        return "no limit"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --- reports ----------------------------------------------------------------------------------------------
def result_state(result: ExerciseResult) -> str:
    if not result.finished:
        return "in progress"
    return f"finished: {result.reason}"


def render_exercise(result: ExerciseResult, fmt: str, templates: Any, *, student: str = "",
                    show_faults: bool = False) -> str:
    """The exercise result as a Markdown or HTML section (templates `exercise.md.j2` / `exercise.html.j2`).
    `show_faults` names the faults `--random-faults` put in: for the instructor's copy only."""
    from .report import TEMPLATE_NAMES, _render

    return _render(templates, TEMPLATE_NAMES[fmt].format("exercise"), x=result, student=student,
                   state=result_state(result), elapsed=format_duration(result.elapsed_seconds),
                   limit=format_duration(result.time_limit_seconds), hint_penalty=HINT_PENALTY,
                   undo_penalty=UNDO_PENALTY, show_faults=show_faults)


def render_student_report(report_text: str, result: ExerciseResult, fmt: str, templates: Any, *,
                          student: str = "") -> str:
    """A trainee's report: the exercise result first, then the wizard's own report (`core.report`) unchanged."""
    section = render_exercise(result, fmt, templates, student=student)
    if fmt == "markdown":
        return section + "\n" + report_text
    if fmt == "html":
        at = report_text.find("<body>")
        if at < 0:
            raise ValueError("the report has no <body> to put the exercise result in")
        at += len("<body>")
        return report_text[:at] + "\n" + section + report_text[at:]
    raise ValueError(f"unknown report format {fmt!r}")


@dataclass
class ClassRow:
    student: str
    scenario: str
    fixed: str  # "3 of 4"
    hints: str
    undone: str
    time: str
    score: str
    state: str
    finished: bool = False
    score_value: int | None = None


def class_row(student: str, scenario: str, status: dict[str, Any] | None) -> ClassRow:
    """One line of the class summary from a session's exercise status (`ExerciseResult.to_dict()`), or a
    session without an exercise record yet."""
    if not status:
        return ClassRow(student, scenario, "–", "–", "–", "–", "–", "not started")
    seed = status.get("seed")
    label = status.get("scenario") or scenario
    if seed is not None:
        label = f"{label} (seed {seed})"
    limit = status.get("time_limit_seconds")
    time = format_duration(status.get("elapsed_seconds", 0)) + (f" / {format_duration(limit)}" if limit else "")
    finished = bool(status.get("finished"))
    state = f"finished: {status.get('reason')}" if finished else "in progress"
    return ClassRow(student, label, f"{status.get('met', 0)} of {status.get('total', 0)}",
                    f"{status.get('hints_used', 0)} of {status.get('hints_total', 0)}", str(status.get("undone", 0)),
                    time, str(status.get("score", 0)), state, finished, int(status.get("score", 0)))


def render_class_summary(rows: list[ClassRow], fmt: str, templates: Any, *, generated_at: str) -> str:
    """The class summary as Markdown or HTML (templates `classroom.md.j2` / `classroom.html.j2`)."""
    from .report import TEMPLATE_NAMES, _render

    scored = [r.score_value for r in rows if r.score_value is not None]
    average = round(sum(scored) / len(scored)) if scored else 0
    return _render(templates, TEMPLATE_NAMES[fmt].format("classroom"), rows=rows, generated_at=generated_at,
                   average=average, finished=sum(1 for r in rows if r.finished))
