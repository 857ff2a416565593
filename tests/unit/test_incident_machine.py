"""The incident state machine: the happy path, refusals, and invariants under hypothesis."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.errors import InvalidTransition
from warden.domain.incident import TERMINAL, Incident, State, apply, fold
from warden.domain.plans import Plan, Step, step_hash

INCIDENT = "inc1"
AGENT = "service-down"
PLAN = Plan(
    agent=AGENT,
    steps=(Step("restart_service", "payments"), Step("start_service", "orders")),
    rationale="probe failed",
    evidence=("e1",),
    confidence=0.9,
)
HASHES = [step_hash(INCIDENT, i, s) for i, s in enumerate(PLAN.steps)]


def event(type_: str, data: dict[str, Any] | None = None, n: int = 0) -> ev.Event:
    return ev.Event(
        id=f"{type_}-{n}",
        source="test",
        type=type_,
        time=f"2026-11-25T12:00:{n % 60:02d}.000000Z",
        data=data or {},
    )


def decision(hash_: str, outcome: Outcome, approvers: int = 0) -> dict[str, Any]:
    d = Decision(outcome, hash_, (Reason("p", "m"),), approvers)
    return {"decision": d.to_dict()}


OPENED = event(
    ev.INCIDENT_OPENED,
    {"incident_id": INCIDENT, "service": "payments", "first_signal_at": "2026-11-25T11:59:58Z"},
)


def happy_path() -> list[ev.Event]:
    events = [OPENED, event(ev.PLAN_PROPOSED, {"plan": PLAN.to_dict()}, 1)]
    for i, hash_ in enumerate(HASHES):
        events += [
            event(ev.DECISION_RECORDED, decision(hash_, Outcome.ALLOW), 10 + i),
            event(ev.STEP_INTENDED, {"index": i, "step_hash": hash_}, 20 + i),
            event(ev.STEP_SUCCEEDED, {"index": i}, 30 + i),
        ]
    events += [
        event(ev.VERIFICATION_STARTED, {}, 40),
        event(ev.VERIFICATION_PASSED, {}, 41),
        event(ev.INCIDENT_RESOLVED, {"reason": "ok"}, 42),
    ]
    return events


def test_happy_path_walks_every_state() -> None:
    incident = fold(happy_path())
    assert incident is not None
    assert incident.state is State.RESOLVED
    assert incident.succeeded == (0, 1)
    states = [s for _, _, s in incident.history]
    assert states[:4] == ["open", "planned", "executing", "executing"]


def test_step_without_allow_is_refused() -> None:
    history = [OPENED, event(ev.PLAN_PROPOSED, {"plan": PLAN.to_dict()}, 1)]
    incident = fold(history)
    with pytest.raises(InvalidTransition, match="steps run only while executing"):
        apply(incident, event(ev.STEP_INTENDED, {"index": 0, "step_hash": HASHES[0]}, 2))


def test_allow_for_other_step_does_not_unlock() -> None:
    history = [OPENED, event(ev.PLAN_PROPOSED, {"plan": PLAN.to_dict()}, 1)]
    incident = fold(history)
    with pytest.raises(InvalidTransition, match="next step"):
        apply(incident, event(ev.DECISION_RECORDED, decision(HASHES[1], Outcome.ALLOW), 2))


def test_approval_needs_quorum_and_not_the_proposer() -> None:
    history = [
        OPENED,
        event(ev.PLAN_PROPOSED, {"plan": PLAN.to_dict()}, 1),
        event(ev.DECISION_RECORDED, decision(HASHES[0], Outcome.NEEDS_APPROVAL, 2), 2),
    ]
    incident = fold(history)
    assert incident is not None and incident.state is State.AWAITING_APPROVAL
    with pytest.raises(InvalidTransition, match="proposer"):
        apply(incident, event(ev.APPROVAL_GRANTED, {"step_hash": HASHES[0], "approver": AGENT}))
    one = apply(incident, event(ev.APPROVAL_GRANTED, {"step_hash": HASHES[0], "approver": "al"}))
    with pytest.raises(InvalidTransition, match="already approved"):
        apply(one, event(ev.APPROVAL_GRANTED, {"step_hash": HASHES[0], "approver": "al"}, 3))
    with pytest.raises(InvalidTransition, match="1 of 2 approvals"):
        apply(one, event(ev.DECISION_RECORDED, decision(HASHES[0], Outcome.ALLOW), 4))
    two = apply(one, event(ev.APPROVAL_GRANTED, {"step_hash": HASHES[0], "approver": "bo"}, 5))
    allowed = apply(two, event(ev.DECISION_RECORDED, decision(HASHES[0], Outcome.ALLOW), 6))
    assert allowed.state is State.EXECUTING


# -- invariants over random histories ------------------------------------------------------

TYPES = sorted(
    {
        ev.INCIDENT_OPENED, ev.PLAN_PROPOSED, ev.DECISION_RECORDED, ev.APPROVAL_GRANTED,
        ev.STEP_INTENDED, ev.STEP_SUCCEEDED, ev.STEP_FAILED, ev.VERIFICATION_STARTED,
        ev.VERIFICATION_PASSED, ev.VERIFICATION_FAILED, ev.INCIDENT_RESOLVED,
        ev.INCIDENT_ESCALATED, ev.INCIDENT_ROLLED_BACK, ev.INCIDENT_RELAPSED,
    }
)  # fmt: skip
hashes = st.sampled_from([*HASHES, "f" * 64])


@st.composite
def random_event(draw: st.DrawFn, n: int) -> ev.Event:
    type_ = draw(st.sampled_from(TYPES))
    data: dict[str, Any] = {}
    if type_ == ev.INCIDENT_OPENED:
        data = dict(OPENED.data)
    elif type_ == ev.PLAN_PROPOSED:
        data = {"plan": PLAN.to_dict()}
    elif type_ == ev.DECISION_RECORDED:
        data = decision(draw(hashes), draw(st.sampled_from(list(Outcome))), draw(st.integers(0, 2)))
    elif type_ == ev.APPROVAL_GRANTED:
        data = {"step_hash": draw(hashes), "approver": draw(st.sampled_from([AGENT, "a", "b"]))}
    elif type_ == ev.STEP_INTENDED:
        data = {"index": draw(st.integers(0, 2)), "step_hash": draw(hashes)}
    elif type_ in (ev.STEP_SUCCEEDED, ev.STEP_FAILED):
        data = {"index": draw(st.integers(0, 2))}
    return event(type_, data, n)


@st.composite
def histories(draw: st.DrawFn) -> list[ev.Event]:
    size = draw(st.integers(1, 40))
    # Bias towards the happy path so deep states are reached, then mutate.
    base = happy_path() if draw(st.booleans()) else [OPENED]
    cut = draw(st.integers(0, len(base)))
    return base[:cut] + [draw(random_event(100 + i)) for i in range(size)]


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_invariants_hold_for_any_history(history: list[ev.Event]) -> None:
    incident: Incident | None = None
    allowed: set[str] = set()
    approvals: set[tuple[str, str]] = set()
    for item in history:
        before = incident
        try:
            incident = apply(incident, item)
        except InvalidTransition:
            continue
        # No transition out of a terminal state, but a remediated resolution relapsing.
        relapse = item.type == ev.INCIDENT_RELAPSED
        assert before is None or before.state not in TERMINAL or relapse
        if relapse:
            assert before is not None and before.state is State.RESOLVED and before.intended
            assert incident.state is State.RELAPSED
        if item.type == ev.DECISION_RECORDED and item.data["decision"]["outcome"] == "allow":
            allowed.add(item.data["decision"]["step_hash"])
        if item.type == ev.APPROVAL_GRANTED:
            key = (item.data["step_hash"], item.data["approver"])
            # No approval is counted twice, and never the proposer's own.
            assert key not in approvals
            assert item.data["approver"] != AGENT
            approvals.add(key)
        if item.type == ev.STEP_INTENDED:
            # No action event without a prior allow for that exact step.
            assert item.data["step_hash"] in allowed
    if incident is not None and incident.state in TERMINAL:
        for item in TYPES:
            if item == ev.INCIDENT_RELAPSED and incident.state is State.RESOLVED:
                continue
            with pytest.raises(InvalidTransition):
                apply(incident, event(item, {}, 99))
