"""Changing a target and accounting for it: plan, apply, resume, undo, report.

Every change, the credential rollout included, goes through the executor (`core.executor.Executor`): one
`Change` shape, one journal per apply that starts with `run-start` (the plan, and the target to reconnect to,
never a password). One run at a time changes a target and writes a journal: `apply`, `resume` and `undo` hold
the target's lock (`lock_target`, in the data directory) and the journal's own lock (`lock_journal`) while they
work; a second run is refused with the process that holds them. A caller may take the same locks earlier (the
headless `apply` holds the target's before it reads and plans) and the functions here share them. A journal the wizard wrote is resumed, undone and reported by the headless commands exactly
like one `asa-wizard apply` wrote, and the other way round.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from ..core.answers import Answers, AsaAnswers, SegAnswers, TargetAnswers, WinRmAnswers
from ..core.errors import ConfigError, WizardError
from ..core.journal import Journal, JournalEvent
from ..core.locks import FileLock, holding
from ..core.model import Environment
from ..core.plan import Plan
from .session import Opened, Progress, SecretSource, discover, open_target, run_checks

ChangeProgress = Callable[[Any], None]  # core.executor.ProgressEvent


# --- plan -------------------------------------------------------------------------------------------------
def make_plan(opened: Opened, env: Environment) -> Plan:
    """The whole plan for this environment and the answers (core.plan.build_plan)."""
    from ..core.plan import build_plan

    return build_plan(env, opened.answers, target=opened.label)


def subset(plan: Plan, change_ids: Iterable[str]) -> Plan:
    """The plan with only these changes (in the plan's order); what they depend on outside it is assumed done."""
    wanted = set(change_ids)
    return Plan(target=plan.target, asa=plan.asa, changes=[c for c in plan.changes if c.id in wanted],
                prerequisites=list(plan.prerequisites), notes=list(plan.notes), dry_run=plan.dry_run,
                concurrency=plan.concurrency)


# --- apply ------------------------------------------------------------------------------------------------
def target_record(answers: Answers, *, label: str = "", before: Iterable[Any] | None = None,
                  step: str | None = None, previous_runs: Iterable[Path] = ()) -> dict[str, Any]:
    """What resume / undo / report need to reconnect: the [target] (never a password), the ASA / SEG choices,
    whether the run was directory-only (no_exchange: they reconnect without WinRM too), the
    findings before the change (for the report's before / after), the wizard step it came from, and the runs
    of the same session before it (a fresh lab replays them first)."""
    record: dict[str, Any] = {"target": asdict(answers.target), "asa": answers.asa.name,
                              "seg": asdict(answers.seg) if answers.seg.enabled else None,
                              "no_exchange": answers.no_exchange}
    if label:
        record["label"] = label
    if step:
        record["step"] = step
    previous = [str(p) for p in previous_runs]
    if previous:
        record["previous_runs"] = previous
    if before is not None:
        from ..core.report import finding_rows

        record["before"] = [asdict(r) for r in finding_rows(before)]
    return record


# --- one run at a time ----------------------------------------------------------------------------------
def lock_target(opened: Opened) -> FileLock:
    """The lock on this target (one apply / resume / undo at a time): in the data directory, whatever journal
    directory a run writes to, so every run on this machine meets it."""
    from ..core.journal import default_journal_dir
    from ..core.locks import target_lock

    return target_lock(default_journal_dir().parent, opened.label)


def lock_journal(path: Path) -> FileLock:
    """The journal's own lock (one writer at a time)."""
    from ..core.journal import journal_lock

    return journal_lock(Path(path))


def journal_label(opened: Opened, what: str = "apply") -> str:
    base = f"{what}-lab-{opened.target.lab.scenario.name}" if opened.target.is_lab else f"{what}-{opened.label}"
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in base)[:60]


def new_journal(opened: Opened, *, directory: Path | None = None, what: str = "apply") -> Journal:
    """A new journal for one apply (ASA_WIZARD_DATA_DIR or `directory` decides where); its file name holds the
    time and the run id, so no two runs share a file."""
    return Journal.create(directory, actor=opened.actor, label=journal_label(opened, what))


def apply(opened: Opened, plan: Plan, journal: Journal, *, change_ids: Iterable[str] | None = None,
          before: Iterable[Any] | None = None, step: str | None = None, previous_runs: Iterable[Path] = (),
          progress: ChangeProgress | None = None, cancel: threading.Event | None = None,
          record: bool = True, reading: Progress | None = None) -> Any:
    """Apply the plan (or only `change_ids` of it) through the executor: `run-start` with the target record, then
    every change journalled; the rollout by the rollout engine inside the executor. Holds the target's lock and
    the journal's while it runs (`Locked` when another run holds either). Then (unless cancelled, or `record` is
    False) the organisation is read again, every check runs, and those findings and the environment are written
    to the journal (`core.report.record_findings`): the report of the run renders from that record. `reading`:
    discovery's progress for that read. Returns the RunResult, with `env` and `after` (the findings after it)
    when they were recorded, else `record_error` saying why not."""
    from ..core.executor import Executor

    run = subset(plan, change_ids) if change_ids is not None else plan
    with holding(lock_target(opened)), holding(lock_journal(journal.path)):
        target = target_record(opened.answers, label=opened.label, before=before, step=step,
                               previous_runs=previous_runs)
        executor = Executor(opened.target.directory, opened.target.exchange, journal, progress=progress,
                            cancel=cancel, **_roll_options(opened))
        result = executor.apply(run, target=target)
        if record and not result.cancelled:
            record_after(opened, journal, result, reading=reading, cancel=cancel)
    return result


def record_after(opened: Opened, journal: Journal, result: Any, *, reading: Progress | None = None,
                 cancel: threading.Event | None = None) -> None:
    """Read the organisation and run every check after a run, and write the findings with the environment to
    its journal. A failure to read leaves the journal without them (`result.record_error` says why): the changes
    are journalled either way, only the report from the record is missing."""
    from ..core.report import record_findings

    try:
        env = discover(opened, progress=reading, cancel=cancel)
        after = run_checks(opened, env, cancel=cancel)
    except WizardError as exc:
        result.record_error = str(exc)
        return
    if cancel is not None and cancel.is_set():  # a partial read is not a record of the target
        result.record_error = "cancelled while checking the target after the changes"
        return
    record_findings(journal, after=after, env=env, target=opened.label)
    result.env, result.after = env, after


def _roll_options(opened: Opened) -> dict[str, Any]:
    """How the executor's rollout rolls (`[rollout] method`) and proves each server afterwards (the target's
    Kerberos probe on the namespaces' host names: the key version of the current password)."""
    from .session import roll_proof

    probe, namespaces = roll_proof(opened)
    return {"probe": probe, "namespaces": namespaces, "roll_method": opened.answers.rollout.method}


# --- journals -----------------------------------------------------------------------------------------------
def journals(directory: Path | None = None) -> list[Path]:
    """Every journal, newest first."""
    from ..core.journal import default_journal_dir

    d = directory or default_journal_dir()
    if not d.is_dir():
        return []
    return sorted(d.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def find_journal(arg: str | None, predicate: Callable[[list[JournalEvent]], bool]) -> Path:
    """The journal named on the command line, or the newest one `predicate` accepts."""
    from ..core.journal import default_journal_dir, read_events

    if arg:
        path = Path(arg).expanduser()
        if not path.is_file():
            raise ConfigError(str(path), "no such journal file", "Check the path (journals end in .jsonl).")
        return path
    for path in journals():
        if predicate(list(read_events(path))):
            return path
    raise ConfigError(str(default_journal_dir()), "no suitable journal found", "Name one with --journal FILE.")


def recorded_answers(events: list[JournalEvent], path: Path | None = None) -> Answers:
    """The answers a journal's run was made with (target, ASA, SEG, no_exchange), as far as it recorded them."""
    from ..core.executor import plan_from_journal

    _, record = plan_from_journal(events)
    t = dict(record.get("target") or {})
    winrm = WinRmAnswers(**(t.pop("winrm", None) or {}))
    known = set(TargetAnswers.__dataclass_fields__)
    answers = Answers(target=TargetAnswers(**{k: v for k, v in t.items() if k in known}, winrm=winrm),
                      asa=AsaAnswers(mode="reuse", name=record.get("asa"), enctypes=None))
    if record.get("seg"):
        answers.seg = SegAnswers(**record["seg"])
    answers.no_exchange = bool(record.get("no_exchange"))
    answers.path = str(path) if path else "journal"
    return answers


def same_target(a: TargetAnswers, b: TargetAnswers) -> bool:
    if a.is_lab or b.is_lab:
        return bool(a.lab) and a.lab == b.lab
    return (a.dc or "").lower() == (b.dc or "").lower()


def unfinished_runs(target: TargetAnswers, directory: Path | None = None) -> list[Path]:
    """The journals of this target whose apply did not finish, newest first (the wizard offers to resume)."""
    from ..core.executor import unfinished
    from ..core.journal import read_events

    out = []
    for path in journals(directory):
        try:
            events = list(read_events(path))
            if not unfinished(events):
                continue
            if same_target(recorded_answers(events, path).target, target):
                out.append(path)
        except WizardError:
            continue
    return out


def reopen(path: Path, *, adjust: Callable[[Answers], Answers] | None = None,
           secrets: SecretSource | None = None, prompt: bool = True,
           say: Callable[[str], None] | None = None) -> tuple[Opened, Plan, list[JournalEvent]]:
    """Reconnect to the target a journal recorded (`adjust` may change it: other TLS options on this machine).
    A lab is rebuilt and the done changes replayed onto it."""
    from ..core.executor import plan_from_journal
    from ..core.journal import read_events

    events = list(read_events(path))
    plan, _ = plan_from_journal(events)
    answers = recorded_answers(events, path)
    if adjust is not None:
        answers = adjust(answers)
    opened = open_target(answers, secrets=secrets, prompt=prompt)
    if opened.target.is_lab:
        try:
            replay_lab(opened, plan, events, say=say)
        except BaseException:
            opened.close()
            raise
    return opened, plan, events


def replay_lab(opened: Opened, plan: Plan, events: list[JournalEvent],
               say: Callable[[str], None] | None = None) -> int:
    """Bring a fresh lab to where the journal's run left it: its done changes, in order, through the ports (not
    journalled again). Returns how many changes were replayed."""
    from ..core.executor import plan_from_journal
    from ..core.journal import read_events

    _, record = plan_from_journal(events)
    replayed = 0
    for earlier in record.get("previous_runs") or []:  # the same session's runs before this one, in order
        path = Path(earlier)
        if path.is_file():
            earlier_events = list(read_events(path))
            earlier_plan, _ = plan_from_journal(earlier_events)
            replayed += _replay(opened, earlier_plan, earlier_events, say)
    return replayed + _replay(opened, plan, events, say)


def _replay(opened: Opened, plan: Plan, events: list[JournalEvent], say: Callable[[str], None] | None) -> int:
    from ..core.executor import Executor
    from ..core.journal import summarize

    done_ids = {st.change.id for st in summarize(events) if st.state == "done"}
    done = [c for c in plan.changes if c.id in done_ids]  # as planned (the rollout engine reads the plan's)
    if not done:
        return 0
    if say is not None:
        say(f"Lab: replaying the {len(done)} done changes of the journal onto a fresh lab")
    with tempfile.TemporaryDirectory() as scratch:
        replay = Executor(opened.target.directory, opened.target.exchange, Journal.create(Path(scratch)))
        result = replay.apply(Plan(target="replay", asa=plan.asa, changes=done, concurrency=plan.concurrency))
    if result.failed:
        raise WizardError("The lab could not be brought to the journal's state: "
                          + "; ".join(f"{k}: {v}" for k, v in result.failed.items()),
                          "Start a new lab run with asa-wizard apply.")
    return len(done)


LAB_RESET_MARK = "lab-reset"  # in the data folder: when the lab was last reset to its scenario (ISO time)


def mark_lab_reset(when: datetime | None = None) -> None:
    """Remember that the lab was put back to its scenario now: runs from before it are not restored."""
    from ..core.journal import default_journal_dir

    folder = default_journal_dir().parent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LAB_RESET_MARK).write_text((when or datetime.now(timezone.utc)).isoformat(), encoding="utf-8")


@dataclass
class Restored:
    changes: int = 0  # done changes made again
    answers: Answers | None = None  # what the newest restored run was made with (its ASA, its gateway)


def restore_lab(opened: Opened, directory: Path | None = None,
                say: Callable[[str], None] | None = None) -> Restored:
    """A lab opened again on a data folder that already recorded runs on it (the classroom reopens a student's
    lab this way after a page reload): every run of the same scenario, oldest first, has its done changes
    replayed onto the fresh lab (what was undone stays undone; nothing is journaled again). Runs that started
    before the last "Reset the lab" are left out, as the reset threw them away."""
    from ..core.executor import plan_from_journal
    from ..core.journal import default_journal_dir, read_events

    if not opened.target.is_lab:
        return Restored()
    folder = directory or default_journal_dir()
    mark = folder.parent / LAB_RESET_MARK
    since = ""
    if mark.is_file():
        since = _iso_utc(mark.read_text(encoding="utf-8").strip())
    runs = []
    for path in journals(folder):
        try:
            events = list(read_events(path))
        except WizardError:
            continue  # a journal that cannot be read is not restored (and the report says why elsewhere)
        if not events or not same_target(recorded_answers(events, path).target, opened.answers.target):
            continue
        started = _iso_utc(events[0].ts)
        if started and since and started <= since:
            continue
        runs.append((started, path, events))
    out = Restored()
    for _, path, events in sorted(runs, key=lambda r: (r[0], r[1].name)):
        plan, _ = plan_from_journal(events)
        out.changes += _replay(opened, plan, events, say)
        out.answers = recorded_answers(events, path)
    return out


def _iso_utc(text: str) -> str:
    """An ISO time as comparable text in UTC ("" if it is not one)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat()


def remaining(path: Path) -> list[Any]:
    """The changes of a journal's run that are not done yet, in plan order."""
    from ..core.journal import read_events

    return _left(list(read_events(path)))[1]


def _left(events: list[Any]) -> tuple[Any, list[Any]]:
    """(the run's plan, its changes not done yet, in plan order)."""
    from ..core.executor import plan_from_journal
    from ..core.journal import summarize

    plan, _ = plan_from_journal(events)
    states = {st.change.id: st.state for st in summarize(events)}
    return plan, [c for c in plan.changes if states.get(c.id) not in ("done", "undone")]


ROLL_AGAIN = ("The interrupted credential roll never changed AD, and its password was not kept anywhere: "
              "finishing it generates a new password, pushes it to every server again, then sets it in AD "
              "once (the unused one is cleaned up from the servers).")


def rolls_again(path: Path) -> bool:
    """Whether finishing a journal's run rolls a new password: its native roll was interrupted before the AD
    change (after it, the servers that missed it get a copy and no password is generated)."""
    from ..core.journal import read_events
    from ..core.rollout import AD_ID

    plan, changes = _left(list(read_events(path)))
    left = {c.id for c in changes}
    pushed = [c for c in plan.changes if c.action in ("roll-push", "roll-generate") and c.id not in left]
    return AD_ID in left and bool(pushed)


def resume(opened: Opened, path: Path, *, progress: ChangeProgress | None = None,
           cancel: threading.Event | None = None, record: bool = True, reading: Progress | None = None) -> Any:
    """Finish the run a journal recorded, on an open target. A roll interrupted after its AD change is finished
    with copies (never a second password); one interrupted before it rolls again (`rolls_again`, `ROLL_AGAIN`).
    Holds the journal's lock and the target's while it runs. Then, as
    after `apply`, the findings after it are recorded in the journal (unless cancelled or `record` is False)."""
    from ..core.executor import Executor

    with holding(lock_journal(path)), holding(lock_target(opened)):
        journal = Journal.open(path)
        result = Executor(opened.target.directory, opened.target.exchange, journal, progress=progress,
                          cancel=cancel, **_roll_options(opened)).resume()
        if record and not result.cancelled:
            record_after(opened, journal, result, reading=reading, cancel=cancel)
    return result


def undo(opened: Opened, path: Path, *, progress: ChangeProgress | None = None,
         cancel: threading.Event | None = None, record: bool = True, reading: Progress | None = None) -> Any:
    """Reverse the done changes a journal recorded, newest first; then the findings after it are recorded in the
    journal, as after `apply` (the report of the run then shows what undoing it left)."""
    from ..core.executor import Executor

    with holding(lock_journal(path)), holding(lock_target(opened)):
        journal = Journal.open(path)
        result = Executor(opened.target.directory, opened.target.exchange, journal, progress=progress,
                          cancel=cancel).undo()
        if record and not result.cancelled:
            record_after(opened, journal, result, reading=reading, cancel=cancel)
    return result


# --- report -------------------------------------------------------------------------------------------------
def before_rows(events: list[JournalEvent]) -> list[Any]:
    """The findings recorded before the first change of these journals' runs (the report's "before")."""
    from ..core.report import FindingRow

    for e in events:
        if e.event == "run-start" and e.data and (e.data.get("target") or {}).get("before"):
            return [FindingRow(**r) for r in e.data["target"]["before"]]
    return []


def build_report(opened: Opened | None, env: Environment | None, after: Iterable[Any], *,
                 events: list[JournalEvent] | None = None, before: Iterable[Any] | None = None,
                 generated_at: str = "", journal: str = "", title: str | None = None) -> Any:
    """The report model: what was found, what was changed, what passes now. Its times are the journal's (this
    machine's clock, UTC), said as such; on the lab it says that the organisation's own dates follow the
    scenario's clock. When the user turned certificate validation off for this target, the report says so (every
    format)."""
    from ..core.report import build_report as build

    events = events or []
    if before is None:
        before = before_rows(events) or None
    generated = generated_at or report_time(events)
    kw: dict[str, Any] = {"title": title} if title else {}
    return build(after=after, env=env, before=before, events=events, target=opened.label if opened else "",
                 generated_at=generated, journal=journal,
                 insecure_tls=bool(opened is not None and opened.target.insecure_tls),
                 lab=bool(opened is not None and opened.target.lab is not None), **kw)


def journal_report(path: Path, *, recheck: bool = False, adjust: Callable[[Answers], Answers] | None = None,
                   secrets: SecretSource | None = None, prompt: bool = True, say: Callable[[str], None] | None = None,
                   reading: Progress | None = None) -> Any:
    """The report of a journal's run. By default from what the run recorded (findings before and after, the
    environment, every change) without opening the target (`core.report.report_from_record`; its WizardError
    says when the journal holds no findings after its changes). `recheck`: reconnect instead (a lab journal is
    replayed onto a fresh lab first), read the organisation and run every check now."""
    from ..core.journal import read_events

    if not recheck:
        from ..core.report import report_from_record

        return report_from_record(list(read_events(path)), journal=path.name)
    tell = say or (lambda text: None)
    opened, _, events = reopen(path, adjust=adjust, secrets=secrets, prompt=prompt, say=say)
    try:
        tell(f"Reading {opened.label}")
        env = discover(opened, progress=reading)
        tell("Running the check catalogue")
        after = run_checks(opened, env)
        return build_report(opened, env, after, events=events, journal=path.name)
    finally:
        opened.close()


def report_time(events: list[JournalEvent] | None = None) -> str:
    """The report's one clock, the journal's: the newest journal event's time, else now (UTC, this machine), on
    the lab as on a real target."""
    from datetime import datetime, timezone

    if events:
        return events[-1].ts
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def render_report(report: Any, fmt: str) -> str:
    from ..core.report import render_report as render
    from ..resources import templates_dir

    return render(report, fmt, templates_dir())


def save_report(report: Any, fmt: str, path: str) -> str:
    """Render the report and write it; returns the absolute path."""
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(report, fmt), encoding="utf-8")
    return str(out.resolve())
