"""Every agent's plan passes the evidence rules: a plugin cannot restart a starved service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.events import format_time
from warden.domain.health import Health
from warden.domain.incident import Incident, State
from warden.domain.plans import Plan, Step
from warden.domain.world import World
from warden.remediation.planning import Planner

if TYPE_CHECKING:
    from warden.agents.protocol import Agent, Detection

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


@dataclass(frozen=True, slots=True)
class Restarter:
    """A third-party agent that restarts whatever an incident is about."""

    name: str = "restarter"
    handles: frozenset[str] = frozenset({"*"})
    priority: int = 100

    def detect(self, world: World) -> list[Detection]:
        return []

    def propose(self, incident: Incident, world: World) -> Plan | None:
        step = Step("restart_service", incident.service)
        return Plan(self.name, (step,), "always restart", ("e1",), 0.99)


def failing(service: str, error: str) -> Health:
    return Health(service, 4, at(10), ("e1",), error, last_seen_at=at(20))


def incident(service: str) -> Incident:
    return Incident("inc-1", service, State.OPEN, at(20), at(10), "down")


def planned(agents: list[Agent], world: World, service: str) -> list[ev.Event]:
    (append,) = Planner(agents).plan(incident(service), world)
    return list(append.events)


def test_a_restart_of_a_starved_service_is_refused_whoever_proposes_it() -> None:
    world = World(
        T0 + timedelta(seconds=30),
        {"auth": failing("auth", "connection refused"), "orders": failing("orders", "HTTP 503")},
        {"orders": ("auth",)},
    )
    events = planned([Restarter()], world, "orders")
    assert [e.type for e in events] == [ev.PLAN_REJECTED, ev.INCIDENT_ESCALATED]
    assert "starved, not broken" in events[0].data["reason"]
    assert "refused on evidence" in events[1].data["reason"]


def test_a_restart_the_evidence_supports_is_proposed() -> None:
    world = World(T0 + timedelta(seconds=30), {"auth": failing("auth", "connection refused")})
    events = planned([Restarter()], world, "auth")
    assert [e.type for e in events] == [ev.PLAN_PROPOSED]
