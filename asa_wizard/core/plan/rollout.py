"""Step rollout: the credential onto every server. A new password pushed to every server first, then the AD
password reset once; -CopyFrom only for a server joining servers that hold the current password."""

from __future__ import annotations

from ..changes import Change, System
from ..commands import SWITCH, Code, assign, command, subexpression, variable
from ..model import Account, ExchangeServer
from .base import PlannerBase, credential_is_current
from .model import KEYS_GROUP
from .values import credential_value


class RolloutRules(PlannerBase):
    """The rollout's changes: generate and push, or copy from a server that holds the current password."""

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
        old = credential_value(server.asa_latest)
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
        self.add(ad_password_change(self.asa, self.asa_q, deps, servers[0].fqdn or servers[0].name if servers else "",
                                    self.enctypes_gain_aes))
        for s in servers:
            self.roll_ids[s.name.lower()] = "rollout.ad-password"


def ad_password_change(asa: Account, asa_q: str, deps: list[str], first: str, gain_aes: bool = False) -> Change:
    """The AD half of a native roll, as Microsoft's script makes it: a computer account's password is reset; a
    user account's is changed with its old password, which the servers hold (no Reset Password right needed),
    and reset only when the change is refused (the minimum password age, usually)."""
    if asa.is_computer:
        summary = f"Reset the password of {asa_q} in AD to the pushed one (once, after every push worked)"
        commands = [command("Set-ADAccountPassword", Identity=asa.dn, Reset=SWITCH, NewPassword=Code("$cred.Password"))]
        warning = ("A password reset cannot be undone. It needs the Reset Password right on the ASA; if it is "
                   "refused, every server keeps working with the current password.")
    else:
        summary = (f"Change the password of {asa_q} in AD to the pushed one with its old password, which the servers "
                   "hold (once, after every push worked); reset it if the change is refused")
        # the old password: the second of the account's two credentials on the first server that took the push
        commands = [assign("old", Code(subexpression(command(
                        "Get-ClientAccessService", first, IncludeAlternateServiceAccountCredentialPassword=SWITCH))
                        + ".AlternateServiceAccountConfiguration.EffectiveCredentials[1].Credential")),
                    command("Set-ADAccountPassword", Identity=asa.dn, OldPassword=Code("$old.Password"),
                            NewPassword=Code("$cred.Password"))]
        warning = ("A password change cannot be undone. It needs no Reset Password right, only the old password; "
                   "the domain's password policy applies, and a password younger than the minimum password age "
                   "(1 day by default) is reset instead, which needs the Reset Password right on the ASA. If that "
                   "is refused too, every server keeps working with the current password.")
    return Change(
        id="rollout.ad-password", system=System.DIRECTORY, action="roll-ad-password", target=asa.dn, summary=summary,
        attribute="unicodePwd", old=None, new="(the pushed password)",
        params={"dn": asa.dn, **({"group": KEYS_GROUP} if gain_aes else {})}, commands=commands, undo_commands=[],
        proven_by=["rollout.current"], step="rollout", depends_on=deps, warning=warning)
