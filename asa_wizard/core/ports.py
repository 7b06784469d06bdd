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


# ----------------------------------------------------------------------------------------------------
# Exchange (PowerShell over WinRM)
# ----------------------------------------------------------------------------------------------------
@dataclass
class ServerState:
    """What one Exchange server reports about itself in one call."""

    server: ExchangeServer  # with asa_latest / asa_previous / service_host_running filled in
    vdirs: list[VirtualDirectory] = field(default_factory=list)
    iis_iusrs: list[str] = field(default_factory=list)
    autodiscover_uri: str | None = None


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


@runtime_checkable
class ExchangePort(Protocol):
    """The Exchange organisation, one server at a time. `server` is a name or FQDN."""

    def describe(self) -> str: ...

    def inventory(self, via_server: str) -> list[ExchangeServer]:
        """Get-ExchangeServer, run on `via_server`."""
        ...

    def read_server(self, server: str) -> ServerState:
        """ASA state (EffectiveCredentials), OA/MAPI/EAS/EWS/Autodiscover settings, IIS auth of
        ActiveSync and EWS, IIS_IUSRS members, MSExchangeServiceHost: one remote call."""
        ...

    def roll_generate(self, server: str, account: str) -> RollResult:
        """RollAlternateServiceAccountPassword.ps1 -ToSpecificServers <server> -GenerateNewPasswordFor <account>."""
        ...

    def roll_copy(self, server: str, source: str) -> RollResult:
        """RollAlternateServiceAccountPassword.ps1 -ToSpecificServers <server> -CopyFrom <source>."""
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
        """Recent lines of a log: 'iis', 'httpproxy-mapi', 'httpproxy-rpchttp', 'system-kerberos'."""
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
