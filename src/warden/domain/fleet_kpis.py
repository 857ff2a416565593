"""The fleet-wide KPIs: observability density, config drift, policy drift. Pure core (domain).

:class:`FleetFacts` folds the events that are not about one incident (signals, drift,
shadow decisions); :func:`fleet_figures` turns them into figures over a time range. The
exact definitions are in docs/kpis.md.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from warden.domain import events as ev
from warden.domain.changes import CHANGE_TYPES

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

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


@dataclass(frozen=True, slots=True)
class Signal:
    """One signal about one service."""

    at: datetime
    service: str
    kind: str


@dataclass(frozen=True, slots=True)
class ShadowDecision:
    """A candidate bundle's decision beside the live one, on the same step and inputs."""

    at: datetime
    live: str  # the live bundle version
    candidate: str  # the shadow bundle version
    changed: bool  # the outcome or the deciding policy differs


@dataclass(slots=True)
class FleetFacts:
    """What the fleet KPIs need, folded from a history one event at a time.

    A mutable accumulator, so folding a long history stays linear; it does no I/O.
    """

    signals: list[Signal] = field(default_factory=list)
    recoveries: dict[str, list[datetime]] = field(default_factory=dict)
    shadow: list[ShadowDecision] = field(default_factory=list)
    drifts: list[Signal] = field(default_factory=list)  # warden.drift.detected only

    def observe(self, event: ev.Event) -> None:
        """Fold one event of any stream (events of other types are ignored)."""
        kind = SIGNAL_KINDS.get(event.type)
        if kind is not None:
            if event.data.get("unmapped") is True:
                return  # an alert no rule maps to a service: about no service we know
            service = str(event.data.get("service") or event.subject)
            if not service:
                return
            self.signals.append(Signal(event.moment, service, kind))
            if event.type == ev.DRIFT_DETECTED:
                self.drifts.append(self.signals[-1])
            elif event.type in RECOVERY_TYPES:
                self.recoveries.setdefault(service, []).append(event.moment)
        elif event.type == ev.SHADOW_DECIDED:
            self.shadow.append(_shadow(event))


def _shadow(event: ev.Event) -> ShadowDecision:
    data = event.data
    live = data.get("live") or {}
    shadow = data.get("shadow") or {}
    agree = data.get("agree")
    if not isinstance(agree, bool):
        agree = (live.get("outcome"), live.get("policy")) == (
            shadow.get("outcome"),
            shadow.get("policy"),
        )
    return ShadowDecision(
        event.moment, str(live.get("bundle", "")), str(shadow.get("bundle", "")), not agree
    )


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
    """The fleet KPIs of the signals and shadow records in ``[since, until)``.

    ``services`` are the services to count in denominators (configured ones and those
    incidents were about); every service a signal names up to ``until`` is added. Coverage
    (with probes, alerts, changes) looks at everything before ``until``, since a healthy
    service's probes are recorded only when their result changes. Rates floor the period at
    one hour and one day, so a burst is not extrapolated.
    """

    def before_end(moment: datetime) -> bool:
        return until is None or moment < until

    def in_range(moment: datetime) -> bool:
        return (since is None or moment >= since) and before_end(moment)

    seen = [s for s in facts.signals if before_end(s.at)]
    known = tuple(sorted({*services, *(s.service for s in seen)}))
    counted = [s for s in seen if in_range(s.at)]
    kinds = Counter(s.kind for s in counted)

    def having(kind: str) -> int:
        return len({s.service for s in seen if s.kind == kind})

    hours = max(period_days * 24, 1.0) if period_days is not None else None
    days = max(period_days, 1.0) if period_days is not None else None
    per_hour = len(counted) / (hours * len(known)) if hours is not None and known else None
    observability = Observability(
        services=known,
        signals=len(counted),
        signals_by_kind=tuple(sorted(kinds.items())),
        signals_per_service_hour=per_hour,
        with_probes=having("probe"),
        with_alerts=having("alert"),
        with_changes=having("change"),
    )
    drifts = Counter(s.service for s in facts.drifts if in_range(s.at))
    total = sum(drifts.values())
    drift = ConfigDrift(
        drifts=total,
        by_service=tuple(sorted(drifts.items())),
        per_service_day=total / (days * len(known)) if days is not None and known else None,
    )
    shadow = [d for d in facts.shadow if in_range(d.at)]
    pairs: Counter[tuple[str, str]] = Counter()
    changed: Counter[tuple[str, str]] = Counter()
    for decision in shadow:
        pairs[decision.live, decision.candidate] += 1
        changed[decision.live, decision.candidate] += decision.changed
    moved = sum(changed.values())
    policy = PolicyDrift(
        compared=len(shadow),
        changed=moved,
        per_day=moved / days if days is not None else None,
        pairs=tuple(BundlePair(lv, c, n, changed[lv, c]) for (lv, c), n in sorted(pairs.items())),
    )
    return FleetFigures(observability, drift, policy)
