"""PowerShell quoting and the Windows-side script builders, checked with the lab's own PowerShell literal reader.
No script loads the Exchange snap-in or runs an Exchange cmdlet: those go through the endpoint."""

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
    op, values = parse_script(ps.iis_iusrs_script(value, add=True))
    assert op == "add_iis_iusrs"
    assert values == {"Member": value}


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
    good = ps.iis_iusrs_script("EX01", add=True)
    injected = good.replace("$Member='EX01'", "$Member='EX01'; Remove-Item C:\\ -Recurse; ''")
    with pytest.raises(LookupError) as info:
        parse_script(injected)
    assert info.value.args[0] == "Remove-Item"


def test_unterminated_literal_is_a_parse_error():
    from asa_wizard.lab.exchange import ParseError

    with pytest.raises(ParseError):
        parse_script(ps.HEADER + "$Member='EX01\n")


def test_every_script_is_short_windows_only_and_has_no_value_in_its_body():
    marker = "Zq9-unique-value"
    scripts = [
        ps.read_windows_script(), ps.iis_iusrs_script(marker, add=True), ps.iis_iusrs_script(marker, add=False),
        ps.set_iis_auth_script("EWS", False, True, ["Negotiate"], True, True), ps.fetch_log_script("iis", 50),
        ps.roll_script([marker, marker], marker), ps.hop_check_script(marker),
    ]
    for s in scripts:
        assert len(s) < 3000
        assert s.rstrip().endswith("-Compress")
        assert "Add-PSSnapin" not in s and "Microsoft.Exchange.Management.PowerShell" not in s  # no snap-in
        assert "Get-LocalGroupMember" not in s  # throws on an orphaned SID: ADSI WinNT instead
        for cmdlet in ("Get-ClientAccessService", "Set-ClientAccessService", "Get-ExchangeServer",
                       "Get-OutlookAnywhere", "Set-MapiVirtualDirectory"):
            assert cmdlet not in s  # Exchange cmdlets go through the endpoint
        op, _ = parse_script(s)
        body = "\n".join(s.splitlines()[1 + len(ps.PARAMETERS[op]):])
        assert body and marker not in body  # values only ever appear in the header assignments


def test_the_iis_log_folder_comes_from_the_site_else_site_defaults():
    script = ps.fetch_log_script("iis", 10)
    site = script.index("sites/site[@name='Default Web Site']/logFile")
    defaults = script.index("sites/siteDefaults/logFile")
    assert site < defaults  # the site's own logFile.directory first, siteDefaults only when it has none
    assert "W3SVC" in script and "C:\\inetpub" not in script


def test_unknown_values_are_refused_before_anything_is_sent():
    with pytest.raises(ValueError):
        ps.set_iis_auth_script("OWA", False, True, ["Negotiate"], True, True)
    with pytest.raises(ValueError):
        ps.fetch_log_script("security", 10)
    with pytest.raises(ValueError):  # Kerberos event 4 is logged on the client, never fetched from a server
        ps.fetch_log_script("system-kerberos", 10)


def test_roll_verdict_comes_from_the_exit_code_and_this_runs_events():
    ok = ps.parse_roll("EX01", {"output": "x", "exit": 0, "events": [{"id": 14001}, {"id": 14002}]})
    assert ok.outcome.value == "succeeded"
    warned = ps.parse_roll("EX01", {"output": "x", "exit": 0, "events": [{"id": 14001}, {"id": 14003}]})
    assert warned.outcome.value == "succeeded-with-warnings"
    # the text alone proves nothing: an exit code 0 without a final event of this run is not a success
    silent = ps.parse_roll("EX01", {"output": "THE SCRIPT HAS SUCCEEDED", "exit": 0, "events": []})
    assert silent.outcome.value == "failed" and "14002" in silent.message
    failed = ps.parse_roll("EX01", {"output": "THE SCRIPT HAS SUCCEEDED", "exit": 1, "events": [{"id": 14004}]})
    assert failed.outcome.value == "failed"


def test_roll_output_recognises_microsofts_messages():
    cases = {
        "A user or computer account CONTOSO\\NOPE$ was not found.": "CONTOSO\\NOPE$ was not found",
        "The running user doesn't have enough privileges to perform this operation. Verify that he/she has the "
        "'Organization Configuration' role assigned.": "Organization Configuration",
        "Errors were encountered while propagating credentials to Exchange servers.": "propagating credentials",
        'CRITICAL ERROR: Exception calling "SetPassword" with "1" argument(s): "Access is denied. (Exception from '
        'HRESULT: 0x80070005 (E_ACCESSDENIED))"': "Reset Password",
    }
    for output, expected in cases.items():
        r = ps.parse_roll("EX01", {"output": output, "exit": 1, "events": [{"id": 14001}, {"id": 14004}]})
        assert r.outcome.value == "failed"
        assert expected in r.message + r.fix
        assert r.fix


def test_the_second_hop_is_named_and_never_blamed_on_the_reset_password_right():
    """Inside a non-delegating session the script's sessions fail with error 5 and its DC bind with 1326."""
    output = ("CRITICAL ERROR: Connecting to remote server ex02.contoso.com failed with the following error message "
              ": Access is denied. For more information, see the about_Remote_Troubleshooting Help topic.\n"
              'Exception calling "FindByIdentity" with "2" argument(s): "The user name or password is incorrect."')
    r = ps.parse_roll("EX01", {"output": output, "exit": 1, "events": [{"id": 14001}, {"id": 14004}]})
    assert "second hop" in r.message and "Reset Password right is not the cause" in r.message
    assert "CredSSP" in r.fix and "delegation" in r.fix and "natively" in r.fix
    assert "Grant" not in r.fix


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

        def account_digest(self, sam):
            return None

        def set_account_password_rolled(self, sam, when, digest=""):
            raise AssertionError("not called")

    lab = LabExchange(load_scenario(find_scenario("fresh")), NoDirectory())
    answer = lab.run("EX01", "Get-Process")
    assert answer.exit_code == 1
    assert answer.stderr.startswith("#< CLIXML")
    assert "The term 'Get-Process' is not recognized as the name of a cmdlet" in answer.stderr
