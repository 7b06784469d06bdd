"""A target: the ports for one organisation, embedded lab or real, plus what the UI shows about it.

Headless code and the TUI both start here; this module imports no UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .core.ports import DirectoryPort, ExchangePort, KerberosProbe


@dataclass
class Target:
    label: str  # "Lab: new-server-missing-asa" / "contoso.com via dc1.contoso.com"
    directory: DirectoryPort
    exchange: ExchangePort | None
    kerberos: KerberosProbe | None
    is_lab: bool = False
    lab: Any = None  # the LabWorld when is_lab
    insecure_tls: bool = False  # the user opted out of certificate validation somewhere
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        """End the run's sessions, then the lab: each server's runspace pool and WinRS shell are closed on the
        server (Exchange counts a user's open remote PowerShell shells against its throttling policy, 18 by
        default, and WinRM its shells per user), and the directory connection is unbound."""
        for part in (self.exchange, self.directory):
            close = getattr(part, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - closing is best effort: servers time idle sessions out
                    pass
        if self.lab is not None:
            self.lab.close()


def open_lab(scenario: str) -> Target:
    from .lab.world import LabWorld

    world = LabWorld.open(scenario)
    return Target(
        label=f"Lab: {world.scenario.name} ({world.scenario.title})",
        directory=world.directory_port(),
        exchange=world.exchange_port(),
        kerberos=world.kerberos_probe(),
        is_lab=True,
        lab=world,
    )
