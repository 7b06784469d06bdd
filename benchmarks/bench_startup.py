"""Start-up to first paint of the wizard on the lab (target: under 0.5 s).

    /tmp/venv/bin/python benchmarks/bench_startup.py [--scenario NAME] [--runs N]

Each run is a fresh interpreter (imports count, as they do for a user): it builds the app the way `run_lab`
does and runs it headless until the first screen has been composed and painted, then exits. Reported: the
median and the worst run, split into imports and the app up to its first paint. Opening the lab and discovery
run in workers after the first paint (the screen says so meanwhile) and are not part of the number.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

TARGET_SECONDS = 0.5

ONE_RUN = r"""
import json, os, sys, tempfile, time
t0 = time.perf_counter()
os.environ.setdefault("ASA_WIZARD_DATA_DIR", tempfile.mkdtemp())
from asa_wizard.tui.app import AsaWizardApp
from asa_wizard.tui.session import WizardSession
t_import = time.perf_counter()
session = WizardSession(scenario_name=sys.argv[1])
t_lab = time.perf_counter()
marks = {}

async def first_paint(pilot):
    await pilot.pause()  # the first refresh has been processed: the screen is painted
    marks["paint"] = time.perf_counter()
    pilot.app.exit()

app = AsaWizardApp(session, start_step="discovery", open_lab=sys.argv[1])  # as run_lab does
app.run(headless=True, size=(120, 40), auto_pilot=first_paint)
session.close()
print(json.dumps({"imports": t_import - t0, "app": marks["paint"] - t_lab,
                  "total": marks["paint"] - t0}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="new-server-missing-asa")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", ONE_RUN, args.scenario], capture_output=True, text=True,
                             check=True, timeout=60)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for part in ("imports", "app", "total"):
        values = [r[part] for r in runs]
        print(f"{part:>8}: median {statistics.median(values):.3f} s   worst {max(values):.3f} s")
    median = statistics.median(r["total"] for r in runs)
    verdict = "OK" if median < TARGET_SECONDS else "SLOWER THAN TARGET"
    print(f"start-up to first paint: {median:.3f} s (target {TARGET_SECONDS} s): {verdict}")
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
