"""docs/exchange.md names the tests that reproduce each behaviour of Exchange: every one of them must exist."""

from __future__ import annotations

import ast
import re

from asa_wizard.resources import assets_dir

ROOT = assets_dir().parent


def test_every_test_named_in_the_conformance_table_exists():
    doc = (ROOT / "docs" / "exchange.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc))
    assert len(named) > 30
    missing = []
    for path, name in sorted(named):
        file = ROOT / path
        if not file.exists():
            missing.append(f"{path} (no such file)")
            continue
        tree = ast.parse(file.read_text(encoding="utf-8"))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if name not in defined:
            missing.append(f"{path}::{name}")
    assert missing == []
