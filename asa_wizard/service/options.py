"""The one definition of a target's options.

Every way of naming a target reads this table: the command-line flags of `check`, `plan`, `apply`, `resume` and
`undo` (`add_target_arguments`, `answers_from_args`), the answers file's `[target]` (`core.answers`, whose
fields the `path` of each option names), and the wizard's real-domain form (`tui/steps/target.py` builds one
field per option and reads them back with `answers_from_fields`).

A new target option is one `Option` here plus its field in `core.answers` (`TargetAnswers` / `WinRmAnswers` and
the reader and writer of `[target]`); the flag and the wizard field follow from this table.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
from typing import Any, Iterable

from ..core.answers import (BIND_METHODS, HOST_RE, LDAP_MODES, WINRM_SCHEMES, WINRM_TRANSPORTS, Answers,
                            TargetAnswers)
from ..core.errors import ConfigError


@dataclass(frozen=True)
class Option:
    path: str  # where it lives in Answers: "target.dc", "target.winrm.port", "asa.name", "seg.test_users"
    flag: str  # the command-line flag
    label: str  # the wizard's field label
    help: str  # the flag's help (and the field's hint)
    kind: str = "str"  # str | int | bool | choice | list
    choices: tuple[str, ...] = ()
    placeholder: str = ""
    metavar: str | None = None
    section: str = "directory"  # directory | exchange | accounts: how the wizard groups its fields
    aliases: tuple[str, ...] = ()  # other spellings of the flag

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


# The real target, in the order the wizard's form shows it.
TARGET_OPTIONS: tuple[Option, ...] = (
    Option("target.dc", "--dc", "Domain controller (FQDN)", "a domain controller (host name)",
           placeholder="dc1.contoso.com", metavar="HOST"),
    Option("target.ldap", "--ldap", "LDAP over TLS", "LDAPS (636) or StartTLS (389)", kind="choice",
           choices=LDAP_MODES),
    Option("target.bind", "--bind", "Bind method", "simple (user and password), kerberos (current ticket) or ntlm",
           kind="choice", choices=BIND_METHODS),
    Option("target.user", "--user", "User", "DOMAIN\\user or user@domain (the password: keyring, "
           "ASA_WIZARD_LDAP_PASSWORD, or a prompt)", placeholder="CONTOSO\\admin"),
    Option("target.ca_file", "--ca-file", "CA file (PEM) of the DC's certificate",
           "PEM file of the CA that issued the DC's certificate (default: the system store)",
           placeholder="/etc/ssl/contoso-ca.pem", metavar="FILE"),
    Option("target.tls_name", "--dc-tls-name", "Name on the DC's certificate",
           "the name on the DC's certificate, when --dc is an address (default: --dc)",
           placeholder="dc1.contoso.com", metavar="NAME"),
    Option("target.insecure_skip_tls_verify", "--insecure-skip-tls-verify",
           "Skip TLS certificate validation (not recommended; shown in red)",
           "do not validate the DC's certificate (not recommended; reported as insecure)", kind="bool"),
    Option("target.winrm.transport", "--winrm-transport", "WinRM transport to the Exchange servers",
           "how WinRM authenticates to the Exchange servers", kind="choice", choices=WINRM_TRANSPORTS,
           section="exchange"),
    Option("target.winrm.scheme", "--winrm-scheme", "WinRM scheme",
           "https (5986) or http (5985, message encryption always on)", kind="choice", choices=WINRM_SCHEMES,
           section="exchange"),
    Option("target.winrm.port", "--winrm-port", "WinRM port", "default: 5986 for https, 5985 for http",
           kind="int", placeholder="5986", section="exchange"),
    Option("target.winrm.ca_file", "--winrm-ca-file", "CA file (PEM) of the Exchange servers' certificates",
           "PEM file of the CA of the Exchange servers' WinRM certificates", placeholder="/etc/ssl/contoso-ca.pem",
           metavar="FILE", section="exchange"),
    Option("target.winrm.user", "--winrm-user", "WinRM user (empty: the directory user)",
           "default: --user (password: ASA_WIZARD_WINRM_PASSWORD, keyring, prompt)", placeholder="CONTOSO\\admin",
           section="exchange"),
    Option("target.winrm.insecure_skip_tls_verify", "--winrm-insecure-skip-tls-verify",
           "Skip WinRM certificate validation (not recommended; shown in red)",
           "do not validate the Exchange servers' certificates (not recommended; reported as insecure)",
           kind="bool", section="exchange"),
    Option("no_exchange", "--no-exchange", "Directory only: no WinRM to the Exchange servers",
           "the directory only (no WinRM): checks that need the Exchange servers are skipped, plans hold "
           "directory-side changes only (same as no_exchange = true in the answers)", kind="bool",
           section="exchange"),
)

# What the checks look at beside the target: which account is the ASA, the gateway's account and test users.
ACCOUNT_OPTIONS: tuple[Option, ...] = (
    Option("asa.name", "--asa", "ASA (sAMAccountName; empty: the one the servers use)",
           "the ASA's sAMAccountName (default: the one the servers use)", placeholder="EXASA$", metavar="SAM",
           section="accounts"),
    Option("seg.service_account", "--seg-account", "Gateway (SEG) service account (empty: no gateway)",
           "the Secure Email Gateway's service account, to check KCD", placeholder="svc_awseg", metavar="SAM",
           section="accounts"),
    Option("seg.test_users", "--seg-test-user", "Gateway test users (comma-separated)",
           "a user to prove the gateway's delegation with (repeatable; with --seg-account)", kind="list",
           placeholder="jdoe, asmith", metavar="USER", section="accounts", aliases=("--test-user",)),
    Option("spns.namespaces", "--namespace", "Namespaces besides the discovered ones (comma-separated)",
           "a namespace (host name) to look at besides the discovered ones (repeatable; same as [spns] "
           "namespaces in the answers)", kind="list", placeholder="mail.contoso.com", metavar="HOST",
           section="accounts"),
)

OPTIONS: tuple[Option, ...] = TARGET_OPTIONS + ACCOUNT_OPTIONS


def by_path(path: str) -> Option:
    return next(o for o in OPTIONS if o.path == path)


# --- the command line -----------------------------------------------------------------------------------
def add_target_arguments(p: argparse.ArgumentParser, *, profile: bool = False, overrides: bool = False) -> None:
    """The target flags, one per option. Defaults are None so that only what the user typed counts: with
    `overrides` (plan, apply, resume, undo) they change the answers file's or the journal's [target]."""
    title = ("target (overrides the answers file's or the journal's [target])" if overrides
             else "target (one of --lab, --dc, --profile)")
    g = p.add_argument_group(title)
    g.add_argument("--lab", metavar="SCENARIO", help="the embedded lab, fresh from this scenario")
    if profile:
        g.add_argument("--profile", metavar="FILE", help="an answers file whose [target] (and ASA / SEG) to use")
    for o in OPTIONS:
        kw: dict[str, Any] = {"help": o.help, "dest": o.dest, "default": None}
        if o.kind == "bool":
            kw["action"] = "store_const"
            kw["const"] = True
        elif o.kind == "choice":
            kw["choices"] = o.choices
        elif o.kind == "int":
            kw["type"] = int
        elif o.kind == "list":
            kw["action"] = "append"
        if o.metavar and o.kind not in ("bool",):
            kw["metavar"] = o.metavar
        g.add_argument(o.flag, *o.aliases, **kw)


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set(obj: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, last, value)


def value_of(answers: Answers, option: Option) -> Any:
    return _get(answers, option.path)


def apply_values(answers: Answers, values: dict[str, Any]) -> Answers:
    """Set option values (by path) on the answers, as typed: strings stripped (blank is unset), the WinRM port
    following its scheme when not given, the gateway switched on when its account is named."""
    for path, value in values.items():
        option = by_path(path)
        if option.kind == "bool":
            value = bool(value)
        if option.kind in ("str",) and isinstance(value, str):
            value = value.strip() or None
        if option.kind == "int" and isinstance(value, str):
            text = value.strip()
            if not text:
                value = None
            elif not text.isdigit() or not 0 < int(text) < 65536:
                raise ConfigError(option.label, f"{text!r} is not a port number",
                                  "Type a number from 1 to 65535, or leave it empty for the default.")
            else:
                value = int(text)
        if option.kind == "list" and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if path == "spns.namespaces":
            value = [h.strip().lower() for h in value or [] if h.strip()]
            bad = [h for h in value if not HOST_RE.fullmatch(h)]
            if bad:
                raise ConfigError(option.flag, f"{bad[0]!r} is not a host name",
                                  "Name a namespace as clients type it: mail.contoso.com.")
        if path == "target.winrm.port" and value is None:
            scheme = values.get("target.winrm.scheme", answers.target.winrm.scheme)
            value = 5986 if scheme == "https" else 5985
        _set(answers, path, value)
    if "seg.service_account" in values:
        answers.seg.enabled = bool(answers.seg.service_account)
    if "asa.name" in values and answers.asa.name:
        answers.asa.mode = "reuse"
    if "seg.test_users" in values and answers.seg.test_users and not answers.seg.service_account:
        raise ConfigError(by_path("seg.test_users").flag, "test users are for the gateway's delegation checks",
                          "Name the gateway's service account too: --seg-account SAM (in the wizard: the "
                          "gateway (SEG) service account field).")
    return answers


def answers_from_args(args: argparse.Namespace, base: Answers | None = None) -> Answers:
    """The answers a command works with: `base` (the answers file, the journal's record, or a fresh one) with
    what the flags say on top. `--lab` or `--dc` replace the whole target; the other flags change one field."""
    answers = copy.deepcopy(base) if base is not None else Answers()
    lab, dc = getattr(args, "lab", None), getattr(args, "dc", None)
    if lab and dc:
        raise ConfigError("command line", "--lab and --dc both given", "A target is either the lab or a domain "
                          "controller: give one of them.")
    if lab:
        answers.target = TargetAnswers(lab=lab)
    elif dc and (answers.target.is_lab or base is None):
        answers.target = TargetAnswers(dc=dc)
    given = {o.path: getattr(args, o.dest) for o in OPTIONS
             if getattr(args, o.dest, None) is not None}
    if answers.target.is_lab:
        ignored = [by_path(p).flag for p in given if p.startswith("target.")]
        if ignored:
            raise ConfigError(", ".join(ignored), "these options are for a real domain, not the lab",
                              "Leave them out with --lab, or give --dc HOST instead of --lab.")
    if "target.winrm.scheme" in given and "target.winrm.port" not in given:
        given["target.winrm.port"] = None  # the port follows the scheme given
    apply_values(answers, given)
    if not answers.target.is_lab and not answers.target.dc:
        raise ConfigError("command line", "no target",
                          "Give --lab SCENARIO, --dc HOST (with --user), or --profile FILE.")
    if (not answers.target.is_lab and answers.target.bind != "kerberos" and not answers.target.user):
        raise ConfigError("--user", f"the {answers.target.bind} bind needs a user",
                          "Add --user 'CONTOSO\\admin', or use --bind kerberos with a ticket cache (kinit).")
    return answers


def answers_from_fields(values: dict[str, Any], base: Answers | None = None) -> Answers:
    """The wizard's real-domain form (one value per option path) as answers for a real domain."""
    answers = copy.deepcopy(base) if base is not None else Answers()
    answers.target = TargetAnswers(dc=(values.get("target.dc") or "").strip() or None)
    apply_values(answers, {k: v for k, v in values.items() if k != "target.dc"})
    if not answers.target.dc:
        raise ConfigError(by_path("target.dc").label, "no domain controller",
                          "Type the domain controller's name (dc1.contoso.com), then connect.")
    if answers.target.bind != "kerberos" and not answers.target.user:
        raise ConfigError(by_path("target.user").label, f"the {answers.target.bind} bind needs a user",
                          "Type the user (CONTOSO\\admin), or choose the Kerberos bind (current ticket).")
    return answers


def options_in(section: str) -> Iterable[Option]:
    return (o for o in OPTIONS if o.section == section)
