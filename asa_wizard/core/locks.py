"""Operating-system locks: one writer at a time for a journal, one `apply` at a time for a target.

A lock is an exclusive, non-blocking lock (`fcntl.flock`; `msvcrt.locking` on Windows) on a small file that
also records the holder's process id, so the second run is told who holds it. The operating system drops the
lock when the process ends, however it ends, so a crash never leaves a stale lock behind (the file stays; its
lock does not).
"""

from __future__ import annotations

import hashlib
import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator
from types import TracebackType

from .errors import WizardError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt


class Locked(WizardError):
    """Another process holds the lock."""

    kind = "locked"

    def __init__(self, what: str, pid: int | None, path: Path) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"The {what} is locked by {who}: another asa-wizard run is working on it ({path}).",
            "Wait until that run ends (or end it), then run the command again. The lock is released as soon as "
            "that process exits, also after a crash.")
        self.pid = pid
        self.lock_path = path


class FileLock:
    """`with FileLock(path, "journal x"):` holds the lock; a second holder gets `Locked` at once."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "FileLock":
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock(fd)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            raise Locked(self.what, pid, self.path) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing the descriptor drops the lock

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


_HELD: ContextVar[frozenset[Path]] = ContextVar("asa_wizard_held_locks", default=frozenset())


@contextmanager
def holding(lock: FileLock) -> Iterator[FileLock]:
    """Hold `lock` for the `with` block; when this call chain (this thread) already holds a lock on the same file
    through `holding`, share it instead of failing on itself. So a command can take the lock early (before it
    plans) and the service function it calls takes the same lock again without a second holder. Any other
    holder, in another thread or process, still gets `Locked`."""
    key = lock.path.resolve()
    held = _HELD.get()
    if key in held:
        yield lock
        return
    with lock:
        token = _HELD.set(held | {key})
        try:
            yield lock
        finally:
            _HELD.reset(token)


def target_lock(directory: Path, target: str) -> FileLock:
    """The lock `apply` holds on a target (a domain controller, or a lab scenario) for the whole run."""
    slug = re.sub(r"[^a-z0-9.-]+", "_", target.lower())[:60]
    digest = hashlib.sha256(target.lower().encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return FileLock(Path(directory) / "locks" / f"target-{slug}-{digest}.lock", f"target {target}")  # in the data dir


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # pragma: no cover - Windows
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
