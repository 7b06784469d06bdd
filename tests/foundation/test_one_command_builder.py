"""No command text is assembled outside the command builder: an f-string that splices a value next to a
PowerShell or setspn parameter is how an unquoted name reached a printed fix before. The builder's own module
is the only place allowed to put text and values together."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import asa_wizard

PACKAGE = Path(asa_wizard.__file__).parent
BUILDER = PACKAGE / "core" / "commands.py"
# The parameters and commands through which a value would reach a command line.
COMMAND_TEXT = re.compile(r"(setspn\s+-|\s-(Identity|ToSpecificServers|CopyFrom|GenerateNewPasswordFor|ComputerName|"
                          r"Server|Member|Members|ZoneName|Name|Path|Filter|Location)\s|RollAlternateServiceAccount"
                          r"Password\.ps1\s)")


def spliced_commands(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{...}" for v in node.values)
            if COMMAND_TEXT.search(text):
                out.append(f"{path.relative_to(root)}:{node.lineno}: {text[:90]}")
    return out


def test_every_command_comes_from_the_builder():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if path != BUILDER for hit in spliced_commands(path)]
    assert found == [], "command text assembled outside core/commands.py:\n" + "\n".join(found)


def test_the_scan_finds_an_unquoted_command(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('spn, owner = "HTTP/x", "A"\nfix = f"setspn -D {spn} {owner}"\n'
                      'ok = f"{spn} is on {owner}"\n', encoding="utf-8")
    assert spliced_commands(sample, tmp_path) == ["sample.py:2: setspn -D {...} {...}"]
