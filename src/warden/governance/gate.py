"""The decision gate: guardrails first, then the policy bundle. Control plane.

Guardrails hold whatever the policy says: the kill switch (global or per domain), the
action catalog and its parameter schemas, the confidence floor (below it Warden
escalates and never acts), rate limits, the blast-radius cap, and autonomy levels that
only observe or recommend.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from warden.domain.decisions import Decision, Outcome, Reason
from warden.governance.context import Situation, StepContext, build_context, count_recent
from warden.governance.policy import PolicyBundle, PolicyRequest, Verdict

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.domain.catalog import Catalog
    from warden.domain.incident import Incident


VERDICT_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` executed steps within ``window_s`` seconds."""

    count: int
    window_s: float


@dataclass(frozen=True, slots=True)
class Guardrails:
    """Limits no policy can lift."""

    confidence_floor: float = 0.6
    max_blast_radius_pct: int = 100
    per_target: RateLimit | None = field(default_factory=lambda: RateLimit(5, 600))
    per_action: RateLimit | None = field(default_factory=lambda: RateLimit(20, 600))
    total: RateLimit | None = field(default_factory=lambda: RateLimit(60, 3600))


@dataclass(frozen=True, slots=True)
class CanaryBundle:
    """A candidate bundle deciding for the services ``covers`` accepts (a bundle in canary)."""

    bundle: PolicyBundle
    covers: Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Ruling:
    """A decision with the context it was made in (for explain and audit)."""

    decision: Decision
    context: StepContext | None


class DecisionGate:
    """Decides each step of a plan: guardrails, then Cedar."""

    def __init__(
        self,
        bundle: PolicyBundle,
        catalog: Catalog,
        guardrails: Guardrails | None = None,
        entities: Any = None,
    ) -> None:
        self.bundle = bundle
        self.catalog = catalog
        self.guardrails = guardrails or Guardrails()
        self.entities = entities
        # A bundle in canary decides for its services; ``bundle`` for all the others.
        self.canary: CanaryBundle | None = None
        self._validators: dict[str, Draft202012Validator] = {}
        # A bundle is immutable and Cedar deterministic, so verdicts are memoised per
        # bundle version: incidents repeat the same questions, and an answer costs ~100 µs.
        self._verdicts: OrderedDict[tuple[Any, ...], Verdict] = OrderedDict()

    def decide(self, incident: Incident, index: int, situation: Situation) -> Ruling:
        """The decision for step ``index`` of the incident's plan."""
        assert incident.plan is not None, "decide needs a proposed plan"
        plan = incident.plan
        step = plan.steps[index]
        hash_ = incident.step_hashes[index]
        version = self.bundle_for(step.target).version

        def deny(policy_id: str, message: str, context: StepContext | None = None) -> Ruling:
            reason = Reason(policy_id, message)
            return Ruling(Decision(Outcome.DENY, hash_, (reason,), bundle_version=version), context)

        blocked = self.blocked(incident, index, situation)
        if blocked is not None:
            return deny(*blocked)
        spec = self.catalog.get(step.action)
        assert spec is not None, "blocked() checks the catalog"
        context = build_context(incident, index, spec, situation)
        rails = self.guardrails
        # A one-service fleet is all of itself: the cap bounds how much of a fleet one plan
        # disturbs, and would otherwise forbid every action there.
        if context.blast_radius_pct > rails.max_blast_radius_pct and context.fleet_size > 1:
            return deny(
                "guardrail:blast-radius",
                f"the plan can disturb {context.blast_radius_pct}% of the fleet;"
                f" the cap is {rails.max_blast_radius_pct}%",
                context,
            )
        if context.autonomy in ("observe", "recommend"):
            return deny(
                f"autonomy:{context.autonomy}",
                f"autonomy level in {context.environment}/{context.domain} is"
                f" {context.autonomy}: Warden proposes, humans act",
                context,
            )
        verdict = self.evaluate(plan.agent, step.action, step.target, context)
        decision = Decision(
            verdict.outcome,
            hash_,
            verdict.reasons,
            verdict.approvers,
            version,
            verdict.approver_roles,
        )
        return Ruling(decision, context)

    def blocked(
        self, incident: Incident, index: int, situation: Situation
    ) -> tuple[str, str] | None:
        """The guardrail that stops step ``index`` now, as (id, message), or None.

        Checked when deciding and again just before acting, so a kill switch engaged or a
        rate limit reached after the allow still stops the step.
        """
        assert incident.plan is not None, "guardrails need a proposed plan"
        plan = incident.plan
        step = plan.steps[index]
        halted = situation.controls.halted(situation.topology.domain_of(step.target))
        if halted:
            return "guardrail:kill-switch", halted
        spec = self.catalog.get(step.action)
        if spec is None:
            known = ", ".join(self.catalog.names())
            return "guardrail:catalog", f"{step.action!r} is not in the catalog ({known})"
        validator = self._validators.get(spec.name)
        if validator is None:
            validator = self._validators[spec.name] = Draft202012Validator(spec.params_schema)
        errors = list(validator.iter_errors(dict(step.params)))
        if errors:
            return "guardrail:params", "; ".join(e.message for e in errors)
        rails = self.guardrails
        if plan.confidence < rails.confidence_floor:
            return (
                "guardrail:confidence-floor",
                f"confidence {plan.confidence:.2f} is below the floor {rails.confidence_floor:.2f}",
            )
        limited = self._rate_limited(step.action, step.target, situation)
        if limited:
            return "guardrail:rate-limit", limited
        return None

    def bundle_for(self, target: str) -> PolicyBundle:
        """The bundle deciding for ``target``: the canary's on its services, else the live one."""
        canary = self.canary
        if canary is not None and canary.covers(target):
            return canary.bundle
        return self.bundle

    def evaluate(self, agent: str, action: str, target: str, context: StepContext) -> Verdict:
        """Ask the bundle that decides for ``target`` alone (no guardrails)."""
        bundle = self.bundle_for(target)
        key = (bundle.version, agent, action, target, context)
        verdict = self._verdicts.get(key)
        if verdict is not None:
            self._verdicts.move_to_end(key)
            return verdict
        request = PolicyRequest(agent, action, target, context.to_cedar())
        verdict = bundle.evaluate(request, self.entities)
        self._verdicts[key] = verdict
        if len(self._verdicts) > VERDICT_CACHE_SIZE:
            self._verdicts.popitem(last=False)
        return verdict

    def forget_verdicts(self) -> None:
        """Drop memoised verdicts (benchmarks of the uncached path use this)."""
        self._verdicts.clear()

    def _rate_limited(self, action: str, target: str, situation: Situation) -> str | None:
        rails = self.guardrails
        checks: tuple[tuple[RateLimit | None, str, str | None, str | None], ...] = (
            (rails.per_target, f"on {target}", target, None),
            (rails.per_action, f"of {action}", None, action),
            (rails.total, "in total", None, None),
        )
        for limit, what, on_target, of_action in checks:
            if limit is None:
                continue
            window = timedelta(seconds=limit.window_s)
            done = count_recent(
                situation.history, situation.now, window, target=on_target, action=of_action
            )
            if done >= limit.count:
                return (
                    f"{done} actions {what} in the last {limit.window_s:g} s;"
                    f" the limit is {limit.count}"
                )
        return None
