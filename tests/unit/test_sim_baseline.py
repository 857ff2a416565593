"""The on-call baseline: seeded, ordered phases, faster with evidence, idle with no fault."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warden.sim.baseline import OnCall, OnCallRota, Phase, respond
from warden.sim.loader import ScenarioError, load_rota, parse

CRASH_TEXT = """
version: 1
name: crash
title: a crash
fault_class: process_crash
topology: {services: [{name: api}]}
faults: [{id: boom, at: 60, kind: crash, target: api}]
expect: {decision: act, actions: [{action: restart_service, target: api}]}
"""
CRASH = parse(CRASH_TEXT)
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


def _rota(tmp_path: Path, text: str) -> OnCallRota:
    path = tmp_path / "baseline.yaml"
    path.write_text(text)
    return OnCallRota.from_file(load_rota(path))


def test_a_baseline_file_sets_the_times_and_a_class_its_own(tmp_path: Path) -> None:
    rota = _rota(
        tmp_path,
        "version: 1\n"
        "acknowledge: {median_s: 60, spread: 0.1}\n"
        "fault_classes:\n"
        "  process_crash: {diagnose: {median_s: 30}, right_first: 1.0}\n",
    )
    assert rota.default.acknowledge == Phase(60.0, 0.1)
    assert rota.default.diagnose == OnCall().diagnose  # what is left out keeps its default
    crash = rota.for_scenario(CRASH)
    assert crash.diagnose == Phase(30.0, 0.5) and crash.right_first == 1.0
    assert crash.acknowledge == Phase(60.0, 0.1)
    fast, usual = respond(CRASH, 2, rota), respond(CRASH, 2)
    assert fast.mttr_s is not None and usual.mttr_s is not None
    assert fast.mttr_s < usual.mttr_s


def test_the_scenario_s_own_times_win_over_the_file(tmp_path: Path) -> None:
    own = parse(
        CRASH_TEXT.replace("expect:", "baseline: {on_call: {diagnose: {median_s: 5000}}}\nexpect:")
    )
    rota = _rota(tmp_path, "version: 1\ndiagnose: {median_s: 10}\n")
    assert rota.for_scenario(own).diagnose.median_s == 5000
    assert rota.for_scenario(CRASH).diagnose.median_s == 10


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("version: 1\ndiagnose: {median_s: -3}\n", "diagnose.median_s"),
        ("version: 1\nacknowlege: {median_s: 3}\n", "acknowlege: unknown field"),
        ("version: 1\nright_first: 2\n", "right_first"),
        ("version: 1\nfault_classes: {crash: {act: {spread: 1}}}\n", "fault_classes.crash.act"),
        ("diagnose: {median_s: 3}\n", "version: a required field is missing"),
        ("- 1\n", "not a mapping"),
    ],
)
def test_a_bad_baseline_file_says_where_and_how_to_fix(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_rota(path)
    assert says in str(caught.value)
    assert str(path) in str(caught.value) and "fix:" in str(caught.value)


def test_the_shipped_example_baseline_file_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "on-call-baseline.yaml"
    rota = OnCallRota.from_file(load_rota(example))
    assert rota.by_class["process_crash"].right_first == 0.95
    assert rota.default == OnCall()  # the file spells the defaults out
