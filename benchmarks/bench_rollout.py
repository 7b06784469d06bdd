"""Rollout benchmark: 200 lab servers, each answering every script after 1 s.

    /tmp/venv/bin/python benchmarks/bench_rollout.py [--servers 200] [--delay 1] [--concurrency 10]
                                                     [--serial-sample 20]

- serial: one roll after another, as Microsoft's script pushes to servers; measured on the first
  `--serial-sample` servers and extrapolated linearly to all of them (each roll costs the same here).
- engine: `run_rollout` with bounded parallelism over every server (generate on the first, copies to the
  rest, verification), through the real WinRM adapter and pywinrm to the lab endpoint.
- overhead: the engine over the same servers with an in-memory ExchangePort that answers instantly, so
  what is measured is the engine's own work (state machine, journal writes, progress events); once with
  the journal on disk (two fsynced writes per server: the disk's latency dominates) and once with the
  journal in memory (/dev/shm: the engine alone).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from asa_wizard.core.journal import Journal
from asa_wizard.core.model import AccountKind, AsaCredential, ExchangeServer
from asa_wizard.core.ports import RollOutcome, RollResult, ServerState
from asa_wizard.core.rollout import RolloutRequest, run_rollout
from asa_wizard.lab.scenario import LabAccount, find_scenario, load_scenario
from asa_wizard.lab.world import LabWorld

ASA = "CONTOSO\\EXASA$"


def scenario(count: int, delay: float):
    s = load_scenario(find_scenario("fresh")).with_servers(count)
    for srv in s.servers:
        srv.fault, srv.slow_seconds = ("slow", delay) if delay > 0 else ("none", 0.0)
    s.accounts.append(LabAccount(sam="EXASA$", kind=AccountKind.COMPUTER, ou="OU=Service Accounts", enctypes=24))
    return s


class InstantExchange:
    """Answers at once, with what a server would hold afterwards: isolates the engine's own cost."""

    def __init__(self) -> None:
        self.when = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def _ok(self, server: str) -> RollResult:
        return RollResult(server, RollOutcome.SUCCEEDED, "THE SCRIPT HAS SUCCEEDED",
                          latest=AsaCredential(ASA, self.when))

    def read_server(self, server: str) -> ServerState:
        return ServerState(server=ExchangeServer(name=server, fqdn=server, service_host_running=True))

    def roll_generate(self, server: str, account: str) -> RollResult:
        return self._ok(server)

    def roll_copy(self, server: str, source: str) -> RollResult:
        return self._ok(server)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=200)
    ap.add_argument("--delay", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--serial-sample", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-rollout-"))

    with LabWorld(scenario(args.servers, args.delay)) as world:
        port = world.exchange_port()
        servers = world.truth().servers
        sample = servers[: args.serial_sample]
        t0 = time.perf_counter()
        port.roll_generate(sample[0].fqdn, ASA)
        for s in sample[1:]:
            port.roll_copy(s.fqdn, sample[0].fqdn)
        serial_sample = time.perf_counter() - t0
        serial = serial_sample * len(servers) / len(sample)
        world.reset()

        t0 = time.perf_counter()
        report = run_rollout(port, Journal.create(tmp, label="engine"),
                             RolloutRequest(account=ASA, servers=servers, concurrency=args.concurrency))
        engine = time.perf_counter() - t0
        assert report.complete, {n: p.reason for n, p in report.servers.items() if p.reason}

    names = [f"EX{i:03d}" for i in range(args.servers)]
    overheads = {}
    memory = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    for where, directory in (("journal fsynced to disk", tmp),
                             ("journal in memory (/dev/shm)", memory and Path(tempfile.mkdtemp(dir=memory)))):
        if directory is None:
            continue
        t0 = time.perf_counter()
        report = run_rollout(InstantExchange(), Journal.create(directory, label="overhead"),
                             RolloutRequest(account=ASA, servers=names, concurrency=args.concurrency))
        overheads[where] = (time.perf_counter() - t0) / args.servers
        assert report.complete

    print(f"servers={args.servers} delay={args.delay}s concurrency={args.concurrency}")
    print(f"serial: {serial_sample:.1f} s for {len(sample)} servers -> {serial:.1f} s for {len(servers)} "
          "(extrapolated)")
    print(f"engine: {engine:.1f} s for {len(servers)} servers (generate + {len(servers) - 1} copies + verification)")
    print(f"ratio: {serial / engine:.1f}x (target >= 8x)")
    for where, overhead in overheads.items():
        print(f"engine overhead, {where}: {overhead * 1000:.2f} ms per server (target < 5 ms)")


if __name__ == "__main__":
    main()
