"""Every way a connection to a customer's DC goes wrong names its cause and its fix, never a traceback; SPN lookups
fall back to the domain when the global catalog cannot be reached, and say so; a Kerberos problem on this machine
is "could not run", not a finding about the domain. Against the session's real Samba AD DC."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ldap3 import Server

from asa_wizard.adapters.ldap import LdapDirectory, LdapSettings
from asa_wizard.adapters.ldap_errors import InvalidInput, translate_exception
from asa_wizard.core.checks import run_catalogue
from asa_wizard.core.errors import AuthenticationFailed, ConnectionFailed
from asa_wizard.core.model import Domain, Environment, Forest, Namespace

pytestmark = pytest.mark.samba


def settings(dc, **changes) -> LdapSettings:
    base = dict(host=dc.host, user=dc.admin_upn, password=dc.admin_password, ca_file=str(dc.ca_file),
                tls_name=dc.tls_name, connect_timeout=3, receive_timeout=15)
    base.update(changes)
    return LdapSettings(**base)


def closed_port(host: str) -> int:
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def connect(dc, **changes) -> None:
    d = LdapDirectory(settings(dc, **changes))
    try:
        d.connect()
    finally:
        d.close()


def test_a_ca_file_that_does_not_exist(samba_dc, tmp_path):
    missing = tmp_path / "contoso-ca.pem"
    with pytest.raises(InvalidInput) as info:
        connect(samba_dc, ca_file=str(missing))
    assert f"The CA file {missing} does not exist" in info.value.problem
    assert "--ca-file" in info.value.fix


def test_a_ca_file_that_is_not_a_certificate(samba_dc, tmp_path):
    bogus = tmp_path / "ca.pem"
    bogus.write_text("this is the admin's notes, not a certificate\n")
    with pytest.raises(InvalidInput) as info:
        connect(samba_dc, ca_file=str(bogus))
    assert "is not a PEM certificate" in info.value.problem and "firewall" not in info.value.fix
    assert "BEGIN CERTIFICATE" in info.value.fix


def test_a_name_that_does_not_resolve_is_called_a_dns_problem(samba_dc):
    with pytest.raises(ConnectionFailed) as info:
        connect(samba_dc, host="dc1.no-such-domain.invalid", tls_name=None)
    assert "dc1.no-such-domain.invalid does not resolve (DNS" in info.value.problem
    assert "DNS server" in info.value.fix


def test_a_refused_port(samba_dc):
    port = closed_port(samba_dc.host)
    with pytest.raises(ConnectionFailed) as info:
        connect(samba_dc, port=port)
    assert f"{samba_dc.host}:{port} (connection refused)" in info.value.problem
    assert "636" in info.value.fix


def test_a_tls_name_mismatch_names_the_certificates_name_and_the_option(samba_dc):
    with pytest.raises(ConnectionFailed) as info:
        connect(samba_dc, tls_name=None)  # by address, without the certificate's name
    assert "TLS name mismatch" in info.value.problem and "DC1.contoso.lab" in info.value.problem
    assert "--dc-tls-name DC1.contoso.lab" in info.value.fix


def test_unknown_user_and_wrong_password_as_samba_answers_them(samba_dc):
    """Samba answers `data 52e` for both (Windows answers 525 for an unknown user): the message must not claim
    the user exists."""
    for changes in ({"user": f"nobody-here@{samba_dc.domain}"},
                    {"password": type(samba_dc.admin_password)("Wrong-Password-2024!")}):
        with pytest.raises(AuthenticationFailed) as info:
            connect(samba_dc, **changes)
        assert "AD code 52e" in info.value.problem and "no such user" in info.value.problem
        assert "the user name exists" not in info.value.fix and "user name" in info.value.fix


def test_clock_skew_in_a_kerberos_bind_is_named():
    """The text is MIT's, as python-gssapi raises it when the clocks differ (a skewed clock cannot be made on a
    shared test machine)."""
    exc = Exception("Major (851968): Unspecified GSS failure.  Minor code may provide more information, "
                    "Minor (2529638949): Clock skew too great")
    err = translate_exception(exc, operation="log on", where="dc1.contoso.lab:636")
    assert isinstance(err, AuthenticationFailed) and "more than Kerberos allows (5 minutes)" in err.problem
    assert "Synchronise" in err.fix


def test_the_cli_shows_the_cause_and_no_traceback(samba_dc, tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "ASA_WIZARD_DATA_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(sys.path), "ASA_WIZARD_LDAP_PASSWORD": "x"}
    r = subprocess.run([sys.executable, "-m", "asa_wizard", "check", "--dc", samba_dc.host, "--user", "a@b.c",
                        "--ca-file", str(tmp_path / "missing.pem"), "--no-exchange"],
                       capture_output=True, text=True, timeout=60, env=env, cwd=str(tmp_path), check=False)
    text = " ".join(r.stderr.split())  # the console wraps long lines
    assert r.returncode == 3
    assert f"The CA file {tmp_path / 'missing.pem'} does not exist" in text and "Traceback" not in text


def test_spn_lookups_fall_back_to_the_domain_when_the_gc_is_unreachable_and_say_so(samba_dc):
    gc = Server(samba_dc.host, port=closed_port(samba_dc.host), connect_timeout=2)
    d = LdapDirectory(settings(samba_dc, use_global_catalog=True), gc_server=gc)
    try:
        owners = d.find_spn_owners(f"HOST/{samba_dc.host_name}")  # the DC's own SPN
        assert [a.sam.lower() for a in owners] == [f"{samba_dc.host_name}$"]
        scope = d.spn_lookup_scope()
        assert scope.startswith("this domain only") and "could not be used" in scope
    finally:
        d.close()
    good = LdapDirectory(settings(samba_dc, use_global_catalog=True))
    try:
        good.find_spn_owners(f"HOST/{samba_dc.host_name}")
        assert good.spn_lookup_scope().startswith("forest-wide, through the global catalog")
        assert all(not a.sam.lower().startswith(samba_dc.host_name) for a in good.find_unconstrained_delegation())
    finally:
        good.close()


def _env(dc) -> Environment:
    domain = Domain(dns_name=dc.domain, netbios_name=dc.netbios, dn=dc.base_dn)
    return Environment(forest=Forest(root_domain=dc.domain, domains=[domain], dc_host_name=dc.tls_name),
                       namespaces=[Namespace(host=f"mail.{dc.domain}")])


def _kerberos_rows(dc, probe) -> dict[str, object]:
    return {f.check_id: f for f in run_catalogue(_env(dc), probe=probe, only=["kerberos"])}


def test_no_kdc_for_the_realm_in_krb5_conf_is_could_not_run(samba_dc, tmp_path, monkeypatch):
    pytest.importorskip("gssapi")
    from asa_wizard.adapters.kerberos import GssKerberosProbe

    conf = tmp_path / "krb5.conf"
    conf.write_text("[libdefaults]\n    dns_lookup_kdc = false\n    dns_lookup_realm = false\n")
    monkeypatch.setenv("KRB5_CONFIG", str(conf))
    probe = GssKerberosProbe(samba_dc.realm, principal=samba_dc.admin_upn.split("@")[0],
                             password=samba_dc.admin_password, timeout=10)
    try:
        rows = _kerberos_rows(samba_dc, probe)
    finally:
        probe.close()
    ticket = rows["kerberos.ticket"]
    assert ticket.status.value == "skipped", ticket
    assert ticket.skipped_reason.startswith("Could not run: this machine's Kerberos configuration names no KDC")
    assert f"{samba_dc.realm} = {{" in ticket.fix and f"kdc = {samba_dc.tls_name}" in ticket.fix
    assert rows["kerberos.server"].status.value == "skipped"


def test_no_ticket_cache_is_could_not_run(samba_dc, tmp_path, monkeypatch):
    pytest.importorskip("gssapi")
    from asa_wizard.adapters.kerberos import GssKerberosProbe

    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.krb5_conf))
    probe = GssKerberosProbe(samba_dc.realm, ccache=Path(tmp_path / "no-such-ccache"), timeout=10)
    try:
        ticket = _kerberos_rows(samba_dc, probe)["kerberos.ticket"]
    finally:
        probe.close()
    assert ticket.status.value == "skipped", ticket
    assert "no (valid) Kerberos ticket" in ticket.skipped_reason and "kinit" in ticket.fix


def test_unconstrained_delegation_lookup_skips_domain_controllers(samba_dc):
    d = LdapDirectory(settings(samba_dc))
    try:
        dc_account = d.get_account(f"{samba_dc.host_name.upper()}$")
        assert dc_account is not None and dc_account.uac & 0x80000  # the DC itself is trusted for delegation
        assert all(a.dn != dc_account.dn for a in d.find_unconstrained_delegation())
    finally:
        d.close()
