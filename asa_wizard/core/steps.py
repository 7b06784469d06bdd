"""The wizard's steps as data: what each does, which changes it may plan, and whether it can be skipped.

The TUI builds its checklist and screens from `STEPS`; the plan tags every change with the step that owns
it, so the runbook, the journal and the report group changes the way the wizard presents them. The checks
that prove a step live beside the checks (`asa_wizard.core.checks.STEP_CHECKS`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    summary: str  # one or two sentences for a person: what the step does and why
    actions: tuple[str, ...] = ()  # the Change.action values this step may plan (empty: reads only)
    optional: bool = False  # the user may skip it (the SEG steps)

    @property
    def changes_anything(self) -> bool:
        return bool(self.actions)


STEPS: tuple[Step, ...] = (
    Step("target", "Target",
         "Choose the embedded lab or a real domain: domain controller, bind method, credentials and WinRM "
         "transport; the connections are tested before going on."),
    Step("discovery", "Discovery",
         "Read the forest, the Exchange servers (version, site, ASA state), the namespaces and the current "
         "owners of their HTTP SPNs, and run the check catalogue once to see what is wrong already."),
    Step("asa", "Alternate service account",
         "Reuse the existing ASA or create one (a computer account is preferred) in the chosen OU, with AES "
         "encryption types.",
         ("create-account", "set-enctypes")),
    Step("rollout", "Credential rollout",
         "Give every Exchange server the ASA credential in the order that never breaks Kerberos: a new password "
         "pushed to every server through its Exchange endpoint first, then the password reset in AD once; a "
         "server joining servers that hold the current password gets a -CopyFrom; the others are left alone.",
         ("roll-generate", "roll-push", "roll-copy", "roll-ad-password")),
    Step("spns", "Service principal names",
         "Register HTTP/<namespace> on the ASA for every load-balanced name, only once every server behind the "
         "name holds the credential; move an SPN from another account only when that owner was named.",
         ("add-spns", "remove-spns")),
    Step("client-auth", "Client authentication",
         "Switch Outlook Anywhere to Negotiate and add Negotiate to MAPI over HTTP, keeping OAuth for hybrid.",
         ("set-oa-client-auth", "set-mapi-auth")),
    Step("seg", "SEG delegation",
         "For a Secure Email Gateway: give its service account an SPN, constrained delegation with protocol "
         "transition to the ActiveSync namespace, and membership of IIS_IUSRS on each server.",
         ("add-spns", "set-delegate-to", "set-uac", "add-iis-iusrs"), optional=True),
    Step("iis-auth", "IIS authentication",
         "Windows authentication with the Negotiate provider on ActiveSync (and EWS when the SEG proxies EWS), "
         "Basic off, kernel mode and app-pool credentials on.",
         ("set-iis-auth",), optional=True),
    Step("verify", "Verify",
         "Run the whole check catalogue and prove Kerberos on every server; every failure names its fix."),
    Step("report", "Report",
         "What was found, what was changed and when, and what passes now, saved as Markdown or HTML."),
)

STEP_IDS: tuple[str, ...] = tuple(s.id for s in STEPS)


def step(step_id: str) -> Step:
    """The step with this id; a KeyError names the known ids (a typo in code, not a user error)."""
    for s in STEPS:
        if s.id == step_id:
            return s
    raise KeyError(f"unknown step {step_id!r}; known: {', '.join(STEP_IDS)}")


def step_index(step_id: str) -> int:
    """Position in the wizard, used to order changes and report sections."""
    return STEP_IDS.index(step_id)
