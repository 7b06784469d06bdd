"""Values in a person's words: flag names instead of decimals, "(none)" for nothing."""

from __future__ import annotations

from typing import Any

from ..core import model

UAC_NAMES = {
    model.UAC_ACCOUNTDISABLE: "disabled",
    model.UAC_PASSWD_NOTREQD: "password not required",
    model.UAC_NORMAL_ACCOUNT: "normal account",
    model.UAC_WORKSTATION_TRUST_ACCOUNT: "computer account",
    model.UAC_DONT_EXPIRE_PASSWD: "password never expires",
    model.UAC_TRUSTED_FOR_DELEGATION: "trusted for (unconstrained) delegation",
    model.UAC_NOT_DELEGATED: "sensitive, cannot be delegated",
    model.UAC_USE_DES_KEY_ONLY: "DES only",
    model.UAC_TRUSTED_TO_AUTH_FOR_DELEGATION: "trusted to authenticate for delegation (protocol transition)",
}


def flag_names(value: int, names: dict[int, str]) -> str:
    parts = [name for bit, name in sorted(names.items()) if value & bit]
    rest = value & ~sum(names)
    if rest:
        parts.append(f"other flags 0x{rest:x}")
    return ", ".join(parts) or "no flags"


def show_value(value: Any, attribute: str | None = None) -> str:
    """A change's old or new value for a person: named flags for userAccountControl and the encryption types."""
    if value is None or value == "" or value == []:
        return "(none)"
    attr = (attribute or "").lower()
    if isinstance(value, int) and not isinstance(value, bool):
        if attr == "useraccountcontrol":
            return flag_names(value, UAC_NAMES)
        if attr == "msds-supportedencryptiontypes":
            return ", ".join(model.enctype_names(value)) or "not set (the domain's default)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={show_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    return str(value)


def changed_flags(old: Any, new: Any, attribute: str | None) -> str:
    """For flag attributes: only what changes ("adds: ...; removes: ..."), else "old → new"."""
    attr = (attribute or "").lower()
    if attr == "useraccountcontrol" and isinstance(old, int) and isinstance(new, int):
        added, removed = new & ~old, old & ~new
        parts = []
        if added:
            parts.append("adds " + flag_names(added, UAC_NAMES))
        if removed:
            parts.append("removes " + flag_names(removed, UAC_NAMES))
        return "; ".join(parts) or "no change"
    return f"{show_value(old, attribute)} → {show_value(new, attribute)}"


# The plan speaks to the answers file (it also writes the runbook of `asa-wizard plan`); in the wizard the same
# advice names the choice on screen instead of file syntax.
_IN_THE_WIZARD = [
    (r'\[spns\] move_from = \["([^"]+)"\]', r'tick \1 under "Move the SPN from these owners" on this step'),
    (r"\(named in spns\.move_from\)", "(you named this owner on the SPNs step)"),
    (r'Set \[asa\] mode = "create" with a name, or name the existing ASA \(asa\.name\)\.',
     'Choose "Create a new account" with a name on the ASA step, or type the existing ASA\'s name there.'),
    (r'set \[asa\] mode = "create" to create ([^.\s]+)', r'choose "Create a new account" on the ASA step to create \1'),
    (r"Fix the name in the answers file \(rollout\.servers\)\.", "Check the server names the rollout is limited to."),
    (r"\(rollout\.new_password\)", "(you asked for a new password)"),
    (r"fix seg\.service_account", "correct the gateway's service account on the SEG step"),
    (r"Choose another SPN in seg\.spn\.", "Choose another SPN for the gateway's service account."),
    (r"\(asa\.name\)", "(the account name on the ASA step)"),
]


def in_the_wizard(text: str) -> str:
    """Plan advice in the wizard's words: the choice on screen, not the answers file's syntax."""
    import re

    for pattern, words in _IN_THE_WIZARD:
        text = re.sub(pattern, words, text)
    return text
