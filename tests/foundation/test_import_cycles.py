"""No import cycle anywhere in the package.

The test parses every module of `asa_wizard/`, resolves each import (absolute and relative) to the package's
own modules, builds the graph and fails on any cycle, naming it. Only module-level imports count: imports
inside functions and methods run when called, after every module has loaded, so they cannot make a cycle at
import time (the wizard uses them to load panes and adapters lazily). Imports under `if TYPE_CHECKING:` are at
module level and do count: a pane may not even name the app's type.
"""

from __future__ import annotations

import ast
from pathlib import Path

import asa_wizard

PACKAGE = Path(asa_wizard.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The package modules this module imports at module level (including inside top-level if/try blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def resolve(mod: str) -> str | None:
        while mod and mod not in known:
            mod = mod.rpartition(".")[0]
        return mod or None

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if (found := resolve(alias.name)) is not None:
                        out.add(found)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                for alias in node.names:  # `from . import x` imports the submodule x
                    sub = f"{mod}.{alias.name}"
                    found = sub if sub in known else resolve(mod)
                    if found is not None:
                        out.add(found)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))

    visit(tree.body)
    out.discard(name)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            found = dfs(node)
            if found:
                return found
    return None


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    graph = {name: top_level_imports(path, name, known) for name, path in mods.items()}
    # importing a.b.c runs a/__init__ and a/b/__init__ first: a package's own __init__ is not an edge of
    # its submodules (Python imports the package first, then the submodule), so it is left out here.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    return graph


def test_the_graph_sees_the_imports_it_must_see():
    """The parser is not blind: known edges are in the graph (relative, absolute, `from . import x`)."""
    graph = import_graph()
    assert "asa_wizard.core.steps" in graph["asa_wizard.core.checks"]
    assert "asa_wizard.core.checks.asa" in graph["asa_wizard.core.checks"]
    assert "asa_wizard.service.session" in graph["asa_wizard.service.operations"]
    assert "asa_wizard.tui.messages" in graph["asa_wizard.tui.steps.base"]
    assert "asa_wizard.tui.steps.base" in graph["asa_wizard.tui.app"]


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_anywhere_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_pane_imports_the_app():
    graph = import_graph()
    panes = [m for m in graph if m.startswith("asa_wizard.tui.steps")]
    assert panes
    for m in panes:
        assert "asa_wizard.tui.app" not in graph[m], m
