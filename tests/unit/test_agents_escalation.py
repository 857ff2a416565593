"""EscalationAgent: never acts, detects nothing, and tells the human what is known."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from warden.agents.backlog import BacklogAgent
from warden.agents.bad_deploy import BadDeployAgent
from warden.agents.escalation import LOWEST_PRIORITY, EscalationAgent
from warden.domain.events import format_time
from warden.domain.health import Health
from warden.domain.incident import Incident, State
from warden.domain.signals import Deploy, Drift, FailedBatch, Sample, Signals
from warden.domain.world import World

if TYPE_CHECKING:
    from warden.agents.protocol import Detection
    from warden.domain.plans import Plan

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def incident(kind: str, service: str = "queue") -> Incident:
    return Incident(
        id="inc-1",
        service=service,
        state=State.OPEN,
        opened_at=at(40),
        first_signal_at=at(0),
        summary=f"{kind} seen",
        kind=kind,
    )


@dataclass(frozen=True)
class SilentAgent:
    name: str = "silent"
    handles: frozenset[str] = frozenset({"backlog_growth"})
    priority: int = 10

    def detect(self, world: World) -> list[Detection]:
        return []

    def propose(self, incident: Incident, world: World) -> Plan | None:
        return None


BACKLOG = [800, 1000, 1300, 1700]
WORLD = World(
    now=T0 + timedelta(seconds=60),
    health={
        "queue": Health("queue", last_success_at=at(0), last_seen_at=at(0)),
        "broker": Health(
            "broker",
            consecutive_failures=2,
            failing_since=at(30),
            evidence=("p1", "p2"),
            last_error="timed out",
            last_seen_at=at(31),
        ),
    },
    depends_on={"queue": ("broker", "store")},
    signals={
        "queue": Signals(
            "queue",
            deploys=(Deploy(at(0), "v1", "d1"), Deploy(at(5), "v2", "d2")),
            metrics=(
                ("backlog", tuple(Sample(at(10 * i), v, f"b{i}") for i, v in enumerate(BACKLOG))),
                ("consumers", (Sample(at(0), 8, "c0"),)),
            ),
            failed_batches=(FailedBatch(at(3), "etl", "b-1", "bad", "cp", "fb1"),),
            drift=(Drift("replicas", "3", "2", at(4), "dr1"),),
        )
    },
    limits={"queue": (("max_consumers", "8"),)},
)


def test_never_detects_never_proposes_lowest_priority() -> None:
    agent = EscalationAgent()
    assert agent.detect(WORLD) == []
    assert agent.propose(incident("backlog_growth"), WORLD) is None
    assert agent.handles == frozenset({"*"})
    assert agent.priority == LOWEST_PRIORITY


def test_summary_says_what_is_known_and_why_no_agent_acted() -> None:
    peers = (BacklogAgent(), BadDeployAgent(), SilentAgent())
    text = EscalationAgent(peers=peers).summarize(incident("backlog_growth"), WORLD)
    assert text.startswith("backlog_growth on queue needs a human: backlog_growth seen")
    assert "health: queue answers its probe (last success" in text
    assert "broker failed 2 probes in a row" in text
    assert "store was never probed" in text
    assert "version v2 (before: v1)" in text
    assert "backlog 1700 (4 samples)" in text
    assert "consumers 8 (1 sample)" in text
    assert "1 failed batch (etl)" in text
    assert "drift: replicas is 2, desired 3" in text
    assert (
        "evidence now: 2 deploys, 5 metric samples, 1 failed batch report, 1 drift report" in text
    )
    # Only the agents handling the kind are asked; one explains, one does not.
    assert "at or above its max_consumers of 8" in text
    assert "silent proposed nothing" in text
    assert "bad-deploy" not in text


def test_summary_for_a_kind_nobody_handles() -> None:
    text = EscalationAgent(peers=(BacklogAgent(),)).summarize(incident("disk_full"), WORLD)
    assert "why no plan: no agent handles incidents of kind disk_full" in text


def test_summary_of_an_unknown_service() -> None:
    text = EscalationAgent().summarize(incident("service_down", "ghost"), WORLD)
    assert "ghost was never probed" in text
    assert "signals: none" in text
    assert "evidence now: no events about the service" in text


def test_same_inputs_same_summary() -> None:
    agent = EscalationAgent(peers=(BacklogAgent(),))
    first = agent.summarize(incident("backlog_growth"), WORLD)
    assert first == EscalationAgent(peers=(BacklogAgent(),)).summarize(
        incident("backlog_growth"), WORLD
    )
