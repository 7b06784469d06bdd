"""The lab's Active Directory: ldap3's MOCK_SYNC server holding an AD-shaped tree built from a scenario.

The wizard reaches it through the real adapter (`LdapDirectory.from_server`), so every search filter,
paging loop, modify request and error translation is the production code. What the mock does not know
about AD, this module teaches it, each item the way a Windows DC behaves:

- Schema: ldap3's offline Windows 2012 R2 schema has no Exchange classes, and the mock refuses attributes
  and classes its schema does not list. Exchange's schema extension adds them to a real forest; here the
  same few definitions (`EXCHANGE_ATTRIBUTES`, `EXCHANGE_CLASSES`) are added to the schema object the mock
  uses. Their OIDs are private placeholders, not Exchange's: nothing here reads OIDs.
- rootDSE: the mock serves no rootDSE entry; the adapter reads what ldap3 read at bind time
  (`server.info`), so the lab attaches a DSA info with the scenario's naming contexts and levels.
- Behaviour (installed on each connection by `_teach_ad`): a duplicate SPN is refused with
  constraintViolation (19) like AD; a duplicate sAMAccountName with entryAlreadyExists (68); `unicodePwd`
  needs an encrypted channel, is never stored, sets pwdLastSet and increments msDS-KeyVersionNumber; a new
  user starts disabled (514) with pwdLastSet 0, a new account at key version 1.
- Bitwise matching rules (`LDAP_MATCHING_RULE_BIT_AND` 1.2.840.113556.1.4.803 and `_BIT_OR` .804), which the
  mock refuses: answered as a DC answers them (the unconstrained-delegation search sends one).
- Indexes, as a DC has them: the mock lists every entry of a search's scope and tests every filter term
  against each, so a 50-term OR of sAMAccountName or servicePrincipalName equalities costs 50 passes over
  the directory, and a read of one account a pass. On the adapter's connections the lab answers equality
  terms on the text attributes AD indexes, presence terms and the bitwise rules from an index per attribute
  (built on first use, then kept up to date by each write, which moves only the written entry's values);
  when the indexes narrow the filter, only what they found is tested for the scope; other terms are tested
  as the mock does, on the entries the indexed terms left. The answers are the mock's, only cheaper.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta
from functools import lru_cache

from ldap3 import ALL_ATTRIBUTES, MOCK_SYNC, NONE, Connection, Server
from ldap3.operation.add import add_request_to_dict
from ldap3.operation.delete import delete_request_to_dict
from ldap3.operation.modify import modify_request_to_dict
from ldap3.operation.modifyDn import modify_dn_request_to_dict
from ldap3.operation.search import AND, MATCH_EQUAL, MATCH_EXTENSIBLE, MATCH_PRESENT, MATCH_SUBSTRING, OR, ROOT, \
    filter_to_string, parse_filter
from ldap3.utils.conv import escape_filter_chars, ldap_escape_to_bytes
from ldap3.protocol.rfc4512 import AttributeTypeInfo, DsaInfo, ObjectClassInfo, SchemaInfo
from ldap3.protocol.schemas.ad2012R2 import ad_2012_r2_schema
from ldap3.core.exceptions import LDAPInvalidValueError
from ldap3.protocol.formatters.standard import find_attribute_validator
from ldap3.utils.ciDict import CaseInsensitiveDict
from ldap3.utils.conv import to_raw
from ldap3.utils.dn import escape_rdn, parse_dn, safe_dn, safe_rdn, to_dn

from ..adapters.ldap import AUTODISCOVER_KEYWORD, LdapDirectory, LdapSettings, datetime_to_filetime, \
    filetime_to_datetime
from ..core.model import AUTH_FLAG_BITS, UAC_ACCOUNTDISABLE, UAC_DONT_EXPIRE_PASSWD, UAC_NOT_DELEGATED, \
    UAC_TRUSTED_FOR_DELEGATION, UAC_TRUSTED_TO_AUTH_FOR_DELEGATION, AccountKind, Service
from ..core.secrets import Secret
from .scenario import LabAccount, LabServer, Scenario, collection_paused, password_digest, scenario_digest
from .snapshot import ROLE_VALUES, account_dn, all_accounts, configuration_dn, exchange_org_dn, \
    exchange_server_dn, servers_container_dn, site_dn

INTEGER = "1.3.6.1.4.1.1466.115.121.1.27"
DIRECTORY_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
DN_SYNTAX = "1.3.6.1.4.1.1466.115.121.1.12"
PRIVATE_ARC = "1.3.6.1.4.1.99999.4242"  # placeholder OIDs for the lab's schema additions

EXCHANGE_ATTRIBUTES = [  # name, syntax, single-valued
    ("msExchCurrentServerRoles", INTEGER, True),
    ("msExchServerSite", DN_SYNTAX, True),
    ("msExchInternalHostName", DIRECTORY_STRING, True),
    ("msExchExternalHostName", DIRECTORY_STRING, True),
    ("msExchInternalAuthenticationMethods", INTEGER, True),
    ("msExchExternalAuthenticationMethods", INTEGER, True),
]
EXCHANGE_CLASSES = [  # name, superior
    ("msExchConfigurationContainer", "container"),
    ("msExchOrganizationContainer", "container"),
    ("msExchAdminGroupContainer", "container"),
    ("msExchAdminGroup", "container"),
    ("msExchServersContainer", "container"),
    ("msExchExchangeServer", "server"),
    ("msExchVirtualDirectory", "container"),
    ("msExchRpcHttpVirtualDirectory", "msExchVirtualDirectory"),
    ("msExchMapiVirtualDirectory", "msExchVirtualDirectory"),
    ("msExchMobileVirtualDirectory", "msExchVirtualDirectory"),
    ("msExchWebServicesVirtualDirectory", "msExchVirtualDirectory"),
    ("msExchOWAVirtualDirectory", "msExchVirtualDirectory"),
]
# Virtual directory objects: class, CN, URL path (None: the attribute holds a host, as for Outlook Anywhere)
VDIR_OBJECTS = {
    Service.OUTLOOK_ANYWHERE: ("msExchRpcHttpVirtualDirectory", "Rpc (Default Web Site)", None),
    Service.MAPI: ("msExchMapiVirtualDirectory", "mapi (Default Web Site)", "/mapi"),
    Service.EAS: ("msExchMobileVirtualDirectory", "Microsoft-Server-ActiveSync (Default Web Site)",
                  "/Microsoft-Server-ActiveSync"),
    Service.EWS: ("msExchWebServicesVirtualDirectory", "EWS (Default Web Site)", "/EWS/Exchange.asmx"),
    Service.OWA: ("msExchOWAVirtualDirectory", "owa (Default Web Site)", "/owa"),
}
AUTH_BITS = {name: bit for bit, name in AUTH_FLAG_BITS.items()}
# Text attributes whose equality the lab answers from an index (case-insensitive, as the mock compares them).
INDEXED_ATTRIBUTES = frozenset(a.lower() for a in (
    "objectClass", "sAMAccountName", "servicePrincipalName", "distinguishedName", "userPrincipalName", "cn",
    "keywords", "nETBIOSName", "dnsRoot", "member", "memberOf", "msDS-AllowedToDelegateTo"))
LEVEL_SCOPE, SUBTREE_SCOPE = 1, 2  # a search request's scope, as the mock reads it
CONSTRAINT_VIOLATION = 19
UNWILLING_TO_PERFORM = 53
ENTRY_ALREADY_EXISTS = 68


@lru_cache(maxsize=1)
def lab_schema() -> SchemaInfo:
    """Windows 2012 R2's schema plus the Exchange definitions the lab uses (parsed once per process). Its 264
    DIT content rules are left out: nothing in ldap3 (the mock included) reads them, and parsing them was a third
    of the parse, paid by every lab command."""
    raw = json.loads(ad_2012_r2_schema)
    raw["raw"]["dITContentRules"] = []
    schema = SchemaInfo.from_json(json.dumps(raw))
    for i, (name, syntax, single) in enumerate(EXCHANGE_ATTRIBUTES, 1):
        schema.attribute_types[name] = AttributeTypeInfo(oid=f"{PRIVATE_ARC}.1.{i}", name=[name], syntax=syntax,
                                                         single_value=single)
    for i, (name, superior) in enumerate(EXCHANGE_CLASSES, 1):
        schema.object_classes[name] = ObjectClassInfo(oid=f"{PRIVATE_ARC}.2.{i}", name=[name], superior=[superior],
                                                      kind=1)
    return schema


class LabDirectory:
    """The scenario's directory. `port()` gives the wizard's real LDAP adapter bound to it."""

    def __init__(self, scenario: Scenario) -> None:
        self._lock = threading.RLock()
        self._index = _AttributeIndex()
        self._accounts_cache: tuple[int, list[LabAccount]] | None = None
        self._safe_dns: dict[str, str] = {}
        self._rdns: dict[str, list[tuple[str, bytes]]] = {}
        self._safe_rdns: dict[str, str] = {}
        self._preparers: dict[str, tuple] = {}
        self.reset(scenario)

    # --- lifecycle ---------------------------------------------------------------------------------------
    def reset(self, scenario: Scenario) -> None:
        """Rebuild the directory exactly as the scenario describes it (the lab's "reset" action)."""
        with self._lock:
            self.scenario = scenario
            self._started = time.monotonic()
            host = f"dc1.{scenario.domain}"
            if getattr(self, "server", None) is not None and self.host == host:
                # in place: the ports (connections) already open on this directory see the reset
                with self.server.dit_lock:
                    self.server.dit.clear()
            else:
                self.host = host
                self.server = self._make_server(636)
                self.gc_server = self._make_server(3269)
                self.server.dit = CaseInsensitiveDict()
                self.gc_server.dit = self.server.dit  # one directory, reachable as DC and as global catalog
                self.gc_server.dit_lock = self.server.dit_lock
            self.admin_dn = f"CN={escape_rdn(self._admin_sam())},CN=Users,{scenario.domain_dn}"
            self._digests: dict[str, str] = {}  # dn (lower) -> digest of a password set through LDAP
            with collection_paused():
                self._load()
            self._index.clear()

    @property
    def generation(self) -> int:
        """Changes with every write to the directory (the simulated Kerberos keys its view on it)."""
        return self._index.generation

    def _make_server(self, port: int) -> Server:
        server = Server(self.host, port=port, use_ssl=True, get_info=NONE)
        server.attach_schema_info(lab_schema())
        server.attach_dsa_info(self._dsa_info())
        return server

    def _admin_sam(self) -> str:
        return self.scenario.admin_user.split("\\")[-1] or "Administrator"

    def now(self) -> datetime:
        """The lab clock: the scenario's `now`, moving forward with real time from the last reset."""
        return self.scenario.now + timedelta(seconds=time.monotonic() - self._started)

    def port(self) -> LdapDirectory:
        """The real adapter, bound over the (simulated) LDAPS channel with the lab administrator."""
        s = self.scenario
        settings = LdapSettings(host=self.host, mode="ldaps", bind="simple", user=self.admin_dn,
                                password=Secret(s.admin_password), use_global_catalog=True)
        return LdapDirectory.from_server(
            self.server, settings, gc_server=self.gc_server, client_strategy=MOCK_SYNC,
            connection_hook=self._teach_ad,
            label=f"{self.host} (training lab: simulated LDAPS 636 and global catalog 3269)")

    # --- building the tree -------------------------------------------------------------------------------
    def _dsa_info(self) -> DsaInfo:
        s = self.scenario
        conf = configuration_dn(s)
        attrs = {
            "defaultNamingContext": [s.domain_dn], "rootDomainNamingContext": [s.domain_dn],
            "configurationNamingContext": [conf], "schemaNamingContext": [f"CN=Schema,{conf}"],
            "namingContexts": [s.domain_dn, conf, f"CN=Schema,{conf}"], "dnsHostName": [self.host],
            "domainFunctionality": ["7"], "forestFunctionality": ["7"], "domainControllerFunctionality": ["7"],
            "isGlobalCatalogReady": ["TRUE"], "supportedLDAPVersion": ["3"],
        }
        return DsaInfo(attrs, {k: [v.encode() for v in vals] for k, vals in attrs.items()})

    def _add(self, conn: Connection, dn: str, object_class: str, attrs: dict | None = None) -> None:
        attrs = dict(attrs or {})
        attrs["objectClass"] = [object_class]
        attrs["distinguishedName"] = dn
        if not self._insert(conn, dn, attrs):
            raise RuntimeError(f"lab directory: cannot add {dn}")  # a bug in the lab, not a user error

    def _insert(self, conn: Connection, dn: str, attrs: dict) -> bool:
        """The entry exactly as the mock's `add_entry` stores it, built without its per-entry costs: the DN is
        normalized once per parent (not parsed whole for every entry), each RDN once, the object class hierarchy
        once per class and each attribute's validator looked up once. A directory of 1,000 servers has some
        11,000 entries."""
        strategy, dit = conn.strategy, self.server.dit
        escaped_dn = self._safe_dn(dn)
        with self.server.dit_lock:
            if escaped_dn in dit:
                return False
            entry = CaseInsensitiveDict()
            for attribute, values in attrs.items():
                if attribute in strategy.operational_attributes:
                    continue
                values = list(values) if isinstance(values, (list, tuple)) else [values]
                single, prepare = self._preparer(strategy, attribute)
                if single and len(values) > 1:
                    return False
                if attribute.lower() == "objectclass":
                    classes: set[str] = set()
                    for object_class in values:
                        if not _known_class(object_class):
                            return False
                        classes |= _class_hierarchy(object_class)
                    entry["objectClass"] = [to_raw(c) for c in classes]
                else:
                    entry[attribute] = [prepare(v) for v in values]
            split = _first_separator(escaped_dn)  # the RDN alone: parsing the whole DN gives the same
            for attr, value in self._rdn_parts(escaped_dn if split < 0 else escaped_dn[:split]):
                if attr not in entry:
                    entry[attr] = [value]
                elif value not in entry[attr]:
                    entry[attr].append(value)
            entry["entryDN"] = [to_raw(escaped_dn)]
            dit[escaped_dn] = entry
            return True

    def _preparer(self, strategy, attribute: str):
        """(single-valued?, the mock's `_prepare_value` for the attribute) with the schema looked up once."""
        hit = self._preparers.get(attribute)
        if hit is None:
            schema = self.server.schema
            validator = find_attribute_validator(schema, attribute, strategy.custom_validators)

            prepared: dict[tuple[type, object], bytes] = {}  # values repeat: roles, hosts, auth flags, sites

            def prepare(value):  # as MockBaseStrategy._prepare_value(attribute, value, validate=True)
                key = (type(value), value)
                try:
                    raw = prepared.get(key)
                except TypeError:  # not hashable: not remembered
                    key, raw = None, None
                if raw is not None:
                    return raw
                validated = validator(value)
                if validated is False:
                    raise LDAPInvalidValueError(f"value non valid for attribute '{attribute}'")
                raw = to_raw(value if validated is True else validated)
                if not isinstance(raw, bytes):
                    raise LDAPInvalidValueError(f"the value of {attribute} must be bytes")
                if key is not None:
                    prepared[key] = raw
                return raw

            hit = self._preparers[attribute] = (bool(schema.attribute_types[attribute].single_value), prepare)
        return hit

    def _rdn_parts(self, rdn: str) -> list[tuple[str, bytes]]:
        """safe_rdn(rdn, decompose=True), each value as the mock stores it (remembered per RDN)."""
        hit = self._rdns.get(rdn)
        if hit is None:
            hit = self._rdns[rdn] = [(attr, to_raw(value)) for attr, value in safe_rdn(rdn, decompose=True)]
        return hit

    def _safe_dn(self, dn: str) -> str:
        """ldap3's safe_dn(dn), computed as safe_dn(first RDN) + the parent's, which is remembered."""
        cache = self._safe_dns
        hit = cache.get(dn)
        if hit is not None:
            return hit
        split = _first_separator(dn)
        if split < 0 or "@" in dn or dn.startswith("<"):
            out = safe_dn(dn)
        else:
            rdn = dn[:split]
            safe = self._safe_rdns.get(rdn)
            if safe is None:
                safe = self._safe_rdns[rdn] = safe_dn(rdn)
            out = safe + "," + self._safe_dn(dn[split + 1:])
        cache[dn] = out
        return out

    def _load(self) -> None:
        s = self.scenario
        conn = Connection(self.server, client_strategy=MOCK_SYNC)
        dom, conf = s.domain_dn, configuration_dn(s)
        self._add(conn, dom, "domainDNS")
        for cn in ("Users", "Computers", "Managed Service Accounts"):
            self._add(conn, f"CN={cn},{dom}", "container")
        accounts = all_accounts(s)
        for ou in sorted({self._parent(account_dn(s, a)) for a in accounts}, key=lambda d: len(d)):
            self._ensure_parents(conn, ou)
        self.protected_dn = f"CN=Protected Users,CN=Users,{dom}"
        members = [account_dn(s, a) for a in accounts if a.protected_user]
        self._add(conn, self.protected_dn, "group", {"sAMAccountName": "Protected Users", "member": members}
                  if members else {"sAMAccountName": "Protected Users"})
        if not any(a.sam.lower() == self._admin_sam().lower() for a in accounts):
            self._add(conn, self.admin_dn, "user", {
                "sAMAccountName": self._admin_sam(), "userAccountControl": 0x200 | UAC_DONT_EXPIRE_PASSWD,
                "userPassword": s.admin_password, "pwdLastSet": datetime_to_filetime(s.now)})
        for a in accounts:
            self._add(conn, account_dn(s, a), _object_class(a), self._account_attrs(a))
        if any(a.sam.lower() == self._admin_sam().lower() for a in accounts):
            self.admin_dn = next(account_dn(s, a) for a in accounts if a.sam.lower() == self._admin_sam().lower())
            self.server.dit[self.admin_dn]["userPassword"] = [s.admin_password.encode()]
        # configuration partition
        self._add(conn, conf, "configuration")
        self._add(conn, f"CN=Partitions,{conf}", "crossRefContainer")
        self._add(conn, f"CN={s.netbios},CN=Partitions,{conf}", "crossRef", {
            "nCName": dom, "dnsRoot": s.domain, "nETBIOSName": s.netbios, "systemFlags": 3})
        self._add(conn, f"CN=Sites,{conf}", "sitesContainer")
        for site in s.sites:
            self._add(conn, site_dn(s, site), "site")
        self._add(conn, f"CN=Services,{conf}", "container")
        self._add(conn, f"CN=Microsoft Exchange,CN=Services,{conf}", "msExchConfigurationContainer")
        org = exchange_org_dn(s)
        self._add(conn, org, "msExchOrganizationContainer")
        self._add(conn, f"CN=Administrative Groups,{org}", "msExchAdminGroupContainer")
        self._add(conn, self._parent(servers_container_dn(s)), "msExchAdminGroup")
        self._add(conn, servers_container_dn(s), "msExchServersContainer")
        for server in s.servers:
            self._add_server(conn, server)

    def _add_server(self, conn: Connection, server: LabServer) -> None:
        s = self.scenario
        dn = exchange_server_dn(s, server)
        self._add(conn, dn, "msExchExchangeServer", {
            "serialNumber": server.version,
            "networkAddress": [f"ncacn_ip_tcp:{server.fqdn}", f"netbios:{server.name.upper()}"],
            "msExchCurrentServerRoles": sum(ROLE_VALUES.get(r, 0) for r in server.roles),
            "msExchServerSite": site_dn(s, server.site)})
        protocols = f"CN=Protocols,{dn}"
        self._add(conn, protocols, "container")
        self._add(conn, f"CN=HTTP,{protocols}", "container")
        for service, v in server.vdirs.items():
            if service not in VDIR_OBJECTS:
                continue
            cls, cn, path = VDIR_OBJECTS[service]
            attrs: dict = {"msExchInternalAuthenticationMethods": sum(AUTH_BITS.get(m, 0) for m in v.auth_methods)}
            for attr, host in (("msExchInternalHostName", v.internal_host), ("msExchExternalHostName", v.external_host)):
                if host:
                    attrs[attr] = host if path is None else f"https://{host}{path}"
            self._add(conn, f"CN={escape_rdn(cn)},CN=HTTP,{protocols}", cls, attrs)
        auto = server.vdirs.get(Service.AUTODISCOVER)
        if auto is not None and auto.internal_host:
            self._add(conn, f"CN=Autodiscover,{protocols}", "container")
            self._add(conn, f"CN={server.name},CN=Autodiscover,{protocols}", "serviceConnectionPoint", {
                "keywords": [AUTODISCOVER_KEYWORD, f"Site={server.site}"],
                "serviceBindingInformation": f"https://{auto.internal_host}/Autodiscover/Autodiscover.xml",
                "serviceClassName": "ms-Exchange-AutoDiscover-Service", "serviceDNSName": server.fqdn})

    def _account_attrs(self, a: LabAccount) -> dict:
        from .snapshot import account_uac

        attrs: dict = {"sAMAccountName": a.sam, "userAccountControl": account_uac(a),
                       "pwdLastSet": datetime_to_filetime(a.pwd_last_set) if a.pwd_last_set else 0,
                       "msDS-KeyVersionNumber": a.key_version}
        if a.spns:
            attrs["servicePrincipalName"] = list(a.spns)
        if a.enctypes is not None:
            attrs["msDS-SupportedEncryptionTypes"] = a.enctypes
        if a.delegate_to:
            attrs["msDS-AllowedToDelegateTo"] = list(a.delegate_to)
        if a.description:
            attrs["description"] = a.description
        if a.upn:
            attrs["userPrincipalName"] = a.upn
        if a.protected_user:
            attrs["memberOf"] = [self.protected_dn]
        return attrs

    @staticmethod
    def _parent(dn: str) -> str:
        parts = parse_dn(dn, escape=True)
        return ",".join(f"{a}={v}" for a, v, _ in parts[1:])

    def _ensure_parents(self, conn: Connection, dn: str) -> None:
        if dn.lower() == self.scenario.domain_dn.lower() or dn in self.server.dit:
            return
        self._ensure_parents(conn, self._parent(dn))
        first = parse_dn(dn, escape=False)[0][0].lower()
        self._add(conn, dn, "organizationalUnit" if first == "ou" else "container")

    # --- AD behaviour the mock lacks -----------------------------------------------------------------------
    def _teach_ad(self, conn: Connection) -> None:
        strategy = conn.strategy
        plain_add, plain_modify = strategy.mock_add, strategy.mock_modify
        plain_delete, plain_modify_dn = strategy.mock_delete, strategy.mock_modify_dn
        plain_evaluate, plain_execute = strategy.evaluate_filter_node, strategy._execute_search
        plain_search = strategy.mock_search
        index = self._index
        sent_filter: list[str | None] = [None]  # the filter of the search in progress, as the client sent it

        result = _result

        def mock_add(request_message, controls):
            request = add_request_to_dict(request_message)
            attrs = {k.lower(): [_text(v) for v in vals] for k, vals in request["attributes"].items()}
            dn = request["entry"]
            with self._lock:
                for spn in attrs.get("serviceprincipalname", []):
                    if self._spn_owner(spn, exclude=dn):
                        return result(CONSTRAINT_VIOLATION, f"00002083: spn[{spn}] would cause a conflict")
                sam = (attrs.get("samaccountname") or [None])[0]
                if sam and self._sam_owner(sam):
                    return result(ENTRY_ALREADY_EXISTS, f"00000524: the account name {sam} is already in use")

                def add() -> dict:
                    answer = plain_add(request_message, controls)
                    if answer["resultCode"] == 0:
                        self._new_account_defaults(dn, attrs)
                    return answer

                return self._written([safe_dn(dn)], add)

        def mock_modify(request_message, controls):
            request = modify_request_to_dict(request_message)
            dn, changes = request["entry"], request["changes"]
            names = [c["attribute"]["type"].lower() for c in changes]
            if "unicodepwd" in names and [c["operation"] for c in changes] == [1, 0]:
                if names != ["unicodepwd", "unicodepwd"]:
                    return result(UNWILLING_TO_PERFORM, "the lab changes unicodePwd only on its own")
                if not conn.server.ssl:
                    return result(UNWILLING_TO_PERFORM, "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)")
                return self._change_password(dn, [bytes(c["modification"]["vals"][0])
                                                  for c in request_message["changes"]])
            if "unicodepwd" in names:
                if names != ["unicodepwd"]:
                    return result(UNWILLING_TO_PERFORM, "the lab sets unicodePwd only on its own")
                if not conn.server.ssl:
                    return result(UNWILLING_TO_PERFORM, "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)")
                text = _password_text(bytes(request_message["changes"][0]["modification"]["vals"][0]))
                if text is None:
                    return result(UNWILLING_TO_PERFORM, "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)")
                with self._lock:
                    if dn not in self.server.dit:
                        return result(32, "0000208D: NameErr: no such object")
                    if not self.scenario.admin_can_reset_asa and self._is_scenario_asa(dn):
                        return result(50, "00000005: SecErr: DSID-03152E29, problem 4003 "
                                          "(INSUFFICIENT_ACCESS_RIGHTS), data 0")
                    self._password_changed(dn, self.now(), password_digest(text))
                del text
                return result(0, "")
            with self._lock:
                for c in changes:
                    if c["attribute"]["type"].lower() == "serviceprincipalname" and c["operation"] in (0, 2):
                        for v in c["attribute"]["value"]:
                            if self._spn_owner(_text(v), exclude=dn):
                                return result(CONSTRAINT_VIOLATION, f"00002083: spn[{_text(v)}] would cause a conflict")
                return self._written([safe_dn(dn)], lambda: plain_modify(request_message, controls))

        def mock_delete(request_message, controls):
            dn = safe_dn(delete_request_to_dict(request_message)["entry"])
            return self._written([dn], lambda: plain_delete(request_message, controls))

        def mock_modify_dn(request_message, controls):
            # the entry's old and new names, computed as the mock computes them (a move may replace an entry)
            request = modify_dn_request_to_dict(request_message)
            try:
                dn = safe_dn(request["entry"])
                new_rdn, superior = request["newRdn"], request["newSuperior"]
                parts = to_dn(dn)
                if superior and new_rdn:
                    names = [dn, safe_dn(parts[0] + "," + safe_dn(superior))]
                elif new_rdn:
                    names = [dn, safe_dn(new_rdn + "," + safe_dn(parts[1:]))]
                else:
                    names = [dn]
            except Exception:  # a name the mock cannot parse either: it answers; the indexes are rebuilt
                with self._lock:
                    try:
                        return plain_modify_dn(request_message, controls)
                    finally:
                        index.clear()
            return self._written(names, lambda: plain_modify_dn(request_message, controls))

        def evaluate_filter_node(node, candidates):
            # the mock's own evaluation calls this for every node below the root: those go straight to it, but
            # for the bitwise matching rules, which the mock lacks and a DC answers
            if node.tag != ROOT or not _indexable_tree(node):
                if node.tag == MATCH_EXTENSIBLE and _bitwise_term(node):
                    return _bitwise_plain(node, candidates, self.server.dit)
                return plain_evaluate(node, candidates)
            with self._lock:
                return index.evaluate(node, set(candidates), self.server.dit, plain_evaluate)

        def mock_search(request_message, controls):
            # ldap3 writes an extensible match back as its ASN.1 dump: the mock would parse that as the filter
            sent_filter[0] = _filter_text(request_message["filter"])
            try:
                return plain_search(request_message, controls)
            finally:
                sent_filter[0] = None

        def execute_search(request):
            """The mock's search, but a filter an index narrows is answered from the index first and the scope
            tested on what it found (the mock lists every entry of the scope first, then tests the filter)."""
            if sent_filter[0] is not None:
                request["filter"] = sent_filter[0]
            scope = request["scope"]
            if scope not in (LEVEL_SCOPE, SUBTREE_SCOPE):
                return plain_execute(request)
            root = parse_filter(request["filter"], conn.server.schema, auto_escape=True, auto_encode=False,
                                validator=conn.server.custom_validator, check_names=conn.check_names)
            base = safe_dn(request["base"])
            with self._lock:
                dit = self.server.dit
                if not (_indexable_tree(root) and _narrows(root)) or base not in dit:
                    answered = None  # the mock's own way (a base that is not an entry: its own answer too)
                else:
                    found = index.evaluate(root, None, dit, plain_evaluate)
                    answered = _search_answer(strategy, request, base, found)
            return plain_execute(request) if answered is None else answered

        strategy.mock_add = mock_add
        strategy.mock_modify = mock_modify
        strategy.mock_delete = mock_delete
        strategy.mock_modify_dn = mock_modify_dn
        strategy.evaluate_filter_node = evaluate_filter_node
        strategy._execute_search = execute_search
        strategy.mock_search = mock_search

    def _written(self, dns: list[str], write):
        """Run a write to the entries named by `dns` (as the mock names them) and keep the indexes up to date
        for those entries only."""
        with self._lock:
            before = self._index.track(self.server.dit, dns)
            try:
                return write()
            finally:
                self._index.update(self.server.dit, before)

    def _spn_owner(self, spn: str, exclude: str) -> str | None:
        with self._lock:
            owners = self._index.lookup(self.server.dit, "servicePrincipalName", spn)
            return next((dn for dn in sorted(owners) if dn.lower() != exclude.lower()), None)

    def _sam_owner(self, sam: str) -> str | None:
        with self._lock:
            return next(iter(sorted(self._index.lookup(self.server.dit, "sAMAccountName", sam))), None)

    def _new_account_defaults(self, dn: str, attrs: dict[str, list[str]]) -> None:
        classes = {c.lower() for c in attrs.get("objectclass", [])}
        if not classes & {"user", "computer"}:
            return
        with self.server.dit_lock:
            entry = self.server.dit[dn]
            entry.setdefault("pwdLastSet", [b"0"])
            entry.setdefault("msDS-KeyVersionNumber", [b"1"])
            entry.setdefault("distinguishedName", [dn.encode()])
            if "computer" not in classes:
                entry.setdefault("userAccountControl", [str(0x200 | UAC_ACCOUNTDISABLE).encode()])

    def _is_scenario_asa(self, dn: str) -> bool:
        asa = (self.scenario.asa or "").lower()
        entry = self.server.dit.get(dn, {})
        return bool(asa) and any(_text(v).lower() == asa for v in entry.get("sAMAccountName", []))

    def _change_password(self, dn: str, values: list[bytes]) -> dict:
        """A password change (the old value deleted, the new one added), as AD answers it: no Reset Password
        right needed (the Change Password right is everyone's on a user), but the old password must be the
        current one (00000056) and the current one at least the minimum password age old (0000052D)."""
        old, new = (_password_text(v) for v in values)
        del values
        if old is None or new is None:
            return _result(UNWILLING_TO_PERFORM, "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)")
        with self._lock:
            entry = self.server.dit.get(dn)
            if entry is None:
                return _result(32, "0000208D: NameErr: no such object")
            if password_digest(old) != self._current_digest(dn):
                return _result(CONSTRAINT_VIOLATION, "00000056: Constraint violation - check_password_restrictions: "
                                                     "The old password specified doesn't match!")
            last = filetime_to_datetime(int(_text(entry.get("pwdLastSet", [b"0"])[0]) or 0))
            now = self.now()
            if last is not None and now - last < timedelta(days=self.scenario.min_password_age_days):
                return _result(CONSTRAINT_VIOLATION, "0000052D: Constraint violation - check_password_restrictions: "
                                                     "password is too young to change!")
            self._password_changed(dn, now, password_digest(new))
        return _result(0, "")

    def _password_changed(self, dn: str, when: datetime, digest: str = "") -> int:
        """A new password: pwdLastSet, msDS-KeyVersionNumber + 1, and the digest of the text when one was
        sent (a roll by Microsoft's script on the lab has no text: the key version's digest stands for it)."""
        if digest:
            self._digests[dn.lower()] = digest
        else:
            self._digests.pop(dn.lower(), None)

        def write() -> int:
            with self.server.dit_lock:
                entry = self.server.dit[dn]
                kvno = int(_text(entry.get("msDS-KeyVersionNumber", [b"1"])[0])) + 1
                entry["pwdLastSet"] = [str(datetime_to_filetime(when)).encode()]
                entry["msDS-KeyVersionNumber"] = [str(kvno).encode()]
            return kvno

        return self._written([safe_dn(dn)], write)

    # --- the lab's own view (for LabWorld, LabExchange, LabKerberos) --------------------------------------
    def _account_dn_by_sam(self, sam: str) -> str | None:
        with self._lock:
            dit = self.server.dit
            found = self._index.lookup(dit, "sAMAccountName", sam) & self._index.lookup(dit, "objectClass", "user")
            if len(found) < 2:
                return next(iter(found), None)
            return next((dn for dn in dit if dn in found), None)  # the first in the directory's order

    def set_account_password_rolled(self, sam: str, when: datetime, digest: str = "") -> int:
        """What RollAlternateServiceAccountPassword.ps1 does to AD: a new password (pwdLastSet = when,
        msDS-KeyVersionNumber + 1, the digest of the password it set). Returns the new key version."""
        with self._lock:
            dn = self._account_dn_by_sam(sam)
            if dn is None:
                raise KeyError(f"no account {sam} in the lab directory")
            return self._password_changed(dn, when, digest)

    def account_key_version(self, sam: str) -> int | None:
        with self._lock:
            dn = self._account_dn_by_sam(sam)
            if dn is None:
                return None
            vals = self.server.dit[dn].get("msDS-KeyVersionNumber")
            return int(_text(vals[0])) if vals else None

    def accounts_snapshot(self) -> tuple[int, list[LabAccount]]:
        """(generation, every account) as `current_accounts`, built once per state of the directory: callers
        share the list and must not change it."""
        with self._lock:
            generation = self.generation
            cached = self._accounts_cache
            if cached is not None and cached[0] == generation:
                return cached
            self._accounts_cache = (generation, self.current_accounts())
            return self._accounts_cache

    def current_accounts(self) -> list[LabAccount]:
        """Every account as it is now in the directory (changes made through the adapter included)."""
        s = self.scenario
        named = {a.sam.lower() for a in s.accounts}
        out: list[LabAccount] = []
        with self._lock:
            for dn, entry in list(self.server.dit.items()):
                classes = {_text(c).lower() for c in entry.get("objectClass", [])}
                if "user" not in classes or (dn.lower() == self.admin_dn.lower() and self._admin_sam().lower() not in named):
                    continue
                out.append(self._lab_account(dn, entry, classes))
        return out

    def _lab_account(self, dn: str, entry: CaseInsensitiveDict, classes: set[str]) -> LabAccount:
        def strs(name: str) -> list[str]:
            return [_text(v) for v in entry.get(name, [])]

        def one(name: str) -> str | None:
            vals = strs(name)
            return vals[0] if vals else None

        kind = AccountKind.from_object_classes(classes)
        uac = int(one("userAccountControl") or 0)
        enc = one("msDS-SupportedEncryptionTypes")
        parent = self._parent(dn)
        suffix = "," + self.scenario.domain_dn
        ou = parent[: -len(suffix)] if parent.lower().endswith(suffix.lower()) else parent
        return LabAccount(
            sam=one("sAMAccountName") or "", kind=kind, ou=ou, enabled=not uac & UAC_ACCOUNTDISABLE,
            spns=strs("servicePrincipalName"), enctypes=int(enc) if enc is not None else None,
            pwd_last_set=filetime_to_datetime(int(one("pwdLastSet") or 0)),
            key_version=int(one("msDS-KeyVersionNumber") or 1), delegate_to=strs("msDS-AllowedToDelegateTo"),
            trusted_to_auth=bool(uac & UAC_TRUSTED_TO_AUTH_FOR_DELEGATION),
            trusted_for_delegation=bool(uac & UAC_TRUSTED_FOR_DELEGATION),
            not_delegated=bool(uac & UAC_NOT_DELEGATED),
            protected_user=any(m.lower() == self.protected_dn.lower() for m in strs("memberOf")),
            dont_expire=bool(uac & UAC_DONT_EXPIRE_PASSWD), description=one("description") or "",
            upn=one("userPrincipalName"), uac=uac, secret_digest=self._digests.get(dn.lower(), ""))

    def account_digest(self, sam: str) -> str | None:
        """The digest of the account's current password (None: no such account)."""
        with self._lock:
            dn = self._account_dn_by_sam(sam)
            return None if dn is None else self._current_digest(dn)

    def _current_digest(self, dn: str) -> str:
        """The digest of the password of the entry at `dn` now: the one set through LDAP, else the one its
        sAMAccountName and key version mean in the scenario file. The lock is held by the caller."""
        entry = self.server.dit[dn]
        vals = entry.get("msDS-KeyVersionNumber")
        kvno = int(_text(vals[0])) if vals else 1
        return self._digests.get(dn.lower()) or scenario_digest(_text(entry.get("sAMAccountName", [b""])[0]), kvno)


def _password_text(value: bytes) -> str | None:
    """The password in a unicodePwd value as AD takes it (UTF-16LE, in double quotes); None if it is not one."""
    text = value.decode("utf-16-le", "replace")
    return text[1:-1] if text.startswith('"') and text.endswith('"') and len(text) > 2 else None


def _result(code: int, message: str) -> dict:
    """An LDAP result as the mock strategy returns it."""
    return {"resultCode": code, "matchedDN": "", "diagnosticMessage": message, "referral": None}


class _AttributeIndex:
    """Equality and presence indexes over the lab's directory, one per attribute: built on first use with one
    pass over the directory, then kept up to date by every write, which moves only the written entries' values
    (`track` before the write, `update` after it). The directory's lock is held around a write and its update,
    and around every use of the indexes."""

    def __init__(self) -> None:
        self.generation = 0  # changes with every write
        self._by_attribute: dict[str, tuple[dict[str, set[str]], set[str]]] = {}
        self._writing = 0

    def clear(self) -> None:
        self.generation += 1
        self._by_attribute = {}

    def attribute(self, dit, name: str) -> tuple[dict[str, set[str]], set[str]]:
        """(lower-cased value -> DNs holding it, DNs holding the attribute at all)."""
        key = name.lower()
        hit = self._by_attribute.get(key)
        if hit is not None:
            return hit
        values: dict[str, set[str]] = {}
        present: set[str] = set()
        for dn, entry in dit.items():
            vals = entry.get(name)
            if vals is None:
                continue
            present.add(dn)
            for v in _listed(vals):
                values.setdefault(_text(v).lower(), set()).add(dn)
        if not self._writing:  # built in the middle of a write it could miss the write's end: used once only
            self._by_attribute[key] = (values, present)
        return values, present

    def lookup(self, dit, name: str, value: str) -> set[str]:
        return self.attribute(dit, name)[0].get(value.lower(), set())

    # --- writes -------------------------------------------------------------------------------------------
    def track(self, dit, dns: list[str]) -> dict[str, tuple[str | None, dict[str, set[str]]]]:
        """Before a write to the entries named by `dns`: what each holds in the indexed attributes, by the
        directory's case-insensitive key (the entry's stored name, its values)."""
        self._writing += 1
        before: dict[str, tuple[str | None, dict[str, set[str]]]] = {}
        for dn in dns:
            ci, stored = _dit_key(dit, dn)
            if ci not in before:
                before[ci] = (stored, self._held(dit, stored))
        return before

    def update(self, dit, before: dict[str, tuple[str | None, dict[str, set[str]]]]) -> None:
        """After the write: the tracked entries' old values out of the indexes, their values now in."""
        try:
            self.generation += 1
            for ci, (old_key, old) in before.items():
                new_key = _stored_key(dit, ci)
                new = self._held(dit, new_key)
                for attribute, (values, present) in self._by_attribute.items():
                    if old_key is not None and attribute in old:
                        present.discard(old_key)
                        for v in old[attribute]:
                            holders = values.get(v)
                            if holders is not None:
                                holders.discard(old_key)
                                if not holders:
                                    del values[v]
                    if new_key is not None and attribute in new:
                        present.add(new_key)
                        for v in new[attribute]:
                            values.setdefault(v, set()).add(new_key)
        finally:
            self._writing -= 1

    def _held(self, dit, key: str | None) -> dict[str, set[str]]:
        if key is None:
            return {}
        entry = dit[key]
        out: dict[str, set[str]] = {}
        for attribute in self._by_attribute:
            vals = entry.get(attribute)
            if vals is not None:
                out[attribute] = {_text(v).lower() for v in _listed(vals)}
        return out

    # --- searches -----------------------------------------------------------------------------------------
    def evaluate(self, node, candidates: set[str] | None, dit, plain) -> set[str]:
        """The DNs among `candidates` (None: every entry; then the tree must `_narrows`) that match the filter
        node (a tree `_indexable_tree` accepted). A new set: the caller may keep it."""
        tag = node.tag
        if tag == ROOT:
            return self.evaluate(node.elements[0], candidates, dit, plain)
        if tag == AND:
            matched = candidates
            for element in sorted(node.elements, key=lambda e: not _narrows(e)):  # narrow with indexes first
                matched = self.evaluate(element, matched, dit, plain)
                if not matched:
                    break
            return set(matched) if matched is candidates and matched is not None else matched
        if tag == OR:
            out: set[str] = set()
            for element in node.elements:
                out |= self.evaluate(element, candidates, dit, plain)
            return out
        if tag == MATCH_EQUAL and _indexed_term(node):
            value = _text(ldap_escape_to_bytes(node.assertion["value"])).lower()
            return _within(self.attribute(dit, node.assertion["attr"])[0].get(value, set()), candidates)
        if tag == MATCH_PRESENT:
            return _within(self.attribute(dit, node.assertion["attr"])[1], candidates)
        if tag == MATCH_EXTENSIBLE:  # a bitwise rule: over the attribute's distinct values
            values = self.attribute(dit, node.assertion["attr"])[0]
            rule, wanted = _bitwise_assertion(node)
            out = set()
            for text, holders in values.items():
                if _bits_match(rule, text, wanted):
                    out |= holders
            return _within(out, candidates)
        # any other term (a substring, an unindexed equality): tested as the mock does, on what is left
        plain(node, list(dit) if candidates is None else [dn for dn in candidates])
        return set(node.matched)


@lru_cache(maxsize=None)
def _class_hierarchy(object_class: str) -> frozenset[str]:
    """The class and all its superiors in the lab's schema, as the mock's add_entry walks them."""
    classes = {object_class}
    size = 0
    while size != len(classes):
        size = len(classes)
        for name in list(classes):
            classes.update(lab_schema().object_classes[name].superior or [])
    return frozenset(classes)


@lru_cache(maxsize=None)
def _known_class(object_class: str) -> bool:
    return object_class in lab_schema().object_classes


def _first_separator(dn: str) -> int:
    """The index of the first RDN separator (an unescaped comma), or -1 (also for a quoted value: then ldap3
    parses the whole DN)."""
    first = _RDN_SPECIAL.search(dn)
    if first is not None and first.group() == "\\":  # an escape before the first comma: the slow way
        first = _RDN_TEXT.match(dn)
        end = first.end()
    else:
        end = first.start() if first is not None else len(dn)
    return end if end < len(dn) and dn[end] == "," else -1


_RDN_SPECIAL = re.compile(r'[\\",]')
_RDN_TEXT = re.compile(r'(?:[^\\",]|\\.)*', re.DOTALL)  # up to the first unescaped comma, quote or lone backslash


def _indexed_term(node) -> bool:
    return node.tag == MATCH_EQUAL and str(node.assertion.get("attr", "")).lower() in INDEXED_ATTRIBUTES


def _indexable_tree(node) -> bool:
    """Only AND, OR, equality, presence, substring terms and the bitwise rules (a NOT, an ordering or another
    extensible match goes to the mock's own evaluation, whose answer for them is kept exactly)."""
    if node.tag in (ROOT, AND, OR):
        return all(_indexable_tree(e) for e in node.elements)
    return node.tag in (MATCH_EQUAL, MATCH_PRESENT, MATCH_SUBSTRING) or _bitwise_term(node)


def _narrows(node) -> bool:
    """Can the indexes alone say which entries may match (without a pass over the directory)?"""
    tag = node.tag
    if tag == ROOT:
        return _narrows(node.elements[0])
    if tag == AND:
        return any(_narrows(e) for e in node.elements)
    if tag == OR:
        return all(_narrows(e) for e in node.elements)
    return _indexed_term(node) or tag == MATCH_PRESENT or _bitwise_term(node)


def _within(found: set[str], candidates: set[str] | None) -> set[str]:
    return set(found) if candidates is None else found & candidates


def _listed(vals) -> list:
    return vals if isinstance(vals, (list, tuple)) else [vals]


def _stored_key(dit: CaseInsensitiveDict, dn: str) -> str | None:
    """The name an entry is stored under in the mock's directory (the first spelling it was added with)."""
    return dit._case_insensitive_keymap.get(dit._ci_key(dn))


def _dit_key(dit: CaseInsensitiveDict, dn: str) -> tuple[str, str | None]:
    ci = dit._ci_key(dn)
    return ci, dit._case_insensitive_keymap.get(ci)


# --- the bitwise matching rules of Active Directory --------------------------------------------------------
BIT_AND, BIT_OR = "1.2.840.113556.1.4.803", "1.2.840.113556.1.4.804"  # LDAP_MATCHING_RULE_BIT_AND / _BIT_OR


def _bitwise_term(node) -> bool:
    a = node.assertion if node.tag == MATCH_EXTENSIBLE else None
    return bool(a) and a.get("matchingRule") in (BIT_AND, BIT_OR) and bool(a.get("attr")) and not a.get("dnAttributes")


def _bitwise_assertion(node) -> tuple[str, int | None]:
    try:
        wanted = int(_text(node.assertion["value"]).strip())
    except ValueError:
        wanted = None  # not a number: matches nothing
    return node.assertion["matchingRule"], wanted


def _bits_match(rule: str, stored: str, wanted: int | None) -> bool:
    """As a DC tests an integer attribute's value against the rule's number: every bit (AND), any bit (OR)."""
    if wanted is None:
        return False
    try:
        value = int(stored.strip())
    except ValueError:
        return False
    return (value & wanted) == wanted if rule == BIT_AND else (value & wanted) != 0


def _bitwise_plain(node, candidates, dit) -> set[str]:
    """A bitwise term tested entry by entry, as the mock tests its own terms (matched and unmatched sets, for
    a NOT above it)."""
    node.matched, node.unmatched = set(), set()
    rule, wanted = _bitwise_assertion(node)
    name = node.assertion["attr"]
    for dn in candidates:
        vals = dit[dn].get(name)
        if vals is not None and any(_bits_match(rule, _text(v), wanted) for v in _listed(vals)):
            node.matched.add(dn)
        else:
            node.unmatched.add(dn)
    return node.matched


def _filter_text(f) -> str:
    """A search request's filter as text, as ldap3's `filter_to_string` writes it, but for an extensible match,
    which it writes as the ASN.1 object's dump."""
    kind = f.getName()
    if kind in ("and", "or"):
        return "(" + ("&" if kind == "and" else "|") + "".join(_filter_text(x) for x in f[kind]) + ")"
    if kind == "notFilter":
        return "(!" + _filter_text(f["notFilter"]["innerNotFilter"]) + ")"
    if kind != "extensibleMatch":
        return filter_to_string(f)
    m = f["extensibleMatch"]
    text = str(m["type"]) if m["type"].hasValue() else ""
    if m["dnAttributes"].hasValue() and bool(m["dnAttributes"]):
        text += ":dn"
    if m["matchingRule"].hasValue():
        text += ":" + str(m["matchingRule"])
    return f"({text}:={escape_filter_chars(bytes(m['matchValue']))})"


def _search_answer(strategy, request: dict, base: str, found: set[str]) -> tuple[list[dict], dict]:
    """What the mock's `_execute_search` answers when `found` are the entries its filter matches in the whole
    directory: those in the search's scope, each with the attributes asked for, the same result."""
    dit = strategy.connection.server.dit
    low = base.lower()
    if request["scope"] == LEVEL_SCOPE:  # the mock's own test of one level (the base entry passes it too)
        matched = [dn for dn in found if dn.lower().endswith(low) and "," not in dn[:-len(base) - 1]]
    else:
        matched = [dn for dn in found if dn.lower().endswith(low)]
    if "+" in request["attributes"]:  # operational attributes requested
        request["attributes"].extend(strategy.operational_attributes)
        request["attributes"].remove("+")
    attributes = [attr.lower() for attr in request["attributes"]]
    size_limit = request["sizeLimit"]
    if strategy.connection.raise_exceptions and 0 < size_limit < len(matched):
        return [], {"resultCode": 4, "matchedDN": "", "diagnosticMessage": "size limit exceeded", "referral": None}
    every, types_only = ALL_ATTRIBUTES in attributes, request["typesOnly"]
    responses = []
    for match in matched:
        listed = [{"type": attribute, "vals": [] if types_only else vals}  # the entry's own lists, as the mock
                  for attribute, vals in dit[match].items() if every or attribute.lower() in attributes]
        if "+" not in attributes:  # operational attributes only when asked for by name
            for op_attr in strategy.operational_attributes:
                if op_attr.lower() in attributes:
                    continue
                for i, attr in enumerate(listed):
                    if attr["type"] == op_attr:
                        del listed[i]
        responses.append({"object": match, "attributes": listed})
    result = {"resultCode": 0, "matchedDN": "", "diagnosticMessage": "", "referral": None}
    return (responses[:size_limit] if size_limit > 0 else responses), result


def _object_class(a: LabAccount) -> str:
    return {AccountKind.COMPUTER: "computer", AccountKind.GMSA: "msDS-GroupManagedServiceAccount"}.get(a.kind, "user")


def _text(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)
