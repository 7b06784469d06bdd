"""Discovery: read the forest, the Exchange servers, the namespaces and every account that matters, through
the ports, into one `Environment`. Servers are read in parallel (bounded); a server that cannot be read is
kept with its error, never dropped, and what it holds stays unknown (never "nothing").

Namespaces come from every source: the virtual-directory objects and Autodiscover SCPs in the configuration
partition, the servers' own answers when they can be read, and the names the user gives. When the user names
no ASA, it is found from the servers' credentials, else from the one account (not a server's own) that holds
the namespaces' HTTP SPNs.

Each directory search runs once per pass: the owners of the namespaces' and the servers' HTTP SPNs are
looked up together (forest-wide, on the indexed servicePrincipalName), and an account already read (the
ASA among the SPN owners, say) is not read again by name. The accounts that matter are: the owners of
those SPNs, the ASA named in the answers, the accounts the servers' credentials name, the SEG service
account and test users, and the servers' own computer accounts. Nothing is searched by description (a
substring match on an unindexed attribute scans the whole directory on a real DC)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from .errors import WizardError
from .model import (Account, Environment, ExchangeServer, ExtendedProtection, Namespace, SegConfig,
                    derive_namespaces)
from .ports import DirectoryPort, ExchangePort, ServerState

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class DiscoveryOptions:
    asa_sam: str | None = None
    seg: SegConfig | None = None
    concurrency: int = 8
    read_servers: bool = True  # False: directory only (no WinRM)
    namespaces: list[str] = field(default_factory=list)  # host names the user named ([spns] / --namespace)


def discover(directory: DirectoryPort, exchange: ExchangePort | None, options: DiscoveryOptions | None = None,
             progress: Progress | None = None, cancel: threading.Event | None = None) -> Environment:
    options = options or DiscoveryOptions()
    say = progress or (lambda what, done, total: None)

    say("Reading the forest", 0, 1)
    forest = directory.read_forest()
    say("Reading the Exchange servers from the configuration partition", 0, 1)
    servers = directory.exchange_servers()
    # the servers' computer accounts now, while the adapter still holds what it fetched with the servers
    server_accounts = [a for a in (directory.get_account(f"{s.name}$") for s in servers) if a is not None]
    vdirs = directory.virtual_directories()
    scps = directory.autodiscover_scps()

    iis_iusrs: dict[str, list[str]] = {}
    extended: dict[str, ExtendedProtection] = {}
    if exchange is not None and options.read_servers and servers:
        states: dict[str, ServerState | WizardError] = {}
        done = 0
        lock = threading.Lock()

        def keep(server: ExchangeServer, result: ServerState | WizardError, ep: ExtendedProtection | None) -> None:
            nonlocal done
            if ep is not None:
                ep.server = server.name
            with lock:
                states[server.name] = result
                if ep is not None:
                    extended[server.name] = ep
                done += 1
                say(f"Read {server.name}", done, len(servers))

        bulk = getattr(exchange, "read_servers", None)
        if bulk is not None:
            # the port reads the organisation at once (the Exchange cmdlets once, each server's Windows side)
            address = {(s.fqdn or s.name): s for s in servers}
            bulk(list(address), concurrency=max(1, options.concurrency), cancel=cancel,
                 done=lambda addr, r: keep(address[addr], r,
                                           r.extended_protection if isinstance(r, ServerState) else None))
        else:
            def read(server: ExchangeServer) -> None:
                if cancel is not None and cancel.is_set():
                    return
                try:
                    result: ServerState | WizardError = exchange.read_server(server.fqdn or server.name)
                except WizardError as exc:
                    result = exc
                keep(server, result,
                     read_extended_protection(exchange, server) if isinstance(result, ServerState) else None)

            with ThreadPoolExecutor(max_workers=max(1, options.concurrency), thread_name_prefix="discover") as pool:
                list(pool.map(read, servers))

        from_exchange = []
        for server in servers:
            st = states.get(server.name)
            if isinstance(st, ServerState):
                merge_server(server, st.server)
                server.reachable = True
                from_exchange.extend(st.vdirs)
                iis_iusrs[server.name] = list(st.iis_iusrs)
                if st.autodiscover_uri:
                    scps.setdefault(server.name, st.autodiscover_uri)
            elif isinstance(st, WizardError):
                server.reachable = False
                server.error = str(st)
        if from_exchange:
            # The cmdlets are authoritative for the servers that answered; keep the directory's view of the rest.
            answered = {v.server.lower() for v in from_exchange}
            vdirs = from_exchange + [v for v in vdirs if v.server.lower() not in answered]

    namespaces = derive_namespaces(vdirs, scps)
    clients = [s.name for s in servers if s.generation != "2010" and not (s.roles and set(s.roles) <= {"Edge"})]
    for host in options.namespaces:
        key = host.strip().lower().rstrip(".")
        if key and all(n.host != key for n in namespaces):
            # named by the user: a load-balanced name, served by every client-access server
            namespaces.append(Namespace(host=key, servers=list(clients)))
    namespaces.sort(key=lambda n: n.host)
    say("Looking up the owners of the HTTP SPNs", 0, 1)
    ns_hosts = {n.host.lower() for n in namespaces}
    server_hosts = [s.fqdn for s in servers if s.fqdn]
    owners_by_host = directory.find_accounts_with_http_spns([n.host for n in namespaces] + server_hosts)

    accounts: dict[str, Account] = {}
    spn_owners: dict[str, list[str]] = {}
    for host, owners in owners_by_host.items():
        if host.lower() in ns_hosts:
            spn_owners[f"http/{host.lower()}"] = [a.dn for a in owners]
        for a in owners:
            accounts[a.dn.lower()] = a
    for a in server_accounts:
        accounts.setdefault(a.dn.lower(), a)
    asa_sam, asa_source = options.asa_sam, "named by the user" if options.asa_sam else ""
    if not asa_sam:
        asa_sam, asa_source = _find_asa(directory, servers, namespaces, spn_owners, accounts)
    wanted = [asa_sam] if asa_sam else []
    for server in servers:  # the accounts the servers' credentials name (an old ASA holds no SPN any more)
        for cred in (server.asa_latest, server.asa_previous):
            if cred is not None and cred.account:
                wanted.append(cred.account.rpartition("\\")[2])
    if options.seg:
        wanted.append(options.seg.service_account)
        wanted.extend(options.seg.test_users)
    for sam in dict.fromkeys(s.strip() for s in wanted if s and s.strip()):
        if _known(accounts, sam):
            continue
        a = directory.get_account(sam)
        if a is not None:
            accounts.setdefault(a.dn.lower(), a)
    # every SPN the gathered accounts hold, so duplicates between them are visible too
    for a in accounts.values():
        for spn in a.spns:
            lst = spn_owners.setdefault(spn.lower(), [])
            if a.dn not in lst:
                lst.append(a.dn)

    protected = directory.protected_users() if options.seg else []
    say("Looking for accounts trusted for unconstrained delegation", 0, 1)
    try:
        unconstrained: list[Account] | None = directory.find_unconstrained_delegation()
    except WizardError:
        unconstrained = None  # the check says it could not look
    say("Discovery finished", 1, 1)
    return Environment(forest=forest, servers=servers, vdirs=vdirs, namespaces=namespaces,
                       accounts=sorted(accounts.values(), key=lambda a: a.dn.lower()), spn_owners=spn_owners,
                       asa_sam=asa_sam, seg=options.seg, iis_iusrs=iis_iusrs, protected_users=protected,
                       autodiscover_urls=scps, unconstrained_delegation=unconstrained,
                       spn_scope=directory.spn_lookup_scope(), asa_source=asa_source,
                       extended_protection=extended)


def _find_asa(directory: DirectoryPort, servers: list[ExchangeServer], namespaces: list[Namespace],
              spn_owners: dict[str, list[str]], accounts: dict[str, Account]) -> tuple[str | None, str]:
    """The ASA nobody named: the account the servers' latest credentials name (most servers win), else the one
    account other than a server's own that holds the namespaces' HTTP SPNs."""
    named: dict[str, int] = {}
    for s in servers:
        if s.asa_state_known and s.asa_latest is not None:
            sam = s.asa_latest.account.split("\\")[-1]
            named[sam] = named.get(sam, 0) + 1
    for sam in sorted(named, key=lambda k: (-named[k], k.lower())):
        if _known(accounts, sam) or directory.get_account(sam) is not None:
            return sam, "the account whose credential the servers hold"
    own = {f"{s.name}$".lower() for s in servers}
    holders = {dn.lower() for n in namespaces for dn in spn_owners.get(f"http/{n.host}", [])}
    found = {accounts[dn].sam for dn in holders if dn in accounts and accounts[dn].sam.lower() not in own}
    if len(found) == 1:
        return found.pop(), "the account that holds the namespaces' HTTP SPNs"
    return None, ""


def read_extended_protection(exchange: ExchangePort, server: ExchangeServer) -> ExtendedProtection | None:
    """The server's Extended Protection settings (None: this Exchange port cannot read them); a failure is kept
    with its reason so the checks say why they could not judge."""
    reader = getattr(exchange, "read_extended_protection", None)
    if reader is None:
        return None
    try:
        ep = reader(server.fqdn or server.name)
    except WizardError as exc:
        return ExtendedProtection(server=server.name, error=str(exc))
    ep.server = server.name
    return ep


def _known(accounts: dict[str, Account], sam: str) -> bool:
    """Already read: exactly one gathered account has this sAMAccountName (two, in two domains: ask by name)."""
    return sum(1 for a in accounts.values() if a.sam.lower() == sam.lower()) == 1


def merge_server(into: ExchangeServer, reported: ExchangeServer) -> None:
    """Fill what the directory cannot know (ASA state, service host) from what the server reported."""
    into.asa_latest = reported.asa_latest
    into.asa_previous = reported.asa_previous
    into.asa_state_known = True
    into.service_host_running = reported.service_host_running
    if reported.version and not into.version:
        into.version = reported.version
    if reported.site and not into.site:
        into.site = reported.site
