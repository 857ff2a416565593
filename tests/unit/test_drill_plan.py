"""The drills' plan: each fault's cure, what Warden may do, and what policy makes of it."""

from __future__ import annotations

import pytest

from warden.demo.drill import expected_outcome
from warden.demo.drill_faults import FAULTS
from warden.demo.drill_fleet import CHAIN, MANAGED
from warden.domain.catalog import Catalog, Risk


def test_the_six_fault_classes_of_the_issue_are_drilled() -> None:
    assert list(FAULTS) == ["kill", "hang", "slow", "bad-version", "corrupt-batch", "dependency"]


@pytest.mark.parametrize("fault", FAULTS.values(), ids=list(FAULTS))
def test_each_cure_is_a_catalog_action_allowed_on_every_target(fault) -> None:
    assert Catalog().get(fault.action) is not None
    for round_ in range(len(fault.targets)):
        target = fault.target(round_)
        assert (fault.action, target) in fault.allowed(target)
        # Nothing beyond the fault's own target is ever acceptable.
        assert {t for _, t in fault.allowed(target)} == {target}


def test_process_faults_rotate_over_the_chain_so_one_service_is_not_hit_every_round() -> None:
    for name in ("kill", "hang", "slow"):
        fault = FAULTS[name]
        assert {fault.target(r) for r in range(3)} == set(CHAIN)
    assert set(CHAIN) <= set(MANAGED) and "bank" not in MANAGED


@pytest.mark.parametrize("fault", FAULTS.values(), ids=list(FAULTS))
def test_policy_decides_whether_a_drill_expects_a_remedy_or_an_approval(fault) -> None:
    medium = Catalog().get(fault.action).risk is not Risk.LOW
    assert expected_outcome(fault, "supervised", builtin_policies=False) == "approval"
    assert expected_outcome(fault, "autonomous", builtin_policies=False) == "remediate"
    builtin = expected_outcome(fault, "autonomous", builtin_policies=True)
    assert builtin == ("approval" if medium else "remediate")
