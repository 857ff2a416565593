"""Prometheus metrics of a running Warden, fed by the events the runtime folds. Telemetry.

:class:`MetricsListener` counts events, decisions, actions and incidents and exposes the
resilience KPIs of :mod:`warden.domain.kpis` as gauges; :func:`serve_metrics` serves them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from warden.domain import events as ev
from warden.domain.errors import ConfigError
from warden.domain.incident import State
from warden.domain.kpis import (
    History,
    KpiSettings,
    Retention,
    VersionKey,
    part_of,
    summarise,
    version_keys,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from datetime import datetime
    from types import TracebackType

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from warden.domain.kpis import IncidentFacts, ResilienceReport, Summary
    from warden.ports import QuarantinedInput

log = logging.getLogger(__name__)

ACTION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
DECISION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
MTTR_BUCKETS = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0)
STATS = ("mean", "p50", "p90", "p99", "max")
# Per-version series stay bounded: the latest versions of each name, the busiest names.
MAX_VERSIONS_PER_NAME = 5
MAX_NAMES_PER_KIND = 20
OLDER = "older"  # the version label of the versions beyond MAX_VERSIONS_PER_NAME
OTHER = "other"  # the name label of the names beyond MAX_NAMES_PER_KIND
VERSION_LABELS = ["kind", "name", "version"]
SHUTDOWN_POLL_S = 0.1


class QuarantineReader(Protocol):
    """Where refused input is kept (the event store)."""

    def quarantined(self) -> Sequence[QuarantinedInput]:
        """Everything in quarantine, oldest first."""
        ...


class MetricsListener:
    """Turns the runtime's events into Prometheus metrics on ``registry``.

    Pass it to ``Runtime.subscribe``. The runtime folds the whole log when it starts, so
    after a restart the counters are rebuilt from history. Quarantined input never becomes
    an event; give ``quarantine`` (the store) to count it at scrape time. Its memory is
    bounded by ``retention`` (the defaults of :class:`~warden.domain.kpis.Retention`): the
    KPI gauges cover the open incidents and the latest closed ones, and every signal.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        quarantine: QuarantineReader | None = None,
        approval_counts: Callable[[ev.Event], bool] | None = None,
        settings: KpiSettings | None = None,
        retention: Retention | None = None,
    ) -> None:
        # Sees every event in log order and says whether an approval counts (a signed one
        # from a registered approver: governance.identity.ApprovalCheck); None counts all.
        self._approval_counts = approval_counts
        self._lock = threading.Lock()
        self.settings = settings or KpiSettings()
        self._history = History(
            retention=replace(
                retention or Retention(), relapse_window_s=self.settings.relapse_window_s
            )
        )
        self.events = Counter(
            "warden_events_ingested",
            "Events stored and folded by the runtime, by type.",
            ["type"],
            registry=registry,
        )
        self.decisions = Counter(
            "warden_decisions",
            "Control-plane decisions recorded, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.approvals = Counter("warden_approvals", "Human approvals granted.", registry=registry)
        self.actions = Counter(
            "warden_actions",
            "Steps executed, by action and result (succeeded or failed).",
            ["action", "result"],
            registry=registry,
        )
        self.action_duration = Histogram(
            "warden_action_duration_seconds",
            "Time from a step's intent to its result.",
            ["action"],
            buckets=ACTION_BUCKETS,
            registry=registry,
        )
        self.decision_latency = Histogram(
            "warden_decision_latency_seconds",
            "Time from a decision being asked for (plan, approval, previous step) to it.",
            buckets=DECISION_BUCKETS,
            registry=registry,
        )
        self.mttr = Histogram(
            "warden_incident_mttr_seconds",
            "First signal to verified recovery, per resolved incident.",
            buckets=MTTR_BUCKETS,
            registry=registry,
        )
        self.incidents_opened = Counter(
            "warden_incidents_opened", "Incidents opened.", registry=registry
        )
        self.kill_switch = Gauge(
            "warden_kill_switch_engaged", "1 while the kill switch is engaged.", registry=registry
        )
        self.errors = Counter(
            "warden_metrics_listener_errors",
            "Events the metrics listener could not count (see the log).",
            registry=registry,
        )
        registry.register(_KpiCollector(self))
        if quarantine is not None:
            registry.register(_QuarantineCollector(quarantine))

    def __call__(self, event: ev.Event) -> None:
        """Count one event the runtime folded; a failure here never reaches the runtime."""
        try:
            with self._lock:
                self.events.labels(event.type).inc()
                counts = self._approval_counts is None or self._approval_counts(event)
                if event.type == ev.KILL_SWITCH_ENGAGED:
                    self.kill_switch.set(1)
                elif event.type == ev.KILL_SWITCH_RELEASED:
                    self.kill_switch.set(0)
                before = self._history.incidents.get(event.stream)
                after = self._history.observe(event)
                if after is not None:
                    self._incident_event(event, before, after, approval_counts=counts)
        except Exception:  # telemetry must not stop remediation
            self.errors.inc()
            log.warning(
                "metrics could not count event %s (%s)", event.id, event.type, exc_info=True
            )

    def _incident_event(
        self,
        event: ev.Event,
        before: IncidentFacts | None,
        after: IncidentFacts,
        *,
        approval_counts: bool = True,
    ) -> None:
        kind = event.type
        if kind == ev.INCIDENT_OPENED:
            self.incidents_opened.inc()
        elif kind == ev.DECISION_RECORDED:
            decision = after.decisions[-1]
            self.decisions.labels(decision.outcome.value).inc()
            if decision.latency_s is not None:
                self.decision_latency.observe(decision.latency_s)
        elif kind == ev.APPROVAL_GRANTED and approval_counts:
            self.approvals.inc()
        elif kind in (ev.STEP_SUCCEEDED, ev.STEP_FAILED):
            if before is not None and len(after.actions) > len(before.actions):
                action = after.actions[-1]
                name = action.action or "unknown"
                self.actions.labels(name, "succeeded" if action.ok else "failed").inc()
                self.action_duration.labels(name).observe(action.duration_s)
        elif kind == ev.INCIDENT_RESOLVED and after.mttr_s is not None:
            self.mttr.observe(after.mttr_s)

    def report(self) -> ResilienceReport:
        """The resilience KPIs of everything kept so far (see ``retention``)."""
        with self._lock:
            return self._history.report(settings=self.settings)

    def scrape(self) -> tuple[ResilienceReport, Tally[State]]:
        """The KPIs of everything kept, and the incidents let go by their final state."""
        with self._lock:
            history = self._history
            return history.report(settings=self.settings), Tally(history.folded_states)

    def statistics(self) -> Retained:
        """How much the listener holds: what its memory grows with."""
        with self._lock:
            history = self._history
            return Retained(
                incidents=len(history.incidents),
                fleet_keys=history.fleet.size(),
                folded_incidents=sum(history.folded_states.values()),
            )


@dataclass(frozen=True, slots=True)
class Retained:
    """What a :class:`MetricsListener` holds (see :meth:`MetricsListener.statistics`)."""

    incidents: int  # open incidents and the closed ones kept whole
    fleet_keys: int  # hourly signal, drift and shadow buckets, recoveries, folded totals
    folded_incidents: int  # closed incidents counted only by state


def _summary_family(name: str, help_: str, summary: Summary) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_, labels=["stat"])
    for stat in STATS:
        value = getattr(summary, stat)
        if value is not None:
            family.add_metric([stat], value)
    return family


def _gauge(name: str, help_: str, value: float | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_)
    if value is not None:
        family.add_metric([], value)
    return family


class _KpiCollector:
    """Incidents by state and the resilience KPIs, computed at scrape time."""

    def __init__(self, listener: MetricsListener) -> None:
        self.listener = listener

    def describe(self) -> Iterable[Metric]:
        return list(_kpi_families(summarise(())))

    def collect(self) -> Iterable[Metric]:
        report, folded = self.listener.scrape()
        return [*_kpi_families(report, folded), *_version_families(bounded_versions(report))]


def _kpi_families(r: ResilienceReport, folded: Tally[State] | None = None) -> Iterator[Metric]:
    states = GaugeMetricFamily("warden_incidents", "Incidents by current state.", labels=["state"])
    counts = Tally(f.state for f in r.facts) + (folded or Tally())
    for state in State:
        states.add_metric([state.value], counts[state])
    yield states
    for name, help_, summary in (
        ("mttr", "First signal to verified recovery", r.mttr),
        ("time_to_detect", "First signal to incident opened", r.time_to_detect),
        ("time_to_decide", "Incident opened to its first decision", r.time_to_decide),
        ("action_duration", "Step intent to result", r.action_duration),
        ("decision_latency", "Decision asked for to decision recorded", r.decision_latency),
    ):
        yield _summary_family(
            f"warden_kpi_{name}_seconds", f"{help_}, over all incidents (KPI).", summary
        )
    for name, help_, value in (
        (
            "automation_coverage_ratio",
            "Closed incidents resolved with no human approval or escalation.",
            r.automation_coverage,
        ),
        (
            "remediation_success_ratio",
            "Closed incidents that were resolved.",
            r.remediation_success_rate,
        ),
        (
            "escalations_per_incident",
            "Escalated incidents per incident.",
            r.escalations_per_incident,
        ),
        (
            "escalations_per_day",
            "Escalated incidents per day of history (at least one day).",
            r.escalations_per_day,
        ),
        (
            "policy_changes",
            "Times the policy bundle version changed between decisions.",
            float(r.policy_changes),
        ),
        (
            "policy_changes_per_day",
            "Policy bundle version changes per day of history (at least one day).",
            r.policy_changes_per_day,
        ),
    ):
        yield _gauge(f"warden_kpi_{name}", help_, value)
    yield from _fleet_families(r)


def _fleet_families(r: ResilienceReport) -> Iterator[Metric]:
    seen, drift, policy, cost = (
        r.fleet.observability,
        r.fleet.config_drift,
        r.fleet.policy_drift,
        r.cost,
    )
    yield _summary_family(
        "warden_kpi_time_to_act_seconds",
        "First decision to the first step's intent, over all incidents (KPI).",
        r.time_to_act,
    )
    for name, help_, value in (
        ("remediations", "Closed incidents where a step was attempted.", float(r.remediations)),
        (
            "policy_drift_ratio",
            "Shadow decisions that changed between bundle versions on the same inputs.",
            policy.rate,
        ),
        ("policy_drift_changes", "Shadow decisions that changed.", float(policy.changed)),
        (
            "policy_drift_per_day",
            "Changed shadow decisions per day (at least one day).",
            policy.per_day,
        ),
        (
            "config_drift_per_service_day",
            "Drift events per service per day (at least one day).",
            drift.per_service_day,
        ),
        (
            "signals_per_service_hour",
            "Signals recorded per service per hour (at least one hour).",
            seen.signals_per_service_hour,
        ),
        ("cost", "The cost of resilience at kpis.prices (absent without prices).", cost.total),
    ):
        yield _gauge(f"warden_kpi_{name}", help_, value)
    covered = GaugeMetricFamily(
        "warden_kpi_service_coverage_ratio",
        "Share of services with at least one probe result, alert or change event.",
        labels=["signal"],
    )
    for signal, share in (
        ("probes", seen.probe_share),
        ("alerts", seen.alert_share),
        ("changes", seen.change_share),
    ):
        if share is not None:
            covered.add_metric([signal], share)
    yield covered
    units = GaugeMetricFamily(
        "warden_kpi_cost_units",
        "What resilience took: actions run, approvals asked, minutes a human was paged.",
        labels=["unit"],
    )
    units.add_metric(["action"], cost.actions)
    units.add_metric(["approval"], cost.approvals_asked)
    units.add_metric(["page_minute"], cost.page_minutes)
    yield units


def bounded_versions(report: ResilienceReport) -> dict[VersionKey, ResilienceReport]:
    """The KPIs per version, in a bounded number of series.

    Per kind, the :data:`MAX_NAMES_PER_KIND` names with the most incidents keep their name
    (the rest are counted as :data:`OTHER`); per name, the :data:`MAX_VERSIONS_PER_NAME`
    versions that opened an incident last keep theirs (older ones as :data:`OLDER`).
    """
    latest: dict[VersionKey, datetime] = {}
    counts: Tally[tuple[str, str]] = Tally()
    for facts in report.facts:
        for key in version_keys(facts):
            latest[key] = max(latest.get(key, facts.opened_at), facts.opened_at)
            counts[key.kind, key.name] += 1
    kept_names: set[tuple[str, str]] = set()
    for kind in {k for k, _ in counts}:
        names = sorted((n for k, n in counts if k == kind), key=lambda n: (-counts[kind, n], n))
        kept_names.update((kind, n) for n in names[:MAX_NAMES_PER_KIND])
    kept_versions: set[VersionKey] = set()
    for kind, name in kept_names:
        mine = sorted(
            (k for k in latest if (k.kind, k.name) == (kind, name)),
            key=lambda k: (latest[k], k.version),
            reverse=True,
        )
        kept_versions.update(mine[:MAX_VERSIONS_PER_NAME])

    def label(key: VersionKey) -> VersionKey:
        if (key.kind, key.name) not in kept_names:
            return VersionKey(key.kind, OTHER, "")
        return key if key in kept_versions else VersionKey(key.kind, key.name, OLDER)

    groups: dict[VersionKey, dict[str, IncidentFacts]] = {}
    for facts in report.facts:
        for key in version_keys(facts):
            groups.setdefault(label(key), {})[facts.incident_id] = facts
    return {key: part_of(report, groups[key].values()) for key in sorted(groups)}


def _version_families(versions: dict[VersionKey, ResilienceReport]) -> Iterator[Metric]:
    for name, help_, value_of in (
        ("incidents", "Incidents it planned (agent, runbook) or first decided (bundle).",
         lambda r: float(r.incidents)),
        ("mttr_p50_seconds", "Median first signal to verified recovery.", lambda r: r.mttr.p50),
        ("automation_coverage_ratio", "Closed incidents resolved with no human.",
         lambda r: r.automation_coverage),
        ("remediation_success_ratio", "Remediations that held (no relapse in the window).",
         lambda r: r.remediation_success_rate),
        ("escalations", "Incidents escalated.", lambda r: float(r.escalated)),
        ("actions", "Actions run.", lambda r: float(r.cost.actions)),
        ("page_minutes", "Minutes a human was paged.", lambda r: r.cost.page_minutes),
        ("cost", "The cost of resilience at kpis.prices.", lambda r: r.cost.total),
    ):  # fmt: skip
        family = GaugeMetricFamily(
            f"warden_kpi_version_{name}",
            f"{help_} Per version of each agent, runbook and policy bundle.",
            labels=VERSION_LABELS,
        )
        for key, report in versions.items():
            value = value_of(report)
            if value is not None:
                family.add_metric([key.kind, key.name, key.version], value)
        yield family


class _QuarantineCollector:
    """Refused input, counted from the quarantine at scrape time."""

    NAME = "warden_quarantined_inputs"
    HELP = "Input refused by the quality gates and kept in quarantine, by source."

    def __init__(self, reader: QuarantineReader) -> None:
        self.reader = reader

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.NAME, self.HELP, labels=["source"])]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.NAME, self.HELP, labels=["source"])
        for source, count in sorted(Tally(q.source for q in self.reader.quarantined()).items()):
            family.add_metric([source], count)
        return [family]


class MetricsServer:
    """A running ``/metrics`` endpoint in a daemon thread; :meth:`close` stops it."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def host(self) -> str:
        """The address it listens on."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when 0 was asked for)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The URL to scrape."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _handler(registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class MetricsHandler(BaseHTTPRequestHandler):
        server_version = "warden-metrics"

        def do_GET(self) -> None:
            if urlsplit(self.path).path != "/metrics":
                self._reply(404, "text/plain; charset=utf-8", b"not found: scrape /metrics\n")
                return
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encoder(registry)
            except Exception as exc:  # a failing collector is a 500, never a dead thread
                self._reply(500, "text/plain; charset=utf-8", f"error: {exc}\n".encode())
                return
            self._reply(200, content_type, body)

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are frequent; they are not logged."""

    return MetricsHandler


def serve_metrics(
    registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 9464
) -> MetricsServer:
    """Serve ``registry`` at ``http://host:port/metrics``; port 0 picks a free port.

    Raises:
        ConfigError: the address cannot be listened on (taken, or not this host's).
    """
    try:
        server = ThreadingHTTPServer((host, port), _handler(registry))
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"cannot serve metrics on {host}:{port}: {reason}; choose a free port with"
            " --metrics-port, or 0 to serve none"
        ) from None
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_S},
        name=f"warden-metrics-{port}",
        daemon=True,
    )
    thread.start()
    return MetricsServer(server, thread)
