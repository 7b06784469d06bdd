"""A run ends its sessions on the servers: Exchange counts a user's open remote PowerShell shells against its
throttling policy (18 by default) and WinRM its shells per user, so a run that left them open would lock its
own account out of the endpoint after a few runs. Closing the target closes them before the lab stops."""

from __future__ import annotations

from asa_wizard.core.answers import Answers
from asa_wizard.lab.scenario import find_scenario, load_scenario
from asa_wizard.service import discover
from asa_wizard.service.session import open_target


def test_closing_a_run_closes_its_runspace_pools_and_winrs_shells_on_the_servers(monkeypatch):
    answers = Answers()
    answers.target.lab = "healthy"
    opened = open_target(answers)
    world = opened.target.lab
    discover(opened)
    assert world.endpoint.psrp.open_shells() >= 1  # the organisation read kept its pool for the run
    assert world.endpoint.open_shells() == 2  # one WinRS shell per server, kept for the run
    left_open: list[tuple[int, int]] = []
    stop = world.close
    monkeypatch.setattr(world, "close", lambda: (
        left_open.append((world.endpoint.psrp.open_shells(), world.endpoint.open_shells())), stop()))
    opened.close()
    assert left_open == [(0, 0)]


def test_every_servers_shell_is_deleted_when_many_are_closed_side_by_side(world_of):
    w = world_of(load_scenario(find_scenario("healthy")).with_servers(12))
    port = w.exchange_port()
    servers = [s.fqdn for s in w.exchange.current_scenario().servers]
    port.read_servers(servers, concurrency=4)
    assert w.endpoint.open_shells() == 12
    port.close()
    assert w.endpoint.open_shells() == 0 and w.endpoint.psrp.open_shells() == 0


def test_a_user_with_eighteen_open_sessions_on_a_server_gets_exchanges_quota_error_and_what_to_do(world_of):
    from asa_wizard.adapters.psrp import RpsError

    w = world_of(load_scenario(find_scenario("healthy")))
    w.start_endpoint()
    left_open = [w.rps() for _ in range(18)]  # 18 runs that never closed their session
    try:
        for rps in left_open:
            rps.invoke("ex01.contoso.com", "Get-ExchangeServer", {})
        with w.rps() as rps:
            try:
                rps.invoke("ex01.contoso.com", "Get-ExchangeServer", {})
            except RpsError as exc:
                refused = exc
            else:
                raise AssertionError("a 19th session was accepted")
            assert "maximum number of 18 concurrent shells" in refused.problem
            assert "Remove-PSSession" in refused.fix and "PowerShellMaxConcurrency" in refused.fix
        left_open.pop().close()
        with w.rps() as rps:  # one closed: room for one more
            assert rps.invoke("ex01.contoso.com", "Get-ExchangeServer", {})
    finally:
        for rps in left_open:
            rps.close()


def test_a_finished_commands_signal_waits_for_the_next_command_and_deleting_the_shell_ends_the_last(world_of):
    """Each script's terminate Signal is sent before the next script in the shell; the last one needs none,
    because deleting a shell ends its commands and frees them (MS-WSMV 3.1.4.4.1): one request less per server."""
    w = world_of(load_scenario(find_scenario("healthy")))
    port = w.exchange_port()
    port.read_servers(["ex01.contoso.com"], concurrency=1)
    port.windows.read_extended_protection("ex01.contoso.com")
    assert w.endpoint.open_commands() == 1  # the last script's command, finished, waits for the Delete
    port.close()
    sent = [action for server, action in w.endpoint.actions if server == "ex01.contoso.com"]
    assert sent == ["Create", "Command", "Receive", "Signal", "Command", "Receive", "Delete"]
    assert w.endpoint.open_commands() == 0 and w.endpoint.open_shells() == 0
