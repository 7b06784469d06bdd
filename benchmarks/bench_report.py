"""Report rendering for a large organisation: 200 Exchange servers, 50 namespaces, a full catalogue run and a
journal of ~450 changes. Target: Markdown + HTML + JSON report under one second.

    /tmp/venv/bin/python benchmarks/bench_report.py
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from asa_wizard.core.answers import parse_answers
from asa_wizard.core.checks import run_catalogue
from asa_wizard.core.journal import Journal
from asa_wizard.core.model import (Account, AccountKind, AsaCredential, Domain, Environment, ExchangeServer, Forest,
                                   Service, VirtualDirectory, derive_namespaces)
from asa_wizard.core.plan import build_plan
from asa_wizard.core.report import build_report, render_plan, render_report
from asa_wizard.resources import templates_dir

SERVERS, NAMESPACES = 200, 50


def big_environment() -> Environment:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    domain = Domain("contoso.com", "CONTOSO", "DC=contoso,DC=com")
    servers, vdirs = [], []
    for i in range(SERVERS):
        name = f"EX{i:03d}"
        cred = AsaCredential("CONTOSO\\EXASA$", now - timedelta(days=2)) if i % 3 else None
        servers.append(ExchangeServer(name, f"{name.lower()}.contoso.com", "Version 15.2 (Build 1544.4)",
                                      ["Mailbox", "ClientAccess"], f"Site{i % 10}", asa_latest=cred,
                                      asa_state_known=True, reachable=True, service_host_running=True))
        host = f"mail{i % NAMESPACES:02d}.contoso.com"
        vdirs.append(VirtualDirectory(name, Service.OUTLOOK_ANYWHERE, host, host, ["Ntlm", "Negotiate"],
                                      internal_client_auth="Ntlm"))
        vdirs.append(VirtualDirectory(name, Service.MAPI, host, host, ["Ntlm", "OAuth"]))
    namespaces = derive_namespaces(vdirs, {})
    asa = Account("CN=EXASA,OU=Service Accounts,DC=contoso,DC=com", "EXASA$", AccountKind.COMPUTER, uac=0x1000,
                  spns=[ns.spn for ns in namespaces[: NAMESPACES // 2]], enctypes=28,
                  pwd_last_set=now - timedelta(days=2), key_version=4)
    owners = {ns.spn.lower(): [asa.dn] for ns in namespaces[: NAMESPACES // 2]}
    return Environment(Forest("contoso.com", [domain], [f"Site{i}" for i in range(10)]), servers, vdirs, namespaces,
                       [asa], owners, asa_sam="EXASA$")


def main() -> None:
    env = big_environment()
    t0 = time.perf_counter()
    findings = run_catalogue(env, now=datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    t1 = time.perf_counter()
    plan = build_plan(env, parse_answers('[target]\nlab = "x"\n[asa]\nname = "EXASA$"\n', "bench.toml"))
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal.create(Path(tmp), actor="CONTOSO\\admin")
        journal.write("run-start", data={"plan": plan.to_dict(), "target": {}})
        for c in plan.changes:
            journal.write("intent", c)
            journal.write("done", c, undo={"server": c.target})
        events = journal.events()
    t3 = time.perf_counter()
    report = build_report(after=findings, env=env, before=findings, events=events, target="contoso.com",
                          generated_at=events[-1].ts)
    sizes = {fmt: len(render_report(report, fmt, templates_dir())) for fmt in ("markdown", "html", "json")}
    t4 = time.perf_counter()
    runbook = len(render_plan(plan, "markdown", templates_dir()))
    t5 = time.perf_counter()
    print(f"{SERVERS} servers, {NAMESPACES} namespaces, {len(findings)} findings, {len(plan.changes)} changes")
    print(f"catalogue            {t1 - t0:7.3f} s")
    print(f"plan                 {t2 - t1:7.3f} s")
    print(f"journal write+read   {t3 - t2:7.3f} s")
    print(f"report (md+html+json){t4 - t3:7.3f} s   sizes {sizes}")
    print(f"runbook (markdown)   {t5 - t4:7.3f} s   {runbook} bytes")
    verdict = "OK" if t4 - t3 < 1.0 else "SLOWER THAN TARGET"
    print(f"report target < 1 s: {verdict}")


if __name__ == "__main__":
    main()
