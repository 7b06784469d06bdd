"""The planner's shared state and helpers: the servers the ASA is for, the prerequisites every plan has, the
one rule for whether a server holds the current credential, and what a server's change must wait for."""

from __future__ import annotations

from ..answers import Answers
from ..changes import Change
from ..model import Account, Environment, ExchangeServer, Service
from .model import Plan, Prerequisite


def credential_is_current(server: ExchangeServer, asa: Account, qualified: str) -> bool:
    """Does a server hold the ASA's current password? core.current's one rule (no probe at planning time: the
    WhenAdded hint, which the plan's verification step then proves by key version)."""
    from ..current import credential_verdict

    return credential_verdict(server, asa, qualified).current


class PlannerBase:
    """What every step's rules share: the environment and answers, the plan being built, the ids of the changes
    planned so far (what later changes wait for), and the helpers and prerequisites that are not one step's."""

    def __init__(self, env: Environment, answers: Answers, target: str) -> None:
        self.env = env
        self.a = answers
        domain = env.forest.domains[0] if env.forest.domains else None
        self.netbios = domain.netbios_name if domain else ""
        self.domain_dn = domain.dn if domain else ""
        self.plan = Plan(target=target or env.forest.root_domain, asa=None, dry_run=answers.dry_run,
                         concurrency=answers.rollout.concurrency)
        self.asa: Account | None = None
        self.asa_q = ""
        self.asa_change_ids: list[str] = []
        self.roll_ids: dict[str, str] = {}  # server name (lower) -> rollout change id
        self.holds: dict[str, bool] = {}  # server name (lower) -> holds the current credential (after the plan)
        self.spn_add_ids: dict[str, str] = {}  # lower-cased SPN -> change id
        self.seg_ids: list[str] = []
        self.iusrs_ids: dict[str, str] = {}
        self.asa_created = False
        self.rollout_deps: list[str] = []  # what the rollout waits for: the new account / the AES change
        self.enctypes_gain_aes = False
        self.no_exchange = answers.no_exchange  # directory-side changes only (no WinRM)

    # --- helpers ----------------------------------------------------------------------------------
    def add(self, change: Change) -> Change:
        self.plan.changes.append(change)
        return change

    def prereq(self, text: str, status: str = "manual", blocking: bool = False, fix: str = "") -> None:
        self.plan.prerequisites.append(Prerequisite(text, status, blocking, fix))

    def qualified(self, account: Account) -> str:
        d = self.env.forest.domain_of_dn(account.dn)
        return f"{d.netbios_name if d else self.netbios}\\{account.sam}"

    def servers(self) -> list[ExchangeServer]:
        """The servers this ASA is for: the ones named in the answers, else every 2013+ client-access server."""
        wanted = self.a.rollout.servers
        out: list[ExchangeServer] = []
        if wanted:
            for name in wanted:
                s = self.env.server(name)
                if s is None:
                    self.prereq(f"The server {name} named in rollout.servers was not found in the organisation.",
                                "unmet", True, "Fix the name in the answers file (rollout.servers).")
                elif s not in out:
                    out.append(s)
        else:
            for s in self.env.servers:
                if s.generation == "2010":
                    self.plan.notes.append(f"{s.name} runs Exchange 2010, which cannot share an ASA with 2013 and "
                                           "later: it is left out.")
                elif s.roles and set(s.roles) <= {"Edge"}:
                    self.plan.notes.append(f"{s.name} is an Edge Transport server: it serves no clients.")
                else:
                    out.append(s)
        return sorted(out, key=lambda s: s.name.lower())

    def general_prerequisites(self) -> None:
        self.prereq("Exchange commands run in the Exchange Management Shell on an Exchange server ($exscripts "
                    "points at the Scripts folder there); AD commands need the ActiveDirectory module (RSAT).")
        self.prereq("The account that applies the plan has the Organization Management role (Organization "
                    "Configuration) and the Reset Password right on the ASA.")
        for ns in self.env.namespaces:
            if ns.is_cname:
                self.prereq(f"{ns.host} is a CNAME: Kerberos clients ask for the ticket of the name the CNAME "
                            "points to.", "unmet", False, f"Publish {ns.host} as an A record.")

    def server_prerequisites(self, servers: list[ExchangeServer]) -> None:
        if self.no_exchange:
            return
        for s in servers:
            if s.reachable is False or not s.asa_state_known:
                self.prereq(f"{s.name} could not be read ({s.error or 'unreachable'}): what ASA credential it holds "
                            "is unknown (not 'none'), so neither its rollout nor an SPN behind it can be planned "
                            "safely.", "unmet", True,
                            f"Make WinRM on {s.fqdn} reachable, then run the plan again; or plan the directory-side "
                            "changes only (no_exchange = true / --no-exchange).")
            if s.service_host_running is False:
                self.prereq(f"MSExchangeServiceHost is stopped on {s.name}: it manages the ASA credential.",
                            "unmet", False, f"Start-Service MSExchangeServiceHost on {s.name}.")

    def spn_deps_for(self, server: ExchangeServer, service: Service | None = None) -> list[str]:
        deps = [self.roll_ids[server.name.lower()]] if server.name.lower() in self.roll_ids else []
        for v in self.env.vdirs_for(server.name, service):
            for h in v.hosts:
                cid = self.spn_add_ids.get(f"http/{h.lower()}")
                if cid and cid not in deps:
                    deps.append(cid)
        return deps

