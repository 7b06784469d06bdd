"""The ports: what the core asks of the world. Adapters (real and lab) implement them.

Every method is blocking and bounded by the adapter's own timeouts; the UI calls them from thread workers.
Every failure is raised as a `asa_wizard.core.errors.WizardError` subclass with a problem and a fix.
No method takes or returns a plain-text secret except through `Secret`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from .model import (
    Account,
    AccountKind,
    AsaCredential,
    ExchangeServer,
    Forest,
    IisAuth,
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

    def set_uac(self, dn: str, value: int) -> int:
        """Set userAccountControl; returns the previous value."""
        ...

    def set_delegate_to(self, dn: str, spns: list[str]) -> list[str]:
        """Replace msDS-AllowedToDelegateTo; returns the previous list."""
        ...

    def reset_password(self, dn: str, password: Secret) -> int | None:
        """Reset the account's password (unicodePwd over an encrypted connection: the Reset Password right);
        returns the new msDS-KeyVersionNumber when the directory reports it. The password is never logged."""
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

    def set_outlook_anywhere_client_auth(self, server: str, method: str) -> str | None:
        """Set-OutlookAnywhere -InternalClientAuthenticationMethod; returns the previous value."""
        ...

    def set_mapi_auth_methods(self, server: str, methods: list[str]) -> list[str]:
        """Set-MapiVirtualDirectory -IISAuthenticationMethods; returns the previous list."""
        ...

    def add_iis_iusrs(self, server: str, member: str) -> bool:
        """Add DOMAIN\\name to the local IIS_IUSRS group; returns False when already a member."""
        ...

    def remove_iis_iusrs(self, server: str, member: str) -> bool: ...

    def set_iis_auth(self, server: str, application: str, auth: IisAuth) -> IisAuth:
        """Set Basic/Windows/providers/useKernelMode/useAppPoolCredentials on 'Microsoft-Server-ActiveSync'
        or 'EWS' of the default web site; returns the previous settings."""
        ...

    def fetch_log(self, server: str, kind: str, max_lines: int = 2000) -> str:
        """Recent lines of a server's log: 'iis', 'httpproxy-mapi', 'httpproxy-rpchttp'. (Kerberos event 4 is
        logged on the client, not on the server: it is read from a client's exported System log.)"""
        ...


# ----------------------------------------------------------------------------------------------------
# Kerberos
# ----------------------------------------------------------------------------------------------------
class ProbeOutcome(str, enum.Enum):
    ACCEPTED = "accepted"  # Kerberos, the server decrypted the ticket
    NTLM_FALLBACK = "ntlm-fallback"  # no ticket (no SPN) or the server answered with NTLM
    REJECTED = "rejected"  # KRB_AP_ERR_MODIFIED / bad integrity: the server holds another key
    KDC_REFUSED = "kdc-refused"  # the KDC would not issue the ticket (e.g. KDC_ERR_BADOPTION)
    UNREACHABLE = "unreachable"
    ERROR = "error"


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


@runtime_checkable
class KerberosProbe(Protocol):
    def describe(self) -> str: ...

    def service_ticket(self, spn: str) -> TicketResult:
        """Ask the KDC for a ticket to `spn` as the current client."""
        ...

    def probe_server(self, server: ExchangeServer, namespace: str) -> ProbeResult:
        """Send Authorization: Negotiate for HTTP/<namespace> straight to `server` (not the balancer)."""
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
