"""Translate what ldap3 and Active Directory say into errors a person can act on.

AD packs the useful part of a failure into the diagnostic message: `80090308: LdapErr: DSID-0C09041C,
comment: AcceptSecurityContext error, data 52e, v4563` means "wrong password" only because of `52e`.
Every message built here names the problem and a concrete fix, and passes through `redact` so a
password can never travel inside an error.
"""

from __future__ import annotations

import re
import socket
import ssl

from ldap3.core import exceptions as lx

from ..core.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    NotFound,
    OperationTimeout,
    PermissionDenied,
    PolicyRefused,
    StaleObject,
    WizardError,
)
from ..core.secrets import Secret, redact

# AD result codes (RFC 4511) that need their own words.
SUCCESS = 0
TIME_LIMIT_EXCEEDED = 3
SIZE_LIMIT_EXCEEDED = 4
STRONGER_AUTH_REQUIRED = 8
REFERRAL = 10
ADMIN_LIMIT_EXCEEDED = 11
CONFIDENTIALITY_REQUIRED = 13
NO_SUCH_ATTRIBUTE = 16
UNDEFINED_ATTRIBUTE_TYPE = 17
CONSTRAINT_VIOLATION = 19
ATTRIBUTE_OR_VALUE_EXISTS = 20
NO_SUCH_OBJECT = 32
INVALID_DN_SYNTAX = 34
INVALID_CREDENTIALS = 49
INSUFFICIENT_ACCESS_RIGHTS = 50
BUSY = 51
UNAVAILABLE = 52
UNWILLING_TO_PERFORM = 53
OBJECT_CLASS_VIOLATION = 65
ENTRY_ALREADY_EXISTS = 68

# The 'data xxx' sub-codes of invalidCredentials (AcceptSecurityContext error).
BIND_DATA_CODES: dict[str, tuple[str, str]] = {
    "525": ("no such user", "Check the user name: use user@domain or DOMAIN\\user of an existing account."),
    # Windows answers 525 for a user that does not exist; Samba answers 52e for both (measured on Samba 4.17):
    # with 52e alone the DC does not tell which of the two is wrong.
    "52e": ("wrong password, or no such user (a Samba DC answers the same for both)",
            "Check the password (and the keyboard layout) and the user name: user@domain or DOMAIN\\user of an "
            "existing account."),
    "530": ("not permitted to log on at this time", "The account has logon hours; try within them or use another account."),
    "531": ("not permitted to log on from this workstation", "Remove the 'Log On To' restriction or use another account."),
    "532": ("password expired", "Change the account's password, then try again."),
    "533": ("account disabled", "Enable the account in Active Directory or use another one."),
    "701": ("account expired", "Extend the account's expiry date or use another account."),
    "773": ("the user must change the password at next logon", "Log on once interactively and change the password, or clear 'must change password'."),
    "775": ("account locked out", "Wait for the lockout to expire or unlock the account (Unlock-ADAccount), then check the password before retrying."),
}

DATA_CODE_RE = re.compile(r"\bdata ([0-9a-fA-F]{3,8})\b")


class InsecureConnection(ConnectionFailed):
    """We refused to send something secret over a channel without TLS (nothing was sent)."""

    kind = "insecure"


class InvalidInput(WizardError):
    """A name or value the user gave cannot be used in the directory as it is."""

    kind = "invalid-input"


def bind_data_code(message: str) -> str | None:
    m = DATA_CODE_RE.search(message or "")
    return m.group(1).lower() if m else None


def translate_result(result: dict, *, operation: str, target: str = "", where: str = "",
                     secrets: tuple[Secret | str | None, ...] = ()) -> WizardError:
    """An LDAP result (ldap3's `connection.result`) that was not success -> a WizardError with a fix."""
    code = int(result.get("result", -1))
    desc = str(result.get("description", ""))
    message = redact(str(result.get("message", "") or ""), *secrets)
    raw = f"{desc} ({code}) {message}".strip()
    obj = f" on {target}" if target else ""

    if code == INVALID_CREDENTIALS:
        data = bind_data_code(message)
        if data in BIND_DATA_CODES:
            what, fix = BIND_DATA_CODES[data]
            return AuthenticationFailed(f"The domain controller {where} refused the logon: {what} (AD code {data}).",
                                        fix, detail=raw)
        return AuthenticationFailed(f"The domain controller {where} refused the credentials.",
                                    "Check the user name (user@domain or DOMAIN\\user) and the password.", detail=raw)
    if code in (STRONGER_AUTH_REQUIRED, CONFIDENTIALITY_REQUIRED):
        return InsecureConnection(
            f"The domain controller {where} requires a stronger authentication for {operation}.",
            "Connect with LDAPS (port 636) or StartTLS (port 389) so the bind is protected; for Kerberos binds "
            "on plain LDAP the DC requires signing, which this tool does not do: use TLS. If the DC enforces "
            "LDAP channel binding, use a Kerberos bind over TLS instead of NTLM.", detail=raw)
    if code == INSUFFICIENT_ACCESS_RIGHTS:
        return PermissionDenied(
            f"Access denied: the account used has no right to {operation}{obj}.",
            _rights_fix(operation, target), detail=raw)
    if code == UNWILLING_TO_PERFORM and operation.startswith("set the password"):
        if "0000001F" in message.upper() or "5003" in message:
            return InsecureConnection(
                f"The domain controller would not set the password{obj}: passwords can only be set over an "
                "encrypted connection.", "Connect with LDAPS (636) or StartTLS (389).", detail=raw)
        return PolicyRefused(
            f"The domain's password policy refused the new password{obj}.",
            "Check the policy that applies to the account (Get-ADDefaultDomainPasswordPolicy, fine-grained "
            "policies): minimum length, complexity, history and minimum password age.", detail=raw)
    if code == CONSTRAINT_VIOLATION and operation.startswith("change the password"):
        # the Windows error code leads the DC's message, on AD and Samba alike
        if "00000056" in message:
            return PolicyRefused(
                f"The domain controller refused to {operation}{obj}: the old password given is not the account's "
                "current password (AD code 00000056).",
                "The password was changed elsewhere since it was last set: reset it instead (the Reset Password "
                "right), or give its current password.", detail=raw)
        if "0000052D" in message.upper():
            return PolicyRefused(
                f"The domain's password policy refused to {operation}{obj} (AD code 0000052D): the password is "
                "younger than the minimum password age, or the new one breaks the history, length or complexity "
                "rules.",
                "A password set less than the minimum age ago (1 day by default) cannot be changed yet: reset it "
                "instead (the Reset Password right), or change it when it is old enough. Check the policy that "
                "applies (Get-ADDefaultDomainPasswordPolicy, fine-grained policies).", detail=raw)
    if code == UNWILLING_TO_PERFORM:
        return PolicyRefused(f"The domain controller is unwilling to {operation}{obj}.",
                             "Read the DC's message below; a policy or a protected object prevents the change.",
                             detail=raw)
    if code == REFERRAL:
        refs = ", ".join(result.get("referrals") or []) or "another domain controller"
        return ConnectionFailed(
            f"The object{obj} lives in another domain: the DC referred the request to {refs}.",
            "Connect to a domain controller of that domain, or enable the global catalog for forest-wide "
            "lookups.", detail=raw)
    if code == NO_SUCH_OBJECT:
        return NotFound(f"Not found: {target or 'the object'} does not exist (while trying to {operation}).",
                        "Check the distinguished name or choose the object again after refreshing.", detail=raw)
    if code == ENTRY_ALREADY_EXISTS:
        return StaleObject(f"{target or 'The object'} already exists.",
                           "Refresh and pick another name, or use the existing account.", detail=raw)
    if code in (BUSY, UNAVAILABLE):
        return ConnectionFailed(f"The domain controller {where} is busy or unavailable ({desc}).",
                                "Try again in a moment or connect to another domain controller.", detail=raw)
    if code in (TIME_LIMIT_EXCEEDED, ADMIN_LIMIT_EXCEEDED, SIZE_LIMIT_EXCEEDED):
        return OperationTimeout(f"The domain controller {where} stopped the search: {desc}.",
                                "Try again; if it repeats, narrow the search or raise the receive timeout.",
                                detail=raw)
    if code in (OBJECT_CLASS_VIOLATION, UNDEFINED_ATTRIBUTE_TYPE):
        return PolicyRefused(f"The directory schema refused to {operation}{obj} ({desc}).",
                             "The attribute or class is not in this forest's schema (is Exchange's schema "
                             "extension installed?).", detail=raw)
    return WizardError(f"The domain controller {where} refused to {operation}{obj}: {desc} ({code}).",
                       "Read the DC's message below; correct the cause and try again.", detail=raw)


def _rights_fix(operation: str, target: str) -> str:
    on = target or "the object"
    if "password" in operation:
        return f"Grant the 'Reset Password' right on {on} (or run as a member of Account Operators / Domain Admins)."
    if "SPN" in operation or "servicePrincipalName" in operation:
        return f"Grant 'Validated write to service principal name' / write servicePrincipalName on {on}."
    if "create" in operation:
        return f"Grant 'Create Computer objects' / 'Create User objects' on {on}."
    if "delete" in operation:
        return f"Grant 'Delete' on {on} (or 'Delete child objects' on its OU)."
    return f"Grant write access to the attribute on {on}, or run as an account that has it."


def translate_exception(exc: BaseException, *, operation: str, where: str, settings_hint: str = "",
                        secrets: tuple[Secret | str | None, ...] = ()) -> WizardError:
    """An exception from ldap3 (socket, TLS, SASL) -> a WizardError with a fix."""
    text = redact(str(exc), *secrets)
    low = text.lower()
    if isinstance(exc, WizardError):
        return exc
    if "doesn't match" in low or "does not match" in low:
        names = certificate_names(text)
        shown = f" ({', '.join(names)})" if names else ""
        name = names[0] if names else "<name on the certificate>"
        return ConnectionFailed(
            f"The certificate of {where} is valid but names another host{shown}: TLS name mismatch.",
            f"Connect by the name on the certificate (--dc {name}), or keep the address and give that name as the "
            f"TLS name: --dc-tls-name {name} (tls_name = \"{name}\" in the answers file's [target]).", detail=text)
    if "no_certificate_or_crl_found" in low or "no certificate or crl found" in low:
        return ConnectionFailed("The CA file holds no certificate.",
                                "Give a PEM file with the CA certificate (-----BEGIN CERTIFICATE-----) that issued the "
                                "DC's certificate (--ca-file / ca_file).", detail=text)
    if "clock skew" in low:
        return AuthenticationFailed(
            f"This machine's clock and the clock of {where} differ by more than Kerberos allows (5 minutes): the "
            "Kerberos bind is refused (KRB_AP_ERR_SKEW).",
            "Synchronise this machine's clock with the domain (chronyc makestep, or ntpdate <DC>), then try again.",
            detail=text)
    if "connection refused" in low or "errno 111" in low:
        return ConnectionFailed(
            f"Nothing accepts connections on {where} (connection refused): the host answers, the port is closed.",
            "Check the port: LDAPS is 636, StartTLS 389 (--ldap starttls); a DC without a certificate offers no "
            "LDAPS; a firewall that rejects looks the same.", detail=text)
    if "certificate verify failed" in low or isinstance(exc, ssl.SSLCertVerificationError) or \
            "hostname" in low and "match" in low or isinstance(exc, lx.LDAPCertificateError):
        return ConnectionFailed(
            f"The certificate of {where} could not be validated.",
            "Give the CA that issued the DC's certificate (option --ca-file / ca_file = \"/path/ca.pem\"), and "
            "connect by the name on the certificate (or set tls_name). Only for a lab: "
            "--insecure-skip-tls-verify turns validation off, and the wizard shows that in red.", detail=text)
    if isinstance(exc, lx.LDAPStartTLSError) or "starttls" in low or "start_tls" in low:
        return ConnectionFailed(f"StartTLS on {where} failed.",
                                "Check that the DC has a certificate for LDAP, or use LDAPS (636).", detail=text)
    if isinstance(exc, (lx.LDAPResponseTimeoutError, socket.timeout, TimeoutError)) or "timed out" in low:
        return OperationTimeout(f"{where} did not answer in time while trying to {operation}.",
                                "Check that the DC is up and reachable (firewall, port), or raise the timeouts."
                                + settings_hint, detail=text)
    if isinstance(exc, (lx.LDAPSocketOpenError, lx.LDAPSocketReceiveError, lx.LDAPSocketSendError,
                        lx.LDAPSessionTerminatedByServerError, ConnectionError, OSError)):
        return ConnectionFailed(f"Cannot reach the domain controller {where}.",
                                "Check the host name and port, that the DC is running and that a firewall "
                                "allows the connection." + settings_hint, detail=text)
    if _is_gss_error(exc) or "gss" in low or "kerberos" in low or "credentials cache" in low:
        return AuthenticationFailed(
            f"The Kerberos bind to {where} failed.",
            "Get a ticket first (kinit user@REALM, or log on to the domain), check KRB5CCNAME, and use the "
            "DC's DNS name as the SASL host (its ldap/ SPN).", detail=text)
    if isinstance(exc, lx.LDAPPackageUnavailableError) or "md4" in low:
        return AuthenticationFailed("NTLM is not available in this Python installation (MD4 is missing).",
                                    "Use a Kerberos bind or a simple bind over TLS, or install pycryptodome.",
                                    detail=text)
    return WizardError(f"LDAP error while trying to {operation} on {where}.",
                       "Read the detail below; check the connection settings.", detail=text)


def certificate_names(text: str) -> list[str]:
    """The names a certificate carries, from the TLS error that printed it (commonName, DNS alt names)."""
    names = re.findall(r"'commonName', '([^']+)'", text) + re.findall(r"\('DNS', '([^']+)'\)", text)
    return list(dict.fromkeys(names))


def dns_failure(host: str) -> str | None:
    """Why `host` does not resolve (None when it does)."""
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        return exc.strerror or str(exc)
    except (UnicodeError, OSError) as exc:
        return str(exc)
    return None


def _is_gss_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("gssapi")
