"""The plan: from what discovery saw and what the user chose, the ordered list of changes in Microsoft's safety
order, each with the exact manual commands, how to undo it, and the checks that prove it.

Order: create the ASA (with encryption types) -> roll the credential out (a new password pushed to EVERY server
first, then the AD password reset once; -CopyFrom only for servers joining servers that already hold the
current password) -> SPNs, only once every server behind the namespace holds the credential -> client
authentication -> SEG delegation -> IIS authentication. Nothing is planned that is already right: the plan for a
healthy organisation is empty. Every value that goes into a generated command is quoted for PowerShell (`ps`).

- `model`: `Plan` and `Prerequisite` (what a journal keeps of a plan).
- `planner`: `build_plan`, the steps' rules in that order; `base`: what the rules share (the servers the ASA is
  for, the prerequisites every plan has, the one rule for a current credential).
- one module of rules per step that changes something: `asa`, `rollout`, `spns`, `client_auth`, `seg`,
  `iis_auth`.
- `values`: PowerShell quoting, RDN escaping, the text of encryption types and credentials.

The plan is rendered (Markdown, HTML, JSON) by `core.report.render_plan`.
"""

from .model import KEYS_GROUP, PLAN_VERSION, Plan, Prerequisite
from .planner import build_plan, discovery_seg
from .values import escape_dn_value, ps

__all__ = ["KEYS_GROUP", "PLAN_VERSION", "Plan", "Prerequisite", "build_plan", "discovery_seg", "escape_dn_value",
           "ps"]
