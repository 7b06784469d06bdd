"""Small widgets the wizard screen is built from: the target bar and the checklist.

Status is always carried by an icon and a word as well as a colour, so it survives monochrome terminals,
colour blindness and screenshots pasted into tickets.
"""

from __future__ import annotations

from typing import Any, Iterable

from textual.markup import escape
from textual.widgets import Checkbox, OptionList, Static
from textual.widgets.option_list import Option

from ..core.steps import STEPS, Step

# status -> (icon, word, theme variable)
STATUS_LOOK: dict[str | None, tuple[str, str, str]] = {
    "pass": ("✔", "pass", "$success"),
    "fail": ("✖", "FAIL", "$error"),
    "warn": ("▲", "warn", "$warning"),
    "skipped": ("–", "skip", "$text-muted"),
    "running": ("…", "busy", "$accent"),
    None: ("○", "todo", "$text-muted"),
}
_RANK = {"fail": 4, "warn": 3, "pass": 2, "skipped": 1}


def worst(statuses: Iterable[str]) -> str | None:
    """The status that matters most: one failing server makes the whole check fail."""
    best: str | None = None
    for s in statuses:
        if best is None or _RANK.get(s, 0) > _RANK.get(best, 0):
            best = s
    return best


def status_of(finding: Any) -> str:
    """A finding's status as its plain word, whether the core gives a string or an enum."""
    value = getattr(finding.status, "value", finding.status)
    return str(value)


def badge(status: str | None) -> str:
    """Icon and word, coloured by the theme, as content markup."""
    icon, word, colour = STATUS_LOOK.get(status, STATUS_LOOK[None])
    return f"[{colour}]{icon} {word}[/]"


def plain_badge(status: str | None) -> str:
    icon, word, _ = STATUS_LOOK.get(status, STATUS_LOOK[None])
    return f"{icon} {word}"


class TargetBar(Static):
    """One line at the top: what the wizard is connected to, and the modes that change its behaviour."""

    def show(self, label: str, *, dry_run: bool, insecure_tls: bool) -> None:
        parts = ["[b]ASA wizard[/b]"]
        if dry_run:
            parts.append("[b reverse $warning] DRY-RUN: nothing is changed [/]")
        if insecure_tls:
            parts.append("[b reverse $error] TLS certificates NOT validated [/]")
        parts.append(escape(label))
        self.update(" │ ".join(parts))


class Checklist(OptionList):
    """Every step and the checks that prove it (from the step registry), with the status the session derives.
    Selecting a line opens its step (and a check's detail). ctrl+w widens it (labels in full) or hides it."""

    def __init__(self, check_titles: dict[str, str], **kw: Any) -> None:
        super().__init__(**kw)
        self.check_titles = check_titles
        self.current_step = STEPS[0].id
        self.statuses: dict[str, str | None] = {}  # check id -> status
        self.step_statuses: dict[str, str | None] = {}  # step id -> status (derived by the session)

    def on_mount(self) -> None:
        self.call_after_refresh(self.rebuild)  # the first frame comes first; the list follows at once

    def rebuild(self) -> None:
        options: list[Option] = []
        for n, step in enumerate(STEPS, 1):
            options.append(Option(self._step_prompt(n, step), id=f"step:{step.id}"))
            for check_id in step.checks:
                options.append(Option(self._check_prompt(check_id), id=f"check:{step.id}:{check_id}"))
        highlighted = self.highlighted
        self.set_options(options)
        if highlighted is not None and highlighted < len(options):
            self.highlighted = highlighted

    def _step_prompt(self, n: int, step: Step) -> str:
        marker = "▸" if step.id == self.current_step else " "
        label = f"{n}. {escape(step.label)}"
        title = f"[b]{label}[/b]" if step.id == self.current_step else label
        return f"{marker}{title}  {badge(self.step_statuses.get(step.id))}"

    def _check_prompt(self, check_id: str) -> str:
        from ..core.steps import CHECK_LABELS

        full = self.check_titles.get(check_id, check_id)
        title = full if self.has_class("widened") else CHECK_LABELS.get(check_id, full)
        return f"   {badge(self.statuses.get(check_id))} {escape(title)}"

    def widen(self) -> None:
        """Narrow -> wide (full titles) -> hidden -> narrow."""
        if self.has_class("hidden"):
            self.remove_class("hidden")
        elif self.has_class("widened"):
            self.remove_class("widened")
            self.add_class("hidden")
        else:
            self.add_class("widened")
        self.rebuild()

    def set_current(self, step_id: str) -> None:
        self.current_step = step_id
        self.rebuild()

    def show(self, findings: Iterable[Any], step_statuses: dict[str, str | None]) -> None:
        """Every status from the session, as it is now (nothing is kept from before)."""
        by_check: dict[str, list[str]] = {}
        for f in findings:
            by_check.setdefault(f.check_id, []).append(status_of(f))
        self.statuses = {cid: worst(v) for cid, v in by_check.items()}
        self.step_statuses = dict(step_statuses)
        self.rebuild()


class TickBox(Checkbox):
    """A checkbox that shows its state as a tick or a blank, not only as a colour."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "✔" if self.value else " "
