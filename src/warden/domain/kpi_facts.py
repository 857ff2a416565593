"""Incident facts for the KPIs: one incident stream folded into what they measure. Pure core.

:func:`observe` folds one event of an incident stream into :class:`IncidentFacts`; the
durations are summarised by :class:`Summary`. :mod:`warden.domain.kpis` builds on these.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.incident import INCIDENT_EVENT_TYPES, State

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

INCIDENT_STREAM_PREFIX = "incident-"
RUNBOOK_KIND_PREFIX = "runbook:"  # the kind of the incidents a runbook opens
_CLOSING = {
    ev.INCIDENT_RESOLVED: State.RESOLVED,
    ev.INCIDENT_ESCALATED: State.ESCALATED,
    ev.INCIDENT_ROLLED_BACK: State.ROLLED_BACK,
    ev.INCIDENT_RELAPSED: State.RELAPSED,
}


@dataclass(frozen=True, slots=True)
class Summary:
    """A distribution of durations in seconds; every figure is None when it is empty.

    Percentiles are nearest-rank: the p-th percentile of n sorted values is the value at
    rank ``ceil(p * n / 100)``, always one of the observed values.
    """

    count: int = 0
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        """Summarise ``values`` (in any order)."""
        ordered = sorted(values)
        if not ordered:
            return cls()
        return cls(
            count=len(ordered),
            mean=sum(ordered) / len(ordered),
            p50=nearest_rank(ordered, 50),
            p90=nearest_rank(ordered, 90),
            p99=nearest_rank(ordered, 99),
            max=ordered[-1],
        )


def nearest_rank(ordered: list[float], percent: int) -> float:
    """The nearest-rank ``percent``-th percentile of sorted, non-empty ``ordered``."""
    if not ordered or not 0 < percent <= 100:
        raise ValueError("need values and a percent in (0, 100]")
    rank = -(-percent * len(ordered) // 100)  # ceil without floating point
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class DecisionFact:
    """One recorded control-plane decision, and how long it took to be made."""

    at: datetime
    position: int
    outcome: Outcome
    bundle_version: str
    latency_s: float | None


@dataclass(frozen=True, slots=True)
class ActionFact:
    """One executed step: intent to result."""

    index: int
    action: str
    target: str
    ok: bool
    finished_at: datetime
    duration_s: float


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What the KPIs need to know about one incident, folded from its stream."""

    incident_id: str
    service: str
    first_signal_at: datetime
    opened_at: datetime
    state: State
    last_event_at: datetime
    closed_at: datetime | None = None
    decisions: tuple[DecisionFact, ...] = ()
    approvals: int = 0
    actions: tuple[ActionFact, ...] = ()
    pending: tuple[tuple[int, datetime, str, str], ...] = ()  # (index, at, action, target)
    asked_at: datetime | None = None  # when the next decision was asked for
    agent: str = ""  # whose plan was chosen: the agent's name, and @version for a runbook
    agent_name: str = ""
    agent_version: str = ""  # "" when the plan names none (the agent's name stands alone)
    kind: str = ""  # the incident's kind (service_down, runbook:<name>, ...)
    first_intent_at: datetime | None = None  # the first step's intent: remediation began
    approvals_asked: int = 0
    compensations: int = 0  # compensating actions run (succeeded or failed)
    pages: tuple[datetime, ...] = ()  # escalations that paged someone, and re-pages
    relapse_inferred: bool = False  # relapsed by the history, no relapse event recorded

    @property
    def agent_kind(self) -> str:
        """``runbook`` for a runbook's incident, else ``agent``."""
        return "runbook" if self.kind.startswith(RUNBOOK_KIND_PREFIX) else "agent"

    @property
    def bundle_version(self) -> str:
        """The policy bundle of the first decision ("" before any)."""
        return self.decisions[0].bundle_version if self.decisions else ""

    @property
    def remediated(self) -> bool:
        """True when a remediation step was attempted (an intent was written)."""
        return self.first_intent_at is not None

    @property
    def time_to_act_s(self) -> float | None:
        """First decision to the first step's intent (approval wait included)."""
        if self.first_intent_at is None or not self.decisions:
            return None
        return (self.first_intent_at - self.decisions[0].at).total_seconds()

    @property
    def mttr_s(self) -> float | None:
        """First signal to resolution (verified recovery), for resolved incidents."""
        if self.state is not State.RESOLVED or self.closed_at is None:
            return None
        return (self.closed_at - self.first_signal_at).total_seconds()

    @property
    def time_to_detect_s(self) -> float:
        """First signal to incident opened."""
        return (self.opened_at - self.first_signal_at).total_seconds()

    @property
    def time_to_decide_s(self) -> float | None:
        """Incident opened to its first recorded decision."""
        if not self.decisions:
            return None
        return (self.decisions[0].at - self.opened_at).total_seconds()

    @property
    def needed_a_human(self) -> bool:
        """True when a step waited for, or got, a human approval."""
        return self.approvals > 0 or any(
            d.outcome is Outcome.NEEDS_APPROVAL for d in self.decisions
        )

    @property
    def automated(self) -> bool:
        """Resolved with no human approval and no escalation."""
        return self.state is State.RESOLVED and not self.needed_a_human


def observe(facts: IncidentFacts | None, event: ev.Event) -> IncidentFacts | None:
    """Fold one event of an incident stream into its facts (None until it is opened).

    Events that are not incident events, and events before the incident is opened, leave
    the facts as they are; the state machine in :mod:`warden.domain.incident` is what
    refuses illegal histories, this fold only measures them.
    """
    kind = event.type
    if kind not in INCIDENT_EVENT_TYPES:
        return facts
    at = event.moment
    if kind == ev.INCIDENT_OPENED:
        if facts is not None:
            return facts
        data = event.data
        first = data.get("first_signal_at")
        return IncidentFacts(
            incident_id=str(data.get("incident_id", "")),
            service=str(data.get("service", event.subject)),
            first_signal_at=ev.parse_time(str(first)) if first else at,
            opened_at=at,
            state=State.OPEN,
            last_event_at=at,
            kind=str(data.get("kind", "service_down")),
        )
    if facts is None:
        return None
    return _apply(replace(facts, last_event_at=max(facts.last_event_at, at)), event, at)


def _apply(facts: IncidentFacts, event: ev.Event, at: datetime) -> IncidentFacts:
    kind, data = event.type, event.data
    if kind == ev.PLAN_PROPOSED:
        plan = data.get("plan") or {}
        name = str(plan.get("agent", ""))
        version = str(plan.get("agent_version") or "")
        agent = f"{name}@{version}" if version else name
        return replace(
            facts,
            state=State.PLANNED,
            asked_at=at,
            agent=agent,
            agent_name=name,
            agent_version=version,
        )
    if kind == ev.DECISION_RECORDED:
        raw = data.get("decision") or {}
        outcome = Outcome(str(raw.get("outcome", "deny")))
        asked = facts.asked_at
        decision = DecisionFact(
            at=at,
            position=event.position,
            outcome=outcome,
            bundle_version=str(raw.get("bundle_version", "")),
            latency_s=(at - asked).total_seconds() if asked is not None else None,
        )
        state = {
            Outcome.ALLOW: State.EXECUTING,
            Outcome.NEEDS_APPROVAL: State.AWAITING_APPROVAL,
            Outcome.DENY: facts.state,
        }[outcome]
        return replace(facts, state=state, decisions=(*facts.decisions, decision), asked_at=None)
    if kind == ev.APPROVAL_GRANTED:
        return replace(facts, approvals=facts.approvals + 1, asked_at=at)
    if kind == ev.STEP_INTENDED:
        intent = (
            int(data.get("index", 0)),
            at,
            str(data.get("action", "")),
            str(data.get("target", "")),
        )
        first = facts.first_intent_at or at
        return replace(facts, pending=(*facts.pending, intent), first_intent_at=first)
    if kind in (ev.STEP_SUCCEEDED, ev.STEP_FAILED):
        return _result(facts, event, at)
    if kind == ev.APPROVAL_REQUESTED:
        return replace(facts, approvals_asked=facts.approvals_asked + 1)
    if kind in (ev.COMPENSATION_SUCCEEDED, ev.COMPENSATION_FAILED):
        return replace(facts, compensations=facts.compensations + 1)
    if kind == ev.INCIDENT_REPAGED or (
        kind == ev.INCIDENT_ESCALATED and data.get("notify", True) is not False
    ):
        facts = replace(facts, pages=(*facts.pages, at))
    if kind == ev.VERIFICATION_STARTED:
        return replace(facts, state=State.VERIFYING)
    if kind in _CLOSING:
        # A relapse reopens nothing: the incident stays closed, as a failed remediation.
        closed = facts.closed_at if kind == ev.INCIDENT_RELAPSED else at
        return replace(facts, state=_CLOSING[kind], closed_at=closed or at)
    return facts


def _result(facts: IncidentFacts, event: ev.Event, at: datetime) -> IncidentFacts:
    index = int(event.data.get("index", 0))
    intent = next((p for p in facts.pending if p[0] == index), None)
    reported = event.data.get("duration_ms")
    if isinstance(reported, int | float) and not isinstance(reported, bool):
        duration = float(reported) / 1000.0
    elif intent is not None:
        duration = (at - intent[1]).total_seconds()
    else:
        return facts  # neither a reported duration nor an intent to measure from
    ok = event.type == ev.STEP_SUCCEEDED
    action = ActionFact(
        index=index,
        action=intent[2] if intent else "",
        target=intent[3] if intent else event.subject,
        ok=ok,
        finished_at=at,
        duration_s=duration,
    )
    return replace(
        facts,
        actions=(*facts.actions, action),
        pending=tuple(p for p in facts.pending if p[0] != index),
        asked_at=at if ok else facts.asked_at,  # the next step's decision is asked for now
    )
