"""A customer-like forest inside the session's Samba AD DC: several mistakes at once, every name unique.

Built into the DC's existing Exchange organisation (discovery reads every server of the configuration partition,
so the session's EX01/EX02 are seen too) and removed again afterwards:

- two Exchange servers (A, B) whose virtual-directory objects publish ``mail<x>`` and whose Autodiscover SCPs
  publish ``ad<x>``;
- ``HTTP/mail<x>`` on server A's own computer account (which has a password and RC4 only, so the KDC really
  issues RC4 tickets for the name with that account's key);
- an RC4-only computer ASA holding ``HTTP/ad<x>`` (found by discovery from the SPNs: nobody names it);
- the gateway's service account: an SPN, unconstrained delegation, no protocol transition, and
  ``msDS-AllowedToDelegateTo`` with a stale entry (``HTTP/old<x>``) besides ``HTTP/mail<x>``;
- another service account with unconstrained delegation;
- two test users, one of them in Protected Users.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from asa_wizard.lab.samba import SambaDC

ORGANIZATION = "CONTOSO"
TREE_DELETE = ("1.2.840.113556.1.4.805", True, None)
# every attribute the wizard may touch, compared before and after
TOUCHED = ["servicePrincipalName", "msDS-AllowedToDelegateTo", "userAccountControl", "msDS-SupportedEncryptionTypes",
           "member"]


@dataclass
class CustomerForest:
    dc: SambaDC
    x: str  # the unique part of every name
    server_a: str = ""
    server_b: str = ""
    asa: str = ""  # sAMAccountName (NAME$)
    seg: str = ""
    svc: str = ""
    test_user: str = ""
    protected_user: str = ""
    dns: dict[str, str] = field(default_factory=dict)  # role -> DN of every account made here

    @property
    def mail(self) -> str:
        return f"mail{self.x}.{self.dc.domain}"

    @property
    def autodiscover(self) -> str:
        return f"ad{self.x}.{self.dc.domain}"

    @property
    def stale(self) -> str:
        return f"HTTP/old{self.x}.{self.dc.domain}"

    def q(self, sam: str) -> str:
        return f"{self.dc.netbios}\\{sam}"

    # --- the state of every object it made ----------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, list[str]]]:
        """Every touched attribute of every account made here (and the Protected Users members), sorted."""
        conn = self.dc.admin_connection()
        try:
            out = {}
            for role, dn in sorted(self.dns.items()):
                conn.search(dn, "(objectClass=*)", BASE, attributes=TOUCHED)
                (entry,) = conn.response
                out[role] = {k: sorted(str(v) for v in (vals if isinstance(vals, list) else [vals]))
                             for k, vals in entry["attributes"].items()}
            return out
        finally:
            conn.unbind()


def _password() -> str:
    return "Cx-" + secrets.token_urlsafe(18) + "-9a"


def _add(conn: Any, dn: str, classes: list[str], attrs: dict[str, Any]) -> None:
    if not conn.add(dn, classes, attrs):
        raise AssertionError(f"adding {dn} failed: {conn.result}")


def _set_password(conn: Any, dn: str) -> None:
    value = f'"{_password()}"'.encode("utf-16-le")
    if not conn.modify(dn, {"unicodePwd": [(MODIFY_REPLACE, [value])]}):
        raise AssertionError(f"setting the password of {dn} failed: {conn.result}")


def build(dc: SambaDC, x: str) -> CustomerForest:
    f = CustomerForest(dc, x)
    f.server_a, f.server_b = f"{x}A".upper(), f"{x}B".upper()
    vdirs = {
        "outlook-anywhere": {"internal": f.mail, "external": f.mail},
        "mapi": {"internal": f"https://{f.mail}/mapi", "external": f"https://{f.mail}/mapi"},
        "eas": {"internal": f"https://{f.mail}/Microsoft-Server-ActiveSync",
                "external": f"https://{f.mail}/Microsoft-Server-ActiveSync"},
        "ews": {"internal": f"https://{f.mail}/EWS/Exchange.asmx", "external": f"https://{f.mail}/EWS/Exchange.asmx"},
    }
    scp = f"https://{f.autodiscover}/Autodiscover/Autodiscover.xml"
    dc.populate_exchange(ORGANIZATION, [
        {"name": f.server_a, "fqdn": f"{f.server_a.lower()}.{dc.domain}", "autodiscover_url": scp,
         "vdirs": vdirs, "spns": [f"HTTP/{f.mail}"]},
        {"name": f.server_b, "fqdn": f"{f.server_b.lower()}.{dc.domain}", "autodiscover_url": scp, "vdirs": vdirs},
    ])
    f.dns["server_a"] = dc.computer_dn(f.server_a)
    f.dns["server_b"] = dc.computer_dn(f.server_b)
    users = f"CN=Users,{dc.base_dn}"
    person = ["top", "person", "organizationalPerson", "user"]
    conn = dc.admin_connection()
    try:
        # server A's own account: a password and RC4 only, so tickets for HTTP/mail<x> really come from its key
        _set_password(conn, f.dns["server_a"])
        conn.modify(f.dns["server_a"], {"msDS-SupportedEncryptionTypes": [(MODIFY_REPLACE, [4])]})
        # the RC4-only ASA with the Autodiscover SPN
        f.asa = f"ASA{x}".upper() + "$"
        f.dns["asa"] = f"CN={f.asa[:-1]},CN=Computers,{dc.base_dn}"
        _add(conn, f.dns["asa"], person + ["computer"],
             {"sAMAccountName": f.asa, "userAccountControl": 4096, "msDS-SupportedEncryptionTypes": 4,
              "servicePrincipalName": [f"HTTP/{f.autodiscover}"], "description": "Exchange ASA"})
        _set_password(conn, f.dns["asa"])
        # the gateway: unconstrained delegation, no protocol transition, a stale delegation target
        f.seg = f"seg{x}"
        f.dns["seg"] = f"CN={f.seg},{users}"
        _add(conn, f.dns["seg"], person, {"sAMAccountName": f.seg, "servicePrincipalName": [f"HTTP/{f.seg}"],
                                          "msDS-AllowedToDelegateTo": [f.stale, f"HTTP/{f.mail}"]})
        _set_password(conn, f.dns["seg"])
        conn.modify(f.dns["seg"], {"userAccountControl": [(MODIFY_REPLACE, [0x200 | 0x80000])]})
        # another service with unconstrained delegation
        f.svc = f"svc{x}"
        f.dns["svc"] = f"CN={f.svc},{users}"
        _add(conn, f.dns["svc"], person, {"sAMAccountName": f.svc, "servicePrincipalName": [f"HTTP/{f.svc}"]})
        _set_password(conn, f.dns["svc"])
        conn.modify(f.dns["svc"], {"userAccountControl": [(MODIFY_REPLACE, [0x200 | 0x80000])]})
        # test users, one protected
        for role, sam in (("test_user", f"tu{x}"), ("protected_user", f"pu{x}")):
            setattr(f, role, sam)
            f.dns[role] = f"CN={sam},{users}"
            _add(conn, f.dns[role], person, {"sAMAccountName": sam})
            _set_password(conn, f.dns[role])
            conn.modify(f.dns[role], {"userAccountControl": [(MODIFY_REPLACE, [0x200])]})
        protected = f"CN=Protected Users,{users}"
        if not conn.modify(protected, {"member": [(MODIFY_ADD, [f.dns["protected_user"]])]}):
            raise AssertionError(f"Protected Users: {conn.result}")
    finally:
        conn.unbind()
    return f


def remove(f: CustomerForest) -> None:
    """Take every object made by `build` out of the DC again (whatever a test left)."""
    conn = f.dc.admin_connection()
    try:
        protected = f"CN=Protected Users,CN=Users,{f.dc.base_dn}"
        if "protected_user" in f.dns:
            conn.modify(protected, {"member": [(MODIFY_DELETE, [f.dns["protected_user"]])]})
        for dn in f.dns.values():
            conn.delete(dn)
        for name in (f.server_a, f.server_b):
            if name:
                conn.delete(f.dc.exchange_server_dn(ORGANIZATION, name), controls=[TREE_DELETE])
    finally:
        conn.unbind()
