"""The plan: from what discovery saw and what the user chose, the ordered list of changes in Microsoft's safety
order, each with the exact manual commands, how to undo it, and the checks that prove it.

Order: create the ASA (with encryption types) -> roll the credential out (a new password pushed to EVERY server
first, then the AD password reset once; -CopyFrom only for servers joining servers that already hold the
current password) -> SPNs, only once every server behind the namespace holds the credential -> client authentication -> SEG delegation -> IIS authentication.
Nothing is planned that is already right: the plan for a healthy organisation is empty.

Every value that goes into a generated command is quoted for PowerShell (`ps`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .answers import Answers
from .changes import Change, System
from .checks.base import aware
from .commands import (SWITCH, Code, assign, command, hashtable, pipeline, quote, script_block, setspn, statements,
                       subexpression, switch, variable)
from .model import (
    ENC_AES128,
    ENC_AES256,
    ENC_RC4,
    UAC_NOT_DELEGATED,
    UAC_TRUSTED_FOR_DELEGATION,
    UAC_TRUSTED_TO_AUTH_FOR_DELEGATION,
    Account,
    AccountKind,
    AsaCredential,
    Environment,
    ExchangeServer,
    IisAuth,
    SegConfig,
    Service,
    enctype_names,
    normalize_account,
)

PLAN_VERSION = 1
KEYS_GROUP = "asa-keys"  # params["group"]: changes the executor applies together or not at all
IIS_APPS = {Service.EAS: "Microsoft-Server-ActiveSync", Service.EWS: "EWS"}
IIS_SITE = "Default Web Site"
IIS_RESET_WARNING = ("Exchange cumulative updates may reset IIS settings made outside the Exchange cmdlets: "
                     "run the check again after every update.")


# ----------------------------------------------------------------------------------------------------
def ps(value: Any) -> str:
    """A PowerShell single-quoted literal: nothing inside is expanded. PowerShell also treats the typographic
    single quotes as quotes, so those are doubled too."""
    return quote(str(value))


def _read_password() -> str:
    """(Read-Host -AsSecureString 'Initial password ...'): the initial password is typed, never written down."""
    return subexpression(command("Read-Host", "Initial password (the rollout replaces it)", AsSecureString=SWITCH))


def escape_dn_value(value: str) -> str:
    """An RDN value escaped as RFC 4514 asks (for a CN built from a name the user typed)."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


# ----------------------------------------------------------------------------------------------------
@dataclass
class Prerequisite:
    """Something that must be true before the plan is applied. `status`: met | unmet | manual (the admin
    confirms it). A blocking one stops `apply` until it is resolved."""

    text: str
    status: str = "manual"
    blocking: bool = False
    fix: str = ""


@dataclass
class Plan:
    target: str  # a label for people: "Lab: fresh" / "contoso.com"
    asa: str | None  # DOMAIN\NAME$ of the ASA the plan works with
    changes: list[Change] = field(default_factory=list)
    prerequisites: list[Prerequisite] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    concurrency: int = 4
    version: int = PLAN_VERSION

    @property
    def blockers(self) -> list[Prerequisite]:
        """The blocking prerequisites not met: `apply` refuses to start while there is one."""
        return [p for p in self.prerequisites if p.blocking and p.status != "met"]

    def change(self, change_id: str) -> Change:
        for c in self.changes:
            if c.id == change_id:
                return c
        raise KeyError(change_id)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "target": self.target, "asa": self.asa, "dry_run": self.dry_run,
                "concurrency": self.concurrency, "changes": [c.to_dict() for c in self.changes],
                "prerequisites": [asdict(p) for p in self.prerequisites], "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Plan":
        return cls(target=d["target"], asa=d.get("asa"), dry_run=bool(d.get("dry_run")),
                   concurrency=int(d.get("concurrency", 4)),
                   changes=[Change.from_dict(c) for c in d.get("changes", [])],
                   prerequisites=[Prerequisite(**p) for p in d.get("prerequisites", [])],
                   notes=list(d.get("notes", [])), version=int(d.get("version", PLAN_VERSION)))


def discovery_seg(answers: Answers) -> SegConfig | None:
    """The SEG account discovery must read (it is not found by the SPN searches)."""
    if not answers.seg.enabled or not answers.seg.service_account:
        return None
    return SegConfig(answers.seg.service_account, list(answers.seg.test_users), answers.seg.ews_proxy)


def credential_is_current(server: ExchangeServer, asa: Account, qualified: str) -> bool:
    """Does a server hold the ASA's current password? core.current's one rule (no probe at planning time: the
    WhenAdded hint, which the plan's verification step then proves by key version)."""
    from .current import credential_verdict

    return credential_verdict(server, asa, qualified).current


def _same_account(reported: str, qualified: str) -> bool:
    """`Tailspintoys\\E15ASA$` is `TAILSPINTOYS\\E15ASA$`; a bare name compares by sAMAccountName."""
    a, b = normalize_account(reported), normalize_account(qualified)
    if a == b:
        return True
    return a.split("\\")[-1] == b.split("\\")[-1] and ("\\" not in a or "\\" not in b)


# ----------------------------------------------------------------------------------------------------
def build_plan(env: Environment, answers: Answers, target: str = "") -> Plan:
    return _Planner(env, answers, target).build()


class _Planner:
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

    # --- the plan ---------------------------------------------------------------------------------
    def build(self) -> Plan:
        self.general_prerequisites()
        self.plan_asa()
        servers = self.servers()
        self.server_prerequisites(servers)
        if self.asa is not None or self.asa_change_ids:
            if not self.no_exchange:
                self.plan_rollout(servers)
                if self.enctypes_gain_aes and self.roll_ids:
                    # The new encryption types and the roll that creates their keys: together or not at all.
                    self.plan.change("asa.enctypes").params["group"] = KEYS_GROUP
            self.plan_spns(servers)
        if self.no_exchange:
            left = ["the ASA credential rollout"]
            if self.a.client_auth.outlook_anywhere or self.a.client_auth.mapi:
                left.append("client authentication (Outlook Anywhere, MAPI)")
            if self.a.seg.enabled:
                left.append("IIS_IUSRS membership on each server")
            if self.a.iis_auth.enabled:
                left.append("IIS authentication")
            self.plan.notes.append("Directory-side changes only (no_exchange / --no-exchange): nothing is read from "
                                   "or done on the Exchange servers. Left for a run with the servers: "
                                   + ", ".join(left) + ".")
        else:
            self.plan_client_auth(servers)
        if self.a.seg.enabled:
            self.plan_seg(servers)
        if self.a.iis_auth.enabled and not self.no_exchange:
            self.plan_iis_auth(servers)
        return self.plan

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

    # --- step: asa --------------------------------------------------------------------------------
    def plan_asa(self) -> None:
        a = self.a.asa
        name = a.name or self.env.asa_sam
        if not name:
            self.prereq("No ASA was named and none was found.", "unmet", True,
                        'Set [asa] mode = "create" with a name, or name the existing ASA (asa.name).')
            return
        existing = self.env.account_by_sam(name)
        if a.mode == "create" and existing is None:
            self.create_asa(name)
            return
        if existing is None:
            self.prereq(f"The ASA {name} was not found in the directory.", "unmet", True,
                        f'Check the name, or set [asa] mode = "create" to create {name}.')
            return
        if a.mode == "create":
            self.plan.notes.append(f"{name} already exists: it is used as the ASA, not created again.")
        if existing.kind == AccountKind.GMSA:
            self.prereq(f"{name} is a group managed service account: Exchange does not support a gMSA as the ASA.",
                        "unmet", True, "Create a computer account for the ASA instead.")
            return
        if not existing.enabled:
            self.prereq(f"The ASA {name} is disabled.", "unmet", True,
                        f"{command('Enable-ADAccount', Identity=name)}, then plan again.")
        self.asa = existing
        self.asa_q = self.qualified(existing)
        self.plan.asa = self.asa_q
        if a.enctypes is not None and existing.enctypes != a.enctypes:
            if self.no_exchange and not _has_aes(existing.enctypes) and _has_aes(a.enctypes):
                self.prereq(f"{name} gains AES ({_enc(existing.enctypes)} -> {_enc(a.enctypes)}): the new encryption "
                            "types and the password roll that creates the AES keys go together, and the roll needs "
                            "the Exchange servers. Not planned in this directory-only plan.", "unmet", False,
                            "Plan again with the Exchange servers reachable (without no_exchange): both are then "
                            "applied together.")
            else:
                self.set_enctypes(existing, a.enctypes)

    def create_asa(self, sam: str) -> None:
        a = self.a.asa
        kind = a.kind
        ou = a.ou or ("CN=Computers" if kind == AccountKind.COMPUTER else "CN=Users")
        if self.domain_dn and not ou.lower().endswith(self.domain_dn.lower()):
            ou = f"{ou},{self.domain_dn}"
        cn = sam[:-1] if sam.endswith("$") else sam
        dn = f"CN={escape_dn_value(cn)},{ou}"
        enctypes = a.enctypes or 24
        q = f"{self.netbios}\\{sam}"
        self.prereq(f"The OU {ou} exists and the applying account may create {kind.value} objects in it.")
        description = "Exchange alternate service account"
        if kind == AccountKind.COMPUTER:
            commands = [
                command("New-ADComputer", Name=cn, SamAccountName=cn, Path=ou, Enabled=True, Description=description,
                        AccountPassword=_read_password()),
                command("Set-ADComputer", Identity=sam, Replace=hashtable({"msDS-SupportedEncryptionTypes": enctypes})),
            ]
            undo = [command("Remove-ADComputer", Identity=sam, Confirm=switch(False))]
        else:
            commands = [
                command("New-ADUser", Name=cn, SamAccountName=sam, Path=ou, Enabled=True, PasswordNeverExpires=True,
                        Description=description, AccountPassword=_read_password()),
                command("Set-ADUser", Identity=sam, Replace=hashtable({"msDS-SupportedEncryptionTypes": enctypes})),
            ]
            undo = [command("Remove-ADUser", Identity=sam, Confirm=switch(False))]
        c = self.add(Change(
            id="asa.create", system=System.DIRECTORY, action="create-account", target=dn,
            summary=f"Create the {kind.value} account {q} in {ou} with encryption types {enctypes} "
                    f"({'+'.join(enctype_names(enctypes))})",
            attribute=None, old=None, new=dn,
            params={"sam": sam, "kind": kind.value, "ou_dn": ou, "enctypes": enctypes, "description": description},
            commands=commands, undo_commands=undo, proven_by=["asa.exists", "asa.kind", "asa.enctypes"], step="asa",
            warning="Wait for Active Directory replication before the rollout: every domain controller the "
                    "Exchange servers use must know the new account."))
        self.asa_change_ids.append(c.id)
        self.asa_q = q
        self.plan.asa = q
        self.asa = Account(dn=dn, sam=sam, kind=kind, enctypes=enctypes, pwd_last_set=None)
        self.asa_created = True

    def set_enctypes(self, account: Account, value: int) -> None:
        cmdlet = "Set-ADComputer" if account.is_computer else "Set-ADUser"
        old = account.enctypes
        undo = (command(cmdlet, Identity=account.sam, Clear="msDS-SupportedEncryptionTypes") if old is None else
                command(cmdlet, Identity=account.sam, Replace=hashtable({"msDS-SupportedEncryptionTypes": old})))
        c = self.add(Change(
            id="asa.enctypes", system=System.DIRECTORY, action="set-enctypes", target=account.dn,
            summary=f"Set the encryption types of {self.asa_q or account.sam} to {value} "
                    f"({'+'.join(enctype_names(value))}); they were {_enc(old)}",
            attribute="msDS-SupportedEncryptionTypes", old=old, new=value,
            params={"dn": account.dn, "value": value},
            commands=[command(cmdlet, Identity=account.sam, Replace=hashtable({"msDS-SupportedEncryptionTypes": value}))],
            undo_commands=[undo], proven_by=["asa.enctypes", "kerberos.ticket"], step="asa",
            warning=("Clients that can only use RC4 lose Kerberos to these names: check that the domain controllers' "
                     "KDCSVC audit events (201-209) are clean first.") if old and old & ENC_RC4 and not value & ENC_RC4
            else None))
        self.asa_change_ids.append(c.id)
        self.enctypes_gain_aes = not _has_aes(old) and _has_aes(value)

    # --- step: rollout ----------------------------------------------------------------------------
    def plan_rollout(self, servers: list[ExchangeServer]) -> None:
        assert self.asa is not None
        created = self.asa_created
        current = {s.name.lower(): (not created) and credential_is_current(s, self.asa, self.asa_q)
                   for s in servers}
        # A server that could not be read holds an unknown credential (never "none"): it gets no rollout, and
        # "no server holds it" cannot be concluded while one is unknown (server_prerequisites blocks the plan).
        unknown = {s.name.lower() for s in servers if not s.asa_state_known}
        known = [s for s in servers if s.name.lower() not in unknown]
        regenerate_reason = ""
        if created:
            regenerate_reason = "the ASA is new"
        elif self.a.rollout.new_password:
            regenerate_reason = "a new password was asked for (rollout.new_password)"
        elif self.enctypes_gain_aes:
            regenerate_reason = "the ASA gains AES: a new password makes sure AES keys exist for it"
        elif known and not unknown and not any(current.values()):
            regenerate_reason = "no server holds the ASA's current credential"
        if created:
            self.rollout_deps = ["asa.create"]
        elif self.enctypes_gain_aes and not self.a.rollout.new_password:
            self.rollout_deps = ["asa.enctypes"]
        if regenerate_reason:
            if not known:
                return
            first = self.first_server(known)
            self.roll_change(first, None)
            for s in known:
                if s is not first:
                    self.roll_change(s, None, push=True)
                self.holds[s.name.lower()] = True
            self.ad_password_change(servers)
            self.plan.notes.append(
                f"A new ASA password is generated because {regenerate_reason}. It is pushed to every server first "
                f"({', '.join(s.name for s in servers)}); the password in AD is reset once, only after every push "
                "worked, so no server ever refuses a ticket. If a push fails, AD is left unchanged.")
            return
        sources = [s for s in servers if current[s.name.lower()]]
        if not sources:
            return
        source = self.first_server(sources)
        missing = [s.name for s in known if not current[s.name.lower()]]
        if missing:
            self.plan.notes.append(
                f"{', '.join(s.name for s in sources)} already {'holds' if len(sources) == 1 else 'hold'} the current "
                f"{self.asa_q} credential: {', '.join(missing)} {'gets' if len(missing) == 1 else 'get'} a copy from "
                f"{source.name}, and no new password is generated.")
        for s in known:
            self.holds[s.name.lower()] = True
            if not current[s.name.lower()]:
                self.roll_change(s, source)

    def first_server(self, candidates: list[ExchangeServer]) -> ExchangeServer:
        wanted = self.a.rollout.first_server
        if wanted:
            for s in candidates:
                if s.name.lower() == wanted.lower() or s.fqdn.lower() == wanted.lower():
                    return s
            self.plan.notes.append(f"rollout.first_server = {wanted} cannot be the source: it is not among "
                                   f"{', '.join(s.name for s in candidates)}.")
        reachable = [s for s in candidates if s.reachable is not False]
        return (reachable or candidates)[0]

    def roll_change(self, server: ExchangeServer, source: ExchangeServer | None, push: bool = False) -> str:
        group = {"group": KEYS_GROUP} if self.enctypes_gain_aes else {}
        old = _cred(server.asa_latest)
        reversible = server.asa_latest is None
        undo = ([command("Set-ClientAccessService", Identity=server.name, RemoveAlternateServiceAccountCredentials=SWITCH)]
                if reversible else [])
        warning = None if reversible else (
            f"{server.name} already held a credential: undo leaves the new one in place (the old password cannot "
            "be restored, and the server keeps it as its previous credential).")
        push_command = command("Set-ClientAccessService", Identity=server.fqdn,
                               CleanUpInvalidAlternateServiceAccountCredentials=SWITCH,
                               AlternateServiceAccountCredential=variable("cred"))
        if source is None:
            cid = f"rollout.push:{server.name}" if push else f"rollout.generate:{server.name}"
            # generated once, in the session's memory, as Microsoft's script does (two GUIDs joined by X)
            first = None if push else assign("cred", command("New-Object", "PSCredential", ArgumentList=[
                self.asa_q, subexpression(command("ConvertTo-SecureString", subexpression(
                    Code("([guid]::NewGuid(),[guid]::NewGuid()) -join 'X'")), AsPlainText=SWITCH, Force=SWITCH))]))
            c = Change(
                id=cid, system=System.EXCHANGE, action="roll-push" if push else "roll-generate", target=server.name,
                summary=(f"Push the new {self.asa_q} password to {server.name} ({server.fqdn})" if push else
                         f"Generate a new password for {self.asa_q} and push it to {server.name} ({server.fqdn})"),
                attribute="AlternateServiceAccountCredential", old=old, new=self.asa_q,
                params={"server": server.fqdn, "account": self.asa_q, "undo": "remove" if reversible else "keep",
                        **group},
                commands=[x for x in (first, push_command) if x],
                undo_commands=undo, proven_by=["rollout.coverage", "rollout.current"], step="rollout",
                depends_on=list(self.rollout_deps), warning=warning)
        else:
            cid = f"rollout.copy:{server.name}"
            c = Change(
                id=cid, system=System.EXCHANGE, action="roll-copy", target=server.name,
                summary=(f"Copy every {self.asa_q} credential of {source.name} to {server.name} ({server.fqdn}); "
                         f"this replaces the credentials {server.name} holds"),
                attribute="AlternateServiceAccountCredential", old=old, new=self.asa_q,
                params={"server": server.fqdn, "source": source.fqdn, "undo": "remove" if reversible else "keep",
                        **group},
                # the first in a remote PowerShell session on the source server (only there is the password returned)
                commands=[assign("c", Code(subexpression(command(
                              "Get-ClientAccessService", source.fqdn, IncludeAlternateServiceAccountCredentialPassword=SWITCH))
                              + ".AlternateServiceAccountConfiguration.EffectiveCredentials.Credential")),
                          command("Set-ClientAccessService", Identity=server.fqdn,
                                  RemoveAlternateServiceAccountCredentials=SWITCH,
                                  AlternateServiceAccountCredential=variable("c"))],
                undo_commands=undo, proven_by=["rollout.coverage", "rollout.current"], step="rollout",
                depends_on=list(self.rollout_deps), warning=warning)
        self.add(c)
        self.roll_ids[server.name.lower()] = cid
        return cid

    def ad_password_change(self, servers: list[ExchangeServer]) -> None:
        """The one AD change of a native roll: after every push (it depends on all of them)."""
        assert self.asa is not None
        deps = [self.roll_ids[s.name.lower()] for s in servers if s.name.lower() in self.roll_ids]
        self.add(Change(
            id="rollout.ad-password", system=System.DIRECTORY, action="roll-ad-password", target=self.asa.dn,
            summary=f"Reset the password of {self.asa_q} in AD to the pushed one (once, after every push worked)",
            attribute="unicodePwd", old=None, new="(the pushed password)",
            params={"dn": self.asa.dn, **({"group": KEYS_GROUP} if self.enctypes_gain_aes else {})},
            commands=[command("Set-ADAccountPassword", Identity=self.asa.dn, Reset=SWITCH,
                              NewPassword=Code("$cred.Password"))],
            undo_commands=[], proven_by=["rollout.current"], step="rollout", depends_on=deps,
            warning="A password reset cannot be undone. It needs the Reset Password right on the ASA; if it is "
                    "refused, every server keeps working with the current password."))
        for s in servers:
            self.roll_ids[s.name.lower()] = "rollout.ad-password"

    # --- step: spns -------------------------------------------------------------------------------
    def plan_spns(self, servers: list[ExchangeServer]) -> None:
        assert self.asa is not None
        hosts = self.a.spns.namespaces or [n.host for n in self.env.namespaces]
        included = {s.name.lower() for s in servers}
        move_from = {normalize_account(m) for m in self.a.spns.move_from}
        if self.no_exchange and self.asa_created:
            self.plan.notes.append("The SPNs are not planned: the new ASA's credential is on no server yet, and the "
                                   "rollout needs the Exchange servers (plan again without no_exchange).")
            return
        for host in sorted(dict.fromkeys(h.lower() for h in hosts)):
            ns = next((n for n in self.env.namespaces if n.host == host), None)
            if ns is None:
                self.plan.notes.append(f"{host} is not published by any virtual directory or Autodiscover SCP; its "
                                       "SPN is planned as asked.")
            spn = f"HTTP/{host}"
            behind = [self.env.server(n) for n in (ns.servers if ns else [s.name for s in servers])]
            blocked = False
            deps = list(self.asa_change_ids)
            unknown: list[ExchangeServer] = []
            for s in behind:
                if s is None:
                    continue
                if s.name.lower() in self.roll_ids:
                    deps.append(self.roll_ids[s.name.lower()])
                    continue
                if credential_is_current(s, self.asa, self.asa_q):
                    continue
                if not s.asa_state_known:
                    unknown.append(s)
                elif s.name.lower() not in included:
                    self.prereq(f"{s.name} answers on {host} but is not in the rollout and lacks the ASA credential: "
                                f"registering {spn} would break Kerberos on it.", "unmet", True,
                                f"Add {s.name} to rollout.servers, or take it out of the load balancer for {host}.")
                    blocked = True
            confirmed_by_user = False
            # registering the SPN, or taking it from another owner (then the KDC uses the ASA's key): either makes
            # the servers behind the name decrypt with the ASA's credential
            others = [d for d in self.env.spn_owners.get(spn.lower(), []) if d.lower() != self.asa.dn.lower()]
            if unknown and not blocked and (not self.asa.has_spn(spn) or others):
                if self.servers_confirmed(host, spn, unknown):
                    confirmed_by_user = True
                else:
                    blocked = True
            removals = []
            for owner_dn in self.env.spn_owners.get(spn.lower(), []):
                if owner_dn.lower() == self.asa.dn.lower():
                    continue
                owner = self.env.account_by_dn(owner_dn)
                owner_q = self.qualified(owner) if owner else owner_dn
                if normalize_account(owner_q) in move_from or (owner and normalize_account(owner.sam) in move_from):
                    stored = next((x for x in (owner.spns if owner else []) if x.lower() == spn.lower()), spn)
                    rid = f"spn.remove:{spn}@{owner.sam if owner else owner_dn}"
                    self.add(Change(
                        id=rid, system=System.DIRECTORY, action="remove-spns", target=owner_dn,
                        summary=f"Remove {stored} from {owner_q} (named in spns.move_from)",
                        attribute="servicePrincipalName", old=stored, new=None,
                        params={"dn": owner_dn, "spns": [stored]},
                        commands=[setspn("-D", stored, owner_q)],
                        undo_commands=[setspn("-S", stored, owner_q)],
                        warning="Undo puts the SPN back only if no other account holds it then (setspn -S refuses "
                                "a duplicate)." + (f" Planned on the user's confirmation that every server behind "
                                                   f"{host} holds the current {self.asa_q} credential (the servers "
                                                   "were not read)." if confirmed_by_user else ""),
                        proven_by=["spn.duplicate", "spn.owner"], step="spns", depends_on=list(dict.fromkeys(deps))))
                    removals.append(rid)
                else:
                    self.prereq(f"{spn} is registered on {owner_q}, not on the ASA {self.asa_q}.", "unmet", True,
                                f'If {owner_q} is an old account, name it to move the SPN: [spns] move_from = '
                                f'["{owner_q}"]. Otherwise choose {owner_q} as the ASA.')
                    blocked = True
            if blocked and removals:  # an SPN is moved whole or not at all
                self.plan.changes = [c for c in self.plan.changes if c.id not in removals]
            if blocked or self.asa.has_spn(spn):
                continue
            cid = f"spn.add:{spn}"
            self.add(Change(
                id=cid, system=System.DIRECTORY, action="add-spns", target=self.asa.dn,
                summary=f"Register {spn} on {self.asa_q}",
                attribute="servicePrincipalName", old=None, new=spn, params={"dn": self.asa.dn, "spns": [spn]},
                commands=[setspn("-F -Q", spn), setspn("-S", spn, self.asa_q)],
                undo_commands=[setspn("-D", spn, self.asa_q)],
                proven_by=["spn.present", "spn.owner", "spn.duplicate", "kerberos.server"], step="spns",
                depends_on=list(dict.fromkeys(deps + removals)),
                warning=(f"Registered on the user's confirmation that every server behind {host} holds the current "
                         f"{self.asa_q} credential (the servers were not read).") if confirmed_by_user else None))
            self.spn_add_ids[spn.lower()] = cid

    def servers_confirmed(self, host: str, spn: str, unknown: list[ExchangeServer]) -> bool:
        """An SPN on the ASA is safe only when every server behind the name holds its credential. When the servers
        were not read that is the user's to confirm, by hand: a prerequisite says how; met only once confirmed."""
        names = ", ".join(s.name for s in unknown)
        assert self.asa is not None
        since = (f" and was added after the ASA's last password change ({aware(self.asa.pwd_last_set).isoformat()})"
                 if self.asa.pwd_last_set else "")
        read = command("Get-ClientAccessService", Identity="<server>", IncludeAlternateServiceAccountCredentialStatus=SWITCH)
        how = (f"On an Exchange server, in the Exchange Management Shell, for each of {names}: {read} (its "
               f"AlternateServiceAccountConfiguration). The latest credential must name {self.asa_q}{since}.")
        confirmed = self.a.spns.confirm_servers_hold_credential
        why = "could not be read" if not self.no_exchange else "are not read in a directory-only plan"
        text = (f"Every server behind {host} ({names}) holds the current {self.asa_q} credential before {spn} is "
                f"registered on it (the servers {why}).")
        if confirmed:
            self.prereq(text + " Confirmed by the user (confirm_servers_hold_credential).", "met", True, how)
        else:
            self.prereq(text, "unmet", True, how + " Then confirm it: --confirm-servers-hold-credential, or "
                        "[spns] confirm_servers_hold_credential = true in the answers file.")
        return confirmed

    def spn_deps_for(self, server: ExchangeServer, service: Service | None = None) -> list[str]:
        deps = [self.roll_ids[server.name.lower()]] if server.name.lower() in self.roll_ids else []
        for v in self.env.vdirs_for(server.name, service):
            for h in v.hosts:
                cid = self.spn_add_ids.get(f"http/{h.lower()}")
                if cid and cid not in deps:
                    deps.append(cid)
        return deps

    # --- step: client-auth ------------------------------------------------------------------------
    def plan_client_auth(self, servers: list[ExchangeServer]) -> None:
        ca = self.a.client_auth
        for s in servers:
            if ca.outlook_anywhere:
                for v in self.env.vdirs_for(s.name, Service.OUTLOOK_ANYWHERE):
                    if (v.internal_client_auth or "").lower() == "negotiate":
                        continue
                    old = v.internal_client_auth
                    self.add(Change(
                        id=f"auth.oa:{s.name}", system=System.EXCHANGE, action="set-oa-client-auth", target=s.name,
                        summary=f"Outlook Anywhere on {s.name}: internal client authentication {old or 'unset'} "
                                "-> Negotiate",
                        attribute="InternalClientAuthenticationMethod", old=old, new="Negotiate",
                        params={"server": s.fqdn, "method": "Negotiate"},
                        commands=[pipeline(command("Get-OutlookAnywhere", Server=s.name),
                                           command("Set-OutlookAnywhere", InternalClientAuthenticationMethod="Negotiate"))],
                        undo_commands=[pipeline(command("Get-OutlookAnywhere", Server=s.name),
                                                command("Set-OutlookAnywhere",
                                                        InternalClientAuthenticationMethod=old or "Ntlm"))],
                        proven_by=["auth.outlook-anywhere"], step="client-auth",
                        depends_on=self.spn_deps_for(s, Service.OUTLOOK_ANYWHERE)))
            if ca.mapi:
                for v in self.env.vdirs_for(s.name, Service.MAPI):
                    if any(m.lower() == "negotiate" for m in v.auth_methods):
                        continue
                    old_m = list(v.auth_methods)
                    new_m = old_m + ["Negotiate"]
                    self.add(Change(
                        id=f"auth.mapi:{s.name}", system=System.EXCHANGE, action="set-mapi-auth", target=s.name,
                        summary=f"MAPI over HTTP on {s.name}: add Negotiate ({', '.join(old_m) or 'none'} -> "
                                f"{', '.join(new_m)})",
                        attribute="IISAuthenticationMethods", old=old_m, new=new_m,
                        params={"server": s.fqdn, "methods": new_m},
                        commands=[pipeline(command("Get-MapiVirtualDirectory", Server=s.name),
                                           command("Set-MapiVirtualDirectory", IISAuthenticationMethods=new_m))],
                        undo_commands=[pipeline(command("Get-MapiVirtualDirectory", Server=s.name),
                                                command("Set-MapiVirtualDirectory", IISAuthenticationMethods=old_m))]
                        if old_m else [],
                        proven_by=["auth.mapi"], step="client-auth", depends_on=self.spn_deps_for(s, Service.MAPI),
                        warning=None if "oauth" in (m.lower() for m in old_m) or not self.env.hybrid else
                        "Hybrid organisation without OAuth on MAPI: check the hybrid configuration."))

    # --- step: seg --------------------------------------------------------------------------------
    def seg_target_host(self, servers: list[ExchangeServer]) -> str | None:
        if self.a.seg.delegate_to:
            return self.a.seg.delegate_to
        for s in servers:
            for v in self.env.vdirs_for(s.name, Service.EAS):
                if v.internal_host or v.external_host:
                    return (v.external_host or v.internal_host or "").lower()
        return None

    def plan_seg(self, servers: list[ExchangeServer]) -> None:
        sg = self.a.seg
        sa = self.env.account_by_sam(sg.service_account or "")
        if sa is None:
            self.prereq(f"The SEG service account {sg.service_account} was not found in the directory.", "unmet", True,
                        "Create it (a user account in the users' domain) or fix seg.service_account.")
            return
        sa_q = self.qualified(sa)
        cmdlet = "Set-ADComputer" if sa.is_computer else "Set-ADUser"
        asa_domain = self.env.forest.domain_of_dn(self.asa.dn) if self.asa else None
        sa_domain = self.env.forest.domain_of_dn(sa.dn)
        if asa_domain and sa_domain and asa_domain.dn.lower() != sa_domain.dn.lower():
            self.prereq(f"{sa_q} is in {sa_domain.dns_name} and the ASA in {asa_domain.dns_name}: classic constrained "
                        "delegation needs one domain.", "unmet", True,
                        "Use a service account in the ASA's domain, or resource-based constrained delegation.")
            return
        for user in sg.test_users:
            u = self.env.account_by_sam(user)
            if u is not None and (u.has_flag(UAC_NOT_DELEGATED) or u.dn in self.env.protected_users):
                self.prereq(f"The test user {user} cannot be impersonated (sensitive account or Protected Users).",
                            "unmet", False, "Choose another test user, or clear 'Account is sensitive and cannot be "
                            "delegated'.")
        spn_id = None
        if not sa.spns:
            spn = sg.spn or f"HTTP/{sa.sam.rstrip('$')}"
            owners = [d for d in self.env.spn_owners.get(spn.lower(), []) if d.lower() != sa.dn.lower()]
            if owners:
                self.prereq(f"{spn} for the SEG account is already registered on {owners[0]}.", "unmet", True,
                            "Choose another SPN in seg.spn.")
                return
            spn_id = f"seg.spn:{spn}"
            self.add(Change(
                id=spn_id, system=System.DIRECTORY, action="add-spns", target=sa.dn,
                summary=f"Register {spn} on the SEG service account {sa_q} (delegation needs an SPN)",
                attribute="servicePrincipalName", old=None, new=spn, params={"dn": sa.dn, "spns": [spn]},
                commands=[setspn("-S", spn, sa_q)], undo_commands=[setspn("-D", spn, sa_q)],
                proven_by=["kcd.service-account-spn"], step="seg"))
            self.seg_ids.append(spn_id)
        host = self.seg_target_host(servers)
        if host is not None:
            self.plan.notes.append(f"In the SEG console: target SPN HTTP/{host}, Kerberos realm "
                                   f"{(sa_domain.realm if sa_domain else self.env.forest.root_domain.upper())} "
                                   "(upper case), service account " + sa_q + ".")
        if host is None:
            self.prereq("No ActiveSync namespace was found for the delegation target.", "unmet", True,
                        'Name it in seg.delegate_to = "mail.contoso.com".')
        else:
            target = f"HTTP/{host}"
            on_asa = (self.asa is not None and self.asa.has_spn(target)) or target.lower() in self.spn_add_ids
            if not on_asa:
                self.prereq(f"The delegation target {target} is not (and will not be) registered on the ASA.", "unmet",
                            True, f"Add {host} to spns.namespaces, or fix seg.delegate_to." + (
                                " In a directory-only plan the SPN goes on the ASA only once you confirm that every "
                                "server behind it holds the credential (see the prerequisite above)."
                                if self.no_exchange else ""))
            old = list(sa.delegate_to)
            # Every entry that is not an SPN on the ASA (nor planned onto it) is a stale target: removed.
            stale = [x for x in old if x.lower() != target.lower() and self.asa is not None
                     and not self.asa.has_spn(x) and x.lower() not in self.spn_add_ids]
            add = [] if any(x.lower() == target.lower() for x in old) else [target]
            if stale or add:
                new = [x for x in old if x not in stale] + add
                cid = "seg.delegate-to"
                deps = [d for d in (spn_id, self.spn_add_ids.get(target.lower())) if d]
                parts = ([f"allow {sa_q} to delegate to {target}"] if add else []) + (
                    [f"remove the stale target{'s' if len(stale) > 1 else ''} {', '.join(stale)} (not an SPN on the "
                     "ASA)"] if stale else [])
                def deleg(op: str, x: str) -> str:
                    return command(cmdlet, Identity=sa.sam, **{op: hashtable({"msDS-AllowedToDelegateTo": x})})

                commands = [deleg("Add", x) for x in add] + [deleg("Remove", x) for x in stale]
                undo = [deleg("Remove", x) for x in add] + [deleg("Add", x) for x in stale]
                self.add(Change(
                    id=cid, system=System.DIRECTORY, action="set-delegate-to", target=sa.dn,
                    summary=(f"Allow {sa_q} to delegate to {target} (constrained delegation)" if not stale else
                             "Constrained delegation of " + sa_q + ": " + "; ".join(parts)),
                    attribute="msDS-AllowedToDelegateTo", old=old, new=new, params={"dn": sa.dn, "spns": new},
                    commands=commands, undo_commands=undo,
                    proven_by=["kcd.target", "kerberos.s4u"], step="seg", depends_on=deps))
                self.seg_ids.append(cid)
        want = (sa.uac | UAC_TRUSTED_TO_AUTH_FOR_DELEGATION) & ~UAC_TRUSTED_FOR_DELEGATION
        if want != sa.uac:
            commands = [command("Set-ADAccountControl", Identity=sa.sam, TrustedToAuthForDelegation=True)]
            undo = [command("Set-ADAccountControl", Identity=sa.sam,
                            TrustedToAuthForDelegation=sa.has_flag(UAC_TRUSTED_TO_AUTH_FOR_DELEGATION))]
            if sa.has_flag(UAC_TRUSTED_FOR_DELEGATION):
                commands.append(command("Set-ADAccountControl", Identity=sa.sam, TrustedForDelegation=False))
                undo.append(command("Set-ADAccountControl", Identity=sa.sam, TrustedForDelegation=True))
            cid = "seg.protocol-transition"
            self.add(Change(
                id=cid, system=System.DIRECTORY, action="set-uac", target=sa.dn,
                summary=f"Let {sa_q} use any authentication protocol (TRUSTED_TO_AUTH_FOR_DELEGATION"
                        + ("; unconstrained delegation removed" if sa.has_flag(UAC_TRUSTED_FOR_DELEGATION) else "")
                        + ")",
                attribute="userAccountControl", old=sa.uac, new=want, params={"dn": sa.dn, "value": want},
                commands=commands, undo_commands=undo, proven_by=["kcd.protocol-transition", "kcd.no-unconstrained"],
                step="seg", depends_on=[spn_id] if spn_id else []))
            self.seg_ids.append(cid)
        for s in [] if self.no_exchange else servers:
            members = {m.lower() for m in self.env.iis_iusrs.get(s.name, [])}
            if sa_q.lower() in members:
                continue
            cid = f"seg.iis-iusrs:{s.name}"
            self.add(Change(
                id=cid, system=System.EXCHANGE, action="add-iis-iusrs", target=s.name,
                summary=f"Add {sa_q} to the local IIS_IUSRS group on {s.name}",
                attribute="IIS_IUSRS", old=None, new=sa_q, params={"server": s.fqdn, "member": sa_q},
                commands=[command("Invoke-Command", ComputerName=s.fqdn, ScriptBlock=script_block(
                    command("Add-LocalGroupMember", Group="IIS_IUSRS", Member=sa_q)))],
                undo_commands=[command("Invoke-Command", ComputerName=s.fqdn, ScriptBlock=script_block(
                    command("Remove-LocalGroupMember", Group="IIS_IUSRS", Member=sa_q)))],
                proven_by=["kcd.iis-iusrs"], step="seg",
                depends_on=[self.roll_ids[s.name.lower()]] if s.name.lower() in self.roll_ids else []))
            self.iusrs_ids[s.name.lower()] = cid

    # --- step: iis-auth ---------------------------------------------------------------------------
    def plan_iis_auth(self, servers: list[ExchangeServer]) -> None:
        services = [Service.EAS] + ([Service.EWS] if self.a.seg.ews_proxy else [])
        for s in servers:
            for service in services:
                vdirs = self.env.vdirs_for(s.name, service)
                if not vdirs:
                    continue
                old = vdirs[0].iis or IisAuth()
                providers = ["Negotiate"] + [p for p in old.providers if p.lower() != "negotiate"]
                want = IisAuth(basic=False, windows=True, providers=providers, use_kernel_mode=True,
                               use_app_pool_credentials=True)
                if want == old:
                    continue
                app = IIS_APPS[service]
                key = "eas" if service == Service.EAS else "ews"
                deps = self.spn_deps_for(s, service) + list(self.seg_ids)
                if s.name.lower() in self.iusrs_ids:
                    deps.append(self.iusrs_ids[s.name.lower()])
                self.add(Change(
                    id=f"iis.{key}:{s.name}", system=System.EXCHANGE, action="set-iis-auth", target=s.name,
                    summary=f"{service.title} on {s.name}: {_iis_summary(old, want)}",
                    attribute=f"{IIS_SITE}/{app} authentication", old=asdict(old), new=asdict(want),
                    params={"server": s.fqdn, "application": app, "auth": asdict(want)},
                    commands=[_iis_script(s.fqdn, app, old, want)], undo_commands=[_iis_script(s.fqdn, app, want, old)],
                    proven_by=["kcd.eas-auth" if service == Service.EAS else "kcd.ews-auth"], step="iis-auth",
                    depends_on=list(dict.fromkeys(deps)), warning=IIS_RESET_WARNING))


# ----------------------------------------------------------------------------------------------------
def _enc(value: int | None) -> str:
    return "unset" if value is None else f"{value} ({'+'.join(enctype_names(value)) or 'none'})"


def _has_aes(value: int | None) -> bool:
    return value is not None and bool(value & (ENC_AES128 | ENC_AES256))


def _cred(c: AsaCredential | None) -> dict[str, Any] | None:
    if c is None:
        return None
    when = c.when_added.isoformat() if isinstance(c.when_added, datetime) else None
    return {"account": c.account, "when": when}


def _iis_summary(old: IisAuth, new: IisAuth) -> str:
    parts = []
    if old.basic != new.basic:
        parts.append(f"Basic {'on' if new.basic else 'off'}")
    if old.windows != new.windows:
        parts.append(f"Windows authentication {'on' if new.windows else 'off'}")
    if old.providers != new.providers:
        parts.append(f"providers {', '.join(old.providers) or 'none'} -> {', '.join(new.providers)}")
    if old.use_kernel_mode != new.use_kernel_mode:
        parts.append(f"useKernelMode {str(new.use_kernel_mode).lower()}")
    if old.use_app_pool_credentials != new.use_app_pool_credentials:
        parts.append(f"useAppPoolCredentials {str(new.use_app_pool_credentials).lower()}")
    return "; ".join(parts)


def _iis_script(fqdn: str, app: str, old: IisAuth, new: IisAuth) -> str:
    """The IIS settings that differ between `old` and `new`, as one Invoke-Command block for that server."""
    auth = "system.webServer/security/authentication"
    where = {"PSPath": variable("psPath"), "Location": variable("location")}
    lines = [statements(assign("psPath", "MACHINE/WEBROOT/APPHOST"), assign("location", IIS_SITE + "/" + app))]

    def prop(section: str, name: str, value: bool) -> None:
        lines.append(command("Set-WebConfigurationProperty", **where, Filter=auth + "/" + section, Name=name,
                             Value=value))

    if old.basic != new.basic:
        prop("basicAuthentication", "enabled", new.basic)
    if old.windows != new.windows:
        prop("windowsAuthentication", "enabled", new.windows)
    if old.use_kernel_mode != new.use_kernel_mode:
        prop("windowsAuthentication", "useKernelMode", new.use_kernel_mode)
    if old.use_app_pool_credentials != new.use_app_pool_credentials:
        prop("windowsAuthentication", "useAppPoolCredentials", new.use_app_pool_credentials)
    if old.providers != new.providers:
        flt = auth + "/windowsAuthentication/providers"
        lines.append(command("Clear-WebConfiguration", **where, Filter=flt))
        for p in new.providers:
            lines.append(command("Add-WebConfigurationProperty", **where, Filter=flt, Name=".",
                                 Value=hashtable({"value": p})))
    return command("Invoke-Command", ComputerName=fqdn, ScriptBlock=script_block(*lines, multiline=True))
