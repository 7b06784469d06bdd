"""Step iis-auth: Windows authentication with Negotiate on ActiveSync (and EWS when the gateway proxies it)."""

from __future__ import annotations

from dataclasses import asdict

from ..changes import Change, System
from ..commands import assign, command, hashtable, script_block, statements, variable
from ..model import ExchangeServer, IisAuth, Service
from .base import PlannerBase

IIS_APPS = {Service.EAS: "Microsoft-Server-ActiveSync", Service.EWS: "EWS"}
IIS_SITE = "Default Web Site"
IIS_RESET_WARNING = ("Exchange cumulative updates may reset IIS settings made outside the Exchange cmdlets: "
                     "run the check again after every update.")


class IisAuthRules(PlannerBase):
    """IIS authentication of ActiveSync (and EWS) for the gateway's Kerberos tickets."""

    def plan_iis_auth(self, servers: list[ExchangeServer]) -> None:
        services = [Service.EAS] + ([Service.EWS] if self.a.seg.ews_proxy else [])
        for s in servers:
            for service in services:
                vdirs = self.env.vdirs_for(s.name, service)
                if not vdirs:
                    continue
                old = vdirs[0].iis or IisAuth()
                providers = ["Negotiate"] + [p for p in old.providers if p.lower() != "negotiate"]
                want = IisAuth(basic=False, windows=True, providers=providers, use_kernel_mode=True,
                               use_app_pool_credentials=True)
                if want == old:
                    continue
                app = IIS_APPS[service]
                key = "eas" if service == Service.EAS else "ews"
                deps = self.spn_deps_for(s, service) + list(self.seg_ids)
                if s.name.lower() in self.iusrs_ids:
                    deps.append(self.iusrs_ids[s.name.lower()])
                self.add(Change(
                    id=f"iis.{key}:{s.name}", system=System.EXCHANGE, action="set-iis-auth", target=s.name,
                    summary=f"{service.title} on {s.name}: {_iis_summary(old, want)}",
                    attribute=f"{IIS_SITE}/{app} authentication", old=asdict(old), new=asdict(want),
                    params={"server": s.fqdn, "application": app, "auth": asdict(want)},
                    commands=[_iis_script(s.fqdn, app, old, want)], undo_commands=[_iis_script(s.fqdn, app, want, old)],
                    proven_by=["kcd.eas-auth" if service == Service.EAS else "kcd.ews-auth"], step="iis-auth",
                    depends_on=list(dict.fromkeys(deps)), warning=IIS_RESET_WARNING))


def _iis_summary(old: IisAuth, new: IisAuth) -> str:
    parts = []
    if old.basic != new.basic:
        parts.append(f"Basic {'on' if new.basic else 'off'}")
    if old.windows != new.windows:
        parts.append(f"Windows authentication {'on' if new.windows else 'off'}")
    if old.providers != new.providers:
        parts.append(f"providers {', '.join(old.providers) or 'none'} -> {', '.join(new.providers)}")
    if old.use_kernel_mode != new.use_kernel_mode:
        parts.append(f"useKernelMode {str(new.use_kernel_mode).lower()}")
    if old.use_app_pool_credentials != new.use_app_pool_credentials:
        parts.append(f"useAppPoolCredentials {str(new.use_app_pool_credentials).lower()}")
    return "; ".join(parts)


def _iis_script(fqdn: str, app: str, old: IisAuth, new: IisAuth) -> str:
    """The IIS settings that differ between `old` and `new`, as one Invoke-Command block for that server."""
    auth = "system.webServer/security/authentication"
    where = {"PSPath": variable("psPath"), "Location": variable("location")}
    lines = [statements(assign("psPath", "MACHINE/WEBROOT/APPHOST"), assign("location", IIS_SITE + "/" + app))]

    def prop(section: str, name: str, value: bool) -> None:
        lines.append(command("Set-WebConfigurationProperty", **where, Filter=auth + "/" + section, Name=name,
                             Value=value))

    if old.basic != new.basic:
        prop("basicAuthentication", "enabled", new.basic)
    if old.windows != new.windows:
        prop("windowsAuthentication", "enabled", new.windows)
    if old.use_kernel_mode != new.use_kernel_mode:
        prop("windowsAuthentication", "useKernelMode", new.use_kernel_mode)
    if old.use_app_pool_credentials != new.use_app_pool_credentials:
        prop("windowsAuthentication", "useAppPoolCredentials", new.use_app_pool_credentials)
    if old.providers != new.providers:
        flt = auth + "/windowsAuthentication/providers"
        lines.append(command("Clear-WebConfiguration", **where, Filter=flt))
        for p in new.providers:
            lines.append(command("Add-WebConfigurationProperty", **where, Filter=flt, Name=".",
                                 Value=hashtable({"value": p})))
    return command("Invoke-Command", ComputerName=fqdn, ScriptBlock=script_block(*lines, multiline=True))
