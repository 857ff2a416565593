"""Rule agent: a symptom that follows a recorded change is fixed by reverting it. Decisioning.

Evidence it needs: a symptom on a service (failed probes, an error rate above its limit,
a firing page alert) that began at most ``window_s`` after a change to an object of that
service or of a service it depends on (a deploy, a configuration, flag, network rule,
route or replica count); a service whose process exited (its probe refused) is not
explained by a change to a dependency. The newest such change that can be reverted is
reverted to its recorded previous value. When a restart already relapsed, the service's
own latest change within ``relapse_lookback_s`` is the suspect. One cascade gives one
detection: at the symptomatic service nearest to the changed object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain import evidence, relapse, reverts
from warden.domain.events import parse_time
from warden.domain.identity_memo import by_identity
from warden.domain.plans import Plan, Step

if TYPE_CHECKING:
    from warden.domain.changes import Change, Changes
    from warden.domain.incident import Incident
    from warden.domain.world import World

KIND = "change"
EVIDENCE = (
    "a symptom: failure_threshold failed probes, an error rate above the SLO for"
    " min_samples samples, or a firing page alert",
    "a recorded change to the service or a service it depends on, at most window_s"
    " before the symptom began (relapse_lookback_s after a restart relapsed)",
    "the change records the value it replaced (a revert puts exactly that back)",
)


@dataclass(frozen=True, slots=True)
class _Finding:
    symptom: evidence.Symptom
    change: Change
    step: Step
    relapsed: bool


@dataclass(frozen=True, slots=True)
class ChangeAgent:
    """Reverts the recorded change that a symptom in its part of the topology followed."""

    window_s: float = 900.0
    relapse_lookback_s: float = 86400.0
    relapse_window_s: float = relapse.DEFAULT_RELAPSE_WINDOW_S
    failure_threshold: int = 3
    min_samples: int = 2
    name: str = "change"
    handles: frozenset[str] = frozenset(
        {KIND, "service_down", "alert", "capacity", "failing_dependency"}
    )
    priority: int = 70
    evidence_needed: tuple[str, ...] = EVIDENCE

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.relapse_lookback_s <= 0:
            raise ValueError("window_s and relapse_lookback_s must be positive")
        if self.relapse_window_s < 0:
            raise ValueError("relapse_window_s must not be negative")
        if self.failure_threshold < 1 or self.min_samples < 1:
            raise ValueError("failure_threshold and min_samples must be at least 1")

    def detect(self, world: World) -> list[Detection]:
        """Symptomatic services with a revertible suspect change, one per change."""
        best: dict[str, tuple[int, str, _Finding]] = {}
        for service in _services(world):
            finding = self._find(service, world)
            if finding is None:
                continue
            distance = evidence.neighbourhood(service, world).index(finding.change.service)
            key = finding.change.event_id
            ranked = (distance, service, finding)
            if key not in best or ranked[:2] < best[key][:2]:
                best[key] = ranked
        found = []
        for _, service, finding in sorted(best.values(), key=lambda b: b[1]):
            found.append(
                Detection(
                    service=service,
                    summary=f"{finding.symptom.description}; after {finding.change.describe()}",
                    first_signal_at=finding.symptom.since,
                    evidence=(finding.change.event_id, *finding.symptom.evidence),
                    kind=KIND,
                )
            )
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Revert the suspect change while the symptom lasts."""
        finding = self._find(incident.service, world)
        if finding is None:
            return None
        change, symptom = finding.change, finding.symptom
        gap = (parse_time(symptom.since) - parse_time(change.time)).total_seconds()
        where = (
            "its own"
            if change.service == incident.service
            else f"its dependency {change.service}'s"
        )
        why = (
            f"{incident.service} relapsed after a restart, so the restart treated a symptom;"
            f" the latest change to {incident.service} is the suspect: "
            if finding.relapsed
            else f"{symptom.description}, which began {gap:.0f} s after a change to {where}"
            f" objects: "
        )
        return Plan(
            agent=self.name,
            steps=(finding.step,),
            rationale=(
                f"{why}{change.describe()}; {finding.step.action} puts back the recorded"
                f" previous value {change.previous}, and its undo puts {change.value} back"
            ),
            evidence=(change.event_id, *symptom.evidence),
            confidence=self._confidence(finding, gap, own=change.service == incident.service),
            expected_outcome=(
                f"{incident.service} recovers: its probe passes and its errors fall within"
                " bounds once the change is reverted"
            ),
        )

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why :meth:`propose` offers nothing for the incident ("" when it would propose)."""
        symptom = evidence.symptom(
            incident.service, world, self.failure_threshold, self.min_samples
        )
        if symptom is None:
            return f"{self.name}: {incident.service} shows no symptom any more"
        near = evidence.suspects(incident.service, world, symptom.since, self.window_s)
        if not near:
            return (
                f"{self.name}: no recorded change in {incident.service}'s part of the topology"
                f" in the {self.window_s:g} s before its symptom began"
            )
        if self._find(incident.service, world) is None:
            return f"{self.name}: recent changes cannot be reverted automatically: " + "; ".join(
                c.describe() for c in near
            )
        return ""

    # -- the rule ----------------------------------------------------------------------

    def _find(self, service: str, world: World) -> _Finding | None:
        symptom = evidence.symptom(service, world, self.failure_threshold, self.min_samples)
        if symptom is None:
            return self._renewal(service, world)
        seen = world.health.get(service)
        failing_since = seen.failing_since if seen is not None else ""
        # Only a restart of the service itself that did not hold shows a loop; a circuit
        # opened for it, or a restart of a dependency, says nothing about its own change.
        relapsed = any(
            r.action in evidence.RESTARTS and r.target == service
            for r in relapse.before(world.remedies, service, failing_since, self.relapse_window_s)
        )
        candidates = evidence.suspects(service, world, symptom.since, self.window_s)
        if relapsed and not candidates:
            candidates = evidence.suspects(
                service, world, symptom.since, self.relapse_lookback_s, scope=(service,)
            )
        for change in candidates:
            if change.service != service and symptom.cause is evidence.Cause.EXITED:
                # Nothing listens on the service: its own process is gone. A dependency's
                # change reaches a caller as errors, timeouts or a wedged process, never
                # as a refused connection, so it does not explain this symptom.
                continue
            step = reverts.revert(change) or reverts.renewal(change)
            if step is not None:
                return _Finding(symptom, change, step, relapsed)
            if change.service == service or change.kind == "credential":
                return None  # the newest suspect cannot be reverted: a human decides
        return None

    def _renewal(self, service: str, world: World) -> _Finding | None:
        """A credential of the service that expired and still is: a symptom by itself."""
        for change, step in _renewable(world.changes, service):
            if (world.now - parse_time(change.time)).total_seconds() > self.window_s:
                continue
            if world.changes.value_of(change.resource, change.field) != change.value:
                continue  # renewed since
            symptom = evidence.Symptom(
                service,
                change.time,
                f"{change.resource} {change.field} is {change.value}",
                (change.event_id,),
                evidence.Cause.PATH,
            )
            return _Finding(symptom, change, step, relapsed=False)
        return None

    def _confidence(self, finding: _Finding, gap_s: float, *, own: bool) -> float:
        score = 0.8 if own else 0.75
        # The sooner the symptom followed the change, the likelier it caused it.
        score += 0.1 * max(0.0, 1.0 - gap_s / self.window_s) if not finding.relapsed else 0.0
        if finding.symptom.cause in evidence.PROCESS_CAUSES and own:
            score += 0.03
        return round(min(0.95, score), 2)


@by_identity()
def _renewable(changes: Changes, service: str) -> tuple[tuple[Change, Step], ...]:
    """The service's expired credentials with their renewals, newest first (by timeline)."""
    return tuple(
        (change, step)
        for change in reversed(changes.about((service,)))
        if (step := reverts.renewal(change)) is not None
    )


def _services(world: World) -> list[str]:
    names = set(world.depends_on) | set(world.health) | set(world.signals)
    return sorted(names)


__all__ = ["ChangeAgent"]
