"""IIS scripts beside `powershell.py`'s: reading Extended Protection from an Exchange server, and an application's
authentication changed as a compare-and-set. Each is one short script, run on that server.

The script reads `tokenChecking` of windowsAuthentication/extendedProtection for every Exchange virtual
directory of both web sites from IIS's configuration (the effective value, inherited where the location sets
none) and ExSetup.exe's file version (security updates change it, which decides whether the build supports
Extended Protection). It changes nothing and runs no Exchange cmdlet (no snap-in): Outlook Anywhere's
`SSLOffloading` is read through the server's Exchange endpoint (`adapters.exchange.EndpointExchange`).

The compare-and-set (`change_iis_auth_script`) reads the authentication settings of ActiveSync or EWS as
`read_windows` does, sets the new ones only when the settings found are the planned old ones, and reports what
it found: the re-read before a change and the change itself in one call on the kept shell, with no round
trip between them.

Each has the shape of every script in `powershell.py` (header, values, body) and is registered there
under its operation, so the lab's interpreter recognises it like the others.
"""

from __future__ import annotations

from typing import Any

from ..core.checks.extended_protection import EXPECTED
from ..core.errors import ScriptFailed
from ..core.model import EP_VALUES, ExtendedProtection, IisAuth
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


# An application's IIS authentication as a compare-and-set: read as `read_windows` reads it (the same `I`), "new"
# when it is the new settings already, else set only when it is the old ones ("old"), else "stale"; the settings
# found are returned either way. Providers compare in order and case, as the wizard compares them.
CHANGE_OPERATION = "change_iis_auth"
_IIS_PRELUDE = ps.BODIES["set_iis_auth"].split("$l=", 1)[0]  # Import-Module WebAdministration and the IIS read
CHANGE_BODY = (
    _IIS_PRELUDE
    + "$l='Default Web Site/'+$App;$r=I $l\n"
    "function E($x,$y){$x=@($x);$y=@($y);if($x.Count -ne $y.Count){return $false}\n"
    "for($i=0;$i -lt $x.Count;$i++){if([string]$x[$i] -cne [string]$y[$i]){return $false}};$true}\n"
    "function S($b,$n,$p,$k,$q){$r.basic -eq $b -and $r.windows -eq $n -and (E $r.providers $p) -and "
    "$r.kernel -eq $k -and $r.apppool -eq $q}\n"
    "$c=if(S $Basic $Windows $Providers $Kernel $AppPool){'new'}elseif(S $OldBasic $OldWindows $OldProviders "
    "$OldKernel $OldAppPool){'old'}else{'stale'}\n"
    "if($c -eq 'old'){\n"
    "function Q($f,$n,$v){Set-WebConfigurationProperty -PSPath $h -Location $l -Filter $f -Name $n -Value $v}\n"
    "Q ($a+'basicAuthentication') enabled $Basic;Q $w enabled $Windows;Q $w useKernelMode $Kernel\n"
    "Q $w useAppPoolCredentials $AppPool\n"
    "Remove-WebConfigurationProperty -PSPath $h -Location $l -Filter ($w+'/providers') -Name Collection\n"
    "foreach($v in $Providers){Add-WebConfigurationProperty -PSPath $h -Location $l -Filter ($w+'/providers') "
    "-Name Collection -Value @{value=$v}}}\n"
    "@{found=$r;state=$c}|ConvertTo-Json -Depth 5 -Compress\n"
)
ps.BODIES.setdefault(CHANGE_OPERATION, CHANGE_BODY)
ps.PARAMETERS.setdefault(CHANGE_OPERATION, ("App", "Basic", "Windows", "Providers", "Kernel", "AppPool", "OldBasic",
                                            "OldWindows", "OldProviders", "OldKernel", "OldAppPool"))


def change_iis_auth_script(application: str, old: IisAuth, new: IisAuth) -> str:
    """The compare-and-set of `application`'s IIS authentication from `old` to `new` (the new providers are
    checked as `set_iis_auth_script` checks them; the old ones are only compared)."""
    ps.set_iis_auth_script(application, new.basic, new.windows, list(new.providers), new.use_kernel_mode,
                           new.use_app_pool_credentials)  # refuses an unknown application or provider
    return ps.build(CHANGE_OPERATION, App=application, Basic=new.basic, Windows=new.windows,
                    Providers=list(new.providers), Kernel=new.use_kernel_mode, AppPool=new.use_app_pool_credentials,
                    OldBasic=old.basic, OldWindows=old.windows, OldProviders=list(old.providers),
                    OldKernel=old.use_kernel_mode, OldAppPool=old.use_app_pool_credentials)


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
