"""The one step registry (core/steps.py) is what everything lists steps and checks from."""

from __future__ import annotations

from asa_wizard.core import steps
from asa_wizard.core.checks import CHECKS, STEP_CHECKS
from asa_wizard.core.checks.base import STEPS as CHECK_STEPS


def test_every_list_of_steps_and_checks_is_the_registry():
    assert STEP_CHECKS == {s.id: list(s.checks) for s in steps.STEPS}
    assert tuple(CHECK_STEPS) == steps.STEP_IDS
    from asa_wizard import headless_cli

    assert headless_cli.EXCHANGE_CHECKS is steps.EXCHANGE_CHECKS


def test_the_registry_names_only_real_checks_and_each_check_fixes_a_listed_step():
    named = {c for s in steps.STEPS for c in s.checks}
    assert named <= set(CHECKS)
    assert {c for s in steps.STEPS for c in s.exchange_checks} <= named
    assert all(set(s.exchange_checks) <= set(s.checks) for s in steps.STEPS)
    assert {c.step for c in CHECKS.values()} <= set(steps.STEP_IDS)


def test_checklist_labels_fit_a_narrow_sidebar_and_never_read_the_same():
    assert set(steps.CHECK_LABELS) == set(CHECKS)
    assert len(set(steps.CHECK_LABELS.values())) == len(steps.CHECK_LABELS)
    assert max(len(v) for v in steps.CHECK_LABELS.values()) <= 17  # 30 columns less icon, word, border
    assert max(len(s.label) for s in steps.STEPS) <= 16


def test_every_step_names_a_pane_that_exists():
    from asa_wizard.tui.app import pane_class

    for s in steps.STEPS:
        assert pane_class(s.id).STEP_ID == s.id
