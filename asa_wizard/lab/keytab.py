"""Keytabs for an AD account's SPNs, made from its password: what a server "holds" when it has the ASA
credential. For the tests against a real KDC and for instructors who stand up their own acceptors.

The key is derived from the password and the salt. The salt is asked from the KDC (etype-info2 in the
pre-authentication hint) and, if the KDC gives none, computed by Active Directory's rules:
computer `REALM + "host" + lower(sam without $) + "." + lower(realm)`, user `REALM + sAMAccountName`.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..core.errors import WizardError
from ..core.secrets import Secret

ENCTYPES = ("aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96", "arcfour-hmac")


def ad_salt(realm: str, sam: str) -> bytes:
    """The salt Active Directory uses for an account's AES keys (no UPN-specific rules)."""
    realm = realm.upper()
    if sam.endswith("$"):
        return f"{realm}host{sam[:-1].lower()}.{realm.lower()}".encode()
    return f"{realm}{sam}".encode()


def kdc_salt(realm: str, sam: str) -> bytes | None:
    """The salt the KDC announces for `sam@REALM`, or None when it cannot be asked (no KDC, no hint)."""
    import krb5

    ctx = krb5.init_context()
    try:
        info = krb5.get_etype_info(ctx, krb5.parse_name_flags(ctx, f"{sam}@{realm.upper()}".encode()))
    except krb5.Krb5Error:
        return None
    return info.salt or None


def write_keytab(path: str | Path, realm: str, sam: str, password: Secret, kvno: int, spns: list[str],
                 enctypes: tuple[str, ...] = ENCTYPES, ask_kdc: bool = True) -> Path:
    """Write a keytab with a key per SPN and encryption type for the account's password at `kvno`.
    The file is as good as the password: it is made readable by its owner only; put it in a private folder."""
    import krb5

    path = Path(path)
    salt = (kdc_salt(realm, sam) if ask_kdc else None) or ad_salt(realm, sam)
    ctx = krb5.init_context()
    kt = krb5.kt_resolve(ctx, b"FILE:" + str(path).encode())
    try:
        for spn in spns:
            principal = krb5.parse_name_flags(ctx, f"{spn}@{realm.upper()}".encode())
            for name in enctypes:
                key = krb5.c_string_to_key(ctx, krb5.string_to_enctype(ctx, name), password.reveal().encode(), salt)
                krb5.kt_add_entry(ctx, kt, principal, kvno, int(time.time()), key)
    except krb5.Krb5Error as exc:
        raise WizardError(f"Could not write the keytab {path}: {exc}",
                          "Check the SPNs and that the directory is writable.") from None
    path.chmod(0o600)
    return path
