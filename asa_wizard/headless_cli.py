"""The headless commands: check, plan, apply, resume, undo, report. None of them imports textual.

Exit codes: 0 everything passes / done; 1 warnings only (check) or a plan with blocking prerequisites (plan);
2 a failure (a check failed, or a change failed); 3 could not run (connection, credentials, bad input);
130 interrupted.

A lab lives for one process. Every command on `--lab SCENARIO` starts from a fresh lab of that scenario;
`resume`, `undo` and `report` on a lab journal first replay the journal's done changes onto a fresh lab (not
journalled again) so that they see the state the run left. `apply --then-check` runs the check catalogue in
the same process, right after the changes.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .core.errors import ConfigError, WizardError
from .resources import templates_dir

FORMATS_CHECK = ("text", "json", "markdown", "html")
FORMATS_DOC = ("markdown", "html", "json")


# ----------------------------------------------------------------------------------------------------
def _add_target_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target (one of --lab, --dc, --profile)")
    g.add_argument("--lab", metavar="SCENARIO", help="the embedded lab, fresh from this scenario")
    g.add_argument("--profile", metavar="FILE", help="an answers file whose [target] (and ASA / SEG) to use")
    g.add_argument("--dc", metavar="HOST", help="a domain controller (host name)")
    g.add_argument("--ldap", choices=("ldaps", "starttls"), default="ldaps", help="LDAP over TLS (default ldaps)")
    g.add_argument("--bind", choices=("simple", "kerberos", "ntlm"), default="simple")
    g.add_argument("--user", help="DOMAIN\\user or user@domain (the password: keyring, "
                   "ASA_WIZARD_LDAP_PASSWORD, or a prompt)")
    g.add_argument("--ca-file", help="PEM file of the CA that issued the DC's certificate")
    g.add_argument("--dc-tls-name", metavar="NAME",
                   help="the name on the DC's certificate, when --dc is an address (default: --dc)")
    g.add_argument("--insecure-skip-tls-verify", action="store_true",
                   help="do not validate the DC's certificate (not recommended; reported as insecure)")
    g.add_argument("--no-exchange", action="store_true",
                   help="read the directory only (no WinRM): the checks that need the Exchange servers are skipped")
    g.add_argument("--winrm-transport", choices=("kerberos", "ntlm", "credssp"), default="kerberos")
    g.add_argument("--winrm-scheme", choices=("https", "http"), default="https")
    g.add_argument("--winrm-port", type=int)
    g.add_argument("--winrm-ca-file")
    g.add_argument("--winrm-user", help="default: --user (password: ASA_WIZARD_WINRM_PASSWORD, keyring, prompt)")
    g.add_argument("--asa", metavar="SAM", help="the ASA's sAMAccountName (default: the one the servers use)")
    g.add_argument("--seg-account", metavar="SAM", help="the SEG service account, to check KCD")


def add_headless_commands(sub: Any) -> None:
    c = sub.add_parser("check", help="run the whole check catalogue and exit 0 pass / 1 warn / 2 fail / 3 error",
                       description="Run every check against the lab or a real organisation. Exit codes: 0 all pass, "
                       "1 warnings only, 2 any failure, 3 could not run.")
    _add_target_options(c)
    c.add_argument("--format", choices=FORMATS_CHECK, default="text")
    c.add_argument("--out", metavar="FILE", help="write the result here instead of standard output")
    c.add_argument("--only", action="append", metavar="ID", help="a check id or area (repeatable)")

    p = sub.add_parser("plan", help="the change plan for an answers file, as a runbook",
                       description="Prerequisites, every change in order with its exact commands, the check that "
                       "proves it and its undo. Exit 1 when a blocking prerequisite is not met.")
    p.add_argument("--answers", required=True, metavar="FILE")
    p.add_argument("--lab", metavar="SCENARIO", help="plan against this lab scenario instead of [target]")
    p.add_argument("--format", choices=FORMATS_DOC, default="markdown")
    p.add_argument("--out", metavar="FILE")

    a = sub.add_parser("apply", help="make the planned changes, with a journal",
                       description="Do what the plan says, non-interactively: progress on stderr, one confirmation "
                       "unless --yes, the journal path printed at the end.")
    a.add_argument("--answers", required=True, metavar="FILE")
    a.add_argument("--lab", metavar="SCENARIO", help="apply to this lab scenario instead of [target]")
    a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    a.add_argument("--journal-dir", metavar="DIR", help="default: the data directory's journals/")
    a.add_argument("--then-check", action="store_true",
                   help="run the check catalogue after the changes (in this process: needed for the lab)")

    r = sub.add_parser("resume", help="finish an interrupted apply from its journal")
    r.add_argument("--journal", metavar="FILE", help="default: the newest unfinished journal")
    r.add_argument("--yes", action="store_true")

    u = sub.add_parser("undo", help="reverse the changes a journal recorded, newest first")
    u.add_argument("--journal", metavar="FILE", help="default: the newest journal with changes")
    u.add_argument("--yes", action="store_true")

    rp = sub.add_parser("report", help="the report of a run: environment, before / after, changes, evidence")
    rp.add_argument("--journal", required=True, metavar="FILE")
    rp.add_argument("--format", choices=FORMATS_DOC, default="markdown")
    rp.add_argument("--out", metavar="FILE")


# ----------------------------------------------------------------------------------------------------
def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _err(text: str) -> None:
    """A plain line on stderr (progress and messages); never markup-interpreted."""
    print(text, file=sys.stderr, flush=True)


def _write_out(text: str, out: str | None) -> None:
    if out:
        path = Path(out).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        _err(f"Written: {path}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _load_answers(path: str):
    from .core.answers import load_answers

    return load_answers(path)


def _target_answers_from_args(args: argparse.Namespace):
    """The [target] for check: --lab, --profile or the --dc options."""
    from .core.answers import TargetAnswers, WinRmAnswers

    if getattr(args, "profile", None):
        return _load_answers(args.profile)
    if args.lab:
        return _answers_with(TargetAnswers(lab=args.lab), args)
    if args.dc:
        winrm = WinRmAnswers(transport=args.winrm_transport, scheme=args.winrm_scheme,
                             port=args.winrm_port or (5986 if args.winrm_scheme == "https" else 5985),
                             ca_file=args.winrm_ca_file, user=args.winrm_user)
        t = TargetAnswers(dc=args.dc, ldap=args.ldap, bind=args.bind, user=args.user, ca_file=args.ca_file,
                          insecure_skip_tls_verify=args.insecure_skip_tls_verify, winrm=winrm)
        return _answers_with(t, args)
    raise ConfigError("command line", "no target", "Give --lab SCENARIO, --dc HOST (with --user), or --profile FILE.")


def _answers_with(target: Any, args: argparse.Namespace):
    from .core.answers import Answers, AsaAnswers, SegAnswers

    a = Answers(target=target)
    a.asa = AsaAnswers(mode="reuse", name=args.asa, enctypes=None)
    if args.seg_account:
        a.seg = SegAnswers(enabled=True, service_account=args.seg_account)
    return a


# --- opening a target --------------------------------------------------------------------------------
# The checks that need what only the Exchange servers tell (their credentials, virtual directories, IIS and
# services, read over WinRM) or that talk to them (the Kerberos proof presents tickets to each server):
# `check --no-exchange` does not run them and says why.
EXCHANGE_CHECKS = ("asa.one-per-generation", "spn.order", "rollout.coverage", "rollout.current",
                   "rollout.same-account", "rollout.service-host", "auth.outlook-anywhere", "auth.mapi",
                   "kcd.iis-iusrs", "kcd.eas-auth", "kcd.ews-auth", "kerberos.server", "kerberos.s4u")
NO_EXCHANGE = "Not checked: --no-exchange (the Exchange servers were not read or contacted)."
NO_GSSAPI = ("No Kerberos probe: python-gssapi is not installed. Install it with pip install 'asa-wizard[kerberos]' "
             "(it builds against the MIT Kerberos libraries: libkrb5-dev or krb5-devel).")
KERBEROS_CHECKS = ("kerberos.ticket", "kerberos.server", "kerberos.s4u")


class Opened:
    """A target plus what the commands need beside it: the clock for the checks, who is acting, the Kerberos
    probe (for a real target made once discovery has named the realm) and the checks not to run, with why."""

    def __init__(self, target: Any, answers: Any, *, make_probe: Any = None,
                 skip: dict[str, str] | None = None) -> None:
        self.target = target
        self.answers = answers
        self.skip = dict(skip or {})
        self._make_probe = make_probe
        world = target.lab
        self.now = world.scenario.now if world is not None else None
        self.actor = (world.scenario.admin_user if world is not None else
                      (answers.target.user or getpass.getuser()))
        if world is not None:
            # the lab's own choices fill what the answers leave open, like the wizard does
            if answers.asa.name is None and world.scenario.asa:
                answers.asa.name = world.scenario.asa
            if not answers.seg.enabled and world.scenario.seg is not None and answers.path is None:
                answers.seg.enabled = True
                answers.seg.service_account = world.scenario.seg.service_account
                answers.seg.test_users = list(world.scenario.seg.test_users)
                answers.seg.ews_proxy = world.scenario.seg.ews_proxy

    def probe(self, env: Any) -> Any:
        """The Kerberos probe for this target (None: the kerberos checks say why in `skip`)."""
        if self.target.kerberos is None and self._make_probe is not None:
            self.target.kerberos, self._make_probe = self._make_probe(env), None
        if self.target.kerberos is not None and self.target.exchange is None:
            return _TicketsOnly(self.target.kerberos)
        return self.target.kerberos

    def close(self) -> None:
        probe = self.target.kerberos
        if not self.target.is_lab and hasattr(probe, "close"):
            probe.close()
        self.target.close()


class _TicketsOnly:
    """The probe's tickets from the KDC, and nothing sent to an Exchange server (--no-exchange)."""

    def __init__(self, probe: Any) -> None:
        self._probe = probe

    def describe(self) -> str:
        return self._probe.describe()

    def service_ticket(self, spn: str) -> Any:
        return self._probe.service_ticket(spn)

    def probe_server(self, server: Any, namespace: str) -> Any:
        from .core.ports import ProbeOutcome, ProbeResult

        return ProbeResult(server.name, f"HTTP/{namespace}", ProbeOutcome.ERROR, NO_EXCHANGE)

    def s4u(self, service_account: str, user: str, spn: str, server: Any) -> Any:
        from .core.ports import ProbeOutcome, ProbeResult

        return ProbeResult(server.name, spn, ProbeOutcome.ERROR, NO_EXCHANGE)


def open_target(answers: Any, *, exchange: bool = True, tls_name: str | None = None) -> Opened:
    """Open the lab or the real organisation. Without `exchange` nothing talks to the Exchange servers."""
    t = answers.target
    skip = {} if exchange else dict.fromkeys(EXCHANGE_CHECKS, NO_EXCHANGE)
    if t.is_lab:
        from .target import open_lab

        target = open_lab(t.lab)
        if not exchange:
            target.exchange = None
        return Opened(target, answers, skip=skip)
    target, make_probe = _open_real(t, exchange=exchange, tls_name=tls_name)
    if make_probe is None:
        skip.update({cid: NO_GSSAPI for cid in KERBEROS_CHECKS if cid not in skip})
    return Opened(target, answers, make_probe=make_probe, skip=skip)


def _secret(env_name: str, key: str, prompt: str):
    """A password from the environment, the keyring, or a prompt (only on a terminal)."""
    from .core.secrets import Secret

    value = os.environ.get(env_name)
    if value:
        return Secret(value)
    try:
        from .adapters.secrets import KeyringSecretStore

        store = KeyringSecretStore()
        found = store.get(key) if store.available else None
        if found:
            return found
    except Exception:  # a broken keyring is not a reason to stop: fall through to the prompt
        pass
    if sys.stdin.isatty():
        return Secret(getpass.getpass(prompt))
    raise ConfigError(env_name, "no password available",
                      f"Set {env_name}, store it in the keyring (the wizard offers to), or run on a terminal.")


def _open_real(t: Any, *, exchange: bool = True, tls_name: str | None = None):
    """The ports of a real organisation, and a maker of its Kerberos probe (None: python-gssapi is missing)."""
    from .adapters.ldap import LdapDirectory, LdapSettings
    from .core.answers import LDAP_PASSWORD_ENV, WINRM_PASSWORD_ENV
    from .target import Target

    ldap_password = None
    if t.bind != "kerberos":
        ldap_password = _secret(LDAP_PASSWORD_ENV, f"ldap:{t.user}@{t.dc}", f"Password for {t.user} on {t.dc}: ")
    directory = LdapDirectory(LdapSettings(host=t.dc, mode=t.ldap, bind=t.bind, user=t.user or "",
                                           password=ldap_password, ca_file=t.ca_file,
                                           insecure_skip_tls_verify=t.insecure_skip_tls_verify, tls_name=tls_name,
                                           use_global_catalog=True))
    make_probe = _kerberos_maker(t, ldap_password)
    if not exchange:
        return Target(label=f"{t.dc}", directory=directory, exchange=None, kerberos=None,
                      insecure_tls=t.insecure_skip_tls_verify), make_probe
    from .adapters.exchange import real_exchange
    from .adapters.winrm import WinRmSettings

    w = t.winrm
    winrm_user = w.user or t.user or ""
    winrm_password = None
    if w.transport != "kerberos" or winrm_user:
        if os.environ.get(WINRM_PASSWORD_ENV) or winrm_user != t.user or ldap_password is None:
            winrm_password = _secret(WINRM_PASSWORD_ENV, f"winrm:{winrm_user}", f"WinRM password for {winrm_user}: ")
        else:
            winrm_password = ldap_password
    settings = WinRmSettings(transport=w.transport, user=winrm_user, password=winrm_password, scheme=w.scheme,
                             port=w.port, ca_file=w.ca_file, validate_certificate=not w.insecure_skip_tls_verify)
    settings.check()
    return Target(label=f"{t.dc}", directory=directory, exchange=real_exchange(settings), kerberos=None,
                  insecure_tls=t.insecure_skip_tls_verify or w.insecure_skip_tls_verify), make_probe


def _kerberos_maker(t: Any, password: Any):
    """How to make the GSSAPI probe once discovery knows the realm: as the directory user (a TGT of its own from
    the same password, in memory), or from the ticket cache with --bind kerberos. None without python-gssapi."""
    try:
        for module in ("gssapi", "krb5"):
            importlib.import_module(module)
    except ImportError:
        return None

    def make(env: Any) -> Any:
        from .adapters.kerberos import GssKerberosProbe

        asa = env.asa
        domain = env.forest.domain_of_dn(asa.dn) if asa is not None else None
        realm = domain.realm if domain else env.forest.root_domain.upper()
        principal = None if t.bind == "kerberos" or not t.user else _principal(t.user, env, realm)
        return GssKerberosProbe(realm, principal=principal, password=password if principal else None,
                                ca_file=t.ca_file, verify_tls=not t.insecure_skip_tls_verify)

    return make


def _principal(user: str, env: Any, realm: str) -> str:
    """DOMAIN\\user or user@domain as a Kerberos principal (the realm of the domain it names)."""
    if "\\" in user:
        netbios, _, name = user.partition("\\")
        domain = next((d for d in env.forest.domains if d.netbios_name.lower() == netbios.lower()), None)
        return f"{name}@{domain.realm if domain else realm}"
    name, _, suffix = user.partition("@")
    domain = next((d for d in env.forest.domains if d.dns_name.lower() == suffix.lower()), None)
    return f"{name}@{domain.realm if domain else (suffix.upper() or realm)}"


# --- shared steps ----------------------------------------------------------------------------------
def _discover(opened: Opened):
    from .core.discovery import DiscoveryOptions, discover
    from .core.plan import discovery_seg

    a = opened.answers
    state = {"last": ""}

    def progress(what: str, done: int, total: int) -> None:
        line = f"{what} ({done}/{total})" if total > 1 else what
        if line != state["last"]:
            state["last"] = line
            _err(f"  {line}")

    _err(f"Reading {opened.target.label}")
    return discover(opened.target.directory, opened.target.exchange,
                    DiscoveryOptions(asa_sam=a.asa.name, seg=discovery_seg(a)), progress=progress)


def _run_checks(opened: Opened, env: Any, only: list[str] | None = None) -> list[Any]:
    """The findings as report rows, in catalogue order; the checks the target cannot run are skipped with why."""
    from .core.checks import run_catalogue, select
    from .core.report import FindingRow, finding_rows

    _err("Running the check catalogue" + (" (directory only: --no-exchange)" if opened.target.exchange is None
                                          else " (Kerberos proven on every server)"))
    try:
        checks = select(only)
    except ValueError as exc:
        raise ConfigError("--only", str(exc), "Use check ids from docs/checks.md or area names.") from None
    run = [c.id for c in checks if c.id not in opened.skip]
    by_check: dict[str, list[Any]] = {}
    for r in finding_rows(run_catalogue(env, probe=opened.probe(env), now=opened.now, only=run) if run else []):
        by_check.setdefault(r.id, []).append(r)
    rows: list[Any] = []
    for c in checks:
        rows.extend(by_check.get(c.id, []) if c.id in run else
                    [FindingRow(id=c.id, title=c.title, area=c.area, status="skipped", skipped_reason=opened.skip[c.id])])
    return finding_rows(rows)


def _generated_at() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _print_findings_table(rows: list[Any], target: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    from .core.report import AREA_TITLES, STATUS_ICONS

    console = _console()
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
    console.print(table)
    problems = [r for r in rows if r.status in ("fail", "warn")]
    for r in problems:
        console.print(f"[{styles[r.status]}]{STATUS_ICONS[r.status]} {escape(r.title)}[/]"
                      + (f" — {escape(r.subject)}" if r.subject else ""))
        if r.reason:
            console.print(f"  {escape(r.reason)}")
        if r.fix:
            console.print("  Fix: " + escape(r.fix).replace("\n", "\n       "))
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("pass", "warn", "fail", "skipped")}
    console.print(f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed, "
                  f"{counts['skipped']} skipped")


def _render_findings(rows: list[Any], fmt: str, target: str, env: Any) -> str:
    from .core.report import build_report, check_json, render_report

    generated = _generated_at()
    if fmt == "json":
        return check_json(rows, target=target, generated_at=generated)
    report = build_report(after=rows, env=env, target=target, generated_at=generated,
                          title="Kerberos for Exchange: checks")
    return render_report(report, fmt, templates_dir())


# --- check -------------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    from .core.report import exit_code_for

    answers = _target_answers_from_args(args)
    opened = open_target(answers, exchange=not args.no_exchange, tls_name=args.dc_tls_name)
    try:
        env = _discover(opened)
        rows = _run_checks(opened, env, args.only)
    finally:
        opened.close()
    if args.format == "text" and not args.out:
        _print_findings_table(rows, opened.target.label)
    else:
        fmt = "markdown" if args.format == "text" else args.format
        _write_out(_render_findings(rows, fmt, opened.target.label, env), args.out)
    return exit_code_for(rows)


# --- plan --------------------------------------------------------------------------------------------
def _answers_for(args: argparse.Namespace):
    answers = _load_answers(args.answers)
    if getattr(args, "lab", None):
        from .core.answers import TargetAnswers

        answers.target = TargetAnswers(lab=args.lab)
    return answers


def _make_plan(opened: Opened):
    from .core.plan import build_plan

    env = _discover(opened)
    return env, build_plan(env, opened.answers, target=opened.target.label)


def cmd_plan(args: argparse.Namespace) -> int:
    from .core.report import render_plan

    opened = open_target(_answers_for(args))
    try:
        _, plan = _make_plan(opened)
    finally:
        opened.close()
    _write_out(render_plan(plan, args.format, templates_dir()), args.out)
    if plan.blockers:
        _err(f"{len(plan.blockers)} blocking prerequisite(s) not met: apply would refuse.")
        return 1
    return 0


# --- apply / resume / undo -------------------------------------------------------------------------
def _progress_printer():
    def show(ev: Any) -> None:
        words = {"running": "...", "done": "done", "already": "already in place", "failed": "FAILED",
                 "skipped": "skipped", "undone": "undone", "kept": "kept", "cancelled": "cancelled"}
        line = f"[{ev.index}/{ev.total}] {words.get(ev.state, ev.state):<8} {ev.summary}"
        if ev.message and ev.state not in ("running",):
            line += f"\n        {ev.message}"
        _err(line)

    return show


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError("--yes", "standard input is not a terminal, so there is no one to confirm",
                          "Run it on a terminal, or add --yes to confirm on the command line.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        from .core.errors import Cancelled

        raise Cancelled("Nothing was changed.", "Run the command again when ready.")


def _journal_dir(args: argparse.Namespace) -> Path | None:
    return Path(args.journal_dir).expanduser() if getattr(args, "journal_dir", None) else None


def _target_record(answers: Any) -> dict[str, Any]:
    """What resume / undo / report need to reconnect: the [target] (never a password) and the ASA / SEG choices."""
    t = asdict(answers.target)
    return {"target": t, "asa": answers.asa.name,
            "seg": asdict(answers.seg) if answers.seg.enabled else None}


def _before_rows(rows: list[Any]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def cmd_apply(args: argparse.Namespace) -> int:
    from .core.executor import Executor
    from .core.journal import Journal

    answers = _answers_for(args)
    opened = open_target(answers)
    try:
        env, plan = _make_plan(opened)
        if plan.blockers:
            for b in plan.blockers:
                _err(f"Blocking: {b.text}" + (f"\n  Fix: {b.fix}" if b.fix else ""))
            raise ConfigError(args.answers, f"{len(plan.blockers)} blocking prerequisite(s) are not met",
                              "Resolve them (asa-wizard plan shows each with its fix), then apply again.")
        if not plan.changes:
            _err("Nothing to change: everything these answers ask for is already in place.")
            return _then_check(opened, args) if args.then_check else 0
        _err(f"{len(plan.changes)} changes on {opened.target.label}:")
        for i, c in enumerate(plan.changes, 1):
            _err(f"  {i:>2}. {c.summary}")
        if plan.dry_run:
            _err("Dry run (dry_run = true in the answers): nothing was changed.")
            return 0
        _confirm(f"Apply these {len(plan.changes)} changes?", args.yes)
        before = _run_checks(opened, env)
        journal = Journal.create(_journal_dir(args), actor=opened.actor, label="apply")
        record = _target_record(answers)
        record["before"] = _before_rows(before)
        cancel = threading.Event()
        executor = Executor(opened.target.directory, opened.target.exchange, journal, progress=_progress_printer(),
                            cancel=cancel)
        _err(f"Journal: {journal.path}")
        try:
            result = executor.apply(plan, target=record)
        except KeyboardInterrupt:
            cancel.set()
            _err(f"Interrupted. Resume with: asa-wizard resume --journal {journal.path}")
            return 130
        print(f"Journal: {journal.path}")
        code = _summarize_result(result, journal.path)
        if args.then_check and code == 0:
            return _then_check(opened, args)
        return code
    finally:
        opened.close()


def _summarize_result(result: Any, path: Path) -> int:
    _err(f"{len(result.done)} done, {len(result.already)} already in place, {len(result.failed)} failed, "
         f"{len(result.skipped)} not attempted.")
    if result.cancelled:
        _err(f"Cancelled. Resume with: asa-wizard resume --journal {path}")
        return 130
    if result.failed or result.skipped:
        for cid, why in result.failed.items():
            _err(f"Failed: {cid}: {why}")
        _err(f"Fix the cause, then: asa-wizard resume --journal {path}")
        return 2
    return 0


def _then_check(opened: Opened, args: argparse.Namespace) -> int:
    from .core.report import exit_code_for

    env = _discover(opened)
    rows = _run_checks(opened, env)
    _print_findings_table(rows, opened.target.label)
    return exit_code_for(rows)


def _newest_journal(predicate) -> Path:
    from .core.journal import default_journal_dir, read_events

    directory = default_journal_dir()
    candidates = sorted(directory.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    for path in candidates:
        if predicate(list(read_events(path))):
            return path
    raise ConfigError(str(directory), "no suitable journal found", "Name one with --journal FILE.")


def _journal_path(arg: str | None, predicate) -> Path:
    if arg:
        path = Path(arg).expanduser()
        if not path.is_file():
            raise ConfigError(str(path), "no such journal file", "Check the path (journals end in .jsonl).")
        return path
    return _newest_journal(predicate)


def _reopen(path: Path) -> tuple[Opened, Any]:
    """Reconnect to the target a journal recorded. A lab is rebuilt and the done changes replayed onto it."""
    from .core.answers import Answers, AsaAnswers, SegAnswers, TargetAnswers, WinRmAnswers
    from .core.executor import plan_from_journal
    from .core.journal import read_events

    events = list(read_events(path))
    plan, record = plan_from_journal(events)
    t = dict(record.get("target") or {})
    winrm = WinRmAnswers(**(t.pop("winrm", None) or {}))
    answers = Answers(target=TargetAnswers(**t, winrm=winrm),
                      asa=AsaAnswers(mode="reuse", name=record.get("asa"), enctypes=None))
    if record.get("seg"):
        answers.seg = SegAnswers(**record["seg"])
    answers.path = str(path)
    opened = open_target(answers)
    if opened.target.is_lab:
        _replay_lab(opened, plan, events)
    return opened, plan


def _replay_lab(opened: Opened, plan: Any, events: list[Any]) -> None:
    """Bring a fresh lab to where the journal's run left it: its done changes, in order, through the ports."""
    from .core.executor import Executor
    from .core.journal import Journal, summarize
    from .core.plan import Plan

    done_ids = {st.change.id for st in summarize(events) if st.state == "done"}
    done = [c for c in plan.changes if c.id in done_ids]  # as planned (the rollout engine reads the plan's)
    if not done:
        return
    _err(f"Lab: replaying the {len(done)} done changes of the journal onto a fresh lab")
    with tempfile.TemporaryDirectory() as scratch:
        replay = Executor(opened.target.directory, opened.target.exchange, Journal.create(Path(scratch)))
        result = replay.apply(Plan(target="replay", asa=plan.asa, changes=done, concurrency=plan.concurrency))
    if result.failed:
        raise WizardError("The lab could not be brought to the journal's state: "
                          + "; ".join(f"{k}: {v}" for k, v in result.failed.items()),
                          "Start a new lab run with asa-wizard apply.")


def cmd_resume(args: argparse.Namespace) -> int:
    from .core.executor import Executor, unfinished
    from .core.journal import Journal

    path = _journal_path(args.journal, unfinished)
    opened, plan = _reopen(path)
    try:
        journal = Journal.open(path)
        if not unfinished(journal.events()):
            _err("Every change of this run is done already.")
            print(f"Journal: {path}")
            return 0
        _err(f"Resuming {path}")
        result = Executor(opened.target.directory, opened.target.exchange, journal,
                          progress=_progress_printer()).resume()
        print(f"Journal: {path}")
        return _summarize_result(result, path)
    finally:
        opened.close()


def cmd_undo(args: argparse.Namespace) -> int:
    from .core.executor import Executor, undo_order
    from .core.journal import Journal, read_events

    path = _journal_path(args.journal, lambda evs: bool(undo_order(evs)))
    todo = undo_order(list(read_events(path)))
    if not todo:
        _err("Nothing to undo in this journal.")
        return 0
    _err(f"Undo, newest first ({path}):")
    for i, (change, _) in enumerate(todo, 1):
        _err(f"  {i:>2}. {change.summary}")
        for cmd in change.undo_commands:
            _err(f"        {cmd}")
    _confirm(f"Undo these {len(todo)} changes?", args.yes)
    opened, _ = _reopen(path)
    try:
        result = Executor(opened.target.directory, opened.target.exchange, Journal.open(path),
                          progress=_progress_printer()).undo()
    finally:
        opened.close()
    print(f"Journal: {path}")
    if result.failed:
        for cid, why in result.failed.items():
            _err(f"Undo failed: {cid}: {why}")
        return 2
    return 0


# --- report ------------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from .core.executor import plan_from_journal
    from .core.journal import read_events
    from .core.report import FindingRow, build_report, render_report

    path = _journal_path(args.journal, lambda evs: True)
    events = list(read_events(path))
    _, record = plan_from_journal(events)
    opened, _ = _reopen(path)
    try:
        env = _discover(opened)
        after = _run_checks(opened, env)
    finally:
        opened.close()
    before = [FindingRow(**r) for r in record.get("before") or []]
    report = build_report(after=after, env=env, before=before or None, events=events, target=opened.target.label,
                          generated_at=events[-1].ts if events else "", journal=path.name)
    _write_out(render_report(report, args.format, templates_dir()), args.out)
    return 0
