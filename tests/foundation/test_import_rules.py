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


def module_package(path: Path) -> str:
    """The dotted package a module of asa_wizard is in (`asa_wizard.core.plan` for core/plan/asa.py)."""
    parts = path.resolve().relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1])  # a package's __init__ is in that package, like its other modules


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """The modules a file imports: third-party ones by their top-level name, asa_wizard's by their full dotted
    name, relative imports resolved against the file's package (so a subpackage of core may use `..model`)."""
    package = package if package is not None else module_package(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()

    def add(name: str) -> None:
        names.add(name if name.split(".")[0] == "asa_wizard" else name.split(".")[0])

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package.split(".")
            base = base[:len(base) - (node.level - 1)]
            add(".".join(base + ([node.module] if node.module else [])))
    return names


def outside_core(name: str) -> bool:
    return name in FORBIDDEN_IN_CORE or (name.startswith("asa_wizard.") and name != "asa_wizard.core"
                                         and not name.startswith("asa_wizard.core."))


def test_core_imports_no_ui_ldap_winrm_or_kerberos_library():
    offenders = {}
    files = sorted((PACKAGE / "core").rglob("*.py"))
    assert files, "the core package has no modules"
    for f in files:
        bad = {m for m in imported_modules(f) if outside_core(m)}
        if bad:
            offenders[str(f.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}, f"core modules importing outside the domain: {offenders}"


def test_rule_detects_a_forbidden_import(tmp_path):
    # the checker itself must be able to fail, for relative and absolute imports alike
    p = tmp_path / "x.py"
    p.write_text("import textual\nfrom ldap3 import Server\nfrom ..adapters import ldap\n"
                 "from asa_wizard.lab import world\nfrom ...service import operations\nfrom ..model import Account\n")
    found = imported_modules(p, package="asa_wizard.core.plan")
    assert {"textual", "ldap3", "asa_wizard.core.adapters", "asa_wizard.lab", "asa_wizard.service",
            "asa_wizard.core.model"} <= found
    assert {m for m in found if outside_core(m)} == {"textual", "ldap3", "asa_wizard.lab", "asa_wizard.service"}
    assert module_package(PACKAGE / "core" / "plan" / "asa.py") == "asa_wizard.core.plan"
    assert module_package(PACKAGE / "core" / "plan" / "__init__.py") == "asa_wizard.core.plan"


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
