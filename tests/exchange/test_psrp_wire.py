"""Exchange remote PowerShell on the wire: pypsrp (through `ExchangeRps`) against the lab's `/PowerShell`
endpoint (psrpcore server behind real WS-Management over loopback HTTPS).

The Exchange semantics behind the endpoint are a small private model here (`FakeExchange`, the contract's
`open_session` / `command_metadata` / `invoke_cmdlet`), so these tests prove the wire: what the client sends,
what the endpoint receives and answers, and what the caller gets back."""

from __future__ import annotations

import base64
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from asa_wizard.adapters.psrp import (
    ExchangeRps,
    PsCredential,
    RpsError,
    RpsSettings,
    rps_error_from_record,
)
from asa_wizard.core.secrets import Secret

from .conftest import scenario

EX01 = "ex01.contoso.com"
EX02 = "ex02.contoso.com"
NO_LANGUAGE = ("The syntax is not supported by this runspace. This can occur if the runspace is in "
               "no-language mode.")
VIEWER = ("CONTOSO\\viewer", "View-0nly-Lab!")
NO_RPS = ("CONTOSO\\helpdesk", "Help-Desk-Lab!")


class CmdletError(Exception):
    def __init__(self, message: str, *, category: str = "NotSpecified", error_id: str = "", target: str = ""):
        super().__init__(message)
        self.category = category
        self.error_id = error_id
        self.target = target


class SessionRefused(Exception):
    pass


@dataclass(frozen=True)
class Session:
    server: str
    user: str
    can_delegate: bool


@dataclass
class FakeExchange:
    """The contract's lab side, minimal: per-server credential lists, two roles, RemotePowerShellEnabled."""

    stores: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)  # server, user, cmdlet, params
    sessions: list[Session] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    CmdletError = CmdletError
    SessionRefused = SessionRefused

    def lab_logons(self, lab: Any) -> dict[str, str]:
        return dict([VIEWER, NO_RPS])

    def session_can_delegate(self, lab: Any, server: str, user: str) -> bool:
        return user.lower() == VIEWER[0].lower()  # e.g. a CredSSP logon; everyone else: plain network logon

    def open_session(self, lab: Any, server: str, user: str, can_delegate: bool) -> Session:
        if user.lower() == NO_RPS[0].lower():
            raise SessionRefused(f"RemotePowerShellEnabled is $false for {user}.")
        s = Session(lab.server(server).name, user, can_delegate)
        self.sessions.append(s)
        return s

    def command_metadata(self, lab: Any, session: Session, cmdlet: str) -> list[str] | None:
        if cmdlet.lower() != "get-clientaccessservice":
            return None
        params = ["Identity", "DomainController", "IncludeAlternateServiceAccountCredentialStatus"]
        if session.user.lower() != VIEWER[0].lower():  # the viewer lacks Organization Configuration
            params.append("IncludeAlternateServiceAccountCredentialPassword")
        return params

    def invoke_cmdlet(self, lab: Any, session: Session, cmdlet: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self.lock:
            self.calls.append((session.server, session.user, cmdlet, dict(params)))
        if cmdlet == "Set-ClientAccessService":
            target = lab.server(params["Identity"]).name
            creds = params["AlternateServiceAccountCredential"]
            now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
            entries = [{"QualifiedUserName": c.user, "WhenAdded": now, "Credential": c} for c in creds]
            self.stores[target] = entries + ([] if params.get("RemoveAlternateServiceAccountCredentials")
                                             else self.stores.get(target, []))
            return []
        if cmdlet == "Get-ClientAccessService":
            found = lab.server(params.get("Identity", session.server))
            if found is None:
                raise CmdletError(f"The operation couldn't be performed because object '{params['Identity']}' "
                                  "couldn't be found.", category="ObjectNotFound",
                                  error_id="1D3E2F01,Microsoft.Exchange.Management.SystemConfigurationTasks."
                                           "GetClientAccessService", target=str(params.get("Identity")))
            with_pw = params.get("IncludeAlternateServiceAccountCredentialPassword") is True \
                and found.name == session.server
            creds = [{"QualifiedUserName": e["QualifiedUserName"], "WhenAdded": e["WhenAdded"],
                      "Credential": PsCredential(e["Credential"].user, e["Credential"].password if with_pw else None)}
                     for e in self.stores.get(found.name, [])]
            return [{"Name": found.name, "Fqdn": found.fqdn, "IsClientAccessServer": True,
                     "AlternateServiceAccountConfiguration": {"EffectiveCredentials": creds}}]
        if cmdlet == "Get-Token":
            return [{"Token": Secret("Tok-Secure-String-1"), "Missing": None}]
        if cmdlet == "Get-Echo":
            if params.get("Fail"):
                raise CmdletError(f"Refused: {params.get('Text')}", category="InvalidArgument", error_id="Echo,X")
            return [{"Received": {k: _describe(v) for k, v in params.items()}}]
        raise CmdletError(f"The term '{cmdlet}' is not recognized as the name of a cmdlet.",
                          category="ObjectNotFound", error_id="CommandNotFoundException")


def _describe(v: Any) -> Any:
    if isinstance(v, PsCredential):
        return f"PsCredential:{v.user}"
    if isinstance(v, list):
        return [_describe(x) for x in v]
    return f"{type(v).__name__}:{v}"


@pytest.fixture
def lab(world_of):
    """A lab world whose /PowerShell endpoints run on the private model; yields (world, model)."""
    w = world_of(scenario("fresh"))
    model = FakeExchange()
    w.start_endpoint().psrp._backend = model
    return w, model


@pytest.fixture
def traffic(lab, monkeypatch):
    """Every SOAP request and answer the /PowerShell endpoint saw, as text with base64 payloads decoded."""
    w, _ = lab
    seen: list[bytes] = []
    psrp = w.endpoint.psrp
    original = psrp.dispatch

    def recording(server: str, user: str, data: bytes):
        code, body = original(server, user, data)
        for raw in (data, body.encode()):
            seen.append(raw)
            for m in re.finditer(rb">([A-Za-z0-9+/=]{16,})<", raw):
                seen.append(base64.b64decode(m.group(1)))
        return code, body

    monkeypatch.setattr(psrp, "dispatch", recording)
    return seen


def test_a_cmdlet_with_parameters_round_trips(lab):
    w, model = lab
    with w.rps() as rps:
        out = rps.invoke(EX01, "Get-Echo", {"Text": "a 'quoted' $value; rm -rf", "Count": 3, "Force": True,
                                            "WhatIf": False, "Names": ["EX01", "EX02"]})
    assert out == [{"Received": {"Text": "str:a 'quoted' $value; rm -rf", "Count": "int:3", "Force": "bool:True",
                                 "WhatIf": "bool:False", "Names": ["str:EX01", "str:EX02"]}}]
    # the endpoint received one Command with those parameters, not a script
    assert [(c[0], c[2]) for c in model.calls] == [("EX01", "Get-Echo")]
    assert model.calls[0][3]["Text"] == "a 'quoted' $value; rm -rf"


def test_output_objects_keep_exchange_property_names_and_types(lab):
    w, model = lab
    when = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    model.stores["EX01"] = [{"QualifiedUserName": "CONTOSO\\ASA$", "WhenAdded": when,
                             "Credential": PsCredential("CONTOSO\\ASA$", Secret("x"))}]
    with w.rps() as rps:
        [cas] = rps.invoke(EX01, "Get-ClientAccessService", {"Identity": "EX01"})
    assert cas["Name"] == "EX01" and cas["IsClientAccessServer"] is True
    [entry] = cas["AlternateServiceAccountConfiguration"]["EffectiveCredentials"]
    assert entry["QualifiedUserName"] == "CONTOSO\\ASA$"
    assert entry["WhenAdded"] == when and entry["WhenAdded"].tzinfo is not None
    assert entry["Credential"] == PsCredential("CONTOSO\\ASA$", None)  # no password without the switch


def test_script_text_is_refused_with_exchanges_no_language_error(lab):
    w, model = lab
    user, password = w.exchange.current_credentials()
    host, port = w.endpoint.address
    wsman = WSMan(host, port=port, path=f"PowerShell/{EX01}", auth="basic", username=user, password=password,
                  cert_validation=w.endpoint.ca_file, no_proxy=True)
    with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-ClientAccessService | Set-ClientAccessService -RemoveAlternateServiceAccountCredentials")
        assert ps.invoke() == []
        assert ps.had_errors
        [record] = ps.streams.error
        assert str(record) == NO_LANGUAGE
        assert record.fq_error == "ScriptsNotAllowed"
        # a script next to a command is refused as a whole: nothing runs
        ps2 = PowerShell(pool)
        ps2.add_cmdlet("Get-Echo").add_parameter("Text", "x").add_statement().add_script("$x = 1")
        ps2.invoke()
        assert [str(e) for e in ps2.streams.error] == [NO_LANGUAGE]
    assert model.calls == []
    err = rps_error_from_record(EX01, record)
    assert isinstance(err, RpsError) and err.problem == f"{EX01}: {NO_LANGUAGE}"
    assert "no-language mode" in err.fix and "never script text" in err.fix and err.error_id == "ScriptsNotAllowed"


def test_one_pool_per_server_is_reused_for_every_call_and_closed(lab):
    w, model = lab
    rps = w.rps()
    for _ in range(3):
        rps.invoke(EX01, "Get-Echo", {"Text": "x"})
    assert rps.parameters(EX01, "Get-ClientAccessService")
    rps.invoke(EX02, "Get-Echo", {"Text": "y"})
    rps.invoke(EX01, "Get-Echo", {"Text": "z"})
    assert [server for server, _ in w.endpoint.psrp.creates] == [EX01, EX02]  # one Create per server
    assert w.endpoint.psrp.open_shells() == 2
    rps.close()
    assert w.endpoint.psrp.open_shells() == 0  # close() deletes each server's shell on the endpoint
    assert len(model.sessions) == 2


def test_calls_for_different_servers_run_in_parallel_on_their_own_pools(lab):
    w, model = lab
    errors: list[BaseException] = []
    with w.rps() as rps:
        def work(server: str) -> None:
            try:
                for i in range(4):
                    assert rps.invoke(server, "Get-Echo", {"Text": f"{server}-{i}"})[0]["Received"]["Text"] == \
                        f"str:{server}-{i}"
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(s,)) for s in (EX01, EX02, EX01)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert sorted(s for s, _ in w.endpoint.psrp.creates) == [EX01, EX02]
    assert len(model.calls) == 12


def test_a_credential_is_pushed_and_read_back_only_through_a_session_on_that_server(lab, traffic, caplog, capsys):
    w, model = lab
    caplog.set_level(logging.DEBUG)
    password = Secret("Gen-8f2c1e9a-Only-Here-Xy!")
    with w.rps() as rps:
        assert rps.invoke(EX01, "Set-ClientAccessService", {
            "Identity": "EX01", "AlternateServiceAccountCredential": [PsCredential("CONTOSO\\ASA$", password)],
            "CleanUpInvalidAlternateServiceAccountCredentials": True}) == []
        [same] = rps.invoke(EX01, "Get-ClientAccessService",
                            {"Identity": "EX01", "IncludeAlternateServiceAccountCredentialPassword": True})
        [other] = rps.invoke(EX02, "Get-ClientAccessService",
                             {"Identity": "EX01", "IncludeAlternateServiceAccountCredentialPassword": True})
    # the model received a PsCredential whose password is the Secret sent (decrypted with the session key)
    pushed = model.calls[0][3]["AlternateServiceAccountCredential"]
    assert pushed == [PsCredential("CONTOSO\\ASA$", password)]
    got = same["AlternateServiceAccountConfiguration"]["EffectiveCredentials"][0]["Credential"]
    assert got.user == "CONTOSO\\ASA$" and isinstance(got.password, Secret) and got.password == password
    through_other = other["AlternateServiceAccountConfiguration"]["EffectiveCredentials"][0]["Credential"]
    assert through_other.password is None
    # the password never crossed the wire in clear (only as a SecureString under the pool's session key),
    # and nothing printed or logged it
    plain = password.reveal()
    for chunk in traffic:
        assert plain.encode("utf-8") not in chunk and plain.encode("utf-16-le") not in chunk
    assert any(b"<SS" in c for c in traffic)
    assert plain not in caplog.text
    captured = capsys.readouterr()
    assert plain not in captured.out + captured.err
    assert plain not in repr(same) and plain not in str(same)


def test_the_session_key_is_exchanged_before_the_first_secure_string_and_not_for_reads(lab, traffic):
    w, _ = lab
    password = Secret("Gen-4a1d-Key-First-Zq!")
    with w.rps() as rps:
        rps.invoke(EX01, "Get-Echo", {"Text": "x"})
        # a read carries no SecureString: no key exchange (no RSA work for every server read)
        assert b"EncryptedSessionKey" not in b"".join(traffic)
        rps.invoke(EX01, "Set-ClientAccessService", {
            "Identity": "EX01", "AlternateServiceAccountCredential": [PsCredential("CONTOSO\\ASA$", password)]})
        rps.invoke(EX01, "Set-ClientAccessService", {
            "Identity": "EX01", "AlternateServiceAccountCredential": [PsCredential("CONTOSO\\ASA$", password)]})
    text = b"".join(traffic)
    # the client's PublicKey and the server's EncryptedSessionKey both travelled before the first credential,
    # once per pool
    first_credential = text.find(b"<SS")
    assert 0 < text.find(b"EncryptedSessionKey") < first_credential
    assert 0 < text.find(b'<S N="PublicKey">') < first_credential
    assert text.count(b"EncryptedSessionKey") == 1


def test_get_command_metadata_answers_from_the_model_per_user(lab):
    w, _ = lab
    with w.rps() as admin, w.rps(*VIEWER) as viewer:
        assert "IncludeAlternateServiceAccountCredentialPassword" in admin.parameters(EX01, "Get-ClientAccessService")
        seen = viewer.parameters(EX01, "Get-ClientAccessService")
        assert "IncludeAlternateServiceAccountCredentialStatus" in seen
        assert "IncludeAlternateServiceAccountCredentialPassword" not in seen
        assert admin.parameters(EX01, "Get-Mailbox") == frozenset()  # not a command for this user
    assert {u for _, u in w.endpoint.psrp.creates} == {w.exchange.current_credentials()[0], VIEWER[0]}


def test_remote_powershell_disabled_refuses_the_session(lab):
    w, model = lab
    with w.rps(*NO_RPS) as rps:
        with pytest.raises(RpsError) as info:
            rps.invoke(EX01, "Get-Echo", {"Text": "x"})
    err = info.value
    assert err.server == EX01 and err.error_id == "AccessDenied"
    assert "refused a remote PowerShell session" in err.problem and "RemotePowerShellEnabled is $false" in err.problem
    assert "Set-User <user> -RemotePowerShellEnabled $true" in err.fix
    assert model.calls == [] and w.endpoint.psrp.open_shells() == 0


def test_the_winrm_listener_does_not_serve_microsoft_exchange(lab):
    w, model = lab
    user, password = w.exchange.current_credentials()
    host, port = w.endpoint.address
    wsman = WSMan(host, port=port, path=f"wsman/{EX01}", auth="basic", username=user, password=password,
                  cert_validation=w.endpoint.ca_file, no_proxy=True)
    from pypsrp.exceptions import WSManFaultError

    with pytest.raises(WSManFaultError) as info:
        RunspacePool(wsman, configuration_name="Microsoft.Exchange").open()
    assert info.value.code == 2150858811
    assert info.value.reason == (
        "The WS-Management service cannot process the request. The resource URI "
        "(http://schemas.microsoft.com/powershell/Microsoft.Exchange) was not found in the WS-Management catalog. "
        "The catalog contains the metadata that describes resources, or logical endpoints.")
    assert w.endpoint.psrp.creates == []
    # pointing ExchangeRps there names the real endpoint
    settings = w.rps_settings()
    wrong = RpsSettings(**{**settings.__dict__, "host_override": lambda fqdn: (host, port, f"wsman/{fqdn}")})
    with ExchangeRps(wrong) as rps, pytest.raises(RpsError) as info2:
        rps.invoke(EX01, "Get-Echo", {})
    assert "does not serve the Microsoft.Exchange configuration" in info2.value.problem
    assert f"use http://{EX01}/PowerShell" in info2.value.fix


def test_the_powershell_endpoint_hosts_only_microsoft_exchange(lab):
    w, _ = lab
    user, password = w.exchange.current_credentials()
    host, port = w.endpoint.address
    wsman = WSMan(host, port=port, path=f"PowerShell/{EX01}", auth="basic", username=user, password=password,
                  cert_validation=w.endpoint.ca_file, no_proxy=True)
    from pypsrp.exceptions import WSManFaultError

    with pytest.raises(WSManFaultError) as info:
        RunspacePool(wsman, configuration_name="Microsoft.PowerShell").open()
    assert info.value.code == 2150858811
    assert "(http://schemas.microsoft.com/powershell/Microsoft.PowerShell) was not found" in info.value.reason


def test_the_windows_side_winrs_shell_still_works_next_to_it(lab):
    """/wsman keeps serving the WinRS cmd shell (Windows-side scripts) on the same listener."""
    import winrm

    w, _ = lab
    with w.rps() as rps:
        rps.invoke(EX01, "Get-Echo", {"Text": "x"})
    user, password = w.exchange.current_credentials()
    proto = winrm.Protocol(w.endpoint.url_for("EX01"), transport="basic", username=user, password=password,
                           server_cert_validation="validate", ca_trust_path=w.endpoint.ca_file)
    shell = proto.open_shell()
    command = proto.run_command(shell, "hostname")
    _, stderr, rc = proto.get_command_output(shell, command)
    proto.cleanup_command(shell, command)
    proto.close_shell(shell)
    assert rc == 1 and stderr.startswith(b"'hostname' is not recognized as an internal or external command")
    assert w.endpoint.command_lines == [("ex01", "hostname")]


def test_receive_parses_clixml_from_the_wire_not_a_canned_answer(lab, traffic):
    """The objects the caller gets are what the endpoint serialized: the answer's CLIXML holds the same
    property names and the DateTime in CLIXML form."""
    w, model = lab
    model.stores["EX02"] = [{"QualifiedUserName": "CONTOSO\\ASA$",
                             "WhenAdded": datetime(2025, 12, 31, 23, 59, 58, tzinfo=timezone.utc),
                             "Credential": PsCredential("CONTOSO\\ASA$", None)}]
    with w.rps() as rps:
        [cas] = rps.invoke(EX02, "Get-ClientAccessService", {})
    assert cas["AlternateServiceAccountConfiguration"]["EffectiveCredentials"][0]["WhenAdded"] == \
        datetime(2025, 12, 31, 23, 59, 58, tzinfo=timezone.utc)
    xml = b"".join(c for c in traffic if b"EffectiveCredentials" in c and b"<Obj" in c)
    assert b'N="EffectiveCredentials"' in xml and b"2025-12-31T23:59:58" in xml


def test_a_securestring_in_the_output_arrives_as_a_secret(lab, traffic):
    w, _ = lab
    with w.rps() as rps:
        [out] = rps.invoke(EX01, "Get-Token", {})
    assert out == {"Token": Secret("Tok-Secure-String-1"), "Missing": None}
    assert isinstance(out["Token"], Secret)
    for chunk in traffic:
        assert b"Tok-Secure-String-1" not in chunk and "Tok-Secure-String-1".encode("utf-16-le") not in chunk


def test_the_endpoint_tells_the_model_whether_the_logon_can_delegate(lab):
    w, model = lab
    with w.rps() as admin, w.rps(*VIEWER) as viewer:
        admin.invoke(EX01, "Get-Echo", {"Text": "x"})
        viewer.invoke(EX02, "Get-Echo", {"Text": "x"})
    assert [(s.server, s.user, s.can_delegate) for s in model.sessions] == [
        ("EX01", w.exchange.current_credentials()[0], False), ("EX02", VIEWER[0], True)]


def test_large_values_cross_in_several_fragments_both_ways(lab, monkeypatch):
    w, model = lab
    big = "".join(chr(0x41 + i % 26) for i in range(700_000))  # larger than one WS-Management envelope
    actions: list[str] = []
    original = w.endpoint.psrp.dispatch

    def counting(server: str, user: str, data: bytes):
        m = re.search(rb"<(?:\w+:)?Action[^>]*>([^<]+)</", data)
        actions.append(m.group(1).decode().rsplit("/", 1)[-1] if m else "?")
        return original(server, user, data)

    monkeypatch.setattr(w.endpoint.psrp, "dispatch", counting)
    with w.rps() as rps:
        [out] = rps.invoke(EX01, "Get-Echo", {"Text": big})
    assert out["Received"]["Text"] == "str:" + big
    assert model.calls[0][3]["Text"] == big
    # the pipeline did not fit the Command: the client sent the rest with Send operations for that command
    assert actions[actions.index("Command") + 1] == "Send"


def test_a_pool_the_server_forgot_is_reopened_once_when_the_call_never_ran(lab):
    w, model = lab
    with w.rps() as rps:
        rps.invoke(EX01, "Get-Echo", {"Text": "before"})
        w.endpoint.psrp.close_all()  # e.g. the idle timeout ended the session on the server
        assert rps.invoke(EX01, "Get-Echo", {"Text": "after"})[0]["Received"]["Text"] == "str:after"
        w.endpoint.psrp.close_all()
        assert "IncludeAlternateServiceAccountCredentialStatus" in rps.parameters(EX01, "Get-ClientAccessService")
    assert [s for s, _ in w.endpoint.psrp.creates] == [EX01, EX01, EX01]
    assert [c[3]["Text"] for c in model.calls] == ["before", "after"]  # each call ran exactly once

