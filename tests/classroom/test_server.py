"""`asa-wizard serve` over HTTP (no browser needed): the pages load nothing from outside the server, the
token, the sessions and their folders, the class summary, and clear errors for bad options."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from asa_wizard.classroom.server import decide_token, is_loopback

from .kit import REPO, serve


@pytest.fixture
def classroom(tmp_path):
    yield from serve(tmp_path, "--scenario", "healthy", "--random-faults", "100")


def test_the_lab_page_loads_nothing_from_outside_and_shows_no_command_line(classroom):
    status, _, headers = classroom.post("/join", {"student": "Ann"})
    assert status == 303
    status, page, _ = classroom.get(headers["Location"])
    assert status == 200
    assert "<title>ASA wizard: Healthy: Kerberos works on every server (random faults, seed 101)</title>" in page
    assert 'id="product">ASA wizard<' in page
    assert "python" not in page and "asa_wizard lab" not in page and "--scenario" not in page
    refs = re.findall(r'(?:src|href)="([^"]*)"', page) + re.findall(r'url\("([^"]*)"\)', page)
    assert refs and all(r.startswith("/") for r in refs), refs  # every file from this server
    assert "googleapis" not in page and "https://" not in page
    for ref in refs:
        status, body, _ = classroom.get(ref)
        assert status == 200, ref
    # the terminal script is textual-serve's, with the terminals kept for the page to read
    status, js, _ = classroom.get("/static/js/textual.js")
    assert "window.asaWizardTerminals" in js and "https://fonts" not in js
    ws = re.search(r'data-session-websocket-url="([^"]+)"', page).group(1)
    assert ws == classroom.base.replace("http://", "ws://") + headers["Location"].replace("/lab/", "/ws/")


def test_loopback_is_the_default_and_the_server_says_so(classroom):
    out = classroom.output()
    assert "bound to 127.0.0.1 (loopback): only this machine can open it" in out
    assert f"Instructor page: {classroom.base}/\n" in out and "token" not in out.split("Instructor page")[1]
    status, page, _ = classroom.get("/")
    assert status == 200 and "bound to 127.0.0.1 (loopback)" in page


def test_sessions_get_their_own_folder_seed_and_summary(classroom):
    for name in ("Ann", "Bob"):
        assert classroom.post("/sessions", {"student": name, "scenario": "healthy", "seed": ""})[0] == 303
    status, _, _ = classroom.post("/sessions", {"student": "Cy", "scenario": "rc4-only", "seed": "7"})
    assert status == 303
    rows = {s["student"]: s for s in classroom.sessions()}
    assert (rows["Ann"]["seed"], rows["Bob"]["seed"], rows["Cy"]["seed"]) == (101, 102, 7)
    ids = {s["id"] for s in rows.values()}
    assert len(ids) == 3
    assert {p.name for p in (classroom.root / "sessions").iterdir()} == ids
    status, md, _ = classroom.get("/summary.md")
    assert status == 200 and md.startswith("# Class summary")
    assert "| Ann | healthy | – | – | – | – | – | not started |" in md
    status, html, _ = classroom.get("/summary.html")
    assert status == 200 and "<td>Cy</td>" in html
    status, page, _ = classroom.get("/")
    assert ">Ann<" in page and "(seed 101)" in page
    # nothing written yet: the report page says so
    status, page, _ = classroom.get(rows["Ann"]["url"] + "/report.html")
    assert status == 404 and "has not written a report yet" in page


def test_bad_requests_get_a_clear_answer(classroom):
    status, page, _ = classroom.post("/sessions", {"student": "Ann", "scenario": "nope"})
    assert status == 400 and "no such scenario" in page and "Use one of: duplicate-spn" in page
    status, page, _ = classroom.post("/sessions", {"student": "Ann", "scenario": "healthy", "seed": "x"})
    assert status == 400 and "is not a whole number" in page
    status, page, _ = classroom.get("/lab/0123456789ab")
    assert status == 404 and "There is no lab at this address" in page
    status, page, _ = classroom.post("/join", {"student": "Eve"}, Origin="http://elsewhere.example")
    assert status == 403 and "sent from another site" in page
    assert all(s["student"] != "Eve" for s in classroom.sessions())


def test_the_student_picks_the_scenario_when_the_server_does_not(tmp_path):
    gen = serve(tmp_path)
    c = next(gen)
    try:
        status, _, headers = c.post("/sessions", {"student": "Ann", "scenario": ""})
        assert status == 303
        [row] = c.sessions()
        assert row["scenario"] is None
        status, page, _ = c.get(row["url"])
        assert status == 200 and "pick your scenario" in page and 'value="stale-credential"' in page
        status, _, headers = c.post(row["url"], {"scenario": "stale-credential"})
        assert status == 303 and headers["Location"] == row["url"]
        [row] = c.sessions()
        assert row["scenario"] == "stale-credential"
        status, page, _ = c.get(row["url"])
        assert "Lab: Stale credential on one server" in page
    finally:
        gen.close()


def test_a_token_is_required_in_every_url_when_given(tmp_path):
    gen = serve(tmp_path, "--token", "class-secret-42")
    c = next(gen)
    try:
        status, page, _ = c.get("/")
        assert status == 403 and "needs its token" in page and "class-secret-42" not in page
        assert c.get("/api/sessions")[0] == 403
        assert c.get("/?token=wrong-token-1")[0] == 403
        status, page, headers = c.get("/?token=class-secret-42")
        assert status == 200 and "asa_wizard_token=class-secret-42" in headers["Set-Cookie"]
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        status, _, _ = c.get("/api/sessions", Cookie="asa_wizard_token=class-secret-42")
        assert status == 200
        assert c.get("/static/css/xterm.css")[0] == 200  # the page's own files need no token
        assert "?token=class-secret-42" in c.output()
    finally:
        gen.close()


def test_beyond_loopback_a_token_is_generated_and_printed(tmp_path):
    gen = serve(tmp_path, "--host", "0.0.0.0")
    c = next(gen)
    try:
        out = c.output()
        assert "bound to 0.0.0.0: reachable from the network; every address needs the token" in out
        token = re.search(r"Instructor page: http://\S+/\?token=([A-Za-z0-9_-]+)", out).group(1)
        assert len(token) >= 20
        assert c.get("/")[0] == 403
        assert c.get(f"/?token={token}")[0] == 200
    finally:
        gen.close()


def test_token_rules():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.5")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("classroom.lan")
    assert decide_token("127.0.0.1", None) == (None, False)
    token, generated = decide_token("0.0.0.0", None)
    assert generated and token and len(token) >= 20
    assert decide_token("0.0.0.0", "given-token-1") == ("given-token-1", False)


@pytest.mark.parametrize("args, problem", [
    (["serve", "--random-faults", "many"], "'many' is not a whole number"),
    (["serve", "--scenario", "nope"], "no such scenario"),
    (["serve", "--token", "short"], "at least 8"),
    (["serve", "--port", "70000"], "is not a TCP port"),
    (["lab", "--scenario", "fresh", "--random-faults", "3"], "has nothing healthy to break"),
    (["lab", "--random-faults", "-2"], "is negative"),
])
def test_bad_options_are_refused_before_anything_starts(tmp_path, args, problem):
    r = subprocess.run([sys.executable, "-m", "asa_wizard", *args], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                          "ASA_WIZARD_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "300"})
    assert r.returncode == 3, r.stdout + r.stderr
    assert problem in r.stderr and "Fix:" in r.stderr and "Traceback" not in r.stderr


def test_the_instructor_sees_the_clock_run_and_the_limit_end_a_closed_lab():
    from datetime import datetime, timedelta, timezone

    from asa_wizard.classroom.server import live_status

    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    recorded = {"started": t0.isoformat(), "elapsed_seconds": 60, "time_limit_seconds": 1200, "finished": False,
                "reason": "", "met": 1, "total": 2, "score": 50}
    assert live_status(recorded, t0 + timedelta(minutes=5))["elapsed_seconds"] == 300
    ended = live_status(recorded, t0 + timedelta(hours=1))
    assert (ended["finished"], ended["reason"], ended["elapsed_seconds"], ended["score"]) == (True, "time is up",
                                                                                            1200, 50)
    done = dict(recorded, finished=True, reason="all objectives met")
    assert live_status(done, t0 + timedelta(hours=1)) is done
    assert live_status(None, t0) is None
