"""How values go into the plan's commands and summaries: PowerShell quoting, RDN escaping, and the text of
encryption types and credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..commands import SWITCH, command, quote, subexpression
from ..model import ENC_AES128, ENC_AES256, AsaCredential, enctype_names


def ps(value: Any) -> str:
    """A PowerShell single-quoted literal: nothing inside is expanded. PowerShell also treats the typographic
    single quotes as quotes, so those are doubled too."""
    return quote(str(value))


def read_password() -> str:
    """(Read-Host -AsSecureString 'Initial password ...'): the initial password is typed, never written down."""
    return subexpression(command("Read-Host", "Initial password (the rollout replaces it)", AsSecureString=SWITCH))


def escape_dn_value(value: str) -> str:
    """An RDN value escaped as RFC 4514 asks (for a CN built from a name the user typed)."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def enc_text(value: int | None) -> str:
    return "unset" if value is None else f"{value} ({'+'.join(enctype_names(value)) or 'none'})"


def has_aes(value: int | None) -> bool:
    return value is not None and bool(value & (ENC_AES128 | ENC_AES256))


def credential_value(c: AsaCredential | None) -> dict[str, Any] | None:
    if c is None:
        return None
    when = c.when_added.isoformat() if isinstance(c.when_added, datetime) else None
    return {"account": c.account, "when": when}

