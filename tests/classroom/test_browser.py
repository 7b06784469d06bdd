"""The classroom in a real browser: headless Chromium loads a student's lab, the wizard's first screen appears
in the page's terminal, keys reach it, and two labs at once do not share state."""

from __future__ import annotations

import json
import re

import pytest

from .kit import browser, chromium_or_skip, keep_screenshot, serve, terminal_text, wait_for_text

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def classroom(tmp_path):
    chromium_or_skip()
    yield from serve(tmp_path, "--scenario", "healthy")


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
        assert "Healthy: Kerberos works on every server" in driver.find_element("id", "scenario").text
        page = driver.page_source
        assert "python" not in page and "-m asa_wizard" not in page
        text = wait_for_text(driver, "Lab: healthy")
        assert "ASA wizard" in text
        # the first screen: discovery has read both servers of the lab
        text = wait_for_text(driver, "EX02")
        # a key reaches the wizard: ? opens the help of the current step
        assert "Close (esc)" not in text
        driver.find_element("css selector", ".xterm-helper-textarea").send_keys("?")
        wait_for_text(driver, "Close (esc)")
        keep_screenshot(driver, tmp_path, "classroom-first-screen.png")
        assert (tmp_path / "classroom-first-screen.png").stat().st_size > 10_000
    finally:
        driver.quit()


def test_two_labs_at_once_do_not_share_state(tmp_path):
    chromium_or_skip()
    gen = serve(tmp_path, "--scenario", "healthy", "--random-faults", "100")
    classroom = next(gen)
    try:
        first, second = start_lab(classroom, "Ann"), start_lab(classroom, "Bob")
        drivers = [browser(1100, 700), browser(1100, 700)]
        try:
            for driver, lab in zip(drivers, (first, second)):
                driver.get(classroom.base + lab)
            for driver in drivers:
                wait_for_text(driver, "faults fixed")
            # the neighbours got different faults (seed 101 and 102), each in its own process and folder
            sessions = {s["student"]: s for s in classroom.sessions()}
            assert sessions["Ann"]["seed"] == 101 and sessions["Bob"]["seed"] == 102
            assert sessions["Ann"]["live"] and sessions["Bob"]["live"]
            folders = {name: classroom.root / "sessions" / s["id"] for name, s in sessions.items()}
            # Ann asks for a hint; Bob's lab does not see it
            drivers[0].find_element("css selector", ".xterm-helper-textarea")
            ann_text = terminal_text(drivers[0])
            assert "hints 0 of" in ann_text
            ann = json.loads((folders["Ann"] / "exercise.json").read_text())
            bob = json.loads((folders["Bob"] / "exercise.json").read_text())
            assert ann["faults"] != bob["faults"]
            assert ann["student"] == "Ann" and bob["student"] == "Bob"
            keep_screenshot(drivers[0], tmp_path, "classroom-two-labs-ann.png")
            keep_screenshot(drivers[1], tmp_path, "classroom-two-labs-bob.png")
        finally:
            for driver in drivers:
                driver.quit()
    finally:
        gen.close()
