"""The plan model: the ordered changes, the prerequisites and notes, and how a plan is kept in a journal."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..changes import Change

PLAN_VERSION = 1
KEYS_GROUP = "asa-keys"  # params["group"]: changes the executor applies together or not at all


@dataclass
class Prerequisite:
    """Something that must be true before the plan is applied. `status`: met | unmet | manual (the admin
    confirms it). A blocking one stops `apply` until it is resolved."""

    text: str
    status: str = "manual"
    blocking: bool = False
    fix: str = ""


@dataclass
class Plan:
    target: str  # a label for people: "Lab: fresh" / "contoso.com"
    asa: str | None  # DOMAIN\NAME$ of the ASA the plan works with
    changes: list[Change] = field(default_factory=list)
    prerequisites: list[Prerequisite] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    concurrency: int = 4
    version: int = PLAN_VERSION

    @property
    def blockers(self) -> list[Prerequisite]:
        """The blocking prerequisites not met: `apply` refuses to start while there is one."""
        return [p for p in self.prerequisites if p.blocking and p.status != "met"]

    def change(self, change_id: str) -> Change:
        for c in self.changes:
            if c.id == change_id:
                return c
        raise KeyError(change_id)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "target": self.target, "asa": self.asa, "dry_run": self.dry_run,
                "concurrency": self.concurrency, "changes": [c.to_dict() for c in self.changes],
                "prerequisites": [asdict(p) for p in self.prerequisites], "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Plan":
        return cls(target=d["target"], asa=d.get("asa"), dry_run=bool(d.get("dry_run")),
                   concurrency=int(d.get("concurrency", 4)),
                   changes=[Change.from_dict(c) for c in d.get("changes", [])],
                   prerequisites=[Prerequisite(**p) for p in d.get("prerequisites", [])],
                   notes=list(d.get("notes", [])), version=int(d.get("version", PLAN_VERSION)))

