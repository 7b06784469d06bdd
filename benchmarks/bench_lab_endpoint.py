"""What one call costs the training lab's endpoint (`/PowerShell` PSRP and `/wsman` WinRS), by message kind.

The lab's endpoints run in the same process as the client, so every CPU second they spend is wall time for
the user. This script opens a lab grown to N servers, drives it through the real clients (`ExchangeRps`,
pywinrm through `WinRmExchange`) and counts the CPU time of the lab's own threads only (`time.thread_time` of
the connection threads: TLS handshake, HTTP parsing, the SOAP dispatch; and of the threads that run a
pipeline or a script), per WS-Management action and phase:

```sh
python benchmarks/bench_lab_endpoint.py                 # 200 servers, 3 rounds, medians
python benchmarks/bench_lab_endpoint.py --servers 20 --rounds 5
```

Phases: opening a runspace pool on every server (Create + Receive), the rollout's pre-flight
(GetCommandMetadata of Get-/Set-ClientAccessService on every server), a one-server pipeline
(`Get-ExchangeServer -Identity`) on every server, the organisation-wide read (Get-ClientAccessService
-IncludeAlternateServiceAccountCredentialStatus + five `Get-*VirtualDirectory -ADPropertiesOnly`), one WinRS
Windows read per server (Create/Command/Receive/Signal/Delete), closing the pools (Delete).
"""

from __future__ import annotations

import argparse
import re
import ssl
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asa_wizard.lab import psrp_endpoint, wsman  # noqa: E402
from asa_wizard.lab.scenario import find_scenario, load_scenario  # noqa: E402
from asa_wizard.lab.world import LabWorld  # noqa: E402

ACTION = re.compile(rb"<(?:\w+:)?Action[^>]*>([^<]*)</(?:\w+:)?Action>")


class Meter:
    """CPU seconds of the lab's threads, per (phase, kind)."""

    def __init__(self) -> None:
        self.cpu: dict[tuple[str, str], float] = defaultdict(float)
        self.count: dict[tuple[str, str], int] = defaultdict(int)
        self.phase = "-"
        self.lock = threading.Lock()
        self.local = threading.local()

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.cpu[(self.phase, kind)] += seconds
            self.count[(self.phase, kind)] += 1


def instrument(meter: Meter) -> None:
    handler = wsman._Handler
    original_one = handler.handle_one_request
    original_post = handler.do_POST

    def do_post(self) -> None:  # the kind of request: /PowerShell or /wsman, and its action
        meter.local.kind = "?"
        original_post(self)

    def handle_one_request(self) -> None:
        start = time.thread_time()
        meter.local.kind = None
        original_one(self)
        kind = getattr(meter.local, "kind", None)
        if kind is not None:
            meter.add(kind, time.thread_time() - start)

    handler.do_POST = do_post
    handler.handle_one_request = handle_one_request

    for cls, prefix in ((psrp_endpoint.LabPsrpEndpoint, "rps"), (wsman.LabWsmanServer, "winrs")):
        original = cls.dispatch

        def dispatch(self, *args, _original=original, _prefix=prefix):
            data = args[-1]
            m = ACTION.search(data)
            action = m.group(1).decode().rsplit("/", 1)[-1] if m else "?"
            meter.local.kind = f"{_prefix} {action}"
            return _original(self, *args)

        cls.dispatch = dispatch

    run, execute = psrp_endpoint.LabPsrpEndpoint._run, wsman.LabWsmanServer._execute

    def timed(fn, kind):
        def wrapper(*args, **kwargs):
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                meter.add(kind, time.thread_time() - start)
        return wrapper

    psrp_endpoint.LabPsrpEndpoint._run = timed(run, "rps pipeline thread")
    wsman.LabWsmanServer._execute = timed(execute, "winrs script thread")

    wrap = ssl.SSLContext.wrap_socket

    def wrap_socket(self, sock, server_side=False, *args, **kwargs):  # the lab's side of each TLS handshake
        if not server_side:
            return wrap(self, sock, server_side, *args, **kwargs)
        start = time.thread_time()
        try:
            return wrap(self, sock, server_side, *args, **kwargs)
        finally:
            meter.add("TLS handshake", time.thread_time() - start)

    ssl.SSLContext.wrap_socket = wrap_socket


def one_round(n: int, meter: Meter) -> dict[str, float]:
    """Wall seconds of each phase; the meter gathers the lab's CPU."""
    from concurrent.futures import ThreadPoolExecutor

    walls: dict[str, float] = {}
    world = LabWorld(load_scenario(find_scenario("healthy")).with_servers(n))
    try:
        endpoint = world.start_endpoint()
        rps = endpoint.rps()
        winrm = endpoint.port()
        servers = [s.fqdn for s in world.scenario.servers]

        def phase(name: str, fn, items, workers: int = 8) -> None:
            meter.phase = name
            start = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(fn, items))
            walls[name] = time.perf_counter() - start

        phase("1 open pool", lambda s: rps._with_pool(s, "opening", lambda p: None, []), servers)
        phase("2 metadata (pre-flight)",
              lambda s: rps.parameters_of(s, ["Get-ClientAccessService", "Set-ClientAccessService"]), servers)
        phase("3 pipeline Get-ExchangeServer -Identity",
              lambda s: rps.invoke(s, "Get-ExchangeServer", {"Identity": s}), servers)

        def org(_: int) -> None:
            rps.invoke_each(servers[0], "Get-ClientAccessService", {"IncludeAlternateServiceAccountCredentialStatus": True})
            for cmdlet in ("Get-OutlookAnywhere", "Get-MapiVirtualDirectory", "Get-ActiveSyncVirtualDirectory",
                           "Get-WebServicesVirtualDirectory", "Get-OwaVirtualDirectory"):
                rps.invoke_each(servers[0], cmdlet, {"ADPropertiesOnly": True})

        phase("4 organisation-wide read", org, [0], workers=1)
        phase("5 WinRS read_windows_ep", winrm.read_windows_ep, servers)
        meter.phase = "6 close pools"
        start = time.perf_counter()
        rps.close()
        winrm.close()
        walls["6 close pools"] = time.perf_counter() - start
    finally:
        world.close()
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    meter = Meter()
    instrument(meter)
    per_round: list[tuple[dict, dict, dict]] = []
    for _ in range(args.rounds):
        meter.cpu.clear()
        meter.count.clear()
        walls = one_round(args.servers, meter)
        per_round.append((dict(meter.cpu), dict(meter.count), walls))
    keys = sorted({k for cpu, _, _ in per_round for k in cpu})
    print(f"lab-side CPU, {args.servers} servers, median of {args.rounds} rounds")
    print(f"{'phase':42} {'kind':24} {'count':>6} {'CPU ms total':>13} {'ms/call':>9}")
    for key in keys:
        total = statistics.median(cpu.get(key, 0.0) for cpu, _, _ in per_round)
        count = statistics.median(cnt.get(key, 0) for _, cnt, _ in per_round)
        print(f"{key[0]:42} {key[1]:24} {count:6.0f} {total * 1000:13.1f} {total * 1000 / max(count, 1):9.3f}")
    print()
    phases = sorted({p for _, _, w in per_round for p in w})
    for p in phases:
        wall = statistics.median(w[p] for _, _, w in per_round)
        cpu = statistics.median(sum(v for (ph, _), v in c.items() if ph == p) for c, _, _ in per_round)
        print(f"{p:42} wall {wall:7.3f} s   lab CPU {cpu:7.3f} s")


if __name__ == "__main__":
    main()
