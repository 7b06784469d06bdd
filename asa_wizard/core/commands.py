"""The one builder of command text: every PowerShell, setspn, Set-AD* or RollAlternateServiceAccountPassword.ps1
line the tool prints (checks, plans, reports) or sends (the Exchange adapters) is made here.

The rule: a value is text from the outside world (a server name, an account, an SPN, a DN) and always becomes
ONE single-quoted PowerShell literal (`quote`): nothing inside is expanded ($(), backticks, semicolons, pipes
are plain text), every quote character PowerShell accepts (the ASCII one and the typographic ‘ ’ ‚ ‛) is doubled,
and NUL (which no command line can carry) or a lone surrogate (not text) is refused with `UnsafeValue`. Code is only what this module makes:
`Code` is a `str` that the builder produced (a command, a pipeline, a script block, `$true`, a variable, a
hashtable), and only `Code` is put into a command as it is. A command name and a parameter name are checked
against a strict pattern, so they cannot carry anything either.

    command("Set-ADUser", Identity="EXASA$", PasswordNeverExpires=True)
        -> Set-ADUser -Identity 'EXASA$' -PasswordNeverExpires $true
    setspn("-D", "HTTP/mail.contoso.com", "CONTOSO\\X$(rm -r -fo ~)$")
        -> setspn -D 'HTTP/mail.contoso.com' 'CONTOSO\\X$(rm -r -fo ~)$'
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from .errors import WizardError

# Characters PowerShell's tokenizer treats as a single quote (it accepts the typographic ones too).
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
ROLL_SCRIPT = ".\\RollAlternateServiceAccountPassword.ps1"
_COMMAND_NAME = re.compile(r"(?:\.\\)?[A-Za-z][A-Za-z0-9-]*(?:\.ps1|\.exe)?")
_PARAMETER = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SETSPN_FLAGS = {"-S", "-D", "-Q", "-F -Q", "-L", "-X"}


class UnsafeValue(WizardError, ValueError):
    """A value that cannot be put into a command at all (a NUL character)."""

    kind = "unsafe-value"


class Code(str):
    """PowerShell text made by this builder: placed into a command as it is. Anything else is quoted."""


SWITCH = Code("")  # a switch parameter: -Name with no value


class SwitchValue(Code):
    """A switch given a value: -Confirm:$false."""


def switch(on: bool) -> SwitchValue:
    return SwitchValue("$true" if on else "$false")
TRUE = Code("$true")
FALSE = Code("$false")


def quote(value: str) -> Code:
    """A PowerShell single-quoted literal that evaluates to exactly `value`."""
    if not isinstance(value, str):
        raise TypeError(f"quote takes text, not {type(value).__name__}")
    if "\x00" in value:
        raise UnsafeValue("A value holds a NUL character, which no command line can carry.",
                          "Fix the name in the directory or the input file (it must not contain NUL).")
    if _SURROGATE.search(value):
        raise UnsafeValue("A value holds a broken character (a lone UTF-16 surrogate), which is not text.",
                          "Fix the name in the directory or the input file (it must be valid Unicode).")
    return Code("'" + "".join(c + c if c in SINGLE_QUOTES else c for c in value) + "'")


def literal(value: Any) -> Code:
    """Any value: `Code` as it is, a boolean as $true/$false, a number as digits, a list as @('a','b'),
    a mapping as a hashtable, text (anything else) as a single-quoted literal."""
    if isinstance(value, Code):
        return value
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, int):
        return Code(str(value))
    if isinstance(value, (list, tuple)):
        return Code("@(" + ",".join(literal(v) for v in value) + ")")
    if isinstance(value, Mapping):
        return hashtable(value)
    return quote(value if isinstance(value, str) else str(value))


def _argument(value: Any) -> Code:
    """A parameter's value on a command line: a list is the comma form PowerShell binds to an array."""
    if isinstance(value, (list, tuple)) and not isinstance(value, Code):
        return Code(",".join(literal(v) for v in value))
    return literal(value)


def hashtable(entries: Mapping[str, Any]) -> Code:
    """@{'key'=value;...}: keys and text values quoted."""
    return Code("@{" + ";".join(f"{quote(str(k))}={literal(v)}" for k, v in entries.items()) + "}")


def variable(name: str) -> Code:
    if not _VARIABLE.fullmatch(name):
        raise ValueError(f"{name!r} is not a variable name")
    return Code("$" + name)


def command(name: str, *positional: Any, **parameters: Any) -> Code:
    """`name 'positional'... -Parameter 'value'...`; `SWITCH` gives a bare -Parameter; None leaves it out."""
    if not _COMMAND_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a command name")
    parts = [name] + [_argument(v) for v in positional]
    for param, value in parameters.items():
        if value is None:
            continue
        if not _PARAMETER.fullmatch(param):
            raise ValueError(f"{param!r} is not a parameter name")
        if value is SWITCH:
            parts.append(f"-{param}")
        elif isinstance(value, SwitchValue):
            parts.append(f"-{param}:{value}")
        else:
            parts.append(f"-{param} {_argument(value)}")
    return Code(" ".join(parts))


APPCMD = Code("(Join-Path $env:windir 'system32\\inetsrv\\appcmd.exe')")


def native(program: Code, *arguments: Any) -> Code:
    """& <program> 'argument'...: an external program (`APPCMD`), every argument a single literal."""
    return Code(" ".join(["&", _code(program)] + [literal(a) for a in arguments]))


def pipeline(*commands: Code) -> Code:
    return Code(" | ".join(_code(c) for c in commands))


def statements(*lines: Code, sep: str = "; ") -> Code:
    return Code(sep.join(_code(c) for c in lines))


def script_block(*lines: Code, multiline: bool = False) -> Code:
    """{ a; b } (or one statement per indented line)."""
    if multiline:
        return Code("{\n" + "\n".join("    " + _code(c) for c in lines) + "\n}")
    return Code("{ " + "; ".join(_code(c) for c in lines) + " }")


def subexpression(code: Code) -> Code:
    """(command): its result as a value."""
    return Code("(" + _code(code) + ")")


def assign(name: str, value: Any) -> Code:
    return Code(f"{variable(name)}={literal(value)}")


def setspn(flag: str, spn: str, account: str | None = None) -> Code:
    """setspn -S/-D/-F -Q 'SPN' ['DOMAIN\\account']."""
    if flag not in _SETSPN_FLAGS:
        raise ValueError(f"{flag!r} is not a setspn option here")
    return Code(" ".join(["setspn", flag, quote(spn)] + ([quote(account)] if account is not None else [])))


def roll_script(servers: str | Iterable[str] | None = None, **parameters: Any) -> Code:
    """.\\RollAlternateServiceAccountPassword.ps1 -ToSpecificServers 'EX01' (or -ToEntireForest) ..."""
    if servers is None:
        return command(ROLL_SCRIPT, ToEntireForest=SWITCH, **parameters)
    names = [servers] if isinstance(servers, str) else list(servers) or ["<Exchange server>"]
    return command(ROLL_SCRIPT, ToSpecificServers=names if len(names) > 1 else names[0], **parameters)


def _code(value: Code) -> str:
    if not isinstance(value, Code):
        raise TypeError("only builder-made command text can be combined; quote values with quote()")
    return value


__all__ = ["APPCMD", "Code", "FALSE", "ROLL_SCRIPT", "SINGLE_QUOTES", "SWITCH", "SwitchValue", "TRUE", "UnsafeValue", "assign", "command",
           "hashtable", "literal", "native", "pipeline", "quote", "roll_script", "script_block", "setspn", "statements",
           "subexpression", "switch", "variable"]
