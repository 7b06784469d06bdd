"""Fixtures shared by the whole suite.

`world_of`: builds lab worlds from scenarios (each with its own WS-Management endpoint) and closes them
after the test.

`samba_dc`: a real Samba AD DC (asa_wizard.lab.samba) on a loopback address, started once per test
session, with the Exchange schema extension and the organisation CONTOSO (EX01, EX02) in it. Tests that
change the directory must use names from `unique_name` so they never collide.

Where it lives: ``$ASA_WIZARD_SAMBA_DIR`` (default ``<tmp>/asa-wizard-samba``), one folder per loopback
address (slot). Each session takes the first free slot (a lock file, plus no one else listening there),
so several test sessions on one machine do not meet. The first session on a slot provisions the DC and
keeps a snapshot of the stopped, populated DC; later sessions restore that snapshot (seconds instead of
a full provision) and so always start from the same clean directory. The snapshot is keyed on this
harness's code, so a change to it provisions afresh.

Without Samba the tests that use the DC are skipped with a message, except when
``ASA_WIZARD_REQUIRE_SAMBA=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from asa_wizard.lab import samba as samba_module
from asa_wizard.lab.samba import SambaDC, SambaError, port_open, samba_missing
from asa_wizard.lab.scenario import Scenario
from asa_wizard.lab.world import LabWorld

ORGANIZATION = "CONTOSO"
AUTODISCOVER_URL = "https://autodiscover.contoso.lab/Autodiscover/Autodiscover.xml"
EXCHANGE_SERVERS = [
    {"name": "EX01", "fqdn": "ex01.contoso.lab", "autodiscover_url": AUTODISCOVER_URL},
    {"name": "EX02", "fqdn": "ex02.contoso.lab", "autodiscover_url": AUTODISCOVER_URL},
]
SLOTS = range(2, 60)  # 127.0.0.2 .. 127.0.0.59

_timings: dict[str, float] = {}


def _lab_root() -> Path:
    return Path(os.environ.get("ASA_WIZARD_SAMBA_DIR") or Path(tempfile.gettempdir()) / "asa-wizard-samba")


def _snapshot_key() -> str:
    """Changes whenever the harness or the Samba binary changes, so a stale snapshot is never reused."""
    h = hashlib.sha256()
    h.update(Path(samba_module.__file__).read_bytes())
    h.update(repr((ORGANIZATION, EXCHANGE_SERVERS)).encode())
    samba_bin = shutil.which("samba", path=samba_module.tool_path())
    if samba_bin:
        h.update(str(os.stat(samba_bin).st_mtime_ns).encode())
    return h.hexdigest()[:16]


def _claim_slot(root: Path) -> tuple[SambaDC, IO[str]]:
    """The first loopback address whose lock we get and on which nothing listens. The lock is held (open
    file) for the whole session; a samba left running by a killed earlier session on it is stopped. The
    locks live in one place whatever the root, since the addresses are the machine's."""
    locks = Path(tempfile.gettempdir()) / "asa-wizard-samba-slots"
    locks.mkdir(parents=True, exist_ok=True)
    for n in SLOTS:
        ip = f"127.0.0.{n}"
        lock = open(locks / f"{ip}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        dc = SambaDC(root / ip / "dc", ip=ip)
        dc.stop()  # only a samba started from this very folder (proven by the files it holds open)
        if any(port_open(ip, port, timeout=0.2) for port in samba_module.READY_PORTS):
            lock.close()
            continue
        return dc, lock
    raise SambaError(f"no free loopback address for a lab DC in 127.0.0.{SLOTS.start}-{SLOTS.stop - 1}")


def _build(dc: SambaDC, snapshot: Path) -> None:
    """Restore the snapshot when there is one; else provision, extend, populate and take it."""
    if (snapshot / "etc" / "smb.conf").exists():
        t0 = time.perf_counter()
        dc.restore(snapshot)
        _timings["restore snapshot"] = time.perf_counter() - t0
        dc.start()
        _timings["start->ready"] = dc.wait()
        return
    for old in snapshot.parent.glob("snapshot-*"):  # snapshots of an older harness
        shutil.rmtree(old, ignore_errors=True)
    t0 = time.perf_counter()
    dc.provision()
    _timings["provision"] = time.perf_counter() - t0
    dc.start()
    _timings["start->ready (first start)"] = dc.wait()
    t0 = time.perf_counter()
    dc.extend_exchange_schema()
    dc.populate_exchange(ORGANIZATION, EXCHANGE_SERVERS)
    _timings["schema + Exchange objects"] = time.perf_counter() - t0
    dc.stop()
    t0 = time.perf_counter()
    dc.snapshot(snapshot)
    _timings["take snapshot"] = time.perf_counter() - t0
    dc.start()
    _timings["start->ready"] = dc.wait()


@pytest.fixture(scope="session")
def samba_dc() -> Iterator[SambaDC]:
    """A started Samba AD DC with the Exchange schema extension and CONTOSO (EX01, EX02)."""
    reason = samba_missing()
    if reason:
        message = f"Samba AD DC not available ({reason}): run ./dev.sh test (installs it)"
        if os.environ.get("ASA_WIZARD_REQUIRE_SAMBA") == "1":
            pytest.fail(message + " [ASA_WIZARD_REQUIRE_SAMBA=1: not skipping]", pytrace=False)
        pytest.skip(message)
    t0 = time.perf_counter()
    dc, lock = _claim_slot(_lab_root())
    atexit.register(dc.stop)  # also when the session ends by Ctrl-C or an internal error
    try:
        _build(dc, dc.dir.parent / f"snapshot-{_snapshot_key()}")
        _timings["fixture setup"] = time.perf_counter() - t0
        yield dc
    finally:
        dc.stop()
        lock.close()


@pytest.hookimpl(tryfirst=True)  # before `-m samba` / `-m "not samba"` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "samba_dc" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.samba)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if _timings:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in _timings.items())
        terminalreporter.write_line(f"Samba AD DC: {parts}")


_used_names: set[str] = set()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """unique_name("asa") -> "asa3f9c1e": a name no other call in this session returned. At most 15
    characters (a computer's sAMAccountName without the '$'), so the prefix may have up to 9."""

    def make(prefix: str) -> str:
        if len(prefix) > 9:
            raise ValueError(f"prefix {prefix!r} is longer than 9 characters")
        while True:
            name = f"{prefix}{secrets.token_hex(3)}"
            if name.lower() not in _used_names:
                _used_names.add(name.lower())
                return name

    return make


@pytest.fixture
def world_of() -> Iterator[Callable[[Scenario], LabWorld]]:
    """A lab world per call (its own Exchange state and HTTPS WS-Management endpoint on loopback), closed
    when the test ends."""
    worlds: list[LabWorld] = []

    def make(s: Scenario) -> LabWorld:
        w = LabWorld(s)
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        w.close()
