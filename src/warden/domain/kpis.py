"""Resilience KPIs computed from the event history alone, so replay gives the same numbers.

Pure core (domain): :func:`observe` folds one incident stream into :class:`IncidentFacts`;
:func:`summarise` turns facts into a :class:`ResilienceReport` over a time range.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.incident import INCIDENT_EVENT_TYPES, State

if TYPE_CHECKING:
    from collections.abc import Iterable

ONE_DAY = timedelta(days=1)
INCIDENT_STREAM_PREFIX = "incident-"
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
        )
    if facts is None:
        return None
    return _apply(replace(facts, last_event_at=max(facts.last_event_at, at)), event, at)


def _apply(facts: IncidentFacts, event: ev.Event, at: datetime) -> IncidentFacts:
    kind, data = event.type, event.data
    if kind == ev.PLAN_PROPOSED:
        plan = data.get("plan") or {}
        agent = str(plan.get("agent", ""))
        if plan.get("agent_version"):
            agent = f"{agent}@{plan['agent_version']}"
        return replace(facts, state=State.PLANNED, asked_at=at, agent=agent)
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
        return replace(facts, pending=(*facts.pending, intent))
    if kind in (ev.STEP_SUCCEEDED, ev.STEP_FAILED):
        return _result(facts, event, at)
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


@dataclass(frozen=True, slots=True)
class ResilienceReport:
    """Every resilience KPI over a time range, with the counts behind it.

    An incident belongs to the range when it was opened in ``[since, until)``. Rates "per
    day" divide by ``period_days``, floored at one day so a burst is not extrapolated.
    Ratios are None when their denominator is zero.
    """

    since: datetime | None
    until: datetime | None
    period_days: float | None
    incidents: int
    open: int
    resolved: int
    escalated: int
    rolled_back: int
    relapsed: int
    automated: int
    mttr: Summary
    time_to_detect: Summary
    time_to_decide: Summary
    action_duration: Summary
    decision_latency: Summary
    automation_coverage: float | None
    remediation_success_rate: float | None
    escalations_per_incident: float | None
    escalations_per_day: float | None
    decisions_allowed: int
    decisions_denied: int
    decisions_needing_approval: int
    approvals: int
    actions_succeeded: int
    actions_failed: int
    policy_changes: int
    policy_changes_per_day: float | None
    policy_versions: tuple[str, ...]
    kill_switch_engagements: int
    facts: tuple[IncidentFacts, ...]

    @property
    def closed(self) -> int:
        """Incidents in a terminal state."""
        return self.resolved + self.escalated + self.rolled_back + self.relapsed

    @property
    def decisions(self) -> int:
        """Decisions recorded, whatever their outcome."""
        return self.decisions_allowed + self.decisions_denied + self.decisions_needing_approval


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _aware(moment: datetime | None, name: str) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC) if moment is not None else None


def summarise(
    facts: Iterable[IncidentFacts],
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    kill_switch_engaged_at: Iterable[datetime] = (),
) -> ResilienceReport:
    """The KPIs of the incidents opened in ``[since, until)`` (either bound may be open)."""
    since, until = _aware(since, "since"), _aware(until, "until")
    if since is not None and until is not None and until <= since:
        raise ValueError(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")

    def in_range(moment: datetime) -> bool:
        return (since is None or moment >= since) and (until is None or moment < until)

    chosen = tuple(sorted((f for f in facts if in_range(f.opened_at)), key=lambda f: f.opened_at))
    by_state = {s: sum(1 for f in chosen if f.state is s) for s in State}
    decisions = sorted((d for f in chosen for d in f.decisions), key=lambda d: (d.at, d.position))
    actions = [a for f in chosen for a in f.actions]
    versions: list[str] = []
    changes = 0
    for decision in decisions:
        version = decision.bundle_version
        if not version:
            continue
        if versions and version != versions[-1]:
            changes += 1
        versions.append(version)
    period = _period_days(chosen, since, until)
    per_day = max(period, 1.0) if period is not None else None
    closed = sum(1 for f in chosen if f.closed_at is not None)
    resolved = by_state[State.RESOLVED]
    escalated = by_state[State.ESCALATED]
    automated = sum(1 for f in chosen if f.automated)
    outcomes = {o: sum(1 for d in decisions if d.outcome is o) for o in Outcome}
    return ResilienceReport(
        since=since,
        until=until,
        period_days=period,
        incidents=len(chosen),
        open=len(chosen) - closed,
        resolved=resolved,
        escalated=escalated,
        rolled_back=by_state[State.ROLLED_BACK],
        relapsed=by_state[State.RELAPSED],
        automated=automated,
        mttr=Summary.of(m for f in chosen if (m := f.mttr_s) is not None),
        time_to_detect=Summary.of(f.time_to_detect_s for f in chosen),
        time_to_decide=Summary.of(t for f in chosen if (t := f.time_to_decide_s) is not None),
        action_duration=Summary.of(a.duration_s for a in actions),
        decision_latency=Summary.of(d.latency_s for d in decisions if d.latency_s is not None),
        automation_coverage=_ratio(automated, closed),
        remediation_success_rate=_ratio(resolved, closed),
        escalations_per_incident=_ratio(escalated, len(chosen)),
        escalations_per_day=escalated / per_day if per_day is not None else None,
        decisions_allowed=outcomes[Outcome.ALLOW],
        decisions_denied=outcomes[Outcome.DENY],
        decisions_needing_approval=outcomes[Outcome.NEEDS_APPROVAL],
        approvals=sum(f.approvals for f in chosen),
        actions_succeeded=sum(1 for a in actions if a.ok),
        actions_failed=sum(1 for a in actions if not a.ok),
        policy_changes=changes,
        policy_changes_per_day=changes / per_day if per_day is not None else None,
        policy_versions=tuple(dict.fromkeys(versions)),
        kill_switch_engagements=sum(1 for t in kill_switch_engaged_at if in_range(t)),
        facts=chosen,
    )


def by_agent(report: ResilienceReport) -> dict[str, ResilienceReport]:
    """The KPIs of the incidents each agent (a runbook: ``name@version``) planned."""
    agents = sorted({f.agent for f in report.facts if f.agent})
    return {
        agent: summarise((f for f in report.facts if f.agent == agent), report.since, report.until)
        for agent in agents
    }


def _period_days(
    chosen: tuple[IncidentFacts, ...], since: datetime | None, until: datetime | None
) -> float | None:
    """Length of the range in days; an open bound is closed by the incidents themselves."""
    start = since if since is not None else min((f.opened_at for f in chosen), default=None)
    end = until if until is not None else max((f.last_event_at for f in chosen), default=None)
    if start is None or end is None:
        return None
    return max((end - start) / ONE_DAY, 0.0)


def _fold_into(found: dict[str, IncidentFacts], event: ev.Event) -> None:
    if event.stream.startswith(INCIDENT_STREAM_PREFIX):
        folded = observe(found.get(event.stream), event)
        if folded is not None:
            found[event.stream] = folded


def incident_facts(events: Iterable[ev.Event]) -> dict[str, IncidentFacts]:
    """Facts of every incident stream in ``events`` (as the store gives them), by stream."""
    found: dict[str, IncidentFacts] = {}
    for event in events:
        _fold_into(found, event)
    return found


def resilience_report(
    events: Iterable[ev.Event],
    since: datetime | None = None,
    until: datetime | None = None,
) -> ResilienceReport:
    """The KPIs of a whole event history (in log order), over ``[since, until)``.

    Events must carry their ``stream`` (``incident-<id>``), as the store returns them.
    """
    found: dict[str, IncidentFacts] = {}
    engaged: list[datetime] = []
    for event in events:
        _fold_into(found, event)
        if event.type == ev.KILL_SWITCH_ENGAGED:
            engaged.append(event.moment)
    return summarise(found.values(), since, until, kill_switch_engaged_at=engaged)
