"""Helpers for the classroom tests: a real `asa-wizard serve` on a free loopback port, and headless Chromium
driven by Selenium (Debian's chromium and chromedriver; nothing is downloaded)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A running classroom: its base URL, its folder, and what it printed."""

    def __init__(self, proc: subprocess.Popen, base: str, root: Path, log: Path) -> None:
        self.proc = proc
        self.base = base
        self.root = root
        self.log = log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
        req = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read().decode("utf-8", "replace"), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace"), dict(e.headers)

    def post(self, path: str, data: dict[str, str], **headers: str) -> tuple[int, str, dict[str, str]]:
        body = urllib.parse.urlencode(data).encode()
        req = urllib.request.Request(self.base + path, data=body, headers=headers, method="POST")

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=20) as r:
                return r.status, r.read().decode("utf-8", "replace"), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace"), dict(e.headers)

    def sessions(self, query: str = "") -> list[dict[str, Any]]:
        status, body, _ = self.get("/api/sessions" + query)
        assert status == 200, body
        return json.loads(body)["sessions"]


def serve(tmp_path: Path, *args: str) -> Iterator[Served]:
    """Start `asa-wizard serve` with `args` on a free loopback port; stop it (and every lab) afterwards."""
    import urllib.parse  # noqa: F401 - used by Served.post

    port = free_port()
    root = tmp_path / "classroom"
    log = tmp_path / "serve.log"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               ASA_WIZARD_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1",
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "asa_wizard", "serve", "--port", str(port),
                                 "--data-dir", str(root), *args], stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=tmp_path)
    served = Served(proc, f"http://127.0.0.1:{port}", root, log)
    try:
        for _ in range(300):  # bounded: the server answers within seconds
            if proc.poll() is not None:
                raise AssertionError(f"serve exited with {proc.returncode}:\n{served.output()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("serve did not listen:\n" + served.output())
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def chromium_or_skip() -> None:
    """Skip with the reason when the browser is not installed, unless ASA_WIZARD_REQUIRE_BROWSER=1 (CI)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(Path(p).name))]
    if missing:
        message = (f"needs Debian's chromium and chromium-driver ({', '.join(missing)} not found): "
                   "apt-get install chromium chromium-driver")
        if os.environ.get("ASA_WIZARD_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (ASA_WIZARD_REQUIRE_BROWSER=1)")
        pytest.skip(message)


def browser(width: int = 1280, height: int = 800) -> Any:
    """Headless Chromium through the system chromedriver (Selenium Manager is never asked to download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


TERMINAL_TEXT = """
const terms = window.asaWizardTerminals || [];
if (!terms.length) return null;
const buffer = terms[0].terminal.buffer.active;
const lines = [];
for (let i = 0; i < buffer.length; i++) { const line = buffer.getLine(i); if (line) lines.push(line.translateToString(true)); }
return lines.join("\\n");
"""


def terminal_text(driver: Any) -> str:
    """What the page's terminal shows (xterm.js's buffer), as lines of text."""
    return driver.execute_script(TERMINAL_TEXT) or ""


def wait_for_text(driver: Any, needle: str, timeout: float = 90) -> str:
    """The terminal's text once it contains `needle`; fails with what it showed instead."""
    from selenium.webdriver.support.ui import WebDriverWait

    seen = {"text": ""}

    def has(d: Any) -> bool:
        seen["text"] = terminal_text(d)
        return needle in seen["text"]

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.5).until(has)
    except Exception as exc:
        raise AssertionError(f"{needle!r} never appeared in the terminal; it showed:\n{seen['text']}") from exc
    return seen["text"]


def keep_screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    """A screenshot under the test's tmp_path and, when ASA_WIZARD_ARTIFACTS is set, there too."""
    path = tmp_path / name
    driver.save_screenshot(str(path))
    artifacts = os.environ.get("ASA_WIZARD_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / name)
    return path
