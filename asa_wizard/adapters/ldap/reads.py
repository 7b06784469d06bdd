"""Reading the directory: the forest, the Exchange servers and virtual directories from the configuration
partition, the Autodiscover SCPs, and accounts (by name, by DN, by SPN, the ASA candidates, delegation)."""

from __future__ import annotations

from ldap3 import BASE, LEVEL
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from ...core.errors import PolicyRefused
from ...core.model import (
    UAC_SERVER_TRUST_ACCOUNT,
    UAC_TRUSTED_FOR_DELEGATION,
    Account,
    AccountKind,
    Domain,
    ExchangeServer,
    Forest,
    VirtualDirectory,
    auth_flag_names,
    derive_namespaces,
    role_names,
)
from .. import ldap_errors as le
from ..ldap_errors import InsecureConnection, InvalidInput
from .connection import LdapConnection
from .values import (
    ACCOUNT_ATTRS,
    AUTODISCOVER_KEYWORD,
    VDIR_CLASS_NAMES,
    VDIR_CLASSES,
    Row,
    chunks,
    dns_of_dn,
    filetime_to_datetime,
    host_of,
    rdn_value,
    server_of_dn,
    to_int,
    tree_roots,
    validate_dn,
    validate_spn,
)


class DirectoryReads(LdapConnection):
    """The `DirectoryPort` reads."""

    # --- discovery -------------------------------------------------------------------------------------
    def read_forest(self) -> Forest:
        conf = self.configuration_dn
        rows = self._search(f"CN=Partitions,{conf}", "(&(objectClass=crossRef)(nETBIOSName=*))",
                            ["dnsRoot", "nETBIOSName", "nCName"], LEVEL, what="read the domains of the forest",
                            missing_ok=True)
        domains = [Domain(dns_name=(r.str("dnsRoot") or "").lower(), netbios_name=r.str("nETBIOSName") or "",
                          dn=r.str("nCName") or "") for r in rows]
        root_dn = self._forest_root_dn()
        root = next((d for d in domains if d.dn.lower() == root_dn.lower()), None)
        with self._lock:  # the GC searches need the tree roots: from these domains, not a second read_forest
            if self._tree_roots is None:
                self._tree_roots = tree_roots([d.dn for d in domains if d.dn] or [root_dn])
        sites = [r.str("cn") or rdn_value(r.dn) for r in
                 self._search(f"CN=Sites,{conf}", "(objectClass=site)", ["cn"], LEVEL, what="read the sites",
                              missing_ok=True)]
        return Forest(
            root_domain=root.dns_name if root else dns_of_dn(root_dn),
            domains=domains,
            sites=sorted(sites, key=str.lower),
            forest_functional_level=to_int(self._root1("forestFunctionality")),
            domain_functional_level=to_int(self._root1("domainFunctionality")),
            dc_host_name=self._root1("dnsHostName"),
            configuration_nc=conf,
            schema_nc=self._root1("schemaNamingContext"),
            exchange_organization=self._exchange_organization(),
        )

    def _exchange_organization(self) -> str | None:
        rows = self._search(f"CN=Microsoft Exchange,CN=Services,{self.configuration_dn}",
                            "(objectClass=msExchOrganizationContainer)", ["cn"], LEVEL,
                            what="read the Exchange organisation", missing_ok=True)
        if rows:
            return rows[0].str("cn") or rdn_value(rows[0].dn)
        # Some forests (and schema-less test DCs) hold the organisation as a plain container: the server
        # objects' DNs still name it (CN=<server>,CN=Servers,CN=<group>,CN=Administrative Groups,CN=<org>,...).
        for server in self.exchange_servers():
            parts = parse_dn(server.dn or "", escape=False)
            for i, (attr, value, _sep) in enumerate(parts[:-1]):
                if attr.lower() == "cn" and value.lower() == "administrative groups":
                    return parts[i + 1][1]
        return None

    def exchange_servers(self) -> list[ExchangeServer]:
        rows = self._search(self.configuration_dn, "(objectClass=msExchExchangeServer)",
                            ["cn", "serialNumber", "networkAddress", "msExchCurrentServerRoles", "msExchServerSite"],
                            what="read the Exchange servers")
        out = []
        for r in rows:
            name = r.str("cn") or rdn_value(r.dn)
            fqdn = next((a.split(":", 1)[1] for a in r.strs("networkAddress")
                         if a.lower().startswith("ncacn_ip_tcp:")), "") or name
            site_dn = r.str("msExchServerSite")
            out.append(ExchangeServer(
                name=name, fqdn=fqdn.lower(), version=r.str("serialNumber") or "",
                roles=role_names(r.int("msExchCurrentServerRoles") or 0),
                site=rdn_value(site_dn) if site_dn else "", dn=r.dn))
        out.sort(key=lambda s: s.name.lower())
        self._remember("servers", out)
        self._prefetch_accounts([f"{s.name}$" for s in out])  # discovery reads each server's account next
        return out

    def _prefetch_accounts(self, sams: list[str]) -> None:
        for chunk in chunks(sams, 50):
            flt = "(&(objectClass=user)(|" + "".join(f"(sAMAccountName={escape_filter_chars(s)})" for s in chunk) + "))"
            for a in self._accounts(flt, what="read the Exchange servers' computer accounts"):
                self._remember(f"sam:{a.sam.lower()}", a)

    def virtual_directories(self) -> list[VirtualDirectory]:
        flt = "(|" + "".join(f"(objectClass={escape_filter_chars(c)})" for c in VDIR_CLASS_NAMES.values()) + ")"
        try:
            rows = self._search(self.configuration_dn, flt,
                                ["objectClass", "msExchInternalHostName", "msExchExternalHostName",
                                 "msExchInternalAuthenticationMethods"], what="read the virtual directories")
        except PolicyRefused:  # schema without the Exchange virtual directory classes
            return []
        out = []
        for r in rows:
            classes = {c.lower() for c in r.strs("objectClass")}
            service = next((VDIR_CLASSES[c] for c in classes if c in VDIR_CLASSES), None)
            server = server_of_dn(r.dn)
            if service is None or server is None:
                continue
            out.append(VirtualDirectory(
                server=server, service=service, internal_host=host_of(r.str("msExchInternalHostName")),
                external_host=host_of(r.str("msExchExternalHostName")),
                auth_methods=auth_flag_names(r.int("msExchInternalAuthenticationMethods") or 0)))
        out.sort(key=lambda v: (v.server.lower(), v.service.value))
        return self._remember("vdirs", out)

    def autodiscover_scps(self) -> dict[str, str]:
        flt = f"(&(objectClass=serviceConnectionPoint)(keywords={escape_filter_chars(AUTODISCOVER_KEYWORD)}))"
        rows = self._search(self.configuration_dn, flt, ["cn", "serviceBindingInformation"],
                            what="read the Autodiscover service connection points")
        out: dict[str, str] = {}
        for r in rows:
            url = next((u for u in r.strs("serviceBindingInformation") if u.lower().startswith("http")), None)
            if url:
                out[r.str("cn") or rdn_value(r.dn)] = url
        return self._remember("scps", dict(sorted(out.items(), key=lambda kv: kv[0].lower())))

    # --- accounts --------------------------------------------------------------------------------------
    def _account(self, r: Row) -> Account:
        classes = {c.lower() for c in r.strs("objectClass")}
        kind = AccountKind.from_object_classes(classes)
        return Account(
            dn=r.dn, sam=r.str("sAMAccountName") or rdn_value(r.dn), kind=kind, uac=r.int("userAccountControl") or 0,
            spns=r.strs("servicePrincipalName"), enctypes=r.int("msDS-SupportedEncryptionTypes"),
            pwd_last_set=filetime_to_datetime(r.int("pwdLastSet")), key_version=r.int("msDS-KeyVersionNumber"),
            delegate_to=r.strs("msDS-AllowedToDelegateTo"), upn=r.str("userPrincipalName"),
            member_of=r.strs("memberOf"), description=r.str("description"))

    def _accounts(self, flt: str, *, base: str | None = None, gc: bool = False, what: str) -> list[Account]:
        return [self._account(r) for r in self._search(base if base is not None else self.base_dn, flt,
                                                       ACCOUNT_ATTRS, gc=gc, what=what)]

    def _forest_accounts(self, flt: str, what: str) -> list[Account]:
        """Forest-wide through the GC when configured (then re-read full attributes of the accounts of
        our own domain from the DC: the GC holds only a partial set, without the encryption types). When the
        GC cannot be reached the lookup falls back to this domain, and `spn_lookup_scope` says so."""
        if self._gc_server is None or self._gc_failed is not None:
            return self._accounts(flt, what=what)
        try:
            partial = [a for b in self._gc_bases() for a in self._accounts(flt, base=b, gc=True, what=what)]
        except (le.ConnectionFailed, le.OperationTimeout) as exc:
            if isinstance(exc, InsecureConnection):
                raise
            with self._lock:
                self._gc_failed = exc.problem
                self._reset(True)
            return self._accounts(flt, what=what)
        base = self.base_dn.lower()
        local = [a.dn for a in partial if a.dn.lower().endswith(base)]
        full = {a.dn.lower(): a for a in self._by_dns(local, what)}
        return [full.get(a.dn.lower(), a) for a in partial]

    def _gc_bases(self) -> list[str]:
        """The roots of the forest's domain trees: a GC search under each covers every domain."""
        with self._lock:
            if self._tree_roots is None:
                self._tree_roots = tree_roots([d.dn for d in self.read_forest().domains if d.dn]
                                               or [self._forest_root_dn()])
            return self._tree_roots

    def _by_dns(self, dns: list[str], what: str) -> list[Account]:
        out: list[Account] = []
        for chunk in chunks(dns, 50):
            flt = "(|" + "".join(f"(distinguishedName={escape_filter_chars(d)})" for d in chunk) + ")"
            out += self._accounts(flt, what=what)
        return out

    def spn_lookup_scope(self) -> str:
        """For the evidence: how the SPN owners were looked up."""
        if self._gc_server is None:
            return f"this domain only ({self.base_dn}): no global catalog was configured"
        if self._gc_failed is not None:
            return (f"this domain only ({self.base_dn}): the global catalog {self._where(self._gc_server)} could not "
                    f"be used ({self._gc_failed})")
        return f"forest-wide, through the global catalog {self._where(self._gc_server)}"

    def find_unconstrained_delegation(self) -> list[Account]:
        """Forest-wide: the accounts trusted for unconstrained delegation (TRUSTED_FOR_DELEGATION) that are not
        domain controllers (SERVER_TRUST_ACCOUNT). The bitwise matching rule narrows the search (the lab answers
        it as a DC does); the flags are tested again here."""
        bit = f"(userAccountControl:1.2.840.113556.1.4.803:={UAC_TRUSTED_FOR_DELEGATION})"
        flt = f"(&(objectClass=user){bit})"
        found = self._forest_accounts(flt, "look for accounts trusted for unconstrained delegation")
        return sorted((a for a in found if a.has_flag(UAC_TRUSTED_FOR_DELEGATION)
                       and not a.has_flag(UAC_SERVER_TRUST_ACCOUNT)), key=lambda a: a.dn.lower())

    def find_spn_owners(self, spn: str) -> list[Account]:
        validate_spn(spn)
        return self._forest_accounts(f"(servicePrincipalName={escape_filter_chars(spn)})",
                                     f"look up the owners of {spn}")

    def find_accounts_with_http_spns(self, hosts: list[str]) -> dict[str, list[Account]]:
        wanted = sorted({h.strip().lower().rstrip(".") for h in hosts if h and h.strip()})
        out: dict[str, list[Account]] = {h: [] for h in wanted}
        for chunk in chunks(wanted, 50):
            for h in chunk:
                validate_spn(f"HTTP/{h}")
            flt = "(|" + "".join(f"(servicePrincipalName={escape_filter_chars('HTTP/' + h)})" for h in chunk) + ")"
            for a in self._forest_accounts(flt, "look up the owners of the HTTP SPNs"):
                for spn in a.spns:
                    cls, _, host = spn.partition("/")
                    host = host.lower()
                    if cls.lower() == "http" and host in out and all(x.dn != a.dn for x in out[host]):
                        out[host].append(a)
        return out

    def get_account(self, sam: str) -> Account | None:
        if not sam or "\x00" in sam:
            raise InvalidInput(f"{sam!r} is not an account name.", "Give the sAMAccountName (computers end in $).")
        recent = self._recall(f"sam:{sam.lower()}")
        if recent is not None:
            return recent
        found = self._accounts(f"(&(objectClass=user)(sAMAccountName={escape_filter_chars(sam)}))",
                               what=f"read the account {sam}")
        return found[0] if found else None

    def get_account_by_dn(self, dn: str) -> Account | None:
        validate_dn(dn)
        rows = self._search(dn, "(objectClass=user)", ACCOUNT_ATTRS, BASE, what=f"read {dn}", missing_ok=True)
        return self._account(rows[0]) if rows else None

    def find_asa_candidates(self) -> list[Account]:
        # Discovery has just read these: reuse them when they are seconds old.
        servers = self._recall("servers") or self.exchange_servers()
        vdirs = self._recall("vdirs")
        scps = self._recall("scps")
        namespaces = derive_namespaces(vdirs if vdirs is not None else self.virtual_directories(),
                                       scps if scps is not None else self.autodiscover_scps())
        hosts = [n.host for n in namespaces] + [s.fqdn for s in servers if s.fqdn]
        found: dict[str, Account] = {}
        for owners in self.find_accounts_with_http_spns(hosts).values():
            for a in owners:
                found[a.dn.lower()] = a
        for a in self._accounts("(&(objectClass=user)(description=*alternate service account*))",
                                what="look for alternate service accounts"):
            found.setdefault(a.dn.lower(), a)
        own = {f"{s.name}$".lower() for s in servers}
        return sorted((a for a in found.values() if a.sam.lower() not in own), key=lambda a: a.dn.lower())

    def protected_users(self) -> list[str]:
        rows = self._search(self.base_dn, "(&(objectClass=group)(sAMAccountName=Protected Users))", ["member"],
                            what="read the Protected Users group")
        return [m for r in rows for m in r.strs("member")]

