"""Kerberos proven for real against the Samba AD DC: an ASA with SPNs, one HTTPS acceptor per simulated
Exchange server with the keytab of the credential that server holds, the namespace's certificate from a lab CA
and Extended Protection per path, the real GSSAPI probe (TLS with SNI and channel binding), and the check
catalogue's verdict on what it saw."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ldap3 import MODIFY_REPLACE

from asa_wizard.adapters.kerberos import GssKerberosProbe
from asa_wizard.core.checks import Status, run_catalogue, run_probes, summarize
from asa_wizard.core.model import (
    Account,
    AccountKind,
    AsaCredential,
    Domain,
    Environment,
    ExchangeServer,
    Forest,
    Namespace,
    SegConfig,
    Service,
)
from asa_wizard.core.checks.extended_protection import EXPECTED
from asa_wizard.core.ports import ProbeOutcome
from asa_wizard.core.secrets import Secret
from asa_wizard.lab.acceptor import NegotiateAcceptor
from asa_wizard.lab.keytab import write_keytab
from asa_wizard.lab.tlsutil import LabCA

pytest.importorskip("gssapi")
pytest.importorskip("krb5")

TA = 0x1000000


def _pw() -> Secret:
    return Secret("Lab-" + secrets.token_urlsafe(18) + "1a!")


def _quoted(p: Secret) -> bytes:
    return ('"%s"' % p.reveal()).encode("utf-16-le")


class Directory:
    """The few directory changes these tests make, over the DC's admin LDAPS connection."""

    def __init__(self, dc) -> None:
        self.dc = dc
        self.conn = dc.admin_connection()

    def ok(self) -> None:
        assert self.conn.result["result"] == 0, self.conn.result

    def computer(self, name: str, spns: list[str], enctypes: int, password: Secret) -> str:
        dn = f"CN={name},CN=Computers,{self.dc.base_dn}"
        self.conn.add(dn, ["top", "person", "organizationalPerson", "user", "computer"],
                      {"sAMAccountName": f"{name}$", "userAccountControl": "4096",
                       "msDS-SupportedEncryptionTypes": str(enctypes), "servicePrincipalName": spns})
        self.ok()
        self.password(dn, password)
        return dn

    def user(self, name: str, password: Secret, uac: int = 512 | 0x10000, spns: list[str] | None = None,
             delegate_to: list[str] | None = None) -> str:
        dn = f"CN={name},CN=Users,{self.dc.base_dn}"
        attrs = {"sAMAccountName": name, "userPrincipalName": f"{name}@{self.dc.domain}"}
        if spns:
            attrs["servicePrincipalName"] = spns
        self.conn.add(dn, ["top", "person", "organizationalPerson", "user"], attrs)
        self.ok()
        self.password(dn, password)
        self.modify(dn, "userAccountControl", [str(uac)])
        if delegate_to:
            self.modify(dn, "msDS-AllowedToDelegateTo", delegate_to)
        return dn

    def password(self, dn: str, password: Secret) -> None:
        self.modify(dn, "unicodePwd", [_quoted(password)])

    def modify(self, dn: str, attribute: str, values: list) -> None:
        self.conn.modify(dn, {attribute: [(MODIFY_REPLACE, values)]})
        self.ok()

    def kvno(self, dn: str) -> int:
        self.conn.search(dn, "(objectClass=*)", attributes=["msDS-KeyVersionNumber"])
        return int(self.conn.entries[0]["msDS-KeyVersionNumber"].value)

    def close(self) -> None:
        self.conn.unbind()


@pytest.fixture
def kdc(samba_dc, tmp_path, monkeypatch):
    """The DC as this process's only KDC (KRB5_CONFIG is process-wide: set here, restored after)."""
    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'default-ccache'}")
    d = Directory(samba_dc)
    yield d
    d.close()


@pytest.fixture(scope="module")
def ca():
    authority = LabCA()
    yield authority
    authority.close()


@pytest.fixture
def org(kdc, samba_dc, unique_name, tmp_path, ca):
    """An ASA (AES only) with the SPN of a load-balanced name, a user to probe as, and the namespace's
    certificate (what every server behind the name presents)."""
    asa = unique_name("asa")
    host = f"{unique_name('mail')}.{samba_dc.domain}"  # first label is not a computer name
    spn = f"HTTP/{host}"
    asa_pw = _pw()
    asa_dn = kdc.computer(asa, [spn], 24, asa_pw)
    user, user_pw = unique_name("usr"), _pw()
    kdc.user(user, user_pw)
    return {"asa": asa, "asa_dn": asa_dn, "asa_pw": asa_pw, "host": host, "spn": spn, "user": user,
            "user_pw": user_pw, "dir": tmp_path, "ca": ca, "cert": ca.issue((host,))}


# Exchange 2019 CU14's front end (Microsoft's table): what the acceptors enforce unless a test says otherwise
FRONT_END_EP = {loc: v for loc, v in EXPECTED.items() if loc.startswith("Default Web Site/")}


def acceptor(o, keytab_path, name: str, ep: dict[str, str] | None = None, **kw) -> NegotiateAcceptor:
    """An HTTPS acceptor presenting the namespace's certificate, with Extended Protection as on CU14."""
    certificates = kw.pop("certificates", None) or {o["host"]: o["cert"]}
    return NegotiateAcceptor(keytab_path, name, certificates=certificates,
                             extended_protection=FRONT_END_EP if ep is None else ep, **kw)


def keytab(o, name: str, password: Secret, kvno: int, realm: str) -> Path:
    return write_keytab(o["dir"] / f"{name}.keytab", realm, f"{o['asa']}$", password, kvno, [o["spn"]])


def environment(samba_dc, o, servers: dict[str, str | None], asa_enctypes: int = 24,
                seg: SegConfig | None = None, extra: list[Account] | None = None) -> Environment:
    """The environment the wizard would have read: each server's held credential ('current', 'old', None)."""
    now = datetime.now(timezone.utc)
    old = datetime(2020, 1, 1, tzinfo=timezone.utc)
    asa = Account(dn=o["asa_dn"], sam=f"{o['asa']}$", kind=AccountKind.COMPUTER, uac=4096, spns=[o["spn"]],
                  enctypes=asa_enctypes, pwd_last_set=now)
    env_servers = []
    for name, held in servers.items():
        cred = None if held is None else AsaCredential(f"{samba_dc.netbios}\\{asa.sam}", now if held == "current"
                                                       else old)
        env_servers.append(ExchangeServer(name=name, fqdn=f"{name.lower()}.{samba_dc.domain}",
                                          version="Version 15.2 (Build 1544.4)", roles=["Mailbox", "ClientAccess"],
                                          asa_latest=cred, asa_state_known=True, service_host_running=True,
                                          reachable=True))
    ns = Namespace(host=o["host"], services={Service.EWS, Service.EAS, Service.MAPI, Service.OUTLOOK_ANYWHERE},
                   servers=list(servers))
    forest = Forest(root_domain=samba_dc.domain,
                    domains=[Domain(samba_dc.domain, samba_dc.netbios, samba_dc.base_dn)])
    return Environment(forest=forest, servers=env_servers, namespaces=[ns], accounts=[asa, *(extra or [])],
                       spn_owners={o["spn"].lower(): [asa.dn]}, asa_sam=asa.sam, seg=seg,
                       iis_iusrs={n: [] for n in servers})


def probe_for(samba_dc, o, acceptors: dict[str, object], **kw) -> GssKerberosProbe:
    """The real probe, as the wizard makes it, reaching each server at its acceptor (or whatever stands in
    front of it) over HTTPS, trusting the lab CA."""
    addresses = {name: f"{a.address[0]}:{a.address[1]}" for name, a in acceptors.items()}
    return GssKerberosProbe(samba_dc.realm, principal=o["user"], password=o["user_pw"], ca_file=str(o["ca"].ca_file),
                            addresses=addresses, timeout=20, **kw)


PATHS = ["/EWS/Exchange.asmx", "/mapi/emsmdb/", "/rpc/rpcproxy.dll", "/Microsoft-Server-ActiveSync"]


def test_every_server_holding_the_current_password_accepts(samba_dc, kdc, org):
    """HTTPS to each server with the namespace's name and a token bound to that TLS connection: every path is
    accepted, the Require paths (MAPI, Outlook Anywhere) only because the binding matched."""
    kt = keytab(org, "current", org["asa_pw"], kdc.kvno(org["asa_dn"]), samba_dc.realm)
    with acceptor(org, kt, "EX01") as a1, acceptor(org, kt, "EX02") as a2:
        probe = probe_for(samba_dc, org, {"EX01": a1, "EX02": a2})
        env = environment(samba_dc, org, {"EX01": "current", "EX02": "current"})
        findings = run_catalogue(env, probe=probe, only=["kerberos", "ep.channel-binding"])
        probe.close()
    status = summarize(findings)
    assert status["kerberos.ticket"] == Status.PASS and status["kerberos.server"] == Status.PASS
    assert status["ep.channel-binding"] == Status.PASS
    ticket = next(f for f in findings if f.check_id == "kerberos.ticket")
    assert "AES256" in ticket.evidence
    # the acceptors really saw the user, once per client path, each accepted
    user = f"{org['user']}@{samba_dc.realm}"
    assert a1.accepted == [user] * 4 and a2.accepted == a1.accepted
    assert [(m, p) for m, p, _ in a1.seen] == [("POST", "/EWS/Exchange.asmx"), ("POST", "/mapi/emsmdb/"),
                                               ("RPC_IN_DATA", "/rpc/rpcproxy.dll"),
                                               ("OPTIONS", "/Microsoft-Server-ActiveSync")]
    server = {f.subject: f for f in findings if f.check_id == "kerberos.server"}
    for line in ("EWS /EWS/Exchange.asmx: accepted", "MAPI over HTTP /mapi/emsmdb/: accepted",
                 "Outlook Anywhere /rpc/rpcproxy.dll: accepted", "ActiveSync /Microsoft-Server-ActiveSync: accepted"):
        assert line in server["EX01"].evidence, server["EX01"].evidence


def test_a_server_with_the_old_or_no_credential_rejects_and_is_named_with_the_fix(samba_dc, kdc, org):
    old_kvno = kdc.kvno(org["asa_dn"])
    old = keytab(org, "old", org["asa_pw"], old_kvno, samba_dc.realm)
    new_pw = _pw()
    kdc.password(org["asa_dn"], new_pw)  # the roll: AD changes, EX02 misses it
    current = keytab(org, "current", new_pw, kdc.kvno(org["asa_dn"]), samba_dc.realm)
    with acceptor(org, current, "EX01") as a1, acceptor(org, old, "EX02") as a2, \
            acceptor(org, None, "EX03") as a3:
        probe = probe_for(samba_dc, org, {"EX01": a1, "EX02": a2, "EX03": a3})
        env = environment(samba_dc, org, {"EX01": "current", "EX02": "old", "EX03": None})
        findings = run_catalogue(env, probe=probe, only=["kerberos", "rollout"])
        probe.close()
    server = {f.subject: f for f in findings if f.check_id == "kerberos.server"}
    assert server["EX01"].status == Status.PASS
    for name in ("EX02", "EX03"):
        f = server[name]
        assert f.status == Status.FAIL and "KRB_AP_ERR_MODIFIED" in f.evidence, f.evidence
        assert (f".\\RollAlternateServiceAccountPassword.ps1 -ToSpecificServers '{name.lower()}.{samba_dc.domain}' "
                f"-CopyFrom 'ex01.{samba_dc.domain}'") in f.fix
    assert a2.rejected and a1.rejected == []
    status = summarize(findings)
    assert status["rollout.current"] == Status.FAIL and status["rollout.coverage"] == Status.FAIL


def test_no_spn_means_no_ticket_and_ntlm_fallback(samba_dc, kdc, org, unique_name):
    host = f"{unique_name('nospn')}.{samba_dc.domain}"
    o = dict(org, host=host, spn=f"HTTP/{host}")
    with acceptor(o, None, "EX01") as a1:
        probe = probe_for(samba_dc, o, {"EX01": a1})
        env = environment(samba_dc, o, {"EX01": "current"})
        env.spn_owners = {}
        findings = run_catalogue(env, probe=probe, only=["kerberos"])
        probe.close()
    ticket = next(f for f in findings if f.check_id == "kerberos.ticket")
    assert ticket.status == Status.FAIL and "KDC_ERR_S_PRINCIPAL_UNKNOWN" in ticket.evidence
    server = next(f for f in findings if f.check_id == "kerberos.server")
    assert server.status == Status.FAIL and "ntlm-fallback" in server.evidence
    assert f"setspn -S '{o['spn']}'" in server.fix
    assert a1.accepted == [] and a1.rejected == []  # nothing Kerberos reached the server


def test_rc4_only_account_gives_an_rc4_ticket_and_an_encryption_finding(samba_dc, kdc, org):
    kdc.modify(org["asa_dn"], "msDS-SupportedEncryptionTypes", ["4"])
    kt = keytab(org, "current", org["asa_pw"], kdc.kvno(org["asa_dn"]), samba_dc.realm)
    with acceptor(org, kt, "EX01") as a1:
        probe = probe_for(samba_dc, org, {"EX01": a1})
        env = environment(samba_dc, org, {"EX01": "current"}, asa_enctypes=4)
        findings = run_catalogue(env, probe=probe, only=["kerberos", "asa.enctypes"])
        probe.close()
    status = summarize(findings)
    ticket = next(f for f in findings if f.check_id == "kerberos.ticket")
    assert ticket.status == Status.WARN and "RC4" in ticket.evidence, ticket.evidence
    assert status["asa.enctypes"] == Status.FAIL
    assert status["kerberos.server"] == Status.PASS


@pytest.fixture
def gateway(kdc, org, unique_name):
    svc, pw = unique_name("seg"), _pw()
    dn = kdc.user(svc, pw, uac=512 | 0x10000 | TA, spns=[f"HTTP/{svc}"], delegate_to=[org["spn"]])
    return {"sam": svc, "dn": dn, "pw": pw}


def _s4u(samba_dc, kdc, org, gateway):
    kt = keytab(org, "current", org["asa_pw"], kdc.kvno(org["asa_dn"]), samba_dc.realm)
    with acceptor(org, kt, "EX01") as a1:
        probe = probe_for(samba_dc, org, {"EX01": a1}, seg_password=gateway["pw"])
        server = ExchangeServer(name="EX01", fqdn=f"ex01.{samba_dc.domain}")
        result = probe.s4u(gateway["sam"], org["user"], org["spn"], server)
        probe.close()
    return result, a1


def test_kcd_with_protocol_transition_and_the_target_spn_works_end_to_end(samba_dc, kdc, org, gateway):
    result, acceptor = _s4u(samba_dc, kdc, org, gateway)
    assert result.outcome == ProbeOutcome.ACCEPTED, result.detail
    assert acceptor.accepted == [f"{org['user']}@{samba_dc.realm}"]  # the server sees the user, not the gateway


@pytest.mark.parametrize("breaks", ["protocol-transition", "target"])
def test_kcd_without_protocol_transition_or_target_is_kdc_err_badoption(samba_dc, kdc, org, gateway, breaks):
    if breaks == "protocol-transition":
        kdc.modify(gateway["dn"], "userAccountControl", [str(512 | 0x10000)])
    else:
        kdc.modify(gateway["dn"], "msDS-AllowedToDelegateTo", [])
    result, acceptor = _s4u(samba_dc, kdc, org, gateway)
    assert result.outcome == ProbeOutcome.KDC_REFUSED
    assert result.detail.startswith("KDC_ERR_BADOPTION"), result.detail
    assert acceptor.accepted == []
    # and the catalogue reports it as such, with the delegation fix
    seg_account = Account(dn=gateway["dn"], sam=gateway["sam"], kind=AccountKind.USER,
                          uac=512 | 0x10000 | (0 if breaks == "protocol-transition" else TA),
                          spns=[f"HTTP/{gateway['sam']}"],
                          delegate_to=[] if breaks == "target" else [org["spn"]])
    from asa_wizard.core.checks import ProbeReport

    env = environment(samba_dc, org, {"EX01": "current"}, seg=SegConfig(gateway["sam"], [org["user"]]),
                      extra=[seg_account, Account(dn=f"CN={org['user']},CN=Users,{samba_dc.base_dn}",
                                                  sam=org["user"], kind=AccountKind.USER, uac=512)])
    findings = run_catalogue(env, probe=ProbeReport(s4u=[result]), only=["kerberos.s4u"])
    f = findings[0]
    assert f.status == Status.FAIL and "KDC_ERR_BADOPTION" in f.evidence
    wanted = "kcd.protocol-transition" if breaks == "protocol-transition" else "kcd.target"
    assert wanted in f.fix


def test_a_wrong_password_is_an_authentication_error_that_never_shows_the_password(samba_dc, kdc, org):
    from asa_wizard.core.checks import run_probes
    from asa_wizard.core.errors import AuthenticationFailed

    wrong = Secret("Wrong-" + secrets.token_hex(8))
    probe = GssKerberosProbe(samba_dc.realm, principal=org["user"], password=wrong, timeout=20)
    with pytest.raises(AuthenticationFailed) as caught:
        probe.service_ticket(org["spn"])
    assert wrong.reveal() not in str(caught.value) and org["user"] in str(caught.value)
    # through the catalogue's runner it becomes a result a person can read, not a crash
    report = run_probes(environment(samba_dc, org, {"EX01": "current"}), probe)
    assert not report.tickets[0].ok and "refused a ticket" in report.tickets[0].error
    assert wrong.reveal() not in repr(report)
    probe.close()


def test_the_current_password_is_proven_by_key_version_not_by_when_added(samba_dc, kdc, org):
    """EX02 received a copy of the OLD password a minute ago: its WhenAdded looks current, the ticket of the
    ASA's current msDS-KeyVersionNumber proves it is not; EX01 accepts a ticket of exactly that key version."""
    from asa_wizard.core.current import Holding, credential_verdict

    old_kvno = kdc.kvno(org["asa_dn"])
    old = keytab(org, "old", org["asa_pw"], old_kvno, samba_dc.realm)
    new_pw = _pw()
    kdc.password(org["asa_dn"], new_pw)
    kvno = kdc.kvno(org["asa_dn"])
    assert kvno == old_kvno + 1
    current = keytab(org, "current", new_pw, kvno, samba_dc.realm)
    with acceptor(org, current, "EX01") as a1, acceptor(org, old, "EX02") as a2:
        probe = probe_for(samba_dc, org, {"EX01": a1, "EX02": a2})
        env = environment(samba_dc, org, {"EX01": "current", "EX02": "current"})  # both WhenAdded = now
        asa = env.accounts[0]
        asa.key_version = kvno
        qualified = f"{samba_dc.netbios}\\{asa.sam}"
        hints = {s.name: credential_verdict(s, asa, qualified) for s in env.servers}
        assert all(v.holding == Holding.CURRENT and not v.proven for v in hints.values())  # WhenAdded fooled
        results = [probe.probe_server(s, org["host"]) for s in env.servers]
        probe.close()
    by_name = {r.server: r for r in results}
    assert by_name["EX01"].outcome == ProbeOutcome.ACCEPTED and by_name["EX01"].kvno == kvno  # a real ticket's kvno
    proven = {s.name: credential_verdict(s, asa, qualified, results) for s in env.servers}
    assert proven["EX01"].holding == Holding.CURRENT and proven["EX01"].proven
    assert proven["EX02"].holding == Holding.STALE and proven["EX02"].proven
    assert a2.rejected


# --- Extended Protection: channel binding, load balancers, SNI, HTTP ----------------------------------------
def _unbound_token(samba_dc, o) -> bytes:
    """A SPNEGO token for the namespace with no channel binding (what a client without Extended Protection
    support sends), from the user's own TGT."""
    import gssapi

    probe = GssKerberosProbe(samba_dc.realm, principal=o["user"], password=o["user_pw"], timeout=20)
    try:
        ctx = probe._context_for(o["spn"], probe._creds(), spnego=True)
        return ctx.step()
    finally:
        assert isinstance(ctx, gssapi.SecurityContext)
        probe.close()


def _send_unbound(samba_dc, o, a: NegotiateAcceptor, path: str):
    import ssl

    from asa_wizard.adapters.kerberos import negotiate_request

    context = ssl.create_default_context(cafile=str(o["ca"].ca_file))
    return negotiate_request(*a.address, o["host"], path, _unbound_token(samba_dc, o), tls=True, context=context,
                             timeout=20)


def test_require_refuses_a_token_without_channel_binding_and_allow_accepts_it(samba_dc, kdc, org):
    kt = keytab(org, "current", org["asa_pw"], kdc.kvno(org["asa_dn"]), samba_dc.realm)
    with acceptor(org, kt, "EX01") as a1:
        mapi = _send_unbound(samba_dc, org, a1, "/mapi/emsmdb/")  # Require on the front end
        ews = _send_unbound(samba_dc, org, a1, "/EWS/Exchange.asmx")  # Allow
        autodiscover = _send_unbound(samba_dc, org, a1, "/Autodiscover/Autodiscover.xml")  # None
    assert mapi.status == 401 and "requires a channel binding" in mapi.body, mapi.body
    assert ews.status == 200 and autodiscover.status == 200
    assert a1.seen == [("POST", "/mapi/emsmdb/", "rejected"), ("POST", "/EWS/Exchange.asmx", "accepted"),
                       ("POST", "/Autodiscover/Autodiscover.xml", "accepted")]


def test_a_tls_terminating_load_balancer_breaks_the_binding_and_is_named(samba_dc, kdc, org):
    """The load balancer ends the client's TLS with its own certificate (same name, same CA) and opens another
    TLS connection to the server: the binding the probe sends is of the wrong connection."""
    from asa_wizard.lab.acceptor import TlsTerminatingProxy

    kt = keytab(org, "current", org["asa_pw"], kdc.kvno(org["asa_dn"]), samba_dc.realm)
    balancer_cert = org["ca"].issue((org["host"],))
    with acceptor(org, kt, "EX01") as a1, \
            TlsTerminatingProxy(a1.address, org["host"], balancer_cert, org["ca"].ca_file) as lb:
        probe = probe_for(samba_dc, org, {"EX01": lb})
        env = environment(samba_dc, org, {"EX01": "current"})
        findings = run_catalogue(env, probe=probe, only=["kerberos", "ep.channel-binding"])
        probe.close()
    by = {f.check_id: f for f in findings}
    # EWS (Allow) refused the bound token with GSS_S_BAD_BINDINGS and took the unbound one; MAPI and RPC
    # (Require) refused both; ActiveSync (Allow) like EWS
    assert any("BAD_BINDINGS" in r for r in a1.rejected), a1.rejected
    assert ("POST", "/EWS/Exchange.asmx", "accepted") in a1.seen
    assert ("POST", "/mapi/emsmdb/", "accepted") not in a1.seen
    binding = by["ep.channel-binding"]
    assert binding.status == Status.FAIL
    assert "EWS /EWS/Exchange.asmx: channel-binding" in binding.evidence
    assert "MAPI over HTTP /mapi/emsmdb/: channel-binding" in binding.evidence
    assert "same certificate" in binding.fix or "very certificate" in binding.fix
    assert by["kerberos.server"].status == Status.FAIL and "channel-binding" in by["kerberos.server"].evidence


def test_sni_chooses_the_namespace_certificate_on_the_server_address(samba_dc, kdc, org):
    """The probe connects to the server's address and asks for the namespace by SNI: a server with several
    certificates answers with the namespace's one, which is validated for the namespace."""
    kt = keytab(org, "current", org["asa_pw"], kdc.kvno(org["asa_dn"]), samba_dc.realm)
    own = org["ca"].issue((f"ex01.{samba_dc.domain}",))
    both = {f"ex01.{samba_dc.domain}": own, org["host"]: org["cert"]}  # the server's own name is the default
    with acceptor(org, kt, "EX01", certificates=both) as a1, \
            acceptor(org, kt, "EX02", certificates={f"ex02.{samba_dc.domain}": own}) as a2:
        probe = probe_for(samba_dc, org, {"EX01": a1, "EX02": a2})
        env = environment(samba_dc, org, {"EX01": "current", "EX02": "current"})
        report = run_probes(env, probe)
        probe.close()
    results = {r.server: r for r in report.servers}
    assert results["EX01"].outcome == ProbeOutcome.ACCEPTED, results["EX01"]
    assert all(p.channel_bound for p in results["EX01"].paths)
    # EX02 presents only its own name: the namespace cannot be validated, nothing is sent
    assert results["EX02"].outcome == ProbeOutcome.ERROR
    assert f"TLS certificate not valid for {org['host']}" in results["EX02"].paths[0].detail
    assert a2.seen == []


def test_plain_http_is_refused_for_a_real_target_unless_asked(samba_dc, kdc, org):
    from asa_wizard.core.errors import PolicyRefused

    with pytest.raises(PolicyRefused) as refused:
        GssKerberosProbe(samba_dc.realm, principal=org["user"], password=org["user_pw"], tls=False)
    assert "allow_http=True" in refused.value.fix
    kt = keytab(org, "current", org["asa_pw"], kdc.kvno(org["asa_dn"]), samba_dc.realm)
    with NegotiateAcceptor(kt, "EX01") as plain:  # no certificates: plain HTTP
        probe = GssKerberosProbe(samba_dc.realm, principal=org["user"], password=org["user_pw"], tls=False,
                                 allow_http=True, addresses={"EX01": f"{plain.address[0]}:{plain.address[1]}"},
                                 timeout=20)
        result = probe.probe_server(ExchangeServer(name="EX01", fqdn=f"ex01.{samba_dc.domain}"), org["host"])
        probe.close()
    assert "plain HTTP (asked for explicitly)" in probe.describe()
    assert result.outcome == ProbeOutcome.ACCEPTED and not any(p.channel_bound for p in result.paths)


# --- Exchange's remote PowerShell endpoint: HTTP, Kerberos only, the messages encrypted ----------------------
RPS_SERVER = "ex01.contoso.com"


@pytest.fixture
def rps_front(samba_dc, kdc, unique_name, tmp_path):
    """`front(stale=False)`: the lab's endpoint model (healthy) behind a Kerberos front for HTTP/ex01.contoso.com,
    whose key is the service account's current one, or an old one with `stale`; and the client's settings for it,
    as a user of the Samba domain whom the front maps to the lab admin."""
    from contextlib import ExitStack

    from asa_wizard.adapters.psrp import RpsSettings
    from asa_wizard.lab.rps_kerberos import KerberosPowerShell
    from asa_wizard.lab.scenario import find_scenario, load_scenario
    from asa_wizard.lab.world import LabWorld

    world = LabWorld(load_scenario(find_scenario("healthy")))
    world.start_endpoint()  # the endpoint's model: the Kerberos front stands where IIS would
    name, password = unique_name("rps").upper(), _pw()
    dn = kdc.computer(name, [f"HTTP/{RPS_SERVER}"], 24, password)
    user, user_pw = unique_name("adm"), _pw()
    kdc.user(user, user_pw)
    principal = f"{user}@{samba_dc.realm}"
    stack = ExitStack()

    def front(stale: bool = False):  # type: ignore[no-untyped-def]
        key = _pw() if stale else password
        kt = write_keytab(tmp_path / "ex01.keytab", samba_dc.realm, f"{name}$", key, kdc.kvno(dn),
                          [f"HTTP/{RPS_SERVER}"])
        f = stack.enter_context(KerberosPowerShell(world.endpoint.psrp, kt, {principal: world.scenario.admin_user}))
        return f, RpsSettings(scheme="http", auth="kerberos", user=principal, password=user_pw,
                              host_override=f.target)

    try:
        yield front, principal, user_pw
    finally:
        stack.close()
        kdc.conn.delete(dn)
        world.close()


def test_exchange_remote_powershell_over_http_with_kerberos_and_message_encryption(rps_front):
    """The client as it reaches a real Exchange server (http://<fqdn>/PowerShell, Kerberos, every message
    encrypted with the Kerberos session) against the lab's endpoint model behind a Kerberos front whose key is
    the server's: a real ticket from the Samba KDC, and no SOAP readable on the wire."""
    from asa_wizard.adapters.psrp import ExchangeRps

    make, principal, _ = rps_front
    front, settings = make()
    with ExchangeRps(settings) as rps:
        rows = rps.invoke(RPS_SERVER, "Get-ExchangeServer", {})
        again = rps.invoke(RPS_SERVER, "Get-ClientAccessService", {"Identity": RPS_SERVER})
    assert sorted(str(r.get("Name")) for r in rows) == ["EX01", "EX02"]
    assert [str(r.get("Name")) for r in again] == ["EX01"]
    assert front.accepted and set(front.accepted) == {principal} and front.rejected == []
    assert front.unencrypted == 0
    # offered "Kerberos" as Exchange offers it, the client encrypts with the Kerberos protocol
    assert set(front.protocols) == {"application/HTTP-Kerberos-session-encrypted"}
    sent = [b for b in front.bodies if b]
    assert sent and all(b.startswith(b"--Encrypted Boundary\r\n") for b in sent)
    assert not any(b"Envelope" in b or b"Get-ExchangeServer" in b for b in sent)  # nothing readable


def test_exchange_remote_powershell_refuses_a_ticket_its_key_cannot_read(rps_front):
    """The server's key is not the account's current one (a stale credential): Kerberos fails, and the client
    says so with what to check, not a traceback."""
    from asa_wizard.adapters.psrp import ExchangeRps, RpsError

    make, _, user_pw = rps_front
    front, settings = make(stale=True)
    with ExchangeRps(settings) as rps:
        with pytest.raises(RpsError) as info:
            rps.invoke(RPS_SERVER, "Get-ExchangeServer", {})
    assert front.accepted == [] and front.rejected
    assert "with kerberos was refused (HTTP 401)" in info.value.problem
    assert f"HTTP/{RPS_SERVER}" in info.value.fix and "KRB_AP_ERR_MODIFIED" in info.value.fix
    assert user_pw.reveal() not in f"{info.value} {info.value.fix} {info.value.detail}"
