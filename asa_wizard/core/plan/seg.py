"""Step seg: the Secure Email Gateway's service account: an SPN, constrained delegation with protocol transition
to the ActiveSync SPN on the ASA, and IIS_IUSRS on each server."""

from __future__ import annotations

from ..changes import Change, System
from ..commands import command, hashtable, script_block, setspn
from ..model import (
    UAC_NOT_DELEGATED,
    UAC_TRUSTED_FOR_DELEGATION,
    UAC_TRUSTED_TO_AUTH_FOR_DELEGATION,
    ExchangeServer,
    Service,
)
from .base import PlannerBase


class SegRules(PlannerBase):
    """The gateway's service account: SPN, delegation target, protocol transition, IIS_IUSRS."""

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
