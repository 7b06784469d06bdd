"""The training lab: one simulated organisation, reached through the same adapters as a real one.

    with LabWorld.open("fresh") as lab:
        directory = lab.directory_port()     # LdapDirectory over ldap3's MOCK_SYNC directory
        exchange = lab.exchange_port()       # WinRmExchange over pywinrm, to the loopback WS-Management endpoint
        rps = lab.rps()                      # ExchangeRps over pypsrp, to each server's /PowerShell endpoint
        kerberos = lab.kerberos_probe()      # the simulated KDC + servers (same rules as Windows)

State lives for the run: `reset()` puts the scenario back. Parts:
- `lab.directory`  (asa_wizard.lab.directory.LabDirectory): the MOCK_SYNC DIT built from the scenario.
- `lab.exchange`   (asa_wizard.lab.exchange.LabExchange): per-server Exchange state and the operations.
- `lab.endpoint`   (asa_wizard.lab.wsman.LabWsmanServer): HTTPS WS-Management on 127.0.0.1, ephemeral port:
  `/wsman/<server>` (WinRS, for Windows-side scripts) and `/PowerShell/<server>` (Exchange remote PowerShell,
  `lab.endpoint.psrp`, asa_wizard.lab.psrp_endpoint.LabPsrpEndpoint).
"""

from __future__ import annotations

from pathlib import Path

from ..core.model import Environment
from ..core.ports import DirectoryPort, ExchangePort, KerberosProbe
from .scenario import Scenario, find_scenario, load_scenario


class LabWorld:
    def __init__(self, scenario: Scenario) -> None:
        from .directory import LabDirectory
        from .exchange import LabExchange

        self.scenario = scenario
        self.directory = LabDirectory(scenario.copy())
        self.exchange = LabExchange(scenario, self.directory)  # it keeps a deep copy of its own
        self.endpoint = None  # started on first use

    @classmethod
    def open(cls, name_or_path: str | Path, random_faults: int | None = None) -> "LabWorld":
        """`random_faults`: a seed that breaks the scenario with faults from `lab.faults` (default: the seed in
        ASA_WIZARD_RANDOM_FAULTS, which `lab --random-faults` and the classroom set for the wizard's process)."""
        from .faults import seed_from_environment, with_random_faults

        scenario = load_scenario(find_scenario(str(name_or_path)))
        seed = random_faults if random_faults is not None else seed_from_environment()
        return cls(with_random_faults(scenario, seed) if seed is not None else scenario)

    # --- lifecycle ------------------------------------------------------------------------------------
    def start_endpoint(self):
        if self.endpoint is None:
            from .wsman import LabWsmanServer

            self.endpoint = LabWsmanServer(self.exchange)
            self.endpoint.start()
        return self.endpoint

    def reset(self) -> None:
        """Put the scenario back: the directory and every server as the file describes them."""
        self.directory.reset(self.scenario.copy())
        self.exchange.reset(self.scenario)  # it keeps a deep copy of its own

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None

    def __enter__(self) -> "LabWorld":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- ports ----------------------------------------------------------------------------------------
    def directory_port(self) -> DirectoryPort:
        return self.directory.port()

    def exchange_port(self) -> ExchangePort:
        """Exchange cmdlets over ExchangeRps to each server's /PowerShell, Windows-side scripts over WinRM."""
        from ..adapters.exchange import EndpointExchange

        endpoint = self.start_endpoint()
        return EndpointExchange(endpoint.rps(), endpoint.port())

    def rps_settings(self, user: str | None = None, password: str | None = None):
        """`RpsSettings` for the lab's /PowerShell endpoints (Basic over HTTPS with the lab CA; `host_override`
        maps each server's name or FQDN to its path). As the scenario's lab admin unless a lab logon is given."""
        return self.start_endpoint().rps_settings(user, password)

    def rps(self, user: str | None = None, password: str | None = None):
        """`ExchangeRps` (pypsrp) talking to the lab's /PowerShell endpoints; the caller closes it."""
        return self.start_endpoint().rps(user, password)

    def kerberos_probe(self) -> KerberosProbe:
        from .kerberos import LabKerberos

        return LabKerberos(self.directory, self.exchange)

    def truth(self) -> Environment:
        """The lab's current state as an Environment, read from the lab's own state (not the adapters)."""
        from .snapshot import environment_from_scenario

        return environment_from_scenario(self.current_scenario())

    def current_scenario(self) -> Scenario:
        """The scenario as it is now, after the changes of this run (directory + Exchange state)."""
        s = self.exchange.current_scenario()
        s.accounts = self.directory.current_accounts()
        return s
