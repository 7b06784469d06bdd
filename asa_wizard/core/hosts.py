"""Names from outside checked before they are used: DNS host names (before a URL or an SPN is built from them),
sAMAccountNames by Active Directory's rules, and distinguished names.

Each `*_problem` function returns None for a good name, else one sentence saying what is wrong, so the file
readers can name the file, line and field and the adapters can raise their own error. `require_host` is the
guard at URL construction: `https://{host}:{port}/wsman` is only ever built from a host that passed it.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import WizardError

MAX_HOST = 253
MAX_LABEL = 63
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
# sAMAccountName: up to 20 characters (a computer's: the 15-character NetBIOS name and $), none of these.
SAM_FORBIDDEN = set('"/\\[]:;|=,+*?<>@')
MAX_SAM = 20
# Distinguished names: an RDN value may hold these only escaped with a backslash (RFC 4514).
DN_SPECIAL = ',+"\\<>;='
_RDN = re.compile(r'([A-Za-z][A-Za-z0-9-]*)=((?:[^,+"\\<>;=\x00-\x1f]|\\[,+"\\<>;= #]|\\[0-9A-Fa-f]{2})+)')


def has_control(text: str) -> bool:
    """A NUL or other control character (tab and line feed excepted)."""
    return any(ord(c) < 0x20 and c not in "\t\n" or 0x7F <= ord(c) <= 0x9F for c in text)


def host_problem(name: str, *, allow_ip: bool = False, single_label: bool = False) -> str | None:
    """Why `name` is not a DNS host name (letters, digits, dashes in dot-separated labels of up to 63, at most
    253 in all), or None. A trailing dot is allowed. `allow_ip`: an IPv4/IPv6 address is good too."""
    if not isinstance(name, str) or not name:
        return "a host name is empty"
    if allow_ip:
        try:
            ipaddress.ip_address(name)
            return None
        except ValueError:
            pass
    if len(name) > MAX_HOST + 1:
        return f"a host name has at most {MAX_HOST} characters, this one {len(name)}"
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    if len(labels) < 2 and not single_label:
        return f"{_show(name)} is not a fully qualified host name (host.domain)"
    for label in labels:
        if len(label) > MAX_LABEL:
            return f"a part of a host name has at most {MAX_LABEL} characters ({_show(label)})"
        if not _LABEL.fullmatch(label):
            return (f"{_show(name)} is not a host name: only letters, digits and dashes between dots "
                    "(no scheme, user, port, path or spaces)")
    return None


def require_host(name: str, what: str = "host name", *, allow_ip: bool = True) -> str:
    """`name` if it is a host name (or address), else a WizardError: used before any URL is built from it."""
    problem = host_problem(name, allow_ip=allow_ip, single_label=True)
    if problem:
        raise WizardError(f"The {what} {_show(name)} cannot be used: {problem}.",
                          "Check the server's name in Active Directory (dNSHostName) or in your input; asa-wizard "
                          "only connects to plain host names.")
    return name


def sam_problem(sam: str, *, computer: bool | None = None) -> str | None:
    """Why `sam` is not a sAMAccountName Active Directory accepts, or None. `computer`: it must (True) or must
    not (False) end in $."""
    if not sam:
        return "the name is empty"
    if has_control(sam):
        return "the name holds a control character"
    if len(sam) > MAX_SAM:
        return f"a sAMAccountName has at most {MAX_SAM} characters, this one {len(sam)}"
    bad = sorted(set(sam) & SAM_FORBIDDEN)
    if bad:
        return f"{_show(sam)} holds {' '.join(bad)}, which a sAMAccountName cannot"
    if sam.endswith("."):
        return "a sAMAccountName cannot end in a dot"
    if not sam.strip(". $"):
        return "a sAMAccountName needs more than dots, spaces and $"
    if computer is True and (not sam.endswith("$") or len(sam) > 16):
        return "a computer account's name is up to 15 characters and ends in $"
    if computer is False and sam.endswith("$"):
        return "a user account's name does not end in $"
    return None


def dn_problem(dn: str) -> str | None:
    """Why `dn` is not a distinguished name (type=value, comma separated, specials escaped), or None."""
    if not dn or has_control(dn):
        return "a distinguished name cannot be empty or hold control characters"
    pos = 0
    while True:
        m = _RDN.match(dn, pos)
        if not m:
            return (f"{_show(dn)} is not a distinguished name: write type=value pairs separated by commas, and "
                    f"escape any of {DN_SPECIAL} inside a value with a backslash")
        pos = m.end()
        if pos == len(dn):
            return None
        if dn[pos] != ",":
            return f"{_show(dn)} is not a distinguished name (unexpected {dn[pos]!r})"
        pos += 1


def _show(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
    return repr(shown)


__all__ = ["dn_problem", "has_control", "host_problem", "require_host", "sam_problem"]
