"""Step spns: HTTP/<namespace> on the ASA, only once every server behind the name holds the credential; an SPN
moved from another account only when the user named that owner."""

from __future__ import annotations

from ..changes import Change, System
from ..checks.base import aware
from ..commands import SWITCH, command, setspn
from ..model import ExchangeServer, normalize_account
from .base import PlannerBase, credential_is_current


class SpnRules(PlannerBase):
    """The SPN changes, and the prerequisites that keep an SPN off the ASA until it is safe."""

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
