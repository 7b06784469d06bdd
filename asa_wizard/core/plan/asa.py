"""Step asa: reuse or create the ASA, and its encryption types."""

from __future__ import annotations

from ..changes import Change, System
from ..commands import command, hashtable, switch
from ..model import ENC_RC4, Account, AccountKind, enctype_names
from .base import PlannerBase
from .values import enc_text, escape_dn_value, has_aes, read_password


class AsaRules(PlannerBase):
    """Reuse the named ASA (blocked when it is missing, a gMSA or disabled) or create it; set its encryption types."""

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
            if self.no_exchange and not has_aes(existing.enctypes) and has_aes(a.enctypes):
                self.prereq(f"{name} gains AES ({enc_text(existing.enctypes)} -> {enc_text(a.enctypes)}): the new encryption "
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
                        AccountPassword=read_password()),
                command("Set-ADComputer", Identity=sam, Replace=hashtable({"msDS-SupportedEncryptionTypes": enctypes})),
            ]
            undo = [command("Remove-ADComputer", Identity=sam, Confirm=switch(False))]
        else:
            commands = [
                command("New-ADUser", Name=cn, SamAccountName=sam, Path=ou, Enabled=True, PasswordNeverExpires=True,
                        Description=description, AccountPassword=read_password()),
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
                    f"({'+'.join(enctype_names(value))}); they were {enc_text(old)}",
            attribute="msDS-SupportedEncryptionTypes", old=old, new=value,
            params={"dn": account.dn, "value": value},
            commands=[command(cmdlet, Identity=account.sam, Replace=hashtable({"msDS-SupportedEncryptionTypes": value}))],
            undo_commands=[undo], proven_by=["asa.enctypes", "kerberos.ticket"], step="asa",
            warning=("Clients that can only use RC4 lose Kerberos to these names: check that the domain controllers' "
                     "KDCSVC audit events (201-209) are clean first.") if old and old & ENC_RC4 and not value & ENC_RC4
            else None))
        self.asa_change_ids.append(c.id)
        self.enctypes_gain_aes = not has_aes(old) and has_aes(value)
