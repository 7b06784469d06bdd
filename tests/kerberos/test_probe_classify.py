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
