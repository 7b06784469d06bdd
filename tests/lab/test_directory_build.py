"""Opening a lab builds the same directory as before it was made cheap: every entry, attribute and value the
mock's own `add_entry` stores, for every shipped scenario and for grown ones, and the same scenario copies."""

from __future__ import annotations

import copy
import gc

import pytest

from asa_wizard.core.model import AccountKind
from asa_wizard.lab.directory import LabDirectory
from asa_wizard.core.secrets import Secret
from asa_wizard.lab.scenario import HeldPassword, LabAccount, LabCredential, find_scenario, list_scenarios, \
    load_scenario

SHIPPED = {s.name: s for s in list_scenarios()}


def grown(name: str, servers: int):
    s = load_scenario(find_scenario(name)).with_servers(servers)
    # names that need escaping or that ldap3 normalises, in new OUs (the lab creates the parents)
    s.accounts += [
        LabAccount(sam="web(1)", kind=AccountKind.USER, ou="OU=Service Accounts,OU=Lab", spns=["HTTP/web1.contoso.com"]),
        LabAccount(sam="R D", kind=AccountKind.USER, ou="OU=R\\2C D,OU=Lab", description="a, b; c"),
        LabAccount(sam="hash#1", kind=AccountKind.USER, ou="OU=#Ops ,OU=Lab", upn="hash1@contoso.com"),
        LabAccount(sam="plus+1", kind=AccountKind.USER, ou="OU=A\\+B,OU=Lab"),
        LabAccount(sam="gmsa1$", kind=AccountKind.GMSA, ou="CN=Managed Service Accounts", enctypes=24),
    ]
    return s


SCENARIOS = {**SHIPPED, "healthy-40": grown("healthy", 40), "fresh-with-seg-25": grown("fresh-with-seg", 25)}


def normal(entry) -> dict:
    """An entry as stored, attribute order kept; the mock keeps object classes in a set's (arbitrary) order."""
    return {k: sorted(v) if k.lower() == "objectclass" else list(v) for k, v in entry.items()}


def built_the_old_way(scenario, monkeypatch) -> dict:
    """The directory as the mock's own add_entry builds it, from a copy.deepcopy of the scenario, with the
    garbage collector running throughout."""
    with monkeypatch.context() as m:
        m.setattr(LabDirectory, "_insert", lambda self, conn, dn, attrs: conn.strategy.add_entry(dn, attrs))
        m.setattr("asa_wizard.lab.directory.collection_paused", _collecting)
        return dict(LabDirectory(copy.deepcopy(scenario)).server.dit)


class _collecting:  # noqa: N801 - stands in for the context manager
    def __enter__(self):
        assert gc.isenabled()

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_directory_is_built_entry_by_entry_as_the_mock_builds_it(name, monkeypatch):
    scenario = SCENARIOS[name]
    fast = dict(LabDirectory(scenario.copy()).server.dit)
    plain = built_the_old_way(scenario, monkeypatch)
    assert list(fast) == list(plain)  # the same DNs, spelt the same, in the same order
    for dn in plain:
        assert list(fast[dn]) == list(plain[dn]), dn  # the same attributes in the same order
        assert normal(fast[dn]) == normal(plain[dn]), dn
    if name.startswith("healthy-"):
        assert len(plain) > 40 * 10


def test_building_leaves_the_garbage_collector_as_it_found_it():
    s = SHIPPED["healthy"]
    assert gc.isenabled()
    LabDirectory(s.copy())
    assert gc.isenabled()
    gc.disable()
    try:
        LabDirectory(s.copy())
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("name", ["healthy-40", "stale-credential", "seg-kcd"])
def test_a_scenario_copy_is_a_deep_copy_sharing_only_the_held_passwords(name):
    s = SCENARIOS[name]
    s.servers[0].credentials.append(LabCredential("CONTOSO\\EXASA$", s.now, 0, "digest",
                                                  held=HeldPassword(Secret("Held-Pass-1"))))
    try:
        fast, deep = s.copy(), copy.deepcopy(s)
        assert fast == deep == s
        assert fast.servers[0] is not s.servers[0] and fast.servers[0].vdirs is not s.servers[0].vdirs
        assert fast.accounts[0] is not s.accounts[0] and fast.servers[0].credentials is not s.servers[0].credentials
        assert fast.servers[0].credentials[-1].held is s.servers[0].credentials[-1].held  # shared, never copied
        fast.servers[0].vdirs[next(iter(fast.servers[0].vdirs))].auth_methods.append("Basic")
        fast.servers[0].credentials.pop()
        assert s == deep  # the original did not change with the copy
    finally:
        s.servers[0].credentials.pop()


def test_a_lab_world_holds_what_the_scenario_says(world_of):
    s = SCENARIOS["healthy-40"]
    world = world_of(s)
    now = world.current_scenario()
    assert [x.name for x in now.servers] == [x.name for x in s.servers]
    assert now.servers == s.servers
    assert world.directory.scenario == s and world.directory.scenario is not s
