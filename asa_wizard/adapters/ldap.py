"""Active Directory over LDAP (ldap3): the wizard's `DirectoryPort`.

One class for every directory the wizard talks to: a real domain controller (LDAPS or StartTLS, simple,
Kerberos or NTLM bind) and the training lab (ldap3's MOCK_SYNC server built by `asa_wizard.lab.directory`).
The lab goes through `LdapDirectory.from_server`, which skips only the socket: every search, filter,
modify and error translation below runs the same way in both.

Rules this module keeps:
- a password never travels without TLS: a simple or NTLM bind and a `unicodePwd` write are refused before
  anything is sent when the channel is not encrypted;
- certificates are validated unless the user opted out explicitly (`insecure_skip_tls_verify`);
- every filter value is escaped (`escape_filter_chars`), every DN component too (`escape_rdn`);
- searches are paged, referrals are not chased (`auto_referrals=False`), sockets have timeouts;
- one connection per directory, used under a lock: the UI calls from worker threads;
- each change re-reads its object first and gives back what undo needs.
"""

from __future__ import annotations

import copy
import math
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

from ldap3 import (
    BASE,
    DSA,
    KERBEROS,
    LEVEL,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NTLM,
    SASL,
    SIMPLE,
    SUBTREE,
    SYNC,
    Connection,
    Server,
    Tls,
)
from ldap3.core import exceptions as lx
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from ..core.errors import NotFound, PolicyRefused, SpnConflict, StaleObject, WizardError
from ..core.model import (
    Account,
    AccountKind,
    Domain,
    ExchangeServer,
    Forest,
    Service,
    UAC_DONT_EXPIRE_PASSWD,
    UAC_NORMAL_ACCOUNT,
    UAC_SERVER_TRUST_ACCOUNT,
    UAC_TRUSTED_FOR_DELEGATION,
    UAC_WORKSTATION_TRUST_ACCOUNT,
    VirtualDirectory,
    auth_flag_names,
    derive_namespaces,
    role_names,
)
from ..core.passwords import generate_password, meets_complexity
from ..core.ports import CreatedAccount
from ..core.secrets import Secret
from . import ldap_errors as le
from .ldap_errors import InsecureConnection, InvalidInput

AUTODISCOVER_KEYWORD = "77378F46-2C66-4aa9-A6A6-3E7A48B19596"
PAGED_OID = "1.2.840.113556.1.4.319"
ACCOUNT_ATTRS = [
    "objectClass", "sAMAccountName", "userAccountControl", "servicePrincipalName",
    "msDS-SupportedEncryptionTypes", "pwdLastSet", "msDS-KeyVersionNumber", "msDS-AllowedToDelegateTo",
    "userPrincipalName", "memberOf", "description",
]
# Object classes of the Exchange virtual directories that carry client namespaces.
VDIR_CLASSES = {
    "msexchrpchttpvirtualdirectory": Service.OUTLOOK_ANYWHERE,
    "msexchmapivirtualdirectory": Service.MAPI,
    "msexchmobilevirtualdirectory": Service.EAS,
    "msexchwebservicesvirtualdirectory": Service.EWS,
    "msexchowavirtualdirectory": Service.OWA,
}
VDIR_CLASS_NAMES = {
    "msexchrpchttpvirtualdirectory": "msExchRpcHttpVirtualDirectory",
    "msexchmapivirtualdirectory": "msExchMapiVirtualDirectory",
    "msexchmobilevirtualdirectory": "msExchMobileVirtualDirectory",
    "msexchwebservicesvirtualdirectory": "msExchWebServicesVirtualDirectory",
    "msexchowavirtualdirectory": "msExchOWAVirtualDirectory",
}
ALLOWED_ENCTYPES = (24, 28)
RECENT_SECONDS = 10.0
SAM_FORBIDDEN = set('"/\\[]:;|=,+*?<>@')
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
FILETIME_NEVER = 0x7FFFFFFFFFFFFFFF
MODES = {"ldaps": 636, "starttls": 389, "plain": 389}
BINDS = ("simple", "kerberos", "ntlm")
_UNSET = object()


# ------------------------------------------------------------------------------------------------------
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


@dataclass
class _Row:
    dn: str
    attrs: dict[str, list[bytes]]  # lower-cased attribute name -> raw values

    def strs(self, name: str) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.attrs.get(name.lower(), [])]

    def str(self, name: str) -> str | None:
        vals = self.strs(name)
        return vals[0] if vals else None

    def int(self, name: str) -> int | None:
        v = self.str(name)
        try:
            return int(v) if v is not None else None
        except ValueError:
            return None


def filetime_to_datetime(value: int | None) -> datetime | None:
    """pwdLastSet: 100 ns intervals since 1601-01-01 UTC; 0 means 'must change', max means 'never'."""
    if not value or value >= FILETIME_NEVER:
        return None
    return FILETIME_EPOCH + timedelta(microseconds=value // 10)


def datetime_to_filetime(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = when - FILETIME_EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


_RDN_RE = re.compile(r"\s*([A-Za-z][\w-]*|[\d.]+)\s*=((?:[^,+\\]|\\.)*)")
_PROTOCOLS_RE = re.compile(r"(?:^|,)\s*CN=Protocols\s*,\s*CN=((?:[^,+\\]|\\.)*)", re.IGNORECASE)
_UNESCAPE_RE = re.compile(r"\\([0-9a-fA-F]{2}|.)")


def _unescape(value: str) -> str:
    return _UNESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)) if len(m.group(1)) == 2 else m.group(1),
                            value).strip()


def rdn_value(dn: str) -> str:
    """The value of a DN's first RDN, unescaped. (A regular expression: ldap3's parse_dn is slow enough to
    show in a 200-server discovery.)"""
    m = _RDN_RE.match(dn)
    return _unescape(m.group(2)) if m else dn


def server_of_dn(dn: str) -> str | None:
    """The Exchange server a configuration object belongs to: the RDN right after CN=Protocols."""
    m = _PROTOCOLS_RE.search(dn)
    return _unescape(m.group(1)) if m else None


def validate_dn(dn: str, what: str = "distinguished name") -> str:
    """Reject DNs that cannot be right before they reach a filter or a request."""
    if not isinstance(dn, str) or not dn.strip() or "\x00" in dn or any(ord(c) < 32 for c in dn):
        raise InvalidInput(f"The {what} {dn!r} is not valid: it is empty or holds control characters.",
                           "Pick the object again from the directory (copy its distinguishedName).")
    try:
        parse_dn(dn)
    except (lx.LDAPInvalidDnError, ValueError, IndexError):
        raise InvalidInput(f"The {what} {dn!r} is not a valid LDAP DN.",
                           "Write it as CN=Name,OU=Unit,DC=example,DC=com; escape , + \" \\ < > ; = with a backslash.") from None
    return dn


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


def validate_sam(sam: str, kind: AccountKind) -> None:
    bad = sorted({c for c in sam if c in SAM_FORBIDDEN or ord(c) < 32})
    if not sam or len(sam) > 20 or bad or sam.strip(" .") != sam:
        shown = ", ".join(repr(c) for c in bad) if bad else "its length or leading/trailing dots or spaces"
        raise InvalidInput(f"{sam!r} cannot be a sAMAccountName ({shown}).",
                           "Use up to 20 letters, digits, '-' or '_' (a computer account ends in $).")
    if kind == AccountKind.COMPUTER and (not sam.endswith("$") or len(sam) > 16):
        raise InvalidInput(f"A computer account's sAMAccountName must end in $ and have at most 15 characters "
                           f"before it: {sam!r}.", f"Use for example {sam.rstrip('$')[:15].upper()}$.")
    if kind == AccountKind.USER and sam.endswith("$"):
        raise InvalidInput(f"{sam!r} ends in $, which marks a computer account.", "Drop the $ or create a computer ASA.")


def validate_spn(spn: str) -> str:
    if not isinstance(spn, str) or "/" not in spn or any(ord(c) < 32 for c in spn) or \
            any(c in spn for c in "()*\\ ") or spn.startswith("/") or spn.endswith("/"):
        raise InvalidInput(f"{spn!r} is not a valid service principal name.",
                           "Write it as class/host[:port], for example HTTP/mail.contoso.com.")
    return spn


def _tree_roots(dns: list[str]) -> list[str]:
    return [d for d in dns if not any(o != d and d.lower().endswith("," + o.lower()) for o in dns)]


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# ------------------------------------------------------------------------------------------------------
class LdapDirectory:
    """`DirectoryPort` over ldap3. Build with `LdapDirectory(settings)` for a DC, or `from_server(...)`."""

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
                    label: str | None = None) -> "LdapDirectory":
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
                what: str = "read the directory", missing_ok: bool = False) -> list[_Row]:
        with self._lock:
            conn = self._connection(gc)
            rows: list[_Row] = []
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
                        rows.append(_Row(e["dn"], {k.lower(): list(v) for k, v in raw.items()}))
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

    # --- discovery -------------------------------------------------------------------------------------
    def read_forest(self) -> Forest:
        conf = self.configuration_dn
        rows = self._search(f"CN=Partitions,{conf}", "(&(objectClass=crossRef)(nETBIOSName=*))",
                            ["dnsRoot", "nETBIOSName", "nCName"], LEVEL, what="read the domains of the forest",
                            missing_ok=True)
        domains = [Domain(dns_name=(r.str("dnsRoot") or "").lower(), netbios_name=r.str("nETBIOSName") or "",
                          dn=r.str("nCName") or "") for r in rows]
        root_dn = self._forest_root_dn()
        root = next((d for d in domains if d.dn.lower() == root_dn.lower()), None)
        with self._lock:  # the GC searches need the tree roots: from these domains, not a second read_forest
            if self._tree_roots is None:
                self._tree_roots = _tree_roots([d.dn for d in domains if d.dn] or [root_dn])
        sites = [r.str("cn") or rdn_value(r.dn) for r in
                 self._search(f"CN=Sites,{conf}", "(objectClass=site)", ["cn"], LEVEL, what="read the sites",
                              missing_ok=True)]
        return Forest(
            root_domain=root.dns_name if root else _dns_of_dn(root_dn),
            domains=domains,
            sites=sorted(sites, key=str.lower),
            forest_functional_level=_int(self._root1("forestFunctionality")),
            domain_functional_level=_int(self._root1("domainFunctionality")),
            dc_host_name=self._root1("dnsHostName"),
            configuration_nc=conf,
            schema_nc=self._root1("schemaNamingContext"),
            exchange_organization=self._exchange_organization(),
        )

    def _exchange_organization(self) -> str | None:
        rows = self._search(f"CN=Microsoft Exchange,CN=Services,{self.configuration_dn}",
                            "(objectClass=msExchOrganizationContainer)", ["cn"], LEVEL,
                            what="read the Exchange organisation", missing_ok=True)
        if rows:
            return rows[0].str("cn") or rdn_value(rows[0].dn)
        # Some forests (and schema-less test DCs) hold the organisation as a plain container: the server
        # objects' DNs still name it (CN=<server>,CN=Servers,CN=<group>,CN=Administrative Groups,CN=<org>,...).
        for server in self.exchange_servers():
            parts = parse_dn(server.dn or "", escape=False)
            for i, (attr, value, _sep) in enumerate(parts[:-1]):
                if attr.lower() == "cn" and value.lower() == "administrative groups":
                    return parts[i + 1][1]
        return None

    def exchange_servers(self) -> list[ExchangeServer]:
        rows = self._search(self.configuration_dn, "(objectClass=msExchExchangeServer)",
                            ["cn", "serialNumber", "networkAddress", "msExchCurrentServerRoles", "msExchServerSite"],
                            what="read the Exchange servers")
        out = []
        for r in rows:
            name = r.str("cn") or rdn_value(r.dn)
            fqdn = next((a.split(":", 1)[1] for a in r.strs("networkAddress")
                         if a.lower().startswith("ncacn_ip_tcp:")), "") or name
            site_dn = r.str("msExchServerSite")
            out.append(ExchangeServer(
                name=name, fqdn=fqdn.lower(), version=r.str("serialNumber") or "",
                roles=role_names(r.int("msExchCurrentServerRoles") or 0),
                site=rdn_value(site_dn) if site_dn else "", dn=r.dn))
        out.sort(key=lambda s: s.name.lower())
        self._remember("servers", out)
        self._prefetch_accounts([f"{s.name}$" for s in out])  # discovery reads each server's account next
        return out

    def _prefetch_accounts(self, sams: list[str]) -> None:
        for chunk in _chunks(sams, 50):
            flt = "(&(objectClass=user)(|" + "".join(f"(sAMAccountName={escape_filter_chars(s)})" for s in chunk) + "))"
            for a in self._accounts(flt, what="read the Exchange servers' computer accounts"):
                self._remember(f"sam:{a.sam.lower()}", a)

    def virtual_directories(self) -> list[VirtualDirectory]:
        flt = "(|" + "".join(f"(objectClass={escape_filter_chars(c)})" for c in VDIR_CLASS_NAMES.values()) + ")"
        try:
            rows = self._search(self.configuration_dn, flt,
                                ["objectClass", "msExchInternalHostName", "msExchExternalHostName",
                                 "msExchInternalAuthenticationMethods"], what="read the virtual directories")
        except PolicyRefused:  # schema without the Exchange virtual directory classes
            return []
        out = []
        for r in rows:
            classes = {c.lower() for c in r.strs("objectClass")}
            service = next((VDIR_CLASSES[c] for c in classes if c in VDIR_CLASSES), None)
            server = server_of_dn(r.dn)
            if service is None or server is None:
                continue
            out.append(VirtualDirectory(
                server=server, service=service, internal_host=_host_of(r.str("msExchInternalHostName")),
                external_host=_host_of(r.str("msExchExternalHostName")),
                auth_methods=auth_flag_names(r.int("msExchInternalAuthenticationMethods") or 0)))
        out.sort(key=lambda v: (v.server.lower(), v.service.value))
        return self._remember("vdirs", out)

    def autodiscover_scps(self) -> dict[str, str]:
        flt = f"(&(objectClass=serviceConnectionPoint)(keywords={escape_filter_chars(AUTODISCOVER_KEYWORD)}))"
        rows = self._search(self.configuration_dn, flt, ["cn", "serviceBindingInformation"],
                            what="read the Autodiscover service connection points")
        out: dict[str, str] = {}
        for r in rows:
            url = next((u for u in r.strs("serviceBindingInformation") if u.lower().startswith("http")), None)
            if url:
                out[r.str("cn") or rdn_value(r.dn)] = url
        return self._remember("scps", dict(sorted(out.items(), key=lambda kv: kv[0].lower())))

    # --- accounts --------------------------------------------------------------------------------------
    def _account(self, r: _Row) -> Account:
        classes = {c.lower() for c in r.strs("objectClass")}
        kind = AccountKind.from_object_classes(classes)
        return Account(
            dn=r.dn, sam=r.str("sAMAccountName") or rdn_value(r.dn), kind=kind, uac=r.int("userAccountControl") or 0,
            spns=r.strs("servicePrincipalName"), enctypes=r.int("msDS-SupportedEncryptionTypes"),
            pwd_last_set=filetime_to_datetime(r.int("pwdLastSet")), key_version=r.int("msDS-KeyVersionNumber"),
            delegate_to=r.strs("msDS-AllowedToDelegateTo"), upn=r.str("userPrincipalName"),
            member_of=r.strs("memberOf"), description=r.str("description"))

    def _accounts(self, flt: str, *, base: str | None = None, gc: bool = False, what: str) -> list[Account]:
        return [self._account(r) for r in self._search(base if base is not None else self.base_dn, flt,
                                                       ACCOUNT_ATTRS, gc=gc, what=what)]

    def _forest_accounts(self, flt: str, what: str) -> list[Account]:
        """Forest-wide through the GC when configured (then re-read full attributes of the accounts of
        our own domain from the DC: the GC holds only a partial set, without the encryption types). When the
        GC cannot be reached the lookup falls back to this domain, and `spn_lookup_scope` says so."""
        if self._gc_server is None or self._gc_failed is not None:
            return self._accounts(flt, what=what)
        try:
            partial = [a for b in self._gc_bases() for a in self._accounts(flt, base=b, gc=True, what=what)]
        except (le.ConnectionFailed, le.OperationTimeout) as exc:
            if isinstance(exc, InsecureConnection):
                raise
            with self._lock:
                self._gc_failed = exc.problem
                self._reset(True)
            return self._accounts(flt, what=what)
        base = self.base_dn.lower()
        local = [a.dn for a in partial if a.dn.lower().endswith(base)]
        full = {a.dn.lower(): a for a in self._by_dns(local, what)}
        return [full.get(a.dn.lower(), a) for a in partial]

    def _gc_bases(self) -> list[str]:
        """The roots of the forest's domain trees: a GC search under each covers every domain."""
        with self._lock:
            if self._tree_roots is None:
                self._tree_roots = _tree_roots([d.dn for d in self.read_forest().domains if d.dn]
                                               or [self._forest_root_dn()])
            return self._tree_roots

    def _by_dns(self, dns: list[str], what: str) -> list[Account]:
        out: list[Account] = []
        for chunk in _chunks(dns, 50):
            flt = "(|" + "".join(f"(distinguishedName={escape_filter_chars(d)})" for d in chunk) + ")"
            out += self._accounts(flt, what=what)
        return out

    def spn_lookup_scope(self) -> str:
        """For the evidence: how the SPN owners were looked up."""
        if self._gc_server is None:
            return f"this domain only ({self.base_dn}): no global catalog was configured"
        if self._gc_failed is not None:
            return (f"this domain only ({self.base_dn}): the global catalog {self._where(self._gc_server)} could not "
                    f"be used ({self._gc_failed})")
        return f"forest-wide, through the global catalog {self._where(self._gc_server)}"

    def find_unconstrained_delegation(self) -> list[Account]:
        """Forest-wide: the accounts trusted for unconstrained delegation (TRUSTED_FOR_DELEGATION) that are not
        domain controllers (SERVER_TRUST_ACCOUNT). On a DC the bitwise matching rule narrows the search; the
        flags are tested again here (the lab's mock has no matching rules, so it is given every account)."""
        bit = f"(userAccountControl:1.2.840.113556.1.4.803:={UAC_TRUSTED_FOR_DELEGATION})"
        flt = f"(&(objectClass=user){bit})" if self._strategy == SYNC else "(objectClass=user)"
        found = self._forest_accounts(flt, "look for accounts trusted for unconstrained delegation")
        return sorted((a for a in found if a.has_flag(UAC_TRUSTED_FOR_DELEGATION)
                       and not a.has_flag(UAC_SERVER_TRUST_ACCOUNT)), key=lambda a: a.dn.lower())

    def find_spn_owners(self, spn: str) -> list[Account]:
        validate_spn(spn)
        return self._forest_accounts(f"(servicePrincipalName={escape_filter_chars(spn)})",
                                     f"look up the owners of {spn}")

    def find_accounts_with_http_spns(self, hosts: list[str]) -> dict[str, list[Account]]:
        wanted = sorted({h.strip().lower().rstrip(".") for h in hosts if h and h.strip()})
        out: dict[str, list[Account]] = {h: [] for h in wanted}
        for chunk in _chunks(wanted, 50):
            for h in chunk:
                validate_spn(f"HTTP/{h}")
            flt = "(|" + "".join(f"(servicePrincipalName={escape_filter_chars('HTTP/' + h)})" for h in chunk) + ")"
            for a in self._forest_accounts(flt, "look up the owners of the HTTP SPNs"):
                for spn in a.spns:
                    cls, _, host = spn.partition("/")
                    host = host.lower()
                    if cls.lower() == "http" and host in out and all(x.dn != a.dn for x in out[host]):
                        out[host].append(a)
        return out

    def get_account(self, sam: str) -> Account | None:
        if not sam or "\x00" in sam:
            raise InvalidInput(f"{sam!r} is not an account name.", "Give the sAMAccountName (computers end in $).")
        recent = self._recall(f"sam:{sam.lower()}")
        if recent is not None:
            return recent
        found = self._accounts(f"(&(objectClass=user)(sAMAccountName={escape_filter_chars(sam)}))",
                               what=f"read the account {sam}")
        return found[0] if found else None

    def get_account_by_dn(self, dn: str) -> Account | None:
        validate_dn(dn)
        rows = self._search(dn, "(objectClass=user)", ACCOUNT_ATTRS, BASE, what=f"read {dn}", missing_ok=True)
        return self._account(rows[0]) if rows else None

    def find_asa_candidates(self) -> list[Account]:
        # Discovery has just read these: reuse them when they are seconds old.
        servers = self._recall("servers") or self.exchange_servers()
        vdirs = self._recall("vdirs")
        scps = self._recall("scps")
        namespaces = derive_namespaces(vdirs if vdirs is not None else self.virtual_directories(),
                                       scps if scps is not None else self.autodiscover_scps())
        hosts = [n.host for n in namespaces] + [s.fqdn for s in servers if s.fqdn]
        found: dict[str, Account] = {}
        for owners in self.find_accounts_with_http_spns(hosts).values():
            for a in owners:
                found[a.dn.lower()] = a
        for a in self._accounts("(&(objectClass=user)(description=*alternate service account*))",
                                what="look for alternate service accounts"):
            found.setdefault(a.dn.lower(), a)
        own = {f"{s.name}$".lower() for s in servers}
        return sorted((a for a in found.values() if a.sam.lower() not in own), key=lambda a: a.dn.lower())

    def protected_users(self) -> list[str]:
        rows = self._search(self.base_dn, "(&(objectClass=group)(sAMAccountName=Protected Users))", ["member"],
                            what="read the Protected Users group")
        return [m for r in rows for m in r.strs("member")]

    # --- changes ---------------------------------------------------------------------------------------
    def _reread(self, dn: str) -> Account:
        acct = self.get_account_by_dn(dn)
        if acct is None:
            raise NotFound(f"The account {dn} no longer exists.", "Refresh the discovery and plan again.")
        return acct

    def _stale(self, acct: Account, what: str, expected, actual) -> None:
        if expected is not _UNSET and expected != actual:
            raise StaleObject(f"{acct.sam} changed since the plan was made: {what} is {actual!r}, the plan "
                              f"expected {expected!r}. Nothing was changed.",
                              "Refresh the discovery and review the plan again.")

    def _require_tls(self, what: str) -> None:
        with self._lock:
            conn = self._connection()
            if not self._encrypted(conn):
                raise InsecureConnection(f"Cannot {what}: a password can only be set over an encrypted connection, "
                                         "and this one is not. Nothing was changed.",
                                         "Connect with LDAPS (636) or StartTLS (389).")

    def create_account(self, sam: str, kind: AccountKind, ou_dn: str, enctypes: int,
                       description: str = "") -> CreatedAccount:
        kind = AccountKind(kind)
        if kind == AccountKind.GMSA:
            raise InvalidInput("A group managed service account cannot be an Exchange ASA.",
                               "Create a computer account (preferred) or a user account.")
        validate_sam(sam, kind)
        validate_dn(ou_dn, "OU")
        if enctypes not in ALLOWED_ENCTYPES:
            raise InvalidInput(f"{enctypes} is not an encryption type choice for the ASA.",
                               "Use 24 (AES only, preferred) or 28 (AES and RC4, for old clients).")
        if any(ord(c) < 32 for c in description):
            raise InvalidInput("The description holds control characters.", "Use plain text.")
        cn = sam[:-1] if sam.endswith("$") else sam
        dn = f"CN={escape_rdn(cn)},{ou_dn}"
        with self._lock:
            self._require_tls(f"create {sam} with a password")
            if not self._search(ou_dn, "(objectClass=*)", ["objectClass"], BASE, what=f"read {ou_dn}", missing_ok=True):
                raise NotFound(f"The OU {ou_dn} does not exist.", "Pick an existing OU (or create it first).")
            existing = self.get_account(sam) or self.get_account_by_dn(dn)
            if existing is not None:
                raise StaleObject(f"An account {existing.sam} already exists at {existing.dn}. Nothing was created.",
                                  "Choose it as the ASA, or pick another name.")
            attrs: dict = {"sAMAccountName": sam, "msDS-SupportedEncryptionTypes": enctypes}
            if description:
                attrs["description"] = description
            if kind == AccountKind.COMPUTER:
                attrs["userAccountControl"] = UAC_WORKSTATION_TRUST_ACCOUNT
                object_class = ["top", "person", "organizationalPerson", "user", "computer"]
            else:
                object_class = ["top", "person", "organizationalPerson", "user"]
            self._check(self._write("add", dn, object_class, attrs, what=f"create {sam}"),
                        what=f"create the account {sam}", target=ou_dn)
            try:
                self._set_new_password(dn, sam)
                if kind == AccountKind.USER:
                    self._check(self._write("modify", dn, {"userAccountControl": [
                        (MODIFY_REPLACE, [UAC_NORMAL_ACCOUNT | UAC_DONT_EXPIRE_PASSWD])]}, what="enable the account"),
                        what=f"enable {sam}", target=dn)
                account = self._reread(dn)
            except WizardError as exc:
                self._undo_half_made(dn, sam, exc)
                raise
            return CreatedAccount(account=account, created=True)

    def _set_new_password(self, dn: str, sam: str) -> None:
        password = generate_password()
        while not meets_complexity(password.reveal(), (sam.rstrip("$"),)):
            password = generate_password()
        value = f'"{password.reveal()}"'.encode("utf-16-le")
        result = self._write("modify", dn, {"unicodePwd": [(MODIFY_REPLACE, [value])]}, what="set the password")
        del value
        if result.get("result", 0) != le.SUCCESS:
            raise le.translate_result(result, operation=f"set the password of {sam}", target=dn, where=self._where(),
                                      secrets=(password,))

    def _undo_half_made(self, dn: str, sam: str, cause: WizardError) -> None:
        result = self._write("delete", dn, what=f"remove the half-made {sam}")
        if result.get("result", 0) in (le.SUCCESS, le.NO_SUCH_OBJECT):
            cause.problem += f" The new account {sam} was removed again: nothing was left half-made."
        else:
            cause.problem += (f" The new account {sam} could NOT be removed again ({result.get('description')}): "
                              f"delete {dn} by hand.")
        cause.args = (cause.problem,)

    def delete_account(self, dn: str, *, expected_sam: str | None = None) -> None:
        with self._lock:
            acct = self._reread(dn)
            if expected_sam is not None and acct.sam.lower() != expected_sam.lower():
                raise StaleObject(f"{dn} is now {acct.sam}, not {expected_sam}. Nothing was deleted.",
                                  "Refresh and check which account to delete.")
            self._check(self._write("delete", dn, what=f"delete {acct.sam}"), what=f"delete the account {acct.sam}",
                        target=dn)

    def add_spns(self, dn: str, spns: list[str]) -> list[str]:
        for spn in spns:
            validate_spn(spn)
        with self._lock:
            acct = self._reread(dn)
            to_add: list[str] = []
            for spn in spns:
                if acct.has_spn(spn) or any(s.lower() == spn.lower() for s in to_add):
                    continue
                others = [o for o in self.find_spn_owners(spn) if o.dn.lower() != dn.lower()]
                if others:
                    raise SpnConflict(spn, _owner_name(others[0]))
                to_add.append(spn)
            if not to_add:
                return []
            result = self._write("modify", dn, {"servicePrincipalName": [(MODIFY_ADD, to_add)]},
                                 what=f"add SPNs to {acct.sam}")
            if result.get("result") == le.CONSTRAINT_VIOLATION:
                # The DC found another owner (a race, or one outside what the lookup could see).
                for spn in to_add:
                    others = [o for o in self.find_spn_owners(spn) if o.dn.lower() != dn.lower()]
                    if others:
                        raise SpnConflict(spn, _owner_name(others[0]))
                raise SpnConflict(", ".join(to_add), "another account (the DC refused it as a duplicate)",
                                  "Search the forest (setspn -Q) or connect to a global catalog to find the owner.")
            self._check(result, what=f"add SPNs to {acct.sam}", target=dn)
            return to_add

    def remove_spns(self, dn: str, spns: list[str]) -> list[str]:
        with self._lock:
            acct = self._reread(dn)
            wanted = {s.lower() for s in spns}
            present = [s for s in acct.spns if s.lower() in wanted]
            if present:
                self._check(self._write("modify", dn, {"servicePrincipalName": [(MODIFY_DELETE, present)]},
                                        what=f"remove SPNs from {acct.sam}"),
                            what=f"remove SPNs from {acct.sam}", target=dn)
            return present

    def set_enctypes(self, dn: str, value: int | None, *, expected=_UNSET) -> int | None:
        if value is not None and not (0 <= value <= 0x7FFFFFFF):
            raise InvalidInput(f"{value} is not an msDS-SupportedEncryptionTypes value.", "Use 24 or 28.")
        with self._lock:
            acct = self._reread(dn)
            self._stale(acct, "msDS-SupportedEncryptionTypes", expected, acct.enctypes)
            if acct.enctypes != value:
                self._check(self._write("modify", dn, {"msDS-SupportedEncryptionTypes": [
                    (MODIFY_REPLACE, [] if value is None else [value])]}, what="set the encryption types"),
                    what=f"set msDS-SupportedEncryptionTypes on {acct.sam}", target=dn)
            return acct.enctypes

    def set_uac(self, dn: str, value: int, *, expected=_UNSET, restore: bool = False) -> int:
        """`restore`: undo of the wizard's own change, which may put back the unconstrained delegation it
        removed (the wizard never turns it on otherwise)."""
        with self._lock:
            acct = self._reread(dn)
            self._stale(acct, "userAccountControl", expected, acct.uac)
            if value & UAC_TRUSTED_FOR_DELEGATION and not acct.uac & UAC_TRUSTED_FOR_DELEGATION and not restore:
                raise PolicyRefused(f"Refusing to turn on unconstrained delegation (TRUSTED_FOR_DELEGATION) for {acct.sam}.",
                                    "KCD needs only TRUSTED_TO_AUTH_FOR_DELEGATION (0x1000000) and "
                                    "msDS-AllowedToDelegateTo.")
            if acct.uac != value:
                self._check(self._write("modify", dn, {"userAccountControl": [(MODIFY_REPLACE, [value])]},
                                        what="set userAccountControl"),
                            what=f"set userAccountControl on {acct.sam}", target=dn)
            return acct.uac

    def set_delegate_to(self, dn: str, spns: list[str], *, expected=_UNSET) -> list[str]:
        for spn in spns:
            validate_spn(spn)
        with self._lock:
            acct = self._reread(dn)
            self._stale(acct, "msDS-AllowedToDelegateTo", expected if expected is _UNSET else list(expected),
                        acct.delegate_to)
            if sorted(s.lower() for s in acct.delegate_to) != sorted(s.lower() for s in spns):
                self._check(self._write("modify", dn, {"msDS-AllowedToDelegateTo": [(MODIFY_REPLACE, list(spns))]},
                                        what="set msDS-AllowedToDelegateTo"),
                            what=f"set msDS-AllowedToDelegateTo on {acct.sam}", target=dn)
            return list(acct.delegate_to)

    def reset_password(self, dn: str, password: Secret) -> int | None:
        """Reset the account's password (unicodePwd, needs the Reset Password right and an encrypted
        connection); returns the new msDS-KeyVersionNumber as the directory reports it."""
        with self._lock:
            self._require_tls("reset a password")
            acct = self._reread(dn)
            value = f'"{password.reveal()}"'.encode("utf-16-le")
            result = self._write("modify", dn, {"unicodePwd": [(MODIFY_REPLACE, [value])]}, what="reset the password")
            del value
            if result.get("result", 0) != le.SUCCESS:
                raise le.translate_result(result, operation=f"reset the password of {acct.sam}", target=dn,
                                          where=self._where(), secrets=(password,))
            return self._reread(dn).key_version


# ------------------------------------------------------------------------------------------------------
def _owner_name(a: Account) -> str:
    return f"{a.sam} ({a.dn})"


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _dns_of_dn(dn: str) -> str:
    return ".".join(v for a, v, _ in parse_dn(dn, escape=False) if a.lower() == "dc").lower()


def _host_of(value: str | None) -> str | None:
    """msExchInternalHostName holds a host (Outlook Anywhere) or a URL (the other virtual directories)."""
    if not value:
        return None
    if "://" in value:
        return (urlparse(value).hostname or "").lower() or None
    return value.strip().lower().rstrip(".") or None
