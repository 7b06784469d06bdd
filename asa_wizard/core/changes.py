"""A change the wizard proposes or made: what it touches, old -> new, the manual commands that do the
same, how to undo it, and the checks that prove it. Previews, plans, the journal and the report all show
these; nothing here ever holds a secret."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class System(str, enum.Enum):
    DIRECTORY = "directory"
    EXCHANGE = "exchange"

    def __str__(self) -> str:
        return self.value


@dataclass
class Change:
    id: str  # stable within a plan: "asa.create", "spn.add:HTTP/mail.contoso.com", "rollout.copy:EX02"
    system: System
    action: str  # create-account, delete-account, add-spns, remove-spns, set-enctypes, set-uac, set-delegate-to,
    #              roll-generate, roll-copy, remove-asa, set-oa-client-auth, set-mapi-auth, add-iis-iusrs,
    #              remove-iis-iusrs, set-iis-auth
    target: str  # a DN or a server name
    summary: str  # one line for a person: "Create computer account EXASA$ in OU=Service Accounts,DC=..."
    attribute: str | None = None
    old: Any = None
    new: Any = None
    params: dict[str, Any] = field(default_factory=dict)  # what the executor needs (never a secret)
    commands: list[str] = field(default_factory=list)  # the equivalent manual commands, copyable
    undo_commands: list[str] = field(default_factory=list)
    proven_by: list[str] = field(default_factory=list)  # check ids
    step: str = ""  # the wizard step that owns it
    depends_on: list[str] = field(default_factory=list)  # change ids that must be done first
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["system"] = self.system.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Change":
        d = dict(d)
        d["system"] = System(d["system"])
        return cls(**d)
