"""The WinRM adapter imports requests-ntlm (its NTLM stack) only when NTLM is used, and the remote PowerShell
adapter pyspnego only when Kerberos or Negotiate is: a lab command (Basic over HTTPS) does without them, and such
a connection later in the same process still works.
Each case runs in a fresh interpreter, where the imports happen for the first time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lab_read_then(modules: tuple[str, ...], after: str) -> str:
    """A script that reads EX01 of the lab, prints which of `modules` that loaded, then runs `after`."""
    return f"""
import sys
from asa_wizard.target import open_lab
lab = open_lab("fresh")
try:
    state = lab.exchange.read_server("EX01.contoso.com")
finally:
    lab.close()
print("read", state.server.name)
print("after lab", sorted(m for m in {modules!r} if m in sys.modules))
{after}"""


LAB_THEN_NTLM = lab_read_then(("requests_ntlm", "ntlm_auth"), """
from asa_wizard.adapters.winrm import WinRmExchange, WinRmSettings
from asa_wizard.core.secrets import Secret
ntlm = WinRmExchange(WinRmSettings(transport="ntlm", user="CONTOSO\\\\admin", password=Secret("pw")))
session = ntlm._connection("ex01.contoso.com").protocol.transport.build_session()
print("ntlm auth", type(session.auth).__module__, type(session.auth).__name__)
""")


def run(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ASA_WIZARD_DATA_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=str(ROOT),
                          timeout=300)


def test_a_lab_reads_over_basic_without_the_ntlm_stack_and_ntlm_still_works_after(tmp_path):
    done = run(LAB_THEN_NTLM, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # the lab server was read (Exchange cmdlets over PSRP, Windows-side work over WinRM, both with Basic over
    # HTTPS), and requests-ntlm was not loaded for it
    assert "read EX01" in lines
    assert "after lab []" in lines, lines
    assert "ntlm auth requests_ntlm.requests_ntlm HttpNtlmAuth" in lines


def test_ntlm_first_imports_pywinrm_with_its_ntlm_auth(tmp_path):
    done = run("""
from asa_wizard.adapters.winrm import WinRmExchange, WinRmSettings
from asa_wizard.core.secrets import Secret
x = WinRmExchange(WinRmSettings(transport="ntlm", user="CONTOSO\\\\admin", password=Secret("pw")))
print(type(x._connection("ex01.contoso.com").protocol.transport.build_session().auth).__name__)
""", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["HttpNtlmAuth"]


def test_a_lab_reads_its_exchange_endpoint_without_spnego_and_kerberos_still_works_after(tmp_path):
    done = run(lab_read_then(("spnego", "gssapi", "pypsrp.negotiate"), """
from asa_wizard.adapters.psrp import ExchangeRps, RpsSettings
wsman = ExchangeRps(RpsSettings(auth="kerberos")).wsman("ex01.contoso.com")
print("kerberos auth", type(wsman.transport.session.auth).__module__, type(wsman.transport.session.auth).__name__)
"""), tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # the lab's endpoint was read over Basic, and pyspnego (with GSSAPI) was not loaded for it
    assert "read EX01" in lines
    assert "after lab []" in lines, lines
    # a Kerberos connection afterwards gets pypsrp's own Negotiate authentication, not the placeholder
    assert "kerberos auth pypsrp.negotiate HTTPNegotiateAuth" in lines
