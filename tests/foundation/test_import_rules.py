"""The core is pure domain: it must not depend on the UI, LDAP, WinRM, Kerberos or keyring libraries.
And `asa-wizard --help` / headless commands must not pull in textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import asa_wizard

PACKAGE = Path(asa_wizard.__file__).resolve().parent
FORBIDDEN_IN_CORE = {"textual", "ldap3", "winrm", "gssapi", "spnego", "keyring", "krb5", "requests", "rich"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and node.module:
            # relative imports may only stay inside core (from .x) - a "..adapters" import would leave it
            if node.level > 1:
                names.add("asa_wizard." + node.module.split(".")[0])
    return names


def test_core_imports_no_ui_ldap_winrm_or_kerberos_library():
    offenders = {}
    files = sorted((PACKAGE / "core").rglob("*.py"))
    assert files, "the core package has no modules"
    for f in files:
        bad = {m for m in imported_modules(f) if m in FORBIDDEN_IN_CORE}
        bad |= {m for m in imported_modules(f) if m.startswith("asa_wizard.") and m != "asa_wizard.core"}
        if bad:
            offenders[str(f.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}, f"core modules importing outside the domain: {offenders}"


def test_rule_detects_a_forbidden_import(tmp_path):
    # the checker itself must be able to fail
    p = tmp_path / "x.py"
    p.write_text("import textual\nfrom ldap3 import Server\nfrom ..adapters import ldap\n")
    assert {"textual", "ldap3", "asa_wizard.adapters"} <= imported_modules(p)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, timeout=60, check=True)
    return set(out.stdout.split())


def test_help_does_not_import_textual():
    mods = _modules_after(
        "import contextlib, io\nfrom asa_wizard.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert "asa_wizard.cli" in mods
    assert "textual" not in mods


def test_lab_list_does_not_import_textual():
    mods = _modules_after(
        "import contextlib, io\nfrom asa_wizard.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['lab', 'list'])"
    )
    assert "asa_wizard.lab.scenario" in mods
    assert "textual" not in mods
