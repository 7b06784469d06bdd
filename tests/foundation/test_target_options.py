"""A target's options are defined once (service/options.py): the flags of every command, the answers file's
[target] and the wizard's form all follow from that one table."""

from __future__ import annotations

import argparse

import pytest

from asa_wizard.cli import build_parser
from asa_wizard.core.answers import Answers, TargetAnswers, dumps_answers, parse_answers
from asa_wizard.core.errors import ConfigError
from asa_wizard.service.options import OPTIONS, answers_from_args, answers_from_fields


@pytest.mark.parametrize("command", ["check", "plan", "apply", "resume", "undo", "report"])
def test_every_command_that_opens_a_target_takes_every_option(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    flags = {s for a in sub._actions for s in a.option_strings}
    assert {o.flag for o in OPTIONS} | {"--lab"} <= flags


def test_flags_change_only_what_they_name_on_top_of_an_answers_file():
    base = parse_answers('[target]\ndc = "dc1.contoso.com"\nuser = "CONTOSO\\\\admin"\nca_file = "/ca.pem"\n'
                         '[target.winrm]\ntransport = "ntlm"\n')
    args = build_parser().parse_args(["plan", "--answers", "x.toml", "--dc", "10.0.0.5", "--dc-tls-name",
                                      "dc1.contoso.com", "--winrm-scheme", "http"])
    a = answers_from_args(args, base)
    t = a.target
    assert (t.dc, t.tls_name, t.ca_file, t.user) == ("10.0.0.5", "dc1.contoso.com", "/ca.pem", "CONTOSO\\admin")
    assert (t.winrm.transport, t.winrm.scheme, t.winrm.port) == ("ntlm", "http", 5985)
    assert base.target.dc == "dc1.contoso.com"  # the file's answers are not changed in place


def test_real_domain_options_with_the_lab_are_refused_with_the_fix():
    args = build_parser().parse_args(["check", "--lab", "fresh", "--ca-file", "/ca.pem"])
    with pytest.raises(ConfigError) as err:
        answers_from_args(args)
    assert "--ca-file" in err.value.problem and "--dc" in err.value.fix


def test_tls_name_round_trips_through_the_answers_file():
    a = Answers(target=TargetAnswers(dc="10.0.0.5", user="CONTOSO\\admin", tls_name="dc1.contoso.com"))
    assert parse_answers(dumps_answers(a)).target.tls_name == "dc1.contoso.com"


def test_the_wizard_form_gives_the_same_answers():
    values = {o.path: "" for o in OPTIONS}
    values.update({"target.dc": "dc1.contoso.com", "target.bind": "simple", "target.ldap": "starttls",
                   "target.user": "CONTOSO\\admin", "target.tls_name": "dc1.contoso.com",
                   "target.winrm.transport": "kerberos", "target.winrm.scheme": "https", "target.winrm.port": "",
                   "target.insecure_skip_tls_verify": False, "target.winrm.insecure_skip_tls_verify": False,
                   "seg.service_account": "svc_awseg", "seg.test_users": "alice, bob"})
    a = answers_from_fields(values)
    assert (a.target.dc, a.target.ldap, a.target.tls_name, a.target.winrm.port) == \
        ("dc1.contoso.com", "starttls", "dc1.contoso.com", 5986)
    assert a.seg.enabled and a.seg.test_users == ["alice", "bob"]
    values["target.winrm.port"] = "99999"
    with pytest.raises(ConfigError):
        answers_from_fields(values)
