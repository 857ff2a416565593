"""The agent of last resort: proposes nothing, tells the human what is known. Decisioning.

When no agent proposes a plan, the runtime escalates with this agent's summary: the
incident, health of the service and its dependencies, its signals, and why no agent acted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from warden.agents.protocol import Agent, Detection
    from warden.domain.health import Health
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.signals import Signals
    from warden.domain.world import World

LOWEST_PRIORITY = -1000


@runtime_checkable
class ExplainsDecline(Protocol):
    """An agent that can say why it proposes no plan for an incident."""

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why the agent proposes nothing ("" when it would propose a plan)."""
        ...


def _count(n: int, what: str, plural: str = "s") -> str:
    return f"{n} {what}{plural if n != 1 else ''}"


def _health(service: str, seen: Health | None) -> str:
    if seen is None or not seen.last_seen_at:
        return f"{service} was never probed"
    if seen.healthy:
        since = f" (last success {seen.last_success_at})" if seen.last_success_at else ""
        return f"{service} answers its probe{since}"
    return (
        f"{service} failed {seen.consecutive_failures} probes in a row since"
        f" {seen.failing_since} ({seen.last_error or 'no error text'})"
    )


def _signals(signals: Signals) -> list[str]:
    parts = []
    if signals.deploys:
        before = f" (before: {signals.previous_version})" if signals.previous_version else ""
        parts.append(f"version {signals.version}{before}")
    for metric, samples in signals.metrics:
        parts.append(f"{metric} {samples[-1].value:g} ({_count(len(samples), 'sample')})")
    if signals.failed_batches:
        pipelines = ", ".join(sorted({b.pipeline for b in signals.failed_batches}))
        failed = _count(len(signals.failed_batches), "failed batch", "es")
        parts.append(f"{failed} ({pipelines})")
    for drift in signals.drift:
        parts.append(f"drift: {drift.field} is {drift.observed}, desired {drift.desired}")
    return parts


def _evidence(seen: Health | None, signals: Signals) -> str:
    counts = (
        (len(seen.evidence) if seen else 0, "failed probe"),
        (len(signals.deploys), "deploy"),
        (sum(len(s) for _, s in signals.metrics), "metric sample"),
        (len(signals.failed_batches), "failed batch report"),
        (len(signals.drift), "drift report"),
    )
    shown = [_count(n, what, "es" if what.endswith("batch") else "s") for n, what in counts if n]
    return ", ".join(shown) or "no events about the service"


@dataclass(frozen=True, slots=True)
class EscalationAgent:
    """Handles every kind at the lowest priority, never proposes, and summarizes.

    ``peers`` are the other agents; those handling the incident's kind and able to say why
    they offer nothing (:class:`ExplainsDecline`) are asked, so the summary says why no
    agent acted.
    """

    peers: tuple[Agent, ...] = ()
    name: str = "escalation"
    handles: frozenset[str] = frozenset({"*"})
    priority: int = LOWEST_PRIORITY

    def detect(self, world: World) -> list[Detection]:
        """Nothing: this agent only explains incidents others opened."""
        return []

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """Never a plan: escalation is the runtime's move when nobody proposes."""
        return None

    def summarize(self, incident: Incident, world: World) -> str:
        """What a human needs to pick the incident up: the facts and why no agent acted."""
        service = incident.service
        seen = world.health.get(service)
        signals = world.signals_of(service)
        lines = [
            f"{incident.kind} on {service} needs a human: {incident.summary}",
            f"health: {_health(service, seen)}",
        ]
        deps = world.depends_on.get(service, ())
        if deps:
            described = "; ".join(_health(d, world.health.get(d)) for d in sorted(deps))
            lines.append(f"dependencies: {described}")
        lines.append(f"signals: {', '.join(_signals(signals)) or 'none'}")
        lines.append(f"evidence now: {_evidence(seen, signals)}")
        lines.append(f"why no plan: {self._why(incident, world)}")
        return ". ".join(lines)

    def _why(self, incident: Incident, world: World) -> str:
        handling = [
            p
            for p in self.peers
            if p is not self and (incident.kind in p.handles or "*" in p.handles)
        ]
        if not handling:
            return f"no agent handles incidents of kind {incident.kind}"
        reasons = []
        for peer in handling:
            why = peer.why_no_plan(incident, world) if isinstance(peer, ExplainsDecline) else ""
            reasons.append(why or f"{peer.name} proposed nothing")
        return "; ".join(reasons)
