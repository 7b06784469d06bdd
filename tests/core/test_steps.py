"""The wizard's steps: the order the TUI shows, and every planned change belongs to a step that may plan it."""

from __future__ import annotations

from asa_wizard.core.checks import STEP_CHECKS
from asa_wizard.core.steps import STEP_IDS, STEPS, step

from .test_plan import FRESH, plan_for


def test_the_ten_steps_in_order_and_the_checklist_knows_each():
    assert STEP_IDS == ("target", "discovery", "asa", "rollout", "spns", "client-auth", "seg", "iis-auth", "verify",
                        "report")
    assert set(STEP_CHECKS) == set(STEP_IDS)
    assert [s.id for s in STEPS if s.optional] == ["seg", "iis-auth"]
    assert not step("verify").changes_anything and step("rollout").changes_anything


def test_every_planned_change_is_one_its_step_may_plan():
    plan = plan_for("fresh-with-seg", FRESH)
    for c in plan.changes:
        assert c.action in step(c.step).actions, (c.id, c.step)
