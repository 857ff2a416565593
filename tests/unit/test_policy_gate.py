"""Cedar bundle loading and the decision gate: guardrails first, then policy outcomes."""

from __future__ import annotations

import shutil
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from warden.agents.service_down import ServiceDownAgent
from warden.domain.catalog import Catalog
from warden.domain.control import Controls
from warden.domain.decisions import Outcome
from warden.domain.errors import ConfigError
from warden.domain.health import Health
from warden.domain.incident import Incident, State
from warden.domain.plans import Plan, Step, step_hash
from warden.domain.world import World
from warden.governance.gate import DecisionGate, StepContext
from warden.governance.policy import BUILTIN_BUNDLE, PolicyBundle, PolicyRequest

if TYPE_CHECKING:
    from pathlib import Path

    from warden.testing import ManualClock


@pytest.fixture(scope="module")
def bundle() -> PolicyBundle:
    return PolicyBundle(BUILTIN_BUNDLE, "default")


def planned(action: str = "restart_service", confidence: float = 0.95) -> Incident:
    plan = Plan("service-down", (Step(action, "payments"),), "why", ("e1",), confidence)
    return Incident(
        id="i1",
        service="payments",
        state=State.PLANNED,
        opened_at="2026-11-25T12:00:00.000000Z",
        first_signal_at="2026-11-25T12:00:00.000000Z",
        summary="down",
        plan=plan,
        step_hashes=(step_hash("i1", 0, plan.steps[0]),),
    )


AUTONOMOUS = StepContext(environment="staging", autonomy="autonomous")


def test_low_risk_confident_restart_is_allowed_with_reasons(bundle: PolicyBundle) -> None:
    gate = DecisionGate(bundle, Catalog(), confidence_floor=0.6)
    decision = gate.decide(planned(), 0, Controls(), AUTONOMOUS)
    assert decision.outcome is Outcome.ALLOW
    assert [r.policy_id for r in decision.reasons] == ["autonomous-low-risk"]
    assert decision.bundle_version == bundle.version
    assert decision.step_hash == planned().step_hashes[0]


def test_kill_switch_wins_over_policy(bundle: PolicyBundle) -> None:
    gate = DecisionGate(bundle, Catalog(), confidence_floor=0.6)
    decision = gate.decide(planned(), 0, Controls(True, "alice", "outage"), AUTONOMOUS)
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].policy_id == "guardrail:kill-switch"
    assert "alice" in decision.reasons[0].message


def test_action_outside_catalog_is_denied(bundle: PolicyBundle) -> None:
    gate = DecisionGate(bundle, Catalog(), confidence_floor=0.6)
    decision = gate.decide(planned("drop_database"), 0, Controls(), AUTONOMOUS)
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].policy_id == "guardrail:catalog"


def test_parameters_outside_schema_are_denied(bundle: PolicyBundle) -> None:
    incident = planned()
    assert incident.plan is not None
    step = Step("restart_service", "payments", (("force", True),))
    plan = replace(incident.plan, steps=(step,))
    incident = replace(incident, plan=plan, step_hashes=(step_hash("i1", 0, step),))
    decision = DecisionGate(bundle, Catalog(), 0.6).decide(incident, 0, Controls(), AUTONOMOUS)
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].policy_id == "guardrail:params"


def test_confidence_floor_denies(bundle: PolicyBundle) -> None:
    decision = DecisionGate(bundle, Catalog(), 0.8).decide(
        planned(confidence=0.7), 0, Controls(), AUTONOMOUS
    )
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].policy_id == "guardrail:confidence-floor"


@pytest.mark.parametrize(
    ("context", "action", "outcome", "policy", "approvers"),
    [
        (StepContext("staging", "supervised"), "restart_service", "needs_approval", "supervised-approval", 1),
        (AUTONOMOUS, "stop_service", "needs_approval", "high-risk-two-approvers", 2),
        (StepContext("staging", "autonomous", recent_actions_on_target=3), "restart_service", "deny", "restart-storm", 0),
        (StepContext("staging", "autonomous", change_freeze=True), "restart_service", "deny", "change-freeze", 0),
        (StepContext("staging", "recommend"), "restart_service", "deny", "autonomy:recommend", 0),
    ],
)  # fmt: skip
def test_policy_outcomes(
    bundle: PolicyBundle,
    context: StepContext,
    action: str,
    outcome: str,
    policy: str,
    approvers: int,
) -> None:
    decision = DecisionGate(bundle, Catalog(), 0.6).decide(planned(action), 0, Controls(), context)
    assert decision.outcome.value == outcome
    assert policy in [r.policy_id for r in decision.reasons]
    assert decision.approvers == approvers


def test_evaluation_error_is_a_deny(bundle: PolicyBundle) -> None:
    verdict = bundle.evaluate(
        PolicyRequest("a", "restart_service", "payments", {"environment": "x"})
    )
    assert verdict.outcome is Outcome.DENY
    assert verdict.reasons[0].policy_id == "policy-error"


def test_bundle_that_does_not_validate_is_refused(tmp_path: Path) -> None:
    shutil.copytree(BUILTIN_BUNDLE, tmp_path / "b")
    (tmp_path / "b" / "bad.cedar").write_text(
        '@id("typo") permit (principal, action, resource) when { context.confidance_pct > 1 };'
    )
    with pytest.raises(ConfigError, match="does not validate"):
        PolicyBundle(tmp_path / "b")


def test_bundle_version_changes_with_content(tmp_path: Path, bundle: PolicyBundle) -> None:
    shutil.copytree(BUILTIN_BUNDLE, tmp_path / "default")
    assert PolicyBundle(tmp_path / "default").version == bundle.version
    with (tmp_path / "default" / "safety.cedar").open("a") as f:
        f.write("\n// a comment changes the version too\n")
    assert PolicyBundle(tmp_path / "default").version != bundle.version


def test_agent_plans_restart_with_rationale_evidence_confidence(clock: ManualClock) -> None:
    failing = Health("payments", 3, "2026-11-25T12:00:00Z", ("a", "b", "c"), "connection refused")
    world = World(clock.now(), {"payments": failing, "orders": Health("orders")})
    agent = ServiceDownAgent(failure_threshold=3)
    (detection,) = agent.detect(world)
    assert detection.service == "payments"
    assert detection.evidence == ("a", "b", "c")
    plan = agent.propose(planned(), world)
    assert plan is not None
    assert plan.steps == (Step("restart_service", "payments"),)
    assert plan.evidence == ("a", "b", "c")
    assert "connection refused" in plan.rationale
    assert plan.confidence == 0.95
    assert (
        agent.detect(replace(world, health={"payments": replace(failing, consecutive_failures=2)}))
        == []
    )


def test_agent_is_pure(clock: ManualClock) -> None:
    failing = Health("payments", 5, "2026-11-25T12:00:00Z", ("a",), "timed out after 0.5 s")
    world = World(clock.now(), {"payments": failing})
    agent = ServiceDownAgent()
    assert agent.propose(planned(), world) == agent.propose(planned(), world)
    plan = agent.propose(planned(), world)
    assert plan is not None and plan.confidence == 0.77
