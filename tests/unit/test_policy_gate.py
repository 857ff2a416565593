"""Cedar bundle loading and the decision gate: guardrails first, then policy outcomes."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from warden.agents.service_down import ServiceDownAgent
from warden.domain.catalog import Catalog
from warden.domain.control import AutonomyRule, Controls
from warden.domain.decisions import Outcome
from warden.domain.errors import ConfigError
from warden.domain.health import Health
from warden.domain.incident import Incident, State
from warden.domain.plans import Plan, Step, step_hash
from warden.domain.topology import ServiceNode, Topology
from warden.domain.world import World
from warden.governance.context import ActionRecord, FreezeWindow, Situation
from warden.governance.gate import DecisionGate, Guardrails, RateLimit
from warden.governance.policy import BUILTIN_BUNDLE, PolicyBundle, PolicyRequest
from warden.governance.policy_tests import DEFAULT_CONTEXT

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


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOPOLOGY = Topology.of(
    [
        ServiceNode("payments", "payments"),
        ServiceNode("orders", "shop", depends_on=("payments",)),
        ServiceNode("gateway", "edge", depends_on=("orders",)),
    ]
)


def situation(autonomy: str = "autonomous", **overrides: object) -> Situation:
    base = Situation(
        now=NOW,
        environment="staging",
        default_autonomy=autonomy,
        controls=Controls(),
        topology=TOPOLOGY,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def gate(bundle: PolicyBundle, **rails: object) -> DecisionGate:
    return DecisionGate(bundle, Catalog(), Guardrails(**rails))  # type: ignore[arg-type]


def test_low_risk_confident_restart_is_allowed_with_reasons(bundle: PolicyBundle) -> None:
    ruling = gate(bundle).decide(planned(), 0, situation())
    decision = ruling.decision
    assert decision.outcome is Outcome.ALLOW
    assert [r.policy_id for r in decision.reasons] == ["autonomous-low-risk"]
    assert decision.bundle_version == bundle.version
    assert decision.step_hash == planned().step_hashes[0]
    assert ruling.context is not None
    assert ruling.context.domain == "payments"
    assert ruling.context.blast_radius_pct == 34  # 1 of 3 services, rounded up


def test_kill_switch_wins_over_policy(bundle: PolicyBundle) -> None:
    halted = situation(controls=Controls(True, "alice", "outage"))
    decision = gate(bundle).decide(planned(), 0, halted).decision
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].policy_id == "guardrail:kill-switch"
    assert "alice" in decision.reasons[0].message


def test_domain_kill_switch_only_stops_its_domain(bundle: PolicyBundle) -> None:
    controls = Controls(killed_domains=(("payments", "db migration"),))
    decision = gate(bundle).decide(planned(), 0, situation(controls=controls)).decision
    assert decision.reasons[0].policy_id == "guardrail:kill-switch"
    assert "payments" in decision.reasons[0].message
    other = Controls(killed_domains=(("shop", "x"),))
    assert gate(bundle).decide(planned(), 0, situation(controls=other)).decision.outcome is (
        Outcome.ALLOW
    )


def test_action_outside_catalog_is_denied(bundle: PolicyBundle) -> None:
    decision = gate(bundle).decide(planned("drop_database"), 0, situation()).decision
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].policy_id == "guardrail:catalog"


def test_parameters_outside_schema_are_denied(bundle: PolicyBundle) -> None:
    incident = planned()
    assert incident.plan is not None
    step = Step("restart_service", "payments", (("force", True),))
    plan = replace(incident.plan, steps=(step,))
    incident = replace(incident, plan=plan, step_hashes=(step_hash("i1", 0, step),))
    decision = gate(bundle).decide(incident, 0, situation()).decision
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].policy_id == "guardrail:params"


def test_confidence_floor_denies(bundle: PolicyBundle) -> None:
    decision = (
        gate(bundle, confidence_floor=0.8).decide(planned(confidence=0.7), 0, situation()).decision
    )
    assert decision.outcome is Outcome.DENY
    assert decision.reasons[0].policy_id == "guardrail:confidence-floor"


def test_rate_limit_guardrail_counts_the_window(bundle: PolicyBundle) -> None:
    history = (
        ActionRecord(NOW - timedelta(seconds=30), "restart_service", "payments"),
        ActionRecord(NOW - timedelta(seconds=700), "restart_service", "payments"),
    )
    rails = {"per_target": RateLimit(1, 60)}
    decision = gate(bundle, **rails).decide(planned(), 0, situation(history=history)).decision
    assert decision.reasons[0].policy_id == "guardrail:rate-limit"
    old = history[1:]
    assert gate(bundle, **rails).decide(planned(), 0, situation(history=old)).decision.outcome is (
        Outcome.ALLOW
    )


def test_blast_radius_cap(bundle: PolicyBundle) -> None:
    decision = gate(bundle, max_blast_radius_pct=30).decide(planned(), 0, situation()).decision
    assert decision.reasons[0].policy_id == "guardrail:blast-radius"
    assert "34%" in decision.reasons[0].message


ALONE = Topology.of([ServiceNode("payments", "payments")])


@pytest.mark.parametrize("level", ["autonomous", "supervised"])
def test_a_one_service_fleet_is_not_more_than_half_of_it(bundle: PolicyBundle, level: str) -> None:
    ruling = gate(bundle).decide(planned(), 0, situation(level, topology=ALONE))
    assert ruling.context is not None
    assert (ruling.context.blast_radius_pct, ruling.context.fleet_size) == (100, 1)
    ids = [r.policy_id for r in ruling.decision.reasons]
    assert "wide-blast-radius-needs-approval" not in ids
    expected = Outcome.ALLOW if level == "autonomous" else Outcome.NEEDS_APPROVAL
    assert ruling.decision.outcome is expected
    capped = gate(bundle, max_blast_radius_pct=50).decide(planned(), 0, situation(topology=ALONE))
    assert capped.decision.outcome is Outcome.ALLOW


def test_a_plan_on_both_services_of_two_still_asks_a_person(bundle: PolicyBundle) -> None:
    pair = Topology.of([ServiceNode("payments", "payments"), ServiceNode("orders", "payments")])
    incident = planned()
    assert incident.plan is not None
    steps = (Step("restart_service", "payments"), Step("restart_service", "orders"))
    incident = replace(
        incident,
        plan=replace(incident.plan, steps=steps),
        step_hashes=tuple(step_hash("i1", i, s) for i, s in enumerate(steps)),
    )
    decision = gate(bundle).decide(incident, 0, situation(topology=pair)).decision
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    assert "wide-blast-radius-needs-approval" in [r.policy_id for r in decision.reasons]


def test_freeze_window_reaches_policy(bundle: PolicyBundle) -> None:
    freeze = FreezeWindow(NOW - timedelta(hours=1), NOW + timedelta(hours=1), ("payments",))
    decision = gate(bundle).decide(planned(), 0, situation(freezes=(freeze,))).decision
    assert decision.outcome is Outcome.DENY
    assert "change-freeze" in [r.policy_id for r in decision.reasons]
    elsewhere = FreezeWindow(NOW - timedelta(hours=1), NOW + timedelta(hours=1), ("shop",))
    assert gate(bundle).decide(planned(), 0, situation(freezes=(elsewhere,))).decision.outcome is (
        Outcome.ALLOW
    )


def test_most_specific_autonomy_rule_wins(bundle: PolicyBundle) -> None:
    controls = Controls(
        autonomy=(
            AutonomyRule("*", "payments", "supervised"),
            AutonomyRule("staging", "*", "recommend"),
        )
    )
    decision = gate(bundle).decide(planned(), 0, situation(controls=controls)).decision
    assert decision.describe().startswith("needs_approval(1)")
    recommend_only = Controls(autonomy=(AutonomyRule("staging", "*", "recommend"),))
    denied = gate(bundle).decide(planned(), 0, situation(controls=recommend_only)).decision
    assert denied.reasons[0].policy_id == "autonomy:recommend"


@pytest.mark.parametrize(
    ("autonomy", "action", "outcome", "policy", "approvers"),
    [
        ("supervised", "restart_service", "needs_approval", "supervised-approval", 1),
        ("autonomous", "stop_service", "needs_approval", "high-risk-two-approvers", 2),
        ("recommend", "restart_service", "deny", "autonomy:recommend", 0),
        ("observe", "restart_service", "deny", "autonomy:observe", 0),
    ],
)
def test_policy_outcomes(
    bundle: PolicyBundle, autonomy: str, action: str, outcome: str, policy: str, approvers: int
) -> None:
    decision = gate(bundle).decide(planned(action), 0, situation(autonomy)).decision
    assert decision.outcome.value == outcome
    assert policy in [r.policy_id for r in decision.reasons]
    assert decision.approvers == approvers


def test_forbid_lists_overridden_permits_too(bundle: PolicyBundle) -> None:
    history = tuple(
        ActionRecord(NOW - timedelta(seconds=10 * i), "restart_service", "payments")
        for i in range(1, 4)
    )
    decision = gate(bundle).decide(planned(), 0, situation(history=history)).decision
    assert decision.outcome is Outcome.DENY
    assert [r.policy_id for r in decision.reasons] == ["restart-storm", "autonomous-low-risk"]


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
    hung = "no answer within 0.5 s after connecting"
    failing = Health("payments", 5, "2026-11-25T12:00:00Z", ("a",), hung)
    world = World(clock.now(), {"payments": failing})
    agent = ServiceDownAgent()
    assert agent.propose(planned(), world) == agent.propose(planned(), world)
    plan = agent.propose(planned(), world)
    assert plan is not None and plan.confidence == 0.82
    # A connect timeout points at the path, not the process: no restart.
    cut = replace(failing, last_error="connect timed out after 0.5 s")
    assert agent.propose(planned(), replace(world, health={"payments": cut})) is None


def test_agent_cap_limits_autonomy(bundle: PolicyBundle) -> None:
    capped = situation(agent_caps={"service-down": "recommend"})
    decision = gate(bundle).decide(planned(), 0, capped).decision
    assert decision.reasons[0].policy_id == "autonomy:recommend"
    supervised = situation(agent_caps={"service-down": "supervised"})
    assert (
        gate(bundle)
        .decide(planned(), 0, supervised)
        .decision.describe()
        .startswith("needs_approval(1)")
    )


@pytest.mark.parametrize("action", Catalog().names())
def test_every_catalog_action_is_in_the_builtin_schema(bundle: PolicyBundle, action: str) -> None:
    # Strict evaluation (policy tests, explain) checks the request against the schema: an
    # action the schema does not declare would be a policy error, never a decision.
    request = PolicyRequest("service-down", action, "payments", dict(DEFAULT_CONTEXT))
    explanation = bundle.explain(request)
    assert explanation.errors == ()
    assert [r for r in explanation.verdict.reasons if r.policy_id == "policy-error"] == []
    assert explanation.matched  # the default context is permitted by some policy
