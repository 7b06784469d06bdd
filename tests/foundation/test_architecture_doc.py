"""docs/architecture.md names modules, packages and functions: each must exist, so the document fails this test
when code it describes is moved, renamed or removed without the document following."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import asa_wizard

PACKAGE = Path(asa_wizard.__file__).resolve().parent
ROOT = PACKAGE.parent
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
TOP = ("core", "adapters", "lab", "tui", "service", "classroom")
PATH = re.compile(r"\b[\w.-]+(?:/[\w.-]+)*(?:\.py|/)")


def tree_block() -> list[str]:
    return DOC.split("```", 2)[1].splitlines()


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def test_every_file_and_folder_in_the_tree_exists():
    """The tree at the top: an entry (`core/`, `cli.py`) is in the package (screens/ and assets/ beside it), and
    the names in its description are in that folder (`exchange.py` on the adapters line is adapters/exchange.py;
    on a file's line they are the file's neighbours)."""
    missing = []
    folder = PACKAGE
    lines = [line for line in tree_block() if line.strip() and line.strip() != "asa_wizard/"]
    assert len(lines) > 10
    for line in lines:
        head, description = line[:17].strip(), line[17:]
        if head:
            base = ROOT if head in ("screens/", "assets/") else PACKAGE
            if not (base / head.rstrip("/")).exists():
                missing.append(head)
            folder = base / head.rstrip("/") if head.endswith("/") else PACKAGE
        for name in PATH.findall(description):
            if not (folder / name.rstrip("/")).exists():
                missing.append(f"{name} in {folder.relative_to(ROOT)}")
    assert missing == []


def test_every_module_path_in_the_text_exists():
    paths = [t for t in backticked(DOC) if t.startswith(TOP) and ("/" in t) and PATH.fullmatch(t)]
    assert paths, "the document names no module paths"
    assert [p for p in paths if not (PACKAGE / p.rstrip("/")).exists()] == []


def resolve(dotted: str) -> object:
    parts = dotted.split(".")
    if parts[0] != "asa_wizard":
        parts = ["asa_wizard", *parts]
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_dotted_name_resolves():
    """`core.locks.holding`, `adapters.ldap.LdapDirectory`, `service.credential_key(...)`: each is importable."""
    names = {t.split("(")[0] for t in backticked(DOC) if re.match(r"(asa_wizard|core|adapters|lab|tui|service|"
                                                                   r"classroom)\.\w", t)}
    assert len(names) >= 8
    broken = []
    for name in sorted(names):
        try:
            resolve(name)
        except (ImportError, AttributeError) as exc:
            broken.append(f"{name}: {exc}")
    assert broken == []


def section_bullets(package: str) -> dict[str, list[str]]:
    """The bullets that start with a backticked folder (`core/plan/`) -> the modules they name."""
    out: dict[str, list[str]] = {}
    for bullet in re.split(r"\n- ", DOC):
        m = re.match(r"`((?:core|adapters)/\w+/)`:", bullet)
        if m and m.group(1) == package:
            out[package] = [t for t in backticked(bullet) if t.endswith(".py") and "/" not in t]
    return out


def test_the_split_packages_are_described_module_by_module():
    """The plan and LDAP packages: every module the document names exists, and every module is named."""
    for package in ("core/plan/", "adapters/ldap/"):
        named = set(section_bullets(package).get(package, []))
        present = {p.name for p in (PACKAGE / package).glob("*.py") if p.name != "__init__.py"}
        assert named == present, package


def test_the_messages_the_document_lists_are_the_ones_in_tui_messages():
    from textual.message import Message

    from asa_wizard.tui import messages

    paragraph = DOC[DOC.index("`tui/messages.py`"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    listed = {t for t in backticked(paragraph) if re.fullmatch(r"[A-Z]\w+", t)}
    defined = {name for name, obj in vars(messages).items()
               if inspect.isclass(obj) and issubclass(obj, Message) and obj.__module__ == messages.__name__}
    assert listed == defined


def test_the_named_functions_of_the_service_exist():
    """The application service's section: every function, class or constant it names is there."""
    from asa_wizard import service
    from asa_wizard.core import executor
    from asa_wizard.service import operations, options, session

    places = (service, operations, options, session, executor)
    text = DOC[DOC.index("## One application service"):]
    text = text[:text.index("\n## ", 5)]
    names = {t for t in backticked(text) if re.fullmatch(r"[A-Za-z]\w*", t) and ("_" in t or t[0].isupper())}
    names -= {"no_exchange"}  # the answers' field, not a function
    assert {"make_plan", "open_target", "TARGET_OPTIONS", "journal_report"} <= names
    assert sorted(n for n in names if not any(hasattr(m, n) for m in places)) == []
