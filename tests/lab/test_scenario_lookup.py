"""`Scenario.server` answers from an index of the server list, and always as the scan of the list would: after
servers are renamed, added, removed or the list replaced, by name or FQDN in any case; copies do not carry the
index."""

from __future__ import annotations

import copy
import pickle

from asa_wizard.lab.scenario import find_scenario, load_scenario


def scanned(scenario, name: str):
    want = name.lower()
    return next((s for s in scenario.servers if s.name.lower() == want or s.fqdn.lower() == want), None)


def names(scenario) -> list[str]:
    out = ["nowhere", "", "EX01.CONTOSO.COM"]
    for s in scenario.servers:
        out += [s.name, s.name.lower(), s.fqdn, s.fqdn.upper()]
    return out


def same_as_scan(scenario, extra=()) -> None:
    for name in [*names(scenario), *extra]:
        assert scenario.server(name) is scanned(scenario, name), name


def test_the_indexed_lookup_answers_as_the_scan_through_every_change_of_the_list():
    s = load_scenario(find_scenario("healthy")).with_servers(12)
    gone = []
    same_as_scan(s)
    s.servers[3].name = "EX99"  # renamed in place
    same_as_scan(s, ["EX04", "ex04.contoso.com"])
    s.servers[5].fqdn = "ex01.contoso.com"  # a second server answering to an existing FQDN: the first one wins
    same_as_scan(s)
    s.servers.append(copy.deepcopy(s.servers[0]))
    s.servers[-1].name, s.servers[-1].fqdn = "EX13", "ex13.contoso.com"
    same_as_scan(s)
    gone.append(s.servers.pop(0))
    same_as_scan(s, [gone[0].name])
    s.servers.insert(0, gone[0])
    s.servers.pop()  # the same length as before, other servers
    same_as_scan(s, ["EX13"])
    s.servers.reverse()  # in place: the same list, the same length
    same_as_scan(s)
    s.servers = list(reversed(s.servers))  # a new list
    same_as_scan(s)
    s.servers[0].name = s.servers[1].name  # two servers of one name: the first one in the list
    same_as_scan(s)


def test_copies_hold_the_fields_not_the_index():
    s = load_scenario(find_scenario("healthy")).with_servers(5)
    assert s.server("ex03") is s.servers[2]
    for other in (s.copy(), copy.deepcopy(s), pickle.loads(pickle.dumps(s))):
        assert "_server_index" not in other.__dict__ and other == s
        assert other.server("EX03") is other.servers[2] and other.servers[2] is not s.servers[2]
