"""Rule agent: observed state that drifted from the desired state is reconciled. Decisioning.

A service that should run and does not is started; any other drifted field is set back to
its desired value with ``reconcile_state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import Detection
from warden.domain.events import parse_time
from warden.domain.plans import Plan, Step

if TYPE_CHECKING:
    from datetime import datetime

    from warden.domain.incident import Incident
    from warden.domain.signals import Drift
    from warden.domain.world import World

RUNNING = "running"


@dataclass(frozen=True, slots=True)
class _Gap:
    """One drifted field, with the value the configuration wants now."""

    drift: Drift
    desired: str
    age_s: float


def _step(service: str, gap: _Gap) -> Step:
    if gap.drift.field == RUNNING and gap.desired == "true":
        return Step("start_service", service)
    if gap.drift.field == RUNNING and gap.desired == "false":
        return Step("stop_service", service)
    return Step("reconcile_state", service, (("desired", gap.desired), ("field", gap.drift.field)))


@dataclass(frozen=True, slots=True)
class DriftAgent:
    """Reconciles fields whose observed value differs from the desired one.

    A drift must have lasted ``grace_s`` seconds, so a deploy or restart in progress is not
    taken for drift. ``running`` desired ``true`` becomes ``start_service`` (``false``,
    ``stop_service``); every other field becomes ``reconcile_state{field, desired}``.
    """

    grace_s: float = 30.0
    name: str = "drift"
    handles: frozenset[str] = frozenset({"drift"})
    priority: int = 30
    evidence_needed: tuple[str, ...] = (
        "an observed field differing from its desired value for grace_s",
    )

    def __post_init__(self) -> None:
        if self.grace_s < 0:
            raise ValueError("grace_s must not be negative")

    def detect(self, world: World) -> list[Detection]:
        """Services with drift older than the grace period, one detection per service."""
        found = []
        for service in sorted(world.signals):
            gaps = self._gaps(service, world)
            if not gaps:
                continue
            found.append(
                Detection(
                    service=service,
                    summary=f"{service} drifted from its desired state: {_describe(gaps)}",
                    first_signal_at=min((g.drift.since for g in gaps), key=parse_time),
                    evidence=tuple(g.drift.event_id for g in gaps),
                    severity="minor",
                    kind="drift",
                )
            )
        return found

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """One step per drifted field: start (or stop) for ``running``, else reconcile."""
        gaps = self._gaps(incident.service, world)
        if not gaps:
            return None
        service = incident.service
        oldest = min((g.drift.since for g in gaps), key=parse_time)
        return Plan(
            agent=self.name,
            steps=tuple(_step(service, g) for g in gaps),
            rationale=(
                f"{service} drifted from the desired state declared in the configuration:"
                f" {_describe(gaps)}; the oldest drift has lasted since {oldest}, longer than"
                f" the {self.grace_s:g} s grace for changes in progress, so it is set back"
            ),
            evidence=tuple(g.drift.event_id for g in gaps),
            confidence=self._confidence(gaps),
            expected_outcome=(
                f"the observed state of {service} matches the desired state again: "
                + ", ".join(f"{g.drift.field} = {g.desired}" for g in gaps)
            ),
        )

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why :meth:`propose` offers nothing for the incident ("" when it would propose)."""
        if self._gaps(incident.service, world):
            return ""
        return (
            f"{self.name}: no field of {incident.service} has drifted for longer than"
            f" {self.grace_s:g} s any more"
        )

    # -- the rule ----------------------------------------------------------------------

    def _gaps(self, service: str, world: World) -> tuple[_Gap, ...]:
        """Open drifts past the grace period, ``running`` first, then by field name."""
        gaps = []
        for drift in world.signals_of(service).drift:
            # The configuration in force wins over the desired value recorded with the drift.
            desired = world.limit(service, f"desired.{drift.field}") or drift.desired
            age = _age(world.now, drift.since)
            if desired != drift.observed and age >= self.grace_s:
                gaps.append(_Gap(drift, desired, age))
        return tuple(sorted(gaps, key=lambda g: (g.drift.field != RUNNING, g.drift.field)))

    def _confidence(self, gaps: tuple[_Gap, ...]) -> float:
        # Drift is observed directly; what is unsure is whether it is a change in progress,
        # which gets less likely the longer it lasts past the grace period.
        horizon = max(60.0, 4 * self.grace_s)
        youngest = min(g.age_s for g in gaps) - self.grace_s
        return round(min(0.95, 0.8 + 0.15 * min(1.0, youngest / horizon)), 2)


def _age(now: datetime, since: str) -> float:
    return (now - parse_time(since)).total_seconds()


def _describe(gaps: tuple[_Gap, ...]) -> str:
    return "; ".join(f"{g.drift.field} is {g.drift.observed}, desired {g.desired}" for g in gaps)
