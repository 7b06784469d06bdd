"""The lab's own view of a scenario as a domain `Environment`, straight from the scenario file.

Two uses: the conventions every lab part shares (DNs, account flags, SPNs of the server accounts) live
here, once; and tests compare what the wizard *discovers* through the real adapters with what the
scenario *says*, so a discovery bug cannot hide behind a test that reads its own output.
"""

from __future__ import annotations

from ..core.model import (
    Account,
    AccountKind,
    AsaCredential,
    Domain,
    Environment,
    ExchangeServer,
    Forest,
    IisAuth,
    SegConfig,
    Service,
    UAC_ACCOUNTDISABLE,
    UAC_DONT_EXPIRE_PASSWD,
    UAC_NORMAL_ACCOUNT,
    UAC_NOT_DELEGATED,
    UAC_TRUSTED_FOR_DELEGATION,
    UAC_TRUSTED_TO_AUTH_FOR_DELEGATION,
    UAC_WORKSTATION_TRUST_ACCOUNT,
    VirtualDirectory,
    derive_namespaces,
)
from .scenario import LabAccount, LabServer, Scenario

ADMIN_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"
# serverRole bits for msExchCurrentServerRoles
ROLE_VALUES = {"Mailbox": 2, "ClientAccess": 4, "UnifiedMessaging": 16, "HubTransport": 32, "Edge": 64}


# --- names ---------------------------------------------------------------------------------------------
def configuration_dn(s: Scenario) -> str:
    return f"CN=Configuration,{s.domain_dn}"


def exchange_org_dn(s: Scenario) -> str:
    return f"CN={s.organization},CN=Microsoft Exchange,CN=Services,{configuration_dn(s)}"


def servers_container_dn(s: Scenario) -> str:
    return f"CN=Servers,CN={ADMIN_GROUP},CN=Administrative Groups,{exchange_org_dn(s)}"


def exchange_server_dn(s: Scenario, server: LabServer) -> str:
    return f"CN={server.name},{servers_container_dn(s)}"


def site_dn(s: Scenario, site: str) -> str:
    return f"CN={site},CN=Sites,{configuration_dn(s)}"


def account_dn(s: Scenario, a: LabAccount) -> str:
    cn = a.sam[:-1] if a.sam.endswith("$") else a.sam
    ou = a.ou if a.ou.lower().endswith(s.domain_dn.lower()) else f"{a.ou},{s.domain_dn}"
    return f"CN={cn},{ou}"


def server_computer_account(s: Scenario, server: LabServer) -> LabAccount:
    """Every Exchange server has its own computer account (name$) with the usual HOST SPNs."""
    spns = [f"HOST/{server.name.upper()}", f"HOST/{server.fqdn}",
            f"exchangeMDB/{server.fqdn}", f"exchangeRFR/{server.fqdn}", *server.extra_spns]
    return LabAccount(sam=f"{server.name.upper()}$", kind=AccountKind.COMPUTER, ou="CN=Computers", spns=spns,
                      enctypes=28, pwd_last_set=s.now, key_version=1, description="")


def all_accounts(s: Scenario) -> list[LabAccount]:
    """The scenario's accounts plus the servers' computer accounts (an explicit entry wins)."""
    named = {a.sam.lower() for a in s.accounts}
    out = list(s.accounts)
    for server in s.servers:
        auto = server_computer_account(s, server)
        if auto.sam.lower() not in named:
            out.append(auto)
    return out


def account_uac(a: LabAccount) -> int:
    if a.uac is not None:
        return a.uac
    if a.kind == AccountKind.COMPUTER:
        uac = UAC_WORKSTATION_TRUST_ACCOUNT
    elif a.kind == AccountKind.GMSA:
        uac = UAC_WORKSTATION_TRUST_ACCOUNT
    else:
        uac = UAC_NORMAL_ACCOUNT | (UAC_DONT_EXPIRE_PASSWD if a.dont_expire else 0)
    if not a.enabled:
        uac |= UAC_ACCOUNTDISABLE
    if a.trusted_to_auth:
        uac |= UAC_TRUSTED_TO_AUTH_FOR_DELEGATION
    if a.trusted_for_delegation:
        uac |= UAC_TRUSTED_FOR_DELEGATION
    if a.not_delegated:
        uac |= UAC_NOT_DELEGATED
    return uac


def qualified(s: Scenario, sam: str) -> str:
    return f"{s.netbios}\\{sam}"


# --- the whole environment ---------------------------------------------------------------------------
def environment_from_scenario(s: Scenario) -> Environment:
    domain = Domain(dns_name=s.domain, netbios_name=s.netbios, dn=s.domain_dn)
    forest = Forest(root_domain=s.domain, domains=[domain], sites=list(s.sites),
                    forest_functional_level=7, domain_functional_level=7,
                    configuration_nc=configuration_dn(s), schema_nc=f"CN=Schema,{configuration_dn(s)}",
                    exchange_organization=s.organization)
    servers: list[ExchangeServer] = []
    vdirs: list[VirtualDirectory] = []
    autodiscover: dict[str, str] = {}
    iusrs: dict[str, list[str]] = {}
    for srv in s.servers:
        def cred(c):
            return AsaCredential(account=c.account, when_added=c.when) if c else None

        servers.append(ExchangeServer(
            name=srv.name, fqdn=srv.fqdn, version=srv.version, roles=list(srv.roles), site=srv.site,
            dn=exchange_server_dn(s, srv), asa_latest=cred(srv.asa_latest), asa_previous=cred(srv.asa_previous),
            asa_state_known=True, service_host_running=srv.service_host_running, reachable=srv.fault != "unreachable"))
        iusrs[srv.name] = list(srv.iis_iusrs)
        for service, v in srv.vdirs.items():
            if service == Service.AUTODISCOVER:
                if v.internal_host:
                    autodiscover[srv.name] = f"https://{v.internal_host}/Autodiscover/Autodiscover.xml"
                continue
            iis = None
            if service in (Service.EAS, Service.EWS):
                iis = IisAuth(basic=v.basic, windows=v.windows, providers=list(v.providers),
                              use_kernel_mode=v.use_kernel_mode, use_app_pool_credentials=v.use_app_pool_credentials)
            vdirs.append(VirtualDirectory(
                server=srv.name, service=service, internal_host=v.internal_host, external_host=v.external_host,
                auth_methods=list(v.auth_methods), internal_client_auth=v.internal_client_auth,
                external_client_auth=v.external_client_auth, iis=iis))
    accounts: list[Account] = []
    owners: dict[str, list[str]] = {}
    protected: list[str] = []
    for a in all_accounts(s):
        dn = account_dn(s, a)
        accounts.append(Account(
            dn=dn, sam=a.sam, kind=a.kind, uac=account_uac(a), spns=list(a.spns), enctypes=a.enctypes,
            pwd_last_set=a.pwd_last_set, key_version=a.key_version, delegate_to=list(a.delegate_to),
            upn=a.upn, description=a.description or None))
        for spn in a.spns:
            owners.setdefault(spn.lower(), []).append(dn)
        if a.protected_user:
            protected.append(dn)
    seg = SegConfig(s.seg.service_account, list(s.seg.test_users), s.seg.ews_proxy) if s.seg else None
    from .extended_protection import extended_protection

    ep = {srv.name: extended_protection(srv) for srv in s.servers if srv.fault != "unreachable"}
    namespaces = derive_namespaces(vdirs, autodiscover)
    for ns in namespaces:
        ns.is_cname = ns.host in s.cname_namespaces
    return Environment(forest=forest, servers=servers, vdirs=vdirs, namespaces=namespaces, accounts=accounts,
                       spn_owners=owners, asa_sam=s.asa, seg=seg, iis_iusrs=iusrs, protected_users=protected,
                       autodiscover_urls=autodiscover, hybrid=s.hybrid, extended_protection=ep)
