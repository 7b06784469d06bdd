"""The LDAP adapter against a real Samba AD DC (the `samba_dc` session fixture): TLS, binds, errors,
discovery of real msExchExchangeServer objects and SCPs, and every change the wizard makes, undone.

Each test that writes uses names from `unique_name` and removes what it made.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from asa_wizard.adapters.ldap import LdapDirectory, LdapSettings
from asa_wizard.adapters.ldap_errors import InsecureConnection, InvalidInput
from asa_wizard.core.errors import AuthenticationFailed, ConnectionFailed, OperationTimeout, PolicyRefused, \
    SpnConflict
from asa_wizard.core.model import (
    UAC_DONT_EXPIRE_PASSWD,
    UAC_NORMAL_ACCOUNT,
    UAC_TRUSTED_FOR_DELEGATION,
    UAC_TRUSTED_TO_AUTH_FOR_DELEGATION,
    UAC_WORKSTATION_TRUST_ACCOUNT,
    AccountKind,
)
from asa_wizard.core.secrets import Secret
from asa_wizard.lab.samba import DEFAULT_SERIAL, DEFAULT_SITE

pytestmark = pytest.mark.samba


def settings(dc, **changes) -> LdapSettings:
    base = dict(host=dc.host, user=dc.admin_upn, password=dc.admin_password, ca_file=str(dc.ca_file),
                tls_name=dc.tls_name, connect_timeout=5, receive_timeout=30)
    base.update(changes)
    return LdapSettings(**base)


@pytest.fixture
def directory(samba_dc):
    d = LdapDirectory(settings(samba_dc))
    yield d
    d.close()


@contextmanager
def created(d: LdapDirectory, sam: str, kind: AccountKind, ou: str, enctypes: int = 24):
    """Create an account for a test and always remove it afterwards."""
    acct = d.create_account(sam, kind, ou, enctypes).account
    try:
        yield acct
    finally:
        if d.get_account_by_dn(acct.dn) is not None:
            d.delete_account(acct.dn)


# --- connecting ----------------------------------------------------------------------------------------------
def test_ldaps_discovery_reads_the_real_exchange_objects(samba_dc, directory):
    forest = directory.read_forest()
    assert forest.root_domain == samba_dc.domain
    assert [(d.dns_name, d.netbios_name, d.dn) for d in forest.domains] == \
        [(samba_dc.domain, samba_dc.netbios, samba_dc.base_dn)]
    assert forest.dc_host_name.lower() == samba_dc.tls_name.lower()
    assert forest.configuration_nc == samba_dc.configuration_dn
    assert DEFAULT_SITE in forest.sites
    assert forest.exchange_organization == "CONTOSO"
    assert forest.domain_functional_level is not None and forest.forest_functional_level is not None
    servers = directory.exchange_servers()
    assert [(s.name, s.fqdn, s.version, s.roles, s.site, s.dn) for s in servers] == [
        (n, f"{n.lower()}.contoso.lab", DEFAULT_SERIAL, ["Mailbox", "ClientAccess"], DEFAULT_SITE,
         samba_dc.exchange_server_dn("CONTOSO", n)) for n in ("EX01", "EX02")]
    assert servers[0].product == "Exchange 2019"
    url = "https://autodiscover.contoso.lab/Autodiscover/Autodiscover.xml"
    assert directory.autodiscover_scps() == {"EX01": url, "EX02": url}
    assert directory.virtual_directories() == []  # the schema has the classes, the DC holds no such object
    assert "LDAPS 636, certificate validated" in directory.describe()


def test_starttls_with_a_domain_backslash_user(samba_dc):
    d = LdapDirectory(settings(samba_dc, mode="starttls", user=f"{samba_dc.netbios}\\{samba_dc.admin_user}"))
    try:
        assert d.read_forest().root_domain == samba_dc.domain
        assert d.describe().startswith(f"{samba_dc.host} (StartTLS 389, certificate validated")
    finally:
        d.close()


def test_a_certificate_from_an_unknown_ca_is_refused_with_the_options_named(samba_dc, tmp_path):
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(_self_signed_ca_pem())
    for d in (LdapDirectory(settings(samba_dc, ca_file=str(other_ca))),
              LdapDirectory(settings(samba_dc, ca_file=str(other_ca), mode="starttls"))):
        with pytest.raises(ConnectionFailed) as info:
            d.connect()
        assert "could not be validated" in info.value.problem
        assert "--ca-file" in info.value.fix and "--insecure-skip-tls-verify" in info.value.fix


def test_a_certificate_for_another_name_is_refused(samba_dc):
    d = LdapDirectory(settings(samba_dc, tls_name=None))  # connecting by IP, the certificate names dc1
    with pytest.raises(ConnectionFailed, match="names another host"):
        d.connect()


def test_skipping_validation_works_only_when_asked_and_says_so(samba_dc, tmp_path):
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(_self_signed_ca_pem())
    d = LdapDirectory(settings(samba_dc, ca_file=str(other_ca), insecure_skip_tls_verify=True))
    try:
        assert d.read_forest().root_domain == samba_dc.domain
        assert "certificate NOT validated" in d.describe()
    finally:
        d.close()


def test_clear_text_simple_bind_is_refused_by_us(samba_dc):
    d = LdapDirectory(settings(samba_dc, mode="plain"))
    with pytest.raises(InsecureConnection, match="Nothing was sent"):
        d.connect()


def test_wrong_password_names_ad_code_52e_and_never_the_password(samba_dc):
    wrong = Secret("Wrong-Password-2024!")
    d = LdapDirectory(settings(samba_dc, password=wrong))
    with pytest.raises(AuthenticationFailed) as info:
        d.connect()
    assert "wrong password, or no such user" in info.value.problem and "(AD code 52e)" in info.value.problem
    assert "data 52e" in info.value.detail
    assert wrong.reveal() not in f"{info.value} {info.value.detail}"


def test_unknown_user_names_ad_code(samba_dc):
    d = LdapDirectory(settings(samba_dc, user=f"nobody-here@{samba_dc.domain}"))
    with pytest.raises(AuthenticationFailed) as info:
        d.connect()
    # Samba answers data 52e for an unknown user too: the message must not claim the user exists
    assert "refused" in info.value.problem and "no such user" in info.value.problem
    assert "the user name exists" not in info.value.fix


def test_unreachable_dc_is_a_clear_error(samba_dc):
    s = socket.socket()
    s.bind((samba_dc.host, 0))
    closed_port = s.getsockname()[1]
    s.close()  # nothing listens there now
    d = LdapDirectory(settings(samba_dc, port=closed_port, connect_timeout=2))
    with pytest.raises((ConnectionFailed, OperationTimeout)) as info:
        d.read_forest()
    assert f"{samba_dc.host}:{closed_port}" in info.value.problem
    assert "firewall" in info.value.fix or "timeouts" in info.value.fix


def test_ntlm_refused_by_samba_is_explained(samba_dc):
    d = LdapDirectory(settings(samba_dc, bind="ntlm", user=f"{samba_dc.netbios}\\{samba_dc.admin_user}"))
    with pytest.raises(AuthenticationFailed, match="NTLM"):
        d.connect()


def test_kerberos_bind_with_a_ticket_cache(samba_dc, tmp_path, monkeypatch):
    cache = tmp_path / "ccache"
    samba_dc.kinit(samba_dc.admin_upn, samba_dc.admin_password, cache)
    for key in ("KRB5_CONFIG", "KRB5CCNAME"):
        monkeypatch.setenv(key, samba_dc.krb_env(cache)[key])
    d = LdapDirectory(settings(samba_dc, bind="kerberos", user="", password=None, sasl_host=samba_dc.tls_name))
    try:
        assert [s.name for s in d.exchange_servers()] == ["EX01", "EX02"]
        assert "kerberos bind" in d.describe()
    finally:
        d.close()
    # on plain LDAP the DC wants signing: refused with strongerAuthRequired, explained
    plain = LdapDirectory(settings(samba_dc, bind="kerberos", mode="plain", user="", password=None,
                                   sasl_host=samba_dc.tls_name))
    with pytest.raises(InsecureConnection, match="stronger authentication"):
        plain.connect()


def test_kerberos_bind_without_a_ticket_says_kinit(samba_dc, tmp_path, monkeypatch):
    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'empty'}")
    d = LdapDirectory(settings(samba_dc, bind="kerberos", user="", password=None))
    with pytest.raises(AuthenticationFailed) as info:
        d.connect()
    assert "kinit" in info.value.fix


# --- changes ---------------------------------------------------------------------------------------------
def test_computer_asa_with_password_enctypes_and_spns(samba_dc, directory, unique_name):
    name = unique_name("asa").upper()
    ou = f"CN=Computers,{samba_dc.base_dn}"
    started = datetime.now(timezone.utc) - timedelta(seconds=5)
    with created(directory, f"{name}$", AccountKind.COMPUTER, ou, 24) as asa:
        assert (asa.sam, asa.kind, asa.uac, asa.enctypes) == \
            (f"{name}$", AccountKind.COMPUTER, UAC_WORKSTATION_TRUST_ACCOUNT, 24)
        assert asa.key_version == 2  # the password set made the first Kerberos keys
        assert started <= asa.pwd_last_set <= datetime.now(timezone.utc) + timedelta(seconds=5)
        host = f"{unique_name('mail')}.contoso.lab"
        assert directory.add_spns(asa.dn, [f"HTTP/{host}"]) == [f"HTTP/{host}"]
        assert directory.set_enctypes(asa.dn, 28) == 24
        again = directory.get_account(f"{name}$")
        assert again.enctypes == 28 and again.spns == [f"HTTP/{host}"]
        assert [a.dn for a in directory.find_spn_owners(f"http/{host.upper()}")] == [asa.dn]
        assert directory.remove_spns(asa.dn, [f"HTTP/{host}"]) == [f"HTTP/{host}"]
    assert directory.get_account(f"{name}$") is None


def test_user_asa_is_enabled_after_its_password(samba_dc, directory, unique_name):
    name = unique_name("uasa")
    with created(directory, name, AccountKind.USER, f"CN=Users,{samba_dc.base_dn}", 28) as asa:
        assert asa.uac == UAC_NORMAL_ACCOUNT | UAC_DONT_EXPIRE_PASSWD
        assert asa.enctypes == 28 and asa.key_version is not None and asa.pwd_last_set is not None


def test_a_user_password_is_changed_with_the_old_one_and_a_wrong_old_one_is_named(samba_dc, directory, unique_name):
    """The password change a user-account ASA gets (the old value deleted, the new one added): Samba answers
    it as AD does, and the new password is the one the account logs on with afterwards."""
    name = unique_name("uasa")
    first, wrong, new = Secret("First-Pass-2026a!"), Secret("Not-The-Pass-2026!"), Secret("Next-Pass-2026b!")
    with created(directory, name, AccountKind.USER, f"CN=Users,{samba_dc.base_dn}", 28) as asa:
        kvno = directory.reset_password(asa.dn, first)
        with pytest.raises(PolicyRefused) as info:
            directory.change_password(asa.dn, wrong, new)
        assert "not the account's current password (AD code 00000056)" in info.value.problem
        assert "Reset Password" in info.value.fix
        shown = f"{info.value} {info.value.fix} {info.value.detail}"
        assert all(p.reveal() not in shown for p in (first, wrong, new))
        assert directory.get_account(name).key_version == kvno  # nothing changed
        assert directory.change_password(asa.dn, first, new) == kvno + 1
        as_user = LdapDirectory(settings(samba_dc, user=f"{name}@{samba_dc.domain}", password=new))
        try:
            as_user.connect()  # the account logs on with the new password
        finally:
            as_user.close()


def test_a_password_younger_than_the_minimum_age_cannot_be_changed_only_reset(samba_dc, directory, unique_name):
    """A fine-grained password policy with AD's default minimum age (1 day) on the account: the change is refused
    with 0000052D and the fix names the reset; the reset still works (it is not subject to the age)."""
    name = unique_name("uasa")
    first, new = Secret("First-Pass-2026c!"), Secret("Next-Pass-2026d!")
    with created(directory, name, AccountKind.USER, f"CN=Users,{samba_dc.base_dn}", 28) as asa:
        directory.reset_password(asa.dn, first)
        conn = directory._connection()
        pso = f"CN=pso-{name},CN=Password Settings Container,CN=System,{samba_dc.base_dn}"
        day = 864_000_000_000  # 100 ns intervals, negative in the attributes
        assert conn.add(pso, ["msDS-PasswordSettings"], {
            "msDS-PasswordSettingsPrecedence": 1, "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
            "msDS-PasswordHistoryLength": 0, "msDS-PasswordComplexityEnabled": "FALSE",
            "msDS-MinimumPasswordLength": 0, "msDS-MinimumPasswordAge": -day, "msDS-MaximumPasswordAge": -day * 365,
            "msDS-LockoutThreshold": 0, "msDS-LockoutObservationWindow": -18_000_000_000,
            "msDS-LockoutDuration": -18_000_000_000, "msDS-PSOAppliesTo": asa.dn}), conn.result
        try:
            kvno = directory.get_account(name).key_version
            with pytest.raises(PolicyRefused) as info:
                directory.change_password(asa.dn, first, new)
            assert "(AD code 0000052D)" in info.value.problem and "minimum password age" in info.value.problem
            assert "reset it instead (the Reset Password right)" in info.value.fix
            assert directory.get_account(name).key_version == kvno
            assert directory.reset_password(asa.dn, new) == kvno + 1
        finally:
            conn.delete(pso)


def test_duplicate_spn_is_refused_with_its_owner(samba_dc, directory, unique_name):
    ou = f"CN=Computers,{samba_dc.base_dn}"
    spn = f"HTTP/{unique_name('dup')}.contoso.lab"
    with created(directory, f"{unique_name('own').upper()}$", AccountKind.COMPUTER, ou) as owner, \
            created(directory, f"{unique_name('oth').upper()}$", AccountKind.COMPUTER, ou) as other:
        directory.add_spns(owner.dn, [spn])
        with pytest.raises(SpnConflict) as info:  # found by our forest-wide lookup
            directory.add_spns(other.dn, [spn.upper()])
        assert info.value.owner.startswith(owner.sam)

        class Blind(LdapDirectory):
            """Misses the owner on the first lookup, so the DC's own refusal (19) is what stops it."""
            looked = 0

            def find_spn_owners(self, s):
                Blind.looked += 1
                return [] if Blind.looked == 1 else super().find_spn_owners(s)

        blind = Blind(settings(samba_dc))
        try:
            with pytest.raises(SpnConflict) as info:
                blind.add_spns(other.dn, [spn])
            assert info.value.owner.startswith(owner.sam)
        finally:
            blind.close()
        assert directory.get_account_by_dn(other.dn).spns == []


def test_forest_wide_lookup_through_the_global_catalog(samba_dc, unique_name):
    d = LdapDirectory(settings(samba_dc, use_global_catalog=True))
    try:
        owners = d.find_spn_owners("HOST/EX01.CONTOSO.LAB")
        assert [a.sam for a in owners] == ["EX01$"]
        assert "global catalog" in d.describe()
        found = d.find_accounts_with_http_spns(["Nothing.Contoso.Lab"])
        assert found == {"nothing.contoso.lab": []}
    finally:
        d.close()


def test_kcd_attributes_read_back_and_undone(samba_dc, directory, unique_name):
    name = unique_name("seg")
    with created(directory, name, AccountKind.USER, f"CN=Users,{samba_dc.base_dn}", 24) as seg:
        directory.add_spns(seg.dn, [f"HTTP/{name}.contoso.lab"])
        before = directory.set_delegate_to(seg.dn, ["HTTP/mail.contoso.lab"])
        old_uac = directory.set_uac(seg.dn, seg.uac | UAC_TRUSTED_TO_AUTH_FOR_DELEGATION)
        now = directory.get_account_by_dn(seg.dn)
        assert now.delegate_to == ["HTTP/mail.contoso.lab"]
        assert now.has_flag(UAC_TRUSTED_TO_AUTH_FOR_DELEGATION) and not now.has_flag(UAC_TRUSTED_FOR_DELEGATION)
        with pytest.raises(PolicyRefused):
            directory.set_uac(seg.dn, now.uac | UAC_TRUSTED_FOR_DELEGATION)
        directory.set_uac(seg.dn, old_uac)
        directory.set_delegate_to(seg.dn, before)
        back = directory.get_account_by_dn(seg.dn)
        assert back.uac == seg.uac and back.delegate_to == []


def test_injection_attempts_are_escaped_or_refused(samba_dc, directory, unique_name):
    for name in ("*", "*)(cn=*", "Administrator)(cn=*", "*)(|(objectClass=*"):
        assert directory.get_account(name) is None
    with pytest.raises(InvalidInput):
        directory.find_spn_owners("HOST/*")
    with pytest.raises(InvalidInput):
        directory.create_account("bad\\name", AccountKind.USER, f"CN=Users,{samba_dc.base_dn}", 24)
    with pytest.raises(InvalidInput):
        directory.create_account("nul\x00x", AccountKind.USER, f"CN=Users,{samba_dc.base_dn}", 24)
    name = f"p({unique_name('x')})"
    with created(directory, name, AccountKind.USER, f"CN=Users,{samba_dc.base_dn}") as acct:
        assert acct.dn == f"CN={name},CN=Users,{samba_dc.base_dn}"
        assert directory.get_account(name).dn == acct.dn
        assert directory.get_account("p(*)") is None


def _self_signed_ca_pem() -> str:
    """A CA that did not sign the DC's certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other CA")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()
