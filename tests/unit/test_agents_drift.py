"""DriftAgent: drifted fields are reconciled; a service that should run is started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warden.agents.drift import DriftAgent
from warden.domain.events import format_time
from warden.domain.incident import Incident, State
from warden.domain.plans import Step
from warden.domain.signals import Drift, Signals
from warden.domain.world import World

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def drift(field: str, desired: str, observed: str, since: float = 0) -> Drift:
    return Drift(field, desired, observed, at(since), f"drift-{field}")


def world(*drifts: Drift, now: float = 60, **desired: str) -> World:
    return World(
        now=T0 + timedelta(seconds=now),
        signals={"inventory": Signals("inventory", drift=drifts)},
        limits={"inventory": tuple(sorted((f"desired.{k}", v) for k, v in desired.items()))},
    )


def incident() -> Incident:
    return Incident(
        id="inc-1",
        service="inventory",
        state=State.OPEN,
        opened_at=at(40),
        first_signal_at=at(0),
        summary="drift",
        kind="drift",
    )


FAULT = world(drift("replicas", "3", "2"), replicas="3")


def test_drift_past_the_grace_period_is_detected() -> None:
    (found,) = DriftAgent().detect(FAULT)
    assert found.kind == "drift"
    assert found.service == "inventory"
    assert found.severity == "minor"
    assert found.first_signal_at == at(0)
    assert found.evidence == ("drift-replicas",)
    assert "replicas is 2, desired 3" in found.summary


def test_plan_reconciles_the_field() -> None:
    plan = DriftAgent().propose(incident(), FAULT)
    assert plan is not None
    assert plan.agent == "drift"
    assert plan.steps == (
        Step("reconcile_state", "inventory", (("desired", "3"), ("field", "replicas"))),
    )
    assert plan.evidence == ("drift-replicas",)
    assert "replicas is 2, desired 3" in plan.rationale
    assert "30 s grace" in plan.rationale
    # 30 s past the grace period, of a 120 s horizon: 0.8 + 0.15 * 0.25.
    assert plan.confidence == 0.84
    assert "replicas = 3" in plan.expected_outcome


def test_confidence_grows_with_the_age_of_the_drift() -> None:
    young = DriftAgent().propose(incident(), world(drift("replicas", "3", "2"), now=30))
    old = DriftAgent().propose(incident(), world(drift("replicas", "3", "2"), now=600))
    assert young is not None and old is not None
    assert (young.confidence, old.confidence) == (0.8, 0.95)


def test_running_desired_true_starts_the_service_first() -> None:
    w = world(drift("version", "1.4.2", "1.4.1"), drift("running", "true", "false", since=5))
    plan = DriftAgent().propose(incident(), w)
    assert plan is not None
    assert plan.steps == (
        Step("start_service", "inventory"),
        Step("reconcile_state", "inventory", (("desired", "1.4.2"), ("field", "version"))),
    )
    assert plan.evidence == ("drift-running", "drift-version")


def test_running_desired_false_stops_the_service() -> None:
    plan = DriftAgent().propose(incident(), world(drift("running", "false", "true")))
    assert plan is not None
    assert plan.steps == (Step("stop_service", "inventory"),)


def test_drift_within_the_grace_period_waits() -> None:
    w = world(drift("replicas", "3", "2", since=45))
    agent = DriftAgent()
    assert agent.detect(w) == []
    assert agent.propose(incident(), w) is None
    assert "longer than 30 s" in agent.why_no_plan(incident(), w)
    assert DriftAgent(grace_s=0).detect(w) != []


def test_the_configuration_in_force_wins() -> None:
    # The desired value changed to what is observed: no drift any more.
    assert DriftAgent().detect(world(drift("replicas", "3", "2"), replicas="2")) == []
    # The desired value changed to something else: reconcile to the new value.
    plan = DriftAgent().propose(incident(), world(drift("replicas", "3", "2"), replicas="5"))
    assert plan is not None
    assert plan.steps[0].params == (("desired", "5"), ("field", "replicas"))


def test_no_drift_nothing_to_do() -> None:
    assert DriftAgent().detect(world()) == []
    assert DriftAgent().propose(incident(), world()) is None


def test_same_inputs_same_plans() -> None:
    agent = DriftAgent()
    assert agent.detect(FAULT) == agent.detect(FAULT)
    assert agent.propose(incident(), FAULT) == agent.propose(incident(), FAULT)
    assert agent.why_no_plan(incident(), FAULT) == ""


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="grace_s"):
        DriftAgent(grace_s=-1)
