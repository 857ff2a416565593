"""Rule agent: a healthy service whose dependency fails gets that dependency isolated.

Decisioning plane. Isolation is a circuit opened on the dependency (or the dependency
drained); in a cascade the root cause is isolated first and the failed peer restarted.
Once an isolated service has answered its probe for a while, the isolation is lifted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain.events import parse_time
from warden.domain.isolation import LIFTED_BY
from warden.domain.plans import Plan, Step

if TYPE_CHECKING:
    from warden.domain.health import Health
    from warden.domain.incident import Incident
    from warden.domain.isolation import Isolation
    from warden.domain.world import World

_ISOLATE = {"circuit": "open_circuit", "drain": "drain_service"}
FAILING = "failing_dependency"
RECOVERED = "dependency_recovered"


@dataclass(frozen=True, slots=True)
class _Failure:
    """One failing dependency of a healthy caller, and the root cause behind it."""

    dependency: str
    root: str  # == dependency unless the dependency fails because its own dependency does
    path: tuple[str, ...]  # dependency ... root


@dataclass(frozen=True, slots=True)
class _Finding:
    caller: str
    failures: tuple[_Failure, ...]


@dataclass(frozen=True, slots=True)
class FailingDependencyAgent:
    """Isolates a failing dependency so that its healthy callers fail fast and keep serving.

    A dependency fails when its probe failed ``failure_threshold`` times in a row for at
    least ``min_outage_s`` seconds (a short outage is left to a restart); a caller is up
    when its latest probe passed. ``isolation`` is ``"circuit"`` (``open_circuit``,
    undone by ``close_circuit``) or ``"drain"`` (``drain_service``, undone by
    ``restore_service``). In a cascade (the dependency fails because a dependency of its own
    fails) the plan isolates the root cause and then, with ``restart_in_cascade``, restarts
    the dependency that went down with it.

    A dependency whose last probe is older than ``fresh_s`` is not known to fail now (its
    probes stopped, say while a person works on it): nothing is isolated on that evidence.

    An isolated service that has answered every probe for ``recovered_for_s`` seconds is
    let back in (a ``dependency_recovered`` incident: ``close_circuit`` or
    ``restore_service``, whichever undoes how it was isolated).
    """

    failure_threshold: int = 3
    min_outage_s: float = 300.0
    isolation: str = "circuit"
    restart_in_cascade: bool = False
    recovered_for_s: float = 30.0
    fresh_s: float = 300.0
    name: str = "failing-dependency"
    handles: frozenset[str] = frozenset({FAILING, RECOVERED})
    priority: int = 40
    evidence_needed: tuple[str, ...] = (
        "a healthy caller",
        "a dependency failing failure_threshold probes for min_outage_s, last probed at"
        " most fresh_s ago",
        "for lifting: the isolated service answered its probe for recovered_for_s",
    )

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.min_outage_s < 0:
            raise ValueError("min_outage_s must not be negative")
        if self.recovered_for_s < 0 or self.fresh_s < 0:
            raise ValueError("recovered_for_s and fresh_s must not be negative")
        if self.isolation not in _ISOLATE:
            raise ValueError(f"isolation must be one of {', '.join(sorted(_ISOLATE))}")

    def detect(self, world: World) -> list[Detection]:
        """Healthy callers with at least one failing dependency, one detection per caller."""
        found = []
        for caller in sorted(world.depends_on):
            finding = self._assess(caller, world)
            if finding is None:
                continue
            described = "; ".join(self._describe(f.dependency, world) for f in finding.failures)
            found.append(
                Detection(
                    service=caller,
                    summary=f"{caller} is up but depends on failing services: {described}",
                    first_signal_at=self._first_signal(finding, world),
                    evidence=self._evidence(finding, world),
                    kind=FAILING,
                )
            )
        for service in sorted(world.isolated):
            isolated = self._recovered(service, world)
            if isolated is not None:
                seen = world.health[service]
                found.append(
                    Detection(
                        service=service,
                        summary=(
                            f"{service} answers its probe again since {seen.healthy_since}"
                            f" but is still isolated ({isolated.action} at {isolated.since},"
                            f" incident {isolated.incident_id})"
                        ),
                        first_signal_at=seen.healthy_since,
                        evidence=seen.successes,
                        severity="minor",
                        kind=RECOVERED,
                    )
                )
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Isolate each failing dependency of the caller, or lift a recovered one's isolation."""
        if incident.kind == RECOVERED:
            return self._lift(incident, world)
        finding = self._assess(incident.service, world)
        if finding is None:
            return None
        isolate = _ISOLATE[self.isolation]
        restore = LIFTED_BY[isolate]
        steps: list[Step] = []
        restarts: list[Step] = []
        reasons: list[str] = []
        for failure in finding.failures:
            step = Step(isolate, failure.root)
            if step not in steps:
                steps.append(step)
            if failure.root == failure.dependency:
                reasons.append(self._describe(failure.dependency, world))
                continue
            chain = " -> ".join(failure.path)
            reasons.append(
                f"{failure.dependency} fails because its own dependency does ({chain}):"
                f" {self._describe(failure.root, world)}"
            )
            if self.restart_in_cascade and world.restartable(failure.dependency):
                restart = Step("restart_service", failure.dependency)
                if restart not in restarts:
                    restarts.append(restart)
        steps.extend(restarts)
        isolated = ", ".join(s.target for s in steps if s.action == isolate)
        rationale = (
            f"{incident.service} answers its probe but {'; '.join(reasons)}; isolating"
            f" {isolated} with {isolate} stops callers from waiting on it, so"
            f" {incident.service} fails fast and keeps serving"
        )
        if restarts:
            rationale += (
                "; with the root cause isolated, "
                + ", ".join(s.target for s in restarts)
                + " is restarted to come back without it"
            )
        return Plan(
            agent=self.name,
            steps=tuple(steps),
            rationale=rationale,
            evidence=self._evidence(finding, world),
            confidence=self._confidence(finding, world, cascade=bool(restarts)),
            expected_outcome=(
                f"{incident.service} keeps answering its probe while {isolated} is isolated;"
                f" once {isolated} answers its probe again, {restore} undoes the isolation"
            ),
        )

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why :meth:`propose` offers nothing for the incident ("" when it would propose)."""
        if incident.kind == RECOVERED:
            if self._recovered(incident.service, world) is not None:
                return ""
            if incident.service not in world.isolated:
                return f"{self.name}: {incident.service} is not isolated any more"
            return (
                f"{self.name}: {incident.service} has not answered its probe for"
                f" {self.recovered_for_s:g} s in a row"
            )
        if self._assess(incident.service, world) is not None:
            return ""
        caller = world.health.get(incident.service)
        if caller is None or not caller.healthy:
            return (
                f"{self.name}: {incident.service} itself is not known to be up, so isolating"
                " its dependencies would not help it"
            )
        return (
            f"{self.name}: no dependency of {incident.service} has failed"
            f" {self.failure_threshold} probes in a row for {self.min_outage_s:g} s"
        )

    def _lift(self, incident: Incident, world: World) -> Plan | None:
        isolated = self._recovered(incident.service, world)
        if isolated is None:
            return None
        service = incident.service
        seen = world.health[service]
        return Plan(
            agent=self.name,
            steps=(Step(isolated.lifted_by, service),),
            rationale=(
                f"{service} was isolated with {isolated.action} at {isolated.since} (incident"
                f" {isolated.incident_id}) while it failed; it has answered every probe since"
                f" {seen.healthy_since}, at least {self.recovered_for_s:g} s, so its callers"
                f" can reach it again"
            ),
            evidence=seen.successes,
            confidence=0.9,
            expected_outcome=f"callers reach {service} again and it keeps answering its probe",
        )

    # -- the rule ----------------------------------------------------------------------

    def _recovered(self, service: str, world: World) -> Isolation | None:
        """The isolation of ``service`` if it has answered its probe long enough since."""
        isolated = world.isolated.get(service)
        seen = world.health.get(service)
        if isolated is None or seen is None or not seen.healthy or not seen.healthy_since:
            return None
        since = parse_time(seen.healthy_since)
        if since < parse_time(isolated.since):
            return None  # healthy already when isolated: not a recovery from that outage
        if (world.now - since).total_seconds() < self.recovered_for_s:
            return None
        return isolated

    def _down(self, service: str, world: World) -> bool:
        seen = world.health.get(service)
        return seen is not None and seen.consecutive_failures >= self.failure_threshold

    def _failing(self, service: str, world: World) -> bool:
        """Down for long enough that isolating it is worth more than waiting for a restart."""
        if not self._down(service, world):
            return False
        seen = world.health[service]
        if (
            seen.last_seen_at
            and (world.now - parse_time(seen.last_seen_at)).total_seconds() > self.fresh_s
        ):
            return False  # an old failure: no evidence of what it does now
        return (world.now - parse_time(seen.failing_since)).total_seconds() >= self.min_outage_s

    def _root(self, dependency: str, world: World) -> tuple[str, ...]:
        """The path from a failing dependency down to the deepest failing service."""
        path = [dependency]
        while True:
            below = [
                d
                for d in sorted(world.depends_on.get(path[-1], ()))
                if d not in path and self._down(d, world)
            ]
            if not below:
                return tuple(path)
            path.append(below[0])

    def _assess(self, caller: str, world: World) -> _Finding | None:
        seen = world.health.get(caller)
        if seen is None or not seen.last_seen_at or not seen.healthy:
            return None
        failures = tuple(
            _Failure(dep, path[-1], path)
            for dep in sorted(world.depends_on.get(caller, ()))
            if self._failing(dep, world)
            for path in [self._root(dep, world)]
        )
        return _Finding(caller, failures) if failures else None

    def _describe(self, service: str, world: World) -> str:
        seen = world.health[service]
        return (
            f"{service} failed {seen.consecutive_failures} probes in a row since"
            f" {seen.failing_since} ({seen.last_error or 'no error text'})"
        )

    def _involved(self, finding: _Finding, world: World) -> list[Health]:
        names: list[str] = []
        for failure in finding.failures:
            names.extend(n for n in failure.path if n not in names)
        return [world.health[n] for n in names]

    def _first_signal(self, finding: _Finding, world: World) -> str:
        return min((h.failing_since for h in self._involved(finding, world)), key=parse_time)

    def _evidence(self, finding: _Finding, world: World) -> tuple[str, ...]:
        ids: list[str] = []
        for seen in self._involved(finding, world):
            ids.extend(i for i in seen.evidence if i not in ids)
        return tuple(ids)

    def _confidence(self, finding: _Finding, world: World, *, cascade: bool) -> float:
        involved = self._involved(finding, world)
        score = 0.7
        # Each failure past the threshold is more evidence that the outage is real.
        extra = min(h.consecutive_failures for h in involved) - self.failure_threshold
        score += min(0.1, 0.02 * extra)
        caller = world.health[finding.caller]
        started = min(parse_time(h.failing_since) for h in involved)
        if caller.last_success_at and parse_time(caller.last_success_at) >= started:
            score += 0.05  # the caller was seen healthy during the outage, not only before
        if cascade:
            score -= 0.05  # the restart of the peer is a guess about why it went down
        return round(min(0.95, score), 2)
