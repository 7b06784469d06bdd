"""asa-wizard: Kerberos for load-balanced Exchange, set up and proven per server."""

__version__ = "0.1.0"
