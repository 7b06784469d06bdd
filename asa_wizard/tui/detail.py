"""The detail pane: the whole text of one finding, server or change (evidence, reason, fix, manual commands),
selectable and copyable, beside the step (or instead of it on a narrow terminal)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Label, Static

from .words import changed_flags


def finding_sections(findings: list[Any]) -> tuple[str, list[tuple[str, str]], str]:
    """Title, sections and the text to copy for the findings of one check (one subject each)."""
    from .widgets import plain_badge, status_of

    title = findings[0].title
    sections: list[tuple[str, str]] = [("Check", findings[0].check_id)]
    fixes = []
    for f in findings:
        head = plain_badge(status_of(f)) + (f" — {f.subject}" if f.subject else "")
        body = [x for x in (f.evidence and f"Evidence: {f.evidence}", f.reason and f"Why it matters: {f.reason}",
                            f.skipped_reason and f"Not checked: {f.skipped_reason}") if x]
        sections.append((head, "\n".join(body) or "(nothing more to say)"))
        if f.fix:
            sections.append(("Fix", f.fix))
            fixes.append(f.fix)
    return title, sections, "\n\n".join(dict.fromkeys(fixes))


def change_sections(c: Any) -> tuple[str, list[tuple[str, str]], str]:
    where = "Active Directory" if str(c.system) == "directory" else c.target
    sections = [("Where", where)]
    if c.attribute:
        sections.append((c.attribute, changed_flags(c.old, c.new, c.attribute)))
    if c.warning:
        sections.append(("Warning", c.warning))
    if c.commands:
        sections.append(("The same by hand", "\n".join(c.commands)))
    if c.undo_commands:
        sections.append(("Undo", "\n".join(c.undo_commands)))
    from .words import in_the_wizard

    return in_the_wizard(c.summary), sections, "\n".join(c.commands)


def server_sections(s: Any) -> tuple[str, list[tuple[str, str]], str]:
    def cred(c: Any) -> str:
        if c is None:
            return "not set"
        return f"{c.account} ({c.when_added:%Y-%m-%d %H:%M} UTC)" if c.when_added else c.account

    sections = [("FQDN", s.fqdn), ("Product", f"{s.product} {s.version}"), ("Site", s.site or "unknown"),
                ("ASA credential (latest)", cred(s.asa_latest) if s.asa_state_known else "not read"),
                ("ASA credential (previous)", cred(s.asa_previous) if s.asa_state_known else "not read")]
    if s.error:
        sections.append(("Problem reading it", s.error))
    return s.name, sections, s.fqdn


class DetailPane(VerticalScroll):
    """Hidden until something is opened in it (d, or enter on a finding)."""

    BINDINGS = [("escape", "close", "Close detail")]

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-title", markup=False, classes="step-title")
        yield VerticalScroll(id="detail-body")
        with Horizontal(classes="buttons"):
            yield Button("Copy", id="detail-copy")
            yield Button("Close (d)", id="detail-close")

    def on_mount(self) -> None:
        self.display = False
        self.copy_text = ""

    def show(self, title: str, sections: list[tuple[str, str]], *, copy_text: str = "") -> None:
        self.query_one("#detail-title", Static).update(title)
        body = self.query_one("#detail-body", VerticalScroll)
        body.remove_children()
        widgets = []
        for head, text in sections:
            widgets.append(Label(head, markup=False, classes="section-title"))
            widgets.append(Static(text, markup=False, classes="detail-text"))
        body.mount_all(widgets)
        self.copy_text = copy_text or "\n".join(f"{h}: {t}" for h, t in sections)
        self.display = True
        self.screen.add_class("detail-open")

    def close(self) -> None:
        self.display = False
        self.screen.remove_class("detail-open")

    def action_close(self) -> None:
        self.close()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "detail-copy":
            event.stop()
            self.app.copy_to_clipboard(self.copy_text)
            self.app.notify(f"Copied {len(self.copy_text.splitlines())} line(s).", markup=False)
        elif event.button.id == "detail-close":
            event.stop()
            self.close()
