"""How the real probe reads a server's answer to its Kerberos token (no KDC needed)."""

from __future__ import annotations

import base64

from asa_wizard.adapters.kerberos import HttpAnswer, classify, kerberos_error_name, krb_error, ticket_info
from asa_wizard.core.ports import ProbeOutcome

# NTLMSSP CHALLENGE message start, as a server falling back to NTLM sends it inside Negotiate
NTLM_TOKEN = base64.b64encode(b"NTLMSSP\x00\x02\x00\x00\x00" + bytes(40)).decode()


def never(_token: bytes) -> None:
    raise AssertionError("no reply token expected")


def test_an_ntlm_token_in_the_reply_is_ntlm_fallback():
    assert NTLM_TOKEN.startswith("TlRMTVNT")
    outcome, detail = classify(HttpAnswer(401, [f"Negotiate {NTLM_TOKEN}"], ""), never)
    assert outcome == ProbeOutcome.NTLM_FALLBACK and "TlRMTVNT" in detail


def test_a_server_offering_only_ntlm_is_ntlm_fallback():
    outcome, _ = classify(HttpAnswer(401, ["NTLM"], ""), never)
    assert outcome == ProbeOutcome.NTLM_FALLBACK


def test_a_bare_401_after_a_kerberos_token_is_a_rejection():
    outcome, detail = classify(HttpAnswer(401, ["Negotiate", "NTLM"], "HTTP Error 401.1 - Unauthorized"), never)
    assert outcome == ProbeOutcome.REJECTED and detail.startswith("KRB_AP_ERR_MODIFIED")


def test_200_with_a_reply_token_completes_mutual_authentication():
    seen = []
    outcome, detail = classify(HttpAnswer(200, ["Negotiate " + base64.b64encode(b"reply").decode()], "ok"),
                               seen.append)
    assert outcome == ProbeOutcome.ACCEPTED and seen == [b"reply"] and "mutual" in detail


def test_a_reply_token_that_does_not_verify_is_a_rejection():
    def bad(_t):
        raise ValueError("Message stream modified")

    outcome, detail = classify(HttpAnswer(200, ["Negotiate " + base64.b64encode(b"x").decode()], ""), bad)
    assert outcome == ProbeOutcome.REJECTED and "KRB_AP_ERR_MODIFIED" in detail


def test_other_statuses_are_errors():
    outcome, detail = classify(HttpAnswer(500, [], "Internal error"), never)
    assert outcome == ProbeOutcome.ERROR and "HTTP 500" in detail


def test_mit_messages_map_to_the_kerberos_error_names():
    assert kerberos_error_name("Server not found in Kerberos database") == "KDC_ERR_S_PRINCIPAL_UNKNOWN"
    assert kerberos_error_name("KDC can't fulfill requested option") == "KDC_ERR_BADOPTION"
    assert kerberos_error_name("Decrypt integrity check failed") == "KRB_AP_ERR_MODIFIED"
    assert kerberos_error_name("something else") is None


def test_tokens_that_are_not_kerberos_yield_nothing():
    assert ticket_info(b"NTLMSSP\x00") == (None, None)
    assert krb_error(b"") is None


def test_200_without_a_reply_token_does_not_prove_the_ticket():
    outcome, detail = classify(HttpAnswer(200, [], "ok"), never)
    assert outcome == ProbeOutcome.ERROR and "without a Kerberos answer" in detail


def test_another_status_after_a_verified_token_is_accepted_with_its_meaning():
    seen = []
    token = "Negotiate " + base64.b64encode(b"reply").decode()
    outcome, detail = classify(HttpAnswer(400, [token], "Bad Request"), seen.append)
    assert outcome == ProbeOutcome.ACCEPTED and seen == [b"reply"]
    assert "HTTP 400 (the application refused the probe's empty request after authentication)" in detail


def test_a_503_without_a_token_is_an_error_that_says_what_it_means():
    outcome, detail = classify(HttpAnswer(503, [], "Service Unavailable"), never)
    assert outcome == ProbeOutcome.ERROR and "application pool stopped" in detail


def test_a_path_offering_only_basic_does_not_offer_negotiate():
    outcome, detail = classify(HttpAnswer(401, ['Basic realm="mail.contoso.com"'], ""), never)
    assert outcome == ProbeOutcome.NOT_OFFERED and "Basic only" in detail


def test_the_channel_binding_is_the_certificate_hash_as_rfc_5929_says():
    """tls-server-end-point: the hash of the DER certificate with its own signature hash (SHA-256, SHA-384)."""
    import datetime as dt
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    from asa_wizard.adapters.kerberos import tls_server_end_point

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.contoso.com")])
    now = dt.datetime.now(dt.timezone.utc)

    def cert(algorithm) -> bytes:
        c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)).sign(key, algorithm))
        return c.public_bytes(serialization.Encoding.DER)

    for algorithm, expected in ((hashes.SHA256(), hashlib.sha256), (hashes.SHA384(), hashlib.sha384)):
        der = cert(algorithm)
        assert tls_server_end_point(der) == b"tls-server-end-point:" + expected(der).digest()
