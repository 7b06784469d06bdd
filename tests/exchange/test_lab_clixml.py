"""The lab's /PowerShell endpoint writes its output rows as CLIXML directly and keeps the protocol messages that
never change serialised once: what the client receives must be exactly what psrpcore's own serializer made of
the same objects. Proven here byte for byte, and by deserialising both with psrpcore's and with pypsrp's
deserialiser, for every row of every Get- cmdlet of the lab model in every shipped scenario and for arbitrary
values."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import Any

import psrpcore
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psrpcore.types import (
    ApplicationPrivateData,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PipelineState,
    PSInvocationState,
    PSObject,
    RunspacePoolState,
    RunspacePoolStateMsg,
    deserialize,
)
from pypsrp.serializer import Serializer

from asa_wizard.adapters.psrp import PsCredential
from asa_wizard.core.secrets import Secret
from asa_wizard.lab import exchange_cmdlets
from asa_wizard.lab.psrp_endpoint import (
    Clixml,
    _metadata_clixml,
    _output,
    constant_message_key,
    fast_clixml,
    metadata_object,
    psrpcore_clixml,
)
from asa_wizard.lab.scenario import find_scenario, list_scenarios, load_scenario

GETS = sorted(n for n in exchange_cmdlets._HANDLERS if n.startswith("Get-"))


# --- deserialised values as plain data, to compare -----------------------------------------------------------
def _core(v: Any) -> Any:
    """A value from psrpcore's deserialiser as plain data."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, datetime):
        return ("datetime", v.isoformat(), getattr(v, "nanosecond", 0))
    if isinstance(v, (str, int)):
        return (type(v).__mro__[-2].__name__, str(v))
    if isinstance(v, list):
        return [_core(x) for x in v]
    if isinstance(v, PSObject):
        meta = v.PSObject
        return {"types": list(meta.type_names),
                "adapted": {p.name: _core(p.get_value(v)) for p in meta.adapted_properties},
                "extended": {p.name: _core(p.get_value(v)) for p in meta.extended_properties}}
    raise AssertionError(f"unexpected {type(v)}")


def _pypsrp(v: Any) -> Any:
    """A value from pypsrp's deserialiser as plain data."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, list):
        return [_pypsrp(x) for x in v]
    if type(v).__name__ == "PSCredential":
        return {"PSCredential": (v.username, v.password)}
    if hasattr(v, "extended_properties"):
        return {"types": list(v.types), "adapted": {k: _pypsrp(x) for k, x in v.adapted_properties.items()},
                "extended": {k: _pypsrp(x) for k, x in v.extended_properties.items()}}
    raise AssertionError(f"unexpected {type(v)}")


def assert_same_as_psrpcore(row: Any) -> bytes:
    """The direct writer's bytes are psrpcore's, and read back the same with both deserialisers."""
    fast = fast_clixml(row)
    assert fast is not None, row
    slow = psrpcore_clixml(row)
    assert fast == slow
    assert _core(deserialize(ET.fromstring(fast), None)) == _core(deserialize(ET.fromstring(slow), None))
    assert _pypsrp(Serializer().deserialize(fast.decode())) == _pypsrp(Serializer().deserialize(slow.decode()))
    return fast


# --- every row of the lab model ----------------------------------------------------------------------------
def _rows_of_every_get(scenario, sessions: int | None = None) -> dict[str, list[Any]]:
    """Every row each Get- cmdlet returns through a session on each server (the first `sessions` servers)."""
    from asa_wizard.lab.world import LabWorld

    world = LabWorld(scenario)
    lab = world.exchange
    admin = lab.current_credentials()[0]
    out: dict[str, list[Any]] = {n: [] for n in GETS}
    for server in scenario.servers[:sessions]:
        if server.fault == "unreachable":
            continue
        session = exchange_cmdlets.open_session(lab, server.name, admin, False)
        calls: list[tuple[str, dict[str, Any]]] = [
            ("Get-ExchangeServer", {}), ("Get-ExchangeServer", {"Identity": server.fqdn}),
            ("Get-ClientAccessService", {}),
            ("Get-ClientAccessService", {"IncludeAlternateServiceAccountCredentialStatus": True}),
            ("Get-ClientAccessService", {"Identity": server.name,
                                         "IncludeAlternateServiceAccountCredentialPassword": True}),
            ("Get-User", {}),
        ]
        for cmdlet in ("Get-OutlookAnywhere", "Get-MapiVirtualDirectory", "Get-ActiveSyncVirtualDirectory",
                       "Get-WebServicesVirtualDirectory", "Get-OwaVirtualDirectory"):
            calls += [(cmdlet, {}), (cmdlet, {"ADPropertiesOnly": True}), (cmdlet, {"Server": server.name})]
        for cmdlet, params in calls:
            try:
                rows = exchange_cmdlets.invoke_cmdlet(lab, session, cmdlet, params)
            except exchange_cmdlets.CmdletError:
                continue
            out[cmdlet].extend(r for r in rows if not isinstance(r, exchange_cmdlets.CmdletError))
    return out


@pytest.mark.parametrize("name", sorted(s.name for s in list_scenarios()))
def test_every_row_the_lab_returns_is_written_as_psrpcore_writes_it(name):
    rows = _rows_of_every_get(load_scenario(find_scenario(name)))
    assert set(rows) == set(GETS) and all(rows[c] for c in GETS), {c: len(r) for c, r in rows.items()}
    with_password = 0
    for cmdlet, found in rows.items():
        for row in found:
            if _holds_a_password(row):
                # a SecureString needs the pool's session key: psrpcore serialises these rows itself
                assert fast_clixml(row) is None
                assert not isinstance(_output(row), Clixml)
                with_password += 1
            else:
                assert_same_as_psrpcore(row)
                assert isinstance(_output(row), Clixml)
    scenario = load_scenario(find_scenario(name))
    if any(s.credentials for s in scenario.servers):
        assert with_password  # the password read was among the rows, and it took psrpcore's path


def _holds_a_password(v: Any) -> bool:
    if isinstance(v, Secret):
        return True
    if isinstance(v, PsCredential):
        return v.password is not None
    if isinstance(v, dict):
        return any(_holds_a_password(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_holds_a_password(x) for x in v)
    return False


def test_the_organisation_wide_read_of_a_grown_lab_is_written_as_psrpcore_writes_it():
    rows = _rows_of_every_get(load_scenario(find_scenario("healthy")).with_servers(40), sessions=1)
    assert len(rows["Get-ClientAccessService"]) >= 2 * 40  # the organisation-wide reads: every server
    for found in rows.values():
        for row in found:
            if not _holds_a_password(row):
                assert_same_as_psrpcore(row)


# --- arbitrary values ---------------------------------------------------------------------------------------
# XML cannot carry U+FFFE / U+FFFF and lone surrogates at all (psrpcore writes them as they are too)
_text = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=12) | st.sampled_from(
    ["", "_x0041_", "_X", "a<b>&\"'", "\r\n\t", "\x00\x1f\x7f\x9f", "é", "\U0001f600", "CONTOSO\\EXASA$"])
_names = st.text(st.characters(exclude_categories=("Cs", "Cn")), min_size=1, max_size=8).filter(lambda k: k != "PSTypeName")
_when = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.none() | st.just(timezone.utc) | st.just(timezone(timedelta(hours=5, minutes=30))))
_leaf = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 31), max_value=2 ** 63 - 1) | _text | _when
         | st.builds(lambda u: PsCredential(u, None), _text))
_value = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_names, inner, max_size=4),
                      max_leaves=20)
_row = st.builds(lambda props, type_name: ({"PSTypeName": type_name} if type_name is not None else {}) | props,
                 st.dictionaries(_names, _value, max_size=6),
                 st.none() | st.text(st.characters(categories=("L", "N", "P")), min_size=1, max_size=20))


@settings(max_examples=200, deadline=None)
@given(_row)
def test_any_row_of_plain_values_is_written_as_psrpcore_writes_it(row):
    assert_same_as_psrpcore(row)


def test_the_same_object_twice_in_a_row_is_written_twice_as_psrpcore_does():
    shared = {"QualifiedUserName": "CONTOSO\\EXASA$", "WhenAdded": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    assert_same_as_psrpcore({"EffectiveCredentials": [shared, shared], "Latest": shared, "Previous": None})


@pytest.mark.parametrize("value", [Secret("x"), PsCredential("CONTOSO\\a", Secret("x")), 1.5, b"raw", -(2 ** 31) - 1,
                                   PSInvocationState.Completed, {"k": {1, 2}}])
def test_values_the_writer_does_not_handle_go_to_psrpcore(value):
    assert fast_clixml({"Value": value}) is None
    assert not isinstance(_output({"Value": value}), Clixml)


# --- messages serialised once --------------------------------------------------------------------------------
def test_constant_protocol_messages_are_kept_once_by_everything_that_decides_their_bytes():
    pool = psrpcore.ServerRunspacePool()
    messages = [pool.our_capability,
                ApplicationPrivateData(ApplicationPrivateData=pool.application_private_data),
                RunspacePoolStateMsg(RunspaceState=RunspacePoolState.Opened),
                PipelineState(PipelineState=PSInvocationState.Running),
                PipelineState(PipelineState=PSInvocationState.Completed),
                PipelineState(PipelineState=PSInvocationState.Stopped)]
    keys = [constant_message_key(m) for m in messages]
    assert None not in keys and len(set(keys)) == len(keys)  # different content, different keys
    # the same content made again has the same key (and so psrpcore's bytes of the first)
    assert constant_message_key(PipelineState(PipelineState=PSInvocationState.Completed)) == keys[4]
    assert psrpcore_clixml(PipelineState(PipelineState=PSInvocationState.Completed)) == psrpcore_clixml(messages[4])
    # a state with an error record is serialised by psrpcore every time
    error = ErrorRecord(Exception=NETException(Message="boom"),
                        CategoryInfo=ErrorCategoryInfo(Reason="ParseException"), FullyQualifiedErrorId="X")
    assert constant_message_key(PipelineState(PipelineState=PSInvocationState.Failed,
                                              ExceptionAsErrorRecord=error)) is None


def test_a_metadata_reply_is_psrpcores_and_differs_with_what_rbac_shows():
    pool = psrpcore.ServerRunspacePool()
    admin = ("cmdlet", "Get-ClientAccessService", ("Identity", "IncludeAlternateServiceAccountCredentialPassword"))
    viewer = ("cmdlet", "Get-ClientAccessService", ("Identity",))
    for key in (admin, viewer, ("count", 2)):
        assert _metadata_clixml(pool, key).data == psrpcore_clixml(metadata_object(key), pool)
        assert _metadata_clixml(pool, key).data == _metadata_clixml(pool, key).data
    assert _metadata_clixml(pool, admin).data != _metadata_clixml(pool, viewer).data
    assert b"IncludeAlternateServiceAccountCredentialPassword" not in _metadata_clixml(pool, viewer).data
