"""What goes in and out of LDAP: the attributes read, the Exchange object classes, FILETIME, DN parsing, the
checks on names before anything is sent, and the row a search returns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

from ldap3.core import exceptions as lx
from ldap3.utils.dn import parse_dn

from ...core.model import Account, AccountKind, Service
from ..ldap_errors import InvalidInput

AUTODISCOVER_KEYWORD = "77378F46-2C66-4aa9-A6A6-3E7A48B19596"
PAGED_OID = "1.2.840.113556.1.4.319"
ACCOUNT_ATTRS = [
    "objectClass", "sAMAccountName", "userAccountControl", "servicePrincipalName",
    "msDS-SupportedEncryptionTypes", "pwdLastSet", "msDS-KeyVersionNumber", "msDS-AllowedToDelegateTo",
    "userPrincipalName", "memberOf", "description",
]
# Object classes of the Exchange virtual directories that carry client namespaces.
VDIR_CLASSES = {
    "msexchrpchttpvirtualdirectory": Service.OUTLOOK_ANYWHERE,
    "msexchmapivirtualdirectory": Service.MAPI,
    "msexchmobilevirtualdirectory": Service.EAS,
    "msexchwebservicesvirtualdirectory": Service.EWS,
    "msexchowavirtualdirectory": Service.OWA,
}
VDIR_CLASS_NAMES = {
    "msexchrpchttpvirtualdirectory": "msExchRpcHttpVirtualDirectory",
    "msexchmapivirtualdirectory": "msExchMapiVirtualDirectory",
    "msexchmobilevirtualdirectory": "msExchMobileVirtualDirectory",
    "msexchwebservicesvirtualdirectory": "msExchWebServicesVirtualDirectory",
    "msexchowavirtualdirectory": "msExchOWAVirtualDirectory",
}
ALLOWED_ENCTYPES = (24, 28)
RECENT_SECONDS = 10.0
SAM_FORBIDDEN = set('"/\\[]:;|=,+*?<>@')
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
FILETIME_NEVER = 0x7FFFFFFFFFFFFFFF
UNSET = object()  # a change's `expected`: not given, nothing to compare


@dataclass
class Row:
    """One entry a search returned: its DN and raw attribute values."""

    dn: str
    attrs: dict[str, list[bytes]]  # lower-cased attribute name -> raw values

    def strs(self, name: str) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.attrs.get(name.lower(), [])]

    def str(self, name: str) -> str | None:
        vals = self.strs(name)
        return vals[0] if vals else None

    def int(self, name: str) -> int | None:
        v = self.str(name)
        try:
            return int(v) if v is not None else None
        except ValueError:
            return None


def filetime_to_datetime(value: int | None) -> datetime | None:
    """pwdLastSet: 100 ns intervals since 1601-01-01 UTC; 0 means 'must change', max means 'never'."""
    if not value or value >= FILETIME_NEVER:
        return None
    return FILETIME_EPOCH + timedelta(microseconds=value // 10)


def datetime_to_filetime(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = when - FILETIME_EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


_RDN_RE = re.compile(r"\s*([A-Za-z][\w-]*|[\d.]+)\s*=((?:[^,+\\]|\\.)*)")
_PROTOCOLS_RE = re.compile(r"(?:^|,)\s*CN=Protocols\s*,\s*CN=((?:[^,+\\]|\\.)*)", re.IGNORECASE)
_UNESCAPE_RE = re.compile(r"\\([0-9a-fA-F]{2}|.)")


def _unescape(value: str) -> str:
    return _UNESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)) if len(m.group(1)) == 2 else m.group(1),
                            value).strip()


def rdn_value(dn: str) -> str:
    """The value of a DN's first RDN, unescaped. (A regular expression: ldap3's parse_dn is slow enough to
    show in a 200-server discovery.)"""
    m = _RDN_RE.match(dn)
    return _unescape(m.group(2)) if m else dn


def server_of_dn(dn: str) -> str | None:
    """The Exchange server a configuration object belongs to: the RDN right after CN=Protocols."""
    m = _PROTOCOLS_RE.search(dn)
    return _unescape(m.group(1)) if m else None


def validate_dn(dn: str, what: str = "distinguished name") -> str:
    """Reject DNs that cannot be right before they reach a filter or a request."""
    if not isinstance(dn, str) or not dn.strip() or "\x00" in dn or any(ord(c) < 32 for c in dn):
        raise InvalidInput(f"The {what} {dn!r} is not valid: it is empty or holds control characters.",
                           "Pick the object again from the directory (copy its distinguishedName).")
    try:
        parse_dn(dn)
    except (lx.LDAPInvalidDnError, ValueError, IndexError):
        raise InvalidInput(f"The {what} {dn!r} is not a valid LDAP DN.",
                           "Write it as CN=Name,OU=Unit,DC=example,DC=com; escape , + \" \\ < > ; = with a backslash.") from None
    return dn


def validate_sam(sam: str, kind: AccountKind) -> None:
    bad = sorted({c for c in sam if c in SAM_FORBIDDEN or ord(c) < 32})
    if not sam or len(sam) > 20 or bad or sam.strip(" .") != sam:
        shown = ", ".join(repr(c) for c in bad) if bad else "its length or leading/trailing dots or spaces"
        raise InvalidInput(f"{sam!r} cannot be a sAMAccountName ({shown}).",
                           "Use up to 20 letters, digits, '-' or '_' (a computer account ends in $).")
    if kind == AccountKind.COMPUTER and (not sam.endswith("$") or len(sam) > 16):
        raise InvalidInput(f"A computer account's sAMAccountName must end in $ and have at most 15 characters "
                           f"before it: {sam!r}.", f"Use for example {sam.rstrip('$')[:15].upper()}$.")
    if kind == AccountKind.USER and sam.endswith("$"):
        raise InvalidInput(f"{sam!r} ends in $, which marks a computer account.", "Drop the $ or create a computer ASA.")


def validate_spn(spn: str) -> str:
    if not isinstance(spn, str) or "/" not in spn or any(ord(c) < 32 for c in spn) or \
            any(c in spn for c in "()*\\ ") or spn.startswith("/") or spn.endswith("/"):
        raise InvalidInput(f"{spn!r} is not a valid service principal name.",
                           "Write it as class/host[:port], for example HTTP/mail.contoso.com.")
    return spn


def tree_roots(dns: list[str]) -> list[str]:
    return [d for d in dns if not any(o != d and d.lower().endswith("," + o.lower()) for o in dns)]


def chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def owner_name(a: Account) -> str:
    return f"{a.sam} ({a.dn})"


def to_int(v: str | None) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def dns_of_dn(dn: str) -> str:
    return ".".join(v for a, v, _ in parse_dn(dn, escape=False) if a.lower() == "dc").lower()


def host_of(value: str | None) -> str | None:
    """msExchInternalHostName holds a host (Outlook Anywhere) or a URL (the other virtual directories)."""
    if not value:
        return None
    if "://" in value:
        return (urlparse(value).hostname or "").lower() or None
    return value.strip().lower().rstrip(".") or None
