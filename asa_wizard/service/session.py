"""Opening a target and reading it: the calls the wizard's workers and every headless command make.

Plain functions with no UI (no textual, no printing): progress goes to a callback, cancellation comes in as
a `threading.Event`, errors are `WizardError`s that name the fix. The wizard and the headless commands call
the same functions, so a target opened by either reads, checks and proves the same way.
"""

from __future__ import annotations

import getpass
import importlib
import os
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol

from ..core.answers import LDAP_PASSWORD_ENV, WINRM_PASSWORD_ENV, Answers
from ..core.errors import ConfigError
from ..core.model import Environment
from ..core.secrets import Secret
from ..core.steps import EXCHANGE_CHECKS
from ..target import Target

Progress = Callable[[str, int, int], None]

NO_EXCHANGE = "Not checked: --no-exchange (the Exchange servers were not read or contacted)."
NO_GSSAPI = ("No Kerberos probe: python-gssapi is not installed. Install it with pip install 'asa-wizard[kerberos]' "
             "(it builds against the MIT Kerberos libraries: libkrb5-dev or krb5-devel).")
KERBEROS_CHECKS = ("kerberos.ticket", "kerberos.server", "ep.channel-binding", "kerberos.s4u")  # need the probe


class SecretSource(Protocol):
    def get(self, key: str) -> Secret | None: ...


def credential_key(kind: str, user: str, dc: str) -> str:
    """The one keyring key scheme: `ldap:CONTOSO\\admin@dc1.contoso.com`, `winrm:CONTOSO\\admin@dc1.contoso.com`.
    The wizard stores under it and every headless command looks it up the same way."""
    return f"{kind}:{user}@{dc}"


class NeedsPassword(ConfigError):
    """No password for `key` was found (environment, keyring, memory) and there is no one to prompt."""

    def __init__(self, env_name: str, key: str, user: str) -> None:
        ConfigError.__init__(self, env_name, f"no password available for {user}",
                             f"Set {env_name}, store it in the keyring (the wizard offers to), or run on a terminal.")
        self.key = key
        self.user = user


class Opened:
    """A target plus what the work needs beside it: the clock for the checks, who is acting, the Kerberos probe
    (for a real target made once discovery has named the realm) and the checks not to run, with why."""

    def __init__(self, target: Target, answers: Answers, *, make_probe: Any = None,
                 skip: dict[str, str] | None = None) -> None:
        self.target = target
        self.answers = answers
        self.skip = dict(skip or {})
        self._make_probe = make_probe
        self.env: Environment | None = None  # the last discovery of this target (the rollout's proof needs it)
        world = target.lab
        self.now: datetime | None = world.scenario.now if world is not None else None
        self.actor = (world.scenario.admin_user if world is not None else
                      (answers.target.user or getpass.getuser()))

    @property
    def label(self) -> str:
        return self.target.label

    def probe(self, env: Environment | None) -> Any:
        """The Kerberos probe for this target (None: the kerberos checks say why in `skip`)."""
        if self.target.kerberos is None and self._make_probe is not None and env is not None:
            self.target.kerberos, self._make_probe = self._make_probe(env), None
        if self.target.kerberos is not None and self.target.exchange is None:
            return _TicketsOnly(self.target.kerberos)
        return self.target.kerberos

    def close(self) -> None:
        probe = self.target.kerberos
        if not self.target.is_lab and hasattr(probe, "close"):
            probe.close()
        self.target.close()


class _TicketsOnly:
    """The probe's tickets from the KDC, and nothing sent to an Exchange server (--no-exchange)."""

    def __init__(self, probe: Any) -> None:
        self._probe = probe

    def describe(self) -> str:
        return self._probe.describe()

    def service_ticket(self, spn: str) -> Any:
        return self._probe.service_ticket(spn)

    def probe_server(self, server: Any, namespace: str, paths: Any = None) -> Any:
        from ..core.ports import ProbeOutcome, ProbeResult

        return ProbeResult(server.name, f"HTTP/{namespace}", ProbeOutcome.ERROR, NO_EXCHANGE)

    def s4u(self, service_account: str, user: str, spn: str, server: Any) -> Any:
        from ..core.ports import ProbeOutcome, ProbeResult

        return ProbeResult(server.name, spn, ProbeOutcome.ERROR, NO_EXCHANGE)


# --- opening --------------------------------------------------------------------------------------------
def fill_from_lab(answers: Answers, world: Any) -> None:
    """The lab's own choices fill what the answers leave open: its ASA, and its gateway when the answers did not
    come from a file (an answers file that leaves the SEG out means no SEG)."""
    scenario = world.scenario
    if answers.asa.name is None and scenario.asa:
        answers.asa.name = scenario.asa
    if not answers.seg.enabled and scenario.seg is not None and answers.path is None:
        answers.seg.enabled = True
        answers.seg.service_account = scenario.seg.service_account
        answers.seg.test_users = list(scenario.seg.test_users)
        answers.seg.ews_proxy = scenario.seg.ews_proxy
        answers.iis_auth.enabled = True


def open_target(answers: Answers, *, exchange: bool = True, secrets: SecretSource | None = None,
                prompt: bool = True) -> Opened:
    """Open the lab or the real organisation the answers name. Without `exchange` nothing talks to the Exchange
    servers, nor with the answers' `no_exchange` (--no-exchange). Passwords come from the environment, `secrets`
    (the wizard's store), the keyring, or a prompt on a terminal when `prompt`; none found raises `NeedsPassword`
    (the wizard asks in a modal and calls again)."""
    t = answers.target
    exchange = exchange and not answers.no_exchange
    skip = {} if exchange else dict.fromkeys(EXCHANGE_CHECKS, NO_EXCHANGE)
    if t.is_lab:
        from ..target import open_lab

        target = open_lab(t.lab)
        if not exchange:
            target.exchange = None
        fill_from_lab(answers, target.lab)
        return Opened(target, answers, skip=skip)
    target, make_probe = _open_real(answers, exchange=exchange, secrets=secrets, prompt=prompt)
    if make_probe is None:
        skip.update({cid: NO_GSSAPI for cid in KERBEROS_CHECKS if cid not in skip})
    return Opened(target, answers, make_probe=make_probe, skip=skip)


def find_secret(env_name: str, key: str, user: str, *, secrets: SecretSource | None = None,
                prompt: bool = True, prompt_text: str = "") -> Secret:
    """A password from the environment, the given store, the keyring, or a prompt (only on a terminal)."""
    value = os.environ.get(env_name)
    if value:
        return Secret(value)
    stores: list[Any] = [secrets] if secrets is not None else []
    if secrets is None:
        try:
            from ..adapters.secrets import KeyringSecretStore

            store = KeyringSecretStore()
            if store.available:
                stores.append(store)
        except Exception:  # a broken keyring is not a reason to stop: fall through to the prompt
            pass
    for store in stores:
        try:
            found = store.get(key)
        except Exception:
            found = None
        if found:
            return found
    if prompt and sys.stdin.isatty():
        return Secret(getpass.getpass(prompt_text or f"Password for {user}: "))
    raise NeedsPassword(env_name, key, user)


def _open_real(answers: Answers, *, exchange: bool, secrets: SecretSource | None, prompt: bool):
    """The ports of a real organisation, and a maker of its Kerberos probe (None: python-gssapi is missing)."""
    from ..adapters.ldap import LdapDirectory, LdapSettings

    t = answers.target
    ldap_password = None
    if t.bind != "kerberos":
        ldap_password = find_secret(LDAP_PASSWORD_ENV, credential_key("ldap", t.user or "", t.dc or ""), t.user or "",
                                    secrets=secrets, prompt=prompt,
                                    prompt_text=f"Password for {t.user} on {t.dc}: ")
    directory = LdapDirectory(LdapSettings(host=t.dc or "", mode=t.ldap, bind=t.bind, user=t.user or "",
                                           password=ldap_password, ca_file=t.ca_file,
                                           insecure_skip_tls_verify=t.insecure_skip_tls_verify, tls_name=t.tls_name,
                                           use_global_catalog=True))
    make_probe = _kerberos_maker(answers, ldap_password)
    label = f"{t.dc}"
    if not exchange:
        return Target(label=label, directory=directory, exchange=None, kerberos=None,
                      insecure_tls=t.insecure_skip_tls_verify), make_probe
    from ..adapters.exchange import real_exchange
    from ..adapters.winrm import WinRmSettings

    w = t.winrm
    winrm_user = w.user or t.user or ""
    winrm_password = None
    if w.transport != "kerberos" or winrm_user:
        if os.environ.get(WINRM_PASSWORD_ENV) or winrm_user != t.user or ldap_password is None:
            if w.transport != "kerberos":
                winrm_password = find_secret(WINRM_PASSWORD_ENV, credential_key("winrm", winrm_user, t.dc or ""),
                                             winrm_user, secrets=secrets, prompt=prompt,
                                             prompt_text=f"WinRM password for {winrm_user}: ")
        else:
            winrm_password = ldap_password
    settings = WinRmSettings(transport=w.transport, user=winrm_user, password=winrm_password, scheme=w.scheme,
                             port=w.port, ca_file=w.ca_file, validate_certificate=not w.insecure_skip_tls_verify)
    settings.check()
    return Target(label=label, directory=directory, exchange=real_exchange(settings), kerberos=None,
                  insecure_tls=t.insecure_skip_tls_verify or w.insecure_skip_tls_verify), make_probe


def _kerberos_maker(answers: Answers, password: Any):
    """How to make the GSSAPI probe once discovery knows the realm: as the directory user (a TGT of its own from
    the same password, in memory), or from the ticket cache with the Kerberos bind. None without python-gssapi."""
    t = answers.target
    try:
        for module in ("gssapi", "krb5"):
            importlib.import_module(module)
    except ImportError:
        return None

    def make(env: Any) -> Any:
        from ..adapters.kerberos import GssKerberosProbe

        asa = env.asa
        domain = env.forest.domain_of_dn(asa.dn) if asa is not None else None
        realm = domain.realm if domain else env.forest.root_domain.upper()
        principal = None if t.bind == "kerberos" or not t.user else principal_of(t.user, env, realm)
        return GssKerberosProbe(realm, principal=principal, password=password if principal else None,
                                ca_file=t.ca_file, verify_tls=not t.insecure_skip_tls_verify)

    return make


def principal_of(user: str, env: Any, realm: str) -> str:
    """DOMAIN\\user or user@domain as a Kerberos principal (the realm of the domain it names)."""
    if "\\" in user:
        netbios, _, name = user.partition("\\")
        domain = next((d for d in env.forest.domains if d.netbios_name.lower() == netbios.lower()), None)
        return f"{name}@{domain.realm if domain else realm}"
    name, _, suffix = user.partition("@")
    domain = next((d for d in env.forest.domains if d.dns_name.lower() == suffix.lower()), None)
    return f"{name}@{domain.realm if domain else (suffix.upper() or realm)}"


# --- reading ---------------------------------------------------------------------------------------------
def test_connections(opened: Opened) -> list[tuple[str, str]]:
    """(what, result) for the directory, Exchange and Kerberos: each asked one real question."""
    target = opened.target
    out = [("Directory", target.directory.describe())]
    forest = target.directory.read_forest()
    out.append(("Forest", f"{forest.root_domain} ({len(forest.domains)} domain(s), {len(forest.sites)} site(s))"))
    if target.exchange is not None:
        out.append(("Exchange", target.exchange.describe()))
    if target.kerberos is not None:
        out.append(("Kerberos", target.kerberos.describe()))
    elif opened._make_probe is not None:
        out.append(("Kerberos", "GSSAPI probe: made after discovery names the realm"))
    return out


def discover(opened: Opened, *, progress: Progress | None = None,
             cancel: threading.Event | None = None) -> Environment:
    """Read the organisation through the target's ports, with the ASA, gateway and namespaces the answers name."""
    from ..core.discovery import DiscoveryOptions, discover as read
    from ..core.plan import discovery_seg

    a = opened.answers
    opened.env = read(opened.target.directory, opened.target.exchange,
                      DiscoveryOptions(asa_sam=a.asa.name, seg=discovery_seg(a), namespaces=list(a.spns.namespaces)),
                      progress=progress, cancel=cancel)
    return opened.env


def roll_proof(opened: Opened) -> tuple[Any, list[str]]:
    """The rollout's key-version proof: the target's Kerberos probe and the host names to prove each server on
    (the answers' namespaces, else every discovered one). (None, []) without Exchange or a probe."""
    if opened.target.exchange is None:
        return None, []
    env = opened.env
    probe = opened.probe(env) if env is not None else opened.target.kerberos
    if probe is None:
        return None, []
    hosts = list(opened.answers.spns.namespaces) or ([n.host for n in env.namespaces] if env is not None else [])
    return probe, list(dict.fromkeys(h.lower() for h in hosts))


def run_checks(opened: Opened, env: Environment, *, only: list[str] | tuple[str, ...] | None = None,
               probe: Any = None, cancel: threading.Event | None = None) -> list[Any]:
    """The findings in catalogue order; the checks this target cannot run are skipped findings that say why.
    `probe`: a finished `ProbeReport` (Verify has one); None runs the target's probe when a kerberos check runs."""
    from ..core.checks import Finding, Status, run_catalogue, select

    try:
        checks = select(only)
    except ValueError as exc:
        raise ConfigError("--only", str(exc), "Use check ids from docs/checks.md or area names.") from None
    run = [c.id for c in checks if c.id not in opened.skip]
    fresh = run_catalogue(env, probe=probe if probe is not None else opened.probe(env), now=opened.now, only=run,
                          cancel=cancel) if run else []
    by_check: dict[str, list[Any]] = {}
    for f in fresh:
        by_check.setdefault(f.check_id, []).append(f)
    out: list[Any] = []
    for c in checks:
        out.extend(by_check.get(c.id, []) if c.id in run else
                   [Finding(c.id, c.title, Status.SKIPPED, skipped_reason=opened.skip[c.id])])
    return out


@dataclass
class Verification:
    """What Verify saw: the environment read again, the Kerberos proof and every finding."""

    env: Environment
    proof: Any  # core.checks.ProbeReport
    findings: list[Any] = field(default_factory=list)

    @property
    def status(self) -> str:
        """Verify's own status: its result (fail, warn or pass)."""
        from ..core.checks import worst

        return str(worst(self.findings).value) if self.findings else "skipped"


def verify(opened: Opened, *, progress: Progress | None = None,
           cancel: threading.Event | None = None) -> Verification:
    """Read everything again, prove Kerberos on every server, run the whole catalogue."""
    from ..core.checks import ProbeReport, run_probes

    say = progress or (lambda what, done, total: None)
    env = discover(opened, progress=progress, cancel=cancel)
    say("Proving Kerberos on every server", 0, 0)
    probe = opened.probe(env)
    proof = run_probes(env, probe, cancel=cancel) if probe is not None else ProbeReport(
        s4u_skipped="No Kerberos probe is available for this target.")
    say("Running the whole check catalogue", 0, 0)
    return Verification(env, proof, run_checks(opened, env, probe=proof, cancel=cancel))
