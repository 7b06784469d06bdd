"""The Exchange port on the lab: Exchange cmdlets over the /PowerShell endpoint (pypsrp), the Windows side through
pywinrm over loopback HTTPS against the lab's WS-Management endpoint."""

from __future__ import annotations

import base64
import re

import pytest
import winrm

from asa_wizard.adapters.winrm import WinRmExchange, WinRmSettings, clean_stderr
from asa_wizard.core.errors import (
    WizardError,
    AuthenticationFailed,
    ConnectionFailed,
    NotFound,
    OperationTimeout,
    PolicyRefused,
    ScriptFailed,
)
from asa_wizard.core.model import IisAuth, Service
from asa_wizard.core.ports import RollOutcome
from asa_wizard.core.secrets import Secret

from .conftest import scenario


def decoded_command_lines(world) -> list[str]:
    out = []
    for _, line in world.endpoint.command_lines:
        out.append(line)
        m = re.search(r"-encodedcommand (\S+)", line)
        if m:
            out.append(base64.b64decode(m.group(1)).decode("utf-16-le"))
    return out


def test_read_server_matches_the_scenario(world_of):
    w = world_of(scenario("new-server-missing-asa"))
    port = w.exchange_port()
    old = port.read_server("exch-2016.tailspintoys.ca")
    assert old.server.name == "Exch-2016"
    assert old.server.asa_latest.account == "Tailspintoys\\E15ASA$"
    assert old.server.asa_latest.when_added.isoformat() == "2022-01-10T10:19:22+00:00"
    assert old.server.asa_previous is None
    assert old.server.service_host_running is True
    assert old.iis_iusrs == ["NT AUTHORITY\\IUSR"]
    assert old.autodiscover_uri == "https://autodiscover.tailspintoys.ca/Autodiscover/Autodiscover.xml"
    by_service = {v.service: v for v in old.vdirs}
    oa = by_service[Service.OUTLOOK_ANYWHERE]
    assert (oa.internal_host, oa.internal_client_auth) == ("mail.tailspintoys.ca", "Negotiate")
    assert by_service[Service.MAPI].auth_methods == ["Ntlm", "OAuth", "Negotiate"]
    eas = by_service[Service.EAS]
    assert eas.auth_methods == ["Basic"]  # a one-element list arrives unwrapped from PowerShell
    assert eas.iis == IisAuth(basic=True, windows=False, providers=["Negotiate", "NTLM"])
    new = port.read_server("Exch-2019")
    assert new.server.asa_latest is None and new.server.asa_state_known


def test_inventory_lists_every_server(world_of):
    w = world_of(scenario("fresh"))
    servers = w.exchange_port().inventory("EX01")
    assert [(s.name, s.fqdn, s.version) for s in servers] == [
        ("EX01", "ex01.contoso.com", "Version 15.2 (Build 1544.4)"),
        ("EX02", "ex02.contoso.com", "Version 15.2 (Build 1544.4)")]
    assert servers[0].roles == ["Mailbox", "ClientAccess"]


def test_client_auth_changes_return_what_they_replaced(world_of):
    w = world_of(scenario("fresh"))
    port = w.exchange_port()
    assert port.set_outlook_anywhere_client_auth("EX01", "Negotiate") == "Ntlm"
    assert port.set_outlook_anywhere_client_auth("EX01", "Negotiate") == "Negotiate"
    from asa_wizard.adapters.powershell import with_method

    before = port.set_mapi_auth_methods("EX01", with_method(["Ntlm", "OAuth"], "Negotiate"))
    assert before == ["Ntlm", "OAuth"]
    mapi = [v for v in port.read_server("EX01").vdirs if v.service == Service.MAPI][0]
    assert mapi.auth_methods == ["Ntlm", "OAuth", "Negotiate"]
    ex02 = [v for v in port.read_server("EX02").vdirs if v.service == Service.OUTLOOK_ANYWHERE][0]
    assert ex02.internal_client_auth == "Ntlm"  # only the named server changed


def test_iis_changes_and_undo(world_of):
    w = world_of(scenario("seg-kcd"))
    port = w.exchange_port()
    wanted = IisAuth(basic=False, windows=True, providers=["Negotiate"], use_kernel_mode=True,
                     use_app_pool_credentials=True)
    before = port.set_iis_auth("EX01", "Microsoft-Server-ActiveSync", wanted)
    eas = [v for v in port.read_server("EX01").vdirs if v.service == Service.EAS][0]
    assert eas.iis == wanted
    port.set_iis_auth("EX01", "Microsoft-Server-ActiveSync", before)
    eas = [v for v in port.read_server("EX01").vdirs if v.service == Service.EAS][0]
    assert eas.iis == before
    assert port.add_iis_iusrs("EX01", "CONTOSO\\svc_awseg") is True
    assert port.add_iis_iusrs("EX01", "CONTOSO\\svc_awseg") is False
    assert "CONTOSO\\svc_awseg" in port.read_server("EX01").iis_iusrs
    assert "CONTOSO\\svc_awseg" not in port.read_server("EX02").iis_iusrs
    assert port.remove_iis_iusrs("EX01", "CONTOSO\\svc_awseg") is True
    assert "CONTOSO\\svc_awseg" not in port.read_server("EX01").iis_iusrs


@pytest.mark.parametrize("member", [
    "CONTOSO\\o'brien", "CONTOSO\\x'; Add-LocalGroupMember Administrators evil; '", "CONTOSO\\$(whoami)",
    "CONTOSO\\back`tick`$x", "CONTOSO\\two\nlines", "CONTOSO\\\u2018q\u2019\u201a\u201b'"])
def test_hostile_names_round_trip_and_never_run(world_of, member):
    w = world_of(scenario("fresh"))
    port = w.exchange_port()
    assert port.add_iis_iusrs("EX01", member) is True
    members = port.read_server("EX01").iis_iusrs
    assert member in members
    assert "Administrators" not in " ".join(m for m in members if m != member)
    assert port.remove_iis_iusrs("EX01", member) is True
    assert port.read_server("EX01").iis_iusrs == ["NT AUTHORITY\\IUSR"]


def test_hostile_source_name_is_refused_before_any_connection(world_of):
    w = world_of(scenario("new-server-missing-asa"))
    port = w.exchange_port()
    hostile = "Exch-2016'; Remove-Item C:\\ -Recurse; '$(Stop-Computer)"
    r = port.copy_credentials("Exch-2019", hostile)
    assert r.outcome == RollOutcome.FAILED and "is not a host name" in r.message
    assert not any(server.startswith("exch-2016'") for server, _ in w.endpoint.psrp.creates)
    assert port.read_server("Exch-2019").server.asa_latest is None


def test_copy_replaces_the_targets_credentials_and_never_touches_ad(world_of):
    w = world_of(scenario("stale-credential"))
    port = w.exchange_port()
    kvno = w.directory.account_key_version("EXASA$")
    source = [c.digest for c in w.exchange.server("EX01").credentials]
    assert [c.digest for c in w.exchange.server("EX02").credentials] != source
    r = port.copy_credentials("ex02.contoso.com", "ex01.contoso.com")
    assert r.outcome == RollOutcome.SUCCEEDED and r.latest.account == "CONTOSO\\EXASA$"
    assert [c.digest for c in w.exchange.server("EX02").credentials] == source  # replaced by the source's list
    assert w.directory.account_key_version("EXASA$") == kvno  # a copy never touches AD
    port.remove_asa("EX02")
    assert port.read_server("EX02").server.asa_latest is None


def test_push_prepends_and_cleans_up_only_what_no_longer_validates(world_of):
    w = world_of(scenario("stale-credential"))
    port = w.exchange_port()
    kvno = w.directory.account_key_version("EXASA$")
    before = list(w.exchange.server("EX02").credentials)
    valid = [c for c in before if w.exchange.credential_valid(c)]
    assert len(valid) < len(before)  # EX02 holds an old password next to the current one... or only old ones
    r = port.push_credential("EX02", "CONTOSO\\EXASA$", Secret("New-Lab-Password-1!"))
    assert r.outcome == RollOutcome.SUCCEEDED
    after = w.exchange.server("EX02").credentials
    assert after[1:] == valid  # the new one in front; what still validates kept, the rest cleaned up
    assert not w.exchange.credential_valid(after[0])  # not valid until AD changes
    assert w.directory.account_key_version("EXASA$") == kvno  # a push never touches AD


def test_push_failure_is_reported_with_exchanges_words(world_of):
    w = world_of(scenario("new-server-missing-asa", **{"Exch-2016": "fail-roll"}))
    r = w.exchange_port().push_credential("Exch-2016", "TAILSPINTOYS\\E15ASA$", Secret("New-Lab-Password-1!"))
    assert r.outcome == RollOutcome.FAILED
    assert "Service Host" in r.message and r.fix
    assert len(w.exchange.server("Exch-2016").credentials) == 1  # nothing changed there


def test_missing_roll_script(world_of):
    w = world_of(scenario("fresh", EX01="script-missing"))
    port = w.exchange_port()
    with pytest.raises(NotFound) as info:
        port.roll_with_script("EX01", ["EX01", "EX02"], "CONTOSO\\EXASA$")
    assert "RollAlternateServiceAccountPassword.ps1 is missing" in info.value.problem
    port.read_server("EX01")  # the cmdlets still work there


def test_unreachable_server_is_connection_refused(world_of):
    w = world_of(scenario("fresh", EX02="unreachable"))
    port = w.exchange_port()
    with pytest.raises(WizardError) as info:
        port.read_server("EX02")
    assert "refused" in info.value.problem
    with pytest.raises(ConnectionFailed) as win:
        port.windows.read_windows("EX02")
    assert "refused" in win.value.problem and "5986" in win.value.fix
    port.read_server("EX01")


def test_slow_server_times_out_under_the_command_deadline(world_of):
    s = scenario("fresh", EX01="slow")
    s.server("EX01").slow_seconds = 3
    w = world_of(s)
    ep = w.start_endpoint()
    base = ep.port().settings
    settings = WinRmSettings(transport="basic", user=base.user, password=base.password, ca_file=ep.ca_file,
                             url_override=ep.url_for, read_timeout_sec=3, operation_timeout_sec=1,
                             command_timeout_sec=1)
    with pytest.raises(OperationTimeout):
        WinRmExchange(settings).read_windows("EX01")


def test_wrong_password_is_a_401_naming_account_and_transport(world_of):
    w = world_of(scenario("fresh"))
    ep = w.start_endpoint()
    settings = WinRmSettings(transport="basic", user="CONTOSO\\Administrator", password=Secret("Wrong-Pass-123"),
                             ca_file=ep.ca_file, url_override=ep.url_for)
    with pytest.raises(AuthenticationFailed) as info:
        WinRmExchange(settings).read_windows("EX01")
    text = str(info.value) + (info.value.detail or "")
    assert "CONTOSO\\Administrator" in text and "basic over HTTPS" in text and "401" in text
    assert "Wrong-Pass-123" not in text


def test_untrusted_certificate_is_refused(world_of):
    w = world_of(scenario("fresh"))
    ep = w.start_endpoint()
    base = ep.port().settings
    settings = WinRmSettings(transport="basic", user=base.user, password=base.password, url_override=ep.url_for)
    with pytest.raises(ConnectionFailed) as info:
        WinRmExchange(settings).read_windows("EX01")
    assert "could not be validated" in info.value.problem


def test_insecure_transports_are_refused():
    with pytest.raises(PolicyRefused):
        WinRmExchange(WinRmSettings(transport="basic", scheme="http", user="u", password=Secret("p")))
    with pytest.raises(PolicyRefused):
        WinRmExchange(WinRmSettings(transport="ntlm", scheme="http", message_encryption="never"))
    ok = WinRmSettings(transport="ntlm", scheme="http")
    assert ok.url_for("ex01.contoso.com") == "http://ex01.contoso.com:5985/wsman"
    assert ok.pywinrm_kwargs()["message_encryption"] == "always"
    assert WinRmSettings().url_for("ex01.contoso.com") == "https://ex01.contoso.com:5986/wsman"
    insecure = WinRmExchange(WinRmSettings(transport="ntlm", validate_certificate=False))
    assert "NOT validated" in insecure.describe()


def test_pywinrm_round_trip_success_and_powershell_error(world_of):
    """pywinrm itself (Session.run_ps) against the endpoint: output, and an error with its exit code."""
    w = world_of(scenario("fresh"))
    ep = w.start_endpoint()
    user, password = w.exchange.current_credentials()
    host, port = ep.address
    session = winrm.Session(f"https://{host}:{port}/wsman", auth=(user, password), transport="ssl",
                            ca_trust_path=ep.ca_file, server_cert_validation="validate")
    # pywinrm's Session cuts URLs down to /wsman: the endpoint has no server there
    with pytest.raises(winrm.exceptions.WinRMTransportError):
        session.run_ps("Get-Date")
    session.url = session.protocol.transport.endpoint = ep.url_for("EX01")
    from asa_wizard.adapters.powershell import read_windows_script

    ok = session.run_ps(read_windows_script())
    assert ok.status_code == 0 and b'"svchost":true' in ok.std_out
    bad = session.run_ps("Get-Date")
    assert bad.status_code == 1
    assert b"The term 'Get-Date' is not recognized" in bad.std_err


def test_powershell_error_becomes_script_failed_with_exit_code(world_of):
    w = world_of(scenario("fresh"))
    port = w.exchange_port()
    with pytest.raises(ScriptFailed) as info:
        port.windows._run("EX01", "Get-Date", "read")
    assert info.value.exit_code == 1
    assert "Get-Date" in info.value.problem


def test_clixml_is_stripped():
    raw = ('#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
           '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN>'
           '</Obj><S S="Error">Access is denied._x000D__x000A_</S><S S="Error">second_x000D__x000A_</S></Objs>')
    assert clean_stderr(raw.encode()) == "Access is denied.\nsecond"
    progress_only = ('#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
                     '<Obj S="progress" RefId="0"/></Objs>')
    assert clean_stderr(progress_only.encode()) == ""


def test_no_secret_crosses_the_wire_in_clear(world_of):
    w = world_of(scenario("new-server-missing-asa"))
    port = w.exchange_port()
    port.read_server("Exch-2016")
    new = "Pushed-Only-Encrypted-1!"
    assert port.push_credential("Exch-2016", "TAILSPINTOYS\\E15ASA$", Secret(new)).outcome == RollOutcome.SUCCEEDED
    port.copy_credentials("Exch-2019", "Exch-2016")
    _, admin_password = w.exchange.current_credentials()
    seen = decoded_command_lines(w) + w.exchange.received
    assert all(admin_password not in text and new not in text for text in seen)
    assert all("Set-ClientAccessService" not in text for text in seen)  # Exchange cmdlets never go over WinRM
    assert "Tailspin-Lab-2022!" not in port.describe()
