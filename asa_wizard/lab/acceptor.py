"""A small HTTPS endpoint that does what IIS does with `Authorization: Negotiate`: one per simulated Exchange
server, on loopback, each with the keytab of the credential that server holds, its per-namespace
certificates (chosen by the TLS server name, SNI) and Extended Protection per path.

- no Authorization header: 401 with `WWW-Authenticate: Negotiate`;
- a token the keytab can decrypt and Extended Protection lets through: 200, the body names the client
  principal, and the reply token (mutual authentication) in `WWW-Authenticate: Negotiate <token>`;
- otherwise: 401 with `WWW-Authenticate: Negotiate` and the reason in the body (MIT says "... integrity check
  failed" where Windows logs KRB_AP_ERR_MODIFIED; a binding of another TLS connection is GSS_S_BAD_BINDINGS).

Extended Protection per path (`extended_protection`: IIS location -> None | Allow | Require, the rules of
`asa_wizard.lab.extended_protection`): with Allow or Require the acceptor hands GSSAPI the channel binding of
the TLS connection it terminated itself (`tls-server-end-point`, the hash of the certificate it presented on
that connection). MIT Kerberos then refuses a token bound to another connection (GSS_S_BAD_BINDINGS) but
accepts a token that carries no binding at all; it reports a matching binding with GSS_C_CHANNEL_BOUND_FLAG
(MIT krb5 1.19 and later) in the context's returned flags. Require is therefore enforced here by checking that
flag: no flag, no access. None passes no binding, so GSSAPI ignores whatever the client sent.

Several acceptors with different keytabs live in one process: each acquires its acceptor credentials with
the credential store (`store={'keytab': ...}`), never through the process-wide KRB5_KTNAME.

`TlsTerminatingProxy` is a load balancer that ends the client's TLS with its own certificate and opens a new
TLS connection to the server: what SSL offloading/bridging with another certificate does to the binding.
"""

from __future__ import annotations

import base64
import select
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..adapters.kerberos import krb_error, tls_server_end_point
from .extended_protection import location_for_path, setting_for_path

Certificate = tuple[Path, Path]  # (certificate PEM, key PEM)


def _der(cert_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(Path(cert_file).read_text())


class _TlsServer(ThreadingHTTPServer):
    """HTTPS: the certificate is chosen by SNI; the handshake runs in the request's own thread."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, certificates: dict[str, Certificate]) -> None:
        super().__init__(address, handler)
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.bindings: dict[int, bytes] = {}  # id(context) -> channel binding of the certificate it presents
        for name, (cert, key) in certificates.items():
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert), str(key))
            self.contexts[name.lower()] = ctx
            self.bindings[id(ctx)] = tls_server_end_point(_der(cert))
        self.default = next(iter(self.contexts.values()))
        self.default.sni_callback = self._sni

    def _sni(self, sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        ctx = self.contexts.get((server_name or "").lower())
        if ctx is not None:
            sock.context = ctx

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, addr = super().get_request()
        return self.default.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate (or went away): nothing to answer
        super().finish_request(request, client_address)


def acceptor_context(keytab: Path, channel_bindings: object = None):  # type: ignore[no-untyped-def]
    """A GSSAPI acceptor context whose key comes from `keytab` through the credential store (never the
    process-wide KRB5_KTNAME, so acceptors with different keys live in one process)."""
    import gssapi

    creds = gssapi.Credentials(usage="accept", store={"keytab": f"FILE:{keytab}"})
    return gssapi.SecurityContext(creds=creds, usage="accept", channel_bindings=channel_bindings)


class LoopbackServer:
    """An HTTP server on loopback that serves from its own thread: `with X(...) as x:` then `x.address`. The
    subclass sets `_server` and `_thread_name`."""

    _server: ThreadingHTTPServer
    _thread_name = "lab-http"
    _thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self):  # type: ignore[no-untyped-def]
        self._thread = threading.Thread(target=self._server.serve_forever, name=self._thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NegotiateAcceptor(LoopbackServer):
    """`with NegotiateAcceptor(keytab, name="EX01", certificates={"mail.contoso.lab": (cert, key)}) as a:` then
    send requests to `a.address`. Without `certificates` it speaks plain HTTP (only for the test that shows
    the probe refuses HTTP unless asked)."""

    def __init__(self, keytab: str | Path | None, name: str = "server", host: str = "127.0.0.1", *,
                 certificates: dict[str, Certificate] | None = None,
                 extended_protection: dict[str, str] | None = None) -> None:
        self.keytab = Path(keytab) if keytab else None  # None: a server that holds no credential at all
        self.name = name
        self.extended_protection = dict(extended_protection or {})  # IIS location -> tokenChecking
        self.accepted: list[str] = []  # client principals, in order
        self.rejected: list[str] = []  # reasons, in order
        self.seen: list[tuple[str, str, str]] = []  # (method, path, "accepted"|"rejected") per request
        acceptor = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                acceptor._handle(self)

            do_POST = do_OPTIONS = do_RPC_IN_DATA = do_GET

            def log_message(self, *args: object) -> None:  # quiet: tests read the lists above
                return

        if certificates:
            self._server = _TlsServer((host, 0), Handler, certificates)
        else:
            self._server = ThreadingHTTPServer((host, 0), Handler)
            self._server.daemon_threads = True
        self._thread_name = f"acceptor-{name}"

    @property
    def tls(self) -> bool:
        return isinstance(self._server, _TlsServer)

    # --- one request ----------------------------------------------------------------------------------
    def _binding(self, h: BaseHTTPRequestHandler) -> bytes | None:
        """The channel binding of the TLS connection this request came on (the certificate we presented)."""
        conn = h.connection
        if isinstance(self._server, _TlsServer) and isinstance(conn, ssl.SSLSocket):
            return self._server.bindings.get(id(conn.context))
        return None

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
        setting = setting_for_path(self.extended_protection, h.path)
        ok, text, out = self._accept(token, setting, self._binding(h))
        challenge = "Negotiate " + base64.b64encode(out).decode() if out else "Negotiate"
        self.seen.append((h.command, h.path, "accepted" if ok else "rejected"))
        if ok:
            self.accepted.append(text)
            return self._reply(h, 200, f"accepted: {text}", challenge=challenge)
        self.rejected.append(text)
        where = location_for_path(h.path)
        return self._reply(h, 401, f"rejected on {where} (Extended Protection {setting}): {text}",
                           challenge=challenge)

    def _accept(self, token: bytes, setting: str, binding: bytes | None) -> tuple[bool, str, bytes | None]:
        import gssapi
        import gssapi.raw

        if self.keytab is None:
            return False, "no credential: this server holds no key for the service", None
        out: bytes | None = None
        cb = gssapi.raw.ChannelBindings(application_data=binding) if setting != "None" and binding else None
        try:
            ctx = acceptor_context(self.keytab, cb)
            out = ctx.step(token)
            # python-gssapi hands back an error token (KRB-ERROR) first and raises on the next access
            if not ctx.complete:
                return False, "the Kerberos exchange did not complete", out
            bound = bool(ctx.actual_flags & gssapi.RequirementFlag.channel_bound)
            if setting == "Require" and not bound:
                return False, "Extended Protection requires a channel binding; the token carried none", None
            return True, str(ctx.initiator_name), out
        except gssapi.exceptions.BadChannelBindingsError as exc:
            text = " ".join(str(exc).split())
            return False, f"GSS_S_BAD_BINDINGS: the token is bound to another TLS connection ({text})", None
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


class TlsTerminatingProxy:
    """A load balancer that ends the client's TLS with its own certificate and relays the bytes over a new TLS
    connection to `upstream` (validated against `ca_file` for `upstream_name`)."""

    def __init__(self, upstream: tuple[str, int], upstream_name: str, certificate: Certificate, ca_file: Path,
                 host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.upstream_name = upstream_name
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_ctx.load_cert_chain(str(certificate[0]), str(certificate[1]))
        self._client_ctx = ssl.create_default_context(cafile=str(ca_file))
        self._listener = socket.create_server((host, 0))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def __enter__(self) -> "TlsTerminatingProxy":
        self._thread = threading.Thread(target=self._serve, name="tls-proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        except OSError:
            pass
        self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(sock,), daemon=True).start()

    def _relay(self, raw: socket.socket) -> None:
        try:
            front = self._server_ctx.wrap_socket(raw, server_side=True)
            back = self._client_ctx.wrap_socket(socket.create_connection(self.upstream, timeout=10),
                                                server_hostname=self.upstream_name)
        except (ssl.SSLError, OSError):
            raw.close()
            return

        # One thread relays both directions: an SSL socket must not be read in one thread while another writes
        # to it (OpenSSL objects are not safe for that; the peer then sees a TLS "internal error" alert).
        peer = {front: back, back: front}
        try:
            for s in peer:
                s.setblocking(False)
            while not self._stop.is_set():
                ready = [s for s in peer if s.pending()]
                if not ready:
                    ready = select.select(list(peer), [], [], 0.5)[0]
                for src in ready:
                    try:
                        data = src.recv(65536)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        continue  # a TLS record without application data (a session ticket) or not whole yet
                    if not data:
                        return
                    _send_all(peer[src], data)
        except OSError:
            pass
        finally:
            for s in (front, back):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def _send_all(sock: ssl.SSLSocket, data: bytes) -> None:
    """sendall for a non-blocking SSL socket: wait until it can take more."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            select.select([], [sock], [], 1.0)
