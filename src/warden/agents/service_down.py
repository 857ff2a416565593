"""Rule agent: a service whose health probe fails N times in a row is restarted. Decisioning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain.plans import Plan, Step

if TYPE_CHECKING:
    from warden.domain.incident import Incident
    from warden.domain.world import World

# A refused connection means nothing listens: the process is gone, a restart is the cure.
# A timeout or an HTTP error may have other causes, so the agent is less sure.
_CONFIDENCE_BY_ERROR = {"connection refused": 0.95, "timed out": 0.75, "HTTP 5": 0.7}
_DEFAULT_CONFIDENCE = 0.6


def _confidence(error: str, failures: int, threshold: int) -> float:
    base = next((c for k, c in _CONFIDENCE_BY_ERROR.items() if k in error), _DEFAULT_CONFIDENCE)
    # Each failure past the threshold is more evidence; capped below certainty.
    return round(min(0.99, base + 0.01 * (failures - threshold)), 2)


@dataclass(frozen=True, slots=True)
class ServiceDownAgent:
    """Restarts a service after ``failure_threshold`` consecutive failed probes."""

    failure_threshold: int = 3
    name: str = "service-down"
    handles: frozenset[str] = frozenset({"service_down"})
    priority: int = 50

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")

    def detect(self, world: World) -> list[Detection]:
        """Services whose latest probes failed at least ``failure_threshold`` times in a row."""
        found = []
        for service, health in sorted(world.health.items()):
            if health.consecutive_failures >= self.failure_threshold:
                found.append(
                    Detection(
                        service=service,
                        summary=(
                            f"{service} failed {health.consecutive_failures} health probes in a"
                            f" row ({health.last_error})"
                        ),
                        first_signal_at=health.failing_since,
                        evidence=health.evidence,
                    )
                )
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Restart the service while it is still failing."""
        health = world.health.get(incident.service)
        if health is None or health.consecutive_failures < self.failure_threshold:
            return None
        if not world.restartable(incident.service):
            return None  # managed: false: Warden watches it, a human runs it
        failures = health.consecutive_failures
        return Plan(
            agent=self.name,
            steps=(Step("restart_service", incident.service),),
            rationale=(
                f"health probe of {incident.service} failed {failures} times in a row since"
                f" {health.failing_since} (last error: {health.last_error}); the process is"
                " not serving, and a restart is the standard remedy for a dead or wedged process"
            ),
            evidence=health.evidence,
            confidence=_confidence(health.last_error, failures, self.failure_threshold),
            expected_outcome=f"{incident.service} answers its health probe within the timeout",
        )
