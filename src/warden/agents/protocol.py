"""The one protocol every agent follows: detect faults, propose plans. Decisioning plane.

Agents are pure: the same world and incident give the same detections and plans. What
only some agents do is an optional capability, a protocol of its own the runtime tests
with ``isinstance``: :class:`SlowAgent` (asked off the loop's thread) and
:class:`Summarizer` (writes the summary of an escalation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from warden.domain.incident import Incident
    from warden.domain.plans import Plan
    from warden.domain.world import World


@dataclass(frozen=True, slots=True)
class Detection:
    """A fault an agent sees: enough to open an incident."""

    service: str
    summary: str
    first_signal_at: str
    evidence: tuple[str, ...]
    severity: str = "major"
    kind: str = "service_down"
    group_key: str = ""  # what a runbook throttles by, kept in the incident's opening


class Agent(Protocol):
    """Detects faults in the world and proposes plans for incidents.

    An agent whose :meth:`propose` waits on something outside (a model endpoint) is a
    :class:`SlowAgent`.
    """

    @property
    def name(self) -> str:
        """The agent's identity: the principal its plans are decided for."""
        ...

    @property
    def handles(self) -> frozenset[str]:
        """The incident kinds this agent proposes plans for ("*" for any)."""
        ...

    @property
    def priority(self) -> int:
        """Higher wins when two agents propose for one incident (then confidence)."""
        ...

    def detect(self, world: World) -> list[Detection]:
        """Faults visible now, one per affected service."""
        ...

    def propose(self, incident: Incident, world: World) -> Plan | None:
        """A plan for the incident, or None when this agent has nothing to offer."""
        ...


@runtime_checkable
class SlowAgent(Agent, Protocol):
    """An agent whose :meth:`propose` waits on something outside (a model endpoint).

    The runtime asks it from a worker thread and plans the incident once it answers, and
    does not ask it at all when an agent of higher priority already proposed a plan.
    """

    @property
    def slow(self) -> bool:
        """True to be asked off the loop's thread."""
        ...


@runtime_checkable
class Summarizer(Agent, Protocol):
    """An agent that explains an incident no agent could plan, for the human it goes to."""

    def summarize(self, incident: Incident, world: World) -> str:
        """What a human needs first: what is wrong, what was seen, what to try."""
        ...


@runtime_checkable
class RuleOfItsOwner(Agent, Protocol):
    """An agent whose rule its owner wrote as data (a runbook): its trigger is its evidence.

    The built-in evidence rules (a restart needs a process fault, no starving dependency)
    judge the plans of every other agent; a runbook's plan is its owner's explicit rule, so
    it passes straight to policy, guardrails and approvals, which judge it like any plan.
    """

    @property
    def owner_rule(self) -> bool:
        """True when the plan states its owner's own rule."""
        ...


def is_owner_rule(agent: Agent) -> bool:
    """Whether ``agent``'s plans are its owner's explicit rules (see :class:`RuleOfItsOwner`)."""
    # The flag first: an isinstance check against a runtime protocol inspects every member,
    # and most agents have no such flag at all.
    return bool(getattr(agent, "owner_rule", False)) and isinstance(agent, RuleOfItsOwner)


def is_slow(agent: Agent) -> bool:
    """Whether the runtime asks ``agent`` off the loop's thread."""
    return bool(getattr(agent, "slow", False)) and isinstance(agent, SlowAgent)  # flag first


__all__ = [
    "Agent",
    "Detection",
    "RuleOfItsOwner",
    "SlowAgent",
    "Summarizer",
    "is_owner_rule",
    "is_slow",
]
