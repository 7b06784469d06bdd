"""The `asa-wizard` command. Headless commands never import textual: the TUI is imported only by the
commands that open it."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .core.errors import WizardError

DEFAULT_SCENARIO = "new-server-missing-asa"


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="asa-wizard",
        description="Make Kerberos work for load-balanced Exchange: the Alternate Service Account, its SPNs, "
        "the credential on every server, Negotiate for clients and KCD for a Secure Email Gateway, "
        "verified per server.",
    )
    p.add_argument("--version", action="version", version=f"asa-wizard {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    lab = sub.add_parser("lab", help="open the wizard on the embedded training lab (no AD or Exchange needed)",
                         description="Open the wizard on a simulated organisation. `asa-wizard lab list` shows "
                         "the scenarios.")
    lab.add_argument("action", nargs="?", choices=["list", "open"], default="open",
                     help="list: show the scenarios; open (default): open the wizard")
    lab.add_argument("--scenario", "-s", default=DEFAULT_SCENARIO,
                     help=f"scenario name or path to a scenario .toml (default: {DEFAULT_SCENARIO})")
    lab.add_argument("--dry-run", action="store_true", help="show previews, never apply a change")
    from .headless_cli import add_headless_commands

    add_headless_commands(sub)
    return p


def cmd_lab(args: argparse.Namespace) -> int:
    if args.action == "list":
        from rich.table import Table
        from rich.markup import escape

        from .lab.scenario import list_scenarios

        t = Table(title="Training scenarios", show_lines=False)
        t.add_column("Scenario", style="bold", no_wrap=True)
        t.add_column("What the trainee finds")
        for s in list_scenarios():
            t.add_row(escape(s.name), escape(s.description))
        _console().print(t)
        _console().print("Open one with: asa-wizard lab --scenario NAME")
        return 0
    from .lab.scenario import find_scenario

    find_scenario(args.scenario)  # a clear error before the UI starts
    from .tui.app import run_lab  # the only place the lab command imports textual

    return run_lab(args.scenario, dry_run=args.dry_run)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from . import headless_cli

    handlers = {"lab": cmd_lab, "check": headless_cli.cmd_check, "plan": headless_cli.cmd_plan,
                "apply": headless_cli.cmd_apply, "resume": headless_cli.cmd_resume, "undo": headless_cli.cmd_undo,
                "report": headless_cli.cmd_report}
    try:
        return handlers[args.command](args)
    except WizardError as exc:
        from rich.markup import escape

        c = _console(stderr=True)
        c.print(f"[bold red]Error:[/] {escape(exc.problem)}")
        if exc.fix:
            c.print(f"[bold]Fix:[/] {escape(exc.fix)}")
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
