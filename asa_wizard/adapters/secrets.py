"""The secret store: the operating system's keyring when it is safe, the process memory otherwise.

Policy (see the keyring notes in the project's reference): the active backend is always named so the user
knows where a password goes; a backend that writes passwords to a file (plain, or "encrypted" with a password
typed on the terminal) or that keyring itself does not recommend (priority below 1) is refused unless the user
opted in. A backend is judged by what it is, not by its name: its class lineage against the known file backends
(keyrings.alt, keyrings.cryptfile, a `file_path`), keyring's own priority, and every backend inside a chainer; a failing or null backend (headless Linux without Secret Service) is not an error: the secret is kept in
memory for this session only. Every keyring call runs in a helper thread with a timeout because a locked
Secret Service collection can block forever, and the UI must never wait on it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, TypeVar

from ..core.errors import PolicyRefused
from ..core.secrets import Secret

SERVICE = "asa-wizard"
DEFAULT_TIMEOUT = 3.0
T = TypeVar("T")

# Backends that keep passwords in a file (keyrings.alt and keyrings.cryptfile), by the modules that define them.
_FILE_MODULES = ("keyrings.alt.file", "keyrings.alt.file_base", "keyrings.cryptfile")
_UNUSABLE_MODULES = ("keyring.backends.fail", "keyring.backends.null")
_CHAINER = "keyring.backends.chainer.ChainerBackend"


def _lineage(backend: Any) -> list[str]:
    return [f"{c.__module__}.{c.__qualname__}" for c in type(backend).__mro__]


def _priority(backend: Any) -> float | None:
    """keyring's own judgement of the backend; None when it has none (or cannot say: not viable)."""
    try:
        value = backend.priority
    except AttributeError:
        return None
    except Exception:  # keyring raises when a backend is not viable here
        return 0.0
    return float(value) if isinstance(value, (int, float)) else None


def _members(backend: Any) -> list[Any]:
    """The backends a chainer writes to (every one of them may get the password), else the backend itself."""
    if _CHAINER in _lineage(backend):
        try:
            return list(backend.backends)
        except Exception:
            return []
    return [backend]


def _judge(member: Any) -> tuple[bool, bool]:
    """(writes to a file or is not recommended by keyring, can store anything) of one backend."""
    lineage = _lineage(member)
    if any(x.startswith(_UNUSABLE_MODULES) for x in lineage):
        return False, False
    priority = _priority(member)
    file_based = any(x.startswith(_FILE_MODULES) for x in lineage) or hasattr(member, "file_path")
    weak = file_based or (priority is not None and priority < 1)  # keyring.core.recommended: priority >= 1
    return weak, priority is None or priority > 0


def describe_backend(backend: Any) -> tuple[str, bool, bool]:
    """(name for a person, is it plaintext/file or otherwise not recommended, can it store anything) of a
    keyring backend object; a chainer is as weak as its weakest member and usable when any member is."""
    cls = type(backend)
    name = getattr(backend, "name", None) or f"{cls.__module__}.{cls.__name__}"
    members = _members(backend)
    judged = [_judge(m) for m in members]
    plaintext = any(weak for weak, _ in judged)
    usable = any(ok for _, ok in judged)
    if len(members) != 1 or members[0] is not backend:
        name = f"{name} ({', '.join(str(getattr(m, 'name', type(m).__name__)) for m in members) or 'empty'})"
    return str(name), plaintext, usable


class KeyringSecretStore:
    """`core.ports.SecretStore` over `keyring`, with a session memory that always works."""

    def __init__(self, *, allow_plaintext: bool = False, timeout: float = DEFAULT_TIMEOUT,
                 backend: Any = None, service: str = SERVICE) -> None:
        self.timeout = timeout
        self.service = service
        self.allow_plaintext = allow_plaintext
        self._memory: dict[str, Secret] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyring")
        self._backend = backend
        self.backend_name = "not yet determined"
        self.is_plaintext = False
        self.available = False
        self.last_problem: str | None = None
        self._resolve_backend()

    # --- backend ---------------------------------------------------------------------------------
    def _resolve_backend(self) -> None:
        try:
            backend = self._backend if self._backend is not None else self._call(self._load_backend)
        except Exception as exc:  # keyring import or backend discovery failed: memory only
            self.backend_name = "none (session memory)"
            self.last_problem = f"The keyring could not be opened: {type(exc).__name__}."
            return
        self._backend = backend
        name, plaintext, usable = describe_backend(backend)
        self.backend_name = name
        self.is_plaintext = plaintext
        self.available = usable and (not plaintext or self.allow_plaintext)
        if plaintext and not self.allow_plaintext:
            self.last_problem = (f"The keyring backend '{name}' stores passwords in a plain file (or is not one "
                                 "keyring recommends); it is not used. Passwords are kept in memory for this "
                                 "session only.")
        elif not usable:
            self.last_problem = (f"No usable keyring ('{name}'): passwords are kept in memory for this session "
                                 "only.")

    @staticmethod
    def _load_backend() -> Any:
        import keyring

        return keyring.get_keyring()

    @property
    def where(self) -> str:
        """Where a stored secret goes, for the credential dialog."""
        if self.available:
            return f"the keyring ({self.backend_name})"
        return "this session's memory only"

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a keyring call in the helper thread; give up after the timeout (the call may go on)."""
        future = self._pool.submit(fn, *args)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            raise TimeoutError(f"the keyring did not answer within {self.timeout:g} s") from None

    def _guard_plaintext(self) -> None:
        if self.is_plaintext and not self.allow_plaintext:
            raise PolicyRefused(
                f"The keyring backend '{self.backend_name}' would store the password in a plain file, or is not "
                "one keyring recommends.",
                "Use a Secret Service / KWallet / Windows keyring, or opt in to the plaintext backend "
                "explicitly; until then the password stays in memory for this session.")

    # --- SecretStore ---------------------------------------------------------------------------------
    def get(self, key: str) -> Secret | None:
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        if not self.available:
            return None
        try:
            value = self._call(self._backend.get_password, self.service, key)
        except Exception as exc:
            self._degrade(exc)
            return None
        return Secret(value) if value is not None else None

    def keep(self, key: str, value: Secret) -> None:
        """Remember `value` for this session only (the user did not ask for the keyring)."""
        if not isinstance(value, Secret):
            raise TypeError("keep a Secret, not plain text")
        with self._lock:
            self._memory[key] = value

    def set(self, key: str, value: Secret) -> None:
        """Remember `value`: in the keyring when allowed and working, always in the session memory."""
        if not isinstance(value, Secret):
            raise TypeError("store a Secret, not plain text")
        with self._lock:
            self._memory[key] = value
        if not self.available:
            return
        try:
            self._call(self._backend.set_password, self.service, key, value.reveal())
        except Exception as exc:
            self._degrade(exc)

    def delete(self, key: str) -> None:
        with self._lock:
            self._memory.pop(key, None)
        if not self.available:
            return
        try:
            self._call(self._backend.delete_password, self.service, key)
        except Exception as exc:  # nothing stored under that key, or the keyring failed
            if type(exc).__name__ != "PasswordDeleteError":
                self._degrade(exc)

    def persist_refused_reason(self) -> str | None:
        """Why a secret will not outlive the session, or None when it goes to a real keyring."""
        try:
            self._guard_plaintext()
        except PolicyRefused as exc:
            return exc.problem
        return None if self.available else self.last_problem

    def _degrade(self, exc: BaseException) -> None:
        """A keyring that failed once (locked, timed out, gone) is not asked again this session."""
        self.available = False
        self.last_problem = (f"The keyring '{self.backend_name}' failed ({type(exc).__name__}); passwords are kept "
                             "in memory for this session only.")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
