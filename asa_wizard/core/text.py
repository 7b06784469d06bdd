"""Text from the outside world (the directory, Exchange, logs, files) made safe to show.

`terminal_safe` shows control characters escaped (ESC, BEL, backspace, carriage return, the C1 controls, and the
Unicode bidirectional overrides that reorder what a person reads) as `\\u001b` and the like, so a value from AD
can never move the cursor, retitle the window, hide text or pretend to be something else. Line feeds (and tabs)
stay unless `single_line`. The escape is the JSON one, so a JSON document stays valid JSON.

`markup_safe` does the same and also escapes Rich console markup (`[bold]`, `[link=...]`), for text printed
through a Rich console or a Textual widget. Both are pure functions (the core imports no UI library).
"""

from __future__ import annotations

import re

# C0 controls except tab and line feed, DEL, C1 controls; bidi embeddings/overrides/isolates; line/para separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Rich's markup: an opening bracket followed by a tag-like word (the same rule as rich.markup.escape).
_MARKUP = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def terminal_safe(text: object, *, single_line: bool = False) -> str:
    """`text` with every control character shown escaped (line feeds and tabs kept unless `single_line`)."""
    return (_UNSAFE_LINE if single_line else _UNSAFE).sub(_escape, str(text))


def markup_safe(text: object, *, single_line: bool = False) -> str:
    """`terminal_safe`, and Rich markup in the text shown literally."""
    out = _MARKUP.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", terminal_safe(text, single_line=single_line))
    if out.endswith("\\") and not out.endswith("\\\\"):
        out += "\\"
    return out


__all__ = ["markup_safe", "terminal_safe"]
