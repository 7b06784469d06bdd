"""Scenario files: the shipped ones load; a malformed one gets an error naming the file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from asa_wizard.core.errors import ConfigError
from asa_wizard.core.model import Service
from asa_wizard.lab.scenario import find_scenario, list_scenarios, load_scenario
from asa_wizard.lab.snapshot import environment_from_scenario

MINIMAL = """\
[scenario]
name = "mini"
title = "Mini"
description = "One server."

[forest]
domain = "example.org"
netbios = "EXAMPLE"

[[servers]]
name = "EX1"
version = "Version 15.2 (Build 1544.4)"

[servers.outlook_anywhere]
internal_host = "mail.example.org"
internal_client_auth = "Ntlm"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    seen = 0
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return i
    raise AssertionError(needle)


def test_every_shipped_scenario_loads_and_has_servers_and_namespaces():
    scenarios = list_scenarios()
    assert len(scenarios) >= 7
    for s in scenarios:
        env = environment_from_scenario(s)
        assert env.servers, s.name
        assert any(ns.host.startswith("mail.") for ns in env.namespaces), s.name


def test_fresh_is_greenfield_without_a_gateway_and_fresh_with_seg_says_it_has_one():
    fresh = load_scenario(find_scenario("fresh"))
    assert fresh.seg is None and fresh.asa is None
    assert not any(a.sam.lower() == "svc_awseg" for a in fresh.accounts)
    assert "gateway" not in fresh.briefing.lower() and not any(c.startswith("kcd.") for c in fresh.expected_findings)
    seg = load_scenario(find_scenario("fresh-with-seg"))
    assert seg.seg is not None and seg.seg.service_account == "svc_awseg"
    assert "Secure Email Gateway" in seg.briefing and "svc_awseg" in seg.briefing
    assert "Secure Email Gateway" in seg.description
    assert {c for c in seg.expected_findings if c.startswith("kcd.")} == {
        "kcd.service-account-spn", "kcd.protocol-transition", "kcd.target", "kcd.iis-iusrs", "kcd.eas-auth"}


def test_the_scenario_docs_list_every_shipped_scenario():
    doc = (Path(__file__).parents[2] / "docs" / "scenarios.md").read_text(encoding="utf-8")
    listed = {line.split("`")[1] for line in doc.splitlines() if line.startswith("| `") and line.count("|") == 3}
    assert {s.name for s in list_scenarios()} <= listed


def test_seed_scenario_matches_the_field_report():
    s = load_scenario(find_scenario("new-server-missing-asa"))
    assert s.domain == "tailspintoys.ca"
    e16, e19 = s.server("Exch-2016"), s.server("Exch-2019")
    assert e16.asa_latest.account.lower() == "tailspintoys\\e15asa$"
    assert e19.asa_latest is None and e19.asa_previous is None
    assert e19.vdirs[Service.OUTLOOK_ANYWHERE].internal_client_auth == "Negotiate"


def test_minimal_scenario_gets_defaults(tmp_path):
    s = load_scenario(write(tmp_path, MINIMAL))
    srv = s.servers[0]
    assert srv.fqdn == "ex1.example.org"
    assert srv.site == "Default-First-Site-Name"
    assert srv.fault == "none"
    assert s.realm == "EXAMPLE.ORG"


@pytest.mark.parametrize(
    "replace, with_, field, needle",
    [
        ('version = "Version 15.2 (Build 1544.4)"', 'version = "fifteen"', "servers[0].version", "fifteen"),
        ('internal_client_auth = "Ntlm"', 'internal_client_auth = "Kerberos"',
         "servers[0].outlook_anywhere.internal_client_auth", "Kerberos"),
        ('name = "EX1"', 'name = "EX1"\nfault = "explode"', "servers[0].fault", "explode"),
        ('netbios = "EXAMPLE"', 'netbios = "EXAMPLE"\nbogus = 1', "forest.bogus", "bogus"),
        ('domain = "example.org"', 'domain = "not a domain"', "forest.domain", "not a domain"),
    ],
)
def test_malformed_scenario_names_file_line_and_field(tmp_path, replace, with_, field, needle):
    text = MINIMAL.replace(replace, with_)
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(p)
    err = info.value
    assert err.path == str(p)
    assert err.field == field
    assert err.line == line_of(text, needle)
    assert f"line {err.line}" in str(err) and field in str(err)
    assert err.fix, "every error says how to fix it"


def test_field_in_second_server_points_at_that_server(tmp_path):
    text = MINIMAL + textwrap.dedent("""
        [[servers]]
        name = "EX2"
        version = "Version 15.2 (Build 1544.4)"
        roles = ["Mailbox", "Toaster"]
        """)
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(p)
    assert info.value.field == "servers[1].roles"
    assert info.value.line == line_of(text, "Toaster")


def test_toml_syntax_error_gives_the_line(tmp_path):
    text = MINIMAL.replace('title = "Mini"', 'title = "Mini')
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(p)
    assert info.value.line == line_of(text, 'title = "Mini')
    assert "not valid TOML" in str(info.value)


def test_server_credential_must_name_a_scenario_account(tmp_path):
    text = MINIMAL + textwrap.dedent("""
        [servers.asa.latest]
        account = "EXAMPLE\\\\GHOST$"
        when = 2026-01-01T00:00:00Z
        key_version = 2
        """)
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(p)
    assert info.value.field == "servers[0].asa.latest.account"
    assert "GHOST" in str(info.value)


def test_duplicate_server_names_are_refused(tmp_path):
    text = MINIMAL + '\n[[servers]]\nname = "ex1"\nversion = "Version 15.2 (Build 1544.4)"\n'
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, text))
    assert info.value.field == "servers[1].name"
