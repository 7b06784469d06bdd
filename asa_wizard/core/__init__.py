"""The pure domain: model, ports, steps, checks, journal, report. No UI, LDAP or WinRM imports here."""
