"""A real Samba 4 Active Directory domain controller on loopback, for integration tests and benchmarks.

The wizard's directory and Kerberos adapters must be proven against a real DC, not only against the
embedded lab. `SambaDC` provisions a throwaway domain whose every file lives under one directory (nothing
in /etc/samba or /var/lib/samba), binds it to one loopback address (127.0.0.x), starts it, waits until
Kerberos, LDAP and LDAPS answer, and stops and removes it again.

Why it is built the way it is (each point was measured on Samba 4.17):

- ``interfaces = 127.0.0.x/8``: a /32 is read as a broadcast address and nothing listens; with /8 and
  ``bind interfaces only`` Samba listens on exactly that address, so several DCs can run side by side.
- ``--dns-backend=NONE``: the internal DNS server would copy the host's resolver as a forwarder.
- ``samba_spnupdate`` right after provisioning: the DC's own ``ldap/`` SPNs are normally added by the
  DNS update service we leave out; without them GSSAPI binds fail.
- Password ages and history are relaxed (max/min age 0, history 0) so tests can change passwords
  repeatedly; complexity stays ON (the AD default) so policy refusals can be tested.
- ``ldap server require strong auth = allow_sasl_over_tls``: simple binds without TLS are refused with
  strongerAuthRequired, as on a hardened Windows DC; GSSAPI over TLS is allowed.
- ``dsdb:schema update allowed = true``: the Exchange schema extension below needs it.
- ``ldb:nosync = true``: no fsync per write (a third faster); a throwaway lab DC needs no durability.

The administrator password is the lab's own throwaway password, never a user's. It does not appear on any
command line: the domain is provisioned with a random password and ``samba-tool user setpassword`` then
reads the lab password from its standard input.

The DC answers ``HTTP/<name>`` tickets for any host whose first label is an existing computer account
(Windows does not): negative Kerberos tests must use names that are not computer names.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

from ..core.secrets import Secret, redact
from .snapshot import ADMIN_GROUP, ROLE_VALUES

LAB_ADMIN_PASSWORD = "Lab-Admin-2024!x"  # the lab's own throwaway password (meets AD complexity)
AUTODISCOVER_KEYWORD = "77378F46-2C66-4aa9-A6A6-3E7A48B19596"
DEFAULT_SITE = "Default-First-Site-Name"
DEFAULT_SERIAL = "Version 15.2 (Build 1544.4)"
EXCHANGE_VERSION = 1937801568  # msExchVersion as Exchange 2013+ writes it on server objects
READY_PORTS = (88, 389, 636)

# Made-up OIDs in a private arc: NOT Exchange's real attributeID/governsID values. Discovery code must
# match on lDAPDisplayName (as it does against Windows), never on OIDs.
_OID_ARC = "1.2.840.113556.1.8000.2554.47321.51283.40001"

# (cn, lDAPDisplayName, attributeSyntax, oMSyntax, single-valued, indexed)
_ATTRIBUTES = [
    ("ms-Exch-Current-Server-Roles", "msExchCurrentServerRoles", "2.5.5.9", 2, True, True),
    ("ms-Exch-Version", "msExchVersion", "2.5.5.16", 65, True, False),
    ("ms-Exch-Server-Site", "msExchServerSite", "2.5.5.1", 127, True, False),
    ("ms-Exch-Internal-Host-Name", "msExchInternalHostName", "2.5.5.12", 64, True, False),
    ("ms-Exch-External-Host-Name", "msExchExternalHostName", "2.5.5.12", 64, True, False),
    ("ms-Exch-Internal-Authentication-Methods", "msExchInternalAuthenticationMethods", "2.5.5.9", 2, True, False),
    ("ms-Exch-External-Authentication-Methods", "msExchExternalAuthenticationMethods", "2.5.5.9", 2, True, False),
]
_VDIR_ATTRS = ["msExchInternalHostName", "msExchExternalHostName",
               "msExchInternalAuthenticationMethods", "msExchExternalAuthenticationMethods"]
# (cn, lDAPDisplayName, subClassOf, possSuperiors, mayContain)
_CLASSES = [
    ("ms-Exch-Organization-Container", "msExchOrganizationContainer", "container",
     ["msExchConfigurationContainer"], []),
    ("ms-Exch-Admin-Group-Container", "msExchAdminGroupContainer", "container", ["msExchOrganizationContainer"], []),
    ("ms-Exch-Admin-Group", "msExchAdminGroup", "container", ["msExchAdminGroupContainer"], []),
    ("ms-Exch-Servers-Container", "msExchServersContainer", "container", ["msExchAdminGroup"], []),
    ("ms-Exch-Exchange-Server", "msExchExchangeServer", "server", ["msExchServersContainer"],
     ["msExchCurrentServerRoles", "msExchVersion", "msExchServerSite", "networkAddress", "serialNumber"]),
    ("ms-Exch-Virtual-Directory", "msExchVirtualDirectory", "container", ["container"], _VDIR_ATTRS),
]
# Service (asa_wizard.core.model.Service value) -> (vdir class, CN as Exchange names it)
VDIR_KINDS = {
    "outlook-anywhere": ("msExchRpcHttpVirtualDirectory", "Rpc (Default Web Site)"),
    "mapi": ("msExchMapiVirtualDirectory", "mapi (Default Web Site)"),
    "eas": ("msExchMobileVirtualDirectory", "Microsoft-Server-ActiveSync (Default Web Site)"),
    "ews": ("msExchWebServicesVirtualDirectory", "EWS (Default Web Site)"),
    "owa": ("msExchOWAVirtualDirectory", "owa (Default Web Site)"),
    "autodiscover": ("msExchAutoDiscoverVirtualDirectory", "Autodiscover (Default Web Site)"),
}
_VDIR_CLASSES = [(f"ms-Exch-{cls[6:]}", cls, "msExchVirtualDirectory", ["container"], [])
                 for cls, _cn in VDIR_KINDS.values()]

_RESULT_EXISTS = 68


class SambaError(RuntimeError):
    """The lab DC could not be provisioned, started or used; the message says what to look at."""


def samba_missing() -> str | None:
    """Why a Samba AD DC cannot be run here, or None when it can."""
    missing = [tool for tool in ("samba", "samba-tool", "samba_spnupdate", "kinit", "kvno")
               if shutil.which(tool, path=tool_path()) is None]
    if missing:
        return f"not installed: {', '.join(missing)}"
    if os.geteuid() != 0:
        return "a Samba AD DC must run as root (provisioning sets file ACLs and binds port 88)"
    return None


def tool_path() -> str:
    """PATH plus the sbin directories (samba lives in /usr/sbin, often missing from a user's PATH)."""
    parts = os.environ.get("PATH", "").split(os.pathsep)
    for extra in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        if extra not in parts:
            parts.append(extra)
    return os.pathsep.join(p for p in parts if p)


def _tool(name: str) -> str:
    found = shutil.which(name, path=tool_path())
    if found is None:
        raise SambaError(f"{name} is not installed (apt-get install samba krb5-user)")
    return found


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class SambaDC:
    """One Samba AD DC whose every file is in `base_dir` (its own folder, `dir`), listening on `ip` only.
    See the module docstring for why it is set up as it is."""

    def __init__(self, base_dir: Path, ip: str = "127.0.0.2", realm: str = "CONTOSO.LAB",
                 netbios: str = "CONTOSO", admin_password: Secret = Secret(LAB_ADMIN_PASSWORD),
                 host_name: str = "dc1") -> None:
        self.dir = Path(base_dir).resolve()
        self.host = ip
        self.realm = realm.upper()
        self.domain = realm.lower()
        self.netbios = netbios.upper()
        self.host_name = host_name.lower()
        self.base_dn = ",".join(f"DC={part}" for part in self.domain.split("."))
        self.configuration_dn = f"CN=Configuration,{self.base_dn}"
        self.schema_dn = f"CN=Schema,{self.configuration_dn}"
        self.admin_user = "Administrator"
        self.admin_upn = f"Administrator@{self.domain}"
        self.admin_dn = f"CN=Administrator,CN=Users,{self.base_dn}"
        self.admin_password = Secret(admin_password)
        self.tls_name = f"{self.host_name}.{self.domain}"
        self.ca_file = self.dir / "private" / "tls" / "ca.pem"
        self.krb5_conf = self.dir / "krb5.conf"
        self.smb_conf = self.dir / "etc" / "smb.conf"
        self.log_dir = self.dir / "log"
        self.run_dir = self.dir / "run"
        self.pid_file = self.run_dir / "samba.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"SambaDC({str(self.dir)!r}, ip={self.host!r}, realm={self.realm!r})"

    # --- lifecycle ------------------------------------------------------------------------------------
    def provision(self) -> None:
        """A fresh domain in `dir` (anything there before is removed). The DC is left stopped."""
        self.stop()
        if self.dir.exists():
            shutil.rmtree(self.dir)
        for d in (self.run_dir, self.log_dir):
            d.mkdir(parents=True)
        options = {
            "interfaces": f"{self.host}/8",
            "bind interfaces only": "yes",
            "server services": "ldap cldap kdc rpc",
            "pid directory": str(self.run_dir),
            "ncalrpc dir": str(self.run_dir / "ncalrpc"),
            "winbindd socket directory": str(self.run_dir / "winbindd"),
            "ntp signd socket directory": str(self.run_dir / "ntp_signd"),
            "log file": str(self.log_dir / "log.%m"),
            "max log size": "10000",
            "disable netbios": "yes",
            "dns update command": "/bin/true",
            "load printers": "no",
            "printcap name": "/dev/null",
            "disable spoolss": "yes",
            "ldap server require strong auth": "allow_sasl_over_tls",
            "dsdb:schema update allowed": "true",
            "tls enabled": "yes",
            "ldb:nosync": "true",
        }
        args = [_tool("samba-tool"), "domain", "provision", f"--targetdir={self.dir}",
                f"--realm={self.realm}", f"--domain={self.netbios}", "--server-role=dc", "--dns-backend=NONE",
                f"--host-name={self.host_name}", f"--host-ip={self.host}", "--backend-store=mdb",
                *(f"--option={k} = {v}" for k, v in options.items())]
        self._run(args, "provision", timeout=180)
        self._run([_tool("samba_spnupdate"), "-s", str(self.smb_conf)], "samba_spnupdate", timeout=60)
        # samba-tool asks twice ("New Password", "Retype Password"); with no controlling terminal
        # (new session) Python's getpass reads both from stdin.
        pw = self.admin_password.reveal()
        self._run([_tool("samba-tool"), "user", "setpassword", self.admin_user, "-s", str(self.smb_conf)],
                  "set the administrator password", timeout=60, stdin=f"{pw}\n{pw}\n")
        self._run([_tool("samba-tool"), "domain", "passwordsettings", "set", "-s", str(self.smb_conf),
                   "--max-pwd-age=0", "--min-pwd-age=0", "--history-length=0"],
                  "passwordsettings", timeout=60)
        self._write_krb5_conf()

    def start(self) -> None:
        """Start samba in the foreground as our child (its own session, so Ctrl-C reaches us, not it)."""
        if not self.smb_conf.exists():
            raise SambaError(f"the DC in {self.dir} is not provisioned")
        if self.running():
            return
        busy = [port for port in READY_PORTS if port_open(self.host, port, timeout=0.2)]
        if busy:  # else wait() would mistake that server for ours
            raise SambaError(f"something else already listens on {self.host} (ports {busy}): another DC? "
                             "stop it or use another address")
        self.pid_file.unlink(missing_ok=True)
        log = open(self.log_dir / "samba.out", "ab")
        try:
            self._proc = subprocess.Popen(
                [_tool("samba"), "--foreground", "--no-process-group", "-M", "single",
                 "-l", str(self.log_dir), "-s", str(self.smb_conf)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()

    def wait(self, timeout: float = 60) -> float:
        """Block until Kerberos (88), LDAP (389) and LDAPS (636) accept connections; returns seconds.
        LDAPS comes last: the TLS key and certificate are generated on the first start."""
        t0 = time.monotonic()
        for port in READY_PORTS:
            while not port_open(self.host, port, timeout=0.5):
                if not self.running():
                    raise SambaError(f"samba exited while starting; see {self.log_dir / 'log.samba'}:\n"
                                     f"{self._log_tail()}")
                if time.monotonic() - t0 > timeout:
                    raise SambaError(f"samba did not answer on {self.host}:{port} within {timeout:.0f} s; "
                                     f"see {self.log_dir / 'log.samba'}")
                time.sleep(0.05)
        return time.monotonic() - t0

    def running(self) -> bool:
        if self._proc is not None:
            if self._proc.poll() is None:
                return True
            self._proc = None
        return self._pid_from_file() is not None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM our samba (SIGKILL if it ignores it) and wait for it to exit."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
        pid = self._pid_from_file()
        if pid is not None:  # started by another process (an earlier session) from this same folder
            try:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it exited meanwhile
        self.pid_file.unlink(missing_ok=True)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def snapshot(self, path: Path) -> None:
        """Copy the stopped DC's folder to `path` (replacing it). Restore only to this same `dir`: the
        paths in smb.conf and the databases are absolute."""
        if self.running():
            raise SambaError("stop the DC before taking a snapshot (its databases are open)")
        _copy_tree(self.dir, Path(path))

    def restore(self, path: Path) -> None:
        """Replace `dir` by a snapshot taken from this same path; the DC is left stopped."""
        path = Path(path)
        if not (path / "etc" / "smb.conf").exists():
            raise SambaError(f"{path} is not a DC snapshot")
        self.stop()
        _copy_tree(path, self.dir)

    def __enter__(self) -> SambaDC:
        if not self.smb_conf.exists():
            self.provision()
        self.start()
        self.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- clients --------------------------------------------------------------------------------------
    def tls(self, ca_file: Path | None = None) -> Any:
        """ldap3 TLS settings that validate the DC's certificate. Its subject is the DC's DNS name, so a
        connection by IP names the expected host in `valid_names`."""
        from ldap3 import Tls

        return Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca_file or self.ca_file),
                   valid_names=[self.tls_name])

    def admin_connection(self) -> Any:
        """An ldap3 Connection bound as Administrator over LDAPS (636), certificate validated."""
        from ldap3 import SIMPLE, Connection, Server

        server = Server(self.host, port=636, use_ssl=True, tls=self.tls(), connect_timeout=10)
        conn = Connection(server, user=self.admin_dn, password=self.admin_password.reveal(),
                          authentication=SIMPLE, receive_timeout=60, raise_exceptions=False)
        if not conn.bind():
            result = dict(conn.result)
            conn.unbind()
            raise SambaError(f"administrator bind to {self.host}:636 failed: "
                             f"{result.get('description')} {result.get('message', '')}".strip())
        return conn

    def krb_env(self, ccache: Path) -> dict[str, str]:
        """Environment for MIT kinit/kvno/klist (or gssapi in a subprocess) against this DC only."""
        env = dict(os.environ)
        env["KRB5_CONFIG"] = str(self.krb5_conf)
        env["KRB5CCNAME"] = f"FILE:{ccache}"
        env["PATH"] = tool_path()
        return env

    def kinit(self, principal: str, password: Secret, ccache: Path, timeout: float = 30) -> None:
        """A TGT for `principal` in `ccache`; the password goes to kinit's stdin, never its argv.
        A UPN (``user@contoso.lab``) is sent as an enterprise name and canonicalised, as Windows does."""
        name, _, suffix = principal.rpartition("@")
        upn = ["-C", "-E"] if name and suffix != self.realm else []
        proc = subprocess.run([_tool("kinit"), *upn, "-c", f"FILE:{ccache}", principal],
                              input=password.reveal() + "\n", capture_output=True, text=True,
                              env=self.krb_env(ccache), timeout=timeout, start_new_session=True)
        if proc.returncode != 0:
            detail = redact((proc.stderr or proc.stdout).strip(), password)
            raise SambaError(f"kinit {principal} failed: {detail}")

    def kvno(self, spn: str, ccache: Path, *extra: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run `kvno [extra] spn` with the ticket cache; the caller reads returncode (kvno prints a line
        even when it fails)."""
        return subprocess.run([_tool("kvno"), *extra, spn], capture_output=True, text=True,
                              env=self.krb_env(ccache), timeout=timeout, start_new_session=True)

    # --- the Exchange part of the directory -----------------------------------------------------------
    def extend_exchange_schema(self) -> None:
        """Add the few Exchange attributes and classes discovery reads: the organisation, admin group and
        servers containers, `msExchExchangeServer` (roles, version, site), and `msExchVirtualDirectory`
        with one subclass per client service (host names, auth flags). The OIDs are made up, in a private
        arc: they are not Exchange's. Idempotent (existing definitions are kept)."""
        conn = self.admin_connection()
        try:
            for i, (cn, name, syntax, om, single, indexed) in enumerate(_ATTRIBUTES, 1):
                self._add_schema(conn, cn, "attributeSchema", {
                    "attributeID": f"{_OID_ARC}.1.{i}", "attributeSyntax": syntax, "oMSyntax": om,
                    "isSingleValued": single, "lDAPDisplayName": name, "adminDisplayName": cn,
                    "searchFlags": 1 if indexed else 0})
            _schema_update_now(conn)
            for i, (cn, name, sup, poss, may) in enumerate(_CLASSES + _VDIR_CLASSES, 1):
                attrs: dict[str, Any] = {
                    "governsID": f"{_OID_ARC}.2.{i}", "lDAPDisplayName": name, "adminDisplayName": cn,
                    "subClassOf": sup, "objectClassCategory": 1, "possSuperiors": poss, "rDNAttID": "cn"}
                if may:
                    attrs["mayContain"] = may
                self._add_schema(conn, cn, "classSchema", attrs)
                if name == "msExchVirtualDirectory":
                    _schema_update_now(conn)  # the subclasses name it as their superclass
            _schema_update_now(conn)
        finally:
            conn.unbind()

    def exchange_org_dn(self, organization: str) -> str:
        return f"CN={_rdn(organization)},CN=Microsoft Exchange,CN=Services,{self.configuration_dn}"

    def servers_container_dn(self, organization: str) -> str:
        return f"CN=Servers,CN={ADMIN_GROUP},CN=Administrative Groups,{self.exchange_org_dn(organization)}"

    def exchange_server_dn(self, organization: str, name: str) -> str:
        return f"CN={_rdn(name)},{self.servers_container_dn(organization)}"

    def site_dn(self, site: str) -> str:
        return f"CN={_rdn(site)},CN=Sites,{self.configuration_dn}"

    def computer_dn(self, name: str) -> str:
        return f"CN={_rdn(name.upper())},CN=Computers,{self.base_dn}"

    def populate_exchange(self, organization: str, servers: list[dict[str, Any]]) -> None:
        """The Exchange configuration tree, laid out as `asa_wizard.lab.snapshot` lays it out, so the same
        discovery code reads both. Each server dict: ``name``, ``fqdn``; optional ``version`` (serialNumber),
        ``roles`` (names as in snapshot.ROLE_VALUES, or the int), ``site``, ``autodiscover_url`` (its SCP),
        ``spns`` (extra SPNs on its computer account), ``vdirs`` ({service: {internal, external,
        internal_auth, external_auth}}, services as in VDIR_KINDS). The server's computer account NAME$
        (no password: it has no Kerberos keys) is created in CN=Computers. Idempotent: existing objects
        get the given attribute values."""
        conn = self.admin_connection()  # fresh: ldap3 checks names against the schema read at bind
        try:
            me = f"CN=Microsoft Exchange,CN=Services,{self.configuration_dn}"
            org = self.exchange_org_dn(organization)
            self._ensure(conn, me, "msExchConfigurationContainer", {})
            self._ensure(conn, org, "msExchOrganizationContainer", {})
            self._ensure(conn, f"CN=Administrative Groups,{org}", "msExchAdminGroupContainer", {})
            self._ensure(conn, f"CN={ADMIN_GROUP},CN=Administrative Groups,{org}", "msExchAdminGroup", {})
            self._ensure(conn, self.servers_container_dn(organization), "msExchServersContainer", {})
            for spec in servers:
                self._populate_server(conn, organization, spec)
        finally:
            conn.unbind()

    def _populate_server(self, conn: Any, organization: str, spec: dict[str, Any]) -> None:
        name = str(spec["name"]).upper()
        fqdn = str(spec["fqdn"]).lower()
        site = spec.get("site", DEFAULT_SITE)
        site_dn = self.site_dn(site)
        if site != DEFAULT_SITE:
            self._ensure(conn, site_dn, "site", {})
        roles = spec.get("roles", ["Mailbox", "ClientAccess"])
        role_bits = roles if isinstance(roles, int) else sum(ROLE_VALUES[r] for r in roles)
        dn = self.exchange_server_dn(organization, name)
        self._ensure(conn, dn, "msExchExchangeServer", {
            "serialNumber": spec.get("version", DEFAULT_SERIAL),
            "networkAddress": [f"ncacn_ip_tcp:{fqdn}", f"netbios:{name}"],
            "msExchCurrentServerRoles": role_bits, "msExchVersion": EXCHANGE_VERSION,
            "msExchServerSite": site_dn})
        self._ensure(conn, f"CN=Protocols,{dn}", "container", {})
        url = spec.get("autodiscover_url")
        if url:
            self._ensure(conn, f"CN=Autodiscover,CN=Protocols,{dn}", "container", {})
            self._ensure(conn, f"CN={_rdn(name)},CN=Autodiscover,CN=Protocols,{dn}", "serviceConnectionPoint", {
                "keywords": [AUTODISCOVER_KEYWORD, f"Site={site}"], "serviceBindingInformation": url,
                "serviceClassName": "ms-Exchange-AutoDiscover-Service", "serviceDNSName": fqdn})
        vdirs = spec.get("vdirs") or {}
        if vdirs:
            self._ensure(conn, f"CN=HTTP,CN=Protocols,{dn}", "container", {})
        for service, v in vdirs.items():
            cls, cn = VDIR_KINDS[service]
            attrs = {attr: v[key] for attr, key in zip(_VDIR_ATTRS, ("internal", "external", "internal_auth",
                                                                     "external_auth")) if v.get(key) is not None}
            self._ensure(conn, f"CN={_rdn(cn)},CN=HTTP,CN=Protocols,{dn}", cls, attrs)
        spns = [f"HOST/{name}", f"HOST/{fqdn}", f"exchangeMDB/{fqdn}", f"exchangeRFR/{fqdn}",
                *spec.get("spns", [])]
        self._ensure(conn, self.computer_dn(name), "computer", {
            "sAMAccountName": f"{name}$", "userAccountControl": 4096, "dNSHostName": fqdn,
            "servicePrincipalName": spns})

    # --- helpers --------------------------------------------------------------------------------------
    def _ensure(self, conn: Any, dn: str, object_class: str, attrs: dict[str, Any]) -> None:
        if conn.add(dn, object_class, attrs):
            return
        if conn.result["result"] != _RESULT_EXISTS:
            raise SambaError(f"adding {dn} failed: {_describe(conn)}")
        if attrs:
            from ldap3 import MODIFY_REPLACE

            changes = {k: [(MODIFY_REPLACE, v if isinstance(v, list) else [v])]
                       for k, v in attrs.items() if k != "sAMAccountName"}
            if not conn.modify(dn, changes):
                raise SambaError(f"updating {dn} failed: {_describe(conn)}")

    def _add_schema(self, conn: Any, cn: str, object_class: str, attrs: dict[str, Any]) -> None:
        dn = f"CN={cn},{self.schema_dn}"
        if not conn.add(dn, ["top", object_class], attrs) and conn.result["result"] != _RESULT_EXISTS:
            raise SambaError(f"schema extension: adding {attrs['lDAPDisplayName']} failed: {_describe(conn)}")

    def _run(self, args: list[str], what: str, timeout: float, stdin: str | None = None) -> None:
        """Run a Samba tool; its output goes to log/setup.log (never our console), failures quote it."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "PATH": tool_path()}, start_new_session=True)
        except subprocess.TimeoutExpired as e:
            raise SambaError(f"{what} did not finish within {timeout:.0f} s") from e
        output = redact(proc.stdout + proc.stderr, self.admin_password)
        with open(self.log_dir / "setup.log", "a", encoding="utf-8") as f:
            f.write(f"$ {' '.join(args)}\n{output}\n")
        if proc.returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise SambaError(f"{what} failed (exit {proc.returncode}); see {self.log_dir / 'setup.log'}:\n{tail}")

    def _write_krb5_conf(self) -> None:
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            f"    default_realm = {self.realm}\n"
            "    dns_lookup_realm = false\n"
            "    dns_lookup_kdc = false\n"
            "    rdns = false\n"
            "    dns_canonicalize_hostname = false\n"
            "    forwardable = true\n"
            "[realms]\n"
            f"    {self.realm} = {{\n"
            f"        kdc = {self.host}\n"
            f"        admin_server = {self.host}\n"
            f"        kpasswd_server = {self.host}\n"
            "    }\n"
            "[domain_realm]\n"
            f"    .{self.domain} = {self.realm}\n"
            f"    {self.domain} = {self.realm}\n",
            encoding="utf-8")

    def _pid_from_file(self) -> int | None:
        """The pid in run/samba.pid if that process is alive and is the samba of this very folder. Samba
        rewrites its command line and environment, so ownership is proven by the files it holds open."""
        try:
            pid = int(self.pid_file.read_text().strip())
            if Path(f"/proc/{pid}/comm").read_text().strip() != "samba":
                return None
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except (OSError, ValueError):
            return None
        prefix = f"{self.dir}/"
        for fd in fds:
            try:
                if os.readlink(fd).startswith(prefix):
                    return pid
            except OSError:
                continue
        return None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.log_dir / "log.samba").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _alive(pid: int) -> bool:
    """Running, and not a zombie (an exited samba whose parent died stays one where nothing reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _copy_tree(src: Path, dst: Path) -> None:
    """cp -a: keeps the ownership, xattrs and ACLs Samba set on sysvol, and keeps sparse files sparse."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["cp", "-a", "--sparse=always", "--reflink=auto", str(src), str(dst)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SambaError(f"copying {src} to {dst} failed: {proc.stderr.strip()}")


def _rdn(value: str) -> str:
    from ldap3.utils.dn import escape_rdn

    return escape_rdn(value)


def _schema_update_now(conn: Any) -> None:
    """Make the new schema objects usable at once (ldap3 refuses the empty rootDSE DN unless told)."""
    from ldap3 import MODIFY_REPLACE

    conn.check_names = False
    try:
        if not conn.modify("", {"schemaUpdateNow": [(MODIFY_REPLACE, ["1"])]}):
            raise SambaError(f"schemaUpdateNow failed: {_describe(conn)}")
    finally:
        conn.check_names = True


def _describe(conn: Any) -> str:
    r = conn.result
    return f"{r.get('description')} ({r.get('result')}) {r.get('message', '')!r}"
