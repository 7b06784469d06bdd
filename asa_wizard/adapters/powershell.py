"""PowerShell for the Exchange servers: quoting, the operation scripts, and reading their answers.

Every script has the same shape, so it can be reviewed (and the lab can recognise it exactly):

    $ErrorActionPreference='Stop'
    $Server='EX01'                 <- the values, each a single-quoted literal made by `ps_quote`
    <PRELUDE>                      <- load the Exchange snap-in, find $exscripts
    <BODY of the operation>        <- refers to the values only through their variables

Values are never spliced into the body, so a hostile name can only ever be data. Every script prints ONE
JSON document (`ConvertTo-Json -Depth 5 -Compress`) and carries no secret: the ASA password is generated
and pushed by Microsoft's own script on the server. Scripts stay far below the ~3,000 characters that
`powershell -encodedcommand` leaves under cmd.exe's command-line limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ..core.commands import SINGLE_QUOTES  # noqa: F401  (the lab's script reader uses them from here)
from ..core.commands import assign, command, literal, quote, roll_script, statements, variable
from ..core.model import AsaCredential
from ..core.ports import RollOutcome, RollResult

MAX_SCRIPT_CHARS = 3000
ROLL_SCRIPT = "RollAlternateServiceAccountPassword.ps1"
SNAPIN = "Microsoft.Exchange.Management.PowerShell.SnapIn"
IIS_APPLICATIONS = ("Microsoft-Server-ActiveSync", "EWS")
IIS_PROVIDERS = ("Negotiate", "NTLM", "Negotiate:Kerberos")
CLIENT_AUTH_METHODS = ("Basic", "Ntlm", "Negotiate")
LOG_KINDS = ("iis", "httpproxy-mapi", "httpproxy-rpchttp", "system-kerberos")


def ps_quote(value: str) -> str:
    """A PowerShell single-quoted literal that evaluates to exactly `value`.

    Inside single quotes nothing is expanded ($(), backticks, semicolons are plain text); a quote character
    (any of the four PowerShell accepts) is escaped by doubling it. Newlines are literal text. NUL cannot
    be carried safely through the command line, so it is refused. (The command builder's `quote`.)"""
    return quote(value)


def ps_literal(value: str | bool | int | list[str]) -> str:
    """Any value a script takes: text, a switch value, a count, or a list of texts (the builder's `literal`)."""
    return literal(value)


# ----------------------------------------------------------------------------------------------------
# The scripts
# ----------------------------------------------------------------------------------------------------
HEADER = "$ErrorActionPreference='Stop'\n"

# Exchange 2013 and later register one snap-in; inside the Exchange Management Shell it is already loaded.
PRELUDE = (
    f"if(-not(Get-PSSnapin {SNAPIN} -EA 0)){{Add-PSSnapin {SNAPIN}}}\n"
    "$exscripts=Join-Path $env:ExchangeInstallPath 'Scripts'\n"
)

# Helpers shared by the reading scripts: ISO UTC dates (never the server's locale) and host names of URLs.
_HELPERS = (
    "function U($d){if($d){([datetime]$d).ToUniversalTime().ToString('o')}}\n"
    "function H($u){if($u){([uri][string]$u).Host}}\n"
    "function L($v){@($v|%{[string]$_})}\n"
)

# Only QualifiedUserName and WhenAdded are taken from the credential records: they also hold the password.
_CREDS = (
    "function C($n){$c=Get-ClientAccessService -Identity $n -IncludeAlternateServiceAccountCredentialStatus\n"
    "@($c.AlternateServiceAccountConfiguration.EffectiveCredentials|Sort-Object WhenAdded -Descending|"
    "%{@{account=[string]$_.QualifiedUserName;when=(U $_.WhenAdded)}})}\n"
)

_IIS_READ = (
    "Import-Module WebAdministration\n"
    "$a='system.webServer/security/authentication/';$w=$a+'windowsAuthentication'\n"
    "function P($l,$f,$n){(Get-WebConfigurationProperty -PSPath 'MACHINE/WEBROOT/APPHOST' -Location $l "
    "-Filter $f -Name $n).Value}\n"
    "function I($l){@{basic=[bool](P $l ($a+'basicAuthentication') enabled);windows=[bool](P $l $w enabled);"
    "providers=@(Get-WebConfigurationProperty -PSPath 'MACHINE/WEBROOT/APPHOST' -Location $l -Filter ($w+'/providers')"
    " -Name Collection|%{[string]$_.value});kernel=[bool](P $l $w useKernelMode);"
    "apppool=[bool](P $l $w useAppPoolCredentials)}}\n"
)

_ROLL_TAIL = (
    "$ErrorActionPreference='Continue'\n"
    "$out=& (Join-Path $exscripts '" + ROLL_SCRIPT + "') -ToSpecificServers $Server {how} -Unattended -Confirm:$false"
    " *>&1|Out-String -Width 4096\n"
    "$ErrorActionPreference='Stop'\n"
    "$ld=Join-Path $env:ExchangeInstallPath 'Logging\\RollAlternateServiceAccountPassword'\n"
    "$lf=Get-ChildItem $ld -File -EA 0|Sort-Object LastWriteTime -Descending|Select-Object -First 1\n"
    "$log=if($lf){(Get-Content $lf.FullName -Tail 200) -join \"`n\"}else{''}\n"
    "@{output=$out;log=$log;creds=(C $Server)}|ConvertTo-Json -Depth 5 -Compress\n"
)

BODIES: dict[str, str] = {
    "inventory": (
        "ConvertTo-Json -Depth 5 -Compress -InputObject @(Get-ExchangeServer|%{@{name=[string]$_.Name;"
        "fqdn=[string]$_.Fqdn;version=[string]$_.AdminDisplayVersion;roles=@(([string]$_.ServerRole) -split ',\\s*');"
        "site=[string]$_.Site.Name}})\n"
    ),
    "read_server": (
        _HELPERS + _CREDS + _IIS_READ
        + "$x=Get-ExchangeServer -Identity $Server;$n=[string]$x.Name\n"
        "$o=Get-OutlookAnywhere -Server $n|Select-Object -First 1\n"
        "$m=Get-MapiVirtualDirectory -Server $n|Select-Object -First 1\n"
        "$e=Get-ActiveSyncVirtualDirectory -Server $n|Select-Object -First 1\n"
        "$ws=Get-WebServicesVirtualDirectory -Server $n|Select-Object -First 1\n"
        "$ow=Get-OwaVirtualDirectory -Server $n|Select-Object -First 1\n"
        "function V($v,$m){if($v){@{int=(H $v.InternalUrl);ext=(H $v.ExternalUrl);auth=(L $m)}}}\n"
        "@{name=$n;fqdn=[string]$x.Fqdn;version=[string]$x.AdminDisplayVersion;"
        "roles=@(([string]$x.ServerRole) -split ',\\s*');site=[string]$x.Site.Name;asa=(C $n);"
        "svchost=((Get-Service MSExchangeServiceHost -EA 0).Status -eq 'Running');"
        "oa=$(if($o){@{int=[string]$o.InternalHostname;ext=[string]$o.ExternalHostname;"
        "ica=[string]$o.InternalClientAuthenticationMethod;eca=[string]$o.ExternalClientAuthenticationMethod;"
        "auth=(L $o.IISAuthenticationMethods)}});mapi=(V $m $m.IISAuthenticationMethods);"
        "eas=(V $e $e.InternalAuthenticationMethods);ews=(V $ws $ws.InternalAuthenticationMethods);"
        "owa=(V $ow $ow.InternalAuthenticationMethods);"
        "autod=[string](Get-ClientAccessService -Identity $n).AutoDiscoverServiceInternalUri;"
        "iis=@{eas=(I 'Default Web Site/Microsoft-Server-ActiveSync');ews=(I 'Default Web Site/EWS')};"
        "iusrs=(L (Get-LocalGroupMember -Group IIS_IUSRS).Name)}|ConvertTo-Json -Depth 5 -Compress\n"
    ),
    "roll_generate": _HELPERS + _CREDS + _ROLL_TAIL.replace("{how}", "-GenerateNewPasswordFor $Account"),
    "roll_copy": _HELPERS + _CREDS + _ROLL_TAIL.replace("{how}", "-CopyFrom $Source"),
    "remove_asa": (
        "Set-ClientAccessService -Identity $Server -RemoveAlternateServiceAccountCredentials -Confirm:$false\n"
        "@{removed=$true}|ConvertTo-Json -Compress\n"
    ),
    "set_oa_client_auth": (
        "$o=Get-OutlookAnywhere -Server $Server|Select-Object -First 1;$p=[string]$o.InternalClientAuthenticationMethod\n"
        "$o|Set-OutlookAnywhere -InternalClientAuthenticationMethod $Method -Confirm:$false\n"
        "@{previous=$p}|ConvertTo-Json -Compress\n"
    ),
    "set_mapi_auth": (
        "$v=Get-MapiVirtualDirectory -Server $Server|Select-Object -First 1;$p=@($v.IISAuthenticationMethods|%{[string]$_})\n"
        "$v|Set-MapiVirtualDirectory -IISAuthenticationMethods $Methods -Confirm:$false\n"
        "@{previous=$p}|ConvertTo-Json -Compress\n"
    ),
    "add_iis_iusrs": (
        "$has=@(Get-LocalGroupMember -Group IIS_IUSRS|?{$_.Name -eq $Member}).Count -gt 0\n"
        "if(-not $has){Add-LocalGroupMember -Group IIS_IUSRS -Member $Member}\n"
        "@{changed=(-not $has)}|ConvertTo-Json -Compress\n"
    ),
    "remove_iis_iusrs": (
        "$has=@(Get-LocalGroupMember -Group IIS_IUSRS|?{$_.Name -eq $Member}).Count -gt 0\n"
        "if($has){Remove-LocalGroupMember -Group IIS_IUSRS -Member $Member}\n"
        "@{changed=$has}|ConvertTo-Json -Compress\n"
    ),
    "set_iis_auth": (
        _IIS_READ
        + "$l='Default Web Site/'+$App;$r=I $l;$h='MACHINE/WEBROOT/APPHOST'\n"
        "function Q($f,$n,$v){Set-WebConfigurationProperty -PSPath $h -Location $l -Filter $f -Name $n -Value $v}\n"
        "Q ($a+'basicAuthentication') enabled $Basic;Q $w enabled $Windows;Q $w useKernelMode $Kernel\n"
        "Q $w useAppPoolCredentials $AppPool\n"
        "Remove-WebConfigurationProperty -PSPath $h -Location $l -Filter ($w+'/providers') -Name Collection\n"
        "foreach($q in $Providers){Add-WebConfigurationProperty -PSPath $h -Location $l -Filter ($w+'/providers') "
        "-Name Collection -Value @{value=$q}}\n"
        "@{previous=$r}|ConvertTo-Json -Depth 5 -Compress\n"
    ),
    "fetch_log": (
        "$d=switch($Kind){'iis'{'C:\\inetpub\\logs\\LogFiles\\W3SVC1'}"
        "'httpproxy-mapi'{Join-Path $env:ExchangeInstallPath 'Logging\\HttpProxy\\Mapi'}"
        "'httpproxy-rpchttp'{Join-Path $env:ExchangeInstallPath 'Logging\\HttpProxy\\RpcHttp'}}\n"
        "if($Kind -eq 'system-kerberos'){$t=@(Get-WinEvent -FilterHashtable @{LogName='System';"
        "ProviderName='Microsoft-Windows-Security-Kerberos';Id=4} -MaxEvents $Lines -EA 0|"
        "%{$_.TimeCreated.ToUniversalTime().ToString('o')+' '+($_.Message -replace '\\s+',' ')})}\n"
        "else{$f=Get-ChildItem $d -File|Sort-Object LastWriteTime -Descending|Select-Object -First 1\n"
        "$t=@(if($f){Get-Content $f.FullName -Tail $Lines})}\n"
        "@{text=($t -join \"`n\")}|ConvertTo-Json -Compress\n"
    ),
}

# The variables each operation takes, in the order they are written.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "inventory": (),
    "read_server": ("Server",),
    "roll_generate": ("Server", "Account"),
    "roll_copy": ("Server", "Source"),
    "remove_asa": ("Server",),
    "set_oa_client_auth": ("Server", "Method"),
    "set_mapi_auth": ("Server", "Methods"),
    "add_iis_iusrs": ("Member",),
    "remove_iis_iusrs": ("Member",),
    "set_iis_auth": ("App", "Basic", "Windows", "Providers", "Kernel", "AppPool"),
    "fetch_log": ("Kind", "Lines"),
}


def build(operation: str, **values: str | bool | int | list[str]) -> str:
    """The script for one operation: the header, the values as literals, the prelude, the body."""
    if set(values) != set(PARAMETERS[operation]):
        raise TypeError(f"{operation} takes {PARAMETERS[operation]}, not {tuple(values)}")
    assignments = "".join(assign(name, values[name]) + "\n" for name in PARAMETERS[operation])
    script = HEADER + assignments + PRELUDE + BODIES[operation]
    if len(script) > MAX_SCRIPT_CHARS:
        raise ValueError(f"the {operation} script is {len(script)} characters, above the {MAX_SCRIPT_CHARS} limit")
    return script


def inventory_script() -> str:
    return build("inventory")


def read_server_script(server: str) -> str:
    return build("read_server", Server=server)


def roll_generate_script(server: str, account: str) -> str:
    return build("roll_generate", Server=server, Account=account)


def roll_copy_script(server: str, source: str) -> str:
    return build("roll_copy", Server=server, Source=source)


def remove_asa_script(server: str) -> str:
    return build("remove_asa", Server=server)


def set_oa_client_auth_script(server: str, method: str) -> str:
    if method not in CLIENT_AUTH_METHODS:
        raise ValueError(f"{method!r} is not one of {', '.join(CLIENT_AUTH_METHODS)}")
    return build("set_oa_client_auth", Server=server, Method=method)


def set_mapi_auth_script(server: str, methods: list[str]) -> str:
    if not methods:
        raise ValueError("MAPI needs at least one authentication method")
    return build("set_mapi_auth", Server=server, Methods=list(methods))


def iis_iusrs_script(member: str, add: bool) -> str:
    return build("add_iis_iusrs" if add else "remove_iis_iusrs", Member=member)


def set_iis_auth_script(application: str, basic: bool, windows: bool, providers: list[str], kernel: bool,
                        app_pool: bool) -> str:
    if application not in IIS_APPLICATIONS:
        raise ValueError(f"{application!r} is not one of {', '.join(IIS_APPLICATIONS)}")
    unknown = [p for p in providers if p not in IIS_PROVIDERS]
    if unknown:
        raise ValueError(f"unknown Windows authentication provider(s): {', '.join(unknown)}")
    return build("set_iis_auth", App=application, Basic=basic, Windows=windows, Providers=list(providers), Kernel=kernel,
                 AppPool=app_pool)


def fetch_log_script(kind: str, max_lines: int) -> str:
    if kind not in LOG_KINDS:
        raise ValueError(f"{kind!r} is not one of {', '.join(LOG_KINDS)}")
    return build("fetch_log", Kind=kind, Lines=max(1, min(int(max_lines), 20000)))


def with_method(existing: list[str], method: str) -> list[str]:
    """`existing` plus `method`, keeping every method already there (OAuth in hybrid must survive)."""
    if any(m.lower() == method.lower() for m in existing):
        return list(existing)
    return [*existing, method]


def scheduled_task_command(account: str, servers: list[str] | None = None) -> str:
    """The command that makes Microsoft's script create its own scheduled task (every three weeks).

    Text for the plan: the administrator runs it in the Exchange Management Shell on one server, where the
    task then runs with that administrator's rights."""
    return statements(command("cd", variable("exscripts")),
                      roll_script(servers or None, GenerateNewPasswordFor=account, CreateScheduledTask="Exchange-RollAsa"))


def manual_roll_command(server: str, *, account: str | None = None, copy_from: str | None = None) -> str:
    """The same roll as the wizard's, as a person types it in the Exchange Management Shell (for plans)."""
    how = {"GenerateNewPasswordFor": account} if account else {"CopyFrom": copy_from or ""}
    return statements(command("cd", variable("exscripts")), roll_script(server, **how))


# ----------------------------------------------------------------------------------------------------
# Reading the answers
# ----------------------------------------------------------------------------------------------------
def parse_when(text: str | None) -> datetime | None:
    """An ISO 8601 date from a script ('o' format, UTC) -> aware datetime."""
    if not text:
        return None
    t = text.strip().replace("Z", "+00:00")
    # .NET writes seven fractional digits; Python reads at most six
    t = re.sub(r"(\.\d{6})\d+", r"\1", t)
    return datetime.fromisoformat(t)


def credentials_from(records: object) -> tuple[AsaCredential | None, AsaCredential | None]:
    """(latest, previous) from the script's list of {account, when}, newest first."""
    if isinstance(records, dict):  # a one-element array can arrive unwrapped
        records = [records]
    creds = [AsaCredential(account=r["account"], when_added=parse_when(r.get("when")))
             for r in (records or []) if isinstance(r, dict) and r.get("account")]
    creds.sort(key=lambda c: c.when_added or datetime.min.replace(tzinfo=timezone.utc), reverse=True)
    return (creds[0] if creds else None, creds[1] if len(creds) > 1 else None)


@dataclass(frozen=True)
class ScriptMessage:
    """One of Microsoft's messages from RollAlternateServiceAccountPassword.ps1 and what to do about it."""

    pattern: re.Pattern[str]
    problem: str
    fix: str


ROLL_MESSAGES: tuple[ScriptMessage, ...] = (
    ScriptMessage(
        re.compile(r"doesn't have enough privileges.*Organization Configuration", re.I | re.S),
        "The running account lacks the 'Organization Configuration' role.",
        "Run as a member of Organization Management (or assign the Organization Configuration role) and retry.",
    ),
    ScriptMessage(
        re.compile(r"A user or computer account (.+?) was not found", re.I),
        "The ASA account {0} was not found in Active Directory.",
        "Check the name (DOMAIN\\NAME$ for a computer account), create the account first, and wait for AD "
        "replication to reach the domain controller Exchange uses.",
    ),
    ScriptMessage(
        re.compile(r"-CopyFrom parameter should be set to identity that resolves to exactly one Client Access Server",
                   re.I),
        "The -CopyFrom server does not resolve to exactly one Client Access server.",
        "Name one server that already holds the credential (its name or FQDN) as the source.",
    ),
    ScriptMessage(
        re.compile(r"Errors were encountered while propagating credentials", re.I),
        "Errors were encountered while propagating credentials to Exchange servers; the script left Active "
        "Directory unchanged to avoid an authentication outage.",
        "Check that the target server is up, MSExchangeServiceHost runs and the runner is an Exchange admin on "
        "it, read the script's log under Logging\\RollAlternateServiceAccountPassword, then retry this server.",
    ),
    ScriptMessage(
        re.compile(r"Access (is )?denied|E_ACCESSDENIED|0x80070005", re.I),
        "Access Denied while setting the ASA password in Active Directory.",
        "Grant the running account the Reset Password right on the ASA object (often created by another team), "
        "or run the roll as a Domain Admin, then retry.",
    ),
)


def recognise(text: str) -> tuple[str, str] | None:
    """(problem, fix) for the first of Microsoft's messages found in `text`."""
    for msg in ROLL_MESSAGES:
        m = msg.pattern.search(text)
        if m:
            return msg.problem.format(*(g.strip() for g in m.groups() if g)), msg.fix
    return None


def parse_roll(server: str, answer: dict) -> RollResult:
    """The roll script's output (+ its log and the credential read back) -> RollResult."""
    output = str(answer.get("output") or "")
    log = str(answer.get("log") or "")
    latest, _ = credentials_from(answer.get("creds"))
    text = output + "\n" + log
    excerpt = _excerpt(output or log)
    succeeded = re.search(r"THE SCRIPT HAS SUCCEEDED", text, re.I) is not None
    failed = re.search(r"THE SCRIPT HAS FAILED", text, re.I) is not None
    if succeeded and not failed:
        warned = re.search(r"^\s*WARNING:", output, re.M) is not None
        return RollResult(server=server,
                          outcome=RollOutcome.SUCCEEDED_WITH_WARNINGS if warned else RollOutcome.SUCCEEDED,
                          message="THE SCRIPT HAS SUCCEEDED" + (" (with warnings)" if warned else ""),
                          latest=latest, log_excerpt=excerpt)
    known = recognise(text)
    if known:
        problem, fix = known
    elif failed:
        problem, fix = "THE SCRIPT HAS FAILED", "Read the script's log on the server for the reason."
    else:
        problem, fix = ("The script ended without saying whether it succeeded.",
                        "Read its log under Logging\\RollAlternateServiceAccountPassword on the server.")
    return RollResult(server=server, outcome=RollOutcome.FAILED, message=problem, fix=fix, latest=latest,
                      log_excerpt=excerpt)


def _excerpt(text: str, lines: int = 40) -> str:
    kept = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])
