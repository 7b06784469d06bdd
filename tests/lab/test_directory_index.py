"""The lab directory's indexes stay exactly as correct as ldap3's own evaluation through every kind of write, and
a write no longer costs a pass over the whole directory on the next search.

The reference is a plain MOCK_SYNC connection on the same directory (the mock lists every entry of the scope
and tests the filter on each); the searches compared are the ones the adapter sends (recorded from discovery and
the other reads), with every attribute of every entry found. The bitwise rule, which the mock refuses, is
compared with the flags read from the mock's own answer for `(objectClass=user)`.
"""

from __future__ import annotations

from ldap3 import BASE, LEVEL, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, MOCK_SYNC, SUBTREE, Connection
from ldap3.utils.ciDict import CaseInsensitiveDict

from asa_wizard.core.discovery import DiscoveryOptions, discover
from asa_wizard.core.model import UAC_TRUSTED_FOR_DELEGATION, AccountKind, SegConfig
from asa_wizard.core.passwords import generate_password
from asa_wizard.lab.directory import LabDirectory
from asa_wizard.lab.scenario import find_scenario, load_scenario
from asa_wizard.lab.snapshot import configuration_dn

BIT_AND = "1.2.840.113556.1.4.803"


def grown_lab(name: str = "seg-kcd", servers: int = 6) -> LabDirectory:
    return LabDirectory(load_scenario(find_scenario(name)).with_servers(servers))


def sent_searches(lab: LabDirectory) -> list[tuple[str, str, int]]:
    """(base, filter, scope) of every search the adapter sends for discovery and the other reads."""
    searches: list[tuple[str, str, int]] = []
    teach = lab._teach_ad

    def recording(conn: Connection) -> None:
        teach(conn)
        plain = conn.search

        def search(base, flt, scope=SUBTREE, **kw):
            searches.append((base, flt, scope))
            return plain(base, flt, scope, **kw)

        conn.search = search

    lab._teach_ad = recording
    try:
        port = lab.port()
        s = lab.scenario
        seg = SegConfig(s.seg.service_account, list(s.seg.test_users)) if s.seg else None
        env = discover(port, None, DiscoveryOptions(asa_sam=s.asa or "EXASA$", seg=seg, read_servers=False))
        port.find_asa_candidates()
        port.find_unconstrained_delegation()
        port.protected_users()
        port.find_accounts_with_http_spns(["mail.contoso.com", "EX01.contoso.com", "nowhere.contoso.com"])
        for a in env.accounts[:3]:
            port.get_account_by_dn(a.dn)
        port.get_account("ex02$")
    finally:
        del lab._teach_ad
    return list(dict.fromkeys(searches))


def extra_searches(lab: LabDirectory) -> list[tuple[str, str, int]]:
    dom, conf = lab.scenario.domain_dn, configuration_dn(lab.scenario)
    return [
        (dom, "(&(objectClass=user)(|(sAMAccountName=ex01$)(sAMAccountName=NEWSVC$)(sAMAccountName=Renamed$)))", SUBTREE),
        (dom, "(|(servicePrincipalName=http/MAIL.contoso.com)(servicePrincipalName=HOST/ex02.contoso.com))", SUBTREE),
        (dom, "(servicePrincipalName=*)", SUBTREE),
        (dom, "(description=*)", SUBTREE),
        (dom, "(msDS-KeyVersionNumber=*)", SUBTREE),
        (dom, "(&(objectClass=user)(!(sAMAccountName=EXASA$)))", SUBTREE),
        (dom, "(&(objectClass=user)(userAccountControl=4096))", SUBTREE),
        (dom, "(&(objectClass=user)(sAMAccountName=new*))", SUBTREE),
        (dom, "(objectClass=*)", LEVEL),
        (f"CN=Computers,{dom}", "(objectClass=user)", LEVEL),
        (f"CN=Users,{dom}", "(&(objectClass=user)(msDS-AllowedToDelegateTo=*))", LEVEL),
        (conf, "(objectClass=*)", SUBTREE),
        (f"OU=Nowhere,{dom}", "(objectClass=user)", SUBTREE),
    ]


def answer(conn: Connection, base: str, flt: str, scope: int) -> tuple[int, dict[str, dict]]:
    conn.search(base, flt, scope, attributes=["*"])
    entries = {e["dn"]: {k.lower(): sorted(v) for k, v in e["raw_attributes"].items()}
               for e in conn.response if e.get("type") == "searchResEntry"}
    return conn.result["result"], entries


def flags_from_plain(plain: Connection, base: str, bit: int) -> tuple[int, dict[str, dict]]:
    code, users = answer(plain, base, "(objectClass=user)", SUBTREE)
    return code, {dn: e for dn, e in users.items() if any(int(v) & bit == bit for v in e.get("useraccountcontrol", []))}


class Comparison:
    def __init__(self, lab: LabDirectory) -> None:
        self.lab = lab
        self.searches = sent_searches(lab) + extra_searches(lab)
        self.indexed = Connection(lab.server, client_strategy=MOCK_SYNC)
        lab._teach_ad(self.indexed)
        self.plain = Connection(lab.server, client_strategy=MOCK_SYNC)  # the mock alone, the same directory
        self.indexed.open()
        self.plain.open()
        self.rounds = 0

    def check(self, step: str) -> None:
        bitwise = 0
        for base, flt, scope in self.searches:
            if f":{BIT_AND}:=" in flt:
                bit = int(flt.rsplit(":=", 1)[1].rstrip(")"))
                expected = flags_from_plain(self.plain, base, bit)
                bitwise += 1
            else:
                expected = answer(self.plain, base, flt, scope)
            assert answer(self.indexed, base, flt, scope) == expected, (step, base, flt, scope)
        assert bitwise, "the unconstrained-delegation search was compared"
        self.rounds += 1


class CountingDit(CaseInsensitiveDict):
    """The lab's directory, counting the passes over all of its entries."""
    passes = 0

    def __iter__(self):
        CountingDit.passes += 1
        return super().__iter__()

    def items(self):
        CountingDit.passes += 1
        return super().items()


def test_the_indexes_answer_as_the_mock_after_every_kind_of_write():
    lab = grown_lab()
    cmp = Comparison(lab)
    assert len(cmp.searches) > 20
    dom = lab.scenario.domain_dn
    port = lab.port()
    cmp.check("as built")

    asa = port.get_account("EXASA$")
    ex2 = port.get_account("EX02$")
    port.add_spns(ex2.dn, ["HTTP/extra.contoso.com"])
    cmp.check("an SPN added")
    port.remove_spns(ex2.dn, ["HOST/ex02.contoso.com"])
    cmp.check("an SPN removed")

    made = port.create_account("NEWSVC$", AccountKind.COMPUTER, f"CN=Computers,{dom}", 24, "alternate service account")
    cmp.check("a computer account created (add, password, defaults)")
    user = port.create_account("websvc", AccountKind.USER, f"CN=Users,{dom}", 28)
    cmp.check("a user account created and enabled")
    port.add_spns(made.account.dn, ["HTTP/mail.example.org"])
    port.set_uac(made.account.dn, made.account.uac | UAC_TRUSTED_FOR_DELEGATION, restore=True)
    cmp.check("unconstrained delegation turned on")
    port.set_delegate_to(user.account.dn, ["HTTP/ex01.contoso.com"])
    port.set_enctypes(user.account.dn, 24)
    cmp.check("delegation targets and encryption types set")

    raw = Connection(lab.server, user=lab.admin_dn, password=lab.scenario.admin_password, client_strategy=MOCK_SYNC)
    lab._teach_ad(raw)
    raw.open()
    assert raw.modify(made.account.dn, {"sAMAccountName": [(MODIFY_REPLACE, ["newsvc$"])]})
    cmp.check("sAMAccountName case changed")
    assert raw.modify_dn(made.account.dn, "CN=Renamed")
    renamed = f"CN=Renamed,CN=Computers,{dom}"
    cmp.check("renamed")
    assert raw.modify_dn(renamed, "CN=Renamed", new_superior=f"CN=Users,{dom}")
    moved = f"CN=Renamed,CN=Users,{dom}"
    cmp.check("moved")
    raw.modify_dn(moved, "CN=RENAMED")  # a rename in case only: the mock's own rules decide what is left
    cmp.check("renamed in case only")
    # a modify the mock refuses half-way (a value to delete that is not there): it puts the entry back
    assert not raw.modify(ex2.dn, {"description": [(MODIFY_ADD, ["half"])],
                                   "servicePrincipalName": [(MODIFY_DELETE, ["HTTP/not-there.contoso.com"])]})
    cmp.check("a modify refused half-way")
    assert raw.modify(asa.dn, {"servicePrincipalName": [(MODIFY_DELETE, [])]})
    cmp.check("every SPN of the ASA removed")
    port.delete_account(user.account.dn, expected_sam="websvc")
    cmp.check("an account deleted")
    assert raw.add(f"CN=websvc,CN=Users,{dom}", ["top", "person", "organizationalPerson", "user"],
                   {"sAMAccountName": "WEBSVC", "servicePrincipalName": ["HTTP/ex01.contoso.com"]})
    cmp.check("an account added again under the deleted one's name")
    lab.set_account_password_rolled("EX03$", lab.now())
    port.reset_password(ex2.dn, generate_password())
    cmp.check("passwords set (the lab's roll and unicodePwd)")
    lab.reset(lab.scenario)
    cmp.check("reset")
    assert cmp.rounds == 17


def test_a_search_after_a_write_makes_no_pass_over_the_directory():
    lab = grown_lab("healthy", 20)
    lab.server.dit.__class__ = CountingDit  # the same entries, every pass over them counted
    port = lab.port()
    ex5, ex9 = port.get_account("EX05$"), port.get_account("EX09$")
    port.set_uac(ex9.dn, ex9.uac | UAC_TRUSTED_FOR_DELEGATION, restore=True)
    port.find_spn_owners("HTTP/mail.contoso.com")  # builds the indexes these searches use, once
    port.get_account_by_dn(ex5.dn)
    port.find_unconstrained_delegation()
    for i in range(3):
        port.add_spns(ex5.dn, [f"HTTP/write{i}.contoso.com"])
        port.remove_spns(ex5.dn, [f"HTTP/write{i}.contoso.com"])
        port.set_enctypes(ex5.dn, 24 if i % 2 else 28)
        CountingDit.passes = 0
        owners = port.find_spn_owners("HTTP/mail.contoso.com")
        account = port.get_account("EX07$")
        by_dn = port.get_account_by_dn(ex5.dn)
        unconstrained = port.find_unconstrained_delegation()
        assert CountingDit.passes == 0
        assert [a.sam for a in owners] == ["EXASA$"] and account.sam == "EX07$"
        assert by_dn.enctypes == (24 if i % 2 else 28) and f"HTTP/write{i}.contoso.com" not in by_dn.spns
        assert [a.sam for a in unconstrained] == ["EX09$"]


def test_the_bitwise_rules_answer_as_a_dc_and_keep_the_mock_answer_under_not():
    lab = grown_lab("healthy", 3)
    port = lab.port()
    ex1 = port.get_account("EX01$")
    port.set_uac(ex1.dn, ex1.uac | UAC_TRUSTED_FOR_DELEGATION, restore=True)
    conn = Connection(lab.server, client_strategy=MOCK_SYNC)
    lab._teach_ad(conn)
    conn.open()
    dom = lab.scenario.domain_dn

    def sams(flt: str) -> set[str]:
        assert conn.search(dom, flt, SUBTREE, attributes=["sAMAccountName"]) or conn.result["result"] == 0
        return {e["attributes"]["sAMAccountName"].upper() for e in conn.response if e.get("type") == "searchResEntry"}

    users = sams("(objectClass=user)")
    trusted = sams(f"(&(objectClass=user)(userAccountControl:{BIT_AND}:={UAC_TRUSTED_FOR_DELEGATION}))")
    assert trusted == {"EX01$"}
    # every bit of 0x81000 (WORKSTATION_TRUST | TRUSTED_FOR_DELEGATION) only on EX01$, any of them on all computers
    assert sams(f"(&(objectClass=user)(userAccountControl:{BIT_AND}:={0x81000}))") == {"EX01$"}
    any_bit = sams(f"(&(objectClass=user)(userAccountControl:1.2.840.113556.1.4.804:={0x81000}))")
    assert {"EX01$", "EX02$", "EX03$"} <= any_bit and "EXASA$" in any_bit  # the ASA is a computer account too
    # under a NOT the mock's own evaluation runs, with the rule answered entry by entry
    assert sams(f"(&(objectClass=user)(!(userAccountControl:{BIT_AND}:={UAC_TRUSTED_FOR_DELEGATION})))") == \
        users - {"EX01$"}
    base_read = conn.search(ex1.dn, f"(userAccountControl:{BIT_AND}:={UAC_TRUSTED_FOR_DELEGATION})", BASE,
                            attributes=["cn"])
    assert base_read and [e["dn"] for e in conn.response if e.get("type") == "searchResEntry"] == [ex1.dn]
