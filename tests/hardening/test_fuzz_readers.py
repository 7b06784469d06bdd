"""Hostile and broken input to the scenario, answers and journal readers: only the tool's own error may come out
(a WizardError with a problem and a fix), never another exception. And the inputs the field report named, run
through the command line: exit 3, the file, the line and the field, no traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asa_wizard.cli import main
from asa_wizard.core.answers import parse_answers
from asa_wizard.core.errors import ConfigError, WizardError
from asa_wizard.core.journal import Journal, read_events
from asa_wizard.core.changes import Change, System
from asa_wizard.lab.scenario import find_scenario, load_scenario
from asa_wizard.resources import assets_dir

GOLDEN = assets_dir().parent / "tests" / "golden"
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SCENARIO = find_scenario("fresh").read_text(encoding="utf-8")
ANSWERS = (GOLDEN / "answers-fresh.toml").read_text(encoding="utf-8")
VALUE_LINE = re.compile(r'^(\s*[A-Za-z_."-]+\s*=\s*)(.+)$')

hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["\x00", "a" * 100_000 + ".com", "X$(rm -r -fo ~)$", "CN=a,b", "O=x+y;z", "\x1b]0;pwned\x07",
                     "user@evil.example:1/x#", "..", "a.", "\u202e", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
                     "-1", "1e309", "[1, [2]]", "{a = 1}", '"unterminated', "true"]),
)


def toml_value(text: str, raw: bool) -> str:
    """`text` as a TOML string (escaped), or as it is (any TOML value, or broken TOML)."""
    return text if raw else json.dumps(text)


def mutate(source: str, data: st.DataObject) -> str:
    lines = source.splitlines()
    candidates = [i for i, line in enumerate(lines) if VALUE_LINE.match(line)]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.sampled_from(candidates))
        m = VALUE_LINE.match(lines[i])
        if m is None:  # an earlier mutation left no value on this line
            continue
        lines[i] = m.group(1) + toml_value(data.draw(hostile_text), data.draw(st.booleans()))
    return "\n".join(lines) + "\n"


@FUZZ
@given(data=st.data())
def test_scenario_reader_only_raises_its_own_error(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("s") / "lab.toml"
    path.write_text(mutate(SCENARIO, data), encoding="utf-8")
    try:
        load_scenario(path)
    except WizardError as exc:
        assert exc.problem and str(path) in exc.problem


@FUZZ
@given(data=st.data())
def test_answers_reader_only_raises_its_own_error(data):
    try:
        parse_answers(mutate(ANSWERS, data), "answers.toml")
    except WizardError as exc:
        assert exc.problem.startswith("answers.toml")


@FUZZ
@given(blob=st.binary(max_size=300))
def test_readers_take_any_bytes(blob, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("b")
    for name, reader in (("s.toml", load_scenario), ("j.jsonl", read_events)):
        (tmp / name).write_bytes(blob)
        try:
            reader(tmp / name)
        except WizardError:
            pass


def _journal_lines(tmp: Path) -> list[str]:
    j = Journal.create(tmp, actor="CONTOSO\\admin")
    c = Change(id="spn.add:HTTP/mail.contoso.com", system=System.DIRECTORY, action="add-spns", target="CN=A",
               summary="Register", params={"spns": ["HTTP/mail.contoso.com"]}, commands=["setspn -S 'x' 'y'"])
    j.write("run-start", message="apply")
    j.write("intent", c)
    j.write("done", c, undo={"remove": ["HTTP/mail.contoso.com"]})
    j.write("run-end", message="finished")
    return j.path.read_text().splitlines()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids,
                                                                                      max_size=3), max_leaves=6)


@FUZZ
@given(data=st.data())
def test_journal_reader_only_raises_its_own_error(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("j")
    lines = _journal_lines(tmp)
    i = data.draw(st.integers(0, len(lines) - 1))
    event = json.loads(lines[i])
    where = data.draw(st.sampled_from(["top", "change", "line"]))
    if where == "line":
        lines[i] = data.draw(st.text(max_size=60))
    else:
        target = event if where == "top" or not event.get("change") else event["change"]
        key = data.draw(st.sampled_from(sorted(target) + ["extra"]))
        target[key] = data.draw(json_values)
        lines[i] = json.dumps(event)
    path = tmp / "j.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        events = read_events(path)
    except WizardError:
        return
    from asa_wizard.core.journal import summarize

    summarize(events)  # what was accepted is usable


# --- the field report's inputs, through the command line --------------------------------------------------
FIELD_CASES = [
    ('name = "EX01"\nversion', 'name = "EX01"\nfqdn = "ex01\\u0000.contoso.com"\nversion', "servers[0].fqdn",
     "control character"),
    ('name = "EX01"\nversion', 'name = "EX01"\nfqdn = "' + "a" * 100_000 + '.contoso.com"\nversion', "servers[0].fqdn",
     "at most 253"),
    ('organization = "Contoso"', 'organization = "Contoso,OU=x"', "forest.organization", "organisation name"),
    ("now = 2026-03-02T09:00:00Z", "now = 0001-01-01T00:00:00Z", "lab.now", "out of range"),
    ("now = 2026-03-02T09:00:00Z", "now = 2026-03-02T09:00:00Z\nmin_password_age_days = 5000",
     "lab.min_password_age_days", "from 0 to 998"),
    ('internal_host = "autodiscover.contoso.com"', 'internal_host = "user@evil.example:1/x#"',
     "defaults.autodiscover.internal_host", "not a host name"),
]


@pytest.mark.parametrize("old,new,field,words", FIELD_CASES)
def test_field_report_scenarios_are_clear_errors(old, new, field, words, tmp_path, monkeypatch, capsys):
    assert old in SCENARIO
    path = tmp_path / "lab.toml"
    path.write_text(SCENARIO.replace(old, new, 1), encoding="utf-8")
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "100000")
    assert main(["check", "--lab", str(path)]) == 3
    err = capsys.readouterr().err
    assert f"{path}, line " in err and f"field '{field}'" in err and words in err and "Fix:" in err, err[:500]


def test_files_that_are_not_utf8_name_the_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "lab.toml"
    path.write_bytes(b'[scenario]\nname = "x"\n\x96\xff\x00garbage\n')
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "1000")
    for args in (["check", "--lab", str(path)], ["plan", "--answers", str(path)]):
        assert main(args) == 3
        err = capsys.readouterr().err
        assert f"{path}, line 3" in err and "not UTF-8" in err and "Fix:" in err


def test_a_directory_instead_of_a_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "dir.toml").mkdir()
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["check", "--lab", str(tmp_path / "dir.toml")]) == 3
    assert "Is a directory" in capsys.readouterr().err


def test_an_unexpected_failure_is_still_the_tools_own_error(tmp_path, monkeypatch, capsys):
    """Whatever breaks inside a command, the user sees the problem and what to do, exit 3, no traceback."""
    import asa_wizard.headless_cli as headless

    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr(headless, "cmd_check", broken)
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["check", "--lab", "fresh"]) == 3
    err = capsys.readouterr().err
    assert "Error:" in err and "KeyError" in err and "Fix:" in err and "Traceback" not in err


def test_config_errors_carry_file_line_and_field():
    with pytest.raises(ConfigError) as err:
        parse_answers('[target]\nlab = "fresh"\n[asa]\nmode = "create"\nname = "X\\u0000$"\n', "a.toml")
    assert err.value.line == 5 and err.value.field == "asa.name"
