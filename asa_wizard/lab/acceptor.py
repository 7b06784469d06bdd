"""A small HTTP endpoint that does what IIS does with `Authorization: Negotiate`: one per simulated Exchange
server, on loopback, each with the keytab of the credential that server holds.

- no Authorization header: 401 with `WWW-Authenticate: Negotiate`;
- a token the keytab can decrypt: 200, the body names the client principal, and the reply token (mutual
  authentication) in `WWW-Authenticate: Negotiate <token>`;
- a token it cannot decrypt: 401 with `WWW-Authenticate: Negotiate` and the GSS error text in the body
  (MIT says "... integrity check failed"; Windows logs KRB_AP_ERR_MODIFIED for the same thing).

Several acceptors with different keytabs live in one process: each acquires its acceptor credentials with
the credential store (`store={'keytab': ...}`), never through the process-wide KRB5_KTNAME.
"""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..adapters.kerberos import krb_error


class NegotiateAcceptor:
    """`with NegotiateAcceptor(keytab, name="EX01") as a:` then send requests to `a.address`."""

    def __init__(self, keytab: str | Path | None, name: str = "server", host: str = "127.0.0.1") -> None:
        self.keytab = Path(keytab) if keytab else None  # None: a server that holds no credential at all
        self.name = name
        self.accepted: list[str] = []  # client principals, in order
        self.rejected: list[str] = []  # GSS error texts, in order
        acceptor = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                acceptor._handle(self)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:  # quiet: tests read the lists above
                return

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> "NegotiateAcceptor":
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"acceptor-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "NegotiateAcceptor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- one request ----------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        auth = h.headers.get("Authorization", "")
        if not auth.lower().startswith("negotiate "):
            return self._reply(h, 401, "authentication required", challenge="Negotiate")
        try:
            token = base64.b64decode(auth.split(None, 1)[1], validate=True)
        except (ValueError, IndexError):
            return self._reply(h, 400, "malformed Negotiate token")
        ok, text, out = self._accept(token)
        challenge = "Negotiate " + base64.b64encode(out).decode() if out else "Negotiate"
        if ok:
            self.accepted.append(text)
            return self._reply(h, 200, f"accepted: {text}", challenge=challenge)
        self.rejected.append(text)
        return self._reply(h, 401, f"rejected: {text}", challenge=challenge)

    def _accept(self, token: bytes) -> tuple[bool, str, bytes | None]:
        import gssapi

        if self.keytab is None:
            return False, "no credential: this server holds no key for the service", None
        out: bytes | None = None
        try:
            creds = gssapi.Credentials(usage="accept", store={"keytab": f"FILE:{self.keytab}"})
            ctx = gssapi.SecurityContext(creds=creds, usage="accept")
            out = ctx.step(token)
            # python-gssapi hands back an error token (KRB-ERROR) first and raises on the next access
            if not ctx.complete:
                return False, "the Kerberos exchange did not complete", out
            return True, str(ctx.initiator_name), out
        except gssapi.exceptions.GSSError as exc:
            text = " ".join(str(exc).split())
            name = krb_error(out or b"")
            return False, f"{name}: {text}" if name else text, out

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, body: str, challenge: str | None = None) -> None:
        data = body.encode()
        h.send_response(status)
        if challenge:
            h.send_header("WWW-Authenticate", challenge)
        h.send_header("Content-Type", "text/plain; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
