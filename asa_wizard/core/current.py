"""The one rule for "this Exchange server holds the ASA's current password".

Proof is by key version: a server holds the current password when it accepts a ticket for the namespace that
the KDC encrypted with the ASA's current key (`msDS-KeyVersionNumber`). A server that refuses such a ticket
(KRB_AP_ERR_MODIFIED) does not, whatever its credential list says.

Without a probe, `WhenAdded` is only a hint: Exchange stamps it when a credential is pushed to the server,
not when the password was set, so a `-CopyFrom` of an old password looks new, and a credential pushed before
the password changed in AD (every correct roll pushes first) looks a little older than `pwdLastSet`. The
hint is reported as such (`proven=False`); nothing that must not happen on a wrong guess (registering SPNs,
the order of a roll) relies on a hint alone without saying so.

Every place that decides it (the checks, the plan, the rollout engine, the wizard) calls `credential_verdict`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable

from .model import Account, AsaCredential, ExchangeServer, normalize_account
from .ports import ProbeOutcome, ProbeResult

# A roll pushes to the servers first and sets AD last: the servers' WhenAdded can precede pwdLastSet by the
# length of the run. Used only for the hint.
HINT_WINDOW = timedelta(hours=6)


class Holding(str, enum.Enum):
    CURRENT = "current"  # holds the ASA's current password
    STALE = "stale"  # holds a credential of the ASA, but not its current password
    MISSING = "missing"  # holds no credential of the ASA
    UNKNOWN = "unknown"  # the server's credentials were not read

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Verdict:
    holding: Holding
    proven: bool  # True: decided by a ticket of the ASA's key version; False: WhenAdded against pwdLastSet
    why: str
    credential: AsaCredential | None = None  # the server's credential of the ASA (newest), if any

    @property
    def current(self) -> bool:
        return self.holding == Holding.CURRENT


def same_account(reported: str, qualified: str) -> bool:
    """`Tailspintoys\\E15ASA$` is `TAILSPINTOYS\\E15ASA$`; a bare name compares by sAMAccountName."""
    a, b = normalize_account(reported), normalize_account(qualified)
    if a == b:
        return True
    return a.split("\\")[-1] == b.split("\\")[-1] and ("\\" not in a or "\\" not in b)


def _aware(d: datetime | None) -> datetime | None:
    if d is None:
        return None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def hint_is_current(cred: AsaCredential, asa: Account) -> bool:
    """WhenAdded against pwdLastSet (only a hint; see the module docstring)."""
    added, pwd = _aware(cred.when_added), _aware(asa.pwd_last_set)
    if added is None or pwd is None:
        return True
    return added >= pwd - HINT_WINDOW


def proof_for(server: ExchangeServer, probes: Iterable[ProbeResult] | None) -> ProbeResult | None:
    """The decisive probe of this server, if any: a refusal outweighs an acceptance (one namespace whose ticket
    the server cannot decrypt is enough to prove it lacks the key)."""
    name = server.name.lower()
    mine = [p for p in (probes or []) if p.server.lower() == name]
    for p in mine:
        if p.outcome == ProbeOutcome.REJECTED:
            return p
    for p in mine:
        if p.outcome == ProbeOutcome.ACCEPTED:
            return p
    return None


def credential_verdict(server: ExchangeServer, asa: Account, qualified: str,
                       probes: Iterable[ProbeResult] | None = None) -> Verdict:
    """Does `server` hold the current password of `asa` (named `qualified`, DOMAIN\\NAME$)? See the module."""
    if not server.asa_state_known and server.asa_latest is None:
        return Verdict(Holding.UNKNOWN, False, f"the credentials of {server.name} were not read")
    creds = [c for c in (server.asa_latest, server.asa_previous) if c is not None and same_account(c.account, qualified)]
    cred = creds[0] if creds else None
    proof = proof_for(server, probes)
    if proof is not None and proof.outcome == ProbeOutcome.REJECTED:
        return Verdict(Holding.STALE if cred else Holding.MISSING, True,
                       f"{server.name} refused a ticket for {proof.spn}"
                       + (f" (key version {proof.kvno})" if proof.kvno is not None else "") + ": it lacks the key",
                       cred)
    if proof is not None and proof.kvno is not None and asa.key_version is not None:
        if proof.kvno == asa.key_version:
            return Verdict(Holding.CURRENT, True, f"{server.name} accepted a ticket of key version {proof.kvno}, the "
                           "ASA's current msDS-KeyVersionNumber", cred)
        return Verdict(Holding.STALE if cred else Holding.MISSING, True,
                       f"{server.name} accepted a ticket of key version {proof.kvno}, but the ASA's current "
                       f"msDS-KeyVersionNumber is {asa.key_version}", cred)
    if cred is None:
        return Verdict(Holding.MISSING, False, f"{server.name} holds no credential of {qualified}")
    newest = server.asa_latest is not None and same_account(server.asa_latest.account, qualified)
    if newest and hint_is_current(cred, asa):
        return Verdict(Holding.CURRENT, False, f"{server.name}'s newest credential was added at or after the "
                       "password change (WhenAdded: a hint, not a proof)", cred)
    return Verdict(Holding.STALE, False, f"{server.name}'s credential of {qualified} was added before the password "
                   "was changed in AD (WhenAdded: a hint, not a proof)", cred)
