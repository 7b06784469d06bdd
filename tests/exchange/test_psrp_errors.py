"""`ExchangeRps` failures as a user sees them: each an `RpsError` naming the server, the cause and the fix,
without a secret in it; and the real-target transport defaults (http://<fqdn>/PowerShell, Kerberos, message
encryption, SPN HTTP/<fqdn>)."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from asa_wizard.adapters.psrp import ExchangeRps, PsCredential, RpsError, RpsSettings
from asa_wizard.core.errors import WizardError
from asa_wizard.core.secrets import Secret

from .conftest import scenario
from .test_psrp_wire import EX01, FakeExchange


@pytest.fixture
def lab(world_of):
    w = world_of(scenario("fresh", EX02="unreachable"))
    model = FakeExchange()
    w.start_endpoint().psrp._backend = model
    return w, model


def failure(settings: RpsSettings, server: str = EX01, cmdlet: str = "Get-Echo", params=None) -> RpsError:
    with ExchangeRps(settings) as rps, pytest.raises(RpsError) as info:
        rps.invoke(server, cmdlet, params if params is not None else {"Text": "x"})
    assert isinstance(info.value, WizardError) and info.value.fix
    return info.value


def test_a_cmdlet_error_carries_its_message_category_and_id(lab):
    w, _ = lab
    err = failure(w.rps_settings(), cmdlet="Get-ClientAccessService", params={"Identity": "EX09"})
    assert err.problem == ("Get-ClientAccessService on ex01.contoso.com: The operation couldn't be performed "
                           "because object 'EX09' couldn't be found.")
    assert err.category == "ObjectNotFound"
    assert err.error_id == "1D3E2F01,Microsoft.Exchange.Management.SystemConfigurationTasks.GetClientAccessService"
    assert err.server == EX01
    assert "Get-ExchangeServer" in err.fix


def test_the_pool_survives_a_cmdlet_error(lab):
    w, _ = lab
    with w.rps() as rps:
        with pytest.raises(RpsError):
            rps.invoke(EX01, "Get-Nothing", {})
        assert rps.invoke(EX01, "Get-Echo", {"Text": "after"})[0]["Received"]["Text"] == "str:after"
    assert len(w.endpoint.psrp.creates) == 1


def test_a_wrong_password_is_a_401_without_the_password_in_the_message(lab, caplog):
    w, _ = lab
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-Pa55-Never-Shown"
    err = failure(w.rps_settings(w.exchange.current_credentials()[0], wrong))
    assert "authentication as CONTOSO\\Administrator with basic was refused (HTTP 401)" in err.problem
    assert "user name and password" in err.fix
    for text in (str(err), err.detail or "", repr(err), caplog.text):
        assert wrong not in text


def test_kerberos_against_an_endpoint_without_negotiate_names_kerberos_and_kinit(lab):
    w, _ = lab
    err = failure(dataclasses.replace(w.rps_settings(), auth="kerberos"))
    assert err.problem.startswith(f"{EX01}: Kerberos could not authenticate")
    assert f"HTTP/{EX01}" in err.problem
    assert "kinit user@REALM" in err.fix and "no NTLM" in err.fix


def test_an_unreachable_server_is_a_refused_connection(lab):
    w, _ = lab
    err = failure(w.rps_settings(), server="ex02.contoso.com")
    assert err.problem.startswith("ex02.contoso.com: the connection to https://127.0.0.1:")
    assert "refused" in err.problem and "IIS (W3SVC)" in err.fix
    assert err.error_id == "ConnectionRefused" and err.category == "transport"


def test_an_unknown_name_is_a_dns_failure():
    settings = RpsSettings(auth="kerberos", connect_timeout=5)
    err = failure(settings, server="ex01.asa-wizard-no-such-domain.invalid")
    assert err.problem == "ex01.asa-wizard-no-such-domain.invalid: the name does not resolve in DNS."
    assert "FQDN" in err.fix and err.error_id == "DNS"


def test_an_untrusted_certificate_is_a_tls_failure(lab):
    w, _ = lab
    err = failure(dataclasses.replace(w.rps_settings(), ca_file=None))
    assert "TLS certificate" in err.problem and "could not be validated" in err.problem
    assert "ca_file" in err.fix and err.error_id == "TLS"


def test_a_wrong_path_is_a_404_that_names_the_endpoint(lab):
    w, _ = lab
    host, port = w.endpoint.address
    settings = dataclasses.replace(w.rps_settings(), host_override=lambda fqdn: (host, port, "owa"))
    err = failure(settings)
    assert err.problem == f"{EX01}: https://{host}:{port}/owa was not found (HTTP 404)."
    assert f"http://{EX01}/PowerShell" in err.fix


def test_secrets_the_server_echoes_are_redacted(lab):
    w, _ = lab
    pushed = Secret("Echoed-Secret-9Q!")
    err = failure(w.rps_settings(), params={"Fail": True, "Text": pushed.reveal(),
                                            "Cred": PsCredential("CONTOSO\\ASA$", pushed)})
    assert err.problem == "Get-Echo on ex01.contoso.com: Refused: ********"
    assert pushed.reveal() not in (err.detail or "") and pushed.reveal() not in str(err)


def test_bad_names_and_values_are_refused_before_anything_is_sent(lab):
    w, _ = lab
    with w.rps() as rps:
        with pytest.raises(RpsError, match="is not a cmdlet name"):
            rps.invoke(EX01, "Get-Echo; Remove-Item x", {})
        with pytest.raises(RpsError, match="is not a parameter name"):
            rps.invoke(EX01, "Get-Echo", {"-Text": "x"})
        with pytest.raises(RpsError, match="has no password to send"):
            rps.invoke(EX01, "Get-Echo", {"Cred": PsCredential("CONTOSO\\ASA$", None)})
        with pytest.raises(RpsError, match="cannot be sent"):
            rps.invoke(EX01, "Get-Echo", {"Text": 1.5})
    assert w.endpoint.psrp.creates == []


def test_settings_that_would_expose_credentials_are_refused():
    with pytest.raises(RpsError, match="Basic authentication over plain HTTP"):
        ExchangeRps(RpsSettings(auth="basic", user="CONTOSO\\a", password=Secret("p")))
    with pytest.raises(RpsError, match="CredSSP authentication needs a user and a password"):
        ExchangeRps(RpsSettings(auth="credssp", user="CONTOSO\\a"))
    with pytest.raises(RpsError, match="Unknown remote PowerShell authentication 'ntlm'"):
        ExchangeRps(RpsSettings(auth="ntlm"))


def test_real_exchange_defaults_are_http_powershell_kerberos_with_encryption_and_the_http_spn():
    rps = ExchangeRps(RpsSettings())
    wsman = rps.wsman("ex01.contoso.com")
    t = wsman.transport
    assert t.endpoint == "http://ex01.contoso.com:80/PowerShell"
    assert t.auth == "kerberos"
    assert t.wrap_required is True  # every message is encrypted by the Kerberos context over HTTP
    assert t.negotiate_service == "HTTP"  # pypsrp alone would ask for host/<fqdn>
    assert t.negotiate_delegate is False
    assert t.negotiate_hostname_override is None
    assert t.no_proxy is True
    assert "message encryption" in rps.settings.describe()
