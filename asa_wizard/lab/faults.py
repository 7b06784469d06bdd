"""The lab's fault catalogue: ways to break a healthy organisation that the wizard can find and fix.

    broken = with_random_faults(load_scenario(find_scenario("healthy")), seed=42)
    broken.exercise.objectives   # the checks the trainee must make pass again
    broken.exercise.faults       # what was broken (for the instructor, never shown to the trainee)

Each fault names the checks that must fail once it is in place (the test suite proves that the catalogue
finds every fault) and a hint for the trainee. A seed always gives the same faults on the same scenario, so
an instructor can hand out seeds and students cannot memorise the answers.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from ..core.errors import ConfigError
from .scenario import LabExercise, LabServer, Scenario

DEFAULT_FAULT_COUNT = 3
DEFAULT_TIME_LIMIT_MINUTES = 45
SEED_ENV = "ASA_WIZARD_RANDOM_FAULTS"


@dataclass(frozen=True)
class Fault:
    """One fault of the catalogue applied to one subject (a server, an SPN, or the organisation)."""

    kind: str  # catalogue key
    subject: str  # EX02, HTTP/mail.contoso.com, or the ASA
    slot: str  # two faults on the same slot would undo or hide each other: never both
    checks: tuple[str, ...]  # the check ids that fail once the fault is in place
    hint: str
    apply: Callable[[Scenario], None]

    @property
    def label(self) -> str:
        return f"{self.kind} ({self.subject})"


# ----------------------------------------------------------------------------------------------------
def _asa_account(s: Scenario):
    if not s.asa:
        return None
    return next((a for a in s.accounts if a.sam.lower() == s.asa.lower()), None)


def _holds_current(s: Scenario, server: LabServer) -> bool:
    acct = _asa_account(s)
    cred = server.asa_latest
    return bool(acct and cred and cred.account.split("\\")[-1].lower() == acct.sam.lower()
                and cred.key_version == acct.key_version)


def _candidates(s: Scenario) -> list[Fault]:
    """Every fault that applies to the scenario as it is (healthy parts only), in a stable order."""
    out: list[Fault] = []
    acct = _asa_account(s)
    if acct is None:
        return out
    for server in s.servers:
        if not _holds_current(s, server):
            continue
        name = server.name

        def missing(sc: Scenario, name: str = name) -> None:
            srv = sc.server(name)
            assert srv is not None
            srv.asa_latest = None
            srv.asa_previous = None

        out.append(Fault("credential-missing", name, f"credential:{name}", ("rollout.coverage",),
                         "One Exchange server behind the namespace holds no ASA credential at all. Look at the "
                         "Rollout step: which server has nothing in the 'latest' column?", missing))
        if acct.key_version > 1 and acct.pwd_last_set is not None:
            def stale(sc: Scenario, name: str = name) -> None:
                srv = sc.server(name)
                a = _asa_account(sc)
                assert srv is not None and srv.asa_latest is not None and a is not None
                # the roll ran while the server was down: it kept the password from before the last roll
                srv.asa_previous = None
                srv.asa_latest.key_version = a.key_version - 1
                srv.asa_latest.when = (a.pwd_last_set or sc.now) - timedelta(days=21)

            out.append(Fault("credential-stale", name, f"credential:{name}", ("rollout.current",),
                             "One server holds an older password of the ASA than the one in Active Directory. "
                             "Copy the current credential to it; do not generate a new password.", stale))
        oa = server.vdirs.get(_service("outlook_anywhere"))
        if oa is not None and oa.internal_client_auth == "Negotiate":
            def oa_ntlm(sc: Scenario, name: str = name) -> None:
                srv = sc.server(name)
                assert srv is not None
                srv.vdirs[_service("outlook_anywhere")].internal_client_auth = "Ntlm"

            out.append(Fault("outlook-anywhere-ntlm", name, f"oa:{name}", ("auth.outlook-anywhere",),
                             "Outlook on the inside network is told to use NTLM on one server. Check the Client "
                             "authentication step.", oa_ntlm))
        mapi = server.vdirs.get(_service("mapi"))
        if mapi is not None and "Negotiate" in mapi.auth_methods:
            def mapi_off(sc: Scenario, name: str = name) -> None:
                srv = sc.server(name)
                assert srv is not None
                v = srv.vdirs[_service("mapi")]
                v.auth_methods = [m for m in v.auth_methods if m != "Negotiate"]

            out.append(Fault("mapi-no-negotiate", name, f"mapi:{name}", ("auth.mapi",),
                             "MAPI over HTTP does not offer Negotiate on one server. Check the Client "
                             "authentication step.", mapi_off))
    for spn in acct.spns:
        if not spn.upper().startswith("HTTP/"):
            continue

        def spn_missing(sc: Scenario, spn: str = spn) -> None:
            a = _asa_account(sc)
            assert a is not None
            a.spns = [x for x in a.spns if x.lower() != spn.lower()]

        out.append(Fault("spn-missing", spn, f"spn:{spn.lower()}", ("spn.present",),
                         "A namespace has no SPN, so clients get no Kerberos ticket and fall back to NTLM. Look "
                         "at the SPNs step.", spn_missing))
        if s.servers:
            server_name = s.servers[0].name

            def spn_duplicate(sc: Scenario, spn: str = spn, server_name: str = server_name) -> None:
                srv = sc.server(server_name)
                assert srv is not None
                srv.extra_spns = [*srv.extra_spns, spn]

            out.append(Fault("spn-duplicate", spn, f"spn:{spn.lower()}", ("spn.duplicate",),
                             "The same SPN is registered on two accounts and the KDC refuses to issue a ticket. "
                             "Find the second owner on the SPNs step.", spn_duplicate))
    if acct.enctypes is None or acct.enctypes & 0x18:
        def rc4_only(sc: Scenario) -> None:
            a = _asa_account(sc)
            assert a is not None
            a.enctypes = 4

        out.append(Fault("rc4-only", acct.sam, "asa:enctypes", ("asa.enctypes",),
                         "The ASA allows only RC4 tickets, which domain controllers stop issuing in 2026. Look at "
                         "the ASA account step.", rc4_only))
    return out


def _service(key: str):
    from .scenario import VDIR_SECTIONS

    return VDIR_SECTIONS[key]


def catalogue(scenario: Scenario) -> list[Fault]:
    """Every fault that can be put into `scenario` (one per kind and subject)."""
    return _candidates(scenario)


def pick_faults(scenario: Scenario, seed: int, count: int = DEFAULT_FAULT_COUNT) -> list[Fault]:
    """`count` faults for `scenario`, the same for the same seed; never two on the same slot or the same check."""
    pool = _candidates(scenario)
    if not pool:
        raise ConfigError(str(scenario.path), f"scenario {scenario.name!r} has nothing healthy to break",
                          "Use --random-faults with a healthy scenario: asa-wizard lab --scenario healthy "
                          "--random-faults 42.")
    rng = random.Random(f"{scenario.name}:{seed}")
    rng.shuffle(pool)
    chosen: list[Fault] = []
    slots: set[str] = set()
    checks: set[str] = set()
    for fault in pool:
        # one check per fault, so "2 of 3 faults fixed" counts faults: a second fault on the same check
        # (another server's stale credential) would be fixed or not together with the first in the count
        if fault.slot in slots or checks.intersection(fault.checks):
            continue
        chosen.append(fault)
        slots.add(fault.slot)
        checks.update(fault.checks)
        if len(chosen) == count:
            break
    return chosen


def with_faults(scenario: Scenario, faults: list[Fault], seed: int | None = None) -> Scenario:
    """A copy of `scenario` with the faults in place and an exercise whose objectives are their checks."""
    out = scenario.copy()
    for fault in faults:
        fault.apply(out)
    base = scenario.exercise  # the scenario's own exercise stays part of it
    objectives: list[str] = list(base.objectives) if base else []
    for fault in faults:
        for cid in fault.checks:
            if cid not in objectives:
                objectives.append(cid)
    out.exercise = LabExercise(
        objectives=objectives,
        hints=(list(base.hints) if base else []) + [f.hint for f in faults],
        time_limit_minutes=(base.time_limit_minutes if base and base.time_limit_minutes
                            else DEFAULT_TIME_LIMIT_MINUTES),
        faults=[f.label for f in faults],
    )
    if seed is not None:
        out.title = f"{scenario.title} (random faults, seed {seed})"
        out.briefing = (f"Something is broken in this organisation ({len(faults)} fault(s), seed {seed}). Find "
                        "every failing check and fix it with the wizard. Hints are released one at a time.")
    return out


def with_random_faults(scenario: Scenario, seed: int, count: int = DEFAULT_FAULT_COUNT) -> Scenario:
    return with_faults(scenario, pick_faults(scenario, seed, count), seed)


def parse_seed(text: str) -> int:
    """A seed from the command line or the environment: a whole number, or a ConfigError that says so."""
    try:
        seed = int(str(text).strip())
    except ValueError:
        raise ConfigError("--random-faults", f"{text!r} is not a whole number",
                          "Give a number as the seed, e.g. --random-faults 42.") from None
    if seed < 0:
        raise ConfigError("--random-faults", f"{seed} is negative", "Give a seed of 0 or more.")
    return seed


def seed_from_environment() -> int | None:
    """The seed a classroom session or `lab --random-faults` passed to the wizard's process, if any."""
    value = os.environ.get(SEED_ENV, "").strip()
    return parse_seed(value) if value else None
