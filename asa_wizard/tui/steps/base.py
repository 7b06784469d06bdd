"""The frame every wizard step shares: title, guidance from `screens/<step>.md`, the step's controls,
and Back / Next. Actions bound on the app (run, apply, copy, cancel) are forwarded to the current pane."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Collapsible, Label, ProgressBar, Static

from ...core.steps import STEP_IDS, step
from ...resources import screens_dir

if TYPE_CHECKING:
    from ..app import AsaWizardApp


@cache
def guidance(step_id: str) -> str:
    """The Markdown a person reads for a step (shipped in `screens/`)."""
    path = screens_dir() / f"{step_id}.md"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"# {step(step_id).title}\n\n{step(step_id).summary}\n"


def guidance_intro(step_id: str) -> str:
    """The first section of the guidance (what the step does), shown above the controls; `?` shows it all."""
    text = guidance(step_id)
    if text.startswith("## "):  # the collapsible's title already says it
        text = text.split("\n", 1)[1] if "\n" in text else ""
    second = text.find("\n## ")
    return (text[:second] if second >= 0 else text).strip() + "\n"


def theme_style(app: Any, name: str, bold: bool = False) -> str:
    """A Rich style from the current Textual theme, for renderables that cannot use $variables."""
    colour = getattr(app.current_theme, name, None) or ""
    return f"{'bold ' if bold else ''}{colour}".strip()


STATUS_THEME = {"pass": "success", "fail": "error", "warn": "warning", "skipped": "secondary"}


def status_text(app: Any, status: str | None) -> Text:
    """Icon + word for a table cell, coloured from the theme."""
    from ..widgets import plain_badge

    return Text(plain_badge(status), style=theme_style(app, STATUS_THEME.get(status or "", "foreground"),
                                                       bold=status == "fail"))


class StepPane(VerticalScroll):
    """One step of the wizard. Subclasses add `compose_controls` and the actions they support."""

    STEP_ID: ClassVar[str] = ""
    # app actions this pane answers to, each a `do_<name>` method: run (r), apply (a), copy (c)
    SUPPORTS: ClassVar[frozenset[str]] = frozenset()
    WORK_GROUP: ClassVar[str | None] = None

    def __init__(self) -> None:
        super().__init__(id=f"step-{self.STEP_ID}", classes="step")

    @property
    def wizard(self) -> "AsaWizardApp":
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        info = step(self.STEP_ID)
        number = STEP_IDS.index(self.STEP_ID) + 1
        yield Static(f"Step {number} of {len(STEP_IDS)} · {info.title}", markup=False, classes="step-title")
        with Collapsible(title="What this step does (g: show/hide · ?: why, risks, manual commands)",
                         collapsed=not self.wizard.show_guidance, classes="guidance"):
            yield Static("", id=f"guidance-{self.STEP_ID}")  # replaced by the Markdown after the first frame
        yield from self.compose_controls()
        with Horizontal(classes="nav"):
            yield Button("◀ Back (ctrl+b)", id=f"back-{self.STEP_ID}", classes="back",
                         disabled=number == 1)
            yield Button("Next (ctrl+n) ▶", id=f"next-{self.STEP_ID}", classes="next", variant="primary",
                         disabled=number == len(STEP_IDS))

    def compose_controls(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        # The guidance is many widgets: fill it in after the step's own controls are on screen.
        self.call_after_refresh(self._load_guidance)

    async def _load_guidance(self) -> None:
        from textual.widgets import Markdown  # markdown-it is imported on first use, not at start-up

        placeholder = self.query_one(f"#guidance-{self.STEP_ID}", Static)
        await placeholder.parent.mount(Markdown(guidance_intro(self.STEP_ID)), before=placeholder)
        await placeholder.remove()

    def compose_progress(self) -> ComposeResult:
        with Vertical(classes="progress-row"):
            yield Label("", id=f"progress-label-{self.STEP_ID}", markup=False, classes="progress-label")
            yield ProgressBar(total=None, show_eta=False, id=f"progress-{self.STEP_ID}")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.has_class("back"):
            event.stop()
            self.wizard.action_back()
        elif event.button.has_class("next"):
            event.stop()
            self.wizard.action_next()

    def set_guidance(self, visible: bool) -> None:
        self.query_one(".guidance", Collapsible).collapsed = not visible

    # --- progress from the app's workers -------------------------------------------------------------
    def show_progress(self, what: str, done: int, total: int) -> None:
        try:
            bar = self.query_one(f"#progress-{self.STEP_ID}", ProgressBar)
        except Exception:
            return
        self.query_one(".progress-row").add_class("active")
        if total > 0:
            bar.update(total=total, progress=done)
        else:
            bar.update(total=None)
        self.query_one(f"#progress-label-{self.STEP_ID}", Label).update(what)

    def work_finished(self, what: str) -> None:
        try:
            bar = self.query_one(f"#progress-{self.STEP_ID}", ProgressBar)
        except Exception:
            return
        self.query_one(".progress-row").add_class("active")
        bar.update(total=1, progress=1)
        self.query_one(f"#progress-label-{self.STEP_ID}", Label).update(what)

    # --- hooks the app calls ---------------------------------------------------------------------------
    def on_shown(self) -> None:
        """The user arrived at this step (first time or again)."""

    def refresh_from_session(self) -> None:
        """The environment or the findings changed: redraw what depends on them."""
