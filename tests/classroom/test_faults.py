"""The lab's fault catalogue and `--random-faults`: reproducible, different per seed, and every fault is
found by the check catalogue (so a trainee can always see what to fix)."""

from __future__ import annotations

import pytest

from asa_wizard.core.checks import problems, run_catalogue
from asa_wizard.core.discovery import DiscoveryOptions, discover
from asa_wizard.core.errors import ConfigError
from asa_wizard.lab.faults import catalogue, parse_seed, pick_faults, with_faults, with_random_faults
from asa_wizard.lab.scenario import find_scenario, load_scenario
from asa_wizard.lab.world import LabWorld


@pytest.fixture(scope="module")
def healthy():
    return load_scenario(find_scenario("healthy"))


def problems_in_lab(scenario) -> dict[str, str]:
    """What the catalogue reports on the lab built from `scenario` (its state and its simulated Kerberos)."""
    world = LabWorld(scenario)
    try:
        return problems(run_catalogue(world.truth(), probe=world.kerberos_probe(), now=scenario.now))
    finally:
        world.close()


def test_the_healthy_scenario_has_nothing_to_find(healthy):
    assert problems_in_lab(healthy) == {}


def test_every_fault_of_the_catalogue_is_found_by_its_checks(healthy):
    faults = catalogue(healthy)
    kinds = {f.kind for f in faults}
    assert kinds == {"credential-missing", "credential-stale", "outlook-anywhere-ntlm", "mapi-no-negotiate",
                     "spn-missing", "spn-duplicate", "rc4-only"}
    for fault in faults:
        found = problems_in_lab(with_faults(healthy, [fault]))
        for check_id in fault.checks:
            assert found.get(check_id) == "fail", (fault.label, found)


def test_the_same_seed_gives_the_same_faults_and_other_seeds_differ(healthy):
    labels = lambda seed: [f.label for f in pick_faults(healthy, seed)]
    assert labels(42) == labels(42)
    assert len(labels(42)) == 3
    sets = {tuple(sorted(labels(seed))) for seed in range(1, 21)}
    assert len(sets) >= 10  # twenty seeds, many different exercises
    # and the lab itself is the same for the same seed
    a, b = with_random_faults(healthy, 42), with_random_faults(healthy, 42)
    assert a.servers == b.servers and a.accounts == b.accounts
    assert a.exercise == b.exercise


def test_no_two_faults_undo_each_other(healthy):
    for seed in range(50):
        faults = pick_faults(healthy, seed)
        slots = [f.slot for f in faults]
        assert len(slots) == len(set(slots)), [f.label for f in faults]
        # one objective per fault: "n of 3 faults fixed" counts faults
        assert len(with_faults(healthy, faults).exercise.objectives) == len(faults) == 3


def test_a_random_set_is_found_through_the_wizards_own_discovery(healthy):
    broken = with_random_faults(healthy, 42)
    assert broken.exercise is not None and len(broken.exercise.faults) == 3
    assert len(broken.exercise.hints) == 3
    assert "seed 42" in broken.title
    world = LabWorld(broken)
    try:
        env = discover(world.directory_port(), world.exchange_port(), DiscoveryOptions(asa_sam=broken.asa))
        found = problems(run_catalogue(env, probe=world.kerberos_probe(), now=broken.now))
    finally:
        world.close()
    for objective in broken.exercise.objectives:
        assert found.get(objective) == "fail", (broken.exercise.faults, found)
    assert healthy.exercise is None  # the scenario itself was not changed


def test_the_lab_opens_with_the_seed_from_the_environment(monkeypatch):
    monkeypatch.setenv("ASA_WIZARD_RANDOM_FAULTS", "5")
    world = LabWorld.open("healthy")
    try:
        assert world.scenario.exercise is not None and "seed 5" in world.scenario.title
        # reset puts the broken organisation back, not the healthy one
        world.reset()
        assert world.current_scenario().servers == world.scenario.servers
    finally:
        world.close()
    monkeypatch.setenv("ASA_WIZARD_RANDOM_FAULTS", "five")
    with pytest.raises(ConfigError) as err:
        LabWorld.open("healthy")
    assert "'five' is not a whole number" in err.value.problem and "--random-faults 42" in err.value.fix


def test_seeds_must_be_whole_numbers():
    assert parse_seed(" 12 ") == 12
    with pytest.raises(ConfigError, match="negative"):
        parse_seed("-1")


def test_a_scenario_with_nothing_healthy_to_break_is_refused():
    fresh = load_scenario(find_scenario("fresh"))  # no ASA yet: no credential, SPN or key to break
    with pytest.raises(ConfigError) as err:
        with_random_faults(fresh, 1)
    assert "nothing healthy to break" in err.value.problem and "--scenario healthy" in err.value.fix


def test_random_faults_add_to_the_scenarios_own_exercise():
    rc4 = load_scenario(find_scenario("rc4-only"))
    broken = with_random_faults(rc4, 9)
    assert broken.exercise.objectives[0] == "asa.enctypes"
    assert len(broken.exercise.objectives) > 1
    assert broken.exercise.hints[:2] == rc4.exercise.hints
    assert "rc4-only" not in {f.kind for f in pick_faults(rc4, 9)}  # already broken that way
    assert broken.exercise.time_limit_minutes == rc4.exercise.time_limit_minutes
