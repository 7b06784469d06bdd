"""Line numbers for TOML fields, for error messages (tomllib keeps no positions). Used by the scenario and
answers loaders: `TomlLocator(text).find(("servers", 1, "asa", "latest"))` -> the line of that key, or of
the closest enclosing table."""

from __future__ import annotations

import re
from typing import Any


class TomlLocator:
    """Finds the line of a field in TOML text, for error messages (tomllib keeps no positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def find(self, fieldpath: tuple[Any, ...]) -> int | None:
        """The line of the key at `fieldpath`, else of the closest enclosing table or inline table."""
        want = tuple(fieldpath)
        counts: dict[str, int] = {}
        current: tuple[Any, ...] = ()
        best_line, best_len = None, -1
        for lineno, raw in enumerate(self.lines, 1):
            line = raw.strip()
            m = re.match(r"^\[\[\s*([^\]]+?)\s*\]\]", line) or re.match(r"^\[\s*([^\]]+?)\s*\]", line)
            if m:
                header = [p.strip().strip('"') for p in m.group(1).split(".")]
                if line.startswith("[["):
                    name = ".".join(header)
                    counts[name] = counts.get(name, -1) + 1
                current = self._expand(header, counts)
                full = current
            else:
                m = re.match(r'^("[^"]+"|[A-Za-z0-9_\-\.]+)\s*=', line)
                if not m:
                    continue
                full = current + tuple(p.strip('"') for p in m.group(1).split("."))
            if full == want:
                return lineno
            if want[: len(full)] == full and len(full) > best_len:
                best_line, best_len = lineno, len(full)
        return best_line

    @staticmethod
    def _expand(header: list[str], counts: dict[str, int]) -> tuple[Any, ...]:
        out: list[Any] = []
        for i, part in enumerate(header):
            out.append(part)
            joined = ".".join(header[: i + 1])
            if joined in counts:
                out.append(counts[joined])
        return tuple(out)
