"""Directory benchmark: full discovery and the forest-wide SPN audit against a filled Samba AD DC.

Targets (issue 3): discovery under 2 s, SPN audit of every namespace under 0.5 s, memory under 150 MB.
The DC comes from `benchmarks/fill_directory.py` (20,000 users, 2,000 computers, 200 Exchange servers;
filled once, then restored from its snapshot). Each measurement is repeated and the median reported; the
first, cold run is shown apart; memory is measured in one more run of its own.

    python benchmarks/bench_directory.py [--runs 5] [--users N --computers N --servers N]
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fill_directory import Size, default_dir, start_filled  # noqa: E402

from asa_wizard.adapters.ldap import LdapDirectory, LdapSettings  # noqa: E402
from asa_wizard.core.discovery import DiscoveryOptions, discover  # noqa: E402

TARGETS = {"discovery": 2.0, "spn audit": 0.5}
MEMORY_TARGET_MB = 150


def connect(dc) -> LdapDirectory:  # type: ignore[no-untyped-def]
    d = LdapDirectory(LdapSettings(host=dc.host, user=dc.admin_upn, password=dc.admin_password,
                                   ca_file=str(dc.ca_file), tls_name=dc.tls_name, use_global_catalog=True,
                                   receive_timeout=60))
    d.connect()
    return d


def measure(runs: int, dc) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    times: dict[str, list[float]] = {"connect": [], "discovery": [], "spn audit": []}
    summary = ""
    for _ in range(runs):
        t0 = time.perf_counter()
        d = connect(dc)
        times["connect"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        env = discover(d, None, DiscoveryOptions(asa_sam="EXASA$", read_servers=False))
        times["discovery"].append(time.perf_counter() - t0)
        hosts = [n.host for n in env.namespaces]
        t0 = time.perf_counter()
        owners = d.find_accounts_with_http_spns(hosts)
        times["spn audit"].append(time.perf_counter() - t0)
        summary = (f"{len(env.servers)} servers, {len(env.vdirs)} virtual directories, {len(env.namespaces)} "
                   f"namespaces, {len(env.accounts)} accounts, owners: "
                   + ", ".join(f"{h}={len(o)}" for h, o in owners.items()))
        d.close()
    print("found:", summary)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--users", type=int, default=Size.users)
    p.add_argument("--computers", type=int, default=Size.computers)
    p.add_argument("--servers", type=int, default=Size.servers)
    args = p.parse_args(argv)
    size = Size(args.users, args.computers, args.servers)
    dc = start_filled(default_dir(), size=size)
    try:
        times = measure(args.runs, dc)
        tracemalloc.start()  # a separate run: tracing allocations slows Python code down several-fold
        measure(1, dc)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        dc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}, {size}")
    ok = True
    for what, values in times.items():
        med = statistics.median(values)
        target = TARGETS.get(what)
        verdict = "" if target is None else (" (target < %.1f s: %s)" % (target, "met" if med < target else "MISSED"))
        ok &= target is None or med < target
        print(f"{what:10s} median {med * 1000:7.0f} ms, cold {values[0] * 1000:7.0f} ms{verdict}")
    ok &= rss_mb < MEMORY_TARGET_MB
    print(f"memory     peak RSS {rss_mb:.0f} MB, Python heap peak {peak / 2**20:.1f} MB "
          f"(target < {MEMORY_TARGET_MB} MB: {'met' if rss_mb < MEMORY_TARGET_MB else 'MISSED'})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
