"""The command palette's own commands (ctrl+p): every step, every action of the current step by its name."""

from __future__ import annotations

from typing import Any, Iterable

from textual.app import SystemCommand

from ..core.steps import STEPS


def wizard_commands(app: Any) -> Iterable[SystemCommand]:
    for n, info in enumerate(STEPS, 1):
        yield SystemCommand(f"Go to step {n}: {info.title}", info.summary, lambda s=info.id: app.goto(s))
    for info in STEPS:
        if info.actions:
            yield SystemCommand(f"Apply: {info.title}", f"Preview and apply the changes of step '{info.title}' "
                                "(asks first)", lambda s=info.id: _on_step(app, s, "apply"))
    yield SystemCommand("Apply the changes of this step", "The current step's Apply (asks first)", app.action_apply)
    yield SystemCommand("Run / refresh this step", "The current step's r", app.action_run)
    yield SystemCommand("Verify now", "Read everything again and prove Kerberos on every server",
                        lambda: _on_step(app, "verify", "run"))
    yield SystemCommand("Run discovery again", "Re-read the forest, the servers and the namespaces",
                        app.run_discovery)
    yield SystemCommand("Copy the manual commands", "The current step's commands to the clipboard", app.action_copy)
    yield SystemCommand("Show the detail of the selection", "Evidence, reason, fix and commands in full",
                        app.action_detail)
    yield SystemCommand("Toggle dry-run", "Preview changes without ever applying them", app.action_toggle_dry_run)
    yield SystemCommand("Toggle the log pane", "Show or hide what the wizard did", app.action_toggle_log)
    yield SystemCommand("Widen or hide the checklist", "Full labels, or the whole width for the step",
                        app.action_toggle_checklist)
    yield SystemCommand("Toggle guidance", "Show or hide the guidance above each step", app.action_toggle_guidance)
    yield SystemCommand("Help for this step", "The step's guidance and keys", app.action_help)
    yield SystemCommand("Save the answers file",
                        "Write this session's choices to a file for asa-wizard plan / apply (change control)",
                        app.save_answers)
    if app.session.target is not None and app.session.target.is_lab:
        yield SystemCommand("Reset the lab", "Put the training scenario back as the file describes it", app.reset_lab)


def _on_step(app: Any, step_id: str, action: str) -> None:
    async def go() -> None:
        await app.show_step(step_id)
        pane = app.current_pane
        if pane is not None and action in pane.SUPPORTS:
            getattr(pane, f"do_{action}")()

    app.run_worker(go(), group="navigate", exclusive=True)
