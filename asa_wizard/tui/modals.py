"""Modal screens: confirmation before a change, an error with its fix, credentials, and a step's help.

Every text that came from outside (DNs, error messages, server names) is shown with markup disabled and its
control characters escaped (`core.text.terminal_safe`): a `[/b]` or an escape sequence in an LDAP error must not
break the screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Markdown, Static

from ..core.secrets import Secret
from ..core.text import terminal_safe
from .widgets import TickBox


class ConfirmModal(ModalScreen[bool]):
    """Ask before doing something; repeats exactly what will happen."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "Cancel"),
        Binding("y", "answer(True)", "Yes, go ahead"),
    ]

    def __init__(self, title: str, lines: list[str], *, confirm: str = "Apply", danger: bool = False) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.lines = lines
        self.confirm = confirm
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(terminal_safe(self.title_text), markup=False, classes="modal-title")
            with VerticalScroll(id="confirm-lines"):
                for line in self.lines:
                    yield Static(f"• {terminal_safe(line)}", markup=False, classes="confirm-line")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.confirm} (y)", id="yes", variant="error" if self.danger else "primary")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ErrorModal(ModalScreen[str | None]):
    """A problem, the fix, and (when a step fixes it) a way to go there. Returns the step id or None."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close"), Binding("g", "go", "Go to step")]

    def __init__(self, problem: str, fix: str = "", *, detail: str | None = None, step: str | None = None,
                 step_title: str | None = None, title: str = "Something went wrong") -> None:
        super().__init__(classes="modal")
        self.problem = problem
        self.fix = fix
        self.detail = detail
        self.step = step
        self.step_title = step_title or step
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="error"):
            yield Static(terminal_safe(self.title_text), markup=False, classes="modal-title")
            with VerticalScroll():
                yield Label("Problem", classes="field-label")
                yield Static(terminal_safe(self.problem), markup=False, id="error-problem")
                if self.fix:
                    yield Label("Fix", classes="field-label")
                    yield Static(terminal_safe(self.fix), markup=False, id="error-fix")
                if self.detail:
                    yield Label("Detail", classes="field-label")
                    yield Static(terminal_safe(self.detail), markup=False, id="error-detail")
            with Horizontal(classes="buttons"):
                if self.step:
                    yield Button(f"Go to {self.step_title} (g)", id="go", variant="primary")
                yield Button("Close (esc)", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.step if event.button.id == "go" else None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_go(self) -> None:
        if self.step:
            self.dismiss(self.step)


@dataclass
class Credential:
    user: str
    password: Secret
    remember: bool


class CredentialModal(ModalScreen[Credential | None]):
    """Ask for a user and password. The password field never echoes; the value leaves only as a Secret."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, purpose: str, *, user: str = "", store_where: str = "", store_refused: str | None = None):
        super().__init__(classes="modal")
        self.purpose = purpose
        self.user = user
        self.store_where = store_where
        self.store_refused = store_refused

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Credentials: {terminal_safe(self.purpose)}", markup=False, classes="modal-title")
            yield Label("User (DOMAIN\\name or name@domain)", markup=False, classes="field-label")
            yield Input(value=self.user, id="cred-user")
            yield Label("Password (not shown)", classes="field-label")
            yield Input(password=True, id="cred-password")
            yield TickBox(f"Remember in {self.store_where}", value=False, id="cred-remember",
                           disabled=bool(self.store_refused))
            if self.store_refused:
                yield Static(terminal_safe(self.store_refused), markup=False, classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("OK", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "cred-user":
            self.query_one("#cred-password", Input).focus()
        else:
            self._finish()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self._finish()
        else:
            self.dismiss(None)

    def _finish(self) -> None:
        user = self.query_one("#cred-user", Input).value.strip()
        password_input = self.query_one("#cred-password", Input)
        secret = Secret(password_input.value)
        password_input.value = ""
        remember = self.query_one("#cred-remember", Checkbox).value
        self.dismiss(Credential(user, secret, remember))

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpModal(ModalScreen[None]):
    """The step's guidance in full, with the keys that work on it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, title: str, markdown: str, keys: list[tuple[str, str]]) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.markdown = markdown
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            yield Static(f"Help: {self.title_text}", markup=False, classes="modal-title")
            with VerticalScroll():
                yield Markdown(self.markdown)
                keys = "\n".join(f"{k:>10}  {what}" for k, what in self.keys)
                yield Static("Keys\n" + keys, markup=False, classes="help-keys")
            with Horizontal(classes="buttons"):
                yield Button("Close (esc)", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
