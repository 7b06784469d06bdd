"""Step client-auth: Negotiate for Outlook Anywhere and MAPI over HTTP (OAuth kept)."""

from __future__ import annotations

from ..changes import Change, System
from ..commands import command, pipeline
from ..model import ExchangeServer, Service
from .base import PlannerBase


class ClientAuthRules(PlannerBase):
    """Outlook Anywhere's internal client authentication to Negotiate; Negotiate added to MAPI."""

    def plan_client_auth(self, servers: list[ExchangeServer]) -> None:
        ca = self.a.client_auth
        for s in servers:
            if ca.outlook_anywhere:
                for v in self.env.vdirs_for(s.name, Service.OUTLOOK_ANYWHERE):
                    if (v.internal_client_auth or "").lower() == "negotiate":
                        continue
                    old = v.internal_client_auth
                    self.add(Change(
                        id=f"auth.oa:{s.name}", system=System.EXCHANGE, action="set-oa-client-auth", target=s.name,
                        summary=f"Outlook Anywhere on {s.name}: internal client authentication {old or 'unset'} "
                                "-> Negotiate",
                        attribute="InternalClientAuthenticationMethod", old=old, new="Negotiate",
                        params={"server": s.fqdn, "method": "Negotiate"},
                        commands=[pipeline(command("Get-OutlookAnywhere", Server=s.name),
                                           command("Set-OutlookAnywhere", InternalClientAuthenticationMethod="Negotiate"))],
                        undo_commands=[pipeline(command("Get-OutlookAnywhere", Server=s.name),
                                                command("Set-OutlookAnywhere",
                                                        InternalClientAuthenticationMethod=old or "Ntlm"))],
                        proven_by=["auth.outlook-anywhere"], step="client-auth",
                        depends_on=self.spn_deps_for(s, Service.OUTLOOK_ANYWHERE)))
            if ca.mapi:
                for v in self.env.vdirs_for(s.name, Service.MAPI):
                    if any(m.lower() == "negotiate" for m in v.auth_methods):
                        continue
                    old_m = list(v.auth_methods)
                    new_m = old_m + ["Negotiate"]
                    self.add(Change(
                        id=f"auth.mapi:{s.name}", system=System.EXCHANGE, action="set-mapi-auth", target=s.name,
                        summary=f"MAPI over HTTP on {s.name}: add Negotiate ({', '.join(old_m) or 'none'} -> "
                                f"{', '.join(new_m)})",
                        attribute="IISAuthenticationMethods", old=old_m, new=new_m,
                        params={"server": s.fqdn, "methods": new_m},
                        commands=[pipeline(command("Get-MapiVirtualDirectory", Server=s.name),
                                           command("Set-MapiVirtualDirectory", IISAuthenticationMethods=new_m))],
                        undo_commands=[pipeline(command("Get-MapiVirtualDirectory", Server=s.name),
                                                command("Set-MapiVirtualDirectory", IISAuthenticationMethods=old_m))]
                        if old_m else [],
                        proven_by=["auth.mapi"], step="client-auth", depends_on=self.spn_deps_for(s, Service.MAPI),
                        warning=None if "oauth" in (m.lower() for m in old_m) or not self.env.hybrid else
                        "Hybrid organisation without OAuth on MAPI: check the hybrid configuration."))
