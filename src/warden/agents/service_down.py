"""Rule agent: a service whose own process failed is restarted, on evidence only. Decisioning.

Evidence it needs: the service failed ``failure_threshold`` probes in a row; the failure
points at the process (it exited, or hangs while alive); no dependency fails with
evidence (a starved service is not broken, and opens no incident of its own: its symptoms
are evidence of the root's); no resource is exhausted; and no restart of it already
failed to hold (a relapse is a loop: the change agent looks for the change, else a human).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain import evidence
from warden.domain.plans import Plan, Step
from warden.domain.relapse import DEFAULT_RELAPSE_WINDOW_S

if TYPE_CHECKING:
    from warden.domain.incident import Incident
    from warden.domain.world import World

EVIDENCE = (
    "failure_threshold probes in a row failed",
    "the probe points at the process: refused or reset (exited), or no answer after"
    " connecting (hung while alive)",
    "no dependency fails with evidence (probes or a saturated resource)",
    "no exhausted resource (a saturation metric at its ceiling)",
    "no earlier restart of the service relapsed within the relapse window",
)
# A refused connection means nothing listens: the process is gone, a restart is the cure.
_CONFIDENCE_BY_CAUSE = {evidence.Cause.EXITED: 0.95, evidence.Cause.HUNG: 0.8}
_DEFAULT_CONFIDENCE = 0.6


def _confidence(cause: evidence.Cause, failures: int, threshold: int) -> float:
    base = _CONFIDENCE_BY_CAUSE.get(cause, _DEFAULT_CONFIDENCE)
    # Each failure past the threshold is more evidence; capped below certainty.
    return round(min(0.99, base + 0.01 * (failures - threshold)), 2)


@dataclass(frozen=True, slots=True)
class ServiceDownAgent:
    """Restarts a service after ``failure_threshold`` failed probes that point at its process."""

    failure_threshold: int = 3
    relapse_window_s: float = DEFAULT_RELAPSE_WINDOW_S
    name: str = "service-down"
    handles: frozenset[str] = frozenset({"service_down"})
    priority: int = 50
    evidence_needed: tuple[str, ...] = EVIDENCE

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.relapse_window_s < 0:
            raise ValueError("relapse_window_s must not be negative")

    def detect(self, world: World) -> list[Detection]:
        """Failing services that no failing dependency explains, with their callers' symptoms.

        A service starved by a failing dependency opens no incident: the failures of its
        callers are evidence of the root's incident, so a cascade pages once.
        """
        found = []
        for service, health in sorted(world.health.items()):
            if health.consecutive_failures < self.failure_threshold:
                continue
            if evidence.upstream(service, world, self.failure_threshold):
                continue  # starved: its symptoms belong to the root's incident
            callers = self._starved_callers(service, world)
            ids = list(health.evidence)
            for caller in callers:
                ids.extend(i for i in world.health[caller].evidence if i not in ids)
            also = f"; callers failing with it: {', '.join(callers)}" if callers else ""
            alerts = [
                (caller, alert)
                for caller in evidence.callers(service, world)
                for alert in world.signals_of(caller).alerts
            ]
            ids.extend(a.event_id for _, a in alerts if a.event_id not in ids)
            if alerts:
                also += "; alerts on callers: " + ", ".join(
                    f"{a.alertname} on {caller}" for caller, a in alerts
                )
            found.append(
                Detection(
                    service=service,
                    summary=(
                        f"{service} failed {health.consecutive_failures} health probes in a"
                        f" row ({health.last_error}){also}"
                    ),
                    first_signal_at=health.failing_since,
                    evidence=tuple(ids),
                )
            )
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Restart the service while it fails and the evidence points at its process."""
        health = world.health.get(incident.service)
        if health is None or health.consecutive_failures < self.failure_threshold:
            return None
        if not world.restartable(incident.service):
            return None  # managed: false: Warden watches it, a human runs it
        if self._blockers(incident.service, world):
            return None
        failures = health.consecutive_failures
        cause = health.cause
        return Plan(
            agent=self.name,
            steps=(Step("restart_service", incident.service),),
            rationale=(
                f"health probe of {incident.service} failed {failures} times in a row since"
                f" {health.failing_since} (last error: {health.last_error}), which points at"
                f" the process ({cause.value}); no dependency of {incident.service} fails,"
                " no resource is exhausted and no earlier restart relapsed, so a restart is"
                " the remedy for a dead or wedged process"
            ),
            evidence=health.evidence,
            confidence=_confidence(cause, failures, self.failure_threshold),
            expected_outcome=f"{incident.service} answers its health probe within the timeout",
        )

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why :meth:`propose` offers nothing for the incident ("" when it would propose)."""
        health = world.health.get(incident.service)
        if health is None or health.consecutive_failures < self.failure_threshold:
            return f"{self.name}: {incident.service} is not failing its probe any more"
        blockers = self._blockers(incident.service, world)
        if blockers:
            return f"{self.name}: no restart, " + "; ".join(blockers)
        return ""

    def _blockers(self, service: str, world: World) -> tuple[str, ...]:
        return evidence.restart_blockers(
            service, world, self.failure_threshold, self.relapse_window_s
        )

    def _starved_callers(self, service: str, world: World) -> list[str]:
        """Failing services whose chain of failing dependencies ends at ``service``."""
        return [
            caller
            for caller, seen in sorted(world.health.items())
            if caller != service
            and seen.consecutive_failures >= self.failure_threshold
            and evidence.upstream(caller, world, self.failure_threshold)[-1:] == (service,)
        ]
