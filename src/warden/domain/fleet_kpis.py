"""The fleet-wide KPIs: observability density, config drift, policy drift. Pure core (domain).

:class:`FleetFacts` folds the events that are not about one incident (signals, drift,
shadow decisions); :func:`fleet_figures` turns them into figures over a time range. The
exact definitions are in docs/kpis.md.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.changes import CHANGE_TYPES

if TYPE_CHECKING:
    from collections.abc import Iterable

SIGNAL_KINDS: dict[str, str] = {
    ev.PROBE_FAILED: "probe",
    ev.PROBE_SUCCEEDED: "probe",
    ev.ALERT_FIRING: "alert",
    ev.ALERT_RESOLVED: "alert",
    ev.METRIC_SAMPLED: "metric",
    ev.DRIFT_DETECTED: "drift",
    ev.DRIFT_RESOLVED: "drift",
    ev.BATCH_FAILED: "pipeline",
    ev.BATCH_RECOVERED: "pipeline",
    ev.STATE_OBSERVED: "state",
    **dict.fromkeys(CHANGE_TYPES, "change"),
}
"""Signal event types and the kind each counts as."""
RECOVERY_TYPES = frozenset({ev.PROBE_SUCCEEDED, ev.ALERT_RESOLVED})
"""Signals that say a service is well again: they end a page (see kpis.py)."""


HOUR_S = 3600
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hour_of(moment: datetime) -> int:
    """The hour ``moment`` falls in, as hours since the Unix epoch (its bucket)."""
    return int((moment - EPOCH).total_seconds() // HOUR_S)


def hour_start(hour: int) -> datetime:
    """The first moment of ``hour`` (hours since the Unix epoch)."""
    return EPOCH + timedelta(hours=hour)


def _span(old: tuple[datetime, datetime] | None, moment: datetime) -> tuple[datetime, datetime]:
    if old is None:
        return (moment, moment)
    first, last = old
    return (min(first, moment), max(last, moment))


def _join(
    old: tuple[datetime, datetime] | None, other: tuple[datetime, datetime]
) -> tuple[datetime, datetime]:
    return other if old is None else (min(old[0], other[0]), max(old[1], other[1]))


@dataclass(slots=True)
class FleetFacts:
    """What the fleet KPIs need, folded from a history one event at a time.

    A mutable accumulator that does no I/O. Signals, drift events and shadow decisions are
    counted per hour (their bucket: hours since the Unix epoch), so its size grows with
    services x hours, not with events; a range counts the whole hours it touches. Each
    hour also keeps its first and last moment, and each service the first moment of each
    signal kind, so the period and coverage stay exact.

    With ``retain_hours`` (the live listener), only the latest hours keep their buckets;
    older ones fold into totals that count in ranges from the start of the history
    (``since`` None), and a range that begins before :attr:`horizon` is refused.
    ``recoveries`` keep every recovery moment (a page ends at the next one); bounded, only
    the latest of each service and the first after each page (:meth:`paged`), which
    :meth:`prune` trims to the pages still kept.
    """

    signals: Counter[tuple[int, str, str]] = field(default_factory=Counter)  # hour, svc, kind
    drifts: Counter[tuple[int, str]] = field(default_factory=Counter)  # hour, service
    compared: Counter[tuple[int, str, str]] = field(default_factory=Counter)  # hour, live, cand
    changed: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    spans: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)
    first_seen: dict[tuple[str, str], datetime] = field(default_factory=dict)  # service, kind
    recoveries: dict[str, list[datetime]] = field(default_factory=dict)
    retain_hours: int | None = None
    horizon: int | None = None  # the first hour still in buckets, once older ones are folded
    folded: Folded | None = None
    loose: set[str] = field(default_factory=set)  # bounded: the last recovery ends no page
    awaiting: set[str] = field(default_factory=set)  # bounded: a page waits for a recovery

    def observe(self, event: ev.Event) -> None:
        """Fold one event of any stream (events of other types are ignored)."""
        kind = SIGNAL_KINDS.get(event.type)
        shadow = event.type == ev.SHADOW_DECIDED
        if kind is None and not shadow:
            return
        moment = event.moment
        hour = hour_of(moment)
        if kind is not None:
            if event.data.get("unmapped") is True:
                return  # an alert no rule maps to a service: about no service we know
            service = str(event.data.get("service") or event.subject)
            if not service:
                return
            seen = self.first_seen.get((service, kind))
            if seen is None or moment < seen:
                self.first_seen[service, kind] = moment
            if event.type in RECOVERY_TYPES:
                self._recovered(service, moment)
            if self.horizon is not None and hour < self.horizon:
                self._fold_late(service, kind, event, moment)
                return
            self.signals[hour, service, kind] += 1
            if event.type == ev.DRIFT_DETECTED:
                self.drifts[hour, service] += 1
        else:
            live, candidate, changed = _shadow(event)
            if self.horizon is not None and hour < self.horizon:
                self.fold_span((moment, moment))
                self._older().shadow(live, candidate, changed)
                return
            self.compared[hour, live, candidate] += 1
            self.changed[hour, live, candidate] += changed
        self.spans[hour] = _span(self.spans.get(hour), moment)
        if self.retain_hours is not None:
            self._retire(hour - self.retain_hours + 1)

    def _recovered(self, service: str, moment: datetime) -> None:
        moments = self.recoveries.setdefault(service, [])
        if self.retain_hours is None:
            moments.append(moment)
        elif service in self.loose:  # the last one ends no page: this one takes its place
            moments[-1] = max(moments[-1], moment)
        else:
            moments.append(moment)
        if self.retain_hours is not None:
            if service in self.awaiting:  # the first after a page: it ends that page
                self.awaiting.discard(service)
                self.loose.discard(service)
            else:
                self.loose.add(service)

    def paged(self, service: str, moment: datetime) -> None:
        """Note a page (bounded only): the next recovery of ``service`` ends it, so is kept."""
        if self.retain_hours is None:
            return
        moments = self.recoveries.get(service)
        if moments and moments[-1] >= moment:
            self.loose.discard(service)
        else:
            self.awaiting.add(service)

    def _older(self) -> Folded:
        if self.folded is None:
            self.folded = Folded()
        return self.folded

    def _fold_late(self, service: str, kind: str, event: ev.Event, moment: datetime) -> None:
        older = self._older()
        older.signals[service, kind] += 1
        if event.type == ev.DRIFT_DETECTED:
            older.drifts[service] += 1
        self.fold_span((moment, moment))

    def fold_span(self, span: tuple[datetime, datetime]) -> None:
        """Note moments of the history that no retained bucket or fact holds any more."""
        older = self._older()
        older.span = _join(older.span, span)

    def _retire(self, first_kept: int) -> None:
        """Fold the buckets of the hours before ``first_kept`` into the totals."""
        if self.horizon is not None and first_kept <= self.horizon:
            return
        self.horizon = first_kept
        old = [h for h in self.spans if h < first_kept]
        if not old:
            return
        older = self._older()
        for hour in old:
            older.span = _join(older.span, self.spans.pop(hour))
        for key in [k for k in self.signals if k[0] < first_kept]:
            older.signals[key[1], key[2]] += self.signals.pop(key)
        for hour, service in [k for k in self.drifts if k[0] < first_kept]:
            older.drifts[service] += self.drifts.pop((hour, service))
        for key in [k for k in self.compared if k[0] < first_kept]:
            older.compared[key[1], key[2]] += self.compared.pop(key)
            older.changed[key[1], key[2]] += self.changed.pop(key, 0)

    def prune(self, pages: dict[str, list[datetime]]) -> None:
        """Keep only the recoveries that can still end a page: bounded by pages, not events.

        ``pages`` are the pages of every incident still kept, by service; a recovery is kept
        when it is the first at or after one of them, or the latest of its service.
        """
        for service, moments in self.recoveries.items():
            moments.sort()
            ends = {
                moments[i]
                for p in pages.get(service, ())
                if (i := bisect_left(moments, p)) < len(moments)
            }
            self.recoveries[service] = sorted({*ends, moments[-1]})
            if moments[-1] in ends:
                self.loose.discard(service)
            else:
                self.loose.add(service)
            if any(p > moments[-1] for p in pages.get(service, ())):
                self.awaiting.add(service)
            else:
                self.awaiting.discard(service)

    def window(self, since: datetime | None, until: datetime | None) -> tuple[int | None, bool]:
        """The first hour a range counts, and whether it counts the folded totals.

        Raises:
            ValueError: the range begins or ends before :attr:`horizon`, whose buckets are
                folded (the live listener keeps ``retain_hours`` of them).
        """
        low = hour_of(since) if since is not None else None
        if self.folded is None or self.horizon is None:
            return low, False
        start = hour_start(self.horizon).isoformat()
        if since is not None and since < hour_start(self.horizon):
            raise ValueError(f"since must not be before {start}: older hours are folded")
        if until is not None and until < hour_start(self.horizon):
            raise ValueError(f"until must not be before {start}: older hours are folded")
        return low, since is None

    def moments(self, since: datetime | None, until: datetime | None) -> list[datetime]:
        """The first and last moments of the hours a range counts (for its period)."""
        low, older = self.window(since, until)
        found = [
            t
            for h, span in self.spans.items()
            if (low is None or h >= low) and (until is None or hour_start(h) < until)
            for t in span
        ]
        if older and self.folded is not None and self.folded.span is not None:
            found += self.folded.span
        return found

    def size(self) -> int:
        """The number of keys held: what its memory grows with (services x hours)."""
        older = self.folded
        return (
            len(self.signals)
            + len(self.drifts)
            + len(self.compared)
            + len(self.spans)
            + len(self.first_seen)
            + sum(len(r) for r in self.recoveries.values())
            + (older.size() if older is not None else 0)
        )


@dataclass(slots=True)
class Folded:
    """The totals of the hours a bounded :class:`FleetFacts` no longer keeps in buckets."""

    signals: Counter[tuple[str, str]] = field(default_factory=Counter)  # service, kind
    drifts: Counter[str] = field(default_factory=Counter)
    compared: Counter[tuple[str, str]] = field(default_factory=Counter)  # live, candidate
    changed: Counter[tuple[str, str]] = field(default_factory=Counter)
    span: tuple[datetime, datetime] | None = None

    def shadow(self, live: str, candidate: str, changed: bool) -> None:
        """Count one shadow decision."""
        self.compared[live, candidate] += 1
        self.changed[live, candidate] += changed

    def size(self) -> int:
        """The number of keys held."""
        return len(self.signals) + len(self.drifts) + len(self.compared)


def _shadow(event: ev.Event) -> tuple[str, str, bool]:
    """(live bundle, candidate bundle, changed) of a ``warden.shadow.decided`` event."""
    data = event.data
    live = data.get("live") or {}
    shadow = data.get("shadow") or {}
    agree = data.get("agree")
    if not isinstance(agree, bool):
        agree = (live.get("outcome"), live.get("policy")) == (
            shadow.get("outcome"),
            shadow.get("policy"),
        )
    return str(live.get("bundle", "")), str(shadow.get("bundle", "")), not agree


@dataclass(frozen=True, slots=True)
class Observability:
    """How densely the services are watched."""

    services: tuple[str, ...]
    signals: int
    signals_by_kind: tuple[tuple[str, int], ...]
    signals_per_service_hour: float | None
    with_probes: int
    with_alerts: int
    with_changes: int

    def share(self, count: int) -> float | None:
        """``count`` services as a share of all services (None without services)."""
        return count / len(self.services) if self.services else None

    @property
    def probe_share(self) -> float | None:
        """Share of services with at least one probe result."""
        return self.share(self.with_probes)

    @property
    def alert_share(self) -> float | None:
        """Share of services with at least one alert."""
        return self.share(self.with_alerts)

    @property
    def change_share(self) -> float | None:
        """Share of services with at least one change event (deploy or recorded change)."""
        return self.share(self.with_changes)


@dataclass(frozen=True, slots=True)
class ConfigDrift:
    """Desired and observed state parting: ``warden.drift.detected`` events."""

    drifts: int
    by_service: tuple[tuple[str, int], ...]
    per_service_day: float | None


@dataclass(frozen=True, slots=True)
class BundlePair:
    """The shadow comparisons of one candidate bundle against one live bundle."""

    live: str
    candidate: str
    compared: int
    changed: int

    @property
    def rate(self) -> float | None:
        """Changed decisions per comparison."""
        return self.changed / self.compared if self.compared else None


@dataclass(frozen=True, slots=True)
class PolicyDrift:
    """Decisions that changed between bundle versions on the same inputs (shadow records)."""

    compared: int
    changed: int
    per_day: float | None
    pairs: tuple[BundlePair, ...]

    @property
    def rate(self) -> float | None:
        """Changed decisions per comparison; None when nothing was compared."""
        return self.changed / self.compared if self.compared else None


@dataclass(frozen=True, slots=True)
class FleetFigures:
    """The fleet KPIs over one range."""

    observability: Observability
    config_drift: ConfigDrift
    policy_drift: PolicyDrift


def fleet_figures(
    facts: FleetFacts,
    services: Iterable[str],
    since: datetime | None,
    until: datetime | None,
    period_days: float | None,
) -> FleetFigures:
    """The fleet KPIs of the signals and shadow records in the hours ``[since, until)`` touches.

    ``services`` are the services to count in denominators (configured ones and those
    incidents were about); every service a signal names up to ``until`` is added. Coverage
    (with probes, alerts, changes) looks at everything before ``until``, since a healthy
    service's probes are recorded only when their result changes; it is exact, while counts
    take whole hours (an hour counts when the range touches it). Rates floor the period at
    one hour and one day, so a burst is not extrapolated.
    """
    low, older = facts.window(since, until)

    def counted(hour: int) -> bool:
        return (low is None or hour >= low) and (until is None or hour_start(hour) < until)

    def having(kind: str) -> int:
        return sum(
            1 for (_, k), t in facts.first_seen.items() if k == kind and before_end(t, until)
        )

    known = tuple(
        sorted({*services, *(s for (s, _), t in facts.first_seen.items() if before_end(t, until))})
    )
    folded = facts.folded if older else None
    kinds: Counter[str] = Counter()
    for (hour, _, kind), n in facts.signals.items():
        if counted(hour):
            kinds[kind] += n
    drifts: Counter[str] = Counter()
    for (hour, service), n in facts.drifts.items():
        if counted(hour):
            drifts[service] += n
    pairs: Counter[tuple[str, str]] = Counter()
    changed: Counter[tuple[str, str]] = Counter()
    for (hour, live, candidate), n in facts.compared.items():
        if counted(hour):
            pairs[live, candidate] += n
            changed[live, candidate] += facts.changed[hour, live, candidate]
    if folded is not None:
        for (_, kind), n in folded.signals.items():
            kinds[kind] += n
        drifts.update(folded.drifts)
        pairs.update(folded.compared)
        changed.update(folded.changed)
    signals = sum(kinds.values())
    hours = max(period_days * 24, 1.0) if period_days is not None else None
    days = max(period_days, 1.0) if period_days is not None else None
    per_hour = signals / (hours * len(known)) if hours is not None and known else None
    observability = Observability(
        services=known,
        signals=signals,
        signals_by_kind=tuple(sorted((k, n) for k, n in kinds.items() if n)),
        signals_per_service_hour=per_hour,
        with_probes=having("probe"),
        with_alerts=having("alert"),
        with_changes=having("change"),
    )
    total = sum(drifts.values())
    drift = ConfigDrift(
        drifts=total,
        by_service=tuple(sorted(drifts.items())),
        per_service_day=total / (days * len(known)) if days is not None and known else None,
    )
    moved = sum(changed.values())
    policy = PolicyDrift(
        compared=sum(pairs.values()),
        changed=moved,
        per_day=moved / days if days is not None else None,
        pairs=tuple(BundlePair(lv, c, n, changed[lv, c]) for (lv, c), n in sorted(pairs.items())),
    )
    return FleetFigures(observability, drift, policy)


def before_end(moment: datetime, until: datetime | None) -> bool:
    """Whether ``moment`` is before ``until`` (always, when it is open)."""
    return until is None or moment < until
