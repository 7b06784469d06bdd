"""Every journal event is checked against its schema before it is used; the reader names the line and field."""

from __future__ import annotations

import json

import pytest

from asa_wizard.core.changes import Change, System
from asa_wizard.core.errors import JournalCorrupt
from asa_wizard.core.journal import Journal, read_events


def good(tmp_path):
    j = Journal.create(tmp_path, actor="CONTOSO\\admin")
    c = Change(id="asa.enctypes", system=System.DIRECTORY, action="set-enctypes", target="CN=X", summary="s",
               commands=["Set-ADComputer -Identity 'X$'"])
    j.write("run-start", message="apply")
    j.write("intent", c)
    j.write("done", c, undo={"value": None})
    return j.path, [json.loads(line) for line in j.path.read_text().splitlines()]


def set_path(event: dict, dotted: str, value):
    keys = dotted.split(".")
    target = event
    for k in keys[:-1]:
        target = target[k]
    if value is KeyError:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value


@pytest.mark.parametrize("line,dotted,value,words", [
    (2, "seq", True, "'seq' must be a number"),
    (2, "seq", 2.0, "'seq' must be a number"),
    (2, "seq", "2", "'seq' must be a number, not text"),
    (1, "v", 2, "format version 2"),
    (2, "event", "explode", "unknown event"),
    (2, "ts", "yesterday", "not a time stamp"),
    (2, "run", "../../etc", "not a run id"),
    (2, "change", None, "without its change"),
    (2, "change.system", "mainframe", "unknown system"),
    (2, "change.commands", [1, 2], "list of texts"),
    (2, "change.id", KeyError, "no 'id'"),
    (2, "change.id", "", "id is empty"),
    (2, "change.surprise", 1, "unknown key 'surprise'"),
    (3, "undo", [1], "'undo' must be an object"),
    (1, "data", {"plan": {"target": "t", "changes": [{"id": "x"}]}}, "no 'system'"),
    (1, "data", {"skipped": "asa.create"}, "'data.skipped' must be an object"),
    (3, "seq", 2, "reuses"),
    (3, "seq", 9, "skips to"),
])
def test_each_wrong_field_is_named(tmp_path, line, dotted, value, words):
    path, events = good(tmp_path)
    set_path(events[line - 1], dotted, value)
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    with pytest.raises(JournalCorrupt) as err:
        read_events(path)
    assert err.value.line == line and words in err.value.reason, err.value.reason
    assert str(path) in err.value.problem and err.value.fix


def test_a_valid_journal_reads_back_exactly(tmp_path):
    path, events = good(tmp_path)
    read = read_events(path)
    assert [e.seq for e in read] == [1, 2, 3] and read[2].undo == {"value": None}
    assert read[1].change == events[1]["change"]
