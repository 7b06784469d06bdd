"""Exchange's remote PowerShell endpoint as a real server offers it: `http://<fqdn>/PowerShell`, plain HTTP,
Kerberos only, every WS-Management body encrypted with the Kerberos session (docs/exchange.md, "The Exchange
endpoint"). A front for the lab's `/PowerShell` model (`LabPsrpEndpoint`), for tests against a real KDC (the
Samba AD DC): the embedded lab has no KDC and stays on Basic over HTTPS.

- A request without a Kerberos context on its connection gets 401 with `WWW-Authenticate: Kerberos`: Exchange's
  endpoint offers Kerberos itself, not Negotiate (found in pypsrp's history, not in Microsoft's documentation:
  pypsrp#66 reproduced an Exchange server's "Kerberos" header by turning Negotiate off on a WinRM listener,
  and pypsrp then gained the `application/HTTP-Kerberos-session-encrypted` protocol for it). NTLM is not
  offered.
- `Authorization: Kerberos <token>` (or `Negotiate <token>`) carrying a Kerberos token the keytab can decrypt:
  200 with the mutual-authentication token in `WWW-Authenticate`; the context belongs to the TCP connection, as
  a WinRM client expects (it sends the authentication on an empty request, then the encrypted messages on the
  same connection without an Authorization header). An NTLM token, or one the keytab cannot decrypt: 401.
- A message on an authenticated connection must be `multipart/encrypted` (MS-WSMV 2.2.9.1: a part naming the
  protocol and the original length, then `application/octet-stream` with a 4-byte little-endian header length,
  the GSS wrap header and the encrypted data); it is unwrapped with the connection's context, dispatched to the
  model as the logon the client principal maps to, and the answer wrapped the same way, with the boundary
  lines written `-- Encrypted Boundary` (a space after the dashes), as pypsrp's reader notes Exchange writes
  them. A plain SOAP body is refused (WinRM's `AllowUnencrypted` is false on Exchange's endpoint).

The acceptor's key comes from a keytab through GSSAPI's credential store (`acceptor.acceptor_context`).
"""

from __future__ import annotations

import base64
import re
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .acceptor import LoopbackServer, acceptor_context
from .wsman import POWERSHELL_PATH

if TYPE_CHECKING:
    from .psrp_endpoint import LabPsrpEndpoint

BOUNDARY = "Encrypted Boundary"
PROTOCOLS = ("application/HTTP-Kerberos-session-encrypted", "application/HTTP-SPNEGO-session-encrypted")
_PART = re.compile(rb"--\s*" + re.escape(BOUNDARY.encode()) + rb"(?:--)?\r\n")


def wrap(context: Any, data: bytes) -> tuple[bytes, int]:
    """GSS wrap of `data` as WinRM frames it: (4-byte header length + header + encrypted data + padding, the
    padding's length). Kerberos (MIT) through IOV buffers: header, data, padding."""
    from gssapi.raw import IOV, IOVBufferType, wrap_iov

    iov = IOV(IOVBufferType.header, data, IOVBufferType.padding, std_layout=False)
    wrap_iov(context, iov, confidential=True)
    header, encrypted, padding = (iov[0].value or b""), (iov[1].value or b""), (iov[2].value or b"")
    return struct.pack("<i", len(header)) + header + encrypted + padding, len(padding)


def unwrap(context: Any, header: bytes, data: bytes) -> bytes:
    from gssapi.raw import IOV, IOVBufferType, unwrap_iov

    iov = IOV((IOVBufferType.header, False, header), (IOVBufferType.data, False, data), IOVBufferType.data,
              std_layout=False)
    unwrap_iov(context, iov)
    return iov[1].value or b""


def encrypted_body(context: Any, message: bytes, protocol: str) -> bytes:
    """An answer as Exchange frames it: its boundary lines have a space after the dashes."""
    framed, padding = wrap(context, message)
    head = "\r\n".join([f"-- {BOUNDARY}", f"\tContent-Type: {protocol}",
                        f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(message) + padding}",
                        f"-- {BOUNDARY}", "\tContent-Type: application/octet-stream", ""])
    return head.encode() + framed + f"-- {BOUNDARY}--\r\n".encode()


def decrypted_body(context: Any, body: bytes) -> bytes:
    """The message of a `multipart/encrypted` body; ValueError when it is not framed as MS-WSMV says."""
    parts = [p for p in _PART.split(body) if p]
    if len(parts) != 2 or b"OriginalContent:" not in parts[0]:
        raise ValueError("not a multipart/encrypted WinRM message")
    length = int(re.search(rb"Length=(\d+)", parts[0]).group(1))  # type: ignore[union-attr]
    payload = parts[1]
    marker = b"\tContent-Type: application/octet-stream\r\n"
    if not payload.startswith(marker):
        raise ValueError("the encrypted part has no application/octet-stream header")
    payload = payload[len(marker):]
    size = struct.unpack("<i", payload[:4])[0]
    if not 0 < size < len(payload):
        raise ValueError("the encrypted part's header length is out of range")
    message = unwrap(context, payload[4:4 + size], payload[4 + size:])
    if len(message) != length:
        raise ValueError(f"the decrypted message has {len(message)} bytes where the header says {length}")
    return message


class KerberosPowerShell(LoopbackServer):
    """`with KerberosPowerShell(world.endpoint.psrp, keytab, {"alice@CONTOSO.LAB": "CONTOSO\\\\Administrator"}) as
    k:` then point `RpsSettings(scheme="http", auth="kerberos", host_override=k.target)` at it: each server's
    endpoint is `http://127.0.0.1:<port>/PowerShell/<server>`, and the client asks for `HTTP/<server>`."""

    def __init__(self, model: "LabPsrpEndpoint", keytab: str | Path, logons: dict[str, str],
                 host: str = "127.0.0.1") -> None:
        self.model = model
        self.keytab = Path(keytab)
        self.logons = {k.lower(): v for k, v in logons.items()}  # client principal -> the lab logon it is
        self.accepted: list[str] = []  # client principals, in order
        self.rejected: list[str] = []  # reasons, in order
        self.unencrypted = 0  # plain SOAP bodies refused on an authenticated connection
        self.bodies: list[bytes] = []  # every request body as it came over the wire (what a capture would show)
        self.protocols: list[str] = []  # the encryption protocol of each encrypted message
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            context: Any = None  # this connection's Kerberos context
            logon: str = ""

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                front._handle(self)

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread_name = "lab-rps-kerberos"

    def target(self, server: str) -> tuple[str, int, str]:
        """`RpsSettings.host_override`: (host, port, path) of one server's endpoint."""
        host, port = self.address
        return host, port, f"PowerShell/{server.lower()}"

    # --- one request ----------------------------------------------------------------------------------
    def _handle(self, h: Any) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        self.bodies.append(body)
        m = POWERSHELL_PATH.fullmatch(h.path)
        if m is None or self.model.exchange.server(unquote(m.group(1))) is None:
            return self._reply(h, 404, b"")
        server = unquote(m.group(1))
        auth = h.headers.get("Authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() not in ("negotiate", "kerberos"):
                return self._reply(h, 401, b"", challenge="Kerberos")
            return self._authenticate(h, scheme, token.strip())
        if h.context is None:
            return self._reply(h, 401, b"", challenge="Kerberos")
        kind = h.headers.get("Content-Type", "")
        protocol = next((p for p in PROTOCOLS if p.lower() in kind.lower()), None)
        if not kind.lower().startswith("multipart/encrypted") or protocol is None:
            self.unencrypted += 1
            return self._reply(h, 400, b"")
        self.protocols.append(protocol)
        try:
            message = decrypted_body(h.context, body)
        except Exception as exc:  # noqa: BLE001 - a body this connection's context cannot read
            self.rejected.append(f"cannot decrypt the message: {exc}")
            return self._reply(h, 400, b"")
        try:
            code, answer = self.model.dispatch(server, h.logon, message)
        except Exception:  # noqa: BLE001 - malformed SOAP: the model's own 400
            code, answer = 400, ""
        out = encrypted_body(h.context, answer.encode("utf-8"), protocol)
        self._reply(h, code, out,
                    content_type=f'multipart/encrypted;protocol="{protocol}";boundary="{BOUNDARY}"')

    def _authenticate(self, h: Any, scheme: str, token: str) -> None:
        import gssapi

        h.context, h.logon = None, ""
        try:
            raw = base64.b64decode(token, validate=True)
        except ValueError:
            return self._reply(h, 400, b"")
        if raw.startswith(b"NTLMSSP"):
            self.rejected.append("NTLM refused: the endpoint accepts Kerberos only")
            return self._reply(h, 401, b"", challenge="Kerberos")
        try:
            ctx = acceptor_context(self.keytab)
            out = ctx.step(raw)
            if not ctx.complete:
                self.rejected.append("the Kerberos exchange did not complete")
                return self._reply(h, 401, b"", challenge="Kerberos")
        except gssapi.exceptions.GSSError as exc:
            self.rejected.append(" ".join(str(exc).split()))
            return self._reply(h, 401, b"", challenge="Kerberos")
        principal = str(ctx.initiator_name)
        logon = self.logons.get(principal.lower())
        if logon is None:
            self.rejected.append(f"{principal} is no logon of the lab")
            return self._reply(h, 401, b"", challenge="Kerberos")
        self.accepted.append(principal)
        h.context, h.logon = ctx, logon
        challenge = f"{scheme} {base64.b64encode(out).decode()}" if out else scheme
        self._reply(h, 200, b"", challenge=challenge)

    @staticmethod
    def _reply(h: Any, status: int, body: bytes, challenge: str | None = None,
               content_type: str = "application/soap+xml;charset=UTF-8") -> None:
        h.send_response(status)
        if challenge:
            h.send_header("WWW-Authenticate", challenge)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
