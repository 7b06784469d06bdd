"""Guidance in the organisation's own names: the screens speak of Contoso; once discovery has read the target,
the help shows its domain, NetBIOS name, namespace and ASA instead."""

from __future__ import annotations

import re
from typing import Any


def with_names(text: str, env: Any) -> str:
    if env is None:
        return text
    forest = env.forest
    domain = forest.root_domain or ""
    netbios = next((d.netbios_name for d in forest.domains if d.dns_name.lower() == domain.lower()), "")
    mail = next((ns.host for ns in env.namespaces if not ns.host.lower().startswith("autodiscover.")), "")
    pairs = []
    if mail:
        pairs.append((r"mail\.contoso\.com", mail))
    if domain:
        pairs.append((r"contoso\.com", domain))
    if netbios:
        pairs.append((r"CONTOSO(?=\\)", netbios.upper()))
    if env.asa_sam:
        pairs.append((r"EXASA\$", env.asa_sam))
    for pattern, name in pairs:
        text = re.sub(pattern, name.replace("\\", "\\\\"), text, flags=re.IGNORECASE if "." in pattern else 0)
    return text
