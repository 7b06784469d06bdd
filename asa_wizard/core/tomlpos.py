"""Line numbers for TOML fields, for error messages (tomllib keeps no positions). Used by the scenario and
answers loaders: `TomlLocator(text).find(("servers", 1, "asa", "latest"))` -> the line of that key, or of
the closest enclosing table; `TomlReader`, the typed field readers both loaders build on; `read_text` and
`parse_toml`, which fail as ConfigError."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .hosts import has_control, host_problem


def read_text(path: Path, what: str = "the file") -> str:
    """The file's text, or a ConfigError naming `what` could not be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read {what} ({exc.strerror})", "Check the path.") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(str(path), f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                          "Save it as UTF-8 (every editor can), then run the command again.", line=line) from None


def parse_toml(text: str, path: str) -> dict[str, Any]:
    """The parsed TOML, or a ConfigError with the line of the syntax error."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(path, "not valid TOML: nested too deeply", "Write plain tables and lists.") from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(path, f"not valid TOML: {exc}",
                          "Fix the syntax at that line (strings in quotes, one key per line, tables in [brackets]).",
                          line=int(m.group(1)) if m else None) from None


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


class TomlReader:
    """Typed readers for the fields of parsed TOML, failing with the file, the line and the field (ConfigError).

    Shared by the scenario and answers loaders so that both check types the same way; each keeps its own
    wording of the fixes (the *_FIX templates), refuses keys of its own (`refuse`), names types its own way
    (`type_name`) and extends a reader where its format checks more.
    """

    TABLE_FIX = "Write it as [{path}]."
    STRING_FIX = 'Write {key} = "{example}".'
    BOOLEAN_FIX = "Write {key} = true or {key} = false."
    INTEGER_FIX = "Write {key} = {lo} (no quotes)."
    STRINGS_FIX = 'Write {key} = ["{example}"].'

    def __init__(self, path: str | Path, text: str) -> None:
        self.path = path
        self.loc = TomlLocator(text)

    def fail(self, fp: tuple[Any, ...], problem: str, fix: str = "") -> ConfigError:
        name = ".".join(f"[{p}]" if isinstance(p, int) else p for p in fp).replace(".[", "[")
        return ConfigError(str(self.path), problem, fix, line=self.loc.find(fp), field=name)

    def type_name(self, value: Any) -> str:
        """How a wrongly typed value is named in "must be a string, not ..."."""
        return type(value).__name__

    def refuse(self, fp: tuple[Any, ...]) -> None:
        """Hook for keys a format forbids in any table (the answers file: passwords): raise `fail` here."""

    def unknown(self, obj: dict[str, Any], allowed: set[str], fp: tuple[Any, ...]) -> None:
        for k in obj:
            self.refuse(fp + (k,))
            if k not in allowed:
                raise self.fail(fp + (k,), "unknown field", "Known fields here: " + ", ".join(sorted(allowed)))

    def table(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], required: bool = False) -> dict[str, Any]:
        v = obj.get(key)
        path = ".".join(map(str, fp + (key,)))
        if v is None:
            if required:
                raise self.fail(fp + (key,), "missing table", f"Add a [{path}] table.")
            return {}
        if not isinstance(v, dict):
            raise self.fail(fp + (key,), "must be a table", self.TABLE_FIX.format(path=path))
        return v

    def string(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], default: str | None = None, *,
               required: bool = False, example: str = "...") -> str | None:
        v = obj.get(key)
        if v is None:
            if required:
                raise self.fail(fp + (key,), "missing", f'Add {key} = "{example}" here.')
            return default
        if not isinstance(v, str):
            raise self.fail(fp + (key,), f"must be a string, not {self.type_name(v)}",
                            self.STRING_FIX.format(key=key, example=example))
        self.no_control(v, fp + (key,))
        return v

    def no_control(self, v: str, fp: tuple[Any, ...]) -> None:
        """No NUL or other control character (line feeds and tabs excepted) in any text of the file."""
        if has_control(v):
            raise self.fail(fp, "holds a control character (such as NUL or ESC)",
                            "Remove it: names and texts here are plain printable text.")

    def host(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], default: str | None = None, *,
             required: bool = False) -> str | None:
        """A DNS host name (lower-cased), checked as one (core.hosts)."""
        v = self.string(obj, key, fp, default, required=required, example="mail.contoso.com")
        if v is None:
            return None
        problem = host_problem(v)
        if problem:
            raise self.fail(fp + (key,), problem, f'Write a host name like {key} = "mail.contoso.com" (no https://).')
        return v.lower()

    def boolean(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], default: bool) -> bool:
        v = obj.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(fp + (key,), f"must be true or false, not {v!r}", self.BOOLEAN_FIX.format(key=key))
        return v

    def integer(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], default: int | None,
                bounds: tuple[int, int] | None = None) -> int | None:
        """A whole number within `bounds` (inclusive), or any non-negative one without."""
        v = obj.get(key, default)
        if v is None:
            return None
        lo = bounds[0] if bounds else 0
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(fp + (key,), f"must be a whole number, not {v!r}", self.INTEGER_FIX.format(key=key, lo=lo))
        if bounds is None and v < 0:
            raise self.fail(fp + (key,), "must not be negative")
        if bounds is not None and not bounds[0] <= v <= bounds[1]:
            raise self.fail(fp + (key,), f"{v} is out of range", f"Use a number from {bounds[0]} to {bounds[1]}.")
        return v

    def strings(self, obj: dict[str, Any], key: str, fp: tuple[Any, ...], allowed: set[str] | None = None, *,
                example: str = "a") -> list[str]:
        v = obj.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(fp + (key,), "must be a list of strings", self.STRINGS_FIX.format(key=key, example=example))
        for x in v:
            self.no_control(x, fp + (key,))
        if allowed is not None:
            for x in v:
                if x not in allowed:
                    raise self.fail(fp + (key,), f"unknown value {x!r}", "Use one of: " + ", ".join(sorted(allowed)))
        return list(v)
