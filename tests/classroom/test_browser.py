"""The classroom in a real browser: headless Chromium loads a student's lab, the wizard's first screen appears
in the page's terminal, keys reach it, two labs at once do not share state, and a reloaded page finds the lab
as the student left it."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.keys import Keys

from .kit import browser, chromium_or_skip, keep_screenshot, serve, wait_for_text

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def classroom(tmp_path):
    chromium_or_skip()
    yield from serve(tmp_path, "--scenario", "healthy", "--random-faults", "100")


def start_lab(classroom, student: str, **extra: str) -> str:
    status, body, headers = classroom.post("/join", {"student": student, **extra})
    assert status == 303, body
    return headers["Location"]


def test_a_student_opens_the_wizard_in_the_browser_and_presses_keys(classroom, tmp_path):
    lab = start_lab(classroom, "Ann")
    driver = browser()
    try:
        driver.get(classroom.base + lab)
        # the page names the product and the scenario, never the command line
        assert driver.find_element("id", "product").text == "ASA wizard"
        assert driver.find_element("id", "scenario").text == (
            "Lab: Healthy: Kerberos works on every server (random faults, seed 101)")
        page = driver.page_source
        assert "python" not in page and "-m asa_wizard" not in page
        text = wait_for_text(driver, "Lab: healthy")
        assert "ASA wizard" in text
        # the first screen: discovery has read both servers of the lab, broken by seed 101
        text = wait_for_text(driver, "EX02")
        text = wait_for_text(driver, "Exercise: 0 of 3 faults fixed")
        assert "random faults, seed 101" in text
        # a key reaches the wizard: ? opens the help of the current step
        assert "Close (esc)" not in text
        driver.find_element("css selector", ".xterm-helper-textarea").send_keys("?")
        wait_for_text(driver, "Close (esc)")
        keep_screenshot(driver, tmp_path, "classroom-first-screen.png")
        assert (tmp_path / "classroom-first-screen.png").stat().st_size > 10_000
    finally:
        driver.quit()


def press(driver, *keys: str) -> None:
    driver.find_element("css selector", ".xterm-helper-textarea").send_keys(*keys)


def test_two_labs_at_once_do_not_share_state(tmp_path):
    """Ann fixes her lab; Bob's lab, open at the same time on the same scenario, is still broken."""
    chromium_or_skip()
    gen = serve(tmp_path, "--scenario", "rc4-only")
    classroom = next(gen)
    try:
        first, second = start_lab(classroom, "Ann"), start_lab(classroom, "Bob")
        ann, bob = browser(1280, 800), browser(1280, 800)
        try:
            ann.get(classroom.base + first)
            bob.get(classroom.base + second)
            for driver in (ann, bob):
                wait_for_text(driver, "Exercise: 0 of 1 faults fixed")
            sessions = {s["student"]: s for s in classroom.sessions()}
            assert sessions["Ann"]["live"] and sessions["Bob"]["live"]
            folders = {name: classroom.root / "sessions" / s["id"] for name, s in sessions.items()}

            # Ann: the ASA account step (the palette, as a person would), apply, confirm
            wait_for_text(ann, "Step 2 of 10")
            press(ann, Keys.CONTROL, "p")
            wait_for_text(ann, "Search for commands")
            press(ann, "Go to step 3")
            wait_for_text(ann, "Go to step 3: ")
            press(ann, Keys.ENTER)
            wait_for_text(ann, "Step 3 of 10")
            press(ann, "a")
            wait_for_text(ann, "msDS-SupportedEncryptionTypes")
            press(ann, "y")
            wait_for_text(ann, "Exercise: 1 of 1 faults fixed")
            keep_screenshot(ann, tmp_path, "classroom-ann-fixed.png")

            # Bob's lab did not change: his wizard, his journal folder and his record say so
            press(bob, "r")  # discovery again: reads Bob's lab afresh
            text = wait_for_text(bob, "Exercise: 0 of 1 faults fixed")
            assert "1 of 1" not in text
            keep_screenshot(bob, tmp_path, "classroom-bob-untouched.png")
            assert list((folders["Ann"] / "journals").glob("*.jsonl"))
            assert not list((folders["Bob"] / "journals").glob("*.jsonl"))
            ann_status = json.loads((folders["Ann"] / "exercise.json").read_text())
            bob_status = json.loads((folders["Bob"] / "exercise.json").read_text())
            assert (ann_status["student"], ann_status["met"]) == ("Ann", 1)
            assert (bob_status["student"], bob_status["met"]) == ("Bob", 0)
            # the instructor sees both, each with its own progress
            rows = {s["student"]: s for s in classroom.sessions()}
            assert rows["Ann"]["fixed"] == "1 of 1" and rows["Bob"]["fixed"] == "0 of 1"

            # Ann reloads the page: a new wizard process, and her lab as she left it (her journal's change made
            # again, which the log says), not the scenario's broken one
            ann.refresh()
            wait_for_text(ann, "Exercise: 1 of 1 faults fixed")
            press(ann, Keys.CONTROL, "l")
            wait_for_text(ann, "change(s) this lab's journals recorded")
            keep_screenshot(ann, tmp_path, "classroom-ann-reloaded.png")
            assert len(list((folders["Ann"] / "journals").glob("*.jsonl"))) == 1  # nothing journaled twice
        finally:
            ann.quit()
            bob.quit()
    finally:
        gen.close()
