"""Start-up to first paint of the wizard on the lab (target: under 0.5 s).

    /tmp/venv/bin/python benchmarks/bench_startup.py [--scenario NAME] [--runs N]

Each run is a fresh interpreter (imports count, as they do for a user): it builds the app the way `run_lab`
does and runs it headless until Textual reports the first frame displayed (the Ready event: target bar, checklist,
footer), and then until the Discovery step (mounted right after that frame) has been painted too. Reported: the
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


class Measured(AsaWizardApp):
    def on_ready(self):  # Textual posts Ready once the first frame has been displayed
        marks["paint"] = time.perf_counter()
        self.set_interval(0.002, self.step_shown)

    def step_shown(self):
        pane = self.pane("discovery")
        if pane is not None and pane.is_mounted and "step" not in marks:
            self.call_after_refresh(self.painted_step)

    def painted_step(self):
        marks.setdefault("step", time.perf_counter())
        self.exit()


app = Measured(session, start_step="discovery", open_lab=sys.argv[1])  # as run_lab builds it
app.run(headless=True, size=(120, 40))
session.close()
print(json.dumps({"imports": t_import - t0, "app": marks["paint"] - t_lab, "total": marks["paint"] - t0,
                  "step": marks["step"] - t0}))
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
    labels = {"imports": "imports", "app": "app to first frame", "total": "first frame (total)",
              "step": "discovery step painted (total)"}
    for part, label in labels.items():
        values = [r[part] for r in runs]
        print(f"{label:>31}: median {statistics.median(values):.3f} s   worst {max(values):.3f} s")
    median = statistics.median(r["total"] for r in runs)
    verdict = "OK" if median < TARGET_SECONDS else "SLOWER THAN TARGET"
    print(f"start-up to first paint: {median:.3f} s (target {TARGET_SECONDS} s): {verdict}")
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
