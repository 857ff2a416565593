"""BadDeployAgent: a version change followed by an error-rate jump is rolled back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.agents.bad_deploy import BadDeployAgent
from warden.domain.events import format_time
from warden.domain.incident import Incident, State
from warden.domain.plans import Step
from warden.domain.signals import Deploy, Sample, Signals
from warden.domain.world import World

if TYPE_CHECKING:
    from collections.abc import Sequence

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def world(
    deploys: Sequence[tuple[float, str]], rates: Sequence[tuple[float, float]], now: float = 300
) -> World:
    signals = Signals(
        "payments",
        deploys=tuple(Deploy(at(t), v, f"deploy-{v}-{t:g}") for t, v in deploys),
        metrics=(("error_rate", tuple(Sample(at(t), r, f"rate-{t:g}") for t, r in rates)),),
    )
    return World(now=T0 + timedelta(seconds=now), signals={"payments": signals})


def incident(service: str = "payments") -> Incident:
    return Incident(
        id="inc-1",
        service=service,
        state=State.OPEN,
        opened_at=at(200),
        first_signal_at=at(110),
        summary="bad deploy",
        kind="bad_deploy",
    )


BASELINE = [(10, 0.01), (20, 0.01), (30, 0.012), (40, 0.009), (50, 0.01)]
BAD = [(110, 0.2), (120, 0.22), (130, 0.19)]
FAULT = world([(0, "v1"), (100, "v2")], BASELINE + BAD)


def test_error_rate_jump_after_deploy_is_detected() -> None:
    (found,) = BadDeployAgent().detect(FAULT)
    assert found.kind == "bad_deploy"
    assert found.service == "payments"
    assert found.first_signal_at == at(110)
    assert found.evidence == ("deploy-v2-100", "rate-110", "rate-120", "rate-130")
    assert "v2" in found.summary
    assert "19.0%" in found.summary


def test_plan_rolls_back_to_the_last_good_version() -> None:
    plan = BadDeployAgent().propose(incident(), FAULT)
    assert plan is not None
    assert plan.agent == "bad-deploy"
    assert plan.steps == (Step("rollback_deploy", "payments", (("version", "v1"),)),)
    assert plan.evidence == ("deploy-v2-100", "rate-110", "rate-120", "rate-130")
    for fact in ("v1", "v2", "deploy-v2-100", "3 samples", "5.0%", "3x", "1.0%"):
        assert fact in plan.rationale
    # baseline known +0.1, last good checked +0.05, one extra bad sample +0.03,
    # median 0.2 is 4x the 5% limit: magnitude bonus capped at +0.1.
    assert plan.confidence == 0.88
    assert "runs v1" in plan.expected_outcome
    assert "below 5.0%" in plan.expected_outcome


def test_a_healthy_deploy_is_left_alone() -> None:
    calm = world([(0, "v1"), (100, "v2")], [*BASELINE, (110, 0.02), (120, 0.03), (130, 0.01)])
    agent = BadDeployAgent()
    assert agent.detect(calm) == []
    assert agent.propose(incident(), calm) is None
    assert "not above the limit" in agent.why_no_plan(incident(), calm)


def test_no_signals_no_detection() -> None:
    assert BadDeployAgent().detect(World(now=T0)) == []


def test_the_baseline_raises_the_limit() -> None:
    # A service that always runs at 4% errors: 8% is 2x its baseline, not 3x.
    noisy = [(t, 0.04) for t in (10, 20, 30, 40, 50)]
    after = [(110, 0.08), (120, 0.09), (130, 0.1)]
    assert BadDeployAgent().detect(world([(0, "v1"), (100, "v2")], noisy + after)) == []
    (found,) = BadDeployAgent(baseline_factor=1.5).detect(
        world([(0, "v1"), (100, "v2")], noisy + after)
    )
    assert "limit 6.0%" in found.summary


def test_without_baseline_only_the_threshold_counts_and_confidence_is_lower() -> None:
    only_after = world([(0, "v1"), (100, "v2")], BAD)
    plan = BadDeployAgent().propose(incident(), only_after)
    assert plan is not None
    assert "no pre-deploy baseline was sampled" in plan.rationale
    assert "never sampled" in plan.rationale  # v1's error rate was never seen
    assert plan.confidence == 0.73


def test_a_declared_error_rate_slo_is_the_threshold() -> None:
    # Verification checks the error_rate_slo limit, so detection uses the same level.
    rates = [*BASELINE, (110, 0.08), (120, 0.08), (130, 0.08)]
    plain = world([(0, "v1"), (100, "v2")], rates)
    assert BadDeployAgent().detect(plain) != []
    lenient = World(
        now=plain.now, signals=plain.signals, limits={"payments": (("error_rate_slo", "0.1"),)}
    )
    assert BadDeployAgent().detect(lenient) == []
    garbled = World(
        now=plain.now, signals=plain.signals, limits={"payments": (("error_rate_slo", "lots"),)}
    )
    assert BadDeployAgent().detect(garbled) != []


def test_errors_that_went_away_are_not_rolled_back() -> None:
    recovered = world([(0, "v1"), (100, "v2")], [*BASELINE, *BAD, (140, 0.01)])
    assert BadDeployAgent().detect(recovered) == []


def test_errors_coming_back_after_a_recovery_are_a_new_fault() -> None:
    again = [*BASELINE, *BAD, (140, 0.01), (150, 0.3), (160, 0.3)]
    (found,) = BadDeployAgent().detect(world([(0, "v1"), (100, "v2")], again))
    # A new first signal gives a new incident once the first one is closed.
    assert found.first_signal_at == at(150)
    assert found.evidence == ("deploy-v2-100", "rate-150", "rate-160")
    # Still the deploy's fault: its errors began within the window, if they recur after it.
    later = [*BASELINE, *BAD, (2000, 0.01), (2010, 0.3), (2020, 0.3)]
    (found,) = BadDeployAgent(window_s=900).detect(world([(0, "v1"), (100, "v2")], later, 2100))
    assert found.first_signal_at == at(2010)


def test_a_single_bad_sample_is_a_blip() -> None:
    blip = world([(0, "v1"), (100, "v2")], [*BASELINE, (110, 0.3)])
    assert BadDeployAgent().detect(blip) == []
    assert BadDeployAgent(min_samples=1).detect(blip) != []


def test_errors_starting_after_the_window_are_not_the_deploys_fault() -> None:
    late = world([(0, "v1"), (100, "v2")], [*BASELINE, (2000, 0.2), (2010, 0.2)], now=2100)
    assert BadDeployAgent(window_s=900).detect(late) == []
    assert BadDeployAgent(window_s=3600).detect(late) != []


def test_rollback_skips_a_previous_version_that_was_bad_too() -> None:
    rates = [*BASELINE, (60, 0.3), (70, 0.3), *BAD]
    history = world([(0, "v1"), (55, "v2"), (100, "v3")], rates)
    plan = BadDeployAgent().propose(incident(), history)
    assert plan is not None
    assert plan.steps[0].params == (("version", "v1"),)
    assert "from v2 to v3" in plan.rationale


def test_redeploy_of_the_same_version_is_not_a_rollback_target() -> None:
    history = world([(0, "v1"), (50, "v2"), (100, "v2")], BASELINE + BAD)
    plan = BadDeployAgent().propose(incident(), history)
    assert plan is not None
    assert plan.steps[0].params == (("version", "v1"),)


def test_first_deploy_is_detected_but_has_nothing_to_roll_back_to() -> None:
    first = world([(100, "v1")], BASELINE + BAD)
    agent = BadDeployAgent()
    (found,) = agent.detect(first)
    assert found.kind == "bad_deploy"
    assert agent.propose(incident(), first) is None
    assert "nothing to roll back to" in agent.why_no_plan(incident(), first)


def test_same_inputs_same_detections_and_plans() -> None:
    agent = BadDeployAgent()
    assert agent.detect(FAULT) == agent.detect(FAULT)
    assert agent.propose(incident(), FAULT) == BadDeployAgent().propose(incident(), FAULT)


@pytest.mark.parametrize(
    "options",
    [
        {"error_rate_threshold": 0},
        {"error_rate_threshold": 1.5},
        {"baseline_factor": 0.5},
        {"window_s": 0},
        {"min_samples": 0},
        {"baseline_samples": 0},
    ],
)
def test_bad_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        BadDeployAgent(**options)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(st.floats(0, 1), max_size=6),
    after=st.lists(st.floats(0, 1), min_size=1, max_size=8),
)
def test_any_series_gives_a_sound_plan_or_none(before: list[float], after: list[float]) -> None:
    rates = [(10 + i, r) for i, r in enumerate(before)]
    rates += [(110 + i, r) for i, r in enumerate(after)]
    w = world([(0, "v1"), (100, "v2")], rates)
    agent = BadDeployAgent()
    plan = agent.propose(incident(), w)
    assert plan == agent.propose(incident(), w)
    detected = agent.detect(w)
    if plan is None:
        # Detected with no known good version to return to: the agent says why.
        assert not detected or "nothing to roll back to" in agent.why_no_plan(incident(), w)
    else:
        assert detected
        assert agent.why_no_plan(incident(), w) == ""
        assert 0.6 <= plan.confidence <= 0.95
        assert plan.steps[0].params == (("version", "v1"),)
        assert set(plan.evidence) <= {"deploy-v2-100", *(f"rate-{t:g}" for t, _ in rates)}
