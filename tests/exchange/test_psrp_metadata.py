"""The client reads a GetCommandMetadata reply with its own CLIXML reader: the parameter names it finds must
be those pypsrp's own `get_command_metadata` finds in the same reply, for every user and cmdlet."""

from __future__ import annotations

from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from asa_wizard.lab.exchange_cmdlets import _COMMANDS, VIEWER, VIEWER_PASSWORD
from asa_wizard.lab.scenario import find_scenario, load_scenario

EX01 = "ex01.contoso.com"


def _pypsrp_parameters(w, user: str, password: str, cmdlets: list[str]) -> dict[str, frozenset[str]]:
    host, port = w.endpoint.address
    wsman = WSMan(host, port=port, path=f"PowerShell/{EX01}", auth="basic", username=user, password=password,
                  cert_validation=w.endpoint.ca_file, no_proxy=True)
    with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        metas = pool.get_command_metadata(cmdlets)
    out: dict[str, set[str]] = {c: set() for c in cmdlets}
    for meta in metas:
        for c in cmdlets:
            if meta.name.lower() == c.lower():
                out[c].update(meta.parameters or {})
    return {c: frozenset(v) for c, v in out.items()}


def test_the_parameters_read_from_a_metadata_reply_are_pypsrps(world_of):
    w = world_of(load_scenario(find_scenario("healthy")))
    w.start_endpoint()
    netbios = w.exchange.current_scenario().netbios
    cmdlets = sorted(_COMMANDS) + ["Get-Mailbox"]  # every lab cmdlet, and one that is no command at all
    for user, password in (w.exchange.current_credentials(), (f"{netbios}\\{VIEWER}", VIEWER_PASSWORD)):
        with w.rps(user, password) as rps:
            ours = rps.parameters_of(EX01, cmdlets)
        theirs = _pypsrp_parameters(w, user, password, cmdlets)
        assert ours == theirs
        assert ours["Get-Mailbox"] == frozenset() and ours["Get-ExchangeServer"]
    # RBAC decides what the two users see: the viewer does not get the password switch
    with w.rps() as admin, w.rps(f"{netbios}\\{VIEWER}", VIEWER_PASSWORD) as viewer:
        assert "IncludeAlternateServiceAccountCredentialPassword" in admin.parameters(EX01, "Get-ClientAccessService")
        assert "IncludeAlternateServiceAccountCredentialPassword" not in viewer.parameters(EX01,
                                                                                           "Get-ClientAccessService")
