"""The plan: Microsoft's order, nothing that is already right, exact and quoted commands, honest blockers.

Planned on each scenario's own truth (`environment_from_scenario`), the same Environment discovery builds."""

from __future__ import annotations

from asa_wizard.core.answers import parse_answers
from asa_wizard.core.plan import build_plan, escape_dn_value, ps
from asa_wizard.core.report import render_plan
from asa_wizard.core.steps import STEP_IDS, step_index
from asa_wizard.lab.scenario import find_scenario, load_scenario
from asa_wizard.lab.snapshot import environment_from_scenario
from asa_wizard.resources import templates_dir


def env_of(name: str):
    return environment_from_scenario(load_scenario(find_scenario(name)))


def plan_for(name: str, answers: str):
    return build_plan(env_of(name), parse_answers(f'[target]\nlab = "{name}"\n' + answers, "a.toml"))


FRESH = '''
[asa]
mode = "create"
name = "EXASA$"
[seg]
service_account = "svc_awseg"
test_users = ["alice"]
[iis_auth]
enabled = true
'''


def test_fresh_with_seg_follows_the_documented_order_and_every_change_waits_for_what_it_needs():
    plan = plan_for("fresh-with-seg", FRESH)
    ids = [c.id for c in plan.changes]
    # the new password goes to every server first, AD changes once after every push
    assert ids[:4] == ["asa.create", "rollout.generate:EX01", "rollout.push:EX02", "rollout.ad-password"]
    assert set(plan.change("rollout.ad-password").depends_on) == {"rollout.generate:EX01", "rollout.push:EX02"}
    # steps never go backwards
    assert [step_index(c.step) for c in plan.changes] == sorted(step_index(c.step) for c in plan.changes)
    assert all(c.step in STEP_IDS for c in plan.changes)
    position = {cid: i for i, cid in enumerate(ids)}
    for c in plan.changes:
        for d in c.depends_on:
            assert position[d] < position[c.id], (c.id, d)
    # the SPNs only after every server behind the name has the credential
    for spn in ("spn.add:HTTP/mail.contoso.com", "spn.add:HTTP/autodiscover.contoso.com"):
        assert "rollout.ad-password" in plan.change(spn).depends_on
    # KCD: the target SPN must be on the ASA first; protocol transition, never unconstrained delegation
    assert "spn.add:HTTP/mail.contoso.com" in plan.change("seg.delegate-to").depends_on
    uac = plan.change("seg.protocol-transition")
    assert uac.new & 0x1000000 and not uac.new & 0x80000
    assert "-TrustedToAuthForDelegation $true" in uac.commands[0]
    assert not any("TrustedForDelegation $true" in cmd for cmd in uac.commands)
    assert plan.change("seg.delegate-to").new == ["HTTP/mail.contoso.com"]
    assert {c.id for c in plan.changes if c.step == "iis-auth"} == {"iis.eas:EX01", "iis.eas:EX02"}
    assert not plan.blockers


def test_fresh_with_seg_commands_are_the_documented_ones_with_real_names():
    plan = plan_for("fresh-with-seg", FRESH)
    create = plan.change("asa.create")
    assert create.commands[0].startswith("New-ADComputer -Name 'EXASA' -SamAccountName 'EXASA' -Path "
                                         "'CN=Computers,DC=contoso,DC=com'")
    assert "Set-ADComputer -Identity 'EXASA$' -Replace @{'msDS-SupportedEncryptionTypes'=24}" in create.commands
    assert plan.change("rollout.generate:EX01").commands[-1] == (
        "Set-ClientAccessService -Identity 'ex01.contoso.com' -CleanUpInvalidAlternateServiceAccountCredentials "
        "-AlternateServiceAccountCredential $cred")
    assert plan.change("rollout.push:EX02").commands[-1].startswith("Set-ClientAccessService -Identity "
                                                                    "'ex02.contoso.com' -CleanUpInvalid")
    assert plan.change("rollout.ad-password").commands == [
        "Set-ADAccountPassword -Identity 'CN=EXASA,CN=Computers,DC=contoso,DC=com' -Reset -NewPassword $cred.Password"]
    assert plan.change("spn.add:HTTP/mail.contoso.com").commands[-1] == \
        "setspn -S 'HTTP/mail.contoso.com' 'CONTOSO\\EXASA$'"
    mapi = plan.change("auth.mapi:EX01")
    assert mapi.new == ["Ntlm", "OAuth", "Negotiate"]  # Negotiate appended, OAuth kept
    assert mapi.commands[0].endswith("-IISAuthenticationMethods 'Ntlm','OAuth','Negotiate'")
    assert mapi.undo_commands[0].endswith("-IISAuthenticationMethods 'Ntlm','OAuth'")
    assert plan.change("seg.delegate-to").commands[0] == \
        "Set-ADUser -Identity 'svc_awseg' -Add @{'msDS-AllowedToDelegateTo'='HTTP/mail.contoso.com'}"
    assert "Add-LocalGroupMember -Group 'IIS_IUSRS' -Member 'CONTOSO\\svc_awseg'" in \
        plan.change("seg.iis-iusrs:EX01").commands[0]
    iis = plan.change("iis.eas:EX01")
    assert "basicAuthentication' -Name 'enabled' -Value $false" in iis.commands[0]
    assert "useKernelMode' -Value $true" in iis.commands[0] and iis.warning
    for c in plan.changes:
        assert c.commands and c.proven_by, c.id
        # everything on a fresh organisation can be undone; the password reset of the new account goes with the
        # account (undoing asa.create deletes it)
        assert c.undo_commands or (c.id == "rollout.ad-password" and "asa.create" in plan.change(
            "rollout.generate:EX01").depends_on), c.id


def test_fresh_without_a_gateway_plans_no_delegation_and_nothing_blocks():
    plan = plan_for("fresh", '[asa]\nmode = "create"\nname = "EXASA$"\n')
    assert {c.step for c in plan.changes} == {"asa", "rollout", "spns", "client-auth"}
    assert not plan.blockers and not any("SEG" in n for n in plan.notes)
    runbook = render_plan(plan, "markdown", templates_dir())
    assert "SEG" not in runbook and "IIS authentication" not in runbook
    assert "in the order Microsoft documents: the account, the credential on every server, the SPNs once every " \
           "server behind a name holds the credential, then client authentication." in runbook
    # asking for a gateway the organisation does not have is a blocker naming the account, not a crash
    asked = plan_for("fresh", '[asa]\nmode = "create"\nname = "EXASA$"\n[seg]\nservice_account = "svc_awseg"\n')
    assert any("svc_awseg" in p.text for p in asked.blockers)


def test_new_server_gets_a_copy_and_no_new_password():
    plan = plan_for("new-server-missing-asa", '[asa]\nname = "E15ASA$"\n')
    assert [c.id for c in plan.changes] == ["rollout.copy:Exch-2019"]
    copy = plan.change("rollout.copy:Exch-2019")
    assert copy.params["source"] == "exch-2016.tailspintoys.ca"
    assert not any(c.action == "roll-generate" for c in plan.changes)
    assert any("no new password" in n for n in plan.notes)


def test_healthy_plan_is_empty():
    plan = plan_for("healthy", '[asa]\nname = "EXASA$"\nenctypes = 24\n[client_auth]\noutlook_anywhere = true\n')
    assert plan.changes == [] and not plan.blockers


def test_stale_credential_copies_from_the_current_server():
    plan = plan_for("stale-credential", '[asa]\nname = "EXASA$"\n')
    assert [(c.id, c.params.get("source")) for c in plan.changes] == [("rollout.copy:EX02", "ex01.contoso.com")]
    # EX02 held a credential before: undo cannot bring the old password back, and says so
    assert plan.changes[0].undo_commands == [] and "cannot" in plan.changes[0].warning


def test_rc4_only_sets_aes_then_rolls_a_new_password_everywhere():
    plan = plan_for("rc4-only", '[asa]\nname = "EXASA$"\nenctypes = 24\n')
    assert [c.id for c in plan.changes] == ["asa.enctypes", "rollout.generate:EX01", "rollout.push:EX02",
                                            "rollout.ad-password"]
    assert plan.change("asa.enctypes").old == 4 and plan.change("asa.enctypes").new == 24
    assert plan.change("rollout.generate:EX01").depends_on == ["asa.enctypes"]


def test_duplicate_spn_is_blocked_until_the_owner_is_named():
    blocked = plan_for("duplicate-spn", '[asa]\nname = "EXASA$"\n')
    assert blocked.changes == []
    assert len(blocked.blockers) == 1 and "FABRIKAM\\E14ASA$" in blocked.blockers[0].text
    assert 'move_from = ["FABRIKAM\\E14ASA$"]' in blocked.blockers[0].fix
    moved = plan_for("duplicate-spn", '[asa]\nname = "EXASA$"\n[spns]\nmove_from = ["FABRIKAM\\\\E14ASA$"]\n')
    assert not moved.blockers
    (remove,) = moved.changes
    assert remove.action == "remove-spns" and remove.params["spns"] == ["http/MAIL.fabrikam.com"]
    assert remove.commands == ["setspn -D 'http/MAIL.fabrikam.com' 'FABRIKAM\\E14ASA$'"]


def test_seg_only_plans_the_delegation_pieces():
    plan = plan_for("seg-kcd", '[asa]\nname = "EXASA$"\n[seg]\nservice_account = "svc_awseg"\n'
                               '[iis_auth]\nenabled = true\n')
    assert {c.step for c in plan.changes} == {"seg", "iis-auth"}
    assert any("realm CONTOSO.COM" in n for n in plan.notes)


def test_missing_reused_asa_and_unknown_server_are_blocking():
    plan = plan_for("fresh", '[asa]\nname = "NOPE$"\n[rollout]\nservers = ["EX09"]\n')
    texts = " ".join(p.text for p in plan.blockers)
    assert "NOPE$ was not found" in texts and "EX09" in texts


def test_hostile_values_are_quoted_for_powershell():
    assert ps("O'Brien") == "'O''Brien'"
    assert ps("a\u2019b") == "'a\u2019\u2019b'"  # PowerShell treats typographic quotes as quotes too
    assert ps("$(Remove-Item C:\\)") == "'$(Remove-Item C:\\)'"
    assert ps("x`; y") == "'x`; y'"
    assert escape_dn_value("a,b=c") == "a\\,b\\=c" and escape_dn_value("#x ") == "\\#x\\ "
    plan = plan_for("fresh", '[asa]\nmode = "create"\nname = "EX\'ASA$"\n')
    assert "-Identity 'EX''ASA$'" in plan.change("asa.create").commands[1]


def test_a_user_account_asa_is_planned_as_a_change_with_its_old_password(tmp_path):
    """Microsoft's script changes a user account's password with the old one (no Reset Password right needed)
    and resets only a computer's: the plan a consultant takes to change control says which, with the commands."""
    text = find_scenario("reroll-with-spns").read_text(encoding="utf-8").replace("EXASA$", "svc-exasa")
    path = tmp_path / "user-asa.toml"
    path.write_text(text.replace('sam = "svc-exasa"\nkind = "computer"', 'sam = "svc-exasa"\nkind = "user"'))
    answers = f'[target]\nlab = "{path}"\n[asa]\nname = "svc-exasa"\n[rollout]\nnew_password = true\n'
    plan = build_plan(environment_from_scenario(load_scenario(path)), parse_answers(answers, "a.toml"))
    ad = plan.change("rollout.ad-password")
    assert ad.summary.startswith("Change the password of CONTOSO\\svc-exasa in AD to the pushed one with its old "
                                 "password")
    dn = "CN=svc-exasa,OU=Exchange,OU=Service Accounts,DC=contoso,DC=com"
    assert ad.commands == [
        "$old=(Get-ClientAccessService 'ex01.contoso.com' -IncludeAlternateServiceAccountCredentialPassword)"
        ".AlternateServiceAccountConfiguration.EffectiveCredentials[1].Credential",
        f"Set-ADAccountPassword -Identity '{dn}' -OldPassword $old.Password -NewPassword $cred.Password"]
    assert "needs no Reset Password right" in ad.warning and "minimum password age" in ad.warning
    computer = plan_for("reroll-with-spns", '[asa]\nname = "EXASA$"\n[rollout]\nnew_password = true\n')
    assert computer.change("rollout.ad-password").summary.startswith("Reset the password of CONTOSO\\EXASA$")
