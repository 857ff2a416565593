"""Rule agent: a saturated resource that fails its service or its callers. Decisioning plane.

Evidence it needs: a saturation metric of a service (a fraction of capacity: ``*_used_*``,
``*util*``, ...) at or above 90% while that service or a caller of it shows a symptom. A
restart frees none of it. When the service owns a quota, the quota is raised (with
approval, by ``quota_factor``); when it runs a scheduled job, the job is suspended (with
approval); otherwise a human gets the evidence, the root of the cascade named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain import evidence
from warden.domain.plans import Plan, Step

if TYPE_CHECKING:
    from warden.domain.incident import Incident
    from warden.domain.world import World

KIND = "capacity"
EVIDENCE = (
    "a saturation metric of the service at or above 90% of capacity",
    "a symptom on the service or on a service that depends on it",
    "for raise_quota: a quota object recorded for the service, with a numeric limit",
    "for suspend_job: a scheduled job recorded for the service that is not suspended",
)


@dataclass(frozen=True, slots=True)
class _Finding:
    full: evidence.Saturation
    hurt: tuple[evidence.Symptom, ...]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class CapacityAgent:
    """Frees a saturated resource when the remedy is known: raise its quota, suspend its job."""

    failure_threshold: int = 3
    min_samples: int = 2
    quota_factor: float = 1.5
    name: str = "capacity"
    handles: frozenset[str] = frozenset({KIND, "service_down", "alert"})
    priority: int = 65
    evidence_needed: tuple[str, ...] = EVIDENCE

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.min_samples < 1:
            raise ValueError("failure_threshold and min_samples must be at least 1")
        if self.quota_factor <= 1.0:
            raise ValueError("quota_factor must be above 1")

    def detect(self, world: World) -> list[Detection]:
        """Saturated services whose saturation hurts them or their callers."""
        found = []
        for service in sorted(set(world.signals) | set(world.depends_on)):
            finding = self._assess(service, world)
            if finding is None:
                continue
            ids: list[str] = [finding.full.sample.event_id]
            for hurt in finding.hurt:
                ids.extend(i for i in hurt.evidence if i not in ids)
            found.append(
                Detection(
                    service=service,
                    summary=self._describe(finding),
                    first_signal_at=min(
                        (h.since for h in finding.hurt), default=finding.full.sample.time
                    ),
                    evidence=tuple(ids),
                    kind=KIND,
                )
            )
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Raise the service's quota, or suspend its scheduled job, while it is saturated."""
        finding = self._assess(incident.service, world)
        if finding is None:
            return None
        step = self._remedy(incident.service, world)
        if step is None:
            return None
        full = finding.full
        what = (
            f"raising {step.target} {dict(step.params)['field']} to {dict(step.params)['value']}"
            if step.action == "raise_quota"
            else f"suspending the scheduled job {step.target}, which runs on it,"
        )
        return Plan(
            agent=self.name,
            steps=(step,),
            rationale=(
                f"{self._describe(finding)}; a restart frees none of it; {what} gives the"
                " capacity back (a person confirms: the cost or the skipped runs are theirs)"
            ),
            evidence=(full.sample.event_id, *(i for h in finding.hurt for i in h.evidence)),
            confidence=0.75 if full.exhausted else 0.7,
            expected_outcome=(
                f"{full.metric} of {incident.service} falls below 90% and the failing"
                " services recover"
            ),
        )

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why :meth:`propose` offers nothing for the incident ("" when it would propose)."""
        finding = self._assess(incident.service, world)
        if finding is None:
            return f"{self.name}: no saturated resource of {incident.service} hurts anyone"
        if self._remedy(incident.service, world) is None:
            return (
                f"{self.name}: {self._describe(finding)}; a restart frees none of it, and no"
                f" quota or scheduled job of {incident.service} is recorded: free or add"
                " capacity by hand"
            )
        return ""

    # -- the rule ----------------------------------------------------------------------

    def _assess(self, service: str, world: World) -> _Finding | None:
        full = evidence.saturation(world.signals_of(service))
        if full is None:
            return None
        hurt = []
        for name in sorted({service, *evidence.callers(service, world)}):
            seen = evidence.symptom(name, world, self.failure_threshold, self.min_samples)
            if seen is not None:
                hurt.append(seen)
        return _Finding(full, tuple(hurt)) if hurt else None

    def _remedy(self, service: str, world: World) -> Step | None:
        changes = world.changes
        for quota in changes.resources_of(service, "quota"):
            for field, value in changes.fields_of(quota):
                limit = _number(value)
                if limit is not None and limit > 0:
                    raised = f"{limit * self.quota_factor:g}"
                    return Step("raise_quota", quota, (("field", field), ("value", raised)))
        for job in changes.resources_of(service, "scheduled_job"):
            suspended = changes.value_of(job, "suspended")
            if suspended != "true":
                return Step("suspend_job", job)
        return None

    def _describe(self, finding: _Finding) -> str:
        hurt = "; ".join(h.description for h in finding.hurt)
        return f"{finding.full.describe()} (saturated); {hurt}"


__all__ = ["CapacityAgent"]
