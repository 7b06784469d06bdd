"""The lab's Exchange cmdlets, with Microsoft's semantics, for the lab's remote PowerShell endpoint.

The endpoint (`asa_wizard.lab.psrp_endpoint`) opens a session per runspace pool (`open_session`), answers
GetCommandMetadata from `command_metadata` and runs each Command pipeline through `invoke_cmdlet`. The
semantics follow Microsoft's documentation and RollAlternateServiceAccountPassword.ps1 (see
docs/exchange.md, "Conformance"):

- The ASA state is per server: an ordered credential list, newest first, each entry with its account,
  `WhenAdded` (stamped when the credential is pushed to that server, not when the password was set) and the
  password. The lab keeps only a digest of each password; the directory keeps the digest of the account's
  current password, so "does this credential still validate against AD" is a comparison of digests.
- `Get-ClientAccessService -IncludeAlternateServiceAccountCredentialPassword` returns passwords only through
  a session on that same server, and only to a user holding the Organization Configuration role (RBAC hides
  the parameter from everybody else, as Microsoft's script expects).
- `Set-ClientAccessService`: `-RemoveAlternateServiceAccountCredentials` wipes the list,
  `-CleanUpInvalidAlternateServiceAccountCredentials` drops the credentials that no longer validate against
  AD, `-AlternateServiceAccountCredential` prepends (in the order given), `-WhatIf` changes nothing; the ASA
  parameters cannot be mixed with the AutoDiscover ones (two parameter sets).
- `RemotePowerShellEnabled = $false` refuses the session (SessionRefused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from ..core.model import Service
from ..core.secrets import Secret
from .scenario import HeldPassword, LabCredential, LabServer, LabVdir, password_digest

if TYPE_CHECKING:
    from .exchange import LabExchange

try:  # the client's own type, so the endpoint sends exactly what the client reads
    from ..adapters.psrp import PsCredential
except ImportError:  # pragma: no cover - the client adapter is part of the package; kept for partial checkouts
    @dataclass(frozen=True)
    class PsCredential:  # type: ignore[no-redef]
        user: str
        password: Any


# ----------------------------------------------------------------------------------------------------
# The contract with the endpoint
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RpsSession:
    server: str  # name of the server whose /PowerShell endpoint holds this session
    user: str  # DOMAIN\user that authenticated
    can_delegate: bool  # the logon can reach a further server (CredSSP/delegation); False = plain network logon


class CmdletError(Exception):
    """A non-terminating error record of the cmdlet: message, category, FullyQualifiedErrorId, target."""

    def __init__(self, message: str, *, category: str = "NotSpecified", error_id: str = "", target: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.error_id = error_id
        self.target = target


class Unavailable(CmdletError):
    """A non-terminating error written in the output's place for one server that could not be contacted (an
    organisation-wide read goes on with the others, as Exchange's Get- cmdlets do)."""


class SessionRefused(Exception):
    """The endpoint refuses the runspace pool (e.g. RemotePowerShellEnabled is $false)."""


# ----------------------------------------------------------------------------------------------------
# RBAC
# ----------------------------------------------------------------------------------------------------
ORG_CONFIG = "Organization Configuration"
# Role groups and the management roles they carry that matter here.
_ROLE_GROUPS: dict[str, set[str]] = {
    "Organization Management": {ORG_CONFIG, "Exchange Servers", "View-Only Configuration", "Mail Recipients"},
    "Organization Configuration": {ORG_CONFIG, "View-Only Configuration"},
    "Server Management": {"Exchange Servers", "View-Only Configuration"},
    "View-Only Organization Management": {"View-Only Configuration"},
    "Recipient Management": {"Mail Recipients"},
}
_READ = {"View-Only Configuration", ORG_CONFIG, "Exchange Servers"}
_SERVER_WRITE = {ORG_CONFIG, "Exchange Servers"}

_GET_SERVER_PARAMS = ["Identity", "Server", "ADPropertiesOnly", "DomainController", "ShowMailboxVirtualDirectories"]
# cmdlet -> (roles that may run it, parameters, parameters that need Organization Configuration)
_COMMANDS: dict[str, tuple[set[str], list[str], set[str]]] = {
    "Get-ExchangeServer": (_READ, ["Identity", "DomainController", "Status", "Domain"], set()),
    "Get-ClientAccessService": (_READ, ["Identity", "DomainController", "IncludeAlternateServiceAccountCredentialStatus",
                                       "IncludeAlternateServiceAccountCredentialPassword"],
                                {"IncludeAlternateServiceAccountCredentialPassword"}),
    "Set-ClientAccessService": (_SERVER_WRITE, ["Identity", "AlternateServiceAccountCredential",
                                                "CleanUpInvalidAlternateServiceAccountCredentials",
                                                "RemoveAlternateServiceAccountCredentials", "AutoDiscoverServiceInternalUri",
                                                "AutoDiscoverSiteScope", "Array", "DomainController", "WhatIf", "Confirm"],
                                {"AlternateServiceAccountCredential", "CleanUpInvalidAlternateServiceAccountCredentials",
                                 "RemoveAlternateServiceAccountCredentials"}),
    "Get-OutlookAnywhere": (_READ, _GET_SERVER_PARAMS, set()),
    "Set-OutlookAnywhere": (_SERVER_WRITE, ["Identity", "InternalClientAuthenticationMethod",
                                            "ExternalClientAuthenticationMethod", "IISAuthenticationMethods",
                                            "DomainController", "WhatIf", "Confirm"], set()),
    "Get-MapiVirtualDirectory": (_READ, _GET_SERVER_PARAMS, set()),
    "Set-MapiVirtualDirectory": (_SERVER_WRITE, ["Identity", "IISAuthenticationMethods", "DomainController", "WhatIf",
                                                 "Confirm"], set()),
    "Get-ActiveSyncVirtualDirectory": (_READ, _GET_SERVER_PARAMS, set()),
    "Get-WebServicesVirtualDirectory": (_READ, _GET_SERVER_PARAMS, set()),
    "Get-OwaVirtualDirectory": (_READ, _GET_SERVER_PARAMS, set()),
    "Get-User": ({"Mail Recipients", "View-Only Configuration", ORG_CONFIG}, ["Identity", "DomainController"], set()),
}
# The two parameter sets of Set-ClientAccessService (Microsoft's cmdlet reference)
_ASA_SET = {"AlternateServiceAccountCredential", "CleanUpInvalidAlternateServiceAccountCredentials",
            "RemoveAlternateServiceAccountCredentials"}
_AUTODISCOVER_SET = {"AutoDiscoverServiceInternalUri", "AutoDiscoverSiteScope", "Array"}
OA_CLIENT_METHODS = ("Basic", "Ntlm", "Negotiate")
MAPI_METHODS = ("Basic", "Negotiate", "Ntlm", "OAuth")


def management_roles(role_groups: list[str]) -> set[str]:
    out: set[str] = set()
    for g in role_groups:
        out |= _ROLE_GROUPS.get(g, set())
    return out


def _same_user(a: str, b: str) -> bool:
    return a.strip().lower().split("\\")[-1].split("@")[0] == b.strip().lower().split("\\")[-1].split("@")[0]


def _roles_of(lab: "LabExchange", user: str) -> set[str]:
    scenario = lab._scenario
    if _same_user(user, scenario.admin_user):
        return management_roles(scenario.admin_roles)
    if _same_user(user, VIEWER):
        return management_roles(["View-Only Organization Management"])
    return set()


# ----------------------------------------------------------------------------------------------------
# Sessions and metadata
# ----------------------------------------------------------------------------------------------------
def open_session(lab: "LabExchange", server: str, user: str, can_delegate: bool) -> RpsSession:
    """A runspace pool on `server`'s /PowerShell. Raises SessionRefused when the user may not use remote
    PowerShell (RemotePowerShellEnabled is $false) or the server is not an Exchange server of the lab."""
    with lab._lock:
        s = lab._scenario.server(server)
        if s is None:
            raise SessionRefused(f"The server {server} is not an Exchange server of this organisation.")
        if _same_user(user, lab._scenario.admin_user) and not lab._scenario.remote_powershell_enabled:
            raise SessionRefused(
                f"Connecting to remote server {s.fqdn} failed with the following error message : [ClientAccessServer="
                f"{s.name.upper()},BackEndServer={s.fqdn},RequestId=00000000-0000-0000-0000-000000000000,"
                "TimeStamp=1/1/2026 12:00:00 AM] Access Denied. For more information, see the "
                "about_Remote_Troubleshooting Help topic. (RemotePowerShellEnabled is $false for "
                f"{user}.)")
        return RpsSession(server=s.name, user=user, can_delegate=can_delegate)


def command_metadata(lab: "LabExchange", session: RpsSession, cmdlet: str) -> list[str] | None:
    """Parameter names visible to this session under RBAC; None = not a command for this user."""
    entry = _command(cmdlet)
    if entry is None:
        return None
    allowed, params, gated = entry
    with lab._lock:
        roles = _roles_of(lab, session.user)
    if not roles & allowed:
        return None
    return [p for p in params if p not in gated or ORG_CONFIG in roles]


def _command(cmdlet: str) -> tuple[set[str], list[str], set[str]] | None:
    for name, entry in _COMMANDS.items():
        if name.lower() == cmdlet.lower():
            return entry
    return None


# ----------------------------------------------------------------------------------------------------
# Invocation
# ----------------------------------------------------------------------------------------------------
def invoke_cmdlet(lab: "LabExchange", session: RpsSession, cmdlet: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one cmdlet with its parameters as this session's user. Raises CmdletError."""
    visible = command_metadata(lab, session, cmdlet)
    canonical = next((n for n in _COMMANDS if n.lower() == cmdlet.lower()), cmdlet)
    if visible is None:
        raise CmdletError(
            f"The term '{cmdlet}' is not recognized as the name of a cmdlet, function, script file, or operable "
            "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
            "and try again.", category="ObjectNotFound", error_id="CommandNotFoundException", target=cmdlet)
    given: dict[str, Any] = {}
    for key, value in params.items():
        name = next((p for p in visible if p.lower() == key.lower()), None)
        if name is None:
            raise CmdletError(f"A parameter cannot be found that matches parameter name '{key}'.",
                              category="InvalidArgument", error_id=f"NamedParameterNotFound,{canonical}",
                              target=key)
        given[name] = value
    lab._record_cmdlet(session.server, canonical, sorted(given))
    fault, slow = lab.fault(session.server)
    if fault == "slow":
        import time

        time.sleep(slow)
    handler: Callable[..., list[dict[str, Any]]] = _HANDLERS[canonical]
    with lab._lock:
        return handler(lab, session, given)


def _not_found(lab: "LabExchange", identity: str) -> CmdletError:
    return CmdletError(f"The operation couldn't be performed because object '{identity}' couldn't be found on "
                       f"'dc1.{lab._scenario.domain}'.", category="NotSpecified",
                       error_id="ManagementObjectNotFoundException", target=identity)


def _server(lab: "LabExchange", identity: Any) -> LabServer:
    text = str(identity or "")
    if "\\" in text:  # a virtual directory identity: "EX01\mapi (Default Web Site)"
        text = text.split("\\", 1)[0]
    s = lab._scenario.server(text)
    if s is None:
        raise _not_found(lab, str(identity))
    return s


def _unavailable(lab: "LabExchange", s: LabServer, what: str, cmdlet: str) -> Unavailable:
    return Unavailable(f"{what} of {s.name} could not be read: the server {s.fqdn} is unavailable (the RPC server "
                       "is unavailable).", category="ReadError", error_id=f"ServerUnavailable,{cmdlet}", target=s.name)


def _contactable(lab: "LabExchange", s: LabServer, session: RpsSession) -> bool:
    """Whether the endpoint of `session` reaches `s` itself (its registry, its IIS metabase): not when `s` is
    down. The session's own server is always reached (the session runs there)."""
    return s.name.lower() == session.server.lower() or lab.fault(s.name)[0] != "unreachable"


def _servers(lab: "LabExchange", given: dict[str, Any]) -> list[LabServer]:
    ident = given.get("Identity", given.get("Server"))
    if ident is None:
        return list(lab._scenario.servers)
    return [_server(lab, ident)]


def _site(lab: "LabExchange", s: LabServer) -> str:
    return f"{lab._scenario.domain}/Configuration/Sites/{s.site}"


def _get_exchange_server(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Name": s.name, "Fqdn": s.fqdn, "Identity": s.name, "AdminDisplayVersion": s.version,
             "ServerRole": ", ".join(s.roles), "Site": _site(lab, s),
             "IsClientAccessServer": "Edge" not in s.roles, "IsMailboxServer": "Mailbox" in s.roles,
             "IsEdgeServer": "Edge" in s.roles} for s in _servers(lab, given)]


def _credential_entry(c: LabCredential, with_password: bool) -> dict[str, Any]:
    when = c.when.astimezone(timezone.utc)
    password = c.password if with_password else None
    return {"QualifiedUserName": c.account, "WhenAdded": when, "WhenAddedUtc": when,
            "Credential": PsCredential(c.account, password)}


def _asa_configuration(lab: "LabExchange", s: LabServer, with_password: bool) -> dict[str, Any]:
    creds = [_credential_entry(c, with_password) for c in s.credentials]
    return {"EffectiveCredentials": creds,
            "Latest": creds[0] if creds else None,
            "Previous": creds[1] if len(creds) > 1 else None}


def _get_client_access_service(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[Any]:
    """Organisation-wide without -Identity (Microsoft's documented verification command). The ASA status lives
    on each server: a server the endpoint cannot reach gets an error record in its row's place."""
    want_password = bool(given.get("IncludeAlternateServiceAccountCredentialPassword"))
    want_status = bool(given.get("IncludeAlternateServiceAccountCredentialStatus"))
    out: list[Any] = []
    for s in _servers(lab, given):
        if "Edge" in s.roles:
            continue
        if want_status and not want_password and not _contactable(lab, s, session):
            out.append(_unavailable(lab, s, "The alternate service account status", "Get-ClientAccessService"))
            continue
        if want_password and s.name.lower() != session.server.lower():
            raise CmdletError(
                f"The passwords of the alternate service account credentials of {s.name} can only be read through "
                f"a session on {s.name} itself (http://{s.fqdn}/PowerShell).", category="InvalidOperation",
                error_id="AlternateServiceAccountPasswordRemote,Get-ClientAccessService", target=s.name)
        ad = s.vdirs.get(Service.AUTODISCOVER)
        row: dict[str, Any] = {
            "Name": s.name, "Fqdn": s.fqdn, "Identity": s.name,
            "AutoDiscoverServiceInternalUri": (f"https://{ad.internal_host}/Autodiscover/Autodiscover.xml"
                                               if ad and ad.internal_host else None),
            "AutoDiscoverSiteScope": [s.site],
            "AlternateServiceAccountConfiguration": (_asa_configuration(lab, s, want_password)
                                                     if want_password or want_status else None),
        }
        out.append(row)
    return out


def _set_client_access_service(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[dict[str, Any]]:
    names = set(given)
    if names & _ASA_SET and names & _AUTODISCOVER_SET:
        raise CmdletError("Parameter set cannot be resolved using the specified named parameters.",
                          category="InvalidArgument", error_id="AmbiguousParameterSet,Set-ClientAccessService")
    if "Identity" not in given:
        raise CmdletError("Cannot process command because of one or more missing mandatory parameters: Identity.",
                          category="InvalidArgument", error_id="MissingMandatoryParameter,Set-ClientAccessService")
    s = _server(lab, given["Identity"])
    if given.get("WhatIf"):
        return []
    if names & _AUTODISCOVER_SET:
        if "AutoDiscoverServiceInternalUri" in given:
            from urllib.parse import urlsplit

            host = urlsplit(str(given["AutoDiscoverServiceInternalUri"])).hostname
            ad = s.vdirs.setdefault(Service.AUTODISCOVER, LabVdir(service=Service.AUTODISCOVER))
            ad.internal_host = host
        lab._tick()
        return []
    fault, _ = lab.fault(s.name)
    if fault == "access-denied":
        raise CmdletError(
            f"Active Directory operation failed on dc1.{lab._scenario.domain}. This error is not retriable. Additional "
            f"information: Access is denied. (the configuration of {s.name} is outside the write scope of "
            f"{session.user})", category="PermissionDenied",
            error_id="ADOperationException,Set-ClientAccessService", target=s.name)
    if fault == "fail-roll" or not s.service_host_running:
        raise CmdletError(
            f"The Microsoft Exchange Service Host service on {s.fqdn} did not answer: the alternate service account "
            "credentials were not changed.", category="InvalidOperation",
            error_id="AlternateServiceAccountUpdateFailed,Set-ClientAccessService", target=s.name)
    pushed = given.get("AlternateServiceAccountCredential")
    if pushed is None:
        pushed = []
    elif not isinstance(pushed, list):
        pushed = [pushed]
    new: list[LabCredential] = []
    when = lab._tick()
    for cred in pushed:
        user = str(getattr(cred, "user", "") or "")
        password = getattr(cred, "password", None)
        if "\\" not in user or password is None:
            raise CmdletError("The alternate service account credential must name DOMAIN\\account and carry its "
                              "password.", category="InvalidArgument",
                              error_id="InvalidAlternateServiceAccountCredential,Set-ClientAccessService")
        domain, _, sam = user.partition("\\")
        if domain.lower() != lab._scenario.netbios.lower() or lab.directory.account_digest(sam) is None:
            raise CmdletError(f"The user or computer account {user} was not found in Active Directory.",
                              category="ObjectNotFound",
                              error_id="AlternateServiceAccountNotFound,Set-ClientAccessService", target=user)
        secret = password if isinstance(password, Secret) else Secret(str(password))
        new.append(LabCredential(account=user, when=when, key_version=0,
                                 secret_digest=password_digest(secret.reveal()), held=HeldPassword(secret)))
    kept = list(s.credentials)
    if given.get("RemoveAlternateServiceAccountCredentials"):
        kept = []
    elif given.get("CleanUpInvalidAlternateServiceAccountCredentials"):
        kept = [c for c in kept if lab.credential_valid(c)]
    s.credentials = new + kept
    return []


def _oa_row(s: LabServer, v: LabVdir) -> dict[str, Any]:
    return {"Server": s.name, "Identity": f"{s.name}\\Rpc (Default Web Site)", "Name": "Rpc (Default Web Site)",
            "InternalHostname": v.internal_host, "ExternalHostname": v.external_host,
            "InternalClientAuthenticationMethod": v.internal_client_auth or "Ntlm",
            "ExternalClientAuthenticationMethod": v.external_client_auth or "Negotiate",
            "IISAuthenticationMethods": list(v.auth_methods), "SSLOffloading": bool(v.ssl_offloading),
            "AdminDisplayVersion": s.version}


def _per_server(lab: "LabExchange", session: RpsSession, given: dict[str, Any], service: Service, what: str,
                cmdlet: str, row: Callable[[LabServer, LabVdir], dict[str, Any]]) -> list[Any]:
    """One row per server with that virtual directory. Without -ADPropertiesOnly Exchange also reads each
    server's IIS metabase, so a server that is down gets an error record instead of its row; with it, the rows
    come from the directory alone."""
    out: list[Any] = []
    for s in _servers(lab, given):
        v = s.vdirs.get(service)
        if v is None:
            continue
        if not given.get("ADPropertiesOnly") and not _contactable(lab, s, session):
            out.append(_unavailable(lab, s, f"The {what} virtual directory's IIS settings", cmdlet))
            continue
        out.append(row(s, v))
    return out


def _vdir_rows(lab: "LabExchange", session: RpsSession, given: dict[str, Any], service: Service, name: str,
               extra: Callable[[LabVdir], dict[str, Any]], cmdlet: str) -> list[Any]:
    def row(s: LabServer, v: LabVdir) -> dict[str, Any]:
        return {"Server": s.name, "Identity": f"{s.name}\\{name} (Default Web Site)",
                "Name": f"{name} (Default Web Site)",
                "InternalUrl": f"https://{v.internal_host}/{name}" if v.internal_host else None,
                "ExternalUrl": f"https://{v.external_host}/{name}" if v.external_host else None, **extra(v)}

    return _per_server(lab, session, given, service, name, cmdlet, row)


def _get_outlook_anywhere(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[Any]:
    return _per_server(lab, session, given, Service.OUTLOOK_ANYWHERE, "Outlook Anywhere", "Get-OutlookAnywhere",
                       _oa_row)


def _vdir_for_set(lab: "LabExchange", given: dict[str, Any], service: Service, what: str) -> LabVdir:
    if "Identity" not in given:
        raise CmdletError("Cannot process command because of one or more missing mandatory parameters: Identity.",
                          category="InvalidArgument", error_id=f"MissingMandatoryParameter,Set-{what}")
    s = _server(lab, given["Identity"])
    v = s.vdirs.get(service)
    if v is None:
        raise _not_found(lab, str(given["Identity"]))
    return v


def _methods(value: Any, allowed: tuple[str, ...], parameter: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for m in items:
        match = next((a for a in allowed if a.lower() == str(m).lower()), None)
        if match is None:
            raise CmdletError(f"Cannot process argument transformation on parameter '{parameter}'. Cannot convert "
                              f"value \"{m}\" to type \"Microsoft.Exchange.Data.Directory.SystemConfiguration."
                              f"AuthenticationMethod\". Error: \"Unable to match the identifier name {m} to a valid "
                              f"enumerator name. Specify one of the following enumerator names and try again: "
                              f"{', '.join(allowed)}\"", category="InvalidData",
                              error_id=f"ParameterArgumentTransformationError,{parameter}")
        out.append(match)
    return out


def _set_outlook_anywhere(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[dict[str, Any]]:
    v = _vdir_for_set(lab, given, Service.OUTLOOK_ANYWHERE, "OutlookAnywhere")
    if given.get("WhatIf"):
        return []
    if "InternalClientAuthenticationMethod" in given:
        v.internal_client_auth = _methods(given["InternalClientAuthenticationMethod"], OA_CLIENT_METHODS,
                                          "InternalClientAuthenticationMethod")[0]
    if "ExternalClientAuthenticationMethod" in given:
        v.external_client_auth = _methods(given["ExternalClientAuthenticationMethod"], OA_CLIENT_METHODS,
                                          "ExternalClientAuthenticationMethod")[0]
    if "IISAuthenticationMethods" in given:
        v.auth_methods = _methods(given["IISAuthenticationMethods"], OA_CLIENT_METHODS, "IISAuthenticationMethods")
    lab._tick()
    return []


def _get_mapi(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[dict[str, Any]]:
    return _vdir_rows(lab, session, given, Service.MAPI, "mapi",
                      lambda v: {"IISAuthenticationMethods": list(v.auth_methods)}, "Get-MapiVirtualDirectory")


def _set_mapi(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[dict[str, Any]]:
    v = _vdir_for_set(lab, given, Service.MAPI, "MapiVirtualDirectory")
    if given.get("WhatIf"):
        return []
    if "IISAuthenticationMethods" in given:
        methods = _methods(given["IISAuthenticationMethods"], MAPI_METHODS, "IISAuthenticationMethods")
        if not methods:
            raise CmdletError("The IISAuthenticationMethods parameter can't be empty.", category="InvalidArgument",
                              error_id="ParameterArgumentValidationError,Set-MapiVirtualDirectory")
        v.auth_methods = methods
    lab._tick()
    return []


def _get_eas(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[dict[str, Any]]:
    return _vdir_rows(lab, session, given, Service.EAS, "Microsoft-Server-ActiveSync", lambda v: {
        "InternalAuthenticationMethods": list(v.auth_methods), "ExternalAuthenticationMethods": list(v.auth_methods),
        "BasicAuthEnabled": v.basic, "WindowsAuthEnabled": v.windows}, "Get-ActiveSyncVirtualDirectory")


def _get_ews(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[dict[str, Any]]:
    return _vdir_rows(lab, session, given, Service.EWS, "EWS", lambda v: {
        "InternalAuthenticationMethods": list(v.auth_methods), "ExternalAuthenticationMethods": list(v.auth_methods),
        "WindowsAuthentication": v.windows, "OAuthAuthentication": "OAuth" in v.auth_methods},
        "Get-WebServicesVirtualDirectory")


def _get_owa(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[dict[str, Any]]:
    return _vdir_rows(lab, session, given, Service.OWA, "owa", lambda v: {
        "InternalAuthenticationMethods": list(v.auth_methods), "ExternalAuthenticationMethods": list(v.auth_methods)},
        "Get-OwaVirtualDirectory")


def _get_user(lab: "LabExchange", session: RpsSession, given: dict[str, Any]) -> list[dict[str, Any]]:
    ident = str(given.get("Identity") or session.user)
    sc = lab._scenario
    if not _same_user(ident, sc.admin_user):
        raise _not_found(lab, ident)
    return [{"Name": sc.admin_user.split("\\")[-1], "SamAccountName": sc.admin_user.split("\\")[-1],
             "RemotePowerShellEnabled": sc.remote_powershell_enabled}]


_HANDLERS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "Get-ExchangeServer": _get_exchange_server,
    "Get-ClientAccessService": _get_client_access_service,
    "Set-ClientAccessService": _set_client_access_service,
    "Get-OutlookAnywhere": _get_outlook_anywhere,
    "Set-OutlookAnywhere": _set_outlook_anywhere,
    "Get-MapiVirtualDirectory": _get_mapi,
    "Set-MapiVirtualDirectory": _set_mapi,
    "Get-ActiveSyncVirtualDirectory": _get_eas,
    "Get-WebServicesVirtualDirectory": _get_ews,
    "Get-OwaVirtualDirectory": _get_owa,
    "Get-User": _get_user,
}


def utc(when: datetime) -> datetime:
    return when.astimezone(timezone.utc)


# ----------------------------------------------------------------------------------------------------
# What the endpoint asks of the model besides the cmdlets
# ----------------------------------------------------------------------------------------------------
VIEWER = "labviewer"  # a second lab logon: View-Only Organization Management (RBAC hides the ASA parameters)
VIEWER_PASSWORD = "LabView1!Only"


def lab_logons(lab: "LabExchange") -> dict[str, str]:
    """Extra lab users the endpoint accepts (user -> password), lab-only."""
    return {f"{lab._scenario.netbios}\\{VIEWER}": VIEWER_PASSWORD}


def session_can_delegate(lab: "LabExchange", server: str, user: str) -> bool:
    """The lab setting `[lab] sessions_can_delegate` (false: plain network logons, as Kerberos without
    delegation gives)."""
    return lab.sessions_can_delegate()
