"""What the wizard knows during one run, kept apart from the widgets.

The app's thread workers call these methods; nothing here imports textual, so the same calls can be tested
and timed without a terminal. The adapters sit behind `Target`: the UI never talks to LDAP or WinRM itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.model import Environment, SegConfig
from ..target import Target

Progress = Callable[[str, int, int], None]


# Checklist labels that fit a 30-column sidebar; the steps themselves are `core.steps.STEPS`.
SHORT_TITLES = {
    "target": "Target",
    "discovery": "Discovery",
    "asa": "ASA account",
    "rollout": "Rollout",
    "spns": "SPNs",
    "client-auth": "Client auth",
    "seg": "SEG delegation",
    "iis-auth": "IIS auth (SEG)",
    "verify": "Verify",
    "report": "Report",
}


@dataclass
class RealTargetForm:
    """What the Target step collects for a real domain (no secret: the password travels separately)."""

    dc: str
    ldap_mode: str = "ldaps"  # ldaps | starttls
    bind: str = "kerberos"  # kerberos | simple | ntlm
    user: str = ""
    winrm: str = "kerberos"  # kerberos | ntlm | credssp
    insecure_tls: bool = False

    @property
    def needs_password(self) -> bool:
        return self.bind != "kerberos" or self.winrm != "kerberos"

    @property
    def secret_key(self) -> str:
        """The keyring key, the same one the headless commands look up."""
        return f"ldap:{self.user}@{self.dc}"


@dataclass
class WizardSession:
    """The target, what discovery found, the latest findings, and the run's settings."""

    target: Target | None = None
    scenario_name: str | None = None
    dry_run: bool = False
    env: Environment | None = None
    findings: list[Any] = field(default_factory=list)  # core.checks.Finding
    answers: Any = None  # core.answers.Answers: every choice the steps collect
    baseline: list[Any] | None = None  # the first catalogue run, for the report's "before"
    journal: Any = None  # core.journal.Journal of this run's changes

    def __post_init__(self) -> None:
        if self.answers is None:
            self.answers = default_answers(None, self.scenario_name or "", self.dry_run)

    # --- target -------------------------------------------------------------------------------------
    def open_lab(self, scenario: str) -> Target:
        """Open (or re-open) the lab on `scenario`; the previous target is closed first."""
        from ..target import open_lab

        self.close()
        self.target = open_lab(scenario)
        self.scenario_name = scenario
        world = self.target.lab
        self.env = None
        self.findings = []
        self.baseline = None
        self.journal = None
        self.answers = default_answers(world.scenario if world is not None else None, scenario, self.dry_run)
        return self.target

    def open_real(self, form: "RealTargetForm", password: Any) -> Target:
        """Connect to a real domain with the settings from the Target step (certificates validated unless the
        user opted out, which the target then carries so the header can show it)."""
        from ..adapters.ldap import LdapDirectory, LdapSettings
        from ..adapters.exchange import real_exchange
        from ..adapters.winrm import WinRmSettings

        directory = LdapDirectory(LdapSettings(host=form.dc, mode=form.ldap_mode, bind=form.bind, user=form.user,
                                               password=password if form.bind != "kerberos" else None,
                                               insecure_skip_tls_verify=form.insecure_tls, use_global_catalog=True))
        settings = WinRmSettings(transport=form.winrm, user=form.user,
                                 password=password if form.winrm != "kerberos" else None,
                                 validate_certificate=not form.insecure_tls)
        settings.check()
        self.close()
        self.target = Target(label=f"{form.dc}", directory=directory, exchange=real_exchange(settings),
                             kerberos=None, insecure_tls=form.insecure_tls)
        self.scenario_name = None
        self.env = None
        self.findings = []
        self.baseline = None
        self.journal = None
        self.answers = default_answers(None, "", self.dry_run)
        self.answers.target.lab = None
        self.answers.target.dc = form.dc
        return self.target

    def close(self) -> None:
        if self.target is not None:
            self.target.close()
            self.target = None

    def require_target(self) -> Target:
        if self.target is None:
            from ..core.errors import NotFound

            raise NotFound("No target is open.", "Choose a lab scenario or a domain on the Target step first.")
        return self.target

    def test_connections(self) -> list[tuple[str, str]]:
        """(what, result) for the directory, Exchange and Kerberos: each asked one real question."""
        target = self.require_target()
        out = [("Directory", target.directory.describe())]
        forest = target.directory.read_forest()
        out.append(("Forest", f"{forest.root_domain} ({len(forest.domains)} domain(s), {len(forest.sites)} site(s))"))
        if target.exchange is not None:
            out.append(("Exchange", target.exchange.describe()))
        if target.kerberos is not None:
            out.append(("Kerberos", target.kerberos.describe()))
        return out

    # --- discovery and checks ---------------------------------------------------------------------
    def discover(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> Environment:
        """Read the organisation through the target's ports."""
        from ..core.discovery import DiscoveryOptions, discover

        target = self.require_target()
        options = DiscoveryOptions(asa_sam=self.chosen_asa(), seg=self.seg_config())
        self.env = discover(target.directory, target.exchange, options, progress=progress, cancel=cancel)
        return self.env

    def run_checks(self, only: list[str] | None = None) -> list[Any]:
        """Run the catalogue (or the named checks) and merge the results into `findings`."""
        from ..core.checks import run_catalogue

        if self.env is None:
            return []
        target = self.require_target()
        fresh = run_catalogue(self.env, probe=target.kerberos, only=only, now=self.clock())
        if only is None:
            self.findings = list(fresh)
            if self.baseline is None:
                self.baseline = list(fresh)
        else:
            ids = {f.check_id for f in fresh}
            self.findings = [f for f in self.findings if f.check_id not in ids] + list(fresh)
        return fresh

    def clock(self) -> Any:
        """'Now' for the checks: the scenario's own time in the lab (its dates are fixed), else None (UTC now)."""
        world = self.target.lab if self.target is not None else None
        return getattr(getattr(world, "scenario", None), "now", None)

    def verify(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> Any:
        """Read everything again, prove Kerberos on every server, run the whole catalogue. Returns the probe
        report (tickets, per-server results, S4U)."""
        from ..core.checks import ProbeReport, run_catalogue, run_probes

        say = progress or (lambda what, done, total: None)
        self.discover(progress=progress, cancel=cancel)
        target = self.require_target()
        say("Proving Kerberos on every server", 0, 0)
        report = run_probes(self.env, target.kerberos, cancel=cancel) if target.kerberos else ProbeReport(
            s4u_skipped="No Kerberos probe is available for this target.")
        say("Running the whole check catalogue", 0, 0)
        self.findings = run_catalogue(self.env, probe=report, now=self.clock(), cancel=cancel)
        if self.baseline is None:
            self.baseline = list(self.findings)
        return report

    def save_report(self, path: str, fmt: str, generated_at: str) -> str:
        """Render the report (found, changed, passes now) and write it; returns the absolute path."""
        from pathlib import Path

        from ..core.report import build_report, render_report
        from ..resources import templates_dir

        events = self.journal.events() if self.journal is not None else []
        report = build_report(after=self.findings, env=self.env, before=self.baseline, events=events,
                              target=self.target.label if self.target else "", generated_at=generated_at,
                              journal=str(self.journal.path) if self.journal is not None else "")
        out = Path(path).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_report(report, fmt, templates_dir()), encoding="utf-8")
        return str(out.resolve())

    # --- choices and the plan ---------------------------------------------------------------------
    def chosen_asa(self) -> str | None:
        return self.answers.asa.name if self.answers is not None else None

    def seg_config(self) -> SegConfig | None:
        a = self.answers
        if a is None or not a.seg.enabled or not a.seg.service_account:
            return None
        return SegConfig(a.seg.service_account, list(a.seg.test_users), a.seg.ews_proxy)

    def plan(self) -> Any:
        """The whole plan for the current environment and answers (core.plan.build_plan)."""
        from ..core.plan import build_plan

        if self.env is None:
            return None
        self.answers.dry_run = self.dry_run
        return build_plan(self.env, self.answers, target=self.target.label if self.target else "")

    # --- changes ---------------------------------------------------------------------------------------
    def open_journal(self) -> Any:
        """One journal for the session's changes (ASA_WIZARD_DATA_DIR decides where)."""
        from ..core.journal import Journal

        if self.journal is None:
            label = "lab-" + (self.scenario_name or "run") if self.target and self.target.is_lab else "run"
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in label)[:60]
            self.journal = Journal.create(label=safe)
        return self.journal

    def waiting_for(self, step_id: str) -> list[Any]:
        """Changes of earlier steps that this step's changes depend on and that are not in place yet."""
        plan = self.plan()
        if plan is None:
            return []
        mine = [c for c in plan.changes if c.step == step_id]
        ids = {c.id for c in mine}
        needed = {d for c in mine for d in c.depends_on if d not in ids}
        return [c for c in plan.changes if c.id in needed]

    def apply(self, step_id: str, change_ids: list[str], progress: Callable[[Any], None] | None = None,
              cancel: threading.Event | None = None) -> Any:
        """Apply the listed changes of the current plan through the executor, with the journal."""
        from ..core.executor import Executor
        from ..core.plan import Plan

        if self.dry_run:
            from ..core.errors import PolicyRefused

            raise PolicyRefused("Dry-run is on: nothing is applied.", "Turn dry-run off (ctrl+t) to apply.")
        target = self.require_target()
        plan = self.plan()
        wanted = set(change_ids)
        subset = Plan(target=plan.target, asa=plan.asa, changes=[c for c in plan.changes if c.id in wanted],
                      prerequisites=list(plan.prerequisites), notes=list(plan.notes), dry_run=False,
                      concurrency=plan.concurrency)
        executor = Executor(target.directory, target.exchange, self.open_journal(), progress=progress, cancel=cancel)
        return executor.apply(subset, target={"label": target.label, "step": step_id})

    def rollout_request(self) -> Any:
        """The rollout engine's request from the plan: the ASA, the servers, and the copy source if any."""
        from ..core.rollout import RolloutRequest

        plan = self.plan()
        rolls = [c for c in plan.changes if c.step == "rollout"] if plan else []
        if plan is None or not plan.asa or not rolls:
            return None
        names = {c.target.lower() for c in rolls}
        source = None
        if not any(c.action == "roll-generate" for c in rolls):
            src = self.env.server(rolls[0].params.get("source", "")) if self.env else None
            source = src.name if src else None
            if src is not None:
                names.add(src.name.lower())
        servers = [s for s in self.env.servers if s.name.lower() in names]
        if source is None:  # the generate goes first: put its server at the head of the list
            first = next(c.target for c in rolls if c.action == "roll-generate")
            servers.sort(key=lambda s: s.name.lower() != first.lower())
        return RolloutRequest(account=plan.asa, servers=servers, source=source,
                              concurrency=self.answers.rollout.concurrency)

    def rollout(self, request: Any, progress: Callable[[Any], None] | None = None,
                cancel: threading.Event | None = None) -> Any:
        """Run (or resume: the same journal) the credential rollout with the rollout engine."""
        from ..core.rollout import run_rollout

        if self.dry_run:
            from ..core.errors import PolicyRefused

            raise PolicyRefused("Dry-run is on: nothing is applied.", "Turn dry-run off (ctrl+t) to apply.")
        target = self.require_target()
        asa_sam = self.chosen_asa()

        def pwd_last_set() -> Any:
            account = target.directory.get_account(asa_sam) if asa_sam else None
            return account.pwd_last_set if account else None

        return run_rollout(target.exchange, self.open_journal(), request, progress=progress, cancel=cancel,
                           pwd_last_set=pwd_last_set, directory=target.directory)


def default_answers(scenario: Any, name: str, dry_run: bool) -> Any:
    """Sensible first answers: the ASA the organisation already has (or a new computer account), the SEG when
    the scenario has one."""
    from ..core.answers import Answers, AsaAnswers, IisAuthAnswers, SegAnswers, TargetAnswers

    answers = Answers(target=TargetAnswers(lab=name), dry_run=dry_run)
    existing = getattr(scenario, "asa", None)
    answers.asa = AsaAnswers(mode="reuse" if existing else "create", name=existing or "EXCHASA$")
    lab_seg = getattr(scenario, "seg", None)
    if lab_seg is not None:
        answers.seg = SegAnswers(enabled=True, service_account=lab_seg.service_account,
                                 test_users=list(lab_seg.test_users), ews_proxy=lab_seg.ews_proxy)
        answers.iis_auth = IisAuthAnswers(enabled=True)
    return answers
