"""What the wizard knows during one run, kept apart from the widgets.

Every piece of work goes through the application service (`asa_wizard.service`), the same calls the headless
commands make: opening the target, discovery, the checks, the plan, apply (the rollout included, through the
executor, one journal per apply), resume, undo, Verify and the report. Nothing here imports textual.

The step statuses are derived, never remembered: after every apply, cancel, resume or undo the organisation
is read again and every check runs (`recheck`), and `step_statuses` computes each step's status from the
findings, whether the target is connected, and Verify's own result.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from ..core.answers import Answers, TargetAnswers
from ..core.model import Environment
from ..core.steps import STEPS
from ..service import operations as ops
from ..service import session as svc
from ..target import Target

Progress = Callable[[str, int, int], None]
_RANK = {"fail": 4, "warn": 3, "pass": 2, "skipped": 1}


def worst_status(statuses: list[str]) -> str | None:
    best: str | None = None
    for s in statuses:
        if best is None or _RANK.get(s, 0) > _RANK.get(best, 0):
            best = s
    return best


def check_statuses(findings: list[Any]) -> dict[str, str]:
    """check id -> its worst status."""
    out: dict[str, list[str]] = {}
    for f in findings:
        out.setdefault(f.check_id, []).append(str(getattr(f.status, "value", f.status)))
    return {cid: worst_status(v) or "skipped" for cid, v in out.items()}


def step_status(step_id: str, checks: dict[str, str | None], *, connected: bool, verified: str | None,
                report_saved: bool, chosen: bool = True) -> str | None:
    """A step's status from what is true now: Target is done when connected; Verify's status is its result; Report
    is done once saved; every other step is done when its checks pass (failures and warnings show as such; a step
    whose checks mostly could not run yet, because an earlier step is not done, is still to do). An optional step
    the user did not choose (no gateway) is skipped unless one of its checks fails or warns."""
    if step_id == "target":
        return "pass" if connected else None
    if step_id == "verify":
        return verified
    if step_id == "report":
        return "pass" if report_saved else None
    ids = next(s.checks for s in STEPS if s.id == step_id)
    statuses = [s for c in ids if (s := checks.get(c)) is not None]
    top = worst_status(statuses)
    if top in ("fail", "warn"):
        return top
    if not chosen:
        return "skipped"
    if top == "pass" and statuses.count("skipped") > statuses.count("pass"):
        return None
    return top


class WizardSession:
    """The target, what discovery found, the latest findings, this session's runs and the run's settings."""

    def __init__(self, *, dry_run: bool = False, scenario_name: str | None = None, restore: bool = False) -> None:
        self.opened: svc.Opened | None = None
        # `restore`: a lab opened again on its data folder (the classroom after a page reload) gets the runs that
        # folder recorded on it replayed (`service.operations.restore_lab`); `restored` counts the changes
        self.restore = restore
        self.restored = 0
        self.scenario_name = scenario_name
        self.dry_run = dry_run
        self.env: Environment | None = None
        self.findings: list[Any] = []
        self.baseline: list[Any] | None = None  # the first catalogue run, for the report's "before"
        self.answers: Answers = default_answers(None, scenario_name or "", dry_run)
        self.runs: list[Path] = []  # this session's journals, oldest first
        self.connected = False  # the connections were tested (or discovery read the target)
        self.verified: str | None = None  # Verify's result since the last change (None: not run since)
        self.proof: Any = None  # Verify's Kerberos proof
        self.report_saved = False
        # the ASA discovery found when nobody named one, and how it was found
        self.asa_found: tuple[str, str] | None = None

    # --- target -------------------------------------------------------------------------------------
    @property
    def target(self) -> Target | None:
        return self.opened.target if self.opened is not None else None

    def _reset(self) -> None:
        self.env = None
        self.findings = []
        self.baseline = None
        self.runs = []
        self.connected = False
        self.verified = None
        self.proof = None
        self.report_saved = False
        self.asa_found = None

    def open_lab(self, scenario: str) -> Target:
        """Open (or re-open) the lab on `scenario`; the previous target is closed first."""
        self.close()
        opened = svc.open_target(Answers(target=TargetAnswers(lab=scenario), dry_run=self.dry_run))
        try:
            opened.answers = answers = default_answers(opened.target.lab.scenario, scenario, self.dry_run)
            # restored before the session shows the target: nothing reads the lab half made again
            restored = ops.restore_lab(opened) if self.restore else ops.Restored()
        except BaseException:
            opened.close()
            raise
        if restored.answers is not None:  # the student's choices of the runs made again: their ASA, gateway
            if restored.answers.asa.name:
                answers.asa.mode, answers.asa.name = "reuse", restored.answers.asa.name
            if restored.answers.seg.service_account:
                answers.seg = restored.answers.seg
        self.opened, self.scenario_name, self.restored = opened, scenario, restored.changes
        self._reset()
        self.answers = answers
        return opened.target

    def open_real(self, answers: Answers, secrets: Any = None) -> Target:
        """Connect to a real domain with the Target step's answers (certificates validated unless the user opted
        out, which the target then carries so the header can show it). A missing password raises
        `service.NeedsPassword` naming the key to store it under."""
        answers.dry_run = self.dry_run
        opened = svc.open_target(answers, secrets=secrets, prompt=False)
        self.close()
        self.opened = opened
        self.scenario_name = None
        self._reset()
        self.answers = answers
        return opened.target

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()
            self.opened = None

    def require(self) -> svc.Opened:
        if self.opened is None:
            from ..core.errors import NotFound

            raise NotFound("No target is open.", "Choose a lab scenario or a domain on the Target step first.")
        return self.opened

    def require_target(self) -> Target:
        return self.require().target

    def test_connections(self) -> list[tuple[str, str]]:
        rows = svc.test_connections(self.require())
        self.connected = True
        return rows

    # --- reading --------------------------------------------------------------------------------------
    def discover(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> Environment:
        self.env = svc.discover(self.require(), progress=progress, cancel=cancel)
        self.connected = True
        self._adopt_found_asa(self.env)
        return self.env

    def _adopt_found_asa(self, env: Environment) -> None:
        """Nobody named the ASA and discovery found one (from the servers' credentials or the namespaces' SPNs):
        the ASA step reuses it instead of proposing to create another."""
        a = self.answers.asa
        if a.name is None and env.asa is not None and env.asa_sam:
            a.name, a.mode = env.asa_sam, "reuse"
            self.asa_found = (env.asa_sam, env.asa_source)

    def run_checks(self) -> list[Any]:
        """Run the whole catalogue on what was read; the first run is the report's "before"."""
        if self.env is None:
            return []
        self.findings = svc.run_checks(self.require(), self.env)
        if self.baseline is None:
            self.baseline = list(self.findings)
        return self.findings

    def recheck(self, progress: Progress | None = None) -> None:
        """After any change, cancel, resume or undo: read the organisation again and run every check, so that
        every status on screen follows from what is true now. Verify's result is void until it runs again."""
        say = progress or (lambda what, done, total: None)
        say("Reading the organisation again", 0, 0)
        self.discover()
        say("Running the checks again", 0, 0)
        self.run_checks()
        self.verified = None
        self.proof = None

    def verify(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> Any:
        result = svc.verify(self.require(), progress=progress, cancel=cancel)
        self.env = result.env
        self._adopt_found_asa(result.env)
        self.findings = result.findings
        self.connected = True
        if self.baseline is None:
            self.baseline = list(result.findings)
        if not (cancel is not None and cancel.is_set()):
            self.verified = result.status
            self.proof = result.proof
        return result.proof

    def step_statuses(self) -> dict[str, str | None]:
        checks = check_statuses(self.findings)
        chosen = {"seg": self.answers.seg.enabled, "iis-auth": self.answers.iis_auth.enabled}
        return {s.id: step_status(s.id, checks, connected=self.connected, verified=self.verified,
                                  report_saved=self.report_saved, chosen=chosen.get(s.id, True)) for s in STEPS}

    def clock(self) -> Any:
        return self.opened.now if self.opened is not None else None

    # --- choices and the plan ---------------------------------------------------------------------
    def chosen_asa(self) -> str | None:
        return self.answers.asa.name

    def plan(self) -> Any:
        if self.env is None or self.opened is None:
            return None
        self.answers.dry_run = self.dry_run
        self.opened.answers = self.answers
        return ops.make_plan(self.opened, self.env)

    def waiting_for(self, step_id: str) -> list[Any]:
        """Changes of earlier steps that this step's changes depend on and that are not in place yet."""
        plan = self.plan()
        if plan is None:
            return []
        mine = [c for c in plan.changes if c.step == step_id]
        ids = {c.id for c in mine}
        needed = {d for c in mine for d in c.depends_on if d not in ids}
        return [c for c in plan.changes if c.id in needed]

    # --- changes ---------------------------------------------------------------------------------------
    @property
    def journal(self) -> Any:
        """The newest journal of this session (None before the first apply)."""
        from ..core.journal import Journal

        return Journal.open(self.runs[-1]) if self.runs else None

    def _refuse_dry_run(self) -> None:
        if self.dry_run:
            from ..core.errors import PolicyRefused

            raise PolicyRefused("Dry-run is on: nothing is applied.", "Turn dry-run off (ctrl+t) to apply.")

    def apply(self, step_id: str, change_ids: list[str], progress: Callable[[Any], None] | None = None,
              cancel: threading.Event | None = None, reading: Progress | None = None) -> Any:
        """Apply these changes of the current plan (the rollout too) through the executor, in a new journal. The
        service then reads the organisation again and runs every check (recorded in the journal, so `asa-wizard
        report` renders the run from it): those become what the wizard shows. When that read did not happen
        (cancelled, or it failed) `result.after` is None and the caller re-checks."""
        self._refuse_dry_run()
        opened = self.require()
        plan = self.plan()
        journal = ops.new_journal(opened)
        previous = list(self.runs)
        self.runs.append(journal.path)
        result = ops.apply(opened, plan, journal, change_ids=change_ids, before=self.baseline, step=step_id,
                           previous_runs=previous, progress=progress, cancel=cancel, reading=reading)
        return self._adopt(result)

    def _adopt(self, result: Any) -> Any:
        """What the service read and checked right after a run (and recorded in its journal) is what the wizard
        shows now; Verify's result is void until it runs again."""
        if result.after is not None:
            self.env, self.findings = result.env, list(result.after)
            if self.baseline is None:
                self.baseline = list(self.findings)
            self.verified = None
            self.proof = None
        return result

    def unfinished_run(self, step_id: str | None = None) -> Path | None:
        """The newest run of this target that did not finish (this session's, or one an earlier session or
        `asa-wizard apply` left), optionally only one that has changes of `step_id` left."""
        if self.opened is None:
            return None
        for path in ops.unfinished_runs(self.answers.target):
            if step_id is None or any(c.step == step_id for c in ops.remaining(path)):
                return path
        return None

    def resume(self, path: Path, progress: Callable[[Any], None] | None = None,
               cancel: threading.Event | None = None, *, replay: bool = False, reading: Progress | None = None) -> Any:
        """Finish a run from its journal. `replay` (a run of an earlier session on a fresh lab): the lab is first
        brought to where that run left it."""
        self._refuse_dry_run()
        opened = self.require()
        if replay and opened.target.is_lab:
            from ..core.executor import plan_from_journal
            from ..core.journal import read_events

            events = list(read_events(path))
            plan, _ = plan_from_journal(events)
            ops.replay_lab(opened, plan, events)
        if path not in self.runs:
            self.runs.append(path)
        return self._adopt(ops.resume(opened, path, progress=progress, cancel=cancel, reading=reading))

    def undo(self, path: Path, progress: Callable[[Any], None] | None = None,
             cancel: threading.Event | None = None) -> Any:
        self._refuse_dry_run()
        return self._adopt(ops.undo(self.require(), path, progress=progress, cancel=cancel))

    # --- the report ---------------------------------------------------------------------------------
    def events(self) -> list[Any]:
        from ..core.journal import read_events

        return [e for path in self.runs for e in read_events(path)]

    def save_report(self, path: str, fmt: str) -> str:
        """Render the report (found, changed, passes now) and write it; returns the absolute path."""
        report = ops.build_report(self.opened, self.env, self.findings, events=self.events(), before=self.baseline,
                                  journal=", ".join(p.name for p in self.runs))
        saved = ops.save_report(report, fmt, path)
        self.report_saved = True
        return saved


def default_answers(scenario: Any, name: str, dry_run: bool) -> Answers:
    """Sensible first answers: the ASA the organisation already has (or a new computer account), the SEG when
    the scenario has one."""
    from ..core.answers import AsaAnswers, IisAuthAnswers, SegAnswers

    answers = Answers(target=TargetAnswers(lab=name or None), dry_run=dry_run)
    existing = getattr(scenario, "asa", None)
    answers.asa = AsaAnswers(mode="reuse" if existing else "create", name=existing or "EXCHASA$")
    lab_seg = getattr(scenario, "seg", None)
    if lab_seg is not None:
        answers.seg = SegAnswers(enabled=True, service_account=lab_seg.service_account,
                                 test_users=list(lab_seg.test_users), ews_proxy=lab_seg.ews_proxy)
        answers.iis_auth = IisAuthAnswers(enabled=True)
    return answers
