"""Rollout benchmark: the native roll over N lab servers through Exchange's remote PowerShell (PSRP), every
Exchange call answered after a fixed delay.

    python benchmarks/bench_rollout.py [--servers 200] [--delay 0.5] [--concurrency 10]

- engine: `run_rollout` (pre-flight on every server, one new password pushed to every server with bounded
  parallelism, the AD password reset once over the lab's LDAPS, verification), through `EndpointExchange`,
  pypsrp and the lab's /PowerShell endpoint (psrpcore), one runspace pool per server.
- best possible: the same delayed calls with zero overhead. The lab counts the delayed Exchange calls each
  server answered before and after the AD change; a phase cannot end before its slowest server, and with C
  calls in flight the N servers of a phase need ceil(N / C) rounds: best = sum over the phases of
  ceil(N / C) * (delayed calls per server in that phase) * delay. The AD reset itself is not delayed.
- serial: the same delayed calls one server after another (how Microsoft's script pushes): N * calls * delay.
- overhead: the engine with an in-memory ExchangePort that answers at once (the engine's own cost per
  server: state machine, journal writes, progress events).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from asa_wizard.core.journal import Journal
from asa_wizard.core.model import Account, AccountKind, AsaCredential, ExchangeServer
from asa_wizard.core.ports import Preflight, RollOutcome, RollResult, ServerState
from asa_wizard.core.rollout import RolloutRequest, run_rollout
from asa_wizard.lab.scenario import LabAccount, find_scenario, load_scenario
from asa_wizard.lab.world import LabWorld

ASA = "CONTOSO\\EXASA$"


def scenario(count: int, delay: float):
    s = load_scenario(find_scenario("fresh")).with_servers(count)
    for srv in s.servers:
        srv.fault, srv.slow_seconds = ("slow", delay) if delay > 0 else ("none", 0.0)
    s.accounts.append(LabAccount(sam="EXASA$", kind=AccountKind.COMPUTER, ou="OU=Service Accounts", enctypes=24))
    s.asa = "EXASA$"
    return s


class InstantExchange:
    """Answers at once, with what a server would hold afterwards: isolates the engine's own cost."""

    def __init__(self) -> None:
        self.when = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def read_server(self, server: str) -> ServerState:
        return ServerState(server=ExchangeServer(name=server, fqdn=server, service_host_running=True))

    def preflight(self, server: str) -> Preflight:
        return Preflight(server)

    def push_credential(self, server: str, account: str, password) -> RollResult:
        return RollResult(server, RollOutcome.SUCCEEDED, "pushed", latest=AsaCredential(ASA, self.when))


class InstantDirectory:
    def __init__(self) -> None:
        self.account = Account(dn="CN=EXASA,CN=Computers,DC=contoso,DC=com", sam="EXASA$",
                               kind=AccountKind.COMPUTER, key_version=1,
                               pwd_last_set=datetime(2026, 1, 1, tzinfo=timezone.utc))

    def get_account(self, sam: str) -> Account:
        return self.account

    def reset_password(self, dn: str, password) -> int:
        return 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    n, c, d = args.servers, args.concurrency, args.delay

    with LabWorld(scenario(n, d)) as world:
        port = world.exchange_port()
        servers = world.truth().servers
        marks: dict[str, int] = {}

        def on_event(ev) -> None:
            if "reset in AD" in ev.message and "ad" not in marks:
                marks["ad"] = len(world.exchange.cmdlets)

        t0 = time.perf_counter()
        report = run_rollout(port, Journal.create(tmp, label="engine"),
                             RolloutRequest(account=ASA, servers=servers, concurrency=c), progress=on_event,
                             directory=world.directory_port())
        engine = time.perf_counter() - t0
        assert report.complete, {x: p.reason for x, p in report.servers.items() if p.reason}
        calls = world.exchange.cmdlets
        before = Counter(server for server, _, _ in calls[: marks["ad"]])
        after = Counter(server for server, _, _ in calls[marks["ad"]:])
        port.close()
    per_before = max(before.values())
    per_after = max(after.values()) if after else 0
    assert all(v == per_before for v in before.values())
    rounds = math.ceil(n / c)
    best = rounds * (per_before + per_after) * d
    serial = n * (per_before + per_after) * d

    directory = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp
    t0 = time.perf_counter()
    overhead_report = run_rollout(InstantExchange(), Journal.create(Path(tempfile.mkdtemp(dir=directory)),
                                                                    label="overhead"),
                                  RolloutRequest(account=ASA, servers=[f"EX{i:03d}" for i in range(n)],
                                                 concurrency=c), directory=InstantDirectory())
    overhead = (time.perf_counter() - t0) / n
    assert overhead_report.complete

    print(f"servers={n} delay={d}s per Exchange call concurrency={c}")
    print(f"delayed Exchange calls per server: {per_before} before the AD change, {per_after} after")
    print(f"engine through PSRP: {engine:.1f} s")
    print(f"best possible for the same delays: {best:.1f} s ({rounds} rounds x {per_before + per_after} calls x {d} s)"
          f" -> the engine reaches {best / engine:.0%} of it")
    print(f"serial (one server after another): {serial:.1f} s -> {serial / engine:.1f}x faster")
    print(f"engine overhead, instant port, journal in {directory}: {overhead * 1000:.2f} ms per server")


if __name__ == "__main__":
    main()
