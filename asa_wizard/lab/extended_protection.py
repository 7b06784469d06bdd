"""Extended Protection in the lab: which tokenChecking each simulated server has on each IIS location, and what
that means for a Negotiate token arriving on a path.

- A server's settings are its build's defaults (Exchange 2019 CU14 and later: Microsoft's table, see
  `asa_wizard.core.checks.extended_protection.EXPECTED`; older builds: None everywhere) overlaid with the
  scenario's `extended_protection` table (per server or under [defaults]).
- A request path maps to the front-end location that serves it (the longest matching virtual directory).
- `decide(setting, bound, mismatch)` is IIS's rule: None ignores the channel binding; Allow refuses a binding
  of another TLS connection and accepts a token without one; Require accepts only a token bound to the TLS
  connection the server itself terminated.
"""

from __future__ import annotations

from ..core.checks.extended_protection import DEFAULT_ON_BUILD, EXPECTED
from ..core.model import ExtendedProtection, parse_build
from .scenario import LabServer

FRONT_END = "Default Web Site"


def default_settings(version: str) -> dict[str, str]:
    """What setup leaves: the table from Exchange 2019 CU14 on (setup enables it), else None everywhere."""
    build = parse_build(version)
    on = len(build) >= 3 and build[:2] == DEFAULT_ON_BUILD[:2] and build[2] >= DEFAULT_ON_BUILD[2]
    return dict(EXPECTED) if on else dict.fromkeys(EXPECTED, "None")


def settings_for(server: LabServer) -> dict[str, str]:
    """tokenChecking per IIS location on this lab server (defaults overlaid with the scenario's values)."""
    out = default_settings(server.version)
    for location, value in server.extended_protection.items():
        match = next((k for k in out if k.lower() == location.lower()), location)
        out[match] = value
    return out


def exsetup_version(server: LabServer) -> str:
    """ExSetup's file version as Exchange reports it: 15.02.1544.004 for 'Version 15.2 (Build 1544.4)'."""
    b = parse_build(server.version)
    if len(b) < 4:
        return ""
    return f"{b[0]}.{b[1]:02d}.{b[2]:04d}.{b[3]:03d}"


def ssl_offloading(server: LabServer) -> bool | None:
    from ..core.model import Service

    oa = server.vdirs.get(Service.OUTLOOK_ANYWHERE)
    return None if oa is None else oa.ssl_offloading


def extended_protection(server: LabServer) -> ExtendedProtection:
    """The server's Extended Protection as the wizard reads it."""
    return ExtendedProtection(server=server.name, token_checking=settings_for(server),
                              ssl_offloading=ssl_offloading(server), exsetup_version=exsetup_version(server))


def location_for_path(path: str, site: str = FRONT_END) -> str:
    """The IIS location whose settings apply to a request path ('/mapi/emsmdb/' -> 'Default Web Site/MAPI')."""
    clean = "/" + path.split("?", 1)[0].strip("/")
    best = ""
    for location in EXPECTED:
        s, _, vdir = location.partition("/")
        if s != site:
            continue
        prefix = "/" + vdir.lower()
        if (clean.lower() == prefix or clean.lower().startswith(prefix + "/")) and len(vdir) > len(best):
            best = vdir
    return f"{site}/{best}" if best else f"{site}/"


def setting_for_path(settings: dict[str, str], path: str) -> str:
    location = location_for_path(path)
    for k, v in settings.items():
        if k.lower() == location.lower():
            return v
    return "None"


def decide(setting: str, bound: bool, mismatch: bool) -> tuple[bool, str]:
    """(accepted, why not) for a token whose binding matched (`bound`), was of another TLS connection
    (`mismatch`), or was absent (neither)."""
    if setting == "None":
        return True, ""
    if mismatch:
        return False, ("Extended Protection: the token's channel binding is not the one of the TLS connection the "
                       "server terminated")
    if setting == "Require" and not bound:
        return False, "Extended Protection requires a channel binding; the token carried none"
    return True, ""
