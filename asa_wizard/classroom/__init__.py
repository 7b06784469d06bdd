"""The classroom: the wizard on the training lab, served to web browsers (`asa-wizard serve`).

Every student session gets its own wizard process on its own lab and its own data folder (journals, the
exercise status, the student's report). The instructor page at `/` starts labs, lets students pick a
scenario or picks it for them, and shows each session's progress; `/summary.md` and `/summary.html` are the
class summary. Built on textual-serve (`server.py`); this module only adds the command line, so the
headless commands never import the web server.
"""

from __future__ import annotations

import argparse

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: this machine only; 0.0.0.0 for the "
                   "classroom network, which then needs the token)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    p.add_argument("--scenario", "-s", default=None,
                   help="the scenario every lab opens (default: the instructor or the student picks one)")
    p.add_argument("--random-faults", metavar="SEED", default=None,
                   help="every lab gets a random set of faults from this seed plus its session number (so "
                   "neighbours differ), e.g. with --scenario healthy")
    p.add_argument("--token", default=None,
                   help="secret every URL must carry (?token=...); generated and printed when --host is not a "
                   "loopback address and none is given")
    p.add_argument("--data-dir", default=None,
                   help="where the sessions' folders go (default: <ASA_WIZARD_DATA_DIR>/classroom/<start time>)")
    p.add_argument("--max-sessions", type=int, default=40,
                   help="how many labs may run at once (each is a process; default 40)")


def run_serve(args: argparse.Namespace) -> int:
    from .server import run_serve as run

    return run(args)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "add_serve_arguments", "run_serve"]
