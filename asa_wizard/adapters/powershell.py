"""PowerShell for the Windows side of the Exchange servers (WinRM): quoting, the scripts, reading answers.

Exchange cmdlets never run here: they go through each server's own remote PowerShell endpoint
(`http://<fqdn>/PowerShell`, configuration Microsoft.Exchange) as commands with parameters
(adapters/exchange.py). No script loads the Exchange snap-in, which bypasses RBAC and which Microsoft calls
"highly discouraged". What stays on WinRM is Windows: IIS configuration, the IIS_IUSRS group (through ADSI
WinNT), the service host's state, IIS and HttpProxy logs, and running Microsoft's own roll script when the
user chose it (with CredSSP or delegation, after the hop pre-flight).

Every script has the same shape, so it can be reviewed (and the lab can recognise it exactly):

    $ErrorActionPreference='Stop'
    $Member='CONTOSO\\EXASA$'       <- the values, each a single-quoted literal made by `ps_quote`
    <BODY of the operation>        <- refers to the values only through their variables

Values are never spliced into the body, so a hostile name can only ever be data. Every script prints ONE
JSON document (`ConvertTo-Json -Compress`) and carries no secret. Scripts stay far below the ~3,000
characters that `powershell -encodedcommand` leaves under cmd.exe's command-line limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..core.commands import SINGLE_QUOTES  # noqa: F401  (the lab's script reader uses them from here)
from ..core.commands import assign, command, literal, quote, statements, variable
from ..core.commands import roll_script as roll_command
from ..core.ports import RollOutcome, RollResult

MAX_SCRIPT_CHARS = 3000
ROLL_SCRIPT = "RollAlternateServiceAccountPassword.ps1"
IIS_APPLICATIONS = ("Microsoft-Server-ActiveSync", "EWS")
IIS_PROVIDERS = ("Negotiate", "NTLM", "Negotiate:Kerberos")
CLIENT_AUTH_METHODS = ("Basic", "Ntlm", "Negotiate")
LOG_KINDS = ("iis", "httpproxy-mapi", "httpproxy-rpchttp")  # Kerberos event 4 is on the client, not here


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
# The scripts (Windows-side only: Exchange cmdlets go through Exchange's own endpoint, adapters/exchange.py)
# ----------------------------------------------------------------------------------------------------
HEADER = "$ErrorActionPreference='Stop'\n"

# Each part of a server read runs on its own: one that fails is reported as that part, the others still answer.
_PART = (
    "$r=@{errors=@()}\n"
    "function Part($n,[scriptblock]$b){try{$r[$n]=(& $b)}catch{$r.errors+=@(@{part=$n;message=[string]$_.Exception."
    "Message})}}\n"
)

_IIS_READ = (
    "$a='system.webServer/security/authentication/';$w=$a+'windowsAuthentication';$h='MACHINE/WEBROOT/APPHOST'\n"
    "function P($l,$f,$n){(Get-WebConfigurationProperty -PSPath $h -Location $l -Filter $f -Name $n).Value}\n"
    "function I($l){@{basic=[bool](P $l ($a+'basicAuthentication') enabled);windows=[bool](P $l $w enabled);"
    "providers=@(Get-WebConfigurationProperty -PSPath $h -Location $l -Filter ($w+'/providers')"
    " -Name Collection|%{[string]$_.value});kernel=[bool](P $l $w useKernelMode);"
    "apppool=[bool](P $l $w useAppPoolCredentials)}}\n"
)

# IIS_IUSRS through ADSI WinNT: an orphaned SID is listed as its SID instead of breaking the read
# (Get-LocalGroupMember throws "Failed to compare two elements in the array." on one).
_GROUP = "$g=[ADSI]'WinNT://./IIS_IUSRS,group'\n"
_MEMBERS = ("function M{@($g.Invoke('Members')|%{$p=[string]$_.GetType().InvokeMember('ADsPath','GetProperty',$null,"
            "$_,$null);($p -replace '^WinNT://','') -replace '/','\\'})}\n")

# The IIS log folder of the Default Web Site: its own logFile.directory, else siteDefaults (IIS inheritance).
_LOG_DIR = (
    "function D{$s=Get-WebConfigurationProperty -PSPath $h -Filter \"system.applicationHost/sites/site[@name='Default "
    "Web Site']/logFile\" -Name directory\n"
    "if(-not $s -or -not [string]$s.Value){$s=Get-WebConfigurationProperty -PSPath $h -Filter "
    "'system.applicationHost/sites/siteDefaults/logFile' -Name directory}\n"
    "$id=(Get-Website -Name 'Default Web Site').id\n"
    "Join-Path ([Environment]::ExpandEnvironmentVariables([string]$s.Value)) ('W3SVC'+$id)}\n"
)

BODIES: dict[str, str] = {
    "read_windows": (
        _PART + "Import-Module WebAdministration\n" + _IIS_READ + _GROUP + _MEMBERS + _LOG_DIR
        + "Part svchost {(Get-Service MSExchangeServiceHost).Status -eq 'Running'}\n"
        "Part iis {@{eas=(I 'Default Web Site/Microsoft-Server-ActiveSync');ews=(I 'Default Web Site/EWS')}}\n"
        "Part iusrs {M}\n"
        "Part logdir {D}\n"
        "$r|ConvertTo-Json -Depth 5 -Compress\n"
    ),
    "add_iis_iusrs": (
        _GROUP + "$p='WinNT://'+($Member -replace '\\\\','/')\n"
        "$has=$g.IsMember($p)\n"
        "if(-not $has){$g.Add($p)}\n"
        "@{changed=(-not $has)}|ConvertTo-Json -Compress\n"
    ),
    "remove_iis_iusrs": (
        _GROUP + "$p='WinNT://'+($Member -replace '\\\\','/')\n"
        "$has=$g.IsMember($p)\n"
        "if($has){$g.Remove($p)}\n"
        "@{changed=$has}|ConvertTo-Json -Compress\n"
    ),
    "set_iis_auth": (
        "Import-Module WebAdministration\n" + _IIS_READ
        + "$l='Default Web Site/'+$App;$r=I $l\n"
        "function Q($f,$n,$v){Set-WebConfigurationProperty -PSPath $h -Location $l -Filter $f -Name $n -Value $v}\n"
        "Q ($a+'basicAuthentication') enabled $Basic;Q $w enabled $Windows;Q $w useKernelMode $Kernel\n"
        "Q $w useAppPoolCredentials $AppPool\n"
        "Remove-WebConfigurationProperty -PSPath $h -Location $l -Filter ($w+'/providers') -Name Collection\n"
        "foreach($q in $Providers){Add-WebConfigurationProperty -PSPath $h -Location $l -Filter ($w+'/providers') "
        "-Name Collection -Value @{value=$q}}\n"
        "@{previous=$r}|ConvertTo-Json -Depth 5 -Compress\n"
    ),
    "fetch_log": (
        "Import-Module WebAdministration\n$h='MACHINE/WEBROOT/APPHOST'\n" + _LOG_DIR
        + "$d=switch($Kind){'iis'{D}"
        "'httpproxy-mapi'{Join-Path $env:ExchangeInstallPath 'Logging\\HttpProxy\\Mapi'}"
        "'httpproxy-rpchttp'{Join-Path $env:ExchangeInstallPath 'Logging\\HttpProxy\\RpcHttp'}}\n"
        "$f=Get-ChildItem $d -File|Sort-Object LastWriteTime -Descending|Select-Object -First 1\n"
        "$t=@(if($f){Get-Content $f.FullName -Tail $Lines})\n"
        "@{text=($t -join \"`n\");folder=[string]$d}|ConvertTo-Json -Compress\n"
    ),
    # Microsoft's script, run on this server, for every target server at once (-ToSpecificServers with all of
    # them: it pushes to every server before it changes AD once). The verdict is the script's exit code and
    # its events 14001-14004 logged since this run started, never a log file.
    "roll_script": (
        "$t=[datetime]::UtcNow\n"
        "$s=Join-Path $env:ExchangeInstallPath ('Scripts\\" + ROLL_SCRIPT + "')\n"
        "$ErrorActionPreference='Continue'\n"
        "try{$out=& $s -ToSpecificServers $Servers -GenerateNewPasswordFor $Account -Unattended *>&1|"
        "Out-String -Width 4096;$rc=$LASTEXITCODE}catch{$out=[string]$_;$rc=1}\n"
        "$ErrorActionPreference='Stop'\n"
        "$ev=@(Get-WinEvent -FilterHashtable @{LogName='Application';ProviderName='MSExchange Management Application';"
        "Id=14001,14002,14003,14004;StartTime=$t} -EA 0|%{@{id=$_.Id;time=$_.TimeCreated.ToUniversalTime()."
        "ToString('o')}})\n"
        "@{output=$out;exit=$rc;events=$ev;started=$t.ToString('o')}|ConvertTo-Json -Depth 4 -Compress\n"
    ),
    # The second hop, proven from inside this server's session before Microsoft's script may run: a session
    # to another server's Exchange endpoint and a bind to a domain controller with the caller's identity.
    "hop_check": (
        "$r=@{}\n"
        "try{$x=New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri ('http://'+$Other+'/PowerShell/') "
        "-Authentication Kerberos;Remove-PSSession $x;$r.session=''}catch{$r.session=[string]$_.Exception.Message}\n"
        "try{Add-Type -AssemblyName System.DirectoryServices.AccountManagement\n"
        "$c=New-Object System.DirectoryServices.AccountManagement.PrincipalContext('Domain');$null=$c.ConnectedServer;"
        "$r.ldap=''}catch{$r.ldap=[string]$_.Exception.Message}\n"
        "$r|ConvertTo-Json -Compress\n"
    ),
}

# The variables each operation takes, in the order they are written.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "read_windows": (),
    "add_iis_iusrs": ("Member",),
    "remove_iis_iusrs": ("Member",),
    "set_iis_auth": ("App", "Basic", "Windows", "Providers", "Kernel", "AppPool"),
    "fetch_log": ("Kind", "Lines"),
    "roll_script": ("Servers", "Account"),
    "hop_check": ("Other",),
}


def build(operation: str, **values: str | bool | int | list[str]) -> str:
    """The script for one operation: the header, the values as literals, the prelude, the body."""
    if set(values) != set(PARAMETERS[operation]):
        raise TypeError(f"{operation} takes {PARAMETERS[operation]}, not {tuple(values)}")
    assignments = "".join(assign(name, values[name]) + "\n" for name in PARAMETERS[operation])
    script = HEADER + assignments + BODIES[operation]
    if len(script) > MAX_SCRIPT_CHARS:
        raise ValueError(f"the {operation} script is {len(script)} characters, above the {MAX_SCRIPT_CHARS} limit")
    return script


def read_windows_script() -> str:
    return build("read_windows")


def iis_iusrs_script(member: str, add: bool) -> str:
    return build("add_iis_iusrs" if add else "remove_iis_iusrs", Member=member)


def roll_script(servers: list[str], account: str) -> str:
    if not servers:
        raise ValueError("the roll needs at least one server")
    return build("roll_script", Servers=list(servers), Account=account)


def hop_check_script(other: str) -> str:
    return build("hop_check", Other=other)


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
                      roll_command(servers or None, GenerateNewPasswordFor=account,
                                   CreateScheduledTask="Exchange-RollAsa"))


def manual_roll_command(servers: list[str], *, account: str | None = None, copy_from: str | None = None) -> str:
    """Microsoft's script for the same roll, as a person types it in the Exchange Management Shell on a server
    (for plans): every target server in one run, so it pushes to all of them before it changes AD once."""
    how = {"GenerateNewPasswordFor": account} if account else {"CopyFrom": copy_from or ""}
    return statements(command("cd", variable("exscripts")), roll_command(list(servers), **how))


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


@dataclass(frozen=True)
class ScriptMessage:
    """One of Microsoft's messages from RollAlternateServiceAccountPassword.ps1 and what to do about it."""

    pattern: re.Pattern[str]
    problem: str
    fix: str


SECOND_HOP_FIX = ("Roll natively instead (the wizard's default: it pushes the credential through each server's "
                  "endpoint and resets the password over LDAPS, no second hop), or connect to the server with CredSSP "
                  "(Enable-WSManCredSSP -Role Server on it, -Role Client here) or give the account Kerberos "
                  "delegation, then run the hop pre-flight again.")

ROLL_MESSAGES: tuple[ScriptMessage, ...] = (
    ScriptMessage(
        re.compile(r"doesn't have enough privileges.*Organization Configuration", re.I | re.S),
        "The running account lacks the 'Organization Configuration' role.",
        "Run as a member of Organization Management (or assign the Organization Configuration role) and retry.",
    ),
    # The second hop: the script opens a remote session to every server and binds to a DC with the caller's
    # own Windows identity. Inside a WinRM session that cannot delegate, both fail with errors 5 / 1326.
    ScriptMessage(
        re.compile(r"Connecting to remote server \S+ failed.*?(Access is denied|user name or password is incorrect|"
                   r"logon failure)|PrincipalContext.*?(user name or password is incorrect|logon failure)|"
                   r"\(0x8007052E\)|ERROR_LOGON_FAILURE|error 1326", re.I | re.S),
        "The script could not reach the other servers or a domain controller from inside the remote session (a "
        "second hop: Windows errors 5 ACCESS_DENIED / 1326 LOGON_FAILURE). The session carries no credential it "
        "may pass on; the Reset Password right is not the cause.",
        SECOND_HOP_FIX,
    ),
    ScriptMessage(
        re.compile(r"A user or computer account (.+?) was not found", re.I),
        "The ASA account {0} was not found in Active Directory.",
        "Check the name (DOMAIN\\NAME$ for a computer account), create the account first, and wait for AD "
        "replication to reach the domain controller Exchange uses.",
    ),
    ScriptMessage(
        re.compile(r"Errors were encountered while propagating credentials", re.I),
        "Errors were encountered while propagating credentials to Exchange servers; the script left Active "
        "Directory unchanged to avoid an authentication outage.",
        "Fix the servers named in the output (up, MSExchangeServiceHost running, endpoint reachable), then roll "
        "again: a new password is pushed to every server and the unused one is cleaned up.",
    ),
    ScriptMessage(
        re.compile(r"SetPassword.*?(Access (is )?denied|E_ACCESSDENIED|0x80070005)", re.I | re.S),
        "Access Denied while setting the ASA password in Active Directory: the servers already hold the new "
        "credential, AD still has the old password (no outage).",
        "Grant the running account the Reset Password right on the ASA object (often created by another team), "
        "or run the roll as a Domain Admin, then roll again.",
    ),
)


def recognise(text: str) -> tuple[str, str] | None:
    """(problem, fix) for the first of Microsoft's messages found in `text`."""
    for msg in ROLL_MESSAGES:
        m = msg.pattern.search(text)
        if m:
            return msg.problem.format(*(g.strip() for g in m.groups() if g)), msg.fix
    return None


# Microsoft's events (Application log, source MSExchange Management Application)
EVENT_START, EVENT_OK, EVENT_WARN, EVENT_FAIL = 14001, 14002, 14003, 14004


def parse_roll(server: str, answer: dict) -> RollResult:
    """The verdict of Microsoft's script: its exit code and its events logged after the run started (14001 at
    the start, then 14002 success, 14003 success with errors, 14004 failure), never a log file."""
    output = str(answer.get("output") or "")
    rc = answer.get("exit")
    events = [int(e.get("id", 0)) for e in (answer.get("events") or []) if isinstance(e, dict)]
    excerpt = _excerpt(output)
    final = next((e for e in reversed(events) if e in (EVENT_OK, EVENT_WARN, EVENT_FAIL)), None)
    if rc == 0 and final in (EVENT_OK, EVENT_WARN):
        warned = final == EVENT_WARN
        return RollResult(server=server,
                          outcome=RollOutcome.SUCCEEDED_WITH_WARNINGS if warned else RollOutcome.SUCCEEDED,
                          message="THE SCRIPT HAS SUCCEEDED" + (" (event 14003: with errors)" if warned else
                                                                 " (event 14002)"),
                          log_excerpt=excerpt)
    known = recognise(output)
    if known:
        problem, fix = known
    elif rc == 0 and final is None:
        problem, fix = ("The script exited 0 but logged no final event (14002/14003/14004) for this run.",
                        "Check the Application log on the server for source MSExchange Management Application.")
    else:
        problem, fix = (f"THE SCRIPT HAS FAILED (exit code {rc}, event {final or 'none'}).",
                        "Read the script's output below for the reason.")
    return RollResult(server=server, outcome=RollOutcome.FAILED, message=problem, fix=fix, log_excerpt=excerpt)


def _excerpt(text: str, lines: int = 40) -> str:
    kept = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])
