"""The domain the wizard reasons about.

Plain dataclasses, no IO. Adapters fill them from Active Directory and Exchange; the check catalogue, the
plan and the report read them. Everything here is safe to print: no field ever holds a secret.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

# --- userAccountControl flags ------------------------------------------------------------------------
UAC_ACCOUNTDISABLE = 0x2
UAC_PASSWD_NOTREQD = 0x20
UAC_NORMAL_ACCOUNT = 0x200
UAC_WORKSTATION_TRUST_ACCOUNT = 0x1000
UAC_SERVER_TRUST_ACCOUNT = 0x2000  # a domain controller's computer account
UAC_DONT_EXPIRE_PASSWD = 0x10000
UAC_TRUSTED_FOR_DELEGATION = 0x80000
UAC_NOT_DELEGATED = 0x100000
UAC_USE_DES_KEY_ONLY = 0x200000
UAC_TRUSTED_TO_AUTH_FOR_DELEGATION = 0x1000000

# --- msDS-SupportedEncryptionTypes -------------------------------------------------------------------
ENC_DES_CRC = 0x1
ENC_DES_MD5 = 0x2
ENC_RC4 = 0x4
ENC_AES128 = 0x8
ENC_AES256 = 0x10
ENC_AES256_SK = 0x20
ENC_AES_ONLY = ENC_AES128 | ENC_AES256  # 24
ENC_AES_AND_RC4 = ENC_RC4 | ENC_AES128 | ENC_AES256  # 28

ENCTYPE_NAMES = {
    ENC_DES_CRC: "DES-CBC-CRC",
    ENC_DES_MD5: "DES-CBC-MD5",
    ENC_RC4: "RC4-HMAC",
    ENC_AES128: "AES128",
    ENC_AES256: "AES256",
    ENC_AES256_SK: "AES256-SK",
}

# --- msExchCurrentServerRoles ------------------------------------------------------------------------
ROLE_BITS = {2: "Mailbox", 4: "ClientAccess", 16: "UnifiedMessaging", 32: "HubTransport", 64: "Edge"}

# --- msExchInternalAuthenticationMethods and friends -------------------------------------------------
AUTH_FLAG_BITS = {
    1: "Basic",
    2: "Ntlm",
    4: "Fba",
    8: "Digest",
    16: "WindowsIntegrated",
    1024: "OAuth",
    4096: "Kerberos",
    8192: "Negotiate",
}


def enctype_names(value: int | None) -> list[str]:
    """Names of the encryption types set in an msDS-SupportedEncryptionTypes value."""
    if value is None:
        return []
    return [name for bit, name in ENCTYPE_NAMES.items() if value & bit]


def role_names(bits: int) -> list[str]:
    return [name for bit, name in ROLE_BITS.items() if bits & bit]


def auth_flag_names(bits: int) -> list[str]:
    return [name for bit, name in AUTH_FLAG_BITS.items() if bits & bit]


class AccountKind(str, enum.Enum):
    COMPUTER = "computer"
    USER = "user"
    GMSA = "gmsa"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_object_classes(cls, classes: set[str]) -> "AccountKind":
        """The kind of an AD account from its (lower-cased) objectClass values."""
        if "msds-groupmanagedserviceaccount" in classes:
            return cls.GMSA
        if "computer" in classes:
            return cls.COMPUTER
        return cls.USER


class Service(str, enum.Enum):
    """The client-facing services whose host names become namespaces."""

    OUTLOOK_ANYWHERE = "outlook-anywhere"
    MAPI = "mapi"
    EAS = "eas"
    EWS = "ews"
    OWA = "owa"
    AUTODISCOVER = "autodiscover"

    def __str__(self) -> str:
        return self.value

    @property
    def title(self) -> str:
        return SERVICE_TITLES[self]


SERVICE_TITLES = {
    Service.OUTLOOK_ANYWHERE: "Outlook Anywhere",
    Service.MAPI: "MAPI over HTTP",
    Service.EAS: "ActiveSync",
    Service.EWS: "Exchange Web Services",
    Service.OWA: "Outlook on the web",
    Service.AUTODISCOVER: "Autodiscover",
}


@dataclass
class Domain:
    dns_name: str  # contoso.com
    netbios_name: str  # CONTOSO
    dn: str  # DC=contoso,DC=com

    @property
    def realm(self) -> str:
        return self.dns_name.upper()


@dataclass
class Forest:
    root_domain: str  # DNS name of the forest root
    domains: list[Domain] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    forest_functional_level: int | None = None
    domain_functional_level: int | None = None
    dc_host_name: str | None = None
    configuration_nc: str | None = None
    schema_nc: str | None = None
    exchange_organization: str | None = None

    def domain_of_dn(self, dn: str) -> Domain | None:
        """The domain whose naming context holds `dn` (longest suffix wins)."""
        best: Domain | None = None
        lower = dn.lower()
        for d in self.domains:
            if lower.endswith(d.dn.lower()) and (best is None or len(d.dn) > len(best.dn)):
                best = d
        return best

    def domain_by_netbios(self, netbios: str) -> Domain | None:
        for d in self.domains:
            if d.netbios_name.lower() == netbios.lower():
                return d
        return None


@dataclass(frozen=True)
class AsaCredential:
    """One ASA credential as an Exchange server holds it (from EffectiveCredentials)."""

    account: str  # DOMAIN\NAME$ as Exchange reports it (QualifiedUserName)
    when_added: datetime | None = None

    def same_account(self, other: str) -> bool:
        return normalize_account(self.account) == normalize_account(other)


def normalize_account(name: str) -> str:
    """`Tailspintoys\\E15ASA$` and `TAILSPINTOYS\\e15asa$` name the same account."""
    return name.strip().lower()


@dataclass
class ExchangeServer:
    name: str  # EXCH-2019
    fqdn: str  # exch-2019.tailspintoys.ca
    version: str = ""  # "Version 15.2 (Build 1544.4)" as in serialNumber / AdminDisplayVersion
    roles: list[str] = field(default_factory=list)
    site: str = ""
    dn: str | None = None
    asa_latest: AsaCredential | None = None
    asa_previous: AsaCredential | None = None
    asa_state_known: bool = False  # False until read over WinRM
    service_host_running: bool | None = None
    reachable: bool | None = None
    error: str | None = None  # why the server could not be read, for a person

    @property
    def build(self) -> tuple[int, ...]:
        return parse_build(self.version)

    @property
    def major(self) -> tuple[int, int]:
        b = self.build
        return (b[0], b[1]) if len(b) >= 2 else (0, 0)

    @property
    def product(self) -> str:
        return product_name(self.build)

    @property
    def generation(self) -> str:
        """ASA generation: Exchange 2010 cannot share an ASA with 2013 and later."""
        major = self.major
        if major == (0, 0):
            return "unknown"
        return "2010" if major[0] == 14 else "2013+"


def parse_build(version: str) -> tuple[int, ...]:
    """'Version 15.2 (Build 1544.4)' -> (15, 2, 1544, 4); '15.2.1544.4' -> (15, 2, 1544, 4)."""
    import re

    m = re.search(r"(\d+)\.(\d+)\s*\(Build\s+(\d+)\.(\d+)\)", version)
    if m:
        return tuple(int(x) for x in m.groups())
    m = re.search(r"(\d+)\.(\d+)\.(\d+)\.(\d+)", version)
    if m:
        return tuple(int(x) for x in m.groups())
    m = re.search(r"(\d+)\.(\d+)", version)
    if m:
        return tuple(int(x) for x in m.groups())
    return ()


def product_name(build: tuple[int, ...]) -> str:
    if len(build) < 2:
        return "Exchange (unknown version)"
    major = (build[0], build[1])
    if major == (14, 3) or build[0] == 14:
        return "Exchange 2010"
    if major == (15, 0):
        return "Exchange 2013"
    if major == (15, 1):
        return "Exchange 2016"
    if major == (15, 2):
        if len(build) >= 3 and build[2] >= 2562:
            return "Exchange SE"
        return "Exchange 2019"
    return f"Exchange {build[0]}.{build[1]}"


@dataclass
class IisAuth:
    """Windows authentication settings of one IIS application (from applicationHost.config)."""

    basic: bool = False
    windows: bool = False
    providers: list[str] = field(default_factory=list)  # ["Negotiate", "NTLM"]
    use_kernel_mode: bool = False
    use_app_pool_credentials: bool = False


@dataclass
class VirtualDirectory:
    server: str
    service: Service
    internal_host: str | None = None
    external_host: str | None = None
    # Exchange auth methods (IISAuthenticationMethods / InternalAuthenticationMethods): Ntlm, Negotiate, OAuth ...
    auth_methods: list[str] = field(default_factory=list)
    # Outlook Anywhere only: InternalClientAuthenticationMethod / ExternalClientAuthenticationMethod
    internal_client_auth: str | None = None
    external_client_auth: str | None = None
    iis: IisAuth | None = None  # EAS / EWS: the IIS application's settings

    @property
    def hosts(self) -> list[str]:
        return [h for h in (self.internal_host, self.external_host) if h]


@dataclass
class Namespace:
    host: str  # mail.contoso.com
    services: set[Service] = field(default_factory=set)
    servers: list[str] = field(default_factory=list)  # server names that answer on it
    is_cname: bool | None = None  # None: not known

    @property
    def spn(self) -> str:
        return f"HTTP/{self.host}"


@dataclass
class Account:
    dn: str
    sam: str  # E15ASA$ for a computer
    kind: AccountKind
    uac: int = 0
    spns: list[str] = field(default_factory=list)
    enctypes: int | None = None  # msDS-SupportedEncryptionTypes, None when unset
    pwd_last_set: datetime | None = None
    key_version: int | None = None
    delegate_to: list[str] = field(default_factory=list)  # msDS-AllowedToDelegateTo
    upn: str | None = None
    member_of: list[str] = field(default_factory=list)
    description: str | None = None

    @property
    def enabled(self) -> bool:
        return not (self.uac & UAC_ACCOUNTDISABLE)

    @property
    def is_computer(self) -> bool:
        return self.kind == AccountKind.COMPUTER

    @property
    def cn(self) -> str:
        first = self.dn.split(",", 1)[0]
        return first.split("=", 1)[1] if "=" in first else first

    def has_flag(self, flag: int) -> bool:
        return bool(self.uac & flag)

    def has_spn(self, spn: str) -> bool:
        return spn.lower() in (s.lower() for s in self.spns)

    def qualified_name(self, netbios: str) -> str:
        return f"{netbios}\\{self.sam}"


@dataclass
class SegConfig:
    """The Secure Email Gateway's service account, as the user named it."""

    service_account: str  # sAMAccountName
    test_users: list[str] = field(default_factory=list)
    ews_proxy: bool = False


# --- Extended Protection (IIS windowsAuthentication/extendedProtection tokenChecking) -----------------------
EP_VALUES = ("None", "Allow", "Require")


@dataclass
class ExtendedProtection:
    """What one server reports about Extended Protection: tokenChecking per IIS location
    ("Default Web Site/RPC", "Exchange Back End/mapi/emsmdb"), Outlook Anywhere's SSLOffloading and the
    ExSetup file version (security updates change it; AdminDisplayVersion does not)."""

    server: str
    token_checking: dict[str, str] = field(default_factory=dict)  # location -> None | Allow | Require
    ssl_offloading: bool | None = None  # None: not known (no Outlook Anywhere virtual directory)
    exsetup_version: str = ""  # "15.2.1544.4" (empty: not read)
    error: str | None = None  # why it could not be read, for a person

    def setting(self, location: str) -> str | None:
        v = self.token_checking.get(location)
        if v is not None:
            return v
        want = location.lower()
        for k, v in self.token_checking.items():
            if k.lower() == want:
                return v
        return None

    @property
    def enabled(self) -> bool:
        """Extended Protection is on somewhere on this server."""
        return any(v != "None" for v in self.token_checking.values())


@dataclass
class Environment:
    """One snapshot of everything the wizard read. The checks reason over this."""

    forest: Forest
    servers: list[ExchangeServer] = field(default_factory=list)
    vdirs: list[VirtualDirectory] = field(default_factory=list)
    namespaces: list[Namespace] = field(default_factory=list)
    # every account that matters: ASA candidates, owners of HTTP SPNs of our namespaces, the SEG account
    accounts: list[Account] = field(default_factory=list)
    # lower-cased SPN -> DNs of the accounts that hold it (forest-wide)
    spn_owners: dict[str, list[str]] = field(default_factory=dict)
    asa_sam: str | None = None  # the ASA the user chose (sAMAccountName)
    seg: SegConfig | None = None
    iis_iusrs: dict[str, list[str]] = field(default_factory=dict)  # server -> members (DOMAIN\name)
    protected_users: list[str] = field(default_factory=list)  # DNs of Protected Users members
    autodiscover_urls: dict[str, str] = field(default_factory=dict)  # server -> SCP URL
    hybrid: bool = False
    # forest-wide: accounts trusted for unconstrained delegation that are not domain controllers (None: not read)
    unconstrained_delegation: list[Account] | None = None
    spn_scope: str = ""  # how the SPN owners were looked up (forest-wide through the GC, or this domain only)
    asa_source: str = ""  # how the ASA was chosen: named by the user, or found from the servers / the SPNs
    # server name -> its Extended Protection settings (read over WinRM; empty when not read)
    extended_protection: dict[str, ExtendedProtection] = field(default_factory=dict)

    def account_by_dn(self, dn: str) -> Account | None:
        for a in self.accounts:
            if a.dn.lower() == dn.lower():
                return a
        return None

    def account_by_sam(self, sam: str) -> Account | None:
        for a in self.accounts:
            if a.sam.lower() == sam.lower():
                return a
        return None

    def server(self, name: str) -> ExchangeServer | None:
        key = name.lower()
        found = self._index("servers", self.servers, lambda s: (s.name.lower(), s.fqdn.lower())).get(key)
        if found is not None and key in (found[0].name.lower(), found[0].fqdn.lower()):
            return found[0]
        for s in self.servers:  # not indexed (renamed since): the plain scan
            if s.name.lower() == key or s.fqdn.lower() == key:
                return s
        return None

    def _index(self, name: str, items: list[Any], keys: Callable[[Any], tuple[str, ...]]) -> dict[str, list[Any]]:
        """key -> items holding it (in order), rebuilt when the list is replaced or changes length: the checks ask
        per server, and a scan per question makes a check of N servers cost N² (an index per snapshot, O(N))."""
        cache = self.__dict__.setdefault("_indexes", {})
        hit = cache.get(name)
        if hit is not None and hit[0] is items and hit[1] == len(items):
            return hit[2]
        index: dict[str, list[Any]] = {}
        for item in items:
            for k in dict.fromkeys(keys(item)):
                index.setdefault(k, []).append(item)
        cache[name] = (items, len(items), index)
        return index

    @property
    def asa(self) -> Account | None:
        return self.account_by_sam(self.asa_sam) if self.asa_sam else None

    def vdirs_for(self, server: str, service: Service | None = None) -> list[VirtualDirectory]:
        candidates = self._index("vdirs", self.vdirs, lambda v: (v.server.lower(),)).get(server.lower(), [])
        return [
            v
            for v in candidates
            if v.server.lower() == server.lower() and (service is None or v.service == service)
        ]


def derive_namespaces(vdirs: list[VirtualDirectory], autodiscover_urls: dict[str, str]) -> list[Namespace]:
    """Namespaces are the host names the virtual directories and Autodiscover SCPs publish."""
    from urllib.parse import urlparse

    by_host: dict[str, Namespace] = {}

    def add(host: str | None, service: Service, server: str) -> None:
        if not host:
            return
        key = host.strip().lower().rstrip(".")
        ns = by_host.setdefault(key, Namespace(host=key))
        ns.services.add(service)
        if server not in ns.servers:
            ns.servers.append(server)

    for v in vdirs:
        for h in v.hosts:
            add(h, v.service, v.server)
    for server, url in autodiscover_urls.items():
        add(urlparse(url).hostname, Service.AUTODISCOVER, server)
    return sorted(by_host.values(), key=lambda n: n.host)
