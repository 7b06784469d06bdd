"""A TLS failure is said for what it is: a certificate that cannot be validated gets the CA advice, a TLS
connection that broke in the middle (an EOF, as when a server drops a kept-alive connection) is not blamed on
the certificate. Both adapters, from the exceptions requests raises for each."""

from __future__ import annotations

import ssl

import requests
from urllib3.exceptions import MaxRetryError, SSLError as Urllib3SSLError

from asa_wizard.adapters.psrp import ExchangeRps, RpsSettings
from asa_wizard.adapters.winrm import WinRmExchange, WinRmSettings
from asa_wizard.core.secrets import Secret

SERVER = "ex01.contoso.com"
URL = "https://ex01.contoso.com:443/PowerShell"


def raised(reason: Exception) -> requests.exceptions.SSLError:
    """What requests raises: its SSLError around urllib3's MaxRetryError around the ssl module's error."""
    return requests.exceptions.SSLError(MaxRetryError(None, URL, Urllib3SSLError(reason)))


BROKEN = raised(ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2393)"))
UNTRUSTED = raised(ssl.SSLCertVerificationError(
    1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate"))


def rps_error(exc: Exception):
    rps = ExchangeRps(RpsSettings(scheme="https", port=443, auth="basic", user="CONTOSO\\admin",
                                  password=Secret("pw")))
    return rps._translate(SERVER, "pushing the credential", exc, [])


def winrm_error(exc: Exception):
    return WinRmExchange(WinRmSettings(transport="basic", user="admin", password=Secret("pw")))._translate(
        SERVER, "https://ex01.contoso.com:5986/wsman", exc)


def test_a_connection_that_broke_is_not_called_a_certificate_problem():
    err = rps_error(BROKEN)
    assert err.problem == f"{SERVER}: the TLS connection to {URL} broke while pushing the credential."
    assert "ca_file" not in err.fix and "certificate" not in err.problem
    w = winrm_error(BROKEN)
    assert "broke" in w.problem and "certificate" not in w.problem + w.fix


def test_an_untrusted_certificate_still_gets_the_ca_advice():
    err = rps_error(UNTRUSTED)
    assert err.problem == f"{SERVER}: the TLS certificate of {URL} could not be validated." and "ca_file" in err.fix
    w = winrm_error(UNTRUSTED)
    assert "could not be validated" in w.problem and "CA certificate" in w.fix
