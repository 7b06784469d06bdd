"""Step 2: what is there. Forest, servers, namespaces with their SPN owners, and what is wrong already."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Label, Static

from ...core.model import Environment, ExchangeServer
from .base import StepPane, status_text


def asa_state(server: ExchangeServer, which: str) -> str:
    """'not set', 'unknown (could not be read)' or 'DOMAIN\\name (when)' for a person."""
    if not server.asa_state_known:
        return "unknown (not read)"
    cred = server.asa_latest if which == "latest" else server.asa_previous
    if cred is None:
        return "not set"
    when = cred.when_added.strftime("%Y-%m-%d %H:%M") if cred.when_added else "time unknown"
    return f"{cred.account} ({when})"


def reachable_word(server: ExchangeServer) -> str:
    if server.reachable is None:
        return "not tried"
    return "yes" if server.reachable else "NO"


def owner_names(env: Environment, spn: str) -> str:
    dns = env.spn_owners.get(spn.lower(), [])
    if not dns:
        return "none"
    names = []
    for dn in dns:
        account = env.account_by_dn(dn)
        names.append(account.sam if account else dn)
    return ", ".join(names)


class DiscoveryPane(StepPane):
    STEP_ID = "discovery"
    SUPPORTS = frozenset({"run"})
    WORK_GROUP = "discovery"

    def compose_controls(self) -> ComposeResult:
        yield from self.compose_progress()
        yield Label("Forest", classes="section-title")
        yield Static("Not read yet: discovery starts when the target is open (r runs it again).",
                     id="forest-summary", markup=False)
        yield Label("Exchange servers", classes="section-title")
        yield DataTable(id="servers-table", cursor_type="row", zebra_stripes=True)
        yield Label("Namespaces and the owners of their HTTP SPNs", classes="section-title")
        yield DataTable(id="namespaces-table", cursor_type="row", zebra_stripes=True)
        yield Label("What the checks found (enter: go to the step that fixes it)", classes="section-title")
        yield DataTable(id="findings-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#servers-table", DataTable).add_columns(
            "Server", "ASA latest", "ASA previous", "Reachable", "Product / version", "Site", "FQDN")
        self.query_one("#namespaces-table", DataTable).add_columns("Host", "Services", "Servers", "SPN owner(s)")
        self.query_one("#findings-table", DataTable).add_columns("Status", "Check", "Subject", "Evidence / fix")
        self.refresh_from_session()

    def do_run(self) -> None:
        self.start_discovery()

    def refresh_from_session(self) -> None:
        env = self.session.env
        if env is None:
            return
        self._show_forest(env)
        self._show_servers(env)
        self._show_namespaces(env)
        fill_findings(self.app, self.query_one("#findings-table", DataTable), self.session.findings)

    def _show_forest(self, env: Environment) -> None:
        f = env.forest
        domains = ", ".join(f"{d.dns_name} ({d.netbios_name})" for d in f.domains) or "none"
        lines = [
            f"Root domain: {f.root_domain}    Domains: {domains}",
            f"Sites: {', '.join(f.sites) or 'none'}    Exchange organisation: {f.exchange_organization or 'not found'}",
            f"ASA: {asa_line(env)}    Accounts read: {len(env.accounts)}",
        ]
        self.query_one("#forest-summary", Static).update(Text("\n".join(lines)))

    def _show_servers(self, env: Environment) -> None:
        table = self.query_one("#servers-table", DataTable)
        table.clear()
        for s in env.servers:
            version = f"{s.product} {'.'.join(map(str, s.build)) or s.version}"
            reach = reachable_word(s)
            if s.error:
                reach = f"{reach}: {s.error}"
            table.add_row(Text(s.name), Text(asa_state(s, "latest")), Text(asa_state(s, "previous")), Text(reach),
                          Text(version), Text(s.site or "unknown"), Text(s.fqdn), key=s.name)

    def _show_namespaces(self, env: Environment) -> None:
        table = self.query_one("#namespaces-table", DataTable)
        table.clear()
        for ns in env.namespaces:
            services = ", ".join(sorted(svc.title for svc in ns.services))
            table.add_row(Text(ns.host), Text(services), Text(", ".join(ns.servers)),
                          Text(owner_names(env, ns.spn)), key=ns.host)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "findings-table" and event.row_key.value:
            event.stop()
            self.open_finding(event.row_key.value)


def fill_findings(app: Any, table: DataTable, findings: list[Any], *, problems_only: bool = False) -> None:
    """One row per finding, failures first; the row key starts with the check id (for 'go to step')."""
    from ..widgets import status_of

    order = {"fail": 0, "warn": 1, "skipped": 2, "pass": 3}
    table.clear()
    rows = sorted(findings, key=lambda f: (order.get(status_of(f), 9), f.check_id, f.subject or ""))
    for i, f in enumerate(rows):
        status = status_of(f)
        if problems_only and status == "pass":
            continue
        if status == "pass":
            detail = f.evidence or ""
        elif status == "skipped":
            detail = f.skipped_reason or f.reason or ""
        else:
            detail = " — Fix: ".join(x for x in (f.reason or f.evidence or "", f.fix or "") if x)
        table.add_row(status_text(app, status), Text(f.title), Text(f.subject or ""), Text(detail),
                      key=f"{f.check_id}|{i}")


def asa_line(env) -> str:
    """The ASA the session works with, and whether it exists yet (fresh organisations have none)."""
    if not env.asa_sam:
        return "none chosen yet"
    return env.asa_sam if env.asa is not None else f"{env.asa_sam} (proposed, not created yet)"
