"""Connecting to a domain controller: the settings, TLS (certificates validated unless the user opted out, a
password never sent without encryption), the bind (simple, Kerberos, NTLM), one connection per directory under
a lock, the paged search and the write every other module uses, and the rootDSE."""

from __future__ import annotations

import copy
import math
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from ldap3 import BASE, DSA, KERBEROS, NTLM, SASL, SIMPLE, SUBTREE, SYNC, Connection, Server, Tls
from ldap3.core import exceptions as lx

from ...core.errors import WizardError
from ...core.secrets import Secret
from .. import ldap_errors as le
from ..ldap_errors import InsecureConnection, InvalidInput
from .values import PAGED_OID, RECENT_SECONDS, Row

MODES = {"ldaps": 636, "starttls": 389, "plain": 389}
BINDS = ("simple", "kerberos", "ntlm")


@dataclass
class LdapSettings:
    """How to reach and log on to a domain controller.

    mode: "ldaps" (636, the default), "starttls" (389, TLS negotiated before the bind) or "plain" (389
    without TLS: only a Kerberos bind is attempted on it, and no password is ever written over it).
    bind: "simple" (user as user@domain, DOMAIN\\user or a DN), "kerberos" (SASL GSSAPI with the current
    ticket cache, KRB5CCNAME), "ntlm" (DOMAIN\\user; many DCs refuse it).
    """

    host: str
    port: int | None = None  # default from the mode
    mode: str = "ldaps"
    bind: str = "simple"
    user: str = ""
    password: Secret | None = None
    ca_file: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_name: str | None = None  # the name on the DC's certificate, when `host` is an address
    connect_timeout: float = 5.0
    receive_timeout: float = 15.0
    use_global_catalog: bool = False  # forest-wide SPN lookups through the GC (3269 with TLS, 3268 StartTLS)
    gc_host: str | None = None  # default: host
    sasl_host: str | None = None  # the DC's DNS name for its ldap/ SPN (Kerberos); default: host
    base_dn: str | None = None  # default: the rootDSE's defaultNamingContext
    page_size: int = 500

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"Unknown connection mode {self.mode!r}.", "Use ldaps (636) or starttls (389).")
        if self.bind not in BINDS:
            raise InvalidInput(f"Unknown bind method {self.bind!r}.", "Use simple, kerberos or ntlm.")
        if self.password is not None and not isinstance(self.password, Secret):
            raise TypeError("LdapSettings.password must be a Secret")

    @property
    def effective_port(self) -> int:
        return self.port or MODES[self.mode]

    @property
    def gc_port(self) -> int:
        return 3269 if self.mode == "ldaps" else 3268

    def __repr__(self) -> str:  # the dataclass repr would be safe (Secret masks itself); keep it short
        return f"LdapSettings(host={self.host!r}, mode={self.mode!r}, bind={self.bind!r}, user={self.user!r})"


def check_ca_file(path: str) -> None:
    """The CA file must exist and hold a PEM certificate: said before any connection is tried."""
    from pathlib import Path

    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidInput(f"The CA file {path} does not exist{' (it is a folder)' if p.is_dir() else ''}.",
                           "Give the path of the PEM file of the CA that issued the DC's certificate "
                           "(--ca-file / ca_file); export it with certutil -ca.cert ca.cer and convert it with "
                           "openssl x509 -inform der -in ca.cer -out ca.pem.")
    try:
        ssl.create_default_context(cafile=str(p))
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise InvalidInput(f"The CA file {path} is not a PEM certificate ({exc}).",
                           "Give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----); a DER file converts "
                           "with openssl x509 -inform der -in ca.cer -out ca.pem.") from None


class LdapConnection:
    """One directory's connections (the DC and, when used, a global catalog), opened, bound and re-opened under
    one lock; the paged search, the write with its error translation, the short-lived read cache, the rootDSE."""

    def __init__(self, settings: LdapSettings, *, server: Server | None = None, gc_server: Server | None = None,
                 client_strategy: str = SYNC, connection_hook: Callable[[Connection], None] | None = None,
                 label: str | None = None) -> None:
        self.settings = settings
        self._strategy = client_strategy
        self._hook = connection_hook
        self._label = label
        self._server = server or self._make_server(settings.host, settings.effective_port, settings.mode == "ldaps")
        self._gc_server = gc_server
        if gc_server is None and settings.use_global_catalog:
            self._gc_server = self._make_server(settings.gc_host or settings.host, settings.gc_port,
                                                settings.mode == "ldaps")
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._gc_conn: Connection | None = None
        self._root: dict[str, list[str]] | None = None
        self._tree_roots: list[str] | None = None
        self._gc_failed: str | None = None  # why the global catalog could not be used (lookups fell back)
        # Reads repeated within one discovery pass (seconds apart) are served from here; any write
        # through this adapter clears it. Changes always re-read their object (`_reread`), never from here.
        self._recent: dict[str, tuple[float, object]] = {}

    @classmethod
    def from_server(cls, server: Server, settings: LdapSettings, *, gc_server: Server | None = None,
                    client_strategy: str = SYNC, connection_hook: Callable[[Connection], None] | None = None,
                    label: str | None = None) -> Self:
        """Use an ldap3 `Server` built elsewhere (the lab's MOCK_SYNC server) with the same code path."""
        return cls(settings, server=server, gc_server=gc_server, client_strategy=client_strategy,
                   connection_hook=connection_hook, label=label)

    # --- connection ------------------------------------------------------------------------------------
    def _make_server(self, host: str, port: int, use_ssl: bool) -> Server:
        s = self.settings
        if s.ca_file and not s.insecure_skip_tls_verify:
            check_ca_file(s.ca_file)
        tls = Tls(
            validate=ssl.CERT_NONE if s.insecure_skip_tls_verify else ssl.CERT_REQUIRED,
            ca_certs_file=s.ca_file,
            valid_names=[s.tls_name] if s.tls_name else None,
        )
        return Server(host, port=port, use_ssl=use_ssl, tls=tls, get_info=DSA, connect_timeout=s.connect_timeout)

    def _where(self, server: Server | None = None) -> str:
        server = server or self._server
        return f"{server.host}:{server.port}"

    def _secrets(self) -> tuple[Secret | None, ...]:
        return (self.settings.password,)

    def _encrypted(self, conn: Connection) -> bool:
        return bool(conn.server.ssl or conn.tls_started)

    def _open(self, server: Server) -> Connection:
        s = self.settings
        where = self._where(server)
        if s.bind in ("simple", "ntlm") and s.mode == "plain":
            raise InsecureConnection(
                f"Refusing a {s.bind} bind to {where} without TLS: the password would cross the network "
                "unprotected. Nothing was sent.",
                "Use mode ldaps (636) or starttls (389), or a Kerberos bind.")
        kwargs: dict = dict(client_strategy=self._strategy, raise_exceptions=False, auto_referrals=False,
                            # ldap3 packs it into SO_RCVTIMEO as a whole number of seconds
                            receive_timeout=max(1, math.ceil(s.receive_timeout)), return_empty_attributes=False, read_only=False)
        if s.bind == "kerberos":
            kwargs.update(authentication=SASL, sasl_mechanism=KERBEROS,
                          sasl_credentials=(s.sasl_host or s.tls_name or server.host,))
        else:
            if not s.user or not s.password:
                raise le.AuthenticationFailed(f"No user name or password for the {s.bind} bind to {where}.",
                                              "Give both, or use a Kerberos bind with a ticket (kinit).")
            kwargs.update(user=s.user, password=s.password.reveal(), authentication=SIMPLE if s.bind == "simple" else NTLM)
        conn = Connection(server, **kwargs)
        try:
            if self._hook is not None:
                self._hook(conn)
            conn.open()
            if s.mode == "starttls" and server.port != 636 and not conn.start_tls():
                raise le.ConnectionFailed(f"StartTLS on {where} was refused ({conn.result.get('description')}).",
                                          "Use LDAPS (636), or give the DC a certificate for LDAP.")
            if s.bind in ("simple", "ntlm") and not self._encrypted(conn):
                raise InsecureConnection(f"Refusing to send the password to {where}: the connection is not encrypted. "
                                         "Nothing was sent.", "Use mode ldaps or starttls.")
            if not conn.bind():
                raise le.translate_result(conn.result, operation="log on", where=where, secrets=self._secrets())
        except WizardError:
            self._discard(conn)
            raise
        except Exception as exc:  # ldap3, ssl, socket, gssapi: translated for a person
            self._discard(conn)
            if s.bind == "ntlm" and isinstance(exc, lx.LDAPSessionTerminatedByServerError):
                raise le.AuthenticationFailed(
                    f"{where} closed the connection during the NTLM bind: it does not accept NTLM here.",
                    "Use a Kerberos bind (kinit first) or a simple bind over TLS. Samba never accepts NTLM "
                    "over LDAP; Windows DCs that enforce LDAP channel binding refuse this tool's NTLM.",
                    detail=le.redact(str(exc), *self._secrets())) from None
            if isinstance(exc, lx.LDAPSocketOpenError) and ("invalid server address" in str(exc).lower()
                                                             or "name or service" in str(exc).lower()):
                why = le.dns_failure(server.host)
                if why:
                    raise le.ConnectionFailed(
                        f"The name {server.host} does not resolve (DNS: {why}).",
                        "Check the spelling and that this machine uses a DNS server that knows the domain's names; "
                        "or connect by address (--dc 10.0.0.10) and give the name on the DC's certificate as "
                        "--dc-tls-name.", detail=le.redact(str(exc), *self._secrets())) from None
            raise le.translate_exception(exc, operation="connect and log on", where=where,
                                         secrets=self._secrets()) from None
        finally:
            conn.password = None  # ldap3 keeps it for re-binds and shows it in repr(); we never re-bind
        return conn

    @staticmethod
    def _discard(conn: Connection) -> None:
        try:
            conn.unbind()
        except Exception:  # closing a broken socket: nothing useful to report
            pass

    def _connection(self, gc: bool = False) -> Connection:
        if gc and self._gc_server is not None:
            if self._gc_conn is None or self._gc_conn.closed:
                self._gc_conn = self._open(self._gc_server)
            return self._gc_conn
        if self._conn is None or self._conn.closed:
            self._conn = self._open(self._server)
        return self._conn

    def connect(self) -> None:
        """Open and bind now (the UI's 'Test connection'); later calls reuse the connection."""
        with self._lock:
            self._connection()

    def close(self) -> None:
        with self._lock:
            for c in (self._conn, self._gc_conn):
                if c is not None:
                    self._discard(c)
            self._conn = self._gc_conn = None

    def describe(self) -> str:
        if self._label:
            return self._label
        s = self.settings
        if s.mode == "ldaps":
            chan = f"LDAPS {self._server.port}"
        elif s.mode == "starttls":
            chan = f"StartTLS {self._server.port}"
        else:
            chan = f"LDAP {self._server.port} without TLS"
        if s.mode != "plain":
            chan += ", certificate NOT validated" if s.insecure_skip_tls_verify else ", certificate validated"
        gc = ", global catalog" if self._gc_server is not None else ""
        return f"{self._server.host} ({chan}, {s.bind} bind{gc})"

    # --- low-level read/write --------------------------------------------------------------------------
    def _search(self, base: str, flt: str, attrs: list[str], scope=SUBTREE, *, gc: bool = False,
                what: str = "read the directory", missing_ok: bool = False) -> list[Row]:
        with self._lock:
            conn = self._connection(gc)
            rows: list[Row] = []
            cookie: bytes | None = None
            while True:
                try:
                    conn.search(base, flt, scope, attributes=attrs,
                                paged_size=None if scope == BASE else self.settings.page_size, paged_cookie=cookie,
                                time_limit=int(self.settings.receive_timeout))
                except Exception as exc:
                    self._reset(gc)
                    raise le.translate_exception(exc, operation=what, where=self._where(conn.server)) from None
                res = conn.result or {}
                code = res.get("result", 0)
                if code == le.NO_SUCH_OBJECT and missing_ok:
                    return []
                if code != le.SUCCESS:
                    raise le.translate_result(res, operation=what, target=base, where=self._where(conn.server))
                for e in conn.response or []:
                    if e.get("type") == "searchResEntry":
                        raw = e.get("raw_attributes") or {}
                        rows.append(Row(e["dn"], {k.lower(): list(v) for k, v in raw.items()}))
                cookie = (((res.get("controls") or {}).get(PAGED_OID) or {}).get("value") or {}).get("cookie")
                if not cookie:
                    return rows

    def _reset(self, gc: bool) -> None:
        """After a socket failure the connection is unusable: drop it so the next call reconnects."""
        if gc and self._gc_conn is not None:
            self._discard(self._gc_conn)
            self._gc_conn = None
        elif not gc and self._conn is not None:
            self._discard(self._conn)
            self._conn = None

    def _write(self, call: str, dn: str, *args, what: str, target: str | None = None, **kwargs) -> dict:
        """Run add/modify/delete; returns the result (success or not) for the caller to judge."""
        with self._lock:
            conn = self._connection()
            try:
                getattr(conn, call)(dn, *args, **kwargs)
            except lx.LDAPAttributeError as exc:
                raise InvalidInput(f"The directory schema has no attribute for this change ({exc}).",
                                   "Check that the forest's schema has the attribute.") from None
            except Exception as exc:
                self._reset(False)
                raise le.translate_exception(exc, operation=what, where=self._where()) from None
            finally:
                conn.request = None  # ldap3 keeps the last request (a password too) on the connection
                self._recent.clear()
            return dict(conn.result or {})

    def _remember(self, key: str, value):
        with self._lock:
            self._recent[key] = (time.monotonic(), copy.deepcopy(value))
        return value

    def _recall(self, key: str):
        with self._lock:
            hit = self._recent.get(key)
            if hit is None or time.monotonic() - hit[0] > RECENT_SECONDS:
                return None
            return copy.deepcopy(hit[1])

    def _check(self, result: dict, *, what: str, target: str) -> None:
        if result.get("result", 0) != le.SUCCESS:
            raise le.translate_result(result, operation=what, target=target, where=self._where(),
                                      secrets=self._secrets())

    # --- rootDSE and naming contexts -------------------------------------------------------------------
    def _rootdse(self) -> dict[str, list[str]]:
        """The rootDSE as ldap3 read it at bind time (get_info=DSA; the lab attaches its own)."""
        with self._lock:
            if self._root is None:
                self._connection()
                info = self._server.info
                other = {k.lower(): [str(x) for x in (v if isinstance(v, (list, tuple)) else [v])]
                         for k, v in ((info.other if info else {}) or {}).items()}
                if info is not None and info.naming_contexts:
                    other.setdefault("namingcontexts", [str(x) for x in info.naming_contexts])
                self._root = other
            return self._root

    def _root1(self, name: str) -> str | None:
        vals = self._rootdse().get(name.lower()) or []
        return vals[0] if vals else None

    @property
    def base_dn(self) -> str:
        base = self.settings.base_dn or self._root1("defaultNamingContext")
        if not base:
            raise le.ConnectionFailed(f"{self._where()} did not tell its default naming context (no rootDSE).",
                                      "Set base_dn (DC=example,DC=com) in the connection settings.")
        return base

    @property
    def configuration_dn(self) -> str:
        return self._root1("configurationNamingContext") or f"CN=Configuration,{self._forest_root_dn()}"

    def _forest_root_dn(self) -> str:
        return self._root1("rootDomainNamingContext") or self.base_dn

