"""Real Kerberos: tickets from the KDC, presented to each Exchange server, and the gateway's S4U path.

`GssKerberosProbe` implements the `KerberosProbe` port with python-gssapi (MIT Kerberos, Linux):

- Credentials: the user's ticket cache, a given cache, or a TGT the probe gets itself with a password the
  user typed (through the krb5 library, into a private in-memory cache: never argv, never a file).
- `service_ticket`: a Kerberos context for HTTP/<namespace>@REALM; the ticket's encryption type and key
  version are read from the AP-REQ inside the token.
- `probe_server`: per client path (Autodiscover, EWS, MAPI, Outlook Anywhere, ActiveSync) one TLS connection
  straight to the server's address with the namespace as Host header, TLS server name (SNI) and certificate
  name (validated), and a SPNEGO token carrying that connection's channel binding (RFC 5929
  `tls-server-end-point`: the hash of the certificate the server presented, as Windows clients bind under
  Extended Protection). The answer is classified: accepted (not 401, and the server's mutual-authentication
  token verifies), NTLM fallback (an NTLM token `TlRMTVNT...`, or only NTLM offered), not offered (only
  Basic), rejected (401 after our token, or a KRB-ERROR such as KRB_AP_ERR_MODIFIED), any other status with
  its meaning. A path that refuses the bound token is asked once more without a binding: accepted then means
  the server checked another TLS connection's binding (a TLS-terminating device in front of it).
  Plain HTTP is refused unless the caller asks for it (`tls=False, allow_http=True`).
- `s4u`: TGT of the gateway's service account (its keytab or password), `impersonate()` (S4U2Self) and a
  context to the target SPN (S4U2Proxy); a KDC refusal is reported as KDC_ERR_BADOPTION.

Windows (best effort, not exercised by the test suite): python-gssapi is not available there, so the
probe uses pyspnego's SSPI backend with the logged-on user's ticket for `service_ticket` and
`probe_server`; `principal`/`password`/`ccache` are ignored and S4U is reported as unavailable (run it from
Linux). KDC calls cannot be given a socket timeout through GSSAPI, so each runs in a worker thread that
is abandoned after `timeout` seconds (the KDC's own retries end it later).
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import ssl
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TypeVar

from ..core.errors import AuthenticationFailed, OperationTimeout, PolicyRefused
from ..core.model import ExchangeServer
from ..core.ports import (
    CLIENT_PATHS,
    ClientPath,
    PathResult,
    ProbeOutcome,
    ProbeResult,
    TicketResult,
    client_path,
    overall_outcome,
)
from ..core.secrets import Secret, redact

T = TypeVar("T")

SPNEGO_OID = "1.3.6.1.5.5.2"
KRB5_OIDS = (bytes.fromhex("06092a864886f712010202"), bytes.fromhex("06092a864882f712010202"))  # MIT, Microsoft
ENCTYPES = {17: "aes128-cts-hmac-sha1-96", 18: "aes256-cts-hmac-sha1-96", 19: "aes128-cts-hmac-sha256-128",
            20: "aes256-cts-hmac-sha384-192", 23: "rc4-hmac", 24: "rc4-hmac-exp", 1: "des-cbc-crc", 3: "des-cbc-md5"}
KRB_ERRORS = {  # RFC 4120 error codes a server answers with; MIT's names, and what Windows logs instead
    31: "KRB_AP_ERR_BAD_INTEGRITY (Windows reports KRB_AP_ERR_MODIFIED)",
    32: "KRB_AP_ERR_TKT_EXPIRED", 37: "KRB_AP_ERR_SKEW", 41: "KRB_AP_ERR_MODIFIED",
    44: "KRB_AP_ERR_BADKEYVER (the server holds another key version; Windows reports KRB_AP_ERR_MODIFIED)",
    45: "KRB_AP_ERR_NOKEY (the server holds no key for the service; Windows reports KRB_AP_ERR_MODIFIED)",
}

# GSS/KDC messages (MIT wording) -> the Kerberos error a Windows admin knows
_KDC_WORDS = [
    (re.compile(r"not found in Kerberos database|S_PRINCIPAL_UNKNOWN", re.I), "KDC_ERR_S_PRINCIPAL_UNKNOWN"),
    (re.compile(r"can't fulfill requested option|BADOPTION|constrained delegation", re.I), "KDC_ERR_BADOPTION"),
    (re.compile(r"multiple entries|not unique", re.I), "KDC_ERR_PRINCIPAL_NOT_UNIQUE"),
    (re.compile(r"no support for encryption type|ETYPE_NOSUPP", re.I), "KDC_ERR_ETYPE_NOSUPP"),
    (re.compile(r"integrity check failed|BAD_INTEGRITY|Message stream modified|AP_ERR_MODIFIED", re.I),
     "KRB_AP_ERR_MODIFIED"),
    (re.compile(r"Clock skew too great", re.I), "KRB_AP_ERR_SKEW"),
    # this machine's side (the checks report these as "could not run", not as the domain's failure)
    (re.compile(r"Cannot find KDC for realm|Cannot resolve network address for KDC|does not specify default realm",
                re.I), "KRB5_KDC_UNKNOWN"),
    (re.compile(r"Cannot contact any KDC", re.I), "KRB5_KDC_UNREACH"),
    (re.compile(r"No Kerberos credentials available|No credentials cache found|credentials cache .*not found",
                re.I), "KRB5_FCC_NOFILE"),
]


def kerberos_error_name(text: str) -> str | None:
    """The Kerberos error code name a GSS/KDC message stands for, or None."""
    for pattern, name in _KDC_WORDS:
        if pattern.search(text):
            return name
    return None


def _describe_gss(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    name = kerberos_error_name(text)
    return f"{name}: {text}" if name else text


# --- reading tokens -------------------------------------------------------------------------------------
def _der(data: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `i`."""
    tag = data[i]
    length = data[i + 1]
    i += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[i:i + n], "big")
        i += n
    return tag, i, i + length


def _children(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """Context-tagged children ([0], [1] ...) of a SEQUENCE's content: tag number -> (start, end)."""
    out = {}
    i = start
    while i < end:
        tag, s, e = _der(data, i)
        if tag & 0xE0 == 0xA0:
            out[tag & 0x1F] = (s, e)
        i = e
    return out


def _int(data: bytes, start: int) -> int:
    tag, s, e = _der(data, start)
    return int.from_bytes(data[s:e], "big", signed=True)


def _krb5_message(token: bytes, tok_id: bytes) -> int | None:
    """Offset of the Kerberos message inside a GSS krb5 token (raw or wrapped in SPNEGO)."""
    for oid in KRB5_OIDS:
        at = token.find(oid + tok_id)
        if at >= 0:
            return at + len(oid) + 2
    return None


def ticket_info(token: bytes) -> tuple[str | None, int | None]:
    """(encryption type, key version) of the ticket in an AP-REQ token: the ticket's own encryption,
    which is what the server needs a key for (not the session key)."""
    at = _krb5_message(token, b"\x01\x00")
    if at is None or token[at] != 0x6E:  # [APPLICATION 14] AP-REQ
        return None, None
    try:
        _, s, e = _der(token, at)
        _, s, e = _der(token, s)  # SEQUENCE
        ticket = _children(token, s, e)[3]
        _, s, e = _der(token, ticket[0])  # [APPLICATION 1] Ticket
        _, s, e = _der(token, s)  # SEQUENCE
        enc_part = _children(token, s, e)[3]
        _, s, e = _der(token, enc_part[0])  # EncryptedData SEQUENCE
        fields = _children(token, s, e)
        etype = _int(token, fields[0][0])
        kvno = _int(token, fields[1][0]) if 1 in fields else None
    except (IndexError, KeyError):
        return None, None
    return ENCTYPES.get(etype, f"etype {etype}"), kvno


def krb_error(token: bytes) -> str | None:
    """The error name in a KRB-ERROR reply token (e.g. KRB_AP_ERR_MODIFIED), if the token is one."""
    at = _krb5_message(token, b"\x03\x00")
    if at is None or token[at] != 0x7E:  # [APPLICATION 30] KRB-ERROR
        return None
    try:
        _, s, e = _der(token, at)
        _, s, e = _der(token, s)
        code = _int(token, _children(token, s, e)[6][0])
    except (IndexError, KeyError):
        return None
    return KRB_ERRORS.get(code, f"Kerberos error {code}")


# --- HTTP -----------------------------------------------------------------------------------------------
class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given address, with TLS server name and certificate check for another name (the namespace)."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(address, port, context=context, timeout=timeout)
        self._server_name = server_name
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)

    def peer_certificate(self) -> bytes | None:
        """The DER certificate the server presented on this connection (connects first if needed)."""
        if self.sock is None:
            self.connect()
        return self.sock.getpeercert(binary_form=True) if isinstance(self.sock, ssl.SSLSocket) else None


def tls_server_end_point(certificate_der: bytes) -> bytes:
    """RFC 5929 channel binding data of a TLS connection: 'tls-server-end-point:' + the hash of the server's
    certificate with its signature's hash algorithm (SHA-256 for MD5 and SHA-1), as Windows computes it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_der_x509_certificate(certificate_der)
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate_der)
    return b"tls-server-end-point:" + digest.finalize()


@dataclass
class HttpAnswer:
    status: int
    challenges: list[str]  # WWW-Authenticate values
    body: str


def _send(conn: http.client.HTTPConnection, method: str, path: str, namespace: str, token: bytes) -> HttpAnswer:
    conn.request(method, path, body=b"", headers={
        "Host": namespace, "Authorization": "Negotiate " + base64.b64encode(token).decode(),
        "User-Agent": "asa-wizard-kerberos-probe", "Content-Length": "0"})
    resp = conn.getresponse()
    body = resp.read(4096).decode("utf-8", "replace")
    return HttpAnswer(resp.status, resp.headers.get_all("WWW-Authenticate") or [], body)


def negotiate_request(address: str, port: int, namespace: str, path: str, token: bytes, *, tls: bool,
                      context: ssl.SSLContext | None, timeout: float, method: str = "POST") -> HttpAnswer:
    """One request with `Authorization: Negotiate` to `address`, Host (and TLS name) = `namespace`."""
    if tls:
        conn: http.client.HTTPConnection = _PinnedHTTPSConnection(address, port, namespace,
                                                                  context or ssl.create_default_context(), timeout)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        return _send(conn, method, path, namespace, token)
    finally:
        conn.close()


# What an answer other than 401 means when it comes back for our token on an Exchange path.
STATUS_MEANINGS = {
    200: "OK",
    400: "the application refused the probe's empty request after authentication",
    403: "forbidden: SSL settings, client certificate or IP restrictions of the virtual directory",
    404: "the virtual directory does not exist on this server",
    405: "the method is not allowed on this path",
    440: "login timeout (forms-based authentication answered)",
    449: "ActiveSync asks the device to retry with a command (authentication passed)",
    451: "ActiveSync redirects the device to another server",
    500: "the application failed after authentication",
    502: "a proxy between could not reach the server",
    503: "the service is unavailable: application pool stopped or the server is in maintenance",
    504: "a proxy between timed out",
}


def status_meaning(status: int) -> str:
    return STATUS_MEANINGS.get(status, "unexpected status")


def classify(answer: HttpAnswer, complete: Callable[[bytes], None]) -> tuple[ProbeOutcome, str]:
    """What the server's answer to our Kerberos token means. `complete` verifies a reply token."""
    tokens = []
    for ch in answer.challenges:
        scheme, _, rest = ch.strip().partition(" ")
        if scheme.lower() == "negotiate" and rest.strip():
            tokens.append(rest.strip())
    offers = {c.strip().split(" ")[0].lower() for c in answer.challenges if c.strip()}
    if any(t.startswith("TlRMTVNT") for t in tokens):
        return ProbeOutcome.NTLM_FALLBACK, "the server answered with an NTLM token (TlRMTVNT...)"
    if answer.status != 401:
        meaning = f"HTTP {answer.status}" + (f" ({status_meaning(answer.status)})" if answer.status != 200 else "")
        if not tokens:
            detail = " ".join(answer.body.split())[:200]
            return ProbeOutcome.ERROR, (f"{meaning} without a Kerberos answer: the server did not show it read the "
                                        "ticket" + (f" ({detail})" if detail else ""))
        for t in tokens:
            try:
                complete(base64.b64decode(t))
            except Exception as exc:  # noqa: BLE001 - any failure to verify is reported, not raised
                return ProbeOutcome.REJECTED, f"mutual authentication failed: {_describe_gss(exc)}"
        return ProbeOutcome.ACCEPTED, f"Kerberos (mutual authentication); {meaning}"
    for t in tokens:
        err = krb_error(base64.b64decode(t))
        if err:
            return ProbeOutcome.REJECTED, f"{err}: the server could not decrypt the ticket"
    if "negotiate" not in offers and "ntlm" in offers:
        return ProbeOutcome.NTLM_FALLBACK, "the server offers only NTLM on this endpoint"
    if offers and "negotiate" not in offers:
        return ProbeOutcome.NOT_OFFERED, ("HTTP 401 offering " + ", ".join(sorted(o.capitalize() for o in offers))
                                          + " only: Windows authentication is off on this path")
    detail = " ".join(answer.body.split())[:300]
    name = kerberos_error_name(detail) or "KRB_AP_ERR_MODIFIED"
    return ProbeOutcome.REJECTED, f"{name}: the server refused the Kerberos ticket" + (
        f" ({detail})" if detail else "")


# --- the probe ------------------------------------------------------------------------------------------
def _bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run a blocking library call with a deadline (GSSAPI has no per-call timeout)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=run, name=f"krb-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise OperationTimeout(f"{what} did not finish within {timeout:.0f} s.",
                               "Check that this machine reaches a domain controller on port 88 (krb5.conf / DNS).")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class GssKerberosProbe:
    """See the module docstring. `addresses` maps a server name to "host:port" (default: its FQDN:443)."""

    def __init__(self, realm: str, *, ccache: str | Path | None = None, principal: str | None = None,
                 password: Secret | None = None, seg_keytab: str | Path | None = None,
                 seg_password: Secret | None = None, tls: bool = True, ca_file: str | None = None,
                 verify_tls: bool = True, addresses: dict[str, str] | None = None, timeout: float = 15.0,
                 allow_http: bool = False) -> None:
        if not tls and not allow_http:
            raise PolicyRefused(
                "The Kerberos proof over plain HTTP was refused: it is not how clients reach Exchange, proves no "
                "channel binding (Extended Protection) and sends the ticket unprotected.",
                "Use HTTPS (the default); only for a test endpoint pass allow_http=True explicitly.")
        self.realm = realm.upper()
        self.timeout = timeout
        self.tls = tls
        self.addresses = {k.lower(): v for k, v in (addresses or {}).items()}
        self._principal = principal
        self._password = password
        self._seg_keytab = Path(seg_keytab) if seg_keytab else None
        self._seg_password = seg_password
        self._ccache = f"FILE:{ccache}" if ccache and ":" not in str(ccache) else (str(ccache) if ccache else None)
        self._own_ccaches: list[str] = []
        self._lock = threading.Lock()
        self._context = ssl.create_default_context(cafile=ca_file)
        if not verify_tls:  # the user opted out explicitly; describe() says so
            self._context.check_hostname = False
            self._context.verify_mode = ssl.CERT_NONE
        self.verify_tls = verify_tls
        # Windows: no python-gssapi; pyspnego's SSPI backend with the logged-on user's ticket (no S4U)
        self._sspi = sys.platform == "win32"

    def describe(self) -> str:
        who = self._principal or "the current ticket cache"
        tls = "HTTPS with channel binding, certificates validated" if self.tls and self.verify_tls else (
            "HTTPS WITHOUT certificate validation" if self.tls else "plain HTTP (asked for explicitly)")
        return f"Kerberos (GSSAPI) as {who} in {self.realm}; {tls}"

    # --- credentials ----------------------------------------------------------------------------------
    def _kinit(self, principal: str, password: Secret | None = None, keytab: Path | None = None) -> str:
        """A TGT for `principal` in a private in-memory cache; returns the cache name."""
        import krb5

        name = f"MEMORY:asa-wizard-{uuid.uuid4().hex}"
        full = principal if "@" in principal else f"{principal}@{self.realm}"

        def run() -> None:
            ctx = krb5.init_context()
            princ = krb5.parse_name_flags(ctx, full.encode())
            opt = krb5.get_init_creds_opt_alloc(ctx)
            krb5.get_init_creds_opt_set_forwardable(opt, True)
            if keytab is not None:
                kt = krb5.kt_resolve(ctx, f"FILE:{keytab}".encode())
                creds = krb5.get_init_creds_keytab(ctx, princ, opt, keytab=kt)
            else:
                assert password is not None
                creds = krb5.get_init_creds_password(ctx, princ, opt, password=password.reveal().encode())
            cc = krb5.cc_resolve(ctx, name.encode())
            krb5.cc_initialize(ctx, cc, creds.client)
            krb5.cc_store_cred(ctx, cc, creds)

        try:
            _bounded(run, self.timeout, f"kinit {full}")
        except krb5.Krb5Error as exc:
            text = redact(str(exc), password)
            name = kerberos_error_name(text)
            if name in ("KRB5_KDC_UNKNOWN", "KRB5_KDC_UNREACH", "KRB_AP_ERR_SKEW"):
                raise AuthenticationFailed(f"{name}: no ticket for {full} could be had from this machine: {text}",
                                           "Fix this machine's Kerberos configuration (krb5.conf: the realm's KDC), "
                                           "its reach of port 88 or its clock.") from None
            raise AuthenticationFailed(f"The KDC refused a ticket for {full}: {text}",
                                       "Check the user name, the password (or keytab) and the realm.") from None
        with self._lock:
            self._own_ccaches.append(name)
        return name

    def _creds(self):
        if self._sspi:
            return None  # SSPI uses the logged-on user's Windows ticket
        import gssapi

        with self._lock:
            cache = self._ccache
        if cache is None and self._principal and self._password is not None:
            cache = self._kinit(self._principal, self._password)
            with self._lock:
                self._ccache = cache
        if cache:
            return gssapi.Credentials(usage="initiate", store={"ccache": cache})
        return gssapi.Credentials(usage="initiate")

    def _context_for(self, spn: str, creds, spnego: bool, bindings: bytes | None = None):
        """A client context for `spn`; `bindings` is the channel binding application data (None: unbound)."""
        if self._sspi:
            import spnego
            from spnego.channel_bindings import GssChannelBindings

            service, _, host = spn.partition("/")
            return spnego.client(hostname=host, service=service, protocol="negotiate" if spnego else "kerberos",
                                 channel_bindings=GssChannelBindings(application_data=bindings) if bindings else None)
        import gssapi
        import gssapi.raw

        name = gssapi.Name(f"{spn}@{self.realm}", gssapi.NameType.kerberos_principal)
        mech = gssapi.OID.from_int_seq(SPNEGO_OID) if spnego else gssapi.MechType.kerberos
        cb = gssapi.raw.ChannelBindings(application_data=bindings) if bindings else None
        return gssapi.SecurityContext(name=name, creds=creds, usage="initiate", mech=mech,
                                      flags=gssapi.RequirementFlag.mutual_authentication, channel_bindings=cb)

    def _errors(self) -> tuple[type[Exception], ...]:
        """The library exceptions that mean "Kerberos said no" (reported as results, not raised)."""
        if self._sspi:
            import spnego.exceptions

            return (spnego.exceptions.SpnegoError,)
        import gssapi

        return (gssapi.exceptions.GSSError,)

    # --- the port -------------------------------------------------------------------------------------
    def service_ticket(self, spn: str) -> TicketResult:
        try:
            token = _bounded(lambda: self._context_for(spn, self._creds(), spnego=False).step(), self.timeout,
                             f"ticket for {spn}")
        except self._errors() as exc:
            return TicketResult(spn, False, error=_describe_gss(exc))
        enctype, kvno = ticket_info(token or b"")
        return TicketResult(spn, True, enctype=enctype, kvno=kvno)

    def probe_server(self, server: ExchangeServer, namespace: str,
                     paths: tuple[ClientPath, ...] | None = None) -> ProbeResult:
        spn = f"HTTP/{namespace}"
        if paths is None:
            paths = (client_path("autodiscover"),) if namespace.lower().startswith("autodiscover.") else tuple(
                p for p in CLIENT_PATHS if p.key != "autodiscover")
        try:
            creds = _bounded(self._creds, self.timeout, "credentials")
            first = _bounded(lambda: self._context_for(spn, creds, spnego=True).step(), self.timeout,
                             f"ticket for {spn}")
        except self._errors() as exc:
            return ProbeResult(server.name, spn, ProbeOutcome.NTLM_FALLBACK,
                               f"no Kerberos ticket ({_describe_gss(exc)}); a client falls back to NTLM", at=_now())
        enctype, kvno = ticket_info(first or b"")
        results: list[PathResult] = []
        client: str | None = None
        for path in paths:
            result, seen = self._present_path(server, namespace, spn, path, creds)
            results.append(result)
            client = client or seen
        _binding_by_elimination(results)
        outcome = overall_outcome([r.outcome for r in results])
        worst = next((r for r in results if r.outcome == outcome), None)
        detail = "Kerberos (mutual authentication)" if outcome == ProbeOutcome.ACCEPTED else (
            f"{worst.path.title}: {worst.detail}" if worst is not None else "")
        return ProbeResult(server.name, spn, outcome, detail, enctype=enctype,
                           client=client if outcome == ProbeOutcome.ACCEPTED else None, at=_now(), paths=results,
                           kvno=kvno)

    def _target(self, server: ExchangeServer) -> tuple[str, str, int]:
        target = self.addresses.get(server.name.lower()) or f"{server.fqdn or server.name}:{443 if self.tls else 80}"
        host, _, port = target.rpartition(":")
        return target, host, int(port)

    def _present_path(self, server: ExchangeServer, namespace: str, spn: str, path: ClientPath,
                      creds) -> tuple[PathResult, str | None]:
        """One path: the token bound to this TLS connection; if refused, once more unbound."""
        answer, outcome, detail, seen = self._attempt(server, namespace, spn, path, creds, bind=self.tls)
        if answer is None:
            return PathResult(path, outcome, detail), None
        if outcome == ProbeOutcome.ACCEPTED:
            return PathResult(path, outcome, detail, status=answer.status, channel_bound=self.tls), seen
        if outcome == ProbeOutcome.REJECTED and self.tls and answer.status == 401 and "mutual" not in detail \
                and not _krb_error_in(answer):
            again, outcome2, detail2, seen2 = self._attempt(server, namespace, spn, path, creds, bind=False)
            if again is not None and outcome2 == ProbeOutcome.ACCEPTED:
                return PathResult(path, ProbeOutcome.CHANNEL_BINDING,
                                  "refused with the channel binding of the probe's TLS connection, accepted without "
                                  f"one ({detail2}): the server checks another TLS connection", status=401), seen2
        return PathResult(path, outcome, detail, status=answer.status), None

    def _attempt(self, server: ExchangeServer, namespace: str, spn: str, path: ClientPath, creds, bind: bool):
        target, host, port = self._target(server)
        conn: http.client.HTTPConnection
        if self.tls:
            conn = _PinnedHTTPSConnection(host, port, namespace, self._context, self.timeout)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            try:
                bindings = None
                if isinstance(conn, _PinnedHTTPSConnection):
                    der = conn.peer_certificate()
                    bindings = tls_server_end_point(der) if bind and der else None
                ctx = _bounded(lambda: self._context_for(spn, creds, spnego=True, bindings=bindings), self.timeout,
                               "context")
                token = _bounded(ctx.step, self.timeout, f"ticket for {spn}")
                answer = _send(conn, path.method, path.path, namespace, token)
            except ssl.SSLCertVerificationError as exc:
                return None, ProbeOutcome.ERROR, f"TLS certificate not valid for {namespace}: {exc.verify_message}", None
            except self._errors() as exc:
                return None, ProbeOutcome.NTLM_FALLBACK, f"no Kerberos ticket ({_describe_gss(exc)})", None
            except (OSError, http.client.HTTPException) as exc:
                return None, ProbeOutcome.UNREACHABLE, f"{target}: {exc}", None
        finally:
            conn.close()
        outcome, detail = classify(answer, lambda t: ctx.step(t))
        seen = answer.body.removeprefix("accepted: ").strip() if answer.body.startswith("accepted: ") else None
        return answer, outcome, detail, seen
    def s4u(self, service_account: str, user: str, spn: str, server: ExchangeServer) -> ProbeResult:
        if self._sspi:
            return ProbeResult(server.name, spn, ProbeOutcome.ERROR,
                               "S4U needs python-gssapi: run the gateway proof from Linux", at=_now())
        import gssapi

        if self._seg_keytab is None and self._seg_password is None:
            return ProbeResult(server.name, spn, ProbeOutcome.ERROR,
                               f"no keytab or password for {service_account}: S4U needs the gateway's credentials",
                               at=_now())
        cache = self._kinit(service_account, self._seg_password, self._seg_keytab)
        target_user = user if "@" in user else f"{user}@{self.realm}"

        def delegate():
            svc = gssapi.Credentials(usage="initiate", store={"ccache": cache})
            imp = svc.impersonate(gssapi.Name(target_user, gssapi.NameType.kerberos_principal), usage="initiate")
            ctx = self._context_for(spn, imp, spnego=False)  # MIT's SPNEGO cannot use impersonated creds
            return ctx, ctx.step()

        try:
            ctx, token = _bounded(delegate, self.timeout, f"S4U for {target_user}")
        except gssapi.exceptions.GSSError as exc:
            return ProbeResult(server.name, spn, ProbeOutcome.KDC_REFUSED, _describe_gss(exc), client=target_user,
                               at=_now())
        return self._present(server, spn.split("/", 1)[1], spn, "/Microsoft-Server-ActiveSync", ctx, token,
                             client=target_user)

    def _present(self, server: ExchangeServer, namespace: str, spn: str, path: str, ctx, token: bytes,
                 client: str | None) -> ProbeResult:
        """The gateway's S4U ticket on one path (bound to the TLS connection like the gateway's own)."""
        enctype, kvno = ticket_info(token)
        target, host, port = self._target(server)
        if self.tls:
            conn: http.client.HTTPConnection = _PinnedHTTPSConnection(host, port, namespace, self._context,
                                                                      self.timeout)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            answer = _send(conn, "OPTIONS" if "ActiveSync" in path else "POST", path, namespace, token)
        except ssl.SSLCertVerificationError as exc:
            return ProbeResult(server.name, spn, ProbeOutcome.ERROR,
                               f"TLS certificate not valid for {namespace}: {exc.verify_message}", at=_now())
        except (OSError, http.client.HTTPException) as exc:
            return ProbeResult(server.name, spn, ProbeOutcome.UNREACHABLE, f"{target}: {exc}", at=_now())
        finally:
            conn.close()
        outcome, detail = classify(answer, lambda t: ctx.step(t))
        if outcome == ProbeOutcome.ACCEPTED and client is None and answer.body.startswith("accepted: "):
            client = answer.body.removeprefix("accepted: ").strip() or None
        return ProbeResult(server.name, spn, outcome, detail, enctype=enctype, client=client, at=_now(), kvno=kvno)

    def close(self) -> None:
        """Forget the private caches this probe made (their tickets go with them)."""
        import krb5

        with self._lock:
            names, self._own_ccaches = self._own_ccaches, []
        ctx = krb5.init_context()
        for name in names:
            try:
                krb5.cc_destroy(ctx, krb5.cc_resolve(ctx, name.encode()))
            except krb5.Krb5Error:
                continue


def _krb_error_in(answer: HttpAnswer) -> bool:
    for ch in answer.challenges:
        scheme, _, rest = ch.strip().partition(" ")
        if scheme.lower() == "negotiate" and rest.strip():
            try:
                if krb_error(base64.b64decode(rest.strip())):
                    return True
            except ValueError:
                continue
    return False


def _binding_by_elimination(results: list[PathResult]) -> None:
    """A Require path refuses an unbound token too, so the retry cannot tell a binding from a key problem there.
    When another path of the same server accepted the same ticket, the key is right: a bare 401 on a path is
    then the channel binding."""
    accepted = [r for r in results if r.outcome in (ProbeOutcome.ACCEPTED, ProbeOutcome.CHANNEL_BINDING)]
    if not accepted:
        return
    for r in results:
        if r.outcome == ProbeOutcome.REJECTED and r.status == 401 and r.detail.startswith("KRB_AP_ERR_MODIFIED: the "
                                                                                           "server refused"):
            r.outcome = ProbeOutcome.CHANNEL_BINDING
            r.detail = (f"refused with and without the probe's channel binding while {accepted[0].path.title} "
                        "accepted the same ticket: Extended Protection Require checks another TLS connection's "
                        f"binding ({r.detail})")


def _now() -> datetime:
    return datetime.now(timezone.utc)

