"""Incidents built by folding events, as the loop would: shared by the lifecycle's unit tests."""

from __future__ import annotations

from typing import Any

from tests.builders import LIFECYCLE_START as T0
from tests.builders import at
from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome, Reason
from warden.domain.incident import Incident, apply
from warden.domain.plans import Plan, Step

PLAN = Plan(
    agent="dependency",
    steps=(Step("open_circuit", "orders"), Step("start_service", "payments")),
    rationale="payments is down",
    evidence=("e1",),
    confidence=0.9,
)


class Story:
    """An incident built by folding events, as the loop would."""

    def __init__(self, plan: Plan | None = PLAN) -> None:
        self.n = 0
        self.incident = self._apply(
            None,
            ev.INCIDENT_OPENED,
            {"incident_id": "inc1", "service": "payments", "first_signal_at": ev.format_time(T0)},
        )
        if plan is not None:
            self.then(ev.PLAN_PROPOSED, plan=plan.to_dict())

    def _apply(self, incident: Incident | None, type_: str, data: dict[str, Any]) -> Incident:
        self.n += 1
        event = ev.Event(f"e{self.n}", "test", type_, ev.format_time(at(self.n)), data)
        return apply(incident, event)

    def then(self, type_: str, **data: Any) -> Story:
        self.incident = self._apply(self.incident, type_, data)
        return self

    def decided(self, outcome: Outcome = Outcome.ALLOW, approvers: int = 0) -> Story:
        hash_ = self.incident.step_hashes[self.incident.next_step]
        decision = Decision(outcome, hash_, (Reason("p", "m"),), approvers)
        return self.then(ev.DECISION_RECORDED, decision=decision.to_dict())

    def ran(self, ok: bool = True, retryable: bool = True, output: Any = None) -> Story:
        index = self.incident.next_step
        attempt = self.incident.attempts(index) + 1
        hash_ = self.incident.step_hashes[index]
        self.then(ev.STEP_INTENDED, index=index, attempt=attempt, step_hash=hash_)
        if ok:
            return self.then(ev.STEP_SUCCEEDED, index=index, attempt=attempt, output=output or {})
        return self.then(ev.STEP_FAILED, index=index, attempt=attempt, retryable=retryable)

    def both_steps_done(self) -> Story:
        return self.decided().ran().decided().ran()


def awaiting() -> Story:
    story = Story().decided(Outcome.NEEDS_APPROVAL, approvers=1)
    hash_ = story.incident.step_hashes[0]
    return story.then(ev.APPROVAL_REQUESTED, step_hash=hash_, expires_at=ev.format_time(at(60)))


def compensating() -> Story:
    story = Story(
        Plan(
            agent="dependency",
            steps=(Step("open_circuit", "orders"), Step("start_service", "payments")),
            rationale="r",
            evidence=(),
            confidence=0.9,
        )
    ).both_steps_done()
    story.then(ev.VERIFICATION_STARTED)
    return story.then(ev.VERIFICATION_FAILED, reason="x").then(ev.COMPENSATION_STARTED)


def verifying() -> Story:
    return Story().both_steps_done().then(ev.VERIFICATION_STARTED)


OPEN_CIRCUIT = Plan(
    agent="dependency",
    steps=(Step("open_circuit", "redis"),),
    rationale="redis is down",
    evidence=("e1",),
    confidence=0.9,
)


def planned(name: str, service: str, opened_s: float, plan: Plan = OPEN_CIRCUIT) -> Incident:
    def event(type_: str, **data: Any) -> ev.Event:
        return ev.Event(f"{name}-{type_}", "test", type_, ev.format_time(at(opened_s)), data)

    incident = apply(
        None,
        event(ev.INCIDENT_OPENED, incident_id=name, service=service, first_signal_at="x"),
    )
    return apply(incident, event(ev.PLAN_PROPOSED, plan=plan.to_dict()))


def then(incident: Incident, type_: str, seconds: float, **data: Any) -> Incident:
    n = incident.version
    return apply(
        incident, ev.Event(f"{incident.id}{n}", "t", type_, ev.format_time(at(seconds)), data)
    )
