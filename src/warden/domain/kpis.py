"""Resilience KPIs computed from the event history alone, so replay gives the same numbers.

Pure core (domain): :class:`History` folds a whole log (incident streams through
:mod:`warden.domain.kpi_facts`, the fleet's signals through :mod:`warden.domain.fleet_kpis`);
:func:`summarise` turns facts into a :class:`ResilienceReport` over a time range, and
:func:`by_version` splits it per version of each agent, runbook and policy bundle.
Definitions: docs/kpis.md.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.decisions import Outcome
from warden.domain.fleet_kpis import FleetFacts, FleetFigures, fleet_figures, hour_of
from warden.domain.incident import State
from warden.domain.kpi_facts import (
    INCIDENT_STREAM_PREFIX,
    ActionFact,
    DecisionFact,
    IncidentFacts,
    Summary,
    nearest_rank,
    observe,
)
from warden.domain.relapse import DEFAULT_RELAPSE_WINDOW_S, SYMPTOM_KINDS, within_window

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

ONE_DAY = timedelta(days=1)

__all__ = [
    "INCIDENT_STREAM_PREFIX",
    "ActionFact",
    "Cost",
    "DecisionFact",
    "History",
    "IncidentFacts",
    "KpiSettings",
    "Prices",
    "ResilienceReport",
    "Retention",
    "Summary",
    "VersionKey",
    "bundle_key",
    "by_agent",
    "by_version",
    "incident_facts",
    "mark_relapses",
    "nearest_rank",
    "observe",
    "page_minutes",
    "part_of",
    "resilience_report",
    "summarise",
    "version_keys",
]


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
    moments = [t for f in chosen for t in (f.opened_at, f.last_event_at)]
    moments += fleet.moments(since, until)  # signals and shadow records, by the hour
    if not moments:
        return None
    start = since if since is not None else min(moments)
    end = until if until is not None else max(moments)
    return max((end - start) / ONE_DAY, 0.0)


@dataclass(frozen=True, slots=True)
class Retention:
    """What a long-running fold keeps (the live ``/metrics``): ``kpis.retain_*`` in warden.yaml.

    ``hours`` of hourly signal buckets (older ones fold into totals over the whole
    history); ``closed_incidents``: the latest closed incidents kept whole (older ones fold
    into counts by state once past the relapse window). Open incidents are all kept.
    """

    hours: int = 7 * 24
    closed_incidents: int = 1000
    relapse_window_s: float = DEFAULT_RELAPSE_WINDOW_S

    def __post_init__(self) -> None:
        if self.hours < 1:
            raise ValueError("kpis.retain_days must be positive")
        if self.closed_incidents < 0:
            raise ValueError("kpis.retain_closed_incidents must not be negative")


@dataclass(slots=True)
class History:
    """Everything the KPIs need from an event log, folded one event at a time.

    A mutable accumulator (a long log folds in linear time); it does no I/O. Feed it the
    events in log order, with their ``stream`` as the store gives them. Signals are kept
    as counts per hour (see :class:`FleetFacts`); incidents whole. With ``retention`` its
    size is bounded for a process that runs forever: it assumes events come in time order
    and counts the incidents it let go in :attr:`folded_states` (see :class:`Retention`).
    """

    incidents: dict[str, IncidentFacts] = field(default_factory=dict)
    fleet: FleetFacts = field(default_factory=FleetFacts)
    kill_switch: list[datetime] = field(default_factory=list)
    last_at: datetime | None = None
    retention: Retention | None = None
    folded_states: Counter[State] = field(default_factory=Counter)
    _compacted: tuple[int, int] = (0, 0)  # the hour and incident count at the last compaction

    def __post_init__(self) -> None:
        if self.retention is not None:
            self.fleet.retain_hours = self.retention.hours

    def observe(self, event: ev.Event) -> IncidentFacts | None:
        """Fold one event; returns the incident's facts when it changed them."""
        moment = event.moment
        if self.last_at is None or moment > self.last_at:
            self.last_at = moment
            if self.retention is not None:
                self._compact_when_due(self.retention, moment)
        if event.type == ev.KILL_SWITCH_ENGAGED:
            self.kill_switch.append(moment)
        if event.stream.startswith(INCIDENT_STREAM_PREFIX):
            before = self.incidents.get(event.stream)
            after = observe(before, event)
            if after is not None and after is not before:
                self.incidents[event.stream] = after
                if before is not None and len(after.pages) > len(before.pages):
                    self.fleet.paged(after.service, after.pages[-1])
                return after
            return None
        self.fleet.observe(event)
        return None

    def _compact_when_due(self, retention: Retention, now: datetime) -> None:
        """Compact once an hour, or when incidents grew by the number of closed ones kept."""
        hour, count = hour_of(now), len(self.incidents)
        if hour > self._compacted[0] or count > self._compacted[1] + retention.closed_incidents:
            self.compact()

    def compact(self) -> None:
        """Let go of what ``retention`` does not keep (nothing without it)."""
        retention, now = self.retention, self.last_at
        if retention is None or now is None:
            return
        streams = list(self.incidents)
        marked = mark_relapses(self.incidents.values(), retention.relapse_window_s)
        closed = sorted(
            (
                (f.closed_at, f.incident_id, stream, f)
                for stream, f in zip(streams, marked, strict=True)
                if f.closed_at is not None
            ),
            reverse=True,
        )
        settled = now - timedelta(seconds=retention.relapse_window_s)
        for closed_at, _, stream, facts in closed[retention.closed_incidents :]:
            if closed_at < settled:  # no incident to come can make it a relapse any more
                del self.incidents[stream]
                self.folded_states[facts.state] += 1
                self.fleet.fold_span((facts.opened_at, facts.last_event_at))
        pages: dict[str, list[datetime]] = {}
        for facts in self.incidents.values():
            pages.setdefault(facts.service, []).extend(facts.pages)
        self.fleet.prune(pages)
        self._compacted = (hour_of(now), len(self.incidents))

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
