"""Incident lifecycle as a pure state machine: an incident is a fold over its events. Pure core.

``open -> planned -> (awaiting_approval) -> executing -> verifying -> resolved``, and
``escalated`` or ``rolled_back`` from any state that is not yet terminal; a resolved
incident whose service fails again within the relapse window becomes ``relapsed``. Every change of
state is an event; :func:`apply` refuses an event that does not fit the current state, so a
stored history can only describe a legal lifecycle. Notes, evidence that joins, and the
re-pages of an escalated incident change no state (:data:`SIDE_EVENTS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from warden.domain import events as ev
from warden.domain.decisions import Decision, Outcome
from warden.domain.errors import InvalidTransition
from warden.domain.plans import Plan, step_hash

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime


class State(StrEnum):
    """Where an incident stands."""

    OPEN = "open"
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    EXECUTING = "executing"
    VERIFYING = "verifying"
    COMPENSATING = "compensating"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    ROLLED_BACK = "rolled_back"
    RELAPSED = "relapsed"  # resolved, then failed again within the relapse window

    @property
    def terminal(self) -> bool:
        """True when nothing can happen to the incident any more."""
        return self in TERMINAL


TERMINAL = frozenset({State.RESOLVED, State.ESCALATED, State.ROLLED_BACK, State.RELAPSED})


@dataclass(frozen=True, slots=True)
class Incident:
    """The state of one incident, folded from its stream."""

    id: str
    service: str
    state: State
    opened_at: str
    first_signal_at: str
    summary: str
    severity: str = "major"
    kind: str = "service_down"
    detected_by: str = ""  # the agent whose detection opened it ("" in older logs)
    evidence_ids: tuple[str, ...] = ()
    correlation_id: str = ""
    traceparent: str = ""
    plan: Plan | None = None
    # The versions that made the plan (agent, model settings), as its proposal recorded.
    plan_versions: tuple[tuple[str, str], ...] = ()
    step_hashes: tuple[str, ...] = ()
    decisions: tuple[Decision, ...] = ()
    approvals: tuple[tuple[str, str], ...] = ()  # (step_hash, approver)
    # The recorded fields of each approval (signature and all), in the order of approvals:
    # whether one counts is checked against the user registry, not here.
    approval_data: tuple[tuple[tuple[str, str], ...], ...] = ()
    rejections: tuple[tuple[tuple[str, str], ...], ...] = ()  # recorded fields, as above
    approval_requests: tuple[tuple[str, str], ...] = ()  # (step_hash, expires_at)
    expired: tuple[str, ...] = ()  # step hashes whose approval window closed
    intended: tuple[tuple[int, int], ...] = ()  # (index, attempt)
    succeeded: tuple[int, ...] = ()
    failed: tuple[tuple[int, int, bool], ...] = ()  # (index, attempt, retryable)
    retries: tuple[tuple[int, int, str], ...] = ()  # (index, attempt, due_at)
    retry_after: tuple[tuple[int, int, float], ...] = ()  # (index, attempt, seconds) hints
    outputs: tuple[tuple[int, tuple[tuple[str, Any], ...]], ...] = ()  # (index, output)
    compensating: tuple[int, ...] = ()  # step indexes whose compensation was intended
    compensated: tuple[int, ...] = ()
    compensation_failed: tuple[int, ...] = ()
    compensation_held_at: str = ""  # since when a guardrail holds the next compensation
    verification_started_at: str = ""
    verified_at: str = ""
    closed_at: str = ""
    close_reason: str = ""
    version: int = 0
    history: tuple[tuple[str, str, str], ...] = field(default=())  # (time, type, state)
    notes: tuple[str, ...] = ()
    joined: tuple[str, ...] = ()  # keys of the detections whose evidence joined this one
    pages: tuple[str, ...] = ()  # when a human was paged about it (escalation, re-pages)
    merged_into: str = ""  # the incident deciding the same action on the same target

    @property
    def last_paged_at(self) -> str:
        """When a human was last paged about this incident ("" when never)."""
        return self.pages[-1] if self.pages else ""

    def decision_for(self, hash_: str) -> Decision | None:
        """The latest decision recorded for one step, if any."""
        found = None
        for decision in self.decisions:
            if decision.step_hash == hash_:
                found = decision
        return found

    def allowed(self, hash_: str) -> bool:
        """True when the control plane allowed exactly this step."""
        decision = self.decision_for(hash_)
        return decision is not None and decision.outcome is Outcome.ALLOW

    def approvers_of(self, hash_: str) -> tuple[str, ...]:
        """Who approved this step, in order."""
        return tuple(who for h, who in self.approvals if h == hash_)

    def approvals_of(self, hash_: str) -> tuple[dict[str, str], ...]:
        """The recorded approvals of this step (approver, signature, …), in order."""
        pairs = zip(self.approvals, self.approval_data, strict=False)
        return tuple(dict(data) for (h, _), data in pairs if h == hash_)

    def rejections_of(self, hash_: str) -> tuple[dict[str, str], ...]:
        """The recorded rejections of this step, in order."""
        return tuple(d for d in map(dict, self.rejections) if d.get("step_hash") == hash_)

    @property
    def recovery_s(self) -> float | None:
        """Seconds from the first signal to verified recovery; None unless resolved."""
        if self.state is not State.RESOLVED:
            return None
        return (_moment(self.closed_at) - _moment(self.first_signal_at)).total_seconds()

    @property
    def next_step(self) -> int:
        """Index of the first step that has not succeeded (== len(steps) when all did)."""
        return len(self.succeeded)

    def attempts(self, index: int) -> int:
        """How many times step ``index`` was intended."""
        return sum(1 for i, _ in self.intended if i == index)

    def last_failure(self, index: int) -> tuple[int, int, bool] | None:
        """The latest failed attempt of step ``index``, if its latest attempt failed."""
        tries = self.attempts(index)
        for failure in self.failed:
            if failure[0] == index and failure[1] == tries:
                return failure
        return None

    def retry_due(self, index: int) -> str | None:
        """When the scheduled next attempt of step ``index`` is due, if one is scheduled."""
        for i, attempt, due in self.retries:
            if i == index and attempt == self.attempts(index) + 1:
                return due
        return None

    def retry_hint(self, index: int, attempt: int) -> float:
        """How long the target asked to wait before retrying (0 when it did not say)."""
        return max((s for i, a, s in self.retry_after if (i, a) == (index, attempt)), default=0.0)

    def output_of(self, index: int) -> dict[str, Any]:
        """What the adapter reported when step ``index`` succeeded."""
        for i, output in self.outputs:
            if i == index:
                return dict(output)
        return {}

    @property
    def in_flight(self) -> tuple[int, int] | None:
        """The (index, attempt) of a step intended but without a result, if any."""
        for index, attempt in self.intended:
            done = index in self.succeeded or any(
                f[0] == index and f[1] == attempt for f in self.failed
            )
            if not done:
                return index, attempt
        return None

    @property
    def compensation_in_flight(self) -> int | None:
        """The step whose compensation was intended but has no result, if any."""
        for index in self.compensating:
            if index not in self.compensated and index not in self.compensation_failed:
                return index
        return None


def _moment(text: str) -> datetime:
    return ev.parse_time(text)


def _require(condition: bool, incident: Incident | None, event: ev.Event, why: str) -> None:
    if not condition:
        where = incident.state.value if incident else "no incident"
        raise InvalidTransition(f"{event.type} cannot apply in state {where}: {why}")


def _open(event: ev.Event) -> Incident:
    data = event.data
    return Incident(
        id=str(data["incident_id"]),
        service=str(data["service"]),
        state=State.OPEN,
        opened_at=event.time,
        first_signal_at=str(data.get("first_signal_at", event.time)),
        summary=str(data.get("summary", "")),
        severity=str(data.get("severity", "major")),
        kind=str(data.get("kind", "service_down")),
        detected_by=str(data.get("detected_by", "")),
        evidence_ids=tuple(str(e) for e in data.get("evidence", ())),
        correlation_id=event.correlation_id,
        traceparent=event.traceparent,
    )


def apply(incident: Incident | None, event: ev.Event) -> Incident:
    """Fold one event into an incident, or raise :class:`InvalidTransition`."""
    if event.type == ev.INCIDENT_OPENED:
        _require(incident is None, incident, event, "the incident is already open")
        return _track(_open(event), event)
    _require(incident is not None, incident, event, "no incident was opened")
    assert incident is not None
    if event.type == ev.INCIDENT_ANNOTATED:
        # A note never changes the state, so it may follow a closed incident too.
        return _track(replace(incident, notes=(*incident.notes, str(event.data["note"]))), event)
    if event.type == ev.INCIDENT_RELAPSED:
        # The one event after a resolution: the fix did not hold.
        return _track(_relapsed(incident, event), event)
    if event.type in (ev.EVIDENCE_ADDED, ev.INCIDENT_REPAGED):
        return _track(_side(incident, event), event)
    _require(not incident.state.terminal, incident, event, "the incident is closed")
    return _track(_TRANSITIONS.get(event.type, _unknown)(incident, event), event)


def _track(incident: Incident, event: ev.Event) -> Incident:
    return replace(
        incident,
        version=incident.version + 1,
        history=(*incident.history, (event.time, event.type, incident.state.value)),
    )


def _unknown(incident: Incident, event: ev.Event) -> Incident:
    raise InvalidTransition(f"{event.type} is not an incident event")


def _plan(incident: Incident, event: ev.Event) -> Incident:
    _require(incident.state is State.OPEN, incident, event, "a plan was already proposed")
    plan = Plan.from_dict(event.data["plan"])
    hashes = tuple(step_hash(incident.id, i, s) for i, s in enumerate(plan.steps))
    made_by = event.data.get("versions")
    versions = (
        tuple(sorted((str(k), str(v)) for k, v in made_by.items()))
        if isinstance(made_by, dict)
        else ()
    )
    return replace(
        incident, state=State.PLANNED, plan=plan, step_hashes=hashes, plan_versions=versions
    )


def _side(incident: Incident, event: ev.Event) -> Incident:
    """Evidence that joins, or a re-page: open incidents and escalated ones (a human has it)."""
    _require(
        not incident.state.terminal or incident.state is State.ESCALATED,
        incident,
        event,
        "only an open or escalated incident takes evidence and re-pages",
    )
    added = tuple(str(e) for e in event.data.get("evidence", ()))
    kept = (*incident.evidence_ids, *(e for e in added if e not in incident.evidence_ids))
    key = str(event.data.get("detection", ""))
    joined = (*incident.joined, key) if key and key not in incident.joined else incident.joined
    changed = replace(incident, evidence_ids=kept, joined=joined)
    if event.type == ev.INCIDENT_REPAGED:
        _require(incident.state is State.ESCALATED, incident, event, "only an escalation re-pages")
        return replace(changed, pages=(*incident.pages, event.time))
    return changed


def _merged(incident: Incident, event: ev.Event) -> Incident:
    _require(
        incident.state is State.PLANNED and not incident.intended,
        incident,
        event,
        "a plan merges into another before anything of it was decided or ran",
    )
    return replace(incident, merged_into=str(event.data["into"]))


def _plan_rejected(incident: Incident, event: ev.Event) -> Incident:
    _require(incident.state is State.OPEN, incident, event, "plans compete before one is chosen")
    return incident


def _decision(incident: Incident, event: ev.Event) -> Incident:
    decision = Decision.from_dict(event.data["decision"])
    _require(
        incident.state in (State.PLANNED, State.AWAITING_APPROVAL, State.EXECUTING),
        incident,
        event,
        "decisions are made on a plan before or between its steps",
    )
    _require(
        incident.next_step < len(incident.step_hashes)
        and decision.step_hash == incident.step_hashes[incident.next_step],
        incident,
        event,
        "a decision must be for the next step of the plan",
    )
    _require(incident.in_flight is None, incident, event, "a step is in flight")
    if incident.state is State.AWAITING_APPROVAL and decision.outcome is Outcome.ALLOW:
        pending = incident.decision_for(decision.step_hash)
        needed = pending.approvers if pending else 1
        have = len(incident.approvers_of(decision.step_hash))
        _require(have >= needed, incident, event, f"{have} of {needed} approvals given")
        _require(
            decision.step_hash not in incident.expired,
            incident,
            event,
            "the approval window has closed",
        )
    state = {
        Outcome.ALLOW: State.EXECUTING,
        Outcome.NEEDS_APPROVAL: State.AWAITING_APPROVAL,
        Outcome.DENY: incident.state,
    }[decision.outcome]
    return replace(incident, state=state, decisions=(*incident.decisions, decision))


def _approval(incident: Incident, event: ev.Event) -> Incident:
    _require(incident.state is State.AWAITING_APPROVAL, incident, event, "nothing awaits approval")
    hash_ = str(event.data["step_hash"])
    approver = str(event.data["approver"])
    _require(
        hash_ == incident.step_hashes[incident.next_step],
        incident,
        event,
        "the approval names a proposal other than the one awaiting",
    )
    _require(
        incident.plan is not None and approver != incident.plan.agent,
        incident,
        event,
        "the proposer cannot approve its own plan",
    )
    given = incident.approvers_of(hash_) if event.type == ev.APPROVAL_GRANTED else ()
    _require(approver not in given, incident, event, f"{approver} already approved")
    _require(hash_ not in incident.expired, incident, event, "the approval window has closed")
    data = tuple(sorted((str(k), str(v)) for k, v in event.data.items()))
    if event.type == ev.APPROVAL_REJECTED:
        return replace(incident, rejections=(*incident.rejections, data))
    return replace(
        incident,
        approvals=(*incident.approvals, (hash_, approver)),
        approval_data=(*incident.approval_data, data),
    )


def _approval_window(incident: Incident, event: ev.Event) -> Incident:
    _require(incident.state is State.AWAITING_APPROVAL, incident, event, "nothing awaits approval")
    hash_ = str(event.data["step_hash"])
    _require(
        hash_ == incident.step_hashes[incident.next_step],
        incident,
        event,
        "the request names a proposal other than the one awaiting",
    )
    if event.type == ev.APPROVAL_REQUESTED:
        request = (hash_, str(event.data.get("expires_at", "")))
        return replace(incident, approval_requests=(*incident.approval_requests, request))
    _require(hash_ not in incident.expired, incident, event, "the approval already expired")
    return replace(incident, expired=(*incident.expired, hash_))


def _intended(incident: Incident, event: ev.Event) -> Incident:
    index = int(event.data["index"])
    attempt = int(event.data.get("attempt", 1))
    hash_ = str(event.data["step_hash"])
    _require(incident.state is State.EXECUTING, incident, event, "steps run only while executing")
    _require(incident.in_flight is None, incident, event, "another step is in flight")
    _require(
        index == incident.next_step < len(incident.step_hashes),
        incident,
        event,
        "steps run in plan order",
    )
    _require(hash_ == incident.step_hashes[index], incident, event, "the step hash does not match")
    _require(incident.allowed(hash_), incident, event, "no allow was recorded for this exact step")
    _require(
        attempt == incident.attempts(index) + 1, incident, event, "attempts are numbered in order"
    )
    _require(
        attempt == 1 or incident.retry_due(index) is not None,
        incident,
        event,
        "a step runs again only after a retry was scheduled",
    )
    return replace(incident, intended=(*incident.intended, (index, attempt)))


def _result(incident: Incident, event: ev.Event) -> Incident:
    index = int(event.data["index"])
    attempt = int(event.data.get("attempt", 1))
    _require(incident.in_flight == (index, attempt), incident, event, "no such step is in flight")
    if event.type == ev.STEP_SUCCEEDED:
        output = event.data.get("output") or {}
        kept = (
            tuple(sorted((str(k), v) for k, v in output.items()))
            if isinstance(output, dict)
            else ()
        )
        return replace(
            incident,
            succeeded=(*incident.succeeded, index),
            outputs=(*incident.outputs, (index, kept)),
        )
    retryable = bool(event.data.get("retryable", False))
    hints = incident.retry_after
    output = event.data.get("output") or {}
    if isinstance(output, dict) and isinstance(output.get("retry_after_s"), int | float):
        hints = (*hints, (index, attempt, float(output["retry_after_s"])))
    return replace(
        incident, failed=(*incident.failed, (index, attempt, retryable)), retry_after=hints
    )


def _retry(incident: Incident, event: ev.Event) -> Incident:
    index = int(event.data["index"])
    attempt = int(event.data["attempt"])
    _require(incident.state is State.EXECUTING, incident, event, "retries happen while executing")
    failure = incident.last_failure(index)
    _require(
        failure is not None and failure[2], incident, event, "only a retryable failure is retried"
    )
    _require(
        attempt == incident.attempts(index) + 1 and incident.retry_due(index) is None,
        incident,
        event,
        "one retry is scheduled per failed attempt",
    )
    retry = (index, attempt, str(event.data["due_at"]))
    return replace(incident, retries=(*incident.retries, retry))


def _compensation_started(incident: Incident, event: ev.Event) -> Incident:
    _require(
        incident.state in (State.EXECUTING, State.VERIFYING) and incident.in_flight is None,
        incident,
        event,
        "compensation starts after a failure, with no step in flight",
    )
    _require(bool(incident.succeeded), incident, event, "there is nothing to compensate")
    return replace(incident, state=State.COMPENSATING)


def _compensation(incident: Incident, event: ev.Event) -> Incident:
    index = int(event.data["index"])
    _require(incident.state is State.COMPENSATING, incident, event, "not compensating")
    if event.type == ev.COMPENSATION_INTENDED:
        _require(index in incident.succeeded, incident, event, "only completed steps are undone")
        _require(
            incident.compensation_in_flight is None, incident, event, "a compensation is in flight"
        )
        _require(
            all(index < done for done in incident.compensating),
            incident,
            event,
            "compensations run in reverse order, once each",
        )
        return replace(
            incident, compensating=(*incident.compensating, index), compensation_held_at=""
        )
    _require(
        incident.compensation_in_flight == index, incident, event, "no such compensation in flight"
    )
    if event.type == ev.COMPENSATION_SUCCEEDED:
        return replace(incident, compensated=(*incident.compensated, index))
    return replace(incident, compensation_failed=(*incident.compensation_failed, index))


def _compensation_held(incident: Incident, event: ev.Event) -> Incident:
    _require(incident.state is State.COMPENSATING, incident, event, "not compensating")
    _require(
        incident.compensation_in_flight is None, incident, event, "a compensation is in flight"
    )
    # The first hold starts the clock; a repeated one (another reason) keeps it.
    return replace(incident, compensation_held_at=incident.compensation_held_at or event.time)


def _verification_started(incident: Incident, event: ev.Event) -> Incident:
    _require(incident.state is State.EXECUTING, incident, event, "verification follows execution")
    _require(
        incident.next_step == len(incident.step_hashes) and incident.in_flight is None,
        incident,
        event,
        "every step must have succeeded",
    )
    return replace(incident, state=State.VERIFYING, verification_started_at=event.time)


def _verification_result(incident: Incident, event: ev.Event) -> Incident:
    _require(incident.state is State.VERIFYING, incident, event, "no verification is running")
    if event.type == ev.VERIFICATION_PASSED:
        return replace(incident, verified_at=event.time)
    return incident


def _resolved(incident: Incident, event: ev.Event) -> Incident:
    verified = incident.state is State.VERIFYING and bool(incident.verified_at)
    untouched = incident.state in (State.OPEN, State.PLANNED, State.AWAITING_APPROVAL) and (
        not incident.intended
    )
    _require(
        verified or untouched,
        incident,
        event,
        "an incident resolves after a passed verification, or before any step ran",
    )
    return _close(incident, event, State.RESOLVED)


def _escalated(incident: Incident, event: ev.Event) -> Incident:
    closed = _close(incident, event, State.ESCALATED)
    if event.data.get("notify", True) is False:
        return closed  # the people who decided know already: nobody is paged
    return replace(closed, pages=(*incident.pages, event.time))


def _rolled_back(incident: Incident, event: ev.Event) -> Incident:
    _require(
        incident.state is State.COMPENSATING
        and incident.compensation_in_flight is None
        and not incident.compensation_failed
        and bool(incident.compensated),
        incident,
        event,
        "an incident is rolled back once its compensations succeeded",
    )
    return _close(incident, event, State.ROLLED_BACK)


def _relapsed(incident: Incident, event: ev.Event) -> Incident:
    _require(
        incident.state is State.RESOLVED and bool(incident.intended),
        incident,
        event,
        "only a remediated, resolved incident can relapse",
    )
    return replace(
        incident,
        state=State.RELAPSED,
        notes=(*incident.notes, str(event.data.get("reason", ""))),
    )


def _close(incident: Incident, event: ev.Event, state: State) -> Incident:
    return replace(
        incident, state=state, closed_at=event.time, close_reason=str(event.data.get("reason", ""))
    )


_TRANSITIONS: dict[str, Any] = {
    ev.PLAN_PROPOSED: _plan,
    ev.PLAN_REJECTED: _plan_rejected,
    ev.PLAN_MERGED: _merged,
    ev.DECISION_RECORDED: _decision,
    ev.APPROVAL_GRANTED: _approval,
    ev.APPROVAL_REJECTED: _approval,
    ev.APPROVAL_REQUESTED: _approval_window,
    ev.APPROVAL_EXPIRED: _approval_window,
    ev.STEP_INTENDED: _intended,
    ev.STEP_SUCCEEDED: _result,
    ev.STEP_FAILED: _result,
    ev.STEP_RETRY_SCHEDULED: _retry,
    ev.COMPENSATION_STARTED: _compensation_started,
    ev.COMPENSATION_INTENDED: _compensation,
    ev.COMPENSATION_SUCCEEDED: _compensation,
    ev.COMPENSATION_FAILED: _compensation,
    ev.COMPENSATION_HELD: _compensation_held,
    ev.VERIFICATION_STARTED: _verification_started,
    ev.VERIFICATION_PASSED: _verification_result,
    ev.VERIFICATION_FAILED: _verification_result,
    ev.INCIDENT_RESOLVED: _resolved,
    ev.INCIDENT_ESCALATED: _escalated,
    ev.INCIDENT_ROLLED_BACK: _rolled_back,
    ev.INCIDENT_RELAPSED: _relapsed,
}

SIDE_EVENTS = frozenset({ev.INCIDENT_ANNOTATED, ev.EVIDENCE_ADDED, ev.INCIDENT_REPAGED})
"""Incident events that change no state: they may land between a step's intent and result."""
INCIDENT_EVENT_TYPES = frozenset({ev.INCIDENT_OPENED, *SIDE_EVENTS, *_TRANSITIONS})


def fold(events: Iterable[ev.Event]) -> Incident | None:
    """Fold a whole incident stream; raises on the first event that does not apply."""
    incident: Incident | None = None
    for event in events:
        incident = apply(incident, event)
    return incident


def fold_all(events: Iterable[ev.Event]) -> dict[str, Incident]:
    """Every incident among ``events`` (any streams, log order), folded, by id."""
    found: dict[str, Incident] = {}
    for event in events:
        if event.type in INCIDENT_EVENT_TYPES:
            key = event.stream.removeprefix("incident-")
            try:
                found[key] = apply(found.get(key), event)
            except (InvalidTransition, KeyError, TypeError, ValueError) as exc:
                # Name the record, so a changed store points at what to look at.
                why = str(exc) if isinstance(exc, InvalidTransition) else f"malformed: {exc!r}"
                raise InvalidTransition(
                    f"{event.stream} position {event.position} ({event.type}): {why}"
                ) from None
    return {i.id: i for i in found.values()}
