"""What reaches the user's terminal and files: outside text with its control characters escaped, insecure TLS
stated in every format, URLs only from host names (the keyring's judgement: tests/tui/test_secret_store.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import os

import pytest

from asa_wizard.adapters.winrm import WinRmSettings
from asa_wizard.core.errors import WizardError
from asa_wizard.core.hosts import dn_problem, host_problem, require_host, sam_problem
from asa_wizard.core.report import FindingRow, INSECURE_TLS_NOTE, build_report, check_json, render_report
from asa_wizard.core.secrets import Secret
from asa_wizard.core.text import markup_safe, terminal_safe
from asa_wizard.resources import templates_dir

HOSTILE = "EX\x1b]0;owned\x07\x1b[2J\u202eevil\r\x9b31m[bold red]x[/]"


def test_control_characters_are_shown_escaped():
    assert terminal_safe(HOSTILE) == "EX\\u001b]0;owned\\u0007\\u001b[2J\\u202eevil\\u000d\\u009b31m[bold red]x[/]"
    assert terminal_safe("a\nb\tc") == "a\nb\tc" and terminal_safe("a\nb", single_line=True) == "a\\u000ab"
    assert terminal_safe(terminal_safe(HOSTILE)) == terminal_safe(HOSTILE)  # safe to apply twice


def test_rich_markup_is_shown_literally():
    from rich.console import Console

    console = Console(record=True, width=200, color_system=None)
    console.print(markup_safe(HOSTILE))
    shown = console.export_text()
    assert "[bold red]x[/]" in shown and "\x1b" not in shown and "\\u001b]0;owned" in shown


def row(**kw) -> FindingRow:
    base = dict(id="spn.owner", title="The HTTP SPNs sit on the ASA", area="spn", status="fail",
                subject="mail.contoso.com", evidence=f"registered on {HOSTILE}", reason="", fix="")
    return FindingRow(**{**base, **kw})


@pytest.mark.parametrize("fmt", ["json", "markdown", "html"])
def test_reports_escape_outside_text_and_state_insecure_tls(fmt):
    report = build_report(after=[row()], target=f"dc1 {HOSTILE}", generated_at="2026-01-01", insecure_tls=True)
    text = render_report(report, fmt, templates_dir())
    assert not any(ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in text)
    assert "\\u001b" in text and "owned" in text
    assert "NOT validated" in text and "--insecure-skip-tls-verify" in text
    if fmt == "json":
        doc = json.loads(text)
        assert doc["insecure_tls"] is True and doc["insecure_tls_note"] == INSECURE_TLS_NOTE
        assert doc["after"][0]["evidence"] == "registered on " + HOSTILE  # JSON escapes: the data stays exact
    secure = render_report(build_report(after=[row()], target="t", generated_at="g"), fmt, templates_dir())
    assert "NOT validated" not in secure


def test_check_json_states_insecure_tls():
    doc = json.loads(check_json([row()], target="t", generated_at="g", insecure_tls=True))
    assert doc["insecure_tls"] is True and "NOT validated" in doc["insecure_tls_note"]
    assert json.loads(check_json([row()], target="t", generated_at="g"))["insecure_tls"] is False


def test_check_against_a_real_dc_says_tls_was_not_validated_in_every_format(samba_dc, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "1000", "TERM": "dumb", "ASA_WIZARD_DATA_DIR": str(tmp_path),
           "HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path),
           "ASA_WIZARD_LDAP_PASSWORD": samba_dc.admin_password.reveal(), "KRB5_CONFIG": str(samba_dc.krb5_conf)}
    base = ["check", "--dc", samba_dc.host, "--dc-tls-name", samba_dc.tls_name, "--insecure-skip-tls-verify",
            "--user", samba_dc.admin_upn, "--no-exchange", "--only", "asa"]
    outputs = {}
    for fmt in ("text", "json", "markdown", "html"):
        r = subprocess.run([sys.executable, "-m", "asa_wizard", *base, "--format", fmt], capture_output=True,
                           text=True, timeout=120, env=env, stdin=subprocess.DEVNULL, cwd=str(tmp_path))
        assert r.returncode in (0, 1, 2), r.stderr
        outputs[fmt] = r.stdout
    assert json.loads(outputs["json"])["insecure_tls"] is True
    for fmt, text in outputs.items():
        assert "NOT validated" in text and "--insecure-skip-tls-verify" in text, fmt


@pytest.mark.parametrize("name", ["user@evil.example:1/x#", "evil.example:1", "ex01.contoso.com/x", "a b.com",
                                  "ex01..contoso.com", "-ex01.contoso.com", "a" * 64 + ".com", "x" * 300, ""])
def test_no_url_from_a_name_that_is_not_a_host(name):
    settings = WinRmSettings(user="CONTOSO\\admin", password=Secret("pw-1"))
    with pytest.raises(WizardError) as err:
        settings.url_for(name)
    assert err.value.fix and "https://" not in err.value.problem


def test_urls_from_host_names_and_addresses():
    settings = WinRmSettings(user="CONTOSO\\admin", password=Secret("pw-1"))
    assert settings.url_for("ex01.contoso.com") == "https://ex01.contoso.com:5986/wsman"
    assert settings.url_for("EX01") == "https://EX01:5986/wsman"
    assert settings.url_for("fe80::1") == "https://[fe80::1]:5986/wsman"
    assert require_host("10.0.0.5") == "10.0.0.5"


def test_names_by_active_directorys_rules():
    assert host_problem("mail.contoso.com") is None and "253" in host_problem("a." * 130 + "com")
    assert sam_problem("X$(rm -r -fo ~)$") is None  # legal in AD: quoted, never refused
    assert sam_problem("a" * 21) and sam_problem("a.") and sam_problem("...") and sam_problem("a\x00")
    assert sam_problem("EX01", computer=True) and sam_problem("EX01$", computer=False)
    assert dn_problem("OU=Service Accounts,DC=contoso,DC=com") is None
    assert dn_problem("OU=a\\,b") is None and dn_problem("OU=a,b") and dn_problem("CN=x;y") and dn_problem("")
