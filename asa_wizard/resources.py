"""Where the files shipped beside the code live: `screens/` and `assets/`.

In a wheel they are inside the package (`asa_wizard/_data/...`); in a source checkout or an editable
install they sit at the repository root. Both are found here, nowhere else.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent


@cache
def data_root(name: str) -> Path:
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {name}/ folder is missing from this installation ({_PKG})")


def screens_dir() -> Path:
    return data_root("screens")


def assets_dir() -> Path:
    return data_root("assets")


def scenario_dir() -> Path:
    return assets_dir() / "scenarios"


def templates_dir() -> Path:
    return assets_dir() / "templates"
