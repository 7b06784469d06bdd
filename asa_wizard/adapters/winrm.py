"""The Windows side of the Exchange servers over WinRM (pywinrm): IIS, the IIS_IUSRS group, the service host,
logs, and Microsoft's roll script when chosen; one short PowerShell script per operation. Exchange cmdlets do
not run here (no snap-in): `adapters.exchange.EndpointExchange` sends them to each server's own endpoint.

Transport rules: HTTPS (5986) by default with the certificate validated (against `ca_file` or the system
store); plain HTTP (5985) only with Kerberos/NTLM/CredSSP message encryption; Basic only over HTTPS. One
pywinrm protocol object per server, used by one thread at a time (a lock per server), so parallel callers
never share a connection. Every script runs under an overall deadline (pywinrm alone would wait forever
for a command that never finishes). Every failure becomes a `WizardError` naming the server, the account
and the transport, with a fix; nothing from the other side reaches a message before the password is
redacted out of it.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from xml.etree import ElementTree as ET


from ..core.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    NotFound,
    OperationTimeout,
    PermissionDenied,
    PolicyRefused,
    ScriptFailed,
    WizardError,
)
from ..core.hosts import require_host
from ..core.model import ExtendedProtection, IisAuth
from ..core.ports import RollResult, Swap
from ..core.secrets import Secret, redact
from . import powershell as ps

TRANSPORTS = ("kerberos", "ntlm", "credssp", "basic")
# pywinrm's transport module imports these at its own import, whatever the transport: requests-ntlm pulls in
# pyspnego and python-gssapi (about half a second). module -> (the name pywinrm takes from it, its flag there)
_AUTH_STACKS = {"ntlm": ("requests_ntlm", "HttpNtlmAuth", "HAVE_NTLM"),
                "credssp": ("requests_credssp", "HttpCredSSPAuth", "HAVE_CREDSSP")}
_IMPORT_LOCK = threading.Lock()


def _pywinrm(transport: str) -> Any:
    """pywinrm, imported when a connection is first made. With Basic (the lab) its transport module is imported
    without the NTLM and CredSSP stacks; a later NTLM or CredSSP connection in the same process imports the one
    it needs and gives it to that module, as pywinrm's own import would have."""
    with _IMPORT_LOCK:
        if "winrm.transport" not in sys.modules and transport == "basic":
            left_out = [m for m, _, _ in _AUTH_STACKS.values() if m not in sys.modules]
            for m in left_out:
                sys.modules[m] = None  # type: ignore[assignment]  # "import m" raises ImportError meanwhile
            try:
                importlib.import_module("winrm.transport")
            finally:
                for m in left_out:
                    if sys.modules.get(m, "") is None:
                        del sys.modules[m]
        wt = importlib.import_module("winrm.transport")
        if transport in _AUTH_STACKS:
            module, name, flag = _AUTH_STACKS[transport]
            if not getattr(wt, flag, False):
                try:
                    setattr(wt, name, getattr(importlib.import_module(module), name))
                    setattr(wt, flag, True)
                except ImportError:  # not installed: pywinrm refuses the transport, and we say what to install
                    pass
        return importlib.import_module("winrm")


def _winrm_exceptions() -> Any:
    """pywinrm's exceptions (imported by the connection that raised them)."""
    return importlib.import_module("winrm.exceptions")


ENCRYPTING = ("kerberos", "ntlm", "credssp")
UTF8_CODEPAGE = 65001


@dataclass
class WinRmSettings:
    """How to reach the Exchange servers. Validation is on unless `validate_certificate=False` is chosen
    explicitly (and then `describe()` says so)."""

    transport: str = "kerberos"  # kerberos | ntlm | credssp | basic (Basic only over HTTPS: the lab)
    user: str = ""  # DOMAIN\user or user@REALM (Kerberos may leave it empty: the ticket cache decides)
    password: Secret | None = None
    scheme: str = "https"
    port: int | None = None  # 5986 for https, 5985 for http
    ca_file: str | None = None  # PEM of the CA that issued the servers' WinRM certificates
    validate_certificate: bool = True
    message_encryption: str = "auto"  # http forces "always"
    read_timeout_sec: int = 60  # one HTTP request (connect + read)
    operation_timeout_sec: int = 20  # one WS-Management operation (Receive long-polls this long)
    command_timeout_sec: int = 900  # one whole script (the roll script can take minutes)
    proxy: str | None = None  # None: never use a proxy (not even from the environment)
    url_override: Callable[[str], str] | None = field(default=None, repr=False)
    label: str = ""

    def check(self) -> None:
        """Refuse settings that would expose credentials or traffic."""
        if self.transport not in TRANSPORTS:
            raise PolicyRefused(f"Unknown WinRM transport {self.transport!r}.", f"Use one of: {', '.join(TRANSPORTS)}.")
        if self.scheme not in ("https", "http"):
            raise PolicyRefused(f"Unknown scheme {self.scheme!r}.", "Use https (port 5986) or http (port 5985).")
        if self.scheme == "http":
            if self.transport not in ENCRYPTING:
                raise PolicyRefused(
                    f"WinRM over plain HTTP with {self.transport} would send credentials and data unencrypted.",
                    "Use HTTPS (port 5986), or Kerberos/NTLM/CredSSP, which encrypt the messages on port 5985.")
            if self.message_encryption == "never":
                raise PolicyRefused("WinRM over plain HTTP without message encryption is refused.",
                                    "Use HTTPS (port 5986) or leave message encryption on.")
        if self.operation_timeout_sec < 1 or self.read_timeout_sec <= self.operation_timeout_sec:
            raise PolicyRefused("The WinRM read timeout must be longer than the operation timeout.",
                                f"For example read_timeout_sec={self.operation_timeout_sec + 10}.")

    @property
    def effective_port(self) -> int:
        return self.port or (5986 if self.scheme == "https" else 5985)

    def url_for(self, server: str) -> str:
        if self.url_override is not None:
            return self.url_override(server)
        host = require_host(server, "Exchange server name")  # never a URL from a name with user@, :port, /, #
        return f"{self.scheme}://{f'[{host}]' if ':' in host else host}:{self.effective_port}/wsman"

    @property
    def insecure(self) -> bool:
        return self.scheme == "https" and not self.validate_certificate

    def pywinrm_kwargs(self) -> dict[str, Any]:
        encryption = "always" if self.scheme == "http" else ("never" if self.transport == "basic" else
                                                             self.message_encryption)
        return {
            "transport": self.transport,
            "username": self.user or None,
            "password": self.password.reveal() if self.password else None,
            "server_cert_validation": "validate" if self.validate_certificate else "ignore",
            "ca_trust_path": self.ca_file if self.ca_file else None,
            "read_timeout_sec": self.read_timeout_sec,
            "operation_timeout_sec": self.operation_timeout_sec,
            "message_encryption": encryption,
            "proxy": self.proxy,
        }


@dataclass
class _Connection:
    url: str
    protocol: Any  # winrm.protocol.Protocol
    lock: threading.Lock = field(default_factory=threading.Lock)
    shell_id: str | None = None  # one WinRS shell per server for every script of a run
    # The last finished command, not yet ended with a terminate Signal: signalled before the next command in the
    # shell, and not at all when the run ends, because deleting a shell ends its commands and frees them
    # (MS-WSMV 3.1.4.4.1). One request less per server and run.
    finished: str | None = None


FAULT_SHELL_GONE = "2150858843"  # 0x8033805B: the shell is not known to the server (idle timeout, restart)


class WinRmExchange:
    """Windows-side work on the Exchange servers over pywinrm. Thread-safe: calls for different servers run in
    parallel."""

    def __init__(self, settings: WinRmSettings) -> None:
        settings.check()
        self.settings = settings
        self._connections: dict[str, _Connection] = {}
        self._lock = threading.Lock()

    # --- the port -----------------------------------------------------------------------------------
    def describe(self) -> str:
        s = self.settings
        where = s.label or f"{s.scheme.upper()} port {s.effective_port}"
        tls = ""
        if s.scheme == "https":
            tls = ", certificate NOT validated (insecure opt-out)" if s.insecure else ", certificate validated"
        who = f" as {s.user}" if s.user else ""
        return f"WinRM ({s.transport}) {where}{who}{tls}"

    def read_windows(self, server: str) -> dict[str, Any]:
        """svchost, iis, iusrs, logdir: each part read on its own; `errors` lists the parts that failed."""
        return self._windows_dict(server, ps.read_windows_script())

    def _windows_dict(self, server: str, script: str) -> dict[str, Any]:
        d = self._run(server, script, "read_server")
        if not isinstance(d, dict):
            raise ScriptFailed(f"{server} answered the Windows read with unexpected data.",
                               "Check the server's PowerShell version (5.1 or later).")
        return d

    def run_roll_script(self, server: str, servers: list[str], account: str) -> RollResult:
        d = self._run(server, ps.roll_script(servers, account), "roll")
        return ps.parse_roll(server, d)

    def hop_check(self, server: str, other: str) -> dict[str, str]:
        d = self._run(server, ps.hop_check_script(other), "read_server")
        return {"session": str(d.get("session") or ""), "ldap": str(d.get("ldap") or "")}

    def add_iis_iusrs(self, server: str, member: str) -> bool:
        return bool(self._run(server, ps.iis_iusrs_script(member, add=True), "change").get("changed"))

    def remove_iis_iusrs(self, server: str, member: str) -> bool:
        return bool(self._run(server, ps.iis_iusrs_script(member, add=False), "change").get("changed"))

    def set_iis_auth(self, server: str, application: str, auth: IisAuth) -> IisAuth:
        try:
            script = ps.set_iis_auth_script(application, auth.basic, auth.windows, list(auth.providers),
                                            auth.use_kernel_mode, auth.use_app_pool_credentials)
        except ValueError as exc:
            raise _unsettable(server, application, exc) from None
        return iis_auth(self._run(server, script, "change").get("previous") or {})

    def change_iis_auth(self, server: str, application: str, old: IisAuth, new: IisAuth) -> Swap:
        """`set_iis_auth` only when the settings are `old` now: read, compared and set in one script on the
        server (`iis_ep.change_iis_auth_script`)."""
        from . import iis_ep

        try:
            script = iis_ep.change_iis_auth_script(application, old, new)
        except ValueError as exc:
            raise _unsettable(server, application, exc) from None
        d = self._run(server, script, "change")
        state = str(d.get("state") or "") if isinstance(d, dict) else ""
        if state not in ("old", "new", "stale"):
            raise ScriptFailed(f"{server} answered the IIS authentication change with unexpected data.",
                               "Check the server's PowerShell and IIS (WebAdministration module).")
        found = d.get("found")
        return Swap(found=iis_auth(found) if isinstance(found, dict) else None, state=state)

    def fetch_log(self, server: str, kind: str, max_lines: int = 2000) -> str:
        text = str(self._run(server, ps.fetch_log_script(kind, max_lines), "log").get("text") or "")
        return "\n".join(text.splitlines()[-max_lines:])

    def read_windows_ep(self, server: str) -> tuple[dict[str, Any], ExtendedProtection]:
        """`read_windows` and `read_extended_protection` in one script: (the Windows parts, Extended Protection;
        its `error` says why when its part failed)."""
        from . import iis_ep

        d = self._windows_dict(server, iis_ep.read_windows_ep_script())
        failed = {str(e.get("part")): str(e.get("message") or "failed") for e in d.get("errors") or []
                  if isinstance(e, dict)}
        d["errors"] = [e for e in d.get("errors") or [] if not (isinstance(e, dict) and e.get("part") in
                                                                 ("ep", "exsetup"))]
        if "ep" in failed:
            ep = ExtendedProtection(server=server, error=f"{server}: {failed['ep']}")
        else:
            try:
                ep = iis_ep.parse_extended_protection(server, {"ep": d.pop("ep", None) or {},
                                                               "exsetup": d.pop("exsetup", "")})
            except WizardError as exc:
                ep = ExtendedProtection(server=server, error=str(exc))
        return d, ep

    def read_extended_protection(self, server: str) -> ExtendedProtection:
        from . import iis_ep

        return iis_ep.parse_extended_protection(server, self._run(server, iis_ep.read_extended_protection_script(server),
                                                                  "read_server"))

    def close(self) -> None:
        """Delete each server's shell, then drop its TLS session."""
        from ._closing import close_each

        with self._lock:
            conns, self._connections = list(self._connections.values()), {}

        def close_one(c: _Connection) -> None:
            with c.lock:
                if c.shell_id is not None:
                    try:  # the Delete also ends the shell's last command: no Signal for it
                        c.protocol.close_shell(c.shell_id)
                    except Exception:  # noqa: BLE001 - closing is best effort; the server times the shell out
                        pass
                    c.shell_id = c.finished = None
                try:
                    c.protocol.transport.close_session()
                except Exception:  # noqa: BLE001 - closing a socket must never fail a run
                    pass

        close_each(conns, close_one)

    # --- running a script ---------------------------------------------------------------------------
    def _connection(self, server: str) -> _Connection:
        key = server.lower()
        with self._lock:
            conn = self._connections.get(key)
            if conn is None:
                url = self.settings.url_for(server)
                winrm = _pywinrm(self.settings.transport)
                try:
                    protocol = winrm.protocol.Protocol(url, **self.settings.pywinrm_kwargs())
                except winrm.exceptions.WinRMError as exc:
                    raise PolicyRefused(f"WinRM {self.settings.transport} cannot be used here: {exc}.",
                                        "For Kerberos install pywinrm[kerberos] (needs libkrb5-dev) and kinit; "
                                        "for CredSSP install pywinrm[credssp].") from None
                # proxies are resolved once, from the settings and the environment, when the session is built;
                # not again for every request (requests reads the whole environment each time otherwise)
                protocol.transport.build_session().trust_env = False
                conn = self._connections[key] = _Connection(url, protocol)
            return conn

    def _run(self, server: str, script: str, purpose: str) -> Any:
        """Run `script` on `server`; return its JSON. `purpose` chooses the advice for Access Denied."""
        conn = self._connection(server)
        with conn.lock:
            try:
                stdout, stderr, rc = self._run_ps(conn, script)
            except WizardError:
                raise
            except Exception as exc:  # every library failure becomes a message a person can act on
                raise self._translate(server, conn.url, exc) from None
        if rc != 0:
            raise self._script_error(server, clean_stderr(stderr), rc, purpose)
        text = stdout.decode("utf-8", errors="replace").strip()
        try:
            return json.loads(_last_json(text))
        except ValueError:
            raise ScriptFailed(f"{server} answered with something that is not the expected JSON.",
                               "Check that nothing on the server (a profile, a banner) writes to the output.",
                               detail=self._clean(text[:500])) from None

    def _run_ps(self, conn: _Connection, script: str) -> tuple[bytes, bytes, int]:
        encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
        protocol = conn.protocol
        deadline = time.monotonic() + self.settings.command_timeout_sec
        timed_out = _winrm_exceptions().WinRMOperationTimeoutError
        command_line = f"powershell -NoProfile -NonInteractive -encodedcommand {encoded}"
        command_id = None
        shell_id = conn.shell_id
        try:
            if shell_id is not None:
                finished, conn.finished = conn.finished, None
                if finished is not None:
                    self._signal(protocol, shell_id, finished)
                try:
                    command_id = protocol.run_command(shell_id, command_line)
                except _winrm_exceptions().WinRMError as exc:
                    if FAULT_SHELL_GONE not in str(getattr(exc, "wsman_fault_code", "")) + str(exc):
                        raise
                    conn.shell_id = shell_id = None  # the command never started: a new shell, once
            if shell_id is None:
                shell_id = conn.shell_id = protocol.open_shell(codepage=UTF8_CODEPAGE, noprofile=True)
                command_id = protocol.run_command(shell_id, command_line)
            out, err = [], []
            while True:
                if time.monotonic() > deadline:
                    raise OperationTimeout(
                        f"The script on {conn.url} did not finish within {self.settings.command_timeout_sec} s.",
                        "The server may be overloaded or the script waiting for input; check it, then retry "
                        "(raise command_timeout_sec for slow servers).")
                try:
                    o, e, rc, done = protocol.get_command_output_raw(shell_id, command_id)
                except timed_out:
                    continue
                out.append(o)
                err.append(e)
                if done:
                    conn.finished, command_id = command_id, None  # its Signal waits (see _Connection.finished)
                    return b"".join(out), b"".join(err), rc
        except BaseException:
            conn.shell_id = conn.finished = None  # a transport failure or a timeout: the next script starts a new shell
            raise
        finally:
            if command_id is not None and shell_id is not None:
                self._signal(protocol, shell_id, command_id)

    @staticmethod
    def _signal(protocol: Any, shell_id: str, command_id: str) -> None:
        """End a command with a terminate Signal. Best effort: the answer (or the first error) is what matters, and
        the shell's Delete ends it anyway."""
        try:
            protocol.cleanup_command(shell_id, command_id)
        except Exception:  # noqa: BLE001
            pass

    # --- errors -------------------------------------------------------------------------------------
    def _clean(self, text: str) -> str:
        return redact(text, self.settings.password)

    def _who(self) -> str:
        s = self.settings
        return f"{s.user or 'the current Kerberos ticket'} ({s.transport} over {s.scheme.upper()})"

    def _translate(self, server: str, url: str, exc: Exception) -> WizardError:
        import requests

        x = _winrm_exceptions()
        detail = self._clean(f"{type(exc).__name__}: {exc}")
        s = self.settings
        if isinstance(exc, x.InvalidCredentialsError):
            fixes = {
                "kerberos": "Check `klist` for a ticket of that account (kinit), that the server name is its real "
                            "FQDN (not an IP or a load-balanced name) and that WinRM allows Kerberos.",
                "ntlm": "Check the account and password, and that NTLM is not blocked by policy for this server.",
                "credssp": "Check the account and password, and that CredSSP is enabled on the WinRM service.",
                "basic": "Check the account and password; Basic needs `winrm set winrm/config/service/auth "
                         "@{Basic=\"true\"}` and a local account.",
            }
            return AuthenticationFailed(f"{server} refused the credentials of {self._who()} (HTTP 401).",
                                        fixes[s.transport] + " The account must be a local administrator and an "
                                        "Exchange administrator on the server.", detail=detail)
        if isinstance(exc, requests.exceptions.SSLError) and not certificate_refused(exc):
            return ConnectionFailed(f"The TLS connection to {server} ({url}) broke.",
                                    "Retry; if it persists, check the network path to the server and its WinRM "
                                    "listener.", detail=detail)
        if isinstance(exc, requests.exceptions.SSLError):
            return ConnectionFailed(
                f"The WinRM HTTPS certificate of {server} could not be validated.",
                "Give the CA certificate that issued it (ca_file), or make sure the certificate names the FQDN you "
                "connect to. Turning validation off is possible only as an explicit, visible opt-out.",
                detail=detail)
        if isinstance(exc, (requests.exceptions.ReadTimeout, x.WinRMOperationTimeoutError)):
            return OperationTimeout(f"{server} did not answer within {s.read_timeout_sec} s ({url}).",
                                    "The server may be overloaded; retry, or raise read_timeout_sec.", detail=detail)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return ConnectionFailed(f"Cannot reach {server} at {url}: the connection timed out.",
                                    f"Check the name, the network path and that the firewall allows TCP "
                                    f"{s.effective_port} to the server.", detail=detail)
        if isinstance(exc, requests.exceptions.ConnectionError):
            text = str(exc).lower()
            if "refused" in text:
                return ConnectionFailed(
                    f"WinRM is not listening on {server} ({url}): the connection was refused.",
                    "Enable WinRM over HTTPS on the server (`winrm quickconfig -transport:https` with a certificate "
                    f"for its FQDN) and allow TCP {s.effective_port} in its firewall; or use HTTP 5985 with "
                    "Kerberos message encryption.", detail=detail)
            if "name or service not known" in text or "getaddrinfo" in text or "nodename" in text:
                return ConnectionFailed(f"The name {server} cannot be resolved.",
                                        "Use the server's FQDN as DNS knows it.", detail=detail)
            return ConnectionFailed(f"Cannot reach {server} at {url}.",
                                    f"Check that the server is up and TCP {s.effective_port} is open.", detail=detail)
        if isinstance(exc, x.WSManFaultError):
            return ConnectionFailed(f"WinRM on {server} refused the request: {self._clean(str(exc.reason or exc))}",
                                    "Check the WinRM configuration on the server (winrm get winrm/config).",
                                    detail=detail)
        if isinstance(exc, x.WinRMTransportError):
            if exc.code == 404:
                return ConnectionFailed(f"There is no WS-Management endpoint at {url}.",
                                        "Check the port and the path (/wsman).", detail=detail)
            return ConnectionFailed(f"WinRM on {server} answered HTTP {exc.code}.",
                                    "Check the WinRM service and its listener on the server.", detail=detail)
        return ConnectionFailed(f"Talking to {server} over WinRM failed ({type(exc).__name__}).",
                                "Check the server, the network and the WinRM settings.", detail=detail)

    def _script_error(self, server: str, stderr: str, rc: int, purpose: str) -> WizardError:
        text = self._clean(stderr)
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), f"exit code {rc}")
        if ps.ROLL_SCRIPT in text and "is not recognized" in text:
            return NotFound(f"Microsoft's {ps.ROLL_SCRIPT} is missing from $exscripts on {server}.",
                            "It ships with Exchange in <install path>\\V15\\Scripts: repair the Exchange "
                            "installation or run the roll from another server of the same version.", detail=text)
        known = ps.recognise(text)
        if known and "Organization Configuration" in known[0]:
            return PermissionDenied(known[0], known[1], detail=text)
        if re.search(r"management scope|RBAC|not allowed to", text, re.I):
            return PermissionDenied(f"{self._who()} lacks the Exchange permission for this on {server}: {first}",
                                    "It needs the Organization Configuration role (Organization Management).",
                                    detail=text)
        if re.search(r"access (is )?denied|E_ACCESSDENIED|0x80070005", text, re.I):
            fix = ("The account must be a local administrator on the server (IIS, local groups, event logs).")
            return PermissionDenied(f"Access Denied on {server}: {first}", fix, detail=text)
        if "couldn't be found" in text or "could not be found" in text:
            return NotFound(f"{server}: {first}", "Check the server name: use a name Get-ExchangeServer lists.",
                            detail=text)
        if "is not recognized" in text:
            return ScriptFailed(f"{server} does not know a command the wizard used: {first}",
                                "Check the Exchange and Windows versions of the server.", detail=text, exit_code=rc)
        return ScriptFailed(f"PowerShell on {server} failed (exit code {rc}): {first}",
                            "Read the detail; fix the cause on the server and retry.", detail=text, exit_code=rc)


def _unsettable(server: str, application: str, exc: ValueError) -> WizardError:
    """IIS settings the wizard does not set (an application or a Windows authentication provider it does not
    know), refused before anything is sent."""
    return PolicyRefused(f"The IIS authentication of {application} on {server} is not changed by the wizard: {exc}.",
                         f"Set it in IIS Manager (Default Web Site/{application}, Windows Authentication, "
                         "Providers), or leave the providers the wizard knows: "
                         f"{', '.join(ps.IIS_PROVIDERS)}.")


def certificate_refused(exc: BaseException) -> bool:
    """Did this TLS failure come from the certificate (not trusted, not for this name), not from a connection
    that broke (an EOF or a reset in the middle of the TLS stream)?"""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError) or "certificate verify failed" in str(e).lower():
            return True
        e = e.__cause__ or e.__context__ or (e.args[0] if e.args and isinstance(e.args[0], BaseException) else None)
    return False


# ----------------------------------------------------------------------------------------------------
# Reading answers
# ----------------------------------------------------------------------------------------------------
_XML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def clean_stderr(raw: bytes) -> str:
    """PowerShell's stderr without the CLIXML wrapping: the error texts, progress records dropped."""
    text = raw.decode("utf-8", errors="replace")
    if not text.startswith("#< CLIXML"):
        return text.strip()
    lines: list[str] = []
    for chunk in re.findall(r"<Objs.*?</Objs>", text, re.S):
        chunk = re.sub(r'\sxmlns="[^"]*"', "", chunk, count=1)
        try:
            root = ET.fromstring(chunk)
        except ET.ParseError:
            continue
        for s in root.iter("S"):
            if s.get("S") == "Error" and s.text:
                lines.append(_XML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), s.text))
    return "".join(lines).replace("\r\n", "\n").strip()


def _last_json(text: str) -> str:
    """The JSON document: the whole output, or its last line when something else was printed before it."""
    if text.startswith(("{", "[")):
        return text
    lines = [ln for ln in text.splitlines() if ln.strip().startswith(("{", "["))]
    return lines[-1] if lines else text


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _strings(v: Any) -> list[str]:
    """A PowerShell function returns nothing, one item or an array: always a list here."""
    return [str(x) for x in _as_list(v) if x not in (None, "")]


def iis_auth(d: dict[str, Any]) -> IisAuth:
    return IisAuth(basic=bool(d.get("basic")), windows=bool(d.get("windows")), providers=_strings(d.get("providers")),
                   use_kernel_mode=bool(d.get("kernel")), use_app_pool_credentials=bool(d.get("apppool")))
