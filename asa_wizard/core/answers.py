"""The answers file: every choice the wizard asks for, written down so a plan can be reviewed, put through
change control and applied without the UI (see docs/answers.md).

`load_answers(path)` validates and raises `ConfigError` naming the file, the line and the field;
`dumps_answers(answers)` / `save_answers(answers, path)` write one from a wizard session. Passwords never
appear here: they come from the keyring, ASA_WIZARD_LDAP_PASSWORD / ASA_WIZARD_WINRM_PASSWORD, or a prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hosts import dn_problem
from .model import ENC_AES_AND_RC4, ENC_AES_ONLY, AccountKind
from .tomlpos import TomlReader, parse_toml, read_text

ANSWERS_VERSION = 1
LDAP_PASSWORD_ENV = "ASA_WIZARD_LDAP_PASSWORD"
WINRM_PASSWORD_ENV = "ASA_WIZARD_WINRM_PASSWORD"

LDAP_MODES = ("ldaps", "starttls")
BIND_METHODS = ("simple", "kerberos", "ntlm")
WINRM_TRANSPORTS = ("kerberos", "ntlm", "credssp")
WINRM_SCHEMES = ("https", "http")
ASA_MODES = ("create", "reuse")
ROLL_METHODS = ("native", "script")  # [rollout] method: the wizard's own roll, or Microsoft's script
ENCTYPE_CHOICES = (ENC_AES_ONLY, ENC_AES_AND_RC4)

# AD's rules for a sAMAccountName: up to 20 characters, none of " / \ [ ] : ; | = , + * ? < > @ or a control
# character, not only dots, spaces and $, not ending in a dot (core.hosts.sam_problem says the same in words).
SAM_RE = re.compile(r"^(?![. $]*$)[^\"/\\\[\]:;|=,+*?<>@\x00-\x1f\x7f-\x9f]{1,20}(?<!\.)$")
# A DNS host name: labels of up to 63 letters, digits and dashes, at most 253 characters (core.hosts.host_problem).
HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
SPN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*/[A-Za-z0-9_.$-]+(:\d+)?$")
QUALIFIED_RE = re.compile(r"^([A-Za-z0-9-]{1,15}\\)?(?![. $]*$)[^\"/\\\[\]:;|=,+*?<>@\x00-\x1f\x7f-\x9f]{1,20}(?<!\.)$")
DN_RE = re.compile(r"^(?:[A-Za-z]+=[^,=]+)(?:,[A-Za-z]+=[^,=]+)*$")
SECRET_KEYS = {"password", "passwd", "secret", "ldap_password", "winrm_password", "pass"}


@dataclass
class WinRmAnswers:
    transport: str = "kerberos"
    scheme: str = "https"
    port: int = 5986
    ca_file: str | None = None
    user: str | None = None  # None: the directory user
    insecure_skip_tls_verify: bool = False


@dataclass
class TargetAnswers:
    lab: str | None = None  # scenario name or path: the embedded lab
    dc: str | None = None  # a real domain controller (host name)
    ldap: str = "ldaps"
    bind: str = "simple"
    user: str | None = None
    ca_file: str | None = None
    tls_name: str | None = None  # the name on the DC's certificate, when `dc` is an address (None: `dc`)
    insecure_skip_tls_verify: bool = False
    winrm: WinRmAnswers = field(default_factory=WinRmAnswers)

    @property
    def is_lab(self) -> bool:
        return self.lab is not None


@dataclass
class AsaAnswers:
    mode: str = "reuse"  # create | reuse
    name: str | None = None  # sAMAccountName (computer accounts end in $); None with reuse: the discovered ASA
    kind: AccountKind = AccountKind.COMPUTER
    ou: str | None = None  # create: the OU DN (relative to the domain or absolute)
    enctypes: int | None = ENC_AES_ONLY  # None with reuse: leave as it is


@dataclass
class RolloutAnswers:
    first_server: str | None = None  # None: the first server by name
    concurrency: int = 4
    servers: list[str] = field(default_factory=list)  # empty: every Exchange server
    new_password: bool = False  # generate a new password even when every server holds the current one
    # "native": the wizard pushes the new password through each server's Exchange endpoint, then resets it in AD
    # once; "script": Microsoft's RollAlternateServiceAccountPassword.ps1 (needs the second hop: CredSSP/delegation)
    method: str = "native"


@dataclass
class SpnAnswers:
    namespaces: list[str] = field(default_factory=list)  # empty: every discovered namespace
    move_from: list[str] = field(default_factory=list)  # owners (DOMAIN\name) the user named: SPNs may move
    # The user confirmed by hand that every server behind each namespace holds the ASA's current credential
    # (needed to register an SPN on the ASA when the servers cannot be read, e.g. no_exchange).
    confirm_servers_hold_credential: bool = False


@dataclass
class ClientAuthAnswers:
    outlook_anywhere: bool = True
    mapi: bool = True


@dataclass
class SegAnswers:
    enabled: bool = False
    service_account: str | None = None
    spn: str | None = None  # None: HTTP/<service account>
    delegate_to: str | None = None  # namespace host; None: the ActiveSync namespace
    test_users: list[str] = field(default_factory=list)
    ews_proxy: bool = False


@dataclass
class IisAuthAnswers:
    enabled: bool = False  # ActiveSync; EWS as well when seg.ews_proxy


@dataclass
class Answers:
    target: TargetAnswers = field(default_factory=TargetAnswers)
    asa: AsaAnswers = field(default_factory=AsaAnswers)
    rollout: RolloutAnswers = field(default_factory=RolloutAnswers)
    spns: SpnAnswers = field(default_factory=SpnAnswers)
    client_auth: ClientAuthAnswers = field(default_factory=ClientAuthAnswers)
    seg: SegAnswers = field(default_factory=SegAnswers)
    iis_auth: IisAuthAnswers = field(default_factory=IisAuthAnswers)
    dry_run: bool = False
    no_exchange: bool = False  # directory-side changes only: nothing is read from or done on the Exchange servers
    path: str | None = None  # where it was loaded from, for messages


# ----------------------------------------------------------------------------------------------------
def load_answers(path: str | Path) -> Answers:
    path = Path(path)
    return parse_answers(read_text(path, "the answers file"), str(path))


def parse_answers(text: str, path: str = "<answers>") -> Answers:
    data = parse_toml(text, path)
    answers = _Reader(path, text).read(data)
    answers.path = path
    return answers


class _Reader(TomlReader):
    """Reads the parsed TOML into `Answers`, one section at a time, failing with file, line and field."""

    def type_name(self, value: Any) -> str:
        return {bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "a table"}.get(
            type(value), type(value).__name__)

    def refuse(self, fp: tuple[Any, ...]) -> None:
        if str(fp[-1]).lower() in SECRET_KEYS:
            raise self.fail(fp, "passwords do not belong in an answers file",
                            f"Remove it. The password comes from the keyring, the environment variable "
                            f"{LDAP_PASSWORD_ENV} / {WINRM_PASSWORD_ENV}, or a prompt.")

    def string(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], default: str | None = None, *,
               required: bool = False, example: str = "...", pattern: re.Pattern[str] | None = None) -> str | None:
        """Stripped; blank is the default; checked against `pattern`."""
        v = super().string(obj, key, fp, None, required=required, example=example)
        v = v.strip() if v is not None else ""
        if v == "":
            return default
        if pattern is not None and not pattern.fullmatch(v):
            raise self.fail(fp + (key,), f"{v!r} is not valid here", f'Write it like {key} = "{example}".')
        return v

    def choice(self, obj: dict[str, Any], key: str, fp: tuple[str, ...], choices: tuple[str, ...],
               default: str) -> str:
        v = self.string(obj, key, fp, default)
        assert v is not None
        if v not in choices:
            raise self.fail(fp + (key,), f"{v!r} is not one of the choices", "Use one of: " + ", ".join(choices))
        return v

    def strings(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], allowed: set[str] | None = None, *,
                example: str = "a", pattern: re.Pattern[str] | None = None) -> list[str]:
        """Each stripped and checked against `pattern`."""
        out = [x.strip() for x in super().strings(obj, key, fp, allowed, example=example)]
        for x in out:
            if pattern is not None and not pattern.fullmatch(x):
                raise self.fail(fp + (key,), f"{x!r} is not valid here", f'Write it like {key} = ["{example}"].')
        return out

    # --- sections ---------------------------------------------------------------------------------
    def read(self, d: dict[str, Any]) -> Answers:
        self.unknown(d, {"version", "dry_run", "no_exchange", "target", "asa", "rollout", "spns", "client_auth", "seg", "iis_auth"},
                     ())
        version = self.integer(d, "version", (), ANSWERS_VERSION, (1, ANSWERS_VERSION))
        assert version == ANSWERS_VERSION
        return Answers(
            target=self.target(self.table(d, "target", ())),
            asa=self.asa(self.table(d, "asa", ())),
            rollout=self.rollout(self.table(d, "rollout", ())),
            spns=self.spns(self.table(d, "spns", ())),
            client_auth=self.client_auth(self.table(d, "client_auth", ())),
            seg=self.seg(self.table(d, "seg", ())),
            iis_auth=self.iis_auth(self.table(d, "iis_auth", ())),
            dry_run=self.boolean(d, "dry_run", (), False),
            no_exchange=self.boolean(d, "no_exchange", (), False),
        )

    def target(self, t: dict[str, Any]) -> TargetAnswers:
        fp = ("target",)
        self.unknown(t, {"lab", "dc", "ldap", "bind", "user", "ca_file", "tls_name", "insecure_skip_tls_verify",
                        "winrm"}, fp)
        lab = self.string(t, "lab", fp, pattern=re.compile(r"[^\x00-\x1f]+"), example="fresh")
        dc = self.string(t, "dc", fp, pattern=HOST_RE, example="dc1.contoso.com")
        if lab and dc:
            raise self.fail(fp + ("dc",), "a target is either the lab or a domain controller, not both",
                            "Remove lab = ... for a real domain, or dc = ... for the lab.")
        if not lab and not dc:
            raise self.fail(fp, "no target", 'Add lab = "fresh" (the embedded lab) or dc = "dc1.contoso.com".')
        user = self.string(t, "user", fp, pattern=re.compile(r"[^\x00-\x1f]{1,256}"), example="CONTOSO\\\\admin")
        bind = self.choice(t, "bind", fp, BIND_METHODS, "simple")
        if dc and bind != "kerberos" and not user:
            raise self.fail(fp + ("user",), f"bind = \"{bind}\" needs a user",
                            'Add user = "CONTOSO\\\\admin" (or use bind = "kerberos" with a ticket cache).')
        w = self.table(t, "winrm", fp)
        wfp = fp + ("winrm",)
        self.unknown(w, {"transport", "scheme", "port", "ca_file", "user", "insecure_skip_tls_verify"}, wfp)
        scheme = self.choice(w, "scheme", wfp, WINRM_SCHEMES, "https")
        winrm = WinRmAnswers(
            transport=self.choice(w, "transport", wfp, WINRM_TRANSPORTS, "kerberos"),
            scheme=scheme,
            port=self.integer(w, "port", wfp, 5986 if scheme == "https" else 5985, (1, 65535)) or 5986,
            ca_file=self.string(w, "ca_file", wfp),
            user=self.string(w, "user", wfp, pattern=re.compile(r"[^\x00-\x1f]{1,256}")),
            insecure_skip_tls_verify=self.boolean(w, "insecure_skip_tls_verify", wfp, False),
        )
        return TargetAnswers(
            lab=lab, dc=dc, ldap=self.choice(t, "ldap", fp, LDAP_MODES, "ldaps"), bind=bind, user=user,
            ca_file=self.string(t, "ca_file", fp),
            tls_name=self.string(t, "tls_name", fp, pattern=HOST_RE, example="dc1.contoso.com"),
            insecure_skip_tls_verify=self.boolean(t, "insecure_skip_tls_verify", fp, False), winrm=winrm,
        )

    def asa(self, a: dict[str, Any]) -> AsaAnswers:
        fp = ("asa",)
        self.unknown(a, {"mode", "name", "kind", "ou", "enctypes"}, fp)
        mode = self.choice(a, "mode", fp, ASA_MODES, "reuse")
        kind = AccountKind(self.choice(a, "kind", fp, ("computer", "user"), "computer"))
        name = self.string(a, "name", fp, pattern=SAM_RE, example="EXASA$")
        if mode == "create" and not name:
            raise self.fail(fp + ("name",), "mode = \"create\" needs the new account's name", 'Add name = "EXASA$".')
        if name and mode == "create" and kind == AccountKind.COMPUTER and not name.endswith("$"):
            raise self.fail(fp + ("name",), f"a computer account's name ends in $: {name!r}", f'Write name = "{name}$".')
        if name and mode == "create" and kind == AccountKind.USER and name.endswith("$"):
            raise self.fail(fp + ("name",), f"a user account's name does not end in $: {name!r}",
                            'Remove the $ or use kind = "computer".')
        if "ou" in a and mode != "create":
            raise self.fail(fp + ("ou",), "ou is only used when the ASA is created", "Remove it, or set mode = \"create\".")
        ou = self.string(a, "ou", fp, pattern=DN_RE, example="OU=Service Accounts,DC=contoso,DC=com")
        ou_problem = dn_problem(ou) if ou is not None else None
        if ou_problem:
            raise self.fail(fp + ("ou",), ou_problem, 'Write it like ou = "OU=Service Accounts".')
        default_enc = ENC_AES_ONLY if mode == "create" else None
        enctypes = self.integer(a, "enctypes", fp, default_enc, (0, 0x3F))
        if enctypes is not None and enctypes not in ENCTYPE_CHOICES:
            raise self.fail(fp + ("enctypes",), f"{enctypes} is not offered",
                            "Use 24 (AES only, recommended) or 28 (AES and RC4, for old clients).")
        return AsaAnswers(mode=mode, name=name, kind=kind, ou=ou, enctypes=enctypes)

    def rollout(self, r: dict[str, Any]) -> RolloutAnswers:
        fp = ("rollout",)
        self.unknown(r, {"first_server", "concurrency", "servers", "new_password", "method"}, fp)
        name_re = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,253}")
        return RolloutAnswers(
            first_server=self.string(r, "first_server", fp, pattern=name_re, example="EX01"),
            concurrency=self.integer(r, "concurrency", fp, 4, (1, 64)) or 4,
            servers=self.strings(r, "servers", fp, pattern=name_re, example="EX01"),
            new_password=self.boolean(r, "new_password", fp, False),
            method=self.choice(r, "method", fp, ROLL_METHODS, "native"),
        )

    def spns(self, s: dict[str, Any]) -> SpnAnswers:
        fp = ("spns",)
        self.unknown(s, {"namespaces", "move_from", "confirm_servers_hold_credential"}, fp)
        return SpnAnswers(
            namespaces=[h.lower() for h in
                        self.strings(s, "namespaces", fp, pattern=HOST_RE, example="mail.contoso.com")],
            move_from=self.strings(s, "move_from", fp, pattern=QUALIFIED_RE, example="CONTOSO\\\\OLDASA$"),
            confirm_servers_hold_credential=self.boolean(s, "confirm_servers_hold_credential", fp, False),
        )

    def client_auth(self, c: dict[str, Any]) -> ClientAuthAnswers:
        fp = ("client_auth",)
        self.unknown(c, {"outlook_anywhere", "mapi"}, fp)
        return ClientAuthAnswers(outlook_anywhere=self.boolean(c, "outlook_anywhere", fp, True),
                                 mapi=self.boolean(c, "mapi", fp, True))

    def seg(self, s: dict[str, Any]) -> SegAnswers:
        fp = ("seg",)
        self.unknown(s, {"enabled", "service_account", "spn", "delegate_to", "test_users", "ews_proxy"}, fp)
        enabled = self.boolean(s, "enabled", fp, bool(s))
        account = self.string(s, "service_account", fp, pattern=SAM_RE, example="svc_awseg")
        if enabled and not account:
            raise self.fail(fp + ("service_account",), "the SEG step needs its service account",
                            'Add service_account = "svc_awseg", or enabled = false to skip the SEG step.')
        return SegAnswers(
            enabled=enabled, service_account=account,
            spn=self.string(s, "spn", fp, pattern=SPN_RE, example="HTTP/svc_awseg"),
            delegate_to=(self.string(s, "delegate_to", fp, pattern=HOST_RE, example="mail.contoso.com") or "").lower()
            or None,
            test_users=self.strings(s, "test_users", fp, pattern=SAM_RE, example="alice"),
            ews_proxy=self.boolean(s, "ews_proxy", fp, False),
        )

    def iis_auth(self, i: dict[str, Any]) -> IisAuthAnswers:
        fp = ("iis_auth",)
        self.unknown(i, {"enabled"}, fp)
        return IisAuthAnswers(enabled=self.boolean(i, "enabled", fp, bool(i)))


# ----------------------------------------------------------------------------------------------------
def _q(value: str) -> str:
    """A TOML basic string."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    out = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", out)
    return f'"{out}"'


def _v(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_v(x) for x in value) + "]"
    return _q(str(value))


def dumps_answers(a: Answers) -> str:
    """The answers as a commented TOML file that `load_answers` reads back to the same `Answers`."""
    lines = ["# asa-wizard answers file (docs/answers.md). No passwords: they come from the keyring,",
             f"# {LDAP_PASSWORD_ENV} / {WINRM_PASSWORD_ENV}, or a prompt.",
             f"version = {ANSWERS_VERSION}", f"dry_run = {_v(a.dry_run)}"]
    if a.no_exchange:
        lines.append("no_exchange = true")
    lines.append("")

    def section(name: str, items: list[tuple[str, Any]]) -> None:
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_v(v)}" for k, v in items if v is not None)
        lines.append("")

    t = a.target
    if t.is_lab:
        section("target", [("lab", t.lab)])
    else:
        section("target", [("dc", t.dc), ("ldap", t.ldap), ("bind", t.bind), ("user", t.user),
                           ("ca_file", t.ca_file), ("tls_name", t.tls_name),
                           ("insecure_skip_tls_verify", t.insecure_skip_tls_verify)])
        w = t.winrm
        section("target.winrm", [("transport", w.transport), ("scheme", w.scheme), ("port", w.port),
                                 ("ca_file", w.ca_file), ("user", w.user),
                                 ("insecure_skip_tls_verify", w.insecure_skip_tls_verify)])
    asa_items: list[tuple[str, Any]] = [("mode", a.asa.mode), ("name", a.asa.name)]
    if a.asa.mode == "create":
        asa_items += [("kind", a.asa.kind.value), ("ou", a.asa.ou)]
    asa_items.append(("enctypes", a.asa.enctypes))
    section("asa", asa_items)
    r = a.rollout
    section("rollout", [("first_server", r.first_server), ("concurrency", r.concurrency), ("servers", r.servers),
                        ("new_password", r.new_password), ("method", r.method)])
    section("spns", [("namespaces", a.spns.namespaces), ("move_from", a.spns.move_from)]
            + ([("confirm_servers_hold_credential", True)] if a.spns.confirm_servers_hold_credential else []))
    section("client_auth", [("outlook_anywhere", a.client_auth.outlook_anywhere), ("mapi", a.client_auth.mapi)])
    s = a.seg
    if s.enabled:
        section("seg", [("enabled", True), ("service_account", s.service_account), ("spn", s.spn),
                        ("delegate_to", s.delegate_to), ("test_users", s.test_users), ("ews_proxy", s.ews_proxy)])
    else:
        section("seg", [("enabled", False)])
    section("iis_auth", [("enabled", a.iis_auth.enabled)])
    return "\n".join(lines).rstrip() + "\n"


def save_answers(a: Answers, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_answers(a), encoding="utf-8")
    return path
