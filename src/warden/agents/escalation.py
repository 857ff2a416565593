"""The agent of last resort: proposes nothing, tells the human what is known. Decisioning.

When no agent proposes a plan, the runtime escalates with this agent's summary: the
briefing every page carries (:mod:`warden.domain.briefing`: alerts, neighbours, changes,
what was tried, the next step) and why no agent acted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from warden.domain import briefing

if TYPE_CHECKING:
    from warden.agents.protocol import Agent, Detection
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.world import World

LOWEST_PRIORITY = -1000


@runtime_checkable
class ExplainsDecline(Protocol):
    """An agent that can say why it proposes no plan for an incident."""

    def why_no_plan(self, incident: Incident, world: World) -> str:
        """Why the agent proposes nothing ("" when it would propose a plan)."""
        ...


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
        lines = [
            f"{incident.kind} on {incident.service} needs a human: {incident.summary}",
            *briefing.facts(incident, world),
            f"why no plan: {self._why(incident, world)}",
            f"next step: {briefing.next_step(incident, world)}",
        ]
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
