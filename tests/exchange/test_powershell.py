"""PowerShell quoting and the script builders, checked with the lab's own PowerShell literal reader."""

from __future__ import annotations

import pytest

from asa_wizard.adapters import powershell as ps
from asa_wizard.lab.exchange import LabExchange, parse_script

HOSTILE = [
    "O'Brien",
    "x'; Remove-Item C:\\ -Recurse; '",
    "$(Stop-Computer -Force)",
    "`$env:PATH`n",
    "a;b|c&d",
    "line1\nline2\r\nline3",
    "\u2018smart\u2019 \u201aquotes\u201b",
    "''''",
    "\u2019'; Invoke-Expression 'calc'",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_quoted_values_read_back_unchanged(value):
    op, values = parse_script(ps.read_server_script(value))
    assert op == "read_server"
    assert values == {"Server": value}


def test_lists_and_switches_read_back():
    script = ps.set_iis_auth_script("EWS", False, True, ["Negotiate", "NTLM"], True, False)
    op, values = parse_script(script)
    assert op == "set_iis_auth"
    assert values == {"App": "EWS", "Basic": False, "Windows": True, "Providers": ["Negotiate", "NTLM"],
                      "Kernel": True, "AppPool": False}


def test_nul_is_refused():
    with pytest.raises(ValueError):
        ps.ps_quote("a\x00b")


def test_naive_quoting_is_caught_not_run():
    """A value spliced in without escaping ends the literal early: the lab refuses the script."""
    good = ps.read_server_script("EX01")
    injected = good.replace("$Server='EX01'", "$Server='EX01'; Remove-Item C:\\ -Recurse; ''")
    with pytest.raises(LookupError) as info:
        parse_script(injected)
    assert info.value.args[0] == "Remove-Item"


def test_unterminated_literal_is_a_parse_error():
    from asa_wizard.lab.exchange import ParseError

    with pytest.raises(ParseError):
        parse_script(ps.HEADER + "$Server='EX01\n")


def test_every_script_is_short_and_has_no_value_in_its_body():
    marker = "Zq9-unique-value"
    scripts = [
        ps.inventory_script(), ps.read_server_script(marker), ps.roll_generate_script(marker, marker),
        ps.roll_copy_script(marker, marker), ps.remove_asa_script(marker),
        ps.set_oa_client_auth_script(marker, "Negotiate"), ps.set_mapi_auth_script(marker, [marker]),
        ps.iis_iusrs_script(marker, add=True), ps.set_iis_auth_script("EWS", False, True, ["Negotiate"], True, True),
        ps.fetch_log_script("iis", 50),
    ]
    for s in scripts:
        assert len(s) < 3000
        assert s.rstrip().endswith("-Compress") or "-InputObject" in s
        body = s.split(ps.PRELUDE, 1)[1]
        assert marker not in body  # values only ever appear in the header assignments


def test_unknown_values_are_refused_before_anything_is_sent():
    with pytest.raises(ValueError):
        ps.set_oa_client_auth_script("EX01", "Kerberos; whoami")
    with pytest.raises(ValueError):
        ps.set_iis_auth_script("OWA", False, True, ["Negotiate"], True, True)
    with pytest.raises(ValueError):
        ps.fetch_log_script("security", 10)


def test_roll_output_recognises_microsofts_messages():
    cases = {
        "A user or computer account CONTOSO\\NOPE$ was not found.\n THE SCRIPT HAS FAILED":
            "CONTOSO\\NOPE$ was not found",
        "The running user doesn't have enough privileges to perform this operation. Verify that he/she has the "
        "'Organization Configuration' role assigned.": "Organization Configuration",
        "-CopyFrom parameter should be set to identity that resolves to exactly one Client Access Server":
            "exactly one Client Access server",
        "Errors were encountered while propagating credentials to Exchange servers. THE SCRIPT HAS FAILED":
            "propagating credentials",
        'Exception calling "SetPassword": "Access is denied." THE SCRIPT HAS FAILED': "Access Denied",
    }
    for output, expected in cases.items():
        r = ps.parse_roll("EX01", {"output": output, "log": "", "creds": None})
        assert r.outcome.value == "failed"
        assert expected in r.message
        assert r.fix
    ok = ps.parse_roll("EX01", {"output": "x\n        THE SCRIPT HAS SUCCEEDED", "log": "",
                                "creds": {"account": "C\\A$", "when": "2026-01-01T10:00:00.1234567Z"}})
    assert ok.outcome.value == "succeeded"
    assert ok.latest is not None and ok.latest.when_added.year == 2026


def test_scheduled_task_and_manual_commands_quote_values():
    cmd = ps.scheduled_task_command("CONTOSO\\EX'ASA$", ["ex01.contoso.com"])
    assert "-GenerateNewPasswordFor 'CONTOSO\\EX''ASA$'" in cmd
    assert "-CreateScheduledTask" in cmd and "-ToSpecificServers 'ex01.contoso.com'" in cmd
    assert ps.with_method(["Ntlm", "OAuth"], "Negotiate") == ["Ntlm", "OAuth", "Negotiate"]
    assert ps.with_method(["Ntlm", "negotiate"], "Negotiate") == ["Ntlm", "negotiate"]


def test_lab_answers_unknown_commands_like_powershell():
    from asa_wizard.lab.scenario import find_scenario, load_scenario

    class NoDirectory:
        def account_key_version(self, sam):
            return None

        def set_account_password_rolled(self, sam, when):
            raise AssertionError("not called")

    lab = LabExchange(load_scenario(find_scenario("fresh")), NoDirectory())
    answer = lab.run("EX01", "Get-Process")
    assert answer.exit_code == 1
    assert answer.stderr.startswith("#< CLIXML")
    assert "The term 'Get-Process' is not recognized as the name of a cmdlet" in answer.stderr
