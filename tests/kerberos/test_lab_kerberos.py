"""The lab's simulated Kerberos: each rule Windows follows, on small states and on the running LabWorld."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from asa_wizard.core.logs import parse_iis, parse_krb_modified
from asa_wizard.core.model import ENC_AES128, ENC_AES_ONLY, ENC_RC4, AccountKind, ExchangeServer
from asa_wizard.core.ports import KerberosProbe, ProbeOutcome
from asa_wizard.lab.kerberos import LabKerberos, ticket_enctype
from asa_wizard.lab.scenario import LabAccount, LabCredential, find_scenario, load_scenario
from asa_wizard.lab.world import LabWorld


class Directory:
    def __init__(self, accounts):
        self.accounts = accounts

    def current_accounts(self):
        return list(self.accounts)


class Exchange:
    def __init__(self, scenario):
        self.scenario = scenario
        self.lines: list[tuple[str, str, str]] = []

    def current_scenario(self):
        return self.scenario.copy()

    def append_log(self, server, kind, line):
        self.lines.append((server, kind, line))


def setup(name="healthy"):
    s = load_scenario(find_scenario(name))
    d, x = Directory(s.accounts), Exchange(s)
    return s, d, x, LabKerberos(d, x)


def server(s, name) -> ExchangeServer:
    srv = s.server(name)
    return ExchangeServer(name=srv.name, fqdn=srv.fqdn)


def asa(d, sam="EXASA$") -> LabAccount:
    return next(a for a in d.accounts if a.sam == sam)


def test_it_is_a_kerberos_probe():
    _, _, _, k = setup()
    assert isinstance(k, KerberosProbe)
    assert "CONTOSO.COM" in k.describe() and "Administrator" in k.describe()


def test_ticket_needs_exactly_one_owner():
    _, d, _, k = setup()
    t = k.service_ticket("HTTP/mail.contoso.com")
    assert t.ok and t.enctype == "aes256-cts-hmac-sha1-96" and t.kvno == 3
    missing = k.service_ticket("HTTP/webmail.contoso.com")
    assert not missing.ok and missing.error.startswith("KDC_ERR_S_PRINCIPAL_UNKNOWN")
    d.accounts.append(LabAccount(sam="OLD$", kind=AccountKind.COMPUTER, ou="CN=Computers",
                                 spns=["http/MAIL.contoso.com"]))
    dup = k.service_ticket("HTTP/mail.contoso.com")
    assert not dup.ok and "KDC_ERR_PRINCIPAL_NOT_UNIQUE" in dup.error and "CONTOSO\\OLD$" in dup.error


def test_http_resolves_to_a_computer_through_its_host_spn():
    _, _, _, k = setup()
    t = k.service_ticket("HTTP/ex01.contoso.com")  # HOST/ex01.contoso.com is on EX01$
    assert t.ok


@pytest.mark.parametrize("value, now, expected", [
    (ENC_AES_ONLY, datetime(2026, 1, 1, tzinfo=timezone.utc), "aes256-cts-hmac-sha1-96"),
    (ENC_AES128, datetime(2026, 1, 1, tzinfo=timezone.utc), "aes128-cts-hmac-sha1-96"),
    (ENC_RC4, datetime(2026, 1, 1, tzinfo=timezone.utc), "rc4-hmac"),
    (None, datetime(2026, 1, 1, tzinfo=timezone.utc), "rc4-hmac"),
    (None, datetime(2026, 6, 1, tzinfo=timezone.utc), "aes256-cts-hmac-sha1-96"),
    (0x3, datetime(2026, 1, 1, tzinfo=timezone.utc), None),
])
def test_ticket_encryption_follows_the_account(value, now, expected):
    assert ticket_enctype(value, now) == expected


def test_server_accepts_only_the_owners_current_key_version_latest_or_previous():
    s, d, x, k = setup()
    assert k.probe_server(server(s, "EX01"), "mail.contoso.com").outcome == ProbeOutcome.ACCEPTED
    asa(d).key_version = 4  # AD rolled, servers not
    r = k.probe_server(server(s, "EX01"), "mail.contoso.com")
    assert r.outcome == ProbeOutcome.REJECTED and "KRB_AP_ERR_MODIFIED" in r.detail and "ex01$" in r.detail
    s.server("EX01").asa_previous = s.server("EX01").asa_latest
    s.server("EX01").asa_latest = LabCredential("CONTOSO\\EXASA$", s.now, 4)
    assert k.probe_server(server(s, "EX01"), "mail.contoso.com").outcome == ProbeOutcome.ACCEPTED
    s.server("EX01").asa_latest = LabCredential("CONTOSO\\OTHER$", s.now, 4)
    assert k.probe_server(server(s, "EX01"), "mail.contoso.com").outcome == ProbeOutcome.REJECTED


def test_rejection_leaves_the_iis_line_and_the_client_event_the_field_report_shows():
    s, _, x, k = setup("new-server-missing-asa")
    r = k.probe_server(server(s, "Exch-2019"), "autodiscover.tailspintoys.ca")
    assert r.outcome == ProbeOutcome.REJECTED
    iis = [line for srv, kind, line in x.lines if srv == "Exch-2019" and kind == "iis"]
    assert parse_iis("\n".join(iis)).failures == 1
    events = parse_krb_modified(k.client_system_log())
    assert [(e.server_account, e.target) for e in events] == [("exch-2019$", "HTTP/autodiscover.tailspintoys.ca")]


def test_no_spn_means_ntlm_fallback_and_unreachable_is_reported():
    s, _, _, k = setup("fresh")
    r = k.probe_server(server(s, "EX01"), "mail.contoso.com")
    assert r.outcome == ProbeOutcome.NTLM_FALLBACK and "KDC_ERR_S_PRINCIPAL_UNKNOWN" in r.detail
    s.server("EX02").fault = "unreachable"
    assert k.probe_server(server(s, "EX02"), "mail.contoso.com").outcome == ProbeOutcome.UNREACHABLE


def _configure(d):
    svc = next(a for a in d.accounts if a.sam == "svc_awseg")
    svc.spns, svc.trusted_to_auth, svc.delegate_to = ["HTTP/svc_awseg"], True, ["HTTP/mail.contoso.com"]
    return svc


@pytest.mark.parametrize("breaks", ["spns", "trusted_to_auth", "delegate_to", "not_delegated", "protected_user"])
def test_s4u_is_refused_with_badoption_unless_every_condition_holds(breaks):
    s, d, _, k = setup("seg-kcd")
    svc = _configure(d)
    ok = k.s4u("svc_awseg", "alice", "HTTP/mail.contoso.com", server(s, "EX01"))
    assert ok.outcome == ProbeOutcome.ACCEPTED and ok.client == "alice@CONTOSO.COM"
    alice = next(a for a in d.accounts if a.sam == "alice")
    if breaks in ("not_delegated", "protected_user"):
        setattr(alice, breaks, True)
    else:
        setattr(svc, breaks, [] if breaks != "trusted_to_auth" else False)
    r = k.s4u("svc_awseg", "alice", "HTTP/mail.contoso.com", server(s, "EX01"))
    assert r.outcome == ProbeOutcome.KDC_REFUSED and r.detail.startswith("KDC_ERR_BADOPTION")


def test_s4u_then_follows_the_acceptance_rule():
    s, d, _, k = setup("seg-kcd")
    _configure(d)
    s.server("EX02").asa_latest = None
    r = k.s4u("svc_awseg", "alice", "HTTP/mail.contoso.com", server(s, "EX02"))
    assert r.outcome == ProbeOutcome.REJECTED


def test_the_world_probe_sees_changes_made_through_the_adapters():
    with LabWorld.open("new-server-missing-asa") as world:
        probe = world.kerberos_probe()
        exch2019 = ExchangeServer(name="Exch-2019", fqdn="exch-2019.tailspintoys.ca")
        before = probe.probe_server(exch2019, "mail.tailspintoys.ca")
        assert before.outcome == ProbeOutcome.REJECTED
        rejected = [p.path.path for p in before.paths if p.outcome == ProbeOutcome.REJECTED]
        assert rejected == ["/EWS/Exchange.asmx", "/mapi/emsmdb/", "/rpc/rpcproxy.dll"]
        result = world.exchange_port().copy_credentials("exch-2019.tailspintoys.ca", "exch-2016.tailspintoys.ca")
        assert result.outcome.value.startswith("succeeded"), result.message
        after = probe.probe_server(exch2019, "mail.tailspintoys.ca")
        assert after.outcome == ProbeOutcome.ACCEPTED
        assert {p.path.key: p.outcome.value for p in after.paths} == {
            "ews": "accepted", "mapi": "accepted", "rpc": "accepted", "eas": "not-offered"}
        # and the server's own IIS log, fetched over WinRM, shows the earlier failures, one per path
        log = world.exchange_port().fetch_log("exch-2019.tailspintoys.ca", "iis")
        assert parse_iis(log).failures == len(rejected)
