"""Creating and deleting the ASA: a new account with a generated password set over TLS, removed again when a
later part fails, so no half-made account is left."""

from __future__ import annotations

from ldap3 import BASE, MODIFY_REPLACE
from ldap3.utils.dn import escape_rdn

from ...core.errors import NotFound, StaleObject, WizardError
from ...core.model import UAC_DONT_EXPIRE_PASSWD, UAC_NORMAL_ACCOUNT, UAC_WORKSTATION_TRUST_ACCOUNT, AccountKind
from ...core.passwords import generate_password, meets_complexity
from ...core.ports import CreatedAccount
from .. import ldap_errors as le
from ..ldap_errors import InvalidInput
from .changes import DirectoryChanges
from .values import ALLOWED_ENCTYPES, validate_dn, validate_sam


class AccountCreation(DirectoryChanges):
    """Create (and delete) an account."""

    def create_account(self, sam: str, kind: AccountKind, ou_dn: str, enctypes: int,
                       description: str = "") -> CreatedAccount:
        kind = AccountKind(kind)
        if kind == AccountKind.GMSA:
            raise InvalidInput("A group managed service account cannot be an Exchange ASA.",
                               "Create a computer account (preferred) or a user account.")
        validate_sam(sam, kind)
        validate_dn(ou_dn, "OU")
        if enctypes not in ALLOWED_ENCTYPES:
            raise InvalidInput(f"{enctypes} is not an encryption type choice for the ASA.",
                               "Use 24 (AES only, preferred) or 28 (AES and RC4, for old clients).")
        if any(ord(c) < 32 for c in description):
            raise InvalidInput("The description holds control characters.", "Use plain text.")
        cn = sam[:-1] if sam.endswith("$") else sam
        dn = f"CN={escape_rdn(cn)},{ou_dn}"
        with self._lock:
            self._require_tls(f"create {sam} with a password")
            if not self._search(ou_dn, "(objectClass=*)", ["objectClass"], BASE, what=f"read {ou_dn}", missing_ok=True):
                raise NotFound(f"The OU {ou_dn} does not exist.", "Pick an existing OU (or create it first).")
            existing = self.get_account(sam) or self.get_account_by_dn(dn)
            if existing is not None:
                raise StaleObject(f"An account {existing.sam} already exists at {existing.dn}. Nothing was created.",
                                  "Choose it as the ASA, or pick another name.")
            attrs: dict = {"sAMAccountName": sam, "msDS-SupportedEncryptionTypes": enctypes}
            if description:
                attrs["description"] = description
            if kind == AccountKind.COMPUTER:
                attrs["userAccountControl"] = UAC_WORKSTATION_TRUST_ACCOUNT
                object_class = ["top", "person", "organizationalPerson", "user", "computer"]
            else:
                object_class = ["top", "person", "organizationalPerson", "user"]
            self._check(self._write("add", dn, object_class, attrs, what=f"create {sam}"),
                        what=f"create the account {sam}", target=ou_dn)
            try:
                self._set_new_password(dn, sam)
                if kind == AccountKind.USER:
                    self._check(self._write("modify", dn, {"userAccountControl": [
                        (MODIFY_REPLACE, [UAC_NORMAL_ACCOUNT | UAC_DONT_EXPIRE_PASSWD])]}, what="enable the account"),
                        what=f"enable {sam}", target=dn)
                account = self._reread(dn)
            except WizardError as exc:
                self._undo_half_made(dn, sam, exc)
                raise
            return CreatedAccount(account=account, created=True)

    def _set_new_password(self, dn: str, sam: str) -> None:
        password = generate_password()
        while not meets_complexity(password.reveal(), (sam.rstrip("$"),)):
            password = generate_password()
        value = f'"{password.reveal()}"'.encode("utf-16-le")
        result = self._write("modify", dn, {"unicodePwd": [(MODIFY_REPLACE, [value])]}, what="set the password")
        del value
        if result.get("result", 0) != le.SUCCESS:
            raise le.translate_result(result, operation=f"set the password of {sam}", target=dn, where=self._where(),
                                      secrets=(password,))

    def _undo_half_made(self, dn: str, sam: str, cause: WizardError) -> None:
        result = self._write("delete", dn, what=f"remove the half-made {sam}")
        if result.get("result", 0) in (le.SUCCESS, le.NO_SUCH_OBJECT):
            cause.problem += f" The new account {sam} was removed again: nothing was left half-made."
        else:
            cause.problem += (f" The new account {sam} could NOT be removed again ({result.get('description')}): "
                              f"delete {dn} by hand.")
        cause.args = (cause.problem,)

    def delete_account(self, dn: str, *, expected_sam: str | None = None) -> None:
        with self._lock:
            acct = self._reread(dn)
            if expected_sam is not None and acct.sam.lower() != expected_sam.lower():
                raise StaleObject(f"{dn} is now {acct.sam}, not {expected_sam}. Nothing was deleted.",
                                  "Refresh and check which account to delete.")
            self._check(self._write("delete", dn, what=f"delete {acct.sam}"), what=f"delete the account {acct.sam}",
                        target=dn)

