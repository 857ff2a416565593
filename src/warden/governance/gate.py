"""The decision gate: guardrails first, then the policy bundle. Control plane.

Guardrails hold whatever the policy says: the kill switch, the action catalog and its
parameter schemas, the confidence floor, and autonomy levels that only observe or recommend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jsonschema import Draft202012Validator

from warden.domain.decisions import Decision, Outcome, Reason
from warden.governance.policy import PolicyBundle, PolicyRequest

if TYPE_CHECKING:
    from warden.domain.catalog import Catalog
    from warden.domain.control import Controls
    from warden.domain.incident import Incident


@dataclass(frozen=True, slots=True)
class StepContext:
    """What the runtime computed about the world for one step."""

    environment: str
    autonomy: str
    recent_actions_on_target: int = 0
    change_freeze: bool = False


class DecisionGate:
    """Decides each step of a plan: guardrails, then Cedar."""

    def __init__(self, bundle: PolicyBundle, catalog: Catalog, confidence_floor: float) -> None:
        self.bundle = bundle
        self.catalog = catalog
        self.confidence_floor = confidence_floor

    def decide(
        self, incident: Incident, index: int, controls: Controls, context: StepContext
    ) -> Decision:
        """The decision for step ``index`` of the incident's plan."""
        assert incident.plan is not None, "decide needs a proposed plan"
        plan = incident.plan
        step = plan.steps[index]
        hash_ = incident.step_hashes[index]

        def deny(policy_id: str, message: str) -> Decision:
            reason = Reason(policy_id, message)
            return Decision(Outcome.DENY, hash_, (reason,), bundle_version=self.bundle.version)

        if controls.kill_switch:
            who = f" by {controls.set_by}" if controls.set_by else ""
            return deny("guardrail:kill-switch", f"kill switch engaged{who}: {controls.reason}")
        spec = self.catalog.get(step.action)
        if spec is None:
            known = ", ".join(self.catalog.names())
            return deny("guardrail:catalog", f"{step.action!r} is not in the catalog ({known})")
        errors = list(Draft202012Validator(spec.params_schema).iter_errors(dict(step.params)))
        if errors:
            return deny("guardrail:params", "; ".join(e.message for e in errors))
        if plan.confidence < self.confidence_floor:
            return deny(
                "guardrail:confidence-floor",
                f"confidence {plan.confidence:.2f} is below the floor {self.confidence_floor:.2f}",
            )
        if context.autonomy in ("observe", "recommend"):
            return deny(
                f"autonomy:{context.autonomy}",
                f"autonomy level is {context.autonomy}: Warden proposes, humans act",
            )
        verdict = self.bundle.evaluate(
            PolicyRequest(
                principal=plan.agent,
                action=step.action,
                resource=step.target,
                context={
                    "environment": context.environment,
                    "autonomy": context.autonomy,
                    "risk": spec.risk.value,
                    # Rounded down so a policy threshold is never met by rounding.
                    "confidence_pct": math.floor(plan.confidence * 100),
                    "severity": incident.severity,
                    "recent_actions_on_target": context.recent_actions_on_target,
                    "change_freeze": context.change_freeze,
                },
            )
        )
        return Decision(
            verdict.outcome, hash_, verdict.reasons, verdict.approvers, self.bundle.version
        )
