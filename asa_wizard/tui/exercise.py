"""The exercise panel: on a lab scenario with an exercise, one band above the wizard with "3 of 4 faults
fixed", the time left, the hints released one at a time and, at the end, the score.

The app composes one `ExercisePanel`; it stays hidden unless the open lab scenario declares an exercise (or
`--random-faults` made one). The frame tells it when the session changed (`session_changed`, on the panes'
`StateChanged`: a new scenario, a new catalogue run) and when the lab was reset (`lab_reset`: it counts as
an undone change when changes had been made); a timer only moves the clock. The wizard's steps need not know
about it; the scoring is `core.exercise`'s. Every change of the exercise is written to the data
folder (`classroom.records`): the classroom's progress view and the trainee's report come from there.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from ..core.exercise import ExerciseResult, ExerciseSpec, ExerciseTracker, format_duration


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ExercisePanel(Vertical):
    DEFAULT_CSS = """
    ExercisePanel {
        display: none;
        height: auto;
        max-height: 8;
        background: $boost;
        border-bottom: solid $accent;
        padding: 0 1;
    }
    ExercisePanel.-active { display: block; }
    ExercisePanel #exercise-line { height: auto; }
    ExercisePanel Horizontal { height: auto; }
    ExercisePanel #exercise-status { width: 1fr; height: auto; }
    ExercisePanel Button { min-width: 12; height: 1; border: none; margin-left: 1; }
    ExercisePanel #exercise-hints { height: auto; color: $text-muted; }
    """

    def __init__(self, *, clock: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock or (lambda: _now())
        self.world: Any = None
        self.tracker: ExerciseTracker | None = None
        self._seen_findings: Any = None
        self._title = ""
        self._last_written: dict[str, Any] | None = None
        self._writer: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self.resets = 0  # lab resets that threw changes away: each counts as an undone change
        self._runs_at_reset = 0

    def compose(self) -> ComposeResult:
        return iter(())  # nothing until an exercise starts: no cost for a scenario without one

    def _parts(self) -> list[Any]:
        return [Horizontal(Static("", id="exercise-status", markup=False),
                           Button("Hint", id="exercise-hint", compact=True)),
                Static("", id="exercise-hints", markup=False)]

    def on_mount(self) -> None:
        self.set_interval(1.0, self.tick)
        self.call_after_refresh(self.follow)  # a session opened before the wizard started

    def session_changed(self) -> None:
        """The session's target or findings changed (the frame calls this on `StateChanged`)."""
        self.call_later(self.follow)

    def lab_reset(self) -> None:
        """The lab is about to be put back as the scenario file describes it: when this session had applied
        changes since the last reset, they are thrown away, which counts as one undone change."""
        runs = len(getattr(self.session, "runs", []) or [])
        if self.tracker is None or runs <= self._runs_at_reset:
            return
        self._runs_at_reset = runs
        self.resets += 1

    # --- following the session ------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        return getattr(self.app, "session", None)

    async def tick(self) -> None:
        """Once a second: the clock, and the end of the exercise when its time limit passes."""
        if self.tracker is None:
            return
        before = self.tracker.ended
        result = self.tracker.result(self.clock())
        self.show(result)
        if before is None and result.finished:
            self.record(result)

    async def follow(self) -> None:
        """Pick up a newly opened scenario and new findings; redraw the clock."""
        session = self.session
        target = getattr(session, "target", None)
        world = target.lab if target is not None and target.is_lab else None
        if world is not self.world:
            await self.start(world)
        if self.tracker is None:
            return
        now = self.clock()
        changed = False
        if session.findings is not self._seen_findings:
            self._seen_findings = session.findings
            if session.findings:
                from ..classroom.records import count_undone, data_dir

                was = self.tracker.result(now)
                self.tracker.observe(session.findings, now, undone=count_undone(data_dir()) + self.resets)
                changed = self.tracker.result(now) != was
        before = self.tracker.ended
        result = self.tracker.result(now)
        self.show(result)
        if changed or before is None and result.finished or self._last_written is None:
            self.record(result)

    async def start(self, world: Any) -> None:
        """A new lab scenario is open: start its exercise (or hide the panel when it has none)."""
        from ..lab.faults import seed_from_environment

        self.world = world
        self._seen_findings = None
        self.resets = 0
        self._runs_at_reset = len(getattr(self.session, "runs", []) or [])
        self._last_written = None
        scenario = getattr(world, "scenario", None)
        spec = ExerciseSpec.from_scenario(scenario, seed=seed_from_environment()) if scenario else None
        if spec is None:
            self.tracker = None
            self.remove_class("-active")
            await self.remove_children()
            self.app.refresh_bindings()
            return
        if not self.children:
            await self.mount_all(self._parts())
        self._title = scenario.title
        self.tracker = ExerciseTracker(spec, started=self.clock())
        self.query_one("#exercise-hints", Static).update("")
        self._resume(spec)
        self.add_class("-active")
        self.query_one("#exercise-hint", Button).disabled = not spec.hints
        self.app.refresh_bindings()  # the h key (a hint) is shown while an exercise runs

    def _resume(self, spec: ExerciseSpec) -> None:
        """A reloaded page starts a new process on the same data folder: the clock and the hints already used
        carry on (a reload does not buy time or free hints)."""
        from ..classroom.records import count_undone, data_dir, read_status

        old = read_status(data_dir())
        tracker = self.tracker
        if not old or tracker is None or old.get("scenario") != spec.scenario or old.get("seed") != spec.seed:
            return
        try:
            tracker.started = datetime.fromisoformat(old["started"])
        except (KeyError, TypeError, ValueError):
            return
        for _ in range(min(int(old.get("hints_used") or 0), len(spec.hints))):
            tracker.reveal_hint(tracker.started)
        try:  # the resets of the earlier page: what it counted as undone beyond its journals
            self.resets = max(0, int(old.get("undone") or 0) - count_undone(data_dir()))
        except (TypeError, ValueError):
            self.resets = 0
        tracker.undone = max(tracker.undone, self.resets)
        self.query_one("#exercise-hints", Static).update(self._hints_text())

    # --- the trainee's actions ------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "exercise-hint":
            event.stop()
            self.reveal_hint()

    def reveal_hint(self) -> str | None:
        if self.tracker is None:
            return None
        hint = self.tracker.reveal_hint(self.clock())
        if hint is None:
            self.notify("No more hints." if not self.tracker.ended else "The exercise is over.", markup=False)
            return None
        self.query_one("#exercise-hints", Static).update(self._hints_text())
        result = self.tracker.result(self.clock())
        self.show(result)
        self.record(result)
        return hint

    def _hints_text(self) -> str:
        assert self.tracker is not None
        shown = self.tracker.hints_shown
        return "\n".join(f"Hint {i}: {h}" for i, h in enumerate(shown, 1))

    # --- drawing and records --------------------------------------------------------------------------
    def show(self, result: ExerciseResult) -> None:
        parts = [f"Exercise: {result.progress}"]
        if result.time_limit_seconds is not None:
            parts.append(f"time left {format_duration(result.remaining_seconds)}")
        else:
            parts.append(f"time {format_duration(result.elapsed_seconds)}")
        parts.append(f"hints {result.hints_used} of {result.hints_total}")
        if result.undone:
            parts.append(f"undone {result.undone}")
        if result.finished:
            parts.append(f"FINISHED ({result.reason}): score {result.score} / 100")
        else:
            parts.append(f"score so far {result.score} / 100")
        self.query_one("#exercise-status", Static).update(" · ".join(parts))
        self.query_one("#exercise-hints", Static).display = result.hints_used > 0  # no empty line before a hint
        button = self.query_one("#exercise-hint", Button)
        button.disabled = result.finished or result.hints_used >= result.hints_total
        button.label = f"Hint ({result.hints_total - result.hints_used} left)"

    def record(self, result: ExerciseResult) -> None:
        """Write the status and the trainee's report to the data folder, in a thread (rendering the report can
        take a second; the wizard must not stall). Never fatal to the wizard."""
        assert self.tracker is not None
        args = (result, self.tracker.started, self.clock(), self.tracker.hints_shown)
        self._last_written = result.to_dict()
        thread = threading.Thread(target=self._write, args=args, name="exercise-record", daemon=True)
        self._writer = thread
        thread.start()

    def _write(self, result: ExerciseResult, started: datetime, now: datetime, hints: list[str]) -> None:
        from ..classroom.records import data_dir, student_name, write_status, write_student_reports

        folder = data_dir()
        with self._write_lock:  # one writer at a time, the newest result last
            try:
                write_status(folder, result, started=started, updated=now, student=student_name(),
                             title=self._title, hints_shown=hints)
                if self.session is not None:
                    write_student_reports(folder, self.session, result, student=student_name(),
                                          generated_at=now.replace(microsecond=0).isoformat())
            except Exception as exc:  # noqa: BLE001 - the exercise goes on; the log pane says what failed
                why = exc.strerror if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
                try:
                    self.app.call_from_thread(self.app.log_line, f"Could not write the exercise record in {folder}: "
                                              f"{why}")
                except RuntimeError:  # the app has closed meanwhile
                    pass

    def flush(self) -> None:
        """Wait until the latest record is written."""
        if self._writer is not None:
            self._writer.join()

    @property
    def result(self) -> ExerciseResult | None:
        return self.tracker.result(self.clock()) if self.tracker is not None else None
