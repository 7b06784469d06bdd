"""The lab's Exchange organisation: per-server state from the scenario, the Exchange cmdlets its remote
PowerShell endpoint runs (asa_wizard.lab.exchange_cmdlets), and an interpreter for exactly the Windows-side
scripts the wizard sends over WinRM (asa_wizard.adapters.powershell), including Microsoft's roll script with
its second hop.

The interpreter reads a script the way PowerShell would read ours: the values at the top are parsed as real
single-quoted literals (doubled quotes, the typographic quote characters, literal `$()`, backticks and
newlines), and the rest must be one of the known operation bodies, character for character. Nothing in a
value is ever evaluated. Anything else is answered as PowerShell answers an unknown command: a
CommandNotFoundException as CLIXML on stderr and exit code 1.

Per-server faults from the scenario: unreachable (handled by the endpoint: no listener), slow, access-denied
(the server's configuration is outside the lab admin's RBAC write scope: its Set-ClientAccessService is
refused), script-missing, fail-roll (the service host does not take a credential), iis-unreadable (the IIS
part of a read fails, the others answer).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from xml.sax.saxutils import escape

from ..adapters import iis_ep  # noqa: F401 - registers its operation in BODIES
from ..adapters.powershell import BODIES, EVENT_FAIL, EVENT_OK, EVENT_START, HEADER, PARAMETERS, ROLL_SCRIPT, SINGLE_QUOTES
from ..core.model import Service
from ..core.passwords import generate_password
from .scenario import HeldPassword, LabCredential, LabServer, LabVdir, Scenario, password_digest
from .scenario import clone as _clone

INSTALL_PATH = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
CLOCK_STEP = timedelta(seconds=20)  # each change on the lab advances the lab clock by this much
IIS_UNREADABLE = ("Filename: \\\\?\\C:\\Windows\\system32\\inetsrv\\config\\applicationHost.config Error: "
                  "Cannot read configuration file due to insufficient permissions")  # appcmd's words, fault "iis-unreadable"


class RolledDirectory(Protocol):
    """What Microsoft's script needs from Active Directory (LabDirectory implements it)."""

    def set_account_password_rolled(self, sam: str, when: datetime, digest: str = "") -> int: ...

    def account_key_version(self, sam: str) -> int | None: ...

    def account_digest(self, sam: str) -> str | None: ...


@dataclass
class Answer:
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


class ScriptError(Exception):
    """A terminating PowerShell error: its text goes to stderr as CLIXML, exit code 1."""


# ----------------------------------------------------------------------------------------------------
# Reading our scripts
# ----------------------------------------------------------------------------------------------------
class ParseError(Exception):
    pass


def clixml(message: str) -> str:
    """stderr as powershell.exe writes an error record when its output is redirected."""
    body = escape(message).replace("\r\n", "\n").replace("\n", "_x000D__x000A_")
    return ('#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
            f'<S S="Error">{body}_x000D__x000A_</S></Objs>')


def not_recognized(term: str) -> str:
    return (f"{term} : The term '{term}' is not recognized as the name of a cmdlet, function, script file, or "
            "operable program. Check the spelling of the name, or if a path was included, verify that the path is "
            "correct and try again.\n"
            f"At line:1 char:1\n+ {term}\n+ {'~' * max(1, len(term))}\n"
            f"    + CategoryInfo          : ObjectNotFound: ({term}:String) [], CommandNotFoundException\n"
            "    + FullyQualifiedErrorId : CommandNotFoundException")


_PLAIN = re.compile("[^" + "".join(SINGLE_QUOTES) + "]*")


class _Reader:
    """A cursor over the script text for the header statements `$Name=<literal>`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def take(self, n: int = 1) -> str:
        s = self.text[self.pos:self.pos + n]
        self.pos += n
        return s

    def single_quoted(self) -> str:
        """PowerShell's single-quoted string: a quote character followed by another one stands for the
        second; a lone quote character ends the string."""
        if self.peek() not in SINGLE_QUOTES or not self.peek():
            raise ParseError("expected a quoted string")
        self.take()
        out = []
        text = self.text
        while True:
            m = _PLAIN.match(text, self.pos)  # the run of characters up to the next quote character
            out.append(m.group())
            self.pos = m.end()
            if self.pos >= len(text):
                raise ParseError("The string is missing the terminator: '.")
            self.take()
            nxt = self.peek()
            if nxt and nxt in SINGLE_QUOTES:
                out.append(self.take())
                continue
            return "".join(out)

    def value(self) -> Any:
        if self.peek() and self.peek() in SINGLE_QUOTES:
            return self.single_quoted()
        for word, val in (("$true", True), ("$false", False)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return val
        if self.peek(2) == "@(":
            self.take(2)
            items: list[str] = []
            while self.peek() != ")":
                items.append(self.single_quoted())
                if self.peek() == ",":
                    self.take()
                elif self.peek() != ")":
                    raise ParseError("Missing ')' in subexpression.")
            self.take()
            return items
        start = self.pos
        while self.peek().isdigit():
            self.take()
        if self.pos > start:
            return int(self.text[start:self.pos])
        raise ParseError("Unexpected token in the value of an assignment.")


_VALUE_NAMES = {n for names in PARAMETERS.values() for n in names}


def parse_script(script: str) -> tuple[str, dict[str, Any]]:
    """(operation, values) for one of the wizard's scripts. Raises ParseError for a malformed literal and
    LookupError(term) when the script is not one the lab knows."""
    if not script.startswith(HEADER):
        raise LookupError(_first_term(script))
    r = _Reader(script)
    r.pos = len(HEADER)
    values: dict[str, Any] = {}
    while r.peek() == "$":
        start = r.pos
        r.take()
        name_start = r.pos
        while r.peek().isalnum():
            r.take()
        name = r.text[name_start:r.pos]
        if not name or r.peek() != "=" or name not in _VALUE_NAMES:
            r.pos = start
            break
        r.take()
        values[name] = r.value()
        if r.peek() != "\n":
            # something follows the literal on the same line: not a script of ours
            raise LookupError(_first_term(script[r.pos:].lstrip(";\t ")))
        r.take()
    rest = script[r.pos:]
    for op, body in BODIES.items():
        if rest == body and set(values) == set(PARAMETERS[op]):
            return op, values
    raise LookupError(_first_term(rest))


def _first_term(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            term = ""
            for ch in line:
                if ch in " \t;(){}|=":
                    break
                term += ch
            return term or line[:1]
    return ""


# ----------------------------------------------------------------------------------------------------
# The organisation
# ----------------------------------------------------------------------------------------------------
def ps_date(when: datetime) -> str:
    """DateTime.ToUniversalTime().ToString('o'): seven fractional digits and Z."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def unrolled(items: list[Any]) -> Any:
    """What a PowerShell function returns for an array: nothing, the lone element, or the array."""
    if not items:
        return None
    return items[0] if len(items) == 1 else items


class LabExchange:
    """Every server of the scenario, its state mutable for the run. Thread-safe."""

    def __init__(self, scenario: Scenario, directory: RolledDirectory) -> None:
        self.directory = directory
        self._lock = threading.RLock()
        self.received: list[str] = []
        self.cmdlets: list[tuple[str, str, list[str]]] = []  # (server, cmdlet, parameter names) as run
        self.events: dict[str, list[tuple[int, datetime]]] = {}  # server -> Application events of the script
        self.reset(scenario)

    # --- state --------------------------------------------------------------------------------------
    def reset(self, scenario: Scenario) -> None:
        with self._lock:
            self._scenario = _clone(scenario)
            self._clock = scenario.now
            self._logs: dict[str, dict[str, list[str]]] = {s.name.lower(): _initial_logs(s)
                                                           for s in self._scenario.servers}
            self.received.clear()
            self.cmdlets.clear()
            self.events.clear()
            self._index_servers()

    # --- cost: finding a server by name or FQDN without a pass over all of them (every WS-Management request
    # and every Kerberos probe asks); the same answer as Scenario.server, first match winning.
    def _index_servers(self) -> None:
        self._by_name: dict[str, LabServer] = {}
        for s in self._scenario.servers:
            self._by_name.setdefault(s.name.lower(), s)
            self._by_name.setdefault(s.fqdn.lower(), s)

    def _lookup(self, name: str) -> LabServer | None:
        key = name.lower()
        found = self._by_name.get(key)
        if found is not None and key in (found.name.lower(), found.fqdn.lower()):
            return found
        return self._scenario.server(name)  # not indexed (added or renamed since the reset): the exact scan

    def current_scenario(self) -> Scenario:
        with self._lock:
            s = _clone(self._scenario)
            s.now = self._clock
            return s

    def current_credentials(self) -> tuple[str, str]:
        """The lab admin (user, password) the endpoint accepts: lab-only, from the scenario file."""
        with self._lock:
            return self._scenario.admin_user, self._scenario.admin_password

    def server(self, name: str) -> LabServer | None:
        """The live state of one server (by name or FQDN); callers must not keep it across calls."""
        return self._lookup(name)

    def now(self) -> datetime:
        with self._lock:
            return self._clock

    def _tick(self) -> datetime:
        self._clock += CLOCK_STEP
        return self._clock

    def append_log(self, server: str, kind: str, line: str) -> None:
        """Add a line to a server's log (the simulated Kerberos writes IIS entries here)."""
        with self._lock:
            self._logs.setdefault(server.lower(), {}).setdefault(kind, []).append(line)

    def fault(self, server: str) -> tuple[str, float]:
        with self._lock:
            s = self._lookup(server)
            return (s.fault, s.slow_seconds) if s else ("none", 0.0)

    def credential_valid(self, cred: LabCredential) -> bool:
        """Does this credential still validate against AD (its password is the account's current one)?"""
        domain, _, sam = cred.account.rpartition("\\")
        if domain and domain.lower() != self._scenario.netbios.lower():
            return False
        return self.directory.account_digest(sam) == cred.digest

    def _record_cmdlet(self, server: str, cmdlet: str, params: list[str]) -> None:
        with self._lock:
            self.cmdlets.append((server, cmdlet, params))

    def sessions_can_delegate(self) -> bool:
        with self._lock:
            return self._scenario.sessions_can_delegate

    # --- execution of the Windows-side scripts (WinRM) ----------------------------------------------
    def run(self, machine: str, script: str) -> Answer:
        """Run one script on `machine` (the server whose WinRM endpoint received it)."""
        with self._lock:
            self.received.append(script)
        fault, slow = self.fault(machine)
        if fault == "slow":
            time.sleep(slow)
        try:
            op, values = parse_script(script)
        except ParseError as exc:
            return Answer(stderr=clixml(f"At line:2 char:1\n{exc}\n    + CategoryInfo          : ParserError: (:) "
                                        "[], ParentContainsErrorRecordException"), exit_code=1)
        except LookupError as exc:
            return Answer(stderr=clixml(not_recognized(str(exc.args[0]))), exit_code=1)
        try:
            with self._lock:
                result = getattr(self, "_op_" + op)(machine, fault, **values)
        except ScriptError as exc:
            return Answer(stderr=clixml(str(exc)), exit_code=1)
        return Answer(stdout=json.dumps(result, separators=(",", ":"), ensure_ascii=False) + "\r\n")

    def _find(self, identity: str) -> LabServer:
        s = self._scenario.server(identity)
        if s is None:
            raise ScriptError(f"Cannot find the computer '{identity}'.\n    + CategoryInfo          : "
                              "ObjectNotFound")
        return s

    # --- reading ------------------------------------------------------------------------------------
    def _op_read_windows(self, machine: str, fault: str) -> dict[str, Any]:
        local = self._find(machine)
        out: dict[str, Any] = {"errors": []}

        def iis(service: Service) -> dict[str, Any]:
            return _iis_settings(local.vdirs.get(service) or LabVdir(service=service))

        out["svchost"] = local.service_host_running
        if fault == "iis-unreadable":
            out["errors"].append({"part": "iis", "message": IIS_UNREADABLE})
        else:
            out["iis"] = {"eas": iis(Service.EAS), "ews": iis(Service.EWS)}
        out["iusrs"] = unrolled(list(local.iis_iusrs))
        out["logdir"] = "C:\\inetpub\\logs\\LogFiles\\W3SVC1"
        return out

    def _op_read_windows_ep(self, machine: str, fault: str, Locations: list[str]) -> dict[str, Any]:
        out = self._op_read_windows(machine, fault)
        ep = self._op_read_extended_protection(machine, fault, machine, Locations)
        out["ep"], out["exsetup"] = ep["ep"], ep["exsetup"]
        return out

    def _op_read_extended_protection(self, machine: str, fault: str, Server: str,
                                     Locations: list[str]) -> dict[str, Any]:
        from .extended_protection import exsetup_version, settings_for

        local = self._find(machine)  # IIS settings are the machine's own
        self._find(Server)
        settings = settings_for(local)
        # SSLOffloading is Exchange's (Get-OutlookAnywhere through the endpoint), not in this Windows-side read
        return {"ep": {loc: settings[loc] for loc in Locations if loc in settings}, "exsetup": exsetup_version(local)}

    # --- Microsoft's roll script, run on `machine` over WinRM --------------------------------------
    def _event(self, machine: str, event_id: int) -> None:
        self.events.setdefault(machine.lower(), []).append((event_id, self._clock))

    def _op_roll_script(self, machine: str, fault: str, Servers: list[str], Account: str) -> dict[str, Any]:
        """RollAlternateServiceAccountPassword.ps1 -ToSpecificServers <Servers> -GenerateNewPasswordFor <Account>
        -Unattended, as Microsoft's script does it (see docs/exchange.md): the RBAC gate, event 14001, a session
        to every server with the caller's own identity (a second hop from inside a WinRM session), one password
        generated in memory, pushed to every server, AD changed once only if every push worked."""
        started = self._clock
        if fault == "script-missing":
            raise ScriptError(not_recognized(f"{INSTALL_PATH}Scripts\\{ROLL_SCRIPT}"))
        stamp = self._clock.strftime("%m/%d/%Y %H:%M:%S")
        lines = [f"========== Starting at {stamp} =========="]
        from .exchange_cmdlets import ORG_CONFIG, _roles_of

        if ORG_CONFIG not in _roles_of(self, self._scenario.admin_user):
            lines.append("The running user doesn't have enough privileges to perform this operation. Verify that "
                         "he/she has the 'Organization Configuration' role assigned.")
            return {"output": "\r\n".join(lines), "exit": 1, "events": [], "started": ps_date(started)}
        self._tick()
        self._event(machine, EVENT_START)
        critical: list[str] = []
        hop = self._scenario.sessions_can_delegate
        domain, _, sam = Account.partition("\\")
        servers: list[LabServer] = []
        for name in Servers:
            s = self._scenario.server(name)
            if s is None:
                critical.append(f"No Client Access server matches '{name}'.")
            elif not hop:
                critical.append(f"Connecting to remote server {s.fqdn} failed with the following error message : "
                                "Access is denied. For more information, see the about_Remote_Troubleshooting Help "
                                "topic.")
            elif s.fault == "unreachable":
                critical.append(f"Connecting to remote server {s.fqdn} failed with the following error message : "
                                "WinRM cannot complete the operation. Verify that the specified computer name is "
                                "valid, that the computer is accessible over the network.")
            else:
                servers.append(s)
        account_known = (domain.lower() == self._scenario.netbios.lower()
                         and self.directory.account_key_version(sam) is not None)
        if not hop:
            lines += [f"CRITICAL ERROR: {c}" for c in critical]
            lines.append('Exception calling "FindByIdentity" with "2" argument(s): "The user name or password is '
                         'incorrect." (PrincipalContext, Windows error 1326 ERROR_LOGON_FAILURE)')
            return self._script_end(machine, lines, started, ok=False)
        if not account_known:
            lines.append(f"A user or computer account {Account} was not found.")
            return self._script_end(machine, lines, started, ok=False)
        lines += ["Destination servers that will be updated:", *[f"  {s.name}  {s.fqdn}" for s in servers],
                  "Credentials that will be pushed to every server in the specified scope (recent first):",
                  f"  {Account}"]
        password = generate_password()  # in the script's memory, as Microsoft's script does
        pushed_ok = []
        for s in servers:
            lines.append(f"Pushing credentials to server {s.name}")
            if s.fault == "fail-roll" or not s.service_host_running:
                critical.append(f"Failed to push the credentials to {s.fqdn}: the MSExchangeServiceHost service did "
                                "not answer.")
                continue
            when = self._tick()
            kept = [c for c in s.credentials if self.credential_valid(c)]
            s.credentials = [LabCredential(account=f"{self._scenario.netbios}\\{sam}", when=when, key_version=0,
                                           secret_digest=password_digest(password.reveal()), held=HeldPassword(password)),
                             *kept]
            pushed_ok.append(s)
        lines.append("Setting a new password on Alternate Serice Account in Active Directory")
        if critical or len(pushed_ok) != len(Servers):
            lines += ["Errors were encountered while propagating credentials to Exchange servers. Pushing a password "
                      "change to Active Directory may cause an authentication outage",
                      'Unattended mode: supplying False to the "Do you want to change password for '
                      f'{Account} in Active Directory at this time?"']
            lines += [f"CRITICAL ERROR: {c}" for c in critical]
            return self._script_end(machine, lines, started, ok=False)
        if not self._scenario.admin_can_reset_asa:
            lines.append(f"Resetting a password in the Active Directory for {Account}")
            lines.append('CRITICAL ERROR: Exception calling "SetPassword" with "1" argument(s): "Access is denied. '
                         '(Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))"')
            return self._script_end(machine, lines, started, ok=False)
        lines.append(f"Resetting a password in the Active Directory for {Account}")
        self.directory.set_account_password_rolled(sam, self._tick(), password_digest(password.reveal()))
        lines.append("New password was successfully set to Active Directory.")
        del password
        return self._script_end(machine, lines, started, ok=True)

    def _script_end(self, machine: str, lines: list[str], started: datetime, ok: bool) -> dict[str, Any]:
        stamp = self._clock.strftime("%m/%d/%Y %H:%M:%S")
        lines = [*lines, f"========== Finished at {stamp} ==========", "",
                 "        THE SCRIPT HAS SUCCEEDED" if ok else "        THE SCRIPT HAS FAILED", ""]
        self._event(machine, EVENT_OK if ok else EVENT_FAIL)
        events = [{"id": i, "time": ps_date(t)} for i, t in self.events.get(machine.lower(), []) if t >= started]
        return {"output": "\r\n".join(lines), "exit": 0 if ok else 1, "events": events, "started": ps_date(started)}

    def _op_hop_check(self, machine: str, fault: str, Other: str) -> dict[str, Any]:
        """The second hop from inside a session on `machine`: a session to `Other` and a bind to a DC."""
        if self._scenario.sessions_can_delegate:
            other = self._scenario.server(Other)
            if other is None or other.fault == "unreachable":
                return {"session": f"Connecting to remote server {Other} failed with the following error message : "
                                   "WinRM cannot complete the operation.", "ldap": ""}
            return {"session": "", "ldap": ""}
        return {"session": f"Connecting to remote server {Other} failed with the following error message : Access "
                           "is denied. For more information, see the about_Remote_Troubleshooting Help topic.",
                "ldap": 'Exception calling "FindByIdentity": "The user name or password is incorrect." (1326)'}

    # --- other changes ------------------------------------------------------------------------------
    def _member_index(self, machine: str, member: str) -> tuple[LabServer, int | None]:
        local = self._find(machine)
        for i, m in enumerate(local.iis_iusrs):
            if m.lower() == member.lower():
                return local, i
        return local, None

    def _op_add_iis_iusrs(self, machine: str, fault: str, Member: str) -> dict[str, Any]:
        local, i = self._member_index(machine, Member)
        if i is None:
            if "\\" not in Member:
                raise ScriptError('Exception calling "Add" with "1" argument(s): "A member could not be added to or '
                                  'removed from the local group because the member does not exist."')
            local.iis_iusrs.append(Member)
        return {"changed": i is None}

    def _op_remove_iis_iusrs(self, machine: str, fault: str, Member: str) -> dict[str, Any]:
        local, i = self._member_index(machine, Member)
        if i is not None:
            del local.iis_iusrs[i]
        return {"changed": i is not None}

    def _op_set_iis_auth(self, machine: str, fault: str, App: str, Basic: bool, Windows: bool,
                         Providers: list[str], Kernel: bool, AppPool: bool) -> dict[str, Any]:
        local = self._find(machine)
        service = _iis_service(App)
        d = local.vdirs.setdefault(service, LabVdir(service=service))
        previous = _iis_settings(d)
        d.basic, d.windows, d.providers = Basic, Windows, list(Providers)
        d.use_kernel_mode, d.use_app_pool_credentials = Kernel, AppPool
        self._tick()
        return {"previous": previous}

    def _op_change_iis_auth(self, machine: str, fault: str, App: str, Basic: bool, Windows: bool,
                            Providers: list[str], Kernel: bool, AppPool: bool, OldBasic: bool, OldWindows: bool,
                            OldProviders: list[str], OldKernel: bool, OldAppPool: bool) -> dict[str, Any]:
        """`iis_ep.change_iis_auth_script`: the settings read, then set only when they are the old ones."""
        local = self._find(machine)
        service = _iis_service(App)
        if fault == "iis-unreadable":  # the read comes first, and fails as `read_windows`'s IIS part does
            raise ScriptError(IIS_UNREADABLE)
        d = local.vdirs.get(service) or LabVdir(service=service)
        found = _iis_settings(d)

        def same(basic: bool, windows: bool, providers: list[str], kernel: bool, app_pool: bool) -> bool:
            return found == {"basic": basic, "windows": windows, "providers": list(providers), "kernel": kernel,
                             "apppool": app_pool}

        if same(Basic, Windows, Providers, Kernel, AppPool):
            return {"found": found, "state": "new"}
        if not same(OldBasic, OldWindows, OldProviders, OldKernel, OldAppPool):
            return {"found": found, "state": "stale"}
        self._op_set_iis_auth(machine, fault, App, Basic, Windows, Providers, Kernel, AppPool)
        return {"found": found, "state": "old"}

    def _op_fetch_log(self, machine: str, fault: str, Kind: str, Lines: int) -> dict[str, Any]:
        logs = self._logs.get(self._find(machine).name.lower(), {})
        folder = {"iis": "C:\\inetpub\\logs\\LogFiles\\W3SVC1",
                  "httpproxy-mapi": INSTALL_PATH + "Logging\\HttpProxy\\Mapi",
                  "httpproxy-rpchttp": INSTALL_PATH + "Logging\\HttpProxy\\RpcHttp"}.get(Kind, "")
        return {"text": "\n".join(logs.get(Kind, [])[-Lines:]), "folder": folder}


def _iis_service(application: str) -> Service:
    """The virtual directory an IIS application under Default Web Site is (the two the wizard changes)."""
    service = {"Microsoft-Server-ActiveSync": Service.EAS, "EWS": Service.EWS}.get(application)
    if service is None:
        raise ScriptError(f"Filename: \nError: Cannot find the configuration location "
                          f"'Default Web Site/{application}'.")
    return service


def _iis_settings(d: LabVdir) -> dict[str, Any]:
    """An application's IIS authentication as the Windows-side scripts report it."""
    return {"basic": d.basic, "windows": d.windows, "providers": list(d.providers),
            "kernel": d.use_kernel_mode, "apppool": d.use_app_pool_credentials}


def _initial_logs(server: LabServer) -> dict[str, list[str]]:
    return {
        "iis": ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0",
                "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
                "cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken"],
        "httpproxy-mapi": ["DateTime,RequestId,MajorVersion,MinorVersion,BuildVersion,RevisionVersion,ClientRequestId,"
                           "Protocol,UrlHost,UrlStem,ProtocolAction,AuthenticationType,IsAuthenticated,"
                           "AuthenticatedUser,Organization,AnchorMailbox,UserAgent,ClientIpAddress,ServerHostName,"
                           "HttpStatus"],
        "httpproxy-rpchttp": [],
    }
