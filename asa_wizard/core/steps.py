"""The one step registry: every wizard step as data, read by everything that lists steps or checks.

Each step has its id, title, a short title for the checklist, what it does, the changes it may plan, the checks
that prove it (and which of them need the Exchange servers), and the pane that shows it. The TUI builds its
checklist, its screens and its panes from `STEPS`; the plan tags every change with the step that owns it, so
the runbook, the journal and the report group changes the way the wizard presents them; `check --no-exchange`
skips `EXCHANGE_CHECKS`; `core.checks.STEP_CHECKS` is derived from here.
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
    short_title: str = ""  # the checklist"s label (fits a narrow sidebar); "" means the title
    checks: tuple[str, ...] = ()  # the check ids that prove this step, in the order the checklist shows them
    # the subset of `checks` that need what only the Exchange servers tell (their credentials, virtual
    # directories, IIS, services, read over WinRM) or that talk to them (the Kerberos proof per server)
    exchange_checks: tuple[str, ...] = ()
    pane: str = ""  # the TUI pane that shows the step: "module.Class" under asa_wizard.tui.steps

    @property
    def label(self) -> str:
        return self.short_title or self.title

    @property
    def changes_anything(self) -> bool:
        return bool(self.actions)


STEPS: tuple[Step, ...] = (
    Step("target", "Target",
         "Choose the embedded lab or a real domain: domain controller, bind method, credentials and WinRM "
         "transport; the connections are tested before going on.",
         short_title="Target", checks=(),
         exchange_checks=(), pane="target.TargetPane"),
    Step("discovery", "Discovery",
         "Read the forest, the Exchange servers (version, site, ASA state), the namespaces and the current "
         "owners of their HTTP SPNs, and run the check catalogue once to see what is wrong already.",
         short_title="Discovery", checks=("inventory.servers", "auth.namespace-dns"),
         exchange_checks=(), pane="discovery.DiscoveryPane"),
    Step("asa", "Alternate service account",
         "Reuse the existing ASA or create one (a computer account is preferred) in the chosen OU, with AES "
         "encryption types.",
         ("create-account", "set-enctypes"),
         short_title="ASA account", checks=("asa.exists", "asa.enabled", "asa.kind", "asa.enctypes", "asa.one-per-generation"),
         exchange_checks=("asa.one-per-generation",), pane="changes.AsaPane"),
    Step("rollout", "Credential rollout",
         "Give every Exchange server the ASA credential in the order that never breaks Kerberos: a new password "
         "pushed to every server through its Exchange endpoint first, then the password reset in AD once; a "
         "server joining servers that hold the current password gets a -CopyFrom; the others are left alone.",
         ("roll-generate", "roll-push", "roll-copy", "roll-ad-password"),
         short_title="Rollout", checks=("rollout.coverage", "rollout.current", "rollout.same-account", "rollout.service-host", "asa.password-age"),
         exchange_checks=("rollout.coverage", "rollout.current", "rollout.same-account", "rollout.service-host"), pane="rollout.RolloutPane"),
    Step("spns", "Service principal names",
         "Register HTTP/<namespace> on the ASA for every load-balanced name, only once every server behind the "
         "name holds the credential; move an SPN from another account only when that owner was named.",
         ("add-spns", "remove-spns"),
         short_title="SPNs", checks=("spn.present", "spn.owner", "spn.duplicate", "spn.order", "kerberos.ticket"),
         exchange_checks=("spn.order",), pane="changes.SpnPane"),
    Step("client-auth", "Client authentication",
         "Switch Outlook Anywhere to Negotiate and add Negotiate to MAPI over HTTP, keeping OAuth for hybrid.",
         ("set-oa-client-auth", "set-mapi-auth"),
         short_title="Client auth", checks=("auth.outlook-anywhere", "auth.mapi", "ep.configured", "ep.ssl-offloading"),
         exchange_checks=("auth.outlook-anywhere", "auth.mapi", "ep.configured", "ep.ssl-offloading"), pane="changes.ClientAuthPane"),
    Step("seg", "SEG delegation",
         "For a Secure Email Gateway: give its service account an SPN, constrained delegation with protocol "
         "transition to the ActiveSync namespace, and membership of IIS_IUSRS on each server.",
         ("add-spns", "set-delegate-to", "set-uac", "add-iis-iusrs"), optional=True,
         short_title="SEG delegation", checks=("kcd.service-account-spn", "kcd.protocol-transition", "kcd.no-unconstrained", "kcd.target", "kcd.same-domain", "kcd.users-delegable", "kcd.iis-iusrs", "kcd.unconstrained-forest"),
         exchange_checks=("kcd.iis-iusrs",), pane="changes.SegPane"),
    Step("iis-auth", "IIS authentication",
         "Windows authentication with the Negotiate provider on ActiveSync (and EWS when the SEG proxies EWS), "
         "Basic off, kernel mode and app-pool credentials on.",
         ("set-iis-auth",), optional=True,
         short_title="IIS auth (SEG)", checks=("kcd.eas-auth", "kcd.ews-auth"),
         exchange_checks=("kcd.eas-auth", "kcd.ews-auth"), pane="changes.IisAuthPane"),
    Step("verify", "Verify",
         "Run the whole check catalogue and prove Kerberos on every server; every failure names its fix.",
         short_title="Verify", checks=("kerberos.ticket", "kerberos.server", "ep.channel-binding", "kerberos.s4u", "logs.iis-401", "logs.httpproxy-auth", "logs.krb-ap-err-modified"),
         exchange_checks=("kerberos.server", "ep.channel-binding", "kerberos.s4u"), pane="verify.VerifyPane"),
    Step("report", "Report",
         "What was found, what was changed and when, and what passes now, saved as Markdown or HTML.",
         short_title="Report", checks=(),
         exchange_checks=(), pane="report.ReportPane"),
)

# The checklist's label of each check: short enough for a narrow sidebar (80 columns) and different from every
# other, where the full titles (CHECKS[id].title) would be cut to the same words. Widened, it shows the titles.
CHECK_LABELS: dict[str, str] = {
    "inventory.servers": "Servers found", "auth.namespace-dns": "DNS A records",
    "asa.exists": "ASA exists", "asa.enabled": "ASA enabled", "asa.kind": "ASA is a computer",
    "asa.enctypes": "ASA uses AES", "asa.one-per-generation": "One ASA/version",
    "rollout.coverage": "Credential on all", "rollout.current": "Password current",
    "rollout.same-account": "Same ASA on all", "rollout.service-host": "ServiceHost runs",
    "asa.password-age": "ASA password age",
    "spn.present": "SPN per namespace", "spn.owner": "SPNs on the ASA", "spn.duplicate": "No duplicate SPN",
    "spn.order": "SPN after rollout", "kerberos.ticket": "Ticket per name",
    "auth.outlook-anywhere": "Outlook Anywhere", "auth.mapi": "MAPI Negotiate",
    "ep.configured": "EP as expected", "ep.ssl-offloading": "No SSL offloading",
    "ep.channel-binding": "Channel binding",
    "kcd.service-account-spn": "SEG account SPN", "kcd.protocol-transition": "S4U2Self allowed",
    "kcd.no-unconstrained": "No unconstrained", "kcd.target": "Delegates to EAS", "kcd.same-domain": "One domain",
    "kcd.users-delegable": "Users delegable", "kcd.iis-iusrs": "In IIS_IUSRS",
    "kcd.unconstrained-forest": "Unconstr. forest",
    "kcd.eas-auth": "EAS Kerberos", "kcd.ews-auth": "EWS Kerberos",
    "kerberos.server": "Servers accept it", "kerberos.s4u": "Gateway S4U proof", "logs.iis-401": "IIS 401 logs",
    "logs.httpproxy-auth": "HttpProxy logs", "logs.krb-ap-err-modified": "No ERR_MODIFIED",
}

STEP_IDS: tuple[str, ...] = tuple(s.id for s in STEPS)
# Which checks prove each step (the checklist shows these under the step).
STEP_CHECKS: dict[str, tuple[str, ...]] = {s.id: s.checks for s in STEPS}
# The checks `check --no-exchange` cannot run: they read or talk to the Exchange servers.
EXCHANGE_CHECKS: tuple[str, ...] = tuple(dict.fromkeys(c for s in STEPS for c in s.exchange_checks))


def step(step_id: str) -> Step:
    """The step with this id; a KeyError names the known ids (a typo in code, not a user error)."""
    for s in STEPS:
        if s.id == step_id:
            return s
    raise KeyError(f"unknown step {step_id!r}; known: {', '.join(STEP_IDS)}")


def step_index(step_id: str) -> int:
    """Position in the wizard, used to order changes and report sections."""
    return STEP_IDS.index(step_id)
