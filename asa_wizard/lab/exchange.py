"""The lab's Exchange organisation: per-server state from the scenario and an interpreter for exactly the
scripts the wizard sends (asa_wizard.adapters.powershell).

The interpreter reads a script the way PowerShell would read ours: the values at the top are parsed as real
single-quoted literals (doubled quotes, the typographic quote characters, literal `$()`, backticks and
newlines), and the rest must be one of the known operation bodies, character for character. Nothing in a
value is ever evaluated. Anything else is answered as PowerShell answers an unknown command: a
CommandNotFoundException as CLIXML on stderr and exit code 1.

Per-server faults from the scenario: unreachable (handled by the endpoint: no listener), slow, access-denied,
script-missing, snapin-missing, fail-roll.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from xml.sax.saxutils import escape

from ..adapters import iis_ep  # noqa: F401 - registers its operation in BODIES
from ..adapters.powershell import BODIES, HEADER, PARAMETERS, PRELUDE, ROLL_SCRIPT, SINGLE_QUOTES, SNAPIN
from ..core.model import Service
from .scenario import LabCredential, LabServer, LabVdir, Scenario

INSTALL_PATH = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"
CLOCK_STEP = timedelta(seconds=20)  # each change on the lab advances the lab clock by this much


class RolledDirectory(Protocol):
    """What Microsoft's script needs from Active Directory (LabDirectory implements it)."""

    def set_account_password_rolled(self, sam: str, when: datetime) -> int: ...

    def account_key_version(self, sam: str) -> int | None: ...


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
        while True:
            if self.pos >= len(self.text):
                raise ParseError("The string is missing the terminator: '.")
            c = self.take()
            if c in SINGLE_QUOTES:
                nxt = self.peek()
                if nxt and nxt in SINGLE_QUOTES:
                    out.append(self.take())
                    continue
                return "".join(out)
            out.append(c)

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
        if not name or r.peek() != "=":
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
        if rest == PRELUDE + body and set(values) == set(PARAMETERS[op]):
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
        self.reset(scenario)

    # --- state --------------------------------------------------------------------------------------
    def reset(self, scenario: Scenario) -> None:
        with self._lock:
            self._scenario = copy.deepcopy(scenario)
            self._clock = scenario.now
            self._logs: dict[str, dict[str, list[str]]] = {s.name.lower(): _initial_logs(s)
                                                           for s in self._scenario.servers}
            self.received.clear()

    def current_scenario(self) -> Scenario:
        with self._lock:
            s = copy.deepcopy(self._scenario)
            s.now = self._clock
            return s

    def current_credentials(self) -> tuple[str, str]:
        """The lab admin (user, password) the endpoint accepts: lab-only, from the scenario file."""
        with self._lock:
            return self._scenario.admin_user, self._scenario.admin_password

    def server(self, name: str) -> LabServer | None:
        """The live state of one server (by name or FQDN); callers must not keep it across calls."""
        return self._scenario.server(name)

    def now(self) -> datetime:
        with self._lock:
            return self._clock

    def _tick(self) -> datetime:
        self._clock += CLOCK_STEP
        return self._clock

    def append_log(self, server: str, kind: str, line: str) -> None:
        """Add a line to a server's log (the simulated Kerberos writes IIS and System entries here)."""
        with self._lock:
            self._logs.setdefault(server.lower(), {}).setdefault(kind, []).append(line)

    def fault(self, server: str) -> tuple[str, float]:
        with self._lock:
            s = self._scenario.server(server)
            return (s.fault, s.slow_seconds) if s else ("none", 0.0)

    # --- execution ----------------------------------------------------------------------------------
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
        if fault == "snapin-missing":
            return Answer(stderr=clixml(
                f"Add-PSSnapin : The Windows PowerShell snap-in '{SNAPIN}' is not installed on this computer.\n"
                "    + CategoryInfo          : InvalidArgument: (" + SNAPIN + ":String) [Add-PSSnapin], "
                "PSArgumentException"), exit_code=1)
        try:
            with self._lock:
                result = getattr(self, "_op_" + op)(machine, fault, **values)
        except ScriptError as exc:
            return Answer(stderr=clixml(str(exc)), exit_code=1)
        return Answer(stdout=json.dumps(result, separators=(",", ":"), ensure_ascii=False) + "\r\n")

    def _find(self, identity: str) -> LabServer:
        s = self._scenario.server(identity)
        if s is None:
            raise ScriptError(
                f"The operation couldn't be performed because object '{identity}' couldn't be found on "
                f"'dc01.{self._scenario.domain}'.\n    + CategoryInfo          : NotSpecified: (:) [], "
                "ManagementObjectNotFoundException")
        return s

    # --- reading ------------------------------------------------------------------------------------
    def _op_inventory(self, machine: str, fault: str) -> list[dict[str, Any]]:
        return [self._server_row(s) for s in self._scenario.servers]

    @staticmethod
    def _server_row(s: LabServer) -> dict[str, Any]:
        return {"name": s.name, "fqdn": s.fqdn, "version": s.version, "roles": list(s.roles), "site": s.site}

    @staticmethod
    def _creds(s: LabServer) -> Any:
        creds = [c for c in (s.asa_latest, s.asa_previous) if c is not None]
        creds.sort(key=lambda c: c.when, reverse=True)
        return unrolled([{"account": c.account, "when": ps_date(c.when)} for c in creds])

    def _op_read_server(self, machine: str, fault: str, Server: str) -> dict[str, Any]:
        s = self._find(Server)
        local = self._find(machine)
        v = s.vdirs

        def vdir(service: Service) -> dict[str, Any] | None:
            d = v.get(service)
            if d is None:
                return None
            return {"int": d.internal_host, "ext": d.external_host, "auth": unrolled(list(d.auth_methods))}

        def iis(service: Service) -> dict[str, Any]:
            d = local.vdirs.get(service) or LabVdir(service=service)
            return {"basic": d.basic, "windows": d.windows, "providers": list(d.providers),
                    "kernel": d.use_kernel_mode, "apppool": d.use_app_pool_credentials}

        oa = v.get(Service.OUTLOOK_ANYWHERE)
        ad = v.get(Service.AUTODISCOVER)
        return {
            **self._server_row(s),
            "asa": self._creds(s),
            "svchost": local.service_host_running,
            "oa": None if oa is None else {
                "int": oa.internal_host or "", "ext": oa.external_host or "",
                "ica": oa.internal_client_auth or "", "eca": oa.external_client_auth or "",
                "auth": unrolled(list(oa.auth_methods))},
            "mapi": vdir(Service.MAPI),
            "eas": vdir(Service.EAS),
            "ews": vdir(Service.EWS),
            "owa": vdir(Service.OWA),
            "autod": f"https://{ad.internal_host}/Autodiscover/Autodiscover.xml" if ad and ad.internal_host else "",
            "iis": {"eas": iis(Service.EAS), "ews": iis(Service.EWS)},
            "iusrs": unrolled(list(local.iis_iusrs)),
        }

    def _op_read_extended_protection(self, machine: str, fault: str, Server: str,
                                     Locations: list[str]) -> dict[str, Any]:
        from .extended_protection import exsetup_version, settings_for, ssl_offloading

        local = self._find(machine)  # IIS settings are the machine's own
        self._find(Server)
        settings = settings_for(local)
        return {"ep": {loc: settings[loc] for loc in Locations if loc in settings},
                "ssloffloading": ssl_offloading(local), "exsetup": exsetup_version(local)}

    # --- the roll script ----------------------------------------------------------------------------
    def _roll_preamble(self, machine: str, fault: str) -> None:
        if fault == "script-missing":
            raise ScriptError(not_recognized(f"{INSTALL_PATH}Scripts\\{ROLL_SCRIPT}"))

    def _roll_answer(self, server: LabServer, lines: list[str], ok: bool) -> dict[str, Any]:
        stamp = self._clock.strftime("%m/%d/%Y %H:%M:%S")
        lines = [f"========== Starting at {stamp} ==========", *lines,
                 f"========== Finished at {stamp} ==========", "",
                 "        THE SCRIPT HAS SUCCEEDED" if ok else "        THE SCRIPT HAS FAILED", ""]
        output = "\r\n".join(lines)
        log = "\n".join(f"[{stamp}] {ln.strip()}" for ln in lines if ln.strip())
        return {"output": output, "log": log, "creds": self._creds(server)}

    def _targets(self, server: LabServer) -> list[str]:
        return ["Destination servers that will be updated:", "",
                "Name                                                        PSComputerName",
                "----                                                        --------------",
                f"{server.name:<60}{server.fqdn}", "", "Credentials will be updated on 1 servers."]

    def _push_failure(self, server: LabServer, fault: str) -> list[str] | None:
        if fault == "access-denied":
            return [f"Pushing credentials to server {server.name}",
                    'Exception calling "SetPassword" with "1" argument(s): "Access is denied. (Exception from '
                    'HRESULT: 0x80070005 (E_ACCESSDENIED))"']
        if fault == "fail-roll":
            return [f"Pushing credentials to server {server.name}",
                    f"WARNING: Failed to push the credentials to {server.fqdn}: the MSExchangeServiceHost service "
                    "did not answer.",
                    "Errors were encountered while propagating credentials to Exchange servers. Pushing a password "
                    "change to Active Directory may cause an authentication outage, so the password in Active "
                    "Directory was not changed."]
        return None

    def _op_roll_generate(self, machine: str, fault: str, Server: str, Account: str) -> dict[str, Any]:
        self._roll_preamble(machine, fault)
        target = self._find_roll_target(Server)
        if isinstance(target, dict):
            return target
        domain, _, sam = Account.partition("\\")
        known = (domain.lower() == self._scenario.netbios.lower()
                 and self.directory.account_key_version(sam) is not None)
        if not known:
            return self._roll_answer(target, [f"A user or computer account {Account} was not found."], ok=False)
        failure = self._push_failure(target, fault)
        if failure:
            return self._roll_answer(target, [*self._targets(target), *failure], ok=False)
        when = self._tick()
        key_version = self.directory.set_account_password_rolled(sam, when)
        self._install(target, LabCredential(account=f"{self._scenario.netbios}\\{sam}", when=when,
                                            key_version=key_version))
        return self._roll_answer(target, [*self._targets(target), f"Pushing credentials to server {target.name}",
                                          "Setting a new password on Alternate Serice Account in Active Directory"],
                                 ok=True)

    def _op_roll_copy(self, machine: str, fault: str, Server: str, Source: str) -> dict[str, Any]:
        self._roll_preamble(machine, fault)
        target = self._find_roll_target(Server)
        if isinstance(target, dict):
            return target
        source = self._scenario.server(Source)
        if source is None:
            return self._roll_answer(target, ["-CopyFrom parameter should be set to identity that resolves to "
                                              "exactly one Client Access Server"], ok=False)
        failure = self._push_failure(target, fault)
        if failure:
            return self._roll_answer(target, [*self._targets(target), *failure], ok=False)
        if source.fault == "unreachable" or source.asa_latest is None:
            why = ("is not reachable" if source.asa_latest is not None
                   else "has no alternate service account credentials to copy")
            return self._roll_answer(target, [*self._targets(target), f"The source server {source.name} {why}.",
                                              "Errors were encountered while propagating credentials to Exchange "
                                              "servers."], ok=False)
        src = source.asa_latest
        self._install(target, LabCredential(account=src.account, when=self._tick(), key_version=src.key_version))
        return self._roll_answer(target, [*self._targets(target), f"Copying credentials from {source.name}",
                                          f"Pushing credentials to server {target.name}"], ok=True)

    def _find_roll_target(self, identity: str) -> LabServer | dict[str, Any]:
        target = self._scenario.server(identity)
        if target is None:
            placeholder = LabServer(name=identity, fqdn=identity, version="", roles=[], site="")
            return self._roll_answer(placeholder, [f"No Client Access server matches '{identity}'."], ok=False)
        return target

    @staticmethod
    def _install(server: LabServer, cred: LabCredential) -> None:
        """Set-ClientAccessService -CleanUpInvalidAlternateServiceAccountCredentials
        -AlternateServiceAccountCredential: the latest becomes the previous."""
        server.asa_previous = server.asa_latest
        server.asa_latest = cred

    # --- other changes ------------------------------------------------------------------------------
    def _op_remove_asa(self, machine: str, fault: str, Server: str) -> dict[str, Any]:
        s = self._find(Server)
        s.asa_latest = None
        s.asa_previous = None
        self._tick()
        return {"removed": True}

    def _op_set_oa_client_auth(self, machine: str, fault: str, Server: str, Method: str) -> dict[str, Any]:
        s = self._find(Server)
        oa = s.vdirs.get(Service.OUTLOOK_ANYWHERE)
        if oa is None:
            raise ScriptError("You cannot call a method on a null-valued expression.")
        if Method not in ("Basic", "Ntlm", "Negotiate"):
            raise ScriptError(f"Cannot process argument transformation on parameter "
                              f"'InternalClientAuthenticationMethod'. Cannot convert value \"{Method}\".")
        previous, oa.internal_client_auth = oa.internal_client_auth or "", Method
        self._tick()
        return {"previous": previous}

    def _op_set_mapi_auth(self, machine: str, fault: str, Server: str, Methods: list[str]) -> dict[str, Any]:
        s = self._find(Server)
        mapi = s.vdirs.get(Service.MAPI)
        if mapi is None:
            raise ScriptError("You cannot call a method on a null-valued expression.")
        previous, mapi.auth_methods = list(mapi.auth_methods), list(Methods)
        self._tick()
        return {"previous": previous}

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
                raise ScriptError(f"Principal {Member} was not found.")
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
        service = {"Microsoft-Server-ActiveSync": Service.EAS, "EWS": Service.EWS}.get(App)
        if service is None:
            raise ScriptError(f"Filename: \nError: Cannot find the configuration location "
                              f"'Default Web Site/{App}'.")
        d = local.vdirs.setdefault(service, LabVdir(service=service))
        previous = {"basic": d.basic, "windows": d.windows, "providers": list(d.providers),
                    "kernel": d.use_kernel_mode, "apppool": d.use_app_pool_credentials}
        d.basic, d.windows, d.providers = Basic, Windows, list(Providers)
        d.use_kernel_mode, d.use_app_pool_credentials = Kernel, AppPool
        self._tick()
        return {"previous": previous}

    def _op_fetch_log(self, machine: str, fault: str, Kind: str, Lines: int) -> dict[str, Any]:
        logs = self._logs.get(self._find(machine).name.lower(), {})
        return {"text": "\n".join(logs.get(Kind, [])[-Lines:])}


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
        "system-kerberos": [],
    }
