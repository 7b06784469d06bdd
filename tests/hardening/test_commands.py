"""The command builder: every value becomes exactly one PowerShell string literal, whatever it holds.

Two independent readers check the output: tree-sitter-powershell (a real PowerShell grammar) must see every
value as ONE verbatim string argument and nothing else, and a reader of PowerShell's own rule for single
quotes (the four typographic quotes close a literal too, which tree-sitter's grammar does not know) must
read each literal back to the exact value.
"""

from __future__ import annotations

import pytest
import tree_sitter
import tree_sitter_powershell
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asa_wizard.core.commands import (SINGLE_QUOTES, SWITCH, UnsafeValue, command, hashtable, pipeline, quote,
                                      roll_script, script_block, setspn, switch)
from asa_wizard.core.errors import WizardError

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text as it may come from AD or a file: anything but NUL, weighted towards PowerShell's metacharacters.
METACHARS = "$()`;|&{}[]@#<>\"'\u2018\u2019\u201a\u201b,.-+*=%!~^\\/ \t\n\r\x1b"
values = st.text(alphabet=st.one_of(st.sampled_from(METACHARS), st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
                 max_size=40)


def strings_in(src: str) -> tuple[bool, list[tuple[str, str]]]:
    """(parse error?, [(node type, text)] for every string literal and every node that would run code)."""
    tree = PARSER.parse(src.encode("utf-8"))
    found: list[tuple[str, str]] = []

    def walk(node: tree_sitter.Node) -> None:
        if node.type in ("verbatim_string_characters", "expandable_string_literal", "sub_expression",
                         "variable", "command_name", "here_string"):
            found.append((node.type, node.text.decode("utf-8")))
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return tree.root_node.has_error, found


def read_literal(lit: str) -> str:
    """PowerShell's rule: a literal opens with any single quote, ends at the next one that is not doubled."""
    assert lit[0] in SINGLE_QUOTES
    out, i = [], 1
    while i < len(lit):
        c = lit[i]
        if c in SINGLE_QUOTES:
            if i + 1 < len(lit) and lit[i + 1] in SINGLE_QUOTES:
                out.append(c)
                i += 2
                continue
            assert i == len(lit) - 1, f"the literal ends early at {i}: {lit!r}"
            return "".join(out)
        out.append(c)
        i += 1
    raise AssertionError(f"unterminated literal {lit!r}")


@FUZZ
@given(spn=values, account=values)
def test_setspn_values_are_single_literals(spn: str, account: str) -> None:
    text = setspn("-D", spn, account)
    error, found = strings_in(text)
    assert not error
    assert found[0] == ("command_name", "setspn")
    literals = [t for kind, t in found[1:]]
    assert [kind for kind, _ in found[1:]] == ["verbatim_string_characters"] * 2, found
    assert [read_literal(x) for x in literals] == [spn, account]


@FUZZ
@given(identity=values, member=values, server=values, methods=st.lists(values, min_size=1, max_size=3))
def test_cmdlets_pipelines_and_script_blocks_hold_only_their_values(identity: str, member: str, server: str,
                                                                    methods: list[str]) -> None:
    text = "\n".join([
        command("Set-ADUser", Identity=identity, PasswordNeverExpires=True, Replace=hashtable({"k": member})),
        pipeline(command("Get-MapiVirtualDirectory", Server=server),
                 command("Set-MapiVirtualDirectory", IISAuthenticationMethods=methods)),
        command("Invoke-Command", ComputerName=server,
                ScriptBlock=script_block(command("Add-LocalGroupMember", Group="IIS_IUSRS", Member=member))),
        roll_script([server, identity], GenerateNewPasswordFor=member),
        command("Remove-ADComputer", Identity=identity, Confirm=switch(False)),
        command("Set-ClientAccessService", Identity=server, RemoveAlternateServiceAccountCredentials=SWITCH),
    ])
    error, found = strings_in(text)
    assert not error, text
    names = [t for kind, t in found if kind == "command_name"]
    assert names == ["Set-ADUser", "Get-MapiVirtualDirectory", "Set-MapiVirtualDirectory", "Invoke-Command",
                     "Add-LocalGroupMember", ".\\RollAlternateServiceAccountPassword.ps1", "Remove-ADComputer",
                     "Set-ClientAccessService"]
    assert not [f for f in found if f[0] in ("expandable_string_literal", "sub_expression", "here_string")]
    assert [t for kind, t in found if kind == "variable"] == ["$true", "$false"]
    literals = [read_literal(t) for kind, t in found if kind == "verbatim_string_characters"]
    assert literals == [identity, "k", member, server, *methods, server, "IIS_IUSRS", member, server, identity,
                        member, identity, server]


def test_the_field_report_value_is_quoted():
    """The sAMAccountName from the field report: legal in AD, a command when pasted unquoted."""
    text = setspn("-D", "HTTP/mail.fabrikam.com", "FABRIKAM\\X$(rm -r -fo ~)$")
    assert text == "setspn -D 'HTTP/mail.fabrikam.com' 'FABRIKAM\\X$(rm -r -fo ~)$'"


def test_typographic_quotes_are_doubled():
    assert quote("it\u2019s 'x'") == "'it\u2019\u2019s ''x'''"


def test_nul_is_refused_with_the_tools_own_error():
    with pytest.raises(WizardError) as err:
        command("Set-ADUser", Identity="a\x00b")
    assert isinstance(err.value, UnsafeValue) and "NUL" in err.value.problem and err.value.fix


def test_a_lone_surrogate_is_refused():
    with pytest.raises(UnsafeValue):
        setspn("-S", "HTTP/x", "a\ud800b")


@pytest.mark.parametrize("name", ["Set-ADUser; rm", "a b", "$(x)", ""])
def test_command_and_parameter_names_cannot_carry_code(name: str):
    with pytest.raises(ValueError):
        command(name)
    with pytest.raises(ValueError):
        command("Set-ADUser", **{name: "x"})


def test_only_builder_text_combines():
    with pytest.raises(TypeError):
        pipeline("Get-Thing; rm -r ~")  # type: ignore[arg-type]
