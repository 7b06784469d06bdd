"""The lab's WS-Management endpoint: what pywinrm talks to when the wizard runs on the training lab.

HTTPS on 127.0.0.1 (ephemeral port) with a certificate from a lab CA made at start, HTTP Basic with the
scenario's lab admin credential, one URL per Exchange server (`/wsman/<server>`). It implements the WinRS
cmd shell as Windows does for `powershell -encodedcommand`: Create (ShellId), Command (CommandId), Receive
(long-polls up to the client's OperationTimeout, then the 2150858793 fault pywinrm expects), Signal,
Delete. The script is handed to `LabExchange.run`; a server whose fault is "unreachable" gets a URL on a
port that is bound but not listening, so connections are refused as by a host without WinRM.

The same listener serves each server's Exchange remote PowerShell endpoint at `/PowerShell/<server>`
(`asa_wizard.lab.psrp_endpoint`, configuration Microsoft.Exchange, reached with `ExchangeRps`). As on a real
server, the WinRM listener (`/wsman`) does not host Microsoft.Exchange: a Create for it gets the "resource URI
... was not found in the WS-Management catalog" fault.
"""

from __future__ import annotations

import base64
import hmac
import re
import socket
import ssl
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from ..core.secrets import Secret
from .psrp_endpoint import (EXCHANGE_URI, FAULT_NOT_IN_CATALOG, FAULT_TIMEOUT, NS, SHELL, TRANSFER, LabPsrpEndpoint,
                            envelope, fault_envelope, not_in_catalog, operation_timeout, shell_id)
from .tlsutil import LabTls, make_lab_tls, remove_lab_tls

if TYPE_CHECKING:
    from ..adapters.psrp import ExchangeRps, RpsSettings
    from ..adapters.winrm import WinRmExchange
    from .exchange import Answer, LabExchange

ENCODED = re.compile(r"^powershell(?:\.exe)?(?:\s+-(?:NoProfile|NonInteractive|NoLogo))*\s+-(?:e|ec|enc|encodedcommand)\s+(\S+)\s*$",
                     re.I)
MAX_COMMAND_LINE = 8191  # cmd.exe
# An idle keep-alive connection ends after this, as IIS ends it (its sites' connectionTimeout, 2 minutes by default):
# a run keeps each server's connection from the pre-flight to the push, which at hundreds of servers takes
# longer than a shorter limit. A client that closes its sessions ends the connection's thread at once.
POWERSHELL_PATH = re.compile(r"/powershell/([^/?]+)/?(?:\?.*)?", re.I)  # a server's Exchange endpoint
SOCKET_TIMEOUT = 120.0
LISTEN_BACKLOG = 128  # HTTP.sys does not refuse a burst of new connections; socketserver's default is 5
MAX_HEADER_LINE = 65536  # http.client's limits, which http.server applies
MAX_HEADERS = 100
POLL_SECONDS = 0.02  # how often the accept loop looks for `stop`: what closing the lab waits, at most


@dataclass
class _Command:
    shell: str = ""  # the WinRS shell it runs in: deleting the shell ends it (MS-WSMV 3.1.4.4.1)
    done: threading.Event = field(default_factory=threading.Event)
    answer: "Answer | None" = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, endpoint: "LabWsmanServer", context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.endpoint = endpoint
        self.context = context

    def finish_request(self, request, client_address) -> None:  # type: ignore[override]
        """The TLS handshake happens here, in the connection's own thread, never in the accept loop."""
        request.settimeout(SOCKET_TIMEOUT)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class LabWsmanServer:
    """One endpoint for every server of the lab organisation."""

    def __init__(self, exchange: "LabExchange") -> None:
        self.exchange = exchange
        self.command_lines: list[tuple[str, str]] = []  # (server, command line) exactly as received
        self.actions: list[tuple[str, str]] = []  # (server, the WS-Management action's last part) of each request
        self._commands: dict[str, _Command] = {}
        self._shells: set[str] = set()  # the WinRS shells created and not yet deleted
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closed_port: socket.socket | None = None
        self._tls: LabTls | None = None
        self.psrp = LabPsrpEndpoint(exchange)  # /PowerShell/<server>

    def open_shells(self) -> int:
        """WinRS shells created on `/wsman` and not deleted (the Exchange endpoint's are `psrp.open_shells()`)."""
        with self._lock:
            return len(self._shells)

    def open_commands(self) -> int:
        """Commands neither ended by a Signal nor by deleting their shell."""
        with self._lock:
            return len(self._commands)

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> "LabWsmanServer":
        if self._httpd is not None:
            return self
        self._tls = make_lab_tls()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self._tls.cert_file), str(self._tls.key_file))
        self._httpd = _Server(self, context)
        # Bound but never listening: a connection attempt is refused, like a host where WinRM is off.
        self._closed_port = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._closed_port.bind(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                                        name="lab-wsman", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.psrp.close_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._closed_port is not None:
            self._closed_port.close()
            self._closed_port = None
        if self._tls is not None:
            remove_lab_tls(self._tls)
            self._tls = None

    @property
    def ca_file(self) -> str:
        if self._tls is None:
            raise RuntimeError("the lab endpoint is not started")
        return str(self._tls.ca_file)

    @property
    def address(self) -> tuple[str, int]:
        if self._httpd is None:
            raise RuntimeError("the lab endpoint is not started")
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def url_for(self, server: str) -> str:
        """The WS-Management URL of one lab server (unreachable ones get the refusing port)."""
        host, port = self.address
        fault, _ = self.exchange.fault(server)
        if fault == "unreachable" and self._closed_port is not None:
            port = self._closed_port.getsockname()[1]
        return f"https://{host}:{port}/wsman/{quote(server.lower(), safe='')}"

    def rps_target(self, server: str) -> tuple[str, int, str]:
        """(host, port, path) of one lab server's Exchange remote PowerShell endpoint (`RpsSettings.host_override`)."""
        host, port = self.address
        fault, _ = self.exchange.fault(server)
        if fault == "unreachable" and self._closed_port is not None:
            port = self._closed_port.getsockname()[1]
        return host, port, f"PowerShell/{quote(server.lower(), safe='')}"

    def rps_settings(self, user: str | None = None, password: str | None = None) -> "RpsSettings":
        """Settings for `ExchangeRps` against this endpoint: Basic over HTTPS with the lab CA, as the lab admin
        unless another lab logon is given. (The lab has no KDC, so not Kerberos over HTTP as on real servers.)"""
        from ..adapters.psrp import RpsSettings

        if user is None:
            user, password = self.exchange.current_credentials()
        return RpsSettings(scheme="https", port=self.address[1], auth="basic", user=user,
                           password=Secret(password or ""), ca_file=self.ca_file, host_override=self.rps_target)

    def rps(self, user: str | None = None, password: str | None = None) -> "ExchangeRps":
        """The real remote PowerShell client, configured for this endpoint."""
        from ..adapters.psrp import ExchangeRps

        return ExchangeRps(self.rps_settings(user, password))

    def port(self) -> "WinRmExchange":
        """The real adapter, configured for this endpoint (Basic over HTTPS, the lab CA, the lab admin)."""
        from ..adapters.winrm import WinRmExchange, WinRmSettings

        user, password = self.exchange.current_credentials()  # not a copy of the whole organisation
        settings = WinRmSettings(transport="basic", user=user,
                                 password=Secret(password), ca_file=self.ca_file,
                                 url_override=self.url_for, label=f"lab WS-Management on 127.0.0.1:{self.address[1]}")
        return WinRmExchange(settings)

    # --- requests -----------------------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        s = self.exchange.current_credentials()
        expected = "Basic " + base64.b64encode(f"{s[0]}:{s[1]}".encode()).decode()
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())

    def dispatch(self, server: str, data: bytes) -> tuple[int, str]:
        root = ET.fromstring(data)
        action = root.findtext("s:Header/a:Action", "", NS)
        mid = root.findtext("s:Header/a:MessageID", "", NS)
        body = root.find("s:Body", NS)
        with self._lock:
            self.actions.append((server, action.rsplit("/", 1)[-1]))
        if action == TRANSFER + "Create":
            uri = root.findtext("s:Header/w:ResourceURI", "", NS)
            if uri == EXCHANGE_URI:  # Exchange's configuration lives in IIS (/PowerShell), not in WinRM's catalog
                return self._fault(mid, not_in_catalog(uri), FAULT_NOT_IN_CATALOG)
            if uri != SHELL + "cmd":
                return self._fault(mid, "The WS-Management service does not support the specified resource.",
                                   2150858811)
            sid = str(uuid.uuid4()).upper()
            with self._lock:
                self._shells.add(sid)
            out = (f"<x:ResourceCreated><a:Address>https://{server}/wsman</a:Address><a:ReferenceParameters>"
                   f"<w:ResourceURI>{SHELL}cmd</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">{sid}"
                   f"</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
                   f"<rsp:Shell><rsp:ShellId>{sid}</rsp:ShellId><rsp:ResourceUri>{SHELL}cmd</rsp:ResourceUri>"
                   "</rsp:Shell>")
        elif action == SHELL + "Command" and body is not None:
            cmdline = (body.findtext("rsp:CommandLine/rsp:Command", "", NS) + " "
                       + body.findtext("rsp:CommandLine/rsp:Arguments", "", NS)).strip()
            cid = str(uuid.uuid4()).upper()
            cmd = _Command(shell=shell_id(root))
            with self._lock:
                self.command_lines.append((server, cmdline))
                self._commands[cid] = cmd
            threading.Thread(target=self._execute, args=(server, cmdline, cmd), name=f"lab-ps-{server}",
                             daemon=True).start()
            out = f"<rsp:CommandResponse><rsp:CommandId>{cid}</rsp:CommandId></rsp:CommandResponse>"
        elif action == SHELL + "Receive" and body is not None:
            desired = body.find("rsp:Receive/rsp:DesiredStream", NS)
            cid = desired.get("CommandId", "") if desired is not None else ""
            with self._lock:
                cmd = self._commands.get(cid)
            if cmd is None:
                return self._fault(mid, f"The request for the Windows Remote Shell with CommandId {cid} failed "
                                        "because the command was not found.")
            if not cmd.done.wait(operation_timeout(root)):
                return self._fault(mid, "The WS-Management service cannot complete the operation within the time "
                                        "specified in OperationTimeout.", FAULT_TIMEOUT)
            out = _receive_response(cid, cmd.answer)
        elif action == SHELL + "Signal" and body is not None:
            signal = body.find("rsp:Signal", NS)
            with self._lock:
                self._commands.pop(signal.get("CommandId", "") if signal is not None else "", None)
            out = "<rsp:SignalResponse/>"
        elif action == TRANSFER + "Delete":
            # "Any commands in progress SHOULD be immediately terminated and all resources for the Shell SHOULD be
            # freed" (MS-WSMV 3.1.4.4.1): a finished command needs no terminate Signal before its shell's Delete
            sid = shell_id(root)
            with self._lock:
                self._shells.discard(sid)
                for cid in [c for c, cmd in self._commands.items() if cmd.shell == sid]:
                    del self._commands[cid]
            out = ""
        else:
            return self._fault(mid, f"The action {action} is not supported by the WS-Management service.",
                               2150858771)
        return 200, envelope(action + "Response", mid, out)

    def _execute(self, server: str, cmdline: str, cmd: _Command) -> None:
        from .exchange import Answer, clixml

        try:
            m = ENCODED.match(cmdline)
            if len(cmdline) > MAX_COMMAND_LINE:
                cmd.answer = Answer(stderr="The command line is too long.\r\n", exit_code=1)
            elif m:
                cmd.answer = self.exchange.run(server, base64.b64decode(m.group(1)).decode("utf-16-le"))
            else:
                first = cmdline.split()[0] if cmdline.split() else ""
                cmd.answer = Answer(stderr=f"'{first}' is not recognized as an internal or external command,\r\n"
                                           "operable program or batch file.\r\n", exit_code=1)
        except Exception as exc:  # the lab must answer, whatever happens: as a PowerShell error
            cmd.answer = Answer(stderr=clixml(f"Internal lab error: {type(exc).__name__}: {exc}"), exit_code=1)
        finally:
            cmd.done.set()

    def _fault(self, relates_to: str, reason: str, code: int = 2150858770) -> tuple[int, str]:
        return 500, fault_envelope(relates_to, reason, code)


def _receive_response(cid: str, answer: "Answer | None") -> str:
    stdout, stderr, rc = (answer.stdout, answer.stderr, answer.exit_code) if answer else ("", "", 1)
    streams = "".join(
        f'<rsp:Stream Name="{name}" CommandId="{cid}">{base64.b64encode(text.encode("utf-8")).decode()}</rsp:Stream>'
        for name, text in (("stdout", stdout), ("stderr", stderr)) if text)
    return (f'<rsp:ReceiveResponse>{streams}<rsp:Stream Name="stdout" CommandId="{cid}" End="true"/>'
            f'<rsp:Stream Name="stderr" CommandId="{cid}" End="true"/><rsp:CommandState CommandId="{cid}" '
            f'State="{SHELL}CommandState/Done"><rsp:ExitCode>{rc}</rsp:ExitCode></rsp:CommandState>'
            "</rsp:ReceiveResponse>")


class _Headers:
    """Request headers, looked up without regard to case (the first of a repeated header, as http.server's)."""

    def __init__(self) -> None:
        self._first: dict[str, str] = {}
        self._count = 0

    def add(self, name: str, value: str) -> None:
        self._first.setdefault(name.lower(), value)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each request waits for Nagle + delayed ACK (~40 ms)
    timeout = SOCKET_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def parse_request(self) -> bool:
        """http.server's parse_request for the requests a WS-Management client sends ("POST <path> HTTP/1.1"
        and its header lines), without the e-mail parser http.server reads headers with; any other request
        line goes to http.server's own parser, which answers it as before."""
        words = self.raw_requestline.split()
        if len(words) != 3 or words[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
            return super().parse_request()
        self.command = None
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.request_version = version = words[2].decode("ascii")
        self.close_connection = version != "HTTP/1.1"
        command, path = words[0].decode("iso-8859-1"), words[1].decode("iso-8859-1")
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
        self.command, self.path = command, path
        headers = _Headers()
        while True:
            line = self.rfile.readline(MAX_HEADER_LINE + 1)
            if len(line) > MAX_HEADER_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            if len(headers) >= MAX_HEADERS:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
                return False
            name, _, value = line.decode("iso-8859-1").partition(":")
            headers.add(name.strip(), value.strip())
        self.headers = headers  # type: ignore[assignment]
        conntype = headers.get("Connection", "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive":
            self.close_connection = False
        if headers.get("Expect", "").lower() == "100-continue" and version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _send(self, code: int, body: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        # end_headers() with the body in the same write: one TLS record and one segment per answer, not two
        self._headers_buffer.append(b"\r\n" + data)  # type: ignore[attr-defined]
        self.flush_headers()

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        data = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        endpoint = self.server.endpoint
        rps = POWERSHELL_PATH.fullmatch(self.path)
        if rps:
            return self._powershell(endpoint, unquote(rps.group(1)), data)
        if not endpoint.authorized(self.headers.get("Authorization")):
            return self._send(401, "", (("WWW-Authenticate", 'Basic realm="WSMAN"'),))
        m = re.fullmatch(r"/wsman/([^/?]+)", self.path)
        server = unquote(m.group(1)) if m else ""
        if not server or endpoint.exchange.server(server) is None:
            return self._send(404, "")
        try:
            code, body = endpoint.dispatch(server, data)
        except ET.ParseError:
            code, body = 400, ""
        self._send(code, body)

    def _powershell(self, endpoint: LabWsmanServer, server: str, data: bytes) -> None:
        """`/PowerShell/<server>`: the Exchange remote PowerShell endpoint of that server."""
        user = endpoint.psrp.authenticate(self.headers.get("Authorization"))
        if user is None:
            return self._send(401, "", (("WWW-Authenticate", 'Basic realm="PowerShell"'),))
        if endpoint.exchange.server(server) is None:
            return self._send(404, "")
        try:
            code, body = endpoint.psrp.dispatch(server, user, data)
        except ET.ParseError:
            code, body = 400, ""
        self._send(code, body)
