"""BacklogAgent: a growing backlog gets more consumers, never past max_consumers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.agents.backlog import BacklogAgent
from warden.domain.events import format_time
from warden.domain.incident import Incident, State
from warden.domain.plans import Step
from warden.domain.signals import Sample, Signals
from warden.domain.world import World

if TYPE_CHECKING:
    from collections.abc import Sequence

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def world(backlog: Sequence[float], consumers: float | None = 2, **limits: str) -> World:
    metrics = [("backlog", tuple(Sample(at(10 * i), v, f"b-{i}") for i, v in enumerate(backlog)))]
    if consumers is not None:
        metrics.append(("consumers", (Sample(at(0), consumers, "c-0"),)))
    limits = {"max_consumers": "8", **limits}
    return World(
        now=T0 + timedelta(seconds=100),
        signals={"queue": Signals("queue", metrics=tuple(sorted(metrics)))},
        limits={"queue": tuple(sorted((k.replace("__", "."), v) for k, v in limits.items() if v))},
    )


def incident() -> Incident:
    return Incident(
        id="inc-1",
        service="queue",
        state=State.OPEN,
        opened_at=at(40),
        first_signal_at=at(0),
        summary="backlog",
        kind="backlog_growth",
    )


GROWING = [800, 1000, 1300, 1700]
FAULT = world(GROWING)


def test_growth_past_the_threshold_is_detected() -> None:
    (found,) = BacklogAgent().detect(FAULT)
    assert found.kind == "backlog_growth"
    assert found.service == "queue"
    assert found.first_signal_at == at(0)
    assert found.evidence == ("b-0", "b-1", "b-2", "b-3")
    assert "grew 3 samples in a row, from 800 to 1700" in found.summary


def test_plan_scales_in_proportion_to_growth() -> None:
    plan = BacklogAgent().propose(incident(), FAULT)
    assert plan is not None
    assert plan.agent == "backlog"
    # Backlog grew by 112%: 2 consumers would become 5, but one step at most doubles them.
    assert plan.steps == (Step("scale_consumers", "queue", (("replicas", 4),)),)
    assert plan.evidence == ("b-0", "b-1", "b-2", "b-3", "c-0")
    for fact in ("800", "1700", "3 consecutive", "2 consumers", "by 112%", "max_consumers = 8"):
        assert fact in plan.rationale
    assert plan.confidence == 0.75  # 0.7 + 0.05 because the consumer count was measured
    assert "4 consumers (was 2)" in plan.expected_outcome


def test_slow_growth_adds_at_least_one_consumer() -> None:
    plan = BacklogAgent().propose(incident(), world([1001, 1002, 1003, 1004], consumers=4))
    assert plan is not None
    assert plan.steps[0].params == (("replicas", 5),)


def test_the_cap_is_never_passed() -> None:
    plan = BacklogAgent().propose(incident(), world(GROWING, consumers=3, max_consumers="4"))
    assert plan is not None
    assert plan.steps[0].params == (("replicas", 4),)
    assert "capped at max_consumers = 4" in plan.rationale
    assert plan.confidence == 0.7


def test_at_the_cap_no_plan() -> None:
    w = world(GROWING, consumers=8)
    agent = BacklogAgent()
    assert agent.detect(w) != []
    assert agent.propose(incident(), w) is None
    assert "at or above its max_consumers of 8" in agent.why_no_plan(incident(), w)


def test_without_a_declared_cap_no_plan() -> None:
    w = world(GROWING, max_consumers="")
    assert BacklogAgent().propose(incident(), w) is None
    assert "no max_consumers limit" in BacklogAgent().why_no_plan(incident(), w)


def test_unknown_consumers_no_plan_unless_declared() -> None:
    unknown = world(GROWING, consumers=None)
    assert BacklogAgent().propose(incident(), unknown) is None
    assert "unknown" in BacklogAgent().why_no_plan(incident(), unknown)
    declared = world(GROWING, consumers=None, desired__consumers="3")
    plan = BacklogAgent().propose(incident(), declared)
    assert plan is not None
    assert plan.steps[0].params == (("replicas", 6),)
    assert "as declared in desired state" in plan.rationale
    assert plan.evidence == ("b-0", "b-1", "b-2", "b-3")
    assert plan.confidence == 0.7


@pytest.mark.parametrize(
    "backlog",
    [
        [800, 1200, 1100, 1300, 1500],  # only two increases since the dip
        [100, 200, 300, 400, 500],  # growing, under the threshold
        [3000, 2500, 2000, 1500],  # shrinking
        [1500, 1500, 1500, 1500],  # flat
        [],
    ],
)
def test_no_growth_nothing_to_do(backlog: Sequence[float]) -> None:
    w = world(backlog)
    assert BacklogAgent().detect(w) == []
    assert BacklogAgent().propose(incident(), w) is None
    assert "no longer growing" in BacklogAgent().why_no_plan(incident(), w)


def test_growth_from_zero() -> None:
    plan = BacklogAgent().propose(incident(), world([0, 500, 1200, 2500]))
    assert plan is not None
    assert plan.steps[0].params == (("replicas", 4),)
    assert "grew from zero" in plan.rationale
    assert plan.confidence == 0.8


def test_same_inputs_same_plans() -> None:
    agent = BacklogAgent()
    assert agent.detect(FAULT) == agent.detect(FAULT)
    assert agent.propose(incident(), FAULT) == agent.propose(incident(), FAULT)
    assert agent.why_no_plan(incident(), FAULT) == ""


@pytest.mark.parametrize(
    "options", [{"threshold": -1}, {"min_increases": 0}, {"max_scale_factor": 1.0}]
)
def test_bad_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        BacklogAgent(**options)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(
    backlog=st.lists(st.floats(0, 1e6), min_size=1, max_size=10),
    consumers=st.integers(1, 40),
    cap=st.integers(1, 40),
)
def test_replicas_always_above_current_and_within_cap(
    backlog: Sequence[float], consumers: int, cap: int
) -> None:
    w = world(backlog, consumers=consumers, max_consumers=str(cap))
    plan = BacklogAgent().propose(incident(), w)
    if plan is None:
        return
    ((_, replicas),) = plan.steps[0].params
    assert consumers < replicas <= min(cap, 2 * consumers)
    assert 0.6 <= plan.confidence <= 0.95
