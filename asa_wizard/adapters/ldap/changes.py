"""Changing accounts: SPNs, encryption types, userAccountControl, delegation targets and the password. Each
change re-reads its object first, refuses when it changed since the plan (`expected`), and gives back what undo
needs."""

from __future__ import annotations

from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from ...core.errors import NotFound, PolicyRefused, SpnConflict, StaleObject
from ...core.model import UAC_TRUSTED_FOR_DELEGATION, Account
from ...core.secrets import Secret
from .. import ldap_errors as le
from ..ldap_errors import InsecureConnection, InvalidInput
from .reads import DirectoryReads
from .values import UNSET, owner_name, validate_spn


class DirectoryChanges(DirectoryReads):
    """The `DirectoryPort` changes to existing accounts."""

    def _reread(self, dn: str) -> Account:
        acct = self.get_account_by_dn(dn)
        if acct is None:
            raise NotFound(f"The account {dn} no longer exists.", "Refresh the discovery and plan again.")
        return acct

    def _stale(self, acct: Account, what: str, expected, actual) -> None:
        if expected is not UNSET and expected != actual:
            raise StaleObject(f"{acct.sam} changed since the plan was made: {what} is {actual!r}, the plan "
                              f"expected {expected!r}. Nothing was changed.",
                              "Refresh the discovery and review the plan again.")

    def _require_tls(self, what: str) -> None:
        with self._lock:
            conn = self._connection()
            if not self._encrypted(conn):
                raise InsecureConnection(f"Cannot {what}: a password can only be set over an encrypted connection, "
                                         "and this one is not. Nothing was changed.",
                                         "Connect with LDAPS (636) or StartTLS (389).")

    def add_spns(self, dn: str, spns: list[str]) -> list[str]:
        for spn in spns:
            validate_spn(spn)
        with self._lock:
            acct = self._reread(dn)
            to_add: list[str] = []
            for spn in spns:
                if acct.has_spn(spn) or any(s.lower() == spn.lower() for s in to_add):
                    continue
                others = [o for o in self.find_spn_owners(spn) if o.dn.lower() != dn.lower()]
                if others:
                    raise SpnConflict(spn, owner_name(others[0]))
                to_add.append(spn)
            if not to_add:
                return []
            result = self._write("modify", dn, {"servicePrincipalName": [(MODIFY_ADD, to_add)]},
                                 what=f"add SPNs to {acct.sam}")
            if result.get("result") == le.CONSTRAINT_VIOLATION:
                # The DC found another owner (a race, or one outside what the lookup could see).
                for spn in to_add:
                    others = [o for o in self.find_spn_owners(spn) if o.dn.lower() != dn.lower()]
                    if others:
                        raise SpnConflict(spn, owner_name(others[0]))
                raise SpnConflict(", ".join(to_add), "another account (the DC refused it as a duplicate)",
                                  "Search the forest (setspn -Q) or connect to a global catalog to find the owner.")
            self._check(result, what=f"add SPNs to {acct.sam}", target=dn)
            return to_add

    def remove_spns(self, dn: str, spns: list[str]) -> list[str]:
        with self._lock:
            acct = self._reread(dn)
            wanted = {s.lower() for s in spns}
            present = [s for s in acct.spns if s.lower() in wanted]
            if present:
                self._check(self._write("modify", dn, {"servicePrincipalName": [(MODIFY_DELETE, present)]},
                                        what=f"remove SPNs from {acct.sam}"),
                            what=f"remove SPNs from {acct.sam}", target=dn)
            return present

    def set_enctypes(self, dn: str, value: int | None, *, expected=UNSET) -> int | None:
        if value is not None and not (0 <= value <= 0x7FFFFFFF):
            raise InvalidInput(f"{value} is not an msDS-SupportedEncryptionTypes value.", "Use 24 or 28.")
        with self._lock:
            acct = self._reread(dn)
            self._stale(acct, "msDS-SupportedEncryptionTypes", expected, acct.enctypes)
            if acct.enctypes != value:
                self._check(self._write("modify", dn, {"msDS-SupportedEncryptionTypes": [
                    (MODIFY_REPLACE, [] if value is None else [value])]}, what="set the encryption types"),
                    what=f"set msDS-SupportedEncryptionTypes on {acct.sam}", target=dn)
            return acct.enctypes

    def set_uac(self, dn: str, value: int, *, expected=UNSET, restore: bool = False) -> int:
        """`restore`: undo of the wizard's own change, which may put back the unconstrained delegation it
        removed (the wizard never turns it on otherwise)."""
        with self._lock:
            acct = self._reread(dn)
            self._stale(acct, "userAccountControl", expected, acct.uac)
            if value & UAC_TRUSTED_FOR_DELEGATION and not acct.uac & UAC_TRUSTED_FOR_DELEGATION and not restore:
                raise PolicyRefused(f"Refusing to turn on unconstrained delegation (TRUSTED_FOR_DELEGATION) for {acct.sam}.",
                                    "KCD needs only TRUSTED_TO_AUTH_FOR_DELEGATION (0x1000000) and "
                                    "msDS-AllowedToDelegateTo.")
            if acct.uac != value:
                self._check(self._write("modify", dn, {"userAccountControl": [(MODIFY_REPLACE, [value])]},
                                        what="set userAccountControl"),
                            what=f"set userAccountControl on {acct.sam}", target=dn)
            return acct.uac

    def set_delegate_to(self, dn: str, spns: list[str], *, expected=UNSET) -> list[str]:
        for spn in spns:
            validate_spn(spn)
        with self._lock:
            acct = self._reread(dn)
            self._stale(acct, "msDS-AllowedToDelegateTo", expected if expected is UNSET else list(expected),
                        acct.delegate_to)
            if sorted(s.lower() for s in acct.delegate_to) != sorted(s.lower() for s in spns):
                self._check(self._write("modify", dn, {"msDS-AllowedToDelegateTo": [(MODIFY_REPLACE, list(spns))]},
                                        what="set msDS-AllowedToDelegateTo"),
                            what=f"set msDS-AllowedToDelegateTo on {acct.sam}", target=dn)
            return list(acct.delegate_to)

    def reset_password(self, dn: str, password: Secret) -> int | None:
        """Reset the account's password (unicodePwd, needs the Reset Password right and an encrypted
        connection); returns the new msDS-KeyVersionNumber as the directory reports it."""
        with self._lock:
            self._require_tls("reset a password")
            acct = self._reread(dn)
            value = f'"{password.reveal()}"'.encode("utf-16-le")
            result = self._write("modify", dn, {"unicodePwd": [(MODIFY_REPLACE, [value])]}, what="reset the password")
            del value
            if result.get("result", 0) != le.SUCCESS:
                raise le.translate_result(result, operation=f"reset the password of {acct.sam}", target=dn,
                                          where=self._where(), secrets=(password,))
            return self._reread(dn).key_version

    def change_password(self, dn: str, old: Secret, new: Secret) -> int | None:
        """Change the password with the old one: the old unicodePwd value deleted and the new one added in one
        modify (how AD takes a password change over LDAP). Needs the old password and an encrypted connection,
        not the Reset Password right; the password policy applies."""
        with self._lock:
            self._require_tls("change a password")
            acct = self._reread(dn)
            was, to = (f'"{x.reveal()}"'.encode("utf-16-le") for x in (old, new))
            result = self._write("modify", dn, {"unicodePwd": [(MODIFY_DELETE, [was]), (MODIFY_ADD, [to])]},
                                 what="change the password")
            del was, to
            if result.get("result", 0) != le.SUCCESS:
                raise le.translate_result(result, operation=f"change the password of {acct.sam}", target=dn,
                                          where=self._where(), secrets=(old, new))
            return self._reread(dn).key_version


