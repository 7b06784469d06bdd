"""The LDAP adapter against the training lab's directory (ldap3 MOCK_SYNC, built from each scenario).

Discovery goes through the real adapter and the real core discovery; the expected values come from the
scenario file itself (`environment_from_scenario`), never from the adapter's own output.
"""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from ldap3 import MOCK_SYNC, Server

from asa_wizard.adapters.ldap import LdapDirectory, LdapSettings
from asa_wizard.adapters.ldap_errors import InsecureConnection, InvalidInput
from asa_wizard.core.discovery import DiscoveryOptions, discover
from asa_wizard.core.errors import AuthenticationFailed, ConnectionFailed, NotFound, PolicyRefused, SpnConflict, \
    StaleObject
from asa_wizard.core.model import (
    UAC_DONT_EXPIRE_PASSWD,
    UAC_NORMAL_ACCOUNT,
    UAC_TRUSTED_FOR_DELEGATION,
    UAC_TRUSTED_TO_AUTH_FOR_DELEGATION,
    UAC_WORKSTATION_TRUST_ACCOUNT,
    AccountKind,
    SegConfig,
)
from asa_wizard.core.ports import DirectoryPort
from asa_wizard.core.secrets import Secret
from asa_wizard.lab.directory import LabDirectory, lab_schema
from asa_wizard.lab.scenario import list_scenarios, load_scenario, find_scenario
from asa_wizard.lab.snapshot import environment_from_scenario

SCENARIOS = {s.name: s for s in list_scenarios()}


def lab(name: str) -> LabDirectory:
    return LabDirectory(load_scenario(find_scenario(name)))


def account_view(a):
    """What a person reads about an account: compared between discovery and the scenario."""
    return (a.sam, a.kind, a.uac, sorted(s.lower() for s in a.spns), a.enctypes, a.pwd_last_set, a.key_version,
            sorted(a.delegate_to), a.description or None)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_discovery_through_the_adapter_matches_the_scenario(name):
    s = SCENARIOS[name]
    truth = environment_from_scenario(s)
    directory = lab(name).port()
    assert isinstance(directory, DirectoryPort)
    seg = SegConfig(s.seg.service_account, list(s.seg.test_users)) if s.seg else None
    env = discover(directory, None, DiscoveryOptions(asa_sam=s.asa, seg=seg, read_servers=False))

    f, tf = env.forest, truth.forest
    assert (f.root_domain, f.sites, f.exchange_organization, f.configuration_nc, f.schema_nc) == \
        (tf.root_domain, sorted(tf.sites), tf.exchange_organization, tf.configuration_nc, tf.schema_nc)
    assert [(d.dns_name, d.netbios_name, d.dn) for d in f.domains] == \
        [(d.dns_name, d.netbios_name, d.dn) for d in tf.domains]
    assert (f.forest_functional_level, f.domain_functional_level) == (7, 7)

    def servers(e):
        return sorted((x.name, x.fqdn, x.version, sorted(x.roles), x.site, x.dn) for x in e.servers)

    assert servers(env) == servers(truth)
    assert [x.product for x in env.servers] == [x.product for x in sorted(truth.servers, key=lambda x: x.name.lower())]

    def vdirs(e):
        return sorted((v.server, v.service.value, v.internal_host, v.external_host, sorted(v.auth_methods))
                      for v in e.vdirs)

    assert vdirs(env) == vdirs(truth)
    assert env.autodiscover_urls == truth.autodiscover_urls
    assert [(n.host, sorted(n.services), sorted(n.servers)) for n in env.namespaces] == \
        [(n.host, sorted(n.services), sorted(n.servers)) for n in truth.namespaces]

    # every HTTP SPN of a namespace: the same owners, however the SPN is written
    for ns in truth.namespaces:
        expected = sorted(d.lower() for d in truth.spn_owners.get(ns.spn.lower(), []))
        assert sorted(d.lower() for d in env.spn_owners.get(ns.spn.lower(), [])) == expected, ns.spn

    # every account discovery returned is exactly as the scenario describes it
    assert env.accounts, "discovery found no account"
    for a in env.accounts:
        t = truth.account_by_dn(a.dn)
        assert t is not None, a.dn
        assert account_view(a) == account_view(t)
    wanted = [s.asa] if s.asa else []
    if s.seg:
        wanted += [s.seg.service_account, *s.seg.test_users]
    for sam in wanted + [f"{x.name.upper()}$" for x in s.servers]:
        assert env.account_by_sam(sam) is not None, sam
    if s.seg:
        assert sorted(env.protected_users) == sorted(truth.protected_users)


def test_spn_owner_lookup_is_forest_wide_and_case_insensitive():
    d = lab("duplicate-spn").port()
    owners = d.find_spn_owners("HTTP/MAIL.FABRIKAM.COM")
    assert sorted(a.sam for a in owners) == ["E14ASA$", "EXASA$"]
    # the old ASA's SPN is stored in another case; it still counts as the same SPN
    e14 = next(a for a in owners if a.sam == "E14ASA$")
    assert e14.spns == ["http/MAIL.fabrikam.com"]
    assert d.find_spn_owners("HTTP/nothing.fabrikam.com") == []


def test_asa_candidates_exclude_the_servers_own_accounts():
    d = lab("new-server-missing-asa").port()
    sams = [a.sam for a in d.find_asa_candidates()]
    assert "E15ASA$" in sams
    assert not any(s.upper() in ("EXCH-2016$", "EXCH-2019$") for s in sams)


# --- changes ---------------------------------------------------------------------------------------------
def test_create_computer_asa_sets_password_and_reads_back_the_key_version():
    world = lab("fresh")
    d = world.port()
    ou = f"CN=Computers,{world.scenario.domain_dn}"
    before = world.now()
    created = d.create_account("NEWASA$", AccountKind.COMPUTER, ou, 24, "Exchange ASA")
    a = created.account
    assert created.created
    assert (a.dn, a.sam, a.kind, a.uac, a.enctypes) == \
        (f"CN=NEWASA,{ou}", "NEWASA$", AccountKind.COMPUTER, UAC_WORKSTATION_TRUST_ACCOUNT, 24)
    assert a.key_version == 2  # created at 1, the password set makes it 2 (as on a real DC)
    assert before <= a.pwd_last_set <= world.now() + timedelta(seconds=1)
    # the lab's own view sees it, and no password was stored anywhere in the directory
    lab_acct = next(x for x in world.current_accounts() if x.sam == "NEWASA$")
    assert (lab_acct.kind, lab_acct.enctypes, lab_acct.key_version, lab_acct.ou) == \
        (AccountKind.COMPUTER, 24, 2, "CN=Computers")
    assert "unicodePwd" not in world.server.dit[a.dn]


def test_create_user_asa_is_enabled_with_a_password_that_does_not_expire():
    world = lab("fresh")
    d = world.port()
    a = d.create_account("exasa-user", AccountKind.USER, f"CN=Users,{world.scenario.domain_dn}", 28).account
    assert a.kind == AccountKind.USER
    assert a.uac == UAC_NORMAL_ACCOUNT | UAC_DONT_EXPIRE_PASSWD
    assert a.enabled and a.enctypes == 28 and a.key_version == 2


def test_create_refuses_an_existing_name_and_a_missing_ou():
    world = lab("healthy")
    d = world.port()
    dom = world.scenario.domain_dn
    existing = world.scenario.asa
    with pytest.raises(StaleObject, match="already exists"):
        d.create_account(existing, AccountKind.COMPUTER, f"CN=Computers,{dom}", 24)
    with pytest.raises(NotFound, match="OU=Nowhere"):
        d.create_account("OTHERASA$", AccountKind.COMPUTER, f"OU=Nowhere,{dom}", 24)
    with pytest.raises(InvalidInput, match="24"):
        d.create_account("OTHERASA$", AccountKind.COMPUTER, f"CN=Computers,{dom}", 4)
    assert d.get_account("OTHERASA$") is None


def test_nothing_is_left_half_made_when_the_password_cannot_be_set():
    world = lab("fresh")
    d = world.port()
    dn = f"CN=HALFASA,CN=Computers,{world.scenario.domain_dn}"

    def refuse_passwords(conn):
        world._teach_ad(conn)
        taught = conn.strategy.mock_modify

        def mock_modify(request_message, controls):
            if "unicodePwd" in str(request_message):
                return {"resultCode": 53, "matchedDN": "", "referral": None,
                        "diagnosticMessage": "0000052D: Constraint violation - check_password_restrictions"}
            return taught(request_message, controls)

        conn.strategy.mock_modify = mock_modify

    picky = LdapDirectory.from_server(world.server, d.settings, client_strategy=MOCK_SYNC,
                                      connection_hook=refuse_passwords)
    with pytest.raises(PolicyRefused) as info:
        picky.create_account("HALFASA$", AccountKind.COMPUTER, f"CN=Computers,{world.scenario.domain_dn}", 24)
    assert "password policy" in info.value.problem
    assert "removed again" in info.value.problem
    assert d.get_account_by_dn(dn) is None and d.get_account("HALFASA$") is None


def test_spns_added_after_a_forest_wide_lookup_and_a_duplicate_names_its_owner():
    world = lab("fresh")
    d = world.port()
    dom = world.scenario.domain_dn
    asa = d.create_account("NEWASA$", AccountKind.COMPUTER, f"CN=Computers,{dom}", 24).account
    added = d.add_spns(asa.dn, ["HTTP/mail.contoso.com", "http/MAIL.contoso.com", "HTTP/autodiscover.contoso.com"])
    assert added == ["HTTP/mail.contoso.com", "HTTP/autodiscover.contoso.com"]
    assert d.add_spns(asa.dn, ["HTTP/mail.contoso.com"]) == []  # already there: nothing to undo
    server = world.scenario.servers[0]
    with pytest.raises(SpnConflict) as info:
        d.add_spns(asa.dn, [f"host/{server.fqdn.upper()}"])
    assert info.value.owner.startswith(f"{server.name.upper()}$")
    assert f"{server.name.upper()}$" in str(info.value)
    # undo: remove what was added; the lab's view follows
    assert sorted(d.remove_spns(asa.dn, added)) == sorted(added)
    assert next(x for x in world.current_accounts() if x.sam == "NEWASA$").spns == []


def test_a_duplicate_refused_by_the_dc_itself_is_reported_with_its_owner():
    """When the lookup misses the owner (a race, or a DC outside its view), AD's constraintViolation (19)
    still ends as SpnConflict naming the owner, found by looking again."""
    world = lab("duplicate-spn")
    d = world.port()
    e14 = d.get_account("E14ASA$")
    d.remove_spns(e14.dn, e14.spns)

    class Blind(LdapDirectory):
        lookups = 0

        def find_spn_owners(self, spn):
            Blind.lookups += 1
            return [] if Blind.lookups == 1 else super().find_spn_owners(spn)

    blind = Blind.from_server(world.server, d.settings, gc_server=world.gc_server, client_strategy=MOCK_SYNC,
                              connection_hook=world._teach_ad)
    with pytest.raises(SpnConflict) as info:
        blind.add_spns(e14.dn, ["HTTP/mail.fabrikam.com"])
    assert info.value.owner.startswith("EXASA$")
    assert d.get_account("E14ASA$").spns == []


def test_enctypes_change_returns_the_previous_value_and_checks_the_plan():
    world = lab("rc4-only")
    d = world.port()
    asa = d.get_account(world.scenario.asa)
    previous = d.set_enctypes(asa.dn, 24)
    assert previous == asa.enctypes
    assert d.get_account_by_dn(asa.dn).enctypes == 24
    with pytest.raises(StaleObject, match="msDS-SupportedEncryptionTypes"):
        d.set_enctypes(asa.dn, 28, expected=previous)
    assert d.set_enctypes(asa.dn, previous) == 24  # undo
    assert d.get_account_by_dn(asa.dn).enctypes == asa.enctypes


def test_kcd_attributes_and_undo():
    world = lab("seg-kcd")
    d = world.port()
    seg = d.get_account("svc_awseg")
    original = next(x for x in world.current_accounts() if x.sam == "svc_awseg")
    d.add_spns(seg.dn, ["HTTP/svc_awseg.contoso.com"])
    old_targets = d.set_delegate_to(seg.dn, ["HTTP/mail.contoso.com"])
    old_uac = d.set_uac(seg.dn, seg.uac | UAC_TRUSTED_TO_AUTH_FOR_DELEGATION)
    now = next(x for x in world.current_accounts() if x.sam == "svc_awseg")
    assert now.trusted_to_auth and not now.trusted_for_delegation
    assert now.delegate_to == ["HTTP/mail.contoso.com"] and now.spns == ["HTTP/svc_awseg.contoso.com"]
    with pytest.raises(PolicyRefused, match="unconstrained"):
        d.set_uac(seg.dn, seg.uac | UAC_TRUSTED_FOR_DELEGATION)
    # undo in reverse order puts the account back exactly
    d.set_uac(seg.dn, old_uac)
    d.set_delegate_to(seg.dn, old_targets)
    d.remove_spns(seg.dn, ["HTTP/svc_awseg.contoso.com"])
    assert next(x for x in world.current_accounts() if x.sam == "svc_awseg") == original


def test_delete_is_the_undo_of_create():
    world = lab("fresh")
    d = world.port()
    a = d.create_account("TMPASA$", AccountKind.COMPUTER, f"CN=Computers,{world.scenario.domain_dn}", 24).account
    with pytest.raises(StaleObject):
        d.delete_account(a.dn, expected_sam="OTHER$")
    d.delete_account(a.dn, expected_sam="TMPASA$")
    assert d.get_account("TMPASA$") is None
    assert all(x.sam != "TMPASA$" for x in world.current_accounts())
    with pytest.raises(NotFound):
        d.delete_account(a.dn)


def test_roll_and_key_version_as_the_exchange_script_changes_them():
    world = lab("new-server-missing-asa")
    assert world.account_key_version("E15ASA$") == 2
    when = world.scenario.now
    assert world.set_account_password_rolled("e15asa$", when) == 3
    assert world.account_key_version("E15ASA$") == 3
    acct = world.port().get_account("E15ASA$")
    assert (acct.key_version, acct.pwd_last_set) == (3, when)
    assert world.account_key_version("nobody$") is None
    world.reset(world.scenario)
    assert world.account_key_version("E15ASA$") == 2


# --- hostile input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["*", "*)(cn=*", "alice)(sAMAccountName=*", "*)(|(objectClass=*", "a\\2a"])
def test_injection_in_account_names_matches_nothing(name):
    d = lab("seg-kcd").port()
    assert d.get_account(name) is None


def test_names_with_parentheses_are_escaped_not_interpreted():
    world = lab("fresh")
    d = world.port()
    dom = world.scenario.domain_dn
    made = d.create_account("web(1)", AccountKind.USER, f"CN=Users,{dom}", 24).account
    assert made.dn == f"CN=web(1),CN=Users,{dom}"
    assert d.get_account("web(1)").dn == made.dn
    assert d.get_account("web(*)") is None


@pytest.mark.parametrize("sam", ["a*)(cn=*", "bad\\name", "nul\x00name", "x" * 21, "with,comma"])
def test_injection_in_new_account_names_is_refused_before_anything_is_sent(sam):
    world = lab("fresh")
    d = world.port()
    before = len(world.server.dit)
    with pytest.raises(InvalidInput):
        d.create_account(sam, AccountKind.USER, f"CN=Users,{world.scenario.domain_dn}", 24)
    assert len(world.server.dit) == before


@pytest.mark.parametrize("spn", ["HTTP/*", "HTTP/mail)(servicePrincipalName=*", "HTTP/a\\2a", "HTTP/\x00", "nohost"])
def test_injection_in_spns_is_refused(spn):
    d = lab("duplicate-spn").port()
    with pytest.raises(InvalidInput):
        d.find_spn_owners(spn)


@pytest.mark.parametrize("dn", ["", "not a dn", "CN=x\x00,DC=a", "CN=a,,DC=b"])
def test_bad_dns_are_refused(dn):
    d = lab("fresh").port()
    with pytest.raises(InvalidInput):
        d.get_account_by_dn(dn)


# --- connections -------------------------------------------------------------------------------------------
def test_wrong_password_is_an_authentication_error_without_the_password():
    world = lab("fresh")
    good = world.port().settings
    wrong = Secret("Not-The-Lab-Password-7")
    d = LdapDirectory.from_server(world.server, LdapSettings(host=good.host, user=good.user, password=wrong),
                                  client_strategy=MOCK_SYNC)
    with pytest.raises(AuthenticationFailed) as info:
        d.read_forest()
    text = f"{info.value} {info.value.detail} {info.value!r}"
    assert wrong.reveal() not in text and world.scenario.admin_password not in text


def test_starttls_refused_is_a_clear_error():
    world = lab("fresh")
    plain = Server(world.host, port=389, use_ssl=False)
    plain.attach_schema_info(lab_schema())
    plain.dit = world.server.dit
    s = world.port().settings
    d = LdapDirectory.from_server(plain, LdapSettings(host=s.host, mode="starttls", user=s.user, password=s.password),
                                  client_strategy=MOCK_SYNC)
    with pytest.raises(ConnectionFailed, match="StartTLS"):
        d.read_forest()


def test_a_clear_text_simple_bind_is_refused_before_anything_is_sent():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    d = LdapDirectory(LdapSettings(host="127.0.0.1", port=port, mode="plain", user="admin@contoso.com",
                                   password=Secret("Clear-Text-Would-Leak-1")))
    try:
        with pytest.raises(InsecureConnection) as info:
            d.connect()
        assert "Nothing was sent" in info.value.problem
        with pytest.raises(socket.timeout):
            listener.accept()  # no connection was even opened
    finally:
        listener.close()


def test_describe_says_how_the_directory_is_reached_and_hides_the_password():
    world = lab("fresh")
    d = world.port()
    assert "training lab" in d.describe()
    real = LdapDirectory(LdapSettings(host="dc1.contoso.com", user="a@contoso.com", password=Secret("P4ss-Word-x!")))
    assert real.describe() == "dc1.contoso.com (LDAPS 636, certificate validated, simple bind)"
    unsafe = LdapDirectory(LdapSettings(host="dc1", mode="starttls", insecure_skip_tls_verify=True, bind="kerberos",
                                        use_global_catalog=True))
    assert unsafe.describe() == "dc1 (StartTLS 389, certificate NOT validated, kerberos bind, global catalog)"
    assert "P4ss-Word-x!" not in repr(real.settings) + repr(real.__dict__)


def test_parallel_callers_share_one_connection_safely():
    d = lab("healthy").port()
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(len(d.exchange_servers()) + len(d.find_spn_owners("HTTP/mail.contoso.com")))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1 and len(results) == 30
