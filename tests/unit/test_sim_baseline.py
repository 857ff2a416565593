"""The on-call baseline: seeded, ordered phases, faster with evidence, idle with no fault."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from warden.sim.baseline import OnCall, Phase, respond
from warden.sim.loader import parse

CRASH = parse("""
version: 1
name: crash
title: a crash
fault_class: process_crash
topology: {services: [{name: api}]}
faults: [{id: boom, at: 60, kind: crash, target: api}]
expect: {decision: act, actions: [{action: restart_service, target: api}]}
""")
QUIET = parse("""
version: 1
name: quiet
title: nothing
fault_class: control
topology: {services: [{name: api}]}
expect: {decision: no_action}
""")


def test_the_same_seed_gives_the_same_response() -> None:
    assert respond(CRASH, 3) == respond(CRASH, 3)
    assert respond(CRASH, 3) != respond(CRASH, 4)


@given(st.integers(min_value=0, max_value=10_000))
def test_phases_are_in_order_and_recovery_follows_the_fault(seed: int) -> None:
    human = respond(CRASH, seed)
    assert human.paged_at is not None and human.acknowledged_at is not None
    assert human.fixed_at is not None and human.mttr_s is not None
    assert 60 < human.paged_at < human.acknowledged_at < human.fixed_at
    assert human.mttr_s == round(human.fixed_at - 60, 3)


def test_an_earlier_page_with_the_facts_is_faster() -> None:
    plain = respond(CRASH, 1)
    helped = respond(CRASH, 1, paged_at=70.0, evidence=True)
    assert helped.paged_at == 70.0
    assert helped.mttr_s is not None and plain.mttr_s is not None
    assert helped.mttr_s < plain.mttr_s


def test_nothing_to_fix_means_no_page_and_no_mttr() -> None:
    quiet = respond(QUIET, 0)
    assert (quiet.paged_at, quiet.mttr_s, quiet.pages) == (None, None, 0)


def test_the_distributions_are_configurable() -> None:
    instant = Phase(1.0, 0.0)
    fast = OnCall(instant, instant, instant, instant, right_first=1.0)
    human = respond(CRASH, 0, fast)
    assert human.mttr_s is not None
    assert abs(human.mttr_s - (1 + 1 + 1 + 120 / 1)) < 1e-6
