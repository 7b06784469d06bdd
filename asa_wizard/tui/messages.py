"""The typed messages between the panes and the app frame.

A pane starts its own work (a thread worker on the pane), shows its progress and results itself, and tells the
frame only what the frame owns: a line for the log, a problem to show, where to go, and that the organisation's
state changed (the checklist and every pane then redraw from the session). No pane imports the app.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class WorkProgress(Message):
    """Posted from a thread worker (post_message is thread-safe): progress of the pane's work."""

    def __init__(self, what: str, done: int, total: int) -> None:
        super().__init__()
        self.what = what
        self.done = done
        self.total = total


class ChangeProgress(Message):
    """Posted from the executor's callback: one change started, finished, failed, was skipped or cancelled."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


class LogLine(Message):
    """A line for the log pane (shown literally)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ShowProblem(Message):
    """A problem a person can act on: the frame shows it with its fix (and a way to the step that fixes it)."""

    def __init__(self, problem: str, fix: str = "", *, detail: str | None = None, step_id: str | None = None,
                 title: str = "Something went wrong") -> None:
        super().__init__()
        self.problem = problem
        self.fix = fix
        self.detail = detail
        self.step_id = step_id
        self.title = title


class Goto(Message):
    """Open a step (or the step that fixes a check)."""

    def __init__(self, step_id: str | None = None, *, check_id: str | None = None) -> None:
        super().__init__()
        self.step_id = step_id
        self.check_id = check_id


class StateChanged(Message):
    """The session's target, environment or findings changed: the checklist and every pane redraw."""

    def __init__(self, *, target: bool = False) -> None:
        super().__init__()
        self.target = target  # the target itself changed (the target bar too)


class AskCredentials(Message):
    """A password is needed for `key` (the service's key scheme); `then` runs once it is kept."""

    def __init__(self, key: str, user: str, then: Any = None) -> None:
        super().__init__()
        self.key = key
        self.user = user
        self.then = then


class ShowDetail(Message):
    """Open the detail pane on a finding, a server or a change: the full text, with copy."""

    def __init__(self, title: str, sections: list[tuple[str, str]], *, copy_text: str = "") -> None:
        super().__init__()
        self.title = title
        self.sections = sections
        self.copy_text = copy_text


class NeedDiscovery(Message):
    """A pane needs what discovery reads and nothing was read yet."""


class WorkFailed(Message):
    """A pane's work ended with an error (or was cancelled): the frame's one error handler shows it."""

    def __init__(self, what: str, error: BaseException | None, step_id: str) -> None:
        super().__init__()
        self.what = what
        self.error = error
        self.step_id = step_id
