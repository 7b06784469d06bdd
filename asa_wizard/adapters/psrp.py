"""Exchange's own remote PowerShell endpoint over PSRP (pypsrp): `http://<fqdn>/PowerShell`, Microsoft.Exchange.

This is how Microsoft's tools reach Exchange cmdlets (New-PSSession -ConfigurationName Microsoft.Exchange
-ConnectionUri http://<fqdn>/PowerShell/ -Authentication Kerberos): RBAC applies, the runspace is in
no-language mode, so every call here is one Command with parameters (`add_cmdlet` / `add_parameter`, never
script text). One runspace pool per server, opened on first use and reused for every call of a run; the
session key is exchanged right after the pool opens, before any PSCredential / SecureString travels.

Real-target defaults: HTTP port 80, path `PowerShell`, Kerberos with message encryption (pypsrp wraps every
message when the transport is HTTP), SPN `HTTP/<fqdn>` (pypsrp itself would ask for `host/<fqdn>`). Basic is
accepted only over HTTPS (the training lab, which has no KDC). Every failure becomes an `RpsError` naming the
server and the fix; nothing from the other side reaches a message before passwords are redacted out of it.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import requests

from ._lazy_negotiate import without_negotiate

without_negotiate()  # pypsrp's transport without the Kerberos/NTLM stack until a connection needs it
from pypsrp.complex_objects import ComplexObject, PSInvocationState  # noqa: E402
from pypsrp.complex_objects import PSCredential as _PypsrpCredential  # noqa: E402
from pypsrp.exceptions import (  # noqa: E402
    AuthenticationError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.powershell import PowerShell, RunspacePool  # noqa: E402
from pypsrp.serializer import Serializer  # noqa: E402
from pypsrp.wsman import WSMan  # noqa: E402

from ..core.commands import setspn  # noqa: E402
from ..core.errors import WizardError  # noqa: E402
from ..core.hosts import require_host  # noqa: E402
from ..core.secrets import Secret, redact  # noqa: E402
from ._lazy_negotiate import with_negotiate  # noqa: E402
from .winrm import certificate_refused  # noqa: E402

CONFIGURATION = "Microsoft.Exchange"
AUTHS = ("kerberos", "negotiate", "credssp", "basic")
CMDLET = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
PARAMETER = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
FAULT_NOT_IN_CATALOG = 2150858811
FAULT_ACCESS_DENIED = 5
FAULT_SHELL_GONE = 2150858843  # 0x8033805B: the shell (runspace pool) is not known to the server
FAULT_QUOTA_MAX_SHELLS = 2150859173  # 0x803381A5 ERROR_WSMAN_QUOTA_MAX_SHELLS: the user's concurrent shells
NO_LANGUAGE = "The syntax is not supported by this runspace"


@dataclass(frozen=True)
class PsCredential:
    """A PSCredential to send or that was received (`password` None when the server did not return it)."""

    user: str  # DOMAIN\name
    password: Secret | None

    def __repr__(self) -> str:
        return f"PsCredential(user={self.user!r}, password={'********' if self.password is not None else None})"


@dataclass(frozen=True)
class RpsSettings:
    """How to reach Exchange's remote PowerShell. Real Exchange: http://<fqdn>/PowerShell, Kerberos, message
    encryption. `host_override` (the lab) maps a server's FQDN to (host, port, path)."""

    scheme: str = "http"
    port: int = 80
    path: str = "PowerShell"
    auth: str = "kerberos"  # kerberos | negotiate | credssp | basic (basic: HTTPS only, the lab)
    user: str | None = None  # None with Kerberos: the ticket cache (kinit user@REALM) decides
    password: Secret | None = field(default=None, repr=False)
    ca_file: str | None = None
    insecure_skip_tls_verify: bool = False
    negotiate_service: str = "HTTP"
    delegate: bool = False
    connect_timeout: float = 15
    operation_timeout: float = 60
    key_timeout_ms: int = 60000
    host_override: Callable[[str], tuple[str, int, str]] | None = field(default=None, repr=False, compare=False)

    def check(self) -> None:
        if self.auth not in AUTHS:
            raise RpsError(f"Unknown remote PowerShell authentication {self.auth!r}.",
                           f"Use one of: {', '.join(AUTHS)} (Exchange supports Kerberos; NTLM is not offered).")
        if self.scheme not in ("http", "https"):
            raise RpsError(f"Unknown scheme {self.scheme!r} for Exchange remote PowerShell.",
                           "Use http (Exchange's default, encrypted by Kerberos) or https.")
        if self.auth == "basic" and self.scheme != "https":
            raise RpsError("Basic authentication over plain HTTP would send the password unencrypted.",
                           "Use Kerberos (the Exchange default) or HTTPS.")
        if self.auth in ("basic", "credssp") and not (self.user and self.password):
            raise RpsError(f"{'Basic' if self.auth == 'basic' else 'CredSSP'} authentication needs a user and a "
                           "password.", "Give both, or use Kerberos with a ticket (kinit).")
        if self.operation_timeout < 1 or self.connect_timeout <= 0:
            raise RpsError("The remote PowerShell timeouts must be positive.",
                           "For example connect_timeout=15, operation_timeout=60.")

    def target(self, server: str) -> tuple[str, int, str]:
        require_host(server, "Exchange server name")  # never a URL from a name with user@, :port, /, #
        if self.host_override is not None:
            return self.host_override(server)
        return server, self.port, self.path

    def url(self, server: str) -> str:
        host, port, path = self.target(server)
        return f"{self.scheme}://{f'[{host}]' if ':' in host else host}:{port}/{path}"

    def describe(self) -> str:
        tls = ""
        if self.scheme == "https":
            tls = ", certificate NOT validated (insecure opt-out)" if self.insecure_skip_tls_verify else \
                ", certificate validated"
        who = f" as {self.user}" if self.user else ""
        enc = ", message encryption" if self.scheme == "http" else ""
        return f"Exchange remote PowerShell ({self.auth}{enc}) {self.scheme}://<server>:{self.port}/{self.path}{who}{tls}"


class RpsError(WizardError):
    """A remote PowerShell failure: `message` + `fix`; `.error_id` (FullyQualifiedErrorId), `.category`,
    `.server`."""

    kind = "remote-powershell"

    def __init__(self, problem: str, fix: str = "", *, server: str = "", error_id: str = "", category: str = "",
                 detail: str | None = None, target: str = "") -> None:
        super().__init__(problem, fix, detail=detail)
        self.server = server
        self.error_id = error_id
        self.category = category
        self.target = target  # the object the error record names (an organisation-wide read: which server)

    @property
    def message(self) -> str:
        return self.problem


class _NeedsKey(Exception):
    """A SecureString arrived on a pool whose session key was not exchanged yet."""


class _ShellGone(Exception):
    """The server no longer knows the pool's shell and the call did not run."""

    def __init__(self, fault: WSManFaultError) -> None:
        super().__init__(str(fault))
        self.fault = fault


@dataclass
class _Pool:
    pool: RunspacePool
    wsman: WSMan
    lock: threading.Lock = field(default_factory=threading.Lock)
    keyed: bool = False  # the session key is exchanged (needed before a SecureString travels either way)


class _Output(ComplexObject):
    """One pipeline output object, kept as its CLIXML: `_Clixml` reads it once (pypsrp would build its own
    object tree and re-serialise every nested element first)."""

    def __init__(self, xml: str) -> None:
        super().__init__()
        self._xml = xml


class _Serializer(Serializer):
    """pypsrp's serializer, except that pipeline output (deserialised without metadata) stays CLIXML."""

    def deserialize(self, element: Any, metadata: Any = None, clear: bool = True) -> Any:
        if metadata is None and clear and isinstance(element, str) and element.lstrip().startswith("<Obj"):
            return _Output(element)
        return super().deserialize(element, metadata, clear)


_KEY_LOCK = threading.Lock()
_KEY: Any = None


def _exchange_key() -> Any:
    """The RSA key pair this process offers for the PSRP session-key exchange, made once: each runspace pool
    still gets its own AES session key from the server, encrypted to this key (generating RSA-2048 for every
    pool costs about 0.1 s of CPU each)."""
    global _KEY
    with _KEY_LOCK:
        if _KEY is None:
            from cryptography.hazmat.primitives.asymmetric import rsa

            _KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _KEY


def _exchange_keys(pool: RunspacePool, timeout_ms: int = 60000) -> None:
    """MS-PSRP's key exchange (what pypsrp's `RunspacePool.exchange_keys` sends) with the process's key pair:
    PUBLIC_KEY (the key in Microsoft's blob layout), then wait for ENCRYPTED_SESSION_KEY, which pypsrp
    decrypts into the pool's serializer cipher."""
    import base64
    import struct
    import time

    from pypsrp.messages import PublicKey

    if pool._key_exchanged:
        return
    key = _exchange_key()
    numbers = key.public_key().public_numbers()
    blob = (b"\x06\x02\x00\x00\x00\xa4\x00\x00\x52\x53\x41\x31\x00\x08\x00\x00" + struct.pack("<I", numbers.e)
            + numbers.n.to_bytes(256, "little"))
    pool._exchange_key = key
    for fragment in pool._fragmenter.fragment(PublicKey(public_key=base64.b64encode(blob).decode("ascii")), pool.id):
        pool.shell.send("stdin", fragment)
    start = time.monotonic()
    while not pool._key_exchanged:
        if (time.monotonic() - start) * 1000 > timeout_ms:
            raise RpsError("The server did not answer the session-key exchange in time.",
                           "Check the server's remote PowerShell endpoint, then retry.")
        pool._receive()


class ExchangeRps:
    """Exchange cmdlets through the endpoint of each server. Thread-safe: one lock per server's pool."""

    def __init__(self, settings: RpsSettings) -> None:
        settings.check()
        self.settings = settings
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._server_locks: dict[str, threading.Lock] = {}

    # --- the interface ------------------------------------------------------------------------------
    def invoke(self, server: str, cmdlet: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """One Command pipeline (never script text) on the endpoint of `server` (FQDN); its first error record
        is raised."""
        rows, errors = self.invoke_each(server, cmdlet, params)
        if errors:
            raise errors[0]
        return rows

    def invoke_each(self, server: str, cmdlet: str, params: Mapping[str, Any] | None = None
                    ) -> tuple[list[dict[str, Any]], list[RpsError]]:
        """One Command pipeline on the endpoint of `server`: every output row and every error record (an
        organisation-wide Get- writes an error for a server it cannot reach and goes on with the others)."""
        if not CMDLET.match(cmdlet or ""):
            raise RpsError(f"{cmdlet!r} is not a cmdlet name.",
                           "Give a Verb-Noun cmdlet name; Exchange's endpoint accepts commands only, not script.",
                           server=server)
        carried: list[Secret] = []  # the secrets this call sends
        for name, value in (params or {}).items():
            if not PARAMETER.match(name or ""):
                raise RpsError(f"{name!r} is not a parameter name.", "Give the parameter's name without '-'.",
                               server=server)
            carried.extend(_secrets_in(value))
        secrets = [self.settings.password, *carried]
        wire = [(name, _to_wire(value)) for name, value in (params or {}).items()]  # refuse bad values first
        # a SecureString travels (a credential sent, passwords asked for): the session key must be there first
        keyed = bool(carried) or bool((params or {}).get("IncludeAlternateServiceAccountCredentialPassword"))

        def run(p: _Pool) -> list[dict[str, Any]]:
            if keyed and not p.keyed:
                _exchange_keys(p.pool, self.settings.key_timeout_ms)
                p.keyed = True
            ps = PowerShell(p.pool)
            ps.add_cmdlet(cmdlet)
            for name, value in wire:
                ps.add_parameter(name, value)
            try:
                output = ps.invoke()
            except WSManFaultError as exc:
                if exc.code == FAULT_SHELL_GONE and ps.state == PSInvocationState.NOT_STARTED:
                    raise _ShellGone(exc) from None  # the server never accepted the command: safe to redo
                raise
            errors = list(ps.streams.error)
            try:
                ps.close()
            except WinRMError:
                pass
            try:
                rows = [_from_wire(o, p.pool) for o in output]
            except _NeedsKey:
                if p.keyed or not cmdlet.lower().startswith("get-"):
                    raise RpsError(f"{cmdlet} on {server} returned a SecureString that cannot be decrypted.",
                                   "Retry; if it persists, report it with the server's version.",
                                   server=server) from None
                _exchange_keys(p.pool, self.settings.key_timeout_ms)  # a read: safe to run again, keyed
                p.keyed = True
                return run(p)
            return rows, [rps_error_from_record(server, e, cmdlet, secrets) for e in errors]

        return self._with_pool(server, f"{cmdlet}", run, secrets)

    def parameters(self, server: str, cmdlet: str) -> frozenset[str]:
        """Parameter names the caller may use (PSRP GetCommandMetadata); empty if the command is hidden."""
        return self.parameters_of(server, [cmdlet])[cmdlet]

    def parameters_of(self, server: str, cmdlets: list[str]) -> dict[str, frozenset[str]]:
        """`parameters` of several cmdlets in one GetCommandMetadata call: cmdlet -> parameter names."""
        for cmdlet in cmdlets:
            if not CMDLET.match(cmdlet or ""):
                raise RpsError(f"{cmdlet!r} is not a cmdlet name.", "Give a Verb-Noun cmdlet name.", server=server)

        def run(p: _Pool) -> dict[str, frozenset[str]]:
            try:
                metas = _command_metadata(p.pool, list(cmdlets))
            except WSManFaultError as exc:
                if exc.code == FAULT_SHELL_GONE:
                    raise _ShellGone(exc) from None  # reading metadata changes nothing: safe to redo
                raise
            names: dict[str, set[str]] = {c: set() for c in cmdlets}
            for meta in metas:
                if not isinstance(meta, dict):
                    continue
                parameters = meta.get("Parameters")
                for cmdlet in cmdlets:
                    if str(meta.get("Name") or "").lower() == cmdlet.lower() and isinstance(parameters, dict):
                        names[cmdlet].update(str(k) for k in parameters)
            return {c: frozenset(v) for c, v in names.items()}

        return self._with_pool(server, f"the metadata of {', '.join(cmdlets)}", run, [self.settings.password])

    def close(self) -> None:
        """Close every runspace pool (each server's shell on the endpoint is deleted)."""
        from ._closing import close_each

        with self._lock:
            pools, self._pools = list(self._pools.values()), {}

        def close_one(p: _Pool) -> None:
            with p.lock:
                try:
                    p.pool.close()
                except Exception:  # noqa: BLE001 - closing is best effort; the server times the shell out
                    pass
                try:
                    p.wsman.close()
                except Exception:  # noqa: BLE001 - closing a socket must never fail a run
                    pass

        close_each(pools, close_one)

    def __enter__(self) -> "ExchangeRps":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- pools --------------------------------------------------------------------------------------
    def _server_lock(self, server: str) -> threading.Lock:
        with self._lock:
            return self._server_locks.setdefault(server.lower(), threading.Lock())

    def _with_pool(self, server: str, what: str, fn: Callable[[_Pool], Any], secrets: list[Any]) -> Any:
        """Run `fn` on the server's pool, opening it on first use. A reused pool whose shell the server no
        longer knows (idle timeout, IIS recycle) is reopened once, when the call provably never ran."""
        with self._server_lock(server):
            for attempt in (1, 2):
                with self._lock:
                    p = self._pools.get(server.lower())
                fresh = p is None
                if p is None:
                    p = self._open(server)
                    with self._lock:
                        self._pools[server.lower()] = p
                try:
                    with p.lock:
                        return fn(p)
                except RpsError:
                    raise
                except _ShellGone as gone:
                    with self._lock:
                        self._pools.pop(server.lower(), None)
                    if fresh or attempt == 2:
                        raise self._translate(server, what, gone.fault, secrets) from None
                except Exception as exc:  # noqa: BLE001 - every library failure becomes an RpsError
                    err = self._translate(server, what, exc, secrets)
                    if err.category == "transport":  # the pool is unusable after a transport failure
                        with self._lock:
                            self._pools.pop(server.lower(), None)
                    raise err from None
        raise AssertionError("unreachable")  # pragma: no cover

    def wsman(self, server: str) -> WSMan:
        """The pypsrp transport for one server (not connected yet): real Exchange gets HTTP on port 80, path
        PowerShell, Kerberos with message encryption and the SPN HTTP/<fqdn>."""
        s = self.settings
        host, port, path = s.target(server)
        kwargs: dict[str, Any] = {}
        if s.auth != "basic":
            with_negotiate()  # Kerberos / Negotiate / CredSSP: pypsrp's real HTTPNegotiateAuth (spnego)
        if s.auth in ("kerberos", "negotiate"):
            kwargs.update(negotiate_service=s.negotiate_service, negotiate_delegate=s.delegate)
            if host.lower() != server.lower():
                kwargs["negotiate_hostname_override"] = server
        verify: bool | str = False if s.insecure_skip_tls_verify else (s.ca_file or True)
        wsman = WSMan(host, port=port, path=path, ssl=s.scheme == "https", auth=s.auth,
                      username=s.user or None, password=s.password.reveal() if s.password else None,
                      cert_validation=verify, encryption="auto", connection_timeout=int(max(1, s.connect_timeout)),
                      operation_timeout=int(s.operation_timeout), read_timeout=int(s.operation_timeout) + 10,
                      no_proxy=True, **kwargs)
        # proxies resolved once (none: no_proxy) when the session is built, not from the environment per request
        transport = wsman.transport
        transport.session = transport._build_session()
        transport.session.trust_env = False
        return wsman

    def _open(self, server: str) -> _Pool:
        s = self.settings
        wsman = self.wsman(server)
        pool = RunspacePool(wsman, configuration_name=CONFIGURATION)
        pool._serializer = _Serializer()  # pipeline output stays CLIXML until `_Clixml` reads it
        pool._fragmenter.serializer = pool._serializer
        try:
            pool.open()  # the session key is exchanged when a call first carries a SecureString
        except Exception as exc:  # noqa: BLE001
            try:
                wsman.close()
            except Exception:  # noqa: BLE001
                pass
            raise self._translate(server, "opening the session", exc, [s.password]) from None
        return _Pool(pool, wsman)

    # --- errors -------------------------------------------------------------------------------------
    def _translate(self, server: str, what: str, exc: BaseException, secrets: list[Any]) -> RpsError:
        s = self.settings
        url = s.url(server)
        text = redact(str(exc), *[x for x in secrets if isinstance(x, (Secret, str))])
        user = s.user or "the Kerberos ticket's user"
        if isinstance(exc, WSManFaultError):
            if exc.code == FAULT_NOT_IN_CATALOG:
                return RpsError(
                    f"{server}: {url} does not serve the Microsoft.Exchange configuration ({exc.reason}).",
                    f"Exchange's remote PowerShell lives in IIS, not on the WinRM listener (5985/5986 /wsman): use "
                    f"http://{server}/PowerShell (port 80, path PowerShell).",
                    server=server, error_id=str(exc.code), category="transport", detail=text)
            if exc.code == FAULT_ACCESS_DENIED:
                return RpsError(
                    f"{server} refused a remote PowerShell session to {user}: {redact(exc.reason or '', *secrets)}",
                    f"Remote PowerShell must be enabled for {user} and the user needs a management role: an "
                    f"Organization Management admin runs Set-User <user> -RemotePowerShellEnabled $true (and checks "
                    f"Get-ManagementRoleAssignment -RoleAssignee <user>).",
                    server=server, error_id="AccessDenied", category="transport", detail=text)
            if exc.code == FAULT_QUOTA_MAX_SHELLS or "concurrent shells" in (exc.reason or ""):
                return RpsError(
                    f"{server} refused another remote PowerShell session to {user}: "
                    f"{redact(exc.reason or '', *secrets)}",
                    f"Sessions of {user} that were never closed still count against Exchange's throttling policy "
                    "(PowerShellMaxConcurrency, 18 by default): close them (Remove-PSSession in the consoles and "
                    "scripts that opened them, or recycle MSExchangePowerShellAppPool on that server), or wait until "
                    "they time out, then retry. asa-wizard closes its own at the end of every run.",
                    server=server, error_id="QuotaMaxShells", category="transport", detail=text)
            return RpsError(f"{server}: the remote PowerShell endpoint answered a fault while {what}: "
                            f"{redact(exc.reason or '', *secrets)} (code {exc.code}).",
                            "Check the server's IIS PowerShell virtual directory and its WinRM service.",
                            server=server, error_id=str(exc.code), category="transport", detail=text)
        if type(exc).__module__.split(".")[0] == "spnego" or "did not response with one of the following" in text:
            return RpsError(
                f"{server}: Kerberos could not authenticate {user} to {s.negotiate_service}/{server} at {url}.",
                f"Get a ticket first (kinit user@REALM, the UPN form), check that the SPN {s.negotiate_service}/"
                f"{server} exists ({setspn('-Q', f'{s.negotiate_service}/{server}')}) and that the server offers "
                "Negotiate "
                "on /PowerShell (Exchange's default: Kerberos only, no NTLM).",
                server=server, error_id="Kerberos", category="transport", detail=text)
        if isinstance(exc, AuthenticationError):
            if s.auth == "basic":
                fix = "Check the user name and password of the lab logon."
            else:
                fix = (f"Exchange's endpoint accepts Kerberos only (no NTLM): use the UPN form user@REALM, get a "
                       f"ticket first (kinit user@REALM), make sure the SPN {s.negotiate_service}/{server} belongs "
                       f"to an account whose key the server holds ({setspn('-Q', f'{s.negotiate_service}/{server}')}"
                       ": normally its own computer account; moved to the ASA, it needs the ASA's current password "
                       "on that server, else the server cannot read the ticket and the client logs "
                       "KRB_AP_ERR_MODIFIED) and that the clock is within 5 minutes of the DC.")
            return RpsError(f"{server}: authentication as {user} with {s.auth} was refused (HTTP 401) at {url}.",
                            fix, server=server, error_id="401", category="transport", detail=text)
        if isinstance(exc, WinRMTransportError):
            code = getattr(exc, "code", None)
            if code == 404:
                return RpsError(f"{server}: {url} was not found (HTTP 404).",
                                f"Use http://{server}/PowerShell, the Exchange server's own PowerShell virtual "
                                "directory, not a load-balanced name or another path.",
                                server=server, error_id="404", category="transport", detail=text)
            return RpsError(f"{server}: the remote PowerShell endpoint answered HTTP {code} while {what}.",
                            "Check IIS and the PowerShell virtual directory on that server (Get-PowerShell"
                            "VirtualDirectory), then retry.", server=server, error_id=str(code),
                            category="transport", detail=text)
        if isinstance(exc, requests.exceptions.SSLError) and certificate_refused(exc):
            return RpsError(f"{server}: the TLS certificate of {url} could not be validated.",
                            "Give the CA that issued the server's certificate (ca_file), or use the Exchange "
                            "default http://<fqdn>/PowerShell with Kerberos message encryption.",
                            server=server, error_id="TLS", category="transport", detail=text)
        if isinstance(exc, requests.exceptions.SSLError):
            return RpsError(f"{server}: the TLS connection to {url} broke while {what}.",
                            "Retry; if it persists, check the network path to the server and its IIS.",
                            server=server, error_id="TLS", category="transport", detail=text)
        if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout)):
            return RpsError(f"{server}: no answer from {url} within the timeout while {what}.",
                            "Check the server is up and the firewall lets port "
                            f"{s.target(server)[1]} through; raise the timeouts for slow links.",
                            server=server, error_id="Timeout", category="transport", detail=text)
        if isinstance(exc, requests.exceptions.ConnectionError):
            if _is_dns_failure(exc):
                return RpsError(f"{server}: the name does not resolve in DNS.",
                                "Use the server's FQDN as registered in DNS (Get-ExchangeServer | fl Fqdn), or fix "
                                "this machine's DNS resolver.", server=server, error_id="DNS", category="transport",
                                detail=text)
            return RpsError(f"{server}: the connection to {url} was refused or broken.",
                            f"Check IIS (W3SVC) runs on {server} and port {s.target(server)[1]} is open from here.",
                            server=server, error_id="ConnectionRefused", category="transport", detail=text)
        if isinstance(exc, (ssl.SSLError,)):
            return RpsError(f"{server}: TLS failed at {url}.", "Check the certificate and the CA file.",
                            server=server, error_id="TLS", category="transport", detail=text)
        if isinstance(exc, (WinRMError, OSError, ValueError, ET.ParseError)):
            return RpsError(f"{server}: remote PowerShell failed while {what}: {type(exc).__name__}: {text}",
                            "Check the endpoint http://<fqdn>/PowerShell on that server and retry.",
                            server=server, error_id=type(exc).__name__, category="transport", detail=text)
        return RpsError(f"{server}: remote PowerShell failed while {what}: {type(exc).__name__}: {text}",
                        "Retry; if it persists, report it with this message.", server=server,
                        error_id=type(exc).__name__, category="transport", detail=text)


def _is_dns_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, socket.gaierror):
            return True
        if "NameResolutionError" in type(e).__name__ or "Name or service not known" in str(e) \
                or "nodename nor servname" in str(e) or "Failed to resolve" in str(e):
            return True
        e = e.__cause__ or e.__context__ or (e.args[0] if e.args and isinstance(e.args[0], BaseException) else None)
    return False


def rps_error_from_record(server: str, record: Any, cmdlet: str = "", secrets: list[Any] | None = None) -> RpsError:
    """An error record of the pipeline (pypsrp ErrorRecord) as an RpsError with a fix."""
    secrets = [x for x in (secrets or []) if isinstance(x, (Secret, str))]
    message = _record_message(record)
    error_id = str(getattr(record, "fq_error", "") or "")
    reason = str(getattr(record, "reason", "") or "")
    category = _category_name(getattr(record, "category", None), reason)
    message = redact(message, *secrets)
    if NO_LANGUAGE.lower() in message.lower():
        fix = ("Exchange's endpoint runs in no-language mode: send one cmdlet with parameters (a PSRP Command), "
               "never script text, variables or script blocks.")
    elif category == "PermissionDenied" or "isn't assigned to any management roles" in message \
            or "access denied" in message.lower():
        fix = ("The RBAC roles of this user do not allow it: an Organization Management admin assigns the "
               "needed role (Organization Configuration for the ASA cmdlets).")
    elif category == "ObjectNotFound" or "couldn't be found" in message:
        fix = "Check the identity: use the server's name or FQDN exactly as Get-ExchangeServer shows it."
    elif "is not recognized" in message or category == "CommandNotFound":
        fix = (f"{cmdlet or 'The command'} is not available to this user on this server: check the Exchange "
               "version and the user's RBAC roles.")
    else:
        fix = "Read the message from Exchange above; fix the cause on the server and retry."
    where = f"{cmdlet} on {server}" if cmdlet else server
    target = getattr(record, "target_name", None) or getattr(record, "target_object", None) or ""
    return RpsError(f"{where}: {message}", fix, server=server, error_id=error_id, category=category,
                    detail=redact(str(record), *secrets), target=str(target) if isinstance(target, str) else "")


def _record_message(record: Any) -> str:
    exc = getattr(record, "exception", None)
    msg = ""
    if exc is not None:
        props = getattr(exc, "adapted_properties", {}) or {}
        ext = getattr(exc, "extended_properties", {}) or {}
        msg = str(props.get("Message") or ext.get("Message") or "")
    if not msg:
        msg = str(getattr(record, "details_message", "") or getattr(record, "_to_string", "") or "")
    return msg or str(record)


_CATEGORIES = {0: "NotSpecified", 1: "OpenError", 2: "CloseError", 3: "DeviceError", 4: "DeadlockDetected",
               5: "InvalidArgument", 6: "InvalidData", 7: "InvalidOperation", 8: "InvalidResult", 9: "InvalidType",
               10: "MetadataError", 11: "NotImplemented", 12: "NotInstalled", 13: "ObjectNotFound",
               14: "OperationStopped", 15: "OperationTimeout", 16: "SyntaxError", 17: "ParserError",
               18: "PermissionDenied", 19: "ResourceBusy", 20: "ResourceExists", 21: "ResourceUnavailable",
               22: "ReadError", 23: "WriteError", 24: "FromStdErr", 25: "SecurityError", 26: "ProtocolError",
               27: "ConnectionError", 28: "AuthenticationError", 29: "LimitsExceeded", 30: "QuotaExceeded",
               31: "NotEnabled"}


def _category_name(value: Any, reason: str) -> str:
    try:
        return _CATEGORIES.get(int(value), "NotSpecified")
    except (TypeError, ValueError):
        return reason or "NotSpecified"


# --- values on the wire ---------------------------------------------------------------------------------
def _secrets_in(value: Any) -> list[Secret]:
    if isinstance(value, PsCredential):
        return [value.password] if value.password is not None else []
    if isinstance(value, Secret):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _secrets_in(v)]
    return []


def _to_wire(value: Any) -> Any:
    """A parameter value -> what pypsrp serializes (PsCredential -> PSCredential, its password a SecureString
    encrypted with the pool's session key)."""
    if isinstance(value, PsCredential):
        if value.password is None:
            raise RpsError(f"The credential of {value.user} has no password to send.",
                           "Read it with -IncludeAlternateServiceAccountCredentialPassword through a session on the "
                           "server that holds it, or generate a new one.")
        return _PypsrpCredential(username=value.user, password=value.password.reveal())
    if isinstance(value, Secret):
        raise RpsError("A bare secret cannot be sent as a parameter value.", "Wrap it in a PsCredential.")
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    raise RpsError(f"A parameter value of type {type(value).__name__} cannot be sent.",
                   "Use str, int, bool, list[str], PsCredential or list[PsCredential].")


def _command_metadata(pool: RunspacePool, cmdlets: list[str]) -> list[dict[str, Any]]:
    """MS-PSRP GetCommandMetadata, as pypsrp's `RunspacePool.get_command_metadata` sends it, each CommandMetadata
    read from its CLIXML like pipeline output (a dict of its properties: Name, Parameters as a dict by name)
    instead of through pypsrp's serializer, which builds an object for every parameter's metadata."""
    from pypsrp.complex_objects import CommandType
    from pypsrp.messages import GetCommandMetadata

    ps = PowerShell(pool)
    ps._invoke(GetCommandMetadata(cmdlets, CommandType.ALL, None, None))
    output = ps.end_invoke()
    # the first object is the count of those that follow
    return [d for d in (_from_wire(o, pool) for o in output[1:]) if isinstance(d, dict)]


def _from_wire(obj: Any, pool: RunspacePool) -> Any:
    """One pipeline output -> dict of property name -> value (recursively), from the object's CLIXML."""
    if isinstance(obj, ComplexObject) and getattr(obj, "_xml", None):
        return _Clixml(pool).value(ET.fromstring(obj._xml))
    return obj


class _Clixml:
    """CLIXML -> Python: objects become dicts of their properties, PSCredential -> PsCredential, SecureString ->
    Secret (decrypted with the pool's session key), DateTime -> aware UTC datetime."""

    def __init__(self, pool: RunspacePool) -> None:
        self.serializer = pool._serializer  # holds the session-key cipher once the key is exchanged
        self.refs: dict[str, Any] = {}
        self.tn: dict[str, list[str]] = {}

    def value(self, el: ET.Element) -> Any:
        tag = el.tag
        text = el.text or ""
        if tag in ("S", "URI", "XD", "SBK", "Version", "G"):
            return self.serializer._deserialize_string(el.text)
        if tag == "C":
            return chr(int(text))
        if tag == "B":
            return text.strip().lower() == "true"
        if tag in ("By", "SB", "U16", "I16", "U32", "I32", "U64", "I64"):
            return int(text)
        if tag in ("Sg", "Db", "D"):
            return float(text)
        if tag == "DT":
            return _datetime(text)
        if tag == "TS":
            return text
        if tag == "Nil":
            return None
        if tag == "BA":
            import base64

            return base64.b64decode(text)
        if tag == "SS":
            if self.serializer.cipher is None:
                raise _NeedsKey()
            return Secret(self.serializer._deserialize_secure_string(el))
        if tag == "Ref":
            return self.refs.get(el.get("RefId", ""))
        if tag == "Obj":
            return self._obj(el)
        return text

    def _types(self, el: ET.Element) -> list[str]:
        tn = el.find("TN")
        if tn is not None:
            names = [t.text or "" for t in tn.findall("T")]
            self.tn[tn.get("RefId", "")] = names
            return names
        ref = el.find("TNRef")
        return self.tn.get(ref.get("RefId", ""), []) if ref is not None else []

    def _obj(self, el: ET.Element) -> Any:
        types = [t[len("Deserialized."):] if t.startswith("Deserialized.") else t for t in self._types(el)]
        rid = el.get("RefId", "")
        for kind in ("LST", "IE", "QUE", "STK"):
            items = el.find(kind)
            if items is not None:
                out: list[Any] = []
                self.refs[rid] = out
                out.extend(self.value(i) for i in items)
                return out
        dct = el.find("DCT")
        if dct is not None:
            d: dict[Any, Any] = {}
            self.refs[rid] = d
            for en in dct.findall("En"):
                k, v = en.find("*[@N='Key']"), en.find("*[@N='Value']")
                d[self.value(k) if k is not None else None] = self.value(v) if v is not None else None
            return d
        props: dict[str, Any] = {}
        for section in ("Props", "MS"):
            sec = el.find(section)
            if sec is not None:
                for child in sec:
                    if child.get("N"):
                        props[child.get("N", "")] = self.value(child)
        if "System.Management.Automation.PSCredential" in types:
            password = props.get("Password")
            cred = PsCredential(str(props.get("UserName") or ""), password if isinstance(password, Secret) else None)
            self.refs[rid] = cred
            return cred
        if not props:
            primitive = [c for c in el if c.tag not in ("TN", "TNRef", "ToString", "Props", "MS")]
            if primitive:  # an enum or a boxed primitive: its ToString is what PowerShell shows
                ts = el.findtext("ToString")
                value = ts if ts is not None else self.value(primitive[0])
                self.refs[rid] = value
                return value
            ts = el.findtext("ToString")
            if ts is not None:
                self.refs[rid] = ts
                return ts
        self.refs[rid] = props
        return props


def _datetime(text: str) -> datetime:
    """A CLIXML DateTime (7 fraction digits, Z / offset / none) -> aware UTC datetime."""
    t = text.strip()
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", t)
    if not m:
        raise RpsError(f"Exchange returned a date that cannot be read: {t!r}.", "Report this with the server version.")
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = m.group(3) or "Z"
    dt = datetime.fromisoformat(f"{m.group(1)}.{frac}{'+00:00' if zone == 'Z' else zone}")
    return dt.astimezone(timezone.utc)
