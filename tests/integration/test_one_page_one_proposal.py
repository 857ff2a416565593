"""One page per fault, one proposal per action and target: a real runtime, store and gate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from warden.agents.builtin import builtin_agents
from warden.agents.escalation import EscalationAgent
from warden.agents.protocol import Detection
from warden.domain import events as ev
from warden.domain.incident import State
from warden.domain.plans import Plan, Step

from .harness import Harness, make_harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from warden.domain.incident import Incident
    from warden.domain.world import World


@dataclass(frozen=True)
class StarvedCallers:
    """Each caller of payments that fails opens an incident; each plans the same circuit."""

    name: str = "starved"
    handles: frozenset[str] = frozenset({"starved"})
    priority: int = 10

    def detect(self, world: World) -> list[Detection]:
        return [
            Detection(s, f"{s} starved by payments", h.failing_since, h.evidence, kind="starved")
            for s, h in sorted(world.health.items())
            if s != "payments" and not h.healthy
        ]

    def propose(self, incident: Incident, world: World) -> Plan | None:
        step = Step("open_circuit", "payments")
        return Plan(self.name, (step,), "isolate payments", incident.evidence_ids, 0.9)


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Harness]:
    h = make_harness(tmp_path, agents=[StarvedCallers(), EscalationAgent()], autonomy="supervised")
    yield h
    h.close()


def test_incidents_planning_one_step_on_one_target_ask_one_approval(supervised: Harness) -> None:
    h = supervised
    h.fail("orders", 3)
    h.fail("gateway", 3)
    h.settle(4)
    requests = h.events(ev.APPROVAL_REQUESTED)
    assert len(requests) == 1, [r.data["proposal"]["incident"] for r in requests]
    leader_id = requests[0].data["proposal"]["incident"]
    (follower,) = [i for i in h.incidents() if i.id != leader_id]
    assert follower.merged_into == leader_id
    assert follower.state is State.PLANNED
    assert not follower.decisions

    (leader,) = [i for i in h.incidents() if i.id == leader_id]
    h.approve(leader, "alice")
    h.probes["orders"].healthy = h.probes["gateway"].healthy = True
    h.settle(6)
    h.observe("orders")
    h.observe("gateway")
    h.settle(6)
    assert [c[:2] for c in h.adapter.calls] == [("open_circuit", "payments")]
    states = {i.id: i.state for i in h.incidents()}
    assert states[leader_id] is State.RESOLVED
    (after,) = [i for i in h.incidents() if i.id == follower.id]
    assert after.state is State.RESOLVED
    assert "resolved with incident" in after.close_reason


@pytest.fixture
def autonomous(tmp_path: Path) -> Iterator[Harness]:
    agents = [*builtin_agents({"service-down": {"failure_threshold": 3}})]
    h = make_harness(tmp_path, agents=agents, environment="production")
    yield h
    h.close()


def pages(h: Harness) -> list[ev.Event]:
    return [e for e in h.events(ev.INCIDENT_ESCALATED) if e.data.get("notify", True) is not False]


def test_a_restart_storm_held_by_its_guardrail_pages_once(autonomous: Harness) -> None:
    h = autonomous
    for _ in range(8):  # payments answers for a moment, then crashes again: a flapping loop
        h.fail("payments", 3)
        h.settle(4)
        h.clock.advance(30)
        h.probes["payments"].healthy = True
        h.observe("payments")
    restarts = [c for c in h.adapter.calls if c[0] == "restart_service"]
    assert 0 < len(restarts) < 8, "the restart-storm guardrail stopped the loop"
    escalated = [i for i in h.incidents("payments") if i.state is State.ESCALATED]
    assert len(escalated) >= 2, "every relapse after the cap is recorded"
    assert len(pages(h)) == 1, [p.data["reason"][:80] for p in pages(h)]
    quiet = [e for e in h.events(ev.INCIDENT_ESCALATED) if e.data.get("notify") is False]
    assert all(e.data["paged_with"] == pages(h)[0].stream.removeprefix("incident-") for e in quiet)
