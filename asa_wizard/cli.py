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
    lab.add_argument("--random-faults", metavar="SEED",
                     help="break the scenario with a reproducible random set of faults (the same seed gives the "
                     "same faults) and make fixing them an exercise; best on --scenario healthy")
    lab.add_argument("--restore", action="store_true",
                     help="make again the changes this data folder's journals recorded on the same scenario, "
                     "oldest run first, except runs from before the last 'Reset the lab' (the classroom reopens a "
                     "student's lab this way after a page reload)")
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
    if args.random_faults is not None:
        import os

        from .lab.faults import SEED_ENV, parse_seed, with_random_faults
        from .lab.scenario import load_scenario

        seed = parse_seed(args.random_faults)
        with_random_faults(load_scenario(find_scenario(args.scenario)), seed)  # the same clear errors, first
        os.environ[SEED_ENV] = str(seed)  # the lab opens in the app's worker: LabWorld.open reads it there
    from .tui.app import run_lab  # the only place the lab command imports textual

    return run_lab(args.scenario, dry_run=args.dry_run, restore=args.restore)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from . import headless_cli

    handlers = {"lab": cmd_lab, "check": headless_cli.cmd_check, "plan": headless_cli.cmd_plan,
                "apply": headless_cli.cmd_apply, "resume": headless_cli.cmd_resume, "undo": headless_cli.cmd_undo,
                "report": headless_cli.cmd_report, "serve": headless_cli.cmd_serve}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure is the tool's own error: problem and fix, exit 3, no traceback
        return _report_error(as_wizard_error(exc, args.command))


def as_wizard_error(exc: BaseException, command: str = "") -> WizardError:
    """Any failure as a WizardError: the tool's own ones as they are, anything else named plainly."""
    if isinstance(exc, WizardError):
        return exc
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return WizardError(f"{exc.strerror or type(exc).__name__}{where}.",
                           "Check the path, its permissions and the free space, then run the command again.")
    if isinstance(exc, UnicodeError):
        return WizardError(f"Text that is not valid UTF-8 was met ({exc}).",
                           "Save the file as UTF-8, then run the command again.")
    return WizardError(f"asa-wizard {command} stopped on an unexpected {type(exc).__name__}: {exc}",
                       "Nothing after this point was done. Run the command again; if it repeats, report it with "
                       "this message (the journal, if any, shows what was done).")


def _report_error(exc: WizardError) -> int:
    from .core.text import markup_safe

    try:
        c = _console(stderr=True)
        c.print(f"[bold red]Error:[/] {markup_safe(exc.problem)}")
        if exc.fix:
            c.print(f"[bold]Fix:[/] {markup_safe(exc.fix)}")
    except Exception:  # the console itself failed (a closed stream): plain text as a last resort
        print(f"Error: {exc}", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
