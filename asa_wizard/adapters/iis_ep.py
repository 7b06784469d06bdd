"""Reading Extended Protection from an Exchange server: one short script, run on that server.

The script reads `tokenChecking` of windowsAuthentication/extendedProtection for every Exchange virtual
directory of both web sites from IIS's configuration (the effective value, inherited where the location sets
none) and ExSetup.exe's file version (security updates change it, which decides whether the build supports
Extended Protection). It changes nothing and runs no Exchange cmdlet (no snap-in): Outlook Anywhere's
`SSLOffloading` is read through the server's Exchange endpoint (`adapters.exchange.EndpointExchange`).

It has the shape of every script in `powershell.py` (header, values, body) and is registered there
under `OPERATION`, so the lab's interpreter recognises it like the others.
"""

from __future__ import annotations

from typing import Any

from ..core.checks.extended_protection import EXPECTED
from ..core.errors import ScriptFailed
from ..core.model import EP_VALUES, ExtendedProtection
from . import powershell as ps

OPERATION = "read_extended_protection"
LOCATIONS: tuple[str, ...] = tuple(EXPECTED)

BODY = (
    "Import-Module WebAdministration\n"
    "$h='MACHINE/WEBROOT/APPHOST';$f='system.webServer/security/authentication/windowsAuthentication/"
    "extendedProtection'\n"
    "$t=@{};foreach($l in $Locations){if(Get-WebConfiguration -PSPath $h -Location $l -Filter $f -EA 0){"
    "$t[$l]=[string](Get-WebConfigurationProperty -PSPath $h -Location $l -Filter $f -Name tokenChecking)}}\n"
    "$x=Get-Item (Join-Path $env:ExchangeInstallPath 'Bin\\ExSetup.exe') -EA 0\n"
    "@{ep=$t;exsetup=$(if($x){[string]$x.VersionInfo.FileVersion}else{''})}|ConvertTo-Json -Depth 5 -Compress\n"
)

ps.BODIES.setdefault(OPERATION, BODY)
ps.PARAMETERS.setdefault(OPERATION, ("Server", "Locations"))

# The whole Windows-side read of a server in one script (one round trip per server when the organisation is
# read): `read_windows`'s parts plus Extended Protection as two more parts, so a failure of one part leaves
# the others valid, as in `read_windows`.
WHOLE_OPERATION = "read_windows_ep"
WHOLE_BODY = ps.BODIES["read_windows"].replace(
    "$r|ConvertTo-Json",
    "Part ep {$t=@{};$f=$w+'/extendedProtection';foreach($l in $Locations){if(Get-WebConfiguration -PSPath $h "
    "-Location $l -Filter $f -EA 0){$t[$l]=[string](Get-WebConfigurationProperty -PSPath $h -Location $l -Filter $f "
    "-Name tokenChecking)}};$t}\n"
    "Part exsetup {$x=Get-Item (Join-Path $env:ExchangeInstallPath 'Bin\\ExSetup.exe') -EA 0;if($x){[string]"
    "$x.VersionInfo.FileVersion}else{''}}\n"
    "$r|ConvertTo-Json", 1)
ps.BODIES.setdefault(WHOLE_OPERATION, WHOLE_BODY)
ps.PARAMETERS.setdefault(WHOLE_OPERATION, ("Locations",))


def read_extended_protection_script(server: str) -> str:
    return ps.build(OPERATION, Server=server, Locations=list(LOCATIONS))


def read_windows_ep_script() -> str:
    """`read_windows` and Extended Protection in one script (parts `ep` and `exsetup` besides the others)."""
    return ps.build(WHOLE_OPERATION, Locations=list(LOCATIONS))


def parse_extended_protection(server: str, d: Any) -> ExtendedProtection:
    """The script's JSON as an `ExtendedProtection`; a value IIS would never report is refused, not guessed."""
    if not isinstance(d, dict):
        raise ScriptFailed(f"{server} answered the Extended Protection read with unexpected data.",
                           "Check the server's PowerShell and IIS (WebAdministration module).")
    raw = d.get("ep") or {}
    if not isinstance(raw, dict):
        raise ScriptFailed(f"{server} answered the Extended Protection read with unexpected data.",
                           "Check the server's PowerShell and IIS (WebAdministration module).")
    settings: dict[str, str] = {}
    for location, value in raw.items():
        v = str(value or "None").strip()
        match = next((e for e in EP_VALUES if e.lower() == v.lower()), None)
        if match is None:
            raise ScriptFailed(f"{server} reported tokenChecking {v!r} for {location}, which is not None, Allow or "
                               "Require.", "Check the IIS configuration of that virtual directory.")
        settings[str(location)] = match
    offload = d.get("ssloffloading")
    return ExtendedProtection(server=server, token_checking=settings,
                              ssl_offloading=None if offload is None else bool(offload),
                              exsetup_version=str(d.get("exsetup") or ""))
