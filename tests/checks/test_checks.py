"""Each check, failing and passing, on shipped scenarios and changed copies of them. The assertions are what
a person reads: the status, the subject, and the command they would run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from catalogue_kit import Lab, account, by_id

from asa_wizard.core.checks import Status, summarize
from asa_wizard.core.model import AccountKind, Domain
from asa_wizard.lab.scenario import LabAccount, LabCredential, LabServer


def status_of(findings, cid):
    return summarize(findings)[cid]


def bad(findings, cid):
    return [f for f in by_id(findings, cid) if f.status in (Status.FAIL, Status.WARN)]


# --- inventory ----------------------------------------------------------------------------------------------
def test_inventory_lists_servers_and_flags_exchange_2010_next_to_2013_plus(lab: Lab):
    ok = by_id(lab.run("healthy"), "inventory.servers")[0]
    assert ok.status == Status.PASS and "EX01: Exchange 2019" in ok.evidence

    def add_2010(s):
        s.servers.append(LabServer(name="EX2010", fqdn="ex2010.contoso.com", version="Version 14.3 (Build 123.4)",
                                   roles=["ClientAccess"], site=s.sites[0]))

    f = by_id(lab.run("healthy", add_2010, probe=False), "inventory.servers")[0]
    assert f.status == Status.WARN and "EX2010" in f.reason


def test_inventory_fails_when_no_server_is_found(lab: Lab):
    f = by_id(lab.run("healthy", env_change=lambda e: e.servers.clear(), probe=False), "inventory.servers")[0]
    assert f.status == Status.FAIL and "msExchExchangeServer" in f.evidence


# --- the ASA --------------------------------------------------------------------------------------------
def test_asa_exists_fails_in_fresh_with_the_create_commands(lab: Lab):
    f = by_id(lab.run("fresh"), "asa.exists")[0]
    assert f.status == Status.FAIL
    assert "New-ADComputer" in f.fix and "msDS-SupportedEncryptionTypes'=24" in f.fix
    assert status_of(lab.run("healthy"), "asa.exists") == Status.PASS


def test_asa_is_inferred_from_the_servers_when_not_chosen(lab: Lab):
    def forget(s):
        s.asa = None

    f = by_id(lab.run("new-server-missing-asa", forget), "asa.exists")[0]
    assert f.status == Status.PASS and f.subject == "E15ASA$"


def test_asa_enabled(lab: Lab):
    assert status_of(lab.run("healthy"), "asa.enabled") == Status.PASS
    f = by_id(lab.run("healthy", lambda s: setattr(account(s, "EXASA$"), "enabled", False)), "asa.enabled")[0]
    assert f.status == Status.FAIL and f.fix == "Enable-ADAccount -Identity 'EXASA$'"


@pytest.mark.parametrize("kind, status", [(AccountKind.USER, Status.WARN), (AccountKind.GMSA, Status.FAIL)])
def test_asa_kind(lab: Lab, kind, status):
    assert status_of(lab.run("healthy"), "asa.kind") == Status.PASS
    f = by_id(lab.run("healthy", lambda s: setattr(account(s, "EXASA$"), "kind", kind), probe=False), "asa.kind")[0]
    assert f.status == status


def test_asa_password_age_warns_for_a_computer_asa_that_looks_stale(lab: Lab):
    assert status_of(lab.run("healthy"), "asa.password-age") == Status.PASS

    def old(s):
        account(s, "EXASA$").pwd_last_set = s.now - timedelta(days=200)

    f = by_id(lab.run("healthy", old, probe=False), "asa.password-age")[0]
    assert f.status == Status.WARN and "200 days" in f.evidence
    assert "-GenerateNewPasswordFor 'CONTOSO\\EXASA$' -CreateScheduledTask" in f.fix


def test_asa_password_age_warns_for_a_user_asa_whose_password_expires(lab: Lab):
    def user_asa(s):
        a = account(s, "EXASA$")
        a.kind, a.dont_expire = AccountKind.USER, False

    f = by_id(lab.run("healthy", user_asa, probe=False), "asa.password-age")[0]
    assert f.status == Status.WARN and "PasswordNeverExpires $true" in f.fix


def test_asa_enctypes_rc4_only_fails_and_explains_the_2026_enforcement(lab: Lab):
    f = by_id(lab.run("rc4-only"), "asa.enctypes")[0]
    assert f.status == Status.FAIL
    assert "KB5073381" in f.reason and "CVE-2026-20833" in f.reason
    assert "Set-ADComputer -Identity 'EXASA$' -Replace @{'msDS-SupportedEncryptionTypes'=24}" in f.fix
    assert "-GenerateNewPasswordFor 'CONTOSO\\EXASA$'" in f.fix
    assert status_of(lab.run("healthy"), "asa.enctypes") == Status.PASS


@pytest.mark.parametrize("value", [12, None])
def test_asa_enctypes_warns_when_rc4_is_still_allowed_or_unset(lab: Lab, value):
    f = by_id(lab.run("healthy", lambda s: setattr(account(s, "EXASA$"), "enctypes", value), probe=False),
              "asa.enctypes")[0]
    assert f.status == Status.WARN
    assert "July 2026" in f.reason and "April 2026" in f.reason and "January 2026" in f.reason


def test_asa_enctypes_28_is_microsofts_documented_value_and_only_informational(lab: Lab):
    f = by_id(lab.run("healthy", lambda s: setattr(account(s, "EXASA$"), "enctypes", 28), probe=False),
              "asa.enctypes")[0]
    assert f.status == Status.PASS
    assert "Microsoft's documented value" in f.evidence and "24 (AES only) is this tool's recommendation" in f.evidence


def test_asa_one_per_generation_fails_when_2010_and_2019_share_the_asa(lab: Lab):
    assert status_of(lab.run("healthy"), "asa.one-per-generation") == Status.PASS

    def share(s):
        s.servers.append(LabServer(name="EX2010", fqdn="ex2010.contoso.com", version="Version 14.3 (Build 123.4)",
                                   roles=["ClientAccess"], site=s.sites[0],
                                   asa_latest=LabCredential("CONTOSO\\EXASA$", s.now, 3)))

    f = bad(lab.run("healthy", share, probe=False), "asa.one-per-generation")[0]
    assert f.status == Status.FAIL and "EX2010" in f.evidence and "EX01" in f.evidence


# --- SPNs -----------------------------------------------------------------------------------------------
def test_spn_present(lab: Lab):
    fails = bad(lab.run("fresh"), "spn.present")
    assert {f.subject for f in fails} == {"mail.contoso.com", "autodiscover.contoso.com"}
    assert all("setspn -S 'HTTP/" in f.fix for f in fails)
    assert status_of(lab.run("healthy"), "spn.present") == Status.PASS


def test_spn_owner_names_the_old_asa_and_the_exact_setspn(lab: Lab):
    f = bad(lab.run("duplicate-spn"), "spn.owner")[0]
    assert f.subject == "mail.fabrikam.com" and "E14ASA$" in f.evidence
    assert f.fix.splitlines()[0] == "setspn -D 'HTTP/mail.fabrikam.com' 'FABRIKAM\\E14ASA$'"
    assert status_of(lab.run("healthy"), "spn.owner") == Status.PASS


def test_spn_owner_fails_when_the_spn_sits_on_a_server_computer_account(lab: Lab):
    def on_server(s):
        account(s, "EXASA$").spns.remove("HTTP/mail.contoso.com")
        s.servers[0].extra_spns.append("HTTP/mail.contoso.com")

    f = bad(lab.run("healthy", on_server, probe=False), "spn.owner")[0]
    assert "computer account of Exchange server EX01" in f.evidence
    assert "setspn -D 'HTTP/mail.contoso.com' 'CONTOSO\\EX01$'" in f.fix
    assert "setspn -S 'HTTP/mail.contoso.com' 'CONTOSO\\EXASA$'" in f.fix


def test_spn_duplicate(lab: Lab):
    f = bad(lab.run("duplicate-spn"), "spn.duplicate")[0]
    assert f.subject == "HTTP/mail.fabrikam.com" and "2 accounts" in f.evidence
    assert "setspn -D 'HTTP/mail.fabrikam.com' 'FABRIKAM\\E14ASA$'" in f.fix
    assert "EXASA" not in f.fix.split("(")[0]  # the ASA keeps it
    assert status_of(lab.run("healthy"), "spn.duplicate") == Status.PASS


def test_spn_order_fails_while_a_server_lacks_the_credential(lab: Lab):
    fails = bad(lab.run("new-server-missing-asa"), "spn.order")
    assert fails and all("Exch-2019" in f.evidence for f in fails)
    assert status_of(lab.run("healthy"), "spn.order") == Status.PASS


# --- rollout --------------------------------------------------------------------------------------------
SEED_FIX = (".\\RollAlternateServiceAccountPassword.ps1 -ToSpecificServers 'exch-2019.tailspintoys.ca' "
            "-CopyFrom 'exch-2016.tailspintoys.ca'")


def test_rollout_coverage_names_the_new_server_and_the_copy_command(lab: Lab):
    findings = lab.run("new-server-missing-asa")
    fails = bad(findings, "rollout.coverage")
    assert [f.subject for f in fails] == ["Exch-2019"]
    assert SEED_FIX in fails[0].fix
    assert status_of(lab.run("healthy"), "rollout.coverage") == Status.PASS


def test_rollout_coverage_generates_when_no_server_holds_the_current_password(lab: Lab):
    def nobody(s):
        for srv in s.servers:
            srv.asa_latest = None

    fails = bad(lab.run("healthy", nobody, probe=False), "rollout.coverage")
    assert len(fails) == 2
    assert "-GenerateNewPasswordFor 'CONTOSO\\EXASA$'" in fails[0].fix


def test_rollout_current_fails_for_the_server_with_the_previous_password(lab: Lab):
    fails = bad(lab.run("stale-credential"), "rollout.current")
    assert [f.subject for f in fails] == ["EX02"]
    assert "-ToSpecificServers 'ex02.contoso.com' -CopyFrom 'ex01.contoso.com'" in fails[0].fix
    assert status_of(lab.run("healthy"), "rollout.current") == Status.PASS


def test_rollout_same_account(lab: Lab):
    def other(s):
        s.accounts.append(LabAccount(sam="OLDASA$", kind=AccountKind.COMPUTER, ou="CN=Computers"))
        s.servers[1].asa_latest = LabCredential("CONTOSO\\OLDASA$", s.now, 1)

    f = bad(lab.run("healthy", other, probe=False), "rollout.same-account")[0]
    assert f.subject == "EX02" and "OLDASA$" in f.evidence
    assert "-ToSpecificServers 'ex02.contoso.com' -CopyFrom 'ex01.contoso.com'" in f.fix
    assert status_of(lab.run("healthy"), "rollout.same-account") == Status.PASS


def test_rollout_service_host(lab: Lab):
    f = bad(lab.run("healthy", lambda s: setattr(s.servers[1], "service_host_running", False), probe=False),
            "rollout.service-host")[0]
    assert f.subject == "EX02" and "Start-Service 'MSExchangeServiceHost'" in f.fix
    assert status_of(lab.run("healthy"), "rollout.service-host") == Status.PASS


# --- client auth ----------------------------------------------------------------------------------------
def test_auth_outlook_anywhere(lab: Lab):
    fails = bad(lab.run("fresh"), "auth.outlook-anywhere")
    assert {f.subject for f in fails} == {"EX01", "EX02"}
    assert "Get-OutlookAnywhere -Server 'EX01' | Set-OutlookAnywhere -InternalClientAuthenticationMethod 'Negotiate'" in \
        fails[0].fix
    assert status_of(lab.run("healthy"), "auth.outlook-anywhere") == Status.PASS


def test_auth_mapi_appends_negotiate_and_keeps_oauth(lab: Lab):
    f = bad(lab.run("fresh"), "auth.mapi")[0]
    assert "Set-MapiVirtualDirectory -IISAuthenticationMethods 'Ntlm','OAuth','Negotiate'" in f.fix
    assert status_of(lab.run("healthy"), "auth.mapi") == Status.PASS


def test_auth_mapi_in_hybrid_fails_when_oauth_was_dropped(lab: Lab):
    def hybrid(s):
        s.hybrid = True
        for srv in s.servers:
            from asa_wizard.core.model import Service
            srv.vdirs[Service.MAPI].auth_methods = ["Ntlm", "Negotiate"]

    f = bad(lab.run("healthy", hybrid, probe=False), "auth.mapi")[0]
    assert "OAuth" in f.reason and "-IISAuthenticationMethods 'Ntlm','Negotiate','OAuth'" in f.fix


def test_auth_namespace_dns_warns_about_a_cname(lab: Lab):
    f = bad(lab.run("healthy", lambda s: s.cname_namespaces.append("mail.contoso.com"), probe=False),
            "auth.namespace-dns")[0]
    assert f.status == Status.WARN and f.subject == "mail.contoso.com" and "Add-DnsServerResourceRecordA" in f.fix
    assert status_of(lab.run("healthy"), "auth.namespace-dns") == Status.PASS


# --- KCD ------------------------------------------------------------------------------------------------
def configured_seg(s):
    """seg-kcd with everything done the way the gateway's documentation asks."""
    from asa_wizard.core.model import Service

    svc = account(s, "svc_awseg")
    svc.spns = ["HTTP/svc_awseg"]
    svc.trusted_to_auth = True
    svc.delegate_to = ["HTTP/mail.contoso.com"]
    for srv in s.servers:
        srv.iis_iusrs.append("CONTOSO\\svc_awseg")
        eas = srv.vdirs[Service.EAS]
        eas.basic, eas.windows, eas.use_kernel_mode, eas.use_app_pool_credentials = False, True, True, True


KCD_IDS = ["kcd.service-account-spn", "kcd.protocol-transition", "kcd.no-unconstrained", "kcd.target",
           "kcd.same-domain", "kcd.iis-iusrs", "kcd.eas-auth", "kcd.users-delegable", "kerberos.s4u"]


def test_a_configured_gateway_passes_every_kcd_check(lab: Lab):
    status = summarize(lab.run("seg-kcd", configured_seg))
    assert {cid: status[cid] for cid in KCD_IDS} == {cid: Status.PASS for cid in KCD_IDS}
    assert status["kcd.ews-auth"] == Status.SKIPPED


def test_seg_kcd_fixes_name_the_account_and_servers(lab: Lab):
    findings = lab.run("seg-kcd")
    assert bad(findings, "kcd.service-account-spn")[0].fix.startswith("setspn -S 'HTTP/svc_awseg' 'CONTOSO\\svc_awseg'")
    assert "Set-ADAccountControl -Identity 'svc_awseg' -TrustedToAuthForDelegation $true" in \
        bad(findings, "kcd.protocol-transition")[0].fix
    assert "Set-ADUser -Identity 'svc_awseg' -Add @{'msDS-AllowedToDelegateTo'='HTTP/mail.contoso.com'}" in \
        bad(findings, "kcd.target")[0].fix
    iusrs = bad(findings, "kcd.iis-iusrs")
    assert {f.subject for f in iusrs} == {"EX01", "EX02"}
    assert "Add-LocalGroupMember -Group 'IIS_IUSRS' -Member 'CONTOSO\\svc_awseg'" in iusrs[0].fix
    eas = bad(findings, "kcd.eas-auth")[0]
    assert "-BasicAuthEnabled $false -WindowsAuthEnabled $true" in eas.fix and "Basic on" in eas.evidence


def test_kcd_no_unconstrained(lab: Lab):
    def unconstrained(s):
        configured_seg(s)
        account(s, "svc_awseg").trusted_for_delegation = True

    f = bad(lab.run("seg-kcd", unconstrained, probe=False), "kcd.no-unconstrained")[0]
    assert "-TrustedForDelegation $false" in f.fix


def test_kcd_target_fails_when_the_delegated_spn_is_not_on_the_asa(lab: Lab):
    def wrong(s):
        configured_seg(s)
        account(s, "svc_awseg").delegate_to = ["HTTP/ex01.contoso.com"]

    f = bad(lab.run("seg-kcd", wrong, probe=False), "kcd.target")[0]
    assert "HTTP/ex01.contoso.com" in f.evidence


def test_kcd_same_domain_fails_for_a_gateway_account_in_another_domain(lab: Lab):
    def dmz(env):
        env.forest.domains.append(Domain("dmz.contoso.com", "DMZ", "DC=dmz,DC=contoso,DC=com"))
        env.account_by_sam("svc_awseg").dn = "CN=svc_awseg,CN=Users,DC=dmz,DC=contoso,DC=com"

    f = bad(lab.run("seg-kcd", configured_seg, env_change=dmz, probe=False), "kcd.same-domain")[0]
    assert "dmz.contoso.com" in f.evidence and "PrincipalsAllowedToDelegateToAccount" in f.fix


def test_kcd_eas_auth_warns_about_kernel_mode_and_app_pool_credentials(lab: Lab):
    from asa_wizard.core.model import Service

    def half(s):
        configured_seg(s)
        s.servers[0].vdirs[Service.EAS].use_kernel_mode = False

    f = bad(lab.run("seg-kcd", half, probe=False), "kcd.eas-auth")[0]
    assert f.status == Status.WARN and f.subject == "EX01" and "/useKernelMode:true" in f.fix


def test_kcd_ews_auth_when_the_gateway_proxies_ews(lab: Lab):
    from asa_wizard.core.model import Service

    def ews(s, ready):
        configured_seg(s)
        s.seg.ews_proxy = True
        for srv in s.servers:
            v = srv.vdirs[Service.EWS]
            v.basic, v.use_kernel_mode, v.use_app_pool_credentials = (False, True, True) if ready else (True, False,
                                                                                                         False)

    f = bad(lab.run("seg-kcd", lambda s: ews(s, False), probe=False), "kcd.ews-auth")[0]
    assert f.status == Status.FAIL and "Set-WebServicesVirtualDirectory -Identity 'EX01\\EWS (Default Web Site)'" in f.fix
    assert status_of(lab.run("seg-kcd", lambda s: ews(s, True), probe=False), "kcd.ews-auth") == Status.PASS


@pytest.mark.parametrize("flag, fix", [("not_delegated", "-AccountNotDelegated $false"),
                                       ("protected_user", "Remove-ADGroupMember -Identity 'Protected Users'")])
def test_kcd_users_delegable(lab: Lab, flag, fix):
    def sensitive(s):
        configured_seg(s)
        setattr(account(s, "alice"), flag, True)

    findings = lab.run("seg-kcd", sensitive)
    f = bad(findings, "kcd.users-delegable")[0]
    assert f.subject == "alice" and fix in f.fix
    # and the KDC really refuses: the S4U probe says so
    s4u = bad(findings, "kerberos.s4u")[0]
    assert "KDC_ERR_BADOPTION" in s4u.evidence


# --- Kerberos proof -------------------------------------------------------------------------------------
def test_kerberos_ticket(lab: Lab):
    fresh = bad(lab.run("fresh"), "kerberos.ticket")
    assert all("KDC_ERR_S_PRINCIPAL_UNKNOWN" in f.evidence for f in fresh)
    dup = bad(lab.run("duplicate-spn"), "kerberos.ticket")
    assert [f.subject for f in dup] == ["mail.fabrikam.com"] and "NOT_UNIQUE" in dup[0].evidence
    assert "setspn -D 'HTTP/mail.fabrikam.com' 'FABRIKAM\\E14ASA$'" in dup[0].fix
    rc4 = bad(lab.run("rc4-only"), "kerberos.ticket")
    assert all(f.status == Status.WARN and "RC4" in f.evidence for f in rc4)
    ok = by_id(lab.run("healthy"), "kerberos.ticket")
    assert all(f.status == Status.PASS and "AES256" in f.evidence for f in ok)


def test_kerberos_server_names_the_rejecting_server_and_the_fix(lab: Lab):
    findings = lab.run("stale-credential")
    fails = bad(findings, "kerberos.server")
    assert [f.subject for f in fails] == ["EX02"]
    assert "KRB_AP_ERR_MODIFIED" in fails[0].evidence
    assert "-ToSpecificServers 'ex02.contoso.com' -CopyFrom 'ex01.contoso.com'" in fails[0].fix
    ex01 = next(f for f in by_id(findings, "kerberos.server") if f.subject == "EX01")
    assert ex01.status == Status.PASS


def test_kerberos_server_reports_ntlm_fallback_without_spn(lab: Lab):
    fails = bad(lab.run("fresh"), "kerberos.server")
    assert all("ntlm-fallback" in f.evidence for f in fails)
    assert all("setspn -S 'HTTP/" in f.fix for f in fails)


def test_kerberos_server_warns_about_an_unreachable_server(lab: Lab):
    f = bad(lab.run("healthy", lambda s: setattr(s.servers[1], "fault", "unreachable")), "kerberos.server")[0]
    assert f.status == Status.WARN and f.subject == "EX02" and "Test-NetConnection 'ex02.contoso.com'" in f.fix


def test_kerberos_s4u_fails_with_badoption_and_lists_the_kcd_fixes(lab: Lab):
    f = bad(lab.run("seg-kcd"), "kerberos.s4u")[0]
    assert "KDC_ERR_BADOPTION" in f.evidence
    assert "kcd.protocol-transition: Set-ADAccountControl" in f.fix
