"""Resilience KPIs computed from the event history alone, so replay gives the same numbers.

Pure core (domain): :func:`observe` folds one incident stream into :class:`IncidentFacts`;
:class:`History` folds a whole log (incidents and the fleet's signals); :func:`summarise`
turns facts into a :class:`ResilienceReport` over a time range, and :func:`by_version`
splits it per version of each agent, runbook and policy bundle. Definitions: docs/kpis.md.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.fleet_kpis import FleetFacts, FleetFigures, fleet_figures
from warden.domain.incident import INCIDENT_EVENT_TYPES, State
from warden.domain.relapse import DEFAULT_RELAPSE_WINDOW_S, SYMPTOM_KINDS, within_window

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

ONE_DAY = timedelta(days=1)
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


@dataclass(frozen=True, slots=True)
class Prices:
    """What one unit of resilience costs, in any currency: ``kpis.prices`` in warden.yaml."""

    action: float = 0.0
    approval: float = 0.0
    page_minute: float = 0.0

    def __post_init__(self) -> None:
        for name in ("action", "approval", "page_minute"):
            if getattr(self, name) < 0:
                raise ValueError(f"kpis.prices.{name} must not be negative")


@dataclass(frozen=True, slots=True)
class KpiSettings:
    """What the KPIs need beside the history: the relapse window, prices, known services."""

    relapse_window_s: float = DEFAULT_RELAPSE_WINDOW_S
    prices: Prices | None = None
    services: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of resilience: what was done and asked of people, priced when prices are set."""

    actions: int  # remediation steps and compensations run
    approvals_asked: int
    pages: int
    page_minutes: float
    prices: Prices | None

    @property
    def by_unit(self) -> tuple[tuple[str, float], ...] | None:
        """(unit, cost) for actions, approvals and page minutes; None without prices."""
        p = self.prices
        if p is None:
            return None
        return (
            ("action", self.actions * p.action),
            ("approval", self.approvals_asked * p.approval),
            ("page_minute", self.page_minutes * p.page_minute),
        )

    @property
    def total(self) -> float | None:
        """The whole cost; None without prices."""
        units = self.by_unit
        return None if units is None else sum(c for _, c in units)


@dataclass(frozen=True, slots=True)
class ResilienceReport:
    """Every resilience KPI over a time range, with the counts behind it.

    An incident belongs to the range when it was opened in ``[since, until)``; signals and
    shadow records when they happened in it. Rates "per day" divide by ``period_days``,
    floored at one day (per hour: at one hour) so a burst is not extrapolated. Ratios are
    None when their denominator is zero: shown as n/a, never as 0.
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
    time_to_act: Summary
    action_duration: Summary
    decision_latency: Summary
    automation_coverage: float | None
    remediations: int  # closed incidents where a step was attempted
    remediations_held: int  # of those, resolved and not relapsed
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
    cost: Cost
    fleet: FleetFigures
    settings: KpiSettings
    facts: tuple[IncidentFacts, ...]
    source: FleetFacts = field(default_factory=FleetFacts, compare=False, repr=False)
    history_end: datetime | None = field(default=None, compare=False)

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


def mark_relapses(facts: Iterable[IncidentFacts], window_s: float) -> list[IncidentFacts]:
    """``facts``, a resolved remediation that the history shows relapsed marked ``relapsed``.

    It relapsed when another incident about a symptom of the same service
    (:data:`~warden.domain.relapse.SYMPTOM_KINDS`) had its first signal at most ``window_s``
    after the resolution: whether or not the runtime recorded ``warden.incident.relapsed``.
    """
    every = list(facts)
    failures: dict[str, list[tuple[datetime, str]]] = {}
    for f in every:
        if f.kind in SYMPTOM_KINDS:
            failures.setdefault(f.service, []).append((f.first_signal_at, f.incident_id))
    for found in failures.values():
        found.sort()
    return [
        replace(f, state=State.RELAPSED, relapse_inferred=True)
        if _undone(f, failures, window_s)
        else f
        for f in every
    ]


def _undone(
    f: IncidentFacts, failures: dict[str, list[tuple[datetime, str]]], window_s: float
) -> bool:
    """Whether another symptom of ``f``'s service began within the window after its fix."""
    closed = f.closed_at
    if not (f.state is State.RESOLVED and f.remediated and closed is not None):
        return False
    if f.kind not in SYMPTOM_KINDS:
        return False
    found = failures.get(f.service, [])
    for failed_at, other in found[bisect_left(found, (closed, "")) :]:
        if not within_window(closed, failed_at, window_s):
            return False
        if other != f.incident_id:
            return True
    return False


def page_minutes(
    facts: IncidentFacts, recoveries: Sequence[datetime], end: datetime | None
) -> float:
    """Minutes a human held this incident: first page to the service's next recovery signal.

    Without a recovery signal by ``end`` (the end of the range, else of the history), the
    page still runs at ``end``.
    """
    if not facts.pages:
        return 0.0
    paged = min(facts.pages)
    back = min((t for t in recoveries if t >= paged), default=None)
    stop = back if back is not None and (end is None or back < end) else end
    if stop is None or stop <= paged:
        return 0.0
    return (stop - paged).total_seconds() / 60.0


def summarise(
    facts: Iterable[IncidentFacts],
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    kill_switch_engaged_at: Iterable[datetime] = (),
    settings: KpiSettings | None = None,
    fleet: FleetFacts | None = None,
    history_end: datetime | None = None,
    shared: ResilienceReport | None = None,
) -> ResilienceReport:
    """The KPIs of the incidents opened in ``[since, until)`` (either bound may be open).

    ``fleet`` holds the signals and shadow records of the same history (none when omitted);
    ``history_end`` is the time of its last event (pages still running end there). With
    ``shared`` (a report these facts are part of, see :func:`part_of`), its period and
    fleet figures are taken as they are.
    """
    since, until = _aware(since, "since"), _aware(until, "until")
    if since is not None and until is not None and until <= since:
        raise ValueError(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
    settings = settings or KpiSettings()
    fleet = fleet if fleet is not None else FleetFacts()

    def in_range(moment: datetime) -> bool:
        return (since is None or moment >= since) and (until is None or moment < until)

    marked = mark_relapses(facts, settings.relapse_window_s)
    chosen = tuple(
        sorted(
            (f for f in marked if in_range(f.opened_at)),
            key=lambda f: (f.opened_at, f.incident_id),
        )
    )
    by_state = {s: sum(1 for f in chosen if f.state is s) for s in State}
    decisions = sorted(
        (d for f in chosen for d in f.decisions), key=lambda d: (d.at, d.bundle_version)
    )
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
    period = shared.period_days if shared else _period_days(chosen, fleet, since, until)
    per_day = max(period, 1.0) if period is not None else None
    closed = sum(1 for f in chosen if f.closed_at is not None)
    resolved = by_state[State.RESOLVED]
    escalated = by_state[State.ESCALATED]
    automated = sum(1 for f in chosen if f.automated)
    remediations = [f for f in chosen if f.closed_at is not None and f.remediated]
    held = sum(1 for f in remediations if f.state is State.RESOLVED)
    outcomes = {o: sum(1 for d in decisions if d.outcome is o) for o in Outcome}
    end = until or history_end or max((f.last_event_at for f in chosen), default=None)
    cost = Cost(
        actions=len(actions) + sum(f.compensations for f in chosen),
        approvals_asked=sum(f.approvals_asked for f in chosen),
        pages=sum(len(f.pages) for f in chosen),
        page_minutes=sum(page_minutes(f, fleet.recoveries.get(f.service, ()), end) for f in chosen),
        prices=settings.prices,
    )

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
        time_to_act=Summary.of(t for f in chosen if (t := f.time_to_act_s) is not None),
        action_duration=Summary.of(a.duration_s for a in actions),
        decision_latency=Summary.of(d.latency_s for d in decisions if d.latency_s is not None),
        automation_coverage=_ratio(automated, closed),
        remediations=len(remediations),
        remediations_held=held,
        remediation_success_rate=_ratio(held, len(remediations)),
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
        cost=cost,
        fleet=shared.fleet if shared else _fleet(marked, fleet, settings, since, until, period),
        settings=settings,
        facts=chosen,
        source=fleet,
        history_end=history_end,
    )


def _fleet(
    facts: Iterable[IncidentFacts],
    fleet: FleetFacts,
    settings: KpiSettings,
    since: datetime | None,
    until: datetime | None,
    period: float | None,
) -> FleetFigures:
    services = {
        *settings.services,
        *(f.service for f in facts if until is None or f.opened_at < until),
    }
    return fleet_figures(fleet, services, since, until, period)


def part_of(report: ResilienceReport, facts: Iterable[IncidentFacts]) -> ResilienceReport:
    """The KPIs of some of ``report``'s incidents, over its range, period and fleet figures."""
    return summarise(
        facts,
        report.since,
        report.until,
        settings=report.settings,
        fleet=report.source,
        history_end=report.history_end,
        shared=report,
    )


@dataclass(frozen=True, slots=True, order=True)
class VersionKey:
    """One version of one thing that decides: an agent, a runbook or a policy bundle."""

    kind: str  # agent, runbook or bundle
    name: str
    version: str  # "" when none is recorded: the name stands alone

    @property
    def label(self) -> str:
        """``name@version``, or the name alone."""
        return f"{self.name}@{self.version}" if self.version else self.name


def bundle_key(version: str) -> VersionKey:
    """The key of a bundle version as decisions record it (``name@hash``)."""
    name, at, digest = version.rpartition("@")
    return VersionKey("bundle", name, digest) if at else VersionKey("bundle", version, "")


def version_keys(facts: IncidentFacts) -> tuple[VersionKey, ...]:
    """The versions an incident counts for: its planning agent or runbook, its first bundle."""
    keys = []
    if facts.agent_name:
        keys.append(VersionKey(facts.agent_kind, facts.agent_name, facts.agent_version))
    if facts.bundle_version:
        keys.append(bundle_key(facts.bundle_version))
    return tuple(keys)


def by_version(report: ResilienceReport) -> dict[VersionKey, ResilienceReport]:
    """The KPIs of the incidents each version planned (agents, runbooks) or first decided.

    Each report covers the same range and period as ``report``; its fleet figures are the
    whole fleet's (signals belong to services, not to versions).
    """
    groups: dict[VersionKey, list[IncidentFacts]] = {}
    for facts in report.facts:
        for key in version_keys(facts):
            groups.setdefault(key, []).append(facts)
    return {key: part_of(report, groups[key]) for key in sorted(groups)}


def by_agent(report: ResilienceReport) -> dict[str, ResilienceReport]:
    """The KPIs of the incidents each agent (a runbook: ``name@version``) planned."""
    return {k.label: r for k, r in by_version(report).items() if k.kind != "bundle"}


def _period_days(
    chosen: tuple[IncidentFacts, ...],
    fleet: FleetFacts,
    since: datetime | None,
    until: datetime | None,
) -> float | None:
    """Length of the range in days; an open bound is closed by the history in the range."""

    def inside(moment: datetime) -> bool:
        return (since is None or moment >= since) and (until is None or moment < until)

    moments = [t for f in chosen for t in (f.opened_at, f.last_event_at)]
    moments += [s.at for s in fleet.signals if inside(s.at)]
    moments += [d.at for d in fleet.shadow if inside(d.at)]
    if not moments:
        return None
    start = since if since is not None else min(moments)
    end = until if until is not None else max(moments)
    return max((end - start) / ONE_DAY, 0.0)


@dataclass(slots=True)
class History:
    """Everything the KPIs need from an event log, folded one event at a time.

    A mutable accumulator (a long log folds in linear time); it does no I/O. Feed it the
    events in log order, with their ``stream`` as the store gives them.
    """

    incidents: dict[str, IncidentFacts] = field(default_factory=dict)
    fleet: FleetFacts = field(default_factory=FleetFacts)
    kill_switch: list[datetime] = field(default_factory=list)
    last_at: datetime | None = None

    def observe(self, event: ev.Event) -> IncidentFacts | None:
        """Fold one event; returns the incident's facts when it changed them."""
        moment = event.moment
        if self.last_at is None or moment > self.last_at:
            self.last_at = moment
        if event.type == ev.KILL_SWITCH_ENGAGED:
            self.kill_switch.append(moment)
        if event.stream.startswith(INCIDENT_STREAM_PREFIX):
            before = self.incidents.get(event.stream)
            after = observe(before, event)
            if after is not None and after is not before:
                self.incidents[event.stream] = after
                return after
            return None
        self.fleet.observe(event)
        return None

    def report(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        settings: KpiSettings | None = None,
    ) -> ResilienceReport:
        """The KPIs of everything folded so far, over ``[since, until)``."""
        return summarise(
            list(self.incidents.values()),
            since,
            until,
            kill_switch_engaged_at=self.kill_switch,
            settings=settings,
            fleet=self.fleet,
            history_end=self.last_at,
        )


def incident_facts(events: Iterable[ev.Event]) -> dict[str, IncidentFacts]:
    """Facts of every incident stream in ``events`` (as the store gives them), by stream."""
    history = History()
    for event in events:
        if event.stream.startswith(INCIDENT_STREAM_PREFIX):
            history.observe(event)
    return history.incidents


def resilience_report(
    events: Iterable[ev.Event],
    since: datetime | None = None,
    until: datetime | None = None,
    settings: KpiSettings | None = None,
) -> ResilienceReport:
    """The KPIs of a whole event history (in log order), over ``[since, until)``.

    Events must carry their ``stream`` (``incident-<id>``), as the store returns them.
    """
    history = History()
    for event in events:
        history.observe(event)
    return history.report(since, until, settings)
