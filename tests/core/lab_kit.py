"""Helpers for the executor and report tests: a lab world, discovery through its real adapters, the catalogue."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from asa_wizard.core.answers import Answers, parse_answers
from asa_wizard.core.checks import problems, run_catalogue
from asa_wizard.core.discovery import DiscoveryOptions, discover
from asa_wizard.core.plan import build_plan, discovery_seg
from asa_wizard.target import Target, open_lab

ANSWERS = {
    "fresh": '[asa]\nmode = "create"\nname = "EXASA$"\n',
    "fresh-with-seg": '[asa]\nmode = "create"\nname = "EXASA$"\n[seg]\nservice_account = "svc_awseg"\n'
                      'test_users = ["alice"]\n[iis_auth]\nenabled = true\n',
    "new-server-missing-asa": '[asa]\nname = "E15ASA$"\nenctypes = 24\n',
    "duplicate-spn": '[asa]\nname = "EXASA$"\n[spns]\nmove_from = ["FABRIKAM\\\\E14ASA$"]\n',
    "stale-credential": '[asa]\nname = "EXASA$"\n',
    "rc4-only": '[asa]\nname = "EXASA$"\nenctypes = 24\n',
    "reroll-with-spns": '[asa]\nname = "EXASA$"\n[rollout]\nnew_password = true\n',
    "seg-kcd": '[asa]\nname = "EXASA$"\n[seg]\nservice_account = "svc_awseg"\ntest_users = ["alice"]\n'
               '[iis_auth]\nenabled = true\n',
}


def answers_for(scenario: str) -> Answers:
    return parse_answers(f'[target]\nlab = "{scenario}"\n' + ANSWERS[scenario], f"{scenario}.toml")


def env_of(target: Target, answers: Answers):
    return discover(target.directory, target.exchange,
                    DiscoveryOptions(asa_sam=answers.asa.name, seg=discovery_seg(answers)))


def plan_on(target: Target, answers: Answers):
    return build_plan(env_of(target, answers), answers, target=target.label)


def findings(target: Target, answers: Answers) -> list[Any]:
    return run_catalogue(env_of(target, answers), probe=target.kerberos, now=target.lab.scenario.now)


def problems_of(target: Target, answers: Answers) -> dict[str, str]:
    return problems(findings(target, answers))


def state(target: Target) -> dict[str, Any]:
    """The lab's directory and Exchange state, comparable (accounts and servers in a stable order)."""
    truth = asdict(target.lab.truth())
    truth["accounts"] = sorted(truth["accounts"], key=lambda a: a["dn"].lower())
    return truth


__all__ = ["ANSWERS", "answers_for", "env_of", "findings", "open_lab", "plan_on", "problems_of", "state"]
