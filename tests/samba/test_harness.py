"""The Samba AD DC test harness itself: the DC behaves like the hardened Windows DC the adapters are
written for (TLS validated, no clear-text simple bind, Kerberos), and holds the Exchange objects."""

from __future__ import annotations

import datetime as dt
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3 import SIMPLE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPSocketOpenError

from asa_wizard.core.secrets import Secret
from asa_wizard.lab.samba import AUTODISCOVER_KEYWORD, SambaDC, SambaError, port_open
from asa_wizard.lab.scenario import load_scenario
from asa_wizard.lab.snapshot import exchange_server_dn, site_dn
from asa_wizard.resources import scenario_dir


TREE_DELETE_OID = "1.2.840.113556.1.4.805"


def _other_ca(path: Path) -> Path:
    """A self-signed CA that did not sign the DC's certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ldaps_bind(dc: SambaDC, tls: Tls) -> Connection:
    server = Server(dc.host, port=636, use_ssl=True, tls=tls, connect_timeout=5)
    return Connection(server, dc.admin_dn, dc.admin_password.reveal(), authentication=SIMPLE,
                      receive_timeout=10, auto_bind=True)


def test_ldaps_bind_validates_the_dc_certificate(samba_dc: SambaDC) -> None:
    conn = samba_dc.admin_connection()
    try:
        assert conn.server.ssl
        assert conn.search(samba_dc.admin_dn, "(objectClass=user)", attributes=["sAMAccountName"])
        assert conn.entries[0].sAMAccountName.value == "Administrator"
    finally:
        conn.unbind()


def test_ldaps_with_a_ca_that_did_not_sign_the_certificate_is_refused(samba_dc: SambaDC, tmp_path: Path) -> None:
    wrong = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(_other_ca(tmp_path / "other.pem")),
                valid_names=[samba_dc.tls_name])
    with pytest.raises(LDAPSocketOpenError, match="CERTIFICATE_VERIFY_FAILED"):
        _ldaps_bind(samba_dc, wrong)


def test_ldaps_by_ip_without_the_dc_name_fails_the_name_check(samba_dc: SambaDC) -> None:
    """The certificate names dc1.contoso.lab, not 127.0.0.x: why the harness passes valid_names."""
    by_ip = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(samba_dc.ca_file))
    with pytest.raises(LDAPSocketOpenError, match="doesn't match"):
        _ldaps_bind(samba_dc, by_ip)


def test_simple_bind_without_tls_is_refused_with_stronger_auth_required(samba_dc: SambaDC) -> None:
    conn = Connection(Server(samba_dc.host, port=389, connect_timeout=5), samba_dc.admin_dn,
                      samba_dc.admin_password.reveal(), authentication=SIMPLE, receive_timeout=10)
    try:
        assert not conn.bind()
        assert conn.result["description"] == "strongerAuthRequired"
    finally:
        conn.unbind()


def test_exchange_servers_and_their_objects_are_in_the_configuration_nc(samba_dc: SambaDC) -> None:
    conn = samba_dc.admin_connection()
    try:
        conn.search(samba_dc.configuration_dn, "(objectClass=msExchExchangeServer)",
                    attributes=["cn", "serialNumber", "networkAddress", "msExchCurrentServerRoles",
                                "msExchServerSite"])
        servers = {e.cn.value: e for e in conn.entries}
        assert set(servers) == {"EX01", "EX02"}
        ex01 = servers["EX01"]
        assert ex01.serialNumber.value == "Version 15.2 (Build 1544.4)"
        assert "ncacn_ip_tcp:ex01.contoso.lab" in ex01.networkAddress.values
        assert ex01.msExchCurrentServerRoles.value == 2 | 4  # Mailbox + ClientAccess
        assert ex01.msExchServerSite.value == f"CN=Default-First-Site-Name,CN=Sites,{samba_dc.configuration_dn}"

        conn.search(samba_dc.configuration_dn,
                    f"(&(objectClass=serviceConnectionPoint)(keywords={AUTODISCOVER_KEYWORD}))",
                    attributes=["serviceBindingInformation"])
        urls = {e.entry_dn.split(",")[0]: e.serviceBindingInformation.value for e in conn.entries}
        assert urls == {f"CN={n}": "https://autodiscover.contoso.lab/Autodiscover/Autodiscover.xml"
                        for n in ("EX01", "EX02")}

        conn.search(samba_dc.base_dn, "(sAMAccountName=EX01$)", attributes=["servicePrincipalName",
                                                                            "userAccountControl"])
        assert conn.entries[0].userAccountControl.value == 4096
        assert "HOST/ex01.contoso.lab" in conn.entries[0].servicePrincipalName.values
    finally:
        conn.unbind()


def test_dns_follow_the_embedded_lab_conventions() -> None:
    """Discovery code written against the embedded lab must read the Samba DC unchanged."""
    s = load_scenario(scenario_dir() / "healthy.toml")
    dc = SambaDC(Path("/nonexistent"), realm=s.domain, netbios=s.netbios)
    assert dc.base_dn.lower() == s.domain_dn.lower()
    for server in s.servers:
        assert dc.exchange_server_dn(s.organization, server.name) == exchange_server_dn(s, server)
        assert dc.site_dn(server.site) == site_dn(s, server.site)


def test_populate_is_idempotent_and_writes_virtual_directories(samba_dc: SambaDC, unique_name) -> None:
    name = unique_name("EXT").upper()
    site = unique_name("Site")
    spec = {"name": name, "fqdn": f"{name.lower()}.contoso.lab", "roles": ["Mailbox"], "site": site,
            "vdirs": {"ews": {"internal": "https://mail.contoso.lab/EWS/Exchange.asmx", "internal_auth": 2 | 8192}}}
    server_dn = samba_dc.exchange_server_dn("CONTOSO", name)
    conn = samba_dc.admin_connection()
    try:
        samba_dc.populate_exchange("CONTOSO", [spec])
        samba_dc.populate_exchange("CONTOSO", [spec])
        conn.search(server_dn, "(objectClass=msExchVirtualDirectory)",
                    attributes=["objectClass", "msExchInternalHostName", "msExchInternalAuthenticationMethods"])
        assert len(conn.entries) == 1
        vdir = conn.entries[0]
        assert "msExchWebServicesVirtualDirectory" in vdir.objectClass.values
        assert vdir.msExchInternalHostName.value == "https://mail.contoso.lab/EWS/Exchange.asmx"
        assert vdir.msExchInternalAuthenticationMethods.value == 8194
        conn.search(samba_dc.configuration_dn, f"(&(objectClass=msExchExchangeServer)(cn={name}))",
                    attributes=["msExchServerSite"])
        assert [e.msExchServerSite.value for e in conn.entries] == [samba_dc.site_dn(site)]
    finally:
        # The session's organisation is EX01 and EX02 in one site only: other tests count them.
        for dn in (server_dn, samba_dc.computer_dn(name), samba_dc.site_dn(site)):
            conn.delete(dn, controls=[(TREE_DELETE_OID, True, None)])
        conn.unbind()


def test_kinit_with_the_password_on_stdin_and_kvno_for_the_dc_ldap_spn(samba_dc: SambaDC, tmp_path: Path) -> None:
    ccache = tmp_path / "cc"
    samba_dc.kinit(samba_dc.admin_upn, samba_dc.admin_password, ccache)
    spn = f"ldap/{samba_dc.tls_name}"
    got = samba_dc.kvno(spn, ccache)
    assert got.returncode == 0, got.stderr
    listed = subprocess.run(["klist", "-e", "-c", f"FILE:{ccache}"], capture_output=True, text=True,
                            env=samba_dc.krb_env(ccache), timeout=10)
    assert f"{spn}@{samba_dc.realm}" in listed.stdout
    assert "aes256-cts" in listed.stdout


def test_kinit_with_a_wrong_password_fails_without_showing_it(samba_dc: SambaDC, tmp_path: Path) -> None:
    wrong = Secret("Not-The-Password-42")
    with pytest.raises(SambaError) as info:
        samba_dc.kinit(samba_dc.admin_upn, wrong, tmp_path / "cc")
    assert "Password incorrect" in str(info.value) or "preauthentication failed" in str(info.value).lower()
    assert wrong.reveal() not in str(info.value)


def test_the_dc_stops_cleanly_and_starts_again(samba_dc: SambaDC) -> None:
    try:
        samba_dc.stop()
        assert not samba_dc.running()
        assert not any(port_open(samba_dc.host, p) for p in (88, 389, 636))
        assert not samba_dc.pid_file.exists()
    finally:
        samba_dc.start()
        samba_dc.wait()
    conn = samba_dc.admin_connection()
    conn.unbind()
