"""Domain basics: versions, namespaces, the Secret type and the journal."""

from __future__ import annotations

import json
import pickle

import pytest

from asa_wizard.core.changes import Change, System
from asa_wizard.core.journal import Journal, read_events, summarize
from asa_wizard.core.model import (
    ExchangeServer,
    Service,
    VirtualDirectory,
    derive_namespaces,
    enctype_names,
    parse_build,
    product_name,
)
from asa_wizard.core.secrets import Secret, redact


@pytest.mark.parametrize(
    "version, product, generation",
    [
        ("Version 15.2 (Build 1544.4)", "Exchange 2019", "2013+"),
        ("Version 15.2 (Build 2562.17)", "Exchange SE", "2013+"),
        ("Version 15.1 (Build 2375.7)", "Exchange 2016", "2013+"),
        ("Version 15.0 (Build 1497.2)", "Exchange 2013", "2013+"),
        ("Version 14.3 (Build 123.4)", "Exchange 2010", "2010"),
        ("15.2.1544.4", "Exchange 2019", "2013+"),
    ],
)
def test_versions_name_the_product_and_asa_generation(version, product, generation):
    s = ExchangeServer(name="X", fqdn="x", version=version)
    assert s.product == product
    assert s.generation == generation


def test_unknown_version():
    assert parse_build("banana") == ()
    assert ExchangeServer(name="X", fqdn="x").generation == "unknown"
    assert product_name(()) == "Exchange (unknown version)"


def test_enctype_names():
    assert enctype_names(28) == ["RC4-HMAC", "AES128", "AES256"]
    assert enctype_names(24) == ["AES128", "AES256"]
    assert enctype_names(None) == []


def test_namespaces_collect_services_and_servers_case_insensitively():
    vdirs = [
        VirtualDirectory("EX1", Service.OUTLOOK_ANYWHERE, "Mail.Contoso.com", "mail.contoso.com"),
        VirtualDirectory("EX2", Service.MAPI, "mail.contoso.com.", None),
        VirtualDirectory("EX2", Service.EAS, None, "eas.contoso.com"),
    ]
    ns = derive_namespaces(vdirs, {"EX1": "https://autodiscover.contoso.com/Autodiscover/Autodiscover.xml"})
    by = {n.host: n for n in ns}
    assert sorted(by) == ["autodiscover.contoso.com", "eas.contoso.com", "mail.contoso.com"]
    assert by["mail.contoso.com"].services == {Service.OUTLOOK_ANYWHERE, Service.MAPI}
    assert by["mail.contoso.com"].servers == ["EX1", "EX2"]
    assert by["mail.contoso.com"].spn == "HTTP/mail.contoso.com"


def test_secret_never_shows_itself():
    s = Secret("Pa55w0rd!x")
    for text in (repr(s), str(s), f"{s}", f"{s!r}", "%s" % (s,), json.dumps({"a": str(s)})):
        assert "Pa55w0rd!x" not in text
    assert s.reveal() == "Pa55w0rd!x"
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert redact("bind failed for Pa55w0rd!x", s) == "bind failed for ********"


def change(cid: str) -> Change:
    return Change(id=cid, system=System.DIRECTORY, action="add-spns", target="CN=EXASA,DC=contoso,DC=com",
                  summary=f"do {cid}", new=["HTTP/mail.contoso.com"])


def test_journal_folds_events_into_change_states(tmp_path):
    j = Journal.create(tmp_path, actor="CONTOSO\\admin", label="t")
    j.write("run-start", message="begin")
    j.write("intent", change("a"))
    j.write("done", change("a"), undo={"remove": ["HTTP/mail.contoso.com"]})
    j.write("intent", change("b"))
    j.write("failed", change("b"), message="access denied")
    j.write("intent", change("c"))  # the process died here
    states = {s.change.id: s for s in summarize(j.events())}
    assert states["a"].state == "done" and states["a"].undo == {"remove": ["HTTP/mail.contoso.com"]}
    assert states["b"].state == "failed" and states["b"].message == "access denied"
    assert states["c"].state == "interrupted"
    assert [e.seq for e in j.events()] == list(range(1, 7))
    assert all(e.actor == "CONTOSO\\admin" for e in j.events())


def test_journal_survives_a_torn_last_line_and_continues_the_run(tmp_path):
    j = Journal.create(tmp_path, label="t")
    j.write("intent", change("a"))
    with open(j.path, "a") as fh:
        fh.write('{"run": "x", "seq": 2, "ev')  # crash mid-write
    assert [e.event for e in read_events(j.path)] == ["intent"]
    j2 = Journal.open(j.path)
    assert j2.run == j.run


def test_journal_refuses_secrets(tmp_path):
    j = Journal.create(tmp_path, label="t")
    j.write("intent", change("a"))
    with pytest.raises(TypeError):
        j.write("done", change("a"), undo={"password": Secret("hunter2!A")})
    text = j.path.read_text()
    assert "hunter2" not in text
    assert [e.event for e in j.events()] == ["intent"]
