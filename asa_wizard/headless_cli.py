"""The headless commands: check, plan, apply, resume, undo, report, serve (the classroom). None of them
imports textual.

Exit codes: 0 everything passes / done; 1 warnings only (check) or a plan with blocking prerequisites (plan);
2 a failure (a check failed, or a change failed); 3 could not run (connection, credentials, bad input);
130 interrupted.

A lab lives for one process. Every command on `--lab SCENARIO` starts from a fresh lab of that scenario;
`resume`, `undo` and `report --recheck` on a lab journal first replay the journal's done changes onto a fresh lab
(not journalled again) so that they see the state the run left. `apply` checks the target right after its
changes and records those findings in the journal (`report` renders from them); `apply --then-check` prints them.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

from . import cli_output as out
from .core.errors import ConfigError
from .core.steps import EXCHANGE_CHECKS  # noqa: F401  (re-exported: the checks --no-exchange skips)
from .service.options import add_target_arguments, answers_from_args
from .service.session import KERBEROS_CHECKS  # noqa: F401  (re-exported)

FORMATS_CHECK = ("text", "json", "markdown", "html")
FORMATS_DOC = ("markdown", "html", "json")


def _add_confirmations(p: argparse.ArgumentParser) -> None:
    p.add_argument("--confirm-servers-hold-credential", action="store_true",
                   help="you confirmed by hand that every server behind each namespace holds the ASA's current "
                   "credential (lets a directory-only plan register the SPNs on the ASA; same as [spns] "
                   "confirm_servers_hold_credential = true)")


def add_headless_commands(sub: Any) -> None:
    c = sub.add_parser("check", help="run the whole check catalogue and exit 0 pass / 1 warn / 2 fail / 3 error",
                       description="Run every check against the lab or a real organisation. Exit codes: 0 all pass, "
                       "1 warnings only, 2 any failure, 3 could not run.")
    add_target_arguments(c, profile=True)
    c.add_argument("--format", choices=FORMATS_CHECK, default="text")
    c.add_argument("--out", metavar="FILE", help="write the result here instead of standard output")
    c.add_argument("--only", action="append", metavar="ID", help="a check id or area (repeatable)")

    p = sub.add_parser("plan", help="the change plan for an answers file, as a runbook",
                       description="Prerequisites, every change in order with its exact commands, the check that "
                       "proves it and its undo. Exit 1 when a blocking prerequisite is not met.")
    p.add_argument("--answers", required=True, metavar="FILE")
    add_target_arguments(p, overrides=True)
    p.add_argument("--format", choices=FORMATS_DOC, default="markdown")
    p.add_argument("--out", metavar="FILE")
    _add_confirmations(p)

    a = sub.add_parser("apply", help="make the planned changes, with a journal",
                       description="Do what the plan says, non-interactively: progress on stderr, one confirmation "
                       "unless --yes, the journal path printed at the end.")
    a.add_argument("--answers", required=True, metavar="FILE")
    add_target_arguments(a, overrides=True)
    a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    a.add_argument("--journal-dir", metavar="DIR", help="default: the data directory's journals/")
    a.add_argument("--then-check", action="store_true",
                   help="print the findings of the check catalogue run right after the changes (apply records them "
                   "in the journal either way)")
    _add_confirmations(a)

    r = sub.add_parser("resume", help="finish an interrupted apply from its journal")
    r.add_argument("--journal", metavar="FILE", help="default: the newest unfinished journal")
    r.add_argument("--yes", action="store_true")
    add_target_arguments(r, overrides=True)

    u = sub.add_parser("undo", help="reverse the changes a journal recorded, newest first")
    u.add_argument("--journal", metavar="FILE", help="default: the newest journal with changes")
    u.add_argument("--yes", action="store_true")
    add_target_arguments(u, overrides=True)

    rp = sub.add_parser("report", help="the report of a run: environment, before / after, changes, evidence")
    rp.add_argument("--journal", required=True, metavar="FILE")
    rp.add_argument("--format", choices=FORMATS_DOC, default="markdown")
    rp.add_argument("--out", metavar="FILE")
    rp.add_argument("--recheck", action="store_true",
                    help="check the target again now (a lab journal is replayed first) instead of reporting the "
                    "findings the run recorded; the target options apply only with it")
    add_target_arguments(rp, overrides=True)

    from .classroom import add_serve_arguments  # the command line only: the web server loads when it runs

    sv = sub.add_parser("serve", help="serve the training lab to browsers: a classroom, one lab per student",
                        description="Serve the wizard on the training lab to web browsers. Every browser session "
                        "gets its own lab (its own process and journal folder); the instructor page at / starts "
                        "labs and shows each one's progress. Binds to loopback unless --host says otherwise.")
    add_serve_arguments(sv)


def cmd_serve(args: argparse.Namespace) -> int:
    from .classroom import run_serve

    return run_serve(args)


# --- the target ----------------------------------------------------------------------------------------
def _answers(args: argparse.Namespace):
    """The answers of this command: the answers file (plan, apply) or the --profile (check), with the target
    flags (--no-exchange among them) and the confirmations on top."""
    from .core.answers import load_answers

    path = getattr(args, "answers", None) or getattr(args, "profile", None)
    answers = answers_from_args(args, load_answers(path) if path else None)
    if getattr(args, "confirm_servers_hold_credential", False):
        answers.spns.confirm_servers_hold_credential = True
    return answers


def _adjust(args: argparse.Namespace):
    """For resume / undo / report: the journal's recorded target, changed by the flags given."""
    return lambda answers: answers_from_args(args, answers)


def _discover(opened: Any) -> Any:
    from .service import discover

    out.err(f"Reading {opened.label}")
    return discover(opened, progress=out.discovery_progress())


def _check_rows(opened: Any, env: Any, only: list[str] | None = None) -> list[Any]:
    from .core.report import finding_rows
    from .service import run_checks

    out.err("Running the check catalogue" + (" (directory only: --no-exchange)" if opened.target.exchange is None
                                             else " (Kerberos proven on every server)"))
    return finding_rows(run_checks(opened, env, only=only))


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --- check -------------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    from .core.report import check_json, exit_code_for
    from .service import build_report, open_target
    from .service.operations import render_report

    opened = open_target(_answers(args))
    try:
        env = _discover(opened)
        rows = _check_rows(opened, env, args.only)
    finally:
        opened.close()
    if args.format == "text" and not args.out:
        out.print_findings_table(rows, opened.label, opened.target.insecure_tls)
    elif args.format == "json":
        out.write_out(check_json(rows, target=opened.label, generated_at=_now(),
                                 insecure_tls=opened.target.insecure_tls), args.out)
    else:
        fmt = "markdown" if args.format == "text" else args.format
        report = build_report(opened, env, rows, title="Kerberos for Exchange: checks")
        out.write_out(render_report(report, fmt), args.out)
    return exit_code_for(rows)


# --- plan --------------------------------------------------------------------------------------------
def cmd_plan(args: argparse.Namespace) -> int:
    from .core.report import render_plan
    from .resources import templates_dir
    from .service import make_plan, open_target

    opened = open_target(_answers(args))
    try:
        plan = make_plan(opened, _discover(opened))
    finally:
        opened.close()
    out.write_out(render_plan(plan, args.format, templates_dir()), args.out)
    if plan.blockers:
        out.err(f"{len(plan.blockers)} blocking prerequisite(s) not met: apply would refuse.")
        return 1
    return 0


# --- apply / resume / undo -------------------------------------------------------------------------
def cmd_apply(args: argparse.Namespace) -> int:
    from .core.locks import holding
    from .service import lock_target, open_target

    opened = open_target(_answers(args))
    try:  # one run per target, from the reading and planning to the last change
        with holding(lock_target(opened)):
            return _apply(opened, args)
    finally:
        opened.close()


def _apply(opened: Any, args: argparse.Namespace) -> int:
    from .service import apply, make_plan, new_journal, run_checks

    env = _discover(opened)
    plan = make_plan(opened, env)
    if plan.blockers:
        for b in plan.blockers:
            out.err(f"Blocking: {b.text}" + (f"\n  Fix: {b.fix}" if b.fix else ""))
        raise ConfigError(args.answers, f"{len(plan.blockers)} blocking prerequisite(s) are not met",
                          "Resolve them (asa-wizard plan shows each with its fix), then apply again.")
    if not plan.changes:
        out.err("Nothing to change: everything these answers ask for is already in place.")
        return _then_check(opened) if args.then_check else 0
    out.err(f"{len(plan.changes)} changes on {opened.label}:")
    for i, c in enumerate(plan.changes, 1):
        out.err(f"  {i:>2}. {c.summary}")
    if plan.dry_run:
        out.err("Dry run (dry_run = true in the answers): nothing was changed.")
        return 0
    out.confirm(f"Apply these {len(plan.changes)} changes?", args.yes)
    before = run_checks(opened, env)
    journal = new_journal(opened, directory=Path(args.journal_dir).expanduser() if args.journal_dir else None)
    out.err(f"Journal: {journal.path}")
    cancel = threading.Event()
    try:
        result = apply(opened, plan, journal, before=before, progress=out.change_progress(), cancel=cancel,
                       reading=_after_changes(opened))
    except KeyboardInterrupt:
        cancel.set()
        out.err(f"Interrupted. Resume with: asa-wizard resume --journal {journal.path}")
        return 130
    _record_error(result, journal.path)
    print(f"Journal: {journal.path}")
    code = out.summarize_result(result, journal.path)
    if args.then_check and code == 0 and result.after is not None:
        from .core.report import exit_code_for, finding_rows

        rows = finding_rows(result.after)  # checked and recorded by apply, right after the changes
        out.print_findings_table(rows, opened.label, insecure_tls=opened.target.insecure_tls)
        return exit_code_for(rows)
    return code


def _record_error(result: Any, path: Path) -> None:
    if result.record_error and not result.cancelled:  # the changes are journalled; the check after them is not
        out.err(f"Could not check the target after the changes: {result.record_error}\n"
                f"  The report of this run needs: asa-wizard report --journal {path} --recheck")


def _after_changes(opened: Any) -> Any:
    """Discovery's progress for the check apply runs after its changes, announced once when it starts."""
    shown = out.discovery_progress()
    said = []

    def progress(what: str, done: int, total: int) -> None:
        if not said:
            said.append(True)
            out.err(f"Checking {opened.label} after the changes (recorded in the journal for the report)")
        shown(what, done, total)

    return progress


def _then_check(opened: Any) -> int:
    from .core.report import exit_code_for

    rows = _check_rows(opened, _discover(opened))
    out.print_findings_table(rows, opened.label, opened.target.insecure_tls)
    return exit_code_for(rows)


def cmd_resume(args: argparse.Namespace) -> int:
    from .core.executor import unfinished
    from .core.locks import holding
    from .service import find_journal, lock_journal

    path = find_journal(args.journal, unfinished)
    with holding(lock_journal(path)):  # one resume / undo of a journal at a time, from its first reading
        return _resume(path, args)


def _resume(path: Path, args: argparse.Namespace) -> int:
    from .core.executor import unfinished
    from .service import reopen, resume

    opened, _, events = reopen(path, adjust=_adjust(args), say=out.err)
    try:
        if not unfinished(events):
            out.err("Every change of this run is done already.")
            print(f"Journal: {path}")
            return 0
        out.err(f"Resuming {path}")
        from .service.operations import ROLL_AGAIN, rolls_again

        if rolls_again(path):
            out.err(ROLL_AGAIN)
        result = resume(opened, path, progress=out.change_progress(), reading=_after_changes(opened))
        _record_error(result, path)
        print(f"Journal: {path}")
        return out.summarize_result(result, path)
    finally:
        opened.close()


def cmd_undo(args: argparse.Namespace) -> int:
    from .core.executor import undo_order
    from .core.locks import holding
    from .service import find_journal, lock_journal

    path = find_journal(args.journal, lambda evs: bool(undo_order(evs)))
    with holding(lock_journal(path)):  # one resume / undo of a journal at a time, from its first reading
        return _undo(path, args)


def _undo(path: Path, args: argparse.Namespace) -> int:
    from .core.executor import undo_order
    from .core.journal import read_events
    from .service import reopen, undo

    todo = undo_order(list(read_events(path)))
    if not todo:
        out.err("Nothing to undo in this journal.")
        return 0
    out.err(f"Undo, newest first ({path}):")
    for i, (change, _) in enumerate(todo, 1):
        out.err(f"  {i:>2}. {change.summary}")
        for cmd in change.undo_commands:
            out.err(f"        {cmd}")
    out.confirm(f"Undo these {len(todo)} changes?", args.yes)
    opened, _, _ = reopen(path, adjust=_adjust(args), say=out.err)
    try:
        result = undo(opened, path, progress=out.change_progress(), reading=_after_changes(opened))
    finally:
        opened.close()
    _record_error(result, path)
    print(f"Journal: {path}")
    if result.failed:
        for cid, why in result.failed.items():
            out.err(f"Undo failed: {cid}: {why}")
        return 2
    return 0


# --- report ------------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    """From the run's record (the target is not opened); `--recheck` checks the target again now."""
    from .service import find_journal, journal_report
    from .service.operations import render_report

    path = find_journal(args.journal, lambda evs: True)
    report = journal_report(path, recheck=args.recheck, adjust=_adjust(args), say=out.err,
                            reading=out.discovery_progress())
    out.write_out(render_report(report, args.format), args.out)
    return 0
