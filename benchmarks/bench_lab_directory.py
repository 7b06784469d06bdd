"""The lab's directory at N servers, in one process: opening a lab world, and each search discovery and apply
send through the real LDAP adapter, on a directory that was just written to (as during `apply`) and on one
that was not. Medians of `--runs`; wall and CPU (the process's user + system) seconds.

    python benchmarks/bench_lab_directory.py                      # N = 200 and 1000
    python benchmarks/bench_lab_directory.py --sizes 200 --runs 9

- `open`: `LabWorld(scenario)` of the healthy organisation grown to N servers (the file is parsed once,
  outside the timing; `LabWorld.open` adds only that parse).
- each search: a fresh adapter call (the adapter's short-lived read cache cleared first), `after write`: the
  same call right after one SPN was added to and removed from an account through the adapter (two writes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import SCENARIOS, grown  # noqa: E402

from asa_wizard.lab.scenario import load_scenario  # noqa: E402
from asa_wizard.lab.world import LabWorld  # noqa: E402


def timed(fn, runs: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def searches(world: LabWorld):
    port = world.directory_port()
    port.read_forest()  # binds, reads the rootDSE
    asa = port.get_account("EXASA$")
    ex = port.exchange_servers()[len(port.exchange_servers()) // 2]

    def fresh(call):
        def run():
            port._recent.clear()
            call()
        return run

    calls = {
        "base read by DN (get_account_by_dn)": lambda: port.get_account_by_dn(asa.dn),
        "get_account": lambda: port.get_account(f"{ex.name}$"),
        "find_spn_owners": lambda: port.find_spn_owners("HTTP/mail.contoso.com"),
        "find_unconstrained_delegation": port.find_unconstrained_delegation,
        "virtual_directories": port.virtual_directories,
        "exchange_servers": port.exchange_servers,
    }
    account = port.get_account(f"{ex.name}$")

    def write():
        port.add_spns(account.dn, ["HTTP/bench-write.contoso.com"])
        port.remove_spns(account.dn, ["HTTP/bench-write.contoso.com"])

    return {name: fresh(call) for name, call in calls.items()}, write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-lab-directory-"))
    for n in args.sizes:
        scenario = load_scenario(grown(SCENARIOS / "healthy.toml", n, out))
        LabWorld(scenario)  # warm: imports, the schema
        wall, cpu = timed(lambda: LabWorld(scenario), args.runs)
        world = LabWorld(scenario)
        print(f"N={n} entries={len(world.directory.server.dit)}")
        print(f"  {'open (LabWorld)':45s} {wall * 1000:9.1f} ms wall {cpu * 1000:9.1f} ms CPU")
        calls, write = searches(world)
        for name, call in calls.items():
            call()
            wall, cpu = timed(call, args.runs)

            def after_write(call=call):
                write()
                w, c = time.perf_counter(), time.process_time()
                call()
                return time.perf_counter() - w, time.process_time() - c

            after = [after_write() for _ in range(args.runs)]
            aw = statistics.median(a[0] for a in after)
            ac = statistics.median(a[1] for a in after)
            print(f"  {name:45s} {wall * 1000:9.1f} ms wall {cpu * 1000:9.1f} ms CPU | after a write "
                  f"{aw * 1000:9.1f} ms wall {ac * 1000:9.1f} ms CPU")
        world.close()


if __name__ == "__main__":
    main()
