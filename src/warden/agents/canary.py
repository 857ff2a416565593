"""An agent acting for some services only: a version in canary. Decisioning plane.

The rest of the fleet keeps the agents it had; the canary's detections and plans for any
other service are dropped, so the same events are never acted on twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warden.agents.protocol import is_slow
from warden.agents.versioning import version_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from warden.agents.protocol import Agent, Detection
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.world import World


@dataclass(frozen=True, slots=True)
class CanaryAgent:
    """``agent``, for the services ``covers`` accepts."""

    agent: Agent
    covers: Callable[[str], bool]

    @property
    def name(self) -> str:
        """The agent's own name: its identity in policy, audit and KPIs."""
        return self.agent.name

    @property
    def version(self) -> str:
        """The agent's version."""
        return version_of(self.agent)

    @property
    def handles(self) -> frozenset[str]:
        """As the agent."""
        return self.agent.handles

    @property
    def priority(self) -> int:
        """As the agent."""
        return self.agent.priority

    @property
    def slow(self) -> bool:
        """As the agent: a model agent in canary is still asked off the loop's thread."""
        return is_slow(self.agent)

    def detect(self, world: World) -> list[Detection]:
        """The agent's detections on the canary's services."""
        return [d for d in self.agent.detect(world) if self.covers(d.service)]

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """The agent's plan, for an incident on one of the canary's services."""
        if not self.covers(incident.service):
            return None
        return self.agent.propose(incident, world)


__all__ = ["CanaryAgent"]
