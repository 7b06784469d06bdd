"""The `ExchangePort` as Microsoft documents Exchange administration: every Exchange cmdlet through the server's
own remote PowerShell endpoint (http://<fqdn>/PowerShell, configuration Microsoft.Exchange, Kerberos; the lab:
its loopback endpoint) as a command with parameters, and the Windows side (IIS, IIS_IUSRS, the service host,
logs, Microsoft's roll script when chosen) over WinRM.

No snap-in is loaded anywhere, so RBAC applies to every call, and the wizard reads RBAC the way Microsoft's
roll script does: from the command metadata (`-IncludeAlternateServiceAccountCredentialPassword` present =
the Organization Configuration role). Passwords travel only as `Secret` inside PSCredential objects, which
the PSRP layer encrypts with the runspace pool's session key: never in a script text, a command line or a log.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..core.errors import WizardError
from ..core.hosts import require_host
from ..core.model import AsaCredential, ExchangeServer, ExtendedProtection, IisAuth, Service, VirtualDirectory
from ..core.ports import Preflight, RollOutcome, RollResult, ServerState, Swap
from ..core.secrets import Secret
from .psrp import PsCredential
from .winrm import WinRmExchange, WinRmSettings, iis_auth

if TYPE_CHECKING:
    from .psrp import RpsSettings

ORG_CONFIG_FIX = ("Assign the Organization Configuration role (member of Organization Management) to the account "
                  "that runs the wizard, then run the pre-flight again.")
SECOND_HOP_FIX = ("Roll natively (the default: nothing has to hop), or enable CredSSP for this connection "
                  "(Enable-WSManCredSSP -Role Server on the server, -Role Client where the wizard runs) or give the "
                  "account Kerberos delegation to the servers' HTTP and LDAP services.")


class Rps(Protocol):
    """What this port needs of `adapters.psrp.ExchangeRps`."""

    def invoke(self, server: str, cmdlet: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def invoke_each(self, server: str, cmdlet: str, params: dict[str, Any] | None = None
                    ) -> tuple[list[dict[str, Any]], list[Any]]: ...

    def parameters(self, server: str, cmdlet: str) -> frozenset[str]: ...

    def close(self) -> None: ...


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _strings(v: Any) -> list[str]:
    return [str(x) for x in _as_list(v) if x not in (None, "")]


def _host(url: Any) -> str | None:
    if not url:
        return None
    from urllib.parse import urlsplit

    return urlsplit(str(url)).hostname


def _when(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, str) and v:
        from .powershell import parse_when

        return parse_when(v)
    return None


def credentials_of(row: dict[str, Any] | None) -> list[AsaCredential]:
    """EffectiveCredentials of one Get-ClientAccessService row, newest first (as Exchange orders them)."""
    conf = (row or {}).get("AlternateServiceAccountConfiguration") or {}
    out = []
    for c in _as_list(conf.get("EffectiveCredentials") if isinstance(conf, dict) else None):
        if isinstance(c, dict) and c.get("QualifiedUserName"):
            out.append(AsaCredential(account=str(c["QualifiedUserName"]),
                                     when_added=_when(c.get("WhenAddedUtc") or c.get("WhenAdded"))))
    return out


def _known(read: ServerState | None, part: str, service: Service) -> tuple[str, VirtualDirectory] | None:
    """The Identity and the state of the virtual directory `read` holds for `part`, when it read one."""
    if read is None or not read.identities.get(part):
        return None
    v = next((v for v in read.vdirs if v.service == service), None)
    return (read.identities[part], v) if v is not None else None


@dataclass
class _Organisation:
    """What one endpoint answered for the whole organisation, by lower-case server name."""

    # Get-ClientAccessService's rows: the servers this read covers
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    fqdn_to_name: dict[str, str] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)  # servers whose ASA status the endpoint could not read
    parts: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # part -> why the whole read failed


def _by_server(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(str(r.get("Server") or "").lower(), []).append(r)
    return out


def _untargeted(org: _Organisation, label: str, cmdlet: str, errors: list[Any]) -> None:
    """An error record that names no server is about the read as a whole: that part failed for every server."""
    untargeted = [e for e in errors if not getattr(e, "target", "")]
    if untargeted:
        org.failed[label] = f"{cmdlet}: {untargeted[0].problem}"


class EndpointExchange:
    """`ExchangePort`: Exchange cmdlets over `rps` (ExchangeRps), Windows-side scripts over `windows` (WinRM)."""

    def __init__(self, rps: Rps, windows: WinRmExchange | None, label: str = "") -> None:
        self.rps = rps
        self.windows = windows
        self.label = label

    # --- the port -----------------------------------------------------------------------------------
    def describe(self) -> str:
        settings = getattr(self.rps, "settings", None)
        rps = self.label or (settings.describe() if settings is not None else "Exchange remote PowerShell")
        win = self.windows.describe() if self.windows is not None else "no WinRM connection"
        return f"{rps}; Windows side: {win}"

    def inventory(self, via_server: str) -> list[ExchangeServer]:
        return [self._server_row(r) for r in self.rps.invoke(via_server, "Get-ExchangeServer")]

    @staticmethod
    def _server_row(r: dict[str, Any]) -> ExchangeServer:
        site = str(r.get("Site") or "")
        return ExchangeServer(name=str(r.get("Name") or ""), fqdn=str(r.get("Fqdn") or "").lower(),
                              version=str(r.get("AdminDisplayVersion") or ""),
                              roles=[x.strip() for x in str(r.get("ServerRole") or "").split(",") if x.strip()],
                              site=site.rsplit("/", 1)[-1])

    # the reads that make up a server's state: (label, cmdlet, service, IIS key from the Windows read, methods)
    _VDIR_READS = (("mapi", "Get-MapiVirtualDirectory", Service.MAPI, None, "IISAuthenticationMethods"),
                   ("eas", "Get-ActiveSyncVirtualDirectory", Service.EAS, "eas", "InternalAuthenticationMethods"),
                   ("ews", "Get-WebServicesVirtualDirectory", Service.EWS, "ews", "InternalAuthenticationMethods"),
                   ("owa", "Get-OwaVirtualDirectory", Service.OWA, None, "InternalAuthenticationMethods"))

    def read_server(self, server: str) -> ServerState:
        """One server through its own endpoint (what the rollout re-reads after a change)."""
        rows = self.rps.invoke(server, "Get-ExchangeServer", {"Identity": server})
        if not rows:
            from ..core.errors import NotFound

            raise NotFound(f"{server} is not an Exchange server of this organisation.",
                           "Use a name Get-ExchangeServer lists.")
        me = self._server_row(rows[0])
        name = me.name
        errors: dict[str, str] = {}

        def part(label: str, cmdlet: str, params: dict[str, Any]) -> list[dict[str, Any]]:
            try:
                return self.rps.invoke(server, cmdlet, params)
            except WizardError as exc:
                errors[label] = f"{cmdlet}: {exc.problem}"
                return []

        cas = part("asa", "Get-ClientAccessService",
                   {"Identity": name, "IncludeAlternateServiceAccountCredentialStatus": True})
        parts = {"outlook-anywhere": part("outlook-anywhere", "Get-OutlookAnywhere", {"Server": name})}
        win, _ = self._windows_read(server, errors)
        for label, cmdlet, *_ in self._VDIR_READS:
            parts[label] = part(label, cmdlet, {"Server": name})
        return self._state(me, cas[0] if cas else None, parts, win, errors)

    def read_parts(self, server: str, parts: set[str]) -> ServerState:
        """Only some parts of a server's state ("outlook-anywhere", "mapi", "eas", "ews", "owa", "asa",
        "windows"), each read as `read_server` reads it; what was not asked for is left empty, except that
        "windows" gives ActiveSync's and EWS's IIS settings on their own (without Exchange's view of those virtual
        directories). For a change's re-read: one call instead of the whole server."""
        errors: dict[str, str] = {}
        cas = None
        # -Identity / -Server take the server's name or FQDN (Microsoft's cmdlet reference)
        if "asa" in parts:
            rows = self.rps.invoke(server, "Get-ClientAccessService",
                                   {"Identity": server, "IncludeAlternateServiceAccountCredentialStatus": True})
            cas = rows[0] if rows else None
        found: dict[str, list[dict[str, Any]]] = {}
        if "outlook-anywhere" in parts:
            found["outlook-anywhere"] = self.rps.invoke(server, "Get-OutlookAnywhere", {"Server": server})
        for label, cmdlet, *_ in self._VDIR_READS:
            if label in parts:
                found[label] = self.rps.invoke(server, cmdlet, {"Server": server})
        named = (cas or {}).get("Name") or next((r.get("Server") for rows_ in found.values() for r in rows_
                                                 if r.get("Server")), None)
        me = ExchangeServer(name=str(named or server.split(".", 1)[0]), fqdn=server.lower())
        win = self._windows_read(server, errors)[0] if "windows" in parts else {}
        if "windows" in parts and "windows" in errors:
            raise WizardError(f"{server}: {errors['windows']}", "Check WinRM on that server, then retry.")
        state = self._state(me, cas, found, win, errors)
        iis = win.get("iis") or {}
        for label, _cmdlet, service, key, _methods in self._VDIR_READS:
            # IIS's own settings of a virtual directory not asked of Exchange: from the Windows read alone
            if key and label not in parts and isinstance(iis.get(key), dict):
                state.vdirs.append(VirtualDirectory(server=me.name, service=service, iis=iis_auth(iis[key])))
        if "asa" not in parts:
            me.asa_state_known = False
        return state

    def _state(self, me: ExchangeServer, cas: dict[str, Any] | None, parts: dict[str, list[dict[str, Any]]],
               win: dict[str, Any], errors: dict[str, str]) -> ServerState:
        name = me.name
        creds = credentials_of(cas) if cas else []
        me.asa_latest = creds[0] if creds else None
        me.asa_previous = creds[1] if len(creds) > 1 else None
        me.asa_state_known = "asa" not in errors
        me.reachable = True
        vdirs: list[VirtualDirectory] = []
        for o in parts.get("outlook-anywhere", [])[:1]:
            vdirs.append(VirtualDirectory(server=name, service=Service.OUTLOOK_ANYWHERE,
                                          internal_host=o.get("InternalHostname") or None,
                                          external_host=o.get("ExternalHostname") or None,
                                          auth_methods=_strings(o.get("IISAuthenticationMethods")),
                                          internal_client_auth=o.get("InternalClientAuthenticationMethod") or None,
                                          external_client_auth=o.get("ExternalClientAuthenticationMethod") or None))
        iis = win.get("iis") or {}
        for label, _cmdlet, service, key, methods in self._VDIR_READS:
            for v in parts.get(label, [])[:1]:
                vdirs.append(VirtualDirectory(server=name, service=service, internal_host=_host(v.get("InternalUrl")),
                                              external_host=_host(v.get("ExternalUrl")),
                                              auth_methods=_strings(v.get(methods)),
                                              iis=iis_auth(iis[key]) if key and isinstance(iis.get(key), dict) else None))
        autod = cas.get("AutoDiscoverServiceInternalUri") if cas else None
        svchost = win.get("svchost")
        me.service_host_running = bool(svchost) if svchost is not None else None
        return ServerState(server=me, vdirs=vdirs, iis_iusrs=_strings(win.get("iusrs")),
                           autodiscover_uri=str(autod) if autod else None, credentials=creds, errors=errors,
                           iis_log_folder=str(win.get("logdir") or "") or None,
                           identities={label: str(rows[0]["Identity"]) for label, rows in parts.items()
                                       if rows and rows[0].get("Identity")})

    def read_servers(self, servers: list[str], *, concurrency: int = 8,
                     done: "Callable[[str, ServerState | WizardError], None] | None" = None,
                     cancel: threading.Event | None = None) -> dict[str, ServerState | WizardError]:
        """Every server, the way an administrator reads an organisation. The Exchange cmdlets run once, through
        one server's endpoint, for all servers: Get-ClientAccessService
        -IncludeAlternateServiceAccountCredentialStatus (Microsoft's documented verification command) and the
        virtual directories with -ADPropertiesOnly; the servers' names, versions and sites are the directory's.
        Then each server's Windows side is read over WinRM (one script), `concurrency` at a time. A server the
        organisation-wide read could not cover (its status unreadable, the server down, not a client access
        server) is read through its own endpoint instead, which names what is wrong with it. Keys: the names
        given; `done(name, result)` is called as each server is finished."""
        out: dict[str, ServerState | WizardError] = {}
        org = self._organisation(servers)

        def one(key: str) -> None:
            if cancel is not None and cancel.is_set():
                return
            result: ServerState | WizardError | None
            try:
                result = self._from_organisation(key, org) if org is not None else None
                if result is None:
                    result = self.read_server(key)
                    result.extended_protection = self._read_ep(key)
            except WizardError as exc:
                result = exc
            out[key] = result
            if done is not None:
                done(key, result)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="read-servers") as pool:
            list(pool.map(one, servers))
        return out

    def _organisation(self, servers: list[str]) -> "_Organisation | None":
        """The organisation-wide reads through the first server whose endpoint answers; None if none does."""
        for via in servers[:3]:
            try:  # the first endpoint that answers reads for all (the directory already named every server)
                cas, errs = self.rps.invoke_each(via, "Get-ClientAccessService",
                                                 {"IncludeAlternateServiceAccountCredentialStatus": True})
            except WizardError:
                continue
            org = _Organisation()
            _untargeted(org, "asa", "Get-ClientAccessService", errs)
            for r in cas:
                name = str(r.get("Name") or "").lower()
                org.servers[name] = r
                org.fqdn_to_name[str(r.get("Fqdn") or "").lower()] = name
            org.unreadable = {e.target.lower() for e in errs if e.target}
            oa, _ = self._each(via, "Get-OutlookAnywhere", {"ADPropertiesOnly": True}, "outlook-anywhere", org)
            org.parts["outlook-anywhere"] = _by_server(oa)
            for label, cmdlet, *_ in self._VDIR_READS:
                rows_, _ = self._each(via, cmdlet, {"ADPropertiesOnly": True}, label, org)
                org.parts[label] = _by_server(rows_)
            return org
        return None

    def _each(self, via: str, cmdlet: str, params: dict[str, Any], label: str,
              org: "_Organisation") -> tuple[list[dict[str, Any]], list[Any]]:
        try:
            rows, errors = self.rps.invoke_each(via, cmdlet, params)
        except WizardError as exc:
            org.failed[label] = f"{cmdlet}: {exc.problem}"
            return [], []
        _untargeted(org, label, cmdlet, errors)
        return rows, errors

    def _from_organisation(self, server: str, org: "_Organisation") -> ServerState | None:
        key = server.lower()
        name = org.fqdn_to_name.get(key, key)
        row = org.servers.get(name)
        if row is None or name in org.unreadable:
            return None  # not covered (its status unreadable, not a client access server): its own endpoint
        me = ExchangeServer(name=str(row.get("Name") or ""), fqdn=str(row.get("Fqdn") or "").lower())
        errors: dict[str, str] = dict(org.failed)
        parts = {label: org.parts.get(label, {}).get(name, []) for label in org.parts}
        win, ep = self._windows_read(server, errors, with_ep=True)  # one script: the Windows side and EP
        state = self._state(me, row, parts, win, errors)
        oa = parts.get("outlook-anywhere") or []
        if ep is not None and ep.error is None:
            offload = oa[0].get("SSLOffloading") if oa and "outlook-anywhere" not in org.failed else None
            ep = dataclasses.replace(ep, ssl_offloading=None if offload is None else bool(offload))
        state.extended_protection = ep
        return state

    def _read_ep(self, server: str) -> ExtendedProtection:
        """`read_extended_protection`, a failure kept as the reason it could not be read."""
        try:
            return self.read_extended_protection(server)
        except WizardError as exc:
            return ExtendedProtection(server=server, error=str(exc))

    def _windows_read(self, server: str, errors: dict[str, str], *, with_ep: bool = False
                      ) -> tuple[dict[str, Any], ExtendedProtection | None]:
        """The Windows side (and Extended Protection too with `with_ep`, in the same script); each failed part
        goes to `errors` under its name, a failed read as a whole under "windows"."""
        if self.windows is None:
            errors["windows"] = "no WinRM connection: IIS, IIS_IUSRS and the service host were not read"
            return {}, self._read_ep(server) if with_ep else None
        try:
            d, ep = self.windows.read_windows_ep(server) if with_ep else (self.windows.read_windows(server), None)
        except WizardError as exc:
            errors["windows"] = exc.problem
            return {}, ExtendedProtection(server=server, error=str(exc)) if with_ep else None
        for e in _as_list(d.get("errors")):
            if isinstance(e, dict):
                errors[str(e.get("part") or "windows")] = str(e.get("message") or "failed")
        return d, ep

    def preflight(self, server: str) -> Preflight:
        out = Preflight(server=server)
        try:
            both = getattr(self.rps, "parameters_of", None)
            if both is not None:  # one GetCommandMetadata call for the two cmdlets
                found = both(server, ["Get-ClientAccessService", "Set-ClientAccessService"])
                get_params, set_params = found["Get-ClientAccessService"], found["Set-ClientAccessService"]
            else:
                get_params = self.rps.parameters(server, "Get-ClientAccessService")
                set_params = self.rps.parameters(server, "Set-ClientAccessService")
        except WizardError as exc:
            out.problems.append((f"{server}: {exc.problem}", exc.fix))
            return out
        out.checked.append(f"the endpoint of {server} answers and accepts the session (RemotePowerShellEnabled)")
        if "IncludeAlternateServiceAccountCredentialPassword" not in get_params:
            out.problems.append((f"On {server}, Get-ClientAccessService does not offer "
                                 "-IncludeAlternateServiceAccountCredentialPassword: the account lacks the "
                                 "'Organization Configuration' role.", ORG_CONFIG_FIX))
        if "AlternateServiceAccountCredential" not in set_params:
            out.problems.append((f"On {server}, Set-ClientAccessService does not offer "
                                 "-AlternateServiceAccountCredential: the account lacks the 'Organization "
                                 "Configuration' role.", ORG_CONFIG_FIX))
        if not out.problems:
            out.checked.append(f"RBAC on {server}: the Organization Configuration role (the ASA parameters are shown)")
        return out

    def _latest(self, server: str) -> AsaCredential | None:
        rows = self.rps.invoke(server, "Get-ClientAccessService",
                               {"Identity": server, "IncludeAlternateServiceAccountCredentialStatus": True})
        creds = credentials_of(rows[0]) if rows else []
        return creds[0] if creds else None

    def push_credential(self, server: str, account: str, password: Secret) -> RollResult:
        try:
            self.rps.invoke(server, "Set-ClientAccessService", {
                "Identity": server, "CleanUpInvalidAlternateServiceAccountCredentials": True,
                "AlternateServiceAccountCredential": PsCredential(account, password)})
            latest = self._latest(server)
        except WizardError as exc:
            return RollResult(server, RollOutcome.FAILED, exc.problem, exc.fix)
        return RollResult(server, RollOutcome.SUCCEEDED, f"{server} holds the new credential of {account}",
                          latest=latest)

    def copy_credentials(self, server: str, source: str) -> RollResult:
        try:
            rows = self.rps.invoke(source, "Get-ClientAccessService", {
                "Identity": source, "IncludeAlternateServiceAccountCredentialPassword": True})
        except WizardError as exc:
            return RollResult(server, RollOutcome.FAILED, f"Cannot read the credentials of {source}: {exc.problem}",
                              exc.fix)
        conf = (rows[0].get("AlternateServiceAccountConfiguration") or {}) if rows else {}
        creds = [c.get("Credential") for c in _as_list(conf.get("EffectiveCredentials"))
                 if isinstance(c, dict) and isinstance(c.get("Credential"), PsCredential)]
        creds = [c for c in creds if c.password is not None]
        if not creds:
            return RollResult(server, RollOutcome.FAILED,
                              f"{source} holds no credential to copy: a copy would leave {server} with none.",
                              "Copy from a server that holds the current credential, or roll a new password.")
        try:
            self.rps.invoke(server, "Set-ClientAccessService", {
                "Identity": server, "RemoveAlternateServiceAccountCredentials": True,
                "AlternateServiceAccountCredential": creds})
            latest = self._latest(server)
        except WizardError as exc:
            return RollResult(server, RollOutcome.FAILED, exc.problem, exc.fix)
        return RollResult(server, RollOutcome.SUCCEEDED,
                          f"{server} now holds the {len(creds)} credential(s) of {source} (its own were replaced)",
                          latest=latest)

    def credential_passwords(self, server: str, account: str) -> list[Secret]:
        from ..core.current import same_account

        rows = self.rps.invoke(server, "Get-ClientAccessService", {
            "Identity": server, "IncludeAlternateServiceAccountCredentialPassword": True})
        conf = (rows[0].get("AlternateServiceAccountConfiguration") or {}) if rows else {}
        creds = [c.get("Credential") for c in _as_list(conf.get("EffectiveCredentials")) if isinstance(c, dict)]
        return [c.password for c in creds
                if isinstance(c, PsCredential) and c.password is not None and same_account(c.user, account)]

    def roll_with_script(self, run_on: str, servers: list[str], account: str) -> RollResult:
        if self.windows is None:
            return RollResult(run_on, RollOutcome.FAILED, "Microsoft's script runs over WinRM, which is not connected.",
                              "Give the WinRM settings, or roll natively.")
        return self.windows.run_roll_script(run_on, servers, account)

    def second_hop(self, server: str, other: str) -> list[tuple[str, str]]:
        if self.windows is None:
            return [("The hop cannot be tested: WinRM is not connected.", "Give the WinRM settings.")]
        require_host(other, "Exchange server name")  # the hop's script builds http://<other>/PowerShell/ from it
        d = self.windows.hop_check(server, other)
        problems = []
        if d["session"]:
            problems.append((f"From inside a session on {server}, a session to {other}'s endpoint failed (second "
                             f"hop): {d['session']}", SECOND_HOP_FIX))
        if d["ldap"]:
            problems.append((f"From inside a session on {server}, binding to a domain controller failed (second "
                             f"hop): {d['ldap']}", SECOND_HOP_FIX))
        return problems

    def remove_asa(self, server: str) -> None:
        self.rps.invoke(server, "Set-ClientAccessService",
                        {"Identity": server, "RemoveAlternateServiceAccountCredentials": True})

    def set_outlook_anywhere_client_auth(self, server: str, method: str, read: ServerState | None = None
                                         ) -> str | None:
        """Set-OutlookAnywhere -Identity <the virtual directory> -InternalClientAuthenticationMethod: by the Identity
        `read` (a change's re-read of this server) names, with the value it read as the previous one; without
        it, Get-OutlookAnywhere -Server first."""
        known = _known(read, "outlook-anywhere", Service.OUTLOOK_ANYWHERE)
        if known is not None:
            identity, v = known
            previous = v.internal_client_auth
        else:
            row = self._vdir_row(server, "Get-OutlookAnywhere", "Outlook Anywhere")
            identity, previous = str(row.get("Identity")), row.get("InternalClientAuthenticationMethod")
        self.rps.invoke(server, "Set-OutlookAnywhere", {"Identity": identity,
                                                        "InternalClientAuthenticationMethod": method})
        return str(previous) if previous else None

    def set_mapi_auth_methods(self, server: str, methods: list[str], read: ServerState | None = None) -> list[str]:
        """Set-MapiVirtualDirectory -Identity <the virtual directory> -IISAuthenticationMethods, `read` as for
        `set_outlook_anywhere_client_auth`."""
        known = _known(read, "mapi", Service.MAPI)
        if known is not None:
            identity, previous = known[0], list(known[1].auth_methods)
        else:
            row = self._vdir_row(server, "Get-MapiVirtualDirectory", "MAPI")
            identity, previous = str(row.get("Identity")), _strings(row.get("IISAuthenticationMethods"))
        self.rps.invoke(server, "Set-MapiVirtualDirectory", {"Identity": identity,
                                                             "IISAuthenticationMethods": list(methods)})
        return previous

    def _vdir_row(self, server: str, cmdlet: str, what: str) -> dict[str, Any]:
        rows = self.rps.invoke(server, cmdlet, {"Server": server})
        if not rows:
            from ..core.errors import NotFound

            raise NotFound(f"{server} has no {what} virtual directory.", "Check the server's roles.")
        return rows[0]

    def _win(self) -> WinRmExchange:
        if self.windows is None:
            from ..core.errors import PolicyRefused

            raise PolicyRefused("This change is made on Windows over WinRM, which is not connected.",
                                "Give the WinRM settings of the servers.")
        return self.windows

    def add_iis_iusrs(self, server: str, member: str) -> bool:
        return self._win().add_iis_iusrs(server, member)

    def remove_iis_iusrs(self, server: str, member: str) -> bool:
        return self._win().remove_iis_iusrs(server, member)

    def set_iis_auth(self, server: str, application: str, auth: IisAuth) -> IisAuth:
        return self._win().set_iis_auth(server, application, auth)

    def change_iis_auth(self, server: str, application: str, old: IisAuth, new: IisAuth) -> Swap:
        return self._win().change_iis_auth(server, application, old, new)

    def fetch_log(self, server: str, kind: str, max_lines: int = 2000) -> str:
        return self._win().fetch_log(server, kind, max_lines)

    def read_extended_protection(self, server: str) -> ExtendedProtection:
        """IIS's tokenChecking and ExSetup's version over WinRM (Windows-side), Outlook Anywhere's SSLOffloading
        through the server's Exchange endpoint."""
        ep = self._win().read_extended_protection(server)
        rows = self.rps.invoke(server, "Get-OutlookAnywhere", {"Server": server})
        offload = rows[0].get("SSLOffloading") if rows else None
        return dataclasses.replace(ep, ssl_offloading=None if offload is None else bool(offload))

    def close(self) -> None:
        self.rps.close()
        if self.windows is not None:
            self.windows.close()


def real_exchange(winrm: WinRmSettings, rps: "RpsSettings | None" = None) -> EndpointExchange:
    """The port for a real organisation: Exchange cmdlets over http://<fqdn>/PowerShell (Kerberos with message
    encryption, SPN HTTP/<fqdn>, as the WinRM account unless `rps` says otherwise), Windows over WinRM."""
    from .psrp import ExchangeRps, RpsSettings

    if rps is None:
        auth = {"kerberos": "kerberos", "credssp": "credssp", "ntlm": "negotiate", "basic": "basic"}[winrm.transport]
        scheme, port = ("https", 443) if auth == "basic" else ("http", 80)
        rps = RpsSettings(scheme=scheme, port=port, auth=auth, user=winrm.user or None, password=winrm.password,
                          ca_file=winrm.ca_file, insecure_skip_tls_verify=not winrm.validate_certificate,
                          delegate=winrm.transport == "credssp")
    return EndpointExchange(ExchangeRps(rps), WinRmExchange(winrm))
