"""The Kerberos-only front of the lab's `/PowerShell` model (lab/rps_kerberos.py) refuses what Exchange's endpoint
refuses, without a KDC: no context, NTLM, a body that is not MS-WSMV's multipart/encrypted. The Kerberos path
itself is proven against the Samba KDC in tests/kerberos/test_samba_kerberos.py."""

from __future__ import annotations

import base64

import pytest
import requests

from asa_wizard.lab.rps_kerberos import KerberosPowerShell, decrypted_body
from asa_wizard.lab.scenario import find_scenario, load_scenario


@pytest.fixture
def front(world_of, tmp_path):
    w = world_of(load_scenario(find_scenario("healthy")))
    w.start_endpoint()
    with KerberosPowerShell(w.endpoint.psrp, tmp_path / "none.keytab", {}) as f:
        yield f


def url(front: KerberosPowerShell, server: str = "ex01.contoso.com") -> str:
    host, port, path = front.target(server)
    return f"http://{host}:{port}/{path}"


def test_a_request_without_kerberos_is_asked_for_kerberos_not_negotiate(front):
    r = requests.post(url(front), data=b"", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Kerberos"


def test_an_ntlm_token_is_refused(front):
    ntlm = base64.b64encode(b"NTLMSSP\x00\x01\x00\x00\x00" + b"\x00" * 24).decode()
    r = requests.post(url(front), data=b"", headers={"Authorization": f"Negotiate {ntlm}"}, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Kerberos"
    assert front.rejected == ["NTLM refused: the endpoint accepts Kerberos only"] and front.accepted == []


def test_a_server_the_organisation_does_not_have_is_not_found(front):
    assert requests.post(url(front, "ex99.contoso.com"), data=b"", timeout=10).status_code == 404


def test_a_body_that_is_not_multipart_encrypted_is_not_read():
    for body in (b"<s:Envelope/>", b"--Encrypted Boundary\r\n\tContent-Type: x\r\n--Encrypted Boundary\r\nabc"):
        with pytest.raises(ValueError):
            decrypted_body(None, body)
