"""Reading the three logs that show Kerberos failing on Exchange, from text a person points to (or the
wizard fetched over WinRM):

- IIS W3C logs (`W3SVC1\\u_ex*.log`): `401 1 2148074254` is a logon failure with SEC_E_NO_CREDENTIALS
  (0x8009030E): the server could not use the client's Kerberos ticket.
- HttpProxy logs (`Logging\\HttpProxy\\Mapi`, `...\\RpcHttp`): the `AuthenticationType` column says whether
  clients came in with Negotiate (Kerberos, or NTLM wrapped in SPNEGO), NTLM or Basic.
- The client's System event log, exported as text: Kerberos event 4, KRB_AP_ERR_MODIFIED, names the server
  account that answered and the SPN the client asked for.

Pure parsing, no IO: the callers read files.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

KINDS = ("iis", "httpproxy", "system")

# Exchange's default IIS field set (used when a fragment has no #Fields line, e.g. lines pasted from a post)
IIS_DEFAULT_FIELDS = ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
                      "cs(Referer) sc-status sc-substatus sc-win32-status time-taken").split()
SEC_E_NO_CREDENTIALS = "2148074254"  # 0x8009030E

# The leading columns of Exchange 2013-SE HttpProxy logs (the full header has about 80)
HTTPPROXY_DEFAULT_FIELDS = ("DateTime,RequestId,MajorVersion,MinorVersion,BuildVersion,RevisionVersion,"
                            "ClientRequestId,Protocol,UrlHost,UrlStem,ProtocolAction,AuthenticationType,"
                            "IsAuthenticated,AuthenticatedUser,Organization,AnchorMailbox,UserAgent,"
                            "ClientIpAddress,ServerHostName,HttpStatus").split(",")


@dataclass
class LogText:
    """A log as text, with where it came from. `kind` is one of KINDS (see `detect_kind`)."""

    kind: str
    text: str
    source: str = ""  # a file path, or "EX01 (fetched over WinRM)"
    server: str = ""  # the Exchange server it belongs to, when known

    def __post_init__(self) -> None:
        aliases = {"httpproxy-mapi": "httpproxy", "httpproxy-rpchttp": "httpproxy", "system-kerberos": "system",
                   "event": "system", "w3c": "iis"}
        self.kind = aliases.get(self.kind, self.kind)
        if self.kind not in KINDS:
            raise ValueError(f"unknown log kind {self.kind!r}: use one of {', '.join(KINDS)}")

    @property
    def label(self) -> str:
        return self.server or self.source or self.kind


def detect_kind(text: str) -> str | None:
    """Which kind of log this text is, from its header or content; None if it is none of them."""
    head = text[:20000]
    if "#Log-type: HttpProxy" in head or re.search(r"^(#Fields: )?DateTime,RequestId,", head, re.M):
        return "httpproxy"
    if re.search(r"^#Fields: date time ", head, re.M) or re.search(
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ (GET|POST|HEAD|OPTIONS|RPC_IN_DATA|RPC_OUT_DATA) ", head, re.M):
        return "iis"
    if "KRB_AP_ERR_MODIFIED" in head or re.search(r"^\s*Event ID:\s*\d+", head, re.M):
        return "system"
    return None


# --- IIS ------------------------------------------------------------------------------------------------
@dataclass
class IisSummary:
    requests: int = 0  # log lines that are requests
    failures: int = 0  # 401 1 2148074254
    clients: list[tuple[str, int]] = field(default_factory=list)  # c-ip, count (most first)
    urls: list[tuple[str, int]] = field(default_factory=list)  # cs-uri-stem, count (most first)
    first: datetime | None = None
    last: datetime | None = None


def parse_iis(text: str) -> IisSummary:
    """Count the Kerberos logon failures in an IIS W3C log, with who and what they hit, and when."""
    fields = IIS_DEFAULT_FIELDS
    out = IisSummary()
    clients: Counter[str] = Counter()
    urls: Counter[str] = Counter()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                fields = line.split(":", 1)[1].split()
            continue
        parts = line.split()
        if len(parts) != len(fields):
            continue
        row = dict(zip(fields, parts))
        out.requests += 1
        if (row.get("sc-status"), row.get("sc-substatus"), row.get("sc-win32-status")) != ("401", "1",
                                                                                           SEC_E_NO_CREDENTIALS):
            continue
        out.failures += 1
        clients[row.get("c-ip", "?")] += 1
        urls[row.get("cs-uri-stem", "?")] += 1
        when = _iis_time(row.get("date"), row.get("time"))
        if when is not None:
            out.first = when if out.first is None or when < out.first else out.first
            out.last = when if out.last is None or when > out.last else out.last
    out.clients = _ranked(clients)
    out.urls = _ranked(urls)
    return out


def _iis_time(date: str | None, time: str | None) -> datetime | None:
    if not date or not time:
        return None
    try:
        return datetime.strptime(f"{date} {time}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)  # IIS logs UTC
    except ValueError:
        return None


def _ranked(c: Counter[str]) -> list[tuple[str, int]]:
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


# --- HttpProxy ------------------------------------------------------------------------------------------
@dataclass
class HttpProxySummary:
    requests: int = 0
    by_type: dict[str, int] = field(default_factory=dict)  # AuthenticationType -> count ("" = anonymous)
    protocols: list[str] = field(default_factory=list)  # Mapi, RpcHttp, Ews ...
    first: datetime | None = None
    last: datetime | None = None

    def count(self, *types: str) -> int:
        wanted = {t.lower() for t in types}
        return sum(n for t, n in self.by_type.items() if t.lower() in wanted)

    @property
    def authenticated(self) -> int:
        return sum(n for t, n in self.by_type.items() if t)


def parse_httpproxy(text: str) -> HttpProxySummary:
    """Count requests per AuthenticationType in an HttpProxy log (CSV with a `#Fields:` header)."""
    fields = HTTPPROXY_DEFAULT_FIELDS
    out = HttpProxySummary()
    types: Counter[str] = Counter()
    protocols: set[str] = set()
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("#Fields:"):
            fields = [f.strip() for f in line.split(":", 1)[1].strip().split(",")]
        elif line.startswith("DateTime,RequestId,"):
            fields = [f.strip() for f in line.split(",")]
        elif line.strip() and not line.startswith("#"):
            body.append(line)
    index = {name: i for i, name in enumerate(fields)}
    auth_i, proto_i, time_i = index.get("AuthenticationType"), index.get("Protocol"), index.get("DateTime")
    if auth_i is None:
        return out
    for row in csv.reader(body):
        if len(row) <= auth_i:
            continue
        out.requests += 1
        types[row[auth_i].strip()] += 1
        if proto_i is not None and len(row) > proto_i and row[proto_i].strip():
            protocols.add(row[proto_i].strip())
        when = _iso_time(row[time_i]) if time_i is not None and len(row) > time_i else None
        if when is not None:
            out.first = when if out.first is None or when < out.first else out.first
            out.last = when if out.last is None or when > out.last else out.last
    out.by_type = dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0])))
    out.protocols = sorted(protocols)
    return out


def _iso_time(value: str) -> datetime | None:
    try:
        d = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


# --- System event log -----------------------------------------------------------------------------------
@dataclass
class KrbModifiedEvent:
    """Kerberos event 4 on a client: the server `server_account` could not decrypt a ticket for `target`."""

    server_account: str  # "exch-2019$" as Windows names it
    target: str  # "HTTP/autodiscover.tailspintoys.ca"
    when: datetime | None = None
    when_text: str = ""  # the date as exported (locale-dependent), when it could not be read
    computer: str = ""  # the client that logged it

    @property
    def server_name(self) -> str:
        """The computer name behind the account: `exch-2019$` -> `exch-2019`."""
        return self.server_account[:-1] if self.server_account.endswith("$") else self.server_account


_KRB_MODIFIED = re.compile(
    r"KRB_AP_ERR_MODIFIED\s+error\s+from\s+the\s+server\s+(?P<server>\S+?)\.?\s+The\s+target\s+name\s+used\s+was\s+"
    r"(?P<target>\S+?)\.?(\s|$)")
_DATE_LINE = re.compile(r"^\s*(Date|TimeCreated)\s*:\s*(?P<when>.+?)\s*$", re.M)
_COMPUTER_LINE = re.compile(r"^\s*(Computer|MachineName)\s*:\s*(?P<computer>\S+)\s*$", re.M)
_DATE_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
                 "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S")


def parse_krb_modified(text: str) -> list[KrbModifiedEvent]:
    """Every KRB_AP_ERR_MODIFIED event in an exported System log (Event Viewer's 'Copy details as text',
    `wevtutil qe System /f:text` or `Get-WinEvent | Format-List`), with the nearest date and computer
    before it."""
    events = []
    for m in _KRB_MODIFIED.finditer(text):
        before = text[: m.start()]
        dates = list(_DATE_LINE.finditer(before))
        computers = list(_COMPUTER_LINE.finditer(before))
        when_text = dates[-1].group("when") if dates else ""
        events.append(KrbModifiedEvent(
            server_account=m.group("server"),
            target=m.group("target"),
            when=_event_time(when_text),
            when_text=when_text,
            computer=computers[-1].group("computer") if computers else "",
        ))
    return events


def _event_time(value: str) -> datetime | None:
    """Event exports carry local time in the exporting machine's locale; this reads the usual forms and
    leaves the zone unknown (naive)."""
    value = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None
