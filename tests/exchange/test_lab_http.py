"""The lab's HTTPS listener reads request headers itself (not through http.server's e-mail parser): what a
client sends and gets back must not change. Raw HTTP over TLS against the listener, as any client would."""

from __future__ import annotations

import base64
import socket
import ssl

import pytest

from asa_wizard.lab.scenario import find_scenario, load_scenario

SHELL_CREATE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>'
    "<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action>"
    "<a:MessageID>uuid:11111111-2222-3333-4444-555555555555</a:MessageID>"
    "<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"
    "</s:Header><s:Body/></s:Envelope>")


@pytest.fixture
def listener(world_of):
    w = world_of(load_scenario(find_scenario("healthy")))
    endpoint = w.start_endpoint()
    user, password = w.exchange.current_credentials()
    context = ssl.create_default_context(cafile=endpoint.ca_file)
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return endpoint.address, context, auth


def _connect(listener):
    (host, port), context, _ = listener
    raw = socket.create_connection((host, port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def _answer(sock) -> tuple[str, dict[str, str], bytes]:
    """One HTTP answer: status line, headers (lower-case names), body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        body += sock.recv(65536)
    return lines[0], headers, body


def _closed(sock) -> bool:
    try:
        return sock.recv(1) == b""
    except (ssl.SSLError, OSError):
        return True


def _post(path: str, body: str, headers: list[tuple[str, str]], version: str = "HTTP/1.1") -> bytes:
    data = body.encode()
    lines = [f"POST {path} {version}", *(f"{k}: {v}" for k, v in headers), f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def test_header_names_in_any_case_and_two_requests_on_one_connection(listener):
    _, _, auth = listener
    with _connect(listener) as sock:
        sock.sendall(_post("/wsman/ex01.contoso.com", SHELL_CREATE, [("host", "localhost"), ("AUTHORIZATION", auth),
                                                                     ("content-type", "application/soap+xml")]))
        status, headers, body = _answer(sock)
        assert status == "HTTP/1.1 200 OK"
        assert headers["content-type"] == "application/soap+xml;charset=UTF-8"
        assert b"<rsp:ShellId>" in body and b"uuid:11111111-2222-3333-4444-555555555555" in body
        # the connection stays open (HTTP/1.1 keep-alive): a second request on it is answered
        sock.sendall(_post("/wsman/ex01.contoso.com", SHELL_CREATE, [("Host", "localhost")]))
        status, headers, _ = _answer(sock)
        assert status == "HTTP/1.1 401 Unauthorized" and headers["www-authenticate"] == 'Basic realm="WSMAN"'


def test_connection_close_and_http_1_0_end_the_connection_after_the_answer(listener):
    _, _, auth = listener
    for version, extra in (("HTTP/1.1", [("Connection", "close")]), ("HTTP/1.0", [])):
        with _connect(listener) as sock:
            sock.sendall(_post("/wsman/ex01.contoso.com", SHELL_CREATE,
                               [("Host", "localhost"), ("Authorization", auth), *extra], version))
            status, _, body = _answer(sock)
            assert status.endswith("200 OK") and b"<rsp:ShellId>" in body
            assert _closed(sock)


def test_an_unknown_server_is_404_and_a_bad_request_line_is_400(listener):
    _, _, auth = listener
    with _connect(listener) as sock:
        sock.sendall(_post("/wsman/nosuch.contoso.com", SHELL_CREATE, [("Host", "x"), ("Authorization", auth)]))
        assert _answer(sock)[0] == "HTTP/1.1 404 Not Found"
    with _connect(listener) as sock:
        # not a request line a WS-Management client sends: http.server's own parser answers it, as before (a
        # request it cannot give a version gets the bare HTML error page), and closes the connection
        sock.sendall(b"POST /wsman/ex01.contoso.com HTTP/9.z\r\nHost: x\r\n\r\n")
        everything = b""
        while chunk := sock.recv(65536):
            everything += chunk
        assert b"Error code: 400" in everything and b"Bad request version ('HTTP/9.z')" in everything


def test_more_than_a_hundred_headers_or_an_overlong_header_line_is_refused_with_431(listener):
    _, _, auth = listener
    for headers in ([(f"X-Filler-{i}", "x") for i in range(101)], [("X-Long", "x" * 70000)]):
        with _connect(listener) as sock:
            sock.sendall(_post("/wsman/ex01.contoso.com", SHELL_CREATE, [("Authorization", auth), *headers]))
            status, _, _ = _answer(sock)
            assert status.startswith("HTTP/1.1 431 ")
