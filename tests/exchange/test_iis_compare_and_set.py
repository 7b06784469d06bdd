"""An application's IIS authentication changed as a compare-and-set in one Windows-side script: read as the
server read reads it, set only when it is the planned old settings, and what was found reported either way;
through the real WinRM adapter to the lab's endpoint."""

from __future__ import annotations

from dataclasses import replace

import pytest

from asa_wizard.adapters import iis_ep
from asa_wizard.adapters import powershell as ps
from asa_wizard.core.errors import PolicyRefused, ScriptFailed
from asa_wizard.core.model import IisAuth, Service
from asa_wizard.lab.exchange import parse_script

from .conftest import scenario

EAS = "Microsoft-Server-ActiveSync"
SERVER = "ex01.contoso.com"
OLD = IisAuth(basic=True, windows=False, providers=["Negotiate", "NTLM"])  # fresh-with-seg's ActiveSync
NEW = IisAuth(basic=False, windows=True, providers=["Negotiate", "NTLM"], use_kernel_mode=True,
              use_app_pool_credentials=True)


def iis(w, server: str = "EX01") -> IisAuth:
    d = w.exchange.server(server).vdirs[Service.EAS]
    return IisAuth(d.basic, d.windows, list(d.providers), d.use_kernel_mode, d.use_app_pool_credentials)


def test_the_script_has_the_shape_of_every_windows_script():
    marker = "Zq9-unique-value"
    script = iis_ep.change_iis_auth_script("EWS", IisAuth(providers=[marker]), NEW)
    assert len(script) < ps.MAX_SCRIPT_CHARS and script.rstrip().endswith("-Compress")
    op, values = parse_script(script)
    assert op == "change_iis_auth" and values["OldProviders"] == [marker]
    body = "\n".join(script.splitlines()[1 + len(ps.PARAMETERS[op]):])
    assert marker not in body  # values only ever appear in the header assignments
    # the read is the server read's own (the same IIS function), and it comes before any set
    assert iis_ep.CHANGE_BODY.index("$r=I $l") < iis_ep.CHANGE_BODY.index("Set-WebConfigurationProperty")
    with pytest.raises(ValueError):  # the new settings are checked as for set_iis_auth; OWA has none to set
        iis_ep.change_iis_auth_script("OWA", OLD, NEW)
    with pytest.raises(ValueError):
        iis_ep.change_iis_auth_script(EAS, OLD, replace(NEW, providers=["Kerberos"]))


def test_old_settings_are_changed_and_reported_as_the_previous_ones(world_of):
    w = world_of(scenario("fresh-with-seg"))
    swap = w.exchange_port().change_iis_auth(SERVER, EAS, OLD, NEW)
    assert (swap.state, swap.found) == ("old", OLD)
    assert iis(w) == NEW and iis(w, "EX02") == OLD  # that server only


def test_settings_already_new_are_left_as_they_are(world_of):
    w = world_of(scenario("fresh-with-seg"))
    port = w.exchange_port()
    port.set_iis_auth(SERVER, EAS, NEW)
    before = len(w.exchange.received)
    swap = port.change_iis_auth(SERVER, EAS, OLD, NEW)
    assert (swap.state, swap.found) == ("new", NEW)
    assert iis(w) == NEW and len(w.exchange.received) == before + 1  # one script, no second one to set


@pytest.mark.parametrize("other", [
    IisAuth(basic=True, windows=True, providers=["NTLM"]),
    replace(OLD, providers=["NTLM", "Negotiate"]),  # the same providers in another order are other settings
    replace(OLD, providers=["negotiate", "NTLM"]),  # and in another case too, as the wizard compares them
])
def test_other_settings_are_reported_and_not_changed(world_of, other):
    w = world_of(scenario("fresh-with-seg"))
    d = w.exchange.server("EX01").vdirs[Service.EAS]  # another administrator, in IIS Manager on the server
    d.basic, d.windows, d.providers = other.basic, other.windows, list(other.providers)
    swap = w.exchange_port().change_iis_auth(SERVER, EAS, OLD, NEW)
    assert (swap.state, swap.found) == ("stale", other)
    assert iis(w) == other


def test_settings_that_cannot_be_read_are_not_changed_and_the_reason_is_given(world_of):
    w = world_of(scenario("fresh-with-seg", EX01="iis-unreadable"))
    with pytest.raises(ScriptFailed) as err:
        w.exchange_port().change_iis_auth(SERVER, EAS, OLD, NEW)
    assert "insufficient permissions" in err.value.problem
    assert iis(w) == OLD


def test_a_provider_the_wizard_does_not_know_is_refused_with_a_fix_before_anything_is_sent(world_of):
    w = world_of(scenario("fresh-with-seg"))
    port = w.exchange_port()
    before = len(w.exchange.received)
    unknown = replace(NEW, providers=["Negotiate", "Negotiate:PKU2U"])
    for call in (lambda: port.change_iis_auth(SERVER, EAS, OLD, unknown),
                 lambda: port.set_iis_auth(SERVER, EAS, unknown)):
        with pytest.raises(PolicyRefused) as err:
            call()
        assert "Negotiate:PKU2U" in err.value.problem and "IIS Manager" in err.value.fix
    assert len(w.exchange.received) == before and iis(w) == OLD
