"""Training-lab scenarios: a TOML file that describes an organisation (see docs/scenarios.md).

`load_scenario(path)` parses and validates; every problem is a ConfigError naming the file, the line and
the field. The result is plain data; `asa_wizard.lab` builds the directory, the Exchange endpoint and the
simulated Kerberos from it.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import io
import itertools
import pickle
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.hosts import dn_problem, has_control, host_problem, sam_problem
from ..core.model import AccountKind, Service
from ..core.secrets import Secret
from ..core.tomlpos import TomlReader, parse_toml, read_text
from ..resources import scenario_dir

FAULTS = {"none", "unreachable", "slow", "access-denied", "script-missing", "fail-roll", "iis-unreadable"}
# RBAC roles the lab admin may hold; "Organization Management" includes "Organization Configuration".
ROLES = {"Organization Management", "Organization Configuration", "View-Only Organization Management",
         "Recipient Management", "Server Management"}
VDIR_SECTIONS = {
    "outlook_anywhere": Service.OUTLOOK_ANYWHERE,
    "mapi": Service.MAPI,
    "eas": Service.EAS,
    "ews": Service.EWS,
    "owa": Service.OWA,
    "autodiscover": Service.AUTODISCOVER,
}
AUTH_METHODS = {"Basic", "Ntlm", "Negotiate", "OAuth", "Kerberos", "WindowsIntegrated", "Fba", "Digest", "Adfs"}
PROVIDERS = {"Negotiate", "NTLM", "Negotiate:Kerberos"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
SAM_RE = re.compile(r"^[^\"/\\\[\]:;|=,+*?<>@]{1,20}$")
ORG_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 -]{0,62}[A-Za-z0-9])?")  # an Exchange organisation's name
SITE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}")
DATE_RANGE = (datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2999, 12, 31, tzinfo=timezone.utc))


def password_digest(password: str) -> str:
    """What the lab keeps of a password: a digest, never the text (nothing can log what is not there)."""
    return hashlib.sha256(b"asa-wizard-lab-password\0" + password.encode("utf-8")).hexdigest()


def scenario_password(sam: str, key_version: int) -> Secret:
    """The lab-only password a scenario file means by `key_version` N of an account (deterministic, so a
    server and the directory described in the file agree on it)."""
    return Secret(f"Lab-{sam.lower()}-key-{key_version}!")


def scenario_digest(sam: str, key_version: int) -> str:
    """The digest of the password a scenario file means by `key_version` N of an account."""
    return password_digest(scenario_password(sam, key_version).reveal())


class HeldPassword:
    """A password a lab server holds (as Exchange keeps it): shared, never copied, never shown."""

    __slots__ = ("secret",)

    def __init__(self, secret: Secret) -> None:
        self.secret = secret

    def __deepcopy__(self, memo: dict) -> "HeldPassword":
        return self  # immutable: copies of the scenario share it

    def __repr__(self) -> str:
        return "HeldPassword(********)"


@dataclass
class LabCredential:
    """One entry of a server's ASA credential list (Exchange's AlternateServiceAccountCredential)."""

    account: str  # DOMAIN\NAME$
    when: datetime  # WhenAdded: stamped when the credential was pushed to this server
    key_version: int  # which password of the account the file means (0: a password pushed by a tool)
    secret_digest: str = ""  # the digest of the password the server holds (empty: the scenario's key_version)
    # The password itself, which Exchange keeps and returns with -IncludeAlternateServiceAccountCredentialPassword
    held: HeldPassword | None = field(default=None, repr=False, compare=False)

    @property
    def sam(self) -> str:
        return self.account.rpartition("\\")[2]

    @property
    def digest(self) -> str:
        return self.secret_digest or scenario_digest(self.sam, self.key_version)

    @property
    def password(self) -> Secret:
        return self.held.secret if self.held is not None else scenario_password(self.sam, self.key_version)


@dataclass
class LabVdir:
    service: Service
    internal_host: str | None = None
    external_host: str | None = None
    auth_methods: list[str] = field(default_factory=list)  # IISAuthenticationMethods (OA, MAPI, EWS, EAS)
    internal_client_auth: str | None = None  # Outlook Anywhere
    external_client_auth: str | None = None  # Outlook Anywhere
    # IIS application settings (EAS, EWS)
    basic: bool = False
    windows: bool = True
    providers: list[str] = field(default_factory=lambda: ["Negotiate", "NTLM"])
    use_kernel_mode: bool = False
    use_app_pool_credentials: bool = False
    ssl_offloading: bool = False  # Outlook Anywhere: the load balancer ends TLS (SSLOffloading $true)


@dataclass
class LabServer:
    name: str
    fqdn: str
    version: str
    roles: list[str]
    site: str
    asa_latest: InitVar[LabCredential | None] = None
    asa_previous: InitVar[LabCredential | None] = None
    service_host_running: bool = True
    iis_iusrs: list[str] = field(default_factory=list)
    vdirs: dict[Service, LabVdir] = field(default_factory=dict)
    fault: str = "none"
    slow_seconds: float = 2.0
    extra_spns: list[str] = field(default_factory=list)  # SPNs on the server's own computer account
    # IIS location ("Default Web Site/Rpc") -> tokenChecking, over the build's defaults (lab/extended_protection.py)
    extended_protection: dict[str, str] = field(default_factory=dict)
    # The ASA credential list, newest first (Get-ClientAccessService ... EffectiveCredentials)
    credentials: list[LabCredential] = field(default_factory=list)

    def __post_init__(self, asa_latest: LabCredential | None, asa_previous: LabCredential | None) -> None:
        if not self.credentials:
            self.credentials = [c for c in (asa_latest, asa_previous) if isinstance(c, LabCredential)]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("name", "fqdn"):  # a server's names changed: every index of server lists is out of date
            _SERVER_NAMES[0] = next(_NAME_CHANGES)
        object.__setattr__(self, name, value)


_NAME_CHANGES = itertools.count(1)
_SERVER_NAMES = [0]  # a new number at every change of any LabServer's name or FQDN (see Scenario.server)


def _latest(self: LabServer) -> LabCredential | None:
    return self.credentials[0] if self.credentials else None


def _set_latest(self: LabServer, cred: LabCredential | None) -> None:
    rest = self.credentials[1:]
    self.credentials = ([cred] if cred else []) + rest


def _previous(self: LabServer) -> LabCredential | None:
    return self.credentials[1] if len(self.credentials) > 1 else None


def _set_previous(self: LabServer, cred: LabCredential | None) -> None:
    self.credentials = self.credentials[:1] + ([cred] if cred else []) + self.credentials[2:]


# The two newest entries, under the names the rest of the lab reads them by.
LabServer.asa_latest = property(_latest, _set_latest)  # type: ignore[assignment]
LabServer.asa_previous = property(_previous, _set_previous)  # type: ignore[assignment]


@dataclass
class LabAccount:
    sam: str
    kind: AccountKind
    ou: str  # DN relative to the domain ("CN=Computers") or absolute
    enabled: bool = True
    spns: list[str] = field(default_factory=list)
    enctypes: int | None = None
    pwd_last_set: datetime | None = None
    key_version: int = 1
    delegate_to: list[str] = field(default_factory=list)
    trusted_to_auth: bool = False
    trusted_for_delegation: bool = False
    not_delegated: bool = False
    protected_user: bool = False
    dont_expire: bool = True
    description: str = ""
    upn: str | None = None
    uac: int | None = None  # explicit value overrides the flags above
    secret_digest: str = ""  # the digest of the password set through the directory (empty: key_version's)

    @property
    def digest(self) -> str:
        """The digest of the account's current password (what a server's credential must match)."""
        return self.secret_digest or scenario_digest(self.sam, self.key_version)


@dataclass
class LabSeg:
    service_account: str
    test_users: list[str] = field(default_factory=list)
    ews_proxy: bool = False


@dataclass
class LabExercise:
    """An exercise on the scenario: the checks the trainee must make pass, hints released one at a time, and
    a time limit (see docs/scenarios.md, `[exercise]`; scored by `core.exercise`)."""

    objectives: list[str]  # check ids
    hints: list[str] = field(default_factory=list)
    time_limit_minutes: int | None = None
    faults: list[str] = field(default_factory=list)  # what `--random-faults` broke (for the instructor)


@dataclass
class Scenario:
    name: str
    title: str
    description: str  # one line, for `lab list`
    briefing: str
    path: Path
    domain: str
    netbios: str
    organization: str
    sites: list[str]
    servers: list[LabServer]
    accounts: list[LabAccount]
    admin_user: str
    admin_password: str  # lab-only credential for the simulated WinRM endpoint and directory
    now: datetime
    # Exchange RBAC and remote PowerShell of the lab admin, and what its remote sessions can do
    admin_roles: list[str] = field(default_factory=lambda: ["Organization Management"])
    remote_powershell_enabled: bool = True
    sessions_can_delegate: bool = True  # False: a session cannot reach a further server (no CredSSP/delegation)
    admin_can_reset_asa: bool = True  # the lab admin holds the Reset Password right on the ASA
    # the domain's minimum password age (AD's default domain policy: 1 day): a password younger than this cannot
    # be changed with the old one, only reset
    min_password_age_days: float = 1.0
    asa: str | None = None  # the ASA the scenario intends (sAMAccountName), if any
    seg: LabSeg | None = None
    hybrid: bool = False
    expected_findings: dict[str, str] = field(default_factory=dict)  # check id -> "fail" | "warn"
    cname_namespaces: list[str] = field(default_factory=list)
    exercise: LabExercise | None = None

    @property
    def domain_dn(self) -> str:
        return ",".join(f"DC={part}" for part in self.domain.split("."))

    @property
    def realm(self) -> str:
        return self.domain.upper()

    def server(self, name: str) -> LabServer | None:
        """The first server in the list whose name or FQDN is `name` (any case), from an index of the list (every
        request to a lab server asks). The index is made again when the list is another or of another length, or
        when any server's name or FQDN changed; a server it does not hold is looked for by a scan of the list."""
        want = name.lower()
        servers = self.servers
        index = self.__dict__.get("_server_index")
        if index is None or index[0] is not servers or index[1] != len(servers) or index[2] != _SERVER_NAMES[0]:
            positions: dict[str, int] = {}
            for i, s in enumerate(servers):
                positions.setdefault(s.name.lower(), i)
                positions.setdefault(s.fqdn.lower(), i)
            index = self.__dict__["_server_index"] = (servers, len(servers), _SERVER_NAMES[0], positions)
        i = index[3].get(want)
        if i is not None:
            s = servers[i]
            if s.name.lower() == want or s.fqdn.lower() == want:
                return s
        for s in servers:
            if s.name.lower() == want or s.fqdn.lower() == want:
                return s
        return None

    def __getstate__(self) -> dict:
        """What a copy or a pickle holds: the fields, not the index of the server list."""
        state = dict(self.__dict__)
        state.pop("_server_index", None)
        return state

    def copy(self) -> "Scenario":
        """A deep copy (the passwords servers hold are shared, as `copy.deepcopy` shares them)."""
        return clone(self)

    def with_servers(self, count: int) -> "Scenario":
        """A copy whose servers are `count` copies of the first, named EX01, EX02, ... (three digits from 100
        servers): the same organisation at another size, for rollout drills and load tests."""
        out = self.copy()
        width = max(2, len(str(count)))
        out.servers = []
        for i in range(1, count + 1):
            server = copy.deepcopy(self.servers[0])
            server.name = f"EX{i:0{width}d}"
            server.fqdn = f"{server.name.lower()}.{self.domain}"
            out.servers.append(server)
        return out


class _Sharer(pickle.Pickler):
    """Pickles scenario data but leaves the passwords the servers hold out of the stream: they are shared by
    reference (as `copy.deepcopy` shares them), so a Secret is never serialised."""

    def __init__(self, stream: io.BytesIO, shared: list[HeldPassword]) -> None:
        super().__init__(stream, pickle.HIGHEST_PROTOCOL)
        self.shared = shared

    def persistent_id(self, obj: object) -> int | None:
        if isinstance(obj, HeldPassword):
            self.shared.append(obj)
            return len(self.shared) - 1
        return None


class _Receiver(pickle.Unpickler):
    def __init__(self, stream: io.BytesIO, shared: list[HeldPassword]) -> None:
        super().__init__(stream)
        self.shared = shared

    def persistent_load(self, pid: object) -> HeldPassword:
        return self.shared[int(pid)]  # type: ignore[call-overload]


def clone(data: Any) -> Any:
    """A deep copy of plain scenario data, by pickle: what copy.deepcopy gives, in a third of its time (a scenario
    of 1,000 servers is some 240,000 objects). The passwords servers hold are shared, not copied."""
    shared: list[HeldPassword] = []
    stream = io.BytesIO()
    with collection_paused():
        _Sharer(stream, shared).dump(data)
        stream.seek(0)
        return _Receiver(stream, shared).load()


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a large structure is built: each full collection walks every object
    alive, so building N objects with it running costs more than N (with the lab's 11,000 directory entries,
    a third of the build). Nothing built here is garbage; the collector runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ----------------------------------------------------------------------------------------------------
def list_scenarios() -> list[Scenario]:
    """Every scenario shipped with the package, sorted by name."""
    out = []
    for p in sorted(scenario_dir().glob("*.toml"), key=lambda p: p.stem):
        out.append(load_scenario(p))
    return out


def find_scenario(name_or_path: str) -> Path:
    if has_control(name_or_path) or len(name_or_path) > 4096:
        raise ConfigError(name_or_path[:80].encode("unicode_escape").decode(), "not a scenario name or path",
                          "Use a scenario name (asa-wizard lab list) or the path of a .toml scenario file.")
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return p
    candidate = scenario_dir() / f"{name_or_path}.toml"
    if candidate.exists():
        return candidate
    names = ", ".join(sorted(x.stem for x in scenario_dir().glob("*.toml")))
    raise ConfigError(
        name_or_path,
        "no such scenario",
        f"Use one of: {names} (asa-wizard lab list), or the path of a .toml scenario file.",
    )


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    text = read_text(path)
    data = parse_toml(text, str(path))
    return _Parser(path, text, data).parse()


# ----------------------------------------------------------------------------------------------------
class _Parser(TomlReader):
    TABLE_FIX = "Write it as a [table] or {{ inline = table }}."
    BOOLEAN_FIX = "Write {key} = true or false."
    INTEGER_FIX = "Write {key} = 2 (a whole number, no quotes)."
    STRINGS_FIX = 'Write {key} = ["a", "b"].'

    def __init__(self, path: Path, text: str, data: dict[str, Any]) -> None:
        super().__init__(path, text)
        self.data = data

    # --- helpers ----------------------------------------------------------------------------------
    def number(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], default: float) -> float:
        v = obj.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 3600:
            raise self.fail(fp + (key,), f"must be a number of seconds from 0 to 3600, not {v!r}",
                            f"Write {key} as a number of seconds, for example {key} = 5.")
        return float(v)

    def days(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], default: float) -> float:
        v = obj.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 998:
            raise self.fail(fp + (key,), f"must be a number of days from 0 to 998 (AD's limits), not {v!r}",
                            f"Write {key} = 1 (AD's default), or 0 for no minimum age.")
        return float(v)

    def when(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], required: bool = False) -> datetime | None:
        v = obj.get(key)
        if v is None:
            if required:
                raise self.fail(fp + (key,), "missing", f"Add {key} = 2024-01-31T10:00:00Z.")
            return None
        d = None
        if isinstance(v, datetime):
            d = v
        elif isinstance(v, str):
            try:
                d = datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                pass
        if d is None:
            raise self.fail(fp + (key,), f"must be a date and time, not {v!r}", "Write it as 2024-01-31T10:00:00Z.")
        try:
            d = d if d.tzinfo else d.replace(tzinfo=timezone.utc)
            in_range = DATE_RANGE[0] <= d <= DATE_RANGE[1]
        except (OverflowError, ValueError):
            in_range = False
        if not in_range:
            raise self.fail(fp + (key,), f"{v} is out of range",
                            "Use a date from 1970 to 2999, such as 2024-01-31T10:00:00Z.")
        return d

    def hosts(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...]) -> list[str]:
        out = self.strings(obj, key, fp)
        for problem in filter(None, map(host_problem, out)):
            raise self.fail(fp + (key,), problem, 'Write host names like "mail.contoso.com".')
        return [h.lower() for h in out]

    # --- sections ---------------------------------------------------------------------------------
    def parse(self) -> Scenario:
        d = self.data
        self.unknown(d, {"scenario", "forest", "lab", "defaults", "servers", "accounts", "seg", "exercise"}, ())
        sc = self.table(d, "scenario", (), required=True)
        self.unknown(sc, {"name", "title", "description", "briefing", "asa", "hybrid", "expected", "cname_namespaces"},
                     ("scenario",))
        name = self.string(sc, "name", ("scenario",), required=True)
        assert name is not None
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
            raise self.fail(("scenario", "name"), f"{name!r} is not a valid name",
                            "Use lower-case letters, digits and dashes (it is typed on the command line).")
        expected_raw = self.table(sc, "expected", ("scenario",))
        expected: dict[str, str] = {}
        for k, v in expected_raw.items():
            if v not in ("fail", "warn"):
                raise self.fail(("scenario", "expected", k), f"must be \"fail\" or \"warn\", not {v!r}")
            expected[k] = v

        fo = self.table(d, "forest", (), required=True)
        self.unknown(fo, {"domain", "netbios", "organization", "sites"}, ("forest",))
        domain = (self.string(fo, "domain", ("forest",), required=True) or "").lower()
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain) or host_problem(domain):
            raise self.fail(("forest", "domain"), f"{domain!r} is not a DNS domain name", 'Write domain = "contoso.com".')
        netbios = self.string(fo, "netbios", ("forest",), required=True) or ""
        if not re.fullmatch(r"[A-Za-z0-9-]{1,15}", netbios):
            raise self.fail(("forest", "netbios"), f"{netbios!r} is not a NetBIOS domain name",
                            "Use up to 15 letters, digits or dashes.")
        sites = self.strings(fo, "sites", ("forest",)) or ["Default-First-Site-Name"]
        for site in sites:
            if not SITE_RE.fullmatch(site):
                raise self.fail(("forest", "sites"), f"{site[:64]!r} is not a site name",
                                "Use letters, digits and dashes (up to 63), such as Default-First-Site-Name.")
        organization = self.string(fo, "organization", ("forest",), default=netbios) or netbios
        if not ORG_RE.fullmatch(organization):
            raise self.fail(("forest", "organization"), f"{organization[:64]!r} is not an Exchange organisation name",
                            "Use up to 64 letters, digits, spaces and dashes (no , + \" \\ < > ; = #).")

        lab = self.table(d, "lab", ())
        self.unknown(lab, {"admin_user", "admin_password", "now", "admin_roles", "remote_powershell_enabled",
                           "sessions_can_delegate", "admin_can_reset_asa", "min_password_age_days"}, ("lab",))
        now = self.when(lab, "now", ("lab",)) or datetime(2026, 1, 15, 9, 0, tzinfo=timezone.utc)

        defaults = self.table(d, "defaults", ())
        self.unknown(defaults, set(VDIR_SECTIONS) | {"extended_protection"}, ("defaults",))

        raw_servers = d.get("servers", [])
        if not isinstance(raw_servers, list) or not raw_servers:
            raise self.fail(("servers",), "at least one [[servers]] entry is needed",
                            'Add [[servers]] with name, fqdn and version.')
        servers = [self.server(s, i, defaults, domain, sites) for i, s in enumerate(raw_servers)]
        seen: set[str] = set()
        for i, s in enumerate(servers):
            if s.name.lower() in seen:
                raise self.fail(("servers", i, "name"), f"server {s.name} is listed twice", "Give each server its own name.")
            seen.add(s.name.lower())

        raw_accounts = d.get("accounts", [])
        if not isinstance(raw_accounts, list):
            raise self.fail(("accounts",), "must be an array of tables", "Write each account as [[accounts]].")
        accounts = [self.account(a, i) for i, a in enumerate(raw_accounts)]

        seg = None
        if "seg" in d:
            sg = self.table(d, "seg", (), required=True)
            self.unknown(sg, {"service_account", "test_users", "ews_proxy"}, ("seg",))
            seg = LabSeg(
                service_account=self.string(sg, "service_account", ("seg",), required=True) or "",
                test_users=self.strings(sg, "test_users", ("seg",)),
                ews_proxy=self.boolean(sg, "ews_proxy", ("seg",), False),
            )
            if not any(a.sam.lower() == seg.service_account.lower() for a in accounts):
                raise self.fail(("seg", "service_account"), f"no [[accounts]] entry has sam = {seg.service_account!r}",
                                "Add the service account under [[accounts]] (kind = \"user\").")

        asa = self.string(sc, "asa", ("scenario",))
        for i, s in enumerate(servers):
            for which, cred in (("latest", s.asa_latest), ("previous", s.asa_previous)):
                if cred is None:
                    continue
                acct_name = cred.account.split("\\")[-1]
                if not any(a.sam.lower() == acct_name.lower() for a in accounts):
                    raise self.fail(("servers", i, "asa", which, "account"),
                                    f"{cred.account} is not one of the scenario's [[accounts]]",
                                    "Add the ASA under [[accounts]] or fix the name (DOMAIN\\NAME$).")

        return Scenario(
            name=name,
            title=self.string(sc, "title", ("scenario",), required=True) or name,
            description=self.string(sc, "description", ("scenario",), required=True) or "",
            briefing=self.string(sc, "briefing", ("scenario",), default="") or "",
            path=self.path,
            domain=domain,
            netbios=netbios.upper(),
            organization=organization,
            sites=sites,
            servers=servers,
            accounts=accounts,
            admin_user=self.string(lab, "admin_user", ("lab",),
                                   default=f"{netbios.upper()}\\Administrator") or "",
            admin_password=self.string(lab, "admin_password", ("lab",), default="LabAdm1n!Only") or "",
            now=now,
            admin_roles=(self.strings(lab, "admin_roles", ("lab",), ROLES) if "admin_roles" in lab
                         else ["Organization Management"]),
            remote_powershell_enabled=self.boolean(lab, "remote_powershell_enabled", ("lab",), True),
            sessions_can_delegate=self.boolean(lab, "sessions_can_delegate", ("lab",), True),
            admin_can_reset_asa=self.boolean(lab, "admin_can_reset_asa", ("lab",), True),
            min_password_age_days=self.days(lab, "min_password_age_days", ("lab",), 1.0),
            asa=asa,
            seg=seg,
            hybrid=self.boolean(sc, "hybrid", ("scenario",), False),
            expected_findings=expected,
            cname_namespaces=self.hosts(sc, "cname_namespaces", ("scenario",)),
            exercise=self.exercise(d, expected) if "exercise" in d else None,
        )

    def exercise(self, d: dict[str, Any], expected: dict[str, str]) -> LabExercise:
        from ..core.checks import CHECKS

        ex = self.table(d, "exercise", (), required=True)
        self.unknown(ex, {"objectives", "hints", "time_limit_minutes"}, ("exercise",))
        objectives = self.strings(ex, "objectives", ("exercise",)) if "objectives" in ex else [
            cid for cid, st in expected.items() if st == "fail"]
        for cid in objectives:
            if cid not in CHECKS:
                raise self.fail(("exercise", "objectives"), f"unknown check {cid!r}",
                                "Use check ids from docs/checks.md, e.g. \"rollout.coverage\".")
        if not objectives:
            raise self.fail(("exercise", "objectives"), "no objective",
                            'Add objectives = ["check.id", ...] or "fail" entries to [scenario.expected].')
        return LabExercise(objectives=objectives, hints=self.strings(ex, "hints", ("exercise",)),
                           time_limit_minutes=self.integer(ex, "time_limit_minutes", ("exercise",), None, (1, 1440)))

    def credential(self, obj: dict[str, Any], fp: tuple[Any, ...]) -> LabCredential:
        self.unknown(obj, {"account", "when", "key_version"}, fp)
        account = self.string(obj, "account", fp, required=True) or ""
        if "\\" not in account or sam_problem(account.split("\\")[-1]):
            raise self.fail(fp + ("account",), f"{account[:64]!r} is not DOMAIN\\NAME", 'Write account = "CONTOSO\\\\EXASA$".')
        return LabCredential(account=account, when=self.when(obj, "when", fp, required=True),  # type: ignore[arg-type]
                             key_version=self.integer(obj, "key_version", fp, 1, (1, 2**31 - 1)) or 1)

    def server(self, s: Any, i: int, defaults: dict[str, Any], domain: str, sites: list[str]) -> LabServer:
        fp: tuple[Any, ...] = ("servers", i)
        if not isinstance(s, dict):
            raise self.fail(fp, "must be a table")
        self.unknown(s, {"name", "fqdn", "version", "roles", "site", "asa", "service_host_running", "iis_iusrs",
                         "fault", "slow_seconds", "extra_spns", "extended_protection", *VDIR_SECTIONS}, fp)
        name = self.string(s, "name", fp, required=True) or ""
        if not NAME_RE.fullmatch(name):
            raise self.fail(fp + ("name",), f"{name!r} is not a valid computer name", "Use letters, digits and dashes.")
        fqdn = self.host(s, "fqdn", fp) or f"{name}.{domain}".lower()
        version = self.string(s, "version", fp, required=True) or ""
        from ..core.model import parse_build

        if not parse_build(version):
            raise self.fail(fp + ("version",), f"{version!r} is not an Exchange version",
                            'Write version = "Version 15.2 (Build 1544.4)".')
        site = self.string(s, "site", fp, default=sites[0]) or sites[0]
        if site not in sites:
            raise self.fail(fp + ("site",), f"site {site!r} is not in [forest].sites", "Add it to sites or fix the name.")
        fault = self.string(s, "fault", fp, default="none") or "none"
        if fault not in FAULTS:
            raise self.fail(fp + ("fault",), f"unknown fault {fault!r}", "Use one of: " + ", ".join(sorted(FAULTS)))
        asa = self.table(s, "asa", fp)
        self.unknown(asa, {"latest", "previous"}, fp + ("asa",))
        latest = self.credential(asa["latest"], fp + ("asa", "latest")) if "latest" in asa else None
        previous = self.credential(asa["previous"], fp + ("asa", "previous")) if "previous" in asa else None
        vdirs: dict[Service, LabVdir] = {}
        for key, service in VDIR_SECTIONS.items():
            merged = dict(defaults.get(key, {}))
            merged.update(s.get(key, {}) if isinstance(s.get(key, {}), dict) else {})
            if key in s and not isinstance(s[key], dict):
                raise self.fail(fp + (key,), "must be a table")
            if not merged:
                continue
            vfp = fp + (key,) if key in s else ("defaults", key)
            vdirs[service] = self.vdir(service, merged, vfp)
        ep = self.extended_protection(defaults, ("defaults", "extended_protection"))
        ep.update(self.extended_protection(s, fp + ("extended_protection",)))
        return LabServer(
            name=name,
            fqdn=fqdn,
            version=version,
            roles=self.strings(s, "roles", fp, {"Mailbox", "ClientAccess", "HubTransport", "Edge", "UnifiedMessaging"})
            or ["Mailbox"],
            site=site,
            asa_latest=latest,
            asa_previous=previous,
            service_host_running=self.boolean(s, "service_host_running", fp, True),
            iis_iusrs=self.strings(s, "iis_iusrs", fp),
            vdirs=vdirs,
            fault=fault,
            slow_seconds=self.number(s, "slow_seconds", fp, 2.0),
            extra_spns=self.strings(s, "extra_spns", fp),
            extended_protection=ep,
        )

    def extended_protection(self, obj: dict[str, Any], fp: tuple[Any, ...]) -> dict[str, str]:
        """`extended_protection = { "Default Web Site/Rpc" = "Require" }`: IIS location -> tokenChecking."""
        from ..core.checks.extended_protection import EXPECTED
        from ..core.model import EP_VALUES

        table = self.table(obj, fp[-1], fp[:-1])
        out: dict[str, str] = {}
        known = {k.lower() for k in EXPECTED}
        for location, value in table.items():
            if location.lower() not in known:
                raise self.fail(fp + (location,), f"{location!r} is not an Exchange virtual directory location",
                                'Write it as "Default Web Site/EWS" or "Exchange Back End/MAPI/emsmdb".')
            if value not in EP_VALUES:
                raise self.fail(fp + (location,), f"must be \"None\", \"Allow\" or \"Require\", not {value!r}")
            out[location] = value
        return out

    def vdir(self, service: Service, v: dict[str, Any], fp: tuple[Any, ...]) -> LabVdir:
        self.unknown(v, {"internal_host", "external_host", "auth", "internal_client_auth", "external_client_auth",
                         "basic", "windows", "providers", "use_kernel_mode", "use_app_pool_credentials",
                         *(("ssl_offloading",) if service == Service.OUTLOOK_ANYWHERE else ())}, fp)
        for k in ("internal_host", "external_host"):
            h = v.get(k)
            if h is not None and (not isinstance(h, str) or host_problem(h)):
                raise self.fail(fp + (k,), f"{str(h)[:64]!r} is not a host name",
                                'Write it as "mail.contoso.com" (no https://).')
        for k in ("internal_client_auth", "external_client_auth"):
            if k in v and v[k] not in ("Basic", "Ntlm", "Negotiate"):
                raise self.fail(fp + (k,), f"unknown method {v[k]!r}", "Use Basic, Ntlm or Negotiate.")
        return LabVdir(
            service=service,
            internal_host=(v.get("internal_host") or None),
            external_host=(v.get("external_host") or None),
            auth_methods=self.strings(v, "auth", fp, AUTH_METHODS),
            internal_client_auth=v.get("internal_client_auth"),
            external_client_auth=v.get("external_client_auth"),
            basic=self.boolean(v, "basic", fp, False),
            windows=self.boolean(v, "windows", fp, True),
            providers=self.strings(v, "providers", fp, PROVIDERS) if "providers" in v else ["Negotiate", "NTLM"],
            use_kernel_mode=self.boolean(v, "use_kernel_mode", fp, False),
            use_app_pool_credentials=self.boolean(v, "use_app_pool_credentials", fp, False),
            ssl_offloading=self.boolean(v, "ssl_offloading", fp, False),
        )

    def account(self, a: Any, i: int) -> LabAccount:
        fp: tuple[Any, ...] = ("accounts", i)
        if not isinstance(a, dict):
            raise self.fail(fp, "must be a table")
        self.unknown(a, {"sam", "kind", "ou", "enabled", "spns", "enctypes", "pwd_last_set", "key_version",
                         "delegate_to", "trusted_to_auth", "trusted_for_delegation", "not_delegated",
                         "protected_user", "dont_expire", "description", "upn", "uac"}, fp)
        sam = self.string(a, "sam", fp, required=True) or ""
        if not SAM_RE.fullmatch(sam) or sam_problem(sam):
            raise self.fail(fp + ("sam",), f"{sam[:64]!r} is not a valid sAMAccountName",
                            "Up to 20 characters, none of \" / \\ [ ] : ; | = , + * ? < > @.")
        kind_s = self.string(a, "kind", fp, default="computer" if sam.endswith("$") else "user")
        try:
            kind = AccountKind(kind_s)
        except ValueError:
            raise self.fail(fp + ("kind",), f"unknown kind {kind_s!r}", "Use computer, user or gmsa.") from None
        if kind == AccountKind.COMPUTER and not sam.endswith("$"):
            raise self.fail(fp + ("sam",), f"computer account {sam!r} must end in $", f'Write sam = "{sam}$".')
        enctypes = self.integer(a, "enctypes", fp, None)
        if enctypes is not None and enctypes > 0x3F:
            raise self.fail(fp + ("enctypes",), f"{enctypes} is not an msDS-SupportedEncryptionTypes value",
                            "Use 24 (AES only), 28 (AES and RC4) or 4 (RC4 only).")
        for spn in self.strings(a, "spns", fp) + self.strings(a, "delegate_to", fp):
            if "/" not in spn:
                raise self.fail(fp + ("spns",), f"{spn!r} is not an SPN", 'Write it as "HTTP/mail.contoso.com".')
        ou_problem = dn_problem(self.string(a, "ou", fp) or "OU=x")
        if ou_problem:
            raise self.fail(fp + ("ou",), ou_problem, 'Write it like ou = "OU=Service Accounts".')
        default_ou = "CN=Computers" if kind == AccountKind.COMPUTER else "CN=Users"
        if kind == AccountKind.GMSA:
            default_ou = "CN=Managed Service Accounts"
        return LabAccount(
            sam=sam,
            kind=kind,
            ou=self.string(a, "ou", fp, default=default_ou) or default_ou,
            enabled=self.boolean(a, "enabled", fp, True),
            spns=self.strings(a, "spns", fp),
            enctypes=enctypes,
            pwd_last_set=self.when(a, "pwd_last_set", fp),
            key_version=self.integer(a, "key_version", fp, 1, (1, 2**31 - 1)) or 1,
            delegate_to=self.strings(a, "delegate_to", fp),
            trusted_to_auth=self.boolean(a, "trusted_to_auth", fp, False),
            trusted_for_delegation=self.boolean(a, "trusted_for_delegation", fp, False),
            not_delegated=self.boolean(a, "not_delegated", fp, False),
            protected_user=self.boolean(a, "protected_user", fp, False),
            dont_expire=self.boolean(a, "dont_expire", fp, True),
            description=self.string(a, "description", fp, default="") or "",
            upn=self.string(a, "upn", fp),
            uac=self.integer(a, "uac", fp, None, (0, 2**32 - 1)),
        )
