"""The planner: every step's rules in Microsoft's order (`Planner.build`)."""

from __future__ import annotations

from ..answers import Answers
from ..model import Environment, SegConfig
from .asa import AsaRules
from .client_auth import ClientAuthRules
from .iis_auth import IisAuthRules
from .model import KEYS_GROUP, Plan
from .rollout import RolloutRules
from .seg import SegRules
from .spns import SpnRules


def discovery_seg(answers: Answers) -> SegConfig | None:
    """The SEG account discovery must read (it is not found by the SPN searches)."""
    if not answers.seg.enabled or not answers.seg.service_account:
        return None
    return SegConfig(answers.seg.service_account, list(answers.seg.test_users), answers.seg.ews_proxy)


def build_plan(env: Environment, answers: Answers, target: str = "") -> Plan:
    return Planner(env, answers, target).build()


class Planner(AsaRules, RolloutRules, SpnRules, ClientAuthRules, SegRules, IisAuthRules):
    """One plan: `build` runs the steps' rules in order."""

    def build(self) -> Plan:
        self.general_prerequisites()
        self.plan_asa()
        servers = self.servers()
        self.server_prerequisites(servers)
        if self.asa is not None or self.asa_change_ids:
            if not self.no_exchange:
                self.plan_rollout(servers)
                if self.enctypes_gain_aes and self.roll_ids:
                    # The new encryption types and the roll that creates their keys: together or not at all.
                    self.plan.change("asa.enctypes").params["group"] = KEYS_GROUP
            self.plan_spns(servers)
        if self.no_exchange:
            left = ["the ASA credential rollout"]
            if self.a.client_auth.outlook_anywhere or self.a.client_auth.mapi:
                left.append("client authentication (Outlook Anywhere, MAPI)")
            if self.a.seg.enabled:
                left.append("IIS_IUSRS membership on each server")
            if self.a.iis_auth.enabled:
                left.append("IIS authentication")
            self.plan.notes.append("Directory-side changes only (no_exchange / --no-exchange): nothing is read from "
                                   "or done on the Exchange servers. Left for a run with the servers: "
                                   + ", ".join(left) + ".")
        else:
            self.plan_client_auth(servers)
        if self.a.seg.enabled:
            self.plan_seg(servers)
        if self.a.iis_auth.enabled and not self.no_exchange:
            self.plan_iis_auth(servers)
        return self.plan

