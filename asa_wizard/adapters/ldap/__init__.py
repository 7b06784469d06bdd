"""Active Directory over LDAP (ldap3): the wizard's `DirectoryPort`.

One class for every directory the wizard talks to: a real domain controller (LDAPS or StartTLS, simple,
Kerberos or NTLM bind) and the training lab (ldap3's MOCK_SYNC server built by `asa_wizard.lab.directory`).
The lab goes through `LdapDirectory.from_server`, which skips only the socket: every search, filter,
modify and error translation in these modules runs the same way in both.

Rules this package keeps:
- a password never travels without TLS: a simple or NTLM bind and a `unicodePwd` write are refused before
  anything is sent when the channel is not encrypted;
- certificates are validated unless the user opted out explicitly (`insecure_skip_tls_verify`);
- every filter value is escaped (`escape_filter_chars`), every DN component too (`escape_rdn`);
- searches are paged, referrals are not chased (`auto_referrals=False`), sockets have timeouts;
- one connection per directory, used under a lock: the UI calls from worker threads;
- each change re-reads its object first and gives back what undo needs.

Modules: `connection` (settings, TLS, bind, the connections, the low-level search and write), `reads` (the
forest, Exchange's configuration, accounts), `changes` (changes to accounts), `accounts` (creating and deleting
one), `values` (attributes, FILETIME, DN parsing, name checks). `LdapDirectory` is all of them.
"""

from __future__ import annotations

from .accounts import AccountCreation
from .connection import LdapSettings
from .values import AUTODISCOVER_KEYWORD, datetime_to_filetime, filetime_to_datetime


class LdapDirectory(AccountCreation):
    """`DirectoryPort` over ldap3. Build with `LdapDirectory(settings)` for a DC, or `from_server(...)`."""


__all__ = ["AUTODISCOVER_KEYWORD", "LdapDirectory", "LdapSettings", "datetime_to_filetime", "filetime_to_datetime"]
