"""The application service: the one set of plain functions (no UI) that the wizard's workers and every
headless command call. `options` defines a target's options once, `session` opens and reads a target,
`operations` plans, applies, resumes, undoes and reports through the executor and its journal."""

from .operations import (apply, build_report, find_journal, lock_journal, lock_target, make_plan, new_journal,
                         remaining, reopen, resume, save_report, undo, unfinished_runs)
from .session import (NeedsPassword, Opened, Verification, credential_key, discover, open_target, run_checks,
                      test_connections, verify)

__all__ = ["NeedsPassword", "Opened", "Verification", "apply", "build_report", "credential_key", "discover",
           "find_journal", "lock_journal", "lock_target", "make_plan", "new_journal", "open_target", "remaining", "reopen", "resume",
           "run_checks", "save_report", "test_connections", "undo", "unfinished_runs", "verify"]
