"""Errors a person can act on: every one names the problem and the fix.

Adapters translate library exceptions (ldap3 result codes, HTTP status, WinRM faults, GSS errors) into
these; the UI and the CLI show `problem` and `fix` and never a traceback for an expected failure.
"""

from __future__ import annotations


class WizardError(Exception):
    """Base: `problem` says what went wrong, `fix` what to do about it."""

    kind = "error"

    def __init__(self, problem: str, fix: str = "", *, detail: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.detail = detail  # raw text from the other side (already free of secrets)

    def __str__(self) -> str:
        return f"{self.problem} — {self.fix}" if self.fix else self.problem


class ConfigError(WizardError):
    """A file the user wrote (scenario, answers, profile) is wrong: names the file, line and field."""

    kind = "config"

    def __init__(self, path: str, problem: str, fix: str = "", *, line: int | None = None, field: str | None = None):
        where = str(path)
        if line:
            where += f", line {line}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}", fix)
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = problem


class JournalCorrupt(ConfigError):
    """A journal line that cannot be read or does not match the event schema: resume, undo and report stop."""

    kind = "journal"


class ConnectionFailed(WizardError):
    kind = "connection"


class AuthenticationFailed(WizardError):
    kind = "authentication"


class PermissionDenied(WizardError):
    kind = "permission"


class NotFound(WizardError):
    kind = "not-found"


class SpnConflict(WizardError):
    """The SPN is already registered on another account (AD result 19, or found by the owner lookup)."""

    kind = "spn-conflict"

    def __init__(self, spn: str, owner: str, fix: str = ""):
        from .commands import setspn

        super().__init__(
            f"The SPN {spn} is already registered on {owner}.",
            fix or f"Remove it from {owner} first ({setspn('-D', spn, owner)}) or choose that account as the ASA.",
        )
        self.spn = spn
        self.owner = owner


class PolicyRefused(WizardError):
    kind = "policy"


class ScriptFailed(WizardError):
    """A remote PowerShell script ran and reported failure."""

    kind = "script"

    def __init__(self, problem: str, fix: str = "", *, detail: str | None = None, exit_code: int | None = None):
        super().__init__(problem, fix, detail=detail)
        self.exit_code = exit_code


class OperationTimeout(WizardError):
    kind = "timeout"


class Cancelled(WizardError):
    kind = "cancelled"

    def __init__(self, problem: str = "Cancelled by the user.", fix: str = "Resume from the journal when ready."):
        super().__init__(problem, fix)


class StaleObject(WizardError):
    """A re-read before a change showed the object is no longer as planned."""

    kind = "stale"
