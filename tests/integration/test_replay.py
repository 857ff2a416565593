"""Replay: recorded inputs through a fresh runtime give the same decisions (invariant 7)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.builders import FROZEN_RESTARTS, frozen_restarts_bundle
from warden.agents.bad_deploy import BadDeployAgent
from warden.agents.builtin import builtin_agents
from warden.domain import events as ev
from warden.domain.incident import State
from warden.replay import RecordedOutcomes, is_input, replay

from .harness import MOVES, Harness, live, make_harness

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def outage_and_bad_deploy(tmp_path: Path) -> Harness:
    """A restart decided autonomously, and a rollback a human approved."""
    h = make_harness(tmp_path, agents=builtin_agents(entry_points=()))
    h.fail("payments")
    h.settle()
    h.clock.advance(10)
    h.ingest(ev.DEPLOY_COMPLETED, "orders", version="v1")
    h.clock.advance(60)
    h.ingest(ev.DEPLOY_COMPLETED, "orders", version="v2")
    for _ in range(3):
        h.clock.advance(10)
        h.ingest(ev.METRIC_SAMPLED, "orders", metric="error_rate", value=0.3)
    h.settle()
    (rollback,) = [i for i in h.incidents("orders") if i.kind == "bad_deploy"]
    assert rollback.state is State.AWAITING_APPROVAL
    h.approve(rollback, "alice")
    h.settle(3)
    h.clock.advance(1)  # within the verification timeout, as the live loop would see it
    h.ingest(ev.METRIC_SAMPLED, "orders", metric="error_rate", value=0.01)
    h.settle()
    states = sorted((i.kind, i.state) for i in h.incidents())
    assert states == [("bad_deploy", State.RESOLVED), ("service_down", State.RESOLVED)]
    return h


def test_the_same_history_replayed_gives_the_same_decisions(tmp_path: Path) -> None:
    h = outage_and_bad_deploy(tmp_path / "live")
    try:
        history = h.warden.store.read_all()
        report = replay(history, h.warden.config, agents=builtin_agents(entry_points=()))
    finally:
        h.close()
    assert report.inputs == sum(1 for e in history if is_input(e))
    assert any(e.type == ev.APPROVAL_GRANTED for e in history if is_input(e))
    assert report.differences == ()
    assert report.notes == ()
    assert sorted(v.kind for v in report.replayed) == ["bad_deploy", "service_down"]
    decided = {v.kind: v.decisions for v in report.replayed}
    assert decided["service_down"] == ("step 0: allow (autonomous-low-risk)",)
    assert decided["bad_deploy"][-1] == "step 0: allow (approval)"


def test_a_candidate_bundle_shows_what_it_would_change(tmp_path: Path) -> None:
    h = outage_and_bad_deploy(tmp_path / "live")
    candidate = frozen_restarts_bundle(tmp_path / "candidate")
    try:
        history = h.warden.store.read_all()
        config = replace(h.warden.config, policy_dir=candidate)
        report = replay(history, config, agents=builtin_agents(entry_points=()))
    finally:
        h.close()
    assert not report.identical
    (restart,) = [d for d in report.differences if d.what == "decisions"]
    assert restart.recorded == "step 0: allow (autonomous-low-risk)"
    assert restart.replayed.startswith("step 0: deny (no-restarts)")
    state = [d for d in report.differences if d.what == "final state"]
    assert [(d.recorded, d.replayed) for d in state] == [("resolved", "escalated")]


def test_a_candidate_agent_that_proposes_nothing_leaves_the_fault_to_a_human(
    tmp_path: Path,
) -> None:
    h = outage_and_bad_deploy(tmp_path / "live")
    try:
        history = h.warden.store.read_all()
        report = replay(history, h.warden.config, agents=[BadDeployAgent()])
    finally:
        h.close()
    (missing,) = [d for d in report.differences if d.what == "incident"]
    assert missing.service == "payments"
    assert missing.recorded == "service_down on payments, resolved"
    assert missing.replayed == "not opened"


def test_recorded_outcomes_answer_each_attempt_in_turn() -> None:
    def event(type_: str, index: int, **data: object) -> ev.Event:
        return ev.Event(
            id=f"{type_}-{len(events)}",
            source=ev.WARDEN_SOURCE,
            type=type_,
            time="2026-11-25T12:00:00.000000Z",
            data={"index": index, **data},
            stream="incident-x",
        )

    events: list[ev.Event] = []
    events.append(event(ev.STEP_INTENDED, 0, idempotency_key="k0"))
    events.append(event(ev.STEP_FAILED, 0, detail="busy", retryable=True))
    events.append(event(ev.STEP_INTENDED, 0, idempotency_key="k0"))
    events.append(event(ev.STEP_SUCCEEDED, 0, detail="done", output={"pid": 7}))
    outcomes = RecordedOutcomes(events)
    first = outcomes.run("restart_service", "payments", {"idempotency_key": "k0"})
    assert (first.ok, first.detail, first.output) == (False, "busy", {"retryable": True})
    second = outcomes.run("restart_service", "payments", {"idempotency_key": "k0"})
    assert (second.ok, second.output) == (True, {"pid": 7})
    third = outcomes.run("restart_service", "payments", {"idempotency_key": "k0"})
    assert not third.ok and "never ran in the recorded history" in third.detail
    assert outcomes.unrecorded == ["restart_service on payments"]


# -- invariant 7, over random histories ------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MOVES, min_size=1, max_size=14))
def test_any_history_replays_to_the_same_decisions(
    tmp_path_factory: pytest.TempPathFactory, moves: list[tuple[Any, ...]]
) -> None:
    h = make_harness(tmp_path_factory.mktemp("live"), agents=builtin_agents(entry_points=()))
    try:
        live(h, moves)
        history = h.warden.store.read_all()
        report = replay(history, h.warden.config, agents=builtin_agents(entry_points=()))
    finally:
        h.close()
    assert report.differences == (), report.differences
    assert report.notes == ()
    event(f"{len(report.replayed)} incidents")
    event("approved" if any("approval" in d for v in report.replayed for d in v.decisions) else "-")


# -- a candidate bundle in shadow, beside the live one ---------------------------------------


def test_a_shadow_bundle_is_decided_and_recorded_but_never_acted_on(tmp_path: Path) -> None:
    candidate = frozen_restarts_bundle(tmp_path / "candidate")
    h = make_harness(
        tmp_path / "live",
        agents=builtin_agents(entry_points=()),
        shadow_policy_dir=candidate,
    )
    try:
        h.fail("payments")
        h.settle()
        (incident,) = h.incidents()
        assert incident.state is State.RESOLVED  # the live bundle allowed the restart
        assert h.adapter.calls == [("restart_service", "payments", {})]
        (compared,) = h.warden.store.read_stream(ev.SHADOW_STREAM)
    finally:
        h.close()
    data = compared.data
    assert data["incident_id"] == incident.id
    assert (data["action"], data["target"], data["agree"]) == ("restart_service", "payments", False)
    assert data["live"]["outcome"] == "allow"
    assert data["live"]["policy"] == "autonomous-low-risk"
    assert (data["shadow"]["outcome"], data["shadow"]["policy"]) == ("deny", "no-restarts")
    assert data["shadow"]["bundle"] != data["live"]["bundle"]


def test_a_changed_shadow_bundle_decides_from_then_on(tmp_path: Path) -> None:
    candidate = frozen_restarts_bundle(tmp_path / "candidate")
    frozen = candidate / FROZEN_RESTARTS
    h = make_harness(
        tmp_path / "live", agents=builtin_agents(entry_points=()), shadow_policy_dir=candidate
    )
    runtime = h.warden.runtime
    runtime.settings = replace(runtime.settings, policy_poll_s=0.0)  # look at every round
    try:
        h.fail("payments")
        h.settle()
        frozen.unlink()  # the candidate thaws restarts
        h.fail("orders")
        h.settle()
        compared = [e.data for e in h.warden.store.read_stream(ev.SHADOW_STREAM)]
    finally:
        h.close()
    assert [(c["target"], c["agree"]) for c in compared] == [("payments", False), ("orders", True)]
    assert compared[0]["shadow"]["bundle"] != compared[1]["shadow"]["bundle"]
