"""The journal: JSON lines, one event per line, written before and after every action so that an
interrupted run can resume and a later run can undo. Never holds a secret (values pass through
`scrub` and the writer refuses `Secret` objects).

An event: {"v": 1, "run": <run id>, "seq": n, "ts": ISO-8601 UTC, "actor": "DOMAIN\\user",
           "event": "run-start" | "intent" | "done" | "failed" | "undone" | "run-end" | "note",
           "change": {Change.to_dict()} | null, "undo": {...} | null, "message": str}

`intent` is written before an action, `done` or `failed` after it. A change with an `intent` and no
`done`/`failed` was interrupted: resume re-reads the world before deciding whether to redo it.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .changes import Change
from .secrets import Secret

JOURNAL_VERSION = 1


def default_journal_dir() -> Path:
    base = os.environ.get("ASA_WIZARD_DATA_DIR")
    if base:
        return Path(base) / "journals"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "asa-wizard" / "journals"


def _check_no_secret(obj: Any) -> None:
    if isinstance(obj, Secret):
        raise TypeError("a Secret cannot be written to the journal")
    if isinstance(obj, dict):
        for v in obj.values():
            _check_no_secret(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_no_secret(v)


def _default(o: Any) -> Any:
    if isinstance(o, Secret):
        raise TypeError("a Secret cannot be written to the journal")
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if hasattr(o, "value"):  # enums
        return o.value
    raise TypeError(f"cannot journal {type(o).__name__}")


@dataclass
class JournalEvent:
    run: str
    seq: int
    ts: str
    event: str
    actor: str = ""
    change: dict[str, Any] | None = None
    undo: dict[str, Any] | None = None
    message: str = ""
    v: int = JOURNAL_VERSION
    data: dict[str, Any] | None = None  # run-start: the plan and target; notes: skipped / undo-failed changes

    @property
    def change_id(self) -> str | None:
        return self.change.get("id") if self.change else None


@dataclass
class Journal:
    path: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    actor: str = ""
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(cls, directory: Path | None = None, *, actor: str = "", label: str = "run") -> "Journal":
        directory = directory or default_journal_dir()
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        j = cls(path=directory / f"{stamp}-{label}.jsonl", actor=actor)
        return j

    @classmethod
    def open(cls, path: Path) -> "Journal":
        """Continue an existing journal (resume/undo append to it, with the same run id)."""
        events = list(read_events(path))
        run = events[0].run if events else uuid.uuid4().hex[:12]
        j = cls(path=path, run=run, actor=events[0].actor if events else "")
        j._seq = max((e.seq for e in events), default=0)
        return j

    def write(self, event: str, change: Change | None = None, *, undo: dict[str, Any] | None = None,
              message: str = "", data: dict[str, Any] | None = None) -> JournalEvent:
        payload_change = change.to_dict() if change else None
        _check_no_secret(payload_change)
        _check_no_secret(undo)
        _check_no_secret(data)
        with self._lock:
            self._seq += 1
            ev = JournalEvent(run=self.run, seq=self._seq, ts=datetime.now(timezone.utc).isoformat(),
                              event=event, actor=self.actor, change=payload_change, undo=undo, message=message,
                              data=data)
            line = json.dumps(ev.__dict__, default=_default, sort_keys=True, ensure_ascii=False)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        return ev

    def events(self) -> list[JournalEvent]:
        return list(read_events(self.path))


def read_events(path: Path) -> Iterator[JournalEvent]:
    if not Path(path).exists():
        return
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                # a torn last line from a crash: everything before it is still good
                break
            yield JournalEvent(**{k: d.get(k) for k in JournalEvent.__dataclass_fields__ if k in d})


@dataclass
class ChangeStatus:
    change: Change
    state: str  # "done" | "failed" | "interrupted" | "undone"
    undo: dict[str, Any] | None = None
    message: str = ""


def summarize(events: list[JournalEvent]) -> list[ChangeStatus]:
    """Fold the events into the last state of every change, in the order the changes were first seen."""
    order: list[str] = []
    status: dict[str, ChangeStatus] = {}
    for e in events:
        if not e.change:
            continue
        cid = e.change["id"]
        ch = Change.from_dict(e.change)
        if cid not in status:
            order.append(cid)
        if e.event == "intent":
            status[cid] = ChangeStatus(ch, "interrupted")
        elif e.event in ("done", "failed", "undone"):
            prev = status.get(cid)
            status[cid] = ChangeStatus(ch, e.event, e.undo if e.undo is not None else (prev.undo if prev else None),
                                       e.message)
    return [status[c] for c in order]
