"""The journal can be trusted: a real apply's journal, corrupted in every way the field saw, stops resume, undo
and report with the file, the line and what to do (exit 3, the journal untouched); a torn last line is the
only damage accepted. One writer at a time: two applies on one target, or two resumes of one journal, and the
second is told which process holds the lock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asa_wizard.cli import main
from asa_wizard.core.changes import Change, System
from asa_wizard.core.errors import JournalCorrupt, WizardError
from asa_wizard.core.journal import Journal, journal_lock, read_events
from asa_wizard.core.locks import Locked, target_lock
from asa_wizard.lab.scenario import find_scenario
from asa_wizard.resources import assets_dir

GOLDEN = assets_dir().parent / "tests" / "golden"
RUNNER = "import sys\nfrom asa_wizard.cli import main\nsys.exit(main(sys.argv[1:]))\n"
# Hold the command at a point where it holds its lock, until the test says go (a file appears).
GATE = ("import pathlib, time\nimport asa_wizard.headless_cli as h\n_orig = h.{fn}\n"
        "def _gated(*a, **k):\n    d = pathlib.Path({gate!r})\n    (d / 'started').write_text('x')\n"
        "    while not (d / 'go').exists():\n        time.sleep(0.05)\n    return _orig(*a, **k)\n"
        "h.{fn} = _gated\n")


def run(data_dir: Path, *args: str, prelude: str = "", wait: bool = True):
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "160", "TERM": "dumb", "ASA_WIZARD_DATA_DIR": str(data_dir),
           "HOME": str(data_dir), "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-c", prelude + RUNNER, *args]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                stdin=subprocess.DEVNULL, cwd=str(data_dir))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL,
                          cwd=str(data_dir))


def flaky_answers(tmp: Path) -> Path:
    """A lab where one server's roll fails: apply stops with changes left for resume."""
    scenario = find_scenario("new-server-missing-asa").read_text()
    lab = tmp / "flaky.toml"
    lab.write_text(scenario.replace('fqdn = "exch-2019.tailspintoys.ca"',
                                    'fqdn = "exch-2019.tailspintoys.ca"\nfault = "fail-roll"'))
    answers = tmp / "a.toml"
    answers.write_text(f'[target]\nlab = "{lab}"\n[asa]\nname = "E15ASA$"\n')
    return answers


@pytest.fixture(scope="module")
def journals(tmp_path_factory) -> dict[str, Path]:
    """A finished apply's journal (every change done) and an unfinished one (a roll failed)."""
    tmp = tmp_path_factory.mktemp("journals")
    done = run(tmp, "apply", "--answers", str(GOLDEN / "answers-fresh.toml"), "--yes")
    assert done.returncode == 0, done.stderr
    (finished,) = (tmp / "journals").glob("*.jsonl")
    flaky = run(tmp, "apply", "--answers", str(flaky_answers(tmp)), "--yes")
    assert flaky.returncode == 2, flaky.stderr
    (unfinished,) = set((tmp / "journals").glob("*.jsonl")) - {finished}
    return {"finished": finished, "unfinished": unfinished}


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def first_index(lines: list[str], event: str, prefix: str = "") -> int:
    return next(i for i, l in enumerate(lines) if json.loads(l)["event"] == event
                and (json.loads(l).get("change") or {}).get("id", "").startswith(prefix))


def corrupt(lines: list[str], shape: str) -> tuple[list[str], int]:
    """The journal's lines with one corruption; the 1-based line the error must name."""
    out = list(lines)
    i = first_index(out, "intent", "rollout.")  # the first rollout intent, as in the field report
    ev = json.loads(out[i])
    if shape == "garbage-after-rollout-intent":
        out.insert(i + 1, "@@@ not json @@@")
        return out, i + 2
    if shape == "garbage-first-line":
        out.insert(0, "garbage")
        return out, 1
    if shape == "array":
        out[i] = json.dumps([ev])
    elif shape == "number":
        out[i] = "42"
    elif shape == "change-without-id":
        del ev["change"]["id"]
        out[i] = json.dumps(ev)
    elif shape == "unknown-key":
        ev["extra"] = 1
        out[i] = json.dumps(ev)
    elif shape == "seq-as-text":
        ev["seq"] = str(ev["seq"])
        out[i] = json.dumps(ev)
    elif shape == "reused-seq":
        ev["seq"] = ev["seq"] - 1
        out[i] = json.dumps(ev)
    elif shape == "missing-line":
        del out[i]
        return out, i + 1
    elif shape == "other-run":
        ev["run"] = "0123456789ab"
        out[i] = json.dumps(ev)
    elif shape == "change-is-text":
        ev["change"] = "rollout"
        out[i] = json.dumps(ev)
    return out, i + 1


SHAPES = ["garbage-after-rollout-intent", "garbage-first-line", "array", "number", "change-without-id",
          "unknown-key", "seq-as-text", "reused-seq", "missing-line", "other-run", "change-is-text"]


def in_process(monkeypatch, tmp_path, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: the message is read whole
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("command", ["report", "undo", "resume"])
def test_a_corrupt_journal_stops_with_file_line_and_fix(shape, command, journals, tmp_path, monkeypatch, capsys):
    source = journals["unfinished" if command == "resume" else "finished"]
    lines, bad_line = corrupt(lines_of(source), shape)
    path = tmp_path / source.name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = path.read_bytes()
    args = {"report": ["report", "--journal", str(path), "--format", "json"],
            "undo": ["undo", "--journal", str(path), "--yes"],
            "resume": ["resume", "--journal", str(path)]}[command]
    code, err = in_process(monkeypatch, tmp_path, capsys, *args)
    assert code == 3
    assert f"{path}, line {bad_line}" in err and "Fix:" in err and "Nothing was changed" in err
    assert "Traceback" not in err and "Nothing to undo" not in err
    assert path.read_bytes() == before  # nothing appended, nothing generated


def test_a_non_utf8_line_is_named(journals, tmp_path):
    path = tmp_path / "j.jsonl"
    lines = lines_of(journals["finished"])
    path.write_bytes(("\n".join(lines[:3]) + "\n").encode() + b"\x96\xff garbage\n" + ("\n".join(lines[3:]) + "\n").encode())
    with pytest.raises(JournalCorrupt) as err:
        read_events(path)
    assert err.value.line == 4 and "UTF-8" in err.value.problem


def test_a_torn_last_line_is_accepted_and_cut_off_by_the_next_writer(journals, tmp_path, monkeypatch, capsys):
    path = tmp_path / journals["unfinished"].name
    whole = journals["unfinished"].read_text()
    path.write_text(whole + '{"run": "x", "seq": 99, "ev')  # the process died in the middle of a write
    assert len(read_events(path)) == len(lines_of(journals["unfinished"]))
    code, err = in_process(monkeypatch, tmp_path, capsys, "resume", "--journal", str(path))
    assert code == 2, err  # the failing server still fails, but the run goes on from the journal
    events = read_events(path)  # strict: no torn fragment left in the middle
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert '"ev{' not in path.read_text() and path.read_text().startswith(whole)


def test_the_torn_line_may_only_be_the_last(journals, tmp_path):
    path = tmp_path / "j.jsonl"
    lines = lines_of(journals["finished"])
    path.write_text(lines[0] + "\n" + '{"run": "x", "seq": 2, "ev' + "\n" + "\n".join(lines[1:]) + "\n")
    with pytest.raises(JournalCorrupt) as err:
        read_events(path)
    assert err.value.line == 2


def change(cid: str) -> Change:
    return Change(id=cid, system=System.DIRECTORY, action="add-spns", target="CN=X", summary=cid)


def test_each_run_has_its_own_file(tmp_path):
    a, b = Journal.create(tmp_path, label="apply"), Journal.create(tmp_path, label="apply")
    assert a.path != b.path and a.run in a.path.name and b.run in b.path.name


def test_one_writer_at_a_time(tmp_path):
    j = Journal.create(tmp_path)
    with j:
        with pytest.raises(Locked) as err:
            Journal.open(j.path).lock()
        assert f"locked by pid {os.getpid()}" in err.value.problem and err.value.fix
    with Journal.open(j.path):  # released: the next writer gets it
        pass


def test_two_concurrent_resumes_one_wins(journals, tmp_path):
    path = tmp_path / journals["unfinished"].name
    shutil.copy(journals["unfinished"], path)
    gate = tmp_path / "gate"
    gate.mkdir()
    first = run(tmp_path, "resume", "--journal", str(path), prelude=GATE.format(fn="_resume", gate=str(gate)),
                wait=False)
    try:
        while not (gate / "started").exists():  # the first resume holds the journal's lock now
            assert first.poll() is None, first.communicate()
        second = run(tmp_path, "resume", "--journal", str(path))
        assert second.returncode == 3
        assert f"journal {path.name} is locked by pid {first.pid}" in second.stderr
        assert "Fix:" in second.stderr and "Traceback" not in second.stderr
    finally:
        (gate / "go").write_text("go")
        out, err = first.communicate(timeout=180)
    assert first.returncode == 2, err  # the broken server still fails: the first resume ran to the end
    events = read_events(path)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_two_concurrent_applies_on_one_target_one_wins(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    answers = str(GOLDEN / "answers-fresh.toml")
    first = run(tmp_path, "apply", "--answers", answers, "--yes",
                prelude=GATE.format(fn="_apply", gate=str(gate)), wait=False)
    try:
        while not (gate / "started").exists():  # the first apply holds the target's lock now
            assert first.poll() is None, first.communicate()
        second = run(tmp_path, "apply", "--answers", answers, "--yes")
        assert second.returncode == 3
        assert "The target Lab: fresh" in second.stderr and f"is locked by pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        (gate / "go").write_text("go")
        out, err = first.communicate(timeout=180)
    assert first.returncode == 0, err
    assert len(list((tmp_path / "journals").glob("*.jsonl"))) == 1  # the refused apply wrote no journal


def test_a_lock_held_elsewhere_names_its_process(tmp_path):
    with target_lock(tmp_path, "dc1.contoso.com"):
        with pytest.raises(WizardError) as err:
            target_lock(tmp_path, "DC1.contoso.com").acquire()
    assert f"pid {os.getpid()}" in err.value.problem
    with journal_lock(tmp_path / "x.jsonl"):
        pass


def test_the_service_holds_the_target_and_journal_locks_for_both_faces(tmp_path, monkeypatch):
    """The wizard and the headless commands apply, resume and undo through the service: the locks are there,
    not in one face. A lock another run holds refuses the run before anything is written; a lock the caller
    took earlier (the headless apply holds the target from before it plans) is shared, not fought over."""
    from asa_wizard.core.answers import load_answers
    from asa_wizard.core.locks import holding
    from asa_wizard.service import apply, discover, lock_journal, lock_target, make_plan, new_journal, open_target
    from asa_wizard.service import undo

    monkeypatch.setenv("ASA_WIZARD_DATA_DIR", str(tmp_path))
    opened = open_target(load_answers(GOLDEN / "answers-fresh.toml"))
    try:
        plan = make_plan(opened, discover(opened))
        journal = new_journal(opened)
        with lock_target(opened):  # held by another run (its own open file, as another process's would be)
            with pytest.raises(Locked) as err:
                apply(opened, plan, journal)
        assert err.value.problem.startswith("The target Lab: fresh") and f"pid {os.getpid()}" in err.value.problem
        assert not journal.path.exists()  # refused before the first line
        with holding(lock_target(opened)):  # taken earlier by the caller: the service shares it
            result = apply(opened, plan, journal)
        assert not result.failed and len(result.done) == len(plan.changes)
        written = journal.path.read_bytes()
        with lock_journal(journal.path):  # another run works on this journal
            with pytest.raises(Locked) as err:
                undo(opened, journal.path)
        assert f"journal {journal.path.name} is locked" in err.value.problem
        assert "run-end" in [e.event for e in read_events(journal.path)]
        assert journal.path.read_bytes() == written  # the refused undo wrote nothing
    finally:
        opened.close()


def test_the_report_of_a_run_without_certificate_validation_says_so(tmp_path, monkeypatch):
    from asa_wizard.core.answers import load_answers
    from asa_wizard.core.report import INSECURE_TLS_NOTE
    from asa_wizard.service import build_report, discover, open_target
    from asa_wizard.service.operations import render_report

    opened = open_target(load_answers(GOLDEN / "answers-fresh.toml"))
    try:
        env = discover(opened)
        assert "Insecure TLS" not in render_report(build_report(opened, env, []), "markdown")
        opened.target.insecure_tls = True  # the wizard's toggle sets this on its target
        report = build_report(opened, env, [])
    finally:
        opened.close()
    assert report.insecure_tls
    assert INSECURE_TLS_NOTE in render_report(report, "markdown")
    assert json.loads(render_report(report, "json"))["insecure_tls"] is True
