"""The check catalogue: every fact the wizard can prove or disprove about Kerberos for Exchange.

    findings = run_catalogue(env, probe=report_or_probe, logs=[LogText("iis", text, source=path)], now=now)

Each check has a stable id (`CHECKS`), looks only at its inputs (pure: no IO except through a probe port
passed in), and yields `Finding`s with the evidence it saw and the exact fix. `STEP_CHECKS` names the checks
that prove each wizard step (derived from `core.steps.STEPS`, the one step registry). docs/checks.md documents every check.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from asa_wizard.core.logs import LogText
from asa_wizard.core.model import Environment
from asa_wizard.core.ports import KerberosProbe
# Registration order is the catalogue order: inventory, asa, spn, rollout, auth, ep, kcd, kerberos, logs.
from . import asa  # noqa: F401,I001
from . import spn  # noqa: F401
from . import rollout  # noqa: F401
from . import auth  # noqa: F401
from . import extended_protection  # noqa: F401
from . import kcd  # noqa: F401
from . import kerberos  # noqa: F401
from . import logchecks  # noqa: F401
from .base import AREAS, CHECKS, SEVERITY, STEPS, Check, Context, Finding, ProbeReport, Status
from .kerberos import probe_targets, run_probes
from asa_wizard.core.steps import STEPS as _STEPS

# Which checks prove each wizard step: derived from the one step registry (core.steps).
STEP_CHECKS: dict[str, list[str]] = {s.id: list(s.checks) for s in _STEPS}


def select(only: list[str] | tuple[str, ...] | None) -> list[Check]:
    """The checks to run, in catalogue order: ids ("spn.owner") or whole areas ("kerberos")."""
    if not only:
        return list(CHECKS.values())
    unknown = [o for o in only if o not in CHECKS and o not in AREAS]
    if unknown:
        raise ValueError(f"unknown check id or area: {', '.join(unknown)} (known areas: {', '.join(AREAS)})")
    return [c for c in CHECKS.values() if c.id in only or c.area in only]


def run_catalogue(env: Environment, probe: ProbeReport | KerberosProbe | None = None,
                  logs: list[LogText] | None = None, now: datetime | None = None,
                  only: list[str] | tuple[str, ...] | None = None,
                  cancel: threading.Event | None = None) -> list[Finding]:
    """Run the checks and return their findings in catalogue order (then each check's own subject order).

    `probe` is a finished `ProbeReport`, or a `KerberosProbe` to run now (blocking: call from a worker).
    `now` is the clock for ages (the lab passes the scenario's time); defaults to the current UTC time.
    """
    checks = select(only)
    if probe is not None and not isinstance(probe, ProbeReport):
        needs_probe = any(c.area == "kerberos" or c.id == "ep.channel-binding" for c in checks)
        probe = run_probes(env, probe, cancel=cancel) if needs_probe else None
    ctx = Context(env, probe, logs, now or datetime.now(timezone.utc))
    findings: list[Finding] = []
    for c in checks:
        findings.extend(c.run(ctx))
    return findings


def worst(findings: list[Finding]) -> Status:
    """The overall status of a set of findings (skipped only when nothing ran)."""
    return max((f.status for f in findings), key=lambda s: SEVERITY[s], default=Status.SKIPPED)


def summarize(findings: list[Finding]) -> dict[str, Status]:
    """check id -> its worst status, in catalogue order."""
    out: dict[str, Status] = {}
    for f in findings:
        cur = out.get(f.check_id)
        if cur is None or SEVERITY[f.status] > SEVERITY[cur]:
            out[f.check_id] = f.status
    return out


def problems(findings: list[Finding]) -> dict[str, str]:
    """check id -> "fail" | "warn" for the checks that found something: the shape of a scenario's
    [scenario.expected] table."""
    return {cid: st.value for cid, st in summarize(findings).items() if st in (Status.FAIL, Status.WARN)}


def for_step(findings: list[Finding], step: str) -> list[Finding]:
    """The findings of the checks that prove `step`."""
    ids = STEP_CHECKS[step]
    return [f for f in findings if f.check_id in ids]


__all__ = ["AREAS", "CHECKS", "STEPS", "STEP_CHECKS", "Check", "Finding", "LogText", "ProbeReport", "Status",
           "for_step", "probe_targets", "problems", "run_catalogue", "run_probes", "select", "summarize", "worst"]
