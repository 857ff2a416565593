"""What the runtime computes for policy: the context of one step. Control plane.

Risk and idempotency come from the catalog, blast radius from the topology, action
counts from the recent history in sliding windows, freezes from the calendar, and the
autonomy level from the controls. Everything here is a pure function of its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from warden.domain.control import AUTONOMY_LEVELS
from warden.domain.topology import Topology

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from warden.domain.catalog import ActionSpec
    from warden.domain.control import Controls
    from warden.domain.incident import Incident

RECENT_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One step that was executed (its intent was written)."""

    at: datetime
    action: str
    target: str


@dataclass(frozen=True, slots=True)
class FreezeWindow:
    """A change freeze: no automated change in these domains between start and end."""

    start: datetime
    end: datetime
    domains: tuple[str, ...] = ("*",)
    reason: str = ""

    def covers(self, moment: datetime, domain: str) -> bool:
        """True when the freeze applies to ``domain`` at ``moment``."""
        in_time = self.start <= moment < self.end
        return in_time and ("*" in self.domains or domain in self.domains)


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything around a decision that is not the incident itself."""

    now: datetime
    environment: str
    default_autonomy: str
    controls: Controls
    topology: Topology = field(default_factory=Topology)
    history: Sequence[ActionRecord] = ()
    freezes: Sequence[FreezeWindow] = ()
    approvers: tuple[str, ...] = ()
    approval_roles: tuple[str, ...] = ()
    agent_caps: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepContext:
    """The context handed to Cedar for one step, with the Cedar schema's types."""

    environment: str
    domain: str
    autonomy: str
    risk: str
    idempotent: bool
    confidence_pct: int
    severity: str
    blast_radius_pct: int
    fleet_size: int
    recent_actions_on_target: int
    recent_actions_of_action: int
    change_freeze: bool
    approvals: int
    approval_roles: tuple[str, ...]

    def to_cedar(self) -> dict[str, Any]:
        """The Cedar context record."""
        return {
            "environment": self.environment,
            "domain": self.domain,
            "autonomy": self.autonomy,
            "risk": self.risk,
            "idempotent": self.idempotent,
            "confidence_pct": self.confidence_pct,
            "severity": self.severity,
            "blast_radius_pct": self.blast_radius_pct,
            "fleet_size": self.fleet_size,
            "recent_actions_on_target": self.recent_actions_on_target,
            "recent_actions_of_action": self.recent_actions_of_action,
            "change_freeze": self.change_freeze,
            "approvals": self.approvals,
            "approval_roles": list(self.approval_roles),
        }


def count_recent(
    history: Sequence[ActionRecord],
    now: datetime,
    window: timedelta,
    *,
    target: str | None = None,
    action: str | None = None,
) -> int:
    """Executed steps within ``window`` before ``now``, optionally of one target or action."""
    since = now - window
    count = 0
    for record in history:
        if record.at <= since:
            continue
        if (target is None or record.target == target) and (
            action is None or record.action == action
        ):
            count += 1
    return count


def build_context(
    incident: Incident, index: int, spec: ActionSpec, situation: Situation
) -> StepContext:
    """Compute the context of step ``index`` of the incident's plan."""
    assert incident.plan is not None, "a context needs a proposed plan"
    plan = incident.plan
    step = plan.steps[index]
    domain = situation.topology.domain_of(step.target)
    _, blast = situation.topology.blast_radius(s.target for s in plan.steps)
    level = situation.controls.autonomy_for(
        situation.environment, domain, situation.default_autonomy
    )
    cap = situation.agent_caps.get(plan.agent, AUTONOMY_LEVELS[-1])
    return StepContext(
        environment=situation.environment,
        domain=domain,
        # An agent never acts above its own cap, whatever the domain allows.
        autonomy=min(level, cap, key=AUTONOMY_LEVELS.index),
        risk=spec.risk.value,
        idempotent=spec.idempotent,
        # Rounded down so a policy threshold is never met by rounding.
        confidence_pct=int(plan.confidence * 100),
        severity=incident.severity,
        blast_radius_pct=blast,
        fleet_size=len(situation.topology.services),
        recent_actions_on_target=count_recent(
            situation.history, situation.now, RECENT_WINDOW, target=step.target
        ),
        recent_actions_of_action=count_recent(
            situation.history, situation.now, RECENT_WINDOW, action=step.action
        ),
        change_freeze=any(f.covers(situation.now, domain) for f in situation.freezes),
        approvals=len(situation.approvers),
        approval_roles=tuple(sorted(set(situation.approval_roles))),
    )
