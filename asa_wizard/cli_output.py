"""What the headless commands print: progress and messages on stderr, results on stdout or in a file.

Nothing here decides anything; the commands (`headless_cli.py`) call the application service and hand its
results here. Text from outside is printed literally (Rich markup escaped, control characters shown escaped:
`core.text`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .core.errors import ConfigError


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def err(text: str) -> None:
    """A plain line on stderr (progress and messages); never markup-interpreted, control characters escaped."""
    from .core.text import terminal_safe

    print(terminal_safe(text), file=sys.stderr, flush=True)


def write_out(text: str, out: str | None) -> None:
    if out:
        path = Path(out).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        err(f"Written: {path}")
    else:
        sys.stdout.write(text)  # rendered by core.report: outside text already terminal-safe
        sys.stdout.flush()


def discovery_progress():
    """Discovery's progress as indented lines, each said once."""
    state = {"last": ""}

    def progress(what: str, done: int, total: int) -> None:
        line = f"{what} ({done}/{total})" if total > 1 else what
        if line != state["last"]:
            state["last"] = line
            err(f"  {line}")

    return progress


def change_progress():
    """The executor's progress events as `[i/n] state  summary` lines."""
    def show(ev: Any) -> None:
        words = {"running": "...", "done": "done", "already": "already in place", "failed": "FAILED",
                 "skipped": "skipped", "undone": "undone", "kept": "kept", "cancelled": "cancelled"}
        line = f"[{ev.index}/{ev.total}] {words.get(ev.state, ev.state):<8} {ev.summary}"
        if ev.message and ev.state not in ("running",):
            line += f"\n        {ev.message}"
        err(line)

    return show


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError("--yes", "standard input is not a terminal, so there is no one to confirm",
                          "Run it on a terminal, or add --yes to confirm on the command line.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        from .core.errors import Cancelled

        raise Cancelled("Nothing was changed.", "Run the command again when ready.")


def print_findings_table(rows: list[Any], target: str, insecure_tls: bool = False) -> None:
    from rich.table import Table

    from .core.report import AREA_TITLES, INSECURE_TLS_NOTE, STATUS_ICONS
    from .core.text import markup_safe as escape

    c = console()
    styles = {"pass": "green", "warn": "yellow", "fail": "bold red", "skipped": "dim"}
    table = Table(title=f"Checks: {escape(target)}", show_lines=False, expand=False)
    table.add_column("Status", no_wrap=True)
    table.add_column("Check")
    table.add_column("Subject")
    table.add_column("Evidence")
    area = None
    for r in rows:
        if r.area != area:
            area = r.area
            table.add_section()
            table.add_row("", f"[bold]{escape(AREA_TITLES.get(area, area))}[/]", "", "")
        table.add_row(f"[{styles[r.status]}]{STATUS_ICONS[r.status]} {r.status}[/]", f"{escape(r.title)}\n[dim]{r.id}[/]",
                      escape(r.subject), escape(r.evidence or r.skipped_reason))
    c.print(table)
    problems = [r for r in rows if r.status in ("fail", "warn")]
    for r in problems:
        c.print(f"[{styles[r.status]}]{STATUS_ICONS[r.status]} {escape(r.title)}[/]"
                + (f" — {escape(r.subject)}" if r.subject else ""))
        if r.reason:
            c.print(f"  {escape(r.reason)}")
        if r.fix:
            c.print("  Fix: " + escape(r.fix).replace("\n", "\n       "))
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("pass", "warn", "fail", "skipped")}
    c.print(f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed, "
            f"{counts['skipped']} skipped")
    if insecure_tls:
        c.print(f"[bold red]Insecure TLS:[/] {escape(INSECURE_TLS_NOTE)}")


def summarize_result(result: Any, path: Path) -> int:
    """The executor's result in one line (and each failure), with the exit code it means."""
    err(f"{len(result.done)} done, {len(result.already)} already in place, {len(result.failed)} failed, "
        f"{len(result.skipped)} not attempted.")
    if result.cancelled:
        err(f"Cancelled. Resume with: asa-wizard resume --journal {path}")
        return 130
    if result.failed or result.skipped:
        for cid, why in result.failed.items():
            err(f"Failed: {cid}: {why}")
        err(f"Fix the cause, then: asa-wizard resume --journal {path}")
        return 2
    return 0
