"""Retries, compensation in reverse order, and crash reconciliation, on a manual clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from warden.domain import events as ev
from warden.domain.incident import State
from warden.domain.plans import Plan, Step
from warden.runtime import backoff_s
from warden.testing import RecordingAdapter

from .harness import Harness, make_harness, permissive_bundle

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from warden.domain.incident import Incident
    from warden.domain.world import World
    from warden.ports import ActionResult


class Crash(BaseException):
    """Warden dies in the middle of an action: no result is ever recorded."""


@dataclass
class CrashingAdapter(RecordingAdapter):
    """Records like :class:`RecordingAdapter`; dies once on ``crash_on`` before acting."""

    crash_on: str = ""

    def run(self, action: str, target: str, params: dict[str, Any]) -> ActionResult:
        if action == self.crash_on:
            self.crash_on = ""
            raise Crash(action)
        return super().run(action, target, params)


@dataclass(frozen=True)
class DrainRestartRestore:
    """A test agent with a three-step plan whose first step can be undone."""

    name: str = "drain-restart"
    handles: frozenset[str] = frozenset({"service_down"})
    priority: int = 100

    def detect(self, world: World) -> list[Any]:
        return []

    def propose(self, incident: Incident, world: World) -> Plan:
        target = incident.service
        steps = (
            Step("drain_service", target),
            Step("restart_service", target),
            Step("restore_service", target),
        )
        return Plan(self.name, steps, "drain, restart, put back", ("e",), 0.9)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    from warden.agents.service_down import ServiceDownAgent

    permissive_bundle(tmp_path)
    h = make_harness(
        tmp_path, agents=[ServiceDownAgent(), DrainRestartRestore()], adapter=CrashingAdapter()
    )
    yield h
    h.close()


def test_competing_plans_are_ranked_and_the_loser_recorded(harness: Harness) -> None:
    harness.fail("payments")
    harness.settle()
    (rejected,) = harness.events(ev.PLAN_REJECTED)
    assert rejected.data["plan"]["agent"] == "service-down"
    assert "drain-restart (priority 100" in rejected.data["reason"]
    (incident,) = harness.incidents()
    assert incident.plan is not None
    assert incident.plan.agent == "drain-restart"
    assert incident.state is State.RESOLVED
    assert [c[0] for c in harness.adapter.calls] == [
        "drain_service", "restart_service", "restore_service",
    ]  # fmt: skip


def test_retryable_failure_is_retried_with_durable_backoff(harness: Harness) -> None:
    harness.adapter.script["restart_service"] = ["retry", "retry", "ok"]
    harness.fail("payments")
    for _ in range(40):
        harness.clock.advance(1)
        harness.tick()
    (incident,) = harness.incidents()
    assert incident.state is State.RESOLVED
    retries = harness.events(ev.STEP_RETRY_SCHEDULED)
    assert [r.data["attempt"] for r in retries] == [2, 3]
    assert [r.data["delay_s"] for r in retries] == [
        backoff_s(incident.id, 1, 1), backoff_s(incident.id, 1, 2),
    ]  # fmt: skip
    intents = [e for e in harness.events(ev.STEP_INTENDED) if e.data["index"] == 1]
    assert [e.data["attempt"] for e in intents] == [1, 2, 3]
    # Each attempt waited for its due time.
    for retry, intent in zip(retries, intents[1:], strict=True):
        assert intent.moment >= ev.parse_time(retry.data["due_at"])
    # One idempotency key per step, the same on every attempt.
    restart_keys = {
        k
        for (a, _, _), k in zip(harness.adapter.calls, harness.adapter.keys, strict=True)
        if a == "restart_service"
    }
    assert len(restart_keys) == 1


def test_failed_step_compensates_completed_steps_in_reverse(harness: Harness) -> None:
    harness.adapter.script["restart_service"] = ["fail"]
    harness.fail("payments")
    harness.settle()
    (incident,) = harness.incidents()
    assert incident.state is State.ROLLED_BACK
    assert [c[0] for c in harness.adapter.calls] == [
        "drain_service", "restart_service", "restore_service",
    ]  # fmt: skip
    compensation = harness.events(ev.COMPENSATION_INTENDED)
    assert [(e.data["index"], e.data["action"]) for e in compensation] == [(0, "restore_service")]
    assert "undone" in incident.close_reason


def test_failed_compensation_escalates(harness: Harness) -> None:
    harness.adapter.script["restart_service"] = ["fail"]
    harness.adapter.script["restore_service"] = ["fail"]
    harness.fail("payments")
    harness.settle()
    (incident,) = harness.incidents()
    assert incident.state is State.ESCALATED
    assert "compensation of step 0 failed" in incident.close_reason


def crash_mid_step(h: Harness, action: str) -> Incident:
    """Die after the intent of ``action`` is stored, before its result: a crash mid-step."""
    assert isinstance(h.adapter, CrashingAdapter)
    h.adapter.crash_on = action
    h.fail("payments")
    with pytest.raises(Crash):
        h.settle(20)
    h.warden.runtime.tail()
    (incident,) = h.incidents()
    assert incident.plan is not None
    assert incident.in_flight is not None
    index, attempt = incident.in_flight
    assert (incident.plan.steps[index].action, attempt) == (action, 1)
    return incident


@pytest.mark.parametrize(
    ("check", "expected_state", "restarts"),
    [(True, State.RESOLVED, 0), (None, State.ESCALATED, 0)],
)
def test_non_idempotent_step_is_reconciled_never_repeated(
    harness: Harness, check: bool | None, expected_state: State, restarts: int
) -> None:
    harness.adapter.checks["restart_service"] = check
    crash_mid_step(harness, "restart_service")
    before = [c[0] for c in harness.adapter.calls].count("restart_service")
    if check:
        harness.probes["payments"].healthy = True  # the restart had happened
    harness.settle()
    (incident,) = harness.incidents()
    assert incident.state is expected_state, incident.close_reason
    after = [c[0] for c in harness.adapter.calls].count("restart_service")
    assert after - before == restarts
    if check is None:
        assert "outcome unknown after restart" in incident.close_reason


def test_idempotent_step_with_unknown_outcome_is_retried(harness: Harness) -> None:
    harness.adapter.checks["drain_service"] = None
    crash_mid_step(harness, "drain_service")
    harness.settle(30)
    (incident,) = harness.incidents()
    assert incident.state is State.RESOLVED
    reconciled = [e for e in harness.events(ev.STEP_FAILED) if e.data.get("reconciled")]
    assert len(reconciled) == 1
    assert reconciled[0].data["retryable"] is True


# -- an allow given before a retry's backoff is checked again before the retry ---------------


@pytest.fixture
def builtin(tmp_path: Path) -> Iterator[Harness]:
    from warden.agents.service_down import ServiceDownAgent

    h = make_harness(tmp_path / "builtin", agents=[ServiceDownAgent()])
    yield h
    h.close()


def first_attempt_fails(h: Harness) -> Incident:
    h.adapter.script["restart_service"] = ["retry", "ok"]
    h.fail("payments")
    h.tick(6)  # open, plan, decide, act (fails), schedule the retry: all at once
    (incident,) = h.incidents()
    assert [e.data["attempt"] for e in h.events(ev.STEP_RETRY_SCHEDULED)] == [2]
    assert len(incident.decisions) == 1 and incident.decisions[0].outcome.value == "allow"
    return incident


def test_a_retry_still_allowed_runs_without_a_new_decision(builtin: Harness) -> None:
    first_attempt_fails(builtin)
    builtin.settle(8)
    (incident,) = builtin.incidents()
    assert incident.state is State.RESOLVED
    assert len(incident.decisions) == 1
    assert [c[0] for c in builtin.adapter.calls] == ["restart_service", "restart_service"]


def test_autonomy_lowered_during_the_backoff_stops_the_retry(builtin: Harness) -> None:
    first_attempt_fails(builtin)
    builtin.control(
        ev.AUTONOMY_CHANGED,
        level="recommend",
        environment="*",
        domain="*",
        by="alice",
        reason="investigating",
    )
    builtin.settle(8)
    (incident,) = builtin.incidents()
    assert [d.outcome.value for d in incident.decisions] == ["allow", "deny"]
    assert incident.decisions[-1].reasons[0].policy_id == "autonomy:recommend"
    assert incident.state is State.ESCALATED
    assert "autonomy:recommend" in incident.close_reason
    assert [c[0] for c in builtin.adapter.calls] == ["restart_service"]  # not retried
