"""`check` on an organisation whose account names carry PowerShell's metacharacters (legal sAMAccountNames):
every command it prints, in every format, quotes them; pasted into PowerShell, nothing in a name would run."""

from __future__ import annotations

import json
import re

import tree_sitter
import tree_sitter_powershell

from asa_wizard.cli import main
from asa_wizard.lab.scenario import find_scenario

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
ASA = "A$(rm -r -fo ~)$"  # the field report's name: a subexpression when unquoted
OLD = "B'\u2019`&{}#%!^ ~$"  # quotes (a typographic one too), backtick, braces, hash, ampersand, space...
COMMAND_START = re.compile(r"^(setspn|\.\\RollAlternateServiceAccountPassword\.ps1|[A-Z][a-z]+-[A-Za-z]+) ")
# Every command a fix may run: a name smuggled in unquoted would add one (rm) or a subexpression.
KNOWN = {"setspn", ".\\RollAlternateServiceAccountPassword.ps1", "Set-ADComputer", "Set-ADUser", "New-ADComputer",
         "Read-Host", "Enable-ADAccount", "Set-ADAccountControl", "Get-OutlookAnywhere", "Set-OutlookAnywhere",
         "Get-MapiVirtualDirectory", "Set-MapiVirtualDirectory", "Invoke-Command", "Set-Service", "Start-Service",
         "Add-LocalGroupMember", "Test-NetConnection", "Remove-ADGroupMember", "Get-ADUser",
         "Set-ActiveSyncVirtualDirectory", "Set-WebServicesVirtualDirectory", "Join-Path",
         "Remove-DnsServerResourceRecord", "Add-DnsServerResourceRecordA"}


def hostile_scenario(tmp_path):
    text = find_scenario("duplicate-spn").read_text(encoding="utf-8")
    assert "EXASA$" in text and "E14ASA$" in text
    text = text.replace("E14ASA$", OLD.replace("\\", "\\\\")).replace("EXASA$", ASA)
    # the ASA without AES and with an old password: its fixes name it (Set-ADComputer, the roll script)
    text = text.replace("enctypes = 24\npwd_last_set = 2026-02-10T14:00:10Z", "enctypes = 4\npwd_last_set = 2025-01-10T14:00:10Z")
    assert "enctypes = 4" in text
    path = tmp_path / "hostile.toml"
    path.write_text(text, encoding="utf-8")
    return path


def doubled(name: str) -> str:
    return "".join(c + c if c in "'\u2018\u2019\u201a\u201b" else c for c in name)


def command_lines(fix: str) -> list[str]:
    return [line for line in fix.splitlines() if COMMAND_START.match(line)]


def test_check_prints_only_quoted_commands(tmp_path, monkeypatch, capsys):
    path = hostile_scenario(tmp_path)
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["check", "--lab", str(path), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    lines = [line for f in doc["findings"] for line in command_lines(f["fix"])]
    with_names = [line for line in lines if ASA in line or doubled(OLD) in line]
    assert any(line.startswith("setspn -D ") for line in with_names), lines  # the field report's case is there
    assert any(ASA in line for line in with_names) and len(with_names) >= 3, with_names
    for line in lines:
        tree = PARSER.parse(line.encode("utf-8"))
        assert not tree.root_node.has_error, line
        names, literals, bad = [], [], []

        def walk(node):
            if node.type == "command_name":
                names.append(node.text.decode())
            elif node.type == "verbatim_string_characters":
                literals.append(node.text.decode())
            elif node.type in ("expandable_string_literal", "here_string") or (
                    node.type == "variable" and node.text.decode() not in ("$true", "$false", "$env:windir")):
                bad.append(node.text.decode())
            for child in node.children:
                walk(child)

        walk(tree.root_node)
        assert set(names) <= KNOWN, (line, names)
        assert not bad, (line, bad)
        for name in (ASA, OLD):
            if doubled(name) in line:  # the name only ever inside one literal, quotes doubled
                assert any(doubled(name) in lit for lit in literals), (line, literals)


def test_the_text_table_shows_the_same_quoted_commands(tmp_path, monkeypatch, capsys):
    path = hostile_scenario(tmp_path)
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["check", "--lab", str(path)]) == 2
    out = capsys.readouterr().out
    quoted = f"'FABRIKAM\\{doubled(OLD)}'"
    assert f"setspn -D 'HTTP/mail.fabrikam.com' {quoted}" in out
    assert f"FABRIKAM\\{doubled(OLD)}" not in out.replace(quoted, "")  # never without its quotes
    fixes = [line.strip().removeprefix("Fix: ") for line in out.splitlines()]
    commands = [line for line in fixes if COMMAND_START.match(line)]
    assert any(ASA in line for line in commands)
    for line in commands:
        assert ASA not in line.replace(f"'FABRIKAM\\{ASA}'", "").replace(f"'{ASA}'", ""), line
