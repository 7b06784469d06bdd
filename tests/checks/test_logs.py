"""Log parsing on real-looking samples (the IIS and event lines are the field report's own) and the log
checks built on it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from catalogue_kit import Lab, by_id

from asa_wizard.core.checks import Status
from asa_wizard.core.logs import (
    LogText,
    detect_kind,
    parse_httpproxy,
    parse_iis,
    parse_krb_modified,
)

DATA = Path(__file__).parent / "data"
IIS = (DATA / "iis_u_ex220205.log").read_text()
PROXY = (DATA / "HttpProxy_2026030208-1.LOG").read_text()
EVENT = (DATA / "system_event4_copy.txt").read_text()
WEVTUTIL = (DATA / "system_wevtutil.txt").read_text()
GETWINEVENT = (DATA / "system_getwinevent.txt").read_text()

SEED_LINES = """2022-02-05 20:57:34 10.0.0.30 POST /autodiscover/autodiscover.xml &CorrelationID=<empty>;&cafeReqId=7957e737-02c9-44e4-8ef8-efb92fbecba6; 443 - 10.0.0.23 Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.14527;+Pro) - 401 1 2148074254 30
2022-02-05 20:57:34 10.0.0.30 POST /autodiscover/autodiscover.xml &CorrelationID=<empty>;&cafeReqId=b4fa2cea-0493-49e9-aa36-f69bc3c96ae2; 443 - 10.0.0.23 Microsoft+Office/16.0+(Windows+NT+10.0;+Microsoft+Outlook+16.0.14527;+Pro) - 401 1 2148074254 11"""


def test_iis_log_counts_only_the_kerberos_logon_failures():
    s = parse_iis(IIS)
    assert s.requests == 5
    assert s.failures == 3  # the 401 2 5 challenge and the 200 are not failures
    assert s.clients == [("10.0.0.23", 2), ("10.0.0.41", 1)]
    assert s.urls == [("/autodiscover/autodiscover.xml", 2), ("/mapi/emsmdb/", 1)]
    assert s.first == datetime(2022, 2, 5, 20, 57, 34, tzinfo=timezone.utc)
    assert s.last == datetime(2022, 2, 5, 20, 58, 2, tzinfo=timezone.utc)


def test_the_seed_lines_pasted_without_a_header_are_read_with_exchanges_default_fields():
    s = parse_iis(SEED_LINES)
    assert (s.requests, s.failures) == (2, 2)
    assert detect_kind(SEED_LINES) == "iis"


def test_httpproxy_counts_authentication_types():
    s = parse_httpproxy(PROXY)
    assert s.by_type == {"Negotiate": 7, "": 1, "NTLM": 1}
    assert s.authenticated == 8 and s.count("Negotiate", "Kerberos") == 7
    assert s.protocols == ["Mapi"]
    assert s.first == datetime(2026, 3, 2, 8, 0, 1, 113000, tzinfo=timezone.utc)


def test_httpproxy_without_an_authentication_column_counts_nothing():
    assert parse_httpproxy("#Fields: DateTime,Foo\n2026-01-01T00:00:00Z,1\n").requests == 0


@pytest.mark.parametrize("text, events", [
    (EVENT, [("exch-2019$", "HTTP/autodiscover.tailspintoys.ca", "2/5/2022 8:10:46 PM", "Win-10-1.Tailspintoys.ca")]),
    (WEVTUTIL, [("exch-2019$", "HTTP/mail.tailspintoys.ca", "2022-02-05T20:12:03.412", "Win-10-2.Tailspintoys.ca"),
                ("exch-2019$", "HTTP/autodiscover.tailspintoys.ca", "2022-02-05T20:14:41.009",
                 "Win-10-2.Tailspintoys.ca")]),
    (GETWINEVENT, [("exch-2019$", "HTTP/mail.tailspintoys.ca", "2/5/2022 8:20:17 PM", "")]),
])
def test_event_4_is_read_from_every_export_format(text, events):
    got = parse_krb_modified(text)
    assert [(e.server_account, e.target, e.when_text, e.computer) for e in got] == events
    assert got[0].server_name == "exch-2019"
    assert got[0].when is not None


def test_detect_kind():
    assert detect_kind(IIS) == "iis"
    assert detect_kind(PROXY) == "httpproxy"
    assert detect_kind(EVENT) == "system" and detect_kind(WEVTUTIL) == "system"
    assert detect_kind("hello world") is None


def test_log_kind_is_validated_and_winrm_kinds_are_accepted():
    assert LogText("httpproxy-mapi", "").kind == "httpproxy"
    assert LogText("system-kerberos", "").kind == "system"
    with pytest.raises(ValueError):
        LogText("syslog", "")


# --- the log checks ---------------------------------------------------------------------------------------
def seed_logs() -> list[LogText]:
    return [LogText("iis", IIS, source="W3SVC1/u_ex220205.log", server="Exch-2019"),
            LogText("system", EVENT, source="Win-10-1 System.txt")]


def test_the_field_reports_logs_point_at_exch_2019_and_the_copy_command(lab: Lab):
    findings = lab.run("new-server-missing-asa", logs=seed_logs())
    iis = by_id(findings, "logs.iis-401")[0]
    assert iis.status == Status.FAIL and iis.subject == "Exch-2019"
    assert "3 of 5 requests" in iis.evidence and "10.0.0.23 (2)" in iis.evidence
    fix = (".\\RollAlternateServiceAccountPassword.ps1 -ToSpecificServers 'exch-2019.tailspintoys.ca' "
           "-CopyFrom 'exch-2016.tailspintoys.ca'")
    assert fix in iis.fix
    ev = by_id(findings, "logs.krb-ap-err-modified")[0]
    assert ev.status == Status.FAIL and ev.subject == "exch-2019"
    assert "HTTP/autodiscover.tailspintoys.ca" in ev.evidence and fix in ev.fix


def test_log_checks_pass_on_clean_logs(lab: Lab):
    clean_iis = "\n".join(line for line in IIS.splitlines() if " 2148074254 " not in line)
    logs = [LogText("iis", clean_iis, server="EX01"), LogText("system", "Event ID: 7036\nnothing here\n"),
            LogText("httpproxy", PROXY.replace(",NTLM,", ",Negotiate,"), server="EX01")]
    findings = lab.run("healthy", logs=logs)
    for cid in ("logs.iis-401", "logs.krb-ap-err-modified", "logs.httpproxy-auth"):
        assert [f.status for f in by_id(findings, cid)] == [Status.PASS], cid


def test_httpproxy_check_warns_on_mixed_and_fails_on_ntlm_only(lab: Lab):
    mixed = by_id(lab.run("healthy", logs=[LogText("httpproxy", PROXY, server="EX01")]), "logs.httpproxy-auth")[0]
    assert mixed.status == Status.WARN and "NTLM 1" in mixed.evidence and "klist" in mixed.reason
    ntlm = by_id(lab.run("healthy", logs=[LogText("httpproxy", PROXY.replace(",Negotiate,", ",NTLM,"), server="EX01")]),
                 "logs.httpproxy-auth")[0]
    assert ntlm.status == Status.FAIL and "client-auth" in ntlm.fix
