"""FailingDependencyAgent: a healthy caller's failing dependency is isolated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from warden.agents.dependency import FailingDependencyAgent
from warden.domain.events import format_time
from warden.domain.health import Health
from warden.domain.incident import Incident, State
from warden.domain.plans import Step
from warden.domain.world import World

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOPOLOGY = {"orders": ("payments",), "gateway": ("orders",), "payments": ()}


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


def up(service: str, last_success: float = 0) -> Health:
    return Health(service, last_success_at=at(last_success), last_seen_at=at(last_success))


def down(
    service: str, failures: int = 4, since: float = 10, error: str = "connection refused"
) -> Health:
    return Health(
        service,
        consecutive_failures=failures,
        failing_since=at(since),
        evidence=tuple(f"{service}-fail-{i}" for i in range(failures)),
        last_error=error,
        last_seen_at=at(since + failures),
    )


def world(*health: Health, depends_on: Mapping[str, Sequence[str]] | None = None) -> World:
    return World(
        now=T0 + timedelta(seconds=60),
        health={h.service: h for h in health},
        depends_on={
            k: tuple(v) for k, v in (TOPOLOGY if depends_on is None else depends_on).items()
        },
    )


def incident(service: str = "orders") -> Incident:
    return Incident(
        id="inc-1",
        service=service,
        state=State.OPEN,
        opened_at=at(20),
        first_signal_at=at(10),
        summary="dependency",
        kind="failing_dependency",
    )


FAULT = world(up("gateway"), up("orders"), down("payments"))


def legacy(**options: object) -> FailingDependencyAgent:
    """The agent as these tests pin it: 30 s outages isolated, the peer restarted.

    The defaults are more patient (300 s) and restart no peer: a peer that fails with its
    dependency is starved, and the planner's evidence rule refuses its restart anyway.
    """
    settings: dict[str, object] = {"min_outage_s": 30.0, "restart_in_cascade": True, **options}
    return FailingDependencyAgent(**settings)  # type: ignore[arg-type]


def test_defaults_are_patient_and_restart_no_starved_peer() -> None:
    agent = FailingDependencyAgent()
    assert agent.min_outage_s == 300.0
    assert agent.restart_in_cascade is False


def test_healthy_caller_of_a_failing_dependency_is_detected() -> None:
    (found,) = legacy().detect(FAULT)
    assert found.kind == "failing_dependency"
    assert found.service == "orders"  # gateway's dependency (orders) is up
    assert found.first_signal_at == at(10)
    assert found.evidence == tuple(f"payments-fail-{i}" for i in range(4))
    assert "payments failed 4 probes" in found.summary


def test_plan_opens_the_circuit_on_the_dependency() -> None:
    plan = legacy().propose(incident(), FAULT)
    assert plan is not None
    assert plan.agent == "failing-dependency"
    assert plan.steps == (Step("open_circuit", "payments"),)
    assert plan.evidence == tuple(f"payments-fail-{i}" for i in range(4))
    for fact in ("orders answers its probe", "payments failed 4 probes", "connection refused"):
        assert fact in plan.rationale
    assert plan.confidence == 0.72  # 0.7, +0.02 for one failure past the threshold
    assert "close_circuit" in plan.expected_outcome


def test_caller_seen_healthy_during_the_outage_adds_confidence() -> None:
    seen = world(up("orders", last_success=30), down("payments"))
    plan = legacy().propose(incident(), seen)
    assert plan is not None
    assert plan.confidence == 0.77


def test_short_outages_are_left_to_a_restart() -> None:
    recent = world(up("orders"), down("payments", since=45))
    assert legacy().detect(recent) == []
    assert "for 30 s" in legacy().why_no_plan(incident(), recent)
    assert legacy(min_outage_s=10).detect(recent) != []


def test_a_dependency_not_probed_lately_is_not_isolated() -> None:
    # payments failed 4 probes from 10 s on, then its probes stopped (a person took it).
    later = World(
        now=T0 + timedelta(seconds=400),
        health={h.service: h for h in (up("orders", last_success=390), down("payments"))},
        depends_on=dict(TOPOLOGY),
    )
    assert legacy().detect(later) == []
    assert legacy().propose(incident(), later) is None
    assert legacy(fresh_s=600).detect(later) != []  # still fresh enough for this setting


def test_drain_isolation() -> None:
    plan = legacy(isolation="drain").propose(incident(), FAULT)
    assert plan is not None
    assert plan.steps == (Step("drain_service", "payments"),)
    assert "restore_service" in plan.expected_outcome


def test_cascade_isolates_the_root_cause_then_restarts_the_peer() -> None:
    cascade = world(up("gateway"), down("orders", failures=3, since=15), down("payments"))
    agent = legacy()
    (found,) = agent.detect(cascade)
    assert found.service == "gateway"
    assert found.first_signal_at == at(10)
    plan = agent.propose(incident("gateway"), cascade)
    assert plan is not None
    assert plan.steps == (Step("open_circuit", "payments"), Step("restart_service", "orders"))
    assert "orders -> payments" in plan.rationale
    assert set(plan.evidence) == {
        *(f"orders-fail-{i}" for i in range(3)),
        *(f"payments-fail-{i}" for i in range(4)),
    }
    assert plan.confidence == 0.65  # a guess about the peer costs confidence
    solo = legacy(restart_in_cascade=False).propose(incident("gateway"), cascade)
    assert solo is not None
    assert solo.steps == (Step("open_circuit", "payments"),)


def test_several_failing_dependencies_are_all_isolated() -> None:
    topology = {"api": ("auth", "db", "cache")}
    many = world(up("api"), down("auth"), down("db", failures=5), up("cache"), depends_on=topology)
    plan = legacy().propose(incident("api"), many)
    assert plan is not None
    assert plan.steps == (Step("open_circuit", "auth"), Step("open_circuit", "db"))


def test_dependency_cycles_terminate() -> None:
    cycle = {"front": ("a",), "a": ("b",), "b": ("a",)}
    w = world(up("front"), down("a"), down("b"), depends_on=cycle)
    plan = legacy().propose(incident("front"), w)
    assert plan is not None
    assert plan.steps == (Step("open_circuit", "b"), Step("restart_service", "a"))


@pytest.mark.parametrize(
    "health",
    [
        (up("orders"), up("payments")),  # all healthy
        (up("orders"), down("payments", failures=2)),  # not yet past the threshold
        (up("orders"), down("payments", since=45)),  # down for 15 s: a restart may do
        (down("orders", failures=1), down("payments")),  # the caller is down itself
        (down("payments"),),  # the caller was never probed
    ],
)
def test_nothing_to_isolate(health: tuple[Health, ...]) -> None:
    w = world(*health)
    agent = legacy()
    assert [d for d in agent.detect(w) if d.service == "orders"] == []
    assert agent.propose(incident(), w) is None
    assert agent.why_no_plan(incident(), w).startswith("failing-dependency: ")


def test_same_inputs_same_plans() -> None:
    agent = legacy()
    assert agent.detect(FAULT) == agent.detect(FAULT)
    assert agent.propose(incident(), FAULT) == agent.propose(incident(), FAULT)
    assert agent.why_no_plan(incident(), FAULT) == ""


@pytest.mark.parametrize(
    "options", [{"failure_threshold": 0}, {"min_outage_s": -1}, {"isolation": "reboot"}]
)
def test_bad_settings_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        FailingDependencyAgent(**options)  # type: ignore[arg-type]
