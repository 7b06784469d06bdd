"""Whole commands against the lab grown to N servers: `check`, `apply --yes` of a full setup and `report` of that
run, each a fresh process as a user runs it; medians, the growth factor from one N to the next, and the floors.

    python benchmarks/bench_scale.py                          # N = 2, 20, 200, 1000 (1000: --big-runs runs)
    python benchmarks/bench_scale.py --sizes 2 20 100 200 1000 --big 100 --apply-up-to 200
    python benchmarks/bench_scale.py --sizes 2 20 100 200 --runs 5
    python benchmarks/bench_scale.py --directory               # discovery vs a raw ldap3 replay (Samba, root)
    python benchmarks/bench_scale.py --startup-only --runs 7   # a lab command's fixed cost and its floors
    python benchmarks/bench_scale.py --wire --sizes 20 200      # the floor the wire puts under `check`

- `check`: `asa-wizard check --lab healthy-N.toml` (the healthy organisation, every server a copy of EX01 as
  `Scenario.with_servers` makes them).
- `apply`: `asa-wizard apply --answers A --lab fresh-with-seg-N.toml --yes` with
  A = tests/golden/answers-fresh-with-seg.toml (a new computer ASA, its credential rolled to every server, the
  SPNs, Negotiate, KCD for the SEG, IIS_IUSRS and IIS authentication on every server), servers
  answering at once unless `--delay`; the floor is what the delays alone cost at the answers' concurrency
  (the native roll: every server's push and read-back, two delayed calls, `concurrency` servers at a time).
- `report`: `asa-wizard report --journal J` of that run (from the record; `--recheck` is not timed here).
- floors of start-up: `python -c pass`, the imports a lab command needs, a lab opened and closed in process.
- `--wire`: the requests `check` sends per server (counted in process through the same adapters, closing
  included), and the CPU of what `check` does on one server (its Windows read on a new WinRS shell and the
  shell's Delete, client and lab together, through the adapter, on a kept TLS session; then what a new TLS
  session adds): N times that is the floor the wire puts under `check` at each N.
- `--directory`: discovery (`core.discovery.discover`, no WinRM) against the 22k-object Samba directory of
  fill_directory.py, and a replay of exactly the searches it sent with raw ldap3 on one connection per port,
  both measured in the same run, alternating.

The machine is shared: keep --big-runs small. Growth factor: time(N) / time(previous N), beside N / previous N.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "assets" / "scenarios"
ANSWERS = ROOT / "tests" / "golden" / "answers-fresh-with-seg.toml"
IMPORTS = ("import asa_wizard.cli, asa_wizard.headless_cli, asa_wizard.target, asa_wizard.lab.world, "
           "asa_wizard.lab.directory, asa_wizard.lab.kerberos, asa_wizard.lab.wsman, asa_wizard.adapters.ldap, "
           "asa_wizard.adapters.winrm, asa_wizard.core.discovery, asa_wizard.core.checks, asa_wizard.core.report; "
           "asa_wizard.adapters.winrm._pywinrm('basic')")  # pywinrm as the lab's Basic connection imports it
LAB_OPEN_CLOSE = ("import time; t = time.perf_counter()\nfrom asa_wizard.target import open_lab\n"
                  "open_lab('healthy').close()\nprint(time.perf_counter() - t)")


def grown(source: Path, n: int, out_dir: Path) -> Path:
    """The scenario file with its servers replaced by n copies of the first (EX01..): what with_servers does,
    as a file a command can open."""
    text = source.read_text(encoding="utf-8")
    tables = re.split(r"(?m)^(?=\[)", text)
    head, servers, first, rest = [], [], None, []
    for t in tables:
        if t.startswith("[[servers]]"):
            servers.append(t)
            continue
        if t.startswith("[servers.") and servers:
            servers[-1] += t
            continue
        (rest if servers else head).append(t)
    first = servers[0]
    width = max(2, len(str(n)))
    copies = [re.sub(r'(?m)^name = "[^"]*"', f'name = "EX{i:0{width}d}"', first, count=1) for i in range(1, n + 1)]
    body = "".join(head) + "".join(copies) + "".join(rest)
    body = re.sub(r'(?m)^name = "([a-z0-9-]+)"', lambda m: f'name = "{m.group(1)}-{n}"', body, count=1)
    path = out_dir / f"{source.stem}-{n}.toml"
    path.write_text(body, encoding="utf-8")
    return path


CPU: dict[str, list[float]] = {}  # "what N" -> CPU seconds (user + system) of each run's process


def run(args: list[str], env: dict[str, str], what: str = "") -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of one command; its CPU time (user + system, all threads) goes to CPU[what]: on a shared
    machine the wall time grows with the others' load, the CPU time much less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=1800)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if what:
        CPU.setdefault(what, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return took, done


def command(*words: str) -> list[str]:
    return [sys.executable, "-m", "asa_wizard", *words]


def with_delay(path: Path, delay: float) -> Path:
    if delay <= 0:
        return path
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^(name = "EX\d+")$', rf'\1\nfault = "slow"\nslow_seconds = {delay}', text)
    path.write_text(text, encoding="utf-8")
    return path


def measure_sizes(args: argparse.Namespace, work: Path) -> list[dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160", "ASA_WIZARD_DATA_DIR": str(work / "data")}
    rows = []
    for n in args.sizes:
        healthy = grown(SCENARIOS / "healthy.toml", n, work)
        fresh = with_delay(grown(SCENARIOS / "fresh-with-seg.toml", n, work), args.delay)
        runs = args.big_runs if n >= args.big else args.runs
        times: dict[str, list[float]] = {"check": [], "apply": [], "report": []}
        for i in range(runs):
            took, done = run(command("check", "--lab", str(healthy)), env, f"check {n}")
            if done.returncode == 3:
                raise SystemExit(f"check on {n} servers could not run:\n{done.stderr[-2000:]}")
            if done.returncode != 0:  # the healthy lab passes: say what did not, and go on timing
                problems = [ln for ln in done.stdout.splitlines() if ln.startswith(("✘", "▲", "  "))]
                print(f"  ! check on {n} servers exited {done.returncode}:\n    " + "\n    ".join(problems[:20]),
                      flush=True)
            times["check"].append(took)
            if n > args.apply_up_to:
                continue
            journals = work / f"journals-{n}-{i}"
            took, done = run(command("apply", "--answers", str(ANSWERS), "--lab", str(fresh), "--yes",
                                     "--journal-dir", str(journals)), env, f"apply {n}")
            if done.returncode != 0:
                raise SystemExit(f"apply on {n} servers exited {done.returncode}:\n{done.stderr[-2000:]}")
            times["apply"].append(took)
            (journal,) = journals.glob("*.jsonl")
            took, done = run(command("report", "--journal", str(journal), "--format", "html", "--out",
                                     str(work / f"report-{n}.html")), env, f"report {n}")
            if done.returncode != 0:
                raise SystemExit(f"report on {n} servers exited {done.returncode}:\n{done.stderr[-2000:]}")
            times["report"].append(took)
        row = {"n": n, "runs": runs, **{k: statistics.median(v) if v else float("nan") for k, v in times.items()}}
        for k in times:
            row[f"{k} cpu"] = statistics.median(CPU[f"{k} {n}"]) if CPU.get(f"{k} {n}") else float("nan")
        concurrency = 4  # answers-fresh-with-seg.toml's rollout.concurrency
        row["apply floor"] = args.delay * 2 * -(-n // concurrency)  # the pushes, `concurrency` at a time
        rows.append(row)
        print(f"  N={n:>5}: check {row['check']:.2f} s, apply {row['apply']:.2f} s, report {row['report']:.2f} s "
              f"(median of {runs}; CPU {row['check cpu']:.2f} / {row['apply cpu']:.2f} / {row['report cpu']:.2f} s, "
              f"load {os.getloadavg()[0]:.1f})", flush=True)
    return rows


def print_table(rows: list[dict[str, float]], delay: float) -> None:
    for title, suffix in (("wall time (median)", ""), ("CPU time of the process, user + system (median)", " cpu")):
        print()
        print(f"{title}:")
        print()
        print("| N servers | `check` | growth | `apply --yes` | growth | `report` | growth |")
        print("|---|---|---|---|---|---|---|")
        prev = None
        for r in rows:
            def g(key: str, r=r, prev=prev) -> str:
                if prev is None or prev[key] != prev[key] or r[key] != r[key]:
                    return ""
                return f"x{r[key] / prev[key]:.2f} (N x{r['n'] / prev['n']:.0f})"

            def v(key: str, r=r) -> str:
                return "not run" if r[key] != r[key] else f"{r[key]:.2f} s"

            print(f"| {r['n']:,} | {v('check' + suffix)} | {g('check' + suffix)} | {v('apply' + suffix)} | "
                  f"{g('apply' + suffix)} | {v('report' + suffix)} | {g('report' + suffix)} |")
            prev = r
    floors = ", ".join(f"N={r['n']}: {r['apply floor']:.1f} s" for r in rows)
    print()
    print(f"rollout floor from the delays ({delay} s per answer): {floors}")


def startup(runs: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    with tempfile.TemporaryDirectory() as data:
        env["ASA_WIZARD_DATA_DIR"] = data
        figures = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "imports of a lab command": [sys.executable, "-c", IMPORTS],
            "asa-wizard --help": command("--help"),
            "check --lab healthy": command("check", "--lab", "healthy"),
        }
        medians = {}
        for label, argv in figures.items():
            medians[label] = statistics.median(run(argv, env, label)[0] for _ in range(runs))
        inner = []
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-c", LAB_OPEN_CLOSE], capture_output=True, text=True, env=env,
                                  cwd=str(ROOT), check=True)
            inner.append(float(done.stdout.strip().splitlines()[-1]))
        medians["lab open + close, in process (healthy)"] = statistics.median(inner)
    print()
    print("| start-up | median wall | median CPU |")
    print("|---|---|---|")
    for label, value in medians.items():
        cpu = f"{statistics.median(CPU[label]):.3f} s" if CPU.get(label) else ""
        print(f"| {label} | {value:.3f} s | {cpu} |")


# --- the wire's floor under `check` --------------------------------------------------------------------------
def wire(sizes: list[int], runs: int) -> None:
    """Requests per server for a whole `check` (discovery, then closing every session), and the CPU of what
    `check` does on each server (its Windows read and the shell's Delete, client and lab together, in this
    process, plus a new TLS session): N times that is the floor the wire puts under `check`."""
    import requests

    from asa_wizard.core.discovery import discover
    from asa_wizard.target import open_lab

    sent = {"n": 0}
    plain_send = requests.Session.send

    def counting(self, *a, **kw):  # type: ignore[no-untyped-def]
        sent["n"] += 1
        return plain_send(self, *a, **kw)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-wire-") as tmp:
        for n in sizes:
            target = open_lab(str(grown(SCENARIOS / "healthy.toml", n, Path(tmp))))
            try:
                requests.Session.send = counting
                sent["n"] = 0
                discover(target.directory, target.exchange)
                for part in (target.exchange, target.directory):
                    part.close()
                rows.append((n, sent["n"]))
            finally:
                requests.Session.send = plain_send
                target.close()
        target = open_lab("healthy")
        try:
            per_server, client_share, per_session, client_new = server_cost(target, runs)
            per_call, call_share = pipeline_cost(target, runs)
        finally:
            target.exchange.close()
            target.close()
    seq, share, session = statistics.median(per_server), statistics.median(client_share), statistics.median(per_session)
    print()
    print(f"one server's Windows read on a kept TLS session (Create, Command, Receive, Delete): {seq * 1000:.2f} ms "
          f"CPU, client and lab together (the client's share {share:.0%}; median of {runs})")
    print(f"a new TLS session and its requests.Session for the server: {max(session, 0.0) * 1000:.2f} ms CPU more")
    print(f"one Exchange cmdlet (a PSRP pipeline: Command, Receive, Signal) on a kept runspace pool: "
          f"{statistics.median(per_call) * 1000:.2f} ms CPU, client and lab together (the client's share "
          f"{statistics.median(call_share):.0%})")
    mine = statistics.median(client_new)
    print(f"the client's own CPU for one server (the read on a new session): {mine * 1000:.2f} ms, so "
          f"{mine * 200:.2f} s at 200 servers and {mine * 1000:.2f} s at 1,000 even if the servers cost nothing")
    print()
    print("| N servers | requests in `check` | per server | floor: N x (the read + a TLS session) |")
    print("|---|---|---|---|")
    for n, count in rows:
        print(f"| {n:,} | {count:,} | {count / n:.1f} | {n * (seq + max(session, 0.0)):.2f} s |")


def pipeline_cost(target, runs: int) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """CPU of one Exchange cmdlet on a server's kept runspace pool (a Get-OutlookAnywhere of one virtual
    directory, as apply's compare-and-set re-reads it), client and lab together, and the client's share."""
    rps = target.exchange.rps
    server, params = "ex01.contoso.com", {"Identity": "EX01\\Rpc (Default Web Site)", "ADPropertiesOnly": True}
    for _ in range(10):
        rps.invoke(server, "Get-OutlookAnywhere", params)
    per_call, share = [], []
    for _ in range(runs):
        k = 40
        c0, t0 = time.process_time(), time.thread_time()
        for _ in range(k):
            rps.invoke(server, "Get-OutlookAnywhere", params)
        cpu = time.process_time() - c0
        per_call.append(cpu / k)
        share.append((time.thread_time() - t0) / cpu)
    return per_call, share


def server_cost(target, runs: int):  # type: ignore[no-untyped-def]
    """CPU of what `check` does on each server, through the adapter: the Windows read script on a new WinRS
    shell, then the shell's Delete (its command's Signal is not needed: the Delete ends it). Once on a kept TLS
    session, once on a new session each time. The client's share is this thread's CPU; the rest is the lab's
    threads. Returns, per run: the CPU of a read on a kept session, the client's share of it, what a new session
    adds, and the client's own CPU for a read on a new session."""
    from asa_wizard.adapters import iis_ep

    windows = target.exchange.windows
    conn = windows._connection("ex01.contoso.com")
    protocol, script = conn.protocol, iis_ep.read_windows_ep_script()

    def read(new_session: bool) -> None:
        if new_session:
            protocol.transport.close_session()
            protocol.transport.build_session().trust_env = False  # as WinRmExchange._connection builds it
        conn.shell_id = conn.finished = None
        windows._run_ps(conn, script)
        protocol.close_shell(conn.shell_id, close_session=False)

    for _ in range(10):
        read(False)
    per_server, client_share, per_session, client_new = [], [], [], []
    for _ in range(runs):
        k = 60
        c0, t0 = time.process_time(), time.thread_time()
        for _ in range(k):
            read(False)
        cpu, mine = time.process_time() - c0, time.thread_time() - t0
        per_server.append(cpu / k)
        client_share.append(mine / cpu)
        c0, t0 = time.process_time(), time.thread_time()
        for _ in range(k // 3):
            read(True)
        per_session.append((time.process_time() - c0) / (k // 3) - per_server[-1])
        client_new.append((time.thread_time() - t0) / (k // 3))
    return per_server, client_share, per_session, client_new


# --- discovery against the filled Samba directory ------------------------------------------------------------
def directory(runs: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ldap3
    from fill_directory import default_dir, start_filled

    from asa_wizard.adapters.ldap import LdapDirectory, LdapSettings
    from asa_wizard.core.discovery import DiscoveryOptions, discover
    from asa_wizard.core.errors import WizardError

    dc = start_filled(default_dir())
    try:
        settings = LdapSettings(host=dc.host, user=dc.admin_upn, password=dc.admin_password, ca_file=str(dc.ca_file),
                                tls_name=dc.tls_name, use_global_catalog=True, receive_timeout=60)
        recorded: list[tuple] = []

        def recording(conn) -> None:  # type: ignore[no-untyped-def]
            plain = conn.search

            def search(*a, **kw):  # type: ignore[no-untyped-def]
                names = ("search_base", "search_filter", "search_scope")
                base, flt, scope = (a[i] if len(a) > i else kw.get(n, ldap3.SUBTREE) for i, n in enumerate(names))
                if not kw.get("paged_cookie"):
                    recorded.append((conn.server.port, base, flt, scope, tuple(kw.get("attributes") or ())))
                return plain(*a, **kw)

            conn.search = search

        def adapter(hook=None) -> LdapDirectory:  # type: ignore[no-untyped-def]
            d = LdapDirectory(settings, connection_hook=hook)
            d.connect()
            return d

        for attempt in range(30):  # a DC restored from its snapshot can take a while to answer LDAPS
            try:
                d = adapter(recording)
                break
            except WizardError:
                if attempt == 29:
                    raise
                time.sleep(2)
        env = discover(d, None, DiscoveryOptions(asa_sam="EXASA$", read_servers=False))
        d.close()
        searches = list(recorded)
        print(f"discovery found {len(env.servers)} servers, {len(env.vdirs)} virtual directories, "
              f"{len(env.accounts)} accounts with {len(searches)} searches")

        def raw_replay() -> int:
            tls = ldap3.Tls(ca_certs_file=str(dc.ca_file), validate=ssl.CERT_REQUIRED,
                            valid_names=[dc.tls_name] if dc.tls_name else None)  # as the adapter validates
            conns = {}
            entries = 0
            for port, base, flt, scope, attrs in searches:
                conn = conns.get(port)
                if conn is None:
                    server = ldap3.Server(dc.host, port=port, use_ssl=True, tls=tls, get_info=ldap3.NONE)
                    conn = conns[port] = ldap3.Connection(server, user=dc.admin_upn,
                                                          password=dc.admin_password.reveal(), auto_bind=True)
                got = conn.extend.standard.paged_search(base, flt, scope, attributes=list(attrs), paged_size=1000,
                                                        generator=False) if scope != ldap3.BASE else \
                    (conn.search(base, flt, scope, attributes=list(attrs)) and conn.response)
                entries += len(got or [])
            for conn in conns.values():
                conn.unbind()
            return entries

        ours, raw = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            d = adapter()
            discover(d, None, DiscoveryOptions(asa_sam="EXASA$", read_servers=False))
            d.close()
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            raw_replay()
            raw.append(time.perf_counter() - t0)
    finally:
        dc.stop()
    mo, mr = statistics.median(ours), statistics.median(raw)
    print()
    print("| discovery, 22k-object Samba directory, 200 servers (connect + bind included) | median |")
    print("|---|---|")
    print(f"| `discover` through the adapter | {mo:.3f} s |")
    print(f"| raw ldap3 replay of the same {len(searches)} searches (floor) | {mr:.3f} s |")
    print(f"| ratio | x{mo / mr:.2f} (target <= x1.3) |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2, 20, 200, 1000])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--big", type=int, default=1000, help="from this N on, --big-runs runs")
    p.add_argument("--big-runs", type=int, default=1, help="runs for N >= --big (the machine is shared)")
    p.add_argument("--apply-up-to", type=int, default=10**9, help="time apply and report only up to this N")
    p.add_argument("--delay", type=float, default=0.0, help="seconds each server takes to answer (apply)")
    p.add_argument("--directory", action="store_true", help="discovery against Samba instead of the lab table")
    p.add_argument("--wire", action="store_true", help="the requests check sends and the floor they put under it")
    p.add_argument("--no-startup", action="store_true")
    p.add_argument("--startup-only", action="store_true", help="only the start-up figures and their floors")
    args = p.parse_args()
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    if args.directory:
        directory(args.runs)
        return 0
    if args.wire:
        wire(args.sizes, args.runs)
        return 0
    if args.startup_only:
        startup(max(3, args.runs))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        rows = measure_sizes(args, Path(tmp))
    print_table(rows, args.delay)
    if not args.no_startup:
        startup(max(3, args.runs))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
