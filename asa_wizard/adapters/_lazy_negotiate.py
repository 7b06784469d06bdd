"""pypsrp's transport imported without its Kerberos/NTLM stack (spnego, with GSSAPI), which Basic over HTTPS (the
training lab) never uses and which costs a lab command about a tenth of a second to import.

`pypsrp.wsman` imports `HTTPNegotiateAuth` from `pypsrp.negotiate` (which imports spnego) when it is loaded.
`without_negotiate()` loads `pypsrp.wsman` with a placeholder in that module's place; `with_negotiate()`, called
before any connection that is not Basic, imports the real module and gives its class to `pypsrp.wsman`, as
pypsrp's own import would have. The placeholder refuses to authenticate, so nothing can use it by mistake.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from typing import Any

_LOCK = threading.Lock()


class _NotLoaded:
    """Stands for pypsrp's HTTPNegotiateAuth until `with_negotiate()` loads it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Kerberos/Negotiate for remote PowerShell was not loaded: call with_negotiate() first")


def without_negotiate() -> None:
    with _LOCK:
        if "pypsrp.wsman" in sys.modules:
            return
        if "pypsrp.negotiate" in sys.modules:  # already loaded by someone: nothing to save
            importlib.import_module("pypsrp.wsman")
            return
        placeholder = types.ModuleType("pypsrp.negotiate")
        placeholder.HTTPNegotiateAuth = _NotLoaded  # type: ignore[attr-defined]
        sys.modules["pypsrp.negotiate"] = placeholder
        try:
            importlib.import_module("pypsrp.wsman")
        finally:
            if sys.modules.get("pypsrp.negotiate") is placeholder:
                del sys.modules["pypsrp.negotiate"]
            package = sys.modules.get("pypsrp")
            if package is not None and getattr(package, "negotiate", None) is placeholder:
                delattr(package, "negotiate")


def with_negotiate() -> None:
    with _LOCK:
        wsman = importlib.import_module("pypsrp.wsman")
        if getattr(wsman, "HTTPNegotiateAuth", None) is _NotLoaded:
            wsman.HTTPNegotiateAuth = importlib.import_module("pypsrp.negotiate").HTTPNegotiateAuth
