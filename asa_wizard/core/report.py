"""What a consultant hands over: the environment, the findings before and after, every change with when and by
whom, and the evidence; and the plan as a runbook. Rendered as Markdown, self-contained HTML (inline style, no
external assets) and JSON, from the Jinja templates in `assets/templates/`. Where those live is not the core's
business: the caller passes the folder (`asa_wizard.resources.templates_dir()`).

Deterministic: the same inputs give the same bytes (nothing here reads the clock; `generated_at` is an
input), so reports can be compared and put under version control.

The report of a run renders from what the run recorded: `apply` writes the findings before the changes (in
its run-start record) and, after them, the findings and the environment summary (`record_findings`, a
journal note). `report_from_record` builds the report from the journal alone, without opening the target;
re-checking the target now is the caller's explicit choice.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from .errors import WizardError
from .journal import Journal, JournalEvent, summarize
from . import model
from .model import Environment, enctype_names
from .plan import Plan
from .steps import STEPS
from .text import terminal_safe

REPORT_SCHEMA = "asa-wizard/report"
CHECK_SCHEMA = "asa-wizard/check"
SCHEMA_VERSION = 1
AREA_ORDER = ("inventory", "asa", "spn", "rollout", "auth", "kcd", "kerberos", "logs")
AREA_TITLES = {"inventory": "Inventory", "asa": "Alternate service account", "spn": "Service principal names",
               "rollout": "Credential rollout", "auth": "Client authentication", "kcd": "SEG delegation (KCD)",
               "kerberos": "Kerberos proof", "logs": "Logs"}
STATUS_ORDER = ("fail", "warn", "pass", "skipped")
# The report's one clock: every time it states (when it was generated, when each change was made) is a journal
# time. A lab run says that the organisation's own dates follow the scenario's clock instead.
JOURNAL_CLOCK = "Times (generated, and when each change was made) are this machine's clock in UTC, as the journal " \
                "recorded them."
LAB_CLOCK = ("Dates inside the lab organisation (when a server got a credential, password ages) follow the "
             "scenario's own fixed clock, not this machine's.")
STATUS_ICONS = {"pass": "✔", "warn": "▲", "fail": "✘", "skipped": "–"}
TEMPLATE_NAMES = {"markdown": "{}.md.j2", "html": "{}.html.j2"}
INSECURE_TLS_NOTE = ("Certificates were NOT validated (--insecure-skip-tls-verify): the connections to the domain "
                     "controller or the Exchange servers could have been intercepted, and these results could come "
                     "from someone else.")


# ----------------------------------------------------------------------------------------------------
@dataclass
class FindingRow:
    id: str
    title: str
    area: str
    status: str
    subject: str = ""
    evidence: str = ""
    reason: str = ""
    fix: str = ""
    skipped_reason: str = ""


@dataclass
class ServerRow:
    name: str
    fqdn: str
    product: str
    version: str
    site: str
    asa_latest: str
    asa_previous: str
    state: str  # "read" / the reason it could not be read


@dataclass
class NamespaceRow:
    host: str
    services: str
    servers: str
    spn_owners: str


@dataclass
class AccountRow:
    name: str
    dn: str
    kind: str
    enctypes: str
    spns: str


@dataclass
class ChangeRow:
    id: str
    step: str
    summary: str
    state: str  # done | failed | interrupted | undone | skipped
    when: str = ""
    who: str = ""
    message: str = ""
    target: str = ""
    old: str = ""
    new: str = ""
    commands: list[str] = field(default_factory=list)
    undo_commands: list[str] = field(default_factory=list)
    proven_by: list[str] = field(default_factory=list)


@dataclass
class EnvironmentSummary:
    forest: str
    domains: str
    organization: str
    asa: str
    servers: list[ServerRow] = field(default_factory=list)
    namespaces: list[NamespaceRow] = field(default_factory=list)
    accounts: list[AccountRow] = field(default_factory=list)


@dataclass
class Report:
    title: str
    target: str
    generated_at: str
    tool_version: str
    environment: EnvironmentSummary | None
    after: list[FindingRow]
    before: list[FindingRow] | None = None
    changes: list[ChangeRow] = field(default_factory=list)
    journal: str = ""  # the journal file the changes came from
    run: str = ""
    insecure_tls: bool = False  # the user turned certificate validation off: every format says so
    clock: str = JOURNAL_CLOCK  # which clock the report's times are (report_clock)

    def counts(self, which: str = "after") -> dict[str, int]:
        """Findings per status (a check gives one finding per server, namespace or account it looked at)."""
        rows = self.after if which == "after" else (self.before or [])
        return {s: sum(1 for r in rows if r.status == s) for s in STATUS_ORDER}

    def check_counts(self, which: str = "after") -> dict[str, int]:
        """Checks per status, each check once at its worst finding, and `total`: the before and after summaries
        count checks, so both count the same catalogue however many subjects each check found."""
        worst = check_statuses(self.after if which == "after" else (self.before or []))
        counts = {s: sum(1 for v in worst.values() if v == s) for s in STATUS_ORDER}
        counts["total"] = len(worst)
        return counts

    def checks_not_run(self, which: str) -> list[str]:
        """The checks of the other side that have no finding on this side (`before` or `after`): the report names
        them instead of counting two different sets silently."""
        if self.before is None:
            return []
        here = {r.id for r in (self.before if which == "before" else self.after)}
        there = self.after if which == "before" else self.before
        return list(dict.fromkeys(r.id for r in there if r.id not in here))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = REPORT_SCHEMA
        d["schema_version"] = SCHEMA_VERSION
        d["summary"] = self.counts()
        d["checks"] = {"after": self.check_counts(),
                       "before": self.check_counts("before") if self.before is not None else None,
                       "not_run_before": self.checks_not_run("before"), "not_run_after": self.checks_not_run("after")}
        if self.insecure_tls:
            d["insecure_tls_note"] = INSECURE_TLS_NOTE
        return d


def check_statuses(rows: Iterable[FindingRow]) -> dict[str, str]:
    """check id -> the worst status of its findings, in the rows' order."""
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    out: dict[str, str] = {}
    for r in rows:
        if r.id not in out or rank.get(r.status, len(rank)) < rank.get(out[r.id], len(rank)):
            out[r.id] = r.status
    return out


def report_clock(lab: bool) -> str:
    """The sentence that says which clock the report's times are."""
    return f"{JOURNAL_CLOCK} {LAB_CLOCK}" if lab else JOURNAL_CLOCK


def exit_code_for(rows: Iterable[FindingRow]) -> int:
    """0 all pass (skipped allowed), 1 warnings only, 2 any failure."""
    statuses = {r.status for r in rows}
    return 2 if "fail" in statuses else 1 if "warn" in statuses else 0


# ----------------------------------------------------------------------------------------------------
def finding_rows(findings: Iterable[Any]) -> list[FindingRow]:
    """Findings from the check catalogue, grouped by area in the catalogue's order (stable within an area)."""
    rows = []
    for f in findings:
        if isinstance(f, FindingRow):
            rows.append(f)
            continue
        status = getattr(f.status, "value", f.status)
        area = getattr(f, "area", None) or f.check_id.split(".", 1)[0]
        rows.append(FindingRow(id=f.check_id, title=f.title, area=area, status=str(status), subject=f.subject or "",
                               evidence=f.evidence or "", reason=f.reason or "", fix=f.fix or "",
                               skipped_reason=f.skipped_reason or ""))
    order = {a: i for i, a in enumerate(AREA_ORDER)}
    return sorted(rows, key=lambda r: order.get(r.area, len(order)))


LONG_EVIDENCE = 240  # characters of a passing finding's evidence the terminal table shows


def condensed_rows(rows: list[FindingRow], keep: int = 3) -> list[FindingRow]:
    """The findings for a person at a terminal: a check that passed (or was skipped for one reason) on more than
    `keep` subjects is one row saying how many and which, in the place of the first; warnings and failures stay
    one row each. The files (JSON, Markdown, HTML) keep every row."""
    groups: dict[tuple[str, str, str], list[FindingRow]] = {}
    for r in rows:
        if r.status in ("pass", "skipped"):
            groups.setdefault((r.id, r.status, r.skipped_reason), []).append(r)
    out: list[FindingRow] = []
    for r in rows:
        same = groups.get((r.id, r.status, r.skipped_reason)) if r.status in ("pass", "skipped") else None
        if not same or len(same) <= keep:
            lines = r.evidence.splitlines()
            if len(lines) > 2 * keep:  # an inventory of 200 servers, say: its first lines and how many more
                r = replace(r, evidence="\n".join([*lines[:keep], f"… {len(lines) - keep} more lines "
                                                                  "(--format json lists each)"]))
            if r.status in ("pass", "skipped") and len(r.evidence) > LONG_EVIDENCE:  # "EX001, EX002, ..." x 200
                r = replace(r, evidence=r.evidence[:LONG_EVIDENCE - 40].rstrip() + " … (--format json has it all)")
            out.append(r)
        elif r is same[0]:
            names = [s.subject for s in same]
            listed = ", ".join(names[:2]) + f", …, {names[-1]}"
            out.append(FindingRow(id=r.id, title=r.title, area=r.area, status=r.status,
                                  subject=f"{len(same)} subjects: {listed}",
                                  evidence=(f"{r.evidence} (one of {len(same)}; --format json lists each)"
                                            if r.evidence else ""), skipped_reason=r.skipped_reason))
    return out


def _fmt_when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC") if dt else ""


def environment_summary(env: Environment) -> EnvironmentSummary:
    def cred(c) -> str:
        return f"{c.account} ({_fmt_when(c.when_added)})" if c else "none"

    by_dn = {a.dn.lower(): a for a in env.accounts}
    servers = [ServerRow(s.name, s.fqdn, s.product, s.version, s.site, cred(s.asa_latest), cred(s.asa_previous),
                         "read" if s.reachable is not False else (s.error or "unreachable"))
               for s in sorted(env.servers, key=lambda s: s.name.lower())]
    namespaces = []
    for ns in env.namespaces:
        owners = [by_dn[d.lower()].sam if d.lower() in by_dn else d for d in env.spn_owners.get(ns.spn.lower(), [])]
        namespaces.append(NamespaceRow(ns.host, ", ".join(sorted(s.title for s in ns.services)),
                                       ", ".join(sorted(ns.servers, key=str.lower)), ", ".join(owners) or "none"))
    interesting = [a for a in env.accounts
                   if a.sam.lower() == (env.asa_sam or "").lower() or any(s.lower().startswith("http/") for s in a.spns)
                   or (env.seg is not None and a.sam.lower() == env.seg.service_account.lower())]
    accounts = [AccountRow(a.sam, a.dn, a.kind.value,
                           "unset" if a.enctypes is None else f"{a.enctypes} ({'+'.join(enctype_names(a.enctypes))})",
                           ", ".join(a.spns) or "none")
                for a in sorted(interesting, key=lambda a: a.dn.lower())]
    return EnvironmentSummary(
        forest=env.forest.root_domain,
        domains=", ".join(f"{d.dns_name} ({d.netbios_name})" for d in env.forest.domains),
        organization=env.forest.exchange_organization or "", asa=env.asa_sam or "not chosen",
        servers=servers, namespaces=namespaces, accounts=accounts)


def change_rows_from_journal(events: list[JournalEvent]) -> list[ChangeRow]:
    """Every change a journal recorded with its last state, when and by whom; skipped ones from the notes."""
    last: dict[str, JournalEvent] = {}
    for e in events:
        if e.change_id:
            last[e.change_id] = e
    rows = []
    for st in summarize(events):
        ev = last.get(st.change.id)
        rows.append(_change_row(st.change, st.state, ev.ts if ev else "", ev.actor if ev else "", st.message))
    seen = {r.id for r in rows}
    for e in events:
        data = getattr(e, "data", None) or {}
        skipped = data.get("skipped")
        if skipped and skipped.get("id") not in seen:
            from .changes import Change

            rows.append(_change_row(Change.from_dict(skipped), "skipped", e.ts, e.actor, e.message))
            seen.add(skipped["id"])
    return rows


def _short(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items() if v is not None)
    return str(value)


def _change_row(c: Any, state: str, when: str, who: str, message: str) -> ChangeRow:
    return ChangeRow(id=c.id, step=c.step, summary=c.summary, state=state, when=when, who=who, message=message,
                     target=c.target, old=_short(c.old), new=_short(c.new), commands=list(c.commands),
                     undo_commands=list(c.undo_commands), proven_by=list(c.proven_by))


def build_report(*, after: Iterable[Any], env: Environment | None = None, before: Iterable[Any] | None = None,
                 events: list[JournalEvent] | None = None, target: str = "", generated_at: str = "",
                 journal: str = "", title: str = "Kerberos for Exchange: report", insecure_tls: bool = False,
                 lab: bool = False) -> Report:
    """The report model. `generated_at` is given by the caller (the journal's last event, or the clock in the
    CLI) so that the same inputs always give the same report; `lab`: the target is the training lab (the report
    says its organisation's dates follow the scenario's clock)."""
    events = events or []
    return Report(title=title, target=target, generated_at=generated_at, tool_version=__version__,
                  environment=environment_summary(env) if env is not None else None,
                  after=finding_rows(after), before=finding_rows(before) if before is not None else None,
                  changes=change_rows_from_journal(events), journal=journal, run=events[0].run if events else "",
                  insecure_tls=insecure_tls, clock=report_clock(lab))


# --- the record of a run ----------------------------------------------------------------------------
FINDINGS_KEY = "findings"  # the data key of the journal note holding the findings after the run


def record_findings(journal: Journal, *, after: Iterable[Any], env: Environment | None, target: str) -> JournalEvent:
    """Write the findings after a run and the environment they were found in to the run's journal, so its
    report renders from the record (`report_from_record`)."""
    rows = finding_rows(after)
    counts = {s: sum(1 for r in rows if r.status == s) for s in STATUS_ORDER}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
    return journal.write("note", message=f"findings after the run: {summary}", data={FINDINGS_KEY: {
        "target": target, "after": [asdict(r) for r in rows],
        "environment": asdict(environment_summary(env)) if env is not None else None}})


def recorded_findings(events: list[JournalEvent]) -> JournalEvent | None:
    """The last findings note of a journal, if any."""
    return next((e for e in reversed(events) if e.event == "note" and FINDINGS_KEY in (e.data or {})), None)


def report_from_record(events: list[JournalEvent], *, journal: str = "",
                       title: str = "Kerberos for Exchange: report") -> Report:
    """The report of a run from its journal alone: the findings before (run-start), the changes, and the
    findings and environment recorded after them. Raises WizardError when the journal holds no findings
    after its changes, or when changes were made (resume, undo) after the findings were recorded."""
    recheck = "Re-check the target now: asa-wizard report --journal FILE --recheck."
    note = recorded_findings(events)
    if note is None:
        raise WizardError("This journal records no findings after its changes (the run was interrupted, or an "
                          "older version wrote it), so there is nothing to report from the record.", recheck)
    later = [e for e in events if e.seq > note.seq and e.change_id and e.event in ("done", "failed", "undone")]
    if later:
        raise WizardError(f"{len(later)} change(s) were made or undone after this journal recorded its findings "
                          "(a resume or an undo): the recorded findings no longer describe the target.", recheck)
    data = note.data[FINDINGS_KEY]
    start = next((e for e in events if e.event == "run-start" and e.data), None)
    record = (start.data.get("target") or {}) if start is not None else {}
    before = record.get("before") or None
    lab = bool((record.get("target") or {}).get("lab"))
    env = data.get("environment")
    return Report(title=title, target=data.get("target") or "", generated_at=note.ts, tool_version=__version__,
                  environment=_summary_from_dict(env) if env else None,
                  after=finding_rows(FindingRow(**r) for r in data.get("after") or []),
                  before=finding_rows(FindingRow(**r) for r in before) if before else None,
                  changes=change_rows_from_journal(events), journal=journal, run=events[0].run if events else "",
                  clock=report_clock(lab))


def _summary_from_dict(d: dict[str, Any]) -> EnvironmentSummary:
    return EnvironmentSummary(forest=d["forest"], domains=d["domains"], organization=d["organization"], asa=d["asa"],
                              servers=[ServerRow(**r) for r in d.get("servers") or []],
                              namespaces=[NamespaceRow(**r) for r in d.get("namespaces") or []],
                              accounts=[AccountRow(**r) for r in d.get("accounts") or []])


# ----------------------------------------------------------------------------------------------------
@cache
def _templates(directory: Path, html: bool):
    """The Jinja environment: HTML escapes everything it prints; Markdown escapes through the `md` filters."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(directory)), autoescape=html,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters.update(md=md_text, code=md_code, fence=md_fence, cell=md_cell, val=value_text,
                       old_value=lambda c: change_value(c, c.old), new_value=lambda c: change_value(c, c.new),
                       after=lambda ids, index: ", ".join(str(n) for n in sorted(index[i] for i in ids if i in index)))
    env.globals.update(value_actions=VALUE_ACTIONS)
    env.globals.update(icon=STATUS_ICONS, area_title=lambda a: AREA_TITLES.get(a, a), insecure_tls_note=INSECURE_TLS_NOTE)
    return env


def _render(templates: Path | None, name: str, **context: Any) -> str:
    if templates is None:
        raise ValueError(f"rendering {name} needs the templates folder: pass asa_wizard.resources.templates_dir()")
    return _templates(Path(templates), name.endswith(".html.j2")).get_template(name).render(**context)


def md_text(value: Any) -> str:
    """Text from outside in Markdown prose: characters that would start markup are escaped, and only those, so
    the file stays readable as text (`CONTOSO\\EXASA$` keeps its single backslash)."""
    text = str(value).replace("\r", "").replace("\n", " ")
    out = []
    for i, ch in enumerate(text):
        prev = text[i - 1] if i else " "
        nxt = text[i + 1] if i + 1 < len(text) else " "
        if ch in "`*[]<|" or (ch in "#>" and i == 0):
            out.append("\\" + ch)
        elif ch == "_" and not (prev.isalnum() and nxt.isalnum()):
            out.append("\\_")
        elif ch == "\\" and (nxt in string.punctuation):
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def md_code(value: Any) -> str:
    """An inline code span that survives backticks in the value."""
    text = str(value).replace("\n", " ")
    ticks = "`"
    while ticks in text:
        ticks += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_fence(lines: Iterable[str], lang: str = "powershell") -> str:
    text = "\n".join(lines)
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text}\n{fence}"


def value_text(value: Any) -> str:
    """An old or new value for people: lists joined, a credential as its account and date, nothing as 'none'."""
    if isinstance(value, dict) and "account" in value:
        return f"{value['account']} ({value.get('when') or 'date unknown'})"
    return _short(value) or "none"


UAC_NAMES = {getattr(model, n): n[4:] for n in ("UAC_ACCOUNTDISABLE", "UAC_PASSWD_NOTREQD", "UAC_NORMAL_ACCOUNT",
                                                "UAC_WORKSTATION_TRUST_ACCOUNT", "UAC_DONT_EXPIRE_PASSWD",
                                                "UAC_TRUSTED_FOR_DELEGATION", "UAC_NOT_DELEGATED",
                                                "UAC_USE_DES_KEY_ONLY", "UAC_TRUSTED_TO_AUTH_FOR_DELEGATION")}

# The changes whose old and new values are the attribute's whole value (the others say what they add in the summary).
VALUE_ACTIONS = ("set-enctypes", "set-uac", "set-delegate-to", "set-oa-client-auth", "set-mapi-auth", "roll-generate",
                 "roll-push", "roll-copy")


def change_value(change: Any, value: Any) -> str:
    """A change's old or new value as a person reads it: userAccountControl in hex with its flags."""
    if change.attribute == "userAccountControl" and isinstance(value, int):
        names = [name for bit, name in UAC_NAMES.items() if value & bit]
        return f"0x{value:X} ({', '.join(names)})"
    return value_text(value)


def md_cell(value: Any) -> str:
    return md_text(value) or " "


def _grouped(rows: list[FindingRow]) -> list[tuple[str, list[FindingRow]]]:
    groups: dict[str, list[FindingRow]] = {}
    for r in rows:
        groups.setdefault(r.area, []).append(r)
    return list(groups.items())


def _report_context(report: Report) -> dict[str, Any]:
    before_by = {}
    for r in report.before or []:
        before_by.setdefault((r.id, r.subject), r.status)
    return {"r": report, "after_groups": _grouped(report.after), "before_groups": _grouped(report.before or []),
            "counts": report.counts(), "before_counts": report.counts("before") if report.before else None,
            "checks": report.check_counts(),
            "before_checks": report.check_counts("before") if report.before is not None else None,
            "not_run_before": report.checks_not_run("before"), "not_run_after": report.checks_not_run("after"),
            "before_of": lambda row: before_by.get((row.id, row.subject), ""),
            "problems": [f for f in report.after if f.status in ("fail", "warn")]}


def render_report(report: Report, fmt: str, templates: Path | None = None) -> str:
    """The report as `fmt` (json, markdown, html); `templates` is the templates folder (not needed for JSON)."""
    if fmt == "json":  # terminal_safe: outside text shows its control characters escaped (valid JSON escapes)
        return terminal_safe(json.dumps(report.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    if fmt in ("markdown", "html"):
        return terminal_safe(_render(templates, TEMPLATE_NAMES[fmt].format("report"), **_report_context(report)))
    raise ValueError(f"unknown report format {fmt!r}")


def check_json(rows: list[FindingRow], *, target: str, generated_at: str, insecure_tls: bool = False) -> str:
    """The `asa-wizard check --format json` document (docs/report-format.md)."""
    doc = {"schema": CHECK_SCHEMA, "schema_version": SCHEMA_VERSION, "tool_version": __version__,
           "target": target, "generated_at": generated_at,
           "summary": {**{s: sum(1 for r in rows if r.status == s) for s in STATUS_ORDER},
                       "exit_code": exit_code_for(rows)},
           "findings": [asdict(r) for r in rows], "insecure_tls": insecure_tls}
    if insecure_tls:
        doc["insecure_tls_note"] = INSECURE_TLS_NOTE
    return terminal_safe(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------------------------------
def _check_titles() -> dict[str, str]:
    from .checks import CHECKS

    return {cid: c.title for cid, c in CHECKS.items()}


# What each step of a plan does, for the runbook's one-line summary of the order.
PLAN_ORDER = {"asa": "the account", "rollout": "the credential on every server",
              "spns": "the SPNs once every server behind a name holds the credential",
              "client-auth": "client authentication", "seg": "SEG delegation", "iis-auth": "IIS authentication"}


def plan_order(plan: Plan) -> str:
    """The steps this plan changes something in, in Microsoft's order: a plan without a gateway says nothing of
    SEG delegation."""
    parts = [PLAN_ORDER[s.id] for s in STEPS if s.id in PLAN_ORDER and any(c.step == s.id for c in plan.changes)]
    return ", ".join(parts[:-1]) + ", then " + parts[-1] if len(parts) > 1 else "".join(parts)


def _plan_context(plan: Plan) -> dict[str, Any]:
    titles = _check_titles()
    steps = []
    number = 0
    for s in STEPS:
        changes = [c for c in plan.changes if c.step == s.id]
        if not changes:
            continue
        numbered = []
        for c in changes:
            number += 1
            numbered.append((number, c))
        steps.append((s, numbered))
    index = {c.id: i for i, c in enumerate(plan.changes, 1)}
    return {"p": plan, "steps": steps, "titles": titles, "index": index, "order": plan_order(plan)}


def render_plan(plan: Plan, fmt: str, templates: Path | None = None) -> str:
    """The plan as a runbook in `fmt` (json, markdown, html); `templates` as for `render_report`."""
    if fmt == "json":
        return terminal_safe(json.dumps({"schema": "asa-wizard/plan", "schema_version": SCHEMA_VERSION,
                                         **plan.to_dict()}, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    if fmt in ("markdown", "html"):
        return terminal_safe(_render(templates, TEMPLATE_NAMES[fmt].format("plan"), **_plan_context(plan)))
    raise ValueError(f"unknown plan format {fmt!r}")
