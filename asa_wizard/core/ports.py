"""The ports: what the core asks of the world. Adapters (real and lab) implement them.

Every method is blocking and bounded by the adapter's own timeouts; the UI calls them from thread workers.
Every failure is raised as a `asa_wizard.core.errors.WizardError` subclass with a problem and a fix.
No method takes or returns a plain-text secret except through `Secret`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from .model import (
    Account,
    AccountKind,
    AsaCredential,
    ExchangeServer,
    ExtendedProtection,
    Forest,
    IisAuth,
    Service,
    VirtualDirectory,
)
from .secrets import Secret


# ----------------------------------------------------------------------------------------------------
# Directory (Active Directory over LDAP)
# ----------------------------------------------------------------------------------------------------
@dataclass
class CreatedAccount:
    account: Account
    # Undo information: the account did not exist before, so undo deletes it.
    created: bool = True


@runtime_checkable
class DirectoryPort(Protocol):
    """Active Directory: read the forest and the Exchange configuration, change the accounts we own."""

    def describe(self) -> str:
        """One line for the UI: 'dc1.contoso.com (LDAPS 636, certificate validated)'."""
        ...

    def read_forest(self) -> Forest: ...

    def exchange_servers(self) -> list[ExchangeServer]:
        """Every msExchExchangeServer: name, FQDN (networkAddress), version (serialNumber), roles, site, DN."""
        ...

    def virtual_directories(self) -> list[VirtualDirectory]:
        """msExchVirtualDirectory objects with host names and auth flags, where the directory holds them."""
        ...

    def autodiscover_scps(self) -> dict[str, str]:
        """Server name -> Autodiscover URL from the serviceConnectionPoint objects."""
        ...

    def find_spn_owners(self, spn: str) -> list[Account]:
        """Every account in the forest holding `spn` (case-insensitive), like `setspn -F -Q`."""
        ...

    def find_accounts_with_http_spns(self, hosts: list[str]) -> dict[str, list[Account]]:
        """For each host name: the accounts holding HTTP/<host> (forest-wide). Keys are lower-cased hosts."""
        ...

    def get_account(self, sam: str) -> Account | None:
        """By sAMAccountName in the default domain (computer accounts end in '$')."""
        ...

    def get_account_by_dn(self, dn: str) -> Account | None: ...

    def find_asa_candidates(self) -> list[Account]:
        """Accounts that look like an ASA: hold HTTP/ SPNs for Exchange names, or are named/described so."""
        ...

    def find_unconstrained_delegation(self) -> list[Account]:
        """Forest-wide: every account trusted for unconstrained delegation that is not a domain controller."""
        ...

    def spn_lookup_scope(self) -> str:
        """How the SPN lookups were made: forest-wide through the global catalog, or this domain only (and why)."""
        ...

    def protected_users(self) -> list[str]:
        """DNs of the members of the Protected Users group."""
        ...

    # --- changes: each returns what undo needs; each re-reads the object first ---------------------
    def create_account(
        self, sam: str, kind: AccountKind, ou_dn: str, enctypes: int, description: str = ""
    ) -> CreatedAccount:
        """Create the ASA with a generated password (never returned). Nothing half-made: if any step
        after the add fails, the account is deleted again and the error says so."""
        ...

    def delete_account(self, dn: str) -> None: ...

    def add_spns(self, dn: str, spns: list[str]) -> list[str]:
        """Add SPNs after a forest-wide owner lookup. Raises SpnConflict naming the owner. Returns the
        SPNs actually added (those already on the account are skipped)."""
        ...

    def remove_spns(self, dn: str, spns: list[str]) -> list[str]:
        """Remove SPNs from an account; returns those that were present."""
        ...

    def set_enctypes(self, dn: str, value: int | None) -> int | None:
        """Set msDS-SupportedEncryptionTypes (None clears it); returns the previous value."""
        ...

    def set_uac(self, dn: str, value: int, *, restore: bool = False) -> int:
        """Set userAccountControl; returns the previous value. Turning on unconstrained delegation is refused,
        except with `restore` (the undo of a change that removed it)."""
        ...

    def set_delegate_to(self, dn: str, spns: list[str]) -> list[str]:
        """Replace msDS-AllowedToDelegateTo; returns the previous list."""
        ...

    def reset_password(self, dn: str, password: Secret) -> int | None:
        """Reset the account's password (unicodePwd over an encrypted connection: the Reset Password right);
        returns the new msDS-KeyVersionNumber when the directory reports it. The password is never logged."""
        ...

    def change_password(self, dn: str, old: Secret, new: Secret) -> int | None:
        """Change the account's password from `old` to `new` (unicodePwd: the old value deleted and the new one
        added in one modify, over an encrypted connection). It needs no Reset Password right, only the old
        password (the Change Password right, which AD grants to everyone on a user), and the domain's password
        policy applies (minimum age, history). Returns the new msDS-KeyVersionNumber when the directory reports
        it. Neither password is ever logged."""
        ...


# ----------------------------------------------------------------------------------------------------
# Exchange (its remote PowerShell endpoint for Exchange cmdlets, WinRM for the Windows side)
# ----------------------------------------------------------------------------------------------------
@dataclass
class ServerState:
    """What one Exchange server reports about itself in one read."""

    server: ExchangeServer  # with asa_latest / asa_previous / service_host_running filled in
    vdirs: list[VirtualDirectory] = field(default_factory=list)
    iis_iusrs: list[str] = field(default_factory=list)
    autodiscover_uri: str | None = None
    credentials: list[AsaCredential] = field(default_factory=list)  # the whole list, newest first
    errors: dict[str, str] = field(default_factory=dict)  # part of the read that failed -> why (the rest is valid)
    iis_log_folder: str | None = None  # from the site's logFile.directory, else siteDefaults
    extended_protection: ExtendedProtection | None = None  # read with the server when the port reads both at once
    # part -> the Identity of the object that part read ("outlook-anywhere": "EX01\Rpc (Default Web Site)"): a
    # change that follows this read sets that object by it, without reading it again
    identities: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Swap:
    """A compare-and-set made on a server in one call: the value it found there, and what it did.

    `state` "old": the planned old value was there and the new one was set (`found` is the previous value, for
    undo); "new": the new value was in place already, nothing was changed; "stale": neither, nothing was changed
    (`found` says what is there)."""

    found: Any
    state: str


class RollOutcome(str, enum.Enum):
    SUCCEEDED = "succeeded"
    SUCCEEDED_WITH_WARNINGS = "succeeded-with-warnings"
    FAILED = "failed"


@dataclass
class RollResult:
    server: str
    outcome: RollOutcome
    message: str  # for a person: Microsoft's own message where recognised
    fix: str = ""
    latest: AsaCredential | None = None  # what the server holds afterwards
    log_excerpt: str = ""  # script output, free of secrets


@dataclass
class Preflight:
    """What must hold on one server before the roll changes anything."""

    server: str
    problems: list[tuple[str, str]] = field(default_factory=list)  # (problem, fix)
    checked: list[str] = field(default_factory=list)  # what was proven, for the report

    @property
    def ok(self) -> bool:
        return not self.problems


@runtime_checkable
class ExchangePort(Protocol):
    """The Exchange organisation, one server at a time. `server` is a name or FQDN. Every Exchange cmdlet goes
    through that server's remote PowerShell endpoint (http://<fqdn>/PowerShell, Microsoft.Exchange) as a command
    with parameters; Windows-side work (IIS, local groups, logs, Microsoft's script) goes through WinRM."""

    def describe(self) -> str: ...

    def inventory(self, via_server: str) -> list[ExchangeServer]:
        """Get-ExchangeServer, run on `via_server`."""
        ...

    def read_server(self, server: str) -> ServerState:
        """ASA credential list, OA/MAPI/EAS/EWS/Autodiscover settings (endpoint); IIS auth of ActiveSync and EWS,
        IIS_IUSRS members, MSExchangeServiceHost, the IIS log folder (WinRM). A part that fails is reported in
        `errors` under its name; the other parts are still read."""
        ...

    def preflight(self, server: str) -> Preflight:
        """Before any change: the endpoint answers, the session is allowed (RemotePowerShellEnabled), and RBAC
        shows the ASA parameters of Set-ClientAccessService and -IncludeAlternateServiceAccountCredentialPassword
        (the Organization Configuration role)."""
        ...

    def push_credential(self, server: str, account: str, password: Secret) -> RollResult:
        """Set-ClientAccessService <server> -CleanUpInvalidAlternateServiceAccountCredentials
        -AlternateServiceAccountCredential <account, password>: the new credential in front, the ones that still
        validate against AD kept. The password is sent encrypted with the session key, never on a command line."""
        ...

    def credential_passwords(self, server: str, account: str) -> list[Secret]:
        """The passwords `server` holds for `account`, in Exchange's order (the most recent first): through a
        session on that server, Get-ClientAccessService -IncludeAlternateServiceAccountCredentialPassword."""
        ...

    def copy_credentials(self, server: str, source: str) -> RollResult:
        """-CopyFrom: read every credential (with passwords) through a session on `source`, then
        Set-ClientAccessService <server> -RemoveAlternateServiceAccountCredentials -AlternateServiceAccountCredential
        <all of them>: the target's credentials are REPLACED by the source's list. AD is not touched."""
        ...

    def roll_with_script(self, run_on: str, servers: list[str], account: str) -> RollResult:
        """Microsoft's RollAlternateServiceAccountPassword.ps1 -ToSpecificServers <servers> -GenerateNewPasswordFor
        <account> -Unattended, run on `run_on` over WinRM; verdict from its exit code and events 14001-14004."""
        ...

    def second_hop(self, server: str, other: str) -> list[tuple[str, str]]:
        """From inside a WinRM session on `server`: open a session to `other`'s endpoint and bind to a DC, as
        Microsoft's script does. Returns the problems (empty: the hop works)."""
        ...

    def remove_asa(self, server: str) -> None:
        """Set-ClientAccessService <server> -RemoveAlternateServiceAccountCredentials."""
        ...

    def set_outlook_anywhere_client_auth(self, server: str, method: str, read: ServerState | None = None
                                         ) -> str | None:
        """Set-OutlookAnywhere -InternalClientAuthenticationMethod; returns the previous value. `read`: the
        server's state as a change's re-read just returned it (`read_parts`): the virtual directory is set by the
        Identity that read names, and the value it read is the previous one (no second read). Without it, the
        virtual directory is read first."""
        ...

    def set_mapi_auth_methods(self, server: str, methods: list[str], read: ServerState | None = None) -> list[str]:
        """Set-MapiVirtualDirectory -IISAuthenticationMethods; returns the previous list. `read` as for
        `set_outlook_anywhere_client_auth`."""
        ...

    def add_iis_iusrs(self, server: str, member: str) -> bool:
        """Add DOMAIN\\name to the local IIS_IUSRS group; returns False when already a member."""
        ...

    def remove_iis_iusrs(self, server: str, member: str) -> bool: ...

    def set_iis_auth(self, server: str, application: str, auth: IisAuth) -> IisAuth:
        """Set Basic/Windows/providers/useKernelMode/useAppPoolCredentials on 'Microsoft-Server-ActiveSync'
        or 'EWS' of the default web site; returns the previous settings."""
        ...

    def change_iis_auth(self, server: str, application: str, old: IisAuth, new: IisAuth) -> Swap:
        """`set_iis_auth` as a compare-and-set in one call on the server: the settings are read there and set to
        `new` only when they are `old` now (`Swap.found` holds the IIS settings found)."""
        ...

    def fetch_log(self, server: str, kind: str, max_lines: int = 2000) -> str:
        """Recent lines of a server's log: 'iis', 'httpproxy-mapi', 'httpproxy-rpchttp'. (Kerberos event 4 is
        logged on the client, not on the server: it is read from a client's exported System log.)"""
        ...

    def read_extended_protection(self, server: str) -> ExtendedProtection:
        """tokenChecking of every Exchange virtual directory in IIS (front end and back end), Outlook
        Anywhere's SSLOffloading and the ExSetup version: one remote call to that server."""
        ...


# ----------------------------------------------------------------------------------------------------
# Kerberos
# ----------------------------------------------------------------------------------------------------
class ProbeOutcome(str, enum.Enum):
    ACCEPTED = "accepted"  # Kerberos, the server decrypted the ticket (and its mutual-auth answer verified)
    NTLM_FALLBACK = "ntlm-fallback"  # no ticket (no SPN) or the server answered with NTLM
    REJECTED = "rejected"  # KRB_AP_ERR_MODIFIED / bad integrity: the server holds another key
    # the server accepts the ticket, but not with the channel binding of our TLS connection: the TLS
    # connection it checks is another one (a TLS-terminating load balancer or proxy in the path)
    CHANNEL_BINDING = "channel-binding"
    NOT_OFFERED = "not-offered"  # this path does not offer Negotiate at all (e.g. ActiveSync with Basic only)
    KDC_REFUSED = "kdc-refused"  # the KDC would not issue the ticket (e.g. KDC_ERR_BADOPTION)
    UNREACHABLE = "unreachable"
    ERROR = "error"


@dataclass(frozen=True)
class ClientPath:
    """One endpoint a client authenticates on, as the probe presents the ticket to it."""

    key: str  # "ews"
    title: str  # "EWS"
    method: str  # the request the probe sends (what the client sends first)
    path: str  # "/EWS/Exchange.asmx"
    location: str  # the IIS location whose Extended Protection applies: "Default Web Site/EWS"
    service: Service


CLIENT_PATHS: tuple[ClientPath, ...] = (
    ClientPath("autodiscover", "Autodiscover", "POST", "/Autodiscover/Autodiscover.xml",
               "Default Web Site/Autodiscover", Service.AUTODISCOVER),
    ClientPath("ews", "EWS", "POST", "/EWS/Exchange.asmx", "Default Web Site/EWS", Service.EWS),
    ClientPath("mapi", "MAPI over HTTP", "POST", "/mapi/emsmdb/", "Default Web Site/mapi", Service.MAPI),
    ClientPath("rpc", "Outlook Anywhere", "RPC_IN_DATA", "/rpc/rpcproxy.dll", "Default Web Site/Rpc",
               Service.OUTLOOK_ANYWHERE),
    ClientPath("eas", "ActiveSync", "OPTIONS", "/Microsoft-Server-ActiveSync", "Default Web Site/Microsoft-Server-ActiveSync",
               Service.EAS),
)


def read_parts(exchange: ExchangePort, server: str, parts: set[str]) -> ServerState:
    """Only `parts` of a server's state when the port can read parts (`EndpointExchange.read_parts`), else the
    whole server: what a change's re-read needs."""
    reader = getattr(exchange, "read_parts", None)
    return reader(server, parts) if reader is not None else exchange.read_server(server)


def client_path(key: str) -> ClientPath:
    for p in CLIENT_PATHS:
        if p.key == key:
            return p
    raise KeyError(key)


def paths_for_services(services: set[Service] | frozenset[Service]) -> tuple[ClientPath, ...]:
    """The client paths a namespace serving `services` answers (OWA has no Windows-auth path to probe)."""
    return tuple(p for p in CLIENT_PATHS if p.service in services)


# worst last: a server's overall outcome is the worst of its paths' (a path without Negotiate only counts
# when no path offers it)
OUTCOME_ORDER = ("not-offered", "accepted", "unreachable", "error", "ntlm-fallback", "channel-binding",
                 "kdc-refused", "rejected")


def overall_outcome(outcomes: list[ProbeOutcome]) -> ProbeOutcome:
    """The outcome that speaks for several paths: the worst, ignoring paths that do not offer Negotiate."""
    relevant = [o for o in outcomes if o != ProbeOutcome.NOT_OFFERED] or list(outcomes)
    if not relevant:
        return ProbeOutcome.ERROR
    return max(relevant, key=lambda o: OUTCOME_ORDER.index(o.value))


@dataclass
class PathResult:
    """What one path of one server did with the ticket."""

    path: ClientPath
    outcome: ProbeOutcome
    detail: str = ""  # the server's words, the HTTP status and what it means
    status: int | None = None  # the HTTP status of the answer to the token
    channel_bound: bool = False  # the accepted token carried the channel binding of our TLS connection


@dataclass
class TicketResult:
    spn: str
    ok: bool
    enctype: str | None = None  # "aes256-cts-hmac-sha1-96", "rc4-hmac"
    error: str | None = None  # KDC_ERR_S_PRINCIPAL_UNKNOWN ...
    kvno: int | None = None


@dataclass
class ProbeResult:
    server: str
    spn: str
    outcome: ProbeOutcome
    detail: str = ""  # the server's or KDC's words
    enctype: str | None = None
    client: str | None = None  # the principal the server saw (S4U: the impersonated user)
    at: datetime | None = None
    kvno: int | None = None  # the key version the ticket was encrypted with (None: unknown / no ticket)
    paths: list[PathResult] = field(default_factory=list)  # path by path (empty: one endpoint, no detail)


@runtime_checkable
class KerberosProbe(Protocol):
    def describe(self) -> str: ...

    def service_ticket(self, spn: str) -> TicketResult:
        """Ask the KDC for a ticket to `spn` as the current client."""
        ...

    def probe_server(self, server: ExchangeServer, namespace: str,
                     paths: tuple[ClientPath, ...] | None = None) -> ProbeResult:
        """Send Authorization: Negotiate for HTTP/<namespace> straight to `server` (not the balancer), on each
        of `paths` (None: the client paths the namespace serves, as the probe knows them), over TLS with
        the channel binding of each connection. `outcome` is the worst path's; `paths` has each one."""
        ...

    def s4u(self, service_account: str, user: str, spn: str, server: ExchangeServer) -> ProbeResult:
        """As the SEG account: S4U2Self for `user`, S4U2Proxy to `spn`, presented to `server`."""
        ...


# ----------------------------------------------------------------------------------------------------
# Secrets
# ----------------------------------------------------------------------------------------------------
@runtime_checkable
class SecretStore(Protocol):
    backend_name: str  # "SecretService Keyring", "null", ...
    is_plaintext: bool
    available: bool

    def get(self, key: str) -> Secret | None: ...

    def set(self, key: str, value: Secret) -> None: ...

    def delete(self, key: str) -> None: ...
