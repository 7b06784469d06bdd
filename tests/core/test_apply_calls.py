"""The calls `apply` makes on each Exchange server, counted through a recording wrapper on the real adapters
(pypsrp to each server's /PowerShell endpoint, pywinrm to its WinRM endpoint, on the lab's wire), and proof
that the shorter path changes, journals and undoes exactly what re-reading, then reading again, then setting
did: a virtual directory is set by the Identity its re-read returned (the value read is what undo restores),
and a Windows-side change is re-read and made in one compare-and-set script on the server."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path

import pytest

from asa_wizard.core.answers import parse_answers
from asa_wizard.core.executor import Executor, undo_order
from asa_wizard.core.journal import Journal
from asa_wizard.core.model import IisAuth, Service
from asa_wizard.lab.exchange import parse_script
from asa_wizard.lab.scenario import find_scenario, load_scenario
from asa_wizard.lab.world import LabWorld
from asa_wizard.target import Target

from .lab_kit import plan_on, state

GOLDEN = Path(__file__).parents[1] / "golden" / "answers-fresh-with-seg.toml"
SEG = "CONTOSO\\svc_awseg"


def answers(concurrency: int = 4):
    text = GOLDEN.read_text().replace("concurrency = 4", f"concurrency = {concurrency}")
    assert f"concurrency = {concurrency}" in text
    return parse_answers(text, "answers-fresh-with-seg.toml")


def lab(servers: int = 3, wrap=None) -> Target:
    world = LabWorld(load_scenario(find_scenario("fresh-with-seg")).with_servers(servers))
    port = world.exchange_port()
    return Target(label="Lab", directory=world.directory_port(), exchange=wrap(port) if wrap else port,
                  kerberos=world.kerberos_probe(), is_lab=True, lab=world)


def record(port) -> dict[str, Counter]:
    """Count every call the port makes from now on, by server: each Exchange cmdlet pipeline and metadata read
    on the server's endpoint, each Windows-side script (by its operation) on its WinRM endpoint."""
    calls: dict[str, Counter] = defaultdict(Counter)
    lock = threading.Lock()

    def add(server: str, what: str) -> None:
        with lock:
            calls[server.lower()][what] += 1

    rps, windows = port.rps, port.windows
    invoke_each, parameters_of, run = rps.invoke_each, rps.parameters_of, windows._run

    def each(server, cmdlet, params=None):
        add(server, cmdlet)
        return invoke_each(server, cmdlet, params)

    def metadata(server, cmdlets):
        add(server, "GetCommandMetadata")
        return parameters_of(server, cmdlets)

    def script(server, text, purpose):
        add(server, "WinRM " + parse_script(text)[0])
        return run(server, text, purpose)

    rps.invoke_each, rps.parameters_of, windows._run = each, metadata, script
    return calls


class TwoCalls:
    """The port without what the shorter path uses: no compare-and-set of the IIS settings (the executor
    re-reads them, then sets them), and no re-read handed to the virtual directory sets (each reads its
    virtual directory again before it sets it)."""

    def __init__(self, real) -> None:
        self.real = real

    def __getattr__(self, name):
        if name == "change_iis_auth":
            raise AttributeError(name)
        return getattr(self.real, name)

    def set_outlook_anywhere_client_auth(self, server, method, read=None):
        return self.real.set_outlook_anywhere_client_auth(server, method)

    def set_mapi_auth_methods(self, server, methods, read=None):
        return self.real.set_mapi_auth_methods(server, methods)


def journal_of(tmp_path: Path, name: str) -> Journal:
    d = tmp_path / name
    d.mkdir()
    return Journal.create(d, actor="CONTOSO\\Administrator", label="test")


def lab_state(target: Target) -> dict:
    """The lab's state, without pwdLastSet: the lab directory stamps it from the scenario's time plus the wall
    clock's elapsed seconds, so two runs never agree on it."""
    truth = state(target)
    for account in truth["accounts"]:
        account.pop("pwd_last_set")
    return truth


def recorded(journal: Journal) -> list[tuple]:
    """What a run journalled, without its times and ids."""
    return [(e.event, e.change_id, e.change, e.undo, e.message, e.data) for e in journal.events()]


# --- the count -----------------------------------------------------------------------------------------------
def test_apply_makes_these_calls_on_each_server_and_no_more(tmp_path):
    target = lab(3)
    try:
        plan = plan_on(target, answers())
        servers = [s.fqdn for s in target.lab.exchange.current_scenario().servers]
        per_server = Counter(c.action for c in plan.changes if c.params.get("server"))
        # every server gets the whole setup: its credential, Negotiate for Outlook, the gateway's IIS settings
        assert {a: per_server[a] for a in ("set-oa-client-auth", "set-mapi-auth", "add-iis-iusrs", "set-iis-auth")} \
            == dict.fromkeys(("set-oa-client-auth", "set-mapi-auth", "add-iis-iusrs", "set-iis-auth"), 3)
        calls = record(target.exchange)
        result = Executor(target.directory, target.exchange, journal_of(tmp_path, "j")).apply(plan)
        assert result.ok, (result.failed, result.skipped)
        expected = Counter({
            "GetCommandMetadata": 1,  # the roll's pre-flight: RBAC shows the ASA parameters
            "Set-ClientAccessService": 1, "Get-ClientAccessService": 1,  # the push and its read-back (also the proof)
            "Get-OutlookAnywhere": 1, "Set-OutlookAnywhere": 1,  # the re-read, then the set by its Identity
            "Get-MapiVirtualDirectory": 1, "Set-MapiVirtualDirectory": 1,
            "WinRM add_iis_iusrs": 1,  # IsMember and Add in one script
            "WinRM change_iis_auth": 1,  # the re-read and the change of ActiveSync's IIS settings in one script
        })
        assert dict(calls) == {s: expected for s in servers}
        # one runspace pool per server for the whole run (the plan's read and the apply together)
        opened = Counter(server.lower() for server, _ in target.lab.endpoint.psrp.creates)
        assert opened == Counter({s: 1 for s in servers})
        # the sets went by the Identity the re-read returned
        sets = {(server, cmdlet): params for server, cmdlet, params in target.lab.exchange.cmdlets
                if cmdlet in ("Set-OutlookAnywhere", "Set-MapiVirtualDirectory")}
        assert len(sets) == 6 and all("Identity" in params and "Server" not in params for params in sets.values())
    finally:
        target.close()


# --- the shorter path does what the longer one did --------------------------------------------------------
def test_the_shorter_path_journals_undoes_and_leaves_what_the_longer_one_did(tmp_path):
    runs = {}
    for name, wrap in (("short", None), ("long", TwoCalls)):
        target = lab(2, wrap)
        try:
            before = state(target)
            journal = journal_of(tmp_path, name)
            result = Executor(target.directory, target.exchange, journal).apply(plan_on(target, answers(1)))
            assert result.ok, (result.failed, result.skipped)
            after = lab_state(target)
            undo = {c.id: u for c, u in undo_order(journal.events())}
            undone = Executor(target.directory, target.exchange, Journal.open(journal.path)).undo()
            assert not undone.failed and state(target) == before
            runs[name] = (recorded(journal), after, undo)
        finally:
            target.close()
    assert runs["short"] == runs["long"]
    _, _, undo = runs["short"]
    # undo holds the values found before the change
    assert undo["auth.oa:EX01"] == {"server": "ex01.contoso.com", "method": "Ntlm"}
    assert undo["auth.mapi:EX01"]["methods"] == ["Ntlm", "OAuth"]
    assert undo["seg.iis-iusrs:EX01"] == {"server": "ex01.contoso.com", "member": SEG, "remove": True}
    assert undo["iis.eas:EX01"]["auth"] == asdict(IisAuth(basic=True, windows=False, providers=["Negotiate", "NTLM"]))


def _meddle(port, server: str) -> None:
    """Another administrator, after the plan was made: Outlook Anywhere to Basic, ActiveSync's IIS settings to
    something else again, and the gateway already in IIS_IUSRS."""
    port.set_outlook_anywhere_client_auth(server, "Basic")
    port.set_iis_auth(server, "Microsoft-Server-ActiveSync", IisAuth(basic=True, windows=True, providers=["NTLM"]))
    port.add_iis_iusrs(server, SEG)


@pytest.mark.parametrize("wrap", [None, TwoCalls], ids=["short", "long"])
def test_a_value_changed_since_the_plan_is_reported_stale_and_left_alone(tmp_path, wrap):
    target = lab(2, wrap)
    try:
        plan = plan_on(target, answers(1))
        _meddle(target.exchange, "ex01.contoso.com")
        journal = journal_of(tmp_path, "j")
        result = Executor(target.directory, target.exchange, journal).apply(plan)
        assert result.failed["auth.oa:EX01"] == (
            "EX01: InternalClientAuthenticationMethod is 'basic' now; the plan expected 'ntlm'. — Someone changed it "
            "since the plan was made: make a new plan.")
        found = {"basic": True, "windows": True, "providers": ["NTLM"], "use_kernel_mode": False,
                 "use_app_pool_credentials": False}
        planned = asdict(IisAuth(basic=True, windows=False, providers=["Negotiate", "NTLM"]))
        assert result.failed["iis.eas:EX01"] == (
            f"EX01: Default Web Site/Microsoft-Server-ActiveSync authentication is {found!r} now; the plan expected "
            f"{planned!r}. — Someone changed it since the plan was made: make a new plan.")
        assert "seg.iis-iusrs:EX01" in result.already
        done = {e.change_id: (e.undo, e.message) for e in journal.events() if e.event == "done"}
        assert done["seg.iis-iusrs:EX01"] == (None, "already in place (re-read before the change)")
        # nothing was set over the other administrator's values; the other server got everything
        ex01 = target.lab.exchange.server("EX01")
        assert ex01.vdirs[Service.OUTLOOK_ANYWHERE].internal_client_auth == "Basic"
        eas = ex01.vdirs[Service.EAS]
        assert (eas.basic, eas.windows, eas.providers) == (True, True, ["NTLM"])
        assert {"auth.oa:EX02", "iis.eas:EX02", "seg.iis-iusrs:EX02"} <= set(result.done)
    finally:
        target.close()


@pytest.mark.parametrize("wrap", [None, TwoCalls], ids=["short", "long"])
def test_a_change_already_in_place_is_recorded_and_not_made_again(tmp_path, wrap):
    target = lab(2, wrap)
    try:
        plan = plan_on(target, answers(1))
        iis = plan.change("iis.eas:EX02")
        target.exchange.set_iis_auth("ex02.contoso.com", "Microsoft-Server-ActiveSync", IisAuth(**iis.new))
        target.exchange.set_mapi_auth_methods("ex02.contoso.com", plan.change("auth.mapi:EX02").new)
        journal = journal_of(tmp_path, "j")
        result = Executor(target.directory, target.exchange, journal).apply(plan)
        assert result.ok, (result.failed, result.skipped)
        assert {"iis.eas:EX02", "auth.mapi:EX02"} <= set(result.already)
        assert "iis.eas:EX01" in result.done
        done = {e.change_id: (e.undo, e.message) for e in journal.events() if e.event == "done"}
        assert done["iis.eas:EX02"] == (None, "already in place (re-read before the change)")
    finally:
        target.close()
