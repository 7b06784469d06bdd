"""The answers file: what a consultant writes is read back exactly, and every mistake names file, line and field."""

from __future__ import annotations

import pytest

from asa_wizard.core.answers import (
    Answers,
    AsaAnswers,
    SegAnswers,
    TargetAnswers,
    dumps_answers,
    load_answers,
    parse_answers,
    save_answers,
)
from asa_wizard.core.errors import ConfigError
from asa_wizard.core.model import AccountKind
from asa_wizard.resources import assets_dir

GOLDEN = assets_dir().parent / "tests" / "golden"


def test_golden_answers_files_load_with_their_choices():
    a = load_answers(GOLDEN / "answers-fresh.toml")
    assert a.target.lab == "fresh" and a.target.is_lab
    assert (a.asa.mode, a.asa.name, a.asa.kind, a.asa.enctypes) == ("create", "EXASA$", AccountKind.COMPUTER, 24)
    assert not a.seg.enabled and not a.iis_auth.enabled and a.rollout.first_server == "EX01"  # no gateway
    s = load_answers(GOLDEN / "answers-fresh-with-seg.toml")
    assert s.target.lab == "fresh-with-seg"
    assert s.seg.enabled and s.seg.service_account == "svc_awseg" and s.seg.test_users == ["alice"]
    assert s.iis_auth.enabled
    b = load_answers(GOLDEN / "answers-new-server-missing-asa.toml")
    assert (b.asa.mode, b.asa.name, b.asa.enctypes) == ("reuse", "E15ASA$", 24)
    assert not b.seg.enabled and not b.iis_auth.enabled


def test_real_target_with_every_option_round_trips(tmp_path):
    text = r'''
version = 1
dry_run = true
[target]
dc = "dc1.contoso.com"
ldap = "starttls"
bind = "simple"
user = "CONTOSO\\wizard"
ca_file = "/etc/ssl/contoso.pem"
[target.winrm]
transport = "ntlm"
port = 5986
ca_file = "/etc/ssl/winrm.pem"
insecure_skip_tls_verify = true
[asa]
mode = "create"
name = "EXASA"
kind = "user"
ou = "OU=Service Accounts,DC=contoso,DC=com"
enctypes = 28
[rollout]
first_server = "EX02"
concurrency = 8
servers = ["EX01", "EX02"]
new_password = true
[spns]
namespaces = ["Mail.Contoso.com"]
move_from = ["CONTOSO\\OLDASA$"]
[client_auth]
mapi = false
[seg]
service_account = "svc_awseg"
ews_proxy = true
[iis_auth]
enabled = true
'''
    a = parse_answers(text, "a.toml")
    assert a.dry_run and a.target.dc == "dc1.contoso.com" and a.target.ldap == "starttls"
    assert a.target.winrm.transport == "ntlm" and a.target.winrm.insecure_skip_tls_verify
    assert a.asa.kind == AccountKind.USER and a.asa.enctypes == 28
    assert a.spns.namespaces == ["mail.contoso.com"] and a.spns.move_from == ["CONTOSO\\OLDASA$"]
    assert a.seg.enabled and a.seg.ews_proxy and not a.client_auth.mapi and a.client_auth.outlook_anywhere
    path = save_answers(a, tmp_path / "saved.toml")
    again = load_answers(path)
    again.path = a.path = None
    assert again == a


def test_a_session_saves_answers_that_load_back(tmp_path):
    a = Answers(target=TargetAnswers(lab="seg-kcd"), asa=AsaAnswers(mode="reuse", name="EXASA$", enctypes=None),
                seg=SegAnswers(enabled=True, service_account="svc_awseg", test_users=["alice"]))
    text = dumps_answers(a)
    keys = [ln.split("=", 1)[0].strip() for ln in text.splitlines() if "=" in ln and not ln.startswith("#")]
    assert "new_password" in keys and not [k for k in keys if k in ("password", "ldap_password", "winrm_password")]
    back = parse_answers(text, "s.toml")
    back.path = None
    assert back == a


@pytest.mark.parametrize("text, line, field, words", [
    ('[target]\nlab = "fresh"\n[asa]\nmode = "make"\n', 4, "asa.mode", "not one of the choices"),
    ('[target]\nlab = "fresh"\n[asa]\nmode = "create"\nname = "EXASA"\n', 5, "asa.name", "ends in $"),
    ('[target]\nlab = "fresh"\n[asa]\nenctypes = 4\n', 4, "asa.enctypes", "24 (AES only"),
    ('[target]\nlab = "fresh"\n\n[rollout]\nconcurrency = "four"\n', 5, "rollout.concurrency", "whole number"),
    ('[target]\nlab = "fresh"\n[rollout]\nconcurrency = 0\n', 4, "rollout.concurrency", "out of range"),
    ('[target]\nlab = "fresh"\n[spns]\nmove_from = "E14ASA$"\n', 4, "spns.move_from", "list of strings"),
    ('[target]\nlab = "fresh"\n[spns]\nnamespaces = ["https://mail.contoso.com"]\n', 4, "spns.namespaces",
     "not valid"),
    ('[target]\nlab = "fresh"\n[seg]\nenabled = true\n', 3, "seg.service_account", "needs its service account"),
    ('[target]\nlab = "fresh"\ncolour = "blue"\n', 3, "target.colour", "unknown field"),
    ('[target]\ndc = "dc1.contoso.com"\npassword = "Sup3r-Secret!"\n', 3, "target.password",
     "passwords do not belong"),
    ('[target]\nlab = "fresh"\ndc = "dc1.contoso.com"\n', 3, "target.dc", "not both"),
    ('[target]\ndc = "dc1.contoso.com"\n', 1, "target.user", "needs a user"),
    ('[target]\nlab = "fresh"\n[target.winrm]\nport = 70000\n', 4, "target.winrm.port", "out of range"),
    ('[target]\nlab = "fresh"\n[iis_auth]\nenabled = "yes"\n', 4, "iis_auth.enabled", "true or false"),
])
def test_malformed_answers_name_file_line_and_field(tmp_path, text, line, field, words):
    path = tmp_path / "answers.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_answers(path)
    e = err.value
    assert (e.path, e.line, e.field) == (str(path), line, field)
    assert words in str(e)
    assert e.fix  # every error says what to do
    assert "Sup3r-Secret!" not in str(e)


def test_broken_toml_names_the_line(tmp_path):
    path = tmp_path / "answers.toml"
    path.write_text('[target]\nlab = "fresh"\n[asa\nname = "X"\n')
    with pytest.raises(ConfigError) as err:
        load_answers(path)
    assert err.value.line == 3 and "not valid TOML" in str(err.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_answers(tmp_path / "nope.toml")
    assert "cannot read" in str(err.value)
