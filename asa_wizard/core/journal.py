"""The journal: JSON lines, one event per line, written before and after every action so that an
interrupted run can resume and a later run can undo. Never holds a secret (values pass through
`scrub` and the writer refuses `Secret` objects).

An event: {"v": 1, "run": <run id>, "seq": n, "ts": ISO-8601 UTC, "actor": "DOMAIN\\user",
           "event": "run-start" | "intent" | "done" | "failed" | "undone" | "run-end" | "note",
           "change": {Change.to_dict()} | null, "undo": {...} | null, "message": str}

`intent` is written before an action, `done` or `failed` after it. A change with an `intent` and no
`done`/`failed` was interrupted: resume re-reads the world before deciding whether to redo it.

Trust: one writer at a time (`Journal.lock()`, an OS lock beside the file, held by apply / resume / undo for
the whole run), one file per run (the run id is in the name), every line written with one append and fsynced.
The reader accepts a torn LAST line only (a crash in the middle of a write; the next writer cuts it off);
any other line that is not a valid event stops the reader with `JournalCorrupt` naming the file and the line:
resume, undo and report never act on part of a journal. Every event is checked against the schema below
(`validate_event`) before it is used: known keys only, each of its type, `seq` counting 1, 2, 3... with no
gap or reuse, one run id, and a change with its id, system and texts.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .changes import Change, System
from .errors import JournalCorrupt
from .locks import FileLock
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


EVENTS = ("run-start", "intent", "done", "failed", "undone", "run-end", "note")
CHANGE_EVENTS = ("intent", "done", "failed", "undone")
RUN_ID_RE = re.compile(r"[0-9a-f]{6,32}")
REPAIR_FIX = ("A journal is written only by asa-wizard. If it was edited by hand, restore the original (a backup "
              "or the copy you changed); if the disk lost part of it, the run cannot be resumed or undone from it: "
              "run asa-wizard check to see the state, and plan / apply again. Nothing was changed.")


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


# --- the schema ----------------------------------------------------------------------------------------
_EVENT_TYPES: dict[str, tuple[type, ...]] = {
    "v": (int,), "run": (str,), "seq": (int,), "ts": (str,), "event": (str,), "actor": (str,),
    "change": (dict, type(None)), "undo": (dict, type(None)), "message": (str,), "data": (dict, type(None)),
}
_EVENT_REQUIRED = ("v", "run", "seq", "ts", "event")
_TEXTS = (str,)
_OPT_TEXT = (str, type(None))
_LIST = (list,)
_CHANGE_TYPES: dict[str, tuple[type, ...]] = {
    "id": _TEXTS, "system": _TEXTS, "action": _TEXTS, "target": _TEXTS, "summary": _TEXTS,
    "attribute": _OPT_TEXT, "params": (dict,), "commands": _LIST, "undo_commands": _LIST, "proven_by": _LIST,
    "step": _TEXTS, "depends_on": _LIST, "warning": _OPT_TEXT,
}
_CHANGE_ANY = ("old", "new")  # the attribute's value: any JSON
_SYSTEMS = frozenset(s.value for s in System)


class _Bad(Exception):
    """One reason a line is not a valid event (turned into JournalCorrupt with the file and line)."""

    def __init__(self, problem: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.field = field


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "text", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _check_type(value: Any, types: tuple[type, ...], field: str) -> None:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):  # True is an int too
        raise _Bad(f"'{field}' must be {_type_name(types[0]())}, not {_type_name(value)}", field)


def validate_change(d: Any, field: str = "change") -> None:
    """A change as the journal stores it (Change.to_dict), checked key by key (so `Change.from_dict` takes
    it); raises _Bad."""
    if not isinstance(d, dict):
        raise _Bad(f"'{field}' must be an object, not {_type_name(d)}", field)
    for key in ("id", "system", "action", "target", "summary"):
        if key not in d:
            raise _Bad(f"the change has no '{key}'", f"{field}.{key}")
    for key, value in d.items():
        if key in _CHANGE_ANY:
            continue
        if key not in _CHANGE_TYPES:
            raise _Bad(f"unknown key '{key}' in the change", f"{field}.{key}")
        _check_type(value, _CHANGE_TYPES[key], f"{field}.{key}")
        if _CHANGE_TYPES[key] is _LIST and not all(isinstance(x, str) for x in value):
            raise _Bad(f"'{field}.{key}' must be a list of texts", f"{field}.{key}")
    if not d["id"]:
        raise _Bad("the change's id is empty", f"{field}.id")
    if d["system"] not in _SYSTEMS:
        raise _Bad(f"unknown system {d['system']!r}", f"{field}.system")


def validate_event(d: Any) -> JournalEvent:
    """One parsed line -> a JournalEvent, or _Bad naming what is wrong."""
    if not isinstance(d, dict):
        raise _Bad(f"an event must be a JSON object, not {_type_name(d)}")
    for key in _EVENT_REQUIRED:
        if key not in d:
            raise _Bad(f"the event has no '{key}'", key)
    for key, value in d.items():
        if key not in _EVENT_TYPES:
            raise _Bad(f"unknown key '{key}'", key)
        _check_type(value, _EVENT_TYPES[key], key)
    if d["v"] != JOURNAL_VERSION:
        raise _Bad(f"journal format version {d['v']} is not {JOURNAL_VERSION} (written by another asa-wizard "
                   "version)", "v")
    if not RUN_ID_RE.fullmatch(d["run"]):
        raise _Bad(f"{d['run']!r} is not a run id", "run")
    if d["seq"] < 1:
        raise _Bad(f"seq {d['seq']} is not a sequence number (1, 2, 3...)", "seq")
    try:
        datetime.fromisoformat(d["ts"])
    except ValueError:
        raise _Bad(f"{d['ts']!r} is not a time stamp", "ts") from None
    if d["event"] not in EVENTS:
        raise _Bad(f"unknown event {d['event']!r}", "event")
    change = d.get("change")
    if d["event"] in CHANGE_EVENTS and change is None:
        raise _Bad(f"a '{d['event']}' event without its change", "change")
    if change is not None:
        validate_change(change)
    data = d.get("data") or {}
    if data.get("skipped") is not None:
        validate_change(data["skipped"], "data.skipped")
    if d["event"] == "run-start" and "plan" in data:
        _validate_plan(data["plan"])
    return JournalEvent(**d)


def _validate_plan(plan: Any) -> None:
    if not isinstance(plan, dict):
        raise _Bad(f"the recorded plan must be an object, not {_type_name(plan)}", "data.plan")
    changes = plan.get("changes", [])
    if not isinstance(changes, list):
        raise _Bad("the recorded plan's changes must be an array", "data.plan.changes")
    for i, c in enumerate(changes):
        validate_change(c, f"data.plan.changes[{i}]")
    from .plan import Plan

    try:
        Plan.from_dict(plan)
    except (KeyError, TypeError, ValueError) as exc:
        raise _Bad(f"the recorded plan cannot be read ({type(exc).__name__}: {exc})", "data.plan") from None


# --- reading ---------------------------------------------------------------------------------------------
@dataclass
class _Read:
    events: list[JournalEvent]
    keep: int  # bytes of the file that hold whole lines; a torn last line starts here
    torn: bool  # the last line was torn (cut off by a crash) and is not part of the journal
    needs_newline: bool  # the last line is whole but its newline was not written


def _read(path: Path) -> _Read:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return _Read([], 0, False, False)
    except OSError as exc:
        raise JournalCorrupt(str(path), f"the journal cannot be read ({exc.strerror})",
                             "Check the path and its permissions.") from None
    events: list[JournalEvent] = []
    chunks = raw.split(b"\n")
    offset = 0
    last_index = len(chunks) - 1  # the part after the last newline ("" when the file ends with one)
    run = None
    for index, chunk in enumerate(chunks):
        lineno = index + 1
        start = offset
        offset += len(chunk) + 1
        if not chunk.strip():
            continue
        try:
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Bad(f"the line is not UTF-8 text (byte {exc.start + 1})") from None
            try:
                parsed = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise _Bad(f"the line is not JSON ({getattr(exc, 'msg', 'nested too deeply')})") from None
            ev = validate_event(parsed)
            if run is None:
                run = ev.run
            elif ev.run != run:
                raise _Bad(f"the event belongs to run {ev.run}, the journal to run {run}", "run")
            expected = events[-1].seq + 1 if events else 1
            if ev.seq != expected:
                word = "reuses" if ev.seq < expected else "skips to"
                raise _Bad(f"seq {ev.seq} {word} a sequence number (expected {expected}): a line is missing, "
                           "repeated or out of order", "seq")
        except _Bad as bad:
            if index == last_index:  # a torn last line: the write of that event never completed
                return _Read(events, start, True, False)
            raise JournalCorrupt(str(path), bad.problem, REPAIR_FIX, line=lineno, field=bad.field) from None
        events.append(ev)
    needs_newline = bool(chunks[-1].strip())
    return _Read(events, len(raw), False, needs_newline)


def journal_lock(path: Path) -> FileLock:
    """The OS lock of the journal at `path` (a file beside it): apply, resume and undo hold it while they run."""
    path = Path(path)
    return FileLock(path.with_name(path.name + ".lock"), f"journal {path.name}")


def read_events(path: Path) -> list[JournalEvent]:
    """Every event of the journal, checked; a torn last line is left out; anything else wrong raises
    JournalCorrupt (file, line, field, what to do)."""
    return _read(Path(path)).events


@dataclass
class Journal:
    path: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    actor: str = ""
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _repair: tuple[int, bool] | None = field(default=None, repr=False)  # (bytes to keep, add a newline)
    _file_lock: FileLock | None = field(default=None, repr=False)

    @classmethod
    def create(cls, directory: Path | None = None, *, actor: str = "", label: str = "run") -> "Journal":
        """A new journal for a new run: the name holds the time and the run id, so no two runs share a file."""
        directory = directory or default_journal_dir()
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        run = uuid.uuid4().hex[:12]
        return cls(path=directory / f"{stamp}-{label}-{run}.jsonl", run=run, actor=actor)

    @classmethod
    def open(cls, path: Path) -> "Journal":
        """Continue an existing journal (resume/undo append to it, with the same run id). Raises JournalCorrupt
        when any line but a torn last one is not a valid event."""
        read = _read(Path(path))
        events = read.events
        if not events and not read.torn and Path(path).exists() and Path(path).stat().st_size:
            raise JournalCorrupt(str(path), "the journal holds no event", REPAIR_FIX)
        run = events[0].run if events else uuid.uuid4().hex[:12]
        j = cls(path=Path(path), run=run, actor=events[0].actor if events else "")
        j._seq = events[-1].seq if events else 0
        if read.torn or read.needs_newline:
            j._repair = (read.keep, read.needs_newline)
        return j

    # --- one writer at a time ---------------------------------------------------------------------------
    def lock(self) -> "Journal":
        """Hold the journal's OS lock until `unlock` (or the process ends); `Locked` names the holder."""
        if self._file_lock is None:
            self._file_lock = journal_lock(self.path)
        self._file_lock.acquire()
        return self

    def unlock(self) -> None:
        if self._file_lock is not None:
            self._file_lock.release()

    def __enter__(self) -> "Journal":
        return self.lock()

    def __exit__(self, *exc: Any) -> None:
        self.unlock()

    def write(self, event: str, change: Change | None = None, *, undo: dict[str, Any] | None = None,
              message: str = "", data: dict[str, Any] | None = None) -> JournalEvent:
        payload_change = change.to_dict() if change else None
        _check_no_secret(payload_change)
        _check_no_secret(undo)
        _check_no_secret(data)
        with self._lock:
            ev = JournalEvent(run=self.run, seq=self._seq + 1, ts=datetime.now(timezone.utc).isoformat(),
                              event=event, actor=self.actor, change=payload_change, undo=undo, message=message,
                              data=data)
            line = json.dumps(ev.__dict__, default=_default, sort_keys=True, ensure_ascii=False)
            payload = (line + "\n").encode("utf-8")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if self._repair is not None:
                    keep, newline = self._repair
                    if newline:
                        os.write(fd, b"\n")
                    else:
                        os.ftruncate(fd, keep)  # cut off the torn last line of a crashed run
                    self._repair = None
                os.write(fd, payload)  # one append: a line is never interleaved with another
                os.fsync(fd)
            finally:
                os.close(fd)
            self._seq += 1
        return ev

    def events(self) -> list[JournalEvent]:
        return read_events(self.path)


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
