"""Fill a Samba AD DC with a large organisation, once, and keep it as a snapshot for the benchmarks.

The discovery and SPN-audit targets (discovery under 2 s, SPN audit under 0.5 s) only mean something on a
directory the size of a real customer's. Filling one over LDAP takes minutes, so it is done once: the
stopped DC folder is kept as a snapshot and restored by every later run (about a second).

Contents (defaults): 20,000 users in ``OU=Bench Users``, 2,000 computers in ``OU=Bench Computers`` (every
10th holds ``HTTP/appNNNN.contoso.lab``), the Exchange organisation ``CONTOSO`` with 200 servers spread
over 10 sites (each with the EWS, ActiveSync, MAPI, Outlook Anywhere and OWA virtual directories for
``mail.contoso.lab`` and an Autodiscover SCP), the servers' computer accounts, and the ASA computer
account ``EXASA$`` holding ``HTTP/mail.contoso.lab`` and ``HTTP/autodiscover.contoso.lab``. The users
and computers have no passwords (Samba leaves them disabled): discovery reads them, nobody logs on.

Usage (as root, Samba installed: ``./dev.sh install``)::

    python benchmarks/fill_directory.py                 # fill once (or reuse the snapshot), then stop
    python benchmarks/fill_directory.py --keep-running  # ... and leave the DC running, print how to reach it
    python benchmarks/fill_directory.py --stop          # stop a DC left running
    python benchmarks/fill_directory.py --refill        # throw the snapshot away and fill again
    python benchmarks/fill_directory.py --users 2000 --computers 200 --servers 20   # a smaller one

Options: ``--dir`` (default ``<tmp>/asa-wizard-bench``), ``--ip`` (default 127.0.0.60, outside the
addresses the test suite uses). Other benchmark scripts import ``start_filled()`` from this module to get a
started, filled DC.
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asa_wizard.lab.samba import SambaDC, SambaError, samba_missing

ORGANIZATION = "CONTOSO"
NAMESPACE = "mail.contoso.lab"
AUTODISCOVER_URL = "https://autodiscover.contoso.lab/Autodiscover/Autodiscover.xml"
ASA = "EXASA"
SITES = 10
HTTP_SPN_EVERY = 10  # every 10th computer holds an HTTP/ SPN
WORKERS = 2
FILL_VERSION = 1  # the directory's contents: bump when _entries/_server_specs change
_held_locks: dict[Path, object] = {}  # folder locks, held until this process exits


@dataclass(frozen=True)
class Size:
    users: int = 20_000
    computers: int = 2_000
    servers: int = 200


def default_dir() -> Path:
    return Path(tempfile.gettempdir()) / "asa-wizard-bench"


def _snapshot_path(base: Path, size: Size) -> Path:
    """Keyed on the size and FILL_VERSION (bump it when what is filled changes): a fill costs minutes, so
    unrelated edits to the harness must not throw the snapshot away."""
    return base / f"snapshot-{size.users}u-{size.computers}c-{size.servers}s-v{FILL_VERSION}"


def _server_specs(size: Size) -> list[dict]:
    vdirs = {
        "ews": {"internal": f"https://{NAMESPACE}/EWS/Exchange.asmx", "external": f"https://{NAMESPACE}/EWS/Exchange.asmx",
                "internal_auth": 2 | 16 | 8192},
        "eas": {"internal": f"https://{NAMESPACE}/Microsoft-Server-ActiveSync",
                "external": f"https://{NAMESPACE}/Microsoft-Server-ActiveSync", "internal_auth": 1},
        "mapi": {"internal": f"https://{NAMESPACE}/mapi", "external": f"https://{NAMESPACE}/mapi",
                 "internal_auth": 2 | 1024 | 8192},
        "outlook-anywhere": {"internal": NAMESPACE, "external": NAMESPACE, "internal_auth": 2 | 8192,
                             "external_auth": 2},
        "owa": {"internal": f"https://{NAMESPACE}/owa", "external": f"https://{NAMESPACE}/owa", "internal_auth": 4},
    }
    return [{"name": f"EX{i:03d}", "fqdn": f"ex{i:03d}.contoso.lab", "site": f"Site{i % SITES:02d}",
             "roles": ["Mailbox", "ClientAccess"], "autodiscover_url": AUTODISCOVER_URL, "vdirs": vdirs}
            for i in range(1, size.servers + 1)]


def _entries(dc: SambaDC, size: Size) -> list[tuple[str, str, dict]]:
    users_ou = f"OU=Bench Users,{dc.base_dn}"
    computers_ou = f"OU=Bench Computers,{dc.base_dn}"
    out: list[tuple[str, str, dict]] = []
    for i in range(1, size.users + 1):
        sam = f"user{i:05d}"
        out.append((f"CN={sam},{users_ou}", "user", {
            "sAMAccountName": sam, "userPrincipalName": f"{sam}@{dc.domain}",
            "givenName": "Bench", "sn": f"User {i}", "description": "benchmark user"}))
    for i in range(1, size.computers + 1):
        name = f"PC{i:05d}"
        fqdn = f"{name.lower()}.{dc.domain}"
        spns = [f"HOST/{name}", f"HOST/{fqdn}"]
        if i % HTTP_SPN_EVERY == 0:
            spns.append(f"HTTP/app{i:05d}.{dc.domain}")
        out.append((f"CN={name},{computers_ou}", "computer", {
            "sAMAccountName": f"{name}$", "userAccountControl": 4096, "dNSHostName": fqdn,
            "servicePrincipalName": spns}))
    out.append((f"CN={ASA},CN=Computers,{dc.base_dn}", "computer", {
        "sAMAccountName": f"{ASA}$", "userAccountControl": 4096, "msDS-SupportedEncryptionTypes": 24,
        "servicePrincipalName": [f"HTTP/{NAMESPACE}", "HTTP/autodiscover.contoso.lab"]}))
    return out


def _add_all(dc: SambaDC, size: Size, progress) -> None:  # type: ignore[no-untyped-def]
    """Two connections in parallel: while Samba stores one object, the client encodes the next (about
    30% faster than one; Samba itself stores one at a time)."""
    conn = dc.admin_connection()
    try:
        for ou in ("Bench Users", "Bench Computers"):
            _add(conn, f"OU={ou},{dc.base_dn}", "organizationalUnit", {})
    finally:
        conn.unbind()
    entries = _entries(dc, size)
    done = itertools.count(1)

    def worker(part: list[tuple[str, str, dict]]) -> None:
        c = dc.admin_connection()
        try:
            for dn, object_class, attrs in part:
                _add(c, dn, object_class, attrs)
                n = next(done)
                if n % 2000 == 0:
                    progress(f"{n}/{len(entries)} accounts")
        finally:
            c.unbind()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for f in [pool.submit(worker, entries[k::WORKERS]) for k in range(WORKERS)]:
            f.result()


def _add(conn, dn: str, object_class: str, attrs: dict) -> None:  # type: ignore[no-untyped-def]
    if not conn.add(dn, object_class, attrs):
        raise SambaError(f"adding {dn} failed: {conn.result['description']} {conn.result.get('message', '')}")


def fill(base: Path, ip: str, size: Size, progress=print) -> Path:  # type: ignore[no-untyped-def]
    """Provision, fill and snapshot; returns the snapshot folder. The DC is left stopped."""
    dc = SambaDC(base / "dc", ip=ip)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    dc.provision()
    try:
        dc.start()
        dc.wait()
        dc.extend_exchange_schema()
        timings["provision + start + schema"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        _add_all(dc, size, progress)
        timings["users + computers"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        dc.populate_exchange(ORGANIZATION, _server_specs(size))
        timings["exchange servers"] = time.perf_counter() - t1
    finally:
        dc.stop()
    snapshot = _snapshot_path(base, size)
    for old in base.glob("snapshot-*"):
        shutil.rmtree(old, ignore_errors=True)
    t1 = time.perf_counter()
    dc.snapshot(snapshot)
    timings["snapshot"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    progress("filled: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return snapshot


def _lock(base: Path, progress) -> None:  # type: ignore[no-untyped-def]
    """One user of the folder at a time: a second benchmark would otherwise restore (and so stop) the DC
    under the first one, or fill it twice. Held until this process exits."""
    if base in _held_locks:
        return
    base.mkdir(parents=True, exist_ok=True)
    lock = open(base / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        progress(f"waiting for another process using {base} ...")
        fcntl.flock(lock, fcntl.LOCK_EX)
    _held_locks[base] = lock


def start_filled(base: Path | None = None, ip: str = "127.0.0.60", size: Size = Size(),
                 progress=print) -> SambaDC:  # type: ignore[no-untyped-def]
    """A started DC restored from the snapshot (filled first if there is none). Stop it when done."""
    base = base or default_dir()
    reason = samba_missing()
    if reason:
        raise SambaError(f"Samba AD DC not available ({reason}): run ./dev.sh install")
    _lock(base, progress)
    snapshot = _snapshot_path(base, size)
    if not (snapshot / "etc" / "smb.conf").exists():
        fill(base, ip, size, progress)
    dc = SambaDC(base / "dc", ip=ip)
    t0 = time.perf_counter()
    dc.restore(snapshot)
    dc.start()
    dc.wait()
    progress(f"restored {snapshot.name} and started on {ip} in {time.perf_counter() - t0:.1f} s")
    return dc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=default_dir(), help="where the DC and its snapshot live")
    parser.add_argument("--ip", default="127.0.0.60", help="loopback address the DC binds to")
    parser.add_argument("--users", type=int, default=Size.users)
    parser.add_argument("--computers", type=int, default=Size.computers)
    parser.add_argument("--servers", type=int, default=Size.servers)
    parser.add_argument("--refill", action="store_true", help="fill again even if a snapshot exists")
    parser.add_argument("--keep-running", action="store_true", help="leave the DC running")
    parser.add_argument("--stop", action="store_true", help="stop a DC left running and exit")
    args = parser.parse_args(argv)
    size = Size(args.users, args.computers, args.servers)
    if args.stop:
        _lock(args.dir, print)
        SambaDC(args.dir / "dc", ip=args.ip).stop()
        return 0
    try:
        if args.refill:
            _lock(args.dir, print)
            shutil.rmtree(_snapshot_path(args.dir, size), ignore_errors=True)
        dc = start_filled(args.dir, args.ip, size)
    except SambaError as e:
        print(f"fill_directory: {e}", file=sys.stderr)
        return 1
    if args.keep_running:
        print(f"DC running on {dc.host} (LDAPS 636, CA {dc.ca_file}, certificate name {dc.tls_name});"
              f" KRB5_CONFIG={dc.krb5_conf}; stop with: {sys.argv[0]} --stop --dir {args.dir} --ip {args.ip}")
    else:
        dc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
